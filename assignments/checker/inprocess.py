"""Run compiled checks in this process: for the self-check, the in-kernel exports and tests.

The sandboxed grader runs the probe in a worker and the judge outside it; here both halves
run side by side, on the same compiled checks (plain dicts, see ``checks.compile_checks``).
A probe that raises becomes a failed verdict through ``judge.judge_failure``, the one place
that turns an exception into a verdict for every mode.
"""
import dataclasses
import gc
import io
import json
import signal
import sys
import threading
import warnings
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

from . import judge, probes


class CheckTimeout(Exception):
    """The probe ran past its check's timeout."""


def load(directory):
    """The implementation's names in ``directory`` and None, or None and the failure
    (``probes.failure`` form) that kept it from loading or the names it lacks."""
    _forget_modules_of(directory)  # a submission loaded before may have the same module names
    try:
        ns = probes.namespace(directory)
    except BaseException as exc:  # a submission may raise anything, SystemExit included
        if isinstance(exc, KeyboardInterrupt):
            raise
        return None, probes.failure(exc)
    missing = probes.missing_names(ns)
    if missing:
        return None, {"error": "NameError", "message": f"not defined: {', '.join(missing)}", "where": None}
    return ns, None


_LOADED_FROM = set()  # folders this process has loaded implementations from


def _forget_modules_of(directory):
    """Drop the modules an earlier in-process load left behind (the submission package,
    plain ``engine``/``nn`` modules of the handout's layout), so that this load runs this
    submission's code, not a cached module of the same name."""
    _LOADED_FROM.add(str(Path(directory).resolve()))
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None) or ""
        if name == "submission" or name.startswith("submission.") or any(
            path.startswith(folder + "/") for folder in _LOADED_FROM
        ):
            del sys.modules[name]


def load_failed(check, failure):
    """The verdict for every check of a submission that did not load."""
    return judge.fail(f"the submission did not load ({failure['error']})",
                      f"{failure['error']}: {failure['message']}", ["load-error"])


def observe(ns, check, timeouts=True):
    """Run a compiled check's probe on ``ns``: ("observed", JSON) or ("failed", verdict)."""
    phases = [""]
    collecting = gc.isenabled()
    gc.disable()  # graphs are reference cycles: collect once afterwards, not during the build
    try:
        with _time_limit(check["timeout"] if timeouts else None):
            return "observed", probes.run(ns, check["probe"], check["params"], phase=phases.append)
    except CheckTimeout:
        return "failed", judge.judge_failure(check, {"error": "Timeout", "message": "", "where": None}, phases[-1])
    except Exception as exc:  # the probe's exception is the student's: report it, go on
        return "failed", judge.judge_failure(check, probes.failure(exc), phases[-1])
    finally:
        if collecting:
            gc.enable()


def run_check(ns, check, timeouts=True, observation=None):
    """One compiled check against the names in ``ns``: a judge.Verdict, diagnosed as a
    submission of that one check (``judge.diagnose_submission``). ``observation`` is
    observe()'s result when the probe has run already."""
    outcome, value = observation or observe(ns, check, timeouts)
    (verdict,) = judge.diagnose_submission([_judged(check, outcome, value)])
    return verdict


def _judged(check, outcome, value):
    """(check, observation or None, verdict) for judge.diagnose_submission."""
    if outcome == "failed":
        return check, None, value
    return check, value, judge.judge(check["judge"], value, check["expected"], check["params"])


def run_checks(ns, compiled, timeouts=True, carry_errors=False):
    """Every compiled check against the names in ``ns``; a list of (check, verdict) in
    the order of ``compiled``, diagnosed as one submission. Checks that ask the same probe
    the same question (the two training checks) share one run of it. ``carry_errors``:
    mistakes carried forward as the grader carries them (``carry.py``, instructor-side:
    it needs the misconception models)."""
    seen = {}
    results = []
    for check in compiled:
        question = json.dumps([check["probe"], check["params"]], sort_keys=True)
        if question not in seen:
            seen[question] = observe(ns, check, timeouts)
        outcome, value = seen[question]
        if outcome == "failed":
            value = dataclasses.replace(value, diagnoses=list(value.diagnoses))  # one verdict per check
        results.append(_judged(check, outcome, value))
    verdicts = judge.diagnose_submission(results)
    if carry_errors:
        from . import carry

        verdicts = carry.carry_verdicts([(check, observed, verdict)
                                         for (check, observed, _), verdict in zip(results, verdicts)])
    return list(zip(compiled, verdicts))


def run_directory(directory, compiled, timeouts=True, carry_errors=False):
    """Load the implementation in ``directory`` and run every compiled check on it."""
    ns, failure = load(directory)
    if ns is None:
        return [(check, load_failed(check, failure)) for check in compiled]
    return run_checks(ns, compiled, timeouts, carry_errors)


def score(results):
    """(points earned, points possible) of run_checks' results."""
    earned = sum(check["points"] * verdict.score for check, verdict in results)
    return earned, sum(check["points"] for check, _ in results)


# --- the test cells of the nbgrader and otter exports ------------------------------------------
# A test cell holds one compiled check frozen to JSON and calls ``assert_check`` with the
# kernel's globals; a failed verdict becomes an AssertionError, which nbgrader and otter both
# read as a failed test. Here, not in the exports, because the exported notebooks carry a copy
# of this module (with judge and probes) and run their tests without the kit installed.

FAILED = "check {id} failed"  # the start of every failure message; graders' reports are parsed by it


def assert_check(env, frozen):
    """Run the check ``frozen`` (a compiled check as JSON text, or its dict) on the names in
    ``env``; raise AssertionError with what went wrong when it does not pass. Nothing is
    written to stderr: nbgrader scores a test cell 0 when it is."""
    check = json.loads(frozen) if isinstance(frozen, str) else frozen
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the student's prints and warnings are not the test's output
        verdict = run_check(env, check)
    if not verdict.passed:
        raise AssertionError(failure_message(check, verdict))


def failure_message(check, verdict):
    """The title, what went wrong, and for public checks the detail (inputs, expected values)."""
    lines = [f"{FAILED.format(id=check['id'])}: {check['title']}", verdict.message]
    if check.get("visibility") == "public" and verdict.detail:
        lines.append(verdict.detail)
    hints = [judge.DIAGNOSES[d] for d in verdict.diagnoses[1:] if d in judge.DIAGNOSES]  # the first is in the message
    lines += hints
    if verdict.diagnoses:
        lines.append(f"(diagnosis: {', '.join(verdict.diagnoses)})")
    return "\n".join(line for line in lines if line)


# A check's timeout counts CPU seconds, as in the sandboxed worker: a busy machine (a laptop
# compiling, a shared CI runner) slows a check without cutting it short. Code that sleeps or
# blocks is stopped by the wall-clock backstop, the sandbox's default (sandbox.Limits).
WALL_FACTOR, WALL_SLACK = 3.0, 5.0


@contextmanager
def _time_limit(seconds):
    """Raise CheckTimeout in this thread after ``seconds`` of this process's CPU time, or
    ``seconds * WALL_FACTOR + WALL_SLACK`` of wall-clock time, where a signal can do that
    (the main thread on POSIX: a script or a Jupyter kernel); elsewhere the check runs
    unlimited."""
    usable = (seconds and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def expire(signum, frame):
        raise CheckTimeout()

    with probes.IntervalTimers([(signal.SIGPROF, signal.ITIMER_PROF, seconds, expire),
                                (signal.SIGALRM, signal.ITIMER_REAL, seconds * WALL_FACTOR + WALL_SLACK, expire)]):
        yield
