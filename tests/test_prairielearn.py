"""The PrairieLearn question, run as PrairieLearn runs it: its tests/ and serverFilesCourse/
copied into a simulated /grade root (AUTODIFF101_PRAIRIELEARN_ROOT), the upload in
/grade/student, the entrypoint run once per submission. Every results.json it writes must
validate against PrairieLearn's documented format and stay under 1 MB."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from autograder import examples
from autograder.platforms import prairielearn
from mutants import MUTANTS, SEED, write

REPO = Path(__file__).resolve().parents[1]

# PrairieLearn's results.json, as its external grading documentation describes it: score in
# [0, 1] unless the submission is not gradable, which then says why in format_errors; images
# as data URLs (an object with url and label, or the bare URL); under 1 MB.
IMAGE = {"oneOf": [
    {"type": "string", "pattern": "^data:image/"},
    {"type": "object", "required": ["url"], "additionalProperties": False,
     "properties": {"url": {"type": "string", "pattern": "^data:image/[a-z0-9.+-]+;base64,[A-Za-z0-9+/=]+$"},
                    "label": {"type": "string"}}},
]}
RESULTS_SCHEMA = {
    "type": "object",
    "properties": {
        "gradable": {"type": "boolean"},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "format_errors": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "message": {"type": "string"},
        "output": {"type": "string"},
        "images": {"type": "array", "items": IMAGE},
        "tests": {"type": "array", "items": {
            "type": "object",
            "required": ["name", "points", "max_points"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "description": {"type": "string"},
                "points": {"type": "number", "minimum": 0},
                "max_points": {"type": "number", "minimum": 0},
                "message": {"type": "string"},
                "output": {"type": "string"},
                "images": {"type": "array", "items": IMAGE},
            },
        }},
    },
    "if": {"required": ["gradable"], "properties": {"gradable": {"const": False}}},
    "then": {"required": ["format_errors"]},
    "else": {"required": ["score"]},
}


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    folder = tmp_path_factory.mktemp("course")
    prairielearn.build_question(folder, seed=SEED)
    return folder


@pytest.fixture
def grade_root(tmp_path, course):
    """/grade as PrairieLearn lays it out for one job."""
    root = tmp_path / "grade"
    (root / "student").mkdir(parents=True)
    shutil.copytree(course / "questions" / prairielearn.QUESTION / "tests", root / "tests")
    shutil.copytree(course / "serverFilesCourse" / prairielearn.QUESTION,
                    root / "serverFilesCourse" / prairielearn.QUESTION)
    return root


def run_entrypoint(root, **extra):
    """Run info.json's entrypoint against ``root``; (results.json as a dict, stdout)."""
    entrypoint = root / "serverFilesCourse" / prairielearn.QUESTION / "run.sh"
    environment = dict(os.environ, AUTODIFF101_PRAIRIELEARN_ROOT=str(root), AUTODIFF101_PYTHON=sys.executable)
    # PrairieLearn's own environment: the image puts /grade/serverFilesCourse on PYTHONPATH.
    environment["PYTHONPATH"] = str(root / "serverFilesCourse")
    done = subprocess.run(["bash", str(entrypoint)], env=environment | extra, capture_output=True, text=True,
                          timeout=600)  # wide: six graders share two cores; the job's own budget is 150 s
    assert done.returncode == 0, done.stderr
    text = (root / "results" / "results.json").read_text()
    assert len(text.encode()) < prairielearn.LIMIT
    results = json.loads(text)
    jsonschema.validate(results, RESULTS_SCHEMA)
    return results, done.stdout


def failed(results):
    return [t for t in results["tests"] if t["points"] < t["max_points"]]


def test_question_folder_has_info_upload_and_kit(course):
    question = course / "questions" / prairielearn.QUESTION
    info = json.loads((question / "info.json").read_text())
    options = info["externalGradingOptions"]
    assert info["gradingMethod"] == "External" and info["type"] == "v3" and options["enabled"]
    assert options["image"] == "prairielearn/grader-python"
    assert options["serverFilesCourse"] == [f"{prairielearn.QUESTION}/"]
    assert options["entrypoint"] == f"/grade/serverFilesCourse/{prairielearn.QUESTION}/run.sh"
    assert 0 < options["timeout"] <= 600  # PrairieLearn's maximum
    assert "<pl-file-upload" in (question / "question.html").read_text()
    assert "<pl-external-grader-results>" in (question / "question.html").read_text()
    assert json.loads((question / "tests" / "settings.json").read_text())["seed"] == SEED
    kit = course / "serverFilesCourse" / prairielearn.QUESTION
    assert (kit / "run.sh").stat().st_mode & 0o111
    for name in ("autograder/grade.py", "autograder/platforms/prairielearn.py", "solutions/engine.py",
                 "assignments/engine.py", "pyproject.toml"):
        assert (kit / "kit" / name).is_file(), name
    assert not list(kit.rglob("__pycache__"))


