"""The catalogue's declarations, their compilation to plain data, the random graphs, the
in-process runner, and docs/checks.md."""
import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autograder import checks, inprocess, judge, misconceptions, probes

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = ("value", "add", "mul", "pow", "relu", "backward", "sub-div", "nn", "training", "deep",
             "tanh", "exp", "log", "moons")  # the last four: extensions, compiled only when a course chooses them


@pytest.fixture(scope="module")
def compiled():
    return checks.compile_checks(7)


# --- declarations and configuration ---------------------------------------------------------

def test_checks_have_unique_ids_known_probes_and_judges_and_belong_to_an_exercise():
    ids = [check.id for check in checks.CHECKS]
    assert len(ids) == len(set(ids))
    for check in checks.CHECKS:
        assert check.probe in probes.PROBES and check.judge in judge.JUDGES, check.id
        assert check.exercise in EXERCISES and check.id.split("-")[0] in check.exercise + "rsub rdiv neg", check.id
        assert check.title and not check.title.endswith(".") and check.about
        assert 0 < check.timeout <= 10
    assert checks.EXERCISES == EXERCISES


def test_default_points_total_100_with_the_deep_chain_as_zero_point_extra_credit():
    config = checks.load_config()
    assert sum(entry["points"] for entry in config.values()) == 100
    assert config["deep-chain"]["points"] == 0
    assert {entry["visibility"] for entry in config.values()} == set(checks.VISIBILITIES)


@pytest.mark.parametrize("line, problem", [
    ('nope = { points = 1, visibility = "public" }', "no such checks: nope"),
    ('value-repr = { points = -1, visibility = "public" }', "points must be a number >= 0"),
    ('value-repr = { points = 1, visibility = "secret" }', "visibility must be one of"),
])
def test_a_bad_configuration_is_refused_with_its_reason(tmp_path, line, problem):
    text = checks.DEFAULT_CONFIG.read_text()
    if not line.startswith("nope"):
        text = "\n".join(row for row in text.splitlines() if not row.startswith("value-repr "))
    path = tmp_path / "checks.toml"
    path.write_text(text + "\n" + line + "\n")
    with pytest.raises(ValueError, match=problem):
        checks.load_config(path)


def test_a_configuration_must_cover_every_check(tmp_path):
    path = tmp_path / "checks.toml"
    path.write_text('[checks]\nvalue-repr = { points = 100, visibility = "public" }\n')
    with pytest.raises(ValueError, match="no points or visibility for"):
        checks.load_config(path)


# --- compilation ---------------------------------------------------------------------------

def test_compiled_checks_are_plain_json_with_the_reference_observations(compiled):
    assert json.loads(json.dumps(compiled)) == compiled
    assert {c["id"] for c in compiled} == {c.id for c in checks.CHECKS if c.exercise in checks.CORE_EXERCISES}
    repr_check = next(c for c in compiled if c["id"] == "value-repr")
    assert repr_check["expected"] == {"repr": "Value(data=5.0, grad=0.0)", "data": 5.0, "grad": 0.0}
    assert repr_check["judge"] == "represented"
    mlp = next(c for c in compiled if c["id"] == "nn-mlp-parameters")
    assert mlp["expected"] == {"parameter_count": 28, "distinct_parameters": 28, "layer_sizes": [3, 3, 1]}


def test_the_design_seed_figures_are_what_the_checks_expect(compiled):
    by_id = {c["id"]: c["expected"] for c in compiled}
    assert by_id["mul-step"]["grad"][:2] == [66.0, 55.0]
    assert by_id["pow-square-step"]["grad"][0] == 110.0
    assert by_id["relu-positive-step"]["grad"][0] == 11.0 and by_id["relu-negative-step"]["grad"][0] == 0.0
    assert by_id["sub-backward"]["grad"][:2] == [1.0, -1.0]
    assert by_id["div-backward"]["grad"][:2] == pytest.approx([1 / 3, -2 / 3])


def test_known_good_weights_train_below_the_threshold(compiled):
    losses = next(c for c in compiled if c["id"] == "training-converges")["expected"]["losses"]
    assert len(losses) == 50 and losses[-1] < judge.LOSS_THRESHOLD < losses[0]


