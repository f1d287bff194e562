"""Loading: every path becomes a Submission with a status and a clear message; nothing runs."""
import io
import json
import zipfile
from pathlib import Path

import pytest

from autograder import examples, probes
from autograder.load import CHECK_TAG, EXERCISE_MARKERS, NOT_GRADED_TAG, UsageError, discover, load, provided_module

from conftest import notebook

REFERENCE = examples.one_module()


def test_python_file_becomes_submission_py(tmp_path):
    path = tmp_path / "alice.py"
    path.write_text(REFERENCE)
    submission = load(path)
    assert submission.ok and submission.id == "alice"
    assert submission.sources == {probes.MODULE: REFERENCE}
    assert submission.where(probes.MODULE, 12) == "alice.py:12"


def test_loading_never_runs_the_code(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "sneaky.py"
    path.write_text(f"open({str(marker)!r}, 'w').close()\n" + REFERENCE)
    assert load(path).ok
    assert not marker.exists()


@pytest.mark.parametrize("text", ["", "   \n\n\t\n"])
def test_empty_file_is_a_load_error(tmp_path, text):
    path = tmp_path / "empty.py"
    path.write_text(text)
    submission = load(path)
    assert (submission.status, submission.message) == ("load-error", "empty.py is empty")


def test_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("x = 1\n\ndef f(:\n    pass\n")
    submission = load(path)
    assert submission.status == "load-error"
    assert submission.message.startswith("syntax error at broken.py:3")


def test_undecodable_bytes_say_where(tmp_path):
    path = tmp_path / "latin.py"
    path.write_bytes(b"x = 1\ny = 'caf\xe9'\n")
    submission = load(path)
    assert submission.status == "load-error"
    assert "not UTF-8" in submission.message and "0xe9 at line 2, column 9" in submission.message


def test_null_bytes_are_a_load_error_not_a_crash(tmp_path):
    path = tmp_path / "nul.py"
    path.write_bytes(b"x = 1\x00\n")
    assert load(path).status == "load-error"


def test_oversized_file_is_rejected_before_reading(tmp_path):
    path = tmp_path / "big.py"
    path.write_text("# " + "x" * 5000 + "\n")
    submission = load(path, max_bytes=1000)
    assert submission.status == "rejected" and "over the 1 KB limit" in submission.message


def test_unknown_file_type_is_rejected(tmp_path):
    path = tmp_path / "essay.docx"
    path.write_bytes(b"PK")
    assert load(path).status == "rejected"


# --- notebooks ----------------------------------------------------------------------------


def test_notebook_magics_and_shell_lines_become_get_ipython_calls(tmp_path):
    path = tmp_path / "nb.ipynb"
    path.write_text(notebook(["%matplotlib inline\n!rm -rf /\nimport math", "%%bash\necho hi", "x = 1"]))
    submission = load(path)
    assert submission.ok, submission.message
    code = submission.sources[probes.MODULE]
    assert "get_ipython().run_line_magic('matplotlib', 'inline')" in code
    assert "get_ipython().system('rm -rf /')" in code
    assert "get_ipython().run_cell_magic('bash', '', 'echo hi\\n')" in code
    assert "!" not in code.replace("'rm -rf /'", "")


def test_notebook_cells_map_back_to_cell_and_line(tmp_path):
    path = tmp_path / "nb.ipynb"
    path.write_text(notebook(["a = 1\nb = 2", "", "c = 3\nd = (\n"]))
    submission = load(path)
    assert submission.status == "load-error"
    # Jupyter numbers code cells including empty ones: the broken one is the third.
    assert submission.message.startswith("syntax error at cell 3, line 2")


def test_handout_check_cells_are_left_out(tmp_path):
    path = tmp_path / "nb.ipynb"
    path.write_text(notebook(["from checker.selfcheck import check", "x = 1", "check('add')"],
                             tags={0: [CHECK_TAG], 2: [CHECK_TAG]}))
    submission = load(path)
    assert submission.sources[probes.MODULE] == "x = 1\n"
    assert submission.cells == [(1, 2)]


def test_cells_tagged_not_graded_are_left_out_as_if_deleted(tmp_path):
    """A display-only cell costs grading nothing; tagging one's own cell only loses what it
    defines, as deleting the cell would."""
    tagged, deleted = tmp_path / "tagged.ipynb", tmp_path / "deleted.ipynb"
    tagged.write_text(notebook(["x = 1", "import matplotlib.pyplot as plt\ny = 2", "z = 3"],
                               tags={1: [NOT_GRADED_TAG]}))
    deleted.write_text(notebook(["x = 1", "", "z = 3"]))
    assert load(tagged).sources == load(deleted).sources
    assert load(tagged).cells == load(deleted).cells == [(1, 1), (2, 3)]


@pytest.mark.parametrize("text, words", [
    ("{not json", "not a notebook: the file is not JSON"),
    ("[1, 2, 3]", "not a notebook"),
    ('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code"}]}',
     "not a valid notebook"),
])
def test_corrupt_notebooks_are_load_errors(tmp_path, text, words):
    path = tmp_path / "bad.ipynb"
    path.write_text(text)
    submission = load(path)
    assert submission.status == "load-error" and words in submission.message


def test_notebook_of_markdown_only_has_no_code(tmp_path):
    import nbformat

    path = tmp_path / "prose.ipynb"
    path.write_text(nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("hi")])))
    submission = load(path)
    assert submission.status == "load-error" and "no code cells" in submission.message


