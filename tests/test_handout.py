"""`autodiff101 build`: the handout generated from the marked reference, and kept fresh."""
import json

import pytest

from autograder import checks, cli, handout, probes

SOURCES = handout.reference_sources()


@pytest.fixture(scope="module")
def files():
    return handout.handout_files()


def test_assignments_is_up_to_date():
    stale = handout.stale_files(handout.ASSIGNMENTS)
    assert not stale, f"assignments/ is stale ({', '.join(stale)}): run `autodiff101 build`"


def test_exercises_are_named_after_the_methods_around_their_regions():
    assert handout.exercises(SOURCES) == ["add", "mul", "pow", "relu", "backward"]
    assert [r.function for r in handout.all_regions(SOURCES)] == [
        "Value.__add__", "Value.__mul__", "Value.__pow__", "Value.relu", "Value.backward"]


def test_a_marker_can_name_its_exercise():
    source = "def f():\n    # BEGIN SOLUTION chain-rule\n    return 1\n    # END SOLUTION\n"
    (region,) = handout.regions(source, "x.py")
    assert region.exercise == "chain-rule"
    assert 'raise NotImplementedError("exercise chain-rule: not written yet (f)")' in handout.stub(source, "x.py")


@pytest.mark.parametrize("source, problem", [
    ("def f():\n    # BEGIN SOLUTION\n    return 1\n", "x.py:2: BEGIN SOLUTION is never closed"),
    ("def f():\n    return 1\n    # END SOLUTION\n", "x.py:3: END SOLUTION without a BEGIN SOLUTION"),
    ("# BEGIN SOLUTION\nx = 1\n# END SOLUTION\n", "x.py:1: a region outside any function needs a name"),
    ("def f():\n    # BEGIN SOLUTION\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n", "x.py:3: BEGIN SOLUTION inside"),
])
def test_unbalanced_markers_are_reported_with_file_and_line(source, problem):
    with pytest.raises(handout.HandoutError, match=problem):
        handout.regions(source, "x.py")


def test_stubs_keep_the_explanation_and_lose_the_solution(files):
    stub = files["engine.py"]
    for region in handout.all_regions(SOURCES):
        explanation = SOURCES["engine.py"].splitlines()[region.begin - 2]  # the line above the marker
        assert explanation in stub
        assert "\n".join(handout.todo_lines(region)) in stub
        for line in region.lines:
            if not handout.is_trivial(line):
                assert line not in stub
    assert "BEGIN SOLUTION" not in stub and "END SOLUTION" not in stub


def test_unmarked_modules_are_copied_with_only_their_imports_changed(files):
    for name, text in SOURCES.items():
        if not handout.regions(text, name) and name not in handout.NOT_HANDED_OUT:
            assert files[name] == handout.importable_both_ways(text), name
    assert "__init__.py" not in files  # the handout is a folder of plain modules, not a package


def test_relative_imports_become_imports_that_work_in_a_package_and_alone():
    text = handout.importable_both_ways("import random\n\nfrom .engine import Value\n")
    assert text == ("import random\n\n"
                    "try:  # imported as a package (the grader reads the folder this way)\n"
                    "    from .engine import Value\n"
                    "except ImportError:  # run as a plain module: python train.py, a REPL in this folder\n"
                    "    from engine import Value\n")


def test_a_stub_computes_forward_but_its_todo_raises_naming_the_exercise(tmp_path, files):
    handout.write_files(tmp_path, files)
    ns = probes.namespace(tmp_path)
    a, b = ns["Value"](2.0), ns["Value"](3.0)
    c = a * b + a
    assert c.data == 8.0
    with pytest.raises(NotImplementedError, match="exercise add"):
        c._backward()
    with pytest.raises(NotImplementedError, match="exercise backward"):
        c.backward()


def test_the_solved_variant_is_the_reference_without_markers():
    solved = handout.handout_files(solved=True)
    for name, text in SOURCES.items():
        if name in handout.NOT_HANDED_OUT:
            continue
        assert solved[name] == handout.importable_both_ways("".join(
            line for line in text.splitlines(keepends=True)
            if "BEGIN SOLUTION" not in line and "END SOLUTION" not in line))


def test_public_checks_are_the_public_subset_frozen(files):
    frozen = json.loads(files[handout.PUBLIC_CHECKS])
    config = checks.load_config()
    assert [c["id"] for c in frozen] == [c.id for c in checks.CHECKS if c.id in config and config[c.id]["visibility"] == "public"]
    assert all(c["visibility"] == "public" and "expected" in c for c in frozen)


