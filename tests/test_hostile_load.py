"""Loading, the correct-work and hostile cases (issues 12, 13 and 16): correct work in every
form a student hands it in loads and gets full marks; a submission that is or holds a link,
is named to attack the output, or is built to make loading slow is refused or made safe as
its own row, and the batch goes on; files beside the submissions are listed, not graded."""
import base64
import contextlib
import io
import json
import os
import re
import resource
import zipfile
from pathlib import Path

import nbformat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from autograder import examples, grade, probes, report
from autograder.platforms import canvas, gradescope
from autograder.reports import classreport, graphfeedback
from autograder.load import (MAX_ID_CHARS, MAX_MAGIC_BYTES, RESERVED_NAMES, discover, link_handout_imports, load,
                             is_python, magics_to_python, parse, safe_id, unique_ids)

from conftest import FAST, in_backward, notebook

SOLUTIONS = Path(examples.package_folder("solutions"))
HANDOUT_FILES = ("engine.py", "nn.py", "train.py")  # the handout's modules, importing each other


def solution(name):
    """A reference file as a course without extensions has it (extension blocks removed)."""
    from autograder.handout import select_extensions

    return select_extensions({name: (SOLUTIONS / name).read_text()}, ())[name]


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- the handout's layout in every form a student produces --------------------------------


def concatenated(*names):
    """`cat engine.py nn.py train.py > mine.py`: the files as they are, imports included."""
    return "\n".join(solution(name) for name in names)


def pasted_notebook(names):
    """The handout's files pasted into a notebook, one cell each, imports included."""
    return notebook([solution(name) for name in names])


