"""The instructor's notebook that both exports start from: the handout notebook with the
solutions kept between markers, and one test per compiled check where the handout has its
self-check cells.

It is built by the handout's own generator (``autograder.notebook.build``) from solutions/
whose regions are re-marked in the tool's syntax, so the exports tell the same story, cell
for cell, as the notebook students get from ``autodiff101 build``.
"""
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .. import handout
from .. import notebook as handout_notebook
from ..checks import compile_checks, course_seed

NAMED_BEGIN = re.compile(r"^(?P<indent>[ \t]*)(?P<marker>#+ BEGIN SOLUTION) \{(?P<exercise>[\w-]+)\}$", re.M)
FIRST_SETUP_LINE = handout_notebook.SETUP.splitlines()[0]
DEMO_TEXTS = {cell.text.rstrip("\n") for section in handout_notebook.PLAN for cell in section.cells
              if isinstance(cell, handout_notebook.Code)}


@dataclass
class Part:
    """One cell of the instructor's notebook and what it is for the exports."""

    kind: str  # "markdown", "intro", "end", "setup", "solution", "code" (given), "demo", "tests"
    cell: object  # the nbformat cell (for "tests": the self-check cell it replaces)
    exercise: str = None  # "solution": the exercise it solves; "tests": the exercise checked
    checks: list = field(default_factory=list)  # "tests": the compiled checks placed here


def marked_sources(begin, end, solutions=handout.SOLUTIONS, exercises=None):
    """The reference's modules with every region between ``begin`` and ``end`` marker lines,
    the solution kept. The begin line carries the exercise as ``{name}`` until ``parts``
    reads it off."""
    def region_lines(region):
        return [f"{region.indent}{begin} {{{region.exercise}}}", *region.lines, f"{region.indent}{end}"]

    return {name: handout._rewrite(text, name, region_lines)
            for name, text in handout.reference_sources(solutions, exercises).items()}


def parts(compiled, begin, end, solutions=handout.SOLUTIONS):
    """The instructor's notebook as a list of Parts, in order, with every compiled check in
    exactly one "tests" part: at its self-check cell (its ``cell``, else its exercise; see
    ``checks.check_cell``), or in the closing check cell
    when its exercise has none (training, deep). A test runs where it stands in the kernel,
    so a check that needs a method the notebook defines later (backward) waits for it."""
    # the course's extension exercises are those the compiled checks belong to
    chosen = tuple(dict.fromkeys(list(_core_exercises()) + [check["exercise"] for check in compiled]))
    references = handout.reference_sources(solutions, chosen)
    sources = marked_sources(begin, end, solutions, chosen)
    nb = handout_notebook.build(sources, compiled, handout.exercises(references))
    found = [_classify(cell) for cell in nb.cells]
    tests_at = {part.exercise: i for i, part in enumerate(found) if part.kind == "tests"}
    last = tests_at[None]
    waits = waits_for(compiled, handout.all_regions(references))
    for check in compiled:
        at = [tests_at.get(check.get("cell", check["exercise"]), last)] + [tests_at.get(e, last) for e in waits.get(check["id"], ())]
        found[max(at)].checks.append(check)
    return [part for part in found if part.kind != "tests" or part.checks]


def waits_for(compiled, regions):
    """{check id: exercises}: the exercises of the methods the notebook defines late
    (``notebook.LATER_METHODS``) that a check calls. Found by running the checks on the
    reference with each such method replaced by one that raises."""
    from ..checks import reference_namespace
    from ..inprocess import run_checks

    namespace = reference_namespace()
    waits = {}
    for method in handout_notebook.LATER_METHODS:
        for owner in handout_notebook.SPLIT_CLASSES:
            exercise = next((r.exercise for r in regions if r.function == f"{owner}.{method}"), None)
            cls = namespace.get(owner)
            if exercise is None or cls is None or method not in vars(cls):
                continue
            original = vars(cls)[method]

            def not_yet(*args, **kwargs):
                raise NotImplementedError(f"{owner}.{method} is defined later")

            setattr(cls, method, not_yet)
            try:
                results = run_checks(namespace, compiled)
            finally:
                setattr(cls, method, original)
            for check, verdict in results:
                if not verdict.passed:
                    waits.setdefault(check["id"], []).append(exercise)
    return waits


