"""The mutant corpus: the reference with one realistic bug each, and correct variants in other styles.

A mutant is the reference (``solutions/engine.py`` and ``nn.py`` joined into one module, as a
student's notebook would be) with a few lines patched; each patch is (file, old text, new
text) and must match exactly once. Each mutant declares the checks it fails and the
diagnoses those failures carry; ``tests/test_mutants.py`` runs the catalogue on it and
compares, and ``docs/checks.md`` prints the same table (``python tests/mutants.py >
docs/checks.md`` regenerates it; a test fails when it is stale).

Correct variants are written in another style; they must score full marks (``fails`` names
the 0-point checks they may fail).
"""
import sys
from dataclasses import dataclass, field
from pathlib import Path

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"
if str(SOLUTIONS.parent) not in sys.path:  # the kit next to this corpus cuts the reference (reference_text)
    sys.path.insert(0, str(SOLUTIONS.parent))
SEED = 2024  # the run seed of the random checks in the corpus's expectations


@dataclass(frozen=True)
class Submission:
    about: str  # one line: the bug, or the style
    patches: tuple = ()  # (file, old, new)
    fails: frozenset = frozenset()  # ids of the checks it fails
    diagnoses: frozenset = frozenset()  # every diagnosis those failures carry
    source: str = None  # a whole module instead of patches of the reference
    files: dict = field(default_factory=dict)  # a folder of files instead of one module
    intended: frozenset = frozenset()  # the misconception diagnoses it must get, no more, no fewer
    # Checks it may fail or pass depending on the order a set of children comes in (its
    # _prev is a set, whose order follows id()s): each run fails all of ``fails`` and
    # some of these.
    may_fail: frozenset = frozenset()
    unordered: bool = False  # _prev is a set and the bug makes the numbers depend on its order


# Diagnoses that are outcomes, not ideas: they do not count for "given the intended diagnosis".
OUTCOMES = frozenset({"training", "load-error"})


def mutant(about, *patches, fails, diagnoses, intended):
    intended = frozenset((intended,) if isinstance(intended, str) else intended)
    return Submission(about, tuple(patches), frozenset(fails), frozenset(diagnoses), intended=intended)


def reference_text(file, extensions=False):
    """The reference's ``file``: the core alone (the extension blocks cut, as in a course that
    chose none), or with ``extensions`` every extension block kept."""
    from autograder.checks import CORE_EXERCISES, EXERCISES
    from autograder.handout import select_extensions

    text = (SOLUTIONS / file).read_text()
    return select_extensions({file: text}, EXERCISES if extensions else CORE_EXERCISES)[file]


def one_module(patches=()):
    """engine.py and nn.py, patched, as one module that runs top to bottom."""
    texts = {file: reference_text(file) for file in ("engine.py", "nn.py")}
    for file, old, new in patches:
        if old is BACKWARD:
            old = _backward_solution(texts[file])
        count = texts[file].count(old)
        if count != 1:
            raise ValueError(f"a patch of {file} matches {count} times: {old!r}")
        texts[file] = texts[file].replace(old, new)
    nn = texts["nn.py"].replace("from .engine import Value\n", "")
    return texts["engine.py"] + "\n\n" + nn


def write(submission, directory):
    """Write ``submission`` as a folder the loader reads; return the folder."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if submission.files:
        for name, text in submission.files.items():
            (directory / name).write_text(text)
    else:
        (directory / "submission.py").write_text(submission.source or one_module(submission.patches))
    return directory


def write_notebook(submission, path):
    """``submission`` as a notebook at ``path``: a markdown cell, then one code cell per
    top-level block of its module, as a student's notebook holds it."""
    import nbformat

    text = submission.source or one_module(submission.patches)
    cells = [nbformat.v4.new_markdown_cell("# My autodiff")]
    cells += [nbformat.v4.new_code_cell(block.strip("\n")) for block in text.split("\n\n\n") if block.strip()]
    Path(path).write_text(nbformat.writes(nbformat.v4.new_notebook(cells=cells)))
    return Path(path)


BACKWARD = object()  # stands for the body of the reference's backward(), whatever it is


def _backward_solution(engine):
    """The lines between the solution markers of ``def backward``."""
    start = engine.index("# BEGIN SOLUTION\n", engine.index("    def backward(self):"))
    start = engine.index("\n", start) + 1
    return engine[start:engine.index("        # END SOLUTION", start)]


ADD_BACKWARD = "            self.grad += out.grad\n            other.grad += out.grad\n"
MUL_BACKWARD = "            self.grad += other.data * out.grad\n            other.grad += self.data * out.grad\n"
# A textbook backward() (explicit-stack depth-first search), to which the topological-sort
# mutants apply their one change, so they do not depend on how the reference writes it.
STACK_BACKWARD = """        order, visited = [], set()
        stack = [(self, False)]
        while stack:
            node, children_done = stack.pop()
            if children_done:
                order.append(node)
            elif node not in visited:
                visited.add(node)
                stack.append((node, True))
                stack.extend((child, False) for child in node._prev)
        self.grad = 1.0
        for node in reversed(order):
            node._backward()
"""


RECURSIVE_BACKWARD = """        topo, visited = [], set()

        def build_topo(v):
            if v not in visited:
                visited.add(v)
                for child in v._prev:
                    build_topo(child)
                topo.append(v)

        build_topo(self)
        self.grad = 1.0
        for node in reversed(topo):
            node._backward()
"""


def edit(text, old, new):
    """``text`` with ``old`` replaced by ``new``; ``old`` must occur exactly once."""
    if text.count(old) != 1:
        raise ValueError(f"{old!r} occurs {text.count(old)} times")
    return text.replace(old, new)


def backward_body(body):
    """A patch that replaces the body of backward()."""
    return ("engine.py", BACKWARD, body)


