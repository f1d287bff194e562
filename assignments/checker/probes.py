"""Probes: small experiments run against an implementation's namespace.

A probe builds something with the implementation's own classes, pokes it, and reports what
it saw as plain JSON (numbers, strings, lists, dicts). It never decides anything: the judge
does that elsewhere. This module runs wherever the implementation runs (the sandboxed
worker, a student's kernel, the self-check), so it uses the standard library only and
imports nothing else from the kit.

A *program* describes an expression graph as a list of instructions; node i is the result
of instruction i, and the last node is the root:
    ["leaf", 2.0]                     a fresh Value(2.0)
    ["add"|"mul"|"sub"|"div", i, j]   node i (op) node j
    ["add_c"|"mul_c"|"sub_c"|"div_c", i, c]   node i (op) the number c
    ["c_add"|"c_mul"|"c_sub"|"c_div", c, i]   the number c (op) node i
    ["pow", i, k]   node i ** k        ["neg", i]   -node i        ["relu", i]   node i .relu()
    ["tanh"|"exp"|"log", i]   node i .tanh(), .exp(), .log()   (the extension exercises)
"""
import importlib.util
import numbers
import operator
import os.path
import sys
from time import monotonic, process_time  # bound now: a submission may replace time's own

# No pathlib here: importing it costs a sandboxed worker more start-up time than running
# most checks (os.path comes with the interpreter's start anyway).

BINARY = {"add": operator.add, "mul": operator.mul, "sub": operator.sub, "div": operator.truediv}


def inputs_of(instruction):
    """The nodes a program instruction reads: [] for a leaf, both operands of a binary op,
    the node operand of an op with a number (``c_sub``: [number, node]; ``sub_c``: [node, number])."""
    op, *args = instruction
    if op == "leaf":
        return []
    if op in BINARY:
        return [args[0], args[1]]
    return [args[1]] if op.startswith("c_") else [args[0]]


def _no_phase(where):
    """Where no one is watching (kernel, self-check), phases are not reported."""


def number(x):
    """A plain int or float for JSON; anything else is described ({"not_a_number": its
    type's name}), not converted. A real number of another type (numpy's int64 or float32,
    a Fraction: any ``numbers.Real``) is converted here, inside the worker, by int() or
    float(), so that only plain numbers cross to the judge; bool counts as the int it is.
    (numpy's bool_ is no numbers.Real: it stays not a number.)"""
    if type(x) in (int, float):
        return x
    try:
        if isinstance(x, bool):
            return int(x)
        if isinstance(x, float):  # a float subclass: keep the value, drop whatever it overrides
            return float.__float__(x)
        if isinstance(x, int):
            return int.__int__(x)
        if isinstance(x, numbers.Integral):
            return int.__int__(int(x))
        if isinstance(x, numbers.Real):
            return float.__float__(float(x))
    except Exception:  # a __class__, __int__ or __float__ that raises: not a number either
        pass
    return {"not_a_number": type(x).__name__}


def build(ns, program, phase=_no_phase):
    """Run a program with the namespace's Value; return the list of nodes."""
    Value = ns["Value"]
    nodes = []
    for instruction in program:
        op, *args = instruction
        phase(f"building {describe(program, len(nodes))}")
        if op == "leaf":
            node = Value(args[0])
        elif op in BINARY:
            node = BINARY[op](nodes[args[0]], nodes[args[1]])
        elif op.endswith("_c"):
            node = BINARY[op[:-2]](nodes[args[0]], args[1])
        elif op.startswith("c_"):
            node = BINARY[op[2:]](args[0], nodes[args[1]])
        elif op == "pow":
            node = nodes[args[0]] ** args[1]
        elif op == "neg":
            node = -nodes[args[0]]
        elif op == "relu":
            node = nodes[args[0]].relu()
        elif op in UNARY_METHODS:
            node = getattr(nodes[args[0]], op)()
        else:
            raise ValueError(f"unknown instruction {instruction!r}")
        nodes.append(node)
    return nodes


def describe(program, index=None):
    """The expression that node ``index`` (default: the root) computes, as Python-like text."""
    names = {}
    leaf_names = iter("abcdefghijklmnopqrstuvwxyz")

    def text(i):
        if i in names:
            return names[i]
        op, *args = program[i]
        if op == "leaf":
            names[i] = next(leaf_names, f"x{i}")
            return names[i]
        if op in BINARY:
            return f"({text(args[0])} {SYMBOL[op]} {text(args[1])})"
        if op.endswith("_c"):
            return f"({text(args[0])} {SYMBOL[op[:-2]]} {args[1]!r})"
        if op.startswith("c_"):
            return f"({args[0]!r} {SYMBOL[op[2:]]} {text(args[1])})"
        if op == "pow":
            return f"{operand(args[0])}**{args[1]!r}"
        if op == "neg":
            return f"-{text(args[0])}"
        return f"{operand(args[0])}.{op}()"  # relu, or an extension's tanh, exp, log

    def operand(i):  # a power or a negation in parentheses where ** or a method call follows
        inner = text(i)
        return f"({inner})" if program[i][0] in ("pow", "neg") else inner

    for i, (op, *_) in enumerate(program):  # name leaves in order of appearance
        if op == "leaf":
            text(i)
    index = len(program) - 1 if index is None else index
    result = text(index)
    wrapped = program[index][0] in BINARY or "_" in program[index][0]  # only these come in parentheses
    return result[1:-1] if wrapped else result


SYMBOL = {"add": "+", "mul": "*", "sub": "-", "div": "/"}
UNARY_METHODS = ("tanh", "exp", "log")  # the extension exercises' operators


# --- loading an implementation -----------------------------------------------------------

