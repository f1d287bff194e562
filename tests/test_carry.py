"""Error carried forward (autograder/carry.py) over the mutant corpus: a modelled mistake
loses only its own exercise's points (and training-converges where it stops training), two
mistakes lose both exercises' points and nothing else, an unknown bug carries nothing, and
nothing scores more than correct code."""
import json
from pathlib import Path

import pytest

from autograder import carry, checks, grade, inprocess, report
from autograder.reports import classreport
from mutants import MUTANTS, OWN_EXERCISES, SEED, TWO_MISTAKES, UNKNOWN, VARIANTS, write


@pytest.fixture(scope="module")
def compiled():
    return checks.compile_checks(SEED)


@pytest.fixture(scope="module")
def graded(compiled, tmp_path_factory):
    """name -> (verdicts without ECF, verdicts with ECF), as [(check, verdict)]; each
    submission loaded and run once per setting."""
    cache = {}

    def results(name):
        if name not in cache:
            submission = MUTANTS.get(name) or VARIANTS.get(name) or TWO_MISTAKES[name][0]
            ns, failure = inprocess.load(write(submission, tmp_path_factory.mktemp("ecf") / "submission"))
            assert failure is None, failure
            cache[name] = (inprocess.run_checks(ns, compiled), inprocess.run_checks(ns, compiled, carry_errors=True))
        return cache[name]

    return results


