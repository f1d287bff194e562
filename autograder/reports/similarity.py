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
- those found in at least ``common_limit(n)`` of the class's ``n`` submissions (MOSS's
  ``-m``; a third of the class, at least 10): code the class takes from one tutorial, not a
  group's shared solution.

What remains is a submission's own code, compared two ways: the share of each side's own
fingerprints found in the other (renaming and reordering change nothing), and the share of its
own lines (tokenised the same way) found in the other in the same order, whatever lies between
them (dead code interleaved with copied lines changes nothing). A pair is flagged when, by
either, the larger side's share is at least ``FLAG`` over ``MIN_MATCH`` tokenised characters
(the larger side: padding lowers only the copy's share), or both sides' shares are at least
``IDENTICAL`` over ``MIN_IDENTICAL`` (a short answer copied whole). A flagged pair's regions
are cut where the handout's lines lie between matches, and its matched lines are marked.

Student text is untrusted: it is capped (``MAX_CHARS`` per submission, ``REGION_LINES`` per
region shown), stripped of control characters and HTML-escaped; pages link only to anchors
in themselves and to ``similarity.html`` beside them, and carry no scripts. copydetect comes with
the base install; where it is missing, ``report_section`` returns nothing and the command
says how to install it.
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
# Tokenised characters are what copydetect counts: `parents[child] = parents.get(child, 0) + 1`
# is `V[V]=V.V(V,0)+1`, 15 of them; a line of an exercise's code is 10 to 25.
FLAG = 0.5  # share of one side's own code that the other side holds
MIN_MATCH = 120  # tokenised characters matched for FLAG: about six lines of code
# Own code (nearly) identical on both sides is flagged from a smaller size: the shortest
# complete own answer to one exercise (the tutorial's recursive build_topo written into the
# handout) is about 60 tokenised characters, one changed line (`_prev` as a set) 10 to 20, and
# one k-gram is NOISE (25). Two k-grams' worth, four lines or so, that are nearly all of what
# both sides wrote, is rare by chance: ten independent correct submissions share at most a
# third of their own code pairwise (tests/test_similarity.py). Both sides, not one: the
# tutorial's build_topo is 90% of such a short answer's own code and also sits inside the
# tutorial's whole style, which two students can each have copied from the tutorial.
IDENTICAL = 0.9
MIN_IDENTICAL = 2 * NOISE
MIN_LINE = 6  # tokenised characters: a shorter line (`else:`, `x = 0`) is no evidence alone
MAX_LINES = 3_000  # own lines compared per submission; a full solution has under 600
MAX_CHARS = 200_000  # of one submission's text; a full solution is under 20,000
REGION_LINES = 60  # of one side of one region, as shown
MAX_REGIONS = 25  # shown per flagged pair
MAX_PAIRS = 200  # listed on the page and in the JSON, most similar first
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class SimilarityUnavailable(Exception):
    """copydetect is not installed."""


def common_limit(n):
    """Code found in at least this many of ``n`` submissions is common code, not evidence:
    a third of the class, and at least 10. A group sharing one solution is a handful of
    students; what a third of the class writes alike comes from one source they all read (a
    tutorial), which says nothing about who copied from whom. A lower limit (a tenth) would
    discount the very code a group of six shares in a class of 23."""
    return max(10, math.ceil(n / 3))


@dataclass
class Document:
    id: str
    text: str = ""
    problem: str = ""  # why it was not compared ("" when it was)
    own: int = 0  # tokenised characters of own code (after discounting)
    fingerprint: object = None
    discounted: frozenset = frozenset()  # line numbers (from 1) of the handout's or reference's lines
    lines: list = field(default_factory=list)  # [(line number, tokenised text)] of own lines, in order


@dataclass
class Measure:
    """How much of each side's own code the other holds, by one method."""

    shares: tuple = (0.0, 0.0)  # (share of a's own code found in b, share of b's found in a)
    matched: tuple = (0, 0)  # tokenised characters of that code, in a and in b

    def flags(self):
        """At least FLAG of the larger side's own code over MIN_MATCH (the larger side, so
        that dead code added to a copy, which lowers only the copy's share, hides nothing), or
        at least IDENTICAL of both sides' over MIN_IDENTICAL (a short answer copied whole)."""
        larger = 0 if self.shares[0] >= self.shares[1] else 1
        return ((self.shares[larger] >= FLAG and self.matched[larger] >= MIN_MATCH)
                or (min(self.shares) >= IDENTICAL and min(self.matched) >= MIN_IDENTICAL))


@dataclass
class Pair:
    a: str
    b: str
    similarity: tuple  # (share of a's own code that matches b, share of b's that matches a)
    matched: int  # tokenised characters of own code matched (the larger side's)
    flagged: bool
    regions: list = field(default_factory=list)  # [((a_start, a_end), (b_start, b_end))] in each text
    marks: tuple = (frozenset(), frozenset())  # line numbers (from 1) of matched own code in a and in b
    fingerprints: Measure = None  # copydetect's k-grams: renaming and reordering change nothing
    lines: Measure = None  # own lines in the same order: dead code between them changes nothing

    @property
    def score(self):
        return min(self.similarity)


@dataclass
class Analysis:
    documents: dict  # id -> Document
    pairs: list  # [Pair], flagged first, then most similar first
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
        try:
            submission = loader.load(path, id, max_bytes)
        except Exception as error:  # load never raises for bad input; if it did, one is not compared
            documents[id] = Document(id, problem=f"could not be read ({type(error).__name__})")
            continue
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
            "the similarity report needs copydetect: pip install copydetect") from error
    return CodeFingerprint("submission.py", NOISE, WINDOW, fp=io.StringIO(text), language="python")


