"""The judges: what they accept as a number, how they compare, and how a failure is named."""
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autograder import checks, judge, misconceptions, probes
from autograder.judge import DIAGNOSES
from autograder.misconceptions import MISCONCEPTIONS, STYLES
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
    "l2-from-data", "accuracy-scale", "learning-rate",
    "loss-from-data", "moons-loss-order", "update-sign",
}


def test_diagnoses_are_exactly_the_design_vocabulary_each_with_a_hint():
    assert set(DIAGNOSES) == DESIGN_VOCABULARY
    assert all(hint.endswith(".") and len(hint) > 40 for hint in DIAGNOSES.values())


def test_every_named_diagnosis_is_in_the_vocabulary():
    named = {d for m in MISCONCEPTIONS.values() for d in m.diagnoses}  # the extension models too
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
        data, grad = misconceptions.simulate(program, style=style)
        assert all(map(judge.close, data, seen["data"])), style
        assert all(map(judge.close, grad, seen["grad"])), style


@settings(max_examples=25, deadline=None)
@given(seeds, st.integers(6, 40))
def test_reference_gradients_match_finite_differences(seed, size):
    program = checks.random_program(random.Random(seed), size)
    slopes = misconceptions.finite_differences(program)
    grads = observe({"program": program, "sweep": "backward"})["grad"]
    for slope, grad in zip(slopes, grads):
        assert math.isclose(slope, grad, rel_tol=judge.FD_REL_TOL, abs_tol=judge.FD_ABS_TOL)


def test_finite_differences_of_a_known_expression():
    # d/da of (a * b + a) ** 2 at a = 2, b = 3 is 2 * (a*b + a) * (b + 1) = 64
    slopes = misconceptions.finite_differences(checks.expression("(a * b + a) ** 2", a=2.0, b=3.0))
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
            sweep, upstream, local = params["sweep"], params.get("upstream", 1.0), misconceptions.local_step(params)
            _, right = misconceptions.simulate(params["program"], None, upstream, sweep, style, **local)
            _, wrong = misconceptions.simulate(params["program"], bug, upstream, sweep, style, **local)
            if not all(map(judge.close, right, wrong)):
                found = misconceptions.explain(params["program"], wrong, sweep, upstream, **local)
                recognised |= bug in found or (MISCONCEPTIONS[bug].rare and bool(found))
    assert recognised


def test_composed_and_direct_sub_are_different_graphs_with_the_same_gradients():
    program = checks.expression("a - b", a=6.0, b=3.0)
    composed, _ = misconceptions.expand(program, "composed")
    direct, _ = misconceptions.expand(program, "direct")
    assert [n.op for n in composed] == ["leaf", "leaf", "const", "mul", "add"]
    assert [n.op for n in direct] == ["leaf", "leaf", "sub"]
    assert misconceptions.simulate(program, style=STYLES[0])[1] == misconceptions.simulate(program, style=STYLES[-1])[1]


def test_the_intermediate_node_lesson_in_the_model():
    """DESIGN §2: with only c._backward() on c = a - b (composed), b gets nothing; written
    directly, b gets -11. Both are correct code, which is why no check sweeps sub locally."""
    program = checks.expression("a - b", a=5.0, b=4.0)
    assert misconceptions.simulate(program, None, 11.0, "local", ("composed", "stack"))[1][:2] == [11.0, 0.0]
    assert misconceptions.simulate(program, None, 11.0, "local", ("direct", "stack"))[1][:2] == [11.0, -11.0]


# --- the gradients judge ------------------------------------------------------------------------

def test_gradients_judge_passes_the_reference_and_says_where_an_assigning_add_goes_wrong():
    params = graph_params("a + a", a=3.0)
    expected = observe(params)
    assert judge.gradients(expected, expected, params).passed
    observed = {"data": expected["data"], "grad": [1.0, 1.0]}  # a.grad = out.grad, assigned twice
    verdict = judge.gradients(observed, expected, params)
    assert not verdict.passed and verdict.diagnoses == []  # one check alone names no model
    assert verdict.message == ("a gradient is wrong: the gradient goes wrong at a sum: its output's grad is "
                               "right, the grad of its input (both operands) is too small")  # not "its inputs's" (#14 review 7)
    assert "a.grad = 1.0, expected 2.0" in verdict.detail  # what a public check may show
    assert "a.grad is 2× too small" in verdict.detail