def test_rebuilding_keeps_the_question_uuid(tmp_path):
    first = prairielearn.build_question(tmp_path, seed=1)
    uuid = json.loads((first / "info.json").read_text())["uuid"]
    second = prairielearn.build_question(tmp_path, seed=2)
    assert json.loads((second / "info.json").read_text())["uuid"] == uuid
    assert json.loads((second / "tests" / "settings.json").read_text())["seed"] == 2


def test_reference_scores_one_and_hides_hidden_details(grade_root):
    for name in examples.PACKAGE_FILES:
        (grade_root / "student" / name).write_text((REPO / "solutions" / name).read_text())
    results, stdout = run_entrypoint(grade_root)
    assert results["gradable"] is True and results["score"] == 1
    assert not failed(results)
    hidden = [t for t in results["tests"] if "hidden check" in t["description"]]
    assert hidden and all(t["output"] == "" for t in hidden)
    assert sum(t["max_points"] for t in results["tests"]) == 100
    assert "isolation" in stdout


def test_untouched_handout_is_gradable_and_scores_zero(grade_root):
    for name in examples.PACKAGE_FILES:
        (grade_root / "student" / name).write_text((REPO / "assignments" / name).read_text())
    results, _ = run_entrypoint(grade_root)
    assert results["gradable"] is True
    assert results["score"] == 0  # by default only the student's own exercises carry points
    assert any("not written yet" in t["message"] or "NotImplementedError" in t["message"] for t in failed(results))


def test_mutant_fails_its_checks_with_a_picture(grade_root):
    mutant = MUTANTS["add-assigns-grad"]
    write(mutant, grade_root / "student")
    results, _ = run_entrypoint(grade_root)
    assert results["gradable"] is True and 0 < results["score"] < 1
    # Error carried forward (on by default) keeps the points of the checks its mistake only
    # propagates to: the add exercise's checks and training-converges still fail.
    assert len(failed(results)) == len({"add-same-node-step", "add-same-node", "training-converges"}) < len(mutant.fails)
    if shutil.which("dot"):  # graph pictures need graphviz
        images = [i for t in failed(results) for i in t.get("images", [])]
        assert images and all(i["url"].startswith("data:image/svg+xml;base64,") for i in images)
    # Pictures only for public checks: a hidden check's graph would show its inputs.
    assert not any("images" in t for t in results["tests"] if "hidden check" in t["description"])


HOSTILE_TOP_LEVEL = '''
import sys
sys.stdout.write("x" * 10_000_000)
raise RuntimeError("y" * 5_000_000)
'''

HOSTILE_CHECKS = '''
import sys
sys.stdout.write("x" * 10_000_000)
_mul = Value.__mul__


def _loud_mul(self, other):
    print("z" * 1_000_000)
    if isinstance(other, Value) and other.data == 3.0:
        raise ValueError("w" * 5_000_000)
    return _mul(self, other)


Value.__mul__ = _loud_mul
'''


@pytest.mark.parametrize("tail", [HOSTILE_TOP_LEVEL, HOSTILE_CHECKS], ids=["raises-at-top-level", "raises-in-checks"])
def test_hostile_output_keeps_results_small(grade_root, tail):
    (grade_root / "student" / "hostile.py").write_text(examples.one_module() + tail)
    results, stdout = run_entrypoint(grade_root)
    assert results["gradable"] is True and results["score"] < 1
    text = json.dumps(results)
    assert "x" * 1000 not in text and "z" * 1000 not in text  # what it printed is never shown
    assert "y" * 3000 not in text and "w" * 3000 not in text  # its messages are capped
    assert len(stdout) < 100_000


def test_corrupt_notebook_is_not_gradable(grade_root):
    (grade_root / "student" / "autodiff101.ipynb").write_text('{"cells": [ this is not json')
    results, _ = run_entrypoint(grade_root)
    assert results["gradable"] is False and "score" not in results
    assert "autodiff101.ipynb" in results["format_errors"][0]
    assert results["tests"] == []


def test_nothing_uploaded_is_not_gradable(grade_root):
    results, _ = run_entrypoint(grade_root)
    assert results["gradable"] is False
    assert "Nothing was uploaded" in results["format_errors"][0]


def test_grader_fault_costs_no_attempt_and_shows_no_traceback(grade_root):
    (grade_root / "tests" / "settings.json").write_text("{ not json")
    (grade_root / "student" / "submission.py").write_text(examples.one_module())
    results, stdout = run_entrypoint(grade_root)
    assert results["gradable"] is False and "contact the course staff" in results["message"]
    assert "Traceback" not in json.dumps(results) and "Traceback" in stdout


