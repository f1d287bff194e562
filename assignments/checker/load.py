"""Load: a path on disk becomes a ``Submission``, plain Python text ready for the worker.

Nothing here runs student code. A ``.py`` file becomes ``submission.py``; a notebook's code
cells, in order, become ``submission.py`` too, with IPython's magics and ``!`` lines turned
into calls to ``get_ipython()`` (which the worker answers with a stub that never runs a
shell); a folder with the handout's layout keeps its modules; a folder or ``.zip`` holding
one file is that file. The handout's imports between its own modules (``from .engine import
Value``, ``import engine``) are made to name the student's own code in every one of those
forms. Every way a path can fail to be a submission gets a status and a message saying what
is wrong, so each one still gets a row in the gradebook.

Links are never followed: a submission that is, or holds, a symbolic or hard link (on disk or
in a zip) is refused, so the grader never reads a file the student could only point at.
"""
import ast
import hashlib
import io
import itertools
import json
import os
import re
import stat
import sys
import threading
import unicodedata
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from . import probes

DEFAULT_MAX_BYTES = 5 * 1024 * 1024  # the code of one submission (a notebook's outputs not counted)
# A notebook's saved outputs (plots) are not code but must be read to reach the code: a
# notebook or zip is read up to this, never more, whatever its size on disk.
MAX_READ_BYTES = 64 * 1024 * 1024
# IPython's transformer re-tokenizes a cell once per magic line it rewrites, in this process;
# even line by line (magics_to_python) a `!x` line costs about 60 us (measured on a loaded
# 2-core machine: 128 KB of `!x` lines, 43,690 of them, took 2.6 s of CPU; 5 MB would take
# 100 s). Cells that need it (those that are not plain Python) may hold this much code per
# notebook, about 1.3 s at worst; plain cells are not limited.
MAX_MAGIC_BYTES = 64 * 1024
MAX_ZIP_MEMBERS = 200
# Parsing costs about 100 bytes of memory per byte of code at worst (`_x = (a, a, a, ...)`:
# 1 MB of it took 2.0 s of CPU and 750 MB, 5 MB took 60 s and 3.7 GB in the grading process),
# and Python 3.11 parses some code in time quadratic in its size (one f-string of 127 KB,
# `f'{a}{a}...'`, took 1.2 s). Up to this much code (the handout's, solved, holds 12-33 KB;
# worst case about 0.35 s) is parsed here; more in a short-lived child process under
# PARSE_CHILD_LIMITS (_parsed_in_child). A notebook's code is parsed twice, each cell alone
# (is it plain Python?) and then as one module: past this size, both in the child.
PARSE_IN_PROCESS_BYTES = 64 * 1024
PARSE_CHILD_LIMITS = {"address_space": 1 << 30, "cpu_seconds": 10}
# Reading a notebook's JSON costs at most about 25 times its size (`[[], [], ...]`), more
# through nbformat: up to this much (the handout's own notebook is 340 KB) is read here, at
# worst about 50 MB and a fraction of a second; more in the same bounded child (in_child).
READ_NOTEBOOK_IN_PROCESS_BYTES = 2 * 1024 * 1024
# nbformat validates about 4,000 cells a second (400,000 one-line cells took 332 s): more
# cells than any notebook of the course needs are refused before it reads them.
MAX_NOTEBOOK_CELLS = 5000
MAX_ID_CHARS = 64  # a submission id: a folder name in OUT, a CSV cell, a table row
# Notebook cells with this tag are the handout's own set-up and self-check cells (see
# notebook.py): not the student's code, so a submission is loaded without them.
CHECK_TAG = "autodiff101-check"
# Cells with this tag only draw or display (the handout's loss curve and graph pictures): the
# grader and the self-check leave them out as they leave out check cells, so that no
# submission pays for importing matplotlib to draw a picture nobody sees. Leaving a cell out
# is what deleting it would do: a student who tags a cell of their own can lose its
# definitions, never gain a point.
NOT_GRADED_TAG = "autodiff101-not-graded"
LEFT_OUT_TAGS = (CHECK_TAG, NOT_GRADED_TAG)


def _left_out(tags, source=""):
    return any(tag in LEFT_OUT_TAGS for tag in tags) or _otter_cell(source)


def _otter_cell(source):
    """Whether a cell is otter-grader's own and nothing else: the set-up ``otter assign``
    writes (``import otter``, ``grader = otter.Notebook(...)``) and its calls
    (``grader.check("q")``, ``grader.check_all()``, ``grader.export(...)``). They run otter,
    which no worker has, so each made a note in every student's feedback; a cell of only
    these holds none of the student's code, and leaving it out is what deleting it would do."""
    if "otter" not in source and "grader." not in source:
        return False
    try:
        body = parse(source).body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False

    def otter_call(node, owner, names=None):
        return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == owner
                and (names is None or node.func.attr in names))

    def otter_statement(node):
        if isinstance(node, ast.Import):
            return all(alias.name == "otter" and alias.asname is None for alias in node.names)
        if isinstance(node, ast.Assign):
            return ([getattr(target, "id", None) for target in node.targets] == ["grader"]
                    and otter_call(node.value, "otter", {"Notebook"}))
        return isinstance(node, ast.Expr) and otter_call(node.value, "grader")

    return bool(body) and all(map(otter_statement, body))
# Python 3.11 keeps the AST converter's recursion depth in state shared by all threads, so
# two ast.parse calls at once can fail with "AST constructor recursion depth mismatch"
# (CPython gh-106905); the grader loads submissions in several threads.
_AST_LOCK = threading.Lock()


def parse(text, filename="<unknown>"):
    with _AST_LOCK:
        return ast.parse(text, filename=filename)


SUFFIXES = (".py", ".ipynb", ".zip")
# Files a folder of submissions may hold that are nobody's submission.
IGNORED = {"__pycache__", ".ipynb_checkpoints", "__MACOSX"}
# The handout's modules (assignments/*.py), which import each other: in a student's one
# file or notebook these imports name that same file.
HANDOUT_MODULES = tuple(name[:-3] for name in probes.PACKAGE) + ("train", "viz")
# The names the output folder (OUT) uses for its own files (report.py, grade.py,
# reports/classreport.py, platforms/canvas.py, reports/graphfeedback.py): no submission id may be one of them.
# tests/test_hostile_load.py checks this list against those modules.
RESERVED_NAMES = {"grades.csv", "report.html", "canvas.csv", "canvas-unmatched.txt", ".autodiff101.json",
                  "results.json", "feedback.md", "feedback.html", "output.txt", "graphs",
                  "similarity.html", "similarity.json"}


class UsageError(Exception):
    """The command was asked to do something impossible (exit code 2)."""


@dataclass(frozen=True)
class Place:
    """A source position as the student knows it: their file and line, or a notebook cell
    (``file`` is then "cell N") and the line within that cell."""

    file: str
    line: int
    cell: int = None

    def __str__(self):
        return f"cell {self.cell}, line {self.line}" if self.cell is not None else f"{self.file}:{self.line}"


@dataclass
class Submission:
    id: str
    path: Path
    status: str = "ok"  # "ok" | "load-error" | "rejected"
    message: str = ""
    sources: dict = field(default_factory=dict)  # file name -> Python text
    cells: list = field(default_factory=list)  # notebooks: (first line in submission.py, cell number)
    names: dict = field(default_factory=dict)  # file name in sources -> the student's file name
    notes: list = field(default_factory=list)  # what the loader did that the student should know

    @property
    def ok(self):
        return self.status == "ok"

    @property
    def digest(self):
        """Identifies what was graded: a rerun skips a submission whose digest is unchanged."""
        noted = [self.notes] if self.notes else []  # without notes, the digests of earlier runs stand
        text = json.dumps([self.status, self.message, sorted(self.sources.items()), *noted])
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]

    def place(self, file, line):
        """Line ``line`` of ``file`` (a name in ``sources``) as a ``Place``."""
        if self.cells and file == probes.MODULE:
            first, number = max((c for c in self.cells if c[0] <= line), default=self.cells[0])
            return Place(f"cell {number}", line - first + 1, number)
        return Place(shown(self.names.get(file, file)), line)

    def where(self, file, line):
        """A source position as the student knows it: "engine.py:12" or "cell 4, line 2"."""
        return str(self.place(file, line))


