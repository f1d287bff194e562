"""The catalogue against the mutant corpus: every bug loses exactly its checks, named by its
diagnosis; every correct variant keeps full marks; hidden checks never leak their inputs."""
import re

import pytest

from autograder import checks, inprocess, selfcheck
from autograder.judge import DIAGNOSES
from autograder.misconceptions import MISCONCEPTIONS
from mutants import MUTANTS, OUTCOMES, SEED, VARIANTS, write, write_notebook


@pytest.fixture(scope="module")
def compiled():
    return checks.compile_checks(SEED)


@pytest.fixture(scope="module")
def graded(compiled, tmp_path_factory):
    """name -> [(check, verdict)] of every submission of the corpus, each run once."""
    cache = {}

    def results(name):
        if name not in cache:
            submission = MUTANTS.get(name) or VARIANTS[name]
            folder = write(submission, tmp_path_factory.mktemp("corpus") / name)
            cache[name] = inprocess.run_directory(folder, compiled)
        return cache[name]

    return results


@pytest.fixture(autouse=True)
def no_gui(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")  # the notebook variant plots and calls plt.show()


def failures(results):
    return {check["id"]: verdict for check, verdict in results if not verdict.passed}


# Bugs in code the handout already provides (the nn module) fail only checks worth 0 points
# by default (checks.toml), so that the untouched handout scores 0: they keep full marks.
IN_PROVIDED_CODE = {"mlp-last-layer-nonlinear", "neuron-always-relu"}


@pytest.mark.parametrize("name", MUTANTS)
def test_mutant_fails_exactly_its_checks_with_its_diagnoses(name, graded):
    mutant = MUTANTS[name]
    results = graded(name)
    failed = failures(results)
    assert mutant.fails <= set(failed) <= mutant.fails | mutant.may_fail
    assert {d for verdict in failed.values() for d in verdict.diagnoses} == mutant.diagnoses
    earned, possible = inprocess.score(results)
    assert earned == possible if name in IN_PROVIDED_CODE else earned < possible


@pytest.mark.parametrize("name", MUTANTS)
def test_every_mutant_is_given_exactly_its_intended_diagnosis(name, graded):
    """The idea each bug gets wrong, and no other idea (outcomes such as training aside), so a
    change of expectations that loses or blurs the diagnosis cannot slip through as a
    regenerated table."""
    mutant = MUTANTS[name]
    assert mutant.intended, name
    named = {d for _, verdict in graded(name) if not verdict.passed for d in verdict.diagnoses}
    assert named - OUTCOMES == mutant.intended, sorted(named)


def test_the_corpus_holds_the_issues_table_and_ten_more():
    table = {"relu-multiplies-by-out-data", "topo-preorder-forwards", "topo-breadth-first",
             "root-seeded-after-loop", "neg-without-children", "div-denominator-constant", "topo-not-reversed",
             "relu-without-backward", "mul-holds-sum-rule"}
    assert table <= set(MUTANTS) and len(MUTANTS) >= 23 + len(table - {"topo-not-reversed"}) + 10


@pytest.mark.parametrize("name", MUTANTS)
def test_a_mutant_as_a_notebook_is_graded_and_diagnosed_as_its_module(name, graded, compiled, tmp_path):
    """The same code split into notebook cells (a cell per class or function, as a student's
    notebook is) gets the same verdicts."""
    mutant = MUTANTS[name]
    notebook = write_notebook(mutant, tmp_path / "mutant.ipynb")
    results = inprocess.run_checks(selfcheck.load(notebook), compiled)

    def seen(results):  # where the error was raised is a line of the notebook or of the module
        if mutant.unordered:  # the numbers follow the set's order, which differs from load to load
            return [(v.passed, v.diagnoses) for c, v in results if c["id"] not in mutant.may_fail]
        return [(v.passed, v.diagnoses, re.sub(r" \(line \d+ of [^)]*\)", "", v.message)) for _, v in results]

    assert seen(results) == seen(graded(name))


@pytest.mark.parametrize("name", VARIANTS)
def test_correct_variant_scores_full_marks(name, graded):
    variant = VARIANTS[name]
    results = graded(name)
    failed = failures(results)
    assert set(failed) == variant.fails
    assert {d for verdict in failed.values() for d in verdict.diagnoses} == variant.diagnoses
    earned, possible = inprocess.score(results)
    assert earned == possible == 100


def test_correct_variants_pass_other_seeds_too(tmp_path):
    """The random graphs change with the seed; correct code passes whatever they are."""
    compiled = [check for check in checks.compile_checks(SEED + 1) if check["id"].startswith("backward-random")]
    for name in ("tutorial-style", "direct-sub-div", "prev-as-set", "kahn-topological-order"):
        results = inprocess.run_directory(write(VARIANTS[name], tmp_path / name), compiled)
        assert not failures(results), name


NUMBER = re.compile(r"\d+(?:\.\d+)?")


def numbers_shown(check, verdict):
    """The numbers in a verdict's message besides those it may show: its hint and its
    model's words (which speak of code, never of a check's inputs), where the
    student's code failed, an epoch or a timeout, and what the check's public title says."""
    text = verdict.message
    for hint in [*DIAGNOSES.values(), *(m.words for m in MISCONCEPTIONS.values())]:  # words about code
        text = text.replace(hint, "")
    text = re.sub(r"\(line \d+ of [^)]*\)|epoch \d+|longer than [\d.]+ s", "", text)
    allowed = set(NUMBER.findall(check["title"]))
    return [number for number in NUMBER.findall(text) if number not in allowed]


def test_hidden_checks_never_show_inputs_or_expected_values(graded):
    """Across the whole corpus, a failed check's message names no number (no input, no
    expected value, no count); its detail, for public checks only, does."""
    seen = 0
    for name in MUTANTS:
        for check, verdict in graded(name):
            if not verdict.passed:
                seen += 1
                assert not numbers_shown(check, verdict), (name, check["id"], verdict.message)
                assert verdict.detail, (name, check["id"])
    assert seen > 100


def test_karpathys_own_style_with_an_assigning_add_is_named_and_listed_before_the_deep_chain(graded):
    """#14 review 1: the tutorial's code (_prev a set, recursive build_topo) with = for += in
    add's _backward. The set's order changes the numbers, which no model replays exactly:
    the grader still names accumulate-grad, on every gradient check the bug fails, and the
    gradebook's notes list it first, outcomes after it, and not the 0-point deep chain's
    recursion-depth, which costs no points."""
    from autograder import report

    for name in ("tutorial-add-assigns-grad", "tutorial-add-assigns-other-grad"):
        results = graded(name)
        failed = failures(results)
        gradient_failures = {c: v for c, v in failed.items() if c not in ("deep-chain", *OUTCOME_CHECKS)}
        assert gradient_failures and all(v.diagnoses == ["accumulate-grad"] for v in gradient_failures.values()), name
        assert failed["deep-chain"].diagnoses == ["recursion-depth"]
        record = {"id": name, "score": 0, "max_score": 100, "status": "graded", "isolation": "", "message": "",
                  "tests": [{"check": c["id"], "score": c["points"] * v.score, "max_score": c["points"],
                             "diagnoses": v.diagnoses} for c, v in results]}
        row = report.row_from_record(record)
        assert row["diagnoses"][0] == "accumulate-grad", row["diagnoses"]
        assert "recursion-depth" not in row["diagnoses"] and set(row["diagnoses"]) <= {"accumulate-grad", "training"}


OUTCOME_CHECKS = ("training-loss-history", "training-converges")


def test_a_missing_backward_is_hinted_as_missing_not_as_the_chain_rule(graded):
    """#14 review 5: add with no _backward of its own says that one is missing."""
    from autograder.misconceptions import MISSING_BACKWARD_HINT

    failed = failures(graded("add-without-backward"))
    assert MISSING_BACKWARD_HINT in failed["add-step"].message
    assert DIAGNOSES["chain-rule"] not in failed["add-step"].message


def test_a_backward_that_calls_only_the_roots_backward_is_a_coverage_bug_not_an_order_bug(graded):
    """#14 review 4: the numbers equal those of a sweep in forward order; the count of
    _backward calls tells them apart."""
    for name in ("backward-calls-root-only", "loop-skips-root"):
        failed = failures(graded(name))
        assert failed["backward-reverse-order"].diagnoses == ["topo-coverage"], name
    assert "only the root's _backward runs" in failures(graded("backward-calls-root-only"))["add-same-node"].message
    assert "skips the root's own _backward" in failures(graded("loop-skips-root"))["add-same-node"].message
