"""PrairieLearn: an externally graded question, and what its entrypoint does in PrairieLearn's
grading container.

``build_question(DIR)`` (``autodiff101 prairielearn -o DIR``) writes the part of a course
repository the question needs; copy both folders into the course::

    DIR/questions/autodiff101/info.json          externalGradingOptions (image, entrypoint,
                                                 serverFilesCourse, timeout)
    DIR/questions/autodiff101/question.html      a pl-file-upload, and the results panel
    DIR/questions/autodiff101/tests/settings.json  the hidden checks' seed, the checks' hash
    DIR/questions/autodiff101/tests/checks.toml  points and visibility of this question
    DIR/serverFilesCourse/autodiff101/run.sh     the entrypoint
    DIR/serverFilesCourse/autodiff101/kit/       the autograder, solutions and assignments
                                                 packages, as the Gradescope zip carries them

PrairieLearn never shows a question's ``tests/`` to students; the kit in serverFilesCourse
can be shared by several questions (each with its own seed and checks.toml).

At grading time PrairieLearn mounts ``/grade`` (``ROOT``; ``AUTODIFF101_PRAIRIELEARN_ROOT``
says otherwise, which is how the tests run it): ``ROOT/student`` (the uploaded files),
``ROOT/tests``, ``ROOT/serverFilesCourse``. ``run(root)`` grades the upload as one
submission with ``grade.grade`` (the same loader, sandbox, checks and judge as
``autodiff101 grade``) and writes ``ROOT/results/results.json`` in PrairieLearn's format:
``score`` in [0, 1], ``message``, ``output``, ``tests: [{name, description, points,
max_points, message, output, images?}]``. Public checks show their detail (inputs, expected
values) and the picture of a failed gradient check; hidden and after-due-date checks show
only their message, which never carries inputs. What the submission printed is not shown
(hidden checks' inputs pass through its code). An upload the loader cannot read (nothing
uploaded, not a notebook, a syntax error, not UTF-8, an unsafe zip, engine.py without the
nn.py the handout provides when that cannot be filled in) is ``gradable: false`` with
``format_errors``, so the student loses no attempt; so is a fault of the grader itself, whether
Python failed or ``grade`` recorded a ``grader-fault`` (``extra_data.fault``), with a message to
contact the course staff (the reason goes to stdout, for staff). What the loader did is said in
the message: nn.py filled in from the handout, a notebook uploaded beside the .py files and not
graded.
Every field is capped and the whole file kept under ``LIMIT`` bytes.
"""
import base64
import json
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
import uuid
import zipfile
from pathlib import Path

from . import gradescope
from .. import load as loader
from .. import report

QUESTION = "autodiff101"  # the question's folder (its QID) and the serverFilesCourse folder
SETTINGS = "settings.json"
CONFIG = "checks.toml"
ROOT_VARIABLE = "AUTODIFF101_PRAIRIELEARN_ROOT"
IMAGE = "prairielearn/grader-python"  # python3 with nbformat and ipython: all the grading path imports
# PrairieLearn kills a job at this many seconds; a submission's own budget (sandbox.Limits:
# 30 s of top-level code, 120 s of checks) ends well before, so results are always written.
TIMEOUT = 180
LIMIT = 1_000_000  # bytes of results.json, PrairieLearn's limit
BUDGET = 900_000  # what we aim under, leaving room for PrairieLearn's own wrapping
CAPS = {"message": 4_000, "output": 16_000, "test_message": 2_000, "test_output": 8_000, "format_error": 2_000}
IMAGES_BUDGET = 400_000  # bytes of data URLs in one results.json
CONTACT_STAFF = ("The autograder itself failed on this submission (not your code's fault), so it was not "
                 "counted. Please contact the course staff.")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