def rejected(id, path, message):
    return Submission(id, Path(path), "rejected", message)


def load_error(id, path, message):
    return Submission(id, Path(path), "load-error", message)


# --- names from students' files -----------------------------------------------------------


def shown(name, limit=80):
    """A file name fit for a message: valid UTF-8 (an undecodable byte becomes U+FFFD), no
    control, format or escape characters, at most ``limit`` characters."""
    # Category C: controls, escapes, format marks (bidi overrides) and lone surrogates (an
    # undecodable byte of a file name, as Python's file system encoding keeps it).
    text = "".join("\ufffd" if unicodedata.category(c)[0] == "C" else c for c in str(name))
    return text if len(text) <= limit else text[:limit - 1] + "…"


_ID_PUNCTUATION = set(" _-.@+()")


def safe_id(name):
    """A submission id made from a file or folder name: ``alice.py``'s stem ``alice`` stays
    ``alice``. Anything else a name may hold becomes safe wherever an id appears (a folder in
    OUT, a CSV cell, a terminal, a page, a link): letters, digits and `` _-.@+()`` only,
    starting with a letter, a digit or ``_`` (so no spreadsheet formula, no hidden file, no
    ``javascript:`` link), at most MAX_ID_CHARS characters, never a name OUT uses for its
    own files. A name that had to change gets a short hash of the original, so two names
    never give one id."""
    cleaned = _cleaned(name)
    if name and cleaned == name and len(name) <= MAX_ID_CHARS and len(name.encode()) <= 4 * MAX_ID_CHARS - 8 \
            and name.casefold() not in RESERVED_NAMES:
        return name
    return _hashed(cleaned, name, 6)


def _cleaned(name):
    text = unicodedata.normalize("NFC", shown(name, limit=10_000))
    cleaned = "".join(c if c.isalnum() or c in _ID_PUNCTUATION else "_" for c in text)
    return re.sub(r"^\W+", "", cleaned).rstrip(" .")


def _hashed(cleaned, name, width):
    digest = hashlib.sha256(str(name).encode("utf-8", "surrogatepass")).hexdigest()[:width]
    head = (cleaned or "submission")[:MAX_ID_CHARS - width - 1]
    while len(head.encode()) > 4 * MAX_ID_CHARS - width - 9:  # file names hold 255 bytes
        head = head[:-1]
    return f"{head}-{digest}"


# --- finding submissions ---------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """A submission found on disk, not yet read: loading waits until its turn, so a large
    batch never holds every submission in memory at once."""

    id: str
    path: Path


@dataclass
class Discovered:
    """What ``discover`` found: the submissions, and the files beside them that are not
    submissions (notes.txt, a PDF), which are listed, never graded."""

    found: list
    skipped: list = field(default_factory=list)  # Paths


def discover(paths, exclude=()):
    """The submissions named by ``paths``: each a submission (a file, or a folder with the
    handout's layout) or a folder of submissions (one per .py, .ipynb or .zip file or
    subfolder; other files are skipped). Raises UsageError for a missing path or two
    submissions with the same name."""
    excluded = {_resolved(Path(p)) for p in exclude}
    paths_found, skipped = [], []
    for path in map(Path, paths):
        if not path.exists() and not path.is_symlink():
            raise UsageError(f"{shown(path)}: no such file or folder")
        # A link given is a submission, refused when loaded (a student's link, say from an
        # unpacked archive, could name any folder the grader can read): never walked into.
        if path.is_symlink() or not path.is_dir() or _is_package(path):
            paths_found.append(path)
            continue
        for entry in sorted(path.iterdir()):
            if entry.name in IGNORED or _resolved(entry) in excluded:
                continue
            if entry.name.startswith("."):  # hidden: never graded, but a hidden .py is said to be skipped
                if entry.suffix.lower() in SUFFIXES:
                    skipped.append(entry)
                continue
            if entry.is_file() and not entry.is_symlink() and entry.suffix.lower() not in SUFFIXES:
                skipped.append(entry)
                continue
            paths_found.append(entry)
    return Discovered([Found(id, path) for id, path in zip(_ids(paths_found), paths_found)], skipped)


def _resolved(path):
    try:
        return path.resolve() if not path.is_symlink() else path.absolute()
    except (OSError, RuntimeError):  # a loop of links
        return path.absolute()


def _ids(paths):
    """Safe ids for ``paths``; UsageError for two with the same name (one student's two
    submissions: the instructor chooses)."""
    first = {}
    for path in paths:
        raw = _raw_id(path)
        if raw in first:
            raise UsageError(
                f"two submissions have the id {shown(raw)!r}: {shown(first[raw])} and {shown(path)}; "
                "rename one so that each student has one submission")
        first[raw] = path
    return unique_ids([_raw_id(path) for path in paths])


def unique_ids(names):
    """``safe_id`` of each of ``names`` (all different), all different too, also ignoring
    case as some file systems do: names that clean to one id each keep a longer hash, except
    one that needed no change (the lower-case one, or else the first), which keeps its own
    name, as a roster knows it: ``alice`` beside ``Alice`` stays ``alice``."""
    ids = [safe_id(name) for name in names]
    for attempt in itertools.count():
        groups = defaultdict(list)
        for index, id in enumerate(ids):
            groups[id.casefold()].append(index)
        clashing = []
        for group in groups.values():
            if len(group) > 1:
                unchanged = [index for index in group if ids[index] == names[index]]
                kept = min(unchanged, key=lambda i: (names[i] != names[i].casefold(), i), default=None)
                clashing += [index for index in group if index != kept]
        if not clashing:
            return ids
        for index in clashing:
            # Longer hashes, then (when names were chosen to be other names' hashes) fresh
            # 128-bit ones, until no two ids clash: a name cannot be chosen to be all of them.
            width, salt = ((10, ""), (16, ""), (32, ""))[attempt] if attempt < 3 else (32, f"\0{attempt}")
            ids[index] = _hashed(_cleaned(names[index]), names[index] + salt, width)


def _raw_id(path):
    return path.name if path.is_dir() and not path.is_symlink() else path.stem


def _id(path):
    return safe_id(_raw_id(path))


def _is_package(folder):
    return (folder / probes.PACKAGE[0]).is_file()


# --- reading files, never through a link -------------------------------------------------


class Refused(Exception):
    """A path the grader will not read; the message says why."""


def link_problem(path):
    """Why ``path`` may not be read as (part of) a submission, or None: it is a symbolic
    link, or a file with more than one name (a hard link), whose content could be any file
    the grader can read."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if stat.S_ISLNK(info.st_mode):
        return "is a symbolic link"
    if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
        return f"is a hard link (one of {info.st_nlink} names of one file)"
    return None


def _read(path, limit, shown_name):
    """At most ``limit`` bytes of the regular file ``path``, opened without following a
    link; Refused when it is a link, not a regular file, or larger than ``limit``."""
    problem = link_problem(path)
    if problem:
        raise Refused(f"{shown_name} {problem}; submit the file itself")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as error:
        raise Refused(f"cannot read {shown_name}: {error.strerror or error}") from None
    with open(fd, "rb") as stream:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Refused(f"{shown_name} is not a file or folder")
        if info.st_nlink > 1:
            raise Refused(f"{shown_name} is a hard link (one of {info.st_nlink} names of one file); submit a copy")
        if info.st_size > limit:
            raise Refused(f"{shown_name} is {_size(info.st_size)}, over the {_size(limit)} limit")
        data = stream.read(limit + 1)
    if len(data) > limit:  # it grew meanwhile
        raise Refused(f"{shown_name} is over the {_size(limit)} limit")
    return data


