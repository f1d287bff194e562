"""The similarity report on a class of ten independently written correct submissions, a copy
of one of them (names changed, methods reordered) and untouched handouts: only the copy is
flagged, against its source, and its page shows the matching regions side by side, escaped."""
import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("copydetect")

from autograder import inprocess, checks, load as loader  # noqa: E402
from autograder.reports import similarity  # noqa: E402
from classmates import CLASS, CONCISE, COPIED, COPIER, COPY, HONEST, PADDED_KAHN, QUEUED, group_of_copies  # noqa: E402
from mutants import SEED  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def write_class(folder, students):
    folder.mkdir(parents=True, exist_ok=True)
    for id, text in students.items():
        (folder / f"{id}.py").write_text(text)
    return folder


@pytest.fixture(scope="module")
def analysis(tmp_path_factory):
    folder = write_class(tmp_path_factory.mktemp("class") / "submissions", {**CLASS, COPIER: COPY})
    out = folder.parent / "out"
    return similarity.write(out, [folder]), out


def test_the_ten_styles_are_correct(tmp_path):
    """They are what the test says: correct code (full marks but for the recursive one's
    deep chain), so agreeing on the answer is not what flags a pair."""
    compiled = checks.compile_checks(SEED)
    for id, text in CLASS.items():
        folder = tmp_path / id
        folder.mkdir()
        (folder / "submission.py").write_text(text)
        results = inprocess.run_directory(folder, compiled)
        failed = {check["id"] for check, verdict in results if not verdict.passed}
        assert failed <= ({"deep-chain"} if id == "ben" else set()), (id, failed)


def test_copy_with_renamed_names_and_reordered_methods_is_flagged(analysis):
    result, _ = analysis
    assert [(p.a, p.b) for p in result.flagged] == [tuple(sorted((COPIED, COPIER)))]
    pair = result.flagged[0]
    assert result.pairs[0] is pair  # ranked first
    assert min(pair.similarity) > 0.8
    assert pair.regions


def test_independent_correct_submissions_are_not_flagged(analysis):
    result, _ = analysis
    for pair in result.pairs:
        if COPIER not in (pair.a, pair.b):
            assert not pair.flagged, pair
            assert min(pair.similarity) < similarity.FLAG


def test_handout_and_reference_alone_are_not_own_code(tmp_path):
    """Untouched handouts (as a folder, as the notebook, as one concatenated .py) and the
    reference written into the handout share no own code with anything."""
    submissions = tmp_path / "submissions"
    shutil.copytree(REPO / "assignments", submissions / "folder",
                    ignore=shutil.ignore_patterns("__pycache__", "checker", "*.ipynb"))
    shutil.copy(REPO / "assignments" / "autodiff101.ipynb", submissions / "notebook.ipynb")
    joined = "\n".join((REPO / "assignments" / name).read_text() for name in ("engine.py", "nn.py", "train.py"))
    (submissions / "joined.py").write_text(joined.replace("from .engine import Value\n", "")
                                          .replace("from .nn import MLP\n", ""))
    write_class(submissions, {"reference": CLASS["ada"]})
    result = similarity.write(tmp_path / "out", [submissions])
    assert not result.flagged
    assert {d.id: d.own for d in result.documents.values()} == {"folder": 0, "notebook": 0, "joined": 0,
                                                                "reference": 0}


def test_page_escapes_student_text_and_links_only_inside(tmp_path):
    evil = "<script>alert(1)</script>"
    source = CLASS["fatou"].replace("# A parent is always taller", f"# {evil} A parent is always taller")
    copy = COPY.replace("# my own topological sort", f"# {evil}\x1b[31m")
    folder = write_class(tmp_path / "subs", {"fatou": source, "<b>kim<\\b>": copy})
    out = tmp_path / "out"
    result = similarity.write(out, [folder])
    assert len(result.flagged) == 1
    page = (out / similarity.PAGE).read_text()
    assert "<script" not in page and "\x1b" not in page
    assert "&lt;script&gt;" in page
    # The file name's markup never reaches the page: the loader's safe id stands for it.
    assert "<b>" not in page and loader.safe_id("<b>kim<\\b>") in page
    hrefs = [part.split('"', 1)[0] for part in page.split('href="')[1:]]
    assert hrefs and all(h.startswith("#pair-") for h in hrefs)
    assert 'id="pair-1"' in page and page.count("<pre>") == 2 * len(result.flagged[0].regions)
    data = json.loads((out / similarity.DATA).read_text())
    assert data["pairs"][0]["flagged"] and data["pairs"][0]["b"] == "fatou"


