"""checkcache: the reference's observations compiled once, read back while nothing they
depend on changed; and the loader's json-only reading of plain v4 notebooks."""
import json
import shutil
import sys
import zipfile
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autograder import checkcache, checks, load
from autograder.platforms import gradescope

SEED = 11


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTODIFF101_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(checkcache, "_memory", {})
    monkeypatch.setattr(checkcache, "SHIPPED", tmp_path / "shipped")
    return tmp_path / "cache"


def refuse(*args):
    raise AssertionError("compiled again although the cache holds these checks")


def test_a_second_process_reads_the_compiled_checks_instead_of_running_the_reference(cache, monkeypatch):
    table = checks.load_config()
    first = checkcache.compiled_checks(SEED, None, table)
    assert [path.name for path in cache.iterdir()] == [f"{checkcache.key(SEED, None, table)}.json"]
    assert not [path for path in cache.iterdir() if path.name.startswith(".")]  # no temporary file left
    monkeypatch.setattr(checkcache, "_memory", {})  # as a new process
    again = checkcache.compiled_checks(SEED, None, table, compile=refuse)
    assert again == first
    plain = checks.compile_checks(SEED, table)
    assert [c["id"] for c in first] == [c["id"] for c in plain]
    for cached, compiled in zip(first, plain):  # the reference's observations, plus what is derived from them
        assert {k: v for k, v in cached["expected"].items() if k != "slopes"} == compiled["expected"]


