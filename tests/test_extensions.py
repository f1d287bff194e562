"""The extension exercises (tanh, exp, log, moons): chosen per course, graded like the core.

Every extension mutant fails exactly its checks with its diagnoses; the reference scores 100
with every extension; a course that chooses none compiles exactly the checks it compiled
before the extensions existed."""
import hashlib
import io
import json
import math

import pytest

from autograder import checks, inprocess, judge, misconceptions, probes
from mutants import EXTENSION_MUTANTS, EXTENSIONS_CHOSEN, SEED, Submission, extension_module, write
from conftest import CHAIN_RULE_FROM_OP


def every_extension():
    return checks.load_config(exercises=checks.CORE_EXERCISES + EXTENSIONS_CHOSEN)


@pytest.fixture(scope="module")
def compiled():
    return checks.compile_checks(SEED, every_extension())


@pytest.fixture(scope="module")
def graded(compiled, tmp_path_factory):
    cache = {}

    def results(name, submission):
        if name not in cache:
            folder = write(submission, tmp_path_factory.mktemp("extensions") / name)
            cache[name] = inprocess.run_directory(folder, compiled)
        return cache[name]

    return results


def failures(results):
    return {check["id"]: verdict for check, verdict in results if not verdict.passed}


def test_a_course_without_extensions_compiles_exactly_the_checks_it_compiled_before(tmp_path):
    """The default course, one that says `exercises = []`, and one whose checks.toml predates the
    extensions (no exercises key, no extension checks) compile the same core checks. (A hash
    pinned at one commit broke with every deliberate change to the core checks since.)"""
    seed = checks.course_seed()
    default = json.dumps(checks.compile_checks(seed))
    text = checks.DEFAULT_CONFIG.read_text()
    extension_ids = {check.id for check in checks.CHECKS if check.exercise in checks.EXTENSIONS}
    old = "".join(line for line in text.splitlines(True)
                  if not line.strip().startswith("exercises") and line.split(" = ")[0].strip() not in extension_ids)
    (tmp_path / "old.toml").write_text(old)
    (tmp_path / "empty.toml").write_text(old.replace("[course]\n", "[course]\nexercises = []\n", 1))
    for config in (tmp_path / "old.toml", tmp_path / "empty.toml"):
        assert json.dumps(checks.compile_checks(seed, checks.load_config(config))) == default, config.name
    assert {c["exercise"] for c in json.loads(default)} == set(checks.CORE_EXERCISES)


def test_every_extension_keeps_the_total_at_100_and_the_extensions_at_their_declared_points():
    table, plain = every_extension(), checks.load_config(exercises=checks.EXERCISES, scale=False)
    assert math.isclose(sum(entry["points"] for entry in table.values()), 100, abs_tol=1e-6)
    for check in checks.CHECKS:
        if check.exercise in checks.EXTENSIONS:
            assert table[check.id] == plain[check.id]
        else:
            assert math.isclose(table[check.id]["points"], plain[check.id]["points"] * 0.69, abs_tol=1e-6)


def test_the_course_config_chooses_the_exercises(tmp_path):
    config = tmp_path / "course.toml"
    default = checks.DEFAULT_CONFIG.read_text()
    config.write_text(default.replace('# exercises = ["tanh", "exp", "log", "moons"]', 'exercises = ["log"]'))
    table = checks.load_config(config)
    assert {check.exercise for check in checks.CHECKS if check.id in table} == set(checks.CORE_EXERCISES) | {"log"}
    assert math.isclose(sum(entry["points"] for entry in table.values()), 100, abs_tol=1e-6)
    # tanh-through-exp needs exp as well as tanh
    config.write_text(default.replace('# exercises = ["tanh", "exp", "log", "moons"]', 'exercises = ["tanh"]'))
    assert "tanh-step" in checks.load_config(config) and "tanh-through-exp" not in checks.load_config(config)
    config.write_text(default.replace('# exercises = ["tanh", "exp", "log", "moons"]', 'exercises = ["sigmoid"]'))
    with pytest.raises(ValueError, match="sigmoid"):
        checks.load_config(config)


def test_an_instructors_older_config_takes_the_extension_defaults(tmp_path):
    """A copy of checks.toml made before the extensions existed still works, with them too."""
    lines = checks.DEFAULT_CONFIG.read_text().split("# --- extension exercises")[0]
    config = tmp_path / "old.toml"
    config.write_text(lines.replace("[course]\n", '[course]\nexercises = ["moons"]\n'))
    table = checks.load_config(config)
    assert table["moons-hinge"] == {"points": 3, "visibility": "public"}


def test_the_reference_scores_100_with_every_extension(compiled, graded):
    results = graded("reference", Submission("the reference with every extension", source=extension_module()))
    assert not failures(results)
    earned, possible = inprocess.score(results)
    assert math.isclose(earned, 100) and math.isclose(possible, 100)