def check_of(text, sweep="backward", **leaves):
    params = graph_params(text, sweep, **leaves)
    return {"id": text, "probe": "graph", "params": params, "judge": "gradients", "expected": observe(params)}


def diagnosed(checks_and_bugs, style=STYLES[0]):
    """The submission-level verdicts of checks observed as an implementation with ``bugs``."""
    results = []
    for check, bugs in checks_and_bugs:
        params = check["params"]
        data, grad = misconceptions.simulate(params["program"], bugs, params.get("upstream", 1.0),
                                             params["sweep"], style)
        observed = {"data": data, "grad": grad}
        results.append((check, observed, judge.judge("gradients", observed, check["expected"], params)))
    return judge.diagnose_submission(results)


def test_a_model_that_predicts_a_failure_where_the_submission_passed_is_ruled_out():
    """mul holding the sum rule: on 2 / a alone, dropping pow's upstream fits as well; but
    the pow check passed, so only the mul model is named."""
    rdiv, pow_step, mul_step = (check_of("2 / a", a=4.0), check_of("a ** 2", "local", a=5.0),
                                check_of("a * b", "local", a=5.0, b=6.0))
    alone = misconceptions.explain(rdiv["params"]["program"],
                                   misconceptions.simulate(rdiv["params"]["program"], "mul-sum-rule")[1])
    assert "mul-sum-rule" in alone and len(alone) > 1
    verdicts = diagnosed([(rdiv, "mul-sum-rule"), (pow_step, "mul-sum-rule"), (mul_step, "mul-sum-rule")])
    assert [v.passed for v in verdicts] == [False, True, False]
    assert verdicts[0].diagnoses == verdicts[2].diagnoses == ["mul-local-grad"]
    assert "holds the sum rule" in verdicts[0].message and "pow" not in verdicts[0].message


def test_the_model_that_explains_most_of_the_evidence_is_named():
    """seed-after-loop and a missing _backward of mul agree on a * b; only the seed model
    also explains a + b."""
    mul, add = check_of("a * b", a=3.0, b=-2.0), check_of("a + b", a=3.0, b=-2.0)
    verdicts = diagnosed([(mul, "seed-after-loop"), (add, "seed-after-loop")])
    assert [v.diagnoses for v in verdicts] == [["seed-root-grad"], ["seed-root-grad"]]


def test_an_unmodelled_bug_gets_where_it_goes_wrong_and_no_misconception():
    check = check_of("a.relu() * 2", a=3.0)
    observed = {"data": check["expected"]["data"], "grad": [14.0, 2.0, 1.0]}  # relu passes 7x its grad
    (verdict,) = judge.diagnose_submission(
        [(check, observed, judge.judge("gradients", observed, check["expected"], check["params"]))])
    assert verdict.diagnoses == []
    assert verdict.message == ("a gradient is wrong: the gradient goes wrong at a relu() node: its output's grad "
                               "is right, its input's is too large")
    assert "a.relu(): its grad is right, a.grad is 7× too large" in verdict.detail


def test_node_labels_are_unambiguous():
    program = checks.expression("s = a * a; p = s ** 2; n = -a; p.relu() + n.relu() + s", a=2.0)
    assert judge.label(program, 0) == "a"
    assert judge.label(program, 1) == "(a * a)"
    assert judge.label(program, 2) == "((a * a)**2)"
    assert probes.describe(program, 4) == "((a * a)**2).relu()"
    assert probes.describe(program, 5) == "(-a).relu()"


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


def test_a_wrong_root_grad_is_a_seed_diagnosis_and_nothing_else_is_guessed():
    params = graph_params("a * b", a=3.0, b=-2.0)
    expected = observe(params)
    odd = judge.gradients({"data": expected["data"], "grad": [7.0, 7.0, 1.0]}, expected, params)
    assert odd.diagnoses == []
    unseeded = judge.gradients({"data": expected["data"], "grad": [7.0, 7.0, 5.0]}, expected, params)
    assert unseeded.diagnoses == ["seed-root-grad"]
    nothing = judge.gradients({"data": expected["data"], "grad": [0.0, 0.0, 1.0]}, expected, params)
    assert nothing.diagnoses == []  # no coverage guess: where it goes wrong says it


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


