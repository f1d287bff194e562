"""The notebook handout, generated from the same sources as the .py handout.

``ast`` cuts the (stubbed or reference) modules into pieces: the ``Value`` class with only
``__init__`` and ``__repr__``, then each operator as a plain function attached to the class
(``Value.__add__ = __add__``), then the nn classes, the training loop and the pictures. The
narrative between them is ours. Nothing here copies a line of the reference by hand, so the
notebook cannot drift from the .py files: build both, or neither.
"""
import ast
import json
import re
import textwrap
from dataclasses import dataclass, field

import nbformat

# The setup and check cells carry this tag so that tools can tell them from the student's
# code; they are harmless to run anywhere (check() does nothing while a checker loads them).
CHECK_TAG = "autodiff101-check"
NOT_GRADED_TAG = "autodiff101-not-graded"  # = load.NOT_GRADED_TAG: display-only cells the grader leaves out
SPLIT_CLASSES = ("Value",)  # classes taught one method at a time
SHELL_METHODS = ("__init__", "__repr__")  # what the first cell of such a class defines
# Methods taught late that the checks of earlier exercises call: until their section, the
# class has a stand-in that says where they come, so a check can say what it waits for.
LATER_METHODS = {"backward": "section 7"}


# --- cutting a module into pieces -------------------------------------------------------------


def pieces(source, file):
    """{name: text} of a module's top-level statements, and of the methods of ``SPLIT_CLASSES``.

    Such a class ``C`` gives ``C`` (its header, docstring, attributes and ``SHELL_METHODS``)
    and ``C.method`` (the method as a module-level function); other classes stay whole. Comment lines right above a
    statement belong to it. Relative imports, also in the handout's try/except form, are dropped
    (a notebook has no package); other
    imports are gathered under ``import``. The module docstring and an ``if __name__ ==
    "__main__":`` block are left out.
    """
    lines = source.splitlines()
    tree = ast.parse(source, file)
    found = {}
    imports = []
    for node in tree.body:
        if _is_docstring(node) or _is_main_block(node):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if not (isinstance(node, ast.ImportFrom) and node.level):
                imports.append(_text(lines, node))
        elif _is_sibling_import(node):
            continue
        elif isinstance(node, ast.ClassDef) and node.name in SPLIT_CLASSES:
            found.update(_class_pieces(lines, node))
        else:
            found[_name(node)] = _text(lines, node)
    if imports:
        found = {"import": "\n".join(imports), **found}
    return found


def _class_pieces(lines, node):
    shell = [lines[node.lineno - 1]]
    methods = {}
    for child in node.body:
        text = _text(lines, child)
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and child.name not in SHELL_METHODS:
            methods[f"{node.name}.{child.name}"] = textwrap.dedent(text)
        else:
            shell.append(("" if len(shell) == 1 else "\n") + text)
    for method, where in LATER_METHODS.items():
        if f"{node.name}.{method}" in methods:
            shell.append(f"\n    def {method}(self):  # the real one comes in {where}\n"
                         f'        raise NotImplementedError("exercise {method} comes in {where}")')
    return {node.name: "\n".join(shell), **methods}


def _is_sibling_import(node):
    """The handout's ``try: from .engine import Value / except ImportError: from engine import
    Value``: in a notebook the names are defined in earlier cells."""
    return (isinstance(node, ast.Try) and len(node.body) == 1 and isinstance(node.body[0], ast.ImportFrom)
            and node.body[0].level > 0)


def _is_main_block(node):
    """``if __name__ == "__main__":``: what ``python file.py`` runs; in a notebook it would run at once."""
    return isinstance(node, ast.If) and ast.unparse(node.test).replace("'", '"') == '__name__ == "__main__"'


def _is_docstring(node):
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _name(node):
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return node.name
    if isinstance(node, ast.Assign):
        return ",".join(ast.unparse(target) for target in node.targets)
    if isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        return ast.unparse(node.target)
    return f"line {node.lineno}"


def _text(lines, node):
    """The statement's lines, with its decorators and the comment lines right above it."""
    first = node.decorator_list[0].lineno if getattr(node, "decorator_list", None) else node.lineno
    while first > 1 and lines[first - 2].strip().startswith("#"):
        first -= 1
    return "\n".join(lines[first - 1:node.end_lineno])


