"""Pictures: the computation graph (graphviz) and the loss curve (matplotlib)."""
import re
import shutil
import subprocess
import sys

import pytest

from solutions.engine import Value
from solutions.train import collector_paused
from solutions.viz import draw_graph, plot_losses

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot program is not installed")


def _seed_expression():
    a, b, f = Value(2.0), Value(3.0), Value(6.0)
    g = (a + b) ** 4 / f
    g.backward()
    return g


def _reachable(root):
    seen, stack = {id(root): root}, [root]
    while stack:
        for child in stack.pop()._prev:
            if id(child) not in seen:
                seen[id(child)] = child
                stack.append(child)
    return list(seen.values())


def test_dot_source_shows_every_node_data_and_grad():
    g = _seed_expression()
    source = draw_graph(g).source
    records = re.findall(r'label="\{ data (\S+) \| grad (\S+) \}"', source)
    expected = sorted((f"{n.data:.4g}", f"{n.grad:.4g}") for n in _reachable(g))
    assert sorted(records) == expected
    assert ("104.2", "1") in records and ("2", "83.33") in records and ("6", "-17.36") in records


def test_dot_source_labels_every_operator_left_to_right():
    source = draw_graph(_seed_expression()).source
    assert "rankdir=LR" in source
    ops = sorted(re.findall(r'label="([^"{]+)" shape=oval', source))
    assert ops == sorted(["+", "**4", "**-1", "*"])


def test_a_node_used_twice_is_drawn_once_with_two_edges():
    a = Value(3.0)
    source = draw_graph(a + a).source
    assert source.count("data 3 |") == 1
    assert source.count(f'{id(a)} -> "') == 2


def test_draw_graph_handles_graphs_deeper_than_the_recursion_limit():
    with collector_paused():
        node = Value(1.0)
        for _ in range(sys.getrecursionlimit() + 500):
            node = node.relu()
    assert draw_graph(node).source.count("shape=record") == sys.getrecursionlimit() + 501


def test_dot_source_needs_no_dot_program(monkeypatch):
    monkeypatch.setenv("PATH", "")
    assert "digraph" in draw_graph(_seed_expression()).source


@needs_dot
def test_graph_renders_to_svg_and_inline_in_jupyter():
    graph = draw_graph(_seed_expression())
    svg = graph.pipe(format="svg").decode()
    assert "<svg" in svg and "83.33" in svg
    # Jupyter displays an object through _repr_mimebundle_; a Digraph returns SVG there.
    bundle = graph._repr_mimebundle_()
    assert "<svg" in bundle["image/svg+xml"]


def test_plot_losses_writes_a_png(tmp_path):
    path = tmp_path / "loss.png"
    assert plot_losses([0.9, 0.5, 0.3, 0.25], path) == path
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000


def test_importing_solutions_loads_neither_graphviz_nor_matplotlib():
    code = "import sys, solutions, solutions.viz; print('graphviz' in sys.modules, 'matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