# tanh composed of other operators, as the lecture builds it: its output's children are nodes
# it made itself, not its input, so its local step runs over that sub-graph.
TANH_DIRECT = ("engine.py", '        t = math.tanh(self.data)\n        out = Value(t, (self,), "tanh")',
               '        return (self * -2).exp().__neg__().__add__(1) / ((self * -2).exp() + 1)\n'
               '        t = 0\n        out = Value(t, (self,), "tanh")')
TANH_THROUGH_EXP = ("engine.py", '        t = math.tanh(self.data)\n        out = Value(t, (self,), "tanh")',
                    '        e = (2 * self).exp()\n        return (e - 1) / (e + 1)\n'
                    '        t = 0\n        out = Value(t, (self,), "tanh")')


@pytest.mark.parametrize("patch", [TANH_THROUGH_EXP, TANH_DIRECT], ids=["(e-1)/(e+1)", "(1-e^-2x)/(1+e^-2x)"])
def test_tanh_composed_of_exp_gets_full_marks(patch, graded):
    """Correct work written through other operators passes the local-step checks: the probe
    runs the gradient back over the nodes the composition built, down to the input."""
    results = graded(f"composed-{patch[2][:20]}", Submission("tanh through exp", source=extension_module([patch])))
    assert not failures(results)
    assert math.isclose(inprocess.score(results)[0], 100)


def test_tanh_composed_of_a_wrong_exp_still_fails_its_step_and_names_exps_mistake(graded):
    """A composition over a wrong exp (its local derivative taken from the input) fails
    tanh's local steps too, and the grader names exp's mistake."""
    wrong_exp = ("engine.py", "self.grad += out.data * out.grad", "self.grad += self.data * out.grad")
    failed = failures(graded("composed-wrong-exp", Submission("tanh through a wrong exp",
                                                              source=extension_module([TANH_THROUGH_EXP, wrong_exp]))))
    assert {"tanh-step", "tanh-negative-step", "exp-step"} <= set(failed)
    assert "exp-local-grad" in failed["exp-step"].diagnoses


def test_a_composed_operator_cut_off_from_its_input_fails_its_step():
    """tanh that wraps exp of a plain number: the right value, no path back to the input, so
    the local step gives the input nothing."""
    from autograder import probes
    ns = {}
    exec(extension_module([("engine.py", '        t = math.tanh(self.data)\n        out = Value(t, (self,), "tanh")',
                            '        e = Value(math.exp(2 * self.data))\n        return (e - 1) / (e + 1)\n'
                            '        t = 0\n        out = Value(t, (self,), "tanh")')]), ns)
    found = probes.graph(ns, checks.expression("a.tanh()", a=0.7), sweep="local", upstream=11.0)
    assert found["grad"][0] == 0.0 and math.isclose(found["data"][1], math.tanh(0.7))


@pytest.mark.parametrize("name", EXTENSION_MUTANTS)
def test_extension_mutant_fails_exactly_its_checks_with_its_diagnoses(name, graded):
    mutant = EXTENSION_MUTANTS[name]
    failed = failures(graded(name, mutant))
    assert set(failed) == mutant.fails
    assert {d for verdict in failed.values() for d in verdict.diagnoses} == mutant.diagnoses


@pytest.mark.parametrize("bug, op, x", [("tanh-from-input", "tanh", 0.7), ("exp-from-input", "exp", -1.3),
                                        ("no-upstream-log", "log", 0.4), ("no-upstream-tanh", "tanh", -0.45),
                                        ("no-upstream-exp", "exp", 1.7)])
def test_the_simulator_reproduces_each_extension_misconception(bug, op, x):
    program = checks.expression(f"a.{op}()", a=x)
    reference = misconceptions.simulate(program, upstream=11.0, sweep="local")[1]
    buggy = misconceptions.simulate(program, bug, upstream=11.0, sweep="local")[1]
    assert not math.isclose(buggy[0], reference[0])
    assert bug in misconceptions.explain(program, buggy, "local", 11.0)


def test_the_extension_models_are_regular_models_that_change_nothing_without_their_operator():
    """They sit in misconceptions.MISCONCEPTIONS, after the core ones; no core check's
    signatures hold them, so a course without extensions gets the same predictions."""
    names = list(misconceptions.MISCONCEPTIONS)
    assert names[-len(misconceptions.EXTENSION_MODELS):] == list(misconceptions.EXTENSION_MODELS)
    for check in checks.compile_checks(checks.course_seed()):
        table = misconceptions.signatures(check)
        assert not table or not set(table["models"]) & set(misconceptions.EXTENSION_MODELS)