def attach(name):
    """``Value.__add__`` -> ``Value.__add__ = __add__``: the function becomes the method."""
    owner, method = name.split(".")
    return f"{owner}.{method} = {method}"


def with_attach(name, text):
    return f"{text}\n\n\n{attach(name)}" if "." in name else text


def join(texts):
    """Pieces of code with PEP 8 spacing: two blank lines around definitions, none between
    simple statements."""
    joined = ""
    for text in texts:
        if joined:
            simple = not _is_definition(text) and not _is_definition(joined.rsplit("\n\n", 1)[-1])
            joined += "\n" if simple else "\n\n\n"
        joined += text
    return joined


def _is_definition(text):
    return bool(re.match(r"(#.*\n)*(@|def |class |async def )", text))


# --- the plan: narrative, code from the sources, demos and checks -----------------------------


@dataclass
class Section:
    """Cells that belong together; skipped when a source piece they need does not exist."""

    cells: list
    needs: tuple = ()  # (file, piece name) pairs


@dataclass
class Markdown:
    text: str


@dataclass
class Code:
    text: str
    tags: list = field(default_factory=list)


@dataclass
class Source:
    """Pieces of a reference module, joined into one code cell."""

    file: str
    names: list


@dataclass
class Check:
    """A check cell; ``optional`` ones appear only when the exercise has public checks."""

    exercise: str = None
    optional: bool = False


# The notebook's opening, shared with the nbgrader and otter exports; each adds its own
# "How to work" paragraph.
OPENING = """\
# Backpropagation from scratch

In this notebook you build a small engine for **reverse-mode automatic differentiation**: a
`Value` that remembers how it was computed, so that one sweep backwards through that record
gives the derivative of a result with respect to every number that went into it. That sweep
is *backpropagation*, the algorithm that trains neural networks; at the end you train a tiny
one with the engine you wrote.

"""

INTRO = OPENING + """\
**How to work.** Run the cells in order. A cell that contains `# TODO exercise <name>` still
raises `NotImplementedError`: replace those two lines with the code that the comment above
them describes. Each exercise is followed by a small experiment and by a check cell,
`check("<name>")`, which runs the public checks for it and prints what went wrong, if
anything. If you change an earlier cell, re-run the cells after it (or *Restart & Run All*).
From a terminal, `python check.py autodiff101.ipynb` checks the whole notebook.
"""

SETUP = """\
# The self-check that comes with this handout (the checker/ folder next to this notebook).
try:
    from checker.selfcheck import check
except ImportError:  # opened without the checker next to it: the check cells only say so
    def check(exercise=None):
        print("No self-check here: run `python check.py` in the handout folder.")
"""

# The handout's own notebook carries the checker and its data, so that opened alone (uploaded
# to Colab or a JupyterHub without its folder) its check cells still run the self-check. The
# exports find the set-up cell by SETUP's first line; they build without ``embedded``.
SETUP_EMBEDDED = """\
#@title The self-check's set-up: run this cell, no need to read it
# The self-check that comes with this handout (the checker/ folder next to this notebook).
# Opened alone (in Colab, say), the notebook unpacks the copy at the end of this cell instead.
def _self_check(packed):
    try:
        from checker.selfcheck import check
    except ImportError:
        import sys
        import tempfile
        from pathlib import Path

        folder = Path(tempfile.mkdtemp(prefix="autodiff101-checker-"))
        for name, text in packed.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text, encoding="utf-8")
        sys.path.insert(0, str(folder))
        from checker.selfcheck import check
    return check


check = _self_check({
@FILES@
})
"""

VALUE = """\
## 1. A number that remembers how it was made

A derivative answers: if I nudge this input by a tiny amount *h*, by how much does the result
move? For a result built from many inputs you could nudge each input in turn and recompute,
one full computation per input. Reverse mode gets all those derivatives at once: every
intermediate result records which values it came from and how it depends on each of them,
and one pass from the result back to the inputs combines those local facts with the chain
rule.

A `Value` is one node of that record:

- `data`: the number itself;
- `grad`: the derivative of the final result with respect to this node. It starts at 0.0
  and is filled in by the backward pass;
- `_prev`: the Values this one was computed from (its *children* in the graph);
- `_op`: a label for the operation that made it, used only when drawing the graph;
- `_backward`: a function that passes this node's `grad` on to its children. For a leaf,
  a Value nobody computed, it does nothing.
"""

