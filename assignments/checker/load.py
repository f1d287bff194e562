"""Load: a path on disk becomes a ``Submission``, plain Python text ready for the worker.

Nothing here runs student code. A ``.py`` file becomes ``submission.py``; a notebook's code
cells, in order, become ``submission.py`` too, with IPython's magics and ``!`` lines turned
into calls to ``get_ipython()`` (which the worker answers with a stub that never runs a
shell); a folder with the handout's layout keeps its modules; a folder or ``.zip`` holding
one file is that file. Every way a path can fail to be a submission gets a status and a
message saying what is wrong, so each one still gets a row in the gradebook.
"""
import ast
import hashlib
import io
import json
import re
import stat
import threading
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from . import probes

DEFAULT_MAX_BYTES = 5 * 1024 * 1024  # per submission, on disk and once extracted
MAX_ZIP_MEMBERS = 200
# Notebook cells with this tag are the handout's own set-up and self-check cells (see
# notebook.py): not the student's code, so a submission is loaded without them.
CHECK_TAG = "autodiff101-check"
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


class UsageError(Exception):
    """The command was asked to do something impossible (exit code 2)."""


@dataclass
class Submission:
    id: str
    path: Path
    status: str = "ok"  # "ok" | "load-error" | "rejected"
    message: str = ""
    sources: dict = field(default_factory=dict)  # file name -> Python text
    cells: list = field(default_factory=list)  # notebooks: (first line in submission.py, cell number)
    names: dict = field(default_factory=dict)  # file name in sources -> the student's file name

    @property
    def ok(self):
        return self.status == "ok"

    @property
    def digest(self):
        """Identifies what was graded: a rerun skips a submission whose digest is unchanged."""
        text = json.dumps([self.status, self.message, sorted(self.sources.items())])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def where(self, file, line):
        """A source position as the student knows it: "engine.py:12" or "cell 4, line 2"."""
        if self.cells and file == probes.MODULE:
            first, number = max((c for c in self.cells if c[0] <= line), default=self.cells[0])
            return f"cell {number}, line {line - first + 1}"
        return f"{self.names.get(file, file)}:{line}"


def rejected(id, path, message):
    return Submission(id, Path(path), "rejected", message)


def load_error(id, path, message):
    return Submission(id, Path(path), "load-error", message)