def _discount(fingerprint, hashes):
    """Drop ``hashes`` from a fingerprint and recount how much own code it covers."""
    from copydetect.utils import get_token_coverage

    fingerprint.hashes = fingerprint.hashes - hashes
    fingerprint.hash_idx = {h: i for h, i in fingerprint.hash_idx.items() if h not in hashes}
    fingerprint.token_coverage = get_token_coverage(fingerprint.hash_idx, fingerprint.k,
                                                    len(fingerprint.filtered_code))
    return fingerprint


def _own_kgrams(fingerprint, document):
    """Drop every k-gram that spans one of the document's discounted lines: with those lines
    blanked it joins own code before them to own code after them, a sequence the student never
    wrote (and, shown, a region full of the handout)."""
    import numpy as np

    if not document.discounted or not fingerprint.hash_idx:
        return fingerprint
    starts = np.array(_line_starts(document.text))
    before = np.zeros(len(starts) + 2, dtype=int)  # before[n]: discounted lines numbered below n
    for n in document.discounted:
        if n + 1 < len(before):
            before[n + 1:] += 1
    hashes = list(fingerprint.hash_idx)
    counts = [len(fingerprint.hash_idx[h]) for h in hashes]
    positions = np.concatenate([np.asarray(fingerprint.hash_idx[h], dtype=int) for h in hashes])
    first = np.searchsorted(starts, _raw_many(fingerprint, positions), side="right")
    last = np.searchsorted(starts, _raw_many(fingerprint, positions + fingerprint.k - 1), side="right")
    spans = before[np.maximum(last, first + 1)] - before[first + 1] > 0  # a discounted line in (first, last)
    kept, at = {}, 0
    for h, count in zip(hashes, counts):
        inside = [int(i) for i, crossing in zip(positions[at:at + count], spans[at:at + count]) if not crossing]
        at += count
        if inside:
            kept[h] = inside
    fingerprint.hash_idx = kept
    fingerprint.hashes = set(kept)
    return _discount(fingerprint, set())


def _raw_many(fingerprint, positions):
    """Tokenised positions (an array) -> positions in the raw text, as ``_raw``."""
    import numpy as np

    offsets = fingerprint.offsets
    if not len(offsets):
        return positions
    return positions + offsets[:, 1][np.clip(np.searchsorted(offsets[:, 0], positions), 0, offsets.shape[0] - 1)]


def _spans(discounted, first, last, allowed=0):
    """Whether more than ``allowed`` discounted lines lie strictly between lines ``first``
    and ``last``."""
    return sum(1 for n in range(first + 1, last) if n in discounted) > allowed


