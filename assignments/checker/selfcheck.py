"""``autodiff101 check [PATH]``: the public checks against a student's code, in this process.

PATH is a ``.py`` file, a notebook, or a folder holding the handout's modules (the default:
the handout in the current folder). The checks are the grader's public ones, compiled against
the reference when the handout was built and frozen in ``public_checks.json``, so no reference
is needed here. The result is one line per exercise: passed, failed (with a hint), or not
implemented yet.

A copy of this module ships in the handout as ``checker/selfcheck.py``, next to copies of
``probes``, ``judge``, ``inprocess`` and ``load``, and must run where the kit is not
installed: it needs the standard library only. The misconception models do not ship: the
public checks carry their predictions (``signatures``), and ``judge.diagnose_submission``
matches the student's observations against them, as the grader does. rich (a nicer table), nbformat (notebook
validation) and IPython (magics and ``!`` lines) are used when they are there.
"""
import argparse
import builtins
import gc
import io
import json
import os
import re
import sys
import types
import warnings
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

from . import probes
from .inprocess import run_checks
from .load import Submission
from .load import load as load_submission

PUBLIC_CHECKS = "public_checks.json"
LOADING = "AUTODIFF101_SELFCHECK_LOADING"  # set while student code loads: check() does nothing
NOT_IMPLEMENTED = "not-implemented"
OUTCOMES = ("training", "load-error")  # diagnoses that name an outcome, not a misconception
EXERCISE_IN_MESSAGE = re.compile(r"exercise ([\w-]+)")

EXIT_PASSED, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class BadInput(Exception):
    """The path cannot be checked: missing, a syntax error, not a notebook."""


class LoadFailed(Exception):
    """The student's code raised while it was being run."""


# --- the public checks ----------------------------------------------------------------------


def read_public_checks(path):
    try:
        checks = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise BadInput(f"cannot read the public checks {path}: {error}") from error
    if not isinstance(checks, list) or not all(isinstance(c, dict) and "id" in c for c in checks):
        raise BadInput(f"{path} is not a list of compiled checks")
    return checks


def find_public_checks(path):
    """``public_checks.json`` next to ``path``, next to this checker, or in the kit's handout."""
    path = Path(path).resolve()
    here = Path(__file__).resolve().parent
    folders = [path if path.is_dir() else path.parent, Path.cwd(), here.parent, here.parent / "assignments"]
    for folder in folders:
        if (folder / PUBLIC_CHECKS).is_file():
            return folder / PUBLIC_CHECKS
    raise BadInput(f"no {PUBLIC_CHECKS} found next to {path} or in the handout")


# --- loading the student's code ---------------------------------------------------------------


def load(path):
    """Run the code at ``path`` and return its names (Value, Module, Neuron, Layer, MLP).

    ``load.load`` (the grader's loader) reads and parses the path, so bad input gets the
    grader's own messages. Raises BadInput when the code cannot be run at all, LoadFailed
    when it raises while running. A notebook runs cell by cell and a cell that raises is
    skipped, as in Jupyter, so the demo of an unfinished exercise does not hide the results
    of the others.
    """
    path = Path(path)
    if not path.exists():
        raise BadInput(f"{path}: no such file or folder")
    submission = _read_submission(path)
    path = path.absolute()  # the code runs in its own folder: a relative path would no longer lead there
    with _loading(path if path.is_dir() else path.parent):
        if submission.cells:
            return _run_cells(submission, path)
        if probes.MODULE in submission.sources:
            return _run_module(submission, path)
        return _run_folder(path, submission)


def _read_submission(path):
    try:
        submission = load_submission(path)
    except ImportError:  # nbformat or IPython missing: read the notebook with json alone
        submission = _notebook_without_jupyter(path)
    if not submission.ok:
        raise BadInput(submission.message)
    return submission


