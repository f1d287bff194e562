"""`check.py --zip` writes the file a student hands in, and never destroys their work; a
handout folder whose work is in its notebook is checked, packed and graded as the notebook."""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder import cli, handout, load, selfcheck

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def wide_table(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps at 80 columns when not on a terminal


@pytest.fixture(scope="module")
def public_checks():
    return handout.public_checks()


@pytest.fixture(scope="module")
def stubs(tmp_path_factory, public_checks):
    """The handout as released: every TODO still raising."""
    folder = tmp_path_factory.mktemp("stubs") / "hw"
    handout.write_files(folder, handout.handout_files(checks=public_checks))
    return folder


@pytest.fixture(scope="module")
def solved(tmp_path_factory, public_checks):
    folder = tmp_path_factory.mktemp("solved") / "hw"
    handout.write_files(folder, handout.handout_files(checks=public_checks, solved=True))
    return folder


@pytest.fixture
def notebook_work(tmp_path, stubs, solved):
    """What a student who worked in the notebook hands in: the whole folder, the .py stubs untouched."""
    folder = tmp_path / "hw 1 (copy)"
    shutil.copytree(stubs, folder)
    shutil.copy(solved / "autodiff101.ipynb", folder)
    return folder


def copy(source, tmp_path):
    folder = tmp_path / "work"
    shutil.copytree(source, folder)
    return folder


# --- --zip is a flag: a path after it is the work, never the zip's name -----------------------


def test_zip_before_the_notebook_checks_the_notebook_and_keeps_it(tmp_path, solved, capsys):
    folder = copy(solved, tmp_path)
    notebook = (folder / "autodiff101.ipynb").read_bytes()
    assert selfcheck.main(["--zip", str(folder / "autodiff101.ipynb")]) == 0
    assert (folder / "autodiff101.ipynb").read_bytes() == notebook
    with zipfile.ZipFile(folder / "submission.zip") as packed:
        assert packed.namelist() == ["autodiff101.ipynb"]
    assert "hand in this file" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["engine.py", "nn.py"])
def test_zip_before_a_module_keeps_the_module(tmp_path, solved, name, capsys):
    folder = copy(solved, tmp_path)
    before = (folder / name).read_bytes()
    selfcheck.main(["--zip", str(folder / name)])
    assert (folder / name).read_bytes() == before
    assert zipfile.is_zipfile(folder / "submission.zip")


def test_the_cli_check_zip_before_a_module_keeps_it(tmp_path, solved, capsys):
    folder = copy(solved, tmp_path)
    before = (folder / "nn.py").read_bytes()
    cli.main(["check", "--zip", str(folder / "nn.py")])
    assert (folder / "nn.py").read_bytes() == before


def test_zip_alone_writes_submission_zip_in_the_folder_checked(tmp_path, solved, monkeypatch, capsys):
    folder = copy(solved, tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert selfcheck.main(["--zip", str(folder)]) == 0
    with zipfile.ZipFile(folder / "submission.zip") as packed:
        assert sorted(packed.namelist()) == ["engine.py", "nn.py"]
    assert not (elsewhere / "submission.zip").exists()


@pytest.mark.parametrize("target, says", [
    ("engine.py", "must end in .zip"),
    ("autodiff101.ipynb", "must end in .zip"),
    ("somedir", "must end in .zip"),
    ("somedir.zip", "is a folder"),
    ("missing/x.zip", "there is no folder"),
    ("notes.zip", "was not written by check.py --zip"),
])
def test_zip_to_refuses_a_bad_target_in_one_line_and_changes_nothing(tmp_path, solved, target, says, capsys):
    folder = copy(solved, tmp_path)
    (folder / "somedir").mkdir()
    (folder / "somedir.zip").mkdir()
    (folder / "notes.zip").write_text("a student's own file, not a zip")
    before = {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}
    assert selfcheck.main([str(folder), "--zip-to", str(folder / target)]) == selfcheck.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()} == before


def test_zip_to_replaces_a_zip_it_wrote_itself(tmp_path, solved, capsys):
    folder = copy(solved, tmp_path)
    target = tmp_path / "mine.zip"
    assert selfcheck.main([str(folder), "--zip-to", str(target)]) == 0
    assert selfcheck.main([str(folder / "autodiff101.ipynb"), "--zip-to", str(target)]) == 0
    with zipfile.ZipFile(target) as packed:
        assert packed.namelist() == ["autodiff101.ipynb"]


def test_the_cli_zip_to_refuses_a_notebook(tmp_path, solved, capsys):
    folder = copy(solved, tmp_path)
    before = (folder / "autodiff101.ipynb").read_bytes()
    assert cli.main(["check", str(folder), "--zip-to", str(folder / "autodiff101.ipynb")]) == 2
    assert (folder / "autodiff101.ipynb").read_bytes() == before