def test_results_written_even_when_python_cannot_start(grade_root):
    (grade_root / "student" / "submission.py").write_text(examples.one_module())
    results, _ = run_entrypoint(grade_root, AUTODIFF101_PYTHON="/bin/false")
    assert results["gradable"] is False and "contact the course staff" in results["message"]


def test_fit_keeps_any_results_under_the_limit():
    image = {"label": "g", "url": "data:image/svg+xml;base64," + "A" * 300_000}
    tests = [{"name": f"t{i}", "description": "", "points": 0, "max_points": 1, "message": "m" * 2_000,
              "output": "o" * 8_000, "images": [dict(image)]} for i in range(200)]
    data = {"gradable": True, "score": 0.0, "message": "", "output": "", "tests": tests}
    text = prairielearn.fit(data)
    assert len(text.encode()) < prairielearn.BUDGET
    results = json.loads(text)
    jsonschema.validate(results, RESULTS_SCHEMA)
    assert len(results["tests"]) == 200  # every test is still listed, its text cut


def test_cli_writes_the_question(tmp_path):
    from autograder.cli import main

    assert main(["prairielearn", "-o", str(tmp_path / "course"), "--seed", "7"]) == 0
    settings = tmp_path / "course" / "questions" / prairielearn.QUESTION / "tests" / "settings.json"
    assert json.loads(settings.read_text())["seed"] == 7
    bad = tmp_path / "bad.toml"
    bad.write_text("[checks]\nno-such-check = { points = 1, visibility = 'public' }\n")
    assert main(["prairielearn", "-o", str(tmp_path / "other"), "--config", str(bad)]) == 2


def test_engine_alone_is_graded_with_the_handouts_nn(grade_root):
    """Every exercise is in engine.py; nn.py is the handout's code: uploading engine.py alone
    scores as the whole handout would, and says where nn.py came from."""
    (grade_root / "student" / "engine.py").write_text((REPO / "solutions" / "engine.py").read_text())
    results, _ = run_entrypoint(grade_root)
    assert results["gradable"] is True and results["score"] == 1
    assert "nn.py not handed in: the handout's own was used" in results["message"]


def test_engine_alone_without_the_handouts_nn_costs_no_attempt(grade_root):
    """When the kit's handout has no nn.py to give (here: one with an exercise in it), the
    upload is not gradable and the student is told to upload nn.py too."""
    kit = grade_root / "serverFilesCourse" / prairielearn.QUESTION / "kit"
    (kit / "assignments" / "nn.py").write_text("class Neuron:\n    # TODO exercise neuron: write it\n    pass\n")
    (grade_root / "student" / "engine.py").write_text((REPO / "solutions" / "engine.py").read_text())
    results, _ = run_entrypoint(grade_root)
    assert results["gradable"] is False and "score" not in results
    assert "upload nn.py too" in results["format_errors"][0]


def test_notebook_beside_the_modules_is_named_as_not_graded(grade_root):
    for name in examples.PACKAGE_FILES:
        (grade_root / "student" / name).write_text((REPO / "solutions" / name).read_text())
    import nbformat

    scratch = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1  # the student's own work")])
    nbformat.write(scratch, grade_root / "student" / "autodiff101.ipynb")
    results, _ = run_entrypoint(grade_root)
    assert results["gradable"] is True and results["score"] == 1  # the .py files, not the notebook
    assert "autodiff101.ipynb not graded" in results["message"]
    # the untouched handout notebook beside them loses nothing: no note
    shutil.copy(REPO / "assignments" / "autodiff101.ipynb", grade_root / "student" / "autodiff101.ipynb")
    results, _ = run_entrypoint(grade_root)
    assert results["score"] == 1 and "not graded" not in results["message"]


def test_fault_recorded_while_grading_is_not_gradable_and_asks_for_staff(grade_root, monkeypatch, capsys):
    """In process (to inject the fault): grade records a grader-fault for the upload; the
    student is told to contact staff and loses no attempt, staff see the reason on stdout."""
    from autograder import grade

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the grader")

    monkeypatch.setattr(grade, "grade_submission", broken)
    (grade_root / "student" / "submission.py").write_text(examples.one_module())
    assert prairielearn.run(grade_root) == 1
    results = json.loads((grade_root / "results" / "results.json").read_text())
    jsonschema.validate(results, RESULTS_SCHEMA)
    assert results["gradable"] is False and "score" not in results and results["tests"] == []
    assert "contact the course staff" in results["message"] and "a bug" not in json.dumps(results)
    assert "RuntimeError: a bug in the grader" in capsys.readouterr().out
