"""The nbgrader and otter walk-throughs of docs/nbgrader-otter.md, run as written with the
tools installed here (slow: each tool runs a real kernel)."""
import os
import sys
from pathlib import Path

import pytest

import documented
from documented import assert_ran, bash

TOOLS = documented.REPO / "docs" / "nbgrader-otter.md"
REPO = documented.REPO


def tools_env():
    """This suite's environment, the tools' scripts on PATH (nbgrader calls alembic)."""
    return {**os.environ, "PYTHONPATH": str(REPO),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def walk_through(block, tool):
    """A walk-through block of docs/nbgrader-otter.md; `autodiff101` is this checkout's."""
    return block.replace("autodiff101 export", f"{sys.executable} -m autograder.cli export")


@pytest.mark.slow
@pytest.mark.nbgrader
def test_the_nbgrader_walk_through_runs_as_written(tmp_path):
    pytest.importorskip("nbgrader.api", reason="nbgrader is not installed; install autodiff101[nbgrader]")
    (block,) = [b for b in documented.code_blocks(TOOLS.read_text()) if "nbgrader autograde" in b]
    placeholder = next(line for line in block.splitlines() if line.startswith("# ... collect"))
    # The one step the docs leave to the instructor: a student hands in the released notebook.
    collect = ("mkdir -p submitted/alice/autodiff101 && "
               "cp release/autodiff101/autodiff101.ipynb submitted/alice/autodiff101/")
    result = bash(walk_through(block.replace(placeholder, collect), "nbgrader"), tmp_path, tools_env())
    assert_ran(result, block)
    grades = (tmp_path / "course" / "grades.csv").read_text().splitlines()
    assert grades[0].startswith("student,score,max_score,") and grades[1].startswith("alice,")


@pytest.mark.slow
@pytest.mark.otter
def test_the_otter_walk_through_runs_as_written(tmp_path):
    pytest.importorskip("otter", reason="otter-grader is not installed; install autodiff101[otter]")
    (block,) = [b for b in documented.code_blocks(TOOLS.read_text()) if "otter run" in b]
    run_line = next(line for line in block.splitlines() if "otter run" in line)
    # The one file the docs assume: a student's notebook (the untouched one) next to dist/.
    handed_in = "cp dist/student/autodiff101.ipynb some-student.ipynb\n"
    result = bash(walk_through(block.replace(run_line, handed_in + run_line), "otter"), tmp_path, tools_env())
    assert_ran(result, block)
    assert (tmp_path / "otter" / "out" / "results.json").is_file()