# --- finding submissions ---------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """A submission found on disk, not yet read: loading waits until its turn, so a large
    batch never holds every submission in memory at once."""

    id: str
    path: Path


def discover(paths, exclude=()):
    """The submissions named by ``paths``: each a submission (a file, or a folder with the
    handout's layout) or a folder of submissions (one per file or subfolder). Raises
    UsageError for a missing path or two submissions with the same id."""
    excluded = {Path(p).resolve() for p in exclude}
    found = []
    for path in map(Path, paths):
        if not path.exists():
            raise UsageError(f"{path}: no such file or folder")
        if path.is_file() or _is_package(path):
            found.append(Found(_id(path), path))
            continue
        for entry in sorted(path.iterdir()):
            if entry.name.startswith(".") or entry.name in IGNORED or entry.resolve() in excluded:
                continue
            found.append(Found(_id(entry), entry))
    seen = {}
    for item in found:
        if item.id in seen:
            raise UsageError(
                f"two submissions have the id {item.id!r}: {seen[item.id]} and {item.path}; "
                "rename one so that each student has one submission"
            )
        seen[item.id] = item.path
    return found


def _id(path):
    return path.stem if path.is_file() else path.name


def _is_package(folder):
    return (folder / probes.PACKAGE[0]).is_file()


# --- loading one submission ------------------------------------------------------------


def load(path, id=None, max_bytes=DEFAULT_MAX_BYTES):
    """Read one submission. Never raises for bad input: the status says what went wrong."""
    path = Path(path)
    id = id or _id(path)
    try:
        if path.is_dir():
            return _load_folder(id, path, max_bytes)
        if not path.is_file():
            return rejected(id, path, f"{path.name} is not a file or folder")
        size = path.stat().st_size
        if size > max_bytes:
            return rejected(id, path, f"{path.name} is {_size(size)}, over the {_size(max_bytes)} limit")
        return _load_file(id, path, path.name, path.read_bytes(), max_bytes)
    except OSError as error:
        return rejected(id, path, f"cannot read {path.name}: {error.strerror or error}")


def _load_file(id, path, name, data, max_bytes):
    suffix = PurePosixPath(name).suffix.lower()
    if suffix == ".py":
        return _from_python(id, path, name, data)
    if suffix == ".ipynb":
        return _from_notebook(id, path, name, data)
    if suffix == ".zip":
        return _from_zip(id, path, name, data, max_bytes)
    return rejected(id, path, f"{name} is not a .py file, a .ipynb notebook, a .zip or a folder")


def _decode(name, data):
    """UTF-8 text, or the reason it is not: the line and column of the first bad byte."""
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        return None, f"{name} is not UTF-8 text: byte 0x{data[error.start]:02x} at line {line}, column {column}"


def _from_python(id, path, name, data):
    text, problem = _decode(name, data)
    if problem:
        return load_error(id, path, problem)
    if not text.strip():
        return load_error(id, path, f"{name} is empty")
    submission = Submission(id, path, sources={probes.MODULE: text}, names={probes.MODULE: name})
    return _syntax_checked(submission)


def _from_notebook(id, path, name, data):
    text, problem = _decode(name, data)
    if problem:
        return load_error(id, path, problem)
    if not text.strip():
        return load_error(id, path, f"{name} is empty")
    try:
        cells = notebook_code_cells(text)
    except ValueError as error:
        return load_error(id, path, f"{name}: {error}")
    if not any(source.strip() for source in cells):
        return load_error(id, path, f"{name} has no code cells with code in them")
    module, starts = [], []
    line = 1
    for number, source in enumerate(cells, start=1):
        if not source.strip():
            continue
        python = magics_to_python(source)
        if not python.endswith("\n"):
            python += "\n"
        starts.append((line, number))
        module.append(python)
        line += python.count("\n")
    submission = Submission(id, path, sources={probes.MODULE: "".join(module)}, cells=starts)
    return _syntax_checked(submission)


def notebook_code_cells(text):
    """The source of every code cell of a notebook, in order (empty cells included, so
    that cell numbers count as Jupyter counts them; the handout's check cells are left
    empty); ValueError when it is not a notebook."""
    import nbformat

    try:
        with warnings.catch_warnings():  # old notebooks lack cell ids; nbformat fills them in
            warnings.simplefilter("ignore")
            notebook = nbformat.reads(text, as_version=4)
            nbformat.validate(notebook)
    except nbformat.reader.NotJSONError:
        raise ValueError("not a notebook: the file is not JSON") from None
    except nbformat.ValidationError as error:
        raise ValueError(f"not a valid notebook: {str(error).splitlines()[0]}") from None
    except Exception as error:  # JSON, but not shaped like a notebook at all
        raise ValueError(f"not a notebook ({type(error).__name__}: {error})") from None
    return ["" if CHECK_TAG in cell.metadata.get("tags", []) else cell.source
            for cell in notebook.cells if cell.cell_type == "code"]


def magics_to_python(source):
    """A cell's code as plain Python: IPython's own transformer turns ``%magic``, ``%%cell``
    and ``!shell`` lines into ``get_ipython()`` calls, the same text Jupyter would run."""
    try:  # IPython leaves plain Python as it is; parsing is three times faster than asking it
        parse(source)
        return source
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        pass
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return TransformerManager().transform_cell(source)
    except Exception:  # text IPython cannot tokenize: the syntax check will say what is wrong
        return source


def _syntax_checked(submission):
    """Parse (never run) every source, so a syntax error is reported with its place."""
    for file, text in submission.sources.items():
        try:
            parse(text, filename=file)
        except SyntaxError as error:
            place = submission.where(file, error.lineno or 1)
            return load_error(submission.id, submission.path, f"syntax error at {place}: {error.msg}")
        except (ValueError, RecursionError, MemoryError) as error:  # null bytes, absurd nesting
            name = submission.names.get(file, file)
            reason = str(error) or type(error).__name__
            return load_error(submission.id, submission.path, f"{name} cannot be parsed: {reason}")
    return submission


# --- folders and zips ------------------------------------------------------------------


def _load_folder(id, folder, max_bytes):
    files = {}
    total = 0
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.name in IGNORED:
            continue
        if entry.is_symlink():  # the grader would read its target, the reference say, as the student's code
            return rejected(id, folder, f"{folder.name}/{entry.name} is a symbolic link")
        if not entry.is_file():
            continue
        total += entry.stat().st_size
        if total > max_bytes:
            return rejected(id, folder, f"the folder {folder.name} holds more than the {_size(max_bytes)} limit")
        files[entry.name] = entry.read_bytes()
    return _from_files(id, folder, files, folder.name + "/", max_bytes)


def _from_files(id, path, files, where, max_bytes):
    """A submission from the files at the top of a folder or zip (names without folders)."""
    if probes.PACKAGE[0] in files:
        sources = {}
        for name, data in files.items():
            if not name.endswith(".py"):
                continue
            text, problem = _decode(name, data)
            if problem:
                return load_error(id, path, problem)
            sources[name] = text
        if not sources[probes.PACKAGE[0]].strip():
            return load_error(id, path, f"{probes.PACKAGE[0]} is empty")
        return _syntax_checked(Submission(id, path, sources=sources))
    candidates = [name for name in files if PurePosixPath(name).suffix.lower() in (".py", ".ipynb")]
    if len(candidates) == 1:
        return _load_file(id, path, candidates[0], files[candidates[0]], max_bytes)
    if not candidates:
        return rejected(id, path, f"{where} holds no .py file or .ipynb notebook")
    return rejected(
        id, path, f"{where} holds several candidate files ({', '.join(sorted(candidates))}); "
        f"submit one .py or .ipynb, or the handout's {' + '.join(probes.PACKAGE)}"
    )


def _from_zip(id, path, name, data, max_bytes):
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError) as error:
        return rejected(id, path, f"{name} is not a readable zip: {error}")
    if len(members) > MAX_ZIP_MEMBERS:
        return rejected(id, path, f"{name} has {len(members)} members, over the limit of {MAX_ZIP_MEMBERS}")
    for member in members:
        problem = _unsafe_member(member)
        if problem:
            return rejected(id, path, f"{name}: member {member.filename!r} {problem}")
    if sum(member.file_size for member in members) > max_bytes:
        return rejected(id, path, f"{name} expands to more than the {_size(max_bytes)} limit")
    files = {}
    prefix = _common_folder(members)
    total = 0
    for member in members:
        relative = PurePosixPath(member.filename).parts[len(prefix):]
        if member.is_dir() or len(relative) != 1 or _skipped(member.filename):
            continue  # only the files at the top of the submission matter
        try:
            with archive.open(member) as stream:
                # Read no more than the limit, whatever the header claims.
                content = stream.read(max_bytes - total + 1)
        except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError) as error:
            return rejected(id, path, f"{name}: cannot extract {member.filename!r}: {error}")
        total += len(content)
        if total > max_bytes:
            return rejected(id, path, f"{name} expands to more than the {_size(max_bytes)} limit")
        files[relative[0]] = content
    return _from_files(id, path, files, name, max_bytes)


def _unsafe_member(member):
    name = member.filename
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "is an absolute path"
    if ".." in re.split(r"[/\\]", name):
        return "climbs out of the archive with '..'"
    if stat.S_ISLNK(member.external_attr >> 16):
        return "is a symbolic link"
    return None


def _skipped(name):
    return any(part.startswith(".") or part in IGNORED for part in PurePosixPath(name).parts)


def _common_folder(members):
    """A zip of a folder wraps everything in that folder: look inside it."""
    tops = {PurePosixPath(m.filename).parts[0] for m in members if not _skipped(m.filename)}
    files_at_top = any(len(PurePosixPath(m.filename).parts) == 1 and not m.is_dir()
                       for m in members if not _skipped(m.filename))
    return tuple(tops) if len(tops) == 1 and not files_at_top else ()


def _size(n):
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{n / 1024:.0f} KB"