def test_random_checks_follow_the_seed_and_fixed_checks_do_not(compiled):
    again = checks.compile_checks(7, only=("hidden",))
    other = checks.compile_checks(8, only=("hidden",))
    assert {c["visibility"] for c in again} == {"hidden"}
    same = {c["id"]: c["params"] for c in compiled}
    for a, b in zip(again, other):
        assert a["params"] == same[a["id"]]
        assert (a["params"] != b["params"]) == a["id"].startswith("backward-random")


# --- writing graphs ----------------------------------------------------------------------------

def test_expression_shares_named_nodes_and_places_numbers_on_either_side():
    assert checks.expression("c = a * b; c + c", a=2.0, b=3.0) == [
        ["leaf", 2.0], ["leaf", 3.0], ["mul", 0, 1], ["add", 2, 2]]
    assert checks.expression("2 - a / -4", a=1.0) == [["leaf", 1.0], ["div_c", 0, -4], ["c_sub", 2, 1]]
    assert checks.expression("b = a.relu(); c = b * b; b", a=1.0) == [  # a named root is repeated last
        ["leaf", 1.0], ["relu", 0], ["mul", 1, 1], ["mul_c", 1, 1.0]]
    with pytest.raises(ValueError, match="not used"):
        checks.expression("a + a", a=1.0, b=2.0)


def feeds_root(program):
    reached, stack = {len(program) - 1}, [len(program) - 1]
    while stack:
        for k in checks.inputs_of(program[stack.pop()]):
            if k not in reached:
                reached.add(k)
                stack.append(k)
    return reached == set(range(len(program)))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32), st.sampled_from([(12, 0.5), (24, 0.4), (40, 0.9)]))
def test_random_graphs_are_safe_to_judge_and_every_node_feeds_the_root(seed, shape):
    size, chain = shape
    program = checks.random_program(random.Random(seed), size, chain)
    assert len(program) >= size and feeds_root(program)
    data, _ = misconceptions.simulate(program)
    for (op, *args), value in zip(program, data):
        assert abs(value) <= 20 * len(program)
        x = [data[k] for k in checks.inputs_of([op, *args])]
        if op == "relu":
            assert abs(x[0]) >= 0.1
        if op in ("div", "c_div"):
            assert abs(x[-1]) >= 0.5
        if op == "pow" and args[1] != int(args[1]):
            assert x[0] >= 0.25
    if size >= 24:  # the deck deals every kind of operator
        assert {op for op, *_ in program} == set(checks.KINDS) | {"leaf"}


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32))
def test_deep_random_graphs_are_deep_and_never_explode_without_a_visited_set(seed):
    program = checks.random_program(random.Random(seed), 40, 0.9)
    assert checks.depth(program) >= 12
    paths = []  # how many times a walk without a visited set reaches each node
    for instruction in program:
        paths.append(1 + sum(paths[k] for k in checks.inputs_of(instruction)))
    assert paths[-1] <= checks.MAX_UNFOLDED * len(program)


def test_deep_random_graphs_reach_about_30_on_average():
    depths = [checks.depth(checks.random_program(random.Random(seed), 40, 0.9)) for seed in range(40)]
    assert 20 <= sum(depths) / len(depths) <= 35 and max(depths) >= 30


# --- the in-process runner ------------------------------------------------------------------

def write(tmp_path, text):
    (tmp_path / "submission.py").write_text(text)
    return tmp_path


def test_the_reference_scores_full_marks_in_process(compiled):
    results = inprocess.run_checks(checks.reference_namespace(), compiled)
    assert [c["id"] for c, v in results if not v.passed] == []
    assert inprocess.score(results) == (100, 100)


def test_a_submission_that_does_not_load_fails_every_check_as_a_load_error(tmp_path, compiled):
    results = inprocess.run_directory(write(tmp_path, "class Value:\n    def __init__(self\n"), compiled)
    assert all(v.diagnoses == ["load-error"] and not v.passed for _, v in results)
    assert "SyntaxError" in results[0][1].message


def test_missing_names_are_a_load_error(tmp_path, compiled):
    ns, failure = inprocess.load(write(tmp_path, "class Value:\n    pass\n"))
    assert ns is None and failure["message"] == "not defined: Module, Neuron, Layer, MLP"