def test_side_by_side_regions_pair_moved_methods(analysis):
    """Each region of the copy sits beside the code it came from, wherever the method moved."""
    result, _ = analysis
    pair = result.flagged[0]
    a, b = result.documents[pair.a], result.documents[pair.b]
    shown = [(a.text[sa:ea], b.text[sb:eb]) for (sa, ea), (sb, eb) in pair.regions]
    backward = [(x, y) for x, y in shown if "sorted(" in x or "sorted(" in y]
    assert backward and all("sorted(" in x and "sorted(" in y for x, y in backward)


def test_command_reads_paths_recorded_by_grade(tmp_path):
    """``autodiff101 similarity OUT`` after ``autodiff101 grade -o OUT``, and the class
    report's section linking to the page."""
    from autograder.reports import classreport
    from autograder.grade import grade
    from autograder.sandbox import Limits

    folder = write_class(tmp_path / "subs", {"fatou": CLASS["fatou"], COPIER: COPY, "jun": CLASS["jun"]})
    out = tmp_path / "out"
    grade([folder], out=out, jobs=1, seed=SEED, isolation="rlimits", limits=Limits())
    assert similarity.command(out) == 0
    assert json.loads((out / similarity.DATA).read_text())["pairs"][0]["flagged"]
    section = similarity.report_section(out)
    assert 'href="./similarity.html#pair-1"' in section and "1 pairs flagged" in section
    path, _ = classreport.write(out)
    assert 'id="similarity"' in path.read_text() and "Not computed" not in path.read_text()


def test_command_asks_for_submissions_when_out_does_not_record_them(tmp_path, capsys):
    (tmp_path / "out" / "x").mkdir(parents=True)
    (tmp_path / "out" / "x" / "results.json").write_text(json.dumps({"extra_data": {"submission": "x"}}))
    assert similarity.command(tmp_path / "out") == 2
    assert "autodiff101 similarity" in capsys.readouterr().err


def test_handout_is_discounted_without_importing_it(tmp_path, monkeypatch):
    """The handout is plain modules (no package to import); where assignments/ is not
    installed at all, its modules are made from the reference as build makes them, so an
    untouched handout still has no own code."""
    from autograder import handout

    assert not (REPO / "assignments" / "__init__.py").exists()
    assert handout.ASSIGNMENTS in similarity.discounted_folders()
    monkeypatch.setattr(handout, "ASSIGNMENTS", tmp_path / "not-installed")
    submissions = tmp_path / "submissions"
    shutil.copytree(REPO / "assignments", submissions / "folder",
                    ignore=shutil.ignore_patterns("__pycache__", "checker", "*.ipynb"))
    write_class(submissions, {"reference": CLASS["ada"]})
    result = similarity.write(tmp_path / "out", [submissions])
    assert {d.id: d.own for d in result.documents.values()} == {"folder": 0, "reference": 0}


def flagged_pairs(result):
    return {(p.a, p.b) for p in result.flagged}


def test_byte_identical_copy_of_a_concise_solution_is_flagged(tmp_path):
    """Own code under MIN_MATCH (the tutorial's build_topo written into the handout), copied
    byte for byte, among the ten: flagged, and nothing else is, not even the tutorial's whole
    style (ben) that holds the same build_topo among much else."""
    folder = write_class(tmp_path / "subs", {**CLASS, "sam": CONCISE, "tom": CONCISE})
    result = similarity.write(tmp_path / "out", [folder])
    assert result.documents["sam"].own < similarity.MIN_MATCH
    assert flagged_pairs(result) == {("sam", "tom")}


def test_group_of_six_sharing_one_solution_in_a_class_of_23_is_flagged(tmp_path):
    """Six submissions of one solution (names changed) are a group, not common code: every
    pair of them is flagged, and no pair of the seventeen honest submissions is."""
    group = {COPIED: CLASS[COPIED], **group_of_copies(CLASS[COPIED], 6)}
    students = {**CLASS, **HONEST, **group}
    assert len(students) == 23 and len(group) == 6
    folder = write_class(tmp_path / "subs", students)
    result = similarity.write(tmp_path / "out", [folder])
    members = sorted(group)
    assert flagged_pairs(result) == {(a, b) for i, a in enumerate(members) for b in members[i + 1:]}
    assert similarity.common_limit(23) > len(group)


