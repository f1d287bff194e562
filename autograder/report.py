"""Report: a graded submission becomes files (Gradescope's results.json, the student's
feedback.md, the instructor's output.txt), a batch becomes grades.csv and a terminal table.

Input is plain data, a *record* per submission (``grade.py`` builds it)::

    {"id", "status", "message", "notes", "score", "max_score", "isolation", "seed",
     "checks_hash", "digest", "seconds", "worker_starts", "output",
     "tests": [{"check", "title", "exercise", "visibility", "score", "max_score", "passed",
                "message", "detail", "diagnoses", "carried"?}]}

``status`` is one of STATUSES: graded, load-error (it does not load: syntax error, a
top-level exception, no Value, not a notebook), timeout (its top-level code or its time
budget ran out), crashed (its worker died while loading it), rejected (not a submission:
too big, an unsafe zip, an unknown kind of file), grader-fault (the grader itself failed on
it; the record then has ``fault``, the reason, for the instructor only). ``notes`` lists
notebook cells that raised. A failed gradient check's test may have ``observation``
(``judge.Verdict.observation``), the numbers its picture is drawn from. A check that failed
but keeps its points by error carried forward (``carry.py``) is passed and has ``carried``
({"models", "exercises", "diagnoses"}); results.json keeps it in the test's extra_data.

Text in a record may come from the submission. ``grade.py`` cleans and caps it once
(``text.untrusted``); every writer here passes what it writes through the same function
again, so a record from anywhere (a test, an old results.json) cannot make a writer raise or
put control characters in a file or on a terminal. feedback.md gets such text through
``text.markdown_text`` instead, so a viewer shows it as written, never as Markdown or HTML
(the kit's own headings, bullets and bold stay markup). A submission's id names its folder in
OUT: ``submission_folder`` refuses one that could not (``UnsafeId``).

Every file is written atomically (a temporary file in the same folder, then a rename), so
a reader, or a rerun after an interrupted batch, never sees half a file.
"""
import csv
import io
import json
import os
import threading
from pathlib import Path

from .text import DETAIL, MESSAGE, NAME, NOTE, markdown_text, plural, spreadsheet_cell, untrusted
from .text import OUTPUT as OUTPUT_CHARS

RESULTS = "results.json"
FEEDBACK = "feedback.md"
OUTPUT = "output.txt"
GRADEBOOK = "grades.csv"
STATUSES = ("graded", "load-error", "timeout", "crashed", "rejected", "grader-fault")
# Files and folders of OUT itself, which no submission's folder may take: the gradebook,
# the class report (classreport.REPORT), the Canvas files (canvas.CANVAS, canvas.UNMATCHED)
# and the batch's state (grade.STATE). Names starting with "." (temporary files) are refused too.
RESERVED = frozenset({GRADEBOOK, "report.html", "canvas.csv", "canvas-unmatched.txt", ".autodiff101.json"})


class UnsafeId(ValueError):
    """A submission id that cannot name a folder of OUT."""


def submission_folder(out, id):
    """OUT/<id>, the folder of one submission's files. Raises UnsafeId unless ``id`` is one
    clean file name (no separator, no control character, not "." or "..", no leading ".")
    that no file of OUT itself uses (a submission named ``grades.csv.py`` would otherwise
    turn the gradebook into a folder)."""
    if (not isinstance(id, str) or not id or id != untrusted(id, NAME) or id.startswith(".")
            or "/" in id or "\\" in id or id in RESERVED):
        raise UnsafeId(f"the submission id {untrusted(repr(id), NAME)} cannot name a folder in OUT")
    return Path(out) / id
# checks.toml visibility -> Gradescope visibility
GRADESCOPE_VISIBILITY = {"public": "visible", "hidden": "hidden", "after_due_date": "after_due_date"}


