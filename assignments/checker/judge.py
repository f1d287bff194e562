"""Judges: decide a check from plain observations, and name the misconception behind a failure.

A judge gets what the probe saw in the student's code (``observed``), what the same probe
saw in the reference (``expected``), and the probe's parameters. It trusts nothing about
``observed`` except that it came out of a JSON parser: every number is checked to be a
plain finite int or float before it is compared. Uses the standard library only, so it can
ship with the handout's self-check.

A ``Verdict``'s ``message`` is shown for every check, hidden ones too, so it never names a
check's inputs or expected values; those go into ``detail``, shown for public checks only.
"""
import math
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

    @property
    def passed(self):
        return self.score >= 1.0


PASS = Verdict(1.0)


def fail(message, detail="", diagnoses=()):
    """A failed verdict; the hint of its first diagnosis is appended to the message."""
    diagnoses = list(dict.fromkeys(diagnoses))
    if diagnoses:
        message = f"{message}. {DIAGNOSES[diagnoses[0]]}"
    return Verdict(0.0, message, detail, diagnoses)


def close(a, b, rel=REL_TOL, abs_=ABS_TOL):
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


def is_number(x):
    return type(x) in (int, float) and math.isfinite(x)


def bad_number(x, what, name_type=False):
    """Why ``x`` is not usable as a number, or None when it is."""
    if is_number(x):
        return None
    if isinstance(x, dict) and "not_a_number" in x:
        # The type's name is the submission's choice: only a detail (public checks) says it.
        return f"{what} is a {x['not_a_number']}, not a number" if name_type else f"{what} is not a number"
    if type(x) is float:
        return f"{what} is {x}"
    return f"{what} is not a number"


# --- a float model of the chain rule, with the misconceptions students actually have ------


@dataclass(frozen=True)
class Misconception:
    diagnoses: tuple
    words: str  # completes "it looks as if ..."
    rare: bool = False  # considered only when no common misconception explains a failure


PRIMITIVES = {"add": "a sum", "mul": "a product", "pow": "a power", "relu": "relu()"}

# In order of how often students have them: the first one that reproduces a failure gives
# the hint. A family such as "assign-grad" also comes per primitive ("assign-grad-mul"),
# for the student whose bug is in one operator only.
MISCONCEPTIONS = {
    "assign-grad": Misconception(
        ("accumulate-grad",), "every _backward assigns its contribution (=) instead of adding it (+=)"),
    **{f"assign-grad-{op}": Misconception(
        ("accumulate-grad",), f"the _backward of {words} assigns (=) instead of adding (+=)")
       for op, words in PRIMITIVES.items()},
    **{f"assign-grad-{op}-{side}": Misconception(
        ("accumulate-grad",), f"the _backward of {words} assigns (=) to {side}.grad instead of adding (+=)")
       for op, words in PRIMITIVES.items() if op in ("add", "mul") for side in ("self", "other")},
    "no-seed": Misconception(("seed-root-grad",), "the root's grad is not set to 1.0 before the sweep"),
    "forward-order": Misconception(("topo-order",), "nodes are processed in topological order, not reversed"),
    "root-only": Misconception(("topo-coverage",), "only the root's _backward runs"),
    "no-visited": Misconception(("topo-visited",), "a node reached along two paths is processed twice"),
    "recursive-no-topo": Misconception(
        ("topo-order", "topo-visited"), "backward() recurses into the children without a topological sort"),
    "no-upstream": Misconception(("chain-rule",), "local derivatives are not multiplied by out.grad"),
    **{f"no-upstream-{op}": Misconception(
        ("chain-rule",), f"the local derivative of {words} is not multiplied by out.grad")
       for op, words in PRIMITIVES.items()},
    "mul-out-data": Misconception(
        ("mul-local-grad",), "a product's local derivative uses out.data, not the other factor"),
    "mul-own-data": Misconception(("mul-local-grad",), "a product's local derivative uses the factor's own data"),
    "pow-same-exponent": Misconception(("pow-local-grad",), "the power rule keeps the exponent k instead of k - 1"),
    "pow-no-factor": Misconception(("pow-local-grad",), "the power rule drops the factor k"),
    "relu-unmasked": Misconception(("relu-local-grad",), "ReLU passes the gradient through where its output is 0"),
    "sub-sign": Misconception(
        ("sub-div-composition",), "a - b gives b the gradient +out.grad instead of -out.grad"),
    "div-sign": Misconception(
        ("sub-div-composition",), "a / b gives b the gradient +a / b**2 instead of -a / b**2"),
    "div-denominator": Misconception(
        ("sub-div-composition",), "a / b gives b the gradient -a / b instead of -a / b**2"),
    # Rare: a hint only when nothing common explains the failure.
    "merge-equal-data": Misconception(
        ("value-identity",), "nodes with equal data are treated as the same node", rare=True),
    **{f"no-children-{op}": Misconception(
        ("graph-edge-missing",), f"{words} does not record its inputs as children", rare=True)
       for op, words in PRIMITIVES.items()},
}