NAMES = ("Value", "Module", "Neuron", "Layer", "MLP")
MODULE = "submission.py"  # a one-file submission (a notebook's code cells become this file)
PACKAGE = ("engine.py", "nn.py")  # the handout's layout
# The moons extension's functions: collected where defined, never required (a course that
# does not assign it has none); its module in the handout's layout, imported when present.
EXTENSION_NAMES = ("hinge_loss", "l2_penalty", "accuracy", "moons_loss", "learning_rate", "train_moons")
EXTENSION_MODULES = ("moons.py",)


def namespace(directory, phase=_no_phase, provided=None):
    """Run the implementation in ``directory`` and return its names.

    The directory holds either ``submission.py`` (run top to bottom as one module) or the
    handout's modules (``engine.py``, ``nn.py``, ...), imported as a package so that their
    relative imports work; plain ``from engine import Value`` works too. ``provided``:
    {file name: source} of handout modules to use where the folder has none (the self-check
    fills in the handout's train.py as the grader's loader does).
    """
    directory = os.path.realpath(directory)
    # An earlier implementation loaded in this process (the self-check, tests) must not
    # answer this one's imports from the module cache: forget its modules.
    stems = {os.path.splitext(name)[0] for name in PACKAGE + EXTENSION_MODULES}
    for name in [name for name in sys.modules if name == "submission" or name.startswith("submission.")
                 or name in stems]:
        del sys.modules[name]
    sys.path.insert(0, directory)
    extension_errors = {}
    if os.path.exists(os.path.join(directory, MODULE)):
        phase("running the submission's top-level code")
        modules = [_import("submission", os.path.join(directory, MODULE))]
    else:
        phase("importing the submission's modules")
        _import("submission", os.path.join(directory, "__init__.py"), package=directory)
        for name, source in (provided or {}).items():
            if not os.path.exists(os.path.join(directory, name)):
                _provide(f"submission.{os.path.splitext(name)[0]}", os.path.join(directory, name), source)
        modules = [importlib.import_module(f"submission.{os.path.splitext(name)[0]}") for name in PACKAGE]
        for name in EXTENSION_MODULES:
            if not os.path.exists(os.path.join(directory, name)):
                continue
            try:
                modules.append(importlib.import_module(f"submission.{os.path.splitext(name)[0]}"))
            except Exception as error:  # optional: only its own checks fail, the core is graded
                extension_errors[name] = f"{type(error).__name__}: {error}"[:300]
    found = {}
    for module in modules:
        found.update({name: getattr(module, name) for name in NAMES + EXTENSION_NAMES if hasattr(module, name)})
    for module, error in extension_errors.items():
        for name in EXTENSION_NAMES:
            found.setdefault(name, _unloaded(module, name, error))
    return found


class ExtensionNotLoaded(Exception):
    """An extension's module (moons.py) was handed in but raised while it was imported."""


def _unloaded(module, name, error):
    def unloaded(*args, **kwargs):
        raise ExtensionNotLoaded(f"{module} could not be imported, so {name} cannot be checked: {error}")
    return unloaded


def _provide(name, path, source):
    """Module ``name`` of the submission package run from ``source``, as if read from ``path``."""
    spec = importlib.util.spec_from_loader(name, loader=None, origin=path)
    module = importlib.util.module_from_spec(spec)
    module.__file__, module.__package__ = path, "submission"
    sys.modules[name] = module
    exec(compile(source, path, "exec"), module.__dict__)