# --- folders and zips ---------------------------------------------------------------------


def package_files():
    return examples.reference_sources()


def test_handout_layout_folder_keeps_its_modules(tmp_path):
    folder = tmp_path / "bob"
    folder.mkdir()
    for name, text in package_files().items():
        (folder / name).write_text(text)
    (folder / "notes.txt").write_text("not code")
    submission = load(folder)
    assert submission.ok and submission.id == "bob"
    assert set(submission.sources) == {"engine.py", "nn.py"}


def test_folder_with_one_file_is_that_file(tmp_path):
    folder = tmp_path / "carol"
    folder.mkdir()
    (folder / "work.py").write_text("x = (\n")
    submission = load(folder)
    assert submission.id == "carol"
    assert submission.message.startswith("syntax error at work.py:1")


def test_folder_with_several_candidates_is_rejected(tmp_path):
    folder = tmp_path / "dave"
    folder.mkdir()
    (folder / "a.py").write_text("x = 1\n")
    (folder / "a.ipynb").write_text(notebook(["x = 1"]))
    submission = load(folder)
    assert submission.status == "rejected" and "a.ipynb, a.py" in submission.message


def make_zip(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_zip_of_a_folder_is_unwrapped(tmp_path):
    path = make_zip(tmp_path / "erin.zip", {f"erin/{n}": t for n, t in package_files().items()}
                    | {"__MACOSX/erin/._engine.py": "junk"})
    submission = load(path)
    assert submission.ok and set(submission.sources) == {"engine.py", "nn.py"}


def test_zip_of_one_notebook(tmp_path):
    path = make_zip(tmp_path / "frank.zip", {"frank.ipynb": notebook(["x = 1"])})
    submission = load(path)
    assert submission.ok and submission.cells == [(1, 1)]


@pytest.mark.parametrize("member, words", [
    ("../escape.py", "climbs out"),
    ("/etc/evil.py", "absolute path"),
    ("a/../../evil.py", "climbs out"),
])
def test_zip_with_unsafe_member_is_rejected(tmp_path, member, words):
    path = make_zip(tmp_path / "evil.zip", {member: "x = 1\n"})
    submission = load(path)
    assert submission.status == "rejected" and words in submission.message


def test_zip_with_symlink_member_is_rejected(tmp_path):
    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo("engine.py")
        info.external_attr = (0o120777 << 16)  # a symbolic link
        archive.writestr(info, "/etc/passwd")
    assert "symbolic link" in load(path).message


def test_zip_bomb_is_rejected_without_inflating_it(tmp_path):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb.py", b"#" * (20 * 1024 * 1024))
    assert path.stat().st_size < 100_000
    submission = load(path)
    assert submission.status == "rejected" and "expands to more than" in submission.message


def test_zip_with_too_many_members_is_rejected(tmp_path):
    path = make_zip(tmp_path / "many.zip", {f"f{i}.txt": "" for i in range(300)})
    assert "members" in load(path).message


def test_file_that_is_not_a_zip_is_rejected(tmp_path):
    path = tmp_path / "fake.zip"
    path.write_text("hello")
    submission = load(path)
    assert submission.status == "rejected" and "not a readable zip" in submission.message


def test_digest_changes_with_the_content(tmp_path):
    path = tmp_path / "g.py"
    path.write_text("x = 1\n")
    first = load(path).digest
    path.write_text("x = 2\n")
    assert load(path).digest != first


# --- discovering a batch ------------------------------------------------------------------


def test_discover_folder_of_submissions(tmp_path):
    (tmp_path / "alice.py").write_text("x = 1\n")
    (tmp_path / "bob.ipynb").write_text(notebook(["x = 1"]))
    (tmp_path / "carol").mkdir()
    (tmp_path / ".DS_Store").write_text("")
    (tmp_path / "__pycache__").mkdir()
    assert [f.id for f in discover([tmp_path]).found] == ["alice", "bob", "carol"]


def test_discover_package_folder_is_one_submission(tmp_path):
    (tmp_path / "engine.py").write_text("x = 1\n")
    (tmp_path / "nn.py").write_text("x = 1\n")
    assert [f.id for f in discover([tmp_path]).found] == [tmp_path.name]


def test_discover_leaves_out_the_output_folder(tmp_path):
    (tmp_path / "alice.py").write_text("x = 1\n")
    (tmp_path / "grades").mkdir()
    assert [f.id for f in discover([tmp_path], exclude=[tmp_path / "grades"]).found] == ["alice"]


def test_duplicate_ids_are_a_usage_error(tmp_path):
    (tmp_path / "alice.py").write_text("x = 1\n")
    (tmp_path / "alice.ipynb").write_text(notebook(["x = 1"]))
    with pytest.raises(UsageError, match="two submissions have the id 'alice'"):
        discover([tmp_path])


def test_missing_path_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        discover([tmp_path / "nowhere"])


def test_loading_in_many_threads_at_once(tmp_path):
    """The grader loads submissions in parallel threads, and Python 3.11 keeps the AST
    converter's recursion depth in state all threads share (gh-106905): a collection that
    runs finalisers mid-parse lets another thread's parse in, and both fail. Provoke that."""
    import gc
    import threading
    from concurrent.futures import ThreadPoolExecutor

    class Finalised:
        def __init__(self):
            self.cycle = self

        def __del__(self):
            pass

    path = tmp_path / "alice.py"
    path.write_text(REFERENCE * 2)
    churning = threading.Event()

    def churn():
        while not churning.is_set():
            Finalised()

    threshold = gc.get_threshold()
    gc.set_threshold(200)
    churner = threading.Thread(target=churn)
    churner.start()
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda _: load(path), range(12)))
    finally:
        churning.set()
        churner.join()
        gc.set_threshold(*threshold)
    assert [r.message for r in results if not r.ok] == []