def test_an_in_process_time_limit_counts_cpu_time_with_a_wall_clock_backstop(monkeypatch):
    """The self-check and the nbgrader/otter exports limit a check as the worker does: by CPU
    time (a busy machine slows a check, never cuts it short), with a wall-clock backstop for
    code that sleeps or blocks."""
    import time

    with inprocess._time_limit(0.2):
        time.sleep(0.5)  # waiting is not computing: no timeout
    with pytest.raises(inprocess.CheckTimeout), inprocess._time_limit(0.2):
        while True:
            pass
    monkeypatch.setattr(inprocess, "WALL_FACTOR", 1.0)
    monkeypatch.setattr(inprocess, "WALL_SLACK", 0.3)
    started = time.monotonic()
    with pytest.raises(inprocess.CheckTimeout), inprocess._time_limit(0.2):
        time.sleep(600)
    assert time.monotonic() - started < 300  # stopped by the backstop (0.5 s), not the sleep's end


def test_a_hanging_backward_times_out_alone(tmp_path, compiled):
    engine = (ROOT / "solutions" / "engine.py").read_text()
    start = engine.index("# BEGIN SOLUTION", engine.index("    def backward(self):"))
    end = engine.index("# END SOLUTION", start)
    hanging = engine[:start] + "# BEGIN SOLUTION\n        while True:\n            pass\n        " + engine[end:]
    ns, _ = inprocess.load(write(tmp_path, hanging + "\nclass Module: pass\nNeuron = Layer = MLP = Module\n"))
    quick = [dict(c, timeout=0.2) for c in compiled if c["id"] in ("add-same-node", "value-repr")]
    results = dict((c["id"], v) for c, v in inprocess.run_checks(ns, quick))
    assert results["value-repr"].passed
    assert results["add-same-node"].message.startswith("took longer than 0.2 s while backward()")
    assert results["add-same-node"].diagnoses == ["topo-visited"]


def test_checks_asking_the_same_question_share_one_probe_run(monkeypatch, compiled):
    runs = []
    real = probes.run
    monkeypatch.setattr(probes, "run", lambda *args, **kw: runs.append(args[1]) or real(*args, **kw))
    training = [c for c in compiled if c["exercise"] == "training"]
    results = inprocess.run_checks(checks.reference_namespace(), training)
    assert len(results) == 2 and runs == ["training"] and all(v.passed for _, v in results)


# --- docs/checks.md ------------------------------------------------------------------------

def test_docs_checks_md_is_generated_from_the_declarations():
    generated = subprocess.run([sys.executable, str(ROOT / "tests" / "mutants.py")], capture_output=True,
                               text=True, check=True).stdout
    assert (ROOT / "docs" / "checks.md").read_text() == generated, "run: python tests/mutants.py > docs/checks.md"
    for check in checks.CHECKS:
        assert f"| `{check.id}` |" in generated
    for name in judge.DIAGNOSES:
        assert f"| `{name}` |" in generated


# --- judging what the lesson is about (issue 12, deliver 4) ------------------------------------

sys.path.insert(0, str(ROOT / "tests"))
from mutants import BACKWARD, MUTANTS, SEED, VARIANTS, Submission, one_module  # noqa: E402
from conftest import CHAIN_RULE_FROM_OP, TOPO_ORDER  # noqa: E402


def judged_repr(compiled, text):
    check = next(c for c in compiled if c["id"] == "value-repr")
    return judge.judge(check["judge"], {"repr": text, "data": 5.0, "grad": 0.0}, check["expected"], check["params"])


@pytest.mark.parametrize("text", [
    "Value(data=5.0, grad=0.0)", "Value(data=5, grad=0)", "Value(data=5.000000, grad=0.000000)",
    "Value(data=5, grad=0, op='')", "Value(grad=0.0, data=5.0)", "{'data': 5.0, 'grad': 0.0}", "Value(data=5e0, grad=-0.0)",
])
def test_repr_passes_whatever_format_shows_data_5_and_grad_0(compiled, text):
    assert judged_repr(compiled, text).passed, text