MUTANTS = {
    "add-assigns-grad": mutant(
        "add's _backward assigns (=) instead of adding (+=)",
        ("engine.py", ADD_BACKWARD, ADD_BACKWARD.replace("+=", "=")),
        fails=(
            "add-same-node-step", "add-same-node", "backward-shared-node", "backward-each-node-once",
            "backward-random-small", "backward-random-shared", "backward-random-deep", "training-loss-history",
            "training-converges"),
        diagnoses=("accumulate-grad", "training"),
        intended='accumulate-grad'),
    "add-assigns-self-grad": mutant(
        "add's _backward assigns (=) to self.grad only; other.grad still adds",
        ("engine.py", ADD_BACKWARD, ADD_BACKWARD.replace("self.grad +=", "self.grad =")),
        fails=(
            "add-same-node-step", "add-same-node", "backward-shared-node", "backward-random-small",
            "backward-random-shared", "backward-random-deep", "training-loss-history", "training-converges"),
        diagnoses=("accumulate-grad", "training"),
        intended='accumulate-grad'),
    "mul-assigns-grad": mutant(
        "mul's _backward assigns (=) instead of adding (+=)",
        ("engine.py", MUL_BACKWARD, MUL_BACKWARD.replace("+=", "=")),
        fails=(
            "mul-same-node-step", "mul-same-node", "backward-reverse-order", "backward-shared-node",
            "backward-each-node-once", "backward-random-small", "backward-random-shared",
            "backward-random-deep", "training-loss-history", "training-converges"
        ),
        diagnoses=("accumulate-grad", "training"),
        intended='accumulate-grad'),
    "root-not-seeded": mutant(
        "backward() never sets the root's grad to 1.0",
        backward_body(edit(STACK_BACKWARD, "        self.grad = 1.0\n", "")),
        fails=(
            "add-same-node", "mul-same-node", "backward-seeds-root", "backward-reverse-order",
            "backward-shared-node", "backward-each-node-once", "backward-reaches-every-node",
            "backward-distinct-equal-values", "backward-random-small", "backward-random-shared",
            "backward-random-deep", "sub-backward", "div-backward", "rsub-backward",
            "rdiv-backward", "neg-backward", "nn-neuron-gradients", "training-loss-history",
            "training-converges", "deep-chain"
        ),
        diagnoses=("seed-root-grad", "training"),
        intended='seed-root-grad'),
    "topo-not-reversed": mutant(
        "backward() walks the topological order forwards",
        backward_body(edit(STACK_BACKWARD, "for node in reversed(order):", "for node in order:")),
        fails=(
            "add-same-node", "mul-same-node", "backward-reverse-order", "backward-shared-node",
            "backward-each-node-once", "backward-reaches-every-node",
            "backward-distinct-equal-values", "backward-random-small", "backward-random-shared",
            "backward-random-deep", "sub-backward", "div-backward", "rsub-backward",
            "rdiv-backward", "nn-neuron-gradients", "training-loss-history",
            "training-converges", "deep-chain"
        ),
        diagnoses=("topo-order", "training"),
        intended='topo-order'),
    "mul-uses-out-data": mutant(
        "mul's local derivative is out.data instead of the other factor",
        ("engine.py", MUL_BACKWARD,
         "            self.grad += out.data * out.grad\n            other.grad += out.data * out.grad\n"),
        fails=(
            "mul-step", "mul-same-node-step", "mul-same-node", "backward-seeds-root", "backward-reverse-order",
            "backward-shared-node", "backward-each-node-once", "backward-reaches-every-node",
            "backward-distinct-equal-values", "backward-random-small", "backward-random-shared",
            "backward-random-deep", "sub-backward", "div-backward", "rsub-backward",
            "rdiv-backward", "neg-backward", "nn-neuron-gradients", "training-loss-history",
            "training-converges"
        ),
        diagnoses=("mul-local-grad", "training"),
        intended='mul-local-grad'),
    "pow-keeps-exponent": mutant(
        "the power rule keeps the exponent: k * x**k",
        ("engine.py", "exponent * self.data ** (exponent - 1) * out.grad",
         "exponent * self.data ** exponent * out.grad"),
        fails=(
            "pow-square-step", "pow-cube-step", "pow-negative-step", "pow-fractional-step",
            "backward-shared-node", "backward-reaches-every-node", "backward-random-small",
            "backward-random-shared", "backward-random-deep", "div-backward", "rdiv-backward",
            "training-loss-history", "training-converges"
        ),
        diagnoses=("pow-local-grad", "training"),
        intended='pow-local-grad'),
    "relu-unmasked": mutant(
        "relu's _backward passes the gradient through everywhere",
        ("engine.py", "self.grad += (out.data > 0) * out.grad", "self.grad += out.grad"),
        fails=(
            "relu-negative-step", "backward-random-small", "backward-random-shared", "backward-random-deep",
            "training-loss-history", "training-converges"),
        diagnoses=("relu-local-grad", "training"),
        intended='relu-local-grad'),
    "radd-missing": mutant(
        "__radd__ is not defined",
        ("engine.py", "    def __radd__(self, other):  # other + self\n        return self + other\n\n", ""),
        fails=(
            "value-reflected", "backward-random-small", "backward-random-shared", "backward-random-deep",
            "rsub-backward", "training-loss-history", "training-converges"),
        diagnoses=("reflected-ops",),
        intended='reflected-ops'),
    "rsub-sign-flipped": mutant(
        "__rsub__ computes self - other",
        ("engine.py", "return other + (-self)", "return self + (-other)"),
        fails=("value-reflected", "backward-random-small", "backward-random-shared", "backward-random-deep",
               "rsub-backward"),
        diagnoses=("reflected-ops",),
        intended='reflected-ops'),
    "topo-without-visited": mutant(
        "the topological sort has no visited set",
        backward_body(edit(STACK_BACKWARD, "            elif node not in visited:\n", "            else:\n")),
        fails=(
            "backward-reverse-order", "backward-shared-node", "backward-each-node-once",
            "backward-random-small", "backward-random-shared", "backward-random-deep",
            "training-loss-history"
        ),
        diagnoses=("topo-visited", "training"),
        intended='topo-visited'),
    "recursive-backward-without-topo": mutant(
        "backward() calls _backward and recurses into the children, with no topological sort",
        backward_body("""        self.grad = 1.0

        def propagate(node):
            node._backward()
            for child in node._prev:
                propagate(child)

        propagate(self)
"""),
        fails=(
            "backward-reverse-order", "backward-shared-node", "backward-each-node-once",
            "backward-random-small", "backward-random-shared", "backward-random-deep",
            "training-loss-history", "deep-chain"
        ),
        diagnoses=("recursion-depth", "topo-visited", "training"),
        intended=('recursion-depth', 'topo-visited')),
    "neuron-parameters-without-bias": mutant(
        "Neuron.parameters() forgets the bias",
        ("nn.py", "return self.weights + [self.bias]", "return self.weights"),
        fails=(
            "nn-neuron-parameters", "nn-mlp-parameters", "training-loss-history",
            "training-converges"
        ),
        diagnoses=("nn-parameters", "training"),
        intended='nn-parameters'),
    "mul-without-upstream": mutant(
        "mul's _backward forgets to multiply by out.grad",
        ("engine.py", MUL_BACKWARD,
         "            self.grad += other.data\n            other.grad += self.data\n"),
        fails=(
            "mul-same-node", "mul-same-node-step",
            "mul-step", "backward-reverse-order", "backward-shared-node", "backward-each-node-once",
            "backward-reaches-every-node", "backward-distinct-equal-values",
            "backward-random-small", "backward-random-shared", "backward-random-deep",
            "training-loss-history", "training-converges"),
        diagnoses=("chain-rule", "training"),
        intended='chain-rule'),
    "add-without-children": mutant(
        "a sum does not record its inputs as children",
        ("engine.py", 'Value(self.data + other.data, (self, other), "+")', "Value(self.data + other.data)"),
        fails=(
            "add-same-node", "backward-reverse-order", "backward-shared-node",
            "backward-each-node-once", "backward-reaches-every-node", "backward-random-small",
            "backward-random-shared", "backward-random-deep", "sub-backward", "rsub-backward",
            "nn-neuron-gradients", "training-loss-history", "training-converges", "deep-chain"
        ),
        diagnoses=("graph-edge-missing", "training"),
        intended='graph-edge-missing'),
    "add-without-wrapping": mutant(
        "a + 2 does not wrap the 2 as a Value",
        ("engine.py", '        other = other if isinstance(other, Value) else Value(other)\n'
                      '        out = Value(self.data + other.data, (self, other), "+")',
         '        out = Value(self.data + other.data, (self, other), "+")'),
        fails=(
            "value-numbers", "value-reflected", "backward-shared-node", "backward-random-small",
            "backward-random-shared", "backward-random-deep", "rsub-backward",
            "training-loss-history", "training-converges", "deep-chain"
        ),
        diagnoses=("constant-wrapping",),
        intended='constant-wrapping'),
    "equal-by-data": mutant(
        "Values compare and hash by their data",
        ("engine.py", "    def __repr__(self):",
         "    def __eq__(self, other):\n        return isinstance(other, Value) and self.data == other.data\n\n"
         "    def __hash__(self):\n        return hash(self.data)\n\n    def __repr__(self):"),
        fails=(
            "backward-shared-node", "backward-reaches-every-node", "backward-distinct-equal-values",
            "backward-random-small", "backward-random-shared", "backward-random-deep",
            "training-loss-history", "training-converges"),
        diagnoses=("training", "value-identity"),
        intended='value-identity'),
    "unhashable-value": mutant(
        "__eq__ is defined by data, which makes Value unhashable",
        ("engine.py", "    def __repr__(self):",
         "    def __eq__(self, other):\n        return isinstance(other, Value) and self.data == other.data\n\n"
         "    def __repr__(self):"),
        fails=(
            "add-same-node", "mul-same-node", "backward-seeds-root", "backward-reverse-order",
            "backward-shared-node", "backward-each-node-once", "backward-reaches-every-node",
            "backward-distinct-equal-values", "backward-random-small", "backward-random-shared",
            "backward-random-deep", "sub-backward", "div-backward", "rsub-backward",
            "rdiv-backward", "neg-backward", "nn-neuron-gradients", "training-loss-history",
            "training-converges", "deep-chain"
        ),
        diagnoses=("value-identity",),
        intended='value-identity'),
    "sub-direct-wrong-sign": mutant(
        "a - b written directly, giving b +out.grad",
        ("engine.py", "        return self + (-other)\n", """        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data - other.data, (self, other), "-")

        def _backward():
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out
"""),
        fails=("backward-random-small", "backward-random-shared", "backward-random-deep", "sub-backward"),
        diagnoses=("sub-div-composition",),
        intended='sub-div-composition'),
    "div-direct-wrong-denominator": mutant(
        "a / b written directly, giving b -a/b * out.grad",
        ("engine.py", "        return self * other**-1\n", """        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data / other.data, (self, other), "/")

        def _backward():
            self.grad += out.grad / other.data
            other.grad += -self.data / other.data * out.grad

        out._backward = _backward
        return out
"""),
        fails=(
            "backward-random-small", "backward-random-shared", "backward-random-deep",
            "div-backward"
        ),
        diagnoses=("sub-div-composition",),
        intended='sub-div-composition'),
    "backward-not-implemented": mutant(
        "backward() is still the handout's TODO",
        backward_body('        raise NotImplementedError("backward: build the topological order, then ...")\n'),
        fails=(
            "add-same-node", "mul-same-node", "backward-seeds-root", "backward-reverse-order",
            "backward-shared-node", "backward-each-node-once", "backward-reaches-every-node",
            "backward-distinct-equal-values", "backward-random-small", "backward-random-shared",
            "backward-random-deep", "sub-backward", "div-backward", "rsub-backward",
            "rdiv-backward", "neg-backward", "nn-neuron-gradients", "training-loss-history",
            "training-converges", "deep-chain"
        ),
        diagnoses=("not-implemented",),
        intended='not-implemented'),
    "zero-grad-forgets-to-assign": mutant(
        "zero_grad() assigns to a local name instead of p.grad",
        ("nn.py", "            p.grad = 0.0", "            grad = 0.0"),
        fails=(
            "nn-zero-grad", "training-loss-history", "training-converges"
        ),
        diagnoses=("training", "zero-grad"),
        intended='zero-grad'),
    "mlp-last-layer-nonlinear": mutant(
        "every layer of the MLP is nonlinear, the last one too",
        ("nn.py", "is_nonlinear=i != last", "is_nonlinear=True"),
        fails=(
            "nn-mlp-nonlinear", "nn-mlp-forward"
        ),
        diagnoses=("nn-forward",),
        intended='nn-forward'),
    # --- the table (#14): bugs learners have published ---
    "relu-multiplies-by-out-data": mutant(
        "relu's _backward multiplies out.grad by out.data instead of the 0/1 mask",
        ("engine.py", "self.grad += (out.data > 0) * out.grad", "self.grad += out.data * out.grad"),
        fails=(
            "relu-positive-step", "backward-shared-node", "backward-reaches-every-node",
            "backward-random-small", "backward-random-shared", "backward-random-deep",
            "training-loss-history", "training-converges"
        ),
        diagnoses=("relu-local-grad", "training"), intended="relu-local-grad"),
    "topo-preorder-forwards": mutant(
        "the topological list is built in pre-order (node before its children) and walked forwards",
        backward_body("""        topo, visited = [], set()

        def build_topo(v):
            if v not in visited:
                visited.add(v)
                topo.append(v)
                for child in v._prev:
                    build_topo(child)

        build_topo(self)
        self.grad = 1.0
        for node in topo:
            node._backward()
"""),
        fails=(
            "backward-shared-node", "backward-random-small", "backward-random-shared",
            "backward-random-deep", "training-loss-history", "training-converges", "deep-chain"
        ),
        diagnoses=("recursion-depth", "topo-order", "training"), intended=("recursion-depth", "topo-order")),
    "topo-breadth-first": mutant(
        "backward() visits the nodes breadth-first from the root",
        backward_body("""        order, seen = [self], {self}
        for node in order:
            for child in node._prev:
                if child not in seen:
                    seen.add(child)
                    order.append(child)
        self.grad = 1.0
        for node in order:
            node._backward()
"""),
        fails=(
            "backward-shared-node", "backward-random-small", "backward-random-shared",
            "backward-random-deep", "training-loss-history", "training-converges"
        ),
        diagnoses=("topo-order", "training"), intended="topo-order"),
    "root-seeded-after-loop": mutant(
        "backward() sets the root's grad to 1.0 after the loop over _backward",
        backward_body(edit(edit(STACK_BACKWARD, "        self.grad = 1.0\n", ""),
                           "            node._backward()\n", "            node._backward()\n        self.grad = 1.0\n")),
        fails=(
            "add-same-node", "mul-same-node", "backward-seeds-root", "backward-reverse-order",
            "backward-shared-node", "backward-each-node-once", "backward-reaches-every-node",
            "backward-distinct-equal-values", "backward-random-small", "backward-random-shared",
            "backward-random-deep", "sub-backward", "div-backward", "rsub-backward",
            "rdiv-backward", "neg-backward", "nn-neuron-gradients", "training-loss-history",
            "training-converges", "deep-chain"
        ),
        diagnoses=("seed-root-grad", "training"), intended="seed-root-grad"),
    "neg-without-children": mutant(
        "__neg__ returns a new Value with no children",
        ("engine.py", "        return self * -1\n", "        return Value(-self.data)\n"),
        fails=(
            "backward-random-small", "backward-random-shared", "backward-random-deep",
            "sub-backward", "rsub-backward", "neg-backward", "training-loss-history",
            "training-converges"
        ),
        diagnoses=("graph-edge-missing", "training"), intended="graph-edge-missing"),
    "div-denominator-constant": mutant(
        "a / b treats the denominator as a constant (b's data, not b)",
        ("engine.py", "        return self * other**-1\n",
         "        return self * (other.data if isinstance(other, Value) else other) ** -1\n"),
        fails=(
            "backward-random-small", "backward-random-shared", "backward-random-deep",
            "div-backward"
        ),
        diagnoses=("graph-edge-missing",), intended="graph-edge-missing"),
    "relu-without-backward": mutant(
        "relu() attaches no _backward, so the leaf's no-op runs",
        ("engine.py", "        out._backward = _backward\n        return out\n\n    def backward(self):",
         "        return out\n\n    def backward(self):"),
        fails=(
            "relu-positive-step", "backward-shared-node", "backward-reaches-every-node",
            "backward-random-small", "backward-random-shared", "backward-random-deep",
            "training-loss-history", "training-converges"
        ),
        diagnoses=("relu-local-grad", "training"), intended="relu-local-grad"),
    "pow-without-backward": mutant(
        "a ** k attaches no _backward, so the leaf's no-op runs",
        ("engine.py", "        out._backward = _backward\n        return out\n\n    def relu(self):",
         "        return out\n\n    def relu(self):"),
        fails=(
            "pow-square-step", "pow-cube-step", "pow-negative-step", "pow-fractional-step",
            "backward-shared-node", "backward-reaches-every-node", "backward-random-small",
            "backward-random-shared", "backward-random-deep", "div-backward", "rdiv-backward",
            "training-loss-history", "training-converges"
        ),
        diagnoses=("pow-local-grad", "training"), intended="pow-local-grad"),
    "mul-holds-sum-rule": mutant(
        "mul's _backward holds the sum rule (the rules of add and mul swapped)",
        ("engine.py", MUL_BACKWARD, ADD_BACKWARD),
        fails=("mul-same-node-step", 
            "mul-step", "mul-same-node", "backward-seeds-root", "backward-reverse-order",
            "backward-shared-node", "backward-each-node-once", "backward-reaches-every-node",
            "backward-distinct-equal-values", "backward-random-small", "backward-random-shared",
            "backward-random-deep", "sub-backward", "div-backward", "rsub-backward",
            "rdiv-backward", "neg-backward", "nn-neuron-gradients", "training-loss-history",
            "training-converges"
        ),
        diagnoses=("mul-local-grad", "training"), intended="mul-local-grad"),
    # --- more mistakes learners make ---
    "mul-uses-own-data": mutant(
        "mul's _backward gives each factor its own data (self.grad += self.data * out.grad)",
        ("engine.py", MUL_BACKWARD,
         "            self.grad += self.data * out.grad\n            other.grad += other.data * out.grad\n"),
        fails=(
            "mul-step", "mul-same-node-step", "mul-same-node", "backward-seeds-root", "backward-reverse-order",
            "backward-shared-node", "backward-each-node-once", "backward-reaches-every-node",
            "backward-distinct-equal-values", "backward-random-small", "backward-random-shared",
            "backward-random-deep", "sub-backward", "div-backward", "rsub-backward",
            "rdiv-backward", "neg-backward", "nn-neuron-gradients", "training-loss-history",
            "training-converges"
        ),
        diagnoses=("mul-local-grad", "training"), intended="mul-local-grad"),
    "pow-drops-factor": mutant(
        "the power rule drops the factor k: x**(k - 1)",
        ("engine.py", "exponent * self.data ** (exponent - 1) * out.grad", "self.data ** (exponent - 1) * out.grad"),
        fails=(
            "pow-square-step", "pow-cube-step", "pow-negative-step", "pow-fractional-step",
            "backward-shared-node", "backward-reaches-every-node", "backward-random-small",
            "backward-random-shared", "backward-random-deep", "div-backward", "rdiv-backward",
            "training-loss-history", "training-converges"
        ),
        diagnoses=("pow-local-grad", "training"), intended="pow-local-grad"),
    "div-direct-wrong-sign": mutant(
        "a / b written directly, giving b +a/b**2 * out.grad",
        ("engine.py", "        return self * other**-1\n", """        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data / other.data, (self, other), "/")

        def _backward():
            self.grad += out.grad / other.data
            other.grad += self.data / other.data**2 * out.grad

        out._backward = _backward
        return out
"""),
        fails=(
            "backward-random-small", "backward-random-shared", "backward-random-deep",
            "div-backward"
        ),
        diagnoses=("sub-div-composition",), intended="sub-div-composition"),
    "add-without-upstream": mutant(
        "add's _backward adds 1.0 instead of out.grad",
        ("engine.py", ADD_BACKWARD, "            self.grad += 1.0\n            other.grad += 1.0\n"),
        fails=("add-same-node-step", "backward-random-small", 
            "add-step", "backward-shared-node", "backward-each-node-once",
            "backward-reaches-every-node", "backward-distinct-equal-values",
            "backward-random-shared", "backward-random-deep", "training-loss-history",
            "training-converges"
        ),
        diagnoses=("chain-rule", "training"), intended="chain-rule"),
    "pow-without-upstream": mutant(
        "pow's _backward forgets to multiply by out.grad",
        ("engine.py", "exponent * self.data ** (exponent - 1) * out.grad", "exponent * self.data ** (exponent - 1)"),
        fails=(
            "pow-square-step", "pow-cube-step", "pow-negative-step", "pow-fractional-step",
            "backward-reaches-every-node", "backward-random-small", "backward-random-shared",
            "backward-random-deep", "div-backward", "rdiv-backward"
        ),
        diagnoses=("chain-rule",), intended="chain-rule"),
    "relu-without-upstream": mutant(
        "relu's _backward adds the 0/1 mask alone, without out.grad",
        ("engine.py", "self.grad += (out.data > 0) * out.grad", "self.grad += float(out.data > 0)"),
        fails=("backward-random-small", 
            "relu-positive-step", "backward-reaches-every-node", "backward-random-shared",
            "backward-random-deep", "training-loss-history", "training-converges"
        ),
        diagnoses=("chain-rule", "training"), intended="chain-rule"),
    "rtruediv-flipped": mutant(
        "__rtruediv__ computes self / other",
        ("engine.py", "return other * self**-1", "return self * other**-1"),
        fails=(
            "value-reflected", "backward-random-small", "backward-random-shared",
            "backward-random-deep", "rdiv-backward"
        ),
        diagnoses=("reflected-ops",), intended="reflected-ops"),
    "rmul-missing": mutant(
        "__rmul__ is not defined",
        ("engine.py", "    def __rmul__(self, other):  # other * self\n        return self * other\n\n", ""),
        fails=(
            "value-reflected", "backward-random-small", "backward-random-shared",
            "backward-random-deep", "rdiv-backward"
        ),
        diagnoses=("reflected-ops",), intended="reflected-ops"),
    "recursive-topo-without-visited": mutant(
        "the tutorial's recursive build_topo without its visited set",
        backward_body(edit(edit(RECURSIVE_BACKWARD, "            if v not in visited:\n                visited.add(v)\n"
                                "                for child in v._prev:\n                    build_topo(child)\n"
                                "                topo.append(v)\n",
                                "            for child in v._prev:\n                build_topo(child)\n"
                                "            topo.append(v)\n"), "        topo, visited = [], set()\n",
                           "        topo = []\n")),
        fails=(
            "backward-reverse-order", "backward-shared-node", "backward-each-node-once",
            "backward-random-small", "backward-random-shared", "backward-random-deep",
            "training-loss-history", "deep-chain"
        ),
        diagnoses=("recursion-depth", "topo-visited", "training"), intended=("recursion-depth", "topo-visited")),
    "neuron-forgets-bias": mutant(
        "a Neuron's output leaves out the bias",
        ("nn.py", "zip(self.weights, x)), self.bias)", "zip(self.weights, x)), 0.0)"),
        fails=(
            "nn-mlp-nonlinear",
            "nn-neuron-linear", "nn-neuron-gradients", "nn-mlp-forward",
            "training-loss-history", "training-converges"
        ),
        diagnoses=("nn-forward", "training"), intended=("nn-forward",)),
    "neuron-always-relu": mutant(
        "a Neuron applies relu() whether or not it is nonlinear",
        ("nn.py", "return activation.relu() if self.is_nonlinear else activation", "return activation.relu()"),
        fails=(
            "nn-mlp-nonlinear",
            "nn-mlp-forward",
        ),
        diagnoses=("nn-forward",), intended="nn-forward"),
    "zero-grad-resets-data": mutant(
        "zero_grad() sets p.data to 0 instead of p.grad",
        ("nn.py", "            p.grad = 0.0", "            p.data = 0.0"),
        fails=(
            "nn-zero-grad", "training-loss-history", "training-converges"
        ),
        diagnoses=("training", "zero-grad"), intended="zero-grad"),
}


