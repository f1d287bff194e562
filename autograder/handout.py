"""``autodiff101 build`` and ``autodiff101 release``: the student handout, generated from solutions/.

Every ``# BEGIN SOLUTION`` ... ``# END SOLUTION`` region of the reference becomes a TODO: the
comment above the marker (which says in words what to compute) stays, the code between the
markers becomes a TODO line and ``raise NotImplementedError("exercise <name>: ...")``. The
exercise is named after the method around the region (``__add__`` -> add), or by the marker
itself (``# BEGIN SOLUTION pow``).

``assignments/`` holds exactly what a student receives: the stubs, the notebook, the public
checks frozen to JSON, a README, ``check.py`` and ``test_handout.py``, and ``checker/``, a
vendored copy of the standard-library-only modules that run the self-check. It is committed
and never edited by hand; ``build --check`` says whether it is stale. ``release`` writes the
same files to a folder and a zip after a leak scan.
"""
import ast
import io
import json
import re
import shutil
import sys
import tokenize
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
ASSIGNMENTS = ROOT / "assignments"
KIT = Path(__file__).resolve().parent

NOTEBOOK = "autodiff101.ipynb"
PUBLIC_CHECKS = "public_checks.json"
CHECKER = "checker"  # the vendored package's name inside the handout
# The kit modules the self-check needs, copied into the handout: standard library only.
VENDORED = ("probes.py", "judge.py", "inprocess.py", "load.py", "selfcheck.py")
# Never part of a handout, whatever else changes.
FORBIDDEN_NAMES = ("checks.py", "checks.toml")
# The reference is a package; the handout is a folder of plain modules, so its package file
# stays behind (a folder named like `hw 1 (copy)` with one is no importable package, and
# pytest would fail on it).
NOT_HANDED_OUT = ("__init__.py",)
RELATIVE_IMPORT = re.compile(r"^from \.(?P<module>\w+) import (?P<names>[^\n]+)$", re.M)
# Left alone by build and ignored by build --check: what running the handout leaves behind.
IGNORED = ("__pycache__", ".ipynb_checkpoints", ".pytest_cache", "*.png", "*.pyc", "submission.zip")

BEGIN = re.compile(r"^(?P<indent>[ \t]*)#\s*BEGIN SOLUTION(?:[ \t]+(?P<name>[\w-]+))?[ \t]*$")
END = re.compile(r"^[ \t]*#\s*END SOLUTION[ \t]*$")
EXERCISE_IN_MESSAGE = re.compile(r"exercise ([\w-]+)")


class HandoutError(Exception):
    """The reference cannot be turned into a handout, or a release would leak."""


# --- solution regions -------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    """One marked solution region of a reference file."""

    file: str
    exercise: str
    function: str  # the method or function around it, e.g. "Value.__add__"
    begin: int  # line number of the BEGIN marker (1-based)
    end: int  # line number of the END marker
    indent: str
    lines: tuple  # the solution's lines, between the markers


def regions(source, file):
    """The marked regions of ``source``, in order; markers must pair up."""
    lines = source.splitlines()
    functions = _outer_functions(source, file)
    found, open_at = [], None
    for number, line in enumerate(lines, 1):
        begin, end = BEGIN.match(line), END.match(line)
        if begin:
            if open_at:
                raise HandoutError(f"{file}:{number}: BEGIN SOLUTION inside the region opened at line {open_at[0]}")
            open_at = (number, begin)
        elif end:
            if not open_at:
                raise HandoutError(f"{file}:{number}: END SOLUTION without a BEGIN SOLUTION")
            start, marker = open_at
            function = next((name for name, first, last in functions if first <= start <= last), None)
            if function is None and not marker["name"]:
                raise HandoutError(f"{file}:{start}: a region outside any function needs a name: "
                                   "# BEGIN SOLUTION <exercise>")
            exercise = marker["name"] or function.rsplit(".", 1)[-1].strip("_")
            found.append(Region(file, exercise, function or "", start, number, marker["indent"],
                                tuple(lines[start:number - 1])))
            open_at = None
    if open_at:
        raise HandoutError(f"{file}:{open_at[0]}: BEGIN SOLUTION is never closed")
    return found


