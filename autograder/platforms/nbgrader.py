"""``autodiff101 export nbgrader``: a ready nbgrader course folder, and per-check grades out of it.

The folder holds ``nbgrader_config.py`` and ``source/<assignment>/<assignment>.ipynb``. In the
notebook, each exercise cell is an nbgrader solution cell (our solution markers become
nbgrader's ``### BEGIN SOLUTION``/``### END SOLUTION``), the given code is read-only (nbgrader
restores it when grading), and every compiled check is one autograded test cell worth the
check's points that calls ``assert_check`` on the kernel's globals; the read-only set-up
cell defines it from a copy of the checks it carries (``source.kernel_setup_source``), so
neither students nor ``nbgrader autograde`` need the kit installed. Checks that are
not public sit between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``, so the
release shows only that a hidden check is there. At the top of the folder sits a wheel of the
kit, for the instructor's machine (``export nbgrader-grades`` reads the gradebook with it).

``nbgrader autograde`` logs one "Attribute 'checksum' for cell hidden-check-NN has changed"
warning per hidden check and student. It is harmless: nbgrader records a cell's checksum
before it removes the hidden tests, so every released hidden-check cell differs from its
record, and autograde puts the recorded cell, hidden tests included, back before running it
(nbgrader issue #1961). That restoration is what makes hidden tests run at all.

nbgrader's own grade export has totals only; ``grades_csv`` reads the gradebook database
through nbgrader's ``Gradebook`` API and writes one column per check.
"""
import csv
import io
import json
import shlex
import sys
from pathlib import Path

import nbformat

from .. import notebook as handout_notebook
from . import export_source as source

ASSIGNMENT = "autodiff101"
COURSE = "autodiff101"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
MANIFEST = "autodiff101-checks.json"  # what was exported: seed, and each check's cell and points
# What replaces a solution region in the release (nbgrader indents it like the region).
CODE_STUB = '# TODO: replace these two lines with the code described above.\nraise NotImplementedError("not written yet")'
# stderr text nbgrader drops before scoring a cell: warnings are not failures.
WARNING_PATTERN = r"(?i)warning"

INTRO = handout_notebook.OPENING + """\
**How to work.** Run the cells in order. In each exercise cell, a comment describes what to
compute and a `# TODO` line marks where: replace the TODO line and the
`raise NotImplementedError` under it with your code. After each exercise come test cells;
one that raises `AssertionError` says what went wrong. The cells you do not edit are
read-only and are restored when your notebook is graded. More checks run at grading time
than you see here, so test your code on examples of your own as well. If you change an
earlier cell, re-run the cells after it (or *Restart & Run All*).
"""

END_TEXT = """\
## Done

The last test cells check the training loop on known weights and a very deep graph. If
every test cell above runs without an error, submit the notebook.
"""

def cell_metadata(grade_id, grade=False, solution=False, locked=False, points=None):
    """nbgrader's cell metadata (schema version 3)."""
    data = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": False}
    if grade:
        data["points"] = points
    return {"nbgrader": data}


def test_cell_source(check):
    points = source.points_text(check["points"])
    call = source.test_call(check, "globals()")
    if not source.is_hidden(check):
        return f"# Check {check['id']} ({points}): {check['title']}\n{call}"
    return (f"# A hidden check ({points}): it runs when your notebook is graded.\n{BEGIN_HIDDEN}\n"
            f"# {check['id']}: {check['title']}\n{call}\n{END_HIDDEN}")


def test_cell(check, grade_id):
    return nbformat.v4.new_code_cell(test_cell_source(check), metadata={
        **cell_metadata(grade_id, grade=True, locked=True, points=check["points"]),
        "tags": [handout_notebook.CHECK_TAG],  # autodiff101 grade skips it, as it skips self-check cells
    })


def grade_ids(compiled):
    """{check id: grade id}: public checks by their id; hidden ones numbered, since cell
    metadata is released with the notebook and an id like pow-cube-step tells an input."""
    hidden = iter(range(1, len(compiled) + 1))
    return {check["id"]: f"hidden-check-{next(hidden):02d}" if source.is_hidden(check) else f"check-{check['id']}"
            for check in compiled}


def source_notebook(compiled):
    """The nbgrader source notebook for ``compiled`` checks."""
    cells = []
    given, seen = 0, {}
    ids = grade_ids(compiled)
    for part in source.parts(compiled, BEGIN, END):
        cell = part.cell
        if part.kind == "intro":
            cell = nbformat.v4.new_markdown_cell(INTRO.rstrip("\n"))
        elif part.kind == "end":
            cell = nbformat.v4.new_markdown_cell(END_TEXT.rstrip("\n"))
        elif part.kind == "setup":
            cell = nbformat.v4.new_code_cell(source.kernel_setup_source(), metadata={
                **cell_metadata("setup", locked=True), "tags": [handout_notebook.CHECK_TAG],
                **handout_notebook.FOLDED})
        elif part.kind == "solution":  # nbgrader needs unique ids: the moons unit has five cells
            seen[part.exercise] = seen.get(part.exercise, 0) + 1
            number = seen[part.exercise]
            cell.metadata.update(cell_metadata(f"exercise-{part.exercise}" + (f"-{number}" if number > 1 else ""),
                                               solution=True))
        elif part.kind == "code":
            given += 1
            cell.metadata.update(cell_metadata(f"given-{given:02d}", locked=True))
        elif part.kind == "tests":
            cells.extend(test_cell(check, ids[check["id"]]) for check in part.checks)
            continue
        if source.is_not_graded(cell):  # nbgrader sets NBGRADER_EXECUTION while it grades
            cell.source = source.guarded(cell.source, "NBGRADER_EXECUTION")
        cells.append(cell)
    nb = source.finished_notebook(cells)
    return nb