# --- error carried forward (autograder/carry.py) ---------------------------------------------
# The exercises where each modelled mistake is made: with error carried forward it loses only
# those exercises' checks (and training-converges where the mistake stops training).
OWN_EXERCISES = {
    "add-assigns-grad": ("add",), "add-assigns-self-grad": ("add",), "mul-assigns-grad": ("mul",),
    "root-not-seeded": ("backward",), "topo-not-reversed": ("backward",), "mul-uses-out-data": ("mul",),
    "pow-keeps-exponent": ("pow",), "relu-unmasked": ("relu",), "topo-without-visited": ("backward",),
    "recursive-backward-without-topo": ("backward",), "mul-without-upstream": ("mul",),
    "add-without-children": ("add",), "equal-by-data": ("backward",), "sub-direct-wrong-sign": ("sub-div",),
    "div-direct-wrong-denominator": ("sub-div",), "relu-multiplies-by-out-data": ("relu",),
    "topo-preorder-forwards": ("backward",), "topo-breadth-first": ("backward",),
    "root-seeded-after-loop": ("backward",), "neg-without-children": ("sub-div",),
    "div-denominator-constant": ("sub-div",), "relu-without-backward": ("relu",),
    "pow-without-backward": ("pow",), "mul-holds-sum-rule": ("mul",), "mul-uses-own-data": ("mul",),
    "pow-drops-factor": ("pow",), "div-direct-wrong-sign": ("sub-div",), "add-without-upstream": ("add",),
    "pow-without-upstream": ("pow",), "relu-without-upstream": ("relu",),
    "recursive-topo-without-visited": ("backward",),
}
# Mistakes no model reproduces (a missing reflected operator, an unwrapped constant, the nn
# module's own bugs, a crash): they carry nothing, so they score the same with or without it.
UNKNOWN = ("radd-missing", "rsub-sign-flipped", "add-without-wrapping", "unhashable-value",
           "backward-not-implemented", "rtruediv-flipped", "rmul-missing", "neuron-parameters-without-bias",
           "zero-grad-forgets-to-assign", "zero-grad-resets-data", "neuron-forgets-bias")