def _outer_functions(source, file):
    """(qualified name, first line, last line) of each module-level function and method."""
    try:
        tree = ast.parse(source, file)
    except SyntaxError as error:
        raise HandoutError(f"{file}:{error.lineno}: {error.msg}") from error
    functions = []
    for node in tree.body:
        defs = [(f"{node.name}.", child) for child in node.body] if isinstance(node, ast.ClassDef) else [("", node)]
        for prefix, child in defs:
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = child.decorator_list[0].lineno if child.decorator_list else child.lineno
                functions.append((prefix + child.name, first, child.end_lineno))
    return functions


def importable_both_ways(source):
    """``source`` with each ``from .module import names`` made to work both in a package (how
    the grader imports a handout folder) and as a plain module (``python train.py``, ``python
    -m pytest``, ``from nn import MLP`` in a REPL), whatever the folder is called."""
    return RELATIVE_IMPORT.sub(lambda match: (
        f"try:  # imported as a package (the grader reads the folder this way)\n"
        f"    from .{match['module']} import {match['names']}\n"
        f"except ImportError:  # run as a plain module: python train.py, a REPL in this folder\n"
        f"    from {match['module']} import {match['names']}"), source)


def todo_lines(region):
    """What a region becomes in the handout: a TODO comment and the exception, no code."""
    where = f" ({region.function})" if region.function else ""
    return [
        f"{region.indent}# TODO exercise {region.exercise}: replace these two lines with the code described above.",
        f'{region.indent}raise NotImplementedError("exercise {region.exercise}: not written yet{where}")',
    ]


def stub(source, file):
    """``source`` with every marked region replaced by its TODO."""
    return _rewrite(source, file, todo_lines)


def unmark(source, file):
    """``source`` with the markers removed and the solutions kept (the solution notebook)."""
    return _rewrite(source, file, lambda region: list(region.lines))


def _rewrite(source, file, replacement):
    lines = source.splitlines()
    for region in reversed(regions(source, file)):
        lines[region.begin - 1:region.end] = replacement(region)
    return "\n".join(lines) + ("\n" if source.endswith("\n") else "")


def reference_sources(solutions=SOLUTIONS, exercises=None):
    """{file name: text} of the reference's modules; whatever exists is copied, cut to the
    course's exercises (see ``select_extensions``; default: the kit's default config, the
    core alone; "all": every extension)."""
    sources = {path.name: path.read_text() for path in sorted(Path(solutions).glob("*.py"))}
    return select_extensions(sources, chosen_exercises(exercises))


# --- extension exercises: what a course did not choose is not in its handout -----------------
# A block of the reference between "# BEGIN EXTENSION <names>" and "# END EXTENSION" belongs
# to the extension exercises it names: kept (without its markers) when the course chose one
# of them, removed with its markers otherwise, so a handout without extensions is exactly
# what it was before they existed. A module named after an extension (moons.py) and its
# data file (moons.csv) go in only when it is chosen.
EXTENSION_BEGIN = re.compile(r"^[ \t]*#\s*BEGIN EXTENSION[ \t]+(?P<names>[\w -]+?)[ \t]*$")
EXTENSION_END = re.compile(r"^[ \t]*#\s*END EXTENSION[ \t]*$")
EXTENSION_DATA = {"moons": ("moons.csv",)}


def chosen_exercises(exercises=None, config=None):
    """The exercises of an assignment: ``exercises`` as given, "all", or the config's."""
    from .checks import EXERCISES, course_exercises

    if exercises == "all":
        return EXERCISES
    return tuple(exercises) if exercises is not None else course_exercises(config)


