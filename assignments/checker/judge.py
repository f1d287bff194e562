"""Judges: decide a check from plain observations, and name the misconception behind a failure.

A judge gets what the probe saw in the student's code (``observed``), what the same probe
saw in the reference (``expected``), and the probe's parameters. It trusts nothing about
``observed`` except that it came out of a JSON parser: every number is checked to be a
plain finite int or float before it is compared. Uses the standard library only, so it can
ship with the handout's self-check.

A ``Verdict``'s ``message`` is shown for every check, hidden ones too, so it never names a
check's inputs or expected values; those go into ``detail``, shown for public checks only.

It holds no model of differentiation (it ships with the handout): a failed gradient check
says where, from the root down, the gradient first goes wrong (``locate``), and after all
checks have run, ``diagnose_submission`` names the misconception whose predicted
observations (``signatures``, computed by the instructor-side ``misconceptions`` module or
shipped with the public checks) agree with every check of the submission.
"""
import math
import sys
import re
from dataclasses import dataclass, field
from pathlib import PurePath

from . import probes

# Gradients are compared with a relative tolerance of 1e-6: a correct implementation may
# build sub/div directly or sum in another order, which changes rounding by a few ulps
# (relative 1e-15 per operation, 1e-13 over a 30-deep graph), while every misconception we
# know changes a gradient by a factor, a sign or a whole term, which is far above 1e-6.
REL_TOL = 1e-6
ABS_TOL = 1e-9

# Central finite differences f'(x) ~ (f(x + h) - f(x - h)) / 2h with h = 1e-6 * max(1, |x|)
# err by h**2 |f'''| / 6 (truncation, ~1e-12 for the bounded graphs we draw) plus about
# eps |f| / h (rounding, ~1e-10 * |f|). 1e-4 relative (1e-6 absolute) is far above both and
# still far below the factor-sized errors of a wrong gradient.
FD_STEP = 1e-6
FD_REL_TOL = 1e-4
FD_ABS_TOL = 1e-6

# The loss history of 50 epochs from known weights: a correct implementation differs from
# the reference only by summation order, which shifts each loss by ~1e-15 relative; gradient
# descent at lr 0.01 on this tiny problem does not amplify that beyond ~1e-12 in 50 steps.
# 1e-6 leaves room for that while any wrong gradient moves the history at once.
LOSS_REL_TOL = 1e-6
LOSS_THRESHOLD = 0.3  # = solutions.train.LOSS_THRESHOLD (a test keeps them equal)


# --- the diagnosis vocabulary (DESIGN.md §4): id -> a hint about the student's own code ----

DIAGNOSES = {
    "accumulate-grad": "A node used more than once must receive every contribution: in each "
    "_backward, add to .grad (+=), don't assign (=).",
    "seed-root-grad": "backward() must set the root's own grad to 1.0 before any _backward "
    "runs: every other gradient is a multiple of it.",
    "topo-order": "backward() must call _backward from the root down, in reverse topological "
    "order, so that a node passes its gradient on only after all of its parents have added "
    "theirs.",
    "topo-visited": "Each node's _backward must run exactly once: keep a visited set in the "
    "topological sort, or a node reached along two paths passes its gradient on twice.",
    "topo-coverage": "backward() must call _backward on every node the root depends on, "
    "intermediate nodes too (the -b inside a - b, the b**-1 inside a / b), not only the root "
    "or the leaves.",
    "mul-local-grad": "In out = a * b the local derivative with respect to a is b's data and "
    "with respect to b is a's data (not out.data, not its own), each times out.grad.",
    "pow-local-grad": "The power rule: the local derivative of x**k is k * x**(k - 1), taken "
    "at x = self.data.",
    "relu-local-grad": "ReLU's local derivative is 1 where its output is positive and 0 where "
    "the input was clipped to 0; the gradient passes only where the output is positive.",
    "chain-rule": "Every _backward must multiply its local derivative by out.grad (the chain "
    "rule), not pass the local derivative on alone.",
    "reflected-ops": "2 + a, 2 * a, 2 - a and 2 / a call a.__radd__, __rmul__, __rsub__ and "
    "__rtruediv__ with the number as `other`; define all four, and mind the order: 2 - a is "
    "other - self.",
    "graph-edge-missing": "Every operator must create its result with its inputs as children, "
    "Value(data, (self, other)): backward() finds the inputs only through _prev.",
    "value-identity": "Distinct Values must stay distinct nodes even when their data is equal, "
    "and must work in a set: don't define __eq__ or __hash__ by data (defining __eq__ alone "
    "makes Value unhashable).",
    "constant-wrapping": "Operators must accept a plain number as the other operand: wrap it "
    "first, other = other if isinstance(other, Value) else Value(other).",
    "sub-div-composition": "a - b is a + (-b) and a / b is a * b**-1: check the sign of b's "
    "gradient in a - b, and the denominator b**2 in a / b (d(a/b)/db = -a / b**2).",
    "nn-parameters": "parameters() must return every Value the training loop updates, each "
    "once: a Neuron's weights and its bias, and all of a Layer's or an MLP's neurons' "
    "parameters.",
    "nn-forward": "A Neuron computes sum(w_i * x_i) + bias, through relu() only when "
    "is_nonlinear; in an MLP every layer is nonlinear except the last.",
    "zero-grad": "zero_grad() must set the grad of every parameter back to 0.0.",
    "recursion-depth": "A recursive topological sort exceeds Python's recursion limit on deep "
    "graphs: walk the graph with an explicit stack instead of recursion.",
    "training": "Training follows from everything else: fix the failing gradient and nn checks "
    "first; the loss history then matches.",
    "not-implemented": "This part still raises NotImplementedError: replace the TODO with your "
    "code.",
    "load-error": "The submission did not load, or does not define Value, Module, Neuron, Layer "
    "and MLP at module level: run it top to bottom in a fresh kernel to see why.",
}


@dataclass
class Verdict:
    """How a check went. ``message`` is safe to show for any check; ``detail`` may name the
    check's inputs and expected values, so only public checks (or instructors) see it."""

    score: float  # fraction of the check's points, 0..1
    message: str = ""
    detail: str = ""
    diagnoses: list = field(default_factory=list)
    # What a picture is drawn from (never from the text): for a gradient check, plain numbers
    # {"data", "grad", "expected_grad": [per node], "wrong": [node indices]}; else None.
    observation: dict = None
    # A failed check that keeps its points by error carried forward (carry.py): what carries
    # it, {"models", "exercises", "diagnoses"}; else None.
    carried: dict = None

    @property
    def passed(self):
        return self.score >= 1.0