@pytest.mark.parametrize("text, message", [
    ("Value(5.0)", "repr() does not show grad"),
    ("Value(data=5.0)", "repr() does not show grad"),
    ("<__main__.Value object at 0x7f00>", "repr() does not show grad"),
    ("Value(grad=0.0)", "repr() does not show data"),
    ("Value(data=6.0, grad=0.0)", "repr() shows the wrong data"),
    ("Value(data=5.0, grad=1.0)", "repr() shows the wrong grad"),
    ("Value(data=5.0, gradient=0.0)", "repr() does not show grad"),
])
def test_repr_fails_when_it_hides_or_misstates_a_number(compiled, text, message):
    verdict = judged_repr(compiled, text)
    assert not verdict.passed and verdict.message.startswith(message)


def test_repr_judge_refuses_what_is_not_text(compiled):
    assert not judged_repr(compiled, {"not_a_number": "str"}).passed


def patched(*patches, extra=""):
    return Submission("", source=one_module(patches) + extra)


# Differences DESIGN.md §1 allows; each must keep full marks.
ALLOWED = {
    "int grads and a {:.6g} repr": patched(
        ("engine.py", "self.grad = 0.0", "self.grad = 0"),
        ("engine.py", 'return f"Value(data={self.data}, grad={self.grad})"',
         'return f"Value(data={self.data:.6g}, grad={self.grad:.6g})"'),
        ("nn.py", "p.grad = 0.0", "p.grad = 0"), ("nn.py", "self.bias = Value(0.0)", "self.bias = Value(0)")),
    "_prev a list": patched(("engine.py", "self._prev = tuple(_children)", "self._prev = list(_children)")),
    "_prev a set": patched(("engine.py", "self._prev = tuple(_children)", "self._prev = set(_children)")),
    "no __slots__, extra attributes": patched(
        ("engine.py", '    __slots__ = ("data", "grad", "_prev", "_op", "_backward")\n', ""),
        ("engine.py", '        self._op = _op\n', '        self._op = _op\n        self.label = ""\n        self.seen = 0\n')),
    "parameters() a tuple": patched(
        ("nn.py", "return self.weights + [self.bias]", "return tuple(self.weights) + (self.bias,)"),
        ("nn.py", "return [p for neuron in self.neurons for p in neuron.parameters()]",
         "return tuple(p for neuron in self.neurons for p in neuron.parameters())"),
        ("nn.py", "return [p for layer in self.layers for p in layer.parameters()]",
         "return tuple(p for layer in self.layers for p in layer.parameters())")),
    "parameters() a generator": patched(
        ("nn.py", "return self.weights + [self.bias]", "yield from self.weights\n        yield self.bias"),
        ("nn.py", "return [p for neuron in self.neurons for p in neuron.parameters()]",
         "return (p for neuron in self.neurons for p in neuron.parameters())"),
        ("nn.py", "return [p for layer in self.layers for p in layer.parameters()]",
         "return (p for layer in self.layers for p in layer.parameters())")),
    "Layer returns a list of one": patched(
        ("nn.py", "return outputs[0] if len(outputs) == 1 else outputs", "return outputs")),
    "nonlinearity kept under another name": patched(
        ("nn.py", "self.is_nonlinear = is_nonlinear", "self.nonlin = is_nonlinear"),
        ("nn.py", "return activation.relu() if self.is_nonlinear else activation",
         "return activation.relu() if self.nonlin else activation"),
        ("nn.py", 'kind = "ReLU" if self.is_nonlinear else "Linear"', 'kind = "ReLU" if self.nonlin else "Linear"')),
}


@pytest.mark.parametrize("name", ALLOWED)
def test_what_the_contract_allows_keeps_full_marks(name, compiled, tmp_path):
    (tmp_path / "submission.py").write_text(ALLOWED[name].source)
    results = inprocess.run_directory(tmp_path, compiled)
    assert [(c["id"], v.message) for c, v in results if not v.passed] == []
    assert inprocess.score(results) == (100, 100)


def test_a_nonlinear_last_layer_is_seen_from_what_the_neurons_do(compiled, tmp_path):
    (tmp_path / "submission.py").write_text(MUTANTS["mlp-last-layer-nonlinear"].patches and
                                            one_module(MUTANTS["mlp-last-layer-nonlinear"].patches))
    results = dict((c["id"], v) for c, v in inprocess.run_directory(tmp_path, compiled))
    assert not results["nn-mlp-nonlinear"].passed and results["nn-mlp-nonlinear"].diagnoses == ["nn-forward"]