@pytest.mark.parametrize("op, model", [("tanh", "tanh-from-input"), ("exp", "exp-from-input"),
                                       ("log", "no-upstream-log"), ("tanh", "no-upstream-tanh"),
                                       ("exp", "no-upstream-exp"), ("tanh", "assign-grad-tanh"),
                                       ("exp", "assign-grad-exp"), ("log", "assign-grad-log")])
def test_each_extension_sentinel_is_verified_to_expose_its_model_in_every_style(op, model):
    for seed in range(20):
        sentinel = checks.extension_sentinel(seed, op)
        found = checks.outcomes(sentinel)
        assert all(found[model, composition, walk] == "differs" for composition, walk in misconceptions.STYLES)
        random_check = next(c for c in checks.CHECKS if c.id == f"{op}-random")  # joined last: its leaf
        program = random_check.concrete_params(seed)["program"]
        assert program[-len(sentinel) - 1] == sentinel[0]


@pytest.mark.parametrize("op, x", [("tanh", -0.45), ("exp", 1.7), ("log", 0.6)])
def test_an_assigned_grad_in_an_extension_operator_is_named_for_that_operator(op, x):
    """`self.grad = ...` in tanh's, exp's or log's _backward: a node that is also used
    elsewhere (here a factor of the result) loses the other contribution, and the model of
    that operator's accumulation mistake is the one that reproduces it."""
    program = checks.expression(f"a.{op}() * a * 2", a=x)
    reference = misconceptions.simulate(program)[1]
    buggy = misconceptions.simulate(program, f"assign-grad-{op}")[1]
    assert not math.isclose(buggy[0], reference[0])
    found = misconceptions.explain(program, buggy)
    assert f"assign-grad-{op}" in found
    assert misconceptions.MISCONCEPTIONS[f"assign-grad-{op}"].diagnoses == ("accumulate-grad",)
    assert f"{op}()" in misconceptions.words(f"assign-grad-{op}")
    assert misconceptions.MISCONCEPTIONS[f"assign-grad-{op}"].exercises == (op,)


def test_an_assigned_grad_mutant_of_each_operator_gets_that_operators_words(graded):
    """The feedback of the same-node check names the operator whose _backward assigns."""
    for op in ("tanh", "exp", "log"):
        failed = failures(graded(f"{op}-assigns-grad", EXTENSION_MUTANTS[f"{op}-assigns-grad"]))
        verdict = failed[f"{op}-same-node"]
        assert "accumulate-grad" in verdict.diagnoses
        assert f"_backward of {op}() assigns (=)" in verdict.message


def test_the_handout_ships_the_extension_models_predictions_and_the_self_check_names_them(tmp_path):
    """A handout with every extension: its public checks carry the extension models in
    their signatures, and the in-process run (the self-check's) names the model from them."""
    from autograder import handout

    public = json.loads(handout.handout_files(chosen="all")["public_checks.json"])
    step = next(check for check in public if check["id"] == "tanh-step")
    assert "tanh-from-input" in step["signatures"]["models"]
    folder = write(EXTENSION_MUTANTS["tanh-derivative-from-input"], tmp_path / "tanh")
    failed = failures(inprocess.run_directory(folder, public))
    assert set(failed) == {"tanh-step", "tanh-same-node", "tanh-through-exp"}
    assert set(failed["tanh-step"].diagnoses) == {"tanh-local-grad"}
    assert misconceptions.MISCONCEPTIONS["tanh-from-input"].words in failed["tanh-step"].message


def test_random_extension_graphs_use_their_operator_and_log_gets_positive_arguments():
    for seed in range(5):
        for op in ("tanh", "exp", "log"):
            check = next(c for c in checks.CHECKS if c.id == f"{op}-random")
            program = check.concrete_params(seed)["program"]
            data = misconceptions.simulate(program)[0]
            assert any(instruction[0] == op for instruction in program)
            assert all(data[instruction[1]] > 0 for instruction in program if instruction[0] == "log")


# --- the handout follows the choice ----------------------------------------------------------

# sha256 of each file of handout_files() as main built it at commit 1b6f7a9, before the
# extensions were merged (the vendored checker/ modules are kit code, which the extensions
# extend, so they are left out, and so are the notebook's embedded copies of them).
DEFAULT_HANDOUT_SHA256 = {
    "README.md": "a450ae73b6b0e88dab0ccddea29b24fcbd6a83097d1f4b876a5f017ef33b8e1a",
    "autodiff101.ipynb": "6fb00c3d3ed4841df3daf09ef8fff07e8d6582696f6796a532b4531cb325438b",
    "check.py": "8d252d1edfc4e49fe6932e2e41a0cf9fad8057337e5010f55ebb37957a31e712",
    "engine.py": "5b4975c520a104cd101c4976120afda88036b10e3607dfeda9a55e24bb69ab69",
    "nn.py": "c721d0ab6f9a5d60fb5ed09b5c4b6bebcf0ab5514cb9cf51a2cc9d368a580fd7",
    "public_checks.json": "59d9f712687c6552c96bc40fce783c03a78101302d623a73a692aa3751669c51",
    "test_handout.py": "f4320933f2acc503aa71cc2d52285c73173ee1cb90d859108c5b6c3a35f926f4",
    "train.py": "bad685ae4a59faa6b062f88aa35592d6fda2823a0b5b5ab6891ee6f4cbf6f428",
    "viz.py": "ba485448646eb1785ef973f58c924f4789879b339b9c7b2eb7a813b8fb938f0f",
}