def _has(bug, family, op):
    """Whether ``bug`` is the misconception ``family`` for every operator or for ``op``."""
    return bug == family or bug == f"{family}-{op}"


# How an implementation may be built, all of them correct. sub, div and neg as compositions
# of add, mul and pow (the reference); sub and div written directly but neg and the
# reflected forms still composed (the common student version); or all of them direct. The
# topological sort as an explicit stack (the reference: children popped last-first) or as
# recursion (the tutorial: children in order). Bugs play out differently in each, so a
# misconception is recognised when it reproduces the observation in any of them.
COMPOSITIONS = ("composed", "direct-binary", "direct")
STYLES = tuple((composition, walk) for composition in COMPOSITIONS for walk in ("stack", "recursive"))


@dataclass
class Node:
    op: str  # leaf, const, add, mul, pow, relu; with direct style also sub, div, neg
    children: tuple = ()
    k: float = None  # the exponent of a pow
    data: float = 0.0


def expand(program, composition="composed"):
    """The graph an implementation built in ``composition`` style (see STYLES) makes for
    ``program``: its primitive nodes, and the primitive node that stands for each program
    node. Composed, `a - b` is a + (b * -1) and `a / b` is a * b**-1, each number becoming
    a constant Value."""
    nodes, index = [], []

    def emit(op, *children, k=None, data=0.0):
        nodes.append(Node(op, children, k, float(data)))
        return len(nodes) - 1

    def const(c):
        return emit("const", data=c)

    def neg(i):
        return emit("neg", i) if composition == "direct" else emit("mul", i, const(-1))

    def binary(op, i, j):  # i and j are primitive nodes
        if op in ("add", "mul") or composition != "composed":
            return emit(op, i, j)
        if op == "sub":  # self + (-other)
            return emit("add", i, neg(j))
        return emit("mul", i, emit("pow", j, k=-1))  # self * other**-1

    def reflected(op, c, i):  # c (op) node, through node.__r<op>__(c)
        if op in ("add", "mul"):  # self + other, self * other
            return emit(op, i, const(c))
        if composition == "direct":
            return emit(op, const(c), i)
        if op == "sub":  # other + (-self), through __radd__
            return emit("add", neg(i), const(c))
        return emit("mul", emit("pow", i, k=-1), const(c))  # other * self**-1, through __rmul__

    for op, *args in program:
        if op == "leaf":
            node = emit("leaf", data=args[0])
        elif op in probes.BINARY:
            node = binary(op, index[args[0]], index[args[1]])
        elif op.endswith("_c"):  # node (op) number: composed, the number is negated or inverted
            base, c = op[:-2], args[1]
            if composition == "composed" and base in ("sub", "div"):
                base, c = ("add", -c) if base == "sub" else ("mul", c**-1)
            node = binary(base, index[args[0]], const(c))
        elif op.startswith("c_"):
            node = reflected(op[2:], args[0], index[args[1]])
        elif op == "pow":
            node = emit("pow", index[args[0]], k=args[1])
        elif op == "neg":
            node = neg(index[args[0]])
        elif op == "relu":
            node = emit("relu", index[args[0]])
        elif op in EXTENSION_OPS:  # tanh, exp, log: primitive in every style
            node = emit(op, index[args[0]])
        else:
            raise ValueError(f"unknown instruction {op!r}")
        index.append(node)
    for node in nodes:
        node.data = _value(node, nodes)
    return nodes, index


def _value(node, nodes):
    x = [nodes[c].data for c in node.children]
    if node.op in ("leaf", "const"):
        return node.data
    if node.op in EXTENSION_OPS:
        return EXTENSION_OPS[node.op](x[0])
    return {
        "add": lambda: x[0] + x[1],
        "sub": lambda: x[0] - x[1],
        "mul": lambda: x[0] * x[1],
        "div": lambda: x[0] / x[1],
        "neg": lambda: -x[0],
        "pow": lambda: x[0] ** node.k,
        "relu": lambda: x[0] if x[0] > 0 else 0.0,
    }[node.op]()