# --- the accumulation lesson at the closure where it lives (issue 13, row 14) ------------------

# backward() replaced by central finite differences of a forward pass re-run from each node's
# _op and _prev: every gradient after backward() is right whatever the closures do.
FD_BACKWARD = TOPO_ORDER + """
        def recompute(node):
            x = [child.data for child in node._prev]
            if node._op == "+":
                return x[0] + x[1]
            if node._op == "*":
                return x[0] * x[1]
            if node._op == "ReLU":
                return max(x[0], 0.0)
            return x[0] ** float(node._op[2:])

        def root_with(index, value):
            saved = [node.data for node in order]
            order[index].data = value
            for node in order[index + 1:]:
                if node._prev:
                    node.data = recompute(node)
            result = self.data
            for node, data in zip(order, saved):
                node.data = data
            return result

        for index, node in enumerate(order):
            h = 1e-6 * max(1.0, abs(node.data))
            node.grad = (root_with(index, node.data + h) - root_with(index, node.data - h)) / (2 * h)
"""
ADD_CLOSURE = "            self.grad += out.grad\n            other.grad += out.grad\n"
MUL_CLOSURE = "            self.grad += other.data * out.grad\n            other.grad += self.data * out.grad\n"


@pytest.mark.parametrize("op, closure", [("add", ADD_CLOSURE), ("mul", MUL_CLOSURE)])
def test_a_finite_difference_backward_cannot_hide_an_assigning_closure(op, closure, compiled, tmp_path):
    source = one_module([("engine.py", BACKWARD, FD_BACKWARD),
                         ("engine.py", closure, closure.replace("+=", "="))])
    (tmp_path / "submission.py").write_text(source)
    wanted = [c for c in compiled if c["exercise"] == op or c["id"].startswith("backward-random")]
    results = dict((c["id"], v) for c, v in inprocess.run_checks(inprocess.load(tmp_path)[0], wanted))
    # The whole-graph checks see only backward(), whose numbers are right: the bug hides there...
    assert results[f"{op}-same-node"].passed and results["backward-random-shared"].passed
    # ...and shows where it lives, in the closure of a node whose two operands are one Value.
    # No model explains both the right backward() and the wrong closure, so the submission's
    # diagnosis names none; the message still says where the gradient goes wrong.
    verdict = results[f"{op}-same-node-step"]
    assert not verdict.passed and "goes wrong at a " + {"add": "sum", "mul": "product"}[op] in verdict.message
    points = {c["id"]: c["points"] for c in compiled}
    assert points[f"{op}-same-node-step"] >= 3


# --- points: the untouched handout scores 0 (issue 12, deliver 6) -------------------------------

def test_points_reward_the_students_exercises_only():
    config = checks.load_config()
    by_exercise = {}
    for check in checks.CHECKS:
        if check.exercise in checks.CORE_EXERCISES:  # the extensions are not assigned by default
            by_exercise[check.exercise] = by_exercise.get(check.exercise, 0) + config[check.id]["points"]
    assert by_exercise["mul"] == 8  # the figure another issue quotes
    assert by_exercise["value"] == 0


def test_the_released_handout_scores_0_and_every_check_it_passes_is_worth_0(tmp_path):
    from autograder import grade, handout

    folder = tmp_path / "subs" / "handout"
    with open(os.devnull, "w") as quiet:
        handout.write_release(folder, handout.handout_files(), out=quiet)
    (tmp_path / "subs" / "handout.zip").unlink(missing_ok=True)  # the same handout, zipped
    batch = grade.grade([tmp_path / "subs"], out=tmp_path / "OUT", jobs=1)
    assert [row["score"] for row in batch.rows] == [0]
    tests = json.loads((tmp_path / "OUT" / "handout" / "results.json").read_text())["tests"]
    assert len(tests) == len([check for check in checks.CHECKS if check.exercise in checks.CORE_EXERCISES])
    passed = [test for test in tests if test["status"] == "passed"]
    # What the handout already provides passes, and is worth nothing: forward values, repr, nn.
    assert len(passed) >= 12 and all(test["max_score"] == 0 for test in passed)


