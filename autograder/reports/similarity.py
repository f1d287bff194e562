"""Similarity: pairs of submissions whose own code is unusually alike, for an instructor to read.

``autodiff101 similarity OUT [SUBMISSIONS ...]`` writes ``OUT/similarity.html`` (every pair
that shares code, ranked; each flagged pair with its matching regions side by side) and
``OUT/similarity.json`` (the same as data; the class report's section reads it). The
submissions are the paths ``grade`` recorded in ``OUT/<id>/results.json``, or the folders
given after OUT, found as ``grade`` finds them.

Fingerprinting is copydetect's (MOSS's winnowing): each submission's Python text, as
``load.py`` reads it (a notebook's code cells, a folder's modules, a zip's files), is
tokenised by pygments so that every name becomes ``V``, ``F`` or ``O``, every string ``S``,
and comments and whitespace vanish; renaming variables or rewording comments changes
nothing, and a match is a run of at least ``NOISE`` such characters. A match is evidence
only where students had a choice, so three kinds of fingerprints are discounted:

- the handout's (``assignments/``: its modules and the notebook's code): everyone starts there;
- the reference solution's (``solutions/``): the lines any correct answer written into the
  handout contains (``self.grad += out.grad``), which would otherwise make every pair of
  correct submissions look alike;
- those found in more than ``common_limit(n)`` of the class's ``n`` submissions (MOSS's
  ``-m``): code the whole class takes from the same tutorial.

What remains is a submission's own code. A pair's similarity, per side, is the share of that
side's own code that matches the other side; a pair is flagged when both sides share at
least ``FLAG`` of their own code and the match covers at least ``MIN_MATCH`` tokenised
characters (so that two nearly untouched handouts, with a line of own code each, are not).

Student text is untrusted: it is capped (``MAX_CHARS`` per submission, ``REGION_LINES`` per
region shown), stripped of control characters and HTML-escaped; pages link only to anchors
in themselves and to ``similarity.html`` beside them, and carry no scripts. copydetect is the
``similarity`` extra (``pip install autodiff101[similarity]``); without it,
``report_section`` returns nothing and the command says how to install it.
"""
import html
import io
import json
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .. import load as loader
from .. import report

PAGE = "similarity.html"
DATA = "similarity.json"
NOISE = 25  # tokenised characters: copydetect's default noise threshold (k of the k-grams)
WINDOW = 1  # winnowing window: 1 keeps every k-gram, exact at the size of one exercise
FLAG = 0.5  # share of each side's own code that matches the other
MIN_MATCH = 120  # tokenised characters matched, about four lines of code
MAX_CHARS = 200_000  # of one submission's text; a full solution is under 20,000
REGION_LINES = 60  # of one side of one region, as shown
MAX_REGIONS = 25  # shown per flagged pair
MAX_PAIRS = 200  # listed on the page and in the JSON, most similar first
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class SimilarityUnavailable(Exception):
    """copydetect is not installed."""


def common_limit(n):
    """A fingerprint in more than this many of ``n`` submissions is common code, not evidence:
    at least 5 (so that a few students who copied from one source still count), at least a
    tenth of the class."""
    return max(5, math.ceil(n / 10))


@dataclass
class Document:
    id: str
    text: str = ""
    problem: str = ""  # why it was not compared ("" when it was)
    own: int = 0  # tokenised characters of own code (after discounting)
    fingerprint: object = None


@dataclass
class Pair:
    a: str
    b: str
    similarity: tuple  # (share of a's own code that matches b, share of b's that matches a)
    matched: int  # tokenised characters of a that match b
    flagged: bool
    regions: list = field(default_factory=list)  # [((a_start, a_end), (b_start, b_end))] in each text

    @property
    def score(self):
        return min(self.similarity)


@dataclass
class Analysis:
    documents: dict  # id -> Document
    pairs: list  # [Pair], most similar first
    common_limit: int

    @property
    def flagged(self):
        return [p for p in self.pairs if p.flagged]


# --- texts -------------------------------------------------------------------------------