def config_text(assignment=ASSIGNMENT, course=COURSE):
    """nbgrader_config.py for the course folder."""
    return f'''\
# nbgrader configuration written by `autodiff101 export nbgrader`.
c = get_config()

c.CourseDirectory.course_id = {course!r}
# The assignment is created in the gradebook by `nbgrader generate_assignment`, students by
# `nbgrader autograde` (both nbgrader's defaults, spelled out).
c.GenerateAssignment.create_assignment = True
c.Autograde.create_student = True

# What replaces each solution region in the release.
c.ClearSolutions.code_stub = {{"python": {CODE_STUB!r}}}

# A test cell that writes to stderr scores 0; a warning (from numpy, matplotlib, ...) is
# not a failure, so such stderr output is dropped before scoring.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = {WARNING_PATTERN!r}

# A student who deletes a test cell gets it back at grading time instead of the points.
c.OverwriteCells.add_missing_cells = True
'''


def manifest(compiled, seed, assignment):
    ids = grade_ids(compiled)
    return {"tool": "nbgrader", "assignment": assignment, "notebook": assignment, "seed": seed,
            "checks": [{"id": c["id"], "grade_id": ids[c["id"]], "exercise": c["exercise"],
                        "points": c["points"], "visibility": c["visibility"]} for c in compiled]}


def export(out_dir, seed=None, config=None, assignment=ASSIGNMENT, course=COURSE, out=None):
    """Write the course folder with the kit's wheel at its top (never under source/, whose
    files nbgrader releases to students: the kit holds the reference solution); return 0,
    1 when the wheel cannot be built, or 2 when ``out_dir`` holds something else."""
    out = out or sys.stdout  # looked up now: a caller may have replaced it
    from .wheel import WheelError, build_wheel

    out_dir = Path(out_dir)
    notebook_path = out_dir / "source" / assignment / f"{assignment}.ipynb"
    prepared = source.compile_for_export(out_dir, MANIFEST, seed, config)
    if prepared is None:
        return 2
    seed, compiled = prepared
    try:
        wheel = build_wheel(out_dir)
    except WheelError as error:
        print(f"autodiff101 export: {error}", file=sys.stderr)
        return 1
    notebook_path.parent.mkdir(parents=True, exist_ok=True)
    notebook_path.write_text(handout_notebook.render(source_notebook(compiled)))
    for name, text in source.data_files(compiled).items():  # released with the notebook
        (notebook_path.parent / name).write_text(text)
    (out_dir / "nbgrader_config.py").write_text(config_text(assignment, course))
    (out_dir / MANIFEST).write_text(json.dumps(manifest(compiled, seed, assignment), indent=1) + "\n")
    total = round(sum(check["points"] for check in compiled), 6)  # scaled points: 100.00000000000001
    print(f"wrote the nbgrader course folder {out_dir} ({len(compiled)} test cells, "
          f"{source.points_text(total)}, seed {seed}, the kit as {wheel.name})\n"
          f"where nbgrader autograde runs, the kit installs from the folder: "
          f"pip install {shlex.quote(str(out_dir / wheel.name))}\n"
          f"next: cd {shlex.quote(str(out_dir))} && nbgrader generate_assignment {shlex.quote(assignment)}", file=out)
    return 0


# --- per-check grades from the gradebook -------------------------------------------------


def per_check_grades(course_dir, assignment=None):
    """(check ids, rows) of the gradebook: a row per submission, {"student", "score",
    "max_score", "by_check": {check id: score}}. Uses nbgrader's Gradebook API."""
    from nbgrader.api import Gradebook

    course_dir = Path(course_dir)
    exported = json.loads((course_dir / MANIFEST).read_text())
    assignment = assignment or exported["assignment"]
    by_grade_id = {check["grade_id"]: check["id"] for check in exported["checks"]}
    rows = []
    with Gradebook(f"sqlite:///{(course_dir / 'gradebook.db').resolve()}") as gradebook:
        for submission in gradebook.assignment_submissions(assignment):
            by_check = {}
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    if grade.name in by_grade_id:
                        by_check[by_grade_id[grade.name]] = grade.score
            rows.append({"student": submission.student.id, "score": submission.score,
                         "max_score": submission.max_score, "by_check": by_check})
    rows.sort(key=lambda row: row["student"])
    return [check["id"] for check in exported["checks"]], rows


def grades_csv(course_dir, assignment=None):
    check_ids, rows = per_check_grades(course_dir, assignment)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", "score", "max_score", *check_ids])
    for row in rows:
        writer.writerow([row["student"], _number(row["score"]), _number(row["max_score"]),
                         *(_number(row["by_check"].get(c, "")) for c in check_ids)])
    return buffer.getvalue()


def _number(x):
    if x == "" or x is None:
        return ""
    x = round(float(x), 4)
    return int(x) if x == int(x) else x


def export_grades(course_dir, out_path, assignment=None, out=None):
    """``autodiff101 export nbgrader-grades``: the per-check CSV."""
    out = out or sys.stdout  # looked up now: a caller may have replaced it
    course_dir = Path(course_dir)
    if not (course_dir / MANIFEST).exists():
        print(f"autodiff101 export: {course_dir} is not a course folder written by "
              "`autodiff101 export nbgrader`", file=sys.stderr)
        return 2
    if not (course_dir / "gradebook.db").exists():
        print(f"autodiff101 export: no gradebook.db in {course_dir}: run nbgrader autograde first",
              file=sys.stderr)
        return 2
    text = grades_csv(course_dir, assignment)
    if out_path in (None, "-"):
        out.write(text)
    else:
        Path(out_path).write_text(text)
        print(f"wrote {text.count(chr(10)) - 1} rows to {out_path}", file=out)
    return 0