def test_the_graders_test_entries_are_diagnosed_in_place_scores_untouched():
    """grade.py's form: dicts, and each check's observation (None when its probe failed)."""
    mul, add = check_of("a * b", a=3.0, b=-2.0), check_of("a + b", a=3.0, b=-2.0)
    observations, tests = [], []
    for check in (mul, add):
        data, grad = misconceptions.simulate(check["params"]["program"], "seed-after-loop")
        observed = {"data": data, "grad": grad}
        verdict = judge.judge("gradients", observed, check["expected"], check["params"])
        observations.append(observed)
        tests.append({"passed": verdict.passed, "score": 0.0, "message": verdict.message, "detail": verdict.detail,
                      "diagnoses": verdict.diagnoses})
    tests.append({"passed": False, "score": 0.0, "message": "TypeError", "detail": "", "diagnoses": []})
    observations.append(None)
    judge.diagnose_tests(tests, [mul, add, {"id": "x", "probe": "graph", "params": {}}], observations)
    assert [t["diagnoses"] for t in tests] == [["seed-root-grad"], ["seed-root-grad"], []]
    assert "set to one only after the loop" in tests[0]["message"] and tests[2]["message"] == "TypeError"
    assert all(t["score"] == 0.0 for t in tests)


def test_a_chain_with_a_wrong_gradient_and_no_recursion_is_not_a_recursion_problem():
    chain = {"id": "deep-chain", "probe": "chain", "params": {"length": 20000}, "judge": "equal",
             "expected": {"leaf_grad": 1.0, "root_data": 20001.0}}
    observed = {"leaf_grad": 0.0, "root_data": 20001.0}  # the sweep ran leaves first
    add = check_of("a + a + a", a=1.0)
    data, grad = misconceptions.simulate(add["params"]["program"], "forward-order")
    results = [(chain, observed, judge.judge("equal", observed, chain["expected"], chain["params"])),
               (add, {"data": data, "grad": grad}, judge.judge("gradients", {"data": data, "grad": grad},
                                                               add["expected"], add["params"]))]
    verdicts = judge.diagnose_submission(results)
    assert verdicts[0].diagnoses == ["topo-order"] and "recursion" not in verdicts[0].message


# --- the judge is total over odd JSON (review of issue 13, item 3) ---------------------------

HUGE = st.sampled_from([10**400, -10**400, 2**1024, int(1.7976931348623157e308) + 1])
odd_json = st.recursive(
    st.none() | st.booleans() | st.integers() | HUGE | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=6)
    | st.dictionaries(st.sampled_from(["data", "grad", "not_a_number", "backward_calls", "ordered_children",
                                       "leaf_grad", "root_data", "output", "losses", "grads"]) | st.text(max_size=4),
                      inner, max_size=6),
    max_leaves=25)


@pytest.fixture(scope="module")
def compiled_checks():
    return checks.compile_checks(7)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_the_judges_public_functions_never_raise_on_odd_json(compiled_checks, data):
    """`self.grad = 10**400` after backward() once raised OverflowError in is_number, out of
    diagnose_submission: a grader-fault row forced by the submission."""
    check = data.draw(st.sampled_from(compiled_checks))
    keys = list(check["expected"]) if isinstance(check["expected"], dict) else []
    shaped = st.fixed_dictionaries({key: odd_json for key in keys}, optional={"extra": odd_json})
    observed = data.draw(shaped | odd_json)
    verdict = judge.judge(check["judge"], observed, check["expected"], check["params"])
    judge.diagnose_submission([(check, observed, verdict)])
    failure = data.draw(st.dictionaries(st.sampled_from(["error", "message", "where"]), odd_json))
    judge.judge_failure(check, failure, data.draw(st.text(max_size=30)))
    assert all(judge.is_number(x) in (True, False) for x in (observed, *keys))


@pytest.mark.parametrize("huge", [10**400, -10**400])
def test_a_gradient_too_large_for_a_float_fails_the_check_with_a_reason(compiled_checks, huge):
    check = next(c for c in compiled_checks if c["probe"] == "graph" and c["params"].get("sweep") != "local")
    observed = dict(check["expected"], grad=[huge] * len(check["expected"]["grad"]))
    verdict = judge.judge(check["judge"], observed, check["expected"], check["params"])
    assert not verdict.passed
    assert judge.diagnose_submission([(check, observed, verdict)])[0].score == 0
    assert not judge.is_number(huge) and judge.is_number(10**300) and not judge.is_number(True)
