"""Judges: decide a check from plain observations, and name the misconception behind a failure.

A judge gets what the probe saw in the student's code (``observed``), what the same probe
saw in the reference (``expected``), and the probe's parameters. It trusts nothing about
``observed`` except that it came out of a JSON parser: every number is checked to be a
plain finite int or float before it is compared. Uses the standard library only, so it can
ship with the handout's self-check.
"""
import math
from dataclasses import dataclass, field

from . import probes

# Gradients are compared with a relative tolerance of 1e-6: a correct implementation may
# build sub/div directly or sum in another order, which changes rounding by a few ulps
# (relative 1e-15 per operation, 1e-13 over a 30-deep graph), while every misconception we
# know changes a gradient by a factor, a sign or a whole term, which is far above 1e-6.
REL_TOL = 1e-6
ABS_TOL = 1e-9


@dataclass
class Verdict:
    """How a check went. ``message`` is safe to show for any check; ``detail`` may name the
    check's inputs and expected values, so only public checks (or instructors) see it."""

    score: float  # fraction of the check's points, 0..1
    message: str = ""
    detail: str = ""
    diagnoses: list = field(default_factory=list)

    @property
    def passed(self):
        return self.score >= 1.0


PASS = Verdict(1.0)


def fail(message, detail="", diagnoses=()):
    return Verdict(0.0, message, detail, list(diagnoses))


def close(a, b, rel=REL_TOL, abs_=ABS_TOL):
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


def is_number(x):
    return type(x) in (int, float) and math.isfinite(x)


def bad_number(x, what):
    """Why ``x`` is not usable as a number, or None when it is."""
    if is_number(x):
        return None
    if isinstance(x, dict) and "not_a_number" in x:
        return f"{what} is a {x['not_a_number']}, not a number"
    if type(x) is float:
        return f"{what} is {x}"
    return f"{what} is not a number"


# --- a float model of the chain rule, with the misconceptions students actually have ------

# Each misconception: (diagnosis ids, what is wrong in words, how the model changes).
MISCONCEPTIONS = {
    "assign-grad": (["accumulate-grad"], "gradients are assigned (=) instead of added (+=)"),
    "no-seed": (["seed-root-grad"], "the root's grad is not set to 1.0 before the sweep"),
    "forward-order": (["topo-order"], "nodes are processed in topological order, not reversed"),
    "no-visited": (["topo-visited"], "a node reached along two paths is processed twice"),
    "root-only": (["topo-coverage"], "only the root's _backward runs"),
    "no-upstream": (["chain-rule"], "local derivatives are not multiplied by out.grad"),
    "mul-out-data": (["mul-local-grad"], "a product's local derivative uses out.data, not the other factor"),
    "mul-own-data": (["mul-local-grad"], "a product's local derivative uses the factor's own data"),
    "pow-same-exponent": (["pow-local-grad"], "the power rule keeps the exponent k instead of k - 1"),
    "pow-no-factor": (["pow-local-grad"], "the power rule drops the factor k"),
    "relu-unmasked": (["relu-local-grad"], "ReLU passes the gradient through where its output is 0"),
}


def simulate(program, bug=None, upstream=1.0, sweep="backward"):
    """Forward values and gradients of a program in plain floats, as an implementation with
    the misconception ``bug`` (a key of MISCONCEPTIONS, or None) would compute them."""
    data = []
    edges = []  # per node: [(child index, local derivative)]
    for op, *args in program:
        if op == "leaf":
            data.append(float(args[0]))
            edges.append([])
            continue
        out, local = _forward(op, args, data, bug)
        data.append(out)
        edges.append(local)
    grad = [0.0] * len(program)
    root = len(program) - 1
    if sweep == "local":
        grad[root] = upstream
        order = [root]
    else:
        grad[root] = 0.0 if bug == "no-seed" else 1.0
        order = _sweep_order(edges, root, bug)
    for node in order:
        for child, local in edges[node]:
            contribution = local if bug == "no-upstream" else local * grad[node]
            if bug == "assign-grad":
                grad[child] = contribution
            else:
                grad[child] += contribution
    return data, grad


def _forward(op, args, data, bug):
    """One instruction's value and its (child, local derivative) pairs. sub, div and their
    constant forms count as compositions, so their edges are the net derivative."""
    if op == "pow":
        (i, k), x = args, data[args[0]]
        out = x**k
        if bug == "pow-same-exponent":
            return out, [(i, k * x**k)]
        if bug == "pow-no-factor":
            return out, [(i, x ** (k - 1))]
        return out, [(i, k * x ** (k - 1))]
    if op == "neg":
        return -data[args[0]], [(args[0], -1.0)]
    if op == "relu":
        x = data[args[0]]
        out = x if x > 0 else 0.0
        return out, [(args[0], 1.0 if (x > 0 or bug == "relu-unmasked") else 0.0)]
    if op in probes.BINARY:
        (i, j), (x, y) = args, (data[args[0]], data[args[1]])
        return _binary(op, x, y, i, j, bug)
    if op.endswith("_c"):
        out, local = _binary(op[:-2], data[args[0]], args[1], args[0], None, bug)
    else:
        out, local = _binary(op[2:], args[0], data[args[1]], None, args[1], bug)
    return out, [(node, d) for node, d in local if node is not None]