# --- a handout layout missing the modules the handout provides ----------------------------

REPO = Path(__file__).resolve().parents[1]


def test_handout_provides_nn_whole_and_engine_holds_the_exercises():
    """What the loader may fill in is exactly what the handout hands out without an exercise:
    nn.py (train.py and viz.py too, but the grader does not import them); engine.py is the
    student's to write."""
    from autograder import handout

    assert provided_module("nn.py") == (REPO / "assignments" / "nn.py").read_text()
    assert provided_module("engine.py") is None
    stubbed = handout.stub((REPO / "solutions" / "engine.py").read_text(), "engine.py")
    assert EXERCISE_MARKERS[0] in stubbed  # the marker the loader looks for is the one build writes
    assert all(EXERCISE_MARKERS[0] not in handout.stub(text, name)
               for name, text in handout.reference_sources().items() if name != "engine.py")


def _engine_only(folder):
    folder.mkdir(parents=True)
    (folder / "engine.py").write_text(package_files()["engine.py"])
    return folder


def test_engine_alone_is_graded_with_the_handouts_nn(tmp_path):
    submission = load(_engine_only(tmp_path / "dana"))
    assert submission.ok, submission.message
    assert set(submission.sources) == {"engine.py", "nn.py"}
    assert "Neuron" in submission.sources["nn.py"]
    assert submission.notes == ["nn.py not handed in: the handout's own was used"]


