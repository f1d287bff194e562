"""The extension exercises (tanh, exp, log, moons): chosen per course, graded like the core.

Every extension mutant fails exactly its checks with its diagnoses; the reference scores 100
with every extension; a course that chooses none compiles exactly the checks it compiled
before the extensions existed."""
import hashlib
import json
import math

import pytest

from autograder import checks, inprocess, judge
from mutants import EXTENSION_MUTANTS, EXTENSIONS_CHOSEN, SEED, Submission, extension_module, write


def every_extension():
    return checks.load_config(exercises=checks.CORE_EXERCISES + EXTENSIONS_CHOSEN)


@pytest.fixture(scope="module")
def compiled():
    return checks.compile_checks(SEED, every_extension())


@pytest.fixture(scope="module")
def graded(compiled, tmp_path_factory):
    cache = {}

    def results(name, submission):
        if name not in cache:
            folder = write(submission, tmp_path_factory.mktemp("extensions") / name)
            cache[name] = inprocess.run_directory(folder, compiled)
        return cache[name]

    return results


def failures(results):
    return {check["id"]: verdict for check, verdict in results if not verdict.passed}


# The sha256 of json.dumps(compile_checks(course_seed())) at commit 23d7799, before the
# extensions existed: the default course is graded exactly as it was.
DEFAULT_COMPILED_SHA256 = "2dd75d2c2339b052005ad29c97937c7bf798b4b85e8ea4f26ce5ec6e021e9970"


def test_a_course_without_extensions_compiles_exactly_the_checks_it_compiled_before():
    text = json.dumps(checks.compile_checks(checks.course_seed()))
    assert hashlib.sha256(text.encode()).hexdigest() == DEFAULT_COMPILED_SHA256
    assert {c["exercise"] for c in json.loads(text)} == set(checks.CORE_EXERCISES)


def test_every_extension_keeps_the_total_at_100_and_the_extensions_at_their_declared_points():
    table, plain = every_extension(), checks.load_config(exercises=checks.EXERCISES, scale=False)
    assert math.isclose(sum(entry["points"] for entry in table.values()), 100, abs_tol=1e-6)
    for check in checks.CHECKS:
        if check.exercise in checks.EXTENSIONS:
            assert table[check.id] == plain[check.id]
        else:
            assert math.isclose(table[check.id]["points"], plain[check.id]["points"] * 0.69, abs_tol=1e-6)


def test_the_course_config_chooses_the_exercises(tmp_path):
    config = tmp_path / "course.toml"
    default = checks.DEFAULT_CONFIG.read_text()
    config.write_text(default.replace('# exercises = ["tanh", "exp", "log", "moons"]', 'exercises = ["log"]'))
    table = checks.load_config(config)
    assert {check.exercise for check in checks.CHECKS if check.id in table} == set(checks.CORE_EXERCISES) | {"log"}
    assert math.isclose(sum(entry["points"] for entry in table.values()), 100, abs_tol=1e-6)
    # tanh-through-exp needs exp as well as tanh
    config.write_text(default.replace('# exercises = ["tanh", "exp", "log", "moons"]', 'exercises = ["tanh"]'))
    assert "tanh-step" in checks.load_config(config) and "tanh-through-exp" not in checks.load_config(config)
    config.write_text(default.replace('# exercises = ["tanh", "exp", "log", "moons"]', 'exercises = ["sigmoid"]'))
    with pytest.raises(ValueError, match="sigmoid"):
        checks.load_config(config)


def test_an_instructors_older_config_takes_the_extension_defaults(tmp_path):
    """A copy of checks.toml made before the extensions existed still works, with them too."""
    lines = checks.DEFAULT_CONFIG.read_text().split("# --- extension exercises")[0]
    config = tmp_path / "old.toml"
    config.write_text(lines.replace("[course]\n", '[course]\nexercises = ["moons"]\n'))
    table = checks.load_config(config)
    assert table["moons-hinge"] == {"points": 3, "visibility": "public"}


def test_the_reference_scores_100_with_every_extension(compiled, graded):
    results = graded("reference", Submission("the reference with every extension", source=extension_module()))
    assert not failures(results)
    earned, possible = inprocess.score(results)
    assert math.isclose(earned, 100) and math.isclose(possible, 100)


@pytest.mark.parametrize("name", EXTENSION_MUTANTS)
def test_extension_mutant_fails_exactly_its_checks_with_its_diagnoses(name, graded):
    mutant = EXTENSION_MUTANTS[name]
    failed = failures(graded(name, mutant))
    assert set(failed) == mutant.fails
    assert {d for verdict in failed.values() for d in verdict.diagnoses} == mutant.diagnoses


@pytest.mark.parametrize("bug, op, x", [("tanh-from-input", "tanh", 0.7), ("exp-from-input", "exp", -1.3),
                                        ("no-upstream-log", "log", 0.4)])
def test_the_simulator_reproduces_each_extension_misconception(bug, op, x):
    program = checks.expression(f"a.{op}()", a=x)
    reference = judge.simulate(program, upstream=11.0, sweep="local")[1]
    buggy = judge.simulate(program, bug, upstream=11.0, sweep="local")[1]
    assert not math.isclose(buggy[0], reference[0])
    assert bug in judge.explain(program, buggy, "local", 11.0)


def test_random_extension_graphs_use_their_operator_and_log_gets_positive_arguments():
    for seed in range(5):
        for op in ("tanh", "exp", "log"):
            check = next(c for c in checks.CHECKS if c.id == f"{op}-random")
            program = check.concrete_params(seed)["program"]
            data = judge.simulate(program)[0]
            assert any(instruction[0] == op for instruction in program)
            assert all(data[instruction[1]] > 0 for instruction in program if instruction[0] == "log")