def _binary(op, x, y, i, j, bug):
    if op == "add":
        return x + y, [(i, 1.0), (j, 1.0)]
    if op == "sub":
        return x - y, [(i, 1.0), (j, -1.0)]
    if op == "mul":
        out = x * y
        if bug == "mul-out-data":
            return out, [(i, out), (j, out)]
        if bug == "mul-own-data":
            return out, [(i, x), (j, y)]
        return out, [(i, y), (j, x)]
    out = x / y
    return out, [(i, 1.0 / y), (j, -x / y**2)]


def _sweep_order(edges, root, bug):
    """The order in which an implementation with ``bug`` calls the nodes' _backward."""
    if bug == "root-only":
        return [root]
    order, visited = [], set()

    def visit(node):  # post-order depth-first search; programs are small
        if bug != "no-visited":
            if node in visited:
                return
            visited.add(node)
        for child, _ in edges[node]:
            visit(child)
        order.append(node)

    visit(root)
    return order if bug == "forward-order" else order[::-1]


def explain(program, observed_grad, sweep="backward", upstream=1.0, observed_data=None):
    """The misconceptions whose model reproduces the observed gradients exactly (to
    tolerance), most specific first; an empty list when none does."""
    found = []
    for bug in MISCONCEPTIONS:
        data, grad = simulate(program, bug, upstream, sweep)
        if _all_close(grad, observed_grad) and (observed_data is None or _all_close(data, observed_data)):
            found.append(bug)
    return found


def _all_close(a, b):
    return len(a) == len(b) and all(is_number(y) and close(x, y) for x, y in zip(a, b))


# --- judges ----------------------------------------------------------------------------


def gradients(observed, expected, params):
    """Every node's data and grad match the reference's."""
    program = params["program"]
    expression = probes.describe(program)
    for kind in ("data", "grad"):
        values = observed.get(kind) if isinstance(observed, dict) else None
        if not isinstance(values, list) or len(values) != len(program):
            return fail(f"the probe reported no {kind} for the graph")
    for i, (got, want) in enumerate(zip(observed["data"], expected["data"])):
        problem = bad_number(got, f"the forward value of {probes.describe(program, i)}")
        if problem or not close(got, want):
            return fail(
                "a forward value is wrong, so the gradients cannot be judged",
                f"{probes.describe(program, i)} computed {got!r}, expected {want!r}",
                ["reflected-ops"] if _uses_constant_on_left(program, i) else [],
            )
    wrong = []
    for i, (got, want) in enumerate(zip(observed["grad"], expected["grad"])):
        problem = bad_number(got, f"the grad of {probes.describe(program, i)}")
        if problem:
            return fail(problem, problem)
        if not close(got, want):
            wrong.append(f"{probes.describe(program, i)}.grad = {got!r}, expected {want!r}")
    if not wrong:
        return PASS
    sweep, upstream = params.get("sweep", "backward"), params.get("upstream", 1.0)
    bugs = explain(program, observed["grad"], sweep, upstream)
    diagnoses = sorted({d for bug in bugs for d in MISCONCEPTIONS[bug][0]})
    why = "; ".join(MISCONCEPTIONS[bug][1] for bug in bugs)
    message = f"{len(wrong)} of {len(program)} gradients are wrong"
    if why:
        message += f": it looks as if {why}"
    call = "backward()" if sweep == "backward" else f"_backward() with out.grad = {upstream}"
    return fail(message, f"after {call} on {expression}: " + "; ".join(wrong), diagnoses)


def _uses_constant_on_left(program, index):
    return program[index][0].startswith("c_")


def equal(observed, expected, params):
    """Every field the reference reported is reported identically (numbers to tolerance)."""
    if not isinstance(observed, dict):
        return fail("the probe reported nothing")
    for key, want in expected.items():
        got = observed.get(key)
        if not _same(got, want):
            return fail(f"{key.replace('_', ' ')} is wrong", f"{key}: got {got!r}, expected {want!r}")
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


JUDGES = {judge.__name__: judge for judge in (gradients, equal)}


def judge(name, observed, expected, params):
    return JUDGES[name](observed, expected, params)