ADD = """\
## 2. Addition, and why gradients are added up

Take `c = a + b`. Nudge `a` by *h* and `c` moves by exactly *h*: the local derivative of a sum
with respect to each input is 1. The chain rule says how local facts combine: the derivative
of the final result with respect to `a` is (its derivative with respect to `c`) times (the
derivative of `c` with respect to `a`). So addition hands `c.grad` unchanged to both inputs.

One detail matters more than it seems. A Value can be used more than once: by several later
operations, or even twice in the same one, as in `c = a + a`. Every use is a separate path
from `a` to the result, and the total derivative is the **sum** over those paths. So a
`_backward` must *add* its share to a child's `grad`, never overwrite it.

Each operator below is written in the same five steps: turn a plain number into a `Value`,
compute the result's `data`, create the result with its children, give it a `_backward`, and
return it. We write each operator as a plain function and then attach it to the class
(`Value.__add__ = __add__`). Python looks methods up on the class whenever an operator is
used, so this works as well as writing the method inside the class.
"""

ADD_DEMO = """\
a = Value(3.0)
c = a + a
c.grad = 1.0   # pretend c is the final result: its derivative with respect to itself is 1
c._backward()  # one step back: c hands its gradient to its inputs
a.grad         # a is used twice, so it should receive both shares: 2.0
"""

MUL = """\
## 3. Multiplication

For `c = a * b`, nudging `a` by *h* moves `c` by `b` times *h*: the local derivative with
respect to one factor is the *other* factor's value. As with every operator, that local
derivative is multiplied by the gradient arriving from above, `c.grad`, and added to the
factor's `grad`.
"""

MUL_DEMO = """\
a, b = Value(5.0), Value(6.0)
c = a * b
c.grad = 11.0  # whatever gradient arrives from above gets multiplied in
c._backward()
a.grad, b.grad  # expect 6 * 11 = 66.0 and 5 * 11 = 55.0
"""

POW = """\
## 4. Powers with a constant exponent

`a ** k` with a plain number `k` (an int or a float, not a Value) follows the power rule: the
local derivative is `k * a ** (k - 1)`, evaluated at the base's current value. Only the base
gets a gradient, since the exponent is a constant. Negative exponents matter here: `b ** -1`
is how this engine will divide.
"""

POW_DEMO = """\
a = Value(5.0)
c = a**2
c.grad = 11.0
c._backward()
a.grad  # 2 * 5 * 11 = 110.0
"""

COMPOSED = """\
## 5. Negation, subtraction and division need no new calculus

Each of them can be written with the operators you already have: `-a` is `a * -1`, `a - b` is
`a + (-b)`, and `a / b` is `a * b**-1`. They get their gradients for free from the pieces
they are made of, so they need no `_backward` of their own.

The *reflected* methods handle a plain number on the left: for `2 * a`, Python first asks the
number 2 to multiply by a Value; it cannot, so Python calls `a.__rmul__(2)` instead.
"""

PUZZLE = """\
a, b = Value(5.0), Value(4.0)
c = a - b
c.grad = 11.0
c._backward()
a.grad, b.grad  # (11.0, 0.0): why does b get nothing?
"""

PUZZLE_EXPLAINED = """\
`b` gets nothing because `c` was not computed from `b` directly. `a - b` built an
intermediate node `-b` (that is `b * -1`) and then `c = a + (-b)`. Calling `c._backward()`
took one step: it gave `a` and the intermediate node their shares. The intermediate node now
holds a gradient of 11, but its own `_backward`, which would pass −11 on to `b`, never ran.
"""

PUZZLE_LOOK = """\
[(child.data, child.grad) for child in c._prev]  # a, and the intermediate -b with its gradient
"""

RELU = """\
## 6. ReLU

`relu` keeps positive numbers and replaces negative ones by 0. Where the input was positive
the output moves exactly as the input does (local derivative 1); where it was clipped, small
nudges change nothing (local derivative 0). At exactly 0 either choice is acceptable; this
engine uses 0. ReLU is what makes the network of section 8 more than a linear function.
"""

RELU_DEMO = """\
positive, negative = Value(3.0), Value(-3.0)
for x in (positive, negative):
    y = x.relu()
    y.grad = 11.0
    y._backward()
positive.grad, negative.grad  # 11.0 passes through, 0.0 is blocked
"""

