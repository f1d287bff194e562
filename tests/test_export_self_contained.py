"""The exported notebooks run their test cells with nothing installed: their set-up cell unpacks a
copy of the checks (never the kit, which holds the reference solution)."""
import json
import subprocess
import sys

import nbformat
import pytest

from autograder import handout
from autograder.checks import compile_checks
from autograder.platforms import nbgrader as nbgrader_export
from autograder.platforms import otter as otter_export
from autograder.platforms import export_source as source

COMPILED = compile_checks(seed=5)
# Runs the code cells of a notebook in order in one namespace, as a kernel does, in a Python
# started with -I -S: no site-packages (so neither the kit nor nbformat), no PYTHONPATH.
RUNNER = """\
import json, sys
cells = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}
for number, source in enumerate(cells):
    try:
        exec(compile(source, f"cell {number}", "exec"), namespace)
    except AssertionError as error:
        print("FAILED", str(error).splitlines()[0])
    except Exception as error:
        print("RAISED", number, type(error).__name__, error)
print("ran", len(cells))
"""


def run_isolated(cells, tmp_path):
    (tmp_path / "cells.json").write_text(json.dumps(cells))
    (tmp_path / "runner.py").write_text(RUNNER)
    result = subprocess.run([sys.executable, "-I", "-S", "runner.py", "cells.json"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)  # wide: a busy machine
    assert result.returncode == 0 and f"ran {len(cells)}" in result.stdout, result.stderr[-3000:]
    return result.stdout


def code_cells(nb):
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


def test_the_setup_cell_carries_no_reference_and_no_kit_import():
    setup = source.kernel_setup_source()
    assert "from autograder" not in setup and "import autograder" not in setup
    sources = handout.reference_sources()
    secrets = handout.solution_lines(sources)
    assert not [line for line in secrets if line in setup]


def test_the_nbgrader_notebook_passes_every_test_cell_without_the_kit(tmp_path):
    nb = nbgrader_export.source_notebook(COMPILED)  # the solutions in place: every check passes
    setup = nb.cells[[c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells].index("setup")]
    assert setup.metadata["jupyter"]["source_hidden"] and setup.metadata["cellView"] == "form"
    out = run_isolated(code_cells(nb), tmp_path)
    assert "FAILED" not in out and "NameError" not in out, out


def test_the_nbgrader_notebook_with_a_todo_fails_its_tests_without_the_kit(tmp_path):
    nb = nbgrader_export.source_notebook(COMPILED)
    cells = code_cells(nb)
    add = next(i for i, text in enumerate(cells) if "def __add__" in text)
    begin, end = cells[add].index(nbgrader_export.BEGIN), cells[add].index(nbgrader_export.END)
    indent = cells[add][:begin].rsplit("\n", 1)[1]
    cells[add] = (cells[add][:begin] + 'raise NotImplementedError("not written yet")\n' + indent
                  + "# removed" + cells[add][end + len(nbgrader_export.END):])
    out = run_isolated(cells, tmp_path)
    assert "FAILED check add-" in out, out


def test_the_otter_notebook_passes_every_test_without_the_kit(tmp_path):
    nb, _ = otter_export.master_notebook(COMPILED, "autodiff101")
    cells = code_cells(nb)
    assert any(text.startswith("#@title The course's checks") for text in cells)
    out = run_isolated(cells, tmp_path)
    raised = [line for line in out.splitlines() if line.startswith("RAISED")
              and "No module named 'IPython'" not in line]  # a kernel has IPython; this runner does not
    assert "FAILED" not in out and not raised, out


@pytest.mark.parametrize("build", ["nbgrader", "otter"])
def test_the_exported_notebook_is_valid_with_the_folded_setup_cell(build):
    nb = nbgrader_export.source_notebook(COMPILED) if build == "nbgrader" else \
        otter_export.master_notebook(COMPILED, "autodiff101")[0]
    nbformat.validate(nb)


def test_the_handout_notebooks_long_setup_cell_starts_folded_in_jupyter_and_colab():
    nb = nbformat.reads(handout.handout_files()[handout.NOTEBOOK], as_version=4)
    (setup,) = [cell for cell in nb.cells if cell.cell_type == "code" and "_self_check(" in cell.source]
    assert setup.metadata["jupyter"]["source_hidden"] is True
    # Colab folds a cell shown as a form, titled by its first #@title line; it ignores source_hidden.
    assert setup.metadata["cellView"] == "form" and setup.source.startswith("#@title ")