def _import(name, path, package=None):
    spec = importlib.util.spec_from_file_location(
        name, path, submodule_search_locations=[str(package)] if package else None
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    if os.path.exists(path):
        spec.loader.exec_module(module)
    return module


def missing_names(ns):
    return [name for name in NAMES if name not in ns]


# --- the probes ------------------------------------------------------------------------


def graph(ns, program, sweep="backward", upstream=1.0, grads=(), steps=None, phase=_no_phase):
    """Build the program, then either call root.backward() or, for sweep="local", set the
    root's grad to ``upstream`` and call only root._backward() (for an operator composed of
    others, the _backward of every node it built, see ``_local_step``). A local sweep may
    also set ``grads`` ([[node index, grad], ...], after the root's: a grad a node already
    holds, as if another _backward had run) and call the local steps of ``steps`` (node
    indices, in that order) instead of the root's alone. Report every node's data
    and grad, whether every node keeps its children in order (``_prev`` a tuple or a list:
    a set's order follows id()s, which the judge's models cannot know), and after
    backward() how many times it called each node's _backward (``backward_calls``)."""
    nodes = build(ns, program, phase)
    root = nodes[-1]
    if sweep == "backward":
        calls = _count_calls(nodes)
        phase("backward()")
        root.backward()
    else:
        calls = None
        root.grad = upstream
        for i, grad in grads:
            nodes[i].grad = grad
        for i in (len(nodes) - 1,) if steps is None else steps:
            phase(f"_backward() of {describe(program, i)}")
            for node in _local_step(nodes[i], nodes):
                node._backward()
    found = {"data": [number(n.data) for n in nodes], "grad": [number(n.grad) for n in nodes],
             "ordered_children": all(type(getattr(n, "_prev", None)) in (tuple, list) for n in nodes)}
    if calls is not None:
        found["backward_calls"] = calls
    composed = _composed(program, nodes)
    if composed:
        found["composed"] = composed
    return found


def _composed(program, nodes):
    """The program nodes of an extension operator (tanh, exp, log) written through other
    operators: their children are nodes the operator built, not its input. The judge's
    models know these operators only as written directly."""
    program_nodes = {id(node) for node in nodes}
    return [i for i, (instruction, node) in enumerate(zip(program, nodes))
            if instruction[0] in UNARY_METHODS
            and not all(id(child) in program_nodes for child in _children(node))]


# A composed operator (tanh as (e - 1) / (e + 1) of e = (2x).exp()) builds nodes of its own
# between its input and its output; its local step is then every one of them, not the
# output's _backward alone. Bounded: a hostile _prev cannot make the walk run forever.
MAX_STEP_NODES = 10_000
_DONE = object()


def _children(node):
    """A node's children that have a _backward to call (a plain number in _prev has none)."""
    return [child for child in (getattr(node, "_prev", None) or ()) if hasattr(child, "_backward")]


def _local_step(root, nodes):
    """The nodes whose _backward make up the root's local step, in the order to call them:
    the root alone when its children are all nodes of the program (an operator written
    directly), else the root and every node between it and the program's nodes (an
    operator composed of others), in reverse topological order, stopping at the program's
    nodes (their own _backward belong to other steps)."""
    program_nodes = {id(node) for node in nodes}
    if all(id(child) in program_nodes for child in _children(root)):
        return [root]
    order, seen, stack = [], {id(root)}, [(root, iter(_children(root)))]
    while stack:  # iterative depth-first post-order: a deep composition cannot overflow the stack
        node, pending = stack[-1]
        child = next(pending, _DONE)
        if child is _DONE:
            order.append(stack.pop()[0])
        elif id(child) not in seen and id(child) not in program_nodes:
            seen.add(id(child))
            if len(seen) > MAX_STEP_NODES:
                raise RuntimeError(f"the operator's result reaches more than {MAX_STEP_NODES} nodes "
                                   "before its input")
            stack.append((child, iter(_children(child))))
    return order[::-1]


def _count_calls(nodes):
    """Wrap every node's _backward so that backward() counts how often it calls each: a list
    the wrappers fill in, or None where a node does not let its _backward be replaced."""
    counts = [0] * len(nodes)

    def counting(original, i):
        def counted(*args, **kwargs):
            counts[i] += 1
            return original(*args, **kwargs)
        return counted

    try:
        for i, node in enumerate(nodes):
            node._backward = counting(node._backward, i)
    except Exception:  # __slots__ without _backward, a read-only property: no counts, nothing else lost
        return None
    return counts


def forward(ns, program, phase=_no_phase):
    """Build the program and report every node's data; no gradients are involved."""
    return {"data": [number(n.data) for n in build(ns, program, phase)]}


# sys.getrecursionlimit() in a fresh interpreter (CPython's default).
DEFAULT_RECURSION_LIMIT = 1000
# Taken when this module is loaded, before a submission's first line, which may replace sys's.
_set_recursion_limit, _get_recursion_limit = sys.setrecursionlimit, sys.getrecursionlimit


def _limit_kept(limit):
    """sys.setrecursionlimit while the deep chain's backward() runs: the limit stays."""


def chain(ns, length, phase=_no_phase):
    """backward() through a chain of ``length`` additions, at Python's default recursion
    limit: a limit the submission raised (say with the ``sys.setrecursionlimit(10_000)``
    students paste) is put back for the call and restored after, ``sys.setrecursionlimit``
    changes nothing during it, and a limit changed anyway (through a reference of its own)
    raises RecursionError, as the recursion it allows would have. Reports the leaf's grad."""
    Value = ns["Value"]
    phase(f"building a chain of {length} nodes")
    leaf = node = Value(1.0)
    for _ in range(length):
        node = node + 1.0
    phase(f"backward() on a chain of {length} nodes")
    raised, setter = _get_recursion_limit(), sys.setrecursionlimit
    try:
        _set_recursion_limit(DEFAULT_RECURSION_LIMIT)
    except RecursionError:  # already deeper than that here (a deep caller): keep the limit
        pass
    limit = _get_recursion_limit()
    sys.setrecursionlimit = _limit_kept
    try:
        node.backward()
        changed = _get_recursion_limit()
    finally:
        sys.setrecursionlimit = setter
        _set_recursion_limit(raised)
    if changed != limit:
        raise RecursionError(f"backward() raised the recursion limit from {limit} to {changed}: on a chain "
                             "a topological sort needs no more than Python's default")
    return {"leaf_grad": number(leaf.grad), "root_data": number(node.data)}


def representation(ns, data, phase=_no_phase):
    phase(f"repr(Value({data!r}))")
    value = ns["Value"](data)
    return {"repr": str(repr(value))[:200], "data": number(value.data), "grad": number(value.grad)}


def set_neuron(neuron, weights, bias):
    """Give a neuron known weights, whatever random numbers it drew."""
    for w, v in zip(neuron.weights, weights):
        w.data = v
    neuron.bias.data = bias


def neuron(ns, weights, bias, x, is_nonlinear=True, backward=True, phase=_no_phase):
    """A Neuron with weights set explicitly: its output, and its parameters' grads after
    backward() from that output (with backward=False, untouched)."""
    phase("Neuron(...)")
    unit = ns["Neuron"](number_inputs=len(weights), name="probe", is_nonlinear=is_nonlinear)
    set_neuron(unit, weights, bias)
    phase("calling the Neuron")
    out = unit(x)
    if backward:
        phase("backward() from the Neuron's output")
        out.backward()
    phase("Neuron.parameters()")
    parameters = list(unit.parameters())
    return {
        "output": number(out.data),
        "weight_grads": [number(w.grad) for w in unit.weights],
        "bias_grad": number(unit.bias.grad),
        "parameter_count": len(parameters),
        "bias_in_parameters": any(p is unit.bias for p in parameters),
    }


def structure(ns, number_inputs, sizes, activations=False, phase=_no_phase):
    """Shape of an MLP: parameter count, neurons per layer; with ``activations``, also
    which neurons are nonlinear."""
    phase(f"MLP({number_inputs}, {sizes})")
    model = ns["MLP"](number_inputs, sizes)
    phase("MLP.parameters()")
    parameters = list(model.parameters())
    counts = {
        "parameter_count": len(parameters),
        "distinct_parameters": len({id(p) for p in parameters}),
        "layer_sizes": [len(layer.neurons) for layer in model.layers],
    }
    if not activations:
        return counts
    # Which neurons are nonlinear, seen from what they do (whatever the attribute is called):
    # with every weight 0 and bias -1 a nonlinear neuron outputs 0, a linear one -1.
    clipped = []
    for layer in model.layers:
        clipped.append([])
        for unit in layer.neurons:
            set_neuron(unit, [0.0] * len(unit.weights), -1.0)
            phase("calling a Neuron of the MLP")
            clipped[-1].append(number(single(unit([0.0] * len(unit.weights))).data))
    return dict(counts, nonlinear=clipped)


def single(out):
    """A model's output: a Value, or a list of one Value (a last Layer that does not unwrap
    its single output computes the same number)."""
    if isinstance(out, (list, tuple)) and len(out) == 1:
        return out[0]
    return out


def set_mlp(model, weights):
    """weights[layer][neuron] = [w_1, ..., w_n, bias]."""
    for layer, layer_weights in zip(model.layers, weights):
        for unit, unit_weights in zip(layer.neurons, layer_weights):
            set_neuron(unit, unit_weights[:-1], unit_weights[-1])


def mlp_forward(ns, number_inputs, sizes, weights, x, phase=_no_phase):
    """An MLP with known weights: its output on x."""
    phase(f"MLP({number_inputs}, {sizes})")
    model = ns["MLP"](number_inputs, sizes)
    set_mlp(model, weights)
    phase("calling the MLP")
    out = single(model(x))
    return {"output": number(out.data) if hasattr(out, "data") else number(out)}


def zero_grad(ns, number_inputs, sizes, phase=_no_phase):
    """Put a nonzero grad on every parameter, call zero_grad(), report the grads."""
    model = ns["MLP"](number_inputs, sizes)
    parameters = list(model.parameters())
    for p in parameters:
        p.grad = 5.0
    phase("MLP.zero_grad()")
    model.zero_grad()
    return {"grads": [number(p.grad) for p in parameters]}


def training(ns, weights, xs, ys, epochs, lr, phase=_no_phase):
    """Train MLP(3, [3, 3, 1]) from known weights with the kit's loop; report the losses."""
    model = ns["MLP"](len(xs[0]), [len(w) for w in weights])
    set_mlp(model, weights)
    history = []
    for epoch in range(epochs):
        phase(f"training epoch {epoch}: forward")
        loss = sum((y - single(model(x))) ** 2 for x, y in zip(xs, ys))
        phase(f"training epoch {epoch}: zero_grad()")
        model.zero_grad()
        phase(f"training epoch {epoch}: backward()")
        loss.backward()
        for p in model.parameters():
            p.data -= lr * p.grad
        history.append(number(loss.data))
    return {"losses": history}


# --- the moons extension: the student's loss, penalty, accuracy and schedule -------------------


def _scores(ns, scores):
    return [ns["Value"](s) for s in scores]


def hinge(ns, scores, ys, phase=_no_phase):
    """hinge_loss on leaves holding ``scores``, then backward(): the loss and each score's grad."""
    leaves = _scores(ns, scores)
    phase("hinge_loss()")
    loss = ns["hinge_loss"](leaves, ys)
    if not isinstance(loss, ns["Value"]):  # a plain number (built from .data): nothing to differentiate
        return {"loss": number(loss), "grads": [number(leaf.grad) for leaf in leaves], "plain_number": True}
    phase("backward() from hinge_loss()")
    loss.backward()
    return {"loss": number(loss.data), "grads": [number(leaf.grad) for leaf in leaves]}


def penalty(ns, parameters, alpha, phase=_no_phase):
    """l2_penalty on leaves holding ``parameters``, then backward(): its value and their grads."""
    leaves = _scores(ns, parameters)
    phase("l2_penalty()")
    out = ns["l2_penalty"](leaves, alpha)
    if not isinstance(out, ns["Value"]):  # a plain number (built from .data): nothing to differentiate
        return {"penalty": number(out), "grads": [number(leaf.grad) for leaf in leaves], "plain_number": True}
    phase("backward() from l2_penalty()")
    out.backward()
    return {"penalty": number(out.data), "grads": [number(leaf.grad) for leaf in leaves]}


def classify(ns, scores, ys, phase=_no_phase):
    """accuracy on Values holding ``scores``."""
    phase("accuracy()")
    return {"accuracy": number(ns["accuracy"](_scores(ns, scores), ys))}


def schedule(ns, calls, phase=_no_phase):
    """learning_rate(step, steps) for each [step, steps] of ``calls``."""
    phase("learning_rate()")
    return {"rates": [number(ns["learning_rate"](step, steps)) for step, steps in calls]}


def moons_objective(ns, weights, xs, ys, alpha, phase=_no_phase):
    """moons_loss of an MLP with known weights, then backward(): the loss, the hinge part
    (the student's hinge_loss on the same scores), the accuracy and every parameter's grad."""
    model = ns["MLP"](len(xs[0]), [len(w) for w in weights])
    set_mlp(model, weights)
    phase("moons_loss()")
    loss, acc = ns["moons_loss"](model, xs, ys, alpha)
    kind = _loss_kind(ns, loss, acc)
    if kind:  # nothing to differentiate: say what came back instead
        return {"loss_kind": kind}
    phase("backward() from moons_loss()")
    model.zero_grad()
    loss.backward()
    phase("hinge_loss() of the model's scores")
    data_loss = ns["hinge_loss"]([single(model(x)) for x in xs], ys)
    found = {"loss": number(loss.data), "accuracy": number(acc), "grads": [number(p.grad) for p in model.parameters()]}
    if isinstance(data_loss, ns["Value"]):
        found["hinge"] = number(data_loss.data)
    else:  # a plain number (built from .data): the loss's gradient has no hinge part
        found.update(hinge=number(data_loss), hinge_plain_number=True)
    return found


def _loss_kind(ns, loss, acc):
    """None for a (loss, accuracy) pair whose loss is a Value; "swapped" for (accuracy, loss);
    "plain_number" for a loss that is no Value (built from .data)."""
    Value = ns["Value"]
    if isinstance(loss, Value):
        return None
    return "swapped" if isinstance(acc, Value) else "plain_number"


class MoonsLossNotAValue(Exception):
    """train_moons failed, and moons_loss's first result is no Value: its message says why."""


def moons_training(ns, weights, xs, ys, steps, alpha, phase=_no_phase):
    """train_moons from known weights for a few steps: the (loss, accuracy) history, the
    learning rates it used (when it takes on_step) and how often it called model.zero_grad()."""
    model = ns["MLP"](len(xs[0]), [len(w) for w in weights])
    set_mlp(model, weights)
    phase(f"train_moons() for {steps} steps")
    rates, before = [], [p.data for p in model.parameters()]

    def measure_rate(step, loss, acc):  # after update `step`: p.data moved by rate * p.grad
        nonlocal before
        parameters = model.parameters()
        p, old = max(zip(parameters, before), key=lambda pair: abs(pair[0].grad))
        rates.append(number((old - p.data) / p.grad) if p.grad else None)
        before = [q.data for q in parameters]

    zero_grads = []  # one entry per call of model.zero_grad(): none, and gradients accumulate

    def counted_zero_grad(*args, original=model.zero_grad, **kwargs):
        zero_grads.append(True)
        return original(*args, **kwargs)

    try:
        model.zero_grad = counted_zero_grad
    except Exception:  # __slots__, a read-only attribute: not counted
        zero_grads = None

    code = getattr(ns["train_moons"], "__code__", None)  # not inspect: it slows the worker's start
    takes_on_step = isinstance(getattr(code, "co_varnames", None), tuple) and \
        "on_step" in code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
    try:
        if takes_on_step:  # the handout's train_moons: the rates it used can be measured
            history = ns["train_moons"](model, xs, ys, steps, alpha, on_step=measure_rate)
        else:
            history = ns["train_moons"](model, xs, ys, steps, alpha)
    except (AttributeError, TypeError) as error:  # loss.backward() on a number, say: is it moons_loss's?
        try:
            kind = _loss_kind(ns, *ns["moons_loss"](model, xs, ys, alpha))
        except Exception:
            kind = None
        if kind:
            raise MoonsLossNotAValue(kind) from error
        raise
    seen = {"losses": [number(loss) for loss, _ in history], "accuracies": [number(acc) for _, acc in history]}
    if takes_on_step and len(rates) == steps:
        seen["rates"] = rates
    if zero_grads is not None:
        seen["zero_grad_calls"] = len(zero_grads)
    return seen


PROBES = {
    probe.__name__: probe
    for probe in (graph, forward, chain, representation, neuron, structure, mlp_forward, zero_grad, training,
                  hinge, penalty, classify, schedule, moons_objective, moons_training)
}


def run(ns, probe, params, phase=_no_phase):
    """Run one probe by name. Exceptions propagate: the caller decides how to report them."""
    return PROBES[probe](ns, phase=phase, **params)


def failure(exc):
    """How a probe's exception is reported: its type, message, and the innermost frame that
    is not the kit's own, so feedback can point at the student's line."""
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    where = None
    for tb in reversed(frames):
        if os.path.dirname(tb.tb_frame.f_code.co_filename) != os.path.dirname(__file__):
            code = tb.tb_frame.f_code
            where = {"file": code.co_filename, "line": tb.tb_lineno, "function": code.co_name}
            break
    message = str(exc)[:500]
    return {"error": type(exc).__name__, "message": message, "where": where}


# --- the worker: answering the grader from inside the sandbox ---------------------------
# The grader starts ``python -s -S -B`` running ``probes.serve(REQUESTS, REPLIES, PHASES)``
# and writes framed JSON requests: each is its length in bytes (``FRAME`` ASCII digits,
# space-padded, then a newline) followed by that many bytes of JSON. First {"start": ...};
# after the reply to it, any number of {"probe", "params"} requests back to back (a batch).
# The worker answers each request, in order, with one line, {"ok": true, "result": ...} or
# {"ok": false, "error", "message", "where", "phase"}, and before every call into the
# submission records the phase it is in, so that when the process dies or hangs the grader
# can say where. Framing lets each check's child read exactly its own request and leave the
# rest of the batch in the pipe for the next child. The submission's stdout and stderr go to
# files the grader never parses.
FRAME = 11


def frame(message):
    """``message`` (a JSON text) as the worker reads it: its length, a newline, its bytes."""
    data = message.encode()
    return b"%*d\n" % (FRAME, len(data)) + data


def read_frame(fd, read=os.read):
    """The next framed message from ``fd`` as text; "" when the writer closed it before one
    began. Raises ValueError on a broken frame (a truncated one, or not a length)."""
    header = _read_exactly(fd, FRAME + 1, read)
    if not header:
        return ""
    if len(header) != FRAME + 1 or header[-1:] != b"\n" or not header[:-1].strip().isdigit():
        raise ValueError("a broken request frame")
    length = int(header[:-1])
    body = _read_exactly(fd, length, read)
    if len(body) != length:
        raise ValueError("a truncated request")
    return body.decode()


def _read_exactly(fd, count, read):
    """Up to ``count`` bytes, fewer only at the end of the stream: never a byte past them."""
    parts, left = [], count
    while left:
        chunk = read(fd, left)
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)