RUN_SH = r"""#!/usr/bin/env bash
# PrairieLearn runs this once per submission inside its grading container.
ROOT="${AUTODIFF101_PRAIRIELEARN_ROOT:-/grade}"
PYTHON="${AUTODIFF101_PYTHON:-python3}"
KIT="$(cd "$(dirname "$0")" && pwd)/kit"
mkdir -p "$ROOT/results"
ROOT="$(cd "$ROOT" && pwd)"
# From the kit's folder: `python -m` puts the working folder first on sys.path, so the kit,
# not whatever folder PrairieLearn starts us in, is what runs.
cd "$KIT" || echo "autodiff101: no kit at $KIT"
PYTHONPATH="$KIT" "$PYTHON" -m autograder.platforms.prairielearn "$ROOT"
status=$?
if ! "$PYTHON" -c "import json,sys; json.load(open(sys.argv[1]))" "$ROOT/results/results.json" 2>/dev/null; then
  # Python itself failed before it could write results: still a valid results.json.
  echo "autodiff101: the grader exited with status $status before writing results"
  cat > "$ROOT/results/results.json" <<'JSON'
{"gradable": false, "format_errors": ["@CONTACT@"], "message": "@CONTACT@", "tests": []}
JSON
fi
exit 0
"""

QUESTION_HTML = """<pl-question-panel>
  <p>Upload your autodiff101 solution: the notebook <code>autodiff101.ipynb</code>, one <code>.py</code>
  file, the handout's <code>engine.py</code> (with <code>nn.py</code> if you changed it: otherwise the
  handout's own is used), or a <code>.zip</code> of them. Upload the notebook alone to have it graded.
  It is graded by the course's checks in a sandbox. Public checks show their inputs and expected values;
  hidden checks say what went wrong but not their inputs. An upload that cannot be read (not a notebook,
  a syntax error) is not counted as an attempt.</p>
  <pl-file-upload optional-file-patterns="*.ipynb, *.py, *.zip"></pl-file-upload>
</pl-question-panel>

<pl-submission-panel>
  <pl-external-grader-results></pl-external-grader-results>
  <pl-file-preview></pl-file-preview>
</pl-submission-panel>
"""


# --- building the question ------------------------------------------------------------------


