"""Shared fixtures: submissions built from the reference plus one patch, so that a test's
bug reads in one line (``("self.grad += out.grad", "self.grad = out.grad")``)."""
import json
from pathlib import Path

import pytest

from autograder import examples, sandbox
from autograder.sandbox import Limits

# The patches tests use most; each matches the reference exactly once (examples.patched checks).
ASSIGN_INSTEAD_OF_ADD = examples.BUGS["add-assigns-grad"][1][0]
BACKWARD = "    def backward(self):\n"


def in_backward(statement):
    """A patch that runs ``statement`` first thing in Value.backward()."""
    return (BACKWARD, BACKWARD + f"        {statement}\n")


def write_submission(folder, name, *patches, before="", after="", suffix=".py"):
    """The reference as one module, patched, with code ``before`` and ``after`` it; as a
    .py file or as a notebook (one cell per part). Returns the path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    module = examples.patched(examples.one_module(), patches)
    path = folder / f"{name}{suffix}"
    if suffix == ".ipynb":
        path.write_text(notebook([before, module, after]))
    else:
        path.write_text(before + module + after)
    return path


def notebook(cells, tags=None):
    """A notebook whose code cells are ``cells`` (empty ones left out); ``tags`` maps a
    cell's index to its tags."""
    import nbformat

    made = [nbformat.v4.new_markdown_cell("# A student's notebook")]
    for index, source in enumerate(cells):
        cell = nbformat.v4.new_code_cell(source)
        if tags and index in tags:
            cell.metadata["tags"] = tags[index]
        made.append(cell)
    return nbformat.writes(nbformat.v4.new_notebook(cells=made))


@pytest.fixture
def make_submission(tmp_path):
    """make_submission(name, *patches, before="", after="", suffix=".py") -> path under
    tmp_path/submissions."""

    def make(name, *patches, **options):
        return write_submission(tmp_path / "submissions", name, *patches, **options)

    return make


@pytest.fixture(scope="session")
def level():
    """The strongest isolation level this machine offers (what `autodiff101 grade` uses)."""
    chosen = sandbox.strongest_level()
    if chosen != "bubblewrap":
        print(f"\nnote: grading tests run at {chosen!r}: {sandbox.level_problem('bubblewrap')}")
    return chosen


# Short enough to keep the suite fast, long enough for an honest submission on a busy machine.
FAST = Limits(load_timeout=10.0, submission_timeout=6.0)


def read_json(path):
    return json.loads(Path(path).read_text())


# backward() as a student who skips the closures writes it (issue 13, row 14): the topological
# order, then each core operator's chain rule applied from its _op. Patches for BACKWARD.
TOPO_ORDER = """        order, seen = [], set()

        def visit(node):
            if id(node) not in seen:
                seen.add(id(node))
                for child in node._prev:
                    visit(child)
                order.append(node)

        visit(self)
"""
CHAIN_RULE_FROM_OP = """        self.grad = 1.0
        for node in reversed(order):
            x = node._prev
            if node._op == "+":
                x[0].grad += node.grad
                x[1].grad += node.grad
            elif node._op == "*":
                x[0].grad += x[1].data * node.grad
                x[1].grad += x[0].data * node.grad
            elif node._op.startswith("**"):
                k = float(node._op[2:])
                x[0].grad += k * x[0].data ** (k - 1) * node.grad
            elif node._op == "ReLU":
                x[0].grad += (node.data > 0) * node.grad
"""
