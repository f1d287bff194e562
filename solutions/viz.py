"""Pictures: the computation graph behind a Value, and the loss curve of a training run.

graphviz and matplotlib (the ``viz`` extra) are imported inside the functions, so that
``import solutions`` stays light for graders and students who never draw anything.
"""


def draw_graph(root):
    """Return a left-to-right ``graphviz.Digraph`` of every Value ``root`` depends on.

    Each Value is a record ``{ data | grad }`` (4 significant digits); a Value made by an
    operator gets a small oval node with the operator's label between it and its children.
    Building the graph needs only the ``graphviz`` package; ``.source`` is its DOT text,
    while ``.render``/``.pipe`` and inline display in Jupyter need the ``dot`` program.
    """
    from graphviz import Digraph

    graph = Digraph(graph_attr={"rankdir": "LR"}, node_attr={"fontname": "Helvetica"})
    seen, stack = {id(root)}, [root]
    while stack:  # a loop, not recursion: graphs can be deeper than Python's recursion limit
        node = stack.pop()
        name = str(id(node))
        graph.node(name, f"{{ data {node.data:.4g} | grad {node.grad:.4g} }}", shape="record")
        op = getattr(node, "_op", "")
        if op:
            graph.node(name + op, op, shape="oval")
            graph.edge(name + op, name)
        for child in node._prev:
            graph.edge(str(id(child)), name + op)
            if id(child) not in seen:
                seen.add(id(child))
                stack.append(child)
    return graph


def plot_losses(history, path):
    """Write the loss curve (epoch against loss) as an image to ``path``; return ``path``."""
    # A bare Figure with an Agg canvas: no pyplot, no GUI backend, no global state touched.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4), layout="tight")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(range(len(history)), history, marker=".")
    axes.set(title="Training loss", xlabel="epoch", ylabel="loss (sum of squared errors)")
    axes.xaxis.get_major_locator().set_params(integer=True)  # epochs are whole numbers
    figure.savefig(path)
    return path
# BEGIN EXTENSION moons


def plot_boundary(model, xs, ys, path, resolution=60):
    """Write the model's decision boundary on the plane of the points as an image to ``path``:
    the region where the score is positive in one colour, negative in the other, and the
    points (``xs``: [x1, x2] each, ``ys``: -1 or +1) on top; return ``path``. The score is
    taken on a ``resolution`` x ``resolution`` grid of plain numbers (no gradients kept)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    x1s, x2s = [x[0] for x in xs], [x[1] for x in xs]
    low1, high1, low2, high2 = min(x1s) - 0.5, max(x1s) + 0.5, min(x2s) - 0.5, max(x2s) + 0.5
    grid1 = [low1 + (high1 - low1) * i / (resolution - 1) for i in range(resolution)]
    grid2 = [low2 + (high2 - low2) * j / (resolution - 1) for j in range(resolution)]
    scores = [[1.0 if model([a, b]).data > 0 else -1.0 for a in grid1] for b in grid2]

    figure = Figure(figsize=(6, 5), layout="tight")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.contourf(grid1, grid2, scores, levels=[-2, 0, 2], colors=["#f4c7c3", "#c6dbef"])
    axes.scatter(x1s, x2s, c=["#2171b5" if y > 0 else "#cb181d" for y in ys], s=20, edgecolors="black")
    axes.set(title="Decision boundary of MLP(2, [16, 16, 1])", xlabel="x1", ylabel="x2")
    figure.savefig(path)
    return path
# END EXTENSION
