"""The class report (report.html, checked in headless Chromium) and the graph feedback a
student gets for a failed public gradient check."""
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from autograder import checks, judge, misconceptions, probes
from autograder.reports import classreport, graphfeedback
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
    assert 'href="./reference/feedback.html"' in page  # every student's link is to the same kind of page
    assert page.count('/feedback.html"') == len(data.submissions)
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
    assert rows.rows["checks"] == len(checks.load_config())  # the course's checks (no extensions chosen)
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


def test_the_judge_hands_the_picture_its_numbers_not_its_words():
    for bug in ("forward-order", "no-upstream", "assign-grad"):
        observed = observation(DIAMOND, bug)
        expected = observation(DIAMOND, None)
        verdict = judge.gradients(observed, expected, {"program": DIAMOND})
        assert not verdict.passed
        seen = verdict.observation
        assert seen["grad"] == observed["grad"] and seen["expected_grad"] == expected["grad"]
        assert seen["wrong"] == [i for i in range(len(DIAMOND)) if not judge.close(observed["grad"][i], expected["grad"][i])]
    assert judge.PASS.observation is None


def test_pictures_never_read_the_verdicts_text():
    """The picture comes from the test's observation: a detail that says anything (or that a
    regular expression would choke on) changes nothing; no observation, no picture."""
    record = buggy_record()
    drawn = graphfeedback.pictures(record)
    for test in record["tests"]:
        test["detail"] = ("(a * 2).grad = 1.0, expected 2.0; " * 20_000) + " (it looks as if" * 1000
    assert [(t["check"], o, e) for t, _, o, e, _ in graphfeedback.pictures(record)] == \
        [(t["check"], o, e) for t, _, o, e, _ in drawn]
    for test in record["tests"]:
        test.pop("observation", None)
    assert graphfeedback.pictures(record) == []
    assert not hasattr(graphfeedback, "observation_from_detail")


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
        if verdict.observation:
            tests[-1]["observation"] = verdict.observation
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


# --- outcomes, missing extras, one kind of link (issues 14 and 16) -------------------------------


def test_training_and_load_error_are_outcomes_not_misconceptions(batch):
    data = classreport.read_batch(batch)
    assert not {"training", "load-error"} & set(data.misconceptions())
    outcomes = data.outcomes()
    assert outcomes["load-error"] >= 1 and outcomes["training"] >= 1  # syntax-error; the buggy ones
    page = classreport.render(data)
    table = page[page.index('<table id="misconceptions"'):page.index('<h2>Outcomes</h2>')]
    assert "training" not in table and "load-error" not in table
    assert f'data-outcome="load-error">{outcomes["load-error"]}<' in page


def test_every_student_gets_the_same_kind_of_feedback_link_even_when_drawing_fails(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("dot exploded")

    monkeypatch.setattr(graphfeedback, "graph_svg", broken)
    out = tmp_path / "out"
    grade([], out=out, jobs=2, seed=SEED, limits=Limits(check_timeout=10))
    data = classreport.read_batch(out)
    assert data.submissions and all(s.feedback.endswith("/feedback.html") for s in data.submissions)


def test_pictures_need_dot_not_the_graphviz_package(tmp_path, monkeypatch):
    import sys

    if not shutil.which("dot"):
        pytest.skip("graphviz's dot is not installed")
    monkeypatch.setitem(sys.modules, "graphviz", None)  # import graphviz now fails
    graphfeedback._render_svg.cache_clear()
    markdown = graphfeedback.add_to_feedback(tmp_path, buggy_record(), "# Feedback: buggy\n")
    assert (tmp_path / "graphs" / "backward-reverse-order.svg").exists() and "```dot" not in markdown
    assert "<svg" in (tmp_path / "feedback.html").read_text()


def test_report_without_matplotlib_says_what_to_install(batch, monkeypatch, capsys):
    import sys

    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert classreport.command(batch) == 0
    printed = capsys.readouterr()
    assert printed.err.strip() == f"autodiff101 report: warning: {classreport.NO_CHARTS}"
    assert "(7 submissions)" in printed.out
    page = (batch / classreport.REPORT).read_text()
    assert "<svg" not in page and 'id="no-charts"' in page and page.count('/feedback.html"') == 7
