"""`autodiff101 check`: the public checks run in-process on a .py file, a notebook or a folder."""
import io
import json
import re
import subprocess
import sys

import nbformat
import pytest

from autograder import checks, handout, inprocess, selfcheck
from mutants import MUTANTS, SEED, VARIANTS
from mutants import write as write_mutant

REGIONS = handout.all_regions(handout.reference_sources())


@pytest.fixture(autouse=True)
def wide_table(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps at 80 columns when not on a terminal


@pytest.fixture(scope="module")
def public_checks():
    return handout.public_checks()


@pytest.fixture(scope="module")
def checks_file(tmp_path_factory, public_checks):
    path = tmp_path_factory.mktemp("checks") / handout.PUBLIC_CHECKS
    path.write_text(json.dumps(public_checks))
    return path


def write(folder, public_checks, solved, patch=None):
    """The handout in ``folder``; ``patch(files)`` edits it first."""
    files = handout.handout_files(checks=public_checks, solved=solved)
    if patch:
        patch(files)
    handout.write_files(folder, files)
    return folder


def one_module(public_checks):
    """The solved engine and nn as one file, as a student who copies everything into one would."""
    files = handout.handout_files(checks=public_checks, solved=True)
    return files["engine.py"] + "\n" + files["nn.py"].replace(handout.importable_both_ways("from .engine import Value\n"), "")


def check(path, checks_file, capsys):
    out = io.StringIO()
    code = selfcheck.run(path, checks_file, out)
    return code, out.getvalue(), capsys.readouterr().err


def rows(report):
    """{exercise: status} from the printed table."""
    found = {}
    for line in report.splitlines():
        cells = [cell.strip() for cell in re.split(r"[│┃]", line) if cell.strip()]
        if len(cells) >= 2 and cells[0] not in found and cells[0] != "exercise":
            found[cells[0]] = cells[1]
    return found


def region(exercise):
    return next(r for r in REGIONS if r.exercise == exercise)


def fill(files, *exercises):
    """Put the reference's code back in place of the TODOs of ``exercises``."""
    for exercise in exercises:
        r = region(exercise)
        files[r.file] = files[r.file].replace("\n".join(handout.todo_lines(r)), "\n".join(r.lines))


# --- folders ---------------------------------------------------------------------------------


def test_a_finished_handout_passes_every_public_check(tmp_path, public_checks, checks_file, capsys):
    code, report, _ = check(write(tmp_path, public_checks, solved=True), checks_file, capsys)
    assert code == 0
    assert f"{len(public_checks)} of {len(public_checks)} public checks pass" in report
    assert set(rows(report).values()) == {"passed"}


def test_the_untouched_handout_is_not_implemented_yet(tmp_path, public_checks, checks_file, capsys):
    code, report, _ = check(write(tmp_path, public_checks, solved=False), checks_file, capsys)
    assert code == 1
    table = rows(report)
    for exercise in ("add", "mul", "pow", "relu", "backward"):
        assert table[exercise] == "not implemented yet"
    assert table["value"] == "passed"  # forward values need no TODO
    assert table["sub-div"] == "waits for backward"


def test_assigning_a_gradient_instead_of_adding_is_named(tmp_path, public_checks, checks_file, capsys):
    def assign_in_add(files):  # the second input of a sum; a + a shows it
        files["engine.py"] = files["engine.py"].replace("other.grad += out.grad", "other.grad = out.grad", 1)

    folder = write(tmp_path, public_checks, solved=True, patch=assign_in_add)
    code, report, _ = check(folder, checks_file, capsys)
    assert code == 1
    assert rows(report)["add"] == "failed"
    assert "accumulate-grad" in report
    assert "add to .grad (+=)" in report  # the hint, in terms of the student's code


def test_one_exercise_done_waits_for_backward_and_the_next_is_not_implemented(
        tmp_path, public_checks, checks_file, capsys):
    folder = write(tmp_path, public_checks, solved=False, patch=lambda files: fill(files, "add"))
    _, report, _ = check(folder, checks_file, capsys)
    table = rows(report)
    assert table["add"] == "waits for backward"
    assert table["mul"] == "not implemented yet"


def test_a_second_folder_in_the_same_process_is_loaded_afresh(tmp_path, public_checks, checks_file, capsys):
    assert check(write(tmp_path / "a", public_checks, solved=True), checks_file, capsys)[0] == 0
    assert check(write(tmp_path / "b", public_checks, solved=False), checks_file, capsys)[0] == 1


def test_the_default_path_is_the_handout_in_the_current_folder(tmp_path, public_checks, monkeypatch, capsys):
    write(tmp_path, public_checks, solved=True)
    monkeypatch.chdir(tmp_path)
    assert selfcheck.run(tmp_path, out=io.StringIO()) == 0  # public_checks.json found next to it


@pytest.mark.parametrize("files", [("engine.py", "nn.py"), ("submission.py",)], ids=["folder", "one-module"])
def test_a_relative_path_to_a_folder_from_its_parent_is_checked(files, tmp_path, public_checks, checks_file,
                                                                monkeypatch, capsys):
    """`check work` run beside work/: the code runs inside work/, so the path given must not be
    resolved again from there (it was: No module named 'submission.engine')."""
    folder = tmp_path / "work"
    if files == ("submission.py",):
        folder.mkdir()
        (folder / "submission.py").write_text(one_module(public_checks))
    else:
        solved = handout.handout_files(checks=public_checks, solved=True)
        folder.mkdir()
        for name in files:
            (folder / name).write_text(solved[name])
    monkeypatch.chdir(tmp_path)
    code, report, _ = check("work", checks_file, capsys)
    assert code == 0, report
    assert "No module named" not in report


def test_moons_py_without_train_py_is_checked_with_the_handouts_train_py(tmp_path, capsys):
    """As the grader does (load.py fills in the handout's train.py, never asked for): the
    self-check of engine.py, nn.py and moons.py alone loads moons.py and runs its checks."""
    solved = handout.handout_files(chosen="all", solved=True)
    folder = tmp_path / "work"
    folder.mkdir()
    for name in ("engine.py", "nn.py", "moons.py", "moons.csv"):
        (folder / name).write_text(solved[name])
    names = selfcheck.load(folder)
    assert names["accuracy"]([names["Value"](0.5), names["Value"](-2.0)], [1, 1]) == 0.5  # loaded, not a stand-in
    assert not (folder / "train.py").exists()


# --- single files ----------------------------------------------------------------------------


def test_a_single_module_with_prints_and_a_demo(tmp_path, public_checks, checks_file, capsys):
    path = tmp_path / "mine.py"
    path.write_text(one_module(public_checks) + "\nprint('NOISE from the student')\n"
                    "a = Value(2.0); (a * a).backward(); print(a.grad)\n")
    code, report, _ = check(path, checks_file, capsys)
    assert code == 0
    assert "NOISE" not in report and "NOISE" not in capsys.readouterr().out


def test_a_module_that_raises_while_loading_says_where(tmp_path, public_checks, checks_file, capsys):
    path = tmp_path / "mine.py"
    path.write_text(one_module(public_checks) + "\nratio = 1 / 0\n")
    code, _, error = check(path, checks_file, capsys)
    assert code == 1
    assert "ZeroDivisionError" in error and "mine.py:" in error


def test_a_module_without_the_names_is_reported(tmp_path, checks_file, capsys):
    path = tmp_path / "empty.py"
    path.write_text("x = 1\n")
    code, _, error = check(path, checks_file, capsys)
    assert code == 1
    assert "defines none of Value" in error


# --- notebooks -------------------------------------------------------------------------------


def notebook_of(*sources):
    return nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources]))