def _read_limit(name, max_bytes):
    """How much of a file named ``name`` is read: its code, or a notebook or zip whole."""
    return max_bytes if _kind(name) == "code" else max(max_bytes, MAX_READ_BYTES)


# --- loading one submission ------------------------------------------------------------


def load(path, id=None, max_bytes=DEFAULT_MAX_BYTES):
    """Read one submission. Never raises for bad input: the status says what went wrong."""
    path = Path(path)
    id = id or _id(path)
    name = shown(path.name)
    try:
        problem = link_problem(path)
        if problem:  # the grader would read its target, the reference say, as the student's code
            return rejected(id, path, f"{name} {problem}; submit the file or folder itself")
        if path.is_dir():
            return _load_folder(id, path, max_bytes)
        if not path.is_file():
            return rejected(id, path, f"{name} is not a file or folder")
        if path.suffix.lower() not in SUFFIXES:  # said before reading it
            return _load_file(id, path, path.name, b"", max_bytes)
        return _load_file(id, path, path.name, _read(path, _read_limit(path.name, max_bytes), name), max_bytes)
    except Refused as refusal:
        return rejected(id, path, str(refusal))
    except OSError as error:
        return rejected(id, path, f"cannot read {name}: {error.strerror or error}")
    except RecursionError:  # a walk over something the student built, nested past Python's limit
        return load_error(id, path, f"{name} nests something (folders, lists, objects) too deeply to be read")


def _load_file(id, path, name, data, max_bytes):
    suffix = PurePosixPath(name).suffix.lower()
    if suffix == ".py":
        return _from_python(id, path, name, data, max_bytes)
    if suffix == ".ipynb":
        return _from_notebook(id, path, name, data, max_bytes)
    if suffix == ".zip":
        return _from_zip(id, path, name, data, max_bytes)
    return rejected(id, path, f"{shown(name)} is not a .py file, a .ipynb notebook, a .zip or a folder")


def _decode(name, data):
    """UTF-8 text, or the reason it is not: the line and column of the first bad byte."""
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        return None, (f"{shown(name)} is not UTF-8 text: byte 0x{data[error.start]:02x} "
                      f"at line {line}, column {column}")


def _from_python(id, path, name, data, max_bytes):
    if len(data) > max_bytes:
        return rejected(id, path, f"{shown(name)} is {_size(len(data))}, over the {_size(max_bytes)} limit")
    text, problem = _decode(name, data)
    if problem:
        return load_error(id, path, problem)
    if not text.strip():
        return load_error(id, path, f"{shown(name)} is empty")
    submission = Submission(id, path, sources={probes.MODULE: text}, names={probes.MODULE: name})
    return _syntax_checked(submission)


def _from_notebook(id, path, name, data, max_bytes):
    text, problem = _decode(name, data)
    if problem:
        return load_error(id, path, problem)
    if not text.strip():
        return load_error(id, path, f"{shown(name)} is empty")
    del text  # read again where it is parsed, here or in the child
    try:
        cells = notebook_code_cells(data, max_code_bytes=max_bytes)
    except TooMuchCode as error:
        cells, code = None, error.size
    except ValueError as error:
        return load_error(id, path, f"{shown(name)}: {error}")
    else:
        code = _code_size(cells)
    if cells is not None and not any(source.strip() for source in cells):
        return load_error(id, path, f"{shown(name)} has no code cells with code in them")
    if code > max_bytes:
        return rejected(id, path, f"the code cells of {shown(name)} hold {_size(code)} of code, over the "
                                  f"{_size(max_bytes)} limit (saved outputs are not counted)")
    called = f"the code cells of {shown(name)}"
    if code <= PARSE_IN_PROCESS_BYTES:
        made, parsed = _notebook_module(shown(name), cells), None
    else:  # deciding which cells are plain Python parses each: bounded, with the module's own parse
        made = in_child("notebook-code", json.dumps({"name": shown(name), "cells": cells}).encode())
        if made is None:
            return load_error(id, path, f"{called} cannot be parsed: {too_costly('parsing it')}")
        parsed = made
    if "problem" in made:
        return load_error(id, path, made["problem"])
    submission = Submission(id, path, sources={probes.MODULE: made.get("module", "")},
                            cells=[tuple(start) for start in made["starts"]])
    return _syntax_checked(submission, parsed, called)


def _notebook_module(name, cells):
    """A notebook's code cells (``cells``: their sources, in order) as one module, each cell
    plain Python or turned into it by IPython's transformer: {"module": text, "starts":
    [(first line in the module, cell number)]}, or {"problem": message} when a cell holds a
    character Python refuses (said with its cell and line) or more IPython than
    MAX_MAGIC_BYTES. ``name``: the notebook's, for messages. Costs a parse of every cell
    (``is_python``): done here only for PARSE_IN_PROCESS_BYTES of code, else in the
    bounded child (``_notebook_code_task``)."""
    module, starts = [], []
    line, magic_budget = 1, MAX_MAGIC_BYTES
    for number, source in enumerate(cells, start=1):
        if not source.strip():
            continue
        refused = _refused_character(source)
        if refused:
            return {"problem": f"cell {number} of {name}, line {refused[0]}, {refused[1]}"}
        if is_python(source):
            python = source
        else:
            size = len(source.encode("utf-8"))
            if size > magic_budget:
                return {"problem": _too_much_ipython(source, number, size)}
            magic_budget -= size
            python = _ipython_to_python(source)
        if not python.endswith("\n"):
            python += "\n"
        starts.append((line, number))
        module.append(python)
        line += python.count("\n")
    return {"module": "".join(module), "starts": starts}


# Characters a notebook's JSON can hold (as \u0000, \ud800) that Python refuses in code: the
# NUL character, and half of a UTF-16 surrogate pair alone, which is no character at all.
_REFUSED_CHARACTER = re.compile("[\x00\ud800-\udfff]")


def _refused_character(source):
    """(line, what is wrong, in words) for the first character of a cell Python refuses, or None."""
    match = _REFUSED_CHARACTER.search(source)
    if match is None:
        return None
    line = source.count("\n", 0, match.start()) + 1
    if match.group() == "\x00":
        return line, ("holds a NUL character (code 0, invisible in most editors), which Python does not "
                      "allow in code; delete it (retyping the line does)")
    return line, (f"holds a broken character (U+{ord(match.group()):04X}, half of an emoji or other "
                  "character whose other half is missing), which is not text; retype that line")


def _notebook_code_task(payload):
    """The child's side of a large notebook: ``_notebook_module``, then its module parsed
    (``_parsed_sources``'s outcome, with "starts")."""
    request = json.loads(payload)
    made = _notebook_module(request["name"], request["cells"])
    if "problem" in made:
        return made
    outcome = _parsed_sources({probes.MODULE: made["module"]})
    if outcome.get("reason") == "MemoryError":
        raise MemoryError  # as in _parse_task: the parent says what the limits are
    return {**outcome, "starts": made["starts"]}


def _too_much_ipython(source, number, size):
    try:
        if len(source) > PARSE_IN_PROCESS_BYTES:  # too big to parse here: name its first IPython line
            match = _IPYTHON_LINE.search(source)
            start = source.rfind("\n", 0, match.start()) + 1 if match else 0
            line = source[start:source.find("\n", start) % (len(source) + 1)]
            raise SyntaxError("IPython", (None, source.count("\n", 0, start) + 1 if match else None, 0, line))
        parse(source)
        at = ""
    except SyntaxError as error:
        at = f" (line {error.lineno}: {_line_text(error.text)})" if error.lineno else ""
    except (ValueError, RecursionError, MemoryError):
        at = ""
    return (f"cell {number} is not plain Python{at}: the grader turns IPython's %magic and !shell lines into "
            f"Python in at most {_size(MAX_MAGIC_BYTES)} of a notebook's cells, and cell {number} ({_size(size)}) "
            "takes it past that; remove those lines, or move the code to cells without them")