def select_extensions(sources, chosen):
    """``sources`` ({file: text}) with the extension blocks and modules of ``chosen`` kept and
    every other extension's removed."""
    from .checks import EXTENSIONS

    selected = {}
    for name, text in sources.items():
        module = name[:-3] if name.endswith(".py") else name
        if module in EXTENSIONS and module not in chosen:
            continue
        lines, keep, out = text.splitlines(keepends=True), None, []
        for number, line in enumerate(lines, 1):
            begin, end = EXTENSION_BEGIN.match(line), EXTENSION_END.match(line)
            if begin:
                if keep is not None:
                    raise HandoutError(f"{name}:{number}: BEGIN EXTENSION inside another")
                keep = bool(set(begin["names"].split()) & set(chosen))
            elif end:
                if keep is None:
                    raise HandoutError(f"{name}:{number}: END EXTENSION without a BEGIN EXTENSION")
                keep = None
            elif keep is not False:
                out.append(line)
        if keep is not None:
            raise HandoutError(f"{name}: BEGIN EXTENSION is never closed")
        selected[name] = "".join(out)
    return selected


def extension_data(chosen, solutions=SOLUTIONS):
    """{file name: text} of the data files of the chosen extensions."""
    return {name: (Path(solutions) / name).read_text()
            for exercise, names in EXTENSION_DATA.items() if exercise in chosen for name in names}


def all_regions(sources):
    return [region for name, text in sources.items() for region in regions(text, name)]


def exercises(sources):
    """Exercise names in the order their regions appear."""
    return list(dict.fromkeys(region.exercise for region in all_regions(sources)))


# --- the handout's files ------------------------------------------------------------------


def public_checks(exercises=None):
    """The public checks of the assignment with ``exercises`` (default: the kit's default
    config, the core alone) compiled against the reference and frozen (seed 0), each with the
    misconception models' predictions for it (``signatures``): the self-check diagnoses from
    those, since the models themselves never ship."""
    from .checks import compile_checks, load_config
    from .misconceptions import with_signatures

    config = None if exercises is None else load_config(exercises=exercises)
    return with_signatures(compile_checks(seed=0, config=config, only=("public",)))


def handout_files(solutions=SOLUTIONS, checks=None, solved=False, chosen=None):
    """{relative path: text} of every file of the handout. ``solved=True`` keeps the
    solutions instead of the TODOs: the same handout, complete, for tests only; it never
    goes into assignments/ or a release. ``chosen``: the assignment's exercises, or "all"
    (default: the kit's default config, the core alone)."""
    from . import notebook

    default, chosen = chosen is None, chosen_exercises(chosen)
    sources = reference_sources(solutions, chosen)
    if "engine.py" not in sources:
        raise HandoutError(f"{solutions}: no engine.py to build the handout from")
    stubs = {name: (unmark if solved else stub)(text, name) for name, text in sources.items()}
    checks = public_checks(None if default else chosen) if checks is None else checks
    files = {name: importable_both_ways(text) for name, text in stubs.items() if name not in NOT_HANDED_OUT}
    files.update(extension_data(chosen, solutions))
    files[PUBLIC_CHECKS] = json.dumps(checks, indent=1) + "\n"
    files["README.md"] = student_readme(exercises(sources), [name for name in GRADED_MODULES if name in files])
    files["check.py"] = CHECK_SCRIPT
    files["test_handout.py"] = TEST_HANDOUT
    files[f"{CHECKER}/__init__.py"] = CHECKER_INIT
    for name in VENDORED:
        files[f"{CHECKER}/{name}"] = (KIT / name).read_text()
    files[NOTEBOOK] = notebook.render(notebook.build(stubs, checks, exercises(sources), embedded=embedded(files)))
    return files


def embedded(files):
    """What the notebook carries so that it runs its checks alone: the checker package and
    the data files next to it (every .json), whatever they are at build time."""
    return {path: text for path, text in files.items()
            if path.startswith(f"{CHECKER}/") or (path.endswith(".json") and "/" not in path)}


def _ignored(relative):
    parts = Path(relative).parts
    return any(Path(part).match(pattern) for part in parts for pattern in IGNORED)


def _existing(folder):
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    return {
        path.relative_to(folder).as_posix(): path
        for path in folder.rglob("*")
        if path.is_file() and not _ignored(path.relative_to(folder).as_posix())
    }


