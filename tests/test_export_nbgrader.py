"""`autodiff101 export nbgrader`, end to end with the real nbgrader: generate_assignment, a
leak-free release, autograde of four notebooks, and per-cell scores equal to `autodiff101
grade`'s per-check scores on the same notebooks."""
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import exported
import mutants
from autograder import handout
from autograder.exports import nbgrader as export

pytestmark = pytest.mark.nbgrader

try:
    import nbgrader.api  # noqa: F401
except ImportError as error:  # the [nbgrader] extra is not installed here
    print(f"skipping the nbgrader end-to-end tests: {error}")
    pytest.skip(f"nbgrader is not importable ({error}); install autodiff101[nbgrader]",
                allow_module_level=True)

ASSIGNMENT = export.ASSIGNMENT
STUDENTS = ("reference", "untouched", *exported.MUTANTS)


def run_nbgrader(course, *args):
    """Run an nbgrader command in ``course``; nbgrader calls `alembic` from PATH, so the
    tools' bin folder goes first."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    run = subprocess.run([exported.tool("nbgrader"), *args], cwd=course, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    return run


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The exported course, its assignment generated, four notebooks submitted and autograded."""
    folder = tmp_path_factory.mktemp("course")
    assert export.export(folder, seed=exported.SEED, out=io.StringIO()) == 0
    run_nbgrader(folder, "generate_assignment", ASSIGNMENT)
    release = folder / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    exercise_cells = exported.nbgrader_exercise_cells(folder, ASSIGNMENT)
    for student in STUDENTS:
        book = exported.filled_notebook(release, exercise_cells, "###", exported.nbgrader_key, student)
        submitted = folder / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        submitted.parent.mkdir(parents=True)
        nbformat.write(book, str(submitted))
        copy = folder / "for-autodiff101" / f"{student}.ipynb"  # the same notebook, for autodiff101 grade
        copy.parent.mkdir(exist_ok=True)
        nbformat.write(book, str(copy))
    run_nbgrader(folder, "autograde", ASSIGNMENT)
    return folder


def test_every_check_is_one_test_cell_with_its_points_and_hidden_ones_are_hidden(course):
    exported_checks = json.loads((course / export.MANIFEST).read_text())["checks"]
    book = exported.read_notebook(course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    tests = {cell.metadata.nbgrader.grade_id: cell for cell in book.cells
             if cell.metadata.get("nbgrader", {}).get("grade")}
    assert sorted(tests) == sorted(check["grade_id"] for check in exported_checks)
    for check in exported_checks:
        cell = tests[check["grade_id"]]
        assert cell.metadata.nbgrader.points == check["points"]
        assert (export.BEGIN_HIDDEN in cell.source) == (check["visibility"] != "public")


def test_the_release_passes_the_leak_scan_and_hides_hidden_checks(course):
    text = (course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()
    assert handout.leaks({f"{ASSIGNMENT}.ipynb": text}, handout.reference_sources()) == []
    assert "pow-cube-step" not in text  # a hidden check: neither its id nor its inputs are released
    assert "add-step" in text  # a public one is there for the student to run
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text


def test_autograded_scores_match_autodiff101_grade_check_by_check(course, tmp_path):
    check_ids, rows = export.per_check_grades(course)
    by_nbgrader = {row["student"]: row["by_check"] for row in rows}
    by_autodiff101 = exported.scores_by_autodiff101(course / "for-autodiff101", tmp_path / "graded")
    assert set(by_nbgrader) == set(by_autodiff101) == set(STUDENTS)
    for student in STUDENTS:
        assert by_nbgrader[student] == pytest.approx(by_autodiff101[student]), student
        assert set(by_nbgrader[student]) == set(check_ids)
    # and the scores say what they should: full marks, only the given code, the corpus's failures
    points = {check["id"]: check["points"] for check in json.loads((course / export.MANIFEST).read_text())["checks"]}
    assert by_nbgrader["reference"] == points
    for mutant in exported.MUTANTS:
        failed = {check for check, score in by_nbgrader[mutant].items() if score < points[check]}
        assert failed == {c for c in mutants.MUTANTS[mutant].fails if points[c] > 0}, mutant  # 0 points: no loss
    assert 0 < sum(by_nbgrader["untouched"].values()) < sum(points.values()) / 2


def test_nbgrader_grades_writes_one_column_per_check(course, tmp_path):
    out = tmp_path / "grades.csv"
    assert export.export_grades(course, out, out=io.StringIO()) == 0
    rows = list(csv.DictReader(out.open()))
    assert [row["student"] for row in rows] == sorted(STUDENTS)
    reference = next(row for row in rows if row["student"] == "reference")
    assert float(reference["score"]) == float(reference["max_score"]) == 100
    assert reference["add-step"] == "4"