@contextmanager
def _loading(folder):
    """While student code loads: in its own folder (as Jupyter runs a notebook), its prints
    kept out of the report, no GUI windows, no shell, the notebook's check() calls idle."""
    saved = {key: os.environ.get(key) for key in (LOADING, "MPLBACKEND")}
    cwd = os.getcwd()
    os.environ[LOADING] = "1"
    os.environ.setdefault("MPLBACKEND", "Agg")
    had_ipython = hasattr(builtins, "get_ipython")
    if not had_ipython:
        builtins.get_ipython = _QuietIPython
    try:
        os.chdir(folder)
        with _quiet():
            yield
    finally:
        os.chdir(cwd)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if not had_ipython:
            del builtins.get_ipython


class _QuietIPython:
    """Stands in for ``get_ipython()``: magics and ``!`` commands do nothing, and return None."""

    def __init__(self, *args):
        pass

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _run_folder(folder, submission=None):
    """The handout's modules, imported as a package the way the grader's worker does; a
    module the loader filled in from the handout (train.py beside moons.py) is used as the
    grader uses it."""
    for name in [name for name in sys.modules if name == "submission" or name.startswith("submission.")]:
        del sys.modules[name]  # an earlier check's modules would be reused instead of the files
    provided = {name: text for name, text in (submission.sources if submission else {}).items()
                if name.endswith(".py") and not (Path(folder) / name).exists()}
    try:
        return probes.namespace(folder, provided=provided)
    except Exception as error:  # the student's module raised while importing
        raise LoadFailed(_crash_message(error)) from error


def _run_module(submission, path=None):
    path = Path(path or submission.path)
    if path.is_dir():  # a folder holding one .py file
        path = path / submission.names.get(probes.MODULE, probes.MODULE)
    module = _fresh_module(path)
    sys.path.insert(0, str(path.resolve().parent))
    try:
        exec(compile(submission.sources[probes.MODULE], str(path), "exec"), module.__dict__)
    except Exception as error:
        raise LoadFailed(_crash_message(error)) from error
    return _names(module.__dict__)


def _run_cells(submission, path=None):
    """A notebook's code cells one at a time; a cell that raises is skipped."""
    name = Path(submission.path).name
    module = _fresh_module(path or submission.path)
    lines = submission.sources[probes.MODULE].splitlines(keepends=True)
    starts = submission.cells + [(len(lines) + 1, None)]
    for (first, number), (after, _) in zip(starts, starts[1:]):
        code = compile("".join(lines[first - 1:after - 1]), f"{name}, cell {number}", "exec")
        try:
            exec(code, module.__dict__)
        except Exception:
            continue
    return _names(module.__dict__)


def _fresh_module(path):
    module = types.ModuleType("submission")
    module.__file__ = str(path)
    sys.modules["submission"] = module  # classes defined in it can be found again, e.g. by pickle
    return module


def _names(namespace):
    return {name: namespace[name] for name in probes.NAMES + probes.EXTENSION_NAMES if name in namespace}


def _notebook_without_jupyter(path):
    """What ``load.load`` makes of a notebook, where nbformat or IPython is not installed:
    the JSON read directly, and IPython-only lines (magics, ``!``) replaced by ``pass``."""
    try:
        notebook = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as error:
        return Submission(path.stem, path, "load-error", f"{path.name}: cannot read it: {error}")
    except ValueError:
        return Submission(path.stem, path, "load-error", f"{path.name}: not a notebook: the file is not JSON")
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if notebook.get("nbformat") != 4 if isinstance(notebook, dict) else True:
        return Submission(path.stem, path, "load-error", f"{path.name}: not a notebook in format 4")
    if not isinstance(cells, list) or not all(isinstance(cell, dict) for cell in cells):
        return Submission(path.stem, path, "load-error", f"{path.name}: not a valid notebook: no list of cells")
    module, starts, line = [], [], 1
    code_cells = [cell for cell in cells if cell.get("cell_type") == "code"]
    for number, cell in enumerate(code_cells, 1):
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if not source.strip():
            continue
        python = _without_ipython_syntax(source)
        try:
            compile(python, path.name, "exec")
        except SyntaxError as error:
            return Submission(path.stem, path, "load-error",
                              f"syntax error at cell {number}, line {error.lineno}: {error.msg}")
        starts.append((line, number))
        module.append(python)
        line += python.count("\n")
    if not starts:
        return Submission(path.stem, path, "load-error", f"{path.name} has no code cells with code in them")
    return Submission(path.stem, path, sources={probes.MODULE: "".join(module)}, cells=starts)