def stale_files(folder=ASSIGNMENTS, files=None):
    """Paths in ``folder`` that differ from what build would write (missing, changed, extra)."""
    files = handout_files() if files is None else files
    existing = _existing(folder)
    stale = [path for path, text in files.items()
             if path not in existing or existing[path].read_text() != text]
    stale += [path for path in existing if path not in files]
    return sorted(stale)


def write_files(folder, files):
    """Write ``files`` into ``folder``; remove files a previous build wrote that are gone now."""
    folder = Path(folder)
    for path, existing in _existing(folder).items():
        if path not in files:
            existing.unlink()
    for path, text in files.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_text() != text:
            target.write_text(text)


def build(folder=None, check=False, out=None, config=None):
    """``autodiff101 build [--check] [--config TOML]``: regenerate the handout (default:
    assignments/, with the exercises of ``config``'s [course] table), or report that it is stale."""
    out = out or sys.stdout  # looked up now: a caller may have replaced it
    folder = Path(folder) if folder else ASSIGNMENTS
    try:
        files = handout_files(chosen=None if config is None else chosen_exercises(config=config))
    except HandoutError as error:
        print(f"autodiff101 build: {error}", file=sys.stderr)
        return 1
    if check:
        stale = stale_files(folder, files)
        if stale:
            print(f"{folder} is stale ({', '.join(stale)}): run `autodiff101 build`", file=sys.stderr)
            return 1
        print(f"{folder} is up to date", file=out)
        return 0
    write_files(folder, files)
    print(f"wrote the handout to {folder} ({len(files)} files)", file=out)
    return 0


# --- the leak scan and the release ----------------------------------------------------------


SKIPPED_TOKENS = (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                  tokenize.ENDMARKER)


def _tokens(line):
    """The Python tokens of one line, comments left out."""
    try:
        return [token.string for token in tokenize.generate_tokens(io.StringIO(line.strip() + "\n").readline)
                if token.type not in SKIPPED_TOKENS]
    except (tokenize.TokenError, IndentationError, SyntaxError):  # an unclosed bracket or string
        return re.findall(r"\w+|[^\w\s]", line.split("#", 1)[0])


def normalise(line):
    """A solution line without comments or whitespace, so formatting cannot hide a copy."""
    return re.sub(r"\s+", "", "".join(_tokens(line)))


def flatten(line):
    """A released line without whitespace or ``#``: a solution line found in it leaks,
    whether it is code, commented out, in a string or in prose."""
    return re.sub(r"[\s#]+", "", line)


# A solution line of fewer tokens gives nothing away that the TODO's own comment does not
# say: ``while stack:``, ``node._backward()``, ``self.grad = 1.0``. Longer ones do.
MIN_TOKENS = 6


def is_trivial(line):
    """Too short to count as a copy of the solution (see MIN_TOKENS)."""
    return len(_tokens(line)) < MIN_TOKENS


def solution_lines(sources):
    """The normalised non-trivial lines of every marked region."""
    return {normalise(line): (region.file, region.begin + offset)
            for region in all_regions(sources)
            for offset, line in enumerate(region.lines, 1)
            if not is_trivial(line)}


def _text_lines(path, text):
    """(where, line) pairs of a released file; a notebook is read cell by cell."""
    if path.endswith(".ipynb"):
        try:
            cells = json.loads(text).get("cells", [])
        except (ValueError, AttributeError):
            cells = []
        for number, cell in enumerate(cells, 1):
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else source
            for line_number, line in enumerate(source.splitlines(), 1):
                yield f"{path}: cell {number}, line {line_number}", line
        if cells:
            return
    for line_number, line in enumerate(text.splitlines(), 1):
        yield f"{path}:{line_number}", line