# Libraries that only draw or display: inside the sandbox they are stand-ins that accept
# everything and do nothing, so a plot cell cannot break grading.
DISPLAY_MODULES = ("matplotlib", "graphviz", "IPython", "ipywidgets", "seaborn", "plotly")
# Magics whose cell is ordinary code that must still run (timing and capturing it).
CODE_MAGICS = ("time", "timeit", "capture", "prun")
LIMITS = {"cpu": "RLIMIT_CPU", "address_space": "RLIMIT_AS", "file_size": "RLIMIT_FSIZE",
          "open_files": "RLIMIT_NOFILE", "processes": "RLIMIT_NPROC"}


class Inert:
    """A stand-in for any object of a display library: every attribute, call, iteration
    and ``with`` block is accepted and does nothing."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return Inert()

    def __call__(self, *args, **kwargs):
        return Inert()

    def __iter__(self):
        return iter(())

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def __getitem__(self, key):
        return Inert()

    def subplots(self, nrows=1, ncols=1, *args, **kwargs):
        """``fig, ax = plt.subplots()`` and ``fig, (a, b) = plt.subplots(1, 2)`` unpack."""
        if nrows == 1 and ncols == 1:
            return Inert(), Inert()
        if nrows == 1 or ncols == 1:
            return Inert(), [Inert() for _ in range(max(nrows, ncols))]
        return Inert(), [[Inert() for _ in range(ncols)] for _ in range(nrows)]


class DisplayStubs:
    """Import hook (last on sys.meta_path) that answers ``import matplotlib.pyplot`` and
    the like with modules of Inert attributes."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.partition(".")[0] in DISPLAY_MODULES:
            return importlib.util.spec_from_loader(name, cls, is_package=True)
        return None

    @staticmethod
    def create_module(spec):
        import types

        module = types.ModuleType(spec.name)
        module.__path__ = []
        # IPython as a library sees it in a notebook: real answers where libraries ask
        # (matplotlib compares version_info and calls get_ipython()), Inert for the rest.
        module.__dict__.update(IPYTHON_ATTRIBUTES.get(spec.name, {}))
        inert = Inert()

        def attribute(name):
            if name.startswith("__"):
                raise AttributeError(name)
            return getattr(inert, name)

        module.__getattr__ = attribute
        return module

    @staticmethod
    def exec_module(module):
        pass