def test_every_part_of_the_key_changes_it(tmp_path, monkeypatch):
    root = tmp_path / "checkout"
    for part in [*checkcache.SOURCES, checkcache.SOLUTIONS]:
        source = checkcache.HERE.parent / part
        if source.is_dir():
            shutil.copytree(source, root / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (root / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, root / part)
    table = checks.load_config()
    base = checkcache.key(SEED, None, table, root)
    assert base == checkcache.key(SEED, None, table)  # a copy of the same sources: the same key
    config = tmp_path / "checks.toml"
    config.write_text(checks.DEFAULT_CONFIG.read_text() + "\n# a comment\n")
    changed = {"seed": checkcache.key(SEED + 1, None, table, root),
               "config's text": checkcache.key(SEED, config, table, root),
               "table": checkcache.key(SEED, None, dict(table, extra={"points": 1}), root)}
    for part in ["solutions/engine.py", *checkcache.SOURCES]:
        original = (root / part).read_text()
        (root / part).write_text(original + "\n")
        changed[part] = checkcache.key(SEED, None, table, root)
        (root / part).write_text(original)
    monkeypatch.setattr(sys, "version", sys.version + " (another build)")
    changed["python"] = checkcache.key(SEED, None, table, root)
    assert all(value != base for value in changed.values()), [k for k, v in changed.items() if v == base]
    assert len(set(changed.values())) == len(changed)


def test_a_damaged_cache_file_is_compiled_again(cache, monkeypatch):
    table = checks.load_config()
    name = checkcache.key(SEED, None, table)
    cache.mkdir()
    (cache / f"{name}.json").write_text('[{"id": "add-step"')  # cut short
    calls = []
    compiled = checkcache.compiled_checks(SEED, None, table, compile=lambda seed, t: calls.append(seed) or
                                          [{"id": "x", "expected": {}, "params": {}, "judge": "equal"}])
    assert calls == [SEED] and compiled[0]["id"] == "x"
    assert json.loads((cache / f"{name}.json").read_text())[0]["id"] == "x"


@pytest.mark.parametrize("damage", ["truncated", "not a list", "edited"])
def test_a_damaged_stored_file_beside_an_intact_light_one_is_a_miss_and_is_written_again(cache, monkeypatch, damage):
    """Grading reads the light file and hashes the big one against it: a big file cut short
    or replaced is compiled again and rewritten, and the text that identifies the checks
    (grade's checks_hash) is the intact one's; one edited into other checks (still a list of
    them) is read as the checks it now holds, and the light file follows it."""
    from autograder import grade

    table = checks.load_config()
    identity, light = checkcache.grading_text_and_checks(SEED, None, table)
    name = checkcache.key(SEED, None, table)
    stored = cache / f"{name}.json"
    intact = stored.read_text()
    stored.write_text({"truncated": intact[:100_000], "not a list": "5",
                       "edited": intact.replace('"points": 4', '"points": 40', 1)}[damage])
    monkeypatch.setattr(checkcache, "_memory", {})  # as a new process
    again, checks_again = checkcache.grading_text_and_checks(SEED, None, table)
    if damage == "edited":
        assert [c["points"] for c in checks_again] != [c["points"] for c in light]
        assert grade.fingerprint(again) != grade.fingerprint(identity)
        monkeypatch.setattr(checkcache, "_memory", {})
        assert checkcache.grading_text_and_checks(SEED, None, table, compile=refuse) == (again, checks_again)
        return
    assert (again, checks_again) == (identity, light) and stored.read_text() == intact
    assert grade.fingerprint(again) == grade.fingerprint(identity)


def test_the_light_file_and_the_stored_one_both_make_the_fingerprint(cache, monkeypatch):
    """An edited light file (other points) is other checks: another checks_hash."""
    from autograder import grade

    table = checks.load_config()
    identity, _ = checkcache.grading_text_and_checks(SEED, None, table)
    light = cache / f"{checkcache.key(SEED, None, table)}{checkcache.LIGHT}"
    light.write_text(light.read_text().replace('"points": 4', '"points": 40', 1))
    monkeypatch.setattr(checkcache, "_memory", {})
    edited, edited_checks = checkcache.grading_text_and_checks(SEED, None, table)
    assert any(check["points"] == 40 for check in edited_checks)
    assert grade.fingerprint(edited) != grade.fingerprint(identity)


def test_the_gradescope_zip_ships_the_checks_under_the_key_its_run_computes(cache, tmp_path, monkeypatch):
    archive = gradescope.build_zip(tmp_path / "autograder.zip", seed=SEED)
    with zipfile.ZipFile(archive) as zipped:
        shipped = [n for n in zipped.namelist() if n.startswith(f"kit/autograder/{checkcache.SHIPPED.name}/")]
        zipped.extractall(tmp_path / "source")
    kit = tmp_path / "source" / "kit"
    config = kit / "autograder" / "checks.toml"
    name = checkcache.key(SEED, config, checks.load_config(config), root=kit)
    assert sorted(name.rsplit("/", 1)[1] for name in shipped) == [name + ".json", name + checkcache.LIGHT]


def test_gradescope_setup_compiles_the_checks_into_the_kit_it_unpacked(tmp_path):
    """setup.sh compiles with the image's interpreter into the kit's shipped folder, never into
    whatever autograder package the folder it runs from holds."""
    import os
    import subprocess

    archive = gradescope.build_zip(tmp_path / "autograder.zip", seed=SEED)
    source = tmp_path / "source"
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(source)
    shipped = source / "kit" / "autograder" / checkcache.SHIPPED.name
    for path in shipped.iterdir():
        path.unlink()  # as if built with another interpreter: setup.sh must compile them
    before = sorted(checkcache.SHIPPED.glob("*.json")) if checkcache.SHIPPED.is_dir() else []
    env = dict(os.environ, AUTODIFF101_PYTHON=sys.executable, AUTODIFF101_SETUP_SKIP_INSTALL="1",
               AUTODIFF101_CACHE=str(tmp_path / "cache"))
    done = subprocess.run(["bash", str(source / "setup.sh")], env=env, capture_output=True, text=True,
                          cwd=checkcache.HERE.parent, timeout=600)  # wide: compiling on a busy 2-core machine
    assert done.returncode == 0, done.stderr
    name = checkcache.key(SEED, shipped.parent / "checks.toml", checks.load_config(shipped.parent / "checks.toml"),
                          root=source / "kit")
    assert sorted(path.name for path in shipped.iterdir()) == [name + ".json", name + checkcache.LIGHT]
    assert (sorted(checkcache.SHIPPED.glob("*.json")) if checkcache.SHIPPED.is_dir() else []) == before


# --- notebooks read without nbformat ---------------------------------------------------------

text = st.text(alphabet=st.sampled_from("ab %!\n#x=1"), max_size=12)
texts = st.one_of(text, st.lists(text, max_size=3), st.integers(0, 3), st.none())
cells = st.fixed_dictionaries(
    {"cell_type": st.sampled_from(["code", "markdown", "raw"])},
    optional={"source": texts, "metadata": st.one_of(st.just({}), st.fixed_dictionaries(
        {}, optional={"tags": st.one_of(st.lists(st.sampled_from(["check", "x", 3])), st.just("check"))}), st.none()),
              "outputs": st.one_of(st.lists(st.fixed_dictionaries(
                  {"output_type": st.sampled_from(["stream", "display_data", "execute_result"])},
                  optional={"text": texts, "data": st.one_of(st.dictionaries(st.just("text/plain"), texts),
                                                               st.none())}), max_size=2), st.none()),
              "attachments": st.just({})})
notebooks = st.fixed_dictionaries(
    {"cells": st.one_of(st.lists(st.one_of(cells, st.integers()), max_size=4), st.none())},
    optional={"nbformat": st.sampled_from([4, 4.0, True, 3]), "nbformat_minor": st.integers(0, 5),
              "metadata": st.one_of(st.just({}), st.none())})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(notebooks)
def test_reading_a_notebook_without_nbformat_gives_what_nbformat_gives(notebook):
    """Whatever the fast path accepts, nbformat reads to the same cells (anything else goes
    to nbformat itself). The child's task runs in this process here, as the child would run
    it: a child per example made this test the suite's slowest on a loaded machine, and the
    child itself is tried on real v3 notebooks in test_hostile_load."""
    document = json.dumps(notebook)
    fast = load._plain_v4_code_cells(json.loads(document))
    try:
        slow = load._code_cells_by_nbformat(document)
    except ValueError:
        slow = ValueError
    if fast is not None:
        assert fast == slow
    try:
        with mock.patch.object(load, "in_child", task_in_this_process):
            both = load.notebook_code_cells(document)
    except ValueError:
        both = ValueError
    assert both == slow


def task_in_this_process(task, payload, **options):
    """``load.in_child`` without the child: the task's outcome through JSON, as it comes back."""
    return json.loads(json.dumps(load._CHILD_TASKS[task](payload, **options)))


def test_a_handout_notebook_is_read_without_importing_nbformat(tmp_path):
    import subprocess

    from autograder import examples

    path = tmp_path / "alice.ipynb"
    path.write_text(examples.notebook_text(examples.reference_sources()))
    program = ("import sys; from autograder import load; cells = load.notebook_code_cells(open(sys.argv[1]).read()); "
               "assert cells and 'nbformat' not in sys.modules and 'jsonschema' not in sys.modules, "
               "sorted(m for m in sys.modules if m.startswith(('nbformat', 'jsonschema')))")
    done = subprocess.run([sys.executable, "-c", program, str(path)], capture_output=True, text=True,
                          cwd=checkcache.HERE.parent, timeout=120)  # wide: a busy 2-core machine
    assert done.returncode == 0, done.stderr


# --- facts of the machine: the isolation level and the allowed packages ----------------------


@pytest.fixture
def counted_trials(cache, monkeypatch):
    """sandbox._trial counted, as each new process would run it (nothing in memory)."""
    from autograder import sandbox

    calls = []
    real = sandbox._trial
    monkeypatch.setattr(sandbox, "_trial", lambda level: calls.append(level) or real(level))
    monkeypatch.setattr(sandbox, "_checked", {})
    return calls


def test_the_isolation_level_found_by_a_trial_is_remembered_until_the_kernel_changes(counted_trials, monkeypatch):
    import os

    from autograder import sandbox

    best = sandbox.strongest_level()
    assert counted_trials[-1] == best
    tried = len(counted_trials)
    monkeypatch.setattr(sandbox, "_checked", {})  # a new process
    assert sandbox.strongest_level() == best and len(counted_trials) == tried  # no trial
    real = os.uname()
    monkeypatch.setattr(os, "uname", lambda: os.uname_result((*real[:2], real.release + "-other", *real[3:])))
    monkeypatch.setattr(sandbox, "_checked", {})
    assert sandbox.strongest_level() == best and len(counted_trials) == tried + 1  # a new kernel: tried again


def test_a_level_whose_worker_could_not_start_is_forgotten_and_tried_again(counted_trials, monkeypatch):
    from autograder import sandbox

    best = sandbox.strongest_level()
    tried = len(counted_trials)
    sandbox.forget_level(best)  # what worker.py does when a worker's sandbox set-up failed
    monkeypatch.setattr(sandbox, "_checked", {})
    assert sandbox.strongest_level() == best and len(counted_trials) == tried + 1


def test_a_failed_trial_is_not_remembered(counted_trials, monkeypatch):
    from autograder import sandbox

    monkeypatch.setattr(sandbox, "_trial", lambda level: counted_trials.append(level) or "it failed")
    assert sandbox.level_problem("rlimits") == "it failed"
    monkeypatch.setattr(sandbox, "_checked", {})
    assert sandbox.level_problem("rlimits") == "it failed" and counted_trials == ["rlimits", "rlimits"]


def test_the_allowed_packages_are_remembered_until_a_folder_on_the_path_changes(cache, tmp_path, monkeypatch):
    import os

    from autograder import sandbox

    calls = []
    real = sandbox._resolve_packages
    monkeypatch.setattr(sandbox, "_resolve_packages", lambda names: calls.append(names) or real(names))
    monkeypatch.setattr(sandbox, "_resolved", {})
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    first = sandbox.resolve_packages(sandbox.DEFAULT_PACKAGES)
    monkeypatch.setattr(sandbox, "_resolved", {})  # a new process
    assert sandbox.resolve_packages(sandbox.DEFAULT_PACKAGES) == first and len(calls) == 1
    (site / "grades").mkdir()  # OUT made in a folder on the path that holds no distributions: no change
    monkeypatch.setattr(sandbox, "_resolved", {})
    assert sandbox.resolve_packages(sandbox.DEFAULT_PACKAGES) == first and len(calls) == 1
    (site / "extra-1.0.dist-info").mkdir()  # a distribution installed there
    monkeypatch.setattr(sandbox, "_resolved", {})
    assert sandbox.resolve_packages(sandbox.DEFAULT_PACKAGES) == first and len(calls) == 2
    os.utime(site, ns=(1, 1))  # another one installed, upgraded or removed there
    monkeypatch.setattr(sandbox, "_resolved", {})
    assert sandbox.resolve_packages(sandbox.DEFAULT_PACKAGES) == first and len(calls) == 3
    monkeypatch.setattr(sandbox, "_resolved", {})
    facts = json.loads(json.dumps(sandbox.package_facts(sandbox.DEFAULT_PACKAGES)))
    (stored,) = [path for path in cache.glob("packages-*.json") if json.loads(path.read_text())["facts"] == facts]
    data = json.loads(stored.read_text())
    data["value"]["entries"].append(["gone", str(tmp_path / "gone")])  # a folder removed since
    stored.write_text(json.dumps(data))
    assert sandbox.resolve_packages(sandbox.DEFAULT_PACKAGES) == first and len(calls) == 4


def test_the_text_read_back_is_the_text_of_the_checks_read_back(cache, monkeypatch):
    table = checks.load_config()
    compiled_text, compiled = checkcache.compiled_text_and_checks(SEED, None, table)
    monkeypatch.setattr(checkcache, "_memory", {})  # as a new process: read from the file, parsed once
    text, again = checkcache.compiled_text_and_checks(SEED, None, table, compile=refuse)
    assert text == compiled_text == checkcache.canonical(again) and again == compiled
    again[0]["id"] = "changed by a caller"  # each caller's copy is its own
    assert checkcache.compiled_checks(SEED, None, table, compile=refuse)[0]["id"] == compiled[0]["id"]


def test_whether_setarch_turns_off_address_randomisation_is_remembered(cache, monkeypatch):
    import subprocess

    from autograder import sandbox

    monkeypatch.setattr(sandbox, "_address_prefix", [])
    first = sandbox.address_prefix()
    monkeypatch.setattr(sandbox, "_address_prefix", [])  # a new process: read back, setarch not run
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("setarch run again"))
    assert sandbox.address_prefix() == first
    real = sandbox.trial_facts
    monkeypatch.setattr(sandbox, "trial_facts", lambda level: dict(real(level), kernel="another"))
    monkeypatch.setattr(sandbox, "_address_prefix", [])
    with pytest.raises(pytest.fail.Exception, match="setarch run again"):  # a new kernel: found again
        sandbox.address_prefix()


