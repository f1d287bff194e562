"""`autodiff101 export nbgrader`, end to end with the real nbgrader: generate_assignment, a
leak-free release, autograde of four notebooks, and per-cell scores equal to `autodiff101
grade`'s per-check scores on the same notebooks."""
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import exported
import mutants
from autograder import handout
from autograder.platforms import nbgrader as export

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
    graded = run_nbgrader(folder, "autograde", ASSIGNMENT)
    (folder / "autograde.log").write_text(graded.stdout + graded.stderr)
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
    # the untouched handout scores 0: only the student's exercises carry points, and what the
    # handout already provides (forward values, repr, nn) is worth nothing
    assert sum(by_nbgrader["untouched"].values()) == 0 and by_nbgrader["untouched"].keys() == points.keys()


def test_nbgrader_grades_writes_one_column_per_check(course, tmp_path):
    out = tmp_path / "grades.csv"
    assert export.export_grades(course, out, out=io.StringIO()) == 0
    rows = list(csv.DictReader(out.open()))
    assert [row["student"] for row in rows] == sorted(STUDENTS)
    reference = next(row for row in rows if row["student"] == "reference")
    assert float(reference["score"]) == float(reference["max_score"]) == 100
    assert reference["add-step"] == "4"


def test_autograde_warns_about_checksums_only_where_it_restores_hidden_tests(course):
    """The warnings docs/nbgrader-otter.md calls harmless: one per hidden check and student
    (nbgrader records checksums before it clears hidden tests), none for any other cell."""
    warned = re.findall(r"Attribute 'checksum' for cell ([\w-]+) has changed",
                        (course / "autograde.log").read_text())
    hidden = [check["grade_id"] for check in json.loads((course / export.MANIFEST).read_text())["checks"]
              if check["visibility"] != "public"]
    assert hidden and sorted(warned) == sorted(hidden * len(STUDENTS))


def test_the_course_folder_carries_the_kit_outside_what_students_get(course):
    (wheel,) = course.glob("autodiff101-*.whl")
    assert not list((course / "release").rglob("*.whl")) and not list((course / "source").rglob("*.whl"))
    assert wheel.name.endswith("-py3-none-any.whl")


@pytest.mark.slow
def test_autograde_runs_with_the_kit_installed_from_the_course_folder_without_an_index(course, tmp_path):
    folder = tmp_path / "course"
    shutil.copytree(course, folder)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    # The kit from the export, its dependencies from the system's site-packages: --no-deps,
    # since pip would otherwise want the declared minimum versions (setuptools>=70.1) from
    # an index, where this machine may have older ones that work as well.
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    (wheel,) = folder.glob("autodiff101-*.whl")
    installed = subprocess.run([python, "-m", "pip", "install", "--no-index", "--no-deps", "--quiet", str(wheel)],
                               env=env, capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    where = subprocess.run([python, "-c", "import autograder; print(autograder.__file__)"], env=env,
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(venv)), where  # the wheel's copy, not the one this suite runs

    graded = subprocess.run([python, "-m", "nbgrader", "autograde", ASSIGNMENT, "--student", "reference",
                             "--force"], cwd=folder, env=env, capture_output=True, text=True)
    assert graded.returncode == 0, graded.stdout[-2000:] + graded.stderr[-2000:]
    _, rows = export.per_check_grades(folder)
    reference = next(row for row in rows if row["student"] == "reference")
    assert reference["score"] == reference["max_score"] == 100


def test_the_reference_scores_full_marks_in_nbgrader_with_every_extension(tmp_path):
    """One real generate/autograde of the export with tanh, exp, log and moons, the source
    notebook (the reference) handed in: every test cell stands after the code it calls, the
    release carries moons.csv, and the 100-step training and the pictures do not run while
    nbgrader grades (no picture is written)."""
    from nbgrader.api import Gradebook

    folder = tmp_path / "course"
    config = exported.every_extension_config(tmp_path)
    assert export.export(folder, seed=exported.SEED, config=config, out=io.StringIO()) == 0
    run_nbgrader(folder, "generate_assignment", ASSIGNMENT)
    release = folder / "release" / ASSIGNMENT
    assert (release / "moons.csv").read_text() == (Path(__file__).parents[1] / "solutions" / "moons.csv").read_text()
    submitted = folder / "submitted" / "reference" / ASSIGNMENT
    submitted.mkdir(parents=True)
    shutil.copy(folder / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", submitted)
    run_nbgrader(folder, "autograde", ASSIGNMENT)
    with Gradebook(f"sqlite:///{folder / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission(ASSIGNMENT, "reference")
        assert submission.max_score == pytest.approx(100) and submission.score == pytest.approx(100)
    autograded = folder / "autograded" / "reference" / ASSIGNMENT
    assert (autograded / f"{ASSIGNMENT}.ipynb").exists() and not list(autograded.glob("*.png"))