def two_mistakes(first, second):
    """Two mutants' bugs in one submission, and the exercises of both."""
    return (Submission(f"{MUTANTS[first].about}; and {MUTANTS[second].about}",
                       MUTANTS[first].patches + MUTANTS[second].patches),
            OWN_EXERCISES[first] + OWN_EXERCISES[second])


TWO_MISTAKES = {f"{first} + {second}": two_mistakes(first, second) for first, second in (
    ("mul-uses-own-data", "topo-not-reversed"),
    ("pow-keeps-exponent", "relu-unmasked"),
    ("add-assigns-grad", "div-direct-wrong-sign"),
    ("mul-uses-out-data", "sub-direct-wrong-sign"),
    ("pow-drops-factor", "root-not-seeded"),
)}


TUTORIAL_STYLE = '''
import random


class Value:
    def __init__(self, data, _children=(), _op=''):
        self.data = data
        self.grad = 0.0
        self._backward = lambda: None
        self._prev = set(_children)
        self._op = _op

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"


def custom_addition(self, other):
    other = other if isinstance(other, Value) else Value(other)
    out = Value(self.data + other.data, (self, other), '+')

    def _backward():
        self.grad += 1.0 * out.grad
        other.grad += 1.0 * out.grad
    out._backward = _backward
    return out


Value.__add__ = custom_addition


def custom_multiplication(self, other):
    other = other if isinstance(other, Value) else Value(other)
    out = Value(self.data * other.data, (self, other), '*')

    def _backward():
        self.grad += other.data * out.grad
        other.grad += self.data * out.grad
    out._backward = _backward
    return out


Value.__mul__ = custom_multiplication


def custom_power(self, other):
    assert isinstance(other, (int, float)), "only supporting int/float powers for now"
    out = Value(self.data**other, (self,), f'**{other}')

    def _backward():
        self.grad += (other * self.data**(other - 1)) * out.grad
    out._backward = _backward
    return out


Value.__pow__ = custom_power


def custom_relu(self):
    out = Value(0 if self.data < 0 else self.data, (self,), 'ReLU')

    def _backward():
        self.grad += (out.data > 0) * out.grad
    out._backward = _backward
    return out


Value.relu = custom_relu


def custom_backward(self):
    topo = []
    visited = set()

    def build_topo(v):
        if v not in visited:
            visited.add(v)
            for child in v._prev:
                build_topo(child)
            topo.append(v)
    build_topo(self)
    self.grad = 1
    for v in reversed(topo):
        v._backward()


Value.backward = custom_backward
Value.__neg__ = lambda self: self * -1
Value.__radd__ = lambda self, other: self + other
Value.__sub__ = lambda self, other: self + (-other)
Value.__rsub__ = lambda self, other: other + (-self)
Value.__rmul__ = lambda self, other: self * other
Value.__truediv__ = lambda self, other: self * other**-1
Value.__rtruediv__ = lambda self, other: other * self**-1


class Module:
    def zero_grad(self):
        for p in self.parameters():
            p.grad = 0

    def parameters(self):
        return []


class Neuron(Module):
    def __init__(self, number_inputs, name, is_nonlinear=True):
        self.weights = [Value(random.uniform(-1, 1)) for _ in range(number_inputs)]
        self.bias = Value(0)
        self.name = name
        self.is_nonlinear = is_nonlinear

    def __call__(self, x):
        act = sum((wi * xi for wi, xi in zip(self.weights, x)), self.bias)
        return act.relu() if self.is_nonlinear else act

    def parameters(self):
        return self.weights + [self.bias]


class Layer(Module):
    def __init__(self, number_inputs, number_outputs, name, **kwargs):
        self.neurons = [Neuron(number_inputs, name=f"{name}_{i}", **kwargs) for i in range(number_outputs)]

    def __call__(self, x):
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def parameters(self):
        return [p for n in self.neurons for p in n.parameters()]


class MLP(Module):
    def __init__(self, number_inputs, list_number_outputs):
        sz = [number_inputs] + list_number_outputs
        self.layers = [Layer(sz[i], sz[i + 1], name=f"layer{i}", is_nonlinear=i != len(list_number_outputs) - 1)
                       for i in range(len(list_number_outputs))]

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]
'''

