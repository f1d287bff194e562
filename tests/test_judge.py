"""The judges: what they accept as a number, how they compare, and how a failure is named."""
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autograder import checks, judge, probes
from autograder.judge import DIAGNOSES, MISCONCEPTIONS, STYLES
from solutions.train import LOSS_THRESHOLD

REFERENCE = checks.reference_namespace()
seeds = st.integers(0, 2**32)


def graph_params(text, sweep="backward", **leaves):
    params = {"program": checks.expression(text, **leaves), "sweep": sweep}
    if sweep == "local":
        params["upstream"] = checks.UPSTREAM
    return params


def observe(params, ns=REFERENCE):
    return probes.run(ns, "graph", params)


# --- the vocabulary ------------------------------------------------------------------------

DESIGN_VOCABULARY = {  # DESIGN.md §4, the ids other parts of the kit depend on
    "accumulate-grad", "seed-root-grad", "topo-order", "topo-visited", "topo-coverage", "mul-local-grad",
    "pow-local-grad", "relu-local-grad", "chain-rule", "reflected-ops", "graph-edge-missing", "value-identity",
    "constant-wrapping", "sub-div-composition", "nn-parameters", "nn-forward", "zero-grad", "recursion-depth",
    "training", "not-implemented", "load-error",
    # the extension exercises (issue 18)
    "tanh-local-grad", "exp-local-grad", "log-local-grad", "hinge-loss", "l2-regularisation", "accuracy",
}


def test_diagnoses_are_exactly_the_design_vocabulary_each_with_a_hint():
    assert set(DIAGNOSES) == DESIGN_VOCABULARY
    assert all(hint.endswith(".") and len(hint) > 40 for hint in DIAGNOSES.values())


def test_every_named_diagnosis_is_in_the_vocabulary():
    named = {d for m in [*MISCONCEPTIONS.values(), *judge.EXTENSION_MISCONCEPTIONS.values()] for d in m.diagnoses}
    named |= {d for ids in judge.FIELD_DIAGNOSES.values() for d in ids}
    named |= {d for ids in judge._FORWARD_DIAGNOSES.values() for d in ids}
    assert named <= set(DIAGNOSES)


def test_the_judge_threshold_is_the_reference_training_threshold():
    assert judge.LOSS_THRESHOLD == LOSS_THRESHOLD


# --- the float model agrees with the reference ------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(seeds, st.integers(6, 40))
def test_model_without_bugs_reproduces_the_reference_in_every_style(seed, size):
    program = checks.random_program(random.Random(seed), size)
    seen = observe({"program": program, "sweep": "backward"})
    for style in STYLES:
        data, grad = judge.simulate(program, style=style)
        assert all(map(judge.close, data, seen["data"])), style
        assert all(map(judge.close, grad, seen["grad"])), style


@settings(max_examples=25, deadline=None)
@given(seeds, st.integers(6, 40))
def test_reference_gradients_match_finite_differences(seed, size):
    program = checks.random_program(random.Random(seed), size)
    slopes = judge.finite_differences(program)
    grads = observe({"program": program, "sweep": "backward"})["grad"]
    for slope, grad in zip(slopes, grads):
        assert math.isclose(slope, grad, rel_tol=judge.FD_REL_TOL, abs_tol=judge.FD_ABS_TOL)


def test_finite_differences_of_a_known_expression():
    # d/da of (a * b + a) ** 2 at a = 2, b = 3 is 2 * (a*b + a) * (b + 1) = 64
    slopes = judge.finite_differences(checks.expression("(a * b + a) ** 2", a=2.0, b=3.0))
    assert slopes[0] == pytest.approx(64.0, rel=1e-7)
    assert slopes[1] == pytest.approx(2 * 8.0 * 2.0, rel=1e-7)


def catalogue_graphs():
    return [c for c in checks.CHECKS if c.probe == "graph" and not callable(c.params)]


@pytest.mark.parametrize("bug", MISCONCEPTIONS)
def test_every_misconception_changes_some_catalogue_check_and_is_recognised_there(bug):
    """Each model is reachable: some fixed check's graph tells it from correct code, and
    explain() names it (or, for a rare model, names some model) from its gradients."""
    recognised = False
    for check in catalogue_graphs():
        params = check.params
        for style in STYLES:
            sweep, upstream = params["sweep"], params.get("upstream", 1.0)
            _, right = judge.simulate(params["program"], None, upstream, sweep, style)
            _, wrong = judge.simulate(params["program"], bug, upstream, sweep, style)
            if not judge._all_close(right, wrong):
                found = judge.explain(params["program"], wrong, sweep, upstream)
                recognised |= bug in found or (MISCONCEPTIONS[bug].rare and bool(found))
    assert recognised