def submission_text(submission):
    """A loaded submission's Python as one text (its files in name order), capped."""
    parts = []
    for name in sorted(submission.sources):
        shown = submission.names.get(name, name)
        parts.append(f"# --- {shown} ---\n{submission.sources[name]}\n")
    return "".join(parts)[:MAX_CHARS]


def discounted_folders():
    """Where the handout and the reference are: handout.py's own notion (the repository's
    ``assignments/`` and ``solutions/``, beside the ``autograder`` package), whichever exist.
    The handout is a folder of plain modules, not a package: never found by importing it."""
    from .. import handout

    return [folder for folder in (handout.ASSIGNMENTS, handout.SOLUTIONS) if folder.is_dir()]


def discounted_texts():
    """The handout's and the reference solution's Python texts, read as submissions are:
    each folder as a package and module by module, and every notebook in it. Where
    assignments/ was not installed, the handout is built from the reference into a temporary
    folder first, as ``autodiff101 build`` makes it. Raises SimilarityUnavailable when there
    is no reference either: without it every pair of correct submissions would look copied."""
    import tempfile

    from .. import handout

    folders = discounted_folders()
    if handout.SOLUTIONS not in folders:
        raise SimilarityUnavailable(
            f"the reference solution ({handout.SOLUTIONS}) was not found, and without it every correct "
            "submission looks like every other")
    with tempfile.TemporaryDirectory(prefix="autodiff101-handout-") as work:
        if handout.ASSIGNMENTS not in folders:
            # The public checks do not change the handout's code (its check cells are not
            # read as a submission's), so none are compiled.
            handout.write_files(work, handout.handout_files(checks=[]))
            folders.append(Path(work))
        texts = []
        for folder in folders:
            for path in (folder, *sorted(folder.glob("*.ipynb"))):
                texts.extend(loader.load(path).sources.values())
            texts.extend(p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.py")))
    return texts


def read_documents(items, max_bytes=loader.DEFAULT_MAX_BYTES):
    """[(id, path)] -> {id: Document} with their texts, or the reason there is none."""
    documents = {}
    for id, path in items:
        submission = loader.load(path, id, max_bytes)
        if not submission.sources:
            documents[id] = Document(id, problem=submission.message or submission.status)
        else:
            documents[id] = Document(id, submission_text(submission))
    return documents


# --- fingerprints and pairs ----------------------------------------------------------------


def _fingerprint(text):
    try:
        from copydetect import CodeFingerprint
    except ImportError as error:
        raise SimilarityUnavailable(
            "the similarity report needs copydetect: pip install 'autodiff101[similarity]'") from error
    return CodeFingerprint("submission.py", NOISE, WINDOW, fp=io.StringIO(text), language="python")


def _discount(fingerprint, hashes):
    """Drop ``hashes`` from a fingerprint and recount how much own code it covers."""
    from copydetect.utils import get_token_coverage

    fingerprint.hashes = fingerprint.hashes - hashes
    fingerprint.hash_idx = {h: i for h, i in fingerprint.hash_idx.items() if h not in hashes}
    fingerprint.token_coverage = get_token_coverage(fingerprint.hash_idx, fingerprint.k,
                                                    len(fingerprint.filtered_code))
    return fingerprint


def analyse(documents, discounted=None):
    """Fingerprint every document, discount the handout, the reference and common code, and
    compare every pair that shares a fingerprint. Raises SimilarityUnavailable."""
    from copydetect import compare_files

    boilerplate, known = set(), set()
    for text in discounted_texts() if discounted is None else discounted:
        boilerplate |= _fingerprint(text).hashes
        known.update(line.strip() for line in text.splitlines())
    known.discard("")
    readable = [d for d in documents.values() if not d.problem]
    for document in readable:
        document.fingerprint = _discount(_fingerprint(blank_known_lines(document.text, known)), boilerplate)
    limit = common_limit(len(readable))
    counts = Counter(h for d in readable for h in d.fingerprint.hashes)
    common = {h for h, n in counts.items() if n > limit}
    holders = defaultdict(list)
    for document in readable:
        _discount(document.fingerprint, common)
        document.own = int(document.fingerprint.token_coverage)
        for h in document.fingerprint.hashes:
            holders[h].append(document.id)
    candidates = {tuple(sorted(pair)) for ids in holders.values() for pair in _pairs(ids)}
    pairs = []
    for a, b in sorted(candidates):
        fa, fb = documents[a].fingerprint, documents[b].fingerprint
        matched, similarity, _ = compare_files(fa, fb)
        similarity = tuple(min(float(s), 1.0) for s in similarity)
        flagged = min(similarity) >= FLAG and int(matched) >= MIN_MATCH
        pair = Pair(a, b, similarity, int(matched), flagged)
        if flagged:
            pair.regions = regions(fa, fb)
        pairs.append(pair)
    pairs.sort(key=lambda p: (-p.score, -max(p.similarity), -p.matched, p.a, p.b))
    return Analysis(documents, pairs, limit)


def blank_known_lines(text, known):
    """``text`` with every line found in the handout or the reference turned into spaces of
    the same length: it holds no evidence, and without it a run of k-grams straddling two
    such lines (where files or cells were joined) would look like own code. Positions in the
    text do not change, so matches map back onto the original."""
    return "".join(" " * len(line.rstrip("\n")) + line[len(line.rstrip("\n")):]
                   if line.strip() in known else line for line in text.splitlines(keepends=True))


def _pairs(ids):
    return [(a, b) for i, a in enumerate(ids) for b in ids[i + 1:]]


def regions(fa, fb):
    """Matching regions of two fingerprints as pairs of character ranges in their raw texts,
    in the order they appear in ``fa``: runs of shared k-grams that advance together in both
    texts (so a method moved elsewhere is its own region, shown beside its original)."""
    k = fa.k
    matches = sorted((i, j) for h in fa.hashes & fb.hashes
                     for i, j in zip(sorted(fa.hash_idx[h]), sorted(fb.hash_idx[h])))
    runs = []
    for i, j in matches:
        if runs:
            run = runs[-1]
            step_a, step_b = i - run[1], j - run[3]
            if 0 <= step_a <= k and abs(step_b - step_a) <= k // 2:
                run[1], run[3] = i, j
                continue
        runs.append([i, i, j, j])
    found = []
    for a0, a1, b0, b1 in runs:
        lo, hi = min(b0, b1), max(b0, b1)
        found.append((_raw(fa, a0, a1 + k), _raw(fb, lo, hi + k)))
    return found


def _raw(fingerprint, start, end):
    """Tokenised positions -> positions in the raw text (copydetect's own mapping)."""
    import numpy as np

    offsets = fingerprint.offsets
    span = np.array([start, end])
    if len(offsets):
        span = span + offsets[:, 1][np.clip(np.searchsorted(offsets[:, 0], span), 0, offsets.shape[0] - 1)]
    return int(span[0]), int(span[1])


# --- which submissions ---------------------------------------------------------------------


def submissions_of(out, paths=()):
    """[(id, path)]: found under ``paths`` as ``grade`` finds them, or else the paths OUT's
    results record. Raises UsageError when neither says where the submissions are."""
    out = Path(out)
    if paths:
        return [(item.id, item.path) for item in loader.discover(paths, exclude=[out]).found]
    if not out.is_dir():
        raise loader.UsageError(f"{out} is not a folder")
    items, unknown = [], []
    for results_file in sorted(out.glob(f"*/{report.RESULTS}")):
        id = results_file.parent.name
        data = report.read_results(out, id)
        path = data["extra_data"].get("path") if data else None
        if isinstance(path, str) and path:
            items.append((id, Path(path)))
        else:
            unknown.append(id)
    if unknown or not items:
        raise loader.UsageError(
            f"{out} does not record where its submissions are; name them: "
            f"autodiff101 similarity {out} SUBMISSIONS")
    return items


# --- output ----------------------------------------------------------------------------------


def to_data(analysis):
    return {
        "settings": {"noise": NOISE, "flag": FLAG, "min_match": MIN_MATCH,
                     "common_limit": analysis.common_limit},
        "submissions": len(analysis.documents),
        "not_compared": [{"id": d.id, "reason": d.problem} for d in analysis.documents.values() if d.problem],
        "own_code": {d.id: d.own for d in analysis.documents.values() if not d.problem},
        "pairs": [{"a": p.a, "b": p.b, "similarity": [round(s, 4) for s in p.similarity],
                   "matched": p.matched, "flagged": p.flagged} for p in analysis.pairs[:MAX_PAIRS]],
    }


def write(out, paths=()):
    """Compare the submissions of OUT (or under ``paths``); write similarity.html and .json
    into OUT. Returns the Analysis. Raises UsageError and SimilarityUnavailable."""
    out = Path(out)
    documents = read_documents(submissions_of(out, paths))
    analysis = analyse(documents)
    out.mkdir(parents=True, exist_ok=True)
    report.write_atomic(out / DATA, json.dumps(to_data(analysis), indent=1) + "\n")
    report.write_atomic(out / PAGE, render(analysis, out.name))
    return analysis


def _clean(text):
    return html.escape(_CONTROL.sub("?", text), quote=True)


def _percent(x):
    return f"{100 * x:.0f}%"


def _anchor(number):
    return f"pair-{number}"


def pair_rows(pairs, link=""):
    """Table rows of ranked pairs; ``link`` is the page the side-by-side anchors are on."""
    rows = []
    for number, pair in enumerate(pairs[:MAX_PAIRS], start=1):
        shown = (f'<a href="{link}#{_anchor(number)}">side by side</a>' if pair.flagged else "")
        rows.append(
            f'<tr class="{"flagged" if pair.flagged else ""}"><td class="num">{number}</td>'
            f"<td>{_clean(pair.a)}</td><td>{_clean(pair.b)}</td>"
            f'<td class="num">{_percent(pair.similarity[0])}</td><td class="num">{_percent(pair.similarity[1])}</td>'
            f'<td class="num">{pair.matched}</td><td>{"flagged" if pair.flagged else ""}</td><td>{shown}</td></tr>')
    return "\n".join(rows)


TABLE_HEAD = ("<tr><th>#</th><th>submission A</th><th>submission B</th><th>A's own code matching B</th>"
              "<th>B's own code matching A</th><th>matched (tokens)</th><th></th><th></th></tr>")


def _lines(text, start, end):
    """The whole lines covering ``text[start:end]``: (first line number, escaped lines, cut)."""
    start = text.rfind("\n", 0, start) + 1
    stop = text.find("\n", end)
    chunk = text[start:len(text) if stop < 0 else stop]
    lines = chunk.split("\n")
    first = text.count("\n", 0, start) + 1
    return first, [_clean(line[:200]) for line in lines[:REGION_LINES]], len(lines) > REGION_LINES


def _side(text, span):
    first, lines, cut = _lines(text, *span)
    numbered = "\n".join(f'<span class="ln">{first + i:>4}</span> {line}' for i, line in enumerate(lines))
    return f"<pre>{numbered}{chr(10) + '   …' if cut else ''}</pre>"


def side_by_side(analysis, pair, number):
    a, b = analysis.documents[pair.a], analysis.documents[pair.b]
    blocks = []
    for span_a, span_b in pair.regions[:MAX_REGIONS]:
        blocks.append(f"<tr><td>{_side(a.text, span_a)}</td><td>{_side(b.text, span_b)}</td></tr>")
    more = len(pair.regions) - MAX_REGIONS
    note = f"<p>{more} more regions not shown.</p>" if more > 0 else ""
    return (f'<section id="{_anchor(number)}"><h3>{number}. {_clean(pair.a)} and {_clean(pair.b)}: '
            f"{_percent(pair.similarity[0])} and {_percent(pair.similarity[1])} of their own code</h3>"
            f'<table class="sbs"><tr><th>{_clean(pair.a)}</th><th>{_clean(pair.b)}</th></tr>'
            f"{''.join(blocks)}</table>{note}</section>")


def render(analysis, title=""):
    """similarity.html: the ranked pairs, then each flagged pair side by side. No scripts."""
    pairs = analysis.pairs
    skipped = [d for d in analysis.documents.values() if d.problem]
    details = "\n".join(side_by_side(analysis, p, n) for n, p in enumerate(pairs[:MAX_PAIRS], start=1) if p.flagged)
    skipped_list = "".join(f"<li>{_clean(d.id)}: {_clean(d.problem[:300])}</li>" for d in skipped)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>autodiff101 similarity: {_clean(title)}</title>
<style>{STYLE}</style></head><body>
<h1>Similarity of submissions</h1>
<p>{len(analysis.documents) - len(skipped)} submissions compared; {len(analysis.flagged)} pairs flagged.
Only each submission's own code counts: the handout, the reference solution and code found in more than
{analysis.common_limit} submissions are discounted, and names, strings and comments are normalised, so renaming
or reordering changes nothing. A pair is flagged when each shares at least {_percent(FLAG)} of its own code
with the other over at least {MIN_MATCH} tokens. Similar is not proof: read the code side by side.</p>
<table class="pairs"><thead>{TABLE_HEAD}</thead><tbody>
{pair_rows(pairs) or '<tr><td colspan="8">no two submissions share any of their own code</td></tr>'}
</tbody></table>
{f"<h2>Not compared</h2><ul>{skipped_list}</ul>" if skipped else ""}
<h2>Flagged pairs, side by side</h2>
{details or "<p>none</p>"}
<footer>Written by <code>autodiff101 similarity</code>; fingerprints by copydetect (winnowing, as MOSS).</footer>
</body></html>
"""


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 80rem; margin: 1.5rem auto; padding: 0 1.5rem; color: #1f2328; }
table { border-collapse: collapse; width: 100%; margin: .6rem 0; font-size: .92rem; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #e6e8eb; vertical-align: top; }
th { background: #f4f6f8; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.flagged td { background: #fff1e0; }
table.sbs td { width: 50%; } pre { margin: 0; font-size: .8rem; white-space: pre-wrap; background: #fbfbfb; }
.ln { color: #999; user-select: none; }
"""


def report_section(out):
    """The class report's similarity section (HTML), or "" when copydetect is not installed.
    Reads OUT/similarity.json, or writes it (and similarity.html) when OUT records where its
    submissions are. Never raises: a report without this section beats no report."""
    try:
        import copydetect  # noqa: F401
    except ImportError:
        return ""
    out = Path(out)
    try:
        data = json.loads((out / DATA).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        try:
            data = to_data(write(out))
        except Exception as error:  # no recorded paths, unreadable files: say what to run
            return (f'<h2 id="similarity">Similarity</h2><p>Not computed ({_clean(str(error)[:300])}); '
                    f"run <code>autodiff101 similarity OUT SUBMISSIONS</code>.</p>")
    try:
        pairs = [Pair(str(p["a"]), str(p["b"]), tuple(float(s) for s in p["similarity"]), int(p["matched"]),
                      bool(p["flagged"])) for p in data["pairs"]]
    except (KeyError, TypeError, ValueError):
        return ""
    flagged = [p for p in pairs if p.flagged]
    return (f'<h2 id="similarity">Similarity</h2><p>{len(flagged)} pairs flagged of {data.get("submissions", 0)} '
            f'submissions; <a href="{PAGE}">the similarity report</a> shows each side by side.</p>'
            f'<table id="similarity-pairs"><thead>{TABLE_HEAD}</thead><tbody>{pair_rows(pairs[:10], PAGE)}'
            "</tbody></table>")


def command(out, paths=()):
    """``autodiff101 similarity``: the exit code (2 bad usage or no copydetect)."""
    import sys

    try:
        analysis = write(out, paths)
    except (loader.UsageError, SimilarityUnavailable) as error:
        print(f"autodiff101 similarity: {error}", file=sys.stderr)
        return 2
    compared = sum(1 for d in analysis.documents.values() if not d.problem)
    print(f"wrote {Path(out) / PAGE}: {compared} submissions compared, {len(analysis.flagged)} pairs flagged")
    for pair in analysis.flagged:
        print(f"  {_CONTROL.sub('?', pair.a)} ~ {_CONTROL.sub('?', pair.b)}: "
              f"{_percent(pair.similarity[0])} / {_percent(pair.similarity[1])}")
    return 0
