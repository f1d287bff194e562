"""A batch end to end: honest and hostile submissions graded together. Every row exists, the
batch completes, and no trick scores more than the honest part of the submission behind it."""
import csv
import json
import os
import sys
import time
from pathlib import Path

import pytest

from autograder import cli, examples, grade, handout, report
from autograder.load import UsageError

from conftest import ASSIGN_INSTEAD_OF_ADD, FAST, in_backward, read_json, write_submission

LIAR = '''
class Liar(float):
    """A float that claims to equal anything."""
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    __hash__ = float.__hash__

'''

MOCK_VALUE = '''
class Anything:
    """Equal to everything, and every operation gives it back."""
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __float__(self): return 0.0
    def __getattr__(self, name): return self
    def __call__(self, *args, **kwargs): return self
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __call__
    __truediv__ = __rtruediv__ = __pow__ = __neg__ = __call__
    __hash__ = object.__hash__

class Value(Anything):
    def __init__(self, data, _children=()):
        self.data, self.grad, self._prev, self._backward = Anything(), Anything(), (), lambda: None
    def backward(self):
        pass
    def relu(self):
        return self
    def __repr__(self):
        return "Value(data=5.0, grad=0.0)"
'''


def forge(out):
    """Top-level code that writes full-marks results where a grader might read them."""
    full = {"score": 100, "tests": [], "extra_data": {"submission": "forger", "status": "graded"}}
    targets = ["results.json", "../results/results.json", "/autograder/results/results.json",
               str(out / "forger" / "results.json"), str(out / "reference" / "results.json"),
               str(out / "grades.csv")]
    return f"""
import json, os
for target in {targets!r}:
    try:
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        with open(target, "w") as stream:
            json.dump({full!r}, stream)
    except OSError:
        pass
"""


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """One batch holding every kind of submission, graded once for the whole module."""
    root = tmp_path_factory.mktemp("batch")
    subs, out = root / "submissions", root / "OUT"
    examples.write_examples(subs)  # reference/, handout/, the buggy examples, a notebook
    write = lambda name, *patches, **options: write_submission(subs, name, *patches, **options)
    write("assign-bug", ASSIGN_INSTEAD_OF_ADD)
    liar = ("self.grad = out.grad\n            other.grad = out.grad",
            "self.grad = Liar(out.grad)\n            other.grad = Liar(out.grad)")
    write("liar-grad", ASSIGN_INSTEAD_OF_ADD, liar, before=LIAR)
    (subs / "mock-value.py").write_text(MOCK_VALUE)
    write("exit-at-import", after="\nimport os\nos._exit(0)\n")
    write("backward-missing", in_backward("raise NotImplementedError('exercise backward')"))
    write("hang-in-backward", in_backward("while True: pass"))
    write("exit-in-backward", in_backward("import os; os._exit(0)"))
    write("forger", ASSIGN_INSTEAD_OF_ADD, after=forge(out))
    write("notebook-assign-bug", ASSIGN_INSTEAD_OF_ADD, before="%matplotlib inline\n!pip install x\n",
          suffix=".ipynb")
    (subs / "corrupt.ipynb").write_text('{"cells": [')
    # The handout's own notebook, untouched and solved: cells attach methods one at a time.
    handout_notebook = examples.package_folder("assignments") / handout.NOTEBOOK
    (subs / "handout-notebook.ipynb").write_text(handout_notebook.read_text())
    (subs / "solved-notebook.ipynb").write_text(handout.handout_files(solved=True)[handout.NOTEBOOK])
    (subs / "value-only.py").write_text(examples.reference_sources()["engine.py"])
    (subs / "no-value.py").write_text("x = 1\n")
    result = grade.grade([subs], out=out, jobs=2, seed=7, limits=FAST)
    return result, out, {row["id"]: row for row in result.rows}


