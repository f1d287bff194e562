"""What a test cell of an exported notebook runs inside the student's kernel.

A test cell holds one compiled check frozen to JSON and calls ``assert_check`` with the
kernel's globals: the probe and the judge run right there (``inprocess.run_check``), and
a failed verdict becomes an AssertionError, which nbgrader and otter-grader both read as a
failed test. Nothing is written to stderr: nbgrader scores a test cell 0 when it is.
"""
import io
import json
import warnings
from contextlib import redirect_stderr, redirect_stdout

from .. import inprocess
from ..judge import DIAGNOSES

FAILED = "check {id} failed"  # the start of every failure message; graders' reports are parsed by it


def assert_check(env, frozen):
    """Run the check ``frozen`` (a compiled check as JSON text, or its dict) on the names in
    ``env``; raise AssertionError with what went wrong when it does not pass."""
    check = json.loads(frozen) if isinstance(frozen, str) else frozen
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the student's prints and warnings are not the test's output
        verdict = inprocess.run_check(env, check)
    if not verdict.passed:
        raise AssertionError(failure_message(check, verdict))


def failure_message(check, verdict):
    """The title, what went wrong, and for public checks the detail (inputs, expected values)."""
    lines = [f"{FAILED.format(id=check['id'])}: {check['title']}", verdict.message]
    if check.get("visibility") == "public" and verdict.detail:
        lines.append(verdict.detail)
    hints = [DIAGNOSES[d] for d in verdict.diagnoses[1:] if d in DIAGNOSES]  # the first is in the message
    lines += hints
    if verdict.diagnoses:
        lines.append(f"(diagnosis: {', '.join(verdict.diagnoses)})")
    return "\n".join(line for line in lines if line)