# --- seeds (issue 12, deliver 5) -----------------------------------------------------------------

def test_the_course_seed_comes_from_the_config_or_the_assignment_name(tmp_path):
    base = checks.DEFAULT_CONFIG.read_text()
    fixed, renamed, bad = tmp_path / "fixed.toml", tmp_path / "renamed.toml", tmp_path / "bad.toml"
    fixed.write_text(base.replace("# seed = 123456789", "seed = 42"))
    renamed.write_text(base.replace('assignment = "autodiff101"', 'assignment = "cs101-hw3"'))
    bad.write_text(base.replace("# seed = 123456789", 'seed = "secret"'))
    assert checks.course_seed(fixed) == 42
    assert checks.course_seed() == checks.course_seed(None) == checks.course_seed({})  # stable
    assert checks.course_seed(renamed) != checks.course_seed() and 0 <= checks.course_seed(renamed) < 2**31
    with pytest.raises(ValueError, match="seed must be an integer"):
        checks.course_seed(bad)


def test_a_batch_without_seed_uses_the_course_seed_in_any_output_folder(tmp_path):
    from autograder import grade

    first, reused = grade._seed(tmp_path / "a", None) if (tmp_path / "a").mkdir() is None else None
    second, _ = grade._seed(tmp_path / "b", None) if (tmp_path / "b").mkdir() is None else None
    assert first == second == checks.course_seed() and not reused
    assert grade._seed(tmp_path / "a", None) == (first, True)
    assert grade._seed(tmp_path / "a", 5) == (5, False)


# The operators each style of implementation builds as nodes of their own (see misconceptions.STYLES).
OWN_NODES = {"composed": ("add", "mul", "pow", "relu"), "direct-binary": ("add", "mul", "pow", "relu", "sub", "div"),
             "direct": ("add", "mul", "pow", "relu", "sub", "div", "neg")}


def test_every_misconception_is_told_apart_by_the_sentinel_in_every_style():
    """A model the sentinel's shape cannot expose would pass the random checks under every seed:
    add a gadget for it to checks.SENTINEL. Inert are only the models of an operator an
    implementation in that style has no node for (sub and div composed, neg composed; tanh,
    exp and log, which the core sentinel does not use: their own sentinels expose them)."""
    inert = {key for key, outcome in checks.targets().items() if outcome != "differs"}
    structural = {(bug, composition, walk) for bug in misconceptions.MISCONCEPTIONS
                  for composition, walk in misconceptions.STYLES
                  if bug in misconceptions.EXTENSION_MODELS
                  or bug in ("sub-sign", "div-sign", "div-denominator") and composition == "composed"
                  or bug.startswith("missing-backward-") and bug.split("-")[-1] not in OWN_NODES[composition]}
    assert inert == structural


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**31))
def test_random_checks_tell_every_misconception_apart_under_every_seed(seed):
    """Every model the witness sentinel exposes fails every random graph (a model it does not
    expose may still fail one whose random part holds its operator); the graphs' reference
    gradients agree with finite differences."""
    want = checks.targets()
    for check in checks.CHECKS:
        if check.id.startswith("backward-random"):
            program = check.concrete_params(seed)["program"]
            got = checks.outcomes(program)
            assert {key for key in want if (got[key] == "differs") != (want[key] == "differs")} == set(), check.id
            slopes = misconceptions.finite_differences(program)
            assert all(math.isclose(g, s, rel_tol=judge.FD_REL_TOL, abs_tol=judge.FD_ABS_TOL)
                       for g, s in zip(misconceptions.simulate(program)[1], slopes)), check.id


def test_sentinels_are_redrawn_from_the_same_seed_stream_and_a_missing_gadget_is_an_error(monkeypatch):
    assert checks.sentinel(3) == checks.sentinel(3)
    checks._SENTINELS.clear()
    assert checks.sentinel(3) == checks.sentinel(3) != checks.sentinel(4)
    monkeypatch.setattr(checks, "targets", lambda: {key: "differs" for key in checks.outcomes(
        checks.sentinel_program(checks.WITNESS))})  # sub-sign in composed style can never differ
    monkeypatch.setattr(checks, "_SENTINELS", {})
    with pytest.raises(RuntimeError, match="sub-sign"):
        checks.sentinel(5)