def test_every_submission_gets_a_row_and_a_results_file(batch):
    result, out, rows = batch
    with open(out / report.GRADEBOOK) as stream:
        table = list(csv.DictReader(stream))
    assert [row["submission"] for row in table] == sorted(rows)
    assert len(rows) == 21
    for row in table:
        assert row["status"] in report.STATUSES and row["isolation"] == result.isolation
        results = read_json(out / row["submission"] / report.RESULTS)
        assert results["score"] == float(row["score"]) == sum(t["score"] for t in results["tests"])
        assert (out / row["submission"] / report.FEEDBACK).exists()


def test_reference_gets_full_marks(batch):
    _, _, rows = batch
    assert rows["reference"]["score"] == rows["reference"]["max_score"] == 100
    assert rows["reference"]["status"] == "graded"


def test_notebook_full_of_magics_and_plots_gets_full_marks(batch):
    assert batch[2]["student-notebook"]["score"] == 100


def test_handout_notebook_untouched_and_solved(batch):
    """The handout's notebook defines Value's methods cell by cell; the untouched one runs
    past its unfinished cells (skipped, as Jupyter does) and scores what the package does."""
    _, out, rows = batch
    assert rows["solved-notebook"]["score"] == 100
    assert rows["handout-notebook"]["status"] == "graded"
    assert rows["handout-notebook"]["score"] == rows["handout"]["score"]
    assert "NotImplementedError" in (out / "handout-notebook" / report.FEEDBACK).read_text()


def test_missing_names_are_named(batch):
    _, out, rows = batch
    assert rows["value-only"]["status"] == "graded"
    assert rows["value-only"]["message"] == "the submission does not define Module, Neuron, Layer, MLP"
    nn = [t for t in by_check(out, "value-only").values() if t["extra_data"]["exercise"] == "nn"]
    assert nn and all(t["status"] == "failed" and "load-error" in t["extra_data"]["diagnoses"] for t in nn)
    assert 0 < rows["value-only"]["score"] < 100
    assert rows["no-value"]["status"] == "load-error" and "Value" in rows["no-value"]["message"]


def test_untouched_handout_gets_nothing_for_the_todos_and_says_not_implemented(batch):
    _, out, rows = batch
    results = read_json(out / "handout" / report.RESULTS)
    failed = [t for t in results["tests"] if t["status"] == "failed"]
    assert failed and rows["handout"]["score"] < 40
    for test in failed:
        assert test["score"] == 0
    # Every check the TODOs touch says so; those passing need only the given code.
    todo_exercises = {"add", "mul", "pow", "relu", "backward", "sub-div"}
    for test in results["tests"]:
        if test["extra_data"]["exercise"] in todo_exercises:
            assert test["status"] == "failed" and "not-implemented" in test["extra_data"]["diagnoses"], test["name"]
    assert any(t["status"] == "passed" for t in results["tests"] if t["extra_data"]["exercise"] == "value")


def by_check(out, name):
    return {t["extra_data"]["check"]: t for t in read_json(out / name / report.RESULTS)["tests"]}


def test_assigning_instead_of_adding_loses_the_accumulation_check(batch):
    _, out, rows = batch
    tests = by_check(out, "assign-bug")
    assert tests["add-same-node"]["status"] == "failed"
    assert "accumulate-grad" in tests["add-same-node"]["extra_data"]["diagnoses"]
    assert tests["add-step"]["status"] == "passed"  # a single use of each input is still right
    assert rows["assign-bug"]["score"] < 100
    assert rows["notebook-assign-bug"]["score"] == rows["assign-bug"]["score"]


def test_always_equal_grads_score_no_more_than_the_honest_bug(batch):
    rows = batch[2]
    assert rows["liar-grad"]["score"] <= rows["assign-bug"]["score"]


def test_mock_value_scores_nothing(batch):
    assert batch[2]["mock-value"]["score"] == 0


def test_exit_at_import_is_a_crashed_row(batch):
    row = batch[2]["exit-at-import"]
    assert (row["status"], row["score"]) == ("crashed", 0)
    assert "exited with status 0" in row["message"]


def test_hang_in_backward_times_out_there_and_scores_no_more_than_a_missing_backward(batch):
    _, out, rows = batch
    assert rows["hang-in-backward"]["score"] <= rows["backward-missing"]["score"]
    messages = [t["output"] for t in by_check(out, "hang-in-backward").values()]
    assert any(m.startswith("timed out after 2 s in backward()") for m in messages)