class Shell:
    """What ``get_ipython()`` returns in the sandbox, as a builtin (load.py turned magics and
    ``!`` lines into calls on it) and from the IPython stand-in's modules: timing and
    capturing magics run their code, everything else (shell commands above all) does
    nothing. A library that takes it for a shell (matplotlib registers a hook with
    ``ip.events``, asks ``ip.parent``) gets Inert answers: no kernel runs its hooks."""

    parent = None  # not a terminal IPython: matplotlib then sets up no event loop

    def run_line_magic(self, name, line, _stack_depth=1):
        if name in CODE_MAGICS and line.strip():
            exec(line, sys._getframe(_stack_depth).f_globals)

    def run_cell_magic(self, name, line, cell):
        if name in CODE_MAGICS:
            exec(cell, sys._getframe(1).f_globals)

    def system(self, command):
        return None

    def getoutput(self, command, split=True):
        return []

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return Inert()


SHELL = Shell()


def get_ipython():
    """The sandbox's one shell (``Shell``), as IPython's ``get_ipython()`` returns its one."""
    return SHELL


# The IPython stand-in's real attributes, by module. The version is one matplotlib asks no
# more questions of (from 8.24 on it resolves GUI backends itself); fixed, so that what a
# submission sees does not depend on what the grading machine has installed.
IPYTHON_ATTRIBUTES = {
    "IPython": {"version_info": (8, 24, 0, ""), "__version__": "8.24.0", "get_ipython": get_ipython},
    "IPython.core.getipython": {"get_ipython": get_ipython},
    "IPython.core.pylabtools": {"backend2gui": {}},
}