def _classify(cell):
    if cell.cell_type == "markdown":
        if cell.source == handout_notebook.INTRO.rstrip("\n"):
            return Part("intro", cell)
        if cell.source == handout_notebook.END.rstrip("\n"):
            return Part("end", cell)
        return Part("markdown", cell)
    if handout_notebook.CHECK_TAG in cell.metadata.get("tags", []):
        if cell.source.startswith(FIRST_SETUP_LINE):
            return Part("setup", cell)
        match = re.fullmatch(r"check\((?:'([\w-]+)')?\)", cell.source)
        if not match:
            raise ValueError(f"an unexpected self-check cell in the handout notebook: {cell.source!r}")
        return Part("tests", cell, exercise=match.group(1))
    exercises = NAMED_BEGIN.findall(cell.source)
    if exercises:
        cell.source = _closed_regions(NAMED_BEGIN.sub(r"\g<indent>\g<marker>", cell.source))
        return Part("solution", cell, exercise=exercises[0][2])
    if cell.source in DEMO_TEXTS:
        return Part("demo", cell)
    return Part("code", cell)


def _closed_regions(text):
    """``text`` with an end marker restored where a region closes a function: the generator
    cuts a function after its last statement, so the end marker's comment line after it is
    lost. Such a region runs to the function's end: the lines indented at least like the
    begin marker."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        if "BEGIN SOLUTION" in lines[i]:
            following = [line for line in lines[i + 1:] if "SOLUTION" in line]
            if not following or "END SOLUTION" not in following[0]:
                indent = lines[i][:len(lines[i]) - len(lines[i].lstrip())]
                last = i
                for j in range(i + 1, len(lines)):
                    if lines[j].strip() and not lines[j].startswith(indent):
                        break
                    if lines[j].strip():
                        last = j
                lines.insert(last + 1, indent + lines[i].strip().replace("BEGIN", "END"))
        i += 1
    return "\n".join(lines)


# --- the set-up cell of the exported notebooks ------------------------------------------------

# The package the exported notebooks unpack: named apart from the handout's checker/, which
# may sit next to the notebook, and from the kit.
KERNEL_PACKAGE = "autodiff101_checks"
KERNEL_MODULES = ("probes.py", "judge.py", "inprocess.py")  # inprocess.assert_check and what it needs
KERNEL_SETUP = """\
#@title The course's checks: run this cell, no need to read it
# The test cells below call assert_check, which runs one of the course's checks in this
# kernel. This cell carries a copy of those checks and unpacks it: nothing to install.
def _unpack_checks(packed):
    import importlib
    import sys
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp(prefix="autodiff101-checks-"))
    for name, text in packed.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    sys.path.insert(0, str(folder))
    return importlib.import_module("@PACKAGE@.inprocess").assert_check


assert_check = _unpack_checks({
@FILES@
})
""".replace("@PACKAGE@", KERNEL_PACKAGE)


def kernel_setup_source():
    """The exported notebooks' set-up cell: it defines ``assert_check`` from a copy of the
    kit's standard-library-only ``inprocess``, ``judge`` and ``probes`` (the modules the
    handout's checker ships too; never the reference), so that students need nothing
    installed, and never the kit, which holds the reference solution."""
    kit = Path(__file__).resolve().parents[1]
    files = {f"{KERNEL_PACKAGE}/__init__.py": '"""The course\'s checks, unpacked by the notebook\'s set-up cell."""\n'}
    for name in KERNEL_MODULES:
        files[f"{KERNEL_PACKAGE}/{name}"] = (kit / name).read_text()
    return handout_notebook.setup_embedded(files, KERNEL_SETUP)