def test_every_mutant_scores_the_same_under_every_seed(tmp_path):
    """Only the random checks depend on the seed (asserted); every mutant and correct variant
    of the corpus fails the same of them, so scores the same, under three seeds (the other checks are the same data under every seed)."""
    seeds = (SEED, 1, 2**31 - 5)
    by_seed = {seed: checks.compile_checks(seed) for seed in seeds}
    fixed = {seed: [c for c in compiled if not c["id"].startswith("backward-random")]
             for seed, compiled in by_seed.items()}
    assert all(fixed[seed] == fixed[SEED] for seed in seeds)
    for name, submission in {**MUTANTS, **VARIANTS}.items():
        from mutants import write

        ns, failure = inprocess.load(write(submission, tmp_path / name))
        outcomes = set()
        for seed in seeds:
            random_checks = [c for c in by_seed[seed] if c["id"].startswith("backward-random")]
            if ns is None:
                results = [(c, inprocess.load_failed(c, failure)) for c in random_checks]
            else:
                results = inprocess.run_checks(ns, random_checks)
            outcomes.add(tuple(sorted((c["id"], v.passed) for c, v in results)))
        assert len(outcomes) == 1, (name, outcomes)


# The reviewer's second hack (issue 13, row 14 again): backward() never calls the closures of
# + * ** relu but applies the chain rule itself from each node's _op, and the closures assign
# (=) except where their two operands are one Value (a + a, a * a), the case the same-node
# steps tried alone. Every gradient after backward() is right; only closures called alone,
# on inputs that already hold a grad, show the assignments.
CHAIN_RULE_BACKWARD = TOPO_ORDER + CHAIN_RULE_FROM_OP + """            else:
                node._backward()
"""
SAME_NODE_ADDS = {  # each closure as the hack writes it
    ADD_CLOSURE: "            if self is other:\n                self.grad += 2 * out.grad\n"
                 "            else:\n                self.grad = out.grad\n                other.grad = out.grad\n",
    MUL_CLOSURE: "            if self is other:\n                self.grad += 2 * self.data * out.grad\n"
                 "            else:\n                self.grad = other.data * out.grad\n"
                 "                other.grad = self.data * out.grad\n",
    "self.grad += exponent * self.data ** (exponent - 1) * out.grad":
        "self.grad = exponent * self.data ** (exponent - 1) * out.grad",
    "self.grad += (out.data > 0) * out.grad": "self.grad = (out.data > 0) * out.grad",
}
# Where each operator's accumulation lesson lives: the check of its closure called alone.
CLOSURE_CHECKS = {ADD_CLOSURE: "add-same-node-step", MUL_CLOSURE: "mul-same-node-step",
                  "self.grad += exponent * self.data ** (exponent - 1) * out.grad": "pow-square-step",
                  "self.grad += (out.data > 0) * out.grad": "relu-positive-step"}


def graded_with_carry(source, compiled, tmp_path):
    (tmp_path / "submission.py").write_text(source)
    return inprocess.run_directory(tmp_path, compiled, carry_errors=True)


def lost(results):
    return {c["id"] for c, v in results if c["points"] and not v.passed}


def test_the_chain_rule_backward_is_right_so_only_the_closures_can_show_the_assignments(compiled, tmp_path):
    """The hack is real: with honest closures it scores full marks (its backward() is right),
    so whatever it loses with assigning closures is lost at the closures."""
    results = graded_with_carry(one_module([("engine.py", BACKWARD, CHAIN_RULE_BACKWARD)]), compiled, tmp_path)
    assert inprocess.score(results) == (100, 100)


