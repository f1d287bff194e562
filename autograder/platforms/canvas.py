"""Canvas: a graded batch (OUT/grades.csv) becomes OUT/canvas.csv, a file Canvas's gradebook
imports.

Canvas's import format (DESIGN.md §5): the columns ``Student, ID, SIS User ID, SIS Login ID,
Section``, then one column per assignment titled ``Title (canvas_id)``; the second row may be
``Points Possible``. The roster is a gradebook export from Canvas (the same columns, any
others ignored). A submission's id (its file or folder name) is matched to the roster's id
column, ignoring case and surrounding spaces. Nothing is dropped silently: roster rows
without a submission keep an empty grade (Canvas leaves those untouched) and submissions
without a roster row are listed, with the roster rows, in OUT/canvas-unmatched.txt.

Which scores are uploaded (``SCORED``): a submission's row gives its student a grade when its
status is an outcome of the submission itself: graded, or load-error, timeout, crashed and
rejected, which score 0 because the work as handed in does not load, runs out of time, kills
its worker or is not a submission. A ``grader-fault`` row (the grader failed, not the work; a
rerun grades it again), or a status this version does not know, is no grade: its student's
row is left out of OUT/canvas.csv, so the import changes nothing for them, and they are named
on the terminal and in OUT/canvas-unmatched.txt.
"""
import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from .. import report
from ..text import NAME, from_spreadsheet_cell, plural, spreadsheet_cell, untrusted

CANVAS = "canvas.csv"
UNMATCHED = "canvas-unmatched.txt"
IDENTITY = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
POINTS_POSSIBLE = "Points Possible"
TITLE_WITH_ID = re.compile(r".*\S \((\d+)\)$")
# Statuses whose score is the submission's own (report.STATUSES without grader-fault).
SCORED = ("graded", "load-error", "timeout", "crashed", "rejected")


class CanvasError(Exception):
    """The roster or the request cannot give a Canvas file (exit code 2)."""


@dataclass
class Export:
    path: Path
    matched: int = 0
    unmatched_submissions: list = field(default_factory=list)  # submission ids
    unmatched_roster: list = field(default_factory=list)  # roster rows (dicts)
    left_out: list = field(default_factory=list)  # (roster row, submission id, status): no grade to upload
    warnings: list = field(default_factory=list)
    unmatched_path: Path = None


