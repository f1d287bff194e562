"""`autodiff101 export otter`, end to end with the real otter-grader: otter assign, a
leak-free student notebook, `otter run` with the autograder zip on four notebooks, and
per-check scores equal to `autodiff101 grade`'s on the same notebooks."""
import io
import json
import os
import subprocess
import sys
import shutil
import zipfile
from concurrent.futures import ThreadPoolExecutor

import nbformat
import pytest

import documented
import exported
import mutants
from autograder import handout
from autograder.platforms import otter as export

pytestmark = pytest.mark.otter

try:
    import otter  # noqa: F401
except ImportError as error:  # the [otter] extra is not installed here
    print(f"skipping the otter end-to-end tests: {error}")
    pytest.skip(f"otter-grader is not importable ({error}); install autodiff101[otter]", allow_module_level=True)

ASSIGNMENT = export.ASSIGNMENT
DOCS = documented.REPO / "docs" / "nbgrader-otter.md"
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


def test_otter_assign_keeps_the_tag_that_leaves_the_kits_setup_cell_out_of_grading(assigned):
    from autograder import load
    from autograder.platforms import export_source

    book = nbformat.read(str(assigned / "dist" / "student" / f"{ASSIGNMENT}.ipynb"), as_version=4)
    (setup,) = [cell for cell in book.cells if cell.source == export_source.kernel_setup_source()]
    assert load.CHECK_TAG in setup.metadata["tags"]
    assert not any("assert_check" in cell for cell in load.notebook_code_cells(nbformat.writes(book)))


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


def test_otter_assigns_and_passes_the_reference_with_every_extension(tmp_path):
    """One real `otter assign` of the export with tanh, exp, log and moons, with otter's own
    run of every test on the solution: each test stands after the code it calls (otter
    exits 1 otherwise), moons.csv goes to students and the autograder, and the cells the
    handout leaves ungraded (the 100-step training, the pictures) carry otter's ignore tag."""
    folder = tmp_path / "export"
    config = exported.every_extension_config(tmp_path)
    assert export.export(folder, seed=exported.SEED, config=config, out=io.StringIO()) == 0
    run = otter_cli(folder, "assign", f"{ASSIGNMENT}.ipynb", "dist")
    assert "failed" not in (run.stdout + run.stderr).lower(), run.stdout + run.stderr
    for given_to in ("student", "autograder"):
        assert (folder / "dist" / given_to / "moons.csv").read_text() == (documented.REPO / "solutions" / "moons.csv").read_text()
    student = nbformat.read(folder / "dist" / "student" / f"{ASSIGNMENT}.ipynb", as_version=4)
    ungraded = [cell for cell in student.cells if "autodiff101-not-graded" in cell.metadata.get("tags", [])]
    assert any("train_moons(" in cell.source for cell in ungraded)
    assert all(export.OTTER_IGNORE in cell.metadata["tags"] for cell in ungraded)


def test_per_check_scores_refuse_a_question_score_they_cannot_explain():
    manifest = {"questions": {"add": ["add-step"]}, "checks": [{"id": "add-step", "points": 4}]}
    silent_failure = {"tests": [{"name": "add", "score": 0, "output": "NameError: assert_check"}]}
    with pytest.raises(ValueError, match="otter scored 0"):
        export.per_check_scores(silent_failure, manifest)
    named = {"tests": [{"name": "add", "score": 0, "output": "AssertionError: check add-step failed: ..."}]}
    assert export.per_check_scores(named, manifest) == {"add-step": 0}


def test_the_untouched_student_notebook_raises_not_implemented_like_the_kits_handout(assigned):
    student = exported.read_notebook(assigned / "dist" / "student" / f"{ASSIGNMENT}.ipynb")
    code = "\n".join(cell.source for cell in student.cells if cell.cell_type == "code")
    for region in handout.all_regions(handout.reference_sources()):
        assert handout.todo_lines(region)[1].strip() in code, region.exercise
    assert "\n        ...\n" not in code and "PROMPT" not in code