def _code_size(cells):
    """The bytes of code in a notebook's cells (``cells``: their sources), in UTF-8."""
    return sum(len(source.encode("utf-8", "surrogatepass")) for source in cells)


class TooMuchCode(Exception):
    """A notebook read in the child holds more code than asked for: only its size comes back."""

    def __init__(self, size):
        super().__init__(size)
        self.size = size


def notebook_code_cells(notebook, max_code_bytes=None):
    """The source of every code cell of a notebook (``notebook``: its text, or its bytes in
    UTF-8), in order (empty cells included, so that cell numbers count as Jupyter counts
    them; the handout's check cells and cells tagged ``NOT_GRADED_TAG`` are left empty);
    ValueError when it is not a notebook Jupyter would open, or reading it would cost more
    than PARSE_CHILD_LIMITS.

    Read as Jupyter reads it: any version nbformat knows, v1-v3 upgraded to v4, cell ids or
    none, ``outputs`` and ``execution_count`` there or not (outputs are not code: only each
    code cell's source and tags are kept, in a notebook made with nbformat's own helpers
    and validated). Refused: what nbformat cannot read, and code cells whose source is not
    text.

    Reading a notebook's JSON costs up to 25 times its size in memory, more through nbformat
    (``"metadata": [[], [], ...]`` filling 56 MB took 0.7 GB and 3 s with ``json``, 1.3 GB and
    16 s through nbformat): a notebook over READ_NOTEBOOK_IN_PROCESS_BYTES is read in a bounded
    child process (``in_child``), as large code is parsed.

    A plain v4 notebook is read with ``json`` alone (``_plain_v4_code_cells``): importing
    nbformat imports jsonschema with every format plug-in installed, over a second with
    the nbgrader/otter extras. Anything else goes through nbformat, as Jupyter reads it.

    ``max_code_bytes``: where the child reads it, a notebook whose code cells hold more
    (UTF-8 bytes) raises TooMuchCode, so that 60 MB of code a 60 KB zip inflates to never
    comes back to this process."""
    data = notebook.encode("utf-8", "surrogatepass") if isinstance(notebook, str) else notebook
    if len(data) <= READ_NOTEBOOK_IN_PROCESS_BYTES:
        cells = _plain_code_cells(data)
        if cells is not None:
            return cells
    # Through nbformat the cost is not bounded by the size (a 30 KB v3 notebook of 10,000 empty
    # outputs took 4 s and 370 MB to convert and validate): always in the child.
    outcome = in_child("notebook", data, max_code_bytes=max_code_bytes)
    if outcome is None:
        raise ValueError(too_costly("reading its JSON (outputs and metadata included)") +
                         " Clear its outputs (Kernel → Restart & Clear Output), save it and hand it in again")
    if "problem" in outcome:
        raise ValueError(outcome["problem"])
    if "code_bytes" in outcome:
        raise TooMuchCode(outcome["code_bytes"])
    return outcome["cells"]


def _notebook_task(payload, max_code_bytes=None):
    """The child's side of ``notebook_code_cells``."""
    try:
        cells = _read_code_cells(payload)
    except ValueError as error:
        return {"problem": str(error)}
    size = _code_size(cells)
    return {"code_bytes": size} if max_code_bytes is not None and size > max_code_bytes else {"cells": cells}


# What nesting past Python's recursion limit (about 1,000 levels) in a notebook's JSON becomes.
TOO_DEEP = ("its JSON nests lists or objects too deeply to be read (Python reads about 1,000 levels); "
            "is something in its metadata or outputs generated?")


def _read_code_cells(data):
    """``notebook_code_cells`` in this process: with ``json`` alone when it is a plain v4
    notebook, else through nbformat."""
    cells = _plain_code_cells(data)
    return cells if cells is not None else _code_cells_by_nbformat(_text_of(data))


def _plain_code_cells(data):
    """The code cells of ``data`` read with ``json`` alone when it is a plain v4 notebook
    (``_plain_v4_code_cells``), else None (nbformat must read it, or say why it cannot).
    Raises ValueError for nesting past Python's limit and for too many cells."""
    try:
        notebook = json.loads(_text_of(data), parse_int=_json_int)
    except ValueError:  # not JSON (or not UTF-8): nbformat says why
        return None
    except RecursionError:
        raise ValueError(TOO_DEEP) from None
    return _plain_v4_code_cells(notebook)


def _json_int(digits):
    """A JSON integer as ``json`` reads it, but one longer than Python reads
    (``sys.get_int_max_str_digits()``, 4,300 digits: int() of more is refused as too costly)
    becomes an infinity instead of making the file "not JSON": no field the grader reads
    holds one (a huge ``execution_count`` is ignored, as all of them are)."""
    limit = sys.get_int_max_str_digits()
    if not limit or len(digits.lstrip("-")) <= limit:
        return int(digits)
    return float("-inf") if digits.startswith("-") else float("inf")


def _text_of(data):
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("utf-8-sig", "replace")  # not a notebook: nbformat says why


def _strings(value):
    return isinstance(value, str) or (isinstance(value, list) and all(isinstance(line, str) for line in value))


def _plain_v4_code_cells(notebook):
    """``notebook_code_cells`` of a parsed v4 notebook with nothing nbformat would refuse
    or reshape (every text a string or a list of strings, every cell, output and metadata
    a dict, no attachments; nbformat requires the metadata), else None."""
    if not (isinstance(notebook, dict) and type(notebook.get("nbformat")) is int and notebook["nbformat"] == 4
            and isinstance(notebook.get("cells"), list) and isinstance(notebook.get("metadata"), dict)):
        return None
    if len(notebook["cells"]) > MAX_NOTEBOOK_CELLS:
        raise ValueError(f"it has {len(notebook['cells'])} cells, over the limit of {MAX_NOTEBOOK_CELLS}; "
                         "join cells, or delete the ones you do not need")
    code = []
    for cell in notebook["cells"]:
        if not (isinstance(cell, dict) and "attachments" not in cell and _strings(cell.get("source", ""))
                and isinstance(cell.get("metadata"), dict)):
            return None
        if cell.get("cell_type") != "code":
            continue
        outputs = cell.get("outputs", [])
        if not (isinstance(outputs, list) and all(
                isinstance(output, dict) and _strings(output.get("text", ""))
                and isinstance(output.get("data", {}), dict) and all(map(_strings, output.get("data", {}).values()))
                for output in outputs)):
            return None
        tags = cell["metadata"].get("tags")
        tags = [tag for tag in tags if isinstance(tag, str)] if isinstance(tags, list) else []
        source = cell.get("source", "")
        code.append("" if _left_out(tags, "".join(source)) else "".join(source))
    return code


def _code_cells_by_nbformat(text):
    import nbformat
    from nbformat.reader import NotJSONError

    count = _cell_count(text)
    if count > MAX_NOTEBOOK_CELLS:
        raise ValueError(f"it has {count} cells, over the limit of {MAX_NOTEBOOK_CELLS}; join cells, or "
                         "delete the ones you do not need")
    try:
        notebook = nbformat.convert(nbformat.reader.reads(text, parse_int=_json_int), 4)
    except NotJSONError:
        raise ValueError("not a notebook: the file is not JSON") from None
    except RecursionError:  # the JSON, or nbformat's own walk over it
        raise ValueError(TOO_DEEP) from None
    except nbformat.ValidationError as error:
        raise ValueError(f"not a valid notebook: {shown(str(error).splitlines()[0], 300)}") from None
    except Exception as error:  # JSON, but not shaped like a notebook at all
        raise ValueError(f"not a notebook ({type(error).__name__}: {shown(error, 300)})") from None
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):
        raise ValueError("not a valid notebook: it has no list of cells")
    code = []
    try:
        for cell in (cell for cell in cells if isinstance(cell, dict) and cell.get("cell_type") == "code"):
            metadata = cell.get("metadata")
            tags = metadata.get("tags") if isinstance(metadata, dict) else None
            tags = [tag for tag in tags if isinstance(tag, str)] if isinstance(tags, list) else []
            code.append(nbformat.v4.new_code_cell(source=cell.get("source", ""), metadata={"tags": tags}))
        nbformat.validate(nbformat.v4.new_notebook(cells=code))
    except nbformat.ValidationError:
        raise ValueError(f"not a valid notebook: the source of code cell {len(code) + 1} is not text") from None
    return ["" if _left_out(cell.metadata.tags, cell.source) else cell.source for cell in code]