def test_composed_and_direct_sub_are_different_graphs_with_the_same_gradients():
    program = checks.expression("a - b", a=6.0, b=3.0)
    composed, _ = judge.expand(program, "composed")
    direct, _ = judge.expand(program, "direct")
    assert [n.op for n in composed] == ["leaf", "leaf", "const", "mul", "add"]
    assert [n.op for n in direct] == ["leaf", "leaf", "sub"]
    assert judge.simulate(program, style=STYLES[0])[1] == judge.simulate(program, style=STYLES[-1])[1]


def test_the_intermediate_node_lesson_in_the_model():
    """DESIGN §2: with only c._backward() on c = a - b (composed), b gets nothing; written
    directly, b gets -11. Both are correct code, which is why no check sweeps sub locally."""
    program = checks.expression("a - b", a=5.0, b=4.0)
    assert judge.simulate(program, None, 11.0, "local", ("composed", "stack"))[1][:2] == [11.0, 0.0]
    assert judge.simulate(program, None, 11.0, "local", ("direct", "stack"))[1][:2] == [11.0, -11.0]


# --- the gradients judge ------------------------------------------------------------------------

def test_gradients_judge_passes_the_reference_and_names_an_assigning_add():
    params = graph_params("a + a", a=3.0)
    expected = observe(params)
    assert judge.gradients(expected, expected, params).passed
    observed = {"data": expected["data"], "grad": [1.0, 1.0]}  # a.grad = out.grad, assigned twice
    verdict = judge.gradients(observed, expected, params)
    assert not verdict.passed and verdict.diagnoses == ["accumulate-grad"]
    assert verdict.message == "a gradient is wrong. " + DIAGNOSES["accumulate-grad"]
    assert "a.grad = 1.0, expected 2.0" in verdict.detail  # what a public check may show


def test_gradients_judge_checks_finite_differences_too():
    """A reference that were wrong would not drag the student down with it: after a full
    backward() the grads must also match central differences of the forward pass."""
    params = graph_params("a * b", a=3.0, b=-2.0)
    wrong_reference = {"data": [3.0, -2.0, -6.0], "grad": [-2.0, 3.5, 1.0]}
    verdict = judge.gradients(wrong_reference, wrong_reference, params)
    assert not verdict.passed
    assert "3.5" in verdict.detail and "3.5" not in verdict.message


def test_gradients_judge_reports_wrong_forward_values_before_gradients():
    params = graph_params("2 - a", a=5.0)
    expected = observe(params)
    observed = {"data": [5.0, 3.0], "grad": [1.0, 1.0]}  # computed a - 2
    verdict = judge.gradients(observed, expected, params)
    assert verdict.diagnoses == ["reflected-ops"]
    assert verdict.message.startswith("the value of a number minus a Value is wrong, so the gradients")


@pytest.mark.parametrize("fake", [
    {"not_a_number": "Mock"}, "2.0", True, None, [2.0], float("nan"), float("inf"),
])
def test_only_plain_finite_numbers_count(fake):
    params = graph_params("a * b", a=3.0, b=-2.0)
    expected = observe(params)
    observed = {"data": expected["data"], "grad": [fake, 3.0, 1.0]}
    assert not judge.gradients(observed, expected, params).passed


def test_malformed_observations_fail_without_raising():
    params = graph_params("a * b", a=3.0, b=-2.0)
    expected = observe(params)
    for observed in (None, [], {}, {"data": [1.0], "grad": [1.0]}, {"data": "x", "grad": "y"}):
        assert not judge.gradients(observed, expected, params).passed
    for name in ("equal", "zeroed", "loss_history", "converges"):
        assert not judge.judge(name, "garbage", {"losses": [1.0], "output": 1.0}, {}).passed


def test_a_model_that_explains_nothing_falls_back_only_to_unmistakable_signs():
    params = graph_params("a * b", a=3.0, b=-2.0)
    expected = observe(params)
    odd = judge.gradients({"data": expected["data"], "grad": [7.0, 7.0, 1.0]}, expected, params)
    assert odd.diagnoses == []
    unseeded = judge.gradients({"data": expected["data"], "grad": [7.0, 7.0, 5.0]}, expected, params)
    assert unseeded.diagnoses == ["seed-root-grad"]