def test_concatenated_handout_files_load_as_one_module(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(concatenated(*HANDOUT_FILES))
    submission = load(path)
    assert submission.ok, submission.message
    code = submission.sources[probes.MODULE]
    assert "from .engine import" not in code and "from .nn import" not in code
    # Every line keeps its number, so messages point at the student's own lines.
    assert code.count("\n") == path.read_text().count("\n")


@pytest.mark.parametrize("statement, binds", [
    ("from .engine import Value", None),
    ("from engine import Value", None),
    ("from .engine import *", None),
    ("from .engine import Value as V", "V = Value"),
    ("import engine", "engine = __import__('sys').modules[__name__]"),
    ("import engine as e, random", "e = __import__('sys').modules[__name__]; import random"),
    ("from . import engine, nn", "engine = __import__('sys').modules[__name__]; nn = __import__('sys').modules[__name__]"),
])
def test_imports_between_handout_modules_name_the_one_module(statement, binds):
    text = f"x = 1\n{statement}\ny = 2\n"
    linked = link_handout_imports(text, parse(text), package=False)
    assert linked == f"x = 1\n{binds or 'pass'}\ny = 2\n"


def test_import_spanning_lines_keeps_the_line_count():
    text = "if True:\n    from .engine import (\n        Value,\n    )  ; z = 3\nprint(z)\n"
    linked = link_handout_imports(text, parse(text), package=False)
    assert linked.count("\n") == text.count("\n")
    namespace = {}
    exec(compile(linked, "mine.py", "exec"), namespace)
    assert namespace["z"] == 3


def test_other_imports_are_left_alone():
    text = "import numpy as np\nfrom .utils import helper\nfrom ..engine import Value\nimport random\n"
    assert link_handout_imports(text, parse(text), package=False) == text


@pytest.mark.parametrize("statement, relative", [
    ("from engine import Value", "from .engine import Value"),
    ("import engine", "from . import engine"),
    ("import engine as e", "from . import engine as e"),
    ("from .engine import Value", "from .engine import Value"),
    ("from train import MLP", "from train import MLP"),  # no train.py in this package: left as it is
])
def test_package_imports_of_its_own_modules_become_relative(statement, relative):
    text = f"{statement}\n"
    assert link_handout_imports(text, parse(text), package=True, modules={"engine", "nn"}) == f"{relative}\n"


def test_package_folder_with_absolute_imports_loads_them_relative(tmp_path):
    folder = tmp_path / "pat"
    folder.mkdir()
    (folder / "engine.py").write_text(solution("engine.py"))
    (folder / "nn.py").write_text(solution("nn.py").replace("from .engine import Value", "from engine import Value"))
    submission = load(folder)
    assert submission.ok and "from .engine import Value" in submission.sources["nn.py"]


# --- notebooks as Jupyter reads them ------------------------------------------------------


def v4_notebook(sources, minor=5, ids=True, outputs=True, execution_count=True):
    cells = [{"cell_type": "markdown", "metadata": {}, "source": "# mine"}]
    for number, source in enumerate(sources):
        cell = {"cell_type": "code", "metadata": {}, "source": source.splitlines(keepends=True)}
        if ids:
            cell["id"] = f"cell-{number}"
        if outputs:
            cell["outputs"] = []
        if execution_count:
            cell["execution_count"] = None
        cells.append(cell)
    import json

    return json.dumps({"nbformat": 4, "nbformat_minor": minor, "metadata": {}, "cells": cells})


def v3_notebook(sources):
    from nbformat import v3

    cells = [v3.new_code_cell(input=source) for source in sources]
    return v3.writes_json(v3.new_notebook(worksheets=[v3.new_worksheet(cells=cells)]))


NOTEBOOK_SHAPES = {
    "nbformat 4.4 with cell ids": lambda sources: v4_notebook(sources, minor=4, ids=True),
    "nbformat 4.0 without ids": lambda sources: v4_notebook(sources, minor=0, ids=False),
    "nbformat 4.5 without ids": lambda sources: v4_notebook(sources, minor=5, ids=False),
    "code cells without an outputs key": lambda sources: v4_notebook(sources, outputs=False),
    "code cells without execution_count": lambda sources: v4_notebook(sources, execution_count=False),
    "nbformat 3": v3_notebook,
}


@pytest.mark.parametrize("shape", NOTEBOOK_SHAPES)
def test_notebooks_jupyter_opens_are_read_not_rejected(tmp_path, shape):
    path = tmp_path / "nb.ipynb"
    path.write_text(NOTEBOOK_SHAPES[shape](["a = 1", "b = a + 1"]))
    submission = load(path)
    assert submission.ok, submission.message
    assert submission.sources[probes.MODULE] == "a = 1\nb = a + 1\n"
    assert submission.cells == [(1, 1), (2, 2)]


@pytest.mark.parametrize("text, words", [
    ('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code", "metadata": {}, '
     '"source": 5}]}', "the source of code cell 1 is not text"),
    ('{"nbformat": 4, "nbformat_minor": 5, "cells": []}', "not a valid notebook"),  # nbformat cannot read it
    ('{"nbformat": 9, "cells": []}', "Unsupported nbformat version 9"),
])
def test_what_jupyter_would_not_open_is_a_load_error_saying_why(tmp_path, text, words):
    path = tmp_path / "bad.ipynb"
    path.write_text(text)
    submission = load(path)
    assert submission.status == "load-error" and words in submission.message, submission.message


def notebook_with_plots(sources, megabytes):
    """A notebook whose last cell carries ``megabytes`` of saved PNG output."""
    picture = base64.b64encode(os.urandom(megabytes * 1024 * 1024 * 3 // 4)).decode()
    cells = [nbformat.v4.new_code_cell(source) for source in sources]
    cells[-1].outputs = [nbformat.v4.new_output("display_data", data={"image/png": picture})]
    return nbformat.writes(nbformat.v4.new_notebook(cells=cells))


def test_saved_outputs_do_not_count_against_the_code_limit(tmp_path):
    path = tmp_path / "plots.ipynb"
    path.write_text(notebook_with_plots(["a = 1"], megabytes=6))
    assert path.stat().st_size > 5 * 1024 * 1024
    submission = load(path)
    assert submission.ok and submission.sources[probes.MODULE] == "a = 1\n"


def test_notebook_with_too_much_code_even_without_outputs_says_so(tmp_path):
    path = tmp_path / "big.ipynb"
    path.write_text(notebook(["# " + "x" * 3000]))
    submission = load(path, max_bytes=1000)
    assert submission.status == "rejected"
    assert "hold 3 KB of code, over the 1 KB limit" in submission.message
    assert "outputs are not counted" in submission.message


def test_a_huge_notebook_file_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "huge.ipynb"
    with open(path, "wb") as stream:  # sparse: 2 GB on paper, nothing on disk
        stream.truncate(2 * 1024 ** 3)
    before = cpu_seconds()
    submission = load(path)
    assert submission.status == "rejected" and "2048.0 MB, over the 64.0 MB limit" in submission.message
    assert cpu_seconds() - before < 5  # reading 2 GB would take far longer; a generous bound for a busy machine


def test_python_3_12_syntax_names_the_graders_python_the_line_and_its_text(tmp_path):
    import sys

    path = tmp_path / "new.py"
    path.write_text("x = 1\ntype Number = float\n")
    submission = load(path)
    assert submission.status == "load-error"
    assert submission.message.startswith("syntax error at new.py:2: invalid syntax in `type Number = float`")
    assert f"Python {sys.version_info[0]}.{sys.version_info[1]}" in submission.message


# --- magics: IPython's own transformer, at a bounded cost -----------------------------------

MAGIC_LINES = st.sampled_from([
    "x = 1", "!ls -l", "%time x = 1", "y = !echo hi", "z = %pwd", "x?", "print(x)", "", "# a comment",
    "if x:", "    !indented", "    y = 2", "for i in range(2):", "    %time i", "s = '''", "!inside a string",
    "'''", "f(1,", "  2)", "!echo a \\", "  b", ">>> !ls",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(MAGIC_LINES, min_size=1, max_size=12))
def test_magics_become_exactly_what_ipython_makes_of_them(lines):
    """Line by line, the text is IPython's own transform_cell's (which re-tokenizes the
    whole cell after each magic line) wherever IPython's text is Python. Where it is not (a
    shell line that swallows half of a triple quote), ours is not Python either: the same
    load error for the student."""
    from IPython.core.inputtransformer2 import TransformerManager

    cell = "\n".join(lines)
    if is_python(cell):
        return  # plain Python is left exactly as it is
    if any(line.endswith("\\") and "'''" in after for line, after in zip(lines, lines[1:])):
        return  # a shell line continued into the opening of a string: see magics_to_python
    try:
        expected = TransformerManager().transform_cell(cell)
    except Exception:
        return  # IPython cannot transform it: the syntax check reports the cell as it is
    if is_python(expected):
        assert magics_to_python(cell) == expected
    else:
        assert not is_python(magics_to_python(cell))


def test_more_than_500_magic_lines_in_a_cell_are_all_transformed():
    """IPython's transform_cell gives up after 500 rewrites of one cell."""
    python = magics_to_python("!echo hi\n" * 2000)
    assert python.count("get_ipython().system('echo hi')") == 2000
    parse(python)


def test_magic_transformation_is_linear_and_capped(tmp_path):
    """82 KB of `!x` lines took 47 s, and 5 MB would take hours, in IPython's own loop. The
    largest amount the loader transforms (MAX_MAGIC_BYTES of `!x` lines) measured 1.3 s of
    CPU on a loaded 2-core machine; a 5 MB cell is refused after one parse (0.6 s)."""
    lines = MAX_MAGIC_BYTES // 3
    path = tmp_path / "most.ipynb"
    path.write_text(notebook(["!x\n" * lines]))
    before = cpu_seconds()
    submission = load(path)
    spent = cpu_seconds() - before
    assert submission.ok and submission.sources[probes.MODULE].count("get_ipython().system('x')") == lines
    assert spent < 15, spent  # CPU, not wall-clock: ten times the measured cost

    path = tmp_path / "bang.ipynb"
    path.write_text(notebook(["x = 1", "!x\n" * (5 * 1024 * 1024 // 3 - 10)]))  # just under the code limit
    before = cpu_seconds()
    submission = load(path)
    spent = cpu_seconds() - before
    assert submission.status == "load-error", submission.message
    assert submission.message.startswith("cell 2 is not plain Python (line 1: `!x`)")
    assert "5.0 MB" in submission.message and "remove those lines" in submission.message
    assert spent < 15, spent  # CPU, not wall-clock; measured 0.6 s


def test_the_magic_budget_is_per_notebook(tmp_path):
    path = tmp_path / "many.ipynb"
    cell = "!x\n" * (MAX_MAGIC_BYTES // 3 // 4)
    path.write_text(notebook([cell] * 8))
    submission = load(path)
    assert submission.status == "load-error" and submission.message.startswith("cell 5 is not plain Python")


# --- places in files named like cells (issue 13, row 2) -----------------------------------


def test_a_file_named_like_a_cell_keeps_its_name_in_places(tmp_path):
    path = tmp_path / "cell 1.py"
    path.write_text("x = 1\ny = 2\n")
    submission = load(path)
    place = submission.place(probes.MODULE, 2)
    assert (place.file, place.line, place.cell) == ("cell 1.py", 2, None)
    assert submission.where(probes.MODULE, 2) == "cell 1.py:2"
    where = {"file": "/tmp/x/submission.py", "line": 2, "function": "f"}
    assert grade._student_where(submission, where) == {"file": "cell 1.py", "line": 2, "function": "f"}


def test_a_folder_holding_a_file_named_like_a_cell_keeps_its_name(tmp_path):
    (tmp_path / "dan").mkdir()
    (tmp_path / "dan" / "cell 1, line 3.py").write_text("x = 1\ny = 2\n")
    submission = load(tmp_path / "dan")
    where = {"file": "submission.py", "line": 2, "function": "f"}
    assert grade._student_where(submission, where) == {"file": "cell 1, line 3.py", "line": 2, "function": "f"}


def test_a_notebook_place_is_its_cell_and_line(tmp_path):
    path = tmp_path / "nb.ipynb"
    path.write_text(notebook(["a = 1\nb = 2", "c = 3\nd = 4"]))
    submission = load(path)
    where = {"file": "submission.py", "line": 4, "function": "<module>"}
    assert grade._student_where(submission, where) == {"file": "cell 2", "line": 2, "function": "<module>"}


# --- links of any kind (issue 13, rows 5 and 6) --------------------------------------------


def test_a_file_that_is_a_symbolic_link_is_refused(tmp_path):
    link = tmp_path / "mallory.py"
    link.symlink_to(SOLUTIONS / "engine.py")
    submission = load(link)
    assert submission.status == "rejected" and "mallory.py is a symbolic link" in submission.message
    assert submission.sources == {}


def test_a_folder_that_is_a_symbolic_link_is_refused(tmp_path):
    link = tmp_path / "mallory"
    link.symlink_to(SOLUTIONS, target_is_directory=True)
    submission = load(link)
    assert submission.status == "rejected" and "mallory is a symbolic link" in submission.message


def test_a_hard_link_is_refused(tmp_path):
    original = tmp_path / "elsewhere.py"
    original.write_text(solution("engine.py"))
    folder = tmp_path / "trent"
    folder.mkdir()
    os.link(original, folder / "engine.py")
    os.link(original, tmp_path / "trudy.py")
    assert "is a hard link" in load(folder).message
    assert "trudy.py is a hard link" in load(tmp_path / "trudy.py").message


def test_a_link_anywhere_in_a_folder_is_refused_even_beside_the_code(tmp_path):
    folder = tmp_path / "oscar"
    folder.mkdir()
    (folder / "mine.py").write_text("x = 1\n")
    (folder / "data").symlink_to(SOLUTIONS, target_is_directory=True)
    submission = load(folder)
    assert submission.status == "rejected" and "oscar/data is a symbolic link" in submission.message


def test_a_zip_member_marked_as_a_windows_link_is_refused(tmp_path):
    path = tmp_path / "win.zip"
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo("engine.py")
        info.create_system = 0  # made on Windows
        info.external_attr = 0x400  # FILE_ATTRIBUTE_REPARSE_POINT
        archive.writestr(info, "C:\\course\\solutions\\engine.py")
    assert "is a link" in load(path).message


def test_gradescope_layout_never_follows_or_packs_a_link(tmp_path):
    submission = tmp_path / "submission"
    submission.mkdir()
    (submission / "mine.py").write_text("x = 1\n")
    (submission / "notes.py").symlink_to(SOLUTIONS / "engine.py")  # packing it would store the reference
    path = gradescope._submission_path(submission, tmp_path)
    assert path == submission / "notes.py"
    assert load(path).status == "rejected"

    (submission / "notes.py").unlink()
    (submission / "mine.py").unlink()
    (submission / "uploaded").symlink_to(SOLUTIONS, target_is_directory=True)
    path = gradescope._submission_path(submission, tmp_path)
    assert path == submission / "uploaded" and "is a symbolic link" in load(path).message


# --- ids (issue 13, rows 9-12) --------------------------------------------------------------

HOSTILE_NAMES = ["grades.csv", "report.html", "results.json", "graphs", "GRADES.CSV", "canvas.csv",
                 "javascript:alert(document.cookie)", "=HYPERLINK(\"http://x\",\"y\")+1", "+1", "-1", "@SUM(A1)",
                 "\tTAB", "\rCR", "\x1b[31mred\x1b[0m\x07", "caf\udce9", "\u202eevil", "a/b", ".hidden", "..",
                 "x" * 300, "é" * 200, "", " ", "data:text/html,<script>"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_ids_are_safe_wherever_they_appear(name):
    id = safe_id(name)
    id.encode("utf-8")  # valid UTF-8: raises on a lone surrogate
    assert id and len(id) <= MAX_ID_CHARS and len(id.encode()) < 255
    assert id.casefold() not in RESERVED_NAMES
    assert id[0].isalnum() or id[0] == "_"  # no formula (= + - @ tab CR), no hidden file
    assert all(c.isalnum() or c in " _-.@+()" for c in id)  # no control character, no ':' of a URL scheme


@pytest.mark.parametrize("name", ["alice", "Bob Smith", "jdoe@school.edu", "José", "s12345_hw1", "alice (1)"])
def test_ordinary_names_stay_as_they_are(name):
    assert safe_id(name) == name


NAME_PARTS = st.sampled_from(["a", "A", "b", " ", "_", "-", ".", "=", ":", "é", "e\u0301", "\x1b", "\udce9", "grades.csv",
                              "x" * 70])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(NAME_PARTS, min_size=1, max_size=4).map("".join), min_size=2, max_size=8, unique=True))
def test_distinct_names_never_share_an_id(names):
    """Names that clean to one id ("a:b", "a_b", "A_B", "é" in two normal forms) stay apart."""
    ids = unique_ids(names)
    assert len({id.casefold() for id in ids}) == len(ids)
    assert all(id.casefold() not in RESERVED_NAMES for id in ids)


@pytest.mark.parametrize("names, kept", [(["Alice", "alice", "ALICE"], "alice"), (["Bob", "BOB"], "Bob"),
                                         (["JOSÉ", "josé", "x"], "josé")])
def test_a_name_that_needs_no_change_keeps_it_beside_names_that_clash_with_it(names, kept):
    """A roster knows ``alice``: when ``Alice`` and ``ALICE`` are handed in beside it, the
    plain name keeps its id and only the names that clash with it change."""
    ids = unique_ids(names)
    assert kept in ids and ids.index(kept) == names.index(kept)
    assert len({id.casefold() for id in ids}) == len(ids)
    clashing = [name for name in names if name != kept and name.casefold() == kept.casefold()]
    assert all(ids[names.index(name)].startswith(f"{name}-") for name in clashing)
    assert all(ids[names.index(name)] == name for name in names if name.casefold() != kept.casefold())


def test_reserved_names_cover_every_file_the_output_folder_uses():
    used = {report.RESULTS, report.FEEDBACK, report.OUTPUT, report.GRADEBOOK, grade.STATE, classreport.REPORT,
            canvas.CANVAS, canvas.UNMATCHED, graphfeedback.GRAPHS, graphfeedback.FEEDBACK_HTML}
    assert used <= RESERVED_NAMES


# Every module that writes into OUT; reports/ is walked whole, so a new report is covered.
OUT_WRITERS = ("autograder.report", "autograder.grade", "autograder.reports.classreport", "autograder.platforms.canvas",
               "autograder.reports.graphfeedback", "autograder.cli")
FILE_NAME = re.compile(r"[\w.-]+\.(json|html|csv|txt|md|png|svg|pdf)")


def test_reserved_names_cover_every_file_name_a_module_writing_out_defines():
    """similarity.html and similarity.json (reports/similarity.py) were once missing: a
    submission `similarity.json.py` kept that id and OUT got a folder of the name. Every file
    name a writer of OUT defines as a constant must be reserved."""
    import importlib
    import pkgutil

    from autograder import reports

    names = [*OUT_WRITERS, *(m.name for m in pkgutil.walk_packages(reports.__path__, "autograder.reports."))]
    defined = {value for name in names for key, value in vars(importlib.import_module(name)).items()
               if key.isupper() and isinstance(value, str) and FILE_NAME.fullmatch(value)}
    assert {"similarity.html", "similarity.json", "grades.csv", "report.html"} <= defined
    assert defined <= RESERVED_NAMES, defined - RESERVED_NAMES


@pytest.mark.parametrize("name", ["similarity.json", "similarity.html", "Similarity.JSON"])
def test_a_submission_named_like_the_similarity_report_gets_another_id(name):
    assert safe_id(name).casefold() != name.casefold()


def test_a_name_that_is_not_utf8_does_not_stop_discovery_or_loading(tmp_path):
    folder = os.fsencode(tmp_path)
    fd = os.open(folder + b"/caf\xe9\xff.py", os.O_WRONLY | os.O_CREAT)
    os.write(fd, b"x = (\n")
    os.close(fd)
    (found,) = discover([tmp_path]).found
    found.id.encode("utf-8")
    submission = load(found.path, found.id)
    assert submission.status == "load-error"
    assert submission.message.startswith("syntax error at caf\ufffd\ufffd.py:1")


# --- non-submissions and empty folders (issue 16) ----------------------------------------


def test_files_beside_the_submissions_are_skipped_not_graded(tmp_path):
    (tmp_path / "alice.py").write_text("x = 1\n")
    (tmp_path / "notes.txt").write_text("grade these by Friday")
    (tmp_path / "rubric.pdf").write_bytes(b"%PDF")
    (tmp_path / "carol").mkdir()
    discovered = discover([tmp_path])
    assert [f.id for f in discovered.found] == ["alice", "carol"]
    assert [p.name for p in discovered.skipped] == ["notes.txt", "rubric.pdf"]


def summary(batch):
    console = Console(file=io.StringIO(), width=200)
    grade.print_summary(batch, console)
    return console.file.getvalue()


def test_an_empty_folder_warns_that_nothing_was_graded(tmp_path, level):
    (tmp_path / "subs").mkdir()
    batch = grade.grade([tmp_path / "subs"], out=tmp_path / "out", seed=1, isolation=level)
    assert batch.rows == []
    assert "warning: no submissions found" in summary(batch)


# --- one batch: full marks for correct work in every form, its own row for each refusal ----


def zip_folder(path, files, folder):
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(f"{folder}/{name}", text)


@pytest.fixture(scope="module")
def graded(tmp_path_factory, level):
    root = tmp_path_factory.mktemp("load-batch")
    subs, out = root / "subs", root / "out"
    subs.mkdir()
    # issue 12: the handout's layout in every form, and notebooks as Jupyter writes them
    (subs / "cat-engine-nn-train.py").write_text(concatenated(*HANDOUT_FILES))
    (subs / "cat-nn-engine.py").write_text(concatenated("nn.py", "engine.py"))
    (subs / "cat-absolute-imports.py").write_text(concatenated(*HANDOUT_FILES).replace("from .", "from "))
    (subs / "import-engine-module.py").write_text(
        solution("engine.py") + solution("nn.py").replace("from .engine import Value", "import engine\nValue = engine.Value"))
    handout_folder = {name: solution(name) for name in (*HANDOUT_FILES, "__init__.py")}
    (subs / "handout-folder").mkdir()
    for name, text in handout_folder.items():
        (subs / "handout-folder" / name).write_text(text)
    (subs / "absolute-folder").mkdir()
    for name, text in handout_folder.items():
        (subs / "absolute-folder" / name).write_text(text.replace("from .", "from "))
    zip_folder(subs / "handout-zip.zip", handout_folder, "hw1")
    (subs / "pasted-notebook.ipynb").write_text(pasted_notebook(HANDOUT_FILES))
    module = examples.one_module()
    (subs / "nbformat-4-4-ids.ipynb").write_text(v4_notebook([module], minor=4, ids=True))
    (subs / "no-outputs-key.ipynb").write_text(v4_notebook([module], outputs=False, execution_count=False))
    (subs / "nbformat-3.ipynb").write_text(v3_notebook([module]))
    (subs / "plots-over-5mb.ipynb").write_text(notebook_with_plots([module, "x = 1"], megabytes=6))
    # issue 13: a file named like a cell whose checks raise; links; names that attack the output
    (subs / "cell 1.py").write_text(examples.patched(module, [in_backward("raise NotImplementedError('TODO')")]))
    (subs / "symlink-folder").symlink_to(SOLUTIONS, target_is_directory=True)
    (subs / "symlink-file.py").symlink_to(SOLUTIONS / "engine.py")
    for name in ("grades.csv", "report.html", "javascript:alert(1)", "=HYPERLINK(\"x\")+1", "\x1b[2Jbell\x07"):
        (subs / f"{name}.py").write_text(module)
    fd = os.open(os.fsencode(subs) + b"/latin\xe9.py", os.O_WRONLY | os.O_CREAT)
    os.write(fd, module.encode())
    os.close(fd)
    # issue 16
    (subs / "notes.txt").write_text("not a submission")
    batch = grade.grade([subs], out=out, jobs=2, seed=7, limits=FAST, isolation=level)
    return batch, out, {row["id"]: row for row in batch.rows}


FULL_MARKS = ["cat-engine-nn-train", "cat-nn-engine", "cat-absolute-imports", "import-engine-module", "handout-folder",
              "absolute-folder", "handout-zip", "pasted-notebook", "nbformat-4-4-ids", "no-outputs-key", "nbformat-3",
              "plots-over-5mb"]


@pytest.mark.parametrize("id", FULL_MARKS)
def test_correct_work_in_every_form_gets_full_marks(graded, id):
    _, _, rows = graded
    row = rows[id]
    assert (row["status"], row["score"], row["lost"]) == ("graded", row["max_score"], []), row["message"]


def test_a_file_named_like_a_cell_whose_checks_raise_gets_its_row(graded):
    _, out, rows = graded
    row = rows["cell 1"]
    assert row["status"] == "graded" and 0 < row["score"] < row["max_score"]
    assert "not-implemented" in row["diagnoses"]
    assert re.search(r"\(line \d+ of cell 1\.py, in backward\)", (out / "cell 1" / report.FEEDBACK).read_text())


@pytest.mark.parametrize("id", ["symlink-folder", "symlink-file"])
def test_links_are_refused_as_their_own_row(graded, id):
    _, _, rows = graded
    row = rows[id]
    assert row["status"] == "rejected" and row["score"] == 0 and "symbolic link" in row["message"]


def test_hostile_names_get_safe_rows_and_the_output_keeps_its_files(graded):
    batch, out, rows = graded
    assert (out / report.GRADEBOOK).is_file()
    ids = set(rows) - set(FULL_MARKS) - {"cell 1", "symlink-folder", "symlink-file"}
    assert len(ids) == 6, ids
    for id in ids:
        assert rows[id]["score"] == rows[id]["max_score"], rows[id]["message"]
        assert (out / id / report.RESULTS).is_file()
    import csv

    with open(out / report.GRADEBOOK, encoding="utf-8") as stream:
        cells = [row[0] for row in csv.reader(stream)][1:]
    assert len(cells) == len(rows)
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) or "\x1b" in cell for cell in cells)


def test_every_submission_has_one_row_and_notes_are_listed_as_skipped(graded):
    batch, _, rows = graded
    assert len(rows) == len(FULL_MARKS) + 1 + 2 + 6
    assert [Path(p).name for p in batch.not_submissions] == ["notes.txt"]
    text = summary(batch)
    assert "not graded (not a .py, .ipynb, .zip or folder): notes.txt\n" in text


# --- parsing is bounded in time and memory (review of issue 13, item 2) ---------------------


def children_usage():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime


@pytest.mark.parametrize("filler", ["1,", "a,"])
def test_code_built_to_make_parsing_costly_is_a_load_error_within_bounds(tmp_path, filler):
    """The reference plus `_x = [1, 1, ...]` (or a tuple of names) filling 5 MB: parsed in the
    grading process it took 2.7 GB of memory and 7.4 s of CPU (measured with /usr/bin/time -v;
    the tuple 3.7 GB and 60 s on the reviewer's machine). Now it is parsed in a child process
    under PARSE_CHILD_LIMITS; this process spends 0.1 s and 41 MB (measured), the child at most
    its 1 GB and 10 s."""
    from autograder.load import PARSE_CHILD_LIMITS

    reference = examples.one_module()
    count = (5 * 1024 * 1024 - len(reference) - 100) // 2
    path = tmp_path / "generated.py"
    path.write_text(reference + "\n_x = [" + filler * count + "]\n")
    before, child_before = cpu_seconds(), children_usage()[1]
    submission = load(path)
    spent = cpu_seconds() - before
    child_memory, child_cpu = children_usage()
    assert submission.status == "load-error"
    assert submission.message.startswith("generated.py cannot be parsed: parsing it takes more than the grader "
                                         "allows (1024 MB of memory, 10 s of CPU)")
    assert spent < 5, spent  # CPU of this process: parsing here took 7.4 s and more
    assert child_cpu - child_before <= PARSE_CHILD_LIMITS["cpu_seconds"] + 1
    assert child_memory <= PARSE_CHILD_LIMITS["address_space"]  # the largest child's peak


def test_honest_code_too_big_to_parse_here_loads_through_the_child(tmp_path):
    """Above PARSE_IN_PROCESS_BYTES the child parses and links the handout's imports just
    as this process would, and reports a syntax error with its place."""
    from autograder.load import PARSE_IN_PROCESS_BYTES

    padding = "# notes\n" * (PARSE_IN_PROCESS_BYTES // 8 + 10)
    path = tmp_path / "long.py"
    path.write_text(padding + "from engine import Value\n" + examples.one_module())
    submission = load(path)
    assert submission.ok, submission.message
    code = submission.sources[probes.MODULE]
    assert "from engine import Value" not in code and code.count("\n") == path.read_text().count("\n")
    broken = tmp_path / "broken.py"
    broken.write_text(padding + examples.one_module() + "\ndef oops(:\n")
    submission = load(broken)
    assert submission.status == "load-error"
    assert re.match(r"syntax error at broken\.py:\d+: invalid syntax in `def oops\(:`", submission.message), \
        submission.message


def test_a_huge_cell_is_not_parsed_in_the_grading_process(tmp_path):
    """A notebook cell of 5 MB of `[1, 1, ...]`: deciding whether it is plain Python once
    parsed it here (seconds, GBs); now a look at its lines decides, and the child parses."""
    count = (5 * 1024 * 1024 - len(examples.one_module()) - 1000) // 2
    path = tmp_path / "cells.ipynb"
    path.write_text(notebook([examples.one_module(), "_x = [" + "1," * count + "]\n"]))
    before = cpu_seconds()
    submission = load(path)
    assert submission.status == "load-error" and "cannot be parsed: parsing it takes more" in submission.message
    assert cpu_seconds() - before < 5


def test_a_notebook_of_too_many_cells_is_refused_before_nbformat_reads_it(tmp_path):
    """400,000 one-line cells (130 KB zipped) took 332 s in load(): nbformat validates about
    4,000 cells a second. More than MAX_NOTEBOOK_CELLS are refused after one JSON parse."""
    from autograder.load import MAX_NOTEBOOK_CELLS

    # Plain dicts: nbformat's own constructors take most of a minute for 100,000 cells.
    cell = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": "x = 1"}
    made = nbformat.v4.new_notebook()
    made.cells = [dict(cell, id=f"c{i}") for i in range(100_000)]
    path = tmp_path / "cells.ipynb"
    path.write_text(json.dumps(made))
    before = cpu_seconds()
    submission = load(path)
    assert submission.status == "load-error"
    assert f"it has 100000 cells, over the limit of {MAX_NOTEBOOK_CELLS}" in submission.message
    assert cpu_seconds() - before < 10  # CPU; nbformat would take about 25 s on these
    made.cells = made.cells[:MAX_NOTEBOOK_CELLS]
    made.cells[0]["source"] = examples.one_module()
    path.write_text(json.dumps(made))
    assert load(path).ok


@pytest.mark.parametrize("member, words", [("x" * 300 + ".py", "has a name over 255 bytes long"),
                                           ("/".join(["d" * 200] * 6) + "/a.py", "has a path over 1024 bytes long")])
def test_a_zip_member_whose_name_no_file_system_holds_is_refused_at_load(tmp_path, member, words):
    """A member `'x' * 300 + '.py'` beside the handout's modules once reached the sandbox,
    which failed to write it (OSError: File name too long): a grader-fault row."""
    path = tmp_path / "long.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name in ("engine.py", "nn.py"):
            archive.writestr(name, solution(name))
        archive.writestr(member, "x = 1\n")
    submission = load(path)
    assert submission.status == "rejected"
    assert words in submission.message and submission.message.startswith("long.zip: member ")
    assert len(submission.message) < 400  # the name itself is shown shortened


# --- a zip's list of members, its wrapping folders, its duplicates (third review) -----------


def listed_only(path, entries, stated=None, zip64=False):
    """A zip of ``entries`` central-directory entries of 47 bytes (a folder named "a", no
    data), the reviewer's shape; its end record states ``stated`` members (the true count by
    default), in a zip64 record when ``zip64``. Returns the directory's size in bytes."""
    import struct

    entry = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0) + b"a"
    directory = entry * entries
    stated = entries if stated is None else stated
    if zip64:
        record = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, stated, stated, len(directory), 0)
        locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, len(directory), 1)
        end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
        path.write_bytes(directory + record + locator + end)
    else:
        small = min(stated, 0xFFFF)
        path.write_bytes(directory + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, small, small, len(directory), 0, 0))
    return len(directory)


def load_costs(path):
    """``load(path)``, the CPU seconds this process spent on it, and its peak of memory
    allocated by Python (bytes) over the peak of loading a small zip: reading any zip or
    notebook allocates a buffer of MAX_READ_BYTES at first, whatever its size."""
    import time
    import tracemalloc

    small = wrapped(path.with_name("small.zip"), [], {"mine.py": "x = 1\n"})
    peaks = []
    for loaded in (small, path):
        tracemalloc.start()
        try:
            before = time.process_time()
            submission = load(loaded)
            spent = time.process_time() - before
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    return submission, spent, peaks[1] - peaks[0]


@pytest.mark.parametrize("stated, zip64, words", [
    (None, False, "has 65535 members, over the limit of 200"),
    (None, True, "has 600000 members, over the limit of 200"),
    (1, False, "lists its members in 26.9 MB, more than 200 members take (the limit is 409 KB): zip the files again"),
    (1, True, "lists its members in 26.9 MB, more than 200 members take (the limit is 409 KB): zip the files again"),
], ids=["count", "zip64-count", "forged-count", "zip64-forged-count"])
def test_a_zip_listing_600000_members_is_refused_before_its_list_is_read(tmp_path, stated, zip64, words):
    """The reviewer's zip: 1.35 M folder entries of 47 bytes (63 MB) cost the grading process
    6 s of CPU and 580 MB before the member count was compared with the limit. The end
    record's count and the directory's size are checked first; zipfile walks the directory by
    its size, so a forged small count is refused too. 600,000 entries (28 MB) here: read, they
    cost about 250 MB and 2.5 s; refused, a few milliseconds and no memory past the bytes."""
    path = tmp_path / "many.zip"
    listed_only(path, 600_000, stated, zip64)
    submission, cpu, memory = load_costs(path)
    assert submission.status == "rejected"
    assert submission.message == f"many.zip {words}"
    assert cpu < 1.0, cpu  # CPU, not wall-clock: measured 0.03 s, reading the list takes seconds
    assert memory < 16 * 1024 * 1024, memory  # measured 0 MB; reading the list: hundreds


def test_the_grader_reads_the_end_record_with_zipfiles_own_private_helper():
    """load.py checks a zip's end record with ``zipfile._EndRecData`` and skips the check on a
    Python without it (a student's self-check): the grader's Python must have it."""
    import zipfile as module

    assert callable(module._EndRecData)
    assert (module._ECD_ENTRIES_TOTAL, module._ECD_SIZE) == (4, 5)


def test_a_zip_of_200_members_with_long_names_is_not_refused_by_the_directory_bound(tmp_path):
    """The bound on the directory's size leaves room for the longest names load accepts."""
    folder = "/".join(["d" * 240] * 4)
    path = tmp_path / "long.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{folder}/mine.py", examples.one_module())
        for number in range(199):
            archive.writestr(f"{folder}/notes{number:03}.txt", "")
    submission = load(path)
    assert submission.ok, submission.message


def wrapped(path, folders, files, ignored=False):
    """A zip of ``files`` (name -> text) inside ``folders`` (each alone in the one above), with
    macOS's ``__MACOSX/`` copies and a ``.DS_Store`` beside them when ``ignored``."""
    with zipfile.ZipFile(path, "w") as archive:
        for depth in range(1, len(folders) + 1):
            archive.writestr("/".join(folders[:depth]) + "/", "")
            if ignored:
                archive.writestr("/".join([*folders[:depth], ".DS_Store"]), "\0")
        for name, text in files.items():
            archive.writestr("/".join([*folders, name]), text)
            if ignored:
                archive.writestr("/".join(["__MACOSX", *folders, "._" + name]), "\0\5\26\7")
    return path


@pytest.mark.parametrize("depth", [2, 3, 16])
@pytest.mark.parametrize("ignored", [False, True], ids=["plain", "macos"])
def test_work_zipped_in_folders_in_folders_is_found(tmp_path, depth, ignored):
    """`hw1/autodiff/engine.py` was "holds no .py file or .ipynb notebook": only one
    wrapping folder was looked into. Now as many as Gradescope looks into (16)."""
    folders = ["hw1", "autodiff", *[f"d{n}" for n in range(depth - 2)]]
    path = wrapped(tmp_path / "twolevel.zip", folders, {name: solution(name) for name in HANDOUT_FILES}, ignored)
    submission = load(path)
    assert submission.ok, submission.message
    assert set(submission.sources) == set(HANDOUT_FILES) | set(probes.PACKAGE)


def test_work_zipped_past_16_folders_in_folders_is_said_to_be_nested_too_deep(tmp_path):
    path = wrapped(tmp_path / "deep.zip", [f"d{n}" for n in range(17)], {"mine.py": examples.one_module()})
    submission = load(path)
    assert submission.status == "rejected"
    assert submission.message == (
        "deep.zip: the work is nested too deep, in d0/d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/d11/d12/d13/d14/d15/d16/ "
        "(more than 16 folders, each alone in the one above): zip the files themselves, or their folder")


def test_a_zip_of_folders_without_code_beside_them_names_the_folders(tmp_path):
    """Folders side by side are not looked into (which would be graded?): the message says
    the code is in them, not that there is none."""
    path = tmp_path / "side.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hw/part1/engine.py", solution("engine.py"))
        archive.writestr("hw/part2/nn.py", solution("nn.py"))
    submission = load(path)
    assert submission.status == "rejected"
    assert submission.message == ("side.zip/hw/ holds no .py file or .ipynb notebook, only folders part1/, part2/: "
                                  "zip the files themselves")


@pytest.mark.parametrize("first, second, named", [("sub.py", "sub.py", "sub.py"),
                                                  ("hw/engine.py", "hw/engine.py", "hw/engine.py"),
                                                  ("sub.py", "./sub.py", "sub.py")])
def test_a_zip_holding_two_members_of_one_name_is_a_load_error_naming_it(tmp_path, first, second, named):
    """Two members named `sub.py` (appending to a zip adds a second): the last was graded,
    silently. Which one the student meant is unknown, so neither is graded."""
    path = tmp_path / "twice.zip"
    with zipfile.ZipFile(path, "w") as archive, pytest.warns(UserWarning, match="Duplicate name") \
            if first == second else contextlib.nullcontext():
        archive.writestr(first, examples.one_module())
        archive.writestr(second, "x = 1\n")
    submission = load(path)
    assert submission.status == "load-error"
    assert submission.message == f"twice.zip holds two members named '{named}': zip the files again, each once"


# --- reading a notebook is bounded too (review of issue 13: notebooks) ----------------------

MARK = '"@HOSTILE@"'


def hostile_notebook(raw, where="metadata", attachments=False, code=None):
    """The reference (or ``code``) in one code cell, with the JSON text ``raw`` as the value
    of "x" in the notebook's metadata, the code cell's metadata ("cell"), or an output's
    application/json data ("output"). ``attachments``: a markdown cell with attachments beside
    it, which (as an output's data that is not text does) sends the notebook through nbformat."""
    cell = nbformat.v4.new_code_cell(examples.one_module() if code is None else code)
    notebook = nbformat.v4.new_notebook(cells=[cell])
    if where == "metadata":
        notebook.metadata["x"] = MARK[1:-1]
    elif where == "cell":
        cell.metadata["x"] = MARK[1:-1]
    else:
        cell.outputs = [nbformat.v4.new_output("display_data", data={"application/json": MARK[1:-1]})]
    if attachments:
        notebook.cells.append(nbformat.v4.new_markdown_cell("a picture", attachments={}))
    text = nbformat.writes(notebook)
    assert text.count(MARK) == 1
    return text.replace(MARK, raw)


def empty_lists(megabytes):
    """``[[],[],...]``: JSON that costs about 25 times its size in memory to read."""
    count = megabytes * 1024 * 1024 // 3
    return "[" + "[]," * count + "[]]"


def load_measured(path):
    """``load(path)`` in a fresh process, as the grading process runs it: its outcome, the
    code loaded, that process's own peak memory (bytes) and CPU seconds, its children's
    CPU seconds, and whether it imported nbformat."""
    import subprocess
    import sys

    # Its own peak (VmHWM): ru_maxrss would keep the test process's peak from before exec.
    program = (
        "import json, re, resource, sys; from autograder.load import load; s = load(sys.argv[1]); "
        "peak = lambda: int(re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read())[1]) * 1024; "
        "me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN); "
        "print(json.dumps({'status': s.status, 'message': s.message, 'code': ''.join(s.sources.values()), "
        "'memory': peak(), 'cpu': me.ru_utime + me.ru_stime, "
        "'child_memory': kids.ru_maxrss * 1024, 'child_cpu': kids.ru_utime + kids.ru_stime, "
        "'nbformat': 'nbformat' in sys.modules}))")
    done = subprocess.run([sys.executable, "-c", program, str(path)], capture_output=True, text=True,
                          cwd=Path(examples.__file__).resolve().parents[2],
                          timeout=600)  # wide: the child's CPU limit is 10 s, a busy 2-core machine waits
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("attachments", [False, True], ids=["json", "nbformat"])
def test_a_notebook_with_generated_metadata_is_read_outside_the_grading_process(tmp_path, attachments):
    """8 MB of `[[],[],...]` as the notebook's metadata: read here it cost the grading
    process about 200 MB (with json) or 400 MB (through nbformat) more than a small notebook;
    now the bounded child reads it and this process only holds its bytes. Its code is kept."""
    small, big = tmp_path / "small.ipynb", tmp_path / "big.ipynb"
    small.write_text(hostile_notebook("[]", attachments=attachments))
    big.write_text(hostile_notebook(empty_lists(8), attachments=attachments))
    baseline, measured = load_measured(small), load_measured(big)
    assert baseline["status"] == measured["status"] == "ok", measured["message"]
    assert measured["code"] == baseline["code"] and "class Value" in measured["code"]
    assert measured["memory"] - baseline["memory"] < 64 * 1024 * 1024, (measured, baseline)
    assert not measured["nbformat"]  # the child read it, through nbformat or not


def test_a_zipped_notebook_too_costly_to_read_is_a_load_error_within_bounds(tmp_path):
    """The reviewer's case: a small zip holding a valid v4 notebook whose metadata is 40 MB of
    `[[],[],...]` (read in the grading process: 1.3 GB, seconds). The child runs out of its
    1 GB; the submission is a load-error saying so, and this process stays small."""
    from autograder.load import PARSE_CHILD_LIMITS

    path = tmp_path / "generated.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("generated.ipynb", hostile_notebook(empty_lists(40)))
    assert path.stat().st_size < 1024 * 1024
    measured = load_measured(path)
    assert measured["status"] == "load-error"
    assert measured["message"].startswith(
        "generated.ipynb: reading its JSON (outputs and metadata included) takes more than the grader allows "
        "(1024 MB of memory, 10 s of CPU)"), measured["message"]
    assert measured["memory"] < 400 * 1024 * 1024  # the zip, the notebook's 40 MB, its text: no parse
    assert measured["child_memory"] <= PARSE_CHILD_LIMITS["address_space"]
    assert measured["child_cpu"] <= PARSE_CHILD_LIMITS["cpu_seconds"] + 1


# Read here (60 KB) and in the child (2.2 MB); deep enough for any recursion limit a test
# runner sets (hypothesis raises it while it runs; the grading process keeps Python's 1,000).
@pytest.mark.parametrize("depth", [30_000, 1_100_000], ids=["here", "in-the-child"])
@pytest.mark.parametrize("where,attachments", [("metadata", False), ("metadata", True), ("cell", False),
                                               ("cell", True), ("output", False)])
def test_json_nested_past_pythons_limit_is_a_load_error_saying_so(tmp_path, depth, where, attachments):
    """`[[[[...]]]]` nested past the limit anywhere in a notebook, through json or nbformat:
    1,100 deep (2 KB) was enough for RecursionError to reach the grader (a grader-fault row,
    a crashed similarity report); now it is the submission's load-error."""
    path = tmp_path / "deep.ipynb"
    path.write_text(hostile_notebook("[" * depth + "]" * depth, where, attachments))
    submission = load(path)
    assert submission.status == "load-error"
    assert submission.message == ("deep.ipynb: its JSON nests lists or objects too deeply to be read (Python "
                                  "reads about 1,000 levels); is something in its metadata or outputs generated?")


@pytest.mark.parametrize("depth", [900, 990])
def test_json_nested_just_under_the_limit_never_raises(tmp_path, depth):
    """Just under the limit json reads it and nbformat's own walk may or may not: either the
    code is read or the submission says why it is not, never an exception."""
    path = tmp_path / "deep.ipynb"
    path.write_text(hostile_notebook("[" * depth + "]" * depth, "output"))
    submission = load(path)
    assert submission.ok or "nests lists or objects too deeply" in submission.message, submission.message


def test_a_handout_folder_beside_a_deep_or_costly_notebook_grades_its_modules(tmp_path):
    """Folder and zip: engine.py and nn.py beside a notebook with the handout's check tag
    whose JSON is nested past the limit, or generated past READ_NOTEBOOK_IN_PROCESS_BYTES: the
    notebook is not read in the grading process, and the modules are graded."""
    from autograder.load import CHECK_TAG, READ_NOTEBOOK_IN_PROCESS_BYTES

    for name, raw in (("deep", "[" * 30_000 + "]" * 30_000), ("generated", empty_lists(3))):
        folder = tmp_path / name
        folder.mkdir()
        for module in examples.PACKAGE_FILES:
            (folder / module).write_text((SOLUTIONS / module).read_text())
        text = hostile_notebook(json.dumps({"tags": [CHECK_TAG]})[:-1] + ', "x": ' + raw + "}", "cell")
        (folder / "autodiff101.ipynb").write_text(text)
        assert (len(text) > READ_NOTEBOOK_IN_PROCESS_BYTES) == (name == "generated")
        submission = load(folder)
        assert submission.ok, submission.message
        assert set(submission.sources) >= set(examples.PACKAGE_FILES)


def test_any_recursion_while_loading_is_the_submissions_load_error(tmp_path, monkeypatch):
    """A walk over what the student built that runs past Python's recursion limit, wherever
    in the loader, gives the submission a load-error, never an exception in the grader."""
    from autograder import load as loader

    def walks_too_deep(*args):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(loader, "_from_notebook", walks_too_deep)
    path = tmp_path / "nested.ipynb"
    path.write_text(hostile_notebook("[]"))
    submission = load(path)
    assert submission.status == "load-error"
    assert submission.message == "nested.ipynb nests something (folders, lists, objects) too deeply to be read"


def nested_folders(top, depth, name="d"):
    """``top/d/d/.../d`` ``depth`` folders deep, made without recursion; the deepest."""
    path = top
    for _ in range(depth):
        path = path / name
        path.mkdir()
    return path


def test_gradescope_layout_of_folders_nested_1100_deep_is_a_rejection_not_a_fault(tmp_path):
    """Looking into a folder alone in its folder was recursive: 1,100 of them raised
    RecursionError, and the student saw "the autograder itself failed". Now at most
    MAX_FOLDERS_IN_FOLDERS are looked into and the loader says the folder holds no code."""
    from autograder.load import MAX_FOLDERS_IN_FOLDERS
    from autograder.sandbox import remove_tree

    submission = tmp_path / "submission"
    submission.mkdir()
    try:
        nested_folders(submission, 1_100).joinpath("mine.py").write_text(examples.one_module())
        path = gradescope._submission_path(submission, tmp_path)
        assert path == submission.joinpath(*["d"] * MAX_FOLDERS_IN_FOLDERS)
        loaded = load(path)
        assert loaded.status == "rejected"
        assert loaded.message == ("d/ holds no .py file or .ipynb notebook, only the folder d/: "
                                  "hand in the files themselves")
    finally:
        remove_tree(submission)  # pytest's own clean-up recurses once per level


def test_a_folder_tree_nested_past_the_recursion_limit_and_path_length_is_removed(tmp_path):
    """Code in a worker can nest folders in its working folder (made by name, one level at a
    time, past the 4 KB a path may hold); shutil.rmtree, which the sandbox used to clean up,
    raised RecursionError on 1,000 levels. ``remove_tree`` removes all of it."""
    import shutil

    from autograder.sandbox import remove_tree

    def nest(top):
        fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
        for _ in range(3_000):
            os.mkdir("d", dir_fd=fd)
            os.mkdir("empty", dir_fd=fd)
            os.close(os.open("file", os.O_CREAT | os.O_WRONLY, dir_fd=fd))
            inner = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        os.close(fd)

    (tmp_path / "before").mkdir()
    nest(tmp_path / "before")
    with pytest.raises(RecursionError):
        shutil.rmtree(tmp_path / "before", ignore_errors=True)
    remove_tree(tmp_path / "before")
    assert not (tmp_path / "before").exists()
    (tmp_path / "cwd").mkdir()
    nest(tmp_path / "cwd")
    remove_tree(tmp_path / "cwd")
    assert list(tmp_path.iterdir()) == []


def test_gradescope_layout_looks_into_a_few_folders_in_folders(tmp_path):
    submission = tmp_path / "submission"
    submission.mkdir()
    deepest = nested_folders(submission, 3, "hw")
    (deepest / "mine.py").write_text(examples.one_module())
    assert gradescope._submission_path(submission, tmp_path) == deepest / "mine.py"


def v3_code_notebook(code, outputs):
    """An nbformat v3 notebook as raw JSON (``v3_notebook``'s, with any ``outputs``, which
    nbformat's own writer would refuse): one code cell holding ``code``. Read only through
    nbformat, which converts and validates it."""
    cell = {"cell_type": "code", "input": code, "language": "python", "metadata": {}, "outputs": outputs}
    return json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {},
                       "worksheets": [{"metadata": {}, "cells": [cell]}]}, separators=(",", ":"))