def _cell_count(text):
    """How many cells a notebook's JSON holds (v4's ``cells``, v3's worksheets' cells); 0
    when it is not JSON shaped like that (nbformat then says what is wrong)."""
    try:
        raw = json.loads(text, parse_int=_json_int)
    except (ValueError, RecursionError):
        return 0
    if not isinstance(raw, dict):
        return 0
    sheets = raw.get("worksheets")
    lists = [raw.get("cells")] + ([sheet.get("cells") for sheet in sheets if isinstance(sheet, dict)]
                                  if isinstance(sheets, list) else [])
    return sum(len(cells) for cells in lists if isinstance(cells, list))


# A line IPython would rewrite: a magic, a shell escape, a help request, `x = !ls`. Used
# instead of parsing for cells too big to parse here (PARSE_IN_PROCESS_BYTES).
_IPYTHON_LINE = re.compile(r"^[ \t]*[%!?]|\?[ \t]*$|=[ \t]*[%!]", re.M)


def is_python(source):
    """Whether a cell is plain Python (IPython leaves it as it is; asking it instead costs
    three times as much). A cell too big to parse here is plain Python unless a line looks
    like IPython's; its syntax is checked later, within bounds."""
    if len(source) > PARSE_IN_PROCESS_BYTES:
        return not _IPYTHON_LINE.search(source)
    try:
        parse(source)
        return True
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False


def magics_to_python(source):
    """A cell's code as plain Python: IPython's own transformer turns ``%magic``, ``%%cell``
    and ``!shell`` lines into ``get_ipython()`` calls, the same text Jupyter would run.

    IPython's ``transform_cell`` re-tokenizes the whole cell after each line it rewrites
    (quadratic: 47 s for 82 KB of ``!`` lines, and it gives up after 500 of them). Here the
    cell-wide steps run once on the whole cell, then the cell is tokenized once and each
    logical line that needs a token transform is transformed alone, by the same
    ``TransformerManager``; each of them looks at one logical line only, so the text is
    IPython's, at a cost linear in the cell's size. (One difference: a ``!`` or ``%`` line
    continued with a backslash into a line that opens a triple-quoted string ends that
    string for IPython, which re-tokenizes after it, and not here. No working code does
    that; the result is a syntax error or another string's text, nothing more.)"""
    return source if is_python(source) else _ipython_to_python(source)


_transformer_module = []


def ipython_transformer():
    """IPython's ``IPython.core.inputtransformer2`` module. Importing it the usual way runs
    ``IPython/__init__.py``, which imports the whole terminal shell (0.2-1 s) that the
    transformer, a module of the standard library's imports only, does not use: the file is
    executed alone through importlib's spec API, unless IPython is imported already or that
    fails (a later IPython whose transformer imports more), then imported as usual."""
    if not _transformer_module:
        import importlib.util

        module = sys.modules.get("IPython.core.inputtransformer2")
        if module is None and "IPython" not in sys.modules:
            try:
                package = importlib.util.find_spec("IPython")  # finds it without running it
                path = os.path.join(os.path.dirname(package.origin), "core", "inputtransformer2.py")
                spec = importlib.util.spec_from_file_location("autodiff101_ipython_inputtransformer2", path)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
            except Exception:
                module = None
        if module is None:
            import IPython.core.inputtransformer2 as module
        _transformer_module.append(module)
    return _transformer_module[0]


def _ipython_to_python(source):
    transformer = ipython_transformer()
    TransformerManager, make_tokens_by_line = transformer.TransformerManager, transformer.make_tokens_by_line

    manager = TransformerManager()
    try:
        lines = (source if source.endswith("\n") else source + "\n").splitlines(keepends=True)
        for transform in manager.cleanup_transforms + manager.line_transforms:
            lines = transform(lines)
        python = []
        for statement, special in _logical_lines(lines, make_tokens_by_line(lines), manager.token_transformers):
            python += manager.do_token_transforms(statement) if special else statement
        return "".join(python)
    except Exception:  # text IPython cannot tokenize: the syntax check will say what is wrong
        return source


def _logical_lines(lines, tokens_by_line, transformers):
    """``lines`` cut into runs of whole logical lines: (lines, whether one of IPython's
    token ``transformers`` applies to them). Rows come from one tokenization of the cell;
    lines after the last token (an unterminated string) join the last run."""
    runs = []  # (first row, special), rows counted from 0
    for tokens in tokens_by_line:
        first = tokens[0].start[0] - 1
        if first >= len(lines):
            continue
        special = any(transformer.find([tokens]) for transformer in transformers)
        if runs and runs[-1][0] == first:
            runs[-1] = (first, runs[-1][1] or special)
        elif runs and not special and not runs[-1][1]:
            continue  # plain Python joins the plain run before it
        else:
            runs.append((first, special))
    if not runs or runs[0][0] != 0:
        runs.insert(0, (0, False))
    ends = [first for first, _ in runs[1:]] + [len(lines)]
    return [(lines[first:end], special) for (first, special), end in zip(runs, ends)]


def _line_text(text, limit=120):
    text = shown((text or "").strip(), limit)
    return f"`{text}`" if text else "(an empty line)"


def _syntax_checked(submission, outcome=None, called=None):
    """Parse (never run) every source, so a syntax error is reported with its place; then
    point the handout's imports between its modules at the student's own code. Small code is
    parsed here, more in a bounded child process (PARSE_IN_PROCESS_BYTES). ``outcome``:
    ``_parsed_sources``'s when it was parsed already (a large notebook, in its child);
    ``called``: what the student calls the code when it cannot be parsed at all (a
    notebook's "the code cells of x.ipynb"; else the file's name)."""
    if outcome is None:
        size = sum(len(text) for text in submission.sources.values())
        outcome = _parsed_sources(submission.sources) if size <= PARSE_IN_PROCESS_BYTES else \
            _parsed_in_child(submission.sources)
    if "sources" in outcome:
        submission.sources.update(outcome["sources"])
        return submission
    file = outcome.get("file") or (next(iter(submission.sources)) if len(submission.sources) == 1 else "")
    if "syntax" in outcome:
        error = outcome["syntax"]
        place = submission.where(file, error["line"] or 1)
        version = ".".join(map(str, sys.version_info[:2]))
        return load_error(submission.id, submission.path,
                          f"syntax error at {place}: {error['message']} in {_line_text(error['text'])} (the grader "
                          f"runs Python {version}; syntax that needs a newer Python does not load here)")
    name = called or (shown(submission.names.get(file, file)) if file else "the code")
    return load_error(submission.id, submission.path, f"{name} cannot be parsed: {outcome['reason']}")


def _parsed_sources(sources):
    """Parse every source and link its handout imports: {"sources": {file: text}}, or
    {"file", "syntax": {"line", "message", "text"}}, or {"file", "reason"}. Plain JSON: it
    may come from a child process (_parsed_in_child)."""
    trees = {}
    for file, text in sources.items():
        try:
            trees[file] = parse(text, filename=file)
        except SyntaxError as error:
            return {"file": file, "syntax": {"line": error.lineno, "message": error.msg, "text": error.text}}
        except (ValueError, RecursionError, MemoryError) as error:  # null bytes, absurd nesting
            return {"file": file, "reason": str(error) or type(error).__name__}
    package = probes.MODULE not in sources
    modules = {name[:-3] for name in sources}
    return {"sources": {file: link_handout_imports(sources[file], tree, package, modules)
                        for file, tree in trees.items()}}