def leaks(files, sources, config=None):
    """Why ``files`` must not be released: solution lines, solutions/, hidden checks. Empty when clean."""
    from .checks import load_config

    problems = []
    for path in files:
        parts = Path(path).parts
        if "solutions" in parts or parts[-1] in FORBIDDEN_NAMES:
            problems.append(f"{path}: the reference solution or the check catalogue must not be released")
    config = config if isinstance(config, dict) else load_config(config)
    if PUBLIC_CHECKS in files:
        for check in json.loads(files[PUBLIC_CHECKS]):
            check_id = check.get("id")
            if check.get("visibility") != "public" or config.get(check_id, {}).get("visibility") != "public":
                problems.append(f"{PUBLIC_CHECKS}: check {check_id!r} is not public")
    problems += gradient_code(files)
    secrets = solution_lines(sources)
    for path, text in files.items():
        for where, line in _text_lines(path, text):
            found = flatten(line)
            for secret, (file, number) in secrets.items():
                if secret in found:
                    problems.append(f"{where}: copies solution line {file}:{number}: {line.strip()}")
                    break
    return problems


# Names that hold a gradient, a local derivative or a finite-difference slope.
GRADIENT_NAMES = re.compile(r"grad|slope|derivative", re.I)
# Attributes a Value's gradient machinery lives in (micrograd's ``grad``, a terse ``g``).
GRADIENT_ATTRIBUTES = re.compile(r"grad|slope|derivative|^g$|^_backward$", re.I)
# Function names that announce a derivative: derivative(), grad_of(), backward_of_mul(), dpow(), d_relu().
DERIVATIVE_NAMES = re.compile(r"deriv|grad|backward|slope|^dpow|^d_|^d[A-Z]", re.I)


def gradient_code(files):
    """Functions in the handout's Python (its modules and the notebook's code cells) that
    compute a gradient, one problem per outermost function (a method counts as outermost;
    a nested def is judged as part of the function around it). A function is refused when
    any of its code (nested stubs excepted, which is how the student's TODOs in engine.py
    and nn.py pass: their bodies only raise) does one of:

    1. writes a gradient: ``x.grad += ...``, ``child.g += ...``, arithmetic stored into or
       appended to something named like a gradient, ``setattr(x, "grad", <arithmetic>)``,
       arithmetic over ``getattr(x, "grad")``, or a ``_backward`` with a body;
    2. takes a finite difference: ``(f(a) - f(b)) / d`` with the same callee twice and ``d``
       holding a 2 or a name from the calls' arguments (the step ``h``);
    3. applies the power rule: ``k * x ** (k - 1)``;
    4. is named like a derivative (``derivative``, ``grad``, ``backward``, ``slope``, ``dpow``,
       ``d_...``) and returns arithmetic or a tuple (local derivatives, ``return (b, a)``).

    Setting a grad to a plain value (``p.grad = 0.0``) computes nothing and passes.

    What this AST scan cannot catch: the derivative hidden behind indirection it does not
    follow (a gradient written through ``vars(x)["grad"]``, ``x.__dict__``, an alias of
    ``setattr`` or an attribute name built at run time), local derivatives kept as data
    (a table of ``lambda`` s under innocent names, a string passed to ``eval``/``exec``),
    a rule spelled differently (``k * x ** k / x``, ``math.pow``, a difference quotient
    split over several statements), and code that is not Python source (pickles, prose).
    It finds the obvious leak, it does not prove the handout free of one."""
    problems = []
    for path, text in files.items():
        for where, source in _python_of(path, text):
            try:
                tree = ast.parse(source)
            except SyntaxError:
                continue
            for function in _outermost_functions(tree):
                why = _computes_gradient(function)
                if why:
                    name = getattr(function, "name", "lambda")
                    problems.append(f"{where(function.lineno)}: {name}() computes a gradient ({why}); the handout "
                                    "may hold no differentiation code besides the student's stubs")
    return problems


FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _outermost_functions(tree):
    """Functions and lambdas not inside another function; class bodies are searched. A lambda
    assigned to a name or attribute takes that name (``dpow = lambda x, k: ...``)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Lambda):
            target = node.targets[0]
            name = getattr(target, "id", None) or getattr(target, "attr", None)
            if name:
                node.value.name = name
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, FUNCTIONS):
                yield child
            else:
                stack.append(child)


def _python_of(path, text):
    """(line-number mapper, Python source) pieces of a handout file: a module, or each code
    cell of a notebook (IPython-only lines blanked out)."""
    if path.endswith(".py"):
        yield (lambda line: f"{path}:{line}"), text
    elif path.endswith(".ipynb"):
        try:
            cells = json.loads(text).get("cells", [])
        except (ValueError, AttributeError):
            return
        for number, cell in enumerate(cells, 1):
            if cell.get("cell_type") == "code":
                source = cell.get("source", "")
                source = "".join(source) if isinstance(source, list) else source
                source = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
                yield (lambda line, number=number: f"{path}: cell {number}, line {line}"), source


def _computes_gradient(function):
    """Why a function, nested functions included (stubs excepted), computes a gradient, or None."""
    for unit in _functions_within(function):
        why = _own_gradient(unit)
        if why:
            return why
    return None


def _functions_within(function):
    """``function`` and the non-stub functions nested in it, outermost first."""
    queue = [function]
    while queue:
        unit = queue.pop(0)
        if unit is not function and _is_stub(_body(unit)):
            continue
        yield unit
        stack = list(_body(unit))
        while stack:
            node = stack.pop()
            for child in ast.iter_child_nodes(node):
                (queue if isinstance(child, FUNCTIONS) else stack).append(child)


def _body(function):
    """A function's statements; a lambda's expression as one statement."""
    return [ast.Expr(function.body)] if isinstance(function, ast.Lambda) else function.body


def _own_gradient(function):
    """Why one function's own body (not its nested functions) computes a gradient, or None."""
    body = _body(function)
    name = getattr(function, "name", "")
    if name == "_backward" and not _is_stub(body):
        return "a _backward with a body"
    for node in (n for statement in body for n in _own_nodes(statement)):
        if isinstance(node, ast.AugAssign) and _names_gradient(node.target):
            return f"{ast.unparse(node.target)} {type(node.op).__name__} assignment"
        if isinstance(node, ast.Assign) and any(map(_names_gradient, node.targets)) and _arithmetic(node.value):
            return f"arithmetic stored into {ast.unparse(node.targets[0])}"
        if isinstance(node, ast.Call):
            if (isinstance(node.func, ast.Attribute) and node.func.attr == "append"
                    and _names_gradient(node.func.value) and any(map(_arithmetic, node.args))):
                return f"arithmetic appended to {ast.unparse(node.func.value)}"
            if (_calls(node, "setattr") and len(node.args) >= 3 and _gradient_string(node.args[1])
                    and _arithmetic(node.args[2])):
                return f"arithmetic set into {ast.unparse(node.args[0])}.{node.args[1].value} by setattr"
        if isinstance(node, ast.BinOp) and any(_calls(n, "getattr") and len(n.args) >= 2
                                               and _gradient_string(n.args[1]) for n in ast.walk(node)):
            return "arithmetic over a gradient read by getattr"
        if _finite_difference(node):
            return f"a finite difference {ast.unparse(node)}"
        if _power_rule(node):
            return f"the power rule {ast.unparse(node)}"
        if (isinstance(node, ast.Return) and node.value is not None and DERIVATIVE_NAMES.search(name)
                and (_arithmetic(node.value) or isinstance(node.value, (ast.Tuple, ast.List)))):
            return f"named like a derivative and returns {ast.unparse(node.value)}"
    if isinstance(function, ast.Lambda) and DERIVATIVE_NAMES.search(name) and _arithmetic(function.body):
        return f"named like a derivative and returns {ast.unparse(function.body)}"
    return None


def _calls(node, name):
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name


def _gradient_string(node):
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and bool(GRADIENT_ATTRIBUTES.search(node.value))


def _finite_difference(node):
    """``(f(a) - f(b)) / d``: the same callee twice, ``d`` holding a 2 or a name from the arguments."""
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)):
        return False
    difference = node.left
    if not (isinstance(difference, ast.BinOp) and isinstance(difference.op, ast.Sub)
            and isinstance(difference.left, ast.Call) and isinstance(difference.right, ast.Call)
            and ast.dump(difference.left.func) == ast.dump(difference.right.func)):
        return False
    divisor = list(ast.walk(node.right))
    arguments = {n.id for call in (difference.left, difference.right) for a in call.args
                 for n in ast.walk(a) if isinstance(n, ast.Name)}
    return (any(isinstance(n, ast.Constant) and n.value == 2 for n in divisor)
            or any(isinstance(n, ast.Name) and n.id in arguments for n in divisor))