def test_copy_padded_with_dead_code_between_its_lines_is_flagged(tmp_path):
    """A Kahn's-algorithm backward copied with a junk statement after every line: the copy's
    own share falls (half of it is junk), the source's does not."""
    folder = write_class(tmp_path / "subs", {**CLASS, "vera": QUEUED, "pat": PADDED_KAHN})
    result = similarity.write(tmp_path / "out", [folder])
    assert flagged_pairs(result) == {("pat", "vera")}
    pair = result.flagged[0]
    assert pair.similarity[1] >= similarity.IDENTICAL and pair.similarity[0] < similarity.FLAG


def test_side_by_side_shows_own_code_highlighted_not_the_handout(tmp_path):
    """A copy of a submission written into the handout (dev: its own sub/div and
    topological sort among the handout's lines): every region starts and ends on matched own
    code, which is marked, and the handout's lines it shows are a small part of it."""
    import re

    folder = write_class(tmp_path / "subs", {**CLASS, "uma": CLASS["dev"]})
    out = tmp_path / "out"
    result = similarity.write(out, [folder])
    assert flagged_pairs(result) == {("dev", "uma")}
    page = (out / similarity.PAGE).read_text()
    blocks = re.findall(r"<pre>(.*?)</pre>", page, re.S)
    assert blocks
    for block in blocks:
        kinds = re.findall(r'<span class="(match|given|own)"><span class="ln">', block)
        assert kinds[0] == kinds[-1] == "match", kinds
        assert kinds.count("match") >= 2 * kinds.count("given"), kinds
    assert ".match {" in page


def test_a_notebook_nested_past_the_limit_is_a_load_error_row_and_is_not_compared(tmp_path):
    """A notebook whose metadata nests 1,100 lists (2 KB) raised RecursionError in the
    loader: a grader-fault row, ``autodiff101 similarity OUT`` crashed and the class report
    said "Not computed". Now the row is a load-error saying why, a rerun leaves it be,
    similarity lists it as not compared, and the report has its similarity section."""
    from autograder.grade import grade
    from autograder.reports import classreport
    from autograder.sandbox import Limits

    folder = write_class(tmp_path / "subs", {"fatou": CLASS["fatou"], "jun": CLASS["jun"]})
    # 30,000 deep: past any recursion limit a test runner sets (hypothesis raises it to 3,000).
    deep = '{"cells": [], "metadata": {"x": ' + "[" * 30_000 + "]" * 30_000 + '}, "nbformat": 4, "nbformat_minor": 5}'
    (folder / "deep.ipynb").write_text(deep)
    out = tmp_path / "out"
    batch = grade([folder], out=out, jobs=1, seed=SEED, isolation="rlimits", limits=Limits())
    rows = {row["id"]: row for row in batch.rows}
    assert rows["deep"]["status"] == "load-error"
    assert "nests lists or objects too deeply" in rows["deep"]["message"]
    again = grade([folder], out=out, jobs=1, seed=SEED, isolation="rlimits", limits=Limits())
    assert again.graded == 0 and {row["status"] for row in again.rows} == {"graded", "load-error"}
    assert similarity.command(out) == 0
    data = json.loads((out / similarity.DATA).read_text())
    assert [entry["id"] for entry in data["not_compared"]] == ["deep"]
    assert "nests lists or objects too deeply" in data["not_compared"][0]["reason"]
    path, _ = classreport.write(out)
    assert 'id="similarity"' in path.read_text() and "Not computed" not in path.read_text()


def test_a_submission_whose_reading_fails_is_not_compared_and_the_rest_are(tmp_path, monkeypatch):
    """Whatever reading one submission raises, the others are still compared."""
    folder = write_class(tmp_path / "subs", {"fatou": CLASS["fatou"], "jun": CLASS["jun"]})
    real = loader.load

    def failing(path, *args):
        if Path(path).stem == "jun":
            raise RecursionError("maximum recursion depth exceeded")
        return real(path, *args)

    monkeypatch.setattr(loader, "load", failing)
    documents = similarity.read_documents([("fatou", folder / "fatou.py"), ("jun", folder / "jun.py")])
    assert not documents["fatou"].problem and documents["fatou"].text
    assert documents["jun"].problem == "could not be read (RecursionError)"