# --- the order-dependent mutants with _prev a set (#14 review, 1) ---
# With a set for _prev, backward() reaches a node's children in an order that follows their
# id()s; with these bugs the numbers depend on it, so the judge cannot replay them exactly
# and must still name the bug. ``fails`` holds what fails in every order the corpus was
# measured in; ``may_fail`` what fails in some.
SET_PREV = ("engine.py", "self._prev = tuple(_children)", "self._prev = set(_children)")
TUTORIAL_ADD = "        self.grad += 1.0 * out.grad\n        other.grad += 1.0 * out.grad\n"


def set_prev(name, fails, may_fail, diagnoses, intended):
    """MUTANTS[name] with _prev a set."""
    base = MUTANTS[name]
    intended = frozenset((intended,) if isinstance(intended, str) else intended)
    return Submission(f"{base.about}; _prev a set", base.patches + (SET_PREV,), frozenset(fails),
                      frozenset(diagnoses), intended=intended, may_fail=frozenset(may_fail), unordered=True)


def tutorial(about, old, new, fails, may_fail, diagnoses, intended):
    """TUTORIAL_STYLE (a set for _prev, a recursive sort) with ``old`` replaced by ``new``."""
    intended = frozenset((intended,) if isinstance(intended, str) else intended)
    return Submission(about, source=edit(TUTORIAL_STYLE, old, new), fails=frozenset(fails),
                      diagnoses=frozenset(diagnoses), intended=intended, may_fail=frozenset(may_fail), unordered=True)


RANDOM = ("backward-random-small", "backward-random-shared", "backward-random-deep")
TRAINING = ("training-loss-history", "training-converges")
MUTANTS.update({
    "add-assigns-grad-set-prev": set_prev(
        "add-assigns-grad",
        fails=("add-same-node-step", "add-same-node", "backward-each-node-once", *RANDOM, *TRAINING),
        may_fail=("backward-shared-node",), diagnoses=("accumulate-grad", "training"), intended="accumulate-grad"),
    "add-assigns-self-grad-set-prev": set_prev(
        "add-assigns-self-grad", fails=("add-same-node-step", "add-same-node", *RANDOM, *TRAINING),
        may_fail=("backward-shared-node",),
        diagnoses=("accumulate-grad", "training"), intended="accumulate-grad"),
    "mul-assigns-grad-set-prev": set_prev(
        "mul-assigns-grad",
        fails=("mul-same-node-step", "mul-same-node", "backward-reverse-order", "backward-each-node-once", *RANDOM,
               *TRAINING),
        may_fail=("backward-shared-node",), diagnoses=("accumulate-grad", "training"), intended="accumulate-grad"),
    "topo-not-reversed-set-prev": set_prev(
        "topo-not-reversed", fails=MUTANTS["topo-not-reversed"].fails, may_fail=(),
        diagnoses=("topo-order", "training"), intended="topo-order"),
    "topo-without-visited-set-prev": set_prev(
        "topo-without-visited", fails=MUTANTS["topo-without-visited"].fails - {"backward-each-node-once"}, may_fail=(),
        diagnoses=("topo-visited", "training"), intended="topo-visited"),
    "topo-preorder-forwards-set-prev": set_prev(
        "topo-preorder-forwards", fails=MUTANTS["topo-preorder-forwards"].fails, may_fail=("backward-reverse-order",),
        diagnoses=("recursion-depth", "topo-order", "training"), intended=("recursion-depth", "topo-order")),
    "topo-breadth-first-set-prev": set_prev(
        "topo-breadth-first", fails=MUTANTS["topo-breadth-first"].fails, may_fail=("backward-reverse-order",),
        diagnoses=("topo-order", "training"), intended="topo-order"),
    "recursive-topo-without-visited-set-prev": set_prev(
        "recursive-topo-without-visited",
        fails=MUTANTS["recursive-topo-without-visited"].fails - {"backward-each-node-once"}, may_fail=(),
        diagnoses=("recursion-depth", "topo-visited", "training"), intended=("recursion-depth", "topo-visited")),
    # #14 review 4 and 5: right by the numbers, and right about the code
    "backward-calls-root-only": mutant(
        "backward() seeds the root and calls only its own _backward, with no traversal",
        backward_body("        self.grad = 1.0\n        self._backward()\n"),
        fails=(
            "add-same-node", "mul-same-node", "backward-reverse-order", "backward-shared-node",
            "backward-each-node-once", "backward-reaches-every-node", "backward-distinct-equal-values",
            "backward-random-small", "backward-random-shared", "backward-random-deep", "sub-backward",
            "div-backward", "rsub-backward", "rdiv-backward", "nn-neuron-gradients", "training-loss-history",
            "training-converges", "deep-chain"),
        diagnoses=("topo-coverage", "training"), intended="topo-coverage"),
    "loop-skips-root": mutant(
        "backward() seeds the root, then its loop skips the root's own _backward (reversed(order[:-1]))",
        backward_body(edit(STACK_BACKWARD, "for node in reversed(order):", "for node in reversed(order[:-1]):")),
        fails=(
            "add-same-node", "mul-same-node", "backward-seeds-root", "backward-reverse-order",
            "backward-shared-node", "backward-each-node-once", "backward-reaches-every-node",
            "backward-distinct-equal-values", "backward-random-small", "backward-random-shared",
            "backward-random-deep", "sub-backward", "div-backward", "rsub-backward", "rdiv-backward",
            "neg-backward", "nn-neuron-gradients", "training-loss-history", "training-converges", "deep-chain"),
        diagnoses=("topo-coverage", "training"), intended="topo-coverage"),
    "add-without-backward": mutant(
        "a + b attaches no _backward, so the leaf's no-op runs",
        ("engine.py", "        out._backward = _backward\n        return out\n\n    def __mul__",
         "        return out\n\n    def __mul__"),
        fails=(
            "add-step", "add-same-node-step", "add-same-node", "backward-reverse-order",
            "backward-shared-node", "backward-each-node-once", "backward-reaches-every-node",
            "backward-distinct-equal-values", "backward-random-small", "backward-random-shared",
            "backward-random-deep", "sub-backward", "rsub-backward", "nn-neuron-gradients",
            "training-loss-history", "training-converges", "deep-chain"),
        diagnoses=("chain-rule", "training"), intended="chain-rule"),
    # The reviewer's own: the tutorial's code, = for += in add (the recursive sort fails the deep chain too).
    "tutorial-add-assigns-grad": tutorial(
        "the tutorial's style (_prev a set, recursive sort); add's _backward assigns (=) on both lines",
        TUTORIAL_ADD, TUTORIAL_ADD.replace("+=", "="),
        fails=("add-same-node-step", "add-same-node", "backward-each-node-once", *RANDOM, *TRAINING, "deep-chain"),
        may_fail=("backward-shared-node",), diagnoses=("accumulate-grad", "recursion-depth", "training"),
        intended=("accumulate-grad", "recursion-depth")),
    "tutorial-add-assigns-other-grad": tutorial(
        "the tutorial's style (_prev a set, recursive sort); add's _backward assigns (=) to other.grad only",
        TUTORIAL_ADD, TUTORIAL_ADD.replace("other.grad +=", "other.grad ="),
        fails=("add-same-node-step", "add-same-node", "backward-each-node-once", *RANDOM, "deep-chain"),
        may_fail=(), diagnoses=("accumulate-grad", "recursion-depth"), intended=("accumulate-grad", "recursion-depth")),
})


