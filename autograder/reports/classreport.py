"""The class report: ``autodiff101 report OUT`` turns a graded batch into OUT/report.html.

One self-contained page (plots inline as SVG, styles and a few lines of script inline, no
network): the score histogram, the pass rate of every check, how many submissions show each
misconception with the hint students get for it, the outcomes that are not misconceptions
(did not load, did not train), how many checks kept their points by error carried forward, a sortable table of submissions linking to each one's
feedback, and the run's seed, isolation level and timing. It reads only the files ``grade``
wrote: OUT/grades.csv (which submissions belong to the batch) and each OUT/<id>/results.json.

Every text on the page is cleaned (``text.untrusted``) and HTML-escaped; a link is a
relative, percent-encoded path to a file that exists inside OUT, so no submission's name
can make it point elsewhere (``javascript:``, another site, another folder). The charts
need matplotlib; without it the page has every table and says how to get the charts.
"""
import csv
import html
import io
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from .. import report
from ..judge import DIAGNOSES
from ..text import MESSAGE, NAME, from_spreadsheet_cell, plural, untrusted
from .similarity import report_section  # "" unless the similarity extra is installed

REPORT = "report.html"
FEEDBACK_HTML = "feedback.html"  # graphfeedback.FEEDBACK_HTML, written for every graded submission
# Diagnoses that name an outcome, not an idea a student got wrong: counted apart.
OUTCOMES = {"load-error": "did not load, or does not define what the checks need",
            "training": "the network did not train below the loss threshold"}
NO_CHARTS = "the charts need matplotlib: pip install matplotlib"


@dataclass
class Submission:
    id: str
    score: float
    max_score: float
    status: str
    isolation: str
    seed: object
    seconds: float
    diagnoses: list
    tests: list  # [(check id, title, visibility, passed)]
    feedback: str  # a relative link, or ""
    carried: int = 0  # checks that kept their points by error carried forward (carry.py)


@dataclass
class ClassData:
    out: Path
    submissions: list = field(default_factory=list)
    checks: list = field(default_factory=list)  # [(check id, title, visibility)] in catalogue order

    def pass_rate(self, check):
        """Passed / submissions, every submission counted (one that did not load failed)."""
        if not self.submissions:
            return 0.0
        passed = sum(1 for s in self.submissions for c, _, _, ok in s.tests if c == check and ok)
        return passed / len(self.submissions)

    def misconceptions(self):
        """Counter of diagnosis id -> number of submissions that show it (outcomes left out)."""
        return Counter(d for s in self.submissions for d in set(s.diagnoses) if d not in OUTCOMES)

    def carried(self):
        """(checks carried forward, submissions with at least one) over the batch."""
        return sum(s.carried for s in self.submissions), sum(1 for s in self.submissions if s.carried)

    def outcomes(self):
        """Counter of outcome id (OUTCOMES) -> number of submissions with it."""
        return Counter(d for s in self.submissions for d in set(s.diagnoses) if d in OUTCOMES)


def read_batch(out):
    """The batch in OUT: the submissions grades.csv lists (every results.json when it is absent)."""
    out = Path(out)
    if not out.is_dir():
        raise FileNotFoundError(f"{out} is not a folder")
    try:
        text = (out / report.GRADEBOOK).read_text(encoding="utf-8")
        ids = [from_spreadsheet_cell(row["submission"]) for row in csv.DictReader(io.StringIO(text))]
    except OSError:
        ids = sorted(p.parent.name for p in out.glob(f"*/{report.RESULTS}"))
    data = ClassData(out)
    seen_checks = {}
    for id in ids:
        results = report.read_results(out, id)
        if results is None:
            continue
        extra = results["extra_data"]
        tests = []
        for test in results.get("tests", []):
            check = test.get("extra_data", {}).get("check", test.get("name"))
            tests.append((check, test.get("name", check), test.get("visibility", ""), test.get("status") == "passed"))
            seen_checks.setdefault(check, (check, test.get("name", check), test.get("visibility", "")))
        diagnoses = sorted({d for t in results.get("tests", []) for d in t.get("extra_data", {}).get("diagnoses", [])})
        feedback = feedback_link(out, id)
        data.submissions.append(Submission(
            id=id, score=float(results.get("score", 0)), max_score=float(extra.get("max_score", 0)),
            status=extra.get("status", ""), isolation=extra.get("isolation", ""), seed=extra.get("seed"),
            seconds=float(extra.get("timing", {}).get("seconds", results.get("execution_time", 0))),
            diagnoses=diagnoses, tests=tests, feedback=feedback,
            carried=sum(1 for t in results.get("tests", []) if t.get("extra_data", {}).get("carried"))))
    data.checks = list(seen_checks.values())
    return data