def test_exit_in_backward_fails_only_the_checks_that_call_backward(batch):
    _, out, rows = batch
    assert rows["exit-in-backward"]["score"] == rows["backward-missing"]["score"]
    assert rows["exit-in-backward"]["status"] == "graded"
    messages = [t["output"] for t in by_check(out, "exit-in-backward").values()]
    assert any(m.startswith("the worker exited with status 0 during backward()") for m in messages)


def test_hang_at_import_is_a_timeout_row(tmp_path, level):
    from autograder.load import load
    from autograder.sandbox import Limits, Sandbox

    # Swallows the interruption that stops a long demo, so only the hard time limit is left.
    stubborn = "\nwhile True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass\n"
    path = write_submission(tmp_path, "stuck", after=stubborn)
    with Sandbox(level, Limits(top_level_seconds=0.2, load_timeout=1.0)) as sandbox:
        record = grade.grade_submission(load(path), grade.compile_checks(7), sandbox)
    assert (record["status"], record["score"]) == ("timeout", 0)
    assert record["message"] == "timed out after 1 s while running the submission's top-level code"


def test_forged_results_do_not_count(batch):
    _, out, rows = batch
    assert rows["forger"]["score"] == rows["assign-bug"]["score"]
    assert read_json(out / "forger" / report.RESULTS)["score"] == rows["assign-bug"]["score"]
    assert read_json(out / "reference" / report.RESULTS)["extra_data"]["submission"] == "reference"
    with open(out / report.GRADEBOOK) as stream:
        assert {row["submission"]: row["score"] for row in csv.DictReader(stream)}["forger"] == str(
            report.points(rows["assign-bug"]["score"]))


def test_syntax_error_and_corrupt_notebook_get_rows(batch):
    rows = batch[2]
    assert rows["syntax-error"]["status"] == "load-error" and "syntax-error.py:" in rows["syntax-error"]["message"]
    assert rows["corrupt"]["status"] == "load-error" and "not" in rows["corrupt"]["message"]
    assert rows["corrupt"]["score"] == rows["syntax-error"]["score"] == 0


def test_results_json_has_gradescope_shape_and_visibility(batch):
    _, out, _ = batch
    results = read_json(out / "assign-bug" / report.RESULTS)
    assert {"score", "execution_time", "output", "visibility", "stdout_visibility", "tests", "extra_data"} <= set(results)
    assert {"seed", "isolation", "checks_hash", "timing"} <= set(results["extra_data"])
    visibilities = {t["visibility"] for t in results["tests"]}
    assert visibilities <= {"visible", "hidden", "after_due_date"} and "hidden" in visibilities
    for test in results["tests"]:
        assert {"name", "number", "score", "max_score", "status", "output", "visibility", "extra_data"} <= set(test)
        assert test["status"] in ("passed", "failed")
        # A failed public gradient check keeps the judge's numbers (its picture's); a hidden one never.
        extra = {"check", "diagnoses", "exercise"} | ({"observation"} if "observation" in test["extra_data"] else set())
        if "carried" in test["extra_data"]:  # passed by error carried forward: which mistakes carry it
            extra.add("carried")
            assert test["status"] == "passed" and set(test["extra_data"]["carried"]) == {"models", "exercises", "diagnoses"}
        assert set(test["extra_data"]) == extra
        if "observation" in test["extra_data"]:
            assert test["visibility"] == "visible" and test["status"] == "failed"
            assert set(test["extra_data"]["observation"]) == {"data", "grad", "expected_grad", "wrong"}
    assert any("observation" in t["extra_data"] for t in results["tests"])