PASS = Verdict(1.0)


def fail(message, detail="", diagnoses=(), hint=None):
    """A failed verdict; ``hint`` (default: the hint of its first diagnosis) is appended to
    the message."""
    diagnoses = list(dict.fromkeys(diagnoses))
    hint = hint or (DIAGNOSES[diagnoses[0]] if diagnoses else None)
    if hint:
        message = f"{message}. {hint}"
    return Verdict(0.0, message, detail, diagnoses)


def close(a, b, rel=REL_TOL, abs_=ABS_TOL):
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


# A JSON int can be any size; beyond a float's range (10**400) it cannot be compared.
_LARGEST = int(sys.float_info.max)


def is_number(x):
    """A plain int or float the judge can compare: finite, within a float's range. Total:
    False, never an exception, for anything else."""
    if type(x) is int:
        return -_LARGEST <= x <= _LARGEST
    return type(x) is float and math.isfinite(x)


def bad_number(x, what, name_type=False):
    """Why ``x`` is not usable as a number, or None when it is."""
    if is_number(x):
        return None
    if isinstance(x, dict) and "not_a_number" in x:
        # The type's name is the submission's choice: only a detail (public checks) says it.
        return f"{what} is a {x['not_a_number']}, not a number" if name_type else f"{what} is not a number"
    if type(x) is float:
        return f"{what} is {x}"
    if type(x) is int:
        return f"{what} is an integer too large for a float"
    return f"{what} is not a number"


# --- judges ----------------------------------------------------------------------------


def _models():
    """The instructor-side misconception models (``misconceptions.py``), or None where they
    are absent: the handout's self-check reads their predictions from each check's
    ``signatures`` instead, and skips the finite-difference cross-check of the reference."""
    try:
        from . import misconceptions
    except ImportError:
        return None
    return misconceptions


_PLAIN = re.compile(r"[A-Za-z_]\w*(?:\.(?:relu|tanh|exp|log)\(\))*")


def label(program, index=None):
    """An unambiguous name for node ``index`` (default: the root) to put before ``.grad``:
    ``(a * a).grad``, never ``a * a.grad``."""
    text = probes.describe(program, index)
    return text if _PLAIN.fullmatch(text) else f"({text})"


def gradients(observed, expected, params):
    """Every node's data and grad match the reference's; after a full backward() the grads
    also match central finite differences of the forward pass (where the instructor-side
    models are present). A failure says where, from the root down, the gradient first goes
    wrong; which misconception explains it is the submission's diagnosis
    (``diagnose_submission``), not this check's alone."""
    program = params["program"]
    sweep = params.get("sweep", "backward")
    problem = _lists_problem(observed, ("data", "grad"), len(program))
    if problem:
        return fail(problem)
    wrong_value = forward(observed, expected, params)
    if not wrong_value.passed:
        wrong_value.message = wrong_value.message.replace(
            "is wrong", "is wrong, so the gradients cannot be judged", 1)
        return wrong_value
    for i, got in enumerate(observed["grad"]):
        problem = bad_number(got, f"the grad of node {i + 1}")
        if problem:
            return fail(problem, f"{label(program, i)}.grad: {bad_number(got, 'it', name_type=True)}")
    wrong = _wrong(observed["grad"], expected["grad"])
    models = _models()
    if sweep == "backward" and not wrong and models:
        # Precomputed with the compiled checks (checkcache): a pure function of the program.
        slopes = expected.get("slopes") or models.finite_differences(program)
        wrong = [i for i, (got, slope) in enumerate(zip(observed["grad"], slopes))
                 if not math.isclose(got, slope, rel_tol=FD_REL_TOL, abs_tol=FD_ABS_TOL)]
        expected = {"data": expected["data"], "grad": slopes}
    if not wrong:
        return PASS
    return wrong_gradients(params, observed, expected, wrong)


def _wrong(got, want):
    return [i for i, (g, w) in enumerate(zip(got, want)) if not (is_number(g) and close(g, w))]


def wrong_gradients(params, observed, expected, wrong, model=None):
    """The failed verdict of a gradient check: every wrong grad (detail), where the
    gradient first goes wrong, and ``model``'s words and diagnoses when the submission's
    diagnosis names one ({"words", "diagnoses"})."""
    program = params["program"]
    call = what_ran(params)
    found = "; ".join(f"{label(program, i)}.grad = {observed['grad'][i]!r}, expected {expected['grad'][i]!r}"
                      for i in wrong)
    # No counts in the message: the number of nodes is part of a hidden check's input.
    what = "a gradient is wrong" if len(wrong) == 1 else "several gradients are wrong"
    safe, full, diagnoses = locate(program, observed["grad"], expected["grad"], params.get("sweep", "backward"))
    if model:
        message, note, diagnoses = (f"{what}: it looks as if {model['words']}",
                                    f"it looks as if {model['words']}; the gradient goes wrong at {full}",
                                    model["diagnoses"])
    else:
        message, note = f"{what}: the gradient goes wrong at {safe}", f"it looks as if the gradient goes wrong at {full}"
    verdict = fail(message, f"after {call}: {found} ({note})", diagnoses,
                   model.get("hint") if model else None)
    verdict.observation = {"data": list(observed["data"]), "grad": list(observed["grad"]),
                           "expected_grad": list(expected["grad"]), "wrong": wrong}
    return verdict


def what_ran(params):
    """What a graph probe with ``params`` did, for a verdict's detail: "backward() on a * b",
    "only its _backward() with out.grad = 11.0 on a + a", or for a local sweep with grads
    held beforehand or several steps, every grad it set and every _backward it called."""
    program = params["program"]
    sweep, upstream = params.get("sweep", "backward"), params.get("upstream", 1.0)
    if sweep == "backward":
        return f"backward() on {probes.describe(program)}"
    grads, steps = params.get("grads", ()), params.get("steps")
    if not grads and steps is None:
        return f"only its _backward() with out.grad = {upstream} on {probes.describe(program)}"
    root = len(program) - 1
    held = ", ".join(f"{label(program, i)}.grad = {grad!r}" for i, grad in [(root, upstream), *grads])
    called = " then ".join(f"{label(program, i)}._backward()" for i in ((root,) if steps is None else steps))
    return f"setting {held}, then calling only {called}"