def test_the_handout_carries_its_own_checker(files):
    for name in handout.VENDORED:
        assert files[f"checker/{name}"] == (handout.KIT / name).read_text()
    assert "checks.py" not in " ".join(files)


def test_build_check_reports_a_stale_handout(tmp_path, files, capsys):
    handout.write_files(tmp_path, files)
    assert handout.build(tmp_path, check=True) == 0

    (tmp_path / "engine.py").write_text(files["engine.py"] + "# edited by hand\n")
    (tmp_path / "notes.md").write_text("mine")
    assert handout.build(tmp_path, check=True) == 1
    error = capsys.readouterr().err
    assert "engine.py" in error and "notes.md" in error and "run `autodiff101 build`" in error


def test_build_rewrites_what_changed_and_ignores_what_running_the_handout_leaves(tmp_path, files):
    handout.write_files(tmp_path, files)
    (tmp_path / "engine.py").write_text("broken")
    (tmp_path / "loss_curve.png").write_bytes(b"\x89PNG")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "engine.cpython-311.pyc").write_bytes(b"\0")

    handout.write_files(tmp_path, files)

    assert (tmp_path / "engine.py").read_text() == files["engine.py"]
    assert handout.stale_files(tmp_path, files) == []
    assert (tmp_path / "loss_curve.png").exists()


def test_cli_build_check_exits_non_zero_when_stale(tmp_path, monkeypatch, files):
    handout.write_files(tmp_path, files)
    (tmp_path / "nn.py").unlink()
    monkeypatch.setattr(handout, "ASSIGNMENTS", tmp_path)
    assert cli.main(["build", "--check"]) == 1
    assert cli.main(["build"]) == 0
    assert cli.main(["build", "--check"]) == 0


@pytest.mark.parametrize("chosen, modules", [
    (None, ["engine.py", "nn.py"]),
    (("add", "moons"), ["engine.py", "nn.py", "moons.py"]),
    (("tanh", "log"), ["engine.py", "nn.py"]),  # the operators live in engine.py
])
def test_the_readme_names_the_files_of_the_chosen_exercises(chosen, modules):
    """Where to work, what check.py checks and what submission.zip holds: every module the
    student writes code in, moons.py too when the moons exercise is chosen, and none that is
    not in the handout."""
    from autograder import checks, handout

    exercises = None if chosen is None else checks.CORE_EXERCISES + tuple(c for c in chosen if c in checks.EXTENSIONS)
    files = handout.handout_files(chosen=exercises)
    readme = files["README.md"]
    listed = handout._listed(modules)
    assert f"Python files {listed}." in readme
    assert f"# checks {handout._listed(modules, quote='')}\n" in readme
    assert f"it holds {listed} (or your notebook)" in readme
    assert set(modules) <= set(files)
    assert ("moons.py" in readme) == ("moons.py" in modules)
    assert ("`moons.csv`" in readme) == ("moons.csv" in files)


def test_the_readme_names_the_network_train_py_trains_and_the_moons_command_when_chosen():
    """python train.py trains nn.py's MLP(3, [3, 3, 1]) on three samples (not "the last
    exercise"); with the moons chosen, .py students are told to run python moons.py, which
    the handout's moons.py runs as a plain module."""
    from autograder import handout

    core = handout.handout_files()["README.md"]
    assert "MLP(3, [3, 3, 1]), on three samples" in core and "last exercise" not in core
    assert "python moons.py" not in core
    moons = handout.handout_files(chosen="all")
    assert "`python moons.py` trains it" in moons["README.md"]
    assert 'if __name__ == "__main__":  # python moons.py' in moons["moons.py"]


def test_the_handouts_checks_do_not_depend_on_what_grading_read_before_in_the_process(monkeypatch):
    """Grading reads the models' stored predictions (sorted keys, from JSON); the handout's
    checks are written out, so they take computed ones whatever ran before in the process
    (a test suite's worker grades, then builds the handout)."""
    from autograder import grade, misconceptions

    for name, empty in (("_STORED", {}), ("_STORED_TEXTS", {}), ("_STORED_PARSED", set()), ("_SIGNATURES", {})):
        monkeypatch.setattr(misconceptions, name, empty)
    fresh = json.dumps(handout.public_checks())
    grade.checks_text_and_checks(0)  # the same checks, stored with their predictions
    misconceptions._stored("")  # as a failing submission's diagnosis would: parse them
    assert misconceptions._STORED
    monkeypatch.setattr(misconceptions, "_SIGNATURES", {})
    assert json.dumps(handout.public_checks()) == fresh