def read_roster(path, id_column):
    """The roster's students as dicts (the Points Possible row and blank rows left out)."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise CanvasError(f"cannot read the roster {path}: {error}") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    missing = [c for c in (*IDENTITY, id_column) if c not in columns]
    if missing:
        raise CanvasError(f"the roster {path} has no column {', '.join(map(repr, dict.fromkeys(missing)))} "
                          f"(it has {', '.join(columns) or 'none'}); export it from Canvas's gradebook")
    students = []
    for row in reader:
        if (row.get("Student") or "").strip() == POINTS_POSSIBLE:
            continue
        if not any((value or "").strip() for value in row.values() if isinstance(value, str)):
            continue
        students.append({column: (row.get(column) or "").strip() for column in columns})
    return students


def read_grades(out):
    """[(submission id, score, max_score, status)] from OUT/grades.csv."""
    path = Path(out) / report.GRADEBOOK
    try:
        rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    except OSError as error:
        raise CanvasError(f"no gradebook in {out}: {error.strerror or error}") from None
    return [(from_spreadsheet_cell(row["submission"]), float(row["score"]), float(row["max_score"]), row["status"])
            for row in rows]


def export(out, roster, assignment, id_column="SIS Login ID"):
    """Write OUT/canvas.csv (and OUT/canvas-unmatched.txt when anything is unmatched)."""
    out = Path(out)
    if not assignment or not assignment.strip():
        raise CanvasError("the assignment needs a title, e.g. 'Autodiff 101 (12345)'")
    assignment = assignment.strip()
    students = read_roster(roster, id_column)
    grades = read_grades(out)
    result = Export(out / CANVAS)
    if not TITLE_WITH_ID.fullmatch(assignment):
        result.warnings.append(f"{assignment!r} has no Canvas id in parentheses: Canvas will create "
                               "a new assignment instead of filling in the existing one")
    by_id = {}
    for student in students:
        key = student[id_column].casefold()
        if not key:
            result.warnings.append(f"roster row {student['Student']!r} has an empty {id_column!r}")
            continue
        if key in by_id:
            raise CanvasError(f"two roster rows have {id_column} {student[id_column]!r}: "
                              f"{by_id[key]['Student']!r} and {student['Student']!r}")
        by_id[key] = student
    scores, left_out = {}, {}
    for submission, score, _, status in grades:
        student = by_id.get(submission.strip().casefold())
        if student is None:
            result.unmatched_submissions.append(submission)
        elif status in SCORED:
            scores[id(student)] = score
            left_out.pop(id(student), None)
        elif id(student) not in scores:  # not a score of the work: never a 0 in the upload
            left_out[id(student)] = (student, submission, status)
    result.matched = len(scores)
    result.left_out = list(left_out.values())
    result.unmatched_roster = [s for s in students if id(s) not in scores and id(s) not in left_out]
    possible = max((g[2] for g in grades), default=0)

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    # Every text cell as a spreadsheet shows text, never a formula (text.spreadsheet_cell).
    writer.writerow([spreadsheet_cell(c) for c in (*IDENTITY, assignment)])
    writer.writerow([POINTS_POSSIBLE, "", "", "", "", report.points(possible)])
    for student in students:
        if id(student) in left_out:  # absent from the file: the import leaves their grade as it is
            continue
        grade = scores.get(id(student))
        writer.writerow([*(spreadsheet_cell(student[c]) for c in IDENTITY), "" if grade is None else report.points(grade)])
    report.write_atomic(result.path, buffer.getvalue())

    unmatched_path = out / UNMATCHED
    if result.unmatched_submissions or result.unmatched_roster or result.left_out:
        lines = [f"Unmatched or left out when writing {CANVAS} (matched by the roster's {id_column!r}).", ""]
        if result.left_out:
            lines.append(f"Students left out of {CANVAS} ({len(result.left_out)}): their submission has no "
                         "score of its own (grader-fault: the grader failed, not the work; rerun "
                         "`autodiff101 grade` to grade it again, then export again):")
            lines += [f"  {untrusted(s[id_column], NAME)}\t{untrusted(s['Student'], NAME)}\t"
                      f"{untrusted(submission, NAME)}\t{untrusted(status, NAME) or '(no status)'}"
                      for s, submission, status in result.left_out]
            lines.append("")
        lines.append(f"Submissions with no roster row ({len(result.unmatched_submissions)}), not in {CANVAS}:")
        lines += [f"  {untrusted(s, NAME)}" for s in result.unmatched_submissions] or ["  (none)"]
        lines += ["", f"Roster rows with no submission ({len(result.unmatched_roster)}), "
                  f"left with an empty grade in {CANVAS}:"]
        lines += [f"  {untrusted(s[id_column], NAME)}\t{untrusted(s['Student'], NAME)}"
                  for s in result.unmatched_roster] or ["  (none)"]
        report.write_atomic(unmatched_path, "\n".join(lines) + "\n")
        result.unmatched_path = unmatched_path
    else:
        unmatched_path.unlink(missing_ok=True)
    return result


def command(out, roster, assignment, id_column="SIS Login ID", console=None):
    """Export and say what happened; the exit code (2 for a bad roster or title)."""
    from rich.console import Console
    from rich.text import Text

    console = console or Console()
    try:
        result = export(out, roster, assignment, id_column)
    except CanvasError as error:
        Console(stderr=True, soft_wrap=True).print(f"autodiff101 grade --canvas: {untrusted(error, 2000)}", markup=False, highlight=False)
        return 2
    # Names come from submissions and the roster: printed as cleaned text, never as markup.
    for warning in result.warnings:
        console.print(Text("warning: ", style="yellow") + Text(untrusted(warning, 2000)), highlight=False)
    console.print(f"canvas: {result.matched} grades matched to the roster; wrote {untrusted(result.path, 1000)}",
                  markup=False, highlight=False)
    if result.left_out:
        statuses = sorted({untrusted(status, NAME) or "(no status)" for _, _, status in result.left_out})
        console.print(Text(f"warning: {plural(len(result.left_out), 'student')} left out of {CANVAS} "
                           f"(status {', '.join(statuses)}: the grader failed, not the work, so there is no "
                           "score to upload; rerun `autodiff101 grade` to grade again, then export again):",
                           style="bold red")
                      + Text(" " + ", ".join(f"{untrusted(s[id_column], NAME)} ({untrusted(submission, NAME)})"
                                             for s, submission, _ in result.left_out)), highlight=False)
    if result.unmatched_submissions:
        console.print(Text(f"{plural(len(result.unmatched_submissions), 'submission')} "
                           f"match{'es' if len(result.unmatched_submissions) == 1 else ''} no roster row:", style="red")
                      + Text(" " + ", ".join(untrusted(s, NAME) for s in result.unmatched_submissions)), highlight=False)
    if result.unmatched_roster:
        console.print(Text(f"{plural(len(result.unmatched_roster), 'roster student')} "
                           f"{'has' if len(result.unmatched_roster) == 1 else 'have'} no submission:", style="yellow")
                      + Text(" " + ", ".join(untrusted(s[id_column], NAME) for s in result.unmatched_roster)),
                      highlight=False)
    if result.unmatched_path:
        console.print(f"the unmatched are listed in {untrusted(result.unmatched_path, 1000)}", markup=False, highlight=False)
    return 0