def _parsed_in_child(sources):
    """``_parsed_sources`` in a bounded child process (``in_child``): code built to make
    parsing costly (5 MB of ``[1, 1, ...]`` takes GBs) fails there, as a load error, instead
    of in the grader."""
    outcome = in_child("parse", json.dumps(sources).encode())
    return outcome if outcome is not None else {"reason": too_costly("parsing it")}


def too_costly(what):
    """The reason given when ``what`` ("parsing it") went past PARSE_CHILD_LIMITS."""
    limits = PARSE_CHILD_LIMITS
    return (f"{what} takes more than the grader allows ({limits['address_space'] >> 20} MB of memory, "
            f"{limits['cpu_seconds']} s of CPU); is something in it generated?")


def in_child(task, payload, **options):
    """``_CHILD_TASKS[task](payload, **options)`` (``payload``: bytes; ``options``: plain
    JSON values) in a short-lived child process
    that can use at most PARSE_CHILD_LIMITS (its own rlimits, set before it reads the
    payload): its outcome, a dict, or None when it went past a limit (or failed). For the
    work on a student's file whose cost grows faster than its size (parsing code, reading a
    notebook's JSON), so that a file built to make it costly costs the grader nothing."""
    import subprocess

    limits = PARSE_CHILD_LIMITS
    # The kit's package first (the handout's vendored copy of this module there), then this
    # process's own path, where nbformat is found: -S skips site's start-up work.
    code = (f"import resource, sys; resource.setrlimit(resource.RLIMIT_AS, ({limits['address_space']},) * 2); "
            f"resource.setrlimit(resource.RLIMIT_CPU, ({limits['cpu_seconds']},) * 2); "
            f"sys.path[:0] = [{str(_HERE.parent)!r}]; sys.path += {[p for p in sys.path if p]!r}; "
            f"from {__package__}.load import _child_main; _child_main({task!r}, {json.dumps(options)!r})")
    try:
        # A wall-clock backstop far above the CPU limit: on a busy machine the child waits its turn.
        done = subprocess.run([sys.executable, "-S", "-c", code], input=payload,
                              capture_output=True, timeout=limits["cpu_seconds"] * 12)
        outcome = json.loads(done.stdout) if done.returncode == 0 else None
    except (subprocess.TimeoutExpired, ValueError, OSError):
        outcome = None
    return outcome if isinstance(outcome, dict) else None


def _child_main(task, options="{}"):
    """The child's side of ``in_child``: the payload on stdin, the outcome as JSON on stdout;
    out of memory, it exits with status 1 and the parent says so."""
    try:
        outcome = _CHILD_TASKS[task](sys.stdin.buffer.read(), **json.loads(options))
    except MemoryError:
        sys.exit(1)
    sys.stdout.write(json.dumps(outcome))


def _parse_task(payload):
    outcome = _parsed_sources(json.loads(payload))
    if outcome.get("reason") == "MemoryError":
        raise MemoryError
    return outcome


# --- the handout's imports between its modules -------------------------------------------


def link_handout_imports(text, tree, package, modules=()):
    """``text`` (parsed as ``tree``) with its imports of the handout's modules naming the
    student's own code, each rewritten in place so that every line keeps its number.

    One module (a file holding ``engine.py`` then ``nn.py``, or a notebook): the names are
    already in it, so ``from .engine import Value`` and ``from engine import Value`` go
    (``as V`` becomes ``V = Value``), and ``import engine`` binds ``engine`` to the module
    itself. A package (the handout's folder; ``modules``: its module names): absolute
    imports of its modules become relative, so ``engine`` is loaded once, as
    ``submission.engine``, and every module sees the same ``Value`` class."""
    edits = []
    for node in ast.walk(tree):
        replacement = _import_replacement(node, package, modules)
        if replacement is not None:
            edits.append((node, replacement))
    if not edits:
        return text
    lines = text.splitlines(keepends=True)
    for node, replacement in sorted(edits, key=lambda edit: (edit[0].lineno, edit[0].col_offset), reverse=True):
        first, last = lines[node.lineno - 1], lines[node.end_lineno - 1]
        before = _chars(first, node.col_offset)
        after = last[len(_chars(last, node.end_col_offset)):]
        # Continuation backslashes keep the replaced statement on as many lines as it had.
        middle = replacement + " \\\n" * (node.end_lineno - node.lineno)
        lines[node.lineno - 1:node.end_lineno] = [before + middle + after]
    return "".join(lines)


def _chars(line, byte_offset):
    """The start of ``line`` up to an AST column offset (counted in UTF-8 bytes)."""
    return line.encode("utf-8", "surrogatepass")[:byte_offset].decode("utf-8", "surrogatepass")


def _import_replacement(node, package, modules):
    """The statement(s) that replace an import of the handout's modules, or None."""
    if isinstance(node, ast.ImportFrom) and node.level <= 1:
        if node.module is None:  # from . import engine, nn
            if node.level == 0 or not all(a.name in HANDOUT_MODULES for a in node.names) or package:
                return None
            return "; ".join(f"{a.asname or a.name} = {_THIS_MODULE}" for a in node.names)
        if node.module not in HANDOUT_MODULES:
            return None
        if package:
            if node.level == 1 or node.module not in modules:
                return None
            names = ", ".join(a.name + (f" as {a.asname}" if a.asname else "") for a in node.names)
            return f"from .{node.module} import {names}"
        aliases = [f"{a.asname} = {a.name}" for a in node.names if a.asname and a.asname != a.name and a.name != "*"]
        return "; ".join(aliases) or "pass"
    if isinstance(node, ast.Import) and any(a.name in HANDOUT_MODULES for a in node.names):
        parts = []
        for alias in node.names:
            if alias.name not in HANDOUT_MODULES or (package and alias.name not in modules):
                parts.append(f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else ""))
            elif package:
                parts.append(f"from . import {alias.name}" + (f" as {alias.asname}" if alias.asname else ""))
            else:
                parts.append(f"{alias.asname or alias.name} = {_THIS_MODULE}")
        return "; ".join(parts)
    return None


_THIS_MODULE = "__import__('sys').modules[__name__]"


# --- folders and zips ------------------------------------------------------------------


def _load_folder(id, folder, max_bytes):
    files, folders = {}, []
    limits = _limits(max_bytes)
    used = dict.fromkeys(limits, 0)
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.name in IGNORED:
            continue
        where = f"{shown(folder.name)}/{shown(entry.name)}"
        problem = link_problem(entry)
        if problem:  # the grader would read its target, the reference say, as the student's code
            return rejected(id, folder, f"{where} {problem}; submit the file itself")
        kind = _kind(entry.name)
        if entry.is_dir():
            folders.append(entry.name)
        if kind is None or not entry.is_file():
            continue  # only the files at the top of the submission, and only code, matter
        if used[kind] + entry.stat().st_size > limits[kind]:
            return rejected(id, folder, f"the folder {shown(folder.name)} holds more than the {_size(limits[kind])} limit")
        data = _read(entry, limits[kind] - used[kind], where)
        used[kind] += len(data)
        files[entry.name] = data
    if not files and folders:  # never looked into: a student's tree costs one read at most
        return rejected(id, folder, f"{shown(folder.name)}/ holds no .py file or .ipynb notebook, only "
                                    f"{'the folder' if len(folders) == 1 else 'folders'} "
                                    f"{', '.join(shown(name) + '/' for name in folders[:3])}"
                                    f"{', ...' if len(folders) > 3 else ''}: hand in the files themselves")
    return _from_files(id, folder, files, shown(folder.name) + "/", max_bytes)