def _local(node, nodes, bug):
    """(child, local derivative) for each child, in the order a _backward updates them."""
    c = node.children
    x = [nodes[i].data for i in c]
    if node.op == "add":
        return [(c[0], 1.0), (c[1], 1.0)]
    if node.op == "mul":
        if bug == "mul-out-data":
            return [(c[0], node.data), (c[1], node.data)]
        if bug == "mul-own-data":
            return [(c[0], x[0]), (c[1], x[1])]
        return [(c[0], x[1]), (c[1], x[0])]
    if node.op == "pow":
        k = node.k
        slope = {"pow-same-exponent": k * x[0] ** k, "pow-no-factor": x[0] ** (k - 1)}.get(bug, k * x[0] ** (k - 1))
        return [(c[0], slope)]
    if node.op == "relu":
        return [(c[0], 1.0 if (x[0] > 0 or bug == "relu-unmasked") else 0.0)]
    if node.op == "neg":
        return [(c[0], -1.0)]
    if node.op == "sub":
        return [(c[0], 1.0), (c[1], 1.0 if bug == "sub-sign" else -1.0)]
    if node.op == "div":
        b_slope = {"div-sign": x[0] / x[1] ** 2, "div-denominator": -x[0] / x[1]}.get(bug, -x[0] / x[1] ** 2)
        return [(c[0], 1.0 / x[1]), (c[1], b_slope)]
    if node.op in EXTENSION_LOCAL:
        return [(c[0], EXTENSION_LOCAL[node.op](x[0], node.data, bug))]
    return []


def simulate(program, bug=None, upstream=1.0, sweep="backward", style=STYLES[0]):
    """Forward values and gradients of a program's nodes in plain floats, as an
    implementation built in ``style`` with the misconception ``bug`` (a key of
    MISCONCEPTIONS, or None) would compute them."""
    composition, walk = style
    return _replay(expand(program, composition), bug, upstream, sweep, walk)


def _replay(graph, bug, upstream, sweep, walk):
    """simulate() on a graph expand() has built already."""
    nodes, index = graph
    root = index[-1]
    grad = [0.0] * len(nodes)
    if sweep == "local":
        grad[root], order = upstream, [root]
    else:
        grad[root] = 0.0 if bug == "no-seed" else 1.0
        order = _sweep_order(nodes, root, bug, walk)
    for n in order:
        op = nodes[n].op
        for side, (child, local) in zip(("self", "other"), _local(nodes[n], nodes, bug)):
            contribution = local if _has(bug, "no-upstream", op) else local * grad[n]
            assigns = _has(bug, "assign-grad", op) or bug == f"assign-grad-{op}-{side}"
            grad[child] = contribution if assigns else grad[child] + contribution
    return [nodes[i].data for i in index], [grad[i] for i in index]


def _sweep_order(nodes, root, bug, walk):
    """The order in which an implementation with ``bug`` calls the nodes' _backward."""
    if bug == "root-only":
        return [root]

    def children(n):
        return () if bug == f"no-children-{nodes[n].op}" else nodes[n].children

    if bug == "recursive-no-topo":  # node._backward(), then each child's, every time it is reached
        order, stack = [], [root]
        while stack:
            n = stack.pop()
            order.append(n)
            stack.extend(reversed(children(n)))
        return order

    def key(n):  # what the visited set compares
        return nodes[n].data if bug == "merge-equal-data" else n

    order, visited = [], set()
    if walk == "recursive":
        def visit(n):  # the tutorial's build_topo; programs are small
            if bug != "no-visited":
                if key(n) in visited:
                    return
                visited.add(key(n))
            for child in children(n):
                visit(child)
            order.append(n)

        visit(root)
    else:  # the reference's explicit stack
        stack = [(root, False)]
        while stack:
            n, children_done = stack.pop()
            if children_done:
                order.append(n)
            elif bug == "no-visited" or key(n) not in visited:
                visited.add(key(n))
                stack.append((n, True))
                stack.extend((child, False) for child in children(n))
    return order if bug == "forward-order" else order[::-1]


def finite_differences(program):
    """d(root)/d(node) for every node of a program, by central differences of the float
    forward pass, nudging one node's value at a time."""
    data, _ = simulate(program)
    slopes = []
    for i in range(len(program)):
        h = FD_STEP * max(1.0, abs(data[i]))
        up, down = _forward_with(program, i, data[i] + h), _forward_with(program, i, data[i] - h)
        slopes.append((up - down) / (2 * h))
    return slopes