class CappedStream:
    """Passes text to a stream until ``limit`` characters, then drops the rest: a
    submission that prints without end cannot fill the disk or fail on a full file."""

    def __init__(self, stream, limit):
        self._stream, self._left = stream, limit

    def write(self, text):
        if self._left > 0:
            text = str(text)
            if len(text) > self._left:
                text = text[: self._left] + "\n[output truncated]\n"
            self._left -= len(text)
            self._stream.write(text)
        return len(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def limit_resources(limits):
    """Lower the worker's rlimits (soft and hard, so the submission cannot raise them)."""
    import resource

    for key, value in limits.items():
        if value is None or (key == "processes" and os.getuid() == 0):
            continue  # root ignores RLIMIT_NPROC: the grader drops root before starting us
        which = getattr(resource, LIMITS[key])
        soft, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))


class TopLevelStopped(BaseException):
    """Raised in a submission's top-level code that has run for longer than its budget: a
    demo that trains for minutes is stopped the way a Jupyter user interrupts a cell."""


def _stop_top_level(signum, frame):
    raise TopLevelStopped()


class _WallStop:
    """The wall-clock alarm of ``with_budget``: stops code that sleeps or blocks, but only
    looks again in a second while the code is computing (at least 2 % of a core since the
    last look: on a busy machine it waits its turn), which its CPU timer bounds."""

    def __init__(self):
        self.cpu, self.time = process_time(), monotonic()

    def __call__(self, signum, frame):
        import signal

        cpu, now = process_time(), monotonic()
        computing = cpu - self.cpu >= 0.02 * (now - self.time)
        self.cpu, self.time = cpu, now
        if not computing:
            raise TopLevelStopped()
        signal.setitimer(signal.ITIMER_REAL, 1.0)