def locate(program, got, want, sweep="backward"):
    """Where the gradient first goes wrong, in backward order: the wrong node nearest the
    root (every node above it is right), and the operation whose _backward fed it.
    (words safe for any check, words with the nodes' labels and numbers, diagnoses): a
    wrong root grad under backward() is a seed-root-grad diagnosis, nothing else is."""
    i = max(_wrong(got, want))
    root = len(program) - 1
    safe_how, how = _how_wrong(got[i], want[i])
    if i == root:
        return (f"the root: its own grad {safe_how}", f"the root: {label(program, i)}.grad {how}",
                ["seed-root-grad"] if sweep == "backward" else [])
    parents = [j for j in range(i + 1, len(program)) if i in _inputs(program[j])]
    if len(parents) == 1:
        (j,) = parents
        op, inputs = program[j][0], _inputs(program[j])
        side = ("its input's" if len(inputs) == 1 else "the grad of its input (both operands)" if inputs.count(i) == 2
                else "its left input's" if inputs[0] == i else "its right input's")
        return (f"a{_OP_WORDS.get(op, 'n operation')}{' node' if op in _METHOD_OPS else ''}: its output's grad is "
                f"right, {side} {safe_how}",
                f"{label(program, j)}: its grad is right, {label(program, i)}.grad {how}", [])
    uses = ", ".join(label(program, j) for j in parents)
    return (f"a node used by several operations: their grads are right, its own {safe_how}",
            f"{label(program, i)}, used by {uses}: their grads are right, {label(program, i)}.grad {how}", [])


def _how_wrong(got, want):
    """(words without numbers, words with them) for how a gradient differs."""
    if not is_number(got):
        return "is not a number", "is not a number"
    if close(want, 0.0):
        return "should be zero but is not", f"is {got!r}, expected {want!r}"
    if close(got, 0.0):
        return "is zero", f"is {got!r}, expected {want!r}"
    ratio = got / want
    if ratio < 0:
        size = "" if close(ratio, -1.0) else f" and is {_times(-ratio)} as large"
        return "has the wrong sign", f"has the wrong sign{size}"
    if ratio > 1:
        return "is too large", f"is {_times(ratio)} too large"
    return "is too small", f"is {_times(1 / ratio)} too small"


def _times(ratio):
    return f"{round(ratio, 3):g}×"


_inputs = probes.inputs_of  # the program nodes an instruction reads


# --- the submission's diagnosis -----------------------------------------------------------


@dataclass
class Evidence:
    """One check the misconception models speak of, as the submission answered it."""

    index: int  # its place among the submission's results
    check: dict
    observed: dict
    passed: bool
    signatures: dict


def signatures_of(check):
    """A compiled check's model predictions: shipped with it (the handout), or computed by
    the instructor-side models; None when no model speaks of it."""
    if check.get("signatures") is not None:
        return check["signatures"]
    models = _models()
    return models.signatures(check) if models else None


def evidence(results):
    """The results the models speak of: gradient and chain checks whose probe answered with
    well-formed numbers and, for a graph, the reference's forward values (a wrong forward
    value is outside what the models predict) and no extension operator composed of others
    (the probe's ``composed``: the models replay tanh, exp and log as written directly)."""
    found = []
    for index, (check, observed, verdict) in enumerate(results):
        if not isinstance(observed, dict) or check.get("probe") not in ("graph", "chain"):
            continue
        if check["probe"] == "graph":
            n = len(check["params"]["program"])
            if _lists_problem(observed, ("data", "grad"), n) or not all(map(is_number, observed["grad"])):
                continue
            if not all(is_number(g) and close(g, w) for g, w in zip(observed["data"], check["expected"]["data"])):
                continue
            if observed.get("composed"):  # tanh through exp, say: the models know it written directly
                continue
        elif not is_number(observed.get("leaf_grad")):
            continue
        table = signatures_of(check)
        if table:
            found.append(Evidence(index, check, observed, verdict.passed, table))
    return found


def _reproduces(prediction, observed):
    if isinstance(prediction, dict):
        return all(_reproduces(value, observed.get(key)) for key, value in prediction.items())
    if isinstance(prediction, list):
        return isinstance(observed, list) and len(observed) == len(prediction) and all(
            map(_reproduces, prediction, observed))
    return is_number(observed) and close(observed, prediction)


reproduces = _reproduces  # carry.py compares the models' predictions the same way


def _weigh(item, name, style):
    """What one piece of evidence says of model ``name`` in ``style``: "explains" (a failed
    check it reproduces), "fits" (a passed check it predicts to pass, or one it cannot
    predict), or "contradicts".

    Where the submission keeps its children in a set (the probe reports
    ``ordered_children`` false), the order in which backward() reaches them follows id()s
    and is unknown: a model whose numbers depend on that order predicts one of several
    observations (its ``unordered`` list, over the orders the models try). Then it
    explains a failure it reproduces in any of those orders; a failure it reproduces in
    none is left unexplained but does not rule it out (the true order may be another one),
    unless it predicts the same in every order; and a pass rules it out only if it
    predicts a failure in every order."""
    entry = item.signatures["models"].get(name)
    predictions = item.signatures["predictions"]
    if item.observed.get("ordered_children") is False and entry and "unordered" in entry:
        possible = entry["unordered"][style]
    else:
        possible = [entry["row"][style] if entry else None]
    if item.passed:
        return "fits" if None in possible else "contradicts"
    if any(at is not None and _reproduces(predictions[at], item.observed) for at in possible):
        return "explains" if _calls_agree(item, entry, style, len(possible) > 1) else "contradicts"
    return "fits" if len(possible) > 1 else "contradicts"


def _calls_agree(item, entry, style, unordered):
    """Whether the model calls each node's _backward as often as the submission's backward()
    did (the probe counts them): models with the same gradients may differ there (a sweep in
    forward order and one that calls only the root's _backward). True where either side does
    not say, or where the count depends on an order of children a set hides."""
    observed = item.observed.get("backward_calls")
    if unordered or not entry or "calls" not in entry or "calls" not in item.signatures:
        return True
    if not (isinstance(observed, list) and all(type(n) is int for n in observed)):
        return True
    return observed == item.signatures["calls"][entry["calls"][style]]