def _forward_with(program, index, value):
    """The root's value when node ``index`` of the program is replaced by ``value``."""
    nodes, primitive = expand(program)
    nodes[primitive[index]].data = value
    for node in nodes[primitive[index] + 1:]:  # children come before their parents
        node.data = _value(node, nodes)
    return nodes[primitive[-1]].data


def explain(program, observed_grad, sweep="backward", upstream=1.0):
    """The misconceptions whose model reproduces the observed gradients (to tolerance) in
    some style of implementation, in the order of MISCONCEPTIONS; the rare ones only when
    no common one does; empty when none does."""
    found = []
    graphs = {composition: expand(program, composition) for composition in COMPOSITIONS}
    for bug, misconception in misconceptions_for(program).items():
        if misconception.rare and found:
            break
        for composition, walk in STYLES:
            if _all_close(_replay(graphs[composition], bug, upstream, sweep, walk)[1], observed_grad):
                found.append(bug)
                break
    return found


def _all_close(a, b):
    return len(a) == len(b) and all(is_number(y) and close(x, y) for x, y in zip(a, b))


# --- judges ----------------------------------------------------------------------------


def gradients(observed, expected, params):
    """Every node's data and grad match the reference's; after a full backward() the grads
    also match central finite differences of the forward pass."""
    program = params["program"]
    sweep, upstream = params.get("sweep", "backward"), params.get("upstream", 1.0)
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
            return fail(problem, f"{probes.describe(program, i)}.grad: {bad_number(got, 'it', name_type=True)}")
    wrong = [i for i, (got, want) in enumerate(zip(observed["grad"], expected["grad"])) if not close(got, want)]
    if sweep == "backward" and not wrong:
        slopes = finite_differences(program)
        wrong = [i for i, (got, slope) in enumerate(zip(observed["grad"], slopes))
                 if not math.isclose(got, slope, rel_tol=FD_REL_TOL, abs_tol=FD_ABS_TOL)]
        expected = {"grad": slopes}
    if not wrong:
        return PASS
    bugs = explain(program, observed["grad"], sweep, upstream)
    diagnoses = [d for bug in bugs for d in misconception(bug).diagnoses]
    if not diagnoses:
        diagnoses = _suspects(program, observed["grad"], expected["grad"], sweep)
    call = "backward()" if sweep == "backward" else f"only its _backward() with out.grad = {upstream}"
    found = "; ".join(
        f"{probes.describe(program, i)}.grad = {observed['grad'][i]!r}, expected {expected['grad'][i]!r}"
        for i in wrong)
    detail = f"after {call} on {probes.describe(program)}: {found}"
    if bugs:
        detail += f" (it looks as if {misconception(bugs[0]).words})"
    # No counts in the message: the number of nodes is part of a hidden check's input.
    what = "a gradient is wrong" if len(wrong) == 1 else "several gradients are wrong"
    verdict = fail(what, detail, diagnoses)
    verdict.observation = {"data": list(observed["data"]), "grad": list(observed["grad"]),
                           "expected_grad": list(expected["grad"]), "wrong": wrong}
    return verdict


def _suspects(program, got, want, sweep):
    """Diagnoses read off the pattern of wrong gradients when no model reproduces them:
    only the unmistakable ones, a root grad that is not 1 and a sweep that did nothing."""
    if sweep != "backward":
        return []
    root = len(program) - 1
    if not close(got[root], 1.0):
        return ["seed-root-grad"]
    if all(g == 0 for g in got[:root]) and any(not close(w, 0.0) for w in want[:root]):
        return ["topo-coverage"]
    return []


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
                f"{probes.describe(program, i)} computed {got!r}, expected {want!r}",
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


def judge_failure(check, failure, phase=""):
    """The verdict for a check whose probe raised, hung or crashed.

    ``failure`` is ``probes.failure(exc)`` ({"error", "message", "where"}) or, from the
    grader, {"error": "Timeout"} / {"error": "Crash"}; ``phase`` is the last phase the probe
    announced. Only plain data comes in, so the sandboxed grader, the in-kernel exports and
    the self-check all turn a failure into the same verdict here.
    """
    error = str(failure.get("error", "Error"))
    text = str(failure.get("message", ""))
    where = failure.get("where") or {}
    stage = _stage(phase)
    diagnoses = _failure_diagnoses(check, error, text, phase)
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
    return fail(message, detail, diagnoses)


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
# Consulted by the simulator above only for programs that use these operators, so the core
# checks, their sentinel and their diagnoses are exactly what they are without this block.