def _without_ipython_syntax(source):
    if source.lstrip().startswith("%%"):  # a cell magic owns the whole cell
        return "pass\n"
    lines = []
    for line in source.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            line = line[: len(line) - len(stripped)] + "pass  # IPython only: " + stripped
        lines.append(line)
    return "\n".join(lines) + "\n"


def _crash_message(error):
    where = probes.failure(error)["where"]
    place = f" at {where['file']}:{where['line']} in {where['function']}" if where else ""
    return f"your code raised {type(error).__name__}{place}: {error}"


# --- running and explaining -----------------------------------------------------------------


def verdicts(namespace, checks):
    """One Verdict per compiled check, in order."""
    if not namespace:
        raise LoadFailed(f"your code defines none of {', '.join(probes.NAMES)} at the top level")
    with _collector_paused(), _quiet():
        return [verdict for _, verdict in run_checks(namespace, checks)]


@contextmanager
def _quiet():
    """The student's prints and warnings, dropped: the report is the only output."""
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@contextmanager
def _collector_paused():
    """Every Value graph is a web of reference cycles (each _backward refers to its node);
    left on, the cycle collector rescans the growing graphs of the deep-chain and training
    checks over and over, which costs more than the checks themselves."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def waiting_for(verdict):
    """The exercise whose TODO stopped a check, or None when it is not a TODO."""
    if NOT_IMPLEMENTED not in verdict.diagnoses:
        return None
    match = EXERCISE_IN_MESSAGE.search(f"{verdict.message} {verdict.detail}")
    return match.group(1) if match else "?"


# The self-check sees the public checks only; the grader's hidden ones may rule a model out
# (or name none), so a diagnosis a misconception model gave here is said as a guess.
PUBLIC_ONLY = "from the public checks alone it looks as if this is the mistake; the graded checks decide"


def modelled_diagnoses(checks):
    """The diagnoses a misconception model of ``checks`` (their shipped ``signatures``) can name."""
    return {diagnosis for check in checks
            for model in ((check.get("signatures") or {}).get("models") or {}).values()
            for diagnosis in model.get("diagnoses", ())}


def explain(check, verdict, modelled=None):
    """What a failed check says to the student: the message, the detail, further hints.
    ``modelled``: the diagnoses misconception models name (``modelled_diagnoses`` of every
    check the submission ran; by default of ``check`` alone); a diagnosis among them is
    hedged as coming from the public checks alone."""
    from . import judge

    modelled = modelled_diagnoses([check]) if modelled is None else modelled

    parts = [verdict.message.rstrip(".") + "."] if verdict.message else []
    if verdict.detail:
        parts.append(verdict.detail.rstrip(".") + ".")
    hints = getattr(judge, "DIAGNOSES", {})
    for diagnosis in verdict.diagnoses[1:]:  # the message ends with the first one's hint (or the model's own)
        hint = hints.get(diagnosis)
        if hint and hint not in verdict.message:
            parts.append(hint)
    ideas = [d for d in verdict.diagnoses if d not in OUTCOMES]
    outcomes = [d for d in verdict.diagnoses if d in OUTCOMES]
    if ideas and modelled.intersection(ideas):
        parts.append(f"(diagnosis: {', '.join(ideas)}; {PUBLIC_ONLY})")
    elif ideas:
        parts.append(f"(diagnosis: {', '.join(ideas)})")
    if outcomes:  # what happened, not an idea the code gets wrong
        parts.append(f"(outcome: {', '.join(outcomes)})")
    return f"{check.get('title', check['id'])}: " + " ".join(parts)


def summarise(checks, results):
    """One row per exercise, in the order the checks come: (exercise, status, notes). An
    exercise whose checks all carry 0 points (the deep chain) is extra credit: its failure
    is shown as such and does not fail the run."""
    rows = {}
    modelled = modelled_diagnoses(checks)
    for check, verdict in zip(checks, results):
        row = rows.setdefault(check.get("exercise", check["id"]),
                              {"passed": 0, "total": 0, "waiting": [], "hints": [], "points": 0})
        row["points"] += check.get("points", 1)
        row["total"] += 1
        if verdict.passed:
            row["passed"] += 1
        elif waiting_for(verdict):
            row["waiting"].append(waiting_for(verdict))
        else:
            row["hints"].append(explain(check, verdict, modelled))
    summary = []
    for exercise, row in rows.items():
        passed = passing(row["passed"], row["total"])
        if row["passed"] == row["total"]:
            summary.append((exercise, "passed", [passed]))
        elif row["hints"] and not row["points"]:
            summary.append((exercise, "failed (extra credit)",
                            ["worth 0 points: its failure does not fail the run", *row["hints"]]))
        elif row["hints"]:
            summary.append((exercise, "failed", row["hints"]))
        else:
            todos = list(dict.fromkeys(row["waiting"]))
            if exercise in todos:
                summary.append((exercise, "not implemented yet", ["its TODO still raises NotImplementedError"]))
            else:
                waiting = f"exercise {', '.join(todos)}, which still raises NotImplementedError"
                notes = [passed, f"the others need {waiting}"] if row["passed"] else [f"needs {waiting}"]
                summary.append((exercise, f"waits for {', '.join(todos)}", notes))
    return summary


def passing(passed, total, kind="check"):
    """"2 of 3 checks pass", "1 of 1 check passes"."""
    return f"{passed} of {total} {kind}{'s' * (total != 1)} pass{'es' * (passed == 1)}"


STYLE = {"passed": "green", "failed": "red"}  # anything else: yellow


def report(summary, title, out=None):
    """Print the summary as a table: rich's when rich is installed, plain text otherwise."""
    out = out or sys.stdout
    try:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text
    except ImportError:
        print(title, file=out)
        width = max((len(exercise) for exercise, _, _ in summary), default=0)
        status_width = max((len(status) for _, status, _ in summary), default=0)
        for exercise, status, notes in summary:
            print(f"  {exercise:<{width}}  {status:<{status_width}}  {notes[0]}", file=out)
            for note in notes[1:]:
                print(f"  {'':<{width}}  {'':<{status_width}}  {note}", file=out)
        return
    table = Table(show_lines=True)
    table.add_column("exercise", style="bold")
    table.add_column("result")
    table.add_column("hint", overflow="fold")
    for exercise, status, notes in summary:
        table.add_row(Text(exercise), Text(status, style=STYLE.get(status, "yellow")), Text("\n".join(notes)))
    console = Console(file=out)
    console.print(title, soft_wrap=True, highlight=False, markup=False)
    console.print(table)