ALL_OPERATORS = """\
Every operator exists now. The checks of `value` try them all on plain numbers: forward
values only, no gradients yet.
"""

BACKWARD = """\
## 7. `backward()`: every node once, in the right order

To fix the puzzle of section 5, every node's `_backward` has to run, and the order matters:
a node may pass its gradient on only once it has received *all* of it, that is, after every
node that uses it has run its own `_backward`.

An order in which every node comes after all of its children is called a *topological order*.
You can build one with a depth-first search from the root: visit a node's children first,
then append the node itself, and remember which nodes you have already visited so that a node
reachable along several paths is listed once. Reversed, that list starts at the root and
reaches each node only after all its users. Before the sweep, set the root's `grad` to 1.0:
the derivative of the result with respect to itself.

A recursive search is the shortest to write, but Python stops recursion after about a
thousand nested calls, and a graph can easily be deeper than that. Keeping your own stack of
nodes still to visit avoids the limit.
"""

BACKWARD_DEMO = """\
a, b = Value(2.0), Value(3.0)
c = a + b
e = c**4
f = Value(6.0)
g = e / f
g.backward()
g.data, a.grad, b.grad, e.grad, f.grad  # 104.17, 83.33, 83.33, 0.1667, -17.36
"""

PUZZLE_SOLVED = """\
a, b = Value(6.0), Value(3.0)
(a - b).backward()
a.grad, b.grad  # (1.0, -1.0): the gradient now reaches b through the intermediate node
"""

NN = """\
## 8. From neurons to a network

With gradients working, a neural network is a few lines of ordinary code on top of `Value`.

- `Module` is anything with parameters: `parameters()` lists them and `zero_grad()` resets
  their gradients. Because `_backward` *adds* into `grad`, gradients from the previous
  training step would pile up unless they are reset before each backward pass.
- A `Neuron` holds one weight per input, drawn at random between −1 and 1, and a bias starting
  at 0. Called on inputs `x` it computes `sum(w_i * x_i) + bias`, passed through ReLU unless
  it is a linear neuron.
- A `Layer` is several neurons that read the same inputs.
- An `MLP` (multi-layer perceptron) chains layers; every layer but the last uses ReLU, so the
  output can be any number, not only a positive one.
"""

NN_DEMO = """\
random.seed(1)
model = MLP(3, [3, 3, 1])
print(model)
len(model.parameters())  # 3 * (3 + 1) + 3 * (3 + 1) + 1 * (3 + 1) = 28
"""

TRAINING = """\
## 9. Training on three samples

Three inputs with three numbers each, and the output we want for each. The loss adds up the
squared differences between the targets and the network's predictions; it is one `Value`, so
`loss.backward()` gives every weight the direction in which the loss grows. One training step
resets the gradients, runs the backward pass, and moves every parameter a little the other
way: `p.data -= lr * p.grad`, with a small learning rate `lr`.
"""

GC_NOTE = """\
Each `_backward` function refers to the node it belongs to, and the node refers back to the
function, so every graph is a web of reference cycles that only Python's cycle collector can
free. `collector_paused` keeps the collector from rescanning the growing graph again and again
during one step, which would cost more than the arithmetic itself.
"""

TRAIN_RUN = """\
history = train(epochs=50, lr=0.01)
print(f"loss before training {history[0]:.3f}, after 50 steps {history[-1]:.3f}")
"""

DEAD_RELU = """\
Not every random start trains. If every ReLU of a layer outputs 0 for all three samples, no
gradient flows back through them and the loss stays where it is (for this data, at 2/3).
Try a few seeds with `train(seed=...)` to see both behaviours.
"""

LOSS_PLOT = """\
## 10. Pictures

The loss after each step. It should fall quickly at first, then level off.

The cells that only draw a picture carry the tag `autodiff101-not-graded`: the grader and
`check.py` leave them out (a picture earns no points, and drawing it would only slow grading
down). Keep your own code out of them: whatever a tagged cell defines is not graded.
"""

LOSS_PLOT_RUN = """\
from IPython.display import Image

try:
    picture = Image(plot_losses(history, "loss_curve.png"))
except ImportError as missing:  # the notebook goes on without the picture
    picture = None
    print(f"No picture: {missing.name} is not installed. Run `%pip install matplotlib` "
          "in a cell (or `pip install matplotlib` in a terminal), then run this cell again.")
picture
"""