# The handout's own copies of its modules: beside the kit (autograder/ and assignments/ in one
# folder, also inside the Gradescope and PrairieLearn kits), or, in the self-check's vendored
# copy of this module, the handout folder around it; else the reference the handout is made
# from. A module with an exercise in it (a TODO, or the reference's solution markers) is the
# student's to write, never filled in.
_HERE = Path(__file__).resolve().parent
HANDOUT_FOLDERS = (_HERE.parent / "assignments", _HERE.parent, _HERE.parent / "solutions")
EXERCISE_MARKERS = ("# TODO exercise", "BEGIN SOLUTION")
# What the handout asks a student to hand in (what check.py --zip packs): a module filled in
# from the handout is noted only when it is one of these.
HANDED_IN = probes.PACKAGE + probes.EXTENSION_MODULES


def provided_module(name, folders=None):
    """The text of the handout's module ``name`` (``nn.py``) when the handout provides it
    whole, as code the student need not write; None when it holds an exercise or is not found."""
    for folder in HANDOUT_FOLDERS if folders is None else folders:
        try:
            text = (Path(folder) / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        return None if any(marker in text for marker in EXERCISE_MARKERS) else text
    return None


def _limits(max_bytes):
    """How much of each kind of file a folder or zip may hold: code, and notebooks with outputs."""
    return {"code": max_bytes, "notebook": max(max_bytes, MAX_READ_BYTES)}


def _kind(name):
    return {".py": "code", ".ipynb": "notebook"}.get(PurePosixPath(name).suffix.lower())


def _from_files(id, path, files, where, max_bytes):
    """A submission from the files at the top of a folder or zip (names without folders)."""
    if probes.PACKAGE[0] in files:
        instead = notebook_instead(files)
        if instead:
            submission = _load_file(id, path, instead[0], files[instead[0]], max_bytes)
            submission.notes.append(instead[1])
            return submission
        sources, notes = {}, []
        for name, data in files.items():
            if not name.endswith(".py"):
                continue
            text, problem = _decode(name, data)
            if problem:
                return load_error(id, path, problem)
            sources[name] = text
        if not sources[probes.PACKAGE[0]].strip():
            return load_error(id, path, f"{probes.PACKAGE[0]} is empty")
        for name in probes.PACKAGE:
            if name in sources:
                continue
            text = provided_module(name)
            if text is None:
                return load_error(id, path, f"{name} is missing: upload {name} too, beside {probes.PACKAGE[0]}")
            sources[name] = text
            if name in HANDED_IN:  # asked for and missing: the student should know what was graded
                notes.append(f"{name} not handed in: the handout's own was used")
        # moons.py imports the handout's train.py (collector_paused), which the handout
        # provides whole and never asks for (check.py --zip packs only HANDED_IN): filled in
        # without a note, since nothing the student was asked for is missing.
        if any(name in sources for name in probes.EXTENSION_MODULES) and "train.py" not in sources:
            text = provided_module("train.py")
            if text is not None:
                sources["train.py"] = text
        in_modules = sum(len(UNWRITTEN.findall(files[name].decode("utf-8", "replace")))
                         for name in probes.PACKAGE if name in files)
        notebooks = sorted(shown(name) for name in files if _kind(name) == "notebook"
                           and not _no_more_work(files[name], in_modules))
        if notebooks:
            notes.append(f"{', '.join(notebooks)} not graded: with {probes.PACKAGE[0]} handed in, the .py files are "
                         "graded; hand in the notebook alone to have it graded")
        return _syntax_checked(Submission(id, path, sources=sources, notes=notes))
    candidates = [name for name in files if PurePosixPath(name).suffix.lower() in (".py", ".ipynb")]
    if len(candidates) == 1:
        return _load_file(id, path, candidates[0], files[candidates[0]], max_bytes)
    if not candidates:
        return rejected(id, path, f"{where} holds no .py file or .ipynb notebook")
    return rejected(
        id, path, f"{where} holds several candidate files ({', '.join(sorted(map(shown, candidates)))}); "
        f"submit one .py or .ipynb, or the handout's {' + '.join(probes.PACKAGE)}"
    )


# --- a handout folder whose work is in its notebook ----------------------------------------

# A handout TODO not yet done: the line handout.py's ``todo_lines`` writes.
UNWRITTEN = re.compile(r"raise\s+NotImplementedError\(\s*[\"']exercise [\w-]+: not written yet")


def _unwritten_in_notebook(data):
    """How many of the handout's exercises a handout notebook (``data``: its bytes) leaves
    unwritten, or None when it is not a handout notebook that can be read."""
    if CHECK_TAG.encode() not in data:
        return None
    if len(data) <= READ_NOTEBOOK_IN_PROCESS_BYTES:
        code = _handout_code(data)
    else:  # bounded, as notebook_code_cells reads a notebook
        code = (in_child("handout-code", data) or {}).get("code")
    return None if code is None else len(UNWRITTEN.findall(code))


def _handout_code(data):
    """The code of a notebook's code cells but the handout's check cells, read with ``json``
    alone (the self-check runs where nbformat is not installed); None when it cannot be."""
    try:
        cells = json.loads(data.decode("utf-8-sig"), parse_int=_json_int)["cells"]
        return "\n".join("".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
                         for cell in cells if cell.get("cell_type") == "code"
                         and CHECK_TAG not in cell.get("metadata", {}).get("tags", []))
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None


def _handout_code_task(payload):
    return {"code": _handout_code(payload)}


def _no_more_work(data, in_modules):
    """Whether a notebook beside the modules is the handout's, with no more exercises written
    than the modules have: nothing in it is lost by grading the modules, so no note."""
    unwritten = _unwritten_in_notebook(data)
    return unwritten is not None and unwritten >= in_modules


def notebook_instead(files):
    """``(notebook name, note)`` when ``files`` (the top of a folder or zip: name -> bytes) is a
    handout folder whose work was done in its notebook: exactly one notebook with the handout's
    set-up cell, whose code leaves fewer exercises unwritten than the .py modules do (a student
    hands in the whole folder: the solved notebook beside untouched stubs). Else None.
    Standard library only: the self-check uses it where nbformat is not installed."""
    notebooks = [name for name in files if _kind(name) == "notebook"]
    modules = [name for name in probes.PACKAGE if name in files]
    if len(notebooks) != 1 or CHECK_TAG.encode() not in files[notebooks[0]]:
        return None
    in_modules = sum(len(UNWRITTEN.findall(files[name].decode("utf-8", "replace"))) for name in modules)
    in_notebook = _unwritten_in_notebook(files[notebooks[0]])
    if in_notebook is None:
        return None  # not a notebook that can be read: the modules are graded
    if in_notebook >= in_modules:
        return None
    return notebooks[0], (
        f"{shown(notebooks[0])} is what is graded here, not {' and '.join(modules)}: those leave "
        f"{in_modules} exercise{'s' * (in_modules != 1)} unwritten, the notebook {in_notebook}")


def handout_notebook(folder):
    """``(path of the notebook, note)`` when the folder is graded as its notebook
    (``notebook_instead``), else None. For the self-check, which then checks and packs it."""
    folder = Path(folder)
    files = {}
    try:
        for entry in sorted(folder.iterdir()):
            if _kind(entry.name) and entry.is_file() and not entry.is_symlink() and not entry.name.startswith("."):
                files[entry.name] = _read(entry, MAX_READ_BYTES, entry.name)
    except (Refused, OSError):
        return None  # loading the folder says what is wrong with it
    if probes.PACKAGE[0] not in files:
        return None
    instead = notebook_instead(files)
    return (folder / instead[0], instead[1]) if instead else None


def _from_zip(id, path, name, data, max_bytes):
    name = shown(name)
    too_big = _directory_too_big(data)
    if too_big:
        return rejected(id, path, f"{name} {too_big}")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError) as error:
        return rejected(id, path, f"{name} is not a readable zip: {shown(error, 200)}")
    if len(members) > MAX_ZIP_MEMBERS:
        return rejected(id, path, f"{name} has {len(members)} members, over the limit of {MAX_ZIP_MEMBERS}")
    for member in members:
        problem = _unsafe_member(member)
        if problem:
            return rejected(id, path, f"{name}: member {shown(member.filename)!r} {problem}")
        # Older Windows tools (PowerShell 5's Compress-Archive) separate folders with a
        # backslash, as zipfile itself reads them on Windows: engine.py in the folder hw.
        member.filename = member.filename.replace("\\", "/")
    limits = _limits(max_bytes)
    used = dict.fromkeys(limits, 0)
    files = {}
    prefix = _common_folder(members)
    if len(prefix) > MAX_FOLDERS_IN_FOLDERS:
        return rejected(id, path, f"{name}: the work is nested too deep, in {shown('/'.join(prefix), 120)}/ "
                                  f"(more than {MAX_FOLDERS_IN_FOLDERS} folders, each alone in the one above): "
                                  "zip the files themselves, or their folder")
    for member in members:
        relative = PurePosixPath(member.filename).parts[len(prefix):]
        if member.is_dir() or len(relative) != 1 or _skipped(member.filename):
            continue  # only the files at the top of the submission matter
        kind = _kind(relative[0])
        if kind is None:
            continue  # and only code
        if relative[0] in files:  # zipfile would give the last silently: which one did the student mean?
            return load_error(id, path, f"{name} holds two members named {shown('/'.join(prefix + relative))!r}: "
                                        "zip the files again, each once")
        room = limits[kind] - used[kind]
        if member.file_size > room:
            return rejected(id, path, f"{name} expands to more than the {_size(limits[kind])} limit")
        try:
            with archive.open(member) as stream:
                # Read no more than the limit, whatever the header claims.
                content = stream.read(room + 1)
        except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError, EOFError, ValueError) as error:
            return rejected(id, path, f"{name}: cannot extract {shown(member.filename)!r}: {shown(error, 200)}")
        if len(content) > room:
            return rejected(id, path, f"{name} expands to more than the {_size(limits[kind])} limit")
        used[kind] += len(content)
        files[relative[0]] = content
    if not files:
        folders = sorted({relative[0] for relative, is_dir in _below(members, prefix) if len(relative) > 1 or is_dir})
        if folders:  # only looked into when each is alone: a student's tree costs a few passes at most
            where = f"{name}/{'/'.join(shown(part) for part in prefix)}{'/' if prefix else ''}"
            return rejected(id, path, f"{where} holds no .py file or .ipynb notebook, only "
                                      f"{'the folder' if len(folders) == 1 else 'folders'} "
                                      f"{', '.join(shown(folder) + '/' for folder in folders[:3])}"
                                      f"{', ...' if len(folders) > 3 else ''}: zip the files themselves")
    return _from_files(id, path, files, name, max_bytes)


