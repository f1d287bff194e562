"""``autodiff101 export otter``: an otter-grader (v7) master notebook.

``otter assign`` turns it into the student notebook, the solution notebook and the
Gradescope autograder zip. The layout otter expects, in raw cells:

- ``# ASSIGNMENT CONFIG`` first: exception-based tests (``ok_format: false``), no PDF
  export (that needs xelatex), and the kit in the autograder's requirements;
- a set-up cell that unpacks a copy of the checks (``source.kernel_setup_source``) and
  defines ``assert_check``, so that a student's ``grader.check`` runs without the kit;
- per question, ``# BEGIN QUESTION`` (its name is the exercise where its tests stand),
  the exercise cell between raw ``# BEGIN SOLUTION``/``# END SOLUTION`` cells (without those
  raw cells otter would copy the solution into the student notebook), and
  ``# BEGIN TESTS``: one test function per compiled check, which calls ``assert_check``
  (the kit's in the autograder, the set-up cell's copy in a student's kernel) on the
  kernel's globals; checks that are not public are hidden.

Inside the exercise cell, our solution markers are otter's ``# BEGIN SOLUTION NO PROMPT`` /
``# END SOLUTION`` comments, followed by a prompt block (a triple-quoted string whose quote lines end in ``# BEGIN PROMPT``
and ``# END PROMPT``): otter puts the prompt in the student's copy instead of the solution,
and the prompt is the kit handout's own TODO, which raises NotImplementedError until the
student replaces it. In the solution it is a string that does nothing.

The autograder installs the kit from a wheel built into the export (``autograder_files``),
not from a package index.
"""
import json
import re
import shlex
import sys
from pathlib import Path

import nbformat

from .. import handout
from .. import notebook as handout_notebook
from . import export_source as source
from .kernel import FAILED

ASSIGNMENT = "autodiff101"
BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
MANIFEST = "autodiff101-checks.json"
OTTER_IGNORE = "otter_ignore"  # a cell otter's grader leaves out (otter.execute.preprocessor)

INTRO = handout_notebook.OPENING + """\
**How to work.** Run the cells in order. In each exercise cell, a comment describes what to
compute and a `# TODO` line marks where: replace the TODO line and the
`raise NotImplementedError` under it with your code. After each exercise, a
`grader.check(...)` cell runs its public checks on your code and says what went wrong, if
anything. More checks run when your notebook is graded, so test your code on examples of
your own as well. If you change an earlier cell, re-run the cells after it (or *Restart &
Run All*).
"""

END_TEXT = """\
## Done

The last checks run the training loop on known weights and a very deep graph. When every
check passes, run the cells below to check everything at once and to export your notebook
for submission.
"""


# Where Gradescope unpacks otter's autograder zip; otter puts ``autograder_files`` in files/.
GRADESCOPE_FILES = "/autograder/source/files"


def config_cell(requirement, wheel=None, assignment=ASSIGNMENT, data=()):
    """The raw ``# ASSIGNMENT CONFIG`` cell (YAML). ``wheel``: the kit's wheel, a file next
    to the master notebook that goes into the autograder zip only (never to students: the
    kit holds the reference solution). ``data``: files next to the master notebook that go
    to students and into the autograder (moons.csv)."""
    files = f"autograder_files:\n  - {json.dumps(wheel)}\n" if wheel else ""
    if data:
        files += "files:\n" + "".join(f"  - {json.dumps(name)}\n" for name in data)
    return nbformat.v4.new_raw_cell(f"""\
# ASSIGNMENT CONFIG
name: {assignment}
requirements:
  - {json.dumps(requirement)}
{files}init_cell: true
check_all_cell: true
export_cell:
  pdf: false
run_tests: true
solutions_pdf: false
tests:
  files: false
  ok_format: false
generate:
  pdf: false
  show_hidden: false""")


def with_prompts(text, regions):
    """An exercise cell's solution blocks, each followed by otter's prompt block holding the
    kit handout's TODO for that region (``regions``, in the order the blocks come)."""
    regions = iter(regions)
    lines = []
    for line in text.split("\n"):
        indent = line[:len(line) - len(line.lstrip())]
        if line.strip() == BEGIN:
            line += " NO PROMPT"  # otter then leaves no `...` behind: the prompt takes its place
        lines.append(line)
        if line.strip() == END:
            todo = [indent + todo_line.strip() for todo_line in handout.todo_lines(next(regions))]
            lines += [f'{indent}""" # BEGIN PROMPT', *todo, f'{indent}""" # END PROMPT']
    return "\n".join(lines)