@pytest.mark.parametrize("output", [{}, {"output_type": "zzz"}], ids=["empty", "unknown-type"])
def test_a_small_notebook_read_through_nbformat_costs_the_grading_process_nothing(tmp_path, output):
    """A v3 notebook of 6,000 outputs is 20-130 KB, far under the size read in the grading
    process, but converting and validating it took 4 s of CPU and 370 MB there (the second
    reviewer's case; zipped, 288 bytes). What nbformat reads is read in the bounded child."""
    path = tmp_path / "old.ipynb"
    path.write_text(v3_code_notebook(examples.one_module(), [output] * 6_000))
    measured = load_measured(path)
    assert not measured["nbformat"]  # the grading process never imported nbformat
    assert measured["cpu"] < 1.0, measured  # CPU seconds of this process alone: the work is the child's
    assert measured["status"] == "load-error" or "class Value" in measured["code"], measured["message"]


def test_a_plain_old_notebook_is_still_graded_from_its_code(tmp_path):
    """The child reads v3 notebooks as nbformat does: an old notebook of the reference loads."""
    path = tmp_path / "old.ipynb"
    path.write_text(v3_code_notebook(examples.one_module(), []))
    submission = load(path)
    assert submission.ok, submission.message
    assert "class Value" in "".join(submission.sources.values())