NOTEBOOK_CELLS = '''

# --- the rest of the notebook: demos, prints, a plot and the 50-epoch loop ---
import matplotlib.pyplot as plt

a = Value(2.0)
b = Value(3.0)
c = a + b
e = c**4
f = Value(6.0)
g = e / f
g.backward()
print(g, a.grad, f.grad)

random.seed(22)
model = MLP(3, [3, 3, 1])
xs = [[0.5, 0.5, 0.70], [0.4, -0.1, 0.5], [-0.2, -0.75, 1.0]]
ys = [0.0, 1.0, 0.0]
losses = []
for epoch in range(50):
    loss = sum((y - model(x)) ** 2 for x, y in zip(xs, ys))
    model.zero_grad()
    loss.backward()
    for p in model.parameters():
        p.data -= 0.01 * p.grad
    losses.append(loss.data)
    print(f"Epoch {epoch}: Loss {loss.data:.4f}")
plt.plot(losses)
plt.xlabel("epoch")
plt.show()
'''

KAHN_BACKWARD = """        parents = {}  # node -> how many parents have not passed their gradient on yet
        stack, seen = [self], {self}
        while stack:
            node = stack.pop()
            for child in node._prev:
                parents[child] = parents.get(child, 0) + 1
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        self.grad = 1.0
        ready = [self]
        while ready:
            node = ready.pop()
            node._backward()
            for child in node._prev:
                parents[child] -= 1
                if parents[child] == 0:
                    ready.append(child)
"""

DIRECT_SUB_DIV = '''    def __neg__(self):  # -self
        out = Value(-self.data, (self,), "neg")

        def _backward():
            self.grad -= out.grad

        out._backward = _backward
        return out

    def __sub__(self, other):  # self - other
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data - other.data, (self, other), "-")

        def _backward():
            self.grad += out.grad
            other.grad -= out.grad

        out._backward = _backward
        return out

    def __truediv__(self, other):  # self / other
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data / other.data, (self, other), "/")

        def _backward():
            self.grad += out.grad / other.data
            other.grad -= self.data / other.data**2 * out.grad

        out._backward = _backward
        return out

    def __radd__(self, other):  # other + self
        return self + other

    def __rmul__(self, other):  # other * self
        return self * other

    def __rsub__(self, other):  # other - self
        return Value(other) - self

    def __rtruediv__(self, other):  # other / self
        return Value(other) / self
'''


def _reference_section(start, end):
    text = reference_text("engine.py")
    return text[text.index(start):text.index(end)]


def _handout_package():
    nn = reference_text("nn.py")
    return {"__init__.py": "", "engine.py": reference_text("engine.py"), "nn.py": nn}


VARIANTS = {
    "reference": Submission("the reference itself: __slots__, _prev a tuple, an iterative topological sort"),
    "tutorial-style": Submission(
        "the tutorial's style: functions assigned onto the class, _prev a set, a recursive topological sort",
        source=TUTORIAL_STYLE, fails=frozenset({"deep-chain"}), diagnoses=frozenset({"recursion-depth"})),
    "stack-topological-order": Submission(
        "backward() sorts with an explicit stack of (node, children done) pairs",
        (backward_body(STACK_BACKWARD),)),
    "kahn-topological-order": Submission(
        "backward() counts each node's parents and runs a node once all of them are done (Kahn)",
        (backward_body(KAHN_BACKWARD),)),
    "prev-as-set": Submission(
        "_prev is a set",
        (("engine.py", "self._prev = tuple(_children)", "self._prev = set(_children)"),)),
    "direct-sub-div": Submission(
        "neg, sub and div (and their reflected forms) written directly with their own _backward",
        (("engine.py", _reference_section("    def __neg__(self):", "    def __repr__(self):"), DIRECT_SUB_DIV),)),
    "without-slots": Submission(
        "Value without __slots__",
        (("engine.py", '    __slots__ = ("data", "grad", "_prev", "_op", "_backward")\n\n', ""),)),
    "recursive-topological-sort": Submission(
        "the tutorial's recursive build_topo: fine for small graphs, only the deep chain fails",
        (backward_body(RECURSIVE_BACKWARD),),
        fails=frozenset({"deep-chain"}), diagnoses=frozenset({"recursion-depth"})),
    "recursive-sort-raised-limit": Submission(
        "the recursive build_topo with sys.setrecursionlimit(10_000) pasted above the class: the deep "
        "chain still fails, at Python's default limit",
        (backward_body(RECURSIVE_BACKWARD),
         ("engine.py", "class Value:", "import sys\nsys.setrecursionlimit(10_000)\n\n\nclass Value:")),
        fails=frozenset({"deep-chain"}), diagnoses=frozenset({"recursion-depth"})),
    "recursive-sort-limit-raised-in-backward": Submission(
        "the recursive build_topo with sys.setrecursionlimit(10_000) first thing in backward(): the deep "
        "chain still fails",
        (backward_body("        import sys\n        sys.setrecursionlimit(10_000)\n" + RECURSIVE_BACKWARD),),
        fails=frozenset({"deep-chain"}), diagnoses=frozenset({"recursion-depth"})),
    "recursive-sort-own-setter": Submission(
        "the recursive build_topo raising the limit in backward() through a reference to "
        "sys.setrecursionlimit of its own, taken at import: the deep chain still fails",
        (backward_body("        raise_limit(10_000)\n" + RECURSIVE_BACKWARD),
         ("engine.py", "class Value:", "import sys\nraise_limit = sys.setrecursionlimit\n\n\nclass Value:")),
        fails=frozenset({"deep-chain"}), diagnoses=frozenset({"recursion-depth"})),
    "relu-mask-on-input": Submission(
        "relu's mask read from the input, counting 0 as positive: (self.data >= 0) * out.grad",
        (("engine.py", "self.grad += (out.data > 0) * out.grad", "self.grad += (self.data >= 0) * out.grad"),)),
    "notebook-style": Submission(
        "a notebook's whole code: demo expressions, prints, a matplotlib plot and the 50-epoch loop",
        source=one_module() + NOTEBOOK_CELLS),
    "handout-package": Submission(
        "the handout's layout: engine.py and nn.py in a folder, nn importing from .engine",
        files=_handout_package()),
}