def raw(text):
    return nbformat.v4.new_raw_cell(text)


def test_name(check):
    return "test_" + re.sub(r"\W", "_", check["id"])


def test_cell(check):
    """One exception-based test: otter reads the config block, then the function (the call
    after it only lets an instructor run the master notebook as it is)."""
    hidden = "true" if source.is_hidden(check) else "false"
    name = test_name(check)
    return nbformat.v4.new_code_cell(f'''\
""" # BEGIN TEST CONFIG
points: {check["points"]}
hidden: {hidden}
""" # END TEST CONFIG
def {name}(env):
    try:  # the autograder: the kit's own
        from autograder.platforms.kernel import assert_check
    except ImportError:  # a student's kernel: the copy the set-up cell unpacked
        assert_check = env["assert_check"]
    {source.test_call(check, "env")}
{name}(globals())''', metadata={"tags": [handout_notebook.CHECK_TAG]})  # the kit's own: autodiff101 grade leaves it out


def question(name, checks, solutions=()):
    """The cells of one question: its exercise cells, if any (the moons unit has several,
    one per function), then its tests."""
    return question_start(name, solutions) + question_end(checks)


def question_start(name, solutions=()):
    cells = [raw(f"# BEGIN QUESTION\nname: {name}")]
    if solutions:
        cells += [raw("# BEGIN SOLUTION"), *solutions, raw("# END SOLUTION")]
    return cells


def question_end(checks):
    cells = []
    if checks:
        cells += [raw("# BEGIN TESTS"), *(test_cell(check) for check in checks), raw("# END TESTS")]
    return cells + [raw("# END QUESTION")]


def given_before_tests(parts, start, exercise):
    """Whether given code stands between an exercise's last solution cell (before ``start``)
    and its own tests part, with nothing but given code and demos in between."""
    given = False
    for part in parts[start:]:
        if part.kind == "tests":
            return given and part.exercise == exercise
        if part.kind not in ("code", "demo"):
            return False
        given = given or part.kind == "code"
    return False


def questions(parts):
    """{question name: its checks}: a question per self-check cell of the handout, named
    after it; the closing one is split by exercise (training, deep)."""
    found = {}
    for part in parts:
        if part.kind != "tests":
            continue
        if part.exercise is not None:
            found[part.exercise] = part.checks
            continue
        for check in part.checks:
            found.setdefault(check["exercise"], []).append(check)
    return found


def master_notebook(compiled, requirement, wheel=None):
    parts = source.parts(compiled, BEGIN, END)
    chosen = sorted({check["exercise"] for check in compiled})
    # The course's regions, extensions too; each exercise's in the order its cells come,
    # consumed across its cells (the moons unit's five). Every region's exercise gets its own:
    # a solution cell may belong to an exercise none of the compiled checks names.
    regions = handout.all_regions(handout.reference_sources(exercises=chosen))
    pending = {exercise: iter([r for r in regions if r.exercise == exercise])
               for exercise in dict.fromkeys(r.exercise for r in regions)}
    grouped = questions(parts)
    cells = [config_cell(requirement, wheel, data=tuple(source.data_files(compiled)))]
    asked, solving, open_question = set(), [], None
    for index, part in enumerate(parts):
        if open_question is not None and part.kind == "tests" and part.exercise == open_question:
            cells += question_end(grouped.get(open_question, []))
            open_question = None
            continue
        if part.kind == "intro":
            cells.append(nbformat.v4.new_markdown_cell(INTRO.rstrip("\n")))
        elif part.kind == "end":
            cells.append(nbformat.v4.new_markdown_cell(END_TEXT.rstrip("\n")))
        elif part.kind == "setup":  # after otter's own init cell: the checks the tests call
            # Tagged as the kit's own cell: autodiff101 grade leaves it out, as in nbgrader's
            # notebook (it is the kit's code, not the student's, and 118 KB to run).
            cells.append(nbformat.v4.new_code_cell(source.kernel_setup_source(), metadata={
                "tags": [handout_notebook.CHECK_TAG], **handout_notebook.FOLDED}))
        elif part.kind == "solution":
            part.cell.source = with_prompts(part.cell.source, pending.setdefault(part.exercise, iter(())))
            solving.append(part.cell)
            following = parts[index + 1] if index + 1 < len(parts) else None
            if following is None or (following.kind, following.exercise) != ("solution", part.exercise):
                if given_before_tests(parts, index + 1, part.exercise):
                    # its tests call given code that comes after the exercise (train_moons):
                    # the question holds that code and closes at the tests' own place
                    cells += question_start(part.exercise, solving)
                    open_question = part.exercise
                else:
                    cells += question(part.exercise, grouped.get(part.exercise, []), solving)
                asked.add(part.exercise)
                solving = []
        elif part.kind == "tests":
            names = [part.exercise] if part.exercise is not None else list(dict.fromkeys(
                check["exercise"] for check in part.checks))
            for name in names:
                if name not in asked:
                    cells += question(name, grouped[name])
                    asked.add(name)
        else:
            if source.is_not_graded(part.cell):  # otter's own tag: its grader skips the cell
                part.cell.metadata.setdefault("tags", []).append(OTTER_IGNORE)
            cells.append(part.cell)
    nb = source.finished_notebook(cells)
    return nb, grouped