GRAPH = """\
And the computation graph of section 7's expression, with each node's value and gradient.
Drawing it needs the Graphviz program `dot` besides the `graphviz` Python package.
"""

GRAPH_RUN = """\
try:
    graph = draw_graph(g)
except ImportError as missing:  # the notebook goes on without the picture
    graph = None
    print(f"No picture: {missing.name} is not installed. Run `%pip install graphviz` in a "
          "cell, and install the Graphviz program (https://graphviz.org/download/).")
graph
"""

END = """\
## Done

If every check above passes, run `check()` below for all public checks at once, or
`python check.py autodiff101.ipynb` from a terminal. Your grade also includes further checks
of the same kind, so test your code on examples of your own as well: a node used three
times, a long chain, an expression with every operator.

**What to hand in:** this notebook, saved. In the handout folder, `python check.py
autodiff101.ipynb --zip` checks it once more and packs it into `submission.zip`; in Colab or
another online Jupyter, download it (*File → Download → .ipynb*) and hand in that file.
"""

# --- the extension exercises' sections (tanh, exp, log, moons) -------------------------------

TANH = """\
## More operators: tanh

`tanh` squashes any number into (-1, 1). Its local derivative is 1 - tanh(x)**2: written with
the output t = tanh(x), it is 1 - t**2, which is why the operator keeps `t` around.
"""

EXP = """\
## More operators: exp

`exp` is its own derivative: the local derivative of exp(x) is exp(x), the output's data.
"""

TANH_THROUGH_EXP = """\
tanh can also be built from operators you have already: tanh(x) = (e - 1) / (e + 1) with
e = exp(2x). Autodiff does not care how a function is written: both give the same gradient.
"""

TANH_THROUGH_EXP_RUN = """\
a, b = Value(0.6), Value(0.6)
t = a.tanh()
e = (b * 2).exp()
u = (e - 1) / (e + 1)
t.backward()
u.backward()
print(f"directly: {a.grad:.6f}   through exp: {b.grad:.6f}")
"""

LOG = """\
## More operators: log

`log` is defined for positive numbers only (it raises a ValueError for others); its local
derivative is 1 / x, and like every local derivative it is multiplied by `out.grad`.
"""

MOONS = """\
## Two moons: a real classifier

micrograd's demo: 100 points of two interleaving half-moons (`moons.csv`, next to this
notebook), labels -1 and +1, told apart by MLP(2, [16, 16, 1]). The model's output is a
score, and its sign is the predicted label. The loss is the max-margin (hinge) loss,
max(0, 1 - y * score) averaged over the points, plus an L2 penalty alpha * sum(p * p) that
keeps the weights small; the learning rate decays from 1.0 to 0.1.

The check cell comes after `train_moons`, the last function it calls. The 100-step training
after it and the picture of the decision boundary carry the tag `autodiff101-not-graded`:
the grader and `check.py` leave them out (they take about a minute), so keep your own code
out of them.
"""

MOONS_RUN = """\
xs, ys = load_moons()
model = moons_model()
history = train_moons(model, xs, ys, steps=100)  # about a minute
print(f"loss {history[-1][0]:.4f}, accuracy {history[-1][1]:.0%}")
"""

BOUNDARY_RUN = """\
from IPython.display import Image

Image(plot_boundary(model, xs, ys, "boundary.png"))
"""

EXTENSION_SECTIONS_AFTER_BACKWARD = [
    Section([Markdown(TANH), Source("engine.py", ["Value.tanh"]), Check("tanh")],
            needs=[("engine.py", "Value.tanh")]),
    Section([Markdown(EXP), Source("engine.py", ["Value.exp"]), Check("exp")],
            needs=[("engine.py", "Value.exp")]),
    Section([Markdown(TANH_THROUGH_EXP), Code(TANH_THROUGH_EXP_RUN)],
            needs=[("engine.py", "Value.tanh"), ("engine.py", "Value.exp")]),
    Section([Markdown(LOG), Source("engine.py", ["Value.log"]), Check("log")],
            needs=[("engine.py", "Value.log")]),
]
EXTENSION_SECTIONS_AT_END = [
    Section([Markdown(MOONS), Source("moons.py", ["import", "MOONS_CSV", "ALPHA", "MOONS_SEED", "STEPS",
                                                  "load_moons"]),
             Source("moons.py", ["hinge_loss"]), Source("moons.py", ["l2_penalty"]),
             Source("moons.py", ["accuracy"]), Source("moons.py", ["moons_loss"]),
             Source("moons.py", ["learning_rate"]),
             # the checks after the last definition they call (moons-training calls train_moons),
             # before the long training run, which the graders leave out
             Source("moons.py", ["train_moons", "moons_model"]), Check("moons"), Code(MOONS_RUN, [NOT_GRADED_TAG]),
             Source("viz.py", ["plot_boundary"]), Code(BOUNDARY_RUN, [NOT_GRADED_TAG])],
            needs=[("moons.py", "hinge_loss")]),
]