def rank(found):
    """The models consistent with every piece of evidence in one style of implementation
    (a model that predicts a failure where the submission passed, or a pass where it
    failed, or other numbers, is ruled out; see ``_weigh`` for children kept in a set),
    best first: most failed checks explained, then
    common before rare, then the catalogue's order. A list of {"name", "style", "explains"
    (indices of results), "unmatched" (indices of failed results it fits only because their
    numbers depend on an order of children it cannot replay), "words", "diagnoses"}."""
    models = {}
    for item in found:
        for name, about in item.signatures["models"].items():
            models.setdefault(name, about)
    ranked = []
    for name, about in models.items():
        best = None
        for style in range(len(about["row"])):
            explains, unmatched = [], []
            for item in found:
                verdict = _weigh(item, name, style)
                if verdict == "explains":
                    explains.append(item.index)
                elif verdict == "contradicts":
                    break
                elif not item.passed:
                    unmatched.append(item.index)
            else:
                if explains and (best is None or len(explains) > len(best[1])):
                    best = (style, explains, unmatched)
        if best:
            ranked.append({"name": name, "style": found[0].signatures["styles"][best[0]], "explains": best[1],
                           "unmatched": best[2], "words": about["words"], "diagnoses": list(about["diagnoses"]),
                           "hint": about.get("hint"),
                           "order": (-len(best[1]), about["rare"], about["order"])})
    ranked.sort(key=lambda model: model["order"])
    return ranked


def diagnose_submission(results):
    """The diagnosis of one submission, from all of its checks at once.

    ``results``: [(compiled check, observation, verdict)] for every check the submission
    ran, observation being the probe's plain JSON (None when the probe raised, hung or
    crashed). Returns the verdicts, in order: each failed check that the best consistent
    model (see ``rank``) reproduces names that model, its words and its diagnoses; every
    other verdict is unchanged (a failed gradient check keeps where its gradient first goes
    wrong, honest for any bug). The sandboxed grader (``diagnose_tests``), the in-process
    runs (self-check, exports, tests) all diagnose here.
    """
    verdicts = [verdict for _, _, verdict in results]
    if all(verdict.passed for verdict in verdicts):  # nothing to explain: no model's predictions read
        return verdicts
    found = evidence(results)
    if all(item.passed for item in found):
        return verdicts
    ranked = rank(found)
    if not ranked:
        return verdicts
    best = ranked[0]
    unmatched = dict(best, words=f"{best['words']} ({UNORDERED_WORDS})")
    for item in found:
        if item.index in best["explains"]:
            verdicts[item.index] = _named(item, verdicts[item.index], best)
        elif item.index in best["unmatched"]:
            verdicts[item.index] = _named(item, verdicts[item.index], unmatched)
    return verdicts


# Said of a failure the best model fits but cannot reproduce: _prev is a set (see _weigh).
UNORDERED_WORDS = ("its exact numbers here depend on the order of the children in _prev, a set, "
                   "which cannot be replayed")


def _named(item, verdict, model):
    check, observed = item.check, item.observed
    if check["probe"] == "graph":
        wrong = _wrong(observed["grad"], check["expected"]["grad"])
        if wrong:
            return wrong_gradients(check["params"], observed, check["expected"], wrong, model)
    message = verdict.message
    for diagnosis in verdict.diagnoses[:1]:
        message = message.removesuffix(f". {DIAGNOSES[diagnosis]}")
    return fail(f"{message}: it looks as if {model['words']}",
                f"{verdict.detail} (it looks as if {model['words']})", model["diagnoses"], model.get("hint"))


def diagnose_tests(tests, compiled, observations):
    """``diagnose_submission`` for the grader's test entries (dicts with "passed",
    "message", "detail", "diagnoses", in the order of ``compiled``) and each check's
    observation (None when its probe failed): rewrites the entries' message, detail and
    diagnoses in place, never their scores; returns ``tests``."""
    results = [(check, observed, Verdict(1.0 if test["passed"] else 0.0, test["message"], test["detail"],
                                         list(test["diagnoses"])))
               for check, observed, test in zip(compiled, observations, tests)]
    for test, verdict in zip(tests, diagnose_submission(results)):
        test.update(message=verdict.message, detail=verdict.detail, diagnoses=list(verdict.diagnoses))
    return tests

def forward(observed, expected, params):
    """Every node of the program computes the reference's value."""
    program = params["program"]
    problem = _lists_problem(observed, ("data",), len(program))
    if problem:
        return fail(problem)
    for i, (got, want) in enumerate(zip(observed["data"], expected["data"])):
        problem = bad_number(got, f"the value of node {i + 1}")
        if problem or not close(got, want):
            op = program[i][0]
            return fail(
                f"the value of a{_OP_WORDS.get(op, 'n operation')} is wrong",
                f"{label(program, i)} computed {got!r}, expected {want!r}",
                _FORWARD_DIAGNOSES.get(op, ()),
            )
    return PASS


_OP_WORDS = {
    "add": " sum", "mul": " product", "sub": " difference", "div": " quotient", "pow": " power",
    "neg": " negation", "relu": " relu()",
    "add_c": " Value plus a number", "mul_c": " Value times a number",
    "sub_c": " Value minus a number", "div_c": " Value divided by a number",
    "c_add": " number plus a Value", "c_mul": " number times a Value",
    "c_sub": " number minus a Value", "c_div": " number divided by a Value",
}
_METHOD_OPS = ("relu",) + probes.UNARY_METHODS  # written x.op(): "a relu() node"
_FORWARD_DIAGNOSES = {
    "sub": ["sub-div-composition"], "div": ["sub-div-composition"], "neg": ["sub-div-composition"],
    "sub_c": ["sub-div-composition"], "div_c": ["sub-div-composition"],
    "c_add": ["reflected-ops"], "c_mul": ["reflected-ops"], "c_sub": ["reflected-ops"], "c_div": ["reflected-ops"],
}