@pytest.fixture(autouse=True)
def no_gui(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")


def lost(results):
    return {check["id"] for check, verdict in results if not verdict.passed and check["points"] > 0}


def own_checks(compiled, exercises):
    return {check["id"] for check in compiled if check["exercise"] in exercises}


def assert_loses_only(compiled, plain, ecf, exercises):
    """With ECF, only checks of ``exercises`` and training-converges lose points; no check
    is carried by a mistake of its own exercise (a mistake is penalised where it is made),
    and training-converges, an outcome, is never carried."""
    assert lost(ecf) <= own_checks(compiled, exercises) | {"training-converges"}
    for (check, before), (_, after) in zip(plain, ecf):
        if after.carried:
            assert check["exercise"] not in after.carried["exercises"], check["id"]
        if check["judge"] == "converges":
            assert after.passed == before.passed and after.carried is None


@pytest.mark.parametrize("name", OWN_EXERCISES)
def test_a_single_mistake_loses_only_its_own_exercises_points(name, compiled, graded):
    plain, ecf = graded(name)
    exercises = OWN_EXERCISES[name]
    assert_loses_only(compiled, plain, ecf, exercises)
    for (check, before), (_, after) in zip(plain, ecf):  # one mistake: its exercise's verdicts stay
        if check["exercise"] in exercises:
            assert after.passed == before.passed, check["id"]
    assert lost(ecf) & own_checks(compiled, exercises), "the mistake still costs its own exercise"
    carried = [verdict for _, verdict in ecf if verdict.carried]
    assert all(set(v.carried["exercises"]) <= set(exercises) for v in carried)
    earned, _ = inprocess.score(ecf)
    points = {check["id"]: check["points"] for check in compiled}
    assert earned == 100 - sum(points[c] for c in lost(ecf))


def test_the_mul_mistake_costs_the_mul_exercise_not_the_backward_checks(compiled, graded):
    plain, ecf = graded("mul-uses-own-data")
    assert inprocess.score(plain)[0] < 40
    # the mistake stops training; mul-same-node-step: b * c's closure gives b and c their own data
    assert lost(ecf) == {"mul-step", "mul-same-node-step", "mul-same-node", "training-converges"}
    carried = {check["id"]: verdict for check, verdict in ecf if verdict.carried}
    assert {"backward-seeds-root", "backward-random-deep", "sub-backward", "nn-neuron-gradients",
            "training-loss-history"} <= set(carried)
    verdict = carried["backward-seeds-root"]
    assert verdict.message.startswith("right, given the mul mistake above: points kept")
    assert verdict.carried == {"models": ["mul-own-data"], "exercises": ["mul"], "diagnoses": ["mul-local-grad"]}


@pytest.mark.parametrize("name", TWO_MISTAKES)
def test_two_mistakes_lose_both_exercises_points_and_nothing_else(name, compiled, graded):
    plain, ecf = graded(name)
    exercises = TWO_MISTAKES[name][1]
    assert_loses_only(compiled, plain, ecf, exercises)
    for exercise in exercises:
        assert lost(ecf) & own_checks(compiled, (exercise,)), exercise


@pytest.mark.parametrize("name", UNKNOWN)
def test_an_unknown_bug_carries_nothing(name, graded):
    plain, ecf = graded(name)
    assert [v.passed for _, v in ecf] == [v.passed for _, v in plain]
    assert not any(v.carried for _, v in ecf)


@pytest.mark.parametrize("name", [*MUTANTS, *VARIANTS, *TWO_MISTAKES])
def test_carrying_never_fails_a_check_nor_scores_above_correct_code(name, graded):
    plain, ecf = graded(name)
    submission = MUTANTS.get(name) or VARIANTS.get(name) or TWO_MISTAKES[name][0]
    if not getattr(submission, "may_fail", ()):  # a set's order may differ between the two runs
        for (check, before), (_, after) in zip(plain, ecf):
            assert after.passed or not before.passed, check["id"]
            assert (after.carried is not None) == (after.passed and not before.passed), check["id"]
    reference = inprocess.score(graded("reference")[1])[0]
    if getattr(submission, "may_fail", ()):  # two runs, two orders of a set: only the ceiling holds
        assert inprocess.score(ecf)[0] <= reference == 100
    else:
        assert inprocess.score(plain)[0] <= inprocess.score(ecf)[0] <= reference == 100


def test_a_mistake_whose_exercise_costs_nothing_is_not_carried(graded, compiled, tmp_path):
    """"Only carried when its own exercise's checks lost their points for it": a course that
    gives the mul checks 0 points carries no mul mistake."""
    free = [dict(check, points=0) if check["exercise"] == "mul" else check for check in compiled]
    ns, _ = inprocess.load(write(MUTANTS["mul-uses-own-data"], tmp_path / "mul"))
    assert not any(verdict.carried for _, verdict in inprocess.run_checks(ns, free, carry_errors=True))


def test_every_modelled_mistake_belongs_to_an_exercise_of_the_catalogue():
    from autograder.misconceptions import MISCONCEPTIONS

    for name, model in MISCONCEPTIONS.items():
        assert model.exercises and set(model.exercises) <= set(checks.EXERCISES), name


def test_carry_errors_is_read_from_the_grading_table(tmp_path):
    assert checks.carry_errors() is True
    config = tmp_path / "checks.toml"
    config.write_text(checks.DEFAULT_CONFIG.read_text().replace("carry_errors = true", "carry_errors = false"))
    assert checks.carry_errors(config) is False
    config.write_text(checks.DEFAULT_CONFIG.read_text().replace("carry_errors = true", 'carry_errors = "no"'))
    with pytest.raises(ValueError, match="carry_errors"):
        checks.carry_errors(config)


def test_the_grader_carries_errors_by_default_and_not_when_turned_off(tmp_path, level, compiled):
    """Sandboxed, through grade(): results.json marks each carried test in its extra_data,
    feedback says so, the class report counts them; carry_errors = false gives back the
    scores of scoring each check alone, exactly."""
    folder = tmp_path / "submissions"
    folder.mkdir()
    names = ("mul-uses-own-data", "radd-missing", "pow-drops-factor + root-not-seeded")
    for name in names:
        submission = MUTANTS.get(name) or TWO_MISTAKES[name][0]
        write(submission, folder / name.replace(" + ", "-and-"))
    off = tmp_path / "off.toml"
    off.write_text(checks.DEFAULT_CONFIG.read_text().replace("carry_errors = true", "carry_errors = false"))
    on_batch = grade.grade([folder], out=tmp_path / "on", jobs=2, seed=SEED, isolation=level)
    off_batch = grade.grade([folder], out=tmp_path / "off", jobs=2, seed=SEED, config=off, isolation=level)
    on = {row["id"]: row for row in on_batch.rows}
    off_rows = {row["id"]: row for row in off_batch.rows}
    points = {check["id"]: check["points"] for check in compiled}
    assert off_rows["mul-uses-own-data"]["score"] == 100 - sum(points[c] for c in MUTANTS["mul-uses-own-data"].fails)
    assert off_rows["radd-missing"]["score"] == 100 - sum(points[c] for c in MUTANTS["radd-missing"].fails)
    assert on["mul-uses-own-data"]["score"] == 88 and on["radd-missing"]["score"] == off_rows["radd-missing"]["score"]
    assert on["pow-drops-factor-and-root-not-seeded"]["score"] > off_rows["pow-drops-factor-and-root-not-seeded"]["score"]

    results = json.loads((tmp_path / "on" / "mul-uses-own-data" / report.RESULTS).read_text())
    carried = [t for t in results["tests"] if t["extra_data"].get("carried")]
    assert carried and all(t["status"] == "passed" and t["score"] == t["max_score"] for t in carried)
    assert carried[0]["extra_data"]["carried"]["exercises"] == ["mul"]
    assert not any(t["extra_data"].get("carried") for t in
                   json.loads((tmp_path / "off" / "mul-uses-own-data" / report.RESULTS).read_text())["tests"])
    feedback = (tmp_path / "on" / "mul-uses-own-data" / report.FEEDBACK).read_text()
    assert "right, given the mul mistake above: points kept" in feedback

    data = classreport.read_batch(tmp_path / "on")
    assert data.carried() == (sum(s.carried for s in data.submissions), 2) and data.carried()[0] >= len(carried)
    assert "carried forward" in classreport.render(data)
    assert classreport.read_batch(tmp_path / "off").carried() == (0, 0)


def test_carried_check_in_a_hidden_check_names_no_input(graded):
    """A carried hidden check's message holds the exercise and the model's words only."""
    _, ecf = graded("mul-uses-own-data")
    for check, verdict in ecf:
        if verdict.carried and check["visibility"] == "hidden":
            assert not any(ch.isdigit() for ch in verdict.message), verdict.message


def test_carry_tests_rewrites_the_graders_entries():
    mul = {"id": "mul-step", "exercise": "mul", "probe": "graph", "judge": "gradients", "points": 3,
           "params": {"program": [["leaf", 5.0], ["leaf", 6.0], ["mul", 0, 1]], "sweep": "local", "upstream": 11.0},
           "expected": {"data": [5.0, 6.0, 30.0], "grad": [66.0, 55.0, 11.0]}}
    add = {"id": "add-chain", "exercise": "add", "probe": "graph", "judge": "gradients", "points": 4,
           "params": {"program": [["leaf", 2.0], ["leaf", 3.0], ["mul", 0, 1], ["add", 2, 0]], "sweep": "backward"},
           "expected": {"data": [2.0, 3.0, 6.0, 8.0], "grad": [4.0, 2.0, 1.0, 1.0]}}
    observations = [{"data": [5.0, 6.0, 30.0], "grad": [55.0, 66.0, 11.0]},  # each factor its own data
                    {"data": [2.0, 3.0, 6.0, 8.0], "grad": [3.0, 3.0, 1.0, 1.0]}]
    tests = [{"passed": False, "score": 0.0, "max_score": c["points"], "message": "wrong", "detail": "",
              "diagnoses": ["mul-local-grad"]} for c in (mul, add)]
    carry.carry_tests(tests, [mul, add], observations)
    assert tests[0]["score"] == 0.0 and "carried" not in tests[0]
    assert tests[1]["score"] == 4 and tests[1]["passed"] and tests[1]["carried"]["models"] == ["mul-own-data"]
    assert tests[1]["diagnoses"] == []  # carried checks name no misconception of their own


# A reviewer's inputs: an unknown bug that one model happens to fit on one check of its own
# exercise must not turn that model into a mistake the submission is credited for.
SORT_BY_OP = ("for node in reversed(order):", 'for node in reversed(sorted(order, key=lambda v: v._op == "*")):')
POW_WRONG_FACTOR = ("self.grad += exponent * self.data ** (exponent - 1) * out.grad",
                    "self.grad += (exponent - 1) * self.data ** (exponent - 1) * out.grad")
MUL_OWN_DATA = ("self.grad += other.data * out.grad\n            other.grad += self.data * out.grad",
                "self.grad += self.data * out.grad\n            other.grad += other.data * out.grad")


@pytest.mark.parametrize("patches", [[SORT_BY_OP], [POW_WRONG_FACTOR], [MUL_OWN_DATA, SORT_BY_OP]],
                         ids=["sort-by-op", "pow-wrong-factor", "mul-own-data+sort-by-op"])
def test_a_model_that_fits_an_unknown_bug_on_one_check_carries_nothing(patches, compiled, tmp_path):
    root = Path(__file__).resolve().parents[1] / "solutions"
    engine = (root / "engine.py").read_text()
    for old, new in patches:
        assert old in engine
        engine = engine.replace(old, new)
    (tmp_path / "engine.py").write_text(engine)
    (tmp_path / "nn.py").write_text((root / "nn.py").read_text())
    ns, failure = inprocess.load(tmp_path)
    assert failure is None, failure
    results = inprocess.run_checks(ns, compiled, carry_errors=True)
    assert not any(verdict.carried for _, verdict in results)


def test_the_models_predictions_stay_cached_and_only_the_older_half_goes_when_full(compiled, monkeypatch):
    """A full cache drops its older half, not everything: emptied whenever full, a batch of
    varied mistakes made the models compute nearly every prediction again."""
    from autograder import misconceptions

    monkeypatch.setattr(misconceptions, "_OBSERVED", {})
    monkeypatch.setattr(misconceptions, "_OBSERVED_MAX", 4)
    graph = next(check for check in compiled if check["probe"] == "graph")
    styles = misconceptions.STYLES[:6]
    predicted = [misconceptions.observe(graph, set(), style) for style in styles]
    kept = [key[2] for key in misconceptions._OBSERVED]
    assert kept == [tuple(style) for style in styles[2:]]  # s0, s1 went when s4 came; s5 fitted
    assert misconceptions.observe(graph, set(), styles[-1]) is predicted[-1]  # kept: not computed again


@pytest.mark.parametrize("names", [("mul-uses-own-data", "topo-not-reversed"), ("add-assigns-grad",)])
def test_a_batch_compares_an_observation_with_the_models_once_and_carries_the_same(names, compiled, tmp_path,
                                                                                   monkeypatch):
    """The grader's observations come with their JSON text (carry_tests' ``texts``); a later
    submission that observed the same compares nothing again, and carries exactly what a
    comparison of every observation carries."""
    monkeypatch.setattr(carry, "_AGREED", {})
    compared = []
    real = carry._matches
    monkeypatch.setattr(carry, "_matches", lambda *args: compared.append(args) or real(*args))
    for name in names:
        ns, failure = inprocess.load(write(MUTANTS[name], tmp_path / name))
        assert failure is None, failure
        results = [inprocess._judged(check, *inprocess.observe(ns, check)) for check in compiled]
        texts = [json.dumps(observed, sort_keys=True) if isinstance(observed, dict) else None
                 for _, observed, _ in results]
        alone = carry.carry(results)
        del compared[:]
        first = carry.carry(results, texts)
        assert first == alone and any(why is not None for why in first), name
        assert compared, name  # the first time, the models were asked
        del compared[:]
        # Another submission's replies: equal observations, parsed again (other objects).
        copies = [(check, json.loads(text) if text is not None else observed, verdict)
                  for (check, observed, verdict), text in zip(results, texts)]
        assert carry.carry(copies, texts) == first and compared == [], name  # nothing compared again


def test_the_batch_wide_caches_are_trimmed_safely_beside_other_grading_threads():
    """-j 2 grades from four threads, each remembering predictions and comparisons; a cache
    trimmed while another thread grows it must neither raise nor outgrow its bound."""
    import sys
    import threading

    from autograder import misconceptions

    cache, raised, most = {}, [], 8

    def fill(offset):
        try:
            for n in range(20_000):
                misconceptions.remember(cache, (offset, n), n, most)
        except Exception as error:  # RuntimeError: dictionary changed size during iteration
            raised.append(error)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=fill, args=(offset,)) for offset in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert raised == [] and len(cache) <= most