def test_engine_alone_in_a_zip_is_graded_with_the_handouts_nn(tmp_path):
    path = tmp_path / "erin.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("engine.py", package_files()["engine.py"])
    submission = load(path)
    assert submission.ok and set(submission.sources) == {"engine.py", "nn.py"}
    assert "nn.py not handed in" in submission.notes[0]


def test_engine_alone_without_a_provided_nn_asks_for_nn(tmp_path, monkeypatch):
    """Where the handout's nn.py holds an exercise (or is not there), nothing is made up."""
    from autograder import load as loader

    course = tmp_path / "course"
    course.mkdir()
    (course / "nn.py").write_text("class Neuron:\n    # TODO exercise neuron: write it\n    pass\n")
    monkeypatch.setattr(loader, "HANDOUT_FOLDERS", (course,))
    submission = load(_engine_only(tmp_path / "fay"))
    assert submission.status == "load-error"
    assert "upload nn.py too" in submission.message
    monkeypatch.setattr(loader, "HANDOUT_FOLDERS", (tmp_path / "nowhere",))
    assert "upload nn.py too" in load(tmp_path / "fay").message


def test_notebook_beside_the_handout_modules_is_named_as_not_graded(tmp_path):
    folder = tmp_path / "gil"
    folder.mkdir()
    for name, text in package_files().items():
        (folder / name).write_text(text)
    (folder / "autodiff101.ipynb").write_text(notebook(["x = 1"]))
    submission = load(folder)
    assert submission.ok and set(submission.sources) == {"engine.py", "nn.py"}
    assert submission.notes == ["autodiff101.ipynb not graded: with engine.py handed in, the .py files are graded; "
                                "hand in the notebook alone to have it graded"]


def test_grade_of_a_folder_holding_only_engine_says_nn_came_from_the_handout(tmp_path):
    """``autodiff101 grade`` on it: full marks for the reference's engine, and the note with
    the score where the student reads it."""
    from autograder.grade import grade
    from autograder.sandbox import Limits

    _engine_only(tmp_path / "subs" / "hal")
    out = tmp_path / "out"
    batch = grade([tmp_path / "subs"], out=out, jobs=1, seed=0, isolation="rlimits", limits=Limits())
    row = batch.rows[0]
    assert row["status"] == "graded" and row["score"] == row["max_score"]
    results = json.loads((out / "hal" / "results.json").read_text())
    assert "nn.py not handed in: the handout's own was used" in results["output"]
    assert "nn.py not handed in" in (out / "hal" / "feedback.md").read_text()


def test_otters_own_cells_are_left_out_and_a_students_code_beside_them_is_not():
    """otter assign writes `import otter; grader = otter.Notebook(...)` and `grader.check(...)`
    cells into a student's notebook: no worker has otter, so they only made notes in every
    student's feedback. A cell of only those is left out; one that also holds the student's
    own code is kept whole."""
    import nbformat

    from autograder.load import notebook_code_cells

    sources = ['# Initialize Otter\nimport otter\ngrader = otter.Notebook("autodiff101.ipynb")',
               "class Value:\n    pass",
               'grader.check("add")',
               "grader.check_all()",
               "# Save first\ngrader.export(pdf=False, run_tests=True)",
               'x = 1\ngrader.check("mul")',
               "import otter as o",
               "grader = make_grader()"]
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(text) for text in sources])
    cells = notebook_code_cells(nbformat.writes(book))
    assert cells == ["", sources[1], "", "", "", sources[5], sources[6], sources[7]]
