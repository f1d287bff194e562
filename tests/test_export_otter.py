"""`autodiff101 export otter`, end to end with the real otter-grader: otter assign, a
leak-free student notebook, `otter run` with the autograder zip on four notebooks, and
per-check scores equal to `autodiff101 grade`'s on the same notebooks."""
import io
import json
import subprocess
from concurrent.futures import ThreadPoolExecutor

import nbformat
import pytest

import exported
import mutants
from autograder import handout
from autograder.exports import otter as export

pytestmark = pytest.mark.otter

try:
    import otter  # noqa: F401
except ImportError as error:  # the [otter] extra is not installed here
    print(f"skipping the otter end-to-end tests: {error}")
    pytest.skip(f"otter-grader is not importable ({error}); install autodiff101[otter]", allow_module_level=True)

ASSIGNMENT = export.ASSIGNMENT
STUDENTS = ("reference", "untouched", *exported.MUTANTS)


def otter_cli(folder, *args):
    run = subprocess.run([exported.tool("otter"), *args], cwd=folder, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    return run


@pytest.fixture(scope="module")
def assigned(tmp_path_factory):
    """The master notebook exported and run through `otter assign` (its own run of the tests
    on the solutions is skipped: the reference notebook below is graded anyway)."""
    folder = tmp_path_factory.mktemp("otter")
    assert export.export(folder, seed=exported.SEED, out=io.StringIO()) == 0
    otter_cli(folder, "assign", f"{ASSIGNMENT}.ipynb", "dist", "--no-run-tests")
    return folder


@pytest.fixture(scope="module")
def graded(assigned, tmp_path_factory):
    """{student: otter's results.json} for the four notebooks, run with the autograder zip."""
    exercise_cells = exported.otter_exercise_cells(assigned / f"{ASSIGNMENT}.ipynb")
    (zip_path,) = (assigned / "dist" / "autograder").glob("*.zip")
    notebooks = tmp_path_factory.mktemp("notebooks")
    runs = {}
    for student in STUDENTS:
        book = exported.filled_notebook(assigned / "dist" / "student" / f"{ASSIGNMENT}.ipynb", exercise_cells,
                                        "#", exported.otter_key, student)
        path = notebooks / f"{student}.ipynb"
        nbformat.write(book, str(path))
        runs[student] = (tmp_path_factory.mktemp(f"otter-run-{student}"), path)
    with ThreadPoolExecutor(max_workers=2) as pool:  # otter run takes one notebook; most of its time is start-up
        list(pool.map(lambda run: otter_cli(notebooks, "run", "-a", str(zip_path), "-o", str(run[0]), "--no-logo",
                                            str(run[1])), runs.values()))
    results = {student: json.loads((out / "results.json").read_text()) for student, (out, _) in runs.items()}
    return notebooks, results


def test_the_student_notebook_passes_the_leak_scan_and_holds_no_hidden_check(assigned):
    text = (assigned / "dist" / "student" / f"{ASSIGNMENT}.ipynb").read_text()
    assert handout.leaks({f"{ASSIGNMENT}.ipynb": text}, handout.reference_sources()) == []
    assert "pow-cube-step" not in text and "add-step" in text
    assert "BEGIN SOLUTION" not in text


def test_otter_run_scores_match_autodiff101_grade_check_by_check(assigned, graded, tmp_path):
    notebooks, results = graded
    manifest = json.loads((assigned / export.MANIFEST).read_text())
    by_otter = {student: export.per_check_scores(results[student], manifest) for student in STUDENTS}
    by_autodiff101 = exported.scores_by_autodiff101(notebooks, tmp_path / "graded")
    assert set(by_autodiff101) == set(STUDENTS)
    for student in STUDENTS:
        assert by_otter[student] == pytest.approx(by_autodiff101[student]), student
    points = {check["id"]: check["points"] for check in manifest["checks"]}
    assert by_otter["reference"] == points
    for mutant in exported.MUTANTS:
        failed = {check for check, score in by_otter[mutant].items() if score < points[check]}
        assert failed == {c for c in mutants.MUTANTS[mutant].fails if points[c] > 0}, mutant


def test_per_check_scores_refuse_a_question_score_they_cannot_explain():
    manifest = {"questions": {"add": ["add-step"]}, "checks": [{"id": "add-step", "points": 4}]}
    silent_failure = {"tests": [{"name": "add", "score": 0, "output": "NameError: assert_check"}]}
    with pytest.raises(ValueError, match="otter scored 0"):
        export.per_check_scores(silent_failure, manifest)
    named = {"tests": [{"name": "add", "score": 0, "output": "AssertionError: check add-step failed: ..."}]}
    assert export.per_check_scores(named, manifest) == {"add-step": 0}