def _without_checker(path, text):
    """A handout file without the vendored checker: the notebook's lines that embed checker/ modules cut."""
    if path.endswith(".ipynb"):
        text = "".join(line for line in text.splitlines(True) if not line.startswith('    "    \\"checker/'))
    return text


def test_a_handout_without_extensions_is_byte_identical_to_the_build_before_them():
    from autograder import handout

    files = handout.handout_files(chosen=checks.CORE_EXERCISES)
    assert files == handout.handout_files()
    # nothing of an extension reaches a course that did not choose it
    for path, text in files.items():
        if not path.startswith("checker/") and not path.endswith(".json"):
            text = _without_checker(path, text)  # the checker's own code embedded in the notebook
            for word in ("def tanh(", "def exp(", "def log(", "hinge_loss", "moons"):
                assert word not in text, (path, word)
    assert not any(path.startswith("moons") for path in files)


def test_a_handout_with_every_extension_leaves_them_as_exercises_and_its_solution_passes(tmp_path):
    from autograder import handout

    files = handout.handout_files(chosen="all")
    assert {"moons.py", "moons.csv"} <= set(files)
    for exercise in EXTENSIONS_CHOSEN:
        assert f"# TODO exercise {exercise}:" in files["autodiff101.ipynb"]
        assert any(f"# TODO exercise {exercise}:" in files[name] for name in ("engine.py", "moons.py"))
    assert "1 - t**2" not in files["engine.py"] and "relu() for score" not in files["moons.py"]
    public = json.loads(files["public_checks.json"])
    assert {c["exercise"] for c in public} >= set(EXTENSIONS_CHOSEN)
    assert not handout.leaks(files, handout.reference_sources(exercises="all"), _every_extension_config(tmp_path))
    solved = handout.handout_files(chosen="all", solved=True)
    folder = tmp_path / "solved"
    handout.write_files(folder, solved)
    results = inprocess.run_directory(folder, public)
    assert not failures(results) and {c["exercise"] for c, _ in results} >= set(EXTENSIONS_CHOSEN)


def _every_extension_config(tmp_path):
    from exported import every_extension_config

    return every_extension_config(tmp_path)


# --- the moons data -----------------------------------------------------------------------------

def test_the_moons_data_is_scikit_learns_make_moons_with_the_fixed_seed():
    sklearn = pytest.importorskip("sklearn.datasets", reason="scikit-learn regenerates the shipped points")
    from solutions.moons import load_moons

    xs, ys = load_moons()
    points, labels = sklearn.make_moons(n_samples=100, noise=0.1, random_state=1337)
    assert xs == [[float(a), float(b)] for a, b in points]
    assert ys == [2 * int(label) - 1 for label in labels]


def test_log_of_a_non_positive_number_raises_a_clear_error():
    from solutions import Value

    for bad in (0.0, -2.0):
        with pytest.raises(ValueError, match="positive"):
            Value(bad).log()


