"""The example submissions a bare ``autodiff101 grade`` grades.

They are made on demand from the reference (``solutions/``) and the handout
(``assignments/``), each buggy one by a small patch, so the reference's text lives in one
place and the examples can never drift from it. ``write_examples(folder)`` writes:

- ``reference/`` and ``handout/``: the handout's package layout (``engine.py`` + ``nn.py``),
  solved and untouched (the handout only once ``autodiff101 build`` has made it);
- one-file ``.py`` submissions, each with one bug students really write, and the demo
  code students leave at the top level;
- ``student-notebook.ipynb``: a correct notebook full of what notebooks hold around the code
  (``%matplotlib inline``, ``!pip install``, prints, a 50-epoch training loop, a plot);
- ``syntax-error.py``: a submission that does not parse.
"""
import importlib.util
from pathlib import Path

PACKAGE_FILES = ("engine.py", "nn.py")

# name -> (what is wrong, [(reference text, replacement)])
BUGS = {
    "add-assigns-grad": (
        "add's _backward assigns the gradient (=) instead of accumulating it (+=)",
        [("self.grad += out.grad\n            other.grad += out.grad",
          "self.grad = out.grad\n            other.grad = out.grad")],
    ),
    "topo-not-reversed": (
        "backward() calls _backward in topological order instead of reversed",
        [("for node in reversed(order):", "for node in order:")],
    ),
    "mul-forgets-upstream": (
        "mul's _backward leaves out out.grad (the chain rule's upstream factor)",
        [("self.grad += other.data * out.grad\n            other.grad += self.data * out.grad",
          "self.grad += other.data\n            other.grad += self.data")],
    ),
    "syntax-error": (
        "a colon missing after def relu(self)",
        [("def relu(self):", "def relu(self)")],
    ),
}

# What students leave at the top level of a .py file: demos and prints (DESIGN §2's figures).
DEMO = '''

# --- trying it out -------------------------------------------------------------------
a = Value(2.0)
b = Value(3.0)
c = a + b
e = c**4
f = Value(6.0)
g = e / f
g.backward()
print("g =", g)
print("a.grad =", a.grad, "b.grad =", b.grad)

model = MLP(3, [3, 3, 1])
print("parameters:", len(model.parameters()))
'''

TRAINING = '''\
random.seed(22)
xs = [[0.5, 0.5, 0.70], [0.4, -0.1, 0.5], [-0.2, -0.75, 1.0]]
ys = [0.0, 1.0, 0.0]
model = MLP(3, [3, 3, 1])
losses = []
for epoch in range(50):
    loss = sum((y - model(x)) ** 2 for x, y in zip(xs, ys))
    model.zero_grad()
    loss.backward()
    for p in model.parameters():
        p.data -= 0.01 * p.grad
    losses.append(loss.data)
    print(f"Epoch {epoch}: Loss {loss.data:.4f}")
'''


def package_folder(name):
    """Where an installed package's files are, or None."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def reference_sources():
    folder = package_folder("solutions")
    return {name: (folder / name).read_text(encoding="utf-8") for name in PACKAGE_FILES}


def one_module(sources=None):
    """engine.py then nn.py as one module, the way a student's single file holds them."""
    sources = sources or reference_sources()
    nn = sources["nn.py"].replace("from .engine import Value\n", "")
    return sources["engine.py"] + "\n\n" + nn


def patched(text, replacements):
    """``text`` with each (old, new) applied; each old must occur exactly once, so a change
    to the reference that breaks a patch fails loudly instead of making a correct example."""
    for old, new in replacements:
        count = text.count(old)
        if count != 1:
            raise ValueError(f"an example's patch matches {count} times, not once: {old!r}")
        text = text.replace(old, new)
    return text


def notebook_text(sources):
    """A student's notebook around the reference's modules: magics, shell lines, prints,
    a training loop and a plot."""
    import nbformat

    engine, nn = sources["engine.py"], sources["nn.py"].replace("from .engine import Value\n", "")
    code = nbformat.v4.new_code_cell
    cells = [
        nbformat.v4.new_markdown_cell("# Backpropagation from scratch\nMy notebook for the autodiff assignment."),
        code("%matplotlib inline\n!pip install graphviz\nimport random\nimport matplotlib.pyplot as plt"),
        code(engine),
        code("a = Value(2.0)\nb = Value(-3.0)\nc = a * b + 1\nc.backward()\nprint(c, a.grad, b.grad)"),
        code(nn),
        code(TRAINING),
        code('plt.plot(losses)\nplt.xlabel("epoch")\nplt.ylabel("loss")\nplt.show()'),
        code("%%time\nprint(model(xs[0]))"),
    ]
    notebook = nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    return nbformat.writes(notebook)


def write_examples(folder):
    """Write the bundled examples into ``folder`` (one submission per entry); return it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    reference = reference_sources()
    _write_package(folder / "reference", reference)
    handout = package_folder("assignments")
    if handout and all((handout / name).is_file() for name in PACKAGE_FILES):
        _write_package(folder / "handout", {n: (handout / n).read_text(encoding="utf-8") for n in PACKAGE_FILES})
    module = one_module(reference)
    for name, (_, replacements) in BUGS.items():
        (folder / f"{name}.py").write_text(patched(module, replacements) + DEMO, encoding="utf-8")
    (folder / "student-notebook.ipynb").write_text(notebook_text(reference), encoding="utf-8")
    return folder


def _write_package(folder, sources):
    folder.mkdir(exist_ok=True)
    for name, text in sources.items():
        (folder / name).write_text(text, encoding="utf-8")