# --- the extension exercises (tanh, exp, log, moons): graded with every extension chosen -------
# Their module is engine.py, nn.py, train.py and moons.py joined, as a notebook with every
# extension section would be; tests/test_extensions.py runs them with EXTENSIONS_CHOSEN.

EXTENSIONS_CHOSEN = ("tanh", "exp", "log", "moons")


def extension_module(patches=()):
    """engine.py, nn.py, train.py and moons.py, patched, as one module."""
    texts = {file: reference_text(file, extensions=True) for file in ("engine.py", "nn.py", "train.py", "moons.py")}
    for file, old, new in patches:
        count = texts[file].count(old)
        if count != 1:
            raise ValueError(f"a patch of {file} matches {count} times: {old!r}")
        texts[file] = texts[file].replace(old, new)
    return "\n\n".join(
        "\n".join(line for line in texts[file].splitlines() if not line.startswith("from ."))
        for file in ("engine.py", "nn.py", "train.py", "moons.py")) + "\n"


def extension_mutant(about, *patches, fails, diagnoses):
    return Submission(about, fails=frozenset(fails), diagnoses=frozenset(diagnoses),
                      source=extension_module(patches))


EXTENSION_MUTANTS = {
    "tanh-derivative-from-input": extension_mutant(
        "tanh's _backward takes 1 - x**2 from the input instead of 1 - t**2 from the output",
        ("engine.py", "self.grad += (1 - t**2) * out.grad", "self.grad += (1 - self.data**2) * out.grad"),
        fails=("tanh-step", "tanh-negative-step", "tanh-same-node", "tanh-random", "tanh-through-exp"),
        diagnoses=("tanh-local-grad",)),
    "exp-derivative-from-input": extension_mutant(
        "exp's _backward uses the input's data instead of its own value",
        ("engine.py", "self.grad += out.data * out.grad", "self.grad += self.data * out.grad"),
        fails=("exp-step", "exp-negative-step", "exp-same-node", "exp-random", "tanh-through-exp"),
        diagnoses=("exp-local-grad",)),
    "log-without-upstream": extension_mutant(
        "log's _backward adds 1/x and forgets out.grad",
        ("engine.py", "self.grad += out.grad / self.data", "self.grad += 1 / self.data"),
        fails=("log-step", "log-small-step", "log-same-node", "log-random"),
        diagnoses=("log-local-grad", "chain-rule")),
    "tanh-without-upstream": extension_mutant(
        "tanh's _backward adds 1 - t**2 and forgets out.grad",
        ("engine.py", "self.grad += (1 - t**2) * out.grad", "self.grad += 1 - t**2"),
        fails=("tanh-step", "tanh-negative-step", "tanh-same-node", "tanh-random"),
        diagnoses=("tanh-local-grad", "chain-rule")),
    "exp-without-upstream": extension_mutant(
        "exp's _backward adds its value and forgets out.grad",
        ("engine.py", "self.grad += out.data * out.grad", "self.grad += out.data"),
        fails=("exp-step", "exp-negative-step", "exp-same-node", "exp-random", "tanh-through-exp"),
        diagnoses=("exp-local-grad", "chain-rule")),
    "tanh-assigns-grad": extension_mutant(
        "tanh's _backward assigns (=) to self.grad instead of adding (+=)",
        ("engine.py", "self.grad += (1 - t**2) * out.grad", "self.grad = (1 - t**2) * out.grad"),
        fails=("tanh-same-node", "tanh-random"),
        diagnoses=("accumulate-grad",)),
    "exp-assigns-grad": extension_mutant(
        "exp's _backward assigns (=) to self.grad instead of adding (+=)",
        ("engine.py", "self.grad += out.data * out.grad", "self.grad = out.data * out.grad"),
        fails=("exp-same-node", "exp-random"),
        diagnoses=("accumulate-grad",)),
    "log-assigns-grad": extension_mutant(
        "log's _backward assigns (=) to self.grad instead of adding (+=)",
        ("engine.py", "self.grad += out.grad / self.data", "self.grad = out.grad / self.data"),
        fails=("log-same-node", "log-random"),
        diagnoses=("accumulate-grad",)),
    "hinge-without-max": extension_mutant(
        "hinge_loss averages 1 - y * score without the max with 0",
        ("moons.py", "(1 - y * score).relu()", "(1 - y * score)"),
        fails=("moons-hinge", "moons-objective", "moons-training"),
        diagnoses=("hinge-loss", "training")),
    "l2-on-the-scores": extension_mutant(
        "moons_loss penalises the scores instead of the model's parameters",
        ("moons.py", "l2_penalty(model.parameters(), alpha)", "l2_penalty(scores, alpha)"),
        fails=("moons-objective", "moons-training"),
        diagnoses=("l2-regularisation", "training")),
    "l2-from-data": extension_mutant(
        "l2_penalty squares the parameters' .data: the right value, but a plain number with no gradient",
        ("moons.py", "return alpha * sum(p * p for p in parameters)",
         "return alpha * sum(p.data**2 for p in parameters)"),
        fails=("moons-l2", "moons-objective", "moons-training"),
        diagnoses=("l2-from-data", "training")),
    "hinge-from-data": extension_mutant(
        "hinge_loss is computed from the scores' .data: the right number, but a plain float with no gradient",
        ("moons.py", "    losses = [(1 - y * score).relu() for score, y in zip(scores, ys)]\n"
                     "    return sum(losses) * (1.0 / len(losses))",
         "    return sum(max(0.0, 1 - y * score.data) for score, y in zip(scores, ys)) / len(ys)"),
        fails=("moons-hinge", "moons-objective", "moons-training"),
        diagnoses=("loss-from-data", "training")),
    "hinge-with-pythons-max": extension_mutant(
        "hinge_loss writes max(0, 1 - y * score) with Python's max, which cannot compare a Value with 0",
        ("moons.py", "(1 - y * score).relu()", "max(0, 1 - y * score)"),
        fails=("moons-hinge", "moons-objective", "moons-training"),
        diagnoses=("hinge-loss",)),
    "moons-loss-swapped": extension_mutant(
        "moons_loss returns (accuracy, loss) instead of (loss, accuracy)",
        ("moons.py", "return total, accuracy(scores, ys)", "return accuracy(scores, ys), total"),
        fails=("moons-objective", "moons-training"),
        diagnoses=("moons-loss-order",)),
    "train-moons-climbs-the-gradient": extension_mutant(
        "train_moons adds rate * p.grad (gradient ascent) instead of subtracting it",
        ("moons.py", "p.data -= rate * p.grad", "p.data += rate * p.grad"),
        fails=("moons-training",),
        diagnoses=("update-sign",)),
    "train-moons-without-zero-grad": extension_mutant(
        "train_moons never calls model.zero_grad(): the gradients accumulate across steps",
        ("moons.py", "            model.zero_grad()\n", ""),
        fails=("moons-training",),
        diagnoses=("zero-grad",)),
    "accuracy-as-percentage": extension_mutant(
        "accuracy returns a percentage (0-100) instead of a fraction",
        ("moons.py", "for score, y in zip(scores, ys)) / len(ys)", "for score, y in zip(scores, ys)) / len(ys) * 100"),
        fails=("moons-accuracy", "moons-objective"),
        diagnoses=("accuracy-scale",)),
    "accuracy-on-raw-scores": extension_mutant(
        "accuracy compares the raw score with the label instead of its sign",
        ("moons.py", "(score.data > 0) == (y > 0)", "score.data == y"),
        fails=("moons-accuracy", "moons-objective"),
        diagnoses=("accuracy",)),
    "learning-rate-without-decay": extension_mutant(
        "learning_rate stays at 1.0 instead of decaying",
        ("moons.py", "return 1.0 - 0.9 * step / steps", "return 1.0"),
        fails=("moons-learning-rate", "moons-training"),
        diagnoses=("learning-rate",)),
    "learning-rate-for-100-steps": extension_mutant(
        "learning_rate is micrograd's demo schedule 1.0 - 0.9 * step / 100, whatever the number of steps",
        ("moons.py", "return 1.0 - 0.9 * step / steps", "return 1.0 - 0.9 * step / 100"),
        fails=("moons-learning-rate", "moons-training"),
        diagnoses=("learning-rate",)),
    "train-moons-with-the-demos-schedule": extension_mutant(
        "train_moons computes micrograd's demo schedule 1.0 - 0.9 * step / 100 itself instead of calling "
        "learning_rate",
        ("moons.py", "rate = learning_rate(step, steps)", "rate = 1.0 - 0.9 * step / 100"),
        fails=("moons-training",),
        diagnoses=("learning-rate",)),
}