def frozen(check):
    """A compiled check as a Python string literal of its JSON: what a test cell passes to
    ``kernel.assert_check``. Multi-line and raw where that is safe, so an instructor can read it."""
    text = "{\n" + ",\n".join(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}"
                               for key, value in check.items()) + "\n}"  # a line per field
    if "'''" in text or text.endswith("'") or "\\" in text:
        return repr(json.dumps(check))
    return "r'''\n" + text + "\n'''"


def test_call(check, env):
    """The line that runs one check in the kernel, ``env`` being the expression for its globals."""
    return f"assert_check({env}, {frozen(check)})"


def is_hidden(check):
    """Hidden from the student until grading: every check that is not public."""
    return check["visibility"] != "public"


def points_text(points):
    """4 -> "4 points", 1 -> "1 point", 2.5 -> "2.5 points"."""
    points = round(points, 6)  # scaled points add up to 100.00000000000001
    number = int(points) if points == int(points) else points
    return f"{number} point" + ("" if number == 1 else "s")


def compile_for_export(out_dir, manifest, seed=None, config=None):
    """(seed, compiled checks) for an export into ``out_dir``; None, with the reason on
    stderr, when ``out_dir`` holds something other than an earlier export or the config is bad."""
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / manifest).exists():
        print(f"autodiff101 export: {out_dir} exists and is not an earlier export; "
              "choose an empty or new folder", file=sys.stderr)
        return None
    try:
        seed = course_seed(config) if seed is None else seed  # as `autodiff101 grade` does
        return seed, compile_checks(seed, config)
    except ValueError as error:  # a bad --config file
        print(f"autodiff101 export: {error}", file=sys.stderr)
        return None


# --- what the exports carry besides the notebook, and what their graders skip --------------
#
# The rule, the same in both exports: a cell the handout tags NOT_GRADED_TAG (the pictures,
# the moons' 100-step training) stays in the exported notebook for students to run, and the
# tool skips it when it grades, as `autodiff101 grade` and check.py do: otter by its own
# ``otter_ignore`` tag, nbgrader by a guard on the NBGRADER_EXECUTION variable it sets while
# it autogrades or validates. No check reads what such a cell defines.


def is_not_graded(cell):
    """Whether the handout tagged ``cell`` as one the graders leave out."""
    return handout_notebook.NOT_GRADED_TAG in cell.metadata.get("tags", [])


def guarded(text, variable):
    """``text`` run only when the environment variable ``variable`` is unset: indented under
    an ``if``, its last expression (the picture the cell shows) passed to ``display``, since
    an expression inside an ``if`` is not shown."""
    import ast

    lines = text.rstrip("\n").split("\n")
    last = ast.parse(text).body[-1]
    shown = isinstance(last, ast.Expr) and not (isinstance(last.value, ast.Call)
                                                 and getattr(last.value.func, "id", None) == "print")
    if shown:  # by the expression's own columns: a comment may follow it on its line
        start, end = last.lineno - 1, last.end_lineno - 1
        lines[end] = lines[end][:last.end_col_offset] + ")" + lines[end][last.end_col_offset:]
        lines[start] = lines[start][:last.col_offset] + "display(" + lines[start][last.col_offset:]
    if shown:  # Jupyter's own display, imported: the notebook's code may also run outside IPython
        lines.insert(0, "from IPython.display import display")
    body = "\n".join(("    " + line).rstrip() if line.strip() else "" for line in lines)
    return (f"import os\n\nif not os.environ.get({variable!r}):  # skipped while the notebook is graded\n"
            + body)


def data_files(compiled):
    """{file name: text}: the data files the exported notebook reads (moons.csv when the
    moons exercise is chosen), to sit next to it for students and for the grader."""
    return handout.extension_data({check["exercise"] for check in compiled})


def _core_exercises():
    from ..checks import CORE_EXERCISES

    return CORE_EXERCISES


finished_notebook = handout_notebook.finished_notebook  # the handout's own, one place