def test_the_autograder_carries_the_kit_and_students_do_not_get_it(assigned):
    (zip_path,) = (assigned / "dist" / "autograder").glob("*.zip")
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        environment = archive.read("environment.yml").decode()
    (wheel,) = [name for name in names if name.endswith(".whl")]
    assert wheel.startswith("files/autodiff101-")
    assert f"{export.GRADESCOPE_FILES}/{wheel.split('/')[-1]}" in environment
    assert not list((assigned / "dist" / "student").rglob("*.whl"))


@pytest.mark.slow
def test_the_autograder_installs_the_kit_from_itself_with_no_package_index(assigned, tmp_path):
    """Gradescope's image build, here: the zip unpacked where Gradescope puts it, the kit's
    requirement installed with pip's index out of reach, then the docs' `otter run` grades
    the reference notebook in that environment with full marks."""
    import yaml

    (zip_path,) = (assigned / "dist" / "autograder").glob("*.zip")
    source = tmp_path / "autograder" / "source"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(source)
    environment = yaml.safe_load((source / "environment.yml").read_text())
    pip = next(dependency["pip"] for dependency in environment["dependencies"] if isinstance(dependency, dict))
    kit = [requirement.replace("/autograder/source", str(source)) for requirement in pip
           if not requirement.startswith("otter-grader")]  # otter itself comes with the image
    assert len(kit) == 1 and (tmp_path / kit[0]).is_file()

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    # The kit from the export, its dependencies from the system's site-packages: --no-deps,
    # since pip would otherwise want the declared minimum versions (setuptools>=70.1) from
    # an index, where this machine may have older ones that work as well.
    installed = subprocess.run([python, "-m", "pip", "install", "--no-index", "--no-deps", "--quiet", *kit],
                               env=env, capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    where = subprocess.run([python, "-c", "import autograder; print(autograder.__file__)"], env=env,
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(venv)), where  # the wheel's copy, not the one this suite runs

    book = exported.filled_notebook(assigned / "dist" / "student" / f"{ASSIGNMENT}.ipynb",
                                    exported.otter_exercise_cells(assigned / f"{ASSIGNMENT}.ipynb"),
                                    "#", exported.otter_key, "reference")
    folder = tmp_path / "otter"  # where the docs' commands run (after `cd otter`)
    shutil.copytree(assigned, folder)
    nbformat.write(book, str(folder / "some-student.ipynb"))
    (command,) = [line for line in documented.commands(DOCS) if "otter run" in line]
    command = command.replace("otter run", f"{python} -m otter run")
    graded = subprocess.run(["bash", "-c", command], cwd=folder, env=env, capture_output=True, text=True)
    assert graded.returncode == 0, graded.stdout[-2000:] + graded.stderr[-2000:]
    results = json.loads((folder / "out" / "results.json").read_text())
    manifest = json.loads((assigned / export.MANIFEST).read_text())
    scored = {test["name"]: test["score"] for test in results["tests"] if "score" in test}
    assert sum(scored.values()) == sum(check["points"] for check in manifest["checks"]) > 0, scored


def test_autodiff101_grades_an_otter_notebook_without_notes_about_otters_own_cells(graded, tmp_path):
    """otter assign adds `import otter`, `grader = otter.Notebook(...)` and `grader.check(...)`
    cells; no worker has otter, and the grader leaves them out instead of noting, in every
    student's feedback, that each raised."""
    from autograder import grade

    notebooks, _ = graded
    batch = grade.grade([notebooks / "reference.ipynb"], out=tmp_path / "out", seed=exported.SEED)
    (row,) = batch.rows
    results = json.loads((tmp_path / "out" / "reference" / "results.json").read_text())
    assert row["score"] == results["extra_data"]["max_score"]
    assert results["extra_data"]["notes"] == []
