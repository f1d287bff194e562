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