def feedback_link(out, id):
    """The href of a submission's feedback page, relative to OUT: "./<id>/feedback.html",
    each part percent-encoded (so "javascript:x" becomes the folder "javascript%3Ax"), and
    only for a file that exists inside OUT; feedback.md for an OUT written before every
    submission had a page; "" when neither is there."""
    try:
        folder = report.submission_folder(out, id)
    except report.UnsafeId:
        return ""
    root = Path(out).resolve()
    for name in (FEEDBACK_HTML, report.FEEDBACK):
        path = folder / name
        if path.is_file() and path.resolve().is_relative_to(root):
            return f"./{quote(id, safe='')}/{quote(name, safe='')}"
    return ""


# --- plots -----------------------------------------------------------------------------------


def _figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _svg(figure):
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.find("<svg"):]


def histogram_svg(data):
    figure = _figure(5.4, 3)
    axes = figure.add_subplot()
    scores = [s.score for s in data.submissions]
    top = max((s.max_score for s in data.submissions), default=100) or 100
    axes.hist(scores, bins=[top * i / 20 for i in range(21)], color="#4c78a8", edgecolor="white")
    axes.set(xlabel="score", ylabel="submissions", xlim=(0, top), title="Scores")
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.spines[["top", "right"]].set_visible(False)
    return _svg(figure)


def pass_rate_svg(data):
    checks = data.checks
    figure = _figure(7, 0.22 * len(checks) + 0.9)
    axes = figure.add_subplot()
    rates = [100 * data.pass_rate(c) for c, _, _ in checks]
    colours = ["#54a24b" if r >= 80 else "#f58518" if r >= 50 else "#e45756" for r in rates]
    axes.barh(range(len(checks)), rates, color=colours)
    axes.set_yticks(range(len(checks)), [c for c, _, _ in checks], fontsize=8)
    axes.invert_yaxis()
    axes.set(xlim=(0, 100), xlabel="% of submissions passing", title="Pass rate per check")
    axes.spines[["top", "right"]].set_visible(False)
    return _svg(figure)


def misconceptions_svg(counts):
    figure = _figure(5.4, max(0.3 * len(counts) + 0.9, 3))
    axes = figure.add_subplot()
    ranked = counts.most_common()
    axes.barh(range(len(ranked)), [n for _, n in ranked], color="#b279a2")
    axes.set_yticks(range(len(ranked)), [d for d, _ in ranked], fontsize=9)
    axes.invert_yaxis()
    axes.set(xlabel="submissions showing it", title="Misconceptions")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.spines[["top", "right"]].set_visible(False)
    return _svg(figure)


# --- the page ----------------------------------------------------------------------------------