def _lists_problem(observed, kinds, length):
    for kind in kinds:
        values = observed.get(kind) if isinstance(observed, dict) else None
        if not isinstance(values, list) or len(values) != length:
            return f"the probe reported no {kind} for the graph"
    return None


# Which idea a wrong field of an observation points at.
FIELD_DIAGNOSES = {
    "parameter_count": ["nn-parameters"],
    "distinct_parameters": ["nn-parameters"],
    "bias_in_parameters": ["nn-parameters"],
    "layer_sizes": ["nn-forward"],
    "nonlinear": ["nn-forward"],
    "output": ["nn-forward"],
    "losses": ["training"],
}


# What a field of an observation is, in words.
FIELD_WORDS = {
    "repr": "repr()", "data": "data", "grad": "starting grad", "output": "output",
    "weight_grads": "weights' grads", "bias_grad": "bias's grad",
    "parameter_count": "number of parameters", "distinct_parameters": "number of distinct parameters",
    "bias_in_parameters": "bias's place among the parameters", "layer_sizes": "layer sizes",
    "nonlinear": "choice of nonlinear neurons", "leaf_grad": "leaf's grad", "root_data": "root's value",
}


def equal(observed, expected, params):
    """Every field the reference reported is reported identically (numbers to tolerance)."""
    if not isinstance(observed, dict):
        return fail("the probe reported nothing")
    for key, want in expected.items():
        got = observed.get(key)
        if not _same(got, want):
            return fail(f"wrong {FIELD_WORDS.get(key, key.replace('_', ' '))}",
                        f"{key}: got {got!r}, expected {want!r}", FIELD_DIAGNOSES.get(key, ()))
    return PASS


# A number as a repr may print it: 5, 5.0, -3.5, 5.000000, 1e-07, inf, nan. No nested
# quantifiers, so matching is linear in the (capped) text whatever a submission prints.
_NUMBER = r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|inf|nan)"
_SHOWN = {name: re.compile(rf"\b{name}['\"]?\s*[=:]\s*({_NUMBER})") for name in ("data", "grad")}
REPR_CHARS = 200  # the probe sends at most this much of the repr


def represented(observed, expected, params):
    """repr() shows the Value's data and grad: the numbers after ``data=`` and ``grad=``
    (or ``data:``) are the reference's, however they are formatted (``grad=0`` as upstream
    micrograd prints it, ``{:.6g}``, extra fields around them)."""
    text = observed.get("repr") if isinstance(observed, dict) else None
    if not isinstance(text, str):
        return fail("repr() did not return text")
    text = text[:REPR_CHARS]
    for name in ("grad", "data"):  # grad first: Value(5.0) shows a number, but not which
        shown = _SHOWN[name].search(text)
        if not shown:
            return fail(f"repr() does not show {name}: it should read like Value(data=..., grad=...)",
                        f"repr(Value({params.get('data')!r})) is {text!r}")
        if not close(float(shown.group(1)), expected[name]):
            return fail(f"repr() shows the wrong {name}",
                        f"repr(Value({params.get('data')!r})) is {text!r}: {name} shown as "
                        f"{shown.group(1)}, expected {expected[name]!r}")
    return PASS


def _same(got, want):
    if isinstance(want, bool) or isinstance(want, str):
        return type(got) is type(want) and got == want
    if isinstance(want, (int, float)):
        return is_number(got) and close(got, want)
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(_same, got, want))
    if isinstance(want, dict):
        return isinstance(got, dict) and all(_same(got.get(k), v) for k, v in want.items())
    return got == want


def zeroed(observed, expected, params):
    """zero_grad() left every parameter it could reach at grad 0 (how many there are is
    the parameter checks' business)."""
    grads = observed.get("grads") if isinstance(observed, dict) else None
    if not isinstance(grads, list) or not grads:
        return fail("the model reported no parameters", diagnoses=["nn-parameters"])
    left = [g for g in grads if not (is_number(g) and g == 0)]
    if left:
        which = "every parameter kept its grad" if len(left) == len(grads) else "some parameters kept their grad"
        return fail(f"{which} after zero_grad()", f"grads after zero_grad(): {grads!r}", ["zero-grad"])
    return PASS


def loss_history(observed, expected, params):
    """Training from the same weights gives the reference's loss at every epoch."""
    losses = observed.get("losses") if isinstance(observed, dict) else None
    want = expected["losses"]
    if not isinstance(losses, list) or len(losses) != len(want):
        return fail("training did not report a loss for every epoch", diagnoses=["training"])
    for epoch, (got, loss) in enumerate(zip(losses, want)):
        if not (is_number(got) and close(got, loss, rel=LOSS_REL_TOL)):
            return fail(f"the loss departs from the reference's at epoch {epoch}",
                        f"epoch {epoch}: loss {got!r}, expected {loss!r}", ["training"])
    return PASS


def converges(observed, expected, params):
    """Training from known-good weights ends below the loss threshold."""
    losses = observed.get("losses") if isinstance(observed, dict) else None
    if not isinstance(losses, list) or not losses or not is_number(losses[-1]):
        return fail("training did not report a final loss", diagnoses=["training"])
    if not losses[-1] < LOSS_THRESHOLD:
        return fail(f"the loss after training is not below {LOSS_THRESHOLD}",
                    f"loss from {losses[0]!r} to {losses[-1]!r}", ["training"])
    return PASS


JUDGES = {judge.__name__: judge for judge in (gradients, forward, equal, represented, zeroed, loss_history, converges)}


def judge(name, observed, expected, params):
    return JUDGES[name](observed, expected, params)


# --- when the probe itself failed ------------------------------------------------------

_NOT_SUPPORTED = re.compile(r"unsupported operand type\(s\) for .*: '(int|float)' and ")
_NO_ATTRIBUTE_ON_NUMBER = re.compile(r"'(int|float)' object has no attribute")
_NOT_COMPARABLE = re.compile(r"'[<>]=?' not supported between instances of")
MOONS_PROBES = ("hinge", "moons_objective", "moons_training")  # the probes that call hinge_loss
# Said instead of hinge-loss's hint when the hinge is written with Python's max(0, 1 - y * s).
PYTHON_MAX_HINT = ("Python's max() compares a Value with 0, which Value does not support (it defines no > or <): "
                   "write max(0, m) as m.relu(), (1 - y * score).relu(), a Value with a gradient.")