# What each extension operator computes, in floats.
EXTENSION_OPS = {"tanh": math.tanh, "exp": math.exp, "log": math.log}


def _tanh_local(x, out, bug):
    return 1 - x**2 if bug == "tanh-from-input" else 1 - out**2


def _exp_local(x, out, bug):
    return x if bug == "exp-from-input" else out


def _log_local(x, out, bug):
    return 1 / x


# The local derivative of each extension operator: f(input, output, bug).
EXTENSION_LOCAL = {"tanh": _tanh_local, "exp": _exp_local, "log": _log_local}

EXTENSION_MISCONCEPTIONS = {
    "tanh-from-input": Misconception(
        ("tanh-local-grad",), "tanh's local derivative is taken from its input, 1 - x**2, not its output, 1 - t**2"),
    "exp-from-input": Misconception(
        ("exp-local-grad",), "exp's local derivative is its input x, not its value exp(x)"),
    # the generic family of _replay: the contribution is not multiplied by out.grad
    "no-upstream-log": Misconception(
        ("log-local-grad", "chain-rule"), "log's local derivative 1/x is not multiplied by out.grad"),
}

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
}
DIAGNOSES.update(EXTENSION_DIAGNOSES)
_OP_WORDS.update({"tanh": " tanh()", "exp": "n exp()", "log": " log()"})


def misconceptions_for(program):
    """The misconceptions explain() tries on ``program``: the core ones, with the extension
    ones after the common core models when the program uses an extension operator."""
    if not any(instruction[0] in EXTENSION_OPS for instruction in program):
        return MISCONCEPTIONS
    common = {bug: m for bug, m in MISCONCEPTIONS.items() if not m.rare}
    rare = {bug: m for bug, m in MISCONCEPTIONS.items() if m.rare}
    return {**common, **EXTENSION_MISCONCEPTIONS, **rare}


def misconception(bug):
    return MISCONCEPTIONS.get(bug) or EXTENSION_MISCONCEPTIONS[bug]


def _numbers(values, length):
    return isinstance(values, list) and len(values) == length and all(map(is_number, values))


def _hinge_models(scores, ys):
    """What hinge_loss gives as (loss, grads) without the max: the mean of 1 - y * score."""
    n = len(scores)
    return {"the max with 0 is missing: every sample's 1 - y * score counts, also beyond the margin":
            (sum(1 - y * s for s, y in zip(scores, ys)) / n, [-y / n for y in ys])}


def hinge_result(observed, expected, params):
    """hinge_loss's value and the scores' grads are the reference's."""
    loss = observed.get("loss") if isinstance(observed, dict) else None
    grads = observed.get("grads") if isinstance(observed, dict) else None
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
    if close(value, expected["penalty"]) and all(g == 0 for g in grads):
        detail += " (it looks as if the penalty is built from the parameters' .data: no gradient reaches them)"
    return fail("the L2 penalty or its gradient is wrong", detail, ["l2-regularisation"])


def accuracy_result(observed, expected, params):
    """accuracy() is the reference's fraction."""
    value = observed.get("accuracy") if isinstance(observed, dict) else None
    if is_number(value) and close(value, expected["accuracy"]):
        return PASS
    if not is_number(value):
        return fail("accuracy() did not give a number", diagnoses=["accuracy"])
    detail = f"accuracy {value!r}, expected {expected['accuracy']!r}"
    scores, ys = params["scores"], params["ys"]
    raw = {"scores are compared with the labels as they are, not by their sign":
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
    order = (("hinge", "the hinge loss of the model's scores", "hinge-loss"),
             ("accuracy", "the accuracy", "accuracy"),
             ("loss", "the total loss (hinge loss + L2 penalty)", "l2-regularisation"),
             ("grads", "the parameters' gradients", "l2-regularisation"))
    for key, words, diagnosis in order:
        if not _same(observed.get(key), expected[key]):
            got = observed.get(key)
            shown = got if key != "grads" else "(not the reference's)"
            return fail(f"{words} is wrong" if key != "grads" else f"{words} are wrong",
                        f"{key}: got {shown!r}, expected {expected[key] if key != 'grads' else '...'!r}", [diagnosis])
    return PASS


FIELD_DIAGNOSES.update({"rates": ["training"]})
FIELD_WORDS.update({"rates": "learning rates"})
JUDGES.update({judge.__name__: judge for judge in (hinge_result, penalty_result, accuracy_result, objective_result)})