def with_budget(seconds, function, *args, wall=None):
    """``function(*args)``, interrupted by TopLevelStopped after ``seconds`` of CPU time
    (a busy machine does not cut it short), or ``wall`` seconds of wall-clock time spent
    not computing (code that sleeps); None: never."""
    import signal

    if not seconds:
        return function(*args)
    timers = [(signal.SIGPROF, signal.ITIMER_PROF, seconds, _stop_top_level)]
    if wall:
        timers.append((signal.SIGALRM, signal.ITIMER_REAL, wall, _WallStop()))
    with IntervalTimers(timers):
        return function(*args)


class IntervalTimers:
    """A block run with interval timers armed: ``timers`` lists (signal number, timer
    (``signal.ITIMER_PROF``: CPU time, ``ITIMER_REAL``: wall-clock time), seconds, handler);
    on leaving, each timer is stopped and its signal's previous handler put back. For the
    main thread only (where Python runs signal handlers). A class of this module, not
    contextlib's: the worker's copy must not run code a submission can patch."""

    def __init__(self, timers):
        self.timers = timers

    def __enter__(self):
        import signal

        self.previous = [signal.signal(number, handler) for number, _, _, handler in self.timers]
        for _, timer, seconds, _ in self.timers:
            signal.setitimer(timer, seconds)

    def __exit__(self, *raised):
        import signal

        for (number, timer, _, _), handler in zip(self.timers, self.previous):
            signal.setitimer(timer, 0)
            signal.signal(number, handler)


def run_cells(directory, cells, phase=_no_phase, budget=None, wall=None):
    """A notebook's code cells, run one at a time in one module as Jupyter's "Run All" with
    errors allowed does: a cell that raises is skipped and the next one runs, and a cell
    that runs longer than ``budget`` seconds is stopped. load.py joined the cells into
    ``submission.py``; ``cells`` lists each one's [first line, cell number]. Returns the
    implementation's names and, for each cell that raised, {"cell", **failure} (a stopped
    cell: {"cell", "stopped": budget})."""
    import builtins
    import types

    path = os.path.join(os.path.realpath(directory), MODULE)
    sys.path.insert(0, os.path.dirname(path))
    with open(path, encoding="utf-8") as stream:
        lines = stream.read().splitlines(keepends=True)
    module = types.ModuleType("submission")
    module.__file__ = path
    # The real builtins, as an imported module gets them: without this, exec() would hand the
    # cells this function's own builtins, the worker's private copy (_private_copy), which
    # lacks get_ipython and display and which the submission must not be able to change.
    module.__builtins__ = builtins
    sys.modules["submission"] = module
    starts = [tuple(cell) for cell in cells] + [(len(lines) + 1, None)]
    raised = []
    for (first, number), (after, _) in zip(starts, starts[1:]):
        phase(f"running cell {number}")
        # Blank lines in front keep line numbers those of submission.py, which maps to cells.
        code = "\n" * (first - 1) + "".join(lines[first - 1:after - 1])
        try:
            with_budget(budget, exec, compile(code, path, "exec"), module.__dict__, wall=wall)
        except TopLevelStopped:
            raised.append({"cell": number, "stopped": budget})
        except BaseException as exc:  # SystemExit too: a kernel reports it and goes on
            raised.append({"cell": number, **failure(exc)})
    found = {name: module.__dict__[name] for name in NAMES + EXTENSION_NAMES if name in module.__dict__}
    return found, raised


def flush_output():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # the submission may have replaced or closed them
            pass


PHASE_BYTES = 256  # the size of the phase record in the phase file


# Functions the submission may be handed (a signal handler): they stay this module's own.
_SHARED = ("_stop_top_level",)


def _private_copy():
    """This module's globals copied, with every function re-made over the copy (and over a
    copy of the builtins): what the worker's loop calls after the submission has run. A
    submission that patches ``probes.PROBES``, ``probes.build`` or ``builtins.len`` changes
    this module, not the copy; only frames and gc.get_objects() lead to it (docs/security.md)."""
    import builtins
    import types

    private = dict(globals())
    private["__builtins__"] = dict(vars(builtins))  # a function reads its builtins from its globals
    for name, value in list(private.items()):
        if isinstance(value, dict) and not name.startswith("__"):
            private[name] = dict(value)
        elif isinstance(value, types.FunctionType) and value.__globals__ is globals() and name not in _SHARED:
            copy = types.FunctionType(value.__code__, private, value.__name__, value.__defaults__, value.__closure__)
            copy.__kwdefaults__ = value.__kwdefaults__
            private[name] = copy
    private["PROBES"] = {name: private[name] for name in PROBES}
    return private


def _hide_from_submission():
    """Take this module out of the submission's reach by name: out of sys.modules, its
    folder off sys.path, its name out of ``__main__`` (the worker's ``-c`` code imported it)."""
    here = os.path.realpath(os.path.dirname(__file__))
    for name, module in list(sys.modules.items()):
        if getattr(module, "__file__", None) and os.path.realpath(module.__file__) == os.path.realpath(__file__):
            del sys.modules[name]
    sys.path[:] = [entry for entry in sys.path if not entry or os.path.realpath(entry) != here]
    main = sys.modules.get("__main__")
    if main is not None:
        for name, value in list(vars(main).items()):
            if getattr(value, "__file__", None) == __file__ or name == "probes":
                delattr(main, name)


def serve(requests_fd, replies_fd, phase_fd=None):
    """The worker's main loop: start, load the submission once, answer probe requests
    until the grader closes the request pipe.

    With ``phase_fd`` (a file the grader made), each phase overwrites a fixed record at its
    start instead of becoming a reply line: the grader reads it only when the worker dies
    or hangs, instead of waking up for each of the hundreds of phases of a submission.

    The loop runs from a private copy of this module (``_private_copy``), made before the
    submission's first line, and this module is hidden (``_hide_from_submission``)."""
    return _private_copy()["_serve"](requests_fd, replies_fd, phase_fd)