def _python_max(check, error, text):
    """Whether a moons check failed on max(0, m) of a Value: a TypeError of > or <."""
    return check.get("probe") in MOONS_PROBES and error == "TypeError" and bool(_NOT_COMPARABLE.search(text))


def judge_failure(check, failure, phase=""):
    """The verdict for a check whose probe raised, hung or crashed.

    ``failure`` is ``probes.failure(exc)`` ({"error", "message", "where"}) or, from the
    grader, {"error": "Timeout"} / {"error": "Crash"}; ``phase`` is the last phase the probe
    announced. Only plain data comes in, so the sandboxed grader, the in-kernel exports and
    the self-check all turn a failure into the same verdict here.
    """
    error = str(failure.get("error", "Error"))
    text = str(failure.get("message", ""))
    where = failure.get("where") if isinstance(failure.get("where"), dict) else {}
    stage = _stage(phase)
    diagnoses = _failure_diagnoses(check, error, text, phase)
    if error == "MoonsLossNotAValue":  # the probe found why train_moons failed: moons_loss's result
        return fail(f"while {stage}: {MOONS_LOSS_WORDS.get(text.strip(), text)}", f"{error}: {text}", diagnoses)
    if error == "Timeout":
        message = f"took longer than {check.get('timeout', '?')} s while {stage}"
    elif error == "Crash":
        message = f"the worker crashed while {stage}"
    else:
        message = f"{error} while {stage}"
        if where.get("line"):
            file = PurePath(str(where.get("file", "?"))).name
            message += f" (line {where['line']} of {file}, in {where.get('function', '?')})"
    detail = f"{error} while {phase or stage}: {text}".rstrip(": ")
    return fail(message, detail, diagnoses, PYTHON_MAX_HINT if _python_max(check, error, text) else None)


def _stage(phase):
    """The phase without its inputs: what hidden checks may say about where it failed."""
    if not phase:
        return "running the check"
    if phase.startswith("building"):
        return "building the graph"
    if phase.startswith("_backward()"):
        return "calling _backward()"
    phase = re.sub(r" (on|of) .*$", "", phase)  # backward() on a chain of 20000 nodes -> backward()
    return re.sub(r"\(.+\)$", "()", phase)  # MLP(3, [3, 3, 1]) -> MLP()


def _failure_diagnoses(check, error, text, phase):
    if error == "NotImplementedError":
        return ["not-implemented"]
    if error == "KeyError" and text.strip("'\"") in probes.NAMES:
        return ["load-error"]
    if error == "MoonsLossNotAValue":
        return ["moons-loss-order"] if text.strip() == "swapped" else ["loss-from-data"]
    if _python_max(check, error, text):
        return ["hinge-loss"]  # max(0, 1 - y * s): Python's max compares a Value with 0
    op = _instruction_being_built(check.get("params", {}), phase)
    if error == "AttributeError" and _NO_ATTRIBUTE_ON_NUMBER.search(text):
        return ["constant-wrapping"]  # also when 2 + a reaches a.__add__(2) through __radd__
    if op and op.startswith("c_") and error in ("TypeError", "AttributeError", "RecursionError"):
        return ["reflected-ops"]
    if _NOT_SUPPORTED.search(text):
        return ["reflected-ops"]
    if op and op.endswith("_c") and error in ("TypeError", "AttributeError"):
        return ["constant-wrapping"]
    if error == "TypeError" and "unhashable" in text:
        return ["value-identity"]
    if error == "RecursionError":
        return ["recursion-depth"]
    if error == "Timeout" and "backward" in phase:
        return ["topo-visited"]  # an unvisited walk is exponential in shared sub-expressions
    return []


def _instruction_being_built(params, phase):
    """The op of the program instruction a "building ..." phase names, if any."""
    program = params.get("program") if isinstance(params, dict) else None
    if not program or not phase.startswith("building "):
        return None
    for i, instruction in enumerate(program):
        if phase == f"building {probes.describe(program, i)}":
            return instruction[0]
    return None


# --- the extension exercises: tanh, exp, log and the moons classifier --------------------------
# Their float models (tanh-from-input, exp-from-input, no-upstream-{tanh,exp,log}) are regular models of
# misconceptions.py; here are their diagnoses and the judges of the moons functions. The core
# checks never name these diagnoses.

EXTENSION_DIAGNOSES = {
    "tanh-local-grad": "The local derivative of t = tanh(x) is 1 - t**2: take it from the output t "
    "(out.data), not from the input x, and multiply it by out.grad.",
    "exp-local-grad": "exp is its own derivative: the local derivative of exp(x) is exp(x), the "
    "output's data (not x), times out.grad.",
    "log-local-grad": "The local derivative of log(x) is 1/x, taken at x = self.data, and like "
    "every local derivative it is multiplied by out.grad.",
    "hinge-loss": "The max-margin loss of one sample is max(0, 1 - y * score), (1 - y * score).relu(): "
    "a sample beyond the margin costs 0 and passes no gradient; average it over the samples.",
    "l2-regularisation": "The L2 penalty is alpha * sum(p * p) over the model's parameters, built "
    "from the parameter Values (not their .data, not the scores), and added to the data loss.",
    "accuracy": "Accuracy counts the samples whose score has the sign of their label, "
    "(score.data > 0) == (y > 0), divided by the number of samples: compare signs, not raw scores.",
    "learning-rate": "learning_rate(step, steps) is 1.0 - 0.9 * step / steps: 1.0 at step 0 and 0.9 / steps "
    "less at each step after it, for any number of steps (micrograd's demo writes 1.0 - 0.9 * k / 100 "
    "because it runs 100 steps), and train_moons uses it for every update.",
    "l2-from-data": "The L2 term is built from plain numbers (p.data), so it contributes no gradient: "
    "regularisation has no effect on the update. Build it from the parameter Values themselves, "
    "alpha * sum(p * p for p in parameters), so that backward() gives each parameter 2 * alpha * p.",
    "loss-from-data": "The loss is built from plain numbers (the scores' .data): it is a plain number with no "
    "gradient, so backward() cannot reach the model. Build it from the score Values themselves: "
    "max(0, 1 - y * score) is (1 - y * score).relu().",
    "moons-loss-order": "moons_loss returns (loss, accuracy): the loss Value first, then the accuracy, "
    "as the handout's docstring says and train_moons unpacks them.",
    "update-sign": "Gradient descent steps against the gradient: p.data -= rate * p.grad. Adding it climbs "
    "the loss instead of lowering it.",
    "accuracy-scale": "accuracy() returns a fraction between 0 and 1 (0.75 when 3 of 4 samples are right), "
    "not a percentage: divide the count by the number of samples and do not multiply by 100.",
}
DIAGNOSES.update(EXTENSION_DIAGNOSES)
_OP_WORDS.update({"tanh": " tanh()", "exp": "n exp()", "log": " log()"})