def test_hidden_checks_never_show_their_inputs(batch):
    """A failed hidden check shows its message only: no detail after it in results.json,
    and the random expression it was built from appears nowhere a student can read."""
    from autograder import probes

    _, out, _ = batch
    compiled = {c["id"]: c for c in grade.catalogue.compile_checks(7)}
    secret = {check_id: probes.describe(c["params"]["program"]) for check_id, c in compiled.items()
              if c["visibility"] != "public" and "random" in check_id}
    assert secret, "the catalogue has no hidden random checks to test with"
    seen_failures = 0
    for name in ("assign-bug", "topo-not-reversed", "mul-forgets-upstream", "hang-in-backward"):
        feedback = (out / name / report.FEEDBACK).read_text()
        assert not any(expression in feedback for expression in secret.values()), name
        for check_id, test in by_check(out, name).items():
            if test["visibility"] != "visible" and test["status"] == "failed":
                seen_failures += 1
                assert "\n" not in test["output"], (name, check_id)
                assert not any(expression in test["output"] for expression in secret.values())
    assert seen_failures


def test_rows_carry_diagnoses_of_the_bugs(batch):
    rows = batch[2]
    assert "topo-order" in rows["topo-not-reversed"]["diagnoses"]
    assert "chain-rule" in rows["mul-forgets-upstream"]["diagnoses"]


# --- resuming, seeds, atomic writes -------------------------------------------------------


@pytest.fixture
def small_batch(tmp_path):
    subs = tmp_path / "subs"
    write_submission(subs, "alice")
    write_submission(subs, "bob", ASSIGN_INSTEAD_OF_ADD)
    return subs, tmp_path / "OUT"


def test_rerun_skips_what_is_graded_and_regrades_what_changed(small_batch):
    subs, out = small_batch
    first = grade.grade([subs], out=out, jobs=2, limits=FAST)
    assert (first.graded, first.skipped) == (2, 0)
    again = grade.grade([subs], out=out, jobs=2, limits=FAST)
    assert (again.graded, again.skipped) == (0, 2) and again.seed == first.seed and again.seed_reused
    assert [r["score"] for r in again.rows] == [r["score"] for r in first.rows]
    write_submission(subs, "bob")  # bob fixes his bug
    (out / "alice" / report.RESULTS).unlink()  # as if the batch had been killed before alice finished
    third = grade.grade([subs], out=out, jobs=2, limits=FAST)
    assert (third.graded, third.skipped) == (2, 0)
    assert [r["score"] for r in third.rows] == [100, 100]
    forced = grade.grade([subs], out=out, jobs=2, force=True, limits=FAST)
    assert (forced.graded, forced.skipped) == (2, 0)


def test_another_seed_regrades(small_batch):
    subs, out = small_batch
    first = grade.grade([subs], out=out, seed=1, limits=FAST)
    second = grade.grade([subs], out=out, seed=2, limits=FAST)
    assert second.graded == 2 and read_json(out / "alice" / report.RESULTS)["extra_data"]["seed"] == 2
    assert first.rows[0]["score"] == second.rows[0]["score"] == 100


def test_writes_are_atomic(tmp_path, monkeypatch):
    target = tmp_path / "results.json"
    report.write_atomic(target, "old")

    def failing_replace(source, destination):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        report.write_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temporary file left


# --- the command line ---------------------------------------------------------------------


def test_grade_with_no_path_grades_the_bundled_examples(tmp_path, capsys):
    assert cli.main(["grade", "-o", str(tmp_path / "OUT")]) == 0
    printed = capsys.readouterr().out
    assert "reference" in printed and "100 / 100" in printed
    with open(tmp_path / "OUT" / report.GRADEBOOK) as stream:
        scores = {row["submission"]: float(row["score"]) for row in csv.DictReader(stream)}
    assert scores["reference"] == scores["student-notebook"] == 100
    assert scores["add-assigns-grad"] < 100 and scores["syntax-error"] == 0


def test_duplicate_ids_exit_2_before_grading(tmp_path, capsys):
    subs = tmp_path / "subs"
    write_submission(subs, "alice")
    write_submission(subs, "alice", suffix=".ipynb")
    assert cli.main(["grade", str(subs), "-o", str(tmp_path / "OUT")]) == 2
    assert "two submissions have the id 'alice'" in capsys.readouterr().err
    assert not (tmp_path / "OUT" / "alice").exists()