def _power_rule(node):
    """``k * x ** (k - 1)`` (either factor order)."""
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult)):
        return False
    for k, power in ((node.left, node.right), (node.right, node.left)):
        if isinstance(power, ast.BinOp) and isinstance(power.op, ast.Pow):
            exponent = power.right
            if (isinstance(exponent, ast.BinOp) and isinstance(exponent.op, ast.Sub)
                    and ast.dump(exponent.left) == ast.dump(k)
                    and isinstance(exponent.right, ast.Constant) and exponent.right.value == 1):
                return True
    return False


def _own_nodes(statement):
    """The nodes of a statement, not descending into nested functions (judged on their own)."""
    stack = [statement]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(child for child in ast.iter_child_nodes(node)
                     if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))


def _is_stub(body):
    """Only a docstring, pass, ... or a raise: what the handout's TODOs are."""
    return all(isinstance(s, (ast.Pass, ast.Raise)) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
               for s in body)


def _names_gradient(target):
    if isinstance(target, ast.Attribute):
        return bool(GRADIENT_ATTRIBUTES.search(target.attr))
    if isinstance(target, ast.Name):
        return bool(GRADIENT_NAMES.search(target.id))
    if isinstance(target, ast.Subscript):
        return _names_gradient(target.value)
    return False


def _arithmetic(value):
    return any(isinstance(node, ast.BinOp) for node in ast.walk(value))