def write_atomic(path, text):
    """Replace ``path`` with ``text`` in one step: readers see the old file or the new one."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def points(x):
    """A score as people write it: 3, 2.5, 0.3333."""
    x = round(float(x), 4)
    return int(x) if x == int(x) else x


# --- one submission --------------------------------------------------------------------


def results_json(record):
    """Gradescope's results.json for one record (DESIGN §5). A public gradient check that
    failed keeps its observation in the test's extra_data (numbers the student may see:
    its inputs are public); a hidden one's never leaves the grader."""
    tests = []
    for number, test in enumerate(record["tests"], start=1):
        output = untrusted(test["message"], MESSAGE) or ("passed" if test["passed"] else "failed")
        if test["detail"] and test["visibility"] == "public":
            output += "\n" + untrusted(test["detail"], DETAIL)
        extra = {"check": test["check"], "diagnoses": list(test["diagnoses"]), "exercise": test["exercise"]}
        if test.get("observation") and test["visibility"] == "public":
            extra["observation"] = test["observation"]
        if test.get("carried"):  # passed by error carried forward (carry.py): which mistakes carry it
            extra["carried"] = test["carried"]
        tests.append({
            "name": test["title"],
            "number": str(number),
            "score": points(test["score"]),
            "max_score": points(test["max_score"]),
            "status": "passed" if test["passed"] else "failed",
            "output": output,
            "output_format": "text",
            "tags": [test["exercise"]],
            "visibility": GRADESCOPE_VISIBILITY[test["visibility"]],
            "extra_data": extra,
        })
    results = {
        "score": points(record["score"]),
        "execution_time": round(record["seconds"], 3),
        "output": _summary_line(record),
        "output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": {
            "submission": untrusted(record["id"], NAME),
            "path": os.path.abspath(record["path"]) if record.get("path") else "",  # for autodiff101 similarity
            "status": record["status"],
            "message": untrusted(record["message"], MESSAGE),
            "notes": [untrusted(note, NOTE) for note in record.get("notes", [])],
            "max_score": points(record["max_score"]),
            "isolation": record["isolation"],
            "seed": record["seed"],
            "checks_hash": record["checks_hash"],
            "digest": record["digest"],
            "timing": {"seconds": round(record["seconds"], 3), "worker_starts": record["worker_starts"],
                       "worker_cpu_seconds": round(record.get("worker_cpu", 0.0), 3)},
        },
    }
    if record.get("fault"):
        results["extra_data"]["fault"] = untrusted(record["fault"], DETAIL)
    return results


def _summary_line(record, clean=untrusted):
    """"3 / 5 points (status): message", its record's text passed through ``clean``
    (``untrusted`` for plain text, ``markdown_text`` for feedback.md)."""
    line = f"{points(record['score'])} / {points(record['max_score'])} points"
    if record["status"] != "graded":
        line += f" ({clean(record['status'], NAME)})"
    message = clean(record["message"], MESSAGE) if record["message"] else ""
    if message:
        line += f": {message}"
    return line


def feedback_markdown(record):
    """What the student sees: every check, passed or failed, with its message; inputs and
    expected values only for public checks. Every string from the record but the kit's
    own (check titles, exercise names) goes in as ``markdown_text``: literal text."""
    lines = [f"# Feedback: {markdown_text(record['id'], NAME)}", "",
             f"**Score: {_summary_line(record, markdown_text)}**", ""]
    if record.get("notes"):
        lines += ["While your code's top level ran (a cell that raises is skipped, as Jupyter does):", ""]
        # An empty item would be no item: "  - " under a line makes that line a heading.
        lines += [f"- {note}" for note in (markdown_text(n, NOTE) for n in record["notes"]) if note] + [""]
    exercise = None
    for test in record["tests"]:
        if test["exercise"] != exercise:
            exercise = test["exercise"]
            lines += ([] if lines[-1] == "" else [""]) + [f"## {exercise}", ""]
        mark = "passed" if test["passed"] else "FAILED"
        label = {"hidden": " (hidden check)", "after_due_date": " (shown in full after the due date)"}.get(
            test["visibility"], "")
        lines.append(f"- **{mark}** {test['title']}{label}: "
                     f"{points(test['score'])} / {points(test['max_score'])}")
        message = markdown_text(test["message"], MESSAGE) if not test["passed"] or test.get("carried") else ""
        detail = markdown_text(test["detail"], DETAIL) if not test["passed"] and test["visibility"] == "public" else ""
        lines += [f"  - {text}" for text in (message, detail) if text]
    return "\n".join(lines) + "\n"


def write_submission(out, record):
    """OUT/<id>/results.json, feedback.md, feedback.html and output.txt (what the worker
    printed). Raises UnsafeId for an id that cannot name a folder of OUT."""
    folder = submission_folder(out, record["id"])
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / OUTPUT, untrusted(record.get("output", ""), OUTPUT_CHARS, lines=True))
    from .reports.graphfeedback import add_to_feedback  # pictures of failed public gradient checks, feedback.html

    write_atomic(folder / FEEDBACK, add_to_feedback(folder, record, feedback_markdown(record)))
    # results.json last: its presence with this run's hash and seed marks the submission done.
    write_atomic(folder / RESULTS, json.dumps(results_json(record)) + "\n")


