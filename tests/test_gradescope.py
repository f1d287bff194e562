"""The Gradescope autograder zip, run as Gradescope runs it: unpacked into a simulated
/autograder root (AUTODIFF101_GRADESCOPE_ROOT), setup.sh once, run_autograder per submission.
Every results.json it writes must validate against Gradescope's format (DESIGN.md §5)."""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest

from autograder import checks, examples, sandbox
from autograder.platforms import gradescope
from mutants import MUTANTS, SEED, write

REPO = Path(__file__).resolve().parents[1]
VISIBILITIES = ["hidden", "after_due_date", "after_published", "visible"]

# Gradescope's results.json, as DESIGN.md §5 describes it.
RESULTS_SCHEMA = {
    "type": "object",
    "required": ["execution_time", "output", "tests"],
    "properties": {
        "score": {"type": "number", "minimum": 0},
        "execution_time": {"type": "number", "minimum": 0},
        "output": {"type": "string"},
        "output_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
        "visibility": {"enum": VISIBILITIES},
        "stdout_visibility": {"enum": VISIBILITIES},
        "extra_data": {"type": "object"},
        "leaderboard": {"type": "array"},
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "score", "max_score", "status", "output", "visibility"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "number": {"type": "string"},
                    "score": {"type": "number", "minimum": 0},
                    "max_score": {"type": "number", "minimum": 0},
                    "status": {"enum": ["passed", "failed"]},
                    "output": {"type": "string"},
                    "output_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "visibility": {"enum": VISIBILITIES},
                    "extra_data": {"type": "object"},
                },
            },
        },
    },
}


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory):
    return gradescope.build_zip(tmp_path_factory.mktemp("zip") / "autograder.zip", seed=SEED)


def environment(root, **extra):
    variables = dict(os.environ, AUTODIFF101_GRADESCOPE_ROOT=str(root), AUTODIFF101_PYTHON=sys.executable,
                     AUTODIFF101_SETUP_SKIP_INSTALL="1")
    return variables | extra


