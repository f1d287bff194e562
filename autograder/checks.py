"""The checks: what is tested, declared in one place.

Each declaration names a probe (an experiment, run wherever the student's code runs) and a
judge (run in the grading process). Points and visibility are not here: they come from
``checks.toml`` (or an instructor's copy of it), so a course can reweigh checks without
touching code.

``compile_checks(seed)`` turns the declarations into plain data: concrete parameters
(random ones drawn from the run's seed) and the reference's observations as the expected
values. All three modes run that data: the sandboxed grader, the in-kernel exports and
the public self-check.
"""
import ast
import difflib
import hashlib
import random
import sys
from dataclasses import dataclass
from pathlib import Path

from . import judge, misconceptions, probes

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_CONFIG = Path(__file__).with_name("checks.toml")
VISIBILITIES = ("public", "hidden", "after_due_date")


@dataclass(frozen=True)
class Check:
    id: str
    title: str  # a sentence that holds when the check passes
    exercise: str  # the part of the handout it belongs to; the self-check prints one line each
    probe: str  # a name in probes.PROBES
    params: object  # a dict, or a function of a random.Random that returns one
    judge: str = "equal"  # a name in judge.JUDGES
    timeout: float = 2.0  # seconds for the probe, in the worker or in-process
    compare: tuple = ()  # the fields of the observation to judge; () = all of them
    about: str = ""  # what the probe is given, for the instructors' catalogue
    requires: tuple = ()  # other exercises the check needs besides its own (compiled only with them)

    def concrete_params(self, seed):
        if callable(self.params):
            return self.params(random.Random(f"{seed}:{self.id}"), seed)
        return self.params


# --- writing graphs as Python expressions ---------------------------------------------


def expression(text, **leaves):
    """Compile ``text`` into a probe program. Statements may name shared sub-expressions
    ("c = a * b; c + c"); the last expression is the root; ``leaves`` give the inputs."""
    return _compile(text, leaves)[0]