def charts_available():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def render(data):
    """report.html's text (without charts when matplotlib is missing)."""

    def e(value, limit=MESSAGE):
        return html.escape(untrusted(value, limit), quote=True)

    subs = data.submissions
    scores = [s.score for s in subs]
    top = max((s.max_score for s in subs), default=0)
    seeds = sorted({str(s.seed) for s in subs})
    levels = Counter(s.isolation for s in subs)
    statuses = Counter(s.status for s in subs)
    total_seconds = sum(s.seconds for s in subs)
    counts = data.misconceptions()
    outcomes = data.outcomes()
    charts = charts_available()
    facts = [
        ("submissions", str(len(subs))),
        ("mean score", f"{statistics.mean(scores):.1f} / {report.points(top)}" if scores else "–"),
        ("median score", f"{report.points(statistics.median(scores))}" if scores else "–"),
        ("statuses", ", ".join(f"{n} {k}" for k, n in statuses.most_common())),
        ("carried forward", "{} in {}".format(plural(data.carried()[0], "check"),
                                              plural(data.carried()[1], "submission"))),
        ("seed", ", ".join(seeds) or "–"),
        ("isolation", ", ".join(f"{k} ({n})" for k, n in levels.most_common()) or "–"),
        ("grading time", f"{total_seconds / len(subs):.2f} s per submission, {total_seconds:.1f} s summed"
         if subs else "–"),
    ]
    fact_rows = "\n".join(f'<div class="fact"><span>{e(k)}</span><b id="fact-{e(k.replace(" ", "-"))}">{e(v)}</b></div>'
                          for k, v in facts)

    check_rows = "\n".join(
        f'<tr><td><code>{e(c)}</code></td><td>{e(title)}</td><td>{e(vis)}</td>'
        f'<td class="num rate" data-check="{e(c)}">{100 * data.pass_rate(c):.1f}%</td></tr>'
        for c, title, vis in data.checks)
    hint_rows = "\n".join(
        f'<tr><td><code>{e(d)}</code></td><td class="num" data-diagnosis="{e(d)}">{n}</td>'
        f'<td>{e(DIAGNOSES.get(d, ""))}</td></tr>' for d, n in counts.most_common())
    outcome_rows = "\n".join(
        f'<tr><td><code>{e(d)}</code></td><td class="num" data-outcome="{e(d)}">{outcomes[d]}</td>'
        f'<td>{e(about)}</td></tr>' for d, about in OUTCOMES.items())
    submission_rows = "\n".join(
        f'<tr><td>{e(s.id, NAME)}</td><td class="num" data-value="{s.score}">{report.points(s.score)} / '
        f'{report.points(s.max_score)}</td><td class="status-{e(s.status, NAME)}">{e(s.status, NAME)}</td>'
        f'<td>{e(", ".join(d for d in s.diagnoses if d not in OUTCOMES))}</td>'
        f'<td>{e(", ".join(d for d in s.diagnoses if d in OUTCOMES))}</td>'
        f'<td class="num" data-value="{s.seconds}">{s.seconds:.2f}</td><td>{e(s.isolation, NAME)}</td>'
        f'<td>{f"<a href={chr(34)}{e(s.feedback, 2000)}{chr(34)}>feedback</a>" if s.feedback else ""}</td></tr>'
        for s in subs)
    plots = ""
    if subs and charts:
        plots = f'<section class="plots"><figure id="histogram">{histogram_svg(data)}</figure>'
        if counts:
            plots += f'<figure id="misconception-chart">{misconceptions_svg(counts)}</figure>'
        plots += "</section>"
    elif subs:
        plots = f'<p class="note" id="no-charts">No charts: {e(NO_CHARTS)}.</p>'
    rates = (f'<figure id="pass-rate-chart">{pass_rate_svg(data)}</figure>'
             if data.checks and subs and charts else "")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>autodiff101 class report: {e(data.out.name)}</title>