def test_train_task_moons_prints_each_step_and_draws_the_boundary(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from autograder.cli import main

    picture = tmp_path / "boundary.png"
    assert main(["train", "--task", "moons", "--epochs", "2", "--plot", str(picture)]) == 0
    out = capsys.readouterr().out
    assert "Step 0: Loss 0.8958, accuracy 50%" in out and "Step 1:" in out
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- handing in a handout with the moons unit ---------------------------------------------------

@pytest.fixture(scope="module")
def solved_handout(tmp_path_factory):
    """The handout with every extension, solved, in its folder layout (engine.py, nn.py,
    moons.py, train.py, ...)."""
    from autograder import handout

    folder = tmp_path_factory.mktemp("handout") / "solved"
    handout.write_files(folder, handout.handout_files(chosen="all", solved=True))
    return folder


def _graded_record(path, compiled, level, exercises=("add", "moons")):
    from autograder.load import load
    from autograder.sandbox import Sandbox

    from conftest import FAST

    from autograder import grade

    chosen = [check for check in compiled if check["exercise"] in exercises]
    with Sandbox(level, FAST) as sandbox:
        record = grade.grade_submission(load(path), chosen, sandbox)
    return record, None


def test_check_zip_packs_moons_py_and_the_grader_passes_its_checks(solved_handout, compiled, level, tmp_path):
    import zipfile

    from autograder import selfcheck

    target = tmp_path / "submission.zip"
    assert selfcheck.write_submission(solved_handout, target, out=io.StringIO()) == 0
    assert sorted(zipfile.ZipFile(target).namelist()) == ["engine.py", "moons.py", "nn.py"]
    record, _ = _graded_record(target, compiled, level)
    assert record["status"] == "graded" and record["score"] == record["max_score"] > 0, record["tests"]
    # the handout's train.py is filled in, but it was never asked for: nothing to note
    assert not any("train.py" in note for note in record["notes"]) and "train.py" not in record["message"]


def test_a_missing_moons_py_is_named_in_the_moons_checks_feedback(solved_handout, compiled, level, tmp_path):
    import zipfile

    target = tmp_path / "core-only.zip"
    with zipfile.ZipFile(target, "w") as archive:
        for name in ("engine.py", "nn.py"):
            archive.write(solved_handout / name, name)
    record, _ = _graded_record(target, compiled, level)
    moons = [test for test in record["tests"] if not test["passed"]]
    assert {test["exercise"] for test in moons} == {"moons"} and len(moons) == sum(
        check["exercise"] == "moons" for check in compiled)
    assert all("moons.py is missing" in test["message"] for test in moons), moons
    assert not any("KeyError" in test["message"] for test in record["tests"])


def test_moons_py_handed_in_without_train_py_is_graded_with_the_handouts_train_py(solved_handout, compiled,
                                                                                   level, tmp_path):
    import zipfile

    target = tmp_path / "no-train.zip"
    with zipfile.ZipFile(target, "w") as archive:
        for name in ("engine.py", "nn.py", "moons.py"):
            archive.write(solved_handout / name, name)
    record, _ = _graded_record(target, compiled, level)
    assert record["status"] == "graded" and record["score"] == record["max_score"] > 0, record


def test_a_broken_moons_py_costs_only_the_moons_checks(solved_handout, compiled, level, tmp_path):
    import shutil

    folder = tmp_path / "broken"
    shutil.copytree(solved_handout, folder)
    (folder / "moons.py").write_text((folder / "moons.py").read_text() + "\n1 / 0\n")
    record, _ = _graded_record(folder, compiled, level)
    assert record["status"] == "graded", record
    lost = [test for test in record["tests"] if not test["passed"]]
    assert {test["exercise"] for test in lost} == {"moons"}
    assert len(lost) == sum(check["exercise"] == "moons" for check in compiled)
    assert record["score"] == sum(test["max_score"] for test in record["tests"] if test["exercise"] == "add") > 0
    said = [test["message"] + " " + test["detail"] for test in lost]
    assert all("moons.py could not be imported" in text and "ZeroDivisionError" in text for text in said), said


def test_the_self_check_passes_a_solved_notebook_quickly_without_the_long_training_or_pictures(
        solved_handout, tmp_path):
    """python check.py autodiff101.ipynb on the solved notebook with every extension, as a
    student runs it: the moons checks see the notebook's functions, and the cells tagged not
    graded (the 100-step training, about a minute of CPU, and the pictures) do not run, so
    the check takes seconds of CPU and writes nothing into the student's folder."""
    import resource
    import shutil
    import subprocess
    import sys

    folder = tmp_path / "handout"
    shutil.copytree(solved_handout, folder)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = subprocess.run([sys.executable, "check.py", "autodiff101.ipynb"], cwd=folder, capture_output=True,
                         text=True, timeout=600)  # a hang, not a time limit: the CPU bound below is the test
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "moons" in run.stdout and "missing" not in run.stdout.lower(), run.stdout
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert cpu < 20, f"check.py took {cpu:.1f} s of CPU: did it run the 100-step training?"
    assert not list(folder.glob("*.png"))


def test_every_check_cell_of_the_solved_notebook_passes_when_run_in_order(solved_handout, tmp_path,
                                                                        monkeypatch, capsys):
    """Run All on the solved notebook with every extension, in the kernel's order: each
    check('<name>') cell passes, so none runs a check before the code it calls is defined
    (tanh-through-exp calls exp, defined after tanh; moons-training calls train_moons).
    The cells the graders leave out (the 100-step training, the pictures) are skipped."""
    import re
    import shutil
    import sys

    import nbformat

    from autograder import notebook as handout_notebook

    folder = tmp_path / "handout"
    shutil.copytree(solved_handout, folder)
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(folder))
    for name in [name for name in sys.modules if name == "checker" or name.startswith("checker.")]:
        monkeypatch.delitem(sys.modules, name)
    book = nbformat.read(folder / "autodiff101.ipynb", as_version=4)
    namespace, outputs = {"__name__": "__main__"}, {}
    for cell in book.cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type != "code" or handout_notebook.NOT_GRADED_TAG in tags:
            continue
        exec(compile(cell.source, "<cell>", "exec"), namespace)
        if handout_notebook.CHECK_TAG in tags and cell.source.startswith("check("):
            outputs[cell.source] = capsys.readouterr().out
    for name in ("tanh", "exp", "log", "moons"):
        assert f"check({name!r})" in outputs
    for call, text in outputs.items():  # a core cell may say it waits for backward, never failed
        assert "failed" not in text and "Error" not in text.replace("NotImplementedError", ""), (call, text)
    for name in ("tanh", "exp", "log", "moons"):
        counted = re.search(r"(\d+) of (\d+) public checks? pass", outputs[f"check({name!r})"])
        assert counted and counted[1] == counted[2], outputs[f"check({name!r})"]
    public = {c["id"]: c for c in json.loads((folder / "public_checks.json").read_text())}
    if "tanh-through-exp" in public:  # it runs at exp's cell, where exp exists
        assert public["tanh-through-exp"]["cell"] == "exp"
    assert not list(folder.glob("*.png"))  # the picture cells were left out, as the graders do