def _serve(requests_fd, replies_fd, phase_fd=None):
    import builtins
    import gc
    import json
    import signal
    import time

    # Private references to what the loop uses: a submission may patch the modules.
    encode, decode = json.JSONEncoder().encode, json.JSONDecoder().decode
    write, pwrite, exit_now, process_time = os.write, os.pwrite, os._exit, time.process_time
    read_request = read_frame  # this private copy's, over os.read as it is now

    def requests():
        return read_request(requests_fd)

    def send(message):
        flush_output()  # the worker may be killed after any reply
        if "ok" in message and "cpu" not in message:  # the worker's CPU time so far, for timing figures
            message["cpu"] = process_time()
        try:
            line = encode(message)
        except (TypeError, ValueError, RecursionError) as exc:
            line = encode({"ok": False, "error": type(exc).__name__,
                               "message": f"the observation is not plain JSON: {exc}"[:500], "where": None})
        data = (line + "\n").encode()
        while data:
            data = data[write(replies_fd, data):]

    current = [""]

    def phase(where):
        current[0] = str(where)[:200]
        if phase_fd is None:
            send({"phase": current[0]})
        else:
            record = current[0].encode("utf-8", "replace")[:PHASE_BYTES].ljust(PHASE_BYTES, b"\0")
            pwrite(phase_fd, record, 0)

    def failed(exc):
        try:
            report = {"ok": False, **failure(exc)}
        except BaseException:  # an exception whose __str__ raises, say
            report = {"ok": False, "error": "Exception", "message": "(unprintable exception)", "where": None}
        return dict(report, phase=current[0])

    start = decode(requests())["start"]
    # Python is up and nothing of the submission has run: said on the reply pipe, which the
    # submission cannot take back, so that a worker dying before this line is the sandbox's
    # failure and one dying after it never is (worker.Worker._died).
    send({"phase": "starting"})
    # Ctrl-C raises KeyboardInterrupt here as in any Python program, even when the grader was
    # started in the background (where SIGINT is ignored, and a child inherits that).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    limit_resources(start.get("limits", {}))
    sys.stdout = CappedStream(sys.stdout, start.get("output_chars", 65536))
    sys.stderr = CappedStream(sys.stderr, start.get("output_chars", 65536))
    builtins.get_ipython = get_ipython
    builtins.display = lambda *args, **kwargs: None
    sys.meta_path.append(DisplayStubs)
    _hide_from_submission()
    raised, budget, wall = [], start.get("top_level_seconds"), start.get("top_level_wall_seconds")
    try:
        if start.get("cells"):
            ns, raised = run_cells(start["directory"], start["cells"], phase, budget, wall)
        else:
            try:
                ns = with_budget(budget, namespace, start["directory"], phase, wall=wall)
            except TopLevelStopped:  # keep what the modules had defined when they were stopped
                modules = [sys.modules.get(name) for name in ("submission", "submission.engine", "submission.nn",
                                                              "submission.moons")]
                ns = {name: getattr(module, name) for module in modules if module is not None
                      for name in NAMES + EXTENSION_NAMES if hasattr(module, name)}
                raised = [{"cell": None, "stopped": budget}]
    except BaseException as exc:  # SystemExit and KeyboardInterrupt too: report, then stop
        send(failed(exc))
        return
    send({"ok": True, "result": {"missing": missing_names(ns), "cells_raised": raised[:50]}})
    # Each request is answered by a child forked from this loaded worker, which never runs a
    # probe itself: every check starts from the same memory image, so objects get the same
    # addresses (a set of Values iterates the same way) whatever checks ran before it, how
    # long they took or what their replies held. The child's garbage dies with it, so the
    # cycle collector can stay off.
    gc.disable()
    flush_output()  # nothing buffered may be written twice, by this process and by a child
    while True:
        cpu = process_time() + sum(os.times()[2:4])  # this worker's and its past children's
        done_read, done_write = os.pipe()
        child = os.fork()
        if child == 0:
            os.close(done_read)
            _answer(requests, send, phase, failed, ns, done_write, cpu, decode, process_time, write, exit_now)
        os.close(done_write)
        _, status = os.waitpid(child, 0)
        mark = os.read(done_read, 1)
        os.close(done_read)
        if mark == b"x":  # the grader closed the requests: done
            flush_output()
            exit_now(0)
        if mark != b".":  # the child died without an answer: die the same way, as a worker would
            flush_output()
            if os.WIFSIGNALED(status):
                import signal

                signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
                os.kill(os.getpid(), os.WTERMSIG(status))
                # Still alive: this is process 1 of a pid namespace (unprivileged-user), which
                # its own signals do not kill. 128 + n is how the wrappers report signal n.
                exit_now(128 + os.WTERMSIG(status))
            exit_now(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def _answer(requests, send, phase, failed, ns, done, cpu_before, decode, process_time, write, exit_now):
    """In a child of the loaded worker: read one request (exactly its frame: the rest of a
    batch stays in the pipe for the next child), answer it, tell the parent it was answered
    ("."; "x" when the grader closed the requests), and exit at once (a normal exit would
    first tear down every graph the probe made). The worker's private references
    (``requests``, ``decode``, ``process_time``, ``write``, ``exit_now``) come in as
    arguments: the submission may have patched the modules they come from."""
    try:
        text = requests()
        if not text:
            write(done, b"x")
            exit_now(0)
        request = decode(text)
        phase("")  # no phase of the last probe may be taken for this one's
        try:
            reply = {"ok": True, "result": run(ns, request["probe"], request["params"], phase)}
        except BaseException as exc:
            reply = failed(exc)
        reply["cpu"] = cpu_before + process_time()
        send(reply)
        write(done, b".")
    finally:
        flush_output()
        exit_now(0)