def test_missing_path_and_bad_jobs_exit_2(tmp_path):
    assert cli.main(["grade", str(tmp_path / "nowhere"), "-o", str(tmp_path / "OUT")]) == 2
    write_submission(tmp_path / "subs", "alice")
    assert cli.main(["grade", str(tmp_path / "subs"), "-j", "0", "-o", str(tmp_path / "OUT")]) == 2


def test_config_reweighs_checks_and_a_bad_one_exits_2(tmp_path, capsys):
    import re

    from autograder.checks import DEFAULT_CONFIG, load_config

    write_submission(tmp_path / "subs", "alice")
    default = load_config()
    config = tmp_path / "course.toml"
    config.write_text(re.sub(r"(?m)^(value-repr = \{ points = )\d+", r"\g<1>50", DEFAULT_CONFIG.read_text()))
    batch = grade.grade([tmp_path / "subs"], out=tmp_path / "OUT", config=config, limits=FAST)
    expected = sum(c["points"] for c in default.values()) - default["value-repr"]["points"] + 50
    assert batch.rows[0]["score"] == batch.rows[0]["max_score"] == expected
    config.write_text("[checks]\nvalue-repr = { points = 2, visibility = 'secret' }\n")
    assert cli.main(["grade", str(tmp_path / "subs"), "-o", str(tmp_path / "OUT"), "--config", str(config)]) == 2
    assert "course.toml" in capsys.readouterr().err


FAULTS = {
    # step -> (module, attribute, the id the call is about)
    "load": (grade.loader, "load", lambda path, id, *rest, **options: id),
    "judging": (grade, "_judge", lambda check, reply, text, submission, *rest: submission.id),
    "grading": (grade, "grade_submission", lambda submission, *rest, **options: submission.id),
    "writing": (report, "write_submission", lambda out, record: record["id"] if record["status"] != "grader-fault" else None),
}


@pytest.fixture
def four_students(tmp_path):
    subs = tmp_path / "subs"
    for name, patches in (("alice", ()), ("bob", (ASSIGN_INSTEAD_OF_ADD,)), ("carol", ()),
                          ("dave", (ASSIGN_INSTEAD_OF_ADD,))):
        write_submission(subs, name, *patches)
    return subs, tmp_path / "OUT"


@pytest.fixture(scope="module")
def bug_alone(tmp_path_factory):
    """The score of the one-bug submission graded alone with seed 3, no fault anywhere."""
    folder = tmp_path_factory.mktemp("alone")
    path = write_submission(folder / "subs", "bob", ASSIGN_INSTEAD_OF_ADD)
    return grade.grade([path], out=folder / "OUT", seed=3, limits=FAST).rows[0]["score"]


@pytest.mark.parametrize("step", list(FAULTS))
def test_a_fault_of_the_grader_on_one_submission_is_its_row_and_the_batch_goes_on(four_students, monkeypatch, step,
                                                                                  bug_alone):
    from io import StringIO

    from rich.console import Console

    subs, out = four_students
    module, name, about = FAULTS[step]
    real = getattr(module, name)

    def faulty(*args, **kwargs):
        if about(*args, **kwargs) == "carol":
            raise RuntimeError(f"a bug in the grader while {step} \ud800\x1b[2J")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, faulty)
    console = Console(file=StringIO(), width=200, color_system=None)
    assert grade.command([subs], console=console, out=out, jobs=2, seed=3, limits=FAST) == 3
    with open(out / report.GRADEBOOK) as stream:
        rows = {row["submission"]: row for row in csv.DictReader(stream)}
    assert {id: (row["status"], float(row["score"])) for id, row in rows.items() if id != "carol"} == \
        {"alice": ("graded", 100), "bob": ("graded", bug_alone), "dave": ("graded", bug_alone)}
    assert (rows["carol"]["status"], float(rows["carol"]["score"])) == ("grader-fault", 0)
    for id in ("alice", "bob", "dave"):
        assert read_json(out / id / report.RESULTS)["extra_data"]["status"] == "graded"
    carol = read_json(out / "carol" / report.RESULTS)  # written, valid for Gradescope, every check 0
    assert carol["extra_data"]["status"] == "grader-fault" and carol["score"] == 0
    assert len(carol["tests"]) == len(grade.compile_checks(3)) and all(t["score"] == 0 for t in carol["tests"])
    assert "contact the course staff" in carol["output"] and "a bug" not in carol["output"]  # the reason is staff's
    assert f"RuntimeError: a bug in the grader while {step} \ufffd?[2J" in carol["extra_data"]["fault"]
    printed = console.file.getvalue()
    assert "grader-fault" in printed and "the grader itself failed on 1 submission " in printed
    assert "\x1b" not in printed

    monkeypatch.setattr(module, name, real)  # the bug fixed: a rerun grades carol, and only carol
    again = grade.grade([subs], out=out, jobs=2, seed=3, limits=FAST)  # the same command again
    assert (again.graded, again.skipped) == (1, 3)
    assert {r["id"]: r["score"] for r in again.rows}["carol"] == 100