def test_each_check_requires_every_extension_whose_operator_its_graph_uses(compiled):
    """A check's cell is placed after the exercises it requires (checks.check_cell); a graph
    that uses another extension's operator must say so in ``requires``."""
    for check in compiled:
        program = check["params"].get("program") if isinstance(check["params"], dict) else None
        used = {step[0] for step in program or () if step and step[0] in checks.EXTENSIONS}
        declared = next(c for c in checks.CHECKS if c.id == check["id"])
        assert used <= {check["exercise"], *declared.requires}, check["id"]
        assert check.get("cell", check["exercise"]) == checks.check_cell(declared)


# --- the exports with the extensions --------------------------------------------------------

def test_the_otter_export_with_every_extension_gives_each_moons_function_its_own_todo(compiled):
    pytest.importorskip("nbformat")
    from autograder import handout
    from autograder.platforms import otter

    notebook, _ = otter.master_notebook(compiled, "autodiff101")
    text = "\n".join(cell.source for cell in notebook.cells)
    moons = handout.handout_files(chosen="all")["moons.py"]
    todos = [line.strip() for line in moons.splitlines() if "# TODO exercise moons:" in line]
    assert len(todos) >= 5 and text.count("# TODO exercise moons:") == len(todos)
    for cell in [cell for cell in notebook.cells if cell.cell_type == "code"]:  # each block, its own prompt
        assert cell.source.count(otter.END) == cell.source.count("# BEGIN PROMPT")
    names = [cell.source.split("name: ", 1)[1] for cell in notebook.cells
             if cell.cell_type == "raw" and cell.source.startswith("# BEGIN QUESTION")]
    assert len(names) == len(set(names)) and "moons" in names


def test_the_nbgrader_export_with_moons_has_unique_grade_ids_and_a_round_total(compiled, tmp_path):
    pytest.importorskip("nbformat")
    from autograder.platforms import export_source as source, nbgrader

    notebook = nbgrader.source_notebook(compiled)
    ids = [cell.metadata["nbgrader"]["grade_id"] for cell in notebook.cells if "nbgrader" in cell.metadata]
    assert len(ids) == len(set(ids)) and "exercise-moons" in ids and "exercise-moons-5" in ids
    # scaled points can sum to a hair over 100, as the reviewer's export printed
    assert source.points_text(100.00000000000001) == "100 points" and source.points_text(2.5) == "2.5 points"


# --- the moons functions' own mistakes, named for what they are ------------------------------------

def _moons_ns(**replaced):
    """The reference namespace with some moons functions replaced by a student's."""
    return {**checks.reference_namespace(), **replaced}


def _judged(probe, judge_name, params, ns):
    expected = probes.run(checks.reference_namespace(), probe, params)
    return judge.judge(judge_name, probes.run(ns, probe, params), expected, params)


@pytest.mark.parametrize("penalty", [
    lambda ps, alpha: alpha * sum(p.data ** 2 for p in ps),  # a plain float
    lambda ps, alpha: alpha * sum(p.data * p.data for p in ps),
    lambda ps, alpha: checks.reference_namespace()["Value"](alpha * sum(abs(p.data) ** 2 for p in ps)),  # wrapped
])
def test_an_l2_penalty_built_from_data_is_named_as_contributing_no_gradient(penalty):
    params = {"parameters": [1.25, -0.75, 0.5, 2.0], "alpha": 0.05}
    verdict = _judged("penalty", "penalty_result", params, _moons_ns(l2_penalty=penalty))
    assert not verdict.passed and verdict.diagnoses == ["l2-from-data"]
    assert "no gradient" in verdict.message and "constant" not in verdict.message.lower()