<style>{STYLE}</style></head>
<body>
<header><h1>Class report</h1><p class="sub">{e(data.out)}</p></header>
<section class="facts">{fact_rows}</section>
{plots}
<h2>Misconceptions</h2>
<p>How many submissions show each misconception, and the hint their feedback gives.</p>
<table id="misconceptions"><thead><tr><th>diagnosis</th><th>submissions</th><th>hint</th></tr></thead>
<tbody>{hint_rows or '<tr><td colspan="3">none: every failure was unexplained, or nothing failed</td></tr>'}</tbody></table>
<h2>Outcomes</h2>
<p>Submissions that did not get as far as showing an idea: not misconceptions, counted apart.</p>
<table id="outcomes"><thead><tr><th>outcome</th><th>submissions</th><th>what it means</th></tr></thead>
<tbody>{outcome_rows}</tbody></table>
<h2>Checks</h2>
<p>Pass rate over all submissions (one that did not load fails every check).</p>
{rates}
<table id="checks"><thead><tr><th>check</th><th>what it asks</th><th>visibility</th><th>pass rate</th></tr></thead>
<tbody>{check_rows}</tbody></table>
<h2>Submissions</h2>
<p>Click a column's heading to sort by it.</p>
<table id="submissions" class="sortable"><thead><tr><th>submission</th><th>score</th><th>status</th>
<th>misconceptions</th><th>outcomes</th><th>seconds</th><th>isolation</th><th>feedback</th></tr></thead>
<tbody>{submission_rows}</tbody></table>
{report_section(data.out)}
<footer>Written by <code>autodiff101 report</code>. The page needs no network.</footer>
<script>{SCRIPT}</script>
</body></html>
"""


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; margin: 0 auto;
       max-width: 72rem; padding: 1.5rem 2rem 3rem; line-height: 1.45; background: #fff; }
header h1 { margin: 0; font-size: 1.8rem; } .sub { color: #667; margin: .2rem 0 1rem; }
h2 { font-size: 1.3rem; margin-top: 2.2rem; border-bottom: 2px solid #e6e8eb; padding-bottom: .2rem; }
.facts { display: flex; flex-wrap: wrap; gap: .6rem; }
.fact { background: #f4f6f8; border-radius: 8px; padding: .5rem .9rem; min-width: 8rem; }
.fact span { display: block; font-size: .8rem; color: #667; text-transform: uppercase; letter-spacing: .03em; }
.fact b { font-size: 1.05rem; }
.plots { display: flex; flex-wrap: wrap; gap: 1rem; margin-top: 1rem; }
figure { margin: 0; } figure svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; width: 100%; margin: .6rem 0; font-size: .92rem; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #e6e8eb; vertical-align: top; }
th { background: #f4f6f8; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[aria-sort="ascending"]::after { content: " ▲"; }
table.sortable th[aria-sort="descending"]::after { content: " ▼"; }
tr:hover td { background: #fafbfc; }
.status-graded { color: #1a7f37; } .status-load-error, .status-rejected { color: #9a6700; }
.status-timeout, .status-crashed, .status-grader-fault { color: #cf222e; }
.note { color: #667; }
code { white-space: nowrap; background: #f4f6f8; padding: 0 .25rem; border-radius: 4px; }
footer { margin-top: 2.5rem; color: #889; font-size: .85rem; }
"""

SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, column) {
    th.addEventListener("click", function () {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("th").forEach(function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      function key(row) {
        var cell = row.cells[column];
        var value = cell.getAttribute("data-value");
        return value !== null ? parseFloat(value) : cell.textContent.trim().toLowerCase();
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        var order = typeof x === "number" ? x - y : (x < y ? -1 : x > y ? 1 : 0);
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def write(out):
    """Write OUT/report.html when OUT holds graded submissions; returns (its path, the batch).
    Nothing is written for a batch without submissions."""
    data = read_batch(out)
    path = Path(out) / REPORT
    if data.submissions:
        report.write_atomic(path, render(data))
    return path, data


def command(out):
    """``autodiff101 report OUT``: the exit code (2 when OUT holds no graded batch). Without
    matplotlib the page is written without charts, and one line says what to install."""
    from rich.console import Console

    errors = Console(stderr=True, soft_wrap=True)  # a path is never split over two lines
    try:
        path, data = write(out)
    except FileNotFoundError as error:
        errors.print(f"autodiff101 report: {untrusted(error, 2000)}", markup=False, highlight=False)
        return 2
    if not data.submissions:
        if (Path(out) / report.GRADEBOOK).is_file():  # graded, but there was nothing to grade
            said = (f"{untrusted(out, 1000)}/{report.GRADEBOOK} lists no submissions (autodiff101 grade found "
                    f"none); grade a folder that holds some: autodiff101 grade SUBMISSIONS -o {untrusted(out, 1000)}")
        else:
            said = f"no results.json in {untrusted(out, 1000)}; run autodiff101 grade -o {untrusted(out, 1000)} first"
        errors.print(f"autodiff101 report: {said}", markup=False, highlight=False)
        return 2
    if not charts_available():
        errors.print(f"autodiff101 report: warning: {NO_CHARTS}", markup=False, highlight=False)
    Console(soft_wrap=True).print(f"wrote {untrusted(path, 1000)} ({plural(len(data.submissions), 'submission')}); "
                    "open it in a browser", markup=False, highlight=False)
    return 0
