"""The released handout, used every way a student uses it, from a folder named `hw 1 (copy)`.

The commands of the student's README are read out of the README itself and run as a student
runs them: in the unzipped folder, with nothing of the kit importable.
"""
import csv
import os
import re
import subprocess
import sys
import zipfile

import pytest

import documented
from autograder import cli, handout

FOLDER = "hw 1 (copy)"  # spaces and brackets: no valid package name


@pytest.fixture(scope="module")
def student_env(tmp_path_factory):
    """The environment of a student's shell: the kit not importable (it is installed on this
    machine, so a folder first on the path shadows its packages with ones that fail)."""
    shadow = tmp_path_factory.mktemp("no-kit")
    for package in ("autograder", "solutions", "assignments"):
        (shadow / package).mkdir()
        (shadow / package / "__init__.py").write_text(
            f"raise ModuleNotFoundError('No module named {package!r}', name={package!r})\n")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(PYTHONPATH=str(shadow), PYTHONNOUSERSITE="1")
    return env


@pytest.fixture(scope="module")
def run(student_env):
    def run(folder, command, timeout=120):  # wide: a busy machine, a second or two of work
        return subprocess.run(["bash", "-c", command], cwd=folder, env=student_env, capture_output=True,
                              text=True, timeout=timeout)

    return run


@pytest.fixture(scope="module")
def solved(tmp_path_factory):
    """The handout with every TODO done, released and unzipped into `hw 1 (copy)`."""
    where = tmp_path_factory.mktemp("release")
    assert handout.write_release(where / FOLDER, handout.handout_files(solved=True)) == 0
    student = tmp_path_factory.mktemp("student")
    with zipfile.ZipFile(where / f"{FOLDER}.zip") as bundle:
        bundle.extractall(student)
    return student / FOLDER


def test_the_kit_is_not_importable_in_the_students_shell(solved, run):
    assert run(solved, f"{sys.executable} -c 'import autograder'").returncode != 0


def test_the_handout_is_a_folder_of_plain_modules():
    assert "__init__.py" not in handout.handout_files()


def test_every_command_of_the_student_readme_works(solved, run):
    commands = documented.commands(handout.handout_files()["README.md"])
    assert "python check.py --zip" in commands and "python check.py autodiff101.ipynb" in commands
    for command in commands:
        result = run(solved, command.replace("python ", f"{sys.executable} ", 1))
        assert result.returncode == 0, f"{command}\n{result.stdout[-1500:]}{result.stderr[-1500:]}"
        assert "Traceback" not in result.stderr, command


def test_every_student_command_of_the_kits_readme_works(solved, run):
    students = documented.REPO.joinpath("README.md").read_text().split("## For students", 1)[1]
    commands = documented.commands(students.split("\n## ", 1)[0])
    assert commands and all(command.startswith("python ") for command in commands)
    for command in commands:
        result = run(solved, command.replace("python ", f"{sys.executable} ", 1))
        assert result.returncode == 0, f"{command}\n{result.stdout[-1500:]}{result.stderr[-1500:]}"


def test_train_py_trains_the_network(solved, run):
    result = run(solved, f"{sys.executable} train.py")
    assert result.returncode == 0, result.stderr
    assert "Epoch 49: Loss" in result.stdout and "after 50 steps" in result.stdout


def test_a_repl_in_the_folder_imports_the_modules(solved, run):
    result = run(solved, f"{sys.executable} -c 'from nn import MLP; print(len(MLP(3, [3, 3, 1]).parameters()))'")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "28"


def test_pytest_in_the_folder_runs_the_public_checks(solved, run):
    result = run(solved, f"{sys.executable} -m pytest -q -p no:cacheprovider")
    assert result.returncode == 0, result.stdout[-2000:]
    assert re.search(r"\d+ passed", result.stdout)


def test_the_untouched_handout_says_not_implemented_yet_every_way(tmp_path, run):
    folder = tmp_path / FOLDER
    handout.write_files(folder, handout.handout_files())
    checked = run(folder, f"{sys.executable} check.py")
    assert checked.returncode == 1 and "not implemented yet" in checked.stdout
    trained = run(folder, f"{sys.executable} train.py")
    assert "NotImplementedError: exercise" in trained.stderr  # the student's TODO, not an import error


def test_check_zip_writes_the_file_the_grader_takes(solved, tmp_path, run):
    result = run(solved, f"{sys.executable} check.py --zip")
    assert result.returncode == 0, result.stderr
    assert "wrote submission.zip (engine.py, nn.py)" in result.stdout
    with zipfile.ZipFile(solved / "submission.zip") as packed:
        assert sorted(packed.namelist()) == ["engine.py", "nn.py"]

    assert cli.main(["grade", str(solved / "submission.zip"), "-o", str(tmp_path / "grades"), "-j", "1"]) == 0
    with open(tmp_path / "grades" / "grades.csv", newline="") as table:
        (row,) = list(csv.DictReader(table))
    assert float(row["score"]) == float(row["max_score"]) > 0, row


def test_check_zip_packs_a_notebook_alone(solved, tmp_path, run):
    result = run(solved, f"{sys.executable} check.py autodiff101.ipynb --zip-to {tmp_path / 'mine.zip'}")
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(tmp_path / "mine.zip") as packed:
        assert packed.namelist() == ["autodiff101.ipynb"]


@pytest.mark.parametrize("python", ["", "-I -S"], ids=["with-rich", "standard-library-only"])
def test_check_py_into_a_closed_pipe_prints_no_traceback(solved, run, python):
    # `true` exits at once, so every write of check.py meets a closed pipe (as with `| head`
    # once head has its lines).
    result = run(solved, f"{sys.executable} {python} check.py | true; echo status ${{PIPESTATUS[0]}}")
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr, result.stderr
    assert result.stdout.strip() in ("status 0", "status 1")