def test_moons_loss_with_an_l2_term_from_data_is_named_by_its_missing_gradient():
    ns = checks.reference_namespace()

    def moons_loss(model, xs, ys, alpha):
        scores = [model(x) for x in xs]
        return ns["hinge_loss"](scores, ys) + alpha * sum(p.data ** 2 for p in model.parameters()), \
            ns["accuracy"](scores, ys)

    params = {"weights": [[[0.4, -0.9, 0.1], [-0.6, 0.3, -0.2]], [[1.1, -0.8, 0.05]]],
              "xs": [[0.5, -1.0], [1.5, 0.25], [-0.75, 0.8]], "ys": [1, -1, 1], "alpha": 0.01}
    verdict = _judged("moons_objective", "objective_result", params, _moons_ns(moons_loss=moons_loss))
    assert not verdict.passed and verdict.diagnoses == ["l2-from-data"]
    assert "no gradient" in verdict.message


@pytest.mark.parametrize("scale", [100, 100.0])
def test_an_accuracy_given_as_a_percentage_is_named_a_scale_mistake(scale):
    ns = checks.reference_namespace()
    params = {"scores": [0.9, -1.1, 0.2, 0.4, -0.3], "ys": [1, -1, -1, 1, 1]}  # 3 of 5 right: 0.6
    verdict = _judged("classify", "accuracy_result", params,
                      _moons_ns(accuracy=lambda scores, ys: ns["accuracy"](scores, ys) * scale))
    assert not verdict.passed and verdict.diagnoses == ["accuracy-scale"]
    assert "100 times the expected fraction 0.6" in verdict.message and "60" in verdict.message


@pytest.mark.parametrize("schedule, words", [
    (lambda step, steps: 1.0 - 0.9 * step / (steps - 1), "divides by steps - 1"),
    (lambda step, steps: 0.97 ** step, None),  # a decaying schedule, but not the handout's
    (lambda step, steps: 1.0 - 0.9 * step / 100, "fixed 100"),
])
def test_a_schedule_other_than_the_handouts_is_told_the_expected_schedule_and_its_own_numbers(schedule, words):
    """The handout's docstring fixes learning_rate to 1.0 - 0.9 * step / steps, so another
    schedule fails moons-learning-rate, and its message shows both sets of rates."""
    check = next(c for c in checks.CHECKS if c.id == "moons-learning-rate")
    verdict = _judged("schedule", "schedule_result", check.params, _moons_ns(learning_rate=schedule))
    assert not verdict.passed and verdict.diagnoses == ["learning-rate"]
    assert "1.0 - 0.9 * step / steps" in verdict.message
    mine = ", ".join(f"{schedule(k, 5):.4g}" for k in range(5))
    assert f"it gives {mine} where 1, 0.82, 0.64, 0.46, 0.28 are expected" in verdict.message
    assert words is None or words in verdict.message
    assert "Training follows from everything else" not in verdict.message


def test_train_moons_with_its_own_schedule_is_told_the_rates_it_used():
    """A train_moons that computes its own rates (0.9 ** step here) instead of calling
    learning_rate: the training check measures the rates it used and names them."""
    ns = checks.reference_namespace()

    def train_moons(model, xs, ys, steps=100, alpha=1e-4, on_step=None):
        history = []
        for step in range(steps):
            loss, acc = ns["moons_loss"](model, xs, ys, alpha)
            model.zero_grad()
            loss.backward()
            for p in model.parameters():
                p.data -= 0.9 ** step * p.grad
            history.append((loss.data, acc))
            if on_step is not None:
                on_step(step, loss.data, acc)
        return history

    params = {"weights": [[[0.4, -0.9, 0.0], [-0.6, 0.3, 0.0]], [[1.1, -0.8, 0.0]]],
              "xs": [[0.5, -1.0], [1.5, 0.25], [-0.75, 0.8]], "ys": [1, -1, 1], "alpha": 0.01, "steps": 4}
    verdict = _judged("moons_training", "training_result", params, _moons_ns(train_moons=train_moons))
    assert not verdict.passed and verdict.diagnoses == ["learning-rate"]
    assert "learning rates 1, 0.9, 0.81, 0.729 over its 4 steps" in verdict.message
    assert "gives 1, 0.775, 0.55, 0.325" in verdict.message


def test_an_ungraded_cell_in_the_nbgrader_export_runs_only_outside_nbgrader_and_still_shows_its_picture():
    from autograder.platforms import export_source as source

    text = source.guarded('from x import Image\n\nImage(draw("a.png"))  # the picture\n', "NBGRADER_EXECUTION")
    assert text.splitlines()[2] == "if not os.environ.get('NBGRADER_EXECUTION'):  # skipped while the notebook is graded"
    assert '    display(Image(draw("a.png")))  # the picture' in text
    compile(text, "<cell>", "exec")  # still valid Python
    assert "display(print" not in source.guarded('print("done")\n', "V")