@pytest.fixture
def gradescope_root(tmp_path, autograder_zip):
    """/autograder as Gradescope lays it out: the zip in source/, setup.sh already run."""
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    with zipfile.ZipFile(autograder_zip) as archive:
        archive.extractall(root / "source")
    for script in ("setup.sh", "run_autograder"):  # extractall drops the mode bits
        (root / "source" / script).chmod(0o755)
    done = subprocess.run(["bash", str(root / "source" / "setup.sh")], env=environment(root),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "the kit imports" in done.stdout
    return root


def run_autograder(root, **extra):
    """Run the zip's run_autograder; (results.json as a dict, stdout)."""
    done = subprocess.run([str(root / "source" / "run_autograder")], env=environment(root, **extra),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(results, RESULTS_SCHEMA)
    return results, done.stdout


def failed_checks(results):
    return {t["extra_data"]["check"] for t in results["tests"] if t["status"] == "failed"}


def test_zip_root_holds_the_scripts_and_the_kit(autograder_zip):
    with zipfile.ZipFile(autograder_zip) as archive:
        names = set(archive.namelist())
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
    assert {"setup.sh", "run_autograder", "settings.json"} <= names
    assert modes["run_autograder"] & 0o111 and modes["setup.sh"] & 0o111
    assert {"kit/pyproject.toml", "kit/autograder/grade.py", "kit/autograder/checks.toml",
            "kit/solutions/engine.py"} <= names
    assert not any("__pycache__" in name for name in names)


def test_reference_gets_full_marks_with_each_checks_visibility(gradescope_root):
    for name in examples.PACKAGE_FILES:
        (gradescope_root / "submission" / name).write_text((REPO / "solutions" / name).read_text())
    results, _ = run_autograder(gradescope_root)
    assert results["score"] == 100
    assert failed_checks(results) == set()
    assert results["extra_data"]["isolation"] == sandbox.strongest_level()
    assert results["extra_data"]["seed"] == SEED
    config = checks.load_config()
    gradescope_words = {"public": "visible", "hidden": "hidden", "after_due_date": "after_due_date"}
    for test in results["tests"]:
        assert test["visibility"] == gradescope_words[config[test["extra_data"]["check"]]["visibility"]]
    assert {t["visibility"] for t in results["tests"]} >= {"visible", "hidden"}
    # The worker's user cannot read the kit, the seed or the check configuration.
    assert (gradescope_root / "source").stat().st_mode & 0o077 == 0


def test_uploaded_folder_is_graded_as_one_submission(gradescope_root):
    folder = gradescope_root / "submission" / "my-autodiff"
    folder.mkdir()
    (folder / "autodiff.py").write_text(examples.one_module())
    results, _ = run_autograder(gradescope_root)
    assert results["score"] == 100


def test_untouched_handout_loses_every_unimplemented_check(gradescope_root):
    for name in examples.PACKAGE_FILES:
        (gradescope_root / "submission" / name).write_text((REPO / "assignments" / name).read_text())
    results, _ = run_autograder(gradescope_root)
    assert results["extra_data"]["status"] == "graded"
    assert results["score"] == 0  # what the handout provides is worth 0 points by default (checks.toml)
    not_implemented = [t for t in results["tests"] if "not-implemented" in t["extra_data"]["diagnoses"]]
    assert not_implemented and all(t["score"] == 0 for t in not_implemented)


def test_mutant_fails_exactly_its_checks(gradescope_root):
    mutant = MUTANTS["add-assigns-grad"]
    write(mutant, gradescope_root / "submission")
    results, _ = run_autograder(gradescope_root)
    # Error carried forward (on by default): the mistake costs its own exercise (add) and the
    # training outcome; every other check it fails is carried, and says so in its extra_data.
    assert failed_checks(results) == {"add-same-node-step", "add-same-node", "training-converges"}
    carried = {t["extra_data"]["check"] for t in results["tests"] if t["extra_data"].get("carried")}
    assert carried | failed_checks(results) == set(mutant.fails)
    assert results["score"] == sum(t["score"] for t in results["tests"]) < 100


def test_hostile_submission_cannot_write_its_own_results(gradescope_root):
    forged = json.dumps({"score": 1000, "output": "forged", "tests": []})
    hostile = f'''
import os
for folder in ("/autograder/results", {str(gradescope_root / "results")!r}):
    try:
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "results.json"), "w") as stream:
            stream.write({forged!r})
        print("wrote", folder)
    except OSError as error:
        print("refused", folder, error)
for secret in ({str(gradescope_root / "source" / "settings.json")!r},):
    try:
        print("read", open(secret).read())
    except OSError as error:
        print("refused", secret, error)
'''
    bug = examples.BUGS["add-assigns-grad"][1]
    (gradescope_root / "submission" / "hostile.py").write_text(
        examples.patched(examples.one_module(), bug) + hostile)
    before = Path("/autograder/results/results.json")
    existed = before.exists()
    results, stdout = run_autograder(gradescope_root)
    assert results["extra_data"]["status"] == "graded"
    assert results["score"] < 100 and "forged" not in json.dumps(results)
    assert "accumulate-grad" in {d for t in results["tests"] for d in t["extra_data"]["diagnoses"]}
    # Not written by this submission (test_hostile's rlimits batch, run beside this test by
    # pytest-xdist, may forge the same path with its own text: that one is not ours to judge).
    assert existed or not before.exists() or "forged" not in before.read_text(errors="replace")
    # Its writes, if the sandbox lets them happen at all, land in the sandbox's own
    # throwaway filesystem; the kit's settings (the hidden checks' seed) stay unreadable.
    assert f"refused {gradescope_root / 'source' / 'settings.json'}" in stdout
    assert '"seed"' not in stdout


def test_corrupt_notebook_scores_zero_with_a_reason(gradescope_root):
    (gradescope_root / "submission" / "autodiff101.ipynb").write_text('{"cells": [ this is not json')
    results, _ = run_autograder(gradescope_root)
    assert results["score"] == 0
    assert results["extra_data"]["status"] == "load-error"
    assert "autodiff101.ipynb" in results["output"]
    assert all(t["score"] == 0 for t in results["tests"])


def test_grader_fault_asks_student_to_contact_staff(gradescope_root):
    (gradescope_root / "source" / "settings.json").write_text("{ not json")
    (gradescope_root / "submission" / "submission.py").write_text(examples.one_module())
    results, stdout = run_autograder(gradescope_root)
    assert results["score"] == 0 and results["tests"] == []
    assert "contact the course staff" in results["output"]
    assert "Traceback" not in results["output"] and "Traceback" in stdout
    assert results["stdout_visibility"] == "hidden"


def test_results_written_even_when_python_cannot_start(gradescope_root):
    (gradescope_root / "submission" / "submission.py").write_text(examples.one_module())
    results, _ = run_autograder(gradescope_root, AUTODIFF101_PYTHON="/bin/false")
    assert results["score"] == 0 and "contact the course staff" in results["output"]


def test_cli_builds_the_zip(tmp_path):
    from autograder.cli import main

    assert main(["gradescope", "-o", str(tmp_path / "a.zip"), "--seed", "7"]) == 0
    with zipfile.ZipFile(tmp_path / "a.zip") as archive:
        assert json.loads(archive.read("settings.json")) == {"seed": 7}
    bad = tmp_path / "bad.toml"
    bad.write_text("[checks]\nno-such-check = { points = 1, visibility = 'public' }\n")
    assert main(["gradescope", "-o", str(tmp_path / "b.zip"), "--config", str(bad)]) == 2


def test_a_fault_while_grading_the_submission_still_gives_valid_results(gradescope_root, monkeypatch, capsys):
    """In process (to inject the fault): the student is told to contact staff, staff see why."""
    from autograder import grade

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the grader")

    monkeypatch.setattr(grade, "grade_submission", broken)
    (gradescope_root / "submission" / "submission.py").write_text(examples.one_module())
    assert gradescope.run(gradescope_root) == 1
    results = json.loads((gradescope_root / "results" / "results.json").read_text())
    jsonschema.validate(results, RESULTS_SCHEMA)
    assert results["score"] == 0 and results["tests"] and all(t["score"] == 0 for t in results["tests"])
    assert "contact the course staff" in results["output"] and "a bug" not in results["output"]
    assert "RuntimeError: a bug in the grader" in capsys.readouterr().out


def test_folders_nested_1100_deep_are_the_students_rejection_not_a_fault(gradescope_root):
    """Looking into a folder alone in its folder recursed once per level: 1,100 of them under
    submission/ raised RecursionError and the student read that the autograder itself failed.
    Now the student reads that the folder holds no code."""
    from autograder.sandbox import remove_tree

    path = gradescope_root / "submission"
    for _ in range(1_100):
        path = path / "d"
        path.mkdir()
    (path / "mine.py").write_text(examples.one_module())
    try:
        results, _ = run_autograder(gradescope_root)
    finally:
        remove_tree(gradescope_root / "submission")  # pytest's own clean-up recurses once per level
    assert results["extra_data"]["status"] == "rejected"
    assert "holds no .py file or .ipynb notebook, only the folder d/" in results["output"]
    assert "contact the course staff" not in results["output"]


def test_an_upload_that_is_a_link_to_a_folder_scores_nothing(gradescope_root, tmp_path):
    """submission/ holding only a link to a folder whose one entry is the reference: the
    link was followed and the reference graded, 100/100. Now the link is refused."""
    target = tmp_path / "elsewhere"
    (target / "alice").mkdir(parents=True)
    (target / "alice" / "alice.py").write_text(examples.one_module())
    (gradescope_root / "submission" / "x").symlink_to(target, target_is_directory=True)
    results, _ = run_autograder(gradescope_root)
    assert results["score"] == 0 and results["extra_data"]["status"] == "rejected"
    assert "symbolic link" in results["output"]