def _compile(text, leaves):
    """(``expression``'s program, {leaf or statement name: its node index})."""
    program, names = [], {}

    def emit(instruction):
        program.append(list(instruction))
        return len(program) - 1

    def operand(node):
        if isinstance(node, ast.Constant):
            return ("number", node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant):
            return ("number", -node.operand.value)
        return ("node", visit(node))

    def visit(node):
        if isinstance(node, ast.Name):
            if node.id not in names:
                names[node.id] = emit(["leaf", float(leaves[node.id])])
            return names[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return emit(["neg", visit(node.operand)])
        if isinstance(node, ast.Call) and node.func.attr in ("relu",) + probes.UNARY_METHODS:
            return emit([node.func.attr, visit(node.func.value)])
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            return emit(["pow", visit(node.left), operand(node.right)[1]])
        if isinstance(node, ast.BinOp):
            op = {ast.Add: "add", ast.Mult: "mul", ast.Sub: "sub", ast.Div: "div"}[type(node.op)]
            (left_kind, left), (right_kind, right) = operand(node.left), operand(node.right)
            if left_kind == "number":
                return emit([f"c_{op}", left, right])
            if right_kind == "number":
                return emit([f"{op}_c", left, right])
            return emit([op, left, right])
        raise ValueError(f"cannot compile {ast.dump(node)}")

    *statements, last = ast.parse(text).body
    for statement in statements:
        names[statement.targets[0].id] = visit(statement.value)
    root = visit(last.value)
    if root != len(program) - 1:  # the root is a named node: repeat it as the last node
        emit(["mul_c", root, 1.0])
    # Leaves are created in order of first use; the leaves' values must all be used.
    unused = set(leaves) - set(names)
    if unused:
        raise ValueError(f"leaves {sorted(unused)} are not used in {text!r}")
    return program, names


# out.grad for the one-step checks: not 1, so a _backward that forgets to multiply by it
# (the chain rule) shows, and not a round number that a wrong formula hits by chance.
UPSTREAM = 11.0


def _inputs(text, leaves):
    return f"`{text}` with " + ", ".join(f"{name} = {value:g}" for name, value in leaves.items())


def values_of(id, title, text, **leaves):
    """The forward values of every node of ``text``."""
    return Check(id, title, "value", "forward", {"program": expression(text, **leaves)}, "forward",
                 about=f"the value of every node of {_inputs(text, leaves)}")


def backward_of(id, title, exercise, text, **leaves):
    """root.backward() on ``text``: every node's grad."""
    return Check(id, title, exercise, "graph", {"program": expression(text, **leaves), "sweep": "backward"},
                 "gradients", about=f"backward() on {_inputs(text, leaves)}: every node's grad")


def one_step(id, title, exercise, text, **leaves):
    """The root's grad set to UPSTREAM and only the root's own _backward() called."""
    params = {"program": expression(text, **leaves), "sweep": "local", "upstream": UPSTREAM}
    return Check(id, title, exercise, "graph", params, "gradients",
                 about=f"only the root's _backward(), out.grad = {UPSTREAM:g}, on {_inputs(text, leaves)}")


def by_hand(id, title, exercise, text, steps, held, **leaves):
    """Only the _backward of the nodes named in ``steps`` ("root" for the root), called in
    that order, as backward() would but without it: the root's grad set to UPSTREAM, and
    each node named in ``held`` given that grad first, as a grad it already holds (another
    parent's contribution, or a statement's own out.grad). A _backward that assigns (=)
    instead of adding (+=) overwrites what the held grads say, whichever nodes it is given."""
    program, names = _compile(text, leaves)
    names["root"] = len(program) - 1
    params = {"program": program, "sweep": "local", "upstream": UPSTREAM,
              "grads": [[names[name], float(grad)] for name, grad in held.items()],
              "steps": [names[name] for name in steps]}
    grads = "".join(f", {name}.grad = {grad:g}" for name, grad in held.items())
    return Check(id, title, exercise, "graph", params, "gradients",
                 about=f"{_inputs(text, leaves)}: the root's grad set to {UPSTREAM:g}{grads}, then only the "
                       f"_backward() of {', '.join(steps)}, in that order")


def random_graph(id, title, size, chain):
    """backward() on a random graph drawn from the run's seed, joined with the seed's
    sentinel (see ``sentinel``), so that every known misconception fails it."""
    return Check(id, title, "backward", "graph",
                 lambda rng, seed: {"program": join(random_program(rng, size, chain), sentinel(seed)),
                                    "sweep": "backward"},
                 "gradients", timeout=5.0,
                 about=f"backward() on a random graph of {size}+ nodes from the run's seed "
                       f"(random_program(size={size}, chain={chain})) added to the seed's sentinel "
                       f"sub-graph ({len(SENTINEL_LEAVES)} random leaves)")


# --- random expression graphs ----------------------------------------------------------

KINDS = ("add", "mul", "sub", "div", "add_c", "mul_c", "sub_c", "div_c",
         "c_add", "c_mul", "c_sub", "c_div", "pow", "neg", "relu")
EXPONENTS = (2, 3, -1, -2, 0.5, 1.5, -0.5)
# How many times an implementation without a visited set may run _backward on one graph:
# the unfolded tree of every path from the root. Bounded, so that such a bug fails the
# check with a wrong answer (and its diagnosis) instead of a timeout.
MAX_UNFOLDED = 3000


def random_program(rng, size=24, chain=0.6, kinds=KINDS):
    """A random expression DAG of at least ``size`` nodes in which every node feeds the root.

    Operators come from a shuffled deck of every kind, so a graph of 18 nodes or more uses
    each at least once. With probability ``chain`` a new node's first operand is the newest
    node, so the graph is about ``chain * size`` deep; its other operand is any earlier
    node, so sub-expressions are shared. Drawn nodes stay between 0.05 and 20 in magnitude; relu
    inputs, denominators and the bases of negative or fractional powers stay away from 0
    (fractional powers on positive bases only), so finite differences are meaningful and a
    different summation order changes nothing visible. Finally, nodes nothing uses yet are
    added into the root.
    """
    values = [rng.choice((-1, 1)) * round(rng.uniform(0.5, 2.0), 3) for _ in range(3)]
    program = [["leaf", v] for v in values]
    unfolded = [1] * len(program)  # per node: how many paths lead down from it, itself included
    deck = []
    while len(program) < size:
        if not deck:
            deck = list(kinds)
            rng.shuffle(deck)
        kind, newest = deck.pop(), len(program) - 1
        for _attempt in range(50):
            i = newest if rng.random() < chain else rng.randrange(len(program))
            instruction = _random_instruction(rng, kind, i, rng.randrange(len(program)))
            value = _safe_value(instruction, values)
            paths = 1 + sum(unfolded[k] for k in inputs_of(instruction))
            if value is not None and paths <= MAX_UNFOLDED:
                break
        else:  # no operands suit this kind now: negate the newest node, always safe
            instruction, value, paths = ["neg", newest], -values[newest], 1 + unfolded[newest]
        program.append(instruction)
        values.append(value)
        unfolded.append(paths)
    used = {k for instruction in program for k in inputs_of(instruction)}
    for k in range(len(program) - 1):
        if k not in used:
            program.append(["add", len(program) - 1, k])
    return program


def _random_instruction(rng, kind, i, j):
    constant = rng.choice((-1, 1)) * round(rng.uniform(0.5, 3.0), 2)
    if kind in probes.BINARY:
        return [kind, i, j]
    if kind.endswith("_c"):
        return [kind, i, constant]
    if kind.startswith("c_"):
        return [kind, constant, i]
    if kind == "pow":
        return ["pow", i, rng.choice(EXPONENTS)]
    return [kind, i]


inputs_of = probes.inputs_of  # the nodes an instruction reads


def _safe_value(instruction, values):
    """The instruction's value in floats, or None where it is too close to a kink or a pole,
    or too large or too small to judge well."""
    op, *args = instruction
    x = [values[k] for k in inputs_of(instruction)]
    if op in ("div", "c_div") and abs(x[-1]) < 0.5:
        return None
    if op == "pow":
        k = args[1]
        if (k != int(k) and x[0] < 0.25) or (k < 0 and abs(x[0]) < 0.5):
            return None
    if op == "relu":
        if abs(x[0]) < 0.1:
            return None
        return max(x[0], 0.0)
    # tanh away from 0 (where 1 - x**2 and 1 - tanh(x)**2 meet), exp of at most 3, log of a
    # positive argument away from 0
    if (op == "tanh" and abs(x[0]) < 0.1) or (op == "exp" and x[0] > 3) or (op == "log" and x[0] < 0.2):
        return None
    value = _evaluate(instruction, values)
    return value if 0.05 <= abs(value) <= 20 else None


def _evaluate(instruction, values):
    """One instruction on plain floats."""
    op, *args = instruction
    if op in probes.BINARY:
        return probes.BINARY[op](values[args[0]], values[args[1]])
    if op.endswith("_c"):
        return probes.BINARY[op[:-2]](values[args[0]], args[1])
    if op.startswith("c_"):
        return probes.BINARY[op[2:]](args[0], values[args[1]])
    if op == "pow":
        return values[args[0]] ** args[1]
    if op in misconceptions.EXTENSION_OPS:
        return misconceptions.EXTENSION_OPS[op](values[args[0]])
    return -values[args[0]]  # neg; relu is handled by the caller


def depth(program):
    """The longest path from a leaf to the root, in edges."""
    depths = []
    for instruction in program:
        depths.append(1 + max((depths[k] for k in inputs_of(instruction)), default=-1))
    return depths[-1]


def join(program, other):
    """One program whose root is the sum of the roots of ``program`` and ``other``."""
    offset = len(program)
    shifted = []
    for op, *args in other:
        shifted.append([op, *(k + offset if index in _node_places(op) else k for index, k in enumerate(args))])
    return program + shifted + [["add", offset - 1, offset + len(other) - 1]]


def _node_places(op):
    """Which arguments of an instruction are node indices (the others are numbers)."""
    if op == "leaf":
        return ()
    if op in probes.BINARY:
        return (0, 1)
    return (1,) if op.startswith("c_") else (0,)


# --- a sentinel: random values in a shape that tells every misconception apart -------------
# A random graph may happen to hold no clipped relu, or no node shared by two sums, and then
# a student with that misconception passes under one seed and fails under another. So every
# random graph is joined with a small sub-graph whose *shape* exposes each misconception the
# judge models (misconceptions.MISCONCEPTIONS) and whose values are drawn from the seed; when the
# checks are compiled, the drawn sentinel is verified against every model in every style of
# implementation, and redrawn from the same seed stream until each model that changes the
# gradients of the reference shape (WITNESS) changes them beyond MARGIN here too, and each
# model that does not changes nothing. The shape, gadget by gadget:
#   x and y: two products with equal data (merge-equal-data); x is the left operand of two
#   sums, y the right operand of two (assign-grad-add-self/-other); s the left factor of two
#   products, u the right factor of two (assign-grad-mul-self/-other); i reached only through
#   a power (no-children-pow); t the base of two powers, z and j (assign-grad-pow); v the input of two
#   relus that pass and o a relu that clips (assign-grad-relu, relu-unmasked); m - n, k / c,
#   1.5 - z and 2 / t for implementations that write sub and div directly (sub-sign,
#   div-sign, div-denominator; c stays away from 1 so that -a/b and -a/b**2 differ); the
#   root scales everything by 0.5 so that every upstream gradient differs from 1 (no-upstream);
#   y2 = -y, a negation of a shared node, for implementations that write __neg__ directly
#   (missing-backward-neg, no-children-neg).
SENTINEL = ("x = p * r; y = r * p; s = x + q; t = x + p; u = q + y; v = r + y; "
            "m = s * r; n = s * q; k = p * u; l = q * u; i = p * q; w = i ** 2; z = t ** 3; j = t ** 2; "
            "g = v.relu(); h = v.relu(); o = q.relu(); d = m - n; e = k / c; f = 1.5 - z; b = 2 / t; "
            "y2 = -y; (d + e + w + f + b + j + l + y2 + g * 2 + h * 3 - o * 3) * 0.5")
SENTINEL_LEAVES = {"p": (0.5, 1.5), "r": (0.5, 1.5), "q": (-1.5, -0.5), "c": (1.5, 2.5)}
WITNESS = {"p": 0.7, "r": 1.3, "q": -0.9, "c": 2.1}
MARGIN = 1e-3  # relative: a model's gradients differ by more, 1000 times the judge's tolerance
MAX_DRAWS = 100  # a seed that needs more draws is a sentinel that lacks a gadget: an error


def sentinel_program(leaves):
    return expression(SENTINEL, **leaves)


def outcomes(program):
    """For each (misconception, style) of misconceptions.MISCONCEPTIONS x misconceptions.STYLES, how its
    gradients after backward() compare with the correct ones: "differs" (some node by more
    than MARGIN relative, or 1e-6 absolute), "same" (every node within the judge's
    tolerance) or "unclear" (in between)."""
    correct = misconceptions.simulate(program)[1]
    found = {}
    for bug in misconceptions.MISCONCEPTIONS:
        for composition, walk in misconceptions.STYLES:
            grads = misconceptions.simulate(program, bug, 1.0, "backward", (composition, walk))[1]
            if any(abs(g - c) > max(MARGIN * abs(c), judge.FD_ABS_TOL) for g, c in zip(grads, correct)):
                found[bug, composition, walk] = "differs"
            elif all(judge.close(g, c) for g, c in zip(grads, correct)):
                found[bug, composition, walk] = "same"
            else:
                found[bug, composition, walk] = "unclear"
    return found


_TARGETS = {}  # the misconceptions' names -> outcomes(the witness sentinel)


def targets():
    """What each (misconception, style) does to the witness sentinel: what every drawn
    sentinel must reproduce."""
    key = tuple(misconceptions.MISCONCEPTIONS)
    if key not in _TARGETS:
        _TARGETS[key] = outcomes(sentinel_program(WITNESS))
    return _TARGETS[key]


_SENTINELS = {}  # (seed, the misconceptions' names) -> the verified sentinel program


def sentinel(seed):
    """The sentinel of ``seed``: drawn from ``random.Random(f"{seed}:sentinel")``, redrawn from
    the same stream until it tells every misconception apart as the witness does. Raises
    RuntimeError when MAX_DRAWS draws do not (a model the shape has no gadget for)."""
    key = (seed, tuple(misconceptions.MISCONCEPTIONS))
    if key not in _SENTINELS:
        want, rng = targets(), random.Random(f"{seed}:sentinel")
        for _draw in range(MAX_DRAWS):
            leaves = {name: round(rng.uniform(*bounds), 3) for name, bounds in SENTINEL_LEAVES.items()}
            program = sentinel_program(leaves)
            if outcomes(program) == want:
                _SENTINELS[key] = program
                break
        else:
            got = outcomes(program)
            wrong = sorted({bug for bug in want if got[bug] != want[bug]})
            raise RuntimeError(f"no sentinel for seed {seed} in {MAX_DRAWS} draws tells apart: {wrong}")
    return _SENTINELS[key]


# --- the catalogue ---------------------------------------------------------------------

# Weights for MLP(3, [3, 3, 1]) that train: 50 epochs at lr 0.01 take the loss from 0.91 to
# 0.25, below the threshold (they are the documented seed's first draw, rounded). Not every
# initialisation trains (DESIGN.md §2), so the training checks never depend on the
# student's random numbers: weights[layer][neuron] = [w_1, ..., w_n, bias].
TRAINING_WEIGHTS = [
    [[0.92, -0.72, -0.95, 0.0], [1.0, -0.63, -0.76, 0.0], [0.3, -0.31, 0.78, 0.0]],
    [[-0.54, 0.92, -0.36, 0.0], [0.2, 0.86, 0.37, 0.0], [0.85, 0.42, -0.9, 0.0]],
    [[0.76, 0.18, -0.38, 0.0]],
]
XS = [[0.5, 0.5, 0.70], [0.4, -0.1, 0.5], [-0.2, -0.75, 1.0]]
YS = [0.0, 1.0, 0.0]
TRAINING = {"weights": TRAINING_WEIGHTS, "xs": XS, "ys": YS, "epochs": 50, "lr": 0.01}
# Weights for the forward check, biases nonzero: on x below, the first hidden layer clips one
# activation and the second clips two, so relu's both branches count, and the output is
# negative, so a relu on the last layer would show.
FORWARD_WEIGHTS = [
    [[0.5, -1.0, 0.25, 0.1], [-0.5, 0.75, -1.0, -0.2], [1.0, 0.5, 0.5, 0.3]],
    [[0.6, -0.4, 0.8, -0.1], [-0.7, 0.2, -0.3, 0.05], [0.3, 0.9, -0.5, 0.2]],
    [[-1.5, -0.5, 0.7, 0.4]],
]
NEURON = {"weights": [0.5, -1.0, 2.0], "bias": 0.25}

CHECKS = [
    # value: a Value holds a number and a gradient, and every operator computes the right number
    Check("value-repr", "repr(Value(5.0)) shows data 5 and grad 0, as in 'Value(data=5.0, grad=0.0)'", "value",
          "representation", {"data": 5.0}, "represented",
          about="repr(Value(5.0)): the numbers shown after data= and grad=, however formatted"),
    Check("value-fields", "A new Value keeps its data and starts with grad 0.0", "value", "representation",
          {"data": -3.5}, compare=("data", "grad"), about="Value(-3.5).data and .grad"),
    values_of("value-operators", "a + b, a * b, a ** 3, -a, a - b, a / b and relu() compute the right numbers",
              "s = a + b; p = a * b; q = a ** 3; n = -a; d = a - b; r = a / b; u = d.relu(); n.relu()",
              a=2.0, b=-3.0),
    values_of("value-numbers", "A Value combines with a plain number on its right: a + 2, a * 2, a - 2, a / 2",
              "s = a + 2; p = a * 2; d = a - 2; a / 2", a=5.0),
    values_of("value-reflected", "A plain number on the left works too: 2 + a, 2 * a, 2 - a, 2 / a",
              "s = 2 + a; p = 2 * a; d = 2 - a; 2 / a", a=5.0),
    # add: the local derivative of a sum is 1, and contributions add up
    one_step("add-step", "c = a + b passes out.grad on to both a and b", "add", "a + b", a=5.0, b=6.0),
    # The lesson where it lives: the closure alone, never backward(), so a backward() that
    # computes gradients some other way (finite differences, the chain rule applied from _op)
    # cannot hide an = where += belongs. Two ways a closure meets a grad already there: its
    # two operands are one Value (a + a), or its inputs hold grads from elsewhere (b and c);
    # judged together, so a closure that adds in one case only fails.
    by_hand("add-same-node-step", "c._backward() adds, never assigns: c = a + a gives a 2 * out.grad, and b + c "
            "adds out.grad to the grads b and c already hold", "add", "s = a + a; b + c", steps=("s", "root"),
            held={"s": UPSTREAM, "b": 2.0, "c": -3.0}, a=5.0, b=6.0, c=-4.0),
    # a is the left operand once and the right operand three times, so assigning instead of
    # adding shows on either line of _backward; four terms tell it from a sweep that stops early
    backward_of("add-same-node", "In a + a + a + a, a receives all four contributions: a.grad is 4",
                "add", "a + a + a + a", a=3.0),
    # mul: the local derivative of a product is the other factor
    one_step("mul-step", "c = a * b gives a the grad b * out.grad and b the grad a * out.grad", "mul",
             "a * b", a=5.0, b=6.0),
    backward_of("mul-same-node", "In a * a * a * a, a receives all four contributions: a.grad is 4a**3",
                "mul", "a * a * a * a", a=3.0),
    by_hand("mul-same-node-step", "c._backward() adds, never assigns: c = a * a gives a 2a * out.grad, and b * c "
            "adds c * out.grad and b * out.grad to the grads b and c already hold", "mul", "s = a * a; b * c",
            steps=("s", "root"), held={"s": UPSTREAM, "b": 2.0, "c": -3.0}, a=5.0, b=6.0, c=-4.0),
    # pow: the power rule, for every kind of exponent
    # ... and the accumulation lesson for the one-input operators: b holds a grad already
    by_hand("pow-square-step", "c = a ** 2 gives a the grad 2a * out.grad, and b ** 2 adds 2b * out.grad to "
            "the grad b already holds", "pow", "s = a ** 2; b ** 2", steps=("s", "root"),
            held={"s": UPSTREAM, "b": 2.0}, a=5.0, b=-1.5),
    one_step("pow-cube-step", "a ** 3 of a negative base follows the power rule", "pow", "a ** 3", a=-2.0),
    one_step("pow-negative-step", "a ** -2 follows the power rule", "pow", "a ** -2", a=1.5),
    one_step("pow-fractional-step", "a ** 0.5 of a positive base follows the power rule", "pow",
             "a ** 0.5", a=2.25),
    # relu: the gradient passes where the output is positive and stops where it was clipped
    by_hand("relu-positive-step", "relu() of a positive input passes out.grad through, added to any grad the "
            "input already holds", "relu", "s = a.relu(); b.relu()", steps=("s", "root"),
            held={"s": UPSTREAM, "b": 2.0}, a=3.0, b=1.5),
    one_step("relu-negative-step", "relu() of a negative input passes no gradient", "relu", "a.relu()",
             a=-3.0),
    # backward: seed, order, once each, everything reached
    backward_of("backward-seeds-root", "backward() sets the root's own grad to 1.0", "backward", "a * b",
                a=3.0, b=-2.0),
    backward_of("backward-reverse-order", "backward() runs a node's _backward only after all of its parents' "
                "(a diamond with paths of uneven length)", "backward", "b = a * 2; c = b * 3; c + b", a=1.5),
    backward_of("backward-shared-node", "A node used by five parents (+, *, **, relu) receives the sum of "
                "their contributions", "backward", "b = a * 2; c = b + 1; d = b * 3; e = b ** 2; c * d + e + b.relu()",
                a=1.25),
    backward_of("backward-each-node-once", "backward() runs each node's _backward once, however many paths "
                "reach it", "backward", "b = a * 3; c = b + b; c * c", a=0.5),
    backward_of("backward-reaches-every-node", "backward() reaches every node down to the leaves of a long "
                "expression", "backward", "d = a * b + c; e = d ** 2; f = e.relu(); f * 0.5",
                a=2.0, b=-1.0, c=3.5),
    backward_of("backward-distinct-equal-values", "Two nodes with equal data stay two nodes", "backward",
                "x = a + b; y = c * d; x * y", a=1.0, b=2.0, c=1.5, d=2.0),
    random_graph("backward-random-small", "Gradients of a random 12-node graph match the reference and "
                 "finite differences", size=12, chain=0.5),
    random_graph("backward-random-shared", "Gradients of a random 24-node graph with shared "
                 "sub-expressions match the reference and finite differences", size=24, chain=0.4),
    random_graph("backward-random-deep", "Gradients of a random graph up to about 30 nodes deep match "
                 "the reference and finite differences", size=40, chain=0.9),
    # sub-div: a - b and a / b build intermediate nodes; only a full backward() reaches b
    backward_of("sub-backward", "(a - b).backward() gives a the grad 1 and b the grad -1", "sub-div", "a - b",
                a=6.0, b=3.0),
    backward_of("div-backward", "(a / b).backward() gives a the grad 1/b and b the grad -a/b**2", "sub-div",
                "a / b", a=6.0, b=3.0),
    backward_of("rsub-backward", "(2 - a).backward() gives a the grad -1", "sub-div", "2 - a", a=5.0),
    backward_of("rdiv-backward", "(2 / a).backward() gives a the grad -2/a**2", "sub-div", "2 / a", a=4.0),
    backward_of("neg-backward", "(-a).backward() gives a the grad -1", "sub-div", "-a", a=3.0),
    # nn: neurons, layers and the MLP, with weights set explicitly
    Check("nn-neuron-linear", "A linear Neuron computes sum(w_i * x_i) + bias", "nn", "neuron",
          {**NEURON, "x": [1.0, 2.0, 3.0], "is_nonlinear": False, "backward": False}, compare=("output",),
          about="the output of Neuron(3, is_nonlinear=False) with weights 0.5, -1, 2 and bias 0.25 on 1, 2, 3"),
    Check("nn-neuron-relu", "A nonlinear Neuron clips a negative activation to 0", "nn", "neuron",
          {**NEURON, "x": [1.0, 2.0, -1.0], "is_nonlinear": True, "backward": False}, compare=("output",),
          about="the output of Neuron(3) with weights 0.5, -1, 2 and bias 0.25 on 1, 2, -1"),
    Check("nn-neuron-gradients", "backward() from a Neuron gives each weight its input as grad, the bias 1",
          "nn", "neuron", {**NEURON, "x": [1.0, 2.0, 3.0], "is_nonlinear": False},
          compare=("weight_grads", "bias_grad"),
          about="the weights' and bias's grads after backward() from the linear Neuron's output"),
    Check("nn-neuron-parameters", "Neuron.parameters() lists its weights and its bias", "nn", "neuron",
          {**NEURON, "x": [1.0, 2.0, 3.0], "is_nonlinear": True, "backward": False},
          compare=("parameter_count", "bias_in_parameters"),
          about="len(Neuron(3).parameters()), and whether the bias is among them"),
    Check("nn-mlp-parameters", "MLP(3, [3, 3, 1]) has 28 distinct parameters in layers of 3, 3 and 1",
          "nn", "structure", {"number_inputs": 3, "sizes": [3, 3, 1]},
          compare=("parameter_count", "distinct_parameters", "layer_sizes"),
          about="len(MLP(3, [3, 3, 1]).parameters()), how many are distinct, neurons per layer"),
    Check("nn-mlp-nonlinear", "Every layer of an MLP is nonlinear except the last", "nn", "structure",
          {"number_inputs": 3, "sizes": [3, 3, 1], "activations": True}, compare=("nonlinear",),
          about="the output of every neuron of MLP(3, [3, 3, 1]) with weights 0 and bias -1: "
                "0 where it is nonlinear, -1 where it is linear"),
    Check("nn-mlp-forward", "MLP(3, [3, 3, 1]) with known weights computes the reference's output", "nn",
          "mlp_forward", {"number_inputs": 3, "sizes": [3, 3, 1], "weights": FORWARD_WEIGHTS,
                          "x": [0.5, -0.25, 0.75]},
          about="the output of MLP(3, [3, 3, 1]) with FORWARD_WEIGHTS on 0.5, -0.25, 0.75"),
    Check("nn-zero-grad", "zero_grad() sets every parameter's grad back to 0", "nn", "zero_grad",
          {"number_inputs": 3, "sizes": [3, 3, 1]}, "zeroed",
          about="every parameter's grad set to 5, then MLP.zero_grad()"),
    # training: the kit's loop on the student's classes, from known-good weights
    Check("training-loss-history", "Training from known weights follows the reference's loss at every epoch",
          "training", "training", TRAINING, "loss_history", timeout=10.0,
          about="the loss of each of 50 epochs at lr 0.01, MLP(3, [3, 3, 1]) from TRAINING_WEIGHTS"),
    Check("training-converges", "50 epochs from known-good weights bring the loss below 0.3", "training",
          "training", TRAINING, "converges", timeout=10.0,
          about="the last of those 50 losses"),
    # deep: extra credit, 0 points by default
    # A recursive topological sort needs a frame per node, so at Python's default limit (1,000,
    # which the probe puts back) it fails on 3,000 nodes; an iterative one passes. Longer only
    # costs time: 12,000 nodes, the length before the probe put the limit back, cost about
    # 10 ms more of each submission's worker CPU (benchmarks/carry.py).
    Check("deep-chain", "backward() works through a chain of 3,000 nodes at Python's default recursion limit",
          "deep", "chain", {"length": 3_000}, timeout=10.0,
          about="the leaf's grad after backward() on Value(1.0) + 1.0 + 1.0 + ... (3,000 additions), "
                "with sys.setrecursionlimit at its default of 1,000"),
]
CORE_EXERCISES = tuple(dict.fromkeys(check.exercise for check in CHECKS))


# --- the extension exercises: chosen per course ([course] exercises in checks.toml) -----------

EXTENSIONS = ("tanh", "exp", "log", "moons")
# One leaf through the operator and also a factor of its result (so that the leaf receives two
# contributions, and an = where += belongs shows), scaled by 3 so that its out.grad is not 1:
# joined to every random graph of the exercise, so that each of its misconceptions fails it
# under any seed, whatever the random part happens to hold. Leaf bounds keep tanh's input away
# from 0 and log's positive.
EXTENSION_SENTINELS = {"tanh": ("a.tanh() * a * 3", (0.3, 1.5)), "exp": ("a.exp() * a * 3", (-1.0, 1.0)),
                       "log": ("a.log() * a * 3", (0.3, 3.0))}
# The a at which each model of the operator (misconceptions.EXTENSION_MODELS) changes the
# sentinel's gradients: every drawn a must do to every model what this one does.
EXTENSION_WITNESS = {"tanh": 0.8, "exp": 0.5, "log": 1.7}
_EXTENSION_SENTINELS = {}  # (seed, op, the misconceptions' names) -> the verified sentinel program


def extension_sentinel(seed, op):
    """The sentinel of operator ``op`` for ``seed``: its a drawn from
    ``random.Random(f"{seed}:sentinel:{op}")`` (tanh's of either sign), redrawn until every
    model in every style compares with the correct gradients as at EXTENSION_WITNESS (see
    ``outcomes``). Raises RuntimeError when MAX_DRAWS draws do not."""
    key = (seed, op, tuple(misconceptions.MISCONCEPTIONS))
    if key not in _EXTENSION_SENTINELS:
        text, bounds = EXTENSION_SENTINELS[op]
        want, rng = outcomes(expression(text, a=EXTENSION_WITNESS[op])), random.Random(f"{seed}:sentinel:{op}")
        for _draw in range(MAX_DRAWS):
            a = round(rng.uniform(*bounds), 3) * (rng.choice((-1, 1)) if op == "tanh" else 1)
            program = expression(text, a=a)
            if outcomes(program) == want:
                _EXTENSION_SENTINELS[key] = program
                break
        else:
            raise RuntimeError(f"no {op} sentinel for seed {seed} in {MAX_DRAWS} draws")
    return _EXTENSION_SENTINELS[key]


def extension_random_graph(id, title, op, size=20, chain=0.5):
    """backward() on a random graph whose operators include ``op``, joined with the core
    sentinel of the seed and the operator's own sentinel."""
    text, _ = EXTENSION_SENTINELS[op]

    def params(rng, seed):
        program = join(random_program(rng, size, chain, KINDS + (op,)), sentinel(seed))
        return {"program": join(program, extension_sentinel(seed, op)), "sweep": "backward"}

    return Check(id, title, op, "graph", params, "gradients", timeout=5.0,
                 about=f"backward() on a random graph of {size}+ nodes using {op}() among the core operators, "
                       f"added to the seed's sentinel and `{text}` with a random a (verified against every model)")


MOONS_POINTS = 20  # the points of the graded moons checks (the full demo trains on all 100)
MOONS_STEPS = 5  # training steps of the graded training check (the demo runs 100)
MOONS_CHECK_ALPHA = 0.01  # moons-objective's alpha: not moons.ALPHA, so a moons_loss that ignores it fails


def moons_weights(seed=1337):
    """Known weights of MLP(2, [16, 16, 1]): weights[layer][neuron] = [w_1, ..., w_n, bias]."""
    rng, sizes, weights = random.Random(seed), [2, 16, 16, 1], []
    for n_in, n_out in zip(sizes, sizes[1:]):
        weights.append([[round(rng.uniform(-1, 1), 3) for _ in range(n_in)] + [0.0] for _ in range(n_out)])
    return weights


def _moons(rng, seed, **extra):
    from solutions.moons import ALPHA, load_moons

    xs, ys = load_moons()
    return {"weights": moons_weights(), "xs": xs[:MOONS_POINTS], "ys": ys[:MOONS_POINTS], "alpha": ALPHA, **extra}


HINGE = {"scores": [2.0, -0.5, 0.3, -1.5, 0.8, -0.2], "ys": [1, 1, -1, -1, 1, -1]}
# Chosen so that each wrong count gives its own number: 0.75 right, 0.25 reversed (the error
# rate), 0.125 scores compared with the labels as they are, 0.8 scores times labels averaged.
CLASSIFY = {"scores": [1.2, -0.4, 0.3, -2.0, 0.7, -0.1, 1.0, -1.5], "ys": [1, -1, -1, -1, 1, 1, 1, -1]}

EXTENSION_CHECKS = [
    # tanh: the local derivative 1 - t**2, read off the output
    one_step("tanh-step", "c = a.tanh() gives a the grad (1 - c**2) * out.grad", "tanh", "a.tanh()", a=0.7),
    one_step("tanh-negative-step", "tanh() of a negative input beyond -1 follows 1 - tanh(a)**2", "tanh",
             "a.tanh()", a=-1.2),
    # The accumulation lesson of add-same-node-step, for the unary operator, where it lives: a
    # leaf that is the operator's input and also a factor of its result, and the two closures
    # called by hand (never backward()). The product's _backward runs first and adds its
    # share to a; tanh's must add to it, not replace it.
    by_hand("tanh-same-node", "In a.tanh() * a, the product's _backward and then tanh's give a both "
            "contributions: ((1 - t**2) * a + t) * out.grad", "tanh", "t = a.tanh(); t * a", steps=("root", "t"),
            held={}, a=0.8),
    extension_random_graph("tanh-random", "Gradients of a random graph with tanh() match the reference and "
                           "finite differences", "tanh"),
    Check("tanh-through-exp", "tanh written directly and through exp, (e - 1) / (e + 1) with e = (2a).exp(), "
          "give the same gradient", "tanh", "graph",
          {"program": expression("t = a.tanh(); e = (b * 2).exp(); u = (e - 1) / (e + 1); t + u", a=0.6, b=0.6),
           "sweep": "backward"}, "gradients", requires=("exp",),
          about="backward() on a.tanh() + (e - 1) / (e + 1), e = (2b).exp(), a = b = 0.6: a.grad must equal b.grad"),
    # exp: its own derivative
    one_step("exp-step", "c = a.exp() gives a the grad c * out.grad", "exp", "a.exp()", a=0.5),
    one_step("exp-negative-step", "exp() of a negative input gives a the grad exp(a) * out.grad", "exp",
             "a.exp()", a=-1.3),
    by_hand("exp-same-node", "In a.exp() * a, the product's _backward and then exp's give a both contributions: "
            "(e * a + e) * out.grad", "exp", "e = a.exp(); e * a", steps=("root", "e"), held={}, a=0.6),
    extension_random_graph("exp-random", "Gradients of a random graph with exp() match the reference and "
                           "finite differences", "exp"),
    # log: 1 / x, times out.grad
    one_step("log-step", "c = a.log() gives a the grad out.grad / a", "log", "a.log()", a=2.5),
    one_step("log-small-step", "log() of an input below 1 gives a the grad out.grad / a", "log", "a.log()", a=0.4),
    by_hand("log-same-node", "In a.log() * a, the product's _backward and then log's give a both contributions: "
            "((1 / a) * a + log(a)) * out.grad", "log", "g = a.log(); g * a", steps=("root", "g"), held={}, a=2.5),
    extension_random_graph("log-random", "Gradients of a random graph with log() of positive numbers match "
                           "the reference and finite differences", "log"),
    # moons: the max-margin classifier of micrograd's demo
    Check("moons-hinge", "hinge_loss is the mean of max(0, 1 - y * score), with its gradient", "moons", "hinge",
          HINGE, "hinge_result", about="hinge_loss on six scores (two beyond the margin), then backward()"),
    Check("moons-l2", "l2_penalty is alpha * sum(p * p) and gives each parameter the grad 2 * alpha * p",
          "moons", "penalty", {"parameters": [0.5, -1.5, 2.0, -0.25], "alpha": 0.01}, "penalty_result",
          about="l2_penalty of four parameters with alpha 0.01, then backward()"),
    Check("moons-accuracy", "accuracy is the fraction of scores with the sign of their label", "moons",
          "classify", CLASSIFY, "accuracy_result", about="accuracy of eight scores, two of them misclassified"),
    # Two lengths of run: micrograd's demo writes its schedule for 100 steps, and a schedule
    # that ignores `steps` shows only on another length.
    Check("moons-learning-rate", "learning_rate(step, steps) is 1.0 - 0.9 * step / steps, for any steps",
          "moons", "schedule", {"calls": [[0, 100], [1, 100], [50, 100], [99, 100]] + [[k, 5] for k in range(5)]},
          "schedule_result", compare=("rates",),
          about="learning_rate(step, 100) at steps 0, 1, 50 and 99, and learning_rate(step, 5) at steps 0 to 4"),
    Check("moons-objective", "moons_loss of MLP(2, [16, 16, 1]) with known weights matches the reference: "
          "loss, accuracy and every gradient", "moons", "moons_objective",
          lambda rng, seed: _moons(rng, seed, alpha=MOONS_CHECK_ALPHA), "objective_result",
          timeout=10.0, about=f"moons_loss on the first {MOONS_POINTS} points with known weights and alpha "
                              f"{MOONS_CHECK_ALPHA} (not the default, so an ignored alpha shows), then backward()"),
    Check("moons-training", "A few training steps from known weights follow the reference's loss", "moons",
          "moons_training", lambda rng, seed: _moons(rng, seed, steps=MOONS_STEPS), "training_result",
          timeout=10.0, about=f"train_moons for {MOONS_STEPS} steps on the first {MOONS_POINTS} points "
                              "from known weights"),
]
CHECKS += EXTENSION_CHECKS
EXERCISES = tuple(dict.fromkeys(check.exercise for check in CHECKS))


# --- configuration and compilation -----------------------------------------------------


class ConfigError(ValueError):
    """A course config (checks.toml or an instructor's copy) that cannot be used: missing,
    unreadable, or naming what does not exist. Every command that reads one reports it as
    bad input, in one line, with exit code 2 (``cli.main``)."""


def load_config(path=None, exercises=None, scale=True):
    """Points and visibility per check id of the course's assignment, validated against the
    catalogue: only the checks of its exercises (``exercises``, default: the [course] table's
    ``exercises``, else the core ones), so the checks of exercises not chosen are never compiled.

    An extension check missing from an instructor's file takes the kit's default entry. With
    ``scale``, when extensions are chosen the core checks' points are scaled so that the total
    stays what the core alone totals (100 by default): the extensions keep their declared points.
    """
    path = Path(path) if path else DEFAULT_CONFIG
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read check configuration {path}: {exc}") from exc
    table = document.get("checks", {})
    chosen = course_exercises(path, document) if exercises is None else tuple(exercises)
    known = {check.id for check in CHECKS}
    unknown = set(table) - known
    if unknown:
        raise ConfigError(f"{path}: no such checks: {', '.join(sorted(unknown))}")
    wanted = [check for check in CHECKS if check.exercise in chosen and set(check.requires) <= set(chosen)]
    defaults = {} if path == DEFAULT_CONFIG else _default_table()
    table = {check.id: table.get(check.id) or (defaults.get(check.id) if check.exercise in EXTENSIONS else None)
             for check in wanted}
    missing = [check_id for check_id, entry in table.items() if entry is None]
    if missing:
        raise ConfigError(f"{path}: no points or visibility for: {', '.join(sorted(missing))}")
    for check_id, entry in table.items():
        if entry.get("visibility") not in VISIBILITIES:
            raise ConfigError(f"{path}: {check_id}: visibility must be one of {', '.join(VISIBILITIES)}")
        if not isinstance(entry.get("points"), (int, float)) or entry["points"] < 0:
            raise ConfigError(f"{path}: {check_id}: points must be a number >= 0")
    return _scaled(table, path) if scale else table


def _default_table():
    return tomllib.loads(DEFAULT_CONFIG.read_text()).get("checks", {})


def _scaled(table, path):
    """The core checks' points times (core - extensions) / core, rounded to 1e-6; unchanged
    when no extension is chosen."""
    exercise = {check.id: check.exercise for check in CHECKS}
    extra = sum(entry["points"] for check_id, entry in table.items() if exercise[check_id] in EXTENSIONS)
    core = sum(entry["points"] for check_id, entry in table.items() if exercise[check_id] not in EXTENSIONS)
    if not extra:
        return table
    if extra >= core:
        raise ConfigError(f"{path}: the extensions' {extra:g} points leave nothing of the core's {core:g}")
    factor = (core - extra) / core
    return {check_id: (dict(entry, points=round(entry["points"] * factor, 6))
                       if exercise[check_id] not in EXTENSIONS else entry)
            for check_id, entry in table.items()}


def course_exercises(config=None, document=None):
    """The exercises of the course's assignment: the core ones, and the extensions named in
    the [course] table's ``exercises`` (which may also list core ones; every core exercise is
    always assigned). Raises ConfigError for an unknown name."""
    if document is None:
        path = DEFAULT_CONFIG if config is None or isinstance(config, dict) else Path(config)
        try:
            document = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read check configuration {path}: {exc}") from exc
    where = f"{config}: " if isinstance(config, (str, Path)) else ""
    names = document.get("course", {}).get("exercises", [])
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ConfigError(f"{where}[course] exercises must be a list of exercise names, "
                          f"such as exercises = [\"tanh\", \"moons\"] (got {names!r})")
    unknown = [name for name in names if name not in EXERCISES]
    if unknown:
        close = [f"{name!r}: did you mean {match[0]!r}?" for name in unknown
                 if (match := difflib.get_close_matches(name.lower(), EXTENSIONS, n=1, cutoff=0.6))]
        raise ConfigError(f"{where}[course] exercises: no such exercises: {', '.join(map(repr, unknown))}"
                          f"{' (' + '; '.join(close) + ')' if close else ''}; the extensions are "
                          f"{', '.join(EXTENSIONS)}")
    return CORE_EXERCISES + tuple(name for name in EXTENSIONS if name in names)


def course_seed(config=None):
    """The seed of the course's random checks: ``seed`` in the config's [course] table, else
    one derived from its ``assignment`` name (the same on every run and machine). ``config``
    is a path, or None (or an already loaded [checks] table) for the default file."""
    path = DEFAULT_CONFIG if config is None or isinstance(config, dict) else Path(config)
    try:
        course = tomllib.loads(path.read_text()).get("course", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read check configuration {path}: {exc}") from exc
    seed = course.get("seed")
    if seed is not None:
        if type(seed) is not int or seed < 0:
            raise ConfigError(f"{path}: [course] seed must be an integer >= 0")
        return seed
    name = course.get("assignment", "autodiff101")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}: [course] assignment must be a name")
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") >> 1  # below 2**31


def carry_errors(config=None):
    """Whether a mistake's consequences in other exercises keep their points (error carried
    forward, ``carry.py``): ``carry_errors`` in the config's [grading] table, true when
    absent. ``config`` as for ``course_seed``."""
    path = DEFAULT_CONFIG if config is None or isinstance(config, dict) else Path(config)
    try:
        grading = tomllib.loads(path.read_text()).get("grading", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read check configuration {path}: {exc}") from exc
    value = grading.get("carry_errors", True) if isinstance(grading, dict) else None
    if type(value) is not bool:
        raise ConfigError(f"{path}: [grading] carry_errors must be true or false")
    return value


def reference_namespace():
    import solutions

    return {name: getattr(solutions, name) for name in solutions.__all__}


def compile_checks(seed, config=None, only=None, namespace=None):
    """The catalogue as plain data for one run: concrete parameters from ``seed`` and the
    reference's observations as ``expected``. ``only`` filters by visibility."""
    config = config if isinstance(config, dict) else load_config(config)
    namespace = namespace or reference_namespace()
    compiled = []
    for check in CHECKS:
        if check.id not in config:  # an exercise the course did not choose
            continue
        settings = config[check.id]
        if only and settings["visibility"] not in only:
            continue
        params = check.concrete_params(seed)
        observed = probes.run(namespace, check.probe, params)
        expected = {key: observed[key] for key in check.compare} if check.compare else observed
        compiled.append({
            "id": check.id,
            "title": check.title,
            "exercise": check.exercise,
            "probe": check.probe,
            "params": params,
            "judge": check.judge,
            "timeout": check.timeout,
            "points": settings["points"],
            "visibility": settings["visibility"],
            "expected": expected,
            **({"cell": cell} if (cell := check_cell(check)) != check.exercise else {}),
        })
    return compiled


def check_cell(check):
    """The exercise whose check cell runs ``check`` (a Check): its own, or the last of the
    exercises it requires in the order the handout teaches them (EXERCISES), so that the cell
    comes after every method its probe calls (tanh-through-exp, in the tanh exercise, also
    calls exp, so it runs at exp's cell). The handout notebook's check cells, check.py's
    ``check(exercise)`` and the nbgrader/otter exports all place a compiled check by its
    ``cell`` key, which compile_checks writes only where this differs from the exercise."""
    return max((check.exercise, *check.requires), key=EXERCISES.index)


# --- the instructors' catalogue ----------------------------------------------------------


def markdown(mutants=None, variants=None, config=None, extension_mutants=None):
    """docs/checks.md: every check, every diagnosis with its hint, every misconception the
    judge models, and what each mutant and correct variant of the corpus scores. Built from
    the declarations (and the corpus in tests/mutants.py), so it cannot drift from them."""
    config = config if isinstance(config, dict) else load_config(config, exercises=EXERCISES, scale=False)
    points = {check_id: entry["points"] for check_id, entry in config.items()}
    core = {check.id for check in CHECKS if check.exercise in CORE_EXERCISES}
    total = sum(points[check_id] for check_id in core)
    lines = [
        "# The check catalogue",
        "",
        "<!-- Generated by `python tests/mutants.py > docs/checks.md` from autograder/checks.py, "
        "checks.toml, judge.py and tests/mutants.py. Do not edit: a test fails when this file is stale. -->",
        "",
        f"{len(core)} checks in {len(CORE_EXERCISES)} core exercises, {total:g} points by default "
        "(`autograder/checks.toml`; copy it and pass `--config` to reweigh), and "
        f"{len(CHECKS) - len(core)} checks in the extension exercises {', '.join(EXTENSIONS)}, compiled only "
        "when the course's `[course] exercises` names them: they keep the points shown here and the core's "
        "points are scaled so that the assignment still totals 100. *public* checks also run in the "
        "student's self-check and show their inputs and expected values on failure; *hidden* checks are "
        "graded but say only what went wrong and why, never with which inputs; *after_due_date* checks are "
        "shown once grades are published. A failed check names zero or more diagnoses (below), and its "
        "message ends with the hint of the first.",
        "",
        "Gradients are compared with the reference's to a relative tolerance of "
        f"{judge.REL_TOL:g}, and after a full backward() also with central finite differences of the "
        f"forward pass ({judge.FD_REL_TOL:g} relative); losses to {judge.LOSS_REL_TOL:g} relative.",
        "",
        "**What a submission may import.** The standard library, its own modules, and the packages the "
        "course's config allows (`[worker] allowed_packages`, by default numpy alone): each is visible to "
        "the sandboxed worker read-only with what it needs, and nothing else "
        "of the grader's installation is. An import of anything else fails with a message that names the "
        "package and the allowed list; in a notebook only that cell is skipped.",
        "",
        "**How seeds work.** The hidden random checks draw their graphs from one seed per course "
        "(`[course] seed`, or derived from `[course] assignment`; `grade --seed N` overrides it), so every "
        "run, rerun, output folder and machine grades with the same inputs. Each random graph is joined with "
        "a sentinel sub-graph, verified when the checks are compiled, on which every misconception below "
        "changes the gradients: a misconception costs the same points under every seed.",
        "",
        "## Checks",
    ]
    for exercise in EXERCISES:
        lines += ["", f"### {exercise}", "", "| id | passes when | probes | judge | points | visibility | timeout |",
                  "| --- | --- | --- | --- | ---: | --- | ---: |"]
        for check in CHECKS:
            if check.exercise == exercise:
                lines.append(f"| `{check.id}` | {_cell(check.title)} | {_cell(check.about)} | {check.judge} | "
                             f"{points[check.id]:g} | {config[check.id]['visibility']} | {check.timeout:g} s |")
    lines += ["", "## Diagnoses", "", "| id | hint shown to the student |", "| --- | --- |"]
    lines += [f"| `{name}` | {_cell(hint)} |" for name, hint in judge.DIAGNOSES.items()]
    lines += ["", "## Misconceptions the judge recognises", "",
              "A failed gradient check replays its graph in floats under each of these models, in every "
              "style of implementation (sub/div composed or direct; recursive or stack-based topological "
              "sort); the diagnoses of the models that reproduce the student's gradients are named, the rare "
              "ones only when no common one does.", "",
              "| model | diagnoses | it looks as if |", "| --- | --- | --- |"]
    lines += [f"| {name} | {', '.join(m.diagnoses)} | {_cell(m.words)}{' (rare)' if m.rare else ''}"
              f"{' (programs with tanh, exp or log)' if name in misconceptions.EXTENSION_MODELS else ''} |"
              for name, m in misconceptions.MISCONCEPTIONS.items()]
    if mutants:
        lines += ["", "## Mutants", "",
                  "The reference with one bug each (`tests/mutants.py`); `tests/test_mutants.py` checks that each "
                  "fails exactly these checks with exactly these diagnoses.", "",
                  "| mutant | the bug | score | failed checks | diagnoses |", "| --- | --- | ---: | --- | --- |"]
        for name, mutant in mutants.items():
            lines.append(_corpus_row(name, mutant, points, total))
    if extension_mutants:
        every = load_config(config if not isinstance(config, dict) else None, exercises=EXERCISES)
        lines += ["", "## Mutants of the extension exercises", "",
                  "The reference with every extension, one bug each (`tests/mutants.py`, `EXTENSION_MUTANTS`), "
                  "graded with every extension chosen (core points scaled; 100 in total); "
                  "`tests/test_extensions.py` checks each.", "",
                  "| mutant | the bug | score | failed checks | diagnoses |", "| --- | --- | ---: | --- | --- |"]
        for name, mutant in extension_mutants.items():
            lines.append(_corpus_row(name, mutant, {k: v["points"] for k, v in every.items()}, 100))
    if variants:
        lines += ["", "## Correct variants", "",
                  "Correct code in other styles: each must score full marks.", "",
                  "| variant | style | score | failed checks | diagnoses |", "| --- | --- | ---: | --- | --- |"]
        for name, variant in variants.items():
            lines.append(_corpus_row(name, variant, points, total))
    return "\n".join(lines) + "\n"


def _corpus_row(name, submission, points, total):
    order = [check.id for check in CHECKS]
    failed = sorted(submission.fails, key=order.index)
    maybe = sorted(getattr(submission, "may_fail", ()), key=order.index)  # depends on a set's order
    score = f"{round(total - sum(points[check_id] for check_id in failed), 6):g}"
    if maybe:
        score = f"{round(total - sum(points[check_id] for check_id in failed + maybe), 6):g}–{score}"
    shown = [f"`{c}`" for c in failed] + [f"`{c}` (in some orders of _prev's set)" for c in maybe]
    return (f"| {name} | {_cell(submission.about)} | {score} | {', '.join(shown) or '—'} | "
            f"{', '.join(sorted(submission.diagnoses)) or '—'} |")


def _cell(text):
    return text.replace("|", "\\|")