def measure(folder):
    """Grade the corpus in this process (each submission written under ``folder``):
    {name: (failed check ids, diagnoses named, points earned, points possible)}."""
    from autograder import checks, inprocess

    compiled = checks.compile_checks(SEED)
    found = {}
    for name, submission in {**MUTANTS, **VARIANTS}.items():
        results = inprocess.run_directory(write(submission, Path(folder) / name), compiled)
        failed = [check["id"] for check, verdict in results if not verdict.passed]
        named = {d for _, verdict in results if not verdict.passed for d in verdict.diagnoses}
        found[name] = (failed, named, *inprocess.score(results))
    return found


def measured_markdown(found):
    """The corpus's measured rates and, per mutant, the diagnosis it must get and the one it got."""
    from autograder import checks

    points = {check["id"]: check["points"] for check in checks.compile_checks(SEED)}
    detected = [name for name in MUTANTS if any(points[c] > 0 for c in found[name][0])]
    intended = [name for name in MUTANTS if found[name][1] - OUTCOMES == MUTANTS[name].intended]
    full = [name for name in VARIANTS if found[name][2] == found[name][3]]
    lines = [
        "", "## Measured on the corpus", "",
        "Measured by grading every submission of `tests/mutants.py` in-process (`python tests/mutants.py` "
        "regenerates this file); `tests/test_mutants.py` holds each to these results.", "",
        f"- bugs detected (some check with points fails): **{len(detected)} of {len(MUTANTS)}**",
        f"- bugs given exactly their intended diagnosis (besides the outcomes {', '.join(sorted(OUTCOMES))}): "
        f"**{len(intended)} of {len(MUTANTS)}**",
        f"- correct variants at full marks: **{len(full)} of {len(VARIANTS)}**", "",
        "A failed gradient check says where, from the root down, the gradient first goes wrong (\"the "
        "gradient goes wrong at a relu() node: its output's grad is right, its input's is too large\"; "
        "public checks add the nodes and the factor). A misconception is named only when one model "
        "reproduces the numbers of every gradient check the submission ran, passed ones included, in "
        "one style of implementation; among those, the one that explains the most failed checks is "
        "named (common before rare). Hidden checks name the operator and the model's words, never "
        "an input.", "",
        "| mutant | must be diagnosed | diagnosed | points | as intended |", "| --- | --- | --- | ---: | --- |",
    ]
    for name, mutant in MUTANTS.items():
        failed, named, earned, possible = found[name]
        if mutant.may_fail:  # the points depend on the set's order: the range, which test_mutants holds it to
            earned = "–".join(f"{possible - sum(points[c] for c in lost):g}"
                              for lost in (mutant.fails | mutant.may_fail, mutant.fails))
        lines.append(f"| {name} | {', '.join(sorted(mutant.intended))} | {', '.join(sorted(named)) or '—'} | "
                     f"{earned if isinstance(earned, str) else format(earned, 'g')} / {possible:g} | "
                     f"{'yes' if name in intended else '**no**'} |")
    return "\n".join(lines) + "\n"


def measure_carried(folder, found):
    """With error carried forward (autograder/carry.py): {name: (points without, points with,
    checks with points still lost, checks carried)} of every mutant and two-mistake mutant;
    ``found``: measure()'s results, for the points without."""
    from autograder import checks, inprocess

    compiled = checks.compile_checks(SEED)
    carried = {}
    for name, submission in {**MUTANTS, **{n: s for n, (s, _) in TWO_MISTAKES.items()}}.items():
        if getattr(submission, "may_fail", ()):  # its numbers follow a set's order: no fixed row
            continue
        folder_name = Path(folder) / ("ecf-" + name.replace(" + ", "-and-"))
        results = inprocess.run_directory(write(submission, folder_name), compiled, carry_errors=True)
        without = found[name][2] if name in found else inprocess.score(inprocess.run_directory(folder_name, compiled))[0]
        still = [check["id"] for check, verdict in results if not verdict.passed and check["points"] > 0]
        kept = [check["id"] for check, verdict in results if verdict.carried]
        carried[name] = (without, inprocess.score(results)[0], still, kept)
    return carried


def carried_markdown(carried):
    """docs/checks.md's section on error carried forward: what it is, how it decides, and
    every mutant's score without and with it."""
    lines = [
        "", "## Error carried forward", "",
        "Human markers call it *error carried forward* (ECF): once a mistake is penalised where it is made, "
        "later work that is right given that mistake keeps its marks. A wrong product rule makes nearly every "
        "check fail, since everything multiplies somewhere; with ECF it costs the mul exercise, not the "
        "backward, sub/div, nn and training points of a student whose topological sort is right. It is on by "
        "default; `carry_errors = false` in the `[grading]` table of `checks.toml` turns it off, and then "
        "every check is scored on its own (the column *without* below, exactly).", "",
        "How `autograder/carry.py` decides, after every check of a submission has been judged:", "",
        "1. **The mistakes are established by their own exercise.** Each misconception model belongs to the "
        "exercise where that mistake is made (the mul models to mul, the sweep's order, seed and visited set "
        "to backward, sub/div/neg and their edges to sub-div; a mistake in every operator at once to each "
        "operator's exercise). A model is established when, in one style of implementation, it reproduces "
        "failed checks of its own exercise that are worth points, and predicts for every passed gradient "
        "check what it observed. Greedily: the model that explains the most failures of the submission "
        "first (the fewest mistakes that explain it), then one after another (several mistakes at once), "
        "until no model explains a further failure of its own exercise.",
        "2. **Every other check is judged against the carried mistakes.** A failed check of another exercise "
        "passes when its observation is what an implementation with those mistakes observes, within the "
        "usual tolerance: gradients replayed over the check's graph, the Neuron's grads over the Neuron's "
        "graph, and training's 50 losses by replaying the training loop (the MLP with known weights is a "
        "graph; 50 epochs are a loop over it). Its feedback says *right, given the mul mistake above: points "
        "kept*, and results.json records which mistakes carry it (the test's `extra_data.carried`); the "
        "class report counts carried checks.",
        "3. **What is never carried.** The checks of the mistake's own exercise (that is where it is "
        "penalised); a check whose probe crashed or whose observation no model reproduces (an unknown bug "
        "carries nothing); and `training-converges`, an outcome: a network that does not train below the "
        "threshold does not, whatever the reason, so a mistake that really stops training costs that check "
        "too. Carrying only turns failures into passes, so nothing scores more than correct code.", "",
        "Known limit: two mistakes that observe exactly like one (a sum rule in mul plus a sign error in a "
        "directly written a - b look like a composed a - b with that mul) are carried as the one.", "",
        "| mutant | points without ECF | with ECF | checks with points still lost | checks carried |",
        "| --- | ---: | ---: | --- | ---: |",
    ]
    for name, (without, with_ecf, still, kept) in carried.items():
        lines.append(f"| {name} | {without:g} | {with_ecf:g} | {', '.join(f'`{c}`' for c in still) or '—'} | "
                     f"{len(kept)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import contextlib
    import io
    import os
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    os.environ.setdefault("MPLBACKEND", "Agg")  # the notebook variant plots
    from autograder import checks

    with tempfile.TemporaryDirectory() as folder:
        with contextlib.redirect_stdout(io.StringIO()):  # what the corpus prints is not the page
            found = measure(folder)
            carried = measure_carried(folder, found)
    sys.stdout.write(checks.markdown(MUTANTS, VARIANTS, extension_mutants=EXTENSION_MUTANTS)
                     + measured_markdown(found) + carried_markdown(carried))