def _numbers(values, length):
    return isinstance(values, list) and len(values) == length and all(map(is_number, values))


def _hinge_models(scores, ys):
    """What hinge_loss gives as (loss, grads) without the max: the mean of 1 - y * score."""
    n = len(scores)
    return {"the max with 0 is missing: every sample's 1 - y * score counts, also beyond the margin":
            (sum(1 - y * s for s, y in zip(scores, ys)) / n, [-y / n for y in ys])}


MOONS_LOSS_WORDS = {
    "swapped": "moons_loss() returns (accuracy, loss): the order is swapped, the loss comes first",
    "plain_number": "moons_loss()'s loss is a plain number, not a Value (built from .data): it has no gradient",
}


def hinge_result(observed, expected, params):
    """hinge_loss's value and the scores' grads are the reference's."""
    loss = observed.get("loss") if isinstance(observed, dict) else None
    grads = observed.get("grads") if isinstance(observed, dict) else None
    if isinstance(observed, dict) and observed.get("plain_number") is True:
        return fail("hinge_loss() returned a plain number, not a Value (built from the scores' .data): "
                    "it has no gradient", f"loss {loss!r}, a plain number", ["loss-from-data"])
    if not is_number(loss) or not _numbers(grads, len(expected["grads"])):
        return fail("hinge_loss() did not give a number with a grad for every score", diagnoses=["hinge-loss"])
    if close(loss, expected["loss"]) and all(map(close, grads, expected["grads"])):
        return PASS
    detail = f"loss {loss!r} (expected {expected['loss']!r}), grads {grads!r} (expected {expected['grads']!r})"
    for words, (model_loss, model_grads) in _hinge_models(params["scores"], params["ys"]).items():
        if close(loss, model_loss) and all(map(close, grads, model_grads)):
            detail += f" (it looks as if {words})"
    return fail("the hinge loss or its gradient is wrong", detail, ["hinge-loss"])


def penalty_result(observed, expected, params):
    """l2_penalty's value and the parameters' grads are the reference's."""
    value = observed.get("penalty") if isinstance(observed, dict) else None
    grads = observed.get("grads") if isinstance(observed, dict) else None
    if not is_number(value) or not _numbers(grads, len(expected["grads"])):
        return fail("l2_penalty() did not give a number with a grad for every parameter",
                    diagnoses=["l2-regularisation"])
    if close(value, expected["penalty"]) and all(map(close, grads, expected["grads"])):
        return PASS
    detail = f"penalty {value!r} (expected {expected['penalty']!r}), grads {grads!r} (expected {expected['grads']!r})"
    if close(value, expected["penalty"]) and (observed.get("plain_number") is True or all(g == 0 for g in grads)):
        return fail("the L2 penalty has the right value but is built from plain numbers (the parameters' .data), "
                    "so it contributes no gradient and regularisation has no effect on the update",
                    detail, ["l2-from-data"])
    return fail("the L2 penalty or its gradient is wrong", detail, ["l2-regularisation"])


# A fraction where a percentage is wrong by exactly this factor.
PERCENT = 100


def _scale_words(value, want):
    """What a value that is the expected fraction times 100 (or divided by it) is, or None."""
    if want and close(value, want * PERCENT):
        return (f"the accuracy {value:g} is {PERCENT} times the expected fraction {want:g}: "
                "it looks like a percentage (0-100) where a fraction (0..1) is expected")
    if want and close(value * PERCENT, want):
        return f"the accuracy {value:g} is the expected {want:g} divided by {PERCENT}"
    return None


def accuracy_result(observed, expected, params):
    """accuracy() is the reference's fraction."""
    value = observed.get("accuracy") if isinstance(observed, dict) else None
    if is_number(value) and close(value, expected["accuracy"]):
        return PASS
    if not is_number(value):
        return fail("accuracy() did not give a number", diagnoses=["accuracy"])
    detail = f"accuracy {value!r}, expected {expected['accuracy']!r}"
    scale = _scale_words(value, expected["accuracy"])
    if scale:  # a scale mistake, not a counting one: the count itself is right
        return fail(scale, detail, ["accuracy-scale"])
    scores, ys = params["scores"], params["ys"]
    raw = {"the comparison is reversed: it counts the misclassified scores (the error rate)":
           1 - expected["accuracy"],
           "scores are compared with the labels as they are, not by their sign":
           sum(s == y for s, y in zip(scores, ys)) / len(ys),
           "the raw scores times the labels are averaged": sum(s * y for s, y in zip(scores, ys)) / len(ys)}
    for words, model in raw.items():
        if close(value, model):
            detail += f" (it looks as if {words})"
            break
    return fail("the accuracy is wrong", detail, ["accuracy"])