# A region of the side-by-side view may hold this many of the handout's lines between two
# matched ones (a `while stack:` between copied lines), shown grey, as context; more cut it.
CONTEXT = 1


def analyse(documents, discounted=None):
    """Fingerprint every document, discount the handout, the reference and common code, and
    compare every pair that shares a fingerprint or an own line. Raises SimilarityUnavailable."""
    boilerplate, known = set(), set()
    for text in discounted_texts() if discounted is None else discounted:
        boilerplate |= _fingerprint(text).hashes
        known.update(line.strip() for line in text.splitlines())
    known.discard("")
    readable = [d for d in documents.values() if not d.problem]
    for document in readable:
        blanked, document.discounted = blank_known_lines(document.text, known)
        document.fingerprint = _discount(_own_kgrams(_fingerprint(blanked), document), boilerplate)
        document.lines = own_lines(document.text, document.discounted)
    limit = common_limit(len(readable))
    counts = Counter(h for d in readable for h in d.fingerprint.hashes)
    common = {h for h, n in counts.items() if n >= limit}
    line_counts = Counter(line for d in readable for line in {text for _, text in d.lines})
    common_lines = {line for line, n in line_counts.items() if n >= limit}
    holders = defaultdict(set)
    for document in readable:
        _discount(document.fingerprint, common)
        document.own = int(document.fingerprint.token_coverage)
        document.lines = [(n, text) for n, text in document.lines if text not in common_lines]
        for key in (*document.fingerprint.hashes, *(("line", text) for _, text in document.lines)):
            holders[key].add(document.id)
    candidates = {pair for ids in holders.values() for pair in _pairs(sorted(ids))}
    pairs = [compare(documents[a], documents[b]) for a, b in sorted(candidates)]
    pairs.sort(key=lambda p: (not p.flagged, -max(p.similarity), -p.score, -p.matched, p.a, p.b))
    return Analysis(documents, pairs, limit)


def compare(a, b):
    """One pair of fingerprinted documents: both measures, the verdict, and for a flagged
    pair its regions and matched lines."""
    from copydetect import compare_files

    _, shares, slices = compare_files(a.fingerprint, b.fingerprint)
    shares = tuple(min(float(x), 1.0) for x in shares)
    fingerprints = Measure(shares, (round(shares[0] * a.fingerprint.token_coverage),
                                    round(shares[1] * b.fingerprint.token_coverage)))
    matched_lines = line_matches(a.lines, b.lines)
    lines = Measure(*_line_shares(a.lines, b.lines, matched_lines))
    similarity = tuple(max(x, y) for x, y in zip(fingerprints.shares, lines.shares))
    pair = Pair(a.id, b.id, similarity, max(*fingerprints.matched, *lines.matched),
                fingerprints.flags() or lines.flags(), fingerprints=fingerprints, lines=lines)
    if pair.flagged:
        marks = [_covered_lines(d.text, ranges) - d.discounted - _blank_lines(d.text)
                 for d, ranges in ((a, slices[0]), (b, slices[1]))]
        marks[0] |= {i for i, _ in matched_lines}
        marks[1] |= {j for _, j in matched_lines}
        pair.marks = (frozenset(marks[0]), frozenset(marks[1]))
        pair.regions = regions(a, b) + line_regions(a, b, matched_lines)
        pair.regions = _distinct(pair.regions)
    return pair


def blank_known_lines(text, known):
    """``text`` with every line found in the handout or the reference turned into spaces of
    the same length, and the numbers (from 1) of those lines: they hold no evidence, and
    without blanking a run of k-grams straddling two such lines (where files or cells were
    joined) would look like own code. Positions in the text do not change, so matches map
    back onto the original."""
    lines, blanked = [], set()
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        body = line.rstrip("\r\n")
        if line.strip() in known:
            blanked.add(number)
            line = " " * len(body) + line[len(body):]
        lines.append(line)
    return "".join(lines), frozenset(blanked)