@pytest.mark.parametrize("closure", list(SAME_NODE_ADDS), ids=["add", "mul", "pow", "relu"])
def test_a_closure_that_adds_only_for_a_same_node_loses_what_the_honest_assignment_loses_there(
        closure, compiled, tmp_path):
    """One operator's closure assigns where its inputs are distinct: behind the chain-rule
    backward() it fails exactly the closure check of that operator, as the honest = (the
    reference with += turned into =, backward() untouched) does; a check the honest bug
    loses beyond it is one that calls backward()."""
    check = CLOSURE_CHECKS[closure]
    hack = graded_with_carry(one_module([("engine.py", BACKWARD, CHAIN_RULE_BACKWARD),
                                         ("engine.py", closure, SAME_NODE_ADDS[closure])]), compiled, tmp_path)
    assert lost(hack) == {check}
    honest = graded_with_carry(one_module([("engine.py", closure, closure.replace("+=", "="))]), compiled, tmp_path)
    assert check in lost(honest)
    whole_graph = {c["id"] for c in compiled if c["params"].get("sweep") == "backward" or c["probe"] != "graph"}
    assert lost(honest) - {check} <= whole_graph
    # the honest bug is named at its closure check: = instead of +=
    verdict = dict((c["id"], v) for c, v in honest)[check]
    assert "accumulate-grad" in verdict.diagnoses and "assigns (=) instead of adding (+=)" in verdict.message


def test_the_reviewers_hack_loses_every_closure_check_the_honest_assignment_loses(compiled, tmp_path):
    """Every closure written as the hack writes it: it loses the four closure checks, each of
    the points the honest = (every closure) loses there; and no more than the honest bug."""
    patches = [("engine.py", BACKWARD, CHAIN_RULE_BACKWARD)] + [("engine.py", old, new)
                                                                 for old, new in SAME_NODE_ADDS.items()]
    hack = graded_with_carry(one_module(patches), compiled, tmp_path)
    honest = graded_with_carry(one_module([("engine.py", old, old.replace("+=", "=")) for old in SAME_NODE_ADDS]),
                               compiled, tmp_path)
    assert lost(hack) == set(CLOSURE_CHECKS.values()) <= lost(honest)
    assert inprocess.score(hack)[0] <= 100 - sum(c["points"] for c in compiled if c["id"] in CLOSURE_CHECKS.values())
    assert inprocess.score(honest)[0] <= inprocess.score(hack)[0]


def test_the_deep_chain_runs_at_pythons_default_recursion_limit_and_gives_back_the_callers():
    """A limit the student raised is put back to 1,000 for backward() alone: in a notebook's
    kernel (the in-process exports) the student's own limit is what remains after."""
    limits = []

    class Node:  # just enough of a Value for a chain of additions
        def __init__(self, data, child=None):
            self.data, self.grad, self.child = data, 0.0, child

        def __add__(self, other):
            return Node(self.data + other, self)

        def backward(self):
            limits.append(sys.getrecursionlimit())
            node = self
            while node is not None:
                node.grad, node = 1.0, node.child

    raised = sys.getrecursionlimit()
    sys.setrecursionlimit(raised + 5_000)
    try:
        observed = probes.chain({"Value": Node}, 10)
        after = sys.getrecursionlimit()
    finally:
        sys.setrecursionlimit(raised)
    assert limits == [probes.DEFAULT_RECURSION_LIMIT] and after == raised + 5_000
    assert observed == {"leaf_grad": 1.0, "root_data": 11.0}


def test_a_recursive_sort_fails_the_deep_chain_even_with_sys_setrecursionlimit_replaced(monkeypatch):
    """A submission that replaced sys.setrecursionlimit at import (say by a function that does
    nothing, after raising the limit) cannot keep its raised limit for the deep chain."""
    class Node:
        def __init__(self, data, child=None):
            self.data, self.grad, self.child = data, 0.0, child

        def __add__(self, other):
            return Node(self.data + other, self)

        def backward(self):
            sys.setrecursionlimit(100_000)  # the replaced one: does nothing

            def visit(node):  # recursion, one frame per node
                node.grad = 1.0
                if node.child is not None:
                    visit(node.child)

            visit(self)

    raised = sys.getrecursionlimit()
    sys.setrecursionlimit(raised + 20_000)
    monkeypatch.setattr(sys, "setrecursionlimit", lambda limit: None)
    try:
        with pytest.raises(RecursionError):
            probes.chain({"Value": Node}, 3_000)
        assert sys.getrecursionlimit() == raised + 20_000  # the caller's limit, given back
    finally:
        probes._set_recursion_limit(raised)