# --- the other judges -----------------------------------------------------------------------

def test_equal_is_strict_about_types():
    assert judge.equal({"flag": True, "n": 28}, {"flag": True, "n": 28}, {}).passed
    assert not judge.equal({"flag": 1, "n": 28}, {"flag": True, "n": 28}, {}).passed
    assert not judge.equal({"flag": True, "n": "28"}, {"flag": True, "n": 28}, {}).passed
    verdict = judge.equal({"parameter_count": 21}, {"parameter_count": 28}, {})
    assert verdict.diagnoses == ["nn-parameters"] and "21" not in verdict.message


def test_zeroed_wants_every_grad_zero_and_some_parameters():
    assert judge.zeroed({"grads": [0.0, 0, 0.0]}, {}, {}).passed
    assert judge.zeroed({"grads": [0.0, 5.0]}, {}, {}).diagnoses == ["zero-grad"]
    assert judge.zeroed({"grads": []}, {}, {}).diagnoses == ["nn-parameters"]


def test_loss_history_tolerates_rounding_but_not_a_wrong_step():
    want = {"losses": [0.9, 0.5, 0.25]}
    assert judge.loss_history({"losses": [0.9, 0.5 * (1 + 1e-9), 0.25]}, want, {}).passed
    verdict = judge.loss_history({"losses": [0.9, 0.51, 0.25]}, want, {})
    assert not verdict.passed and "epoch 1" in verdict.message


def test_converges_compares_the_last_loss_with_the_threshold():
    assert judge.converges({"losses": [0.9, LOSS_THRESHOLD * 0.99]}, {}, {}).passed
    assert not judge.converges({"losses": [0.9, LOSS_THRESHOLD]}, {}, {}).passed


# --- failures of the probe itself -------------------------------------------------------------

def failure(error, message="", where=None):
    return {"error": error, "message": message, "where": where}


def check_with(text="a + b", **leaves):
    return {"id": "x", "timeout": 2.0, "params": graph_params(text, **(leaves or {"a": 1.0, "b": 2.0}))}


@pytest.mark.parametrize("error, message, phase, diagnosis", [
    ("NotImplementedError", "", "backward()", "not-implemented"),
    ("KeyError", "'MLP'", "MLP(3, [3, 3, 1])", "load-error"),
    ("TypeError", "unsupported operand type(s) for -: 'float' and 'Value'", "training epoch 0: forward",
     "reflected-ops"),
    ("AttributeError", "'float' object has no attribute 'data'", "building a + 2", "constant-wrapping"),
    ("AttributeError", "'int' object has no attribute 'data'", "building 2 + a", "constant-wrapping"),
    ("RecursionError", "maximum recursion depth exceeded", "backward() on a chain of 20000 nodes",
     "recursion-depth"),
    ("TypeError", "unhashable type: 'Value'", "backward()", "value-identity"),
    ("Timeout", "", "backward()", "topo-visited"),
])
def test_probe_failures_are_named(error, message, phase, diagnosis):
    verdict = judge.judge_failure(check_with(), failure(error, message), phase)
    assert verdict.diagnoses == [diagnosis] and not verdict.passed


def test_a_reflected_operator_that_recurses_forever_is_a_reflected_ops_bug():
    check = check_with("2 + a", a=1.0)  # __radd__ = lambda self, other: other + self
    phase = f"building {probes.describe(check['params']['program'])}"
    assert phase == "building 2 + a"
    verdict = judge.judge_failure(check, failure("RecursionError", "maximum recursion depth"), phase)
    assert verdict.diagnoses == ["reflected-ops"]


def test_failure_messages_say_where_but_never_what_was_built():
    check = check_with("a * 7.25 + b", a=1.5, b=2.0)
    where = {"file": "/tmp/x/submission.py", "line": 12, "function": "__add__"}
    verdict = judge.judge_failure(check, failure("ValueError", "bad 7.25", where), "building (a * 7.25) + b")
    assert verdict.message == "ValueError while building the graph (line 12 of submission.py, in __add__)"
    assert "7.25" in verdict.detail and "7.25" not in verdict.message


def test_timeouts_name_the_limit():
    verdict = judge.judge_failure(check_with(), failure("Timeout"), "MLP.zero_grad()")
    assert verdict.message == "took longer than 2.0 s while MLP.zero_grad()"