def own_lines(text, discounted):
    """[(line number, tokenised line)] of the lines of ``text`` not discounted, tokenised as
    the fingerprints are (names, strings and comments normalised), at least MIN_LINE long."""
    from copydetect.utils import filter_code

    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        if number in discounted or not line.strip():
            continue
        tokens = filter_code(line.strip() + "\n", "line.py", "python")[0]
        if len(tokens) >= MIN_LINE:
            found.append((number, tokens))
            if len(found) >= MAX_LINES:
                break
    return found


def line_matches(a_lines, b_lines):
    """[(line in a, line in b)]: own lines the two have alike, in the same order (a longest
    common subsequence as difflib finds it), whatever lies between them."""
    from difflib import SequenceMatcher

    matcher = SequenceMatcher(None, [t for _, t in a_lines], [t for _, t in b_lines], autojunk=False)
    return [(a_lines[block.a + k][0], b_lines[block.b + k][0])
            for block in matcher.get_matching_blocks() for k in range(block.size)]


def _line_shares(a_lines, b_lines, matches):
    length = dict(a_lines)
    weight = sum(len(length[i]) for i, _ in matches)
    totals = (sum(len(t) for _, t in a_lines), sum(len(t) for _, t in b_lines))
    return tuple(weight / total if total else 0.0 for total in totals), (weight, weight)


def _line_starts(text):
    starts, at = [0], text.find("\n")
    while at >= 0:
        starts.append(at + 1)
        at = text.find("\n", at + 1)
    return starts


def _line_of(starts, position):
    """The line number (from 1) holding character ``position``."""
    from bisect import bisect_right

    return bisect_right(starts, position)


def _covered_lines(text, ranges):
    """Line numbers (from 1) touched by copydetect's copied slices (a 2xN array) in ``text``."""
    starts = _line_starts(text)
    lines = set()
    for start, end in zip(*ranges) if len(ranges) == 2 else ():
        lines.update(range(_line_of(starts, int(start)), _line_of(starts, max(int(start), int(end) - 1)) + 1))
    return lines


def _blank_lines(text):
    return {n for n, line in enumerate(text.splitlines(), start=1) if not line.strip()}


def _pairs(ids):
    return [(a, b) for i, a in enumerate(ids) for b in ids[i + 1:]]


def regions(a, b):
    """Matching regions of two fingerprinted documents as pairs of character ranges in their
    raw texts, in the order they appear in ``a``: runs of shared k-grams that advance together
    in both texts (so a method moved elsewhere is its own region, shown beside its original),
    cut wherever more than CONTEXT of the handout's or the reference's lines lie between two
    matches, so that a region shows own code, not the handout around it."""
    fa, fb = a.fingerprint, b.fingerprint
    k = fa.k
    matches = sorted((i, j) for h in fa.hashes & fb.hashes
                     for i, j in zip(sorted(fa.hash_idx[h]), sorted(fb.hash_idx[h])))
    starts_a, starts_b = _line_starts(a.text), _line_starts(b.text)

    def line(fingerprint, starts, position):
        return _line_of(starts, _raw(fingerprint, position, position)[0])

    runs = []
    for i, j in matches:
        la, lb = line(fa, starts_a, i), line(fb, starts_b, j)
        if runs:
            run = runs[-1]
            step_a, step_b = i - run[1], j - run[3]
            if (0 <= step_a <= k and abs(step_b - step_a) <= k // 2
                    and not _spans(a.discounted, run[4], la, CONTEXT)
                    and not _spans(b.discounted, run[5], lb, CONTEXT)):
                run[1], run[3], run[4], run[5] = i, j, la, lb
                continue
        runs.append([i, i, j, j, la, lb])
    found = []
    for a0, a1, b0, b1, _, _ in runs:
        lo, hi = min(b0, b1), max(b0, b1)
        found.append((_span(fa, a0, a1 + k - 1), _span(fb, lo, hi + k - 1)))
    return found


