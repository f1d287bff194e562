"""The catalogue's declarations, their compilation to plain data, the random graphs, the
in-process runner, and docs/checks.md."""
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autograder import checks, inprocess, judge, misconceptions, probes

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = ("value", "add", "mul", "pow", "relu", "backward", "sub-div", "nn", "training", "deep")


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
    assert {c["id"] for c in compiled} == {c.id for c in checks.CHECKS}
    repr_check = next(c for c in compiled if c["id"] == "value-repr")
    assert repr_check["expected"] == {"repr": "Value(data=5.0, grad=0.0)", "data": 5.0, "grad": 0.0}
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
