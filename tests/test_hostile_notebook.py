"""A notebook's code is parsed within bounds (third review): the grading process parses at
most PARSE_IN_PROCESS_BYTES of a notebook's code, the rest goes to the bounded
child; and what a notebook's JSON can hold that Python refuses in code (a NUL, half a
surrogate pair, an integer past Python's digit limit) is said in the student's terms: the
notebook, the cell, the line."""
import json
import resource

import pytest

from autograder import handout, load, probes
from autograder.load import PARSE_CHILD_LIMITS, PARSE_IN_PROCESS_BYTES

from conftest import notebook


def cpu_seconds():
    """CPU time of this process alone (its children, the bounded ones, are not counted)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def raw_notebook(sources, execution_count=None):
    """A v4 notebook's JSON, written by hand (``json`` escapes what nbformat's writer, which
    encodes to UTF-8, cannot hold): one code cell per source."""
    cells = [{"cell_type": "code", "metadata": {}, "source": source, "outputs": [],
              "execution_count": execution_count} for source in sources]
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells})


def fstring_cell(size):
    """One statement of ``size`` bytes that Python 3.11 parses in quadratic time: a
    127 KB one took 1.2 s."""
    return "_x = f'" + "{a}" * (size // 3) + "'\n"


def test_a_notebook_of_costly_fstrings_costs_the_grading_process_little_cpu(tmp_path, monkeypatch):
    """The reviewer's notebook: forty cells of one 127 KB f-string each, 5 MB of code. Each
    cell was parsed here to tell plain Python from IPython: 46 s of this process's CPU, under
    the AST lock, for one submission. Now all of it is parsed in the bounded child, which
    gives up; the load error names the notebook, not "submission.py"."""
    # The child's CPU limit lowered so that the test waits 2 s for it, not 10: what is pinned
    # is where the cost falls and what the student reads, not the limit's value.
    monkeypatch.setitem(PARSE_CHILD_LIMITS, "cpu_seconds", 2)
    path = tmp_path / "fstr.ipynb"
    path.write_text(raw_notebook([fstring_cell(127 * 1024)] * 40))
    before = cpu_seconds()
    submission = load.load(path)
    spent = cpu_seconds() - before
    assert submission.status == "load-error", submission.message
    assert submission.message.startswith(
        "the code cells of fstr.ipynb cannot be parsed: parsing it takes more than the grader "
        "allows (1024 MB of memory, 2 s of CPU)"), submission.message
    assert "submission.py" not in submission.message
    assert spent < 3, spent  # CPU of this process, not wall-clock; measured 0.05 s (46 s before)


def test_a_notebook_over_the_in_process_bound_is_parsed_only_in_the_child(tmp_path, monkeypatch):
    """Three 40 KB f-string cells and a magic cell (over PARSE_IN_PROCESS_BYTES):
    they load as they did, magics turned into Python, but this process parses none of it."""
    def no_parse_here(*args, **kwargs):
        raise AssertionError("parsed in the grading process")

    monkeypatch.setattr(load, "parse", no_parse_here)
    cells = [fstring_cell(40 * 1024)] * 3 + ["!echo hi\ny = 1"]
    assert sum(map(len, cells)) > PARSE_IN_PROCESS_BYTES
    path = tmp_path / "large.ipynb"
    path.write_text(notebook(cells))
    submission = load.load(path)
    assert submission.ok, submission.message
    module = submission.sources[probes.MODULE]
    assert module.count("_x = f'{a}") == 3 and "get_ipython().system('echo hi')\ny = 1\n" in module
    assert submission.where(probes.MODULE, module.count("\n")) == "cell 4, line 2"


def test_a_syntax_error_in_a_large_notebook_is_placed_in_its_cell(tmp_path):
    cells = ["x = 1\n" * (PARSE_IN_PROCESS_BYTES // 6), "y = 2", "def f(:\n    pass"]
    path = tmp_path / "large.ipynb"
    path.write_text(notebook(cells))
    submission = load.load(path)
    assert submission.status == "load-error"
    assert submission.message.startswith("syntax error at cell 3, line 1: "), submission.message


@pytest.mark.parametrize("chosen", [None, "all"], ids=["core", "all-exercises"])
def test_the_solved_handout_notebook_loads_without_any_child(tmp_path, monkeypatch, chosen):
    """The handout's own notebook, solved, is far under every bound: read and parsed here,
    no child process started (each costs about 0.1 s and a Python start-up)."""
    def no_child(task, payload):
        raise AssertionError(f"a child was started for {task}")

    monkeypatch.setattr(load, "in_child", no_child)
    path = tmp_path / "autodiff101.ipynb"
    path.write_text(handout.handout_files(solved=True, chosen=chosen)[handout.NOTEBOOK])
    submission = load.load(path)
    assert submission.ok, submission.message
    assert "class Value" in submission.sources[probes.MODULE]


# A cell of the handout's kind, with a refused character on its second line.
NUL_CELL = "def f(x):\n    return x\0 + 1\n"
SURROGATE_CELL = "def f(x):\n    return '\ud800' + x\n"


@pytest.mark.parametrize("padding", [0, PARSE_IN_PROCESS_BYTES], ids=["here", "in-the-child"])
@pytest.mark.parametrize("cell,what", [
    (NUL_CELL, "holds a NUL character (code 0, invisible in most editors), which Python does not allow in "
               "code; delete it"),
    (SURROGATE_CELL, "holds a broken character (U+D800, half of an emoji or other character whose other "
                     "half is missing), which is not text; retype that line"),
], ids=["nul", "surrogate"])
def test_a_character_python_refuses_is_named_with_its_notebook_cell_and_line(tmp_path, padding, cell, what):
    """A NUL was "syntax error at cell 1, line 1 ... in (an empty line)" whatever its cell
    (Python gives no line for it); half a surrogate pair, "submission.py cannot be parsed:
    'utf-8' codec can't encode ... position 9053"."""
    path = tmp_path / "mine.ipynb"
    path.write_text(raw_notebook(["x = 1\n" * (padding // 6) + "y = 2\n", "z = 3\n", cell]))
    submission = load.load(path)
    assert submission.status == "load-error"
    assert submission.message.startswith(f"cell 3 of mine.ipynb, line 2, {what}"), submission.message


@pytest.mark.parametrize("attachments", [False, True], ids=["json", "nbformat"])
def test_an_execution_count_past_pythons_digit_limit_does_not_matter(tmp_path, attachments):
    """`"execution_count": 1111...` (5,000 digits) is JSON, but Python's int() refuses more
    than 4,300 digits: the notebook was "not JSON". The grader ignores execution counts."""
    text = raw_notebook(["x = 1\n", "y = x + 1\n"]).replace('"execution_count": null', '"execution_count": ' +
                                                            "1" * 5000)
    if attachments:  # a shape only nbformat reads
        text = text.replace('"cell_type": "code",', '"cell_type": "code", "attachments": {},', 1)
    path = tmp_path / "counted.ipynb"
    path.write_text(text)
    submission = load.load(path)
    assert submission.ok, submission.message
    assert submission.sources[probes.MODULE] == "x = 1\ny = x + 1\n"