def test_a_link_given_as_the_submission_path_is_refused_not_walked_into(tmp_path):
    """`grade subs/*` where one entry is a link to a folder (from an unpacked archive, say):
    the link is a rejected submission of its own, whatever it points to, and the folder it
    points to is not graded in its place."""
    from autograder.load import discover

    target = tmp_path / "elsewhere"
    (target / "alice").mkdir(parents=True)
    (target / "alice" / "alice.py").write_text(examples.one_module())
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "mallory").symlink_to(target, target_is_directory=True)
    (subs / "bob.py").write_text(examples.one_module())
    found = discover(sorted(subs.iterdir())).found
    assert [item.id for item in found] == ["bob", "mallory"]
    submission = load(found[1].path, found[1].id)
    assert submission.status == "rejected" and "symbolic link" in submission.message


# --- the third review: names chosen to be hashes, Windows zips, notebooks of too much code --


def test_names_chosen_to_be_another_names_hashes_still_get_ids_of_their_own():
    """Five names that are the ids `x!` would be given (its hash at every width, and the
    numbered form the last round once used) made two submissions share an id: one
    student's row and folder were another's."""
    from autograder.load import _cleaned, _hashed

    hashed = [_hashed(_cleaned("x!"), "x!", width) for width in (6, 10, 16, 32)]
    names = ["x!", *hashed, f"{hashed[-1]}-0"]
    ids = unique_ids(names)
    assert len({id.casefold() for id in ids}) == len(names)
    assert ids[1:] == names[1:]  # names that need no change keep it
    assert ids[0] not in names