def test_a_fault_outside_any_submission_exits_1(four_students, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the grader")

    subs, out = four_students
    monkeypatch.setattr(report, "write_gradebook", broken)
    assert cli.main(["grade", str(subs), "-o", str(out)]) == 1
    assert "a bug in the grader" in capsys.readouterr().err


def test_summary_counts_in_words():
    from io import StringIO

    from rich.console import Console

    row = {"id": "alice", "score": 76, "max_score": 100, "status": "graded", "isolation": "rlimits", "message": "",
           "fault": "", "by_check": {}, "lost": ["add-same-node"], "diagnoses": ["accumulate-grad"]}
    batch = grade.Batch(Path("OUT"), 1, False, "rlimits", "", [], rows=[row], graded=1)
    console = Console(file=StringIO(), width=200, color_system=None)
    grade.print_summary(batch, console)
    printed = console.file.getvalue()
    assert "1 submission in OUT" in printed and "1 check lost points" in printed


def test_long_demo_at_top_level_is_stopped_and_the_rest_graded(tmp_path, level):
    """A demo that trains for minutes is stopped like an interrupted cell: a notebook goes
    on with its next cells, a .py file keeps what it had defined."""
    from autograder.load import load
    from autograder.sandbox import Limits, Sandbox

    endless_demo = "import time\nwhile True:\n    time.sleep(0.01)\n"
    notebook = write_submission(tmp_path, "slow-notebook", after=endless_demo, suffix=".ipynb")
    script = write_submission(tmp_path, "slow-script", after="\n" + endless_demo)
    with Sandbox(level, Limits(top_level_seconds=0.5)) as sandbox:
        for path in (notebook, script):
            record = grade.grade_submission(load(path), grade.compile_checks(7), sandbox)
            assert (record["status"], record["score"]) == ("graded", 100), record["message"]
            assert "ran for more than 0.5 s and was stopped" in record["notes"][0]


@pytest.mark.parametrize("phase", ["", "hinge_loss() of the model's scores", "a phase the submission wrote"])
def test_a_hidden_checks_failure_in_an_unnamed_phase_reads_naturally(phase):
    """It once read "IndexError while the check" (the fallback of a phase hidden checks may
    not name)."""
    from autograder.worker import Reply, fault

    compiled = grade.compile_checks(3)
    check = next(c for c in compiled if c["visibility"] != "public" and c.get("probe") == "graph")
    raised = Reply(False, error={"error": "IndexError", "message": "list index out of range", "where": None},
                   phase=phase)
    message = grade._judge(check, raised, None, None, [], None)["message"]
    assert "IndexError while running the check" in message, message
    hung = grade._judge(check, fault("timeout", "timed out after 2 s", phase), None, None, [], None)["message"]
    assert hung == "timed out after 2 s while running the check" or phase == "", hung


MACHINE_FAILS = "\n# the machine fails to start this submission's worker\n"


@pytest.mark.parametrize("how", ["fork fails", "sandbox set-up fails"])
def test_a_worker_the_machine_cannot_start_is_a_grader_fault_not_the_students_zero(tmp_path, monkeypatch, how):
    """A worker that cannot be started (fork's EAGAIN, bubblewrap's set-up failing) is the
    machine's fault: the row is a grader-fault (exit 3, a rerun grades it again), not a
    'crashed' 0 that a rerun keeps and the Canvas export uploads."""
    import errno
    import io

    from rich.console import Console

    from autograder import worker

    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "alice.py").write_text(examples.one_module())
    (subs / "carol.py").write_text(examples.one_module() + MACHINE_FAILS)
    real_init, real_start = worker.Worker.__init__, worker.Worker.start

    def unlucky(folder):
        return any(MACHINE_FAILS in path.read_text() for path in Path(folder).iterdir() if path.is_file())

    def init(self, sandbox, folder):
        if how == "fork fails" and unlucky(folder):
            raise OSError(errno.EAGAIN, "Resource temporarily unavailable")
        self.unlucky = unlucky(folder)
        real_init(self, sandbox, folder)

    def start(self, *args, **kwargs):
        reply = real_start(self, *args, **kwargs)
        return worker.fault("not-started", "the worker could not be started (sandbox set-up failed)") \
            if self.unlucky else reply

    monkeypatch.setattr(worker.Worker, "__init__", init)
    monkeypatch.setattr(worker.Worker, "start", start)
    out = tmp_path / "OUT"
    console = Console(file=io.StringIO(), width=200, color_system=None)
    assert grade.command([subs], console=console, out=out, jobs=2, seed=3, limits=FAST) == 3
    rows = {row["id"]: row for row in grade.grade([subs], out=out, seed=3, limits=FAST).rows}
    assert rows["alice"]["status"] == "graded" and rows["alice"]["score"] == 100
    assert rows["carol"]["status"] == "grader-fault"
    assert "could not be started" in read_json(out / "carol" / report.RESULTS)["extra_data"]["fault"]
    monkeypatch.setattr(worker.Worker, "__init__", real_init)  # the machine recovers: a rerun grades it
    monkeypatch.setattr(worker.Worker, "start", real_start)
    again = grade.grade([subs], out=out, seed=3, limits=FAST)
    assert again.graded == 1 and {row["id"]: row["score"] for row in again.rows} == {"alice": 100, "carol": 100}