def manifest(grouped, seed, assignment):
    return {"tool": "otter", "assignment": assignment, "seed": seed,
            "questions": {name: [check["id"] for check in checks] for name, checks in grouped.items()},
            "checks": [{"id": c["id"], "question": name, "exercise": c["exercise"], "points": c["points"],
                        "visibility": c["visibility"]} for name, checks in grouped.items() for c in checks]}


def export(out_dir, seed=None, config=None, requirement=None, assignment=ASSIGNMENT, out=None):
    """Write DIR/<assignment>.ipynb (the master notebook), the manifest and, unless
    ``requirement`` says how Gradescope gets the kit, the kit's wheel; 0, or 2 on bad input."""
    out = out or sys.stdout  # looked up now: a caller may have replaced it
    from .wheel import WheelError, build_wheel

    out_dir = Path(out_dir)
    prepared = source.compile_for_export(out_dir, MANIFEST, seed, config)
    if prepared is None:
        return 2
    seed, compiled = prepared
    wheel = None
    if requirement is None:
        try:
            wheel = build_wheel(out_dir).name
        except WheelError as error:
            print(f"autodiff101 export: {error}", file=sys.stderr)
            return 1
        requirement = f"{GRADESCOPE_FILES}/{wheel}"
    nb, grouped = master_notebook(compiled, requirement, wheel)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{assignment}.ipynb").write_text(handout_notebook.render(nb))
    for name, text in source.data_files(compiled).items():  # `files:` in the config cell
        (out_dir / name).write_text(text)
    (out_dir / MANIFEST).write_text(json.dumps(manifest(grouped, seed, assignment), indent=1) + "\n")
    carried = f", the kit as {wheel}" if wheel else ""
    print(f"wrote the otter master notebook {out_dir / f'{assignment}.ipynb'} ({len(grouped)} questions, "
          f"{len(compiled)} tests, seed {seed}{carried})\n"
          f"next: cd {shlex.quote(str(out_dir))} && otter assign {shlex.quote(assignment + '.ipynb')} dist", file=out)
    return 0


# --- per-check scores out of otter's results ---------------------------------------------

FAILED_CHECK = re.compile(FAILED.replace("{id}", r"(?P<id>[\w-]+)"))  # FAILED has no regex syntax


def per_check_scores(results, exported):
    """{check id: score} from an otter results.json (``results``, a dict) and the export's
    manifest. Otter reports a score per question; a failed test's message starts with
    ``check <id> failed``, which names the checks inside. Raises ValueError when the two
    disagree (a test that failed without saying which check, say)."""
    points = {check["id"]: check["points"] for check in exported["checks"]}
    scores = {}
    for question, check_ids in exported["questions"].items():
        entry = next((t for t in results.get("tests", []) if t.get("name") == question), None)
        if entry is None:
            raise ValueError(f"otter's results have no question {question!r}")
        failed = {match["id"] for match in FAILED_CHECK.finditer(entry.get("output", ""))}
        for check_id in check_ids:
            scores[check_id] = 0 if check_id in failed else points[check_id]
        earned = sum(scores[check_id] for check_id in check_ids)
        if abs(earned - entry.get("score", 0)) > 1e-6:
            raise ValueError(f"question {question!r}: otter scored {entry.get('score')}, the failed "
                             f"checks it names leave {earned}")
    return scores
