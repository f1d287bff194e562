"""The class report (report.html, checked in headless Chromium) and the graph feedback a
student gets for a failed public gradient check."""
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from autograder import checks, classreport, graphfeedback, judge, misconceptions, probes
from autograder.grade import grade
from autograder.sandbox import Limits

SEED = 11
DIAMOND = checks.expression("d = a * 2; d * 3 + d", a=1.5)  # backward-reverse-order's graph


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """A real graded batch: the bundled examples (correct, buggy, untouched, unloadable)."""
    out = tmp_path_factory.mktemp("batch") / "out"
    grade([], out=out, jobs=2, seed=SEED, limits=Limits(check_timeout=10))
    return out


def results_files(out):
    return [json.loads(p.read_text()) for p in sorted(Path(out).glob("*/results.json"))]


def pass_rate(out, check):
    """The share of submissions passing ``check``, counted from the results files alone."""
    results = results_files(out)
    passed = sum(1 for r in results for t in r["tests"] if t["extra_data"]["check"] == check and t["status"] == "passed")
    return 100 * passed / len(results)


# --- the class report ------------------------------------------------------------------------


def test_report_holds_every_submission_and_opens_offline(batch):
    path, data = classreport.write(batch)
    page = path.read_text()
    assert len(data.submissions) == len(results_files(batch)) == 7
    assert page.count("<svg") >= 3  # histogram, misconceptions, pass rates
    assert not re.search(r'<(script|link|img)[^>]+(src|href)="(https?:)?//', page)  # nothing fetched
    assert 'href="reference/feedback' in page
    assert f'data-check="add-same-node">{pass_rate(batch, "add-same-node"):.1f}%' in page
    counts = data.misconceptions()
    assert counts["accumulate-grad"] == 1 and counts["not-implemented"] == 1
    assert judge.DIAGNOSES["accumulate-grad"].split(":")[0] in page


def test_report_command_refuses_a_folder_without_results(tmp_path):
    assert classreport.command(tmp_path) == 2
    assert classreport.command(tmp_path / "missing") == 2


def chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def run_chromium(tmp_path, *arguments):
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--hide-scrollbars", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def pixel_variety(png):
    """(distinct colours, share of pixels that are not background white) of a screenshot."""
    import matplotlib.image

    pixels = matplotlib.image.imread(png)[..., :3]
    flat = (pixels.reshape(-1, 3) * 255).round().astype(int)
    colours = len({tuple(p) for p in flat[:: 7]})
    ink = float((flat.sum(axis=1) < 3 * 250).mean())
    return colours, ink


class Rows(HTMLParser):
    """Counts the <tr> in a table's <tbody>, by table id, and collects pass-rate cells."""

    def __init__(self):
        super().__init__()
        self.table, self.in_body, self.rows, self.rates, self._rate = None, False, {}, {}, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.table = attrs.get("id")
        elif tag == "tbody":
            self.in_body = True
        elif tag == "tr" and self.in_body:
            self.rows[self.table] = self.rows.get(self.table, 0) + 1
        elif tag == "td" and "data-check" in attrs:
            self._rate = attrs["data-check"]

    def handle_endtag(self, tag):
        if tag == "tbody":
            self.in_body = False

    def handle_data(self, data):
        if self._rate:
            self.rates[self._rate] = data.strip()
            self._rate = None


@pytest.mark.browser
@pytest.mark.skipif(not chromium(), reason="chromium is not installed (apt-get install chromium)")
def test_report_renders_in_chromium_with_the_right_numbers(batch, tmp_path):
    path, _ = classreport.write(batch)
    screenshot = tmp_path / "report.png"
    done = run_chromium(tmp_path, "--window-size=1280,1600", f"--screenshot={screenshot}", path.as_uri())
    assert screenshot.exists(), done.stderr
    colours, ink = pixel_variety(screenshot)
    assert colours > 50 and ink > 0.05  # text, charts and tables, not a blank page

    dom = run_chromium(tmp_path, "--dump-dom", path.as_uri())
    assert dom.returncode == 0, dom.stderr
    rows = Rows()
    rows.feed(dom.stdout)
    assert rows.rows["submissions"] == len(results_files(batch))
    assert rows.rows["checks"] == len(checks.CHECKS)
    for check in ("add-same-node", "backward-reverse-order", "value-repr"):
        assert rows.rates[check] == f"{pass_rate(batch, check):.1f}%"
    assert "<script src" not in dom.stdout