def line_regions(a, b, matches, gap=3):
    """Regions of own lines matched in order (``line_matches``): consecutive matches at most
    ``gap`` lines apart on both sides (dead code between copied lines), with at most CONTEXT
    of the handout's lines between them, make one region."""
    groups = []
    for i, j in matches:
        if (groups and 0 < i - groups[-1][1] <= gap + 1 and 0 < j - groups[-1][3] <= gap + 1
                and not _spans(a.discounted, groups[-1][1], i, CONTEXT)
                and not _spans(b.discounted, groups[-1][3], j, CONTEXT)):
            groups[-1][1], groups[-1][3] = i, j
        else:
            groups.append([i, i, j, j])
    starts_a, starts_b = _line_starts(a.text), _line_starts(b.text)

    def span(text, starts, first, last):
        end = starts[last] - 1 if last < len(starts) else len(text)
        return starts[first - 1], end

    return [(span(a.text, starts_a, i0, i1), span(b.text, starts_b, j0, j1)) for i0, i1, j0, j1 in groups]


def _span(fingerprint, first, last):
    """Tokenised positions ``first`` to ``last`` (included) -> a range of the raw text."""
    return _raw(fingerprint, first, first)[0], _raw(fingerprint, last, last)[0] + 1


def _distinct(found):
    """Regions in the order of the first side, those that overlap on both sides merged."""
    merged = []
    for (a0, a1), (b0, b1) in sorted(set(found)):
        if merged:
            (p0, p1), (q0, q1) = merged[-1]
            if a0 <= p1 and b0 <= q1 and q0 <= b1:
                merged[-1] = ((p0, max(p1, a1)), (min(q0, b0), max(q1, b1)))
                continue
        merged.append(((a0, a1), (b0, b1)))
    return merged


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
        "settings": {"noise": NOISE, "flag": FLAG, "min_match": MIN_MATCH, "identical": IDENTICAL,
                     "min_identical": MIN_IDENTICAL, "min_line": MIN_LINE, "common_limit": analysis.common_limit},
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
    """The whole lines covering ``text[start:end]``: (first line number, lines, cut)."""
    start = text.rfind("\n", 0, start) + 1
    stop = text.find("\n", max(start, end - 1))
    chunk = text[start:len(text) if stop < 0 else stop]
    lines = chunk.split("\n")
    first = text.count("\n", 0, start) + 1
    return first, lines[:REGION_LINES], len(lines) > REGION_LINES


def _side(document, span, marks):
    """One side of a region: numbered lines, the matched own code marked ``match``, the
    handout's and the reference's lines marked ``given``."""
    first, lines, cut = _lines(document.text, *span)
    shown = []
    for number, line in enumerate(lines, start=first):
        kind = ("match" if number in marks else "given" if number in document.discounted
                else "own" if line.strip() else "blank")
        shown.append(f'<span class="{kind}"><span class="ln">{number:>4}</span> {_clean(line[:200])}</span>')
    return f"<pre>{chr(10).join(shown)}{chr(10) + '   …' if cut else ''}</pre>"


def side_by_side(analysis, pair, number):
    a, b = analysis.documents[pair.a], analysis.documents[pair.b]
    blocks = []
    for span_a, span_b in pair.regions[:MAX_REGIONS]:
        blocks.append(f"<tr><td>{_side(a, span_a, pair.marks[0])}</td><td>{_side(b, span_b, pair.marks[1])}</td></tr>")
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
Only each submission's own code counts: the handout, the reference solution and code found in {analysis.common_limit}
or more submissions are discounted, and names, strings and comments are normalised, so renaming or reordering
changes nothing. Code is compared two ways: shared fingerprints (MOSS's winnowing), and own lines alike in the
same order, whatever lies between them (dead code added to a copy). A pair is flagged when one side has at least
{_percent(FLAG)} of its own code in the other over at least {MIN_MATCH} tokens (one side is enough: dead code
added to a copy lowers only the copy's share), or when both sides' own code is {_percent(IDENTICAL)} alike over at
least {MIN_IDENTICAL} tokens (a short answer copied whole). Side by side,
<span class="match">matched own code</span> is highlighted and <span class="given">the handout's</span> is grey.
Similar is not proof: read the code side by side.</p>
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
.match { background: #ffe08a; display: inline-block; width: 100%; } .given { color: #9aa0a6; }
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
            f'submissions; <a href="./{PAGE}">the similarity report</a> shows each side by side.</p>'
            f'<table id="similarity-pairs"><thead>{TABLE_HEAD}</thead><tbody>{pair_rows(pairs[:10], "./" + PAGE)}'
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