def test_the_workers_copy_of_probes_comes_with_bytecode_valid_for_it(tmp_path, monkeypatch):
    import importlib.util
    from importlib import _bootstrap_external

    from autograder import sandbox

    def valid(source, bytecode):
        stat = source.stat()
        _bootstrap_external._validate_timestamp_pyc(bytecode.read_bytes()[:16], int(stat.st_mtime),
                                                    stat.st_size, source.name, {})  # raises ImportError if stale
        return True

    module = tmp_path / "kit" / "probes.py"
    module.parent.mkdir()
    module.write_text("ANSWER = 42\n")
    copied = sandbox._copy_with_bytecode(module, tmp_path)  # no kit bytecode: compiled here
    assert valid(tmp_path / "probes.py", sandbox.Path(copied))
    kit_bytecode = sandbox.Path(importlib.util.cache_from_source(str(module)))
    kit_bytecode.parent.mkdir()
    kit_bytecode.write_bytes(sandbox.Path(copied).read_bytes())  # as pip's compile would leave it
    again = tmp_path / "again"
    again.mkdir()
    copied = sandbox._copy_with_bytecode(module, again)
    assert sandbox.Path(copied).read_bytes() == kit_bytecode.read_bytes() and valid(again / "probes.py", sandbox.Path(copied))