def test_sigterm_stops_the_batch_as_ctrl_c_does_and_leaves_no_copy_of_a_students_code(tmp_path):
    """`timeout`, `kill` and a cancelled CI job send SIGTERM: the grader says so and exits with
    143, its workers end, and its temporary folders (copies of submissions) are removed."""
    import shutil
    import signal
    import subprocess
    import tempfile

    # A TMPDIR every user can enter (tmp_path's parents are private), else the grader puts
    # its sandbox elsewhere (sandbox.reachable_temporary_folder) and this test sees nothing.
    subs, scratch = tmp_path / "subs", Path(tempfile.mkdtemp(prefix="autodiff101-test-", dir="/tmp"))
    scratch.chmod(0o755)
    write_submission(subs, "honest")
    write_submission(subs, "sleeper", after="import time\ntime.sleep(600)\n")
    grader = subprocess.Popen([sys.executable, "-m", "autograder.cli", "grade", str(subs), "-o", str(tmp_path / "out"),
                               "-j", "2", "--seed", "3"], env=dict(os.environ, TMPDIR=str(scratch)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120  # wide: starting workers on a busy 2-core machine
        while not list(scratch.glob("*/submission-*")) and time.monotonic() < deadline and grader.poll() is None:
            time.sleep(0.05)
        assert list(scratch.glob("*/submission-*")), "no worker started"
        grader.send_signal(signal.SIGTERM)
        _, stderr = grader.communicate(timeout=120)
        assert grader.returncode == 143 and "stopped (SIGTERM)" in stderr, stderr
        assert list(scratch.iterdir()) == []
    finally:
        grader.kill()
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.mark.parametrize("jobs", [1, 2])
def test_no_more_workers_run_at_once_than_jobs_while_more_submissions_are_in_flight(tmp_path, monkeypatch, jobs):
    """-j N: N submissions' workers at a time. Twice as many submissions are in flight (one
    diagnosed and written while another's worker runs), but a session starts its worker only
    when one of the N slots is free, and gives the slot back once its worker is closed."""
    import threading

    lock, running, in_flight, most = threading.Lock(), set(), set(), {"running": 0, "in flight": 0}

    def count(name, group, key, add):
        with lock:
            (group.add if add else group.discard)(key)
            most[name] = max(most[name], len(group))

    class CountedSession(grade.Session):
        def __init__(self, sandbox, submission, *args, **kwargs):
            super().__init__(sandbox, submission, *args, **kwargs)
            count("running", running, submission.id, True)

        def close(self):
            super().close()
            count("running", running, self.submission.id, False)

    grade_submission = grade.grade_submission

    def counted_grade_submission(submission, *args, **kwargs):
        count("in flight", in_flight, submission.id, True)
        try:
            return grade_submission(submission, *args, **kwargs)
        finally:
            count("in flight", in_flight, submission.id, False)

    monkeypatch.setattr(grade, "Session", CountedSession)
    monkeypatch.setattr(grade, "grade_submission", counted_grade_submission)
    subs = tmp_path / "subs"
    for index in range(6):
        write_submission(subs, f"student{index}", *((ASSIGN_INSTEAD_OF_ADD,) if index % 2 else ()))
    batch = grade.grade([subs], out=tmp_path / "OUT", jobs=jobs, seed=3, limits=FAST)
    assert [row["status"] for row in batch.rows] == ["graded"] * 6
    assert 1 <= most["running"] <= jobs < most["in flight"] <= 2 * jobs


def test_the_models_predictions_are_read_only_when_a_submission_fails_and_then_diagnose_as_before(tmp_path, level,
                                                                                                 monkeypatch):
    """Grading reads the checks without the models' predictions (nearly all of the stored
    text); a correct submission never asks for them, and a failing one is diagnosed from
    them exactly as from the checks that carry them inline."""
    from autograder import checkcache, misconceptions
    from autograder.load import load
    from autograder.sandbox import Sandbox

    from autograder import checks

    full = checkcache.compiled_checks(7, None, checks.load_config(None))  # as grading keys them
    grade.checks_text_and_checks(7)  # compiled first if need be (the models then compute them)
    for name, empty in (("_STORED", {}), ("_STORED_TEXTS", {}), ("_STORED_PARSED", set()), ("_SIGNATURES", {})):
        monkeypatch.setattr(misconceptions, name, empty)
    identity, light = grade.checks_text_and_checks(7)
    assert grade.checks_text_and_checks(7)[0] == identity  # read twice, kept once
    text = checkcache.compiled_text(7, None, checks.load_config(None))  # the stored text, with the predictions
    assert not any("signatures" in check for check in light) and any("signatures" in check for check in full)
    assert list(misconceptions._STORED_TEXTS.values()) == [text]
    correct = write_submission(tmp_path / "a", "correct")
    mistaken = write_submission(tmp_path / "b", "mistaken", ASSIGN_INSTEAD_OF_ADD)
    with Sandbox(level, FAST) as sandbox:
        assert grade.grade_submission(load(correct), light, sandbox)["score"] == 100
        assert list(misconceptions._STORED_TEXTS.values()) == [text] and misconceptions._STORED == {}  # never parsed
        read_lazily = grade.grade_submission(load(mistaken), light, sandbox)
        assert misconceptions._STORED_TEXTS == {} and misconceptions._STORED
        grade.checks_text_and_checks(7)
        assert misconceptions._STORED_TEXTS == {}  # parsed once: not kept again
        inline = grade.grade_submission(load(mistaken), full, sandbox)
    assert read_lazily["score"] < 100 and any(test["diagnoses"] for test in read_lazily["tests"])
    assert [(t["score"], t["message"], t["diagnoses"]) for t in read_lazily["tests"]] == \
        [(t["score"], t["message"], t["diagnoses"]) for t in inline["tests"]]