def test_a_zip_whose_folders_are_separated_by_backslashes_is_read_as_folders(tmp_path):
    """PowerShell 5's Compress-Archive writes `hw\\engine.py`: that was one file of that name,
    and the zip "holds several candidate files"."""
    path = tmp_path / "windows.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name in HANDOUT_FILES:
            archive.writestr(f"hw\\{name}", solution(name))
    submission = load(path)
    assert submission.ok, submission.message
    assert set(submission.sources) == set(HANDOUT_FILES) | set(probes.PACKAGE)


def test_a_zipped_notebook_of_too_much_code_comes_back_from_the_child_as_its_size(tmp_path):
    """40 MB of code in one cell zips to a few KB. The child read the notebook and sent back
    every cell (the grading process then held them three times over, about 330 MB for 62 MB)
    before the code limit was checked; now it sends back only the size past the limit."""
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        # an attachment makes nbformat read it: the child, whatever the size
        archive.writestr("bomb.ipynb", hostile_notebook("{}", attachments=True, code="x=1;" * (10 * 1024 * 1024)))
    assert path.stat().st_size < 1024 * 1024
    small = tmp_path / "small.ipynb"
    small.write_text(hostile_notebook("{}", attachments=True))
    baseline, measured = load_measured(small), load_measured(path)
    assert measured["status"] == "rejected"
    assert measured["message"] == ("the code cells of bomb.ipynb hold 40.0 MB of code, over the 5.0 MB limit "
                                   "(saved outputs are not counted)")
    # The notebook's 40 MB of bytes are held (inflated from the zip); its cells never are.
    assert measured["memory"] - baseline["memory"] < 120 * 1024 * 1024, (measured, baseline)


def test_a_hidden_submission_in_a_folder_is_listed_as_not_graded(tmp_path, capsys):
    """`.alice.py` was dropped without a word; hidden clutter (`.DS_Store`, `.git/`) still is."""
    (tmp_path / "honest.py").write_text("x = 1\n")
    (tmp_path / ".alice.py").write_text("x = 1\n")
    (tmp_path / ".DS_Store").write_text("")
    (tmp_path / ".git").mkdir()
    found = discover([tmp_path])
    assert [f.id for f in found.found] == ["honest"]
    assert [path.name for path in found.skipped] == [".alice.py"]
    batch = grade.Batch(out=tmp_path / "out", seed=1, seed_reused=False, isolation="none", warning="", check_ids=[],
                        not_submissions=[str(path) for path in found.skipped])
    grade.print_summary(batch, Console(width=200))
    assert "not graded (hidden: the name starts with a dot): .alice.py" in capsys.readouterr().out