@pytest.mark.browser
@pytest.mark.skipif(not chromium(), reason="chromium is not installed (apt-get install chromium)")
def test_clicking_a_heading_sorts_the_submissions(batch, tmp_path):
    path, data = classreport.write(batch)
    # A copy of the page that clicks the score heading twice (descending) once loaded.
    clicked = tmp_path / "clicked.html"
    click = ('<script>var th = document.querySelectorAll("#submissions th")[1]; th.click(); th.click();</script>'
             "</body>")
    clicked.write_text(path.read_text().replace("</body>", click))
    dom = run_chromium(tmp_path, "--dump-dom", clicked.as_uri()).stdout
    body = dom[dom.index('id="submissions"'):]
    shown = [float(v) for v in re.findall(r'<td class="num" data-value="([^"]+)">[^<]* / ', body)]
    assert len(shown) == len(data.submissions)
    assert shown == sorted((s.score for s in data.submissions), reverse=True)
    assert 'aria-sort="descending"' in body


# --- graph feedback ----------------------------------------------------------------------------


def observation(program, bug):
    data, grad = misconceptions.simulate(program, bug)
    return {"data": data, "grad": grad}


def test_first_difference_is_the_first_wrong_node_from_the_root_down():
    observed = observation(DIAMOND, "forward-order")
    expected = observation(DIAMOND, None)
    first = graphfeedback.first_difference(observed, expected)
    assert probes.describe(DIAMOND, first) == "a * 2"  # not the leaf a, which is wrong only because of it
    dot = graphfeedback.graph_dot(DIAMOND, observed, expected, "diamond")
    assert dot.count("first difference") == 1
    assert f'n{first} [shape=box, style="rounded,filled", color="{graphfeedback.WRONG_FIRST}"' in dot
    assert graphfeedback.first_difference(expected, expected) is None


def test_students_gradients_are_read_back_from_the_judges_detail():
    for bug in ("forward-order", "no-upstream", "assign-grad"):
        observed = observation(DIAMOND, bug)
        expected = observation(DIAMOND, None)
        verdict = judge.gradients(observed, expected, {"program": DIAMOND})
        assert not verdict.passed
        read_observed, read_expected = graphfeedback.observation_from_detail(DIAMOND, expected, verdict.detail)
        assert read_observed["grad"] == pytest.approx(observed["grad"])
        assert read_expected["grad"] == pytest.approx(expected["grad"])


@pytest.mark.skipif(not shutil.which("dot"), reason="graphviz's dot is not installed")
def test_svg_shows_both_gradients_on_each_node():
    observed, expected = observation(DIAMOND, "forward-order"), observation(DIAMOND, None)
    svg = graphfeedback.graph_svg(DIAMOND, observed, expected, "diamond")
    assert svg.lstrip().startswith("<?xml") or "<svg" in svg
    assert svg.count("your grad") == len(DIAMOND) and svg.count("expected") == len(DIAMOND)


def test_without_dot_feedback_shows_dot_text(tmp_path, monkeypatch):
    monkeypatch.setattr(graphfeedback.shutil, "which", lambda name: None)
    record = buggy_record()
    markdown = graphfeedback.add_to_feedback(tmp_path, record, "# Feedback: buggy\n")
    assert "```dot" in markdown and "digraph feedback" in markdown
    assert (tmp_path / "graphs" / "backward-reverse-order.dot").exists()
    assert "<pre>digraph feedback" in (tmp_path / "feedback.html").read_text()


def buggy_record():
    """A record as grade.py makes it, for a submission that sweeps in topological order."""
    compiled = {c["id"]: c for c in checks.compile_checks(SEED)}
    tests = []
    for id in ("backward-reverse-order", "backward-random-small", "value-repr"):
        check = compiled[id]
        observed = misconceptions.simulate(check["params"]["program"], "forward-order") if "program" in check["params"] else None
        if observed:
            verdict = judge.judge(check["judge"], {"data": observed[0], "grad": observed[1]},
                                  check["expected"], check["params"])
        else:
            verdict = judge.PASS
        tests.append({"check": id, "title": check["title"], "exercise": check["exercise"],
                      "visibility": check["visibility"], "passed": verdict.passed, "message": verdict.message,
                      "detail": verdict.detail, "diagnoses": verdict.diagnoses, "score": 0, "max_score": 1})
    return {"id": "buggy", "seed": SEED, "tests": tests}


def test_pictures_only_for_failed_public_gradient_checks():
    found = graphfeedback.pictures(buggy_record())
    # backward-random-small fails too, but it is hidden: its graph would show its inputs.
    assert [test["check"] for test, *_ in found] == ["backward-reverse-order"]


def test_graded_feedback_shows_the_graph(batch):
    """End to end through report.py's hook: the graded example that sweeps in topological order."""
    folder = batch / "topo-not-reversed"
    markdown = (folder / "feedback.md").read_text()
    assert "## Pictures of your failed gradient checks" in markdown
    assert "`a * 2` **← first difference**" in markdown
    page = (folder / "feedback.html").read_text()
    assert "<svg" in page and "first difference" in page
    assert "Pictures" not in (batch / "reference" / "feedback.md").read_text()