def test_the_solved_notebook_passes_and_runs_in_its_own_folder(
        tmp_path, public_checks, checks_file, capsys, monkeypatch):
    def add_cell_writing_a_file(files):
        book = nbformat.reads(files[handout.NOTEBOOK], as_version=4)
        book.cells.append(nbformat.v4.new_code_cell("open('ran_here.txt', 'w').close()"))
        files[handout.NOTEBOOK] = nbformat.writes(book)

    folder = write(tmp_path / "handout", public_checks, solved=True, patch=add_cell_writing_a_file)
    monkeypatch.chdir(tmp_path)
    code, report, _ = check(folder / handout.NOTEBOOK, checks_file, capsys)
    assert code == 0, report
    assert (folder / "ran_here.txt").exists() and not (tmp_path / "ran_here.txt").exists()
    # The loss curve's cell is tagged autodiff101-not-graded: the self-check leaves it out.
    assert not (folder / "loss_curve.png").exists() and not (tmp_path / "loss_curve.png").exists()


def test_the_handout_notebook_gets_a_row_per_exercise_despite_its_failing_demo_cells(
        tmp_path, public_checks, checks_file, capsys):
    folder = write(tmp_path, public_checks, solved=False, patch=lambda files: None)
    code, report, _ = check(folder / handout.NOTEBOOK, checks_file, capsys)
    assert code == 1
    assert rows(report)["relu"] == "not implemented yet"
    assert rows(report)["value"] == "passed"