def objective_result(observed, expected, params):
    """moons_loss: the hinge part, the accuracy, the total loss and every parameter's grad
    are the reference's; the first that is not names the diagnosis."""
    if not isinstance(observed, dict):
        return fail("moons_loss() reported nothing")
    kind = observed.get("loss_kind")
    if kind in MOONS_LOSS_WORDS:
        return fail(MOONS_LOSS_WORDS[kind], diagnoses=["moons-loss-order" if kind == "swapped" else "loss-from-data"])
    if observed.get("hinge_plain_number") is True and not _same(observed.get("grads"), expected["grads"]):
        return fail("hinge_loss() returns a plain number, not a Value (built from the scores' .data), so the "
                    "parameters' gradients have no hinge part", "grads: not the reference's", ["loss-from-data"])
    order = (("hinge", "the hinge loss of the model's scores", "hinge-loss"),
             ("accuracy", "the accuracy", "accuracy"),
             ("loss", "the total loss (hinge loss + L2 penalty)", "l2-regularisation"),
             ("grads", "the parameters' gradients", "l2-regularisation"))
    for key, words, diagnosis in order:
        if not _same(observed.get(key), expected[key]):
            got = observed.get(key)
            if key == "accuracy" and is_number(got) and _scale_words(got, expected[key]):
                return fail(f"moons_loss(): {_scale_words(got, expected[key])}",
                            f"accuracy: got {got!r}, expected {expected[key]!r}", ["accuracy-scale"])
            if key == "grads" and _without_l2_gradient(got, expected[key], params):
                return fail("the parameters' gradients lack the L2 term's 2 * alpha * p: the L2 term is built from "
                            "plain numbers (.data), so it contributes no gradient and regularisation has no "
                            "effect on the update", "grads: each is the reference's minus 2 * alpha * p",
                            ["l2-from-data"])
            shown = got if key != "grads" else "(not the reference's)"
            return fail(f"{words} is wrong" if key != "grads" else f"{words} are wrong",
                        f"{key}: got {shown!r}, expected {expected[key] if key != 'grads' else '...'!r}", [diagnosis])
    return PASS


def _without_l2_gradient(grads, want, params):
    """Whether ``grads`` are the reference's without the L2 term's 2 * alpha * p: the
    penalty's value was added, its gradient was not. The parameters in MLP.parameters()
    order are the known weights, flattened (weights[layer][neuron] = [w_1, ..., w_n, bias])."""
    values = [w for layer in params.get("weights", ()) for unit in layer for w in unit]
    alpha = params.get("alpha")
    if not is_number(alpha) or not _numbers(grads, len(want)) or len(values) != len(want):
        return False
    shifted = [g - 2 * alpha * p for g, p in zip(want, values)]
    return all(map(close, grads, shifted)) and not all(map(close, grads, want))


# Said instead of zero-grad's hint (about zero_grad() itself) when train_moons never calls it.
ZERO_GRAD_IN_TRAINING_HINT = ("backward() adds to every grad (+=), so gradients accumulate across steps unless they "
                              "are set back to 0 first: call model.zero_grad() before each loss.backward().")
SCHEDULE = "1.0 - 0.9 * step / steps"  # the handout's learning_rate, as its docstring states it


def _rates(values):
    return ", ".join(f"{v:.4g}" if is_number(v) else "?" for v in values)


def _schedule_words(calls, rates):
    """What a wrong schedule looks like, from the (step, steps) it was asked for, or None."""
    models = {
        "it divides by a fixed 100 (micrograd's demo, written for its 100 steps) instead of by steps":
            lambda step, steps: 1.0 - 0.9 * step / 100,
        "it reaches 0.1 at the last step (it divides by steps - 1)":
            lambda step, steps: 1.0 - 0.9 * step / (steps - 1) if steps > 1 else 1.0,
        "it does not decay": lambda step, steps: rates[0],
    }
    for words, model in models.items():
        if all(close(rate, model(step, steps)) for (step, steps), rate in zip(calls, rates)):
            return words
    return None


def schedule_result(observed, expected, params):
    """learning_rate gives the handout's rate at every (step, steps) asked; the message names
    the schedule expected and the rates given, for the longest run asked whose rates differ."""
    rates, want, calls = observed.get("rates") if isinstance(observed, dict) else None, expected["rates"], \
        params["calls"]
    if not _numbers(rates, len(want)):
        return fail("learning_rate() did not give a number for every step", diagnoses=["learning-rate"])
    if all(map(close, rates, want)):
        return PASS
    wrong = {steps for (step, steps), got, rate in zip(calls, rates, want) if not close(got, rate)}
    steps = min(wrong)  # the short run: every one of its rates fits in a sentence
    which = [i for i, (_, n) in enumerate(calls) if n == steps]
    message = (f"learning_rate() does not follow the handout's schedule {SCHEDULE}: over {steps} steps it gives "
               f"{_rates(rates[i] for i in which)} where {_rates(want[i] for i in which)} are expected")
    words = _schedule_words(calls, rates)
    return fail(message + (f" ({words})" if words else ""),
                ", ".join(f"learning_rate({step}, {n}) = {got!r} (expected {rate!r})"
                          for (step, n), got, rate in zip(calls, rates, want)), ["learning-rate"])


def training_result(observed, expected, params):
    """train_moons from known weights gives the reference's loss at every step; when it does
    not, the failure names what the probe measured: learning rates that are the schedule's
    negated (the update's sign), the right rates without a call of model.zero_grad()
    (gradients accumulate), or other rates than the handout's schedule (both schedules'
    numbers)."""
    verdict = loss_history(observed, expected, params)
    rates, want = observed.get("rates") if isinstance(observed, dict) else None, expected.get("rates")
    if verdict.passed:
        return verdict
    if isinstance(want, list) and _numbers(rates, len(want)) and all(close(-rate, w) for rate, w in zip(rates, want)):
        return fail(f"train_moons() moves the parameters up their gradient, p.data += rate * p.grad (the learning "
                    f"rates it used are {_rates(rates)}, the handout's negated): the update's sign is wrong",
                    verdict.detail, ["update-sign"])
    rates_right = not (isinstance(want, list) and _numbers(rates, len(want))) or all(map(close, rates, want))
    if rates_right and observed.get("zero_grad_calls") == 0 and expected.get("zero_grad_calls"):
        return fail("train_moons() never calls model.zero_grad(), so each step's gradients are added to the "
                    "previous steps'", verdict.detail, ["zero-grad"], ZERO_GRAD_IN_TRAINING_HINT)
    if rates_right:
        return verdict
    words = _schedule_words([[k, len(want)] for k in range(len(want))], rates)
    return fail(f"train_moons() updated the parameters with the learning rates {_rates(rates)} over its "
                f"{len(want)} steps, where the handout's schedule {SCHEDULE} gives {_rates(want)}"
                + (f" ({words})" if words else ""), verdict.detail, ["learning-rate"])


FIELD_DIAGNOSES.update({"rates": ["learning-rate"]})
FIELD_WORDS.update({"rates": "learning rates"})
JUDGES.update({judge.__name__: judge for judge in (hinge_result, penalty_result, accuracy_result, objective_result,
                                                   schedule_result, training_result)})