def test_zipping_unfinished_work_says_it_is_not_finished(tmp_path, stubs, capsys):
    folder = copy(stubs, tmp_path)
    (folder / "autodiff101.ipynb").unlink()  # no notebook to take instead
    assert selfcheck.main([str(folder), "--zip"]) == selfcheck.EXIT_FAILED
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "not every check passes yet" in last and "hand in this file" not in last


# --- the whole folder handed in, the work in its notebook --------------------------------------


def test_check_zip_on_untouched_stubs_and_a_solved_notebook_checks_and_packs_the_notebook(
        notebook_work, capsys):
    assert selfcheck.main([str(notebook_work), "--zip"]) == 0
    out = capsys.readouterr().out
    assert "autodiff101.ipynb is what is graded here" in out and "5 exercises unwritten" in out
    with zipfile.ZipFile(notebook_work / "submission.zip") as packed:
        assert packed.namelist() == ["autodiff101.ipynb"]


def test_the_grader_takes_the_notebook_of_a_folder_with_untouched_stubs(notebook_work):
    submission = load.load(notebook_work)
    assert submission.ok and submission.cells  # the notebook's code cells, not engine.py
    assert submission.notes == ["autodiff101.ipynb is what is graded here, not engine.py and nn.py: "
                                "those leave 5 exercises unwritten, the notebook 0"]


def test_the_grader_takes_the_notebook_of_a_zipped_handout_folder(notebook_work, tmp_path):
    archive = tmp_path / "student.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in notebook_work.rglob("*"):
            bundle.write(path, Path("hw1") / path.relative_to(notebook_work))
    submission = load.load(archive)
    assert submission.ok and submission.cells and submission.notes


def test_a_folder_whose_modules_hold_the_work_is_graded_as_its_modules(solved, stubs, tmp_path):
    folder = copy(solved, tmp_path)
    shutil.copy(stubs / "autodiff101.ipynb", folder)  # the untouched notebook beside the work
    submission = load.load(folder)
    assert "engine.py" in submission.sources and not submission.cells and not submission.notes


def test_untouched_stubs_and_an_untouched_notebook_stay_the_modules(stubs):
    submission = load.load(stubs)
    assert "engine.py" in submission.sources and not submission.notes


def test_the_placeholder_backward_of_the_notebook_is_not_counted_as_a_todo(solved):
    files = {name: (solved / name).read_bytes() for name in ("engine.py", "nn.py", "autodiff101.ipynb")}
    files["engine.py"] = files["engine.py"].replace(
        b"    def relu(self):", b"    def relu(self):\n        raise NotImplementedError(\"exercise relu: not written yet\")", 1)
    assert load.notebook_instead(files)[1].endswith("leave 1 exercise unwritten, the notebook 0")


# --- a closed pipe is not a failure ----------------------------------------------------------


@pytest.mark.parametrize("done, status", [(False, 1), (True, 0)])
def test_check_py_into_a_closed_pipe_exits_with_the_checks_status(tmp_path, stubs, solved, done, status):
    folder = copy(solved if done else stubs, tmp_path)
    # `true` exits at once, so the table meets a closed pipe, as with `| head -1`.
    result = subprocess.run(["bash", "-c", f'"{sys.executable}" check.py | true; exit ${{PIPESTATUS[0]}}'],
                            cwd=folder, capture_output=True, text=True, timeout=300)  # wide: a busy machine
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr


def test_the_cli_into_a_closed_pipe_exits_0_when_it_succeeds():
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run(["bash", "-c", f'"{sys.executable}" -m autograder.cli train | true; exit ${{PIPESTATUS[0]}}'],
                            env=env, capture_output=True, text=True, timeout=300)  # wide: a busy machine
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr


def test_release_into_a_closed_pipe_exits_0(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = tmp_path / "handout"
    result = subprocess.run(["bash", "-c", f'"{sys.executable}" -m autograder.cli release -o "{out}" | head -0; '
                             "exit ${PIPESTATUS[0]}"],
                            env=env, capture_output=True, text=True, timeout=300)  # wide: a busy machine
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert (out / "engine.py").is_file()


def test_grading_the_whole_folder_grades_the_notebook_and_says_so(notebook_work, tmp_path, capsys):
    assert cli.main(["grade", str(notebook_work), "-o", str(tmp_path / "grades"), "-j", "1"]) == 0
    import json

    (results,) = (tmp_path / "grades").glob("*/results.json")
    record = json.loads(results.read_text())
    assert record["score"] == 100
    assert any("autodiff101.ipynb is what is graded here" in note for note in record["extra_data"]["notes"])