def read_results(out, id):
    """A submission's results.json as a dict, or None when absent or unreadable."""
    try:
        data = json.loads((submission_folder(out, id) / RESULTS).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # UnsafeId is a ValueError
        return None
    return data if isinstance(data, dict) and isinstance(data.get("extra_data"), dict) else None


def row_from_results(results):
    """The gradebook row a results.json describes (to resume without regrading)."""
    extra = results["extra_data"]
    tests = [t for t in results.get("tests", []) if isinstance(t, dict) and isinstance(t.get("extra_data"), dict)]
    return {
        "id": extra.get("submission"),
        "score": results.get("score", 0),
        "max_score": extra.get("max_score", 0),
        "status": extra.get("status", ""),
        "isolation": extra.get("isolation", ""),
        "message": extra.get("message", ""),
        "fault": extra.get("fault", ""),
        "by_check": {t["extra_data"]["check"]: t["score"] for t in tests},
        "lost": [t["extra_data"]["check"] for t in tests if t.get("score", 0) < t.get("max_score", 0)],
        "diagnoses": _gradebook_diagnoses((t.get("score", 0), t.get("max_score", 0), t["extra_data"].get("diagnoses", []))
                                          for t in tests),
    }


def row_from_record(record):
    return {
        "id": record["id"], "score": record["score"], "max_score": record["max_score"],
        "status": record["status"], "isolation": record["isolation"], "message": record["message"],
        "fault": record.get("fault", ""),
        "by_check": {test["check"]: test["score"] for test in record["tests"]},
        "lost": [test["check"] for test in record["tests"] if test["score"] < test["max_score"]],
        "diagnoses": _gradebook_diagnoses((test["score"], test["max_score"], test["diagnoses"]) for test in record["tests"]),
    }


# Outcomes, not ideas: listed after the misconceptions (classreport.OUTCOMES counts them apart).
OUTCOME_DIAGNOSES = ("training", "load-error")


def _gradebook_diagnoses(tests):
    """The diagnoses of the checks that cost a submission points, each once, in the order a
    reader needs them: misconceptions first, outcomes last; alphabetical within each. A 0-point
    check's diagnosis (the extra-credit deep chain's) is no reason for a lost point and is left
    out. ``tests``: (score, max_score, diagnoses)."""
    rank = {}
    for score, max_score, diagnoses in tests:
        if not score < max_score:
            continue
        for d in diagnoses:
            place = 1 if d in OUTCOME_DIAGNOSES else 0
            rank[d] = min(rank.get(d, place), place)
    return sorted(rank, key=lambda d: (rank[d], d))


# --- the batch -------------------------------------------------------------------------


def gradebook_csv(rows, check_ids):
    """grades.csv's text. Every text cell is clean and, when a spreadsheet would read it as
    a formula (a submission named ``=HYPERLINK(...)``), starts with a single quote
    (``text.spreadsheet_cell``; readers undo it with ``text.from_spreadsheet_cell``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["submission", "score", "max_score", "status", "isolation", *check_ids])
    for row in rows:
        writer.writerow([spreadsheet_cell(untrusted(row["id"], NAME)), points(row["score"]), points(row["max_score"]),
                         spreadsheet_cell(untrusted(row["status"], NAME)), spreadsheet_cell(untrusted(row["isolation"], NAME)),
                         *(points(row["by_check"].get(c, 0)) for c in check_ids)])
    return buffer.getvalue()


def write_gradebook(out, rows, check_ids):
    write_atomic(Path(out) / GRADEBOOK, gradebook_csv(rows, check_ids))


def summary_table(rows, title=None):
    """A rich Table: one line per submission. Names and messages come from students' files:
    every cell is a rich Text of cleaned text, never markup (``[red]`` in a name stays text)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(untrusted(title, 1000)) if title else None, title_justify="left")
    table.add_column("submission")
    table.add_column("score", justify="right")
    table.add_column("status")
    table.add_column("notes", overflow="fold")
    styles = {"graded": "green", "load-error": "yellow", "rejected": "yellow", "timeout": "red", "crashed": "red",
              "grader-fault": "bold red"}
    for row in rows:
        notes = row.get("fault") or row["message"]
        if not notes and row["lost"]:
            notes = f"{plural(len(row['lost']), 'check')} lost points"
            if row["diagnoses"]:
                notes += ": " + ", ".join(row["diagnoses"])
        status = untrusted(row["status"], NAME)
        table.add_row(Text(untrusted(row["id"], NAME)), f"{points(row['score'])} / {points(row['max_score'])}",
                      Text(status, style=styles.get(status, "")), Text(untrusted(notes, MESSAGE)))
    return table