def build_question(output, seed=None, config=None, checkout=None):
    """Write the question and its kit under ``output``; returns the question's folder.
    Raises ValueError for a bad ``config`` (now, not on PrairieLearn)."""
    from ..checks import DEFAULT_CONFIG, carry_errors
    from ..grade import checks_text_and_checks, fingerprint

    output = Path(output)
    question = output / "questions" / QUESTION
    server = output / "serverFilesCourse" / QUESTION
    previous = _read_json(question / "info.json")
    with tempfile.TemporaryDirectory(prefix="autodiff101-prairielearn-") as work:
        # The Gradescope zip already knows what the kit is: build it and take its kit.
        archive = gradescope.build_zip(Path(work) / "kit.zip", seed=seed, config=config, checkout=checkout)
        for folder in (question, server):
            shutil.rmtree(folder, ignore_errors=True)
        (question / "tests").mkdir(parents=True)
        (server / "kit").mkdir(parents=True)
        with zipfile.ZipFile(archive) as source:
            settings = json.loads(source.read(gradescope.SETTINGS))
            config_text = source.read("kit/autograder/checks.toml").decode()
            for member in source.infolist():
                if member.filename.startswith("kit/") and not member.is_dir():
                    target = server / member.filename
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(source.read(member))
    # The kit keeps the default configuration; this question's lives in its tests/.
    (server / "kit" / "autograder" / "checks.toml").write_text(DEFAULT_CONFIG.read_text())
    (question / "tests" / CONFIG).write_text(config_text)
    settings["checks_hash"] = fingerprint(checks_text_and_checks(settings["seed"], question / "tests" / CONFIG)[0],
                                          carry_errors(question / "tests" / CONFIG))
    (question / "tests" / SETTINGS).write_text(json.dumps(settings, indent=1) + "\n")
    run_sh = server / "run.sh"
    run_sh.write_text(RUN_SH.replace("@CONTACT@", CONTACT_STAFF))
    run_sh.chmod(0o755)
    (question / "question.html").write_text(QUESTION_HTML)
    info = {
        "uuid": previous.get("uuid") if isinstance(previous.get("uuid"), str) else str(uuid.uuid4()),
        "title": "autodiff101: reverse-mode autodiff, the micrograd way",
        "topic": "Autodiff",
        "tags": ["autodiff101", "code"],
        "type": "v3",
        "singleVariant": True,
        "gradingMethod": "External",
        "externalGradingOptions": {
            "enabled": True,
            "image": IMAGE,
            "serverFilesCourse": [f"{QUESTION}/"],
            "entrypoint": f"/grade/serverFilesCourse/{QUESTION}/run.sh",
            "timeout": TIMEOUT,
        },
    }
    (question / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    return question


def _read_json(path):
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# --- in PrairieLearn's container: grading one upload ------------------------------------------


def run(root):
    """Grade ``root/student`` into ``root/results/results.json``; always writes that file.
    Returns 0 when the grader worked, 1 on a fault of ours (results still written)."""
    root = Path(root)
    results = root / "results"
    results.mkdir(parents=True, exist_ok=True)
    try:
        data = grade_upload(root)
        status = 0
    except GraderFault as fault:  # grade recorded a fault of ours on this submission: staff see why
        print(f"autodiff101: the grader failed on this submission: {_cap(fault, CAPS['output'])}")
        data = fault_results()
        status = 1
    except Exception:
        print("autodiff101: the grader failed (this traceback is for staff):")
        traceback.print_exc(file=sys.stdout)
        data = fault_results()
        status = 1
    text = fit(data)
    report.write_atomic(results / "results.json", text)
    print(f"autodiff101: wrote {results / 'results.json'} ({len(text.encode())} bytes): "
          f"{'score ' + str(data.get('score')) if data.get('gradable', True) else 'not gradable'}")
    return status


class GraderFault(Exception):
    """``grade`` recorded a fault of the grader on the upload (status ``grader-fault``): the
    student gets CONTACT_STAFF, not a score of 0 that costs an attempt."""


def grade_upload(root):
    """PrairieLearn's results (a dict) for ``root/student``."""
    from ..grade import grade

    tests, student = root / "tests", root / "student"
    if tests.exists():
        tests.chmod(0o700)  # the seed of the hidden checks: only root reads it
    settings = json.loads((tests / SETTINGS).read_text())
    config = tests / CONFIG
    uploaded = [p for p in student.iterdir() if not p.name.startswith(".")] if student.is_dir() else []
    if not uploaded:
        return not_gradable("Nothing was uploaded: upload your notebook, a .py file, or engine.py and nn.py.")
    with tempfile.TemporaryDirectory(prefix="autodiff101-prairielearn-") as work:
        path = gradescope._submission_path(student, Path(work))
        loaded = loader.load(path)
        if loaded.sources == {} or loaded.status != "ok":
            return not_gradable(loaded.message or f"the upload could not be read ({loaded.status})")
        out = Path(work) / "out"
        started = time.monotonic()
        batch = grade([path], out=out, jobs=1, force=True, seed=settings["seed"],
                      config=config if config.exists() else None, isolation="auto")
        print(f"autodiff101: isolation {batch.isolation}, {time.monotonic() - started:.1f} s"
              + (f"; warning: {batch.warning}" if batch.warning else ""))
        if len(batch.rows) != 1:
            raise RuntimeError(f"expected one graded submission, got {len(batch.rows)}")
        id = batch.rows[0]["id"]
        graded = report.read_results(out, id)
        if graded is None:
            raise RuntimeError(f"no results.json for {id!r}")
        extra = graded["extra_data"]
        if extra.get("status") == "grader-fault" or extra.get("fault"):
            raise GraderFault(extra.get("fault") or "status grader-fault")
        if settings.get("checks_hash") not in (None, graded["extra_data"].get("checks_hash")):
            print("autodiff101: warning: the kit in serverFilesCourse is not the one this question was built "
                  "with; rebuild it with autodiff101 prairielearn")
        return from_results(graded, out / id)


def from_results(graded, folder=None):
    """PrairieLearn's results from a results.json ``grade`` wrote (report.results_json) and
    the submission's folder in OUT (for the graph pictures)."""
    extra = graded["extra_data"]
    public_words = report.GRADESCOPE_VISIBILITY["public"]
    tests = []
    for test in graded["tests"]:
        public = test["visibility"] == public_words
        check = test.get("extra_data", {}).get("check", "")
        # report.results_json writes the verdict's message, then (public checks only) its detail.
        message, _, detail = test["output"].partition("\n")
        entry = {
            "name": _cap(test["name"], 300),
            "description": (f"exercise {test.get('extra_data', {}).get('exercise', '')}"
                            + ("" if public else "; a hidden check: its inputs are not shown")),
            "points": test["score"],
            "max_points": test["max_score"],
            "message": _cap(message, CAPS["test_message"]),
            "output": _cap(detail, CAPS["test_output"]) if public else "",
        }
        picture = _picture(folder, check) if public and folder and test["status"] == "failed" else None
        if picture:
            entry["images"] = [picture]
        tests.append(entry)
    possible = extra.get("max_score") or sum(t["max_points"] for t in tests)
    notes = [f"- {note}" for note in extra.get("notes", [])]
    output = "\n".join(["While your code's top level ran:", *notes] if notes else [])
    return {
        "gradable": True,
        "score": min(max(graded["score"] / possible, 0.0), 1.0) if possible else 0.0,
        "message": _cap(graded["output"], CAPS["message"]),
        "output": _cap(output, CAPS["output"]),
        "tests": tests,
    }


def _picture(folder, check):
    """The graph feedback picture of a failed public check as an image entry, or None."""
    path = Path(folder) / "graphs" / f"{check}.svg"
    if not check or not path.is_file():
        return None
    url = "data:image/svg+xml;base64," + base64.b64encode(path.read_bytes()).decode()
    return {"label": f"graph of {check}: your gradients and the expected ones", "url": url}


def not_gradable(reason):
    reason = _cap(reason, CAPS["format_error"])
    return {"gradable": False, "format_errors": [reason],
            "message": "Your upload could not be read, so it was not graded and does not count as an attempt.",
            "output": "", "tests": []}


def fault_results():
    return {"gradable": False, "format_errors": [CONTACT_STAFF], "message": CONTACT_STAFF, "output": "", "tests": []}


def _cap(text, limit):
    """Untrusted text made safe to show: no control characters but newlines and tabs, at most
    ``limit`` characters."""
    text = _CONTROL.sub("?", str(text))
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n… ({len(text) - limit} more characters not shown)"


def fit(data):
    """results.json's text, under BUDGET bytes: images beyond IMAGES_BUDGET are dropped, and
    if it is still too big, every test's output, then its message, is cut harder."""
    images = [(test, image) for test in data.get("tests", []) for image in test.get("images", [])]
    spent = 0
    for test, image in images:
        spent += len(image["url"])
        if spent > IMAGES_BUDGET:
            test["images"].remove(image)
    for test in data.get("tests", []):
        if "images" in test and not test["images"]:
            del test["images"]
    text = json.dumps(data)
    for field, limit in (("images", 0), ("output", 1_000), ("message", 300), ("output", 0)):
        if len(text.encode()) <= BUDGET:
            break
        for test in data.get("tests", []):
            if field == "images":
                test.pop("images", None)
            else:
                test[field] = _cap(test.get(field, ""), limit)
        data["output"] = _cap(data.get("output", ""), 2_000)
        text = json.dumps(data)
    if len(text.encode()) > BUDGET:  # cannot happen with the caps above; never send an oversized file
        text = json.dumps(fault_results())
    return text + "\n"


def command(output, seed=None, config=None):
    """``autodiff101 prairielearn``: the exit code (2 for a bad --config)."""
    try:
        question = build_question(output, seed=seed, config=config)
    except (ValueError, OSError) as error:
        print(f"autodiff101 prairielearn: {error}", file=sys.stderr)
        return 2
    seed = json.loads((question / "tests" / SETTINGS).read_text())["seed"]
    print(f"wrote {question} and {Path(output) / 'serverFilesCourse' / QUESTION}; hidden checks' seed {seed}; "
          "copy both into your course repository")
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1] if len(sys.argv) > 1 else os.environ.get(ROOT_VARIABLE, "/grade")))