# How many folders, each alone in the one above, are looked into for the work: in a zip
# (``_common_folder``), and in a Gradescope upload (platforms/gradescope.py); an upload of
# ``hw/autodiff101/`` is two. A student's tree, however deep, costs a few passes at most.
MAX_FOLDERS_IN_FOLDERS = 16
_WINDOWS_REPARSE_POINT = 0x400  # a Windows link or junction, in a zip made on Windows


# What file systems hold (Linux: 255 bytes a name, 4,096 a path): a member past either would
# fail when the sandbox writes it, as the grader's fault instead of the submission's row.
MAX_NAME_BYTES, MAX_PATH_BYTES = 255, 1024
# A zip's central directory (its list of members) is parsed whole by ``zipfile.ZipFile``,
# which walks it by its size in bytes, whatever count the zip states: 63 MB of 46-byte
# entries took 6 s and 580 MB here before the count was known. The end record states both,
# and is read first: no more than MAX_ZIP_MEMBERS members, nor more bytes than that many
# entries take (46 bytes each, a name of up to MAX_PATH_BYTES, as much again for extra
# fields: about 410 KB, parsed in milliseconds).
_CENTRAL_ENTRY_BYTES = 46
MAX_ZIP_DIRECTORY_BYTES = MAX_ZIP_MEMBERS * (_CENTRAL_ENTRY_BYTES + 2 * MAX_PATH_BYTES)


def _directory_too_big(data):
    """Why the zip ``data`` (bytes) states a central directory too large to parse, or None
    (also when it has no end record: ``zipfile`` then says it is not a zip)."""
    # zipfile's own reader of the end record (zip64 included; in every Python 3, private):
    # the sizes checked are then exactly the ones ZipFile goes on to use. Where a Python has
    # no such helper, the check is skipped (tests/test_hostile_load.py pins it for the grader).
    end_record = getattr(zipfile, "_EndRecData", None)
    if end_record is None:
        return None
    try:
        record = end_record(io.BytesIO(data))
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None  # ZipFile reads it again and says what is wrong
    if not record:
        return None
    count, size = record[zipfile._ECD_ENTRIES_TOTAL], record[zipfile._ECD_SIZE]
    if count > MAX_ZIP_MEMBERS:
        return f"has {count} members, over the limit of {MAX_ZIP_MEMBERS}"
    if size > MAX_ZIP_DIRECTORY_BYTES:
        return (f"lists its members in {_size(size)}, more than {MAX_ZIP_MEMBERS} members take "
                f"(the limit is {_size(MAX_ZIP_DIRECTORY_BYTES)}): zip the files again")
    return None


def _name_too_long(name):
    """Why a member's name cannot be written as a file, or None."""
    if len(name.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
        return f"has a path over {MAX_PATH_BYTES} bytes long"
    if any(len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES for part in re.split(r"[/\\]", name)):
        return f"has a name over {MAX_NAME_BYTES} bytes long"
    return None


def _unsafe_member(member):
    name = member.filename
    if _name_too_long(name):
        return _name_too_long(name)
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "is an absolute path"
    if ".." in re.split(r"[/\\]", name):
        return "climbs out of the archive with '..'"
    if stat.S_ISLNK(member.external_attr >> 16):
        return "is a symbolic link"
    if member.create_system == 0 and member.external_attr & _WINDOWS_REPARSE_POINT:
        return "is a link (a Windows reparse point)"
    return None


def _skipped(name):
    return any(part.startswith(".") or part in IGNORED for part in PurePosixPath(name).parts)


def _common_folder(members):
    """The folders a zip wraps its work in, outermost first: a folder alone at its level (with
    only ignored entries, ``__MACOSX/``, beside it) is looked into, down to one more than
    MAX_FOLDERS_IN_FOLDERS (so that the caller can say the work is nested too deep). A tuple
    of folder names, () when the work is at the top."""
    prefix = ()
    while len(prefix) <= MAX_FOLDERS_IN_FOLDERS:
        tops, files_at_top = set(), False
        for relative, is_dir in _below(members, prefix):
            tops.add(relative[0])
            files_at_top = files_at_top or (len(relative) == 1 and not is_dir)
        if len(tops) != 1 or files_at_top:
            break
        prefix += tuple(tops)
    return prefix


def _below(members, prefix):
    """``(path, is a folder)`` for each member inside the folder ``prefix`` (a tuple of names),
    its path a tuple of names relative to it; ignored entries left out."""
    for member in members:
        parts = PurePosixPath(member.filename).parts
        if len(parts) > len(prefix) and parts[:len(prefix)] == prefix and not _skipped(member.filename):
            yield parts[len(prefix):], member.is_dir()


def _size(n):
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{n / 1024:.0f} KB"


# The work ``in_child`` can do: task -> function(payload bytes) -> a dict, plain JSON.
_CHILD_TASKS = {"parse": _parse_task, "notebook": _notebook_task, "handout-code": _handout_code_task,
                "notebook-code": _notebook_code_task}