def test_magics_and_shell_lines_do_not_run(tmp_path, public_checks, checks_file, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "mine.ipynb"
    path.write_text(notebook_of(
        "%matplotlib inline\n!touch SHELL_RAN",
        one_module(public_checks),
        "%%bash\ntouch CELL_MAGIC_RAN",
        "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()",
        "m = MLP(3, [3, 3, 1])\nfor epoch in range(50):\n    loss = sum((y - m(x))**2 for x, y in "
        "zip([[0.5, 0.5, 0.7]], [0.0]))\n    m.zero_grad(); loss.backward()\n"
        "    for p in m.parameters(): p.data -= 0.01 * p.grad\n",
    ))
    code, report, _ = check(path, checks_file, capsys)
    assert code == 0, report
    assert not (tmp_path / "SHELL_RAN").exists() and not (tmp_path / "CELL_MAGIC_RAN").exists()


def test_the_notebooks_own_check_cells_stay_idle_while_it_is_loaded(tmp_path, public_checks, checks_file, capsys):
    path = tmp_path / "mine.ipynb"
    path.write_text(notebook_of(one_module(public_checks), "from autograder.selfcheck import check\ncheck()"))
    code, report, _ = check(path, checks_file, capsys)
    assert code == 0
    assert report.count("public checks pass") == 1  # the report, not a nested one


# --- bad input -------------------------------------------------------------------------------


def test_a_syntax_error_is_reported_with_file_and_line(tmp_path, checks_file, capsys):
    path = tmp_path / "broken.py"
    path.write_text("class Value:\n    pass\n\ndef f(:\n    pass\n")
    code, _, error = check(path, checks_file, capsys)
    assert code == 2
    assert "broken.py:4" in error and "syntax" in error


def test_a_syntax_error_in_a_folder_names_the_module(tmp_path, public_checks, checks_file, capsys):
    def break_nn(files):
        files["nn.py"] = files["nn.py"].replace("class Module:", "class Module(:")

    code, _, error = check(write(tmp_path, public_checks, solved=True, patch=break_nn), checks_file, capsys)
    assert code == 2
    assert re.search(r"nn\.py:\d+", error)


def test_a_syntax_error_in_a_notebook_names_the_cell(tmp_path, checks_file, capsys):
    path = tmp_path / "broken.ipynb"
    path.write_text(notebook_of("x = 1", "y = (2,"))
    code, _, error = check(path, checks_file, capsys)
    assert code == 2
    assert "cell 2, line 1" in error


@pytest.mark.parametrize("text, says", [
    ("this is not json {", "not JSON"),
    ('{"cells": "nope"}', "not a valid notebook"),
    ("[1, 2, 3]", "not a notebook"),
])
def test_a_file_that_is_not_a_notebook_is_reported(tmp_path, checks_file, capsys, text, says):
    path = tmp_path / "mine.ipynb"
    path.write_text(text)
    code, _, error = check(path, checks_file, capsys)
    assert code == 2
    assert says in error


def test_a_missing_path_exits_2(tmp_path, checks_file, capsys):
    code, _, error = check(tmp_path / "nowhere.py", checks_file, capsys)
    assert code == 2
    assert "nowhere.py" in error


def test_the_command_line_exit_codes(tmp_path, public_checks):
    write(tmp_path, public_checks, solved=True)
    done = subprocess.run(["autodiff101", "check", str(tmp_path)], capture_output=True, text=True)
    missing = subprocess.run(["autodiff101", "check", str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert missing.returncode == 2 and "no such file" in missing.stderr


# --- without nbformat and IPython (the released checker on a bare Python) ---------------------


def test_without_jupyter_a_notebook_is_read_as_json_and_magics_become_pass(tmp_path):
    path = tmp_path / "mine.ipynb"
    path.write_text(notebook_of("%matplotlib inline\nx = 1", "", "%%bash\nls", "if x:\n    !ls\ny = x + 1"))
    submission = selfcheck._notebook_without_jupyter(path)
    assert submission.ok
    assert [number for _, number in submission.cells] == [1, 3, 4]
    source = submission.sources["submission.py"]
    assert "pass  # IPython only: %matplotlib inline" in source and "x = 1" in source
    exec(compile(source, "mine", "exec"), {})


@pytest.mark.parametrize("text, says", [
    ("not json", "not JSON"),
    ('{"nbformat": 4, "cells": 3}', "no list of cells"),
    ('{"cells": []}', "not a notebook in format 4"),
    (notebook_of("x = 1", "y = (2,"), "syntax error at cell 2, line 1"),
], ids=["not-json", "cells-not-a-list", "no-format", "syntax-error"])
def test_without_jupyter_bad_notebooks_are_explained(tmp_path, text, says):
    path = tmp_path / "mine.ipynb"
    path.write_text(text)
    submission = selfcheck._notebook_without_jupyter(path)
    assert not submission.ok and says in submission.message


# --- the released checker diagnoses as the grader does, without the models -------------------


@pytest.fixture(scope="module")
def released():
    """The handout's own checker (assignments/checker), as a student runs it."""
    from assignments.checker import judge as released_judge
    from assignments.checker import selfcheck as released_selfcheck

    return released_selfcheck, released_judge


def test_the_released_checker_has_no_models_and_its_checks_carry_signatures(released):
    released_selfcheck, released_judge = released
    assert released_judge._models() is None
    assert not hasattr(released_judge, "simulate") and not hasattr(released_judge, "finite_differences")
    shipped = released_selfcheck.read_public_checks(handout.ASSIGNMENTS / handout.PUBLIC_CHECKS)
    gradient_checks = [c for c in shipped if c["probe"] in ("graph", "chain")]
    assert gradient_checks and all(c["signatures"]["models"] for c in gradient_checks)


@pytest.fixture(scope="module")
def grader_catalogue():
    return checks.compile_checks(SEED)


def _said(verdict):
    """What a verdict tells the student, without the line numbers of where code raised."""
    def clean(text):
        return re.sub(r" \(line \d+ of [^)]*\)", "", text)

    return verdict.passed, verdict.diagnoses, clean(verdict.message), clean(verdict.detail)


@pytest.mark.parametrize("name", MUTANTS)
def test_the_self_check_says_what_the_grader_says_for_every_mutant(name, released, grader_catalogue, tmp_path):
    """Same messages, details and diagnoses on every public check: the self-check matches
    against shipped signatures what the grader computes from the models, on all checks."""
    released_selfcheck, _ = released
    folder = write_mutant(MUTANTS[name], tmp_path / name)
    grader = {check["id"]: verdict for check, verdict in inprocess.run_directory(folder, grader_catalogue)}
    public = released_selfcheck.read_public_checks(handout.ASSIGNMENTS / handout.PUBLIC_CHECKS)
    mine = released_selfcheck.verdicts(released_selfcheck.load(folder / "submission.py"), public)
    for check, verdict in zip(public, mine):
        if MUTANTS[name].unordered:  # the numbers follow the set's order, which differs from load to load
            if check["id"] not in MUTANTS[name].may_fail:
                assert _said(verdict)[:2] == _said(grader[check["id"]])[:2], check["id"]
            continue
        assert _said(verdict) == _said(grader[check["id"]]), check["id"]


def test_a_failed_zero_point_check_is_shown_but_does_not_fail_the_run(tmp_path, checks_file, capsys):
    """The tutorial's recursive sort fails only the deep chain, which is extra credit."""
    folder = write_mutant(VARIANTS["recursive-topological-sort"], tmp_path / "recursive")
    code, report, _ = check(folder / "submission.py", checks_file, capsys)
    assert rows(report)["deep"] == "failed (extra credit)" and "recursion-depth" in report
    assert "worth 0 points: its failure does not fail the run" in report
    assert code == 0


def test_a_failed_check_with_points_fails_the_run(tmp_path, public_checks, checks_file, capsys):
    folder = write(tmp_path, public_checks, solved=True, patch=lambda files: files.update(
        {"engine.py": files["engine.py"].replace("self.grad += (out.data > 0) * out.grad",
                                                 "self.grad += out.data * out.grad")}))
    code, report, _ = check(folder, checks_file, capsys)
    for name in [name for name in sys.modules if name.split(".")[0] == "submission"]:
        del sys.modules[name]  # the solved package it loaded is not the next test's
    assert code == 1 and rows(report)["relu"] == "failed"
    assert "relu()'s _backward multiplies out.grad by out.data" in report


def test_training_is_shown_as_an_outcome_not_a_diagnosis(tmp_path, public_checks, checks_file, capsys):
    """#14 review 7: training is what happened, not an idea the code gets wrong."""
    folder = write_mutant(MUTANTS["add-assigns-grad"], tmp_path / "assigns")
    code, report, _ = check(folder / "submission.py", checks_file, capsys)
    assert "(outcome: training)" in report and "(diagnosis: training)" not in report


@pytest.mark.parametrize("old, new, diagnosis", [
    # mul records only (self,): the grader's hidden checks name nothing for it
    ('out = Value(self.data * other.data, (self, other), "*")', 'out = Value(self.data * other.data, (self,), "*")',
     "graph-edge-missing"),
    # relu gates on the upstream gradient: the grader names nothing either
    ("self.grad += (out.data > 0) * out.grad", "self.grad += (out.grad > 0) * out.grad", "relu-local-grad"),
])
def test_a_diagnosis_from_the_public_checks_alone_is_hedged(tmp_path, public_checks, checks_file, capsys,
                                                            monkeypatch, old, new, diagnosis):
    """The reviewer's inputs: the self-check names a model the graded checks later drop, so it
    says it is guessing from the public checks; the grader's own words are untouched."""
    monkeypatch.setenv("COLUMNS", "2000")  # one line per hint, so the diagnosis is not wrapped

    def patch(files):
        assert old in files["engine.py"]
        files["engine.py"] = files["engine.py"].replace(old, new)

    code, report, _ = check(write(tmp_path, public_checks, True, patch), checks_file, capsys)
    assert code == selfcheck.EXIT_FAILED
    assert f"(diagnosis: {diagnosis}; {selfcheck.PUBLIC_ONLY})" in report, report
    assert "(diagnosis: training" not in report and "(outcome: training)" in report


def test_a_diagnosis_no_model_names_is_not_hedged(public_checks):
    check = next(c for c in public_checks if c.get("signatures"))
    from autograder.judge import Verdict
    said = selfcheck.explain(check, Verdict(0.0, "wrong", "", ["no-such-model-diagnosis"]))
    assert said.endswith("(diagnosis: no-such-model-diagnosis)")
    said = selfcheck.explain(check, Verdict(0.0, "wrong", "", ["training"]))
    assert selfcheck.PUBLIC_ONLY not in said