PLAN = [
    Section([Markdown(INTRO), Code(SETUP, [CHECK_TAG])]),
    Section([Markdown(VALUE), Source("engine.py", ["Value", "_leaf_backward"]), Code("Value(5.0)\n")],
            needs=[("engine.py", "Value")]),
    Section([Markdown(ADD), Source("engine.py", ["Value.__add__"]), Code(ADD_DEMO), Check("add")],
            needs=[("engine.py", "Value.__add__")]),
    Section([Markdown(MUL), Source("engine.py", ["Value.__mul__"]), Code(MUL_DEMO), Check("mul")],
            needs=[("engine.py", "Value.__mul__")]),
    Section([Markdown(POW), Source("engine.py", ["Value.__pow__"]), Code(POW_DEMO), Check("pow")],
            needs=[("engine.py", "Value.__pow__")]),
    Section([Markdown(COMPOSED),
             Source("engine.py", ["Value.__neg__", "Value.__sub__", "Value.__truediv__"]),
             Source("engine.py", ["Value.__radd__", "Value.__rmul__", "Value.__rsub__", "Value.__rtruediv__"]),
             Code(PUZZLE), Markdown(PUZZLE_EXPLAINED), Code(PUZZLE_LOOK)],
            needs=[("engine.py", "Value.__sub__")]),
    Section([Markdown(RELU), Source("engine.py", ["Value.relu"]), Code(RELU_DEMO), Check("relu"),
             Markdown(ALL_OPERATORS), Check("value", optional=True)],
            needs=[("engine.py", "Value.relu")]),
    Section([Markdown(BACKWARD), Source("engine.py", ["Value.backward"]), Code(BACKWARD_DEMO),
             Code(PUZZLE_SOLVED), Check("backward"), Check("sub-div", optional=True)],
            needs=[("engine.py", "Value.backward")]),
    # The extension exercises: a section appears only when the course chose it (its pieces exist).
    *EXTENSION_SECTIONS_AFTER_BACKWARD,
    Section([Markdown(NN), Source("nn.py", ["import", "Module"]), Source("nn.py", ["Neuron"]),
             Source("nn.py", ["Layer"]), Source("nn.py", ["MLP"]), Code(NN_DEMO),
             Check("nn", optional=True)], needs=[("nn.py", "MLP")]),
    Section([Markdown(TRAINING), Source("train.py", ["import", "XS", "YS", "squared_error"]),
             Markdown(GC_NOTE), Source("train.py", ["collector_paused", "step"]),
             Source("train.py", ["DEFAULT_SEED", "LOSS_THRESHOLD", "train_model", "train"]),
             Code(TRAIN_RUN), Markdown(DEAD_RELU)], needs=[("train.py", "train")]),
    Section([Markdown(LOSS_PLOT), Source("viz.py", ["plot_losses"]), Code(LOSS_PLOT_RUN, [NOT_GRADED_TAG])],
            needs=[("viz.py", "plot_losses"), ("train.py", "train")]),
    Section([Markdown(GRAPH), Source("viz.py", ["draw_graph"]), Code(GRAPH_RUN, [NOT_GRADED_TAG])],
            needs=[("viz.py", "draw_graph"), ("engine.py", "Value.backward")]),
    *EXTENSION_SECTIONS_AT_END,
    Section([Markdown(END), Check(None)]),
]


# --- building the notebook -----------------------------------------------------------------