def test_a_moons_loss_that_ignores_its_alpha_fails_the_objective_check():
    from solutions import moons

    reference = checks.reference_namespace()

    def ignores_alpha(model, xs, ys, alpha=moons.ALPHA):
        return reference["moons_loss"](model, xs, ys)  # always the default alpha

    check = next(c for c in checks.CHECKS if c.id == "moons-objective")
    params = check.concrete_params(SEED)
    assert params["alpha"] != moons.ALPHA
    assert not _judged("moons_objective", "objective_result", params, _moons_ns(moons_loss=ignores_alpha)).passed
    assert _judged("moons_objective", "objective_result", params, _moons_ns()).passed


def test_the_handouts_hinge_loss_docstring_says_to_write_the_max_with_relu():
    """The docstring's max(0, 1 - y * score) taken literally raises a TypeError: it says how."""
    from autograder import handout
    text = handout.reference_sources(exercises="all")["moons.py"]
    docstring = text.split("def hinge_loss")[1].split('"""')[1]
    assert "m.relu()" in docstring and "max()" in docstring


def test_a_loss_that_is_a_plain_number_is_named_not_sent_to_wrap_constants():
    """The judge's words for what the moons probes report (own inputs, not a mutant's)."""
    from autograder import judge
    plain = judge.hinge_result({"loss": 0.7, "grads": [0.0, 0.0], "plain_number": True},
                               {"loss": 0.7, "grads": [-0.5, 0.5]}, {"scores": [0.1, 0.2], "ys": [1, -1]})
    assert plain.diagnoses == ["loss-from-data"] and "plain number" in plain.message
    swapped = judge.objective_result({"loss_kind": "swapped"}, {}, {})
    assert swapped.diagnoses == ["moons-loss-order"] and "swapped" in swapped.message
    compared = judge.judge_failure({"probe": "hinge", "params": {}},
                                   {"error": "TypeError", "message": "'>' not supported between instances of "
                                    "'Value' and 'int'"}, "hinge_loss()")
    assert compared.diagnoses == ["hinge-loss"] and "max(0, m) as m.relu()" in compared.message


@pytest.mark.parametrize("accuracy, words", [
    (lambda scores, ys: sum((s.data > 0) != (y > 0) for s, y in zip(scores, ys)) / len(ys), "reversed"),
    (lambda scores, ys: sum(s.data == y for s, y in zip(scores, ys)) / len(ys), "as they are"),
])
def test_the_accuracy_checks_data_tells_a_reversed_count_from_raw_scores(accuracy, words):
    """The two mistakes once gave the same number on the check's scores (0.25): a student who
    compares signs but counts the misclassified ones was told to compare signs."""
    verdict = _judged("classify", "accuracy_result", checks.CLASSIFY, _moons_ns(accuracy=accuracy))
    assert not verdict.passed and verdict.diagnoses == ["accuracy"]
    assert words in verdict.detail and ("reversed" in verdict.detail) == (words == "reversed")


# backward() applies each operator's chain rule itself from its _op, never calling a closure
# (issue 13, row 14): whatever the closures do, every gradient after backward() is right.
SWEEP = "        self.grad = 1.0\n        for node in reversed(order):\n            node._backward()\n"
CHAIN_RULE_SWEEP = CHAIN_RULE_FROM_OP + """            elif node._op == "tanh":
                x[0].grad += (1 - node.data ** 2) * node.grad
            elif node._op == "exp":
                x[0].grad += node.data * node.grad
            elif node._op == "log":
                x[0].grad += node.grad / x[0].data
"""
CLOSURES = {"tanh": "self.grad += (1 - t**2) * out.grad", "exp": "self.grad += out.data * out.grad",
            "log": "self.grad += out.grad / self.data"}


def test_the_chain_rule_backward_alone_keeps_full_marks(compiled, tmp_path):
    folder = write(Submission("chain rule from _op", source=extension_module([("engine.py", SWEEP, CHAIN_RULE_SWEEP)])),
                   tmp_path / "sweep")
    assert failures(inprocess.run_directory(folder, compiled)) == {}


@pytest.mark.parametrize("op", CLOSURES)
def test_a_chain_rule_backward_cannot_hide_an_assigning_extension_closure(op, compiled, tmp_path):
    """The same-node check calls the product's and the operator's closures by hand, so the
    operator's = shows there though backward() never runs a closure. No model explains both
    the right backward() and the wrong closure, so the message says where the gradient goes
    wrong (the honest = is named: test_an_assigned_grad_mutant_of_each_operator_gets_...)."""
    source = extension_module([("engine.py", SWEEP, CHAIN_RULE_SWEEP),
                               ("engine.py", CLOSURES[op], CLOSURES[op].replace("+=", "="))])
    failed = failures(inprocess.run_directory(write(Submission(op, source=source), tmp_path / op), compiled))
    assert set(failed) == {f"{op}-same-node"}
    assert "the gradient goes wrong at a node used by several operations" in failed[f"{op}-same-node"].message