def release(out_dir, solutions=SOLUTIONS, out=None, config=None):
    """``autodiff101 release -o DIR [--config TOML]``: the handout as DIR/ and DIR.zip, after
    the leak scan; with the exercises of ``config``'s [course] table."""
    out = out or sys.stdout  # looked up now: a caller may have replaced it
    out_dir = Path(out_dir)
    if not _may_write_release(out_dir):
        return 2
    try:
        files = handout_files(solutions, chosen=None if config is None else chosen_exercises(config=config))
        problems = leaks(files, reference_sources(solutions, "all"), config)
    except HandoutError as error:
        print(f"autodiff101 release: {error}", file=sys.stderr)
        return 1
    if problems:
        print("autodiff101 release: refused, the handout would leak:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    return write_release(out_dir, files, out)


def write_release(out_dir, files, out=None):
    """Write a scanned handout: the folder, then the zip (one top folder named like DIR)."""
    out = out or sys.stdout  # looked up now: a caller may have replaced it
    out_dir = Path(out_dir)
    if not _may_write_release(out_dir):
        return 2
    if out_dir.exists():
        shutil.rmtree(out_dir)
    write_files(out_dir, files)
    archive = out_dir.with_name(out_dir.name + ".zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(files):
            bundle.writestr(f"{out_dir.name}/{path}", files[path])
    print(f"released the handout to {out_dir}/ and {archive} ({len(files)} files)", file=out)
    return 0


def _may_write_release(out_dir):
    """A release replaces an earlier release in ``out_dir``, never anything else."""
    if out_dir.exists() and not out_dir.is_dir():
        print(f"autodiff101 release: {out_dir} is a file; choose a folder", file=sys.stderr)
        return False
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / PUBLIC_CHECKS).exists():
        print(f"autodiff101 release: {out_dir} exists and is not an earlier release; "
              "choose an empty or new folder", file=sys.stderr)
        return False
    return True


# --- the fixed files of the handout ----------------------------------------------------------

CHECKER_INIT = '''\
"""The self-check that comes with this handout: run it with `python check.py`.

A copy of the course kit's standard-library-only modules; generated, do not edit.
"""
'''

CHECK_SCRIPT = '''\
"""Check your work: `python check.py` (the .py files) or `python check.py autodiff101.ipynb`;
add `--zip` to also write submission.zip, the file you hand in, next to your work."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the checker next to this file

from checker.selfcheck import closed_pipe_ok, main  # noqa: E402

if __name__ == "__main__":
    with closed_pipe_ok():  # `python check.py | head`: the reader stopping early is fine
        code = main(sys.argv[1:], default=Path(__file__).resolve().parent)
    sys.exit(code)
'''

TEST_HANDOUT = '''\
"""The public checks as a test suite: `python -m pytest` in this folder checks the .py files."""
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the checker next to this file

from checker import selfcheck  # noqa: E402

CHECKS = selfcheck.read_public_checks(HERE / "public_checks.json")


@pytest.fixture(scope="module")
def your_code():
    return selfcheck.load(HERE)


@pytest.mark.parametrize("check", CHECKS, ids=[check["id"] for check in CHECKS])
def test_public_check(check, your_code):
    (verdict,) = selfcheck.verdicts(your_code, [check])
    assert verdict.passed, selfcheck.explain(check, verdict)
'''

# The modules a student writes code in and hands in, in the order the README names them: the
# core's two, then an extension's module (moons.py) when the course chose it.
GRADED_MODULES = ("engine.py", "nn.py", "moons.py")
# What the README says of an extension's module, when it is in the handout.
MODULE_NOTES = {
    "moons.py": "`moons.py` holds the exercise `moons`, the two-moons classifier of micrograd's\n"
                "demo; it reads its 100 points from `moons.csv`, beside it, so keep the two together.\n"
                "`python moons.py` trains it with your code, MLP(2, [16, 16, 1]) for 100 steps, and\n"
                "prints its loss and accuracy at each step.",
}


def _listed(names, quote="`"):
    """`a`, `b` and `c`."""
    shown = [f"{quote}{name}{quote}" for name in names]
    return " and ".join(shown) if len(shown) < 3 else ", ".join(shown[:-1]) + " and " + shown[-1]


def student_readme(exercise_names, modules):
    """The handout's README.md for its exercises and the modules the student writes (every
    graded module in the handout: engine.py and nn.py, moons.py when chosen)."""
    notes = "".join(f"\n{MODULE_NOTES[name]}\n" for name in modules if name in MODULE_NOTES)
    return STUDENT_README.format(exercises=", ".join(f"`{name}`" for name in exercise_names),
                                 files=_listed(modules), plain=_listed(modules, quote=""), notes=notes)


STUDENT_README = '''\
# autodiff101: backpropagation from scratch

You will build a tiny automatic-differentiation engine: a `Value` that records how it was
computed, a `backward()` that pushes gradients through that record, and a small neural network
trained with it.

## What to do

Work either in the notebook `autodiff101.ipynb` (it tells the story step by step) or in the
Python files {files}. Each place you write code says
`# TODO exercise <name>` and raises `NotImplementedError` until you replace those two lines;
the comment just above it says what to compute. The exercises, in order: {exercises}.
Everything else is already written.

## Check your work

```bash
python check.py                    # checks {plain}
python check.py autodiff101.ipynb  # checks your notebook instead
```

It prints one line per exercise (passed, failed, or not implemented yet) with a hint for
each failure, and takes about a second. `python -m pytest` in this folder runs the same
checks as a test suite. The checks need only Python 3.10 or newer; the notebook also needs
Jupyter, and its pictures need `matplotlib` and `graphviz`.

These are the public checks. Your grade also counts further checks of the same kind, so
passing here is a good sign, not a promise: test your code on your own examples too.

`python train.py` trains the small network of `nn.py`, MLP(3, [3, 3, 1]), on three samples and
prints its loss.
{notes}
## What to hand in

```bash
python check.py --zip                    # checks {plain}, then writes submission.zip
python check.py autodiff101.ipynb --zip  # if you worked in the notebook: checks it, packs it
```

Hand in `submission.zip`: it holds {files} (or your notebook), which is what
is graded. It is written in this folder (beside the notebook you name); `--zip-to other.zip`
chooses another name, and never replaces a file the check did not write. If you worked in
the notebook and left the `.py` files as they came, `python check.py --zip` checks and packs
the notebook, and says so. A notebook you ran in Colab or another online Jupyter: download it
(*File → Download → .ipynb*) and hand in that file.
'''