def build(sources, public_checks, exercises=(), embedded=None):
    """The handout notebook from ``sources`` ({file name: text}, stubbed or not).

    ``exercises`` (the TODOs' names) always get a check cell; other exercises' check cells
    appear only when the frozen ``public_checks`` have checks for them. ``embedded``
    ({relative path: text}: the checker and its data) goes into the set-up cell, which
    unpacks it when the notebook runs without the checker next to it.
    """
    cut = {file: pieces(text, file) for file, text in sources.items()}
    checked = {check.get("cell", check["exercise"]) for check in public_checks}
    placed = {file: set() for file in cut}
    cells = []
    for section in PLAN:
        if not all(name in cut.get(file, {}) for file, name in section.needs):
            continue
        for cell in section.cells:
            if isinstance(cell, Source):
                text = _source_cell(cut, placed, cell)
                if text:
                    cells.append(nbformat.v4.new_code_cell(text))
            elif isinstance(cell, Check):
                if cell.optional and cell.exercise not in checked:
                    continue
                call = f"check({cell.exercise!r})" if cell.exercise else "check()"
                cells.append(nbformat.v4.new_code_cell(call, metadata={"tags": [CHECK_TAG]}))
            elif cell.text == SETUP and embedded is not None:
                cells.append(nbformat.v4.new_code_cell(setup_embedded(embedded), metadata={
                    "tags": list(cell.tags), **FOLDED}))
            elif isinstance(cell, Code):
                metadata = {"tags": list(cell.tags)} if cell.tags else {}
                cells.append(nbformat.v4.new_code_cell(cell.text.rstrip("\n"), metadata=metadata))
            else:
                cells.append(nbformat.v4.new_markdown_cell(cell.text.rstrip("\n")))
    _place_leftovers(cut, placed, cells)
    return finished_notebook(cells)


def finished_notebook(cells):
    """The notebook of ``cells`` (nbformat cells): stable cell ids, a Python 3 kernelspec
    (Jupyter, nbgrader and otter all need one), validated by nbformat."""
    import nbformat

    for number, cell in enumerate(cells):
        cell.id = f"cell-{number:02d}"
    notebook = nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    nbformat.validate(notebook)
    return notebook


# A long set-up cell's metadata, so that its code starts folded: Jupyter's own flag, and
# Colab's, which ignores Jupyter's and folds a cell shown as a form (its ``#@title`` line
# is what the folded cell shows).
FOLDED = {"jupyter": {"source_hidden": True}, "cellView": "form"}


def setup_embedded(files, template=SETUP_EMBEDDED):
    """The set-up cell ``template`` carrying ``files`` ({relative path: text}) where it says
    ``@FILES@``, one JSON string a file."""
    packed = ",\n".join(f"    {json.dumps(name)}: {json.dumps(text)}" for name, text in sorted(files.items()))
    return template.replace("@FILES@", packed).rstrip("\n")


def _source_cell(cut, placed, cell):
    chunks = []
    for name in cell.names:
        text = cut.get(cell.file, {}).get(name)
        if text is None or name in placed[cell.file]:
            continue
        placed[cell.file].add(name)
        chunks.append(with_attach(name, text))
    return join(chunks)


def _place_leftovers(cut, placed, cells):
    """Pieces the plan does not name (a new helper in the reference, say) still go in: each
    into the cell of the next piece of its module that is placed, so it is defined before
    use, or after the module's last placed piece."""
    for file, found in cut.items():
        if not placed[file]:
            continue  # a module the notebook does not use at all
        order = list(found)
        leftovers = [name for name in order if name not in placed[file]]
        before = {}  # anchor -> leftovers to put in front of it, in source order
        after = []
        for name in leftovers:
            later = [other for other in order[order.index(name) + 1:] if other in placed[file]]
            if later:
                before.setdefault(later[0], []).append(name)
            else:
                after.append(name)
        last = [name for name in order if name in placed[file]][-1]
        for anchor, names in [*before.items(), (last, None)]:
            cell = next(c for c in cells if c.cell_type == "code" and found[anchor] in c.source)
            if names is None:
                cell.source = join([cell.source] + [with_attach(n, found[n]) for n in after])
                continue
            head, anchor_text, tail = cell.source.partition(found[anchor])
            extra = join([with_attach(n, found[n]) for n in names])
            cell.source = join([part for part in (head.rstrip("\n"), extra, anchor_text + tail) if part])
        placed[file].update(leftovers)


def render(notebook):
    return nbformat.writes(notebook) + "\n"


def todo_exercise(cell_source):
    """The exercise a code cell leaves to the student, or None."""
    match = re.search(r"# TODO exercise ([\w-]+)", cell_source)
    return match.group(1) if match else None
