"""The notebook handout, executed in a real Jupyter kernel (nbclient + ipykernel).

The solution version (same generator, reference code instead of TODOs) must run top to
bottom and draw the loss curve; the handout version must stop at the first TODO.
"""
import json
import re

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from autograder import handout, notebook

pytestmark = pytest.mark.notebook


@pytest.fixture(scope="module")
def public_checks():
    return handout.public_checks()


def write_handout(folder, public_checks, solved):
    handout.write_files(folder, handout.handout_files(checks=public_checks, solved=solved))
    return folder / handout.NOTEBOOK


def execute(path):
    """Run every cell in a fresh kernel with the notebook's folder as working directory."""
    book = nbformat.read(path, as_version=4)
    client = NotebookClient(book, timeout=60, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    except CellExecutionError as error:
        return book, error
    return book, None


def outputs(book, kind):
    return [output for cell in book.cells if cell.cell_type == "code"
            for output in cell.get("outputs", []) if output.output_type == kind]


def text_of(cell):
    return "".join(output.get("text", "") + json.dumps(output.get("data", {}))
                   for output in cell.get("outputs", []))


@pytest.fixture(scope="module")
def solution_run(tmp_path_factory, public_checks):
    """The solution notebook executed once; (folder, executed notebook, error or None)."""
    folder = tmp_path_factory.mktemp("solved")
    book, error = execute(write_handout(folder, public_checks, solved=True))
    return folder, book, error


def test_solution_notebook_runs_top_to_bottom_and_draws_the_loss_curve(solution_run):
    tmp_path, book, error = solution_run

    assert error is None, error
    assert not outputs(book, "error")
    assert (tmp_path / "loss_curve.png").stat().st_size > 1000
    assert any("image/png" in output.data for output in outputs(book, "display_data")
               + outputs(book, "execute_result"))
    assert any("image/svg+xml" in output.data for output in outputs(book, "execute_result")
               + outputs(book, "display_data"))  # the computation graph


def test_solution_notebook_check_cells_all_pass(solution_run, public_checks):
    _, book, error = solution_run

    assert error is None, error
    check_cells = [cell for cell in book.cells if notebook.CHECK_TAG in cell.metadata.get("tags", [])
                   and cell.source.startswith("check(")]
    assert len(check_cells) >= len(handout.exercises(handout.reference_sources()))
    for cell in check_cells:
        shown = text_of(cell)
        assert re.search(r"public checks? pass", shown), cell.source
        assert "failed" not in shown and "not implemented yet" not in shown, (cell.source, shown)
    last = text_of(check_cells[-1])
    assert f"{len(public_checks)} of {len(public_checks)} public checks pass" in last


def test_handout_notebook_stops_at_the_first_todo(tmp_path, public_checks):
    path = write_handout(tmp_path, public_checks, solved=False)
    book, error = execute(path)

    assert error is not None
    assert error.ename == "NotImplementedError"
    assert "exercise add" in error.evalue
    # Every cell before the first TODO's demo ran; the demo is the cell that stopped.
    first_todo = next(i for i, cell in enumerate(book.cells) if notebook.todo_exercise(cell.source))
    assert notebook.todo_exercise(book.cells[first_todo].source) == "add"
    stopped = [i for i, cell in enumerate(book.cells)
               if any(output.output_type == "error" for output in cell.get("outputs", []))]
    assert stopped == [first_todo + 1]
    assert all(cell.get("execution_count") for cell in book.cells[:first_todo + 1] if cell.cell_type == "code")


def test_handout_notebook_is_the_stubbed_modules_cut_into_cells(public_checks):
    """Every line of engine.py's class and the nn classes appears in the notebook: one source."""
    files = handout.handout_files(checks=public_checks)
    code = "\n".join(cell.source for cell in nbformat.reads(files[handout.NOTEBOOK], as_version=4).cells
                     if cell.cell_type == "code")
    for module in ("engine.py", "nn.py", "train.py", "viz.py"):
        for piece in notebook.pieces(files[module], module).values():
            assert piece in code, piece[:80]
    todos = [notebook.todo_exercise(cell) for cell in code.split("\n\n\n")]
    assert [name for name in todos if name] == handout.exercises(handout.reference_sources())


def test_each_todo_cell_is_followed_by_a_demo_and_a_check_cell(public_checks):
    files = handout.handout_files(checks=public_checks)
    cells = nbformat.reads(files[handout.NOTEBOOK], as_version=4).cells
    for i, cell in enumerate(cells):
        exercise = notebook.todo_exercise(cell.source)
        if exercise:
            following = [c.source for c in cells[i + 1:i + 5] if c.cell_type == "code"]
            assert f"check({exercise!r})" in following, exercise


def test_the_notebook_is_deterministic_and_valid(public_checks):
    first = handout.handout_files(checks=public_checks)[handout.NOTEBOOK]
    second = handout.handout_files(checks=public_checks)[handout.NOTEBOOK]
    assert first == second
    nbformat.validate(nbformat.reads(first, as_version=4))


def test_a_helper_the_plan_does_not_name_is_defined_before_its_use():
    source = '''
def helper():
    return 1


def draw_graph(root):
    return helper()


def plot_losses(history, path):
    return path
'''
    engine = "class Value:\n    def __init__(self, data):\n        self.data = data\n\n    def backward(self):\n        pass\n"
    book = notebook.build({"engine.py": engine, "viz.py": source, "train.py": "def train():\n    pass\n"}, [])
    code = "\n".join(cell.source for cell in book.cells if cell.cell_type == "code")
    assert code.count("def helper") == 1
    assert code.index("def helper") < code.index("def draw_graph") < code.index("def plot_losses") or \
        code.index("def plot_losses") < code.index("def helper") < code.index("def draw_graph")


def test_the_notebook_opened_alone_still_runs_its_self_check(tmp_path, public_checks):
    """Uploaded to Colab or a JupyterHub without its folder: the check cells unpack the
    checker the notebook carries."""
    alone = tmp_path / "uploads"
    alone.mkdir()
    path = alone / handout.NOTEBOOK
    path.write_text(handout.handout_files(checks=public_checks, solved=True)[handout.NOTEBOOK])

    book, error = execute(path)

    assert error is None, error
    assert sorted(p.name for p in alone.iterdir()) == [handout.NOTEBOOK, "loss_curve.png"]  # nothing unpacked here
    last = text_of([cell for cell in book.cells if cell.source == "check()"][-1])
    assert f"{len(public_checks)} of {len(public_checks)} public checks pass" in last
    assert "No self-check here" not in "".join(text_of(cell) for cell in book.cells)


def test_the_notebook_carries_the_checker_and_its_data_as_built():
    files = handout.handout_files()
    setup = nbformat.reads(files[handout.NOTEBOOK], as_version=4).cells[1]
    carried = {path: text for path, text in files.items() if path.startswith("checker/") or path.endswith(".json")}
    for path, text in carried.items():
        assert f"{json.dumps(path)}: {json.dumps(text)}" in setup.source, path
    assert notebook.CHECK_TAG in setup.metadata["tags"]  # the grader and the self-check skip it


def test_the_handout_cells_that_only_draw_are_tagged_not_graded_and_define_nothing_graded():
    from autograder import load, probes

    assert notebook.NOT_GRADED_TAG == load.NOT_GRADED_TAG
    book = nbformat.reads(handout.handout_files()[handout.NOTEBOOK], as_version=4)
    code = [cell for cell in book.cells if cell.cell_type == "code"]
    drawing = [cell for cell in code if re.search(r"\b(plot_losses|plot_boundary|draw_graph)\(", cell.source)
               and not re.search(r"^def ", cell.source, re.M)]
    tagged = [cell for cell in code if notebook.NOT_GRADED_TAG in cell.metadata.get("tags", [])]
    assert drawing and tagged == drawing
    for cell in tagged:
        assert not set(re.findall(r"^(?:def|class) (\w+)", cell.source, re.M)) & set(probes.NAMES + probes.EXTENSION_NAMES)


def test_without_matplotlib_the_plot_cell_says_what_to_install_and_the_notebook_goes_on(
        tmp_path, public_checks, monkeypatch):
    hidden = tmp_path / "no-matplotlib"
    hidden.mkdir()
    (hidden / "matplotlib.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'matplotlib'\", name='matplotlib')\n")
    monkeypatch.setenv("PYTHONPATH", str(hidden))  # the kernel inherits it
    folder = tmp_path / "hw"
    folder.mkdir()

    book, error = execute(write_handout(folder, public_checks, solved=True))

    assert error is None, error
    plot = next(cell for cell in book.cells if "Image(plot_losses(history" in cell.source)
    assert "No picture: matplotlib is not installed. Run `%pip install matplotlib`" in text_of(plot)
    last = text_of([cell for cell in book.cells if cell.source == "check()"][-1])
    assert f"{len(public_checks)} of {len(public_checks)} public checks pass" in last