def run(path, checks_path=None, out=None, checks=None, unchecked_note=None):
    """Check ``path``; print the table; return the exit code. ``checks``: the compiled
    public checks to run instead of a public_checks.json. ``unchecked_note``: a function
    of the exercises the work has but the checks leave out (``unchecked``), giving the
    line that says how to include them."""
    out = out or sys.stdout
    try:
        if checks is None:
            checks = read_public_checks(checks_path or find_public_checks(path))
        namespace = load(path)
        results = verdicts(namespace, checks)
    except BadInput as error:
        print(f"cannot check {path}: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except LoadFailed as error:
        print(f"cannot check {path}: {error}", file=sys.stderr)
        return EXIT_FAILED
    summary = summarise(checks, results)
    passed = sum(result.passed for result in results)
    report(summary, f"{path}: {passing(passed, len(results), 'public check')}", out)
    extra = unchecked(path, namespace, checks) if unchecked_note else ()
    if extra:
        print(unchecked_note(extra), file=out)
    return EXIT_FAILED if counted_failures(checks, results) else EXIT_PASSED


OPERATOR_EXTENSIONS = ("tanh", "exp", "log")  # = checks.EXTENSIONS' operators (methods of Value)


def unchecked(path, namespace, checks):
    """The extension exercises the work at ``path`` has (a Value method tanh, exp or log; a
    moons.py or its hinge_loss) that ``checks`` do not check, in the handout's order."""
    checked = {check.get("exercise") for check in checks}
    value = namespace.get("Value")
    found = [op for op in OPERATOR_EXTENSIONS if callable(getattr(value, op, None))]
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    if "hinge_loss" in namespace or (Path(path).is_dir() and (folder / "moons.py").exists()):
        found.append("moons")
    return [name for name in found if name not in checked]


def counted_failures(checks, results):
    """The failed checks that carry points: a 0-point extra-credit check (the deep chain,
    which the tutorial's own recursive sort fails) is shown, but does not fail the run."""
    return [check for check, result in zip(checks, results) if not result.passed and check.get("points", 1) > 0]


def check(exercise=None, namespace=None):
    """For the notebook's check cells: the public checks of ``exercise`` (all when None)
    against the calling notebook's names. Prints the result and returns nothing, so that
    a check cell shows the table alone."""
    if os.environ.get(LOADING):  # the notebook is being loaded by a checker: stay out of the way
        return
    if namespace is None:
        namespace = sys._getframe(1).f_globals
    checks = read_public_checks(find_public_checks(Path.cwd()))
    # a check that calls a later exercise's method runs at that exercise's cell ("cell")
    chosen = [c for c in checks if exercise is None or c.get("cell", c.get("exercise")) == exercise]
    if not chosen:
        print(f"There are no public checks for {exercise!r}: the experiment above is your test.")
        return
    results = verdicts(_names(namespace), chosen)
    summary = summarise(chosen, results)
    passed = sum(result.passed for result in results)
    report(summary, f"{exercise or 'all exercises'}: {passing(passed, len(results), 'public check')}")


def main(argv=None, default=None, checks=None, unchecked_note=None):
    """``check.py``'s command line in the handout; returns the exit code. Meant to be the
    last thing a process does: see ``exit_soon``."""
    parser = argparse.ArgumentParser(prog="check", description="Run the public checks on your code.")
    parser.add_argument("path", nargs="?", help="a .py file, a .ipynb notebook or a folder "
                        "(default: the handout's engine.py and nn.py)")
    parser.add_argument("--zip", action="store_true",
                        help=f"after the check, write what you hand in to {SUBMISSION_ZIP} next to your work")
    parser.add_argument("--zip-to", metavar="FILE.zip", default=None,
                        help="the same, to FILE.zip instead (a new file, or one this command wrote)")
    args = parser.parse_args(argv)
    path = Path(args.path) if args.path else Path(default or Path.cwd())
    target = None
    if args.zip or args.zip_to:
        target = Path(args.zip_to) if args.zip_to else submission_path(path)
        problem = zip_target_problem(target)
        if problem:  # said before the check, so that a typo costs nothing
            print(f"check: cannot write {target}: {problem}", file=sys.stderr)
            return EXIT_BAD_INPUT
    path = work_to_check(path)
    code = run(path, checks=checks, unchecked_note=unchecked_note)
    if target is not None and code != EXIT_BAD_INPUT:
        code = write_submission(path, target, complete=code == EXIT_PASSED) or code
    exit_soon()
    return code


def work_to_check(path):
    """``path``, or the notebook in it when ``path`` is a handout folder whose work was done in
    the notebook (its .py files still hold the handout's TODOs): the grader takes that
    notebook too (``load.handout_notebook``), and this says so."""
    from .load import handout_notebook

    instead = handout_notebook(path) if path.is_dir() else None
    if instead is None:
        return path
    notebook, note = instead
    print(f"checking {_relative(notebook)}: {note}")
    return notebook


SUBMISSION_ZIP = "submission.zip"
# Written into the zips this command makes: only such a zip is ever overwritten.
ZIP_COMMENT = b"autodiff101 submission, written by check.py --zip"


def submission_path(path):
    """Where ``--zip`` writes: ``submission.zip`` in the folder checked, or beside the file."""
    path = Path(path)
    return (path if path.is_dir() else path.parent) / SUBMISSION_ZIP


def zip_target_problem(target):
    """Why ``target`` must not be written (one line), or None: it must end in .zip, sit in an
    existing folder, and be new or a zip that this command wrote, so that a slip such as
    ``--zip-to engine.py`` never destroys the student's work."""
    import zipfile

    target = Path(target)
    if target.suffix.lower() != ".zip":
        return "the name of the file to write must end in .zip"
    if target.is_dir():
        return "that is a folder"
    if not target.parent.is_dir():
        return f"there is no folder {target.parent}"
    if target.exists() or target.is_symlink():
        try:
            with zipfile.ZipFile(target) as archive:
                ours = archive.comment == ZIP_COMMENT
        except (OSError, zipfile.BadZipFile, ValueError):
            ours = False
        if target.is_symlink() or not ours:
            return "a file of that name is there and was not written by check.py --zip; choose another name"
    return None


def write_submission(path, target, out=None, complete=True):
    """Pack what the grader takes into the zip ``target``: a folder's ``engine.py`` and
    ``nn.py`` (and ``moons.py`` where the course's handout has it), or the one file ``path`` (a notebook, a .py). Returns 0, or EXIT_BAD_INPUT.
    ``target`` must have passed ``zip_target_problem``; ``complete`` is False when the
    check found work left to do, which the last line then says."""
    import zipfile

    out = out or sys.stdout
    path = Path(path)
    members = [path / name for name in probes.PACKAGE] if path.is_dir() else [path]
    missing = [member.name for member in members if not member.is_file()]
    if path.is_dir():  # an extension's module (moons.py) goes in where the handout has it
        members += [path / name for name in probes.EXTENSION_MODULES if (path / name).is_file()]
    if missing:
        print(f"cannot write {target}: no {', '.join(missing)} in {path}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            for member in members:
                archive.write(member, member.name)
            archive.comment = ZIP_COMMENT
    except OSError as error:
        print(f"cannot write {target}: {error.strerror or error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    names = ", ".join(member.name for member in members)
    shown = _relative(target)
    if complete:
        print(f"wrote {shown} ({names}): hand in this file", file=out)
    else:
        print(f"wrote {shown} ({names}), but not every check passes yet (see above): "
              "this is what would be graded now", file=out)
    return 0


def _relative(path):
    """``path`` as the student typed it or relative to here, where it is under here."""
    path = Path(path)
    try:
        return path.resolve().relative_to(Path.cwd().resolve()) if path.is_absolute() else path
    except ValueError:
        return path


class _PipeGuard:
    """Standard output for a command whose reader may stop early (``check.py | head``): once
    the pipe is closed, the rest goes to /dev/null and the command runs on to its own exit
    status, with no BrokenPipeError traceback."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._drop()
            return len(text)

    def flush(self):
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._drop()

    def _drop(self):
        try:  # the interpreter's own flush at exit then writes to /dev/null too
            os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())
        except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
            self._stream = open(os.devnull, "w")

    def __getattr__(self, name):
        return getattr(self._stream, name)


@contextmanager
def closed_pipe_ok():
    """While a command runs: a closed standard output is not an error (see ``_PipeGuard``)."""
    saved = sys.stdout
    sys.stdout = _PipeGuard(saved)
    try:
        yield
        sys.stdout.flush()
    finally:
        sys.stdout = saved


def exit_soon():
    """Before a process exits: the checks' graphs are garbage, and collecting them at exit
    takes longer than the checks did. Freezing moves every object out of the collector's
    sight, so the interpreter exits without that last collection."""
    gc.freeze()
