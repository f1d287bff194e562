"""Grade: a batch of submissions, graded in parallel sandboxed workers and judged here.

``grade(paths, out=...)`` is what ``autodiff101 grade`` calls and what tests call directly:
discover the submissions, compile the checks once (the course's seed unless given,
recorded in OUT), then per submission, in ``jobs`` threads: load it, run its
checks in a worker (``worker.Session``), judge every observation in this process, and write
its results as soon as it is done. A rerun skips submissions already graded with the same
checks, seed and content, so an interrupted batch resumes where it stopped.
"""
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from . import carry
from . import checkcache
from . import checks as catalogue
from . import judge as judges
from . import load as loader
from . import probes, report
from .load import UsageError
from .sandbox import (LEVELS, IsolationUnavailable, Limits, Sandbox, allowed_packages, level_problem,
                      resolve_packages, strongest_level)
from .text import DETAIL, MESSAGE, NAME, NOTE, OUTPUT, SUBMISSION, plural, untrusted
from .worker import Session, clean_error

STATE = ".autodiff101.json"  # in OUT: the seed of the batch, reused by reruns


@dataclass
class Batch:
    """What a batch did, for the command line's summary."""

    out: Path
    seed: int
    seed_reused: bool
    isolation: str
    warning: str
    check_ids: list
    rows: list = field(default_factory=list)  # gradebook rows, in the order found
    not_submissions: list = field(default_factory=list)  # files beside the submissions, not graded
    graded: int = 0
    skipped: int = 0
    seconds: float = 0.0
    seed_given: bool = False  # --seed, not the course config's


def grade(paths=(), out="grades", jobs=None, force=False, seed=None, config=None, isolation="auto",
          limits=None, max_bytes=loader.DEFAULT_MAX_BYTES, console=None, while_grading=None):
    """Grade every submission under ``paths`` (none: the bundled examples) into ``out``.
    ``while_grading``: called (no arguments) as the first workers start, for work that can
    wait until this process mostly waits for them. Raises UsageError for anything the caller
    asked wrongly."""
    started = time.monotonic()
    out = Path(out)
    examples_folder = None
    try:
        if not paths:
            from . import examples

            examples_folder = Path(tempfile.mkdtemp(prefix="autodiff101-examples-"))
            paths = [examples.write_examples(examples_folder)]
        discovered = loader.discover(paths, exclude=[out])
        found = discovered.found
        if jobs is not None and jobs < 1:
            raise UsageError(f"-j must be at least 1, got {jobs}")
        out.mkdir(parents=True, exist_ok=True)
        seed_given = seed is not None
        seed, seed_reused = _seed(out, seed, config)
        text, compiled = checks_text_and_checks(seed, config)
        carry = _carry_errors(config)
        checks_hash = fingerprint(text, carry)
        if isolation != "auto" and isolation not in LEVELS:
            raise UsageError(f"--isolation must be auto or one of {', '.join(LEVELS)}, not {isolation!r}")
        context = {"checks": compiled, "seed": seed, "checks_hash": checks_hash, "out": out,
                   "force": True, "max_bytes": max_bytes, "verdicts": Verdicts(), "carry_errors": carry}
        # The skip test first: a rerun where everything is graded starts no sandbox at all.
        rows = {} if force else _already_graded(found, context)
        to_grade = [item for item in found if item.id not in rows]
        level, warning, packages = NOT_NEEDED, "", ()
        if to_grade:
            # A trial worker finds the isolation level while the allowed packages are resolved.
            with ThreadPoolExecutor(max_workers=1) as trial:
                probed = trial.submit(_isolation, isolation)
                try:
                    packages = allowed_packages(config)  # [worker] allowed_packages of the course's config
                    resolve_packages(packages)
                except ValueError as error:
                    raise UsageError(str(error)) from None
                level, warning = probed.result()
        batch = Batch(out, seed, seed_reused, level, warning, [c["id"] for c in compiled],
                      not_submissions=[str(path) for path in discovered.skipped], skipped=len(rows),
                      seed_given=seed_given)
        if to_grade:
            limits = limits or Limits()
            hide = [out, *(Path(p).resolve().parent if Path(p).is_file() else p for p in paths)]
            with Sandbox(level, limits, hide=hide, packages=packages) as sandbox:
                if while_grading is not None:
                    while_grading()
                rows.update(_run(to_grade, sandbox, context, jobs or os.cpu_count() or 1, batch, console))
        batch.rows = [rows[item.id] for item in found if item.id in rows]
        report.write_gradebook(out, batch.rows, batch.check_ids)
        batch.seconds = time.monotonic() - started
        return batch
    finally:
        if examples_folder:
            shutil.rmtree(examples_folder, ignore_errors=True)


def compile_checks(seed, config=None):
    """The catalogue compiled for ``seed``, as grading reads it (without the models'
    predictions: ``checks_text_and_checks``): the reference runs every probe, which takes a
    while, so it is done once per seed, config and source (``checkcache``) and read back."""
    return checks_text_and_checks(seed, config)[1]


def checks_text_and_checks(seed, config=None):
    """(the text that identifies the compiled checks, the checks without the models'
    ``signatures``, which the models read when they are needed):
    ``checkcache.grading_text_and_checks``."""
    if isinstance(config, dict):
        return checkcache.grading_text_and_checks(seed, config, config)
    try:
        table = catalogue.load_config(config)  # a bad or missing --config file is a usage error
    except ValueError as error:
        raise UsageError(str(error)) from None
    return checkcache.grading_text_and_checks(seed, config, table)


def fingerprint(text, carry_errors=True):
    """Identifies the checks a result was graded with: their data (inputs drawn from the
    seed, expected values, points, the models' predictions), the probes that observed them,
    and whether errors were carried forward (a rerun with the other setting grades again).
    ``text``: what identifies the compiled checks (``checks_text_and_checks``)."""
    digest = hashlib.sha256(text.encode())
    digest.update(Path(probes.__file__).read_bytes())
    if carry_errors:
        digest.update(b"carry_errors")
    return digest.hexdigest()[:16]


def _carry_errors(config):
    """checks.toml's [grading] carry_errors (true by default); a usage error when it is bad."""
    if isinstance(config, dict):
        return True
    try:
        return catalogue.carry_errors(config)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _seed(out, seed, config=None):
    """The batch's seed: ``seed`` if given, else the course's (checks.toml's [course]), never
    a new random one, so the same submission gets the same score in any OUT."""
    state_file = out / STATE
    try:
        recorded = json.loads(state_file.read_text()).get("seed")
    except (OSError, ValueError, AttributeError):
        recorded = None
    if seed is None:
        try:
            seed = catalogue.course_seed(config)
        except ValueError as error:
            raise UsageError(str(error)) from None
    reused = recorded == seed
    report.write_atomic(state_file, json.dumps({"seed": seed}) + "\n")
    return seed, reused


NOT_NEEDED = "none needed"  # the batch's isolation when every submission was already graded


def _already_graded(found, context):
    """{id: gradebook row} of the submissions OUT holds results for, graded with these
    checks and seed from the same content. Only those with results are read here; any
    doubt (an unreadable file, an id that names no folder) leaves it to ``grade_one``."""
    done = {}
    for item in found:
        try:
            report.submission_folder(context["out"], item.id)
            previous = report.read_results(context["out"], item.id)
            if not previous or not _same_checks(previous["extra_data"], context):
                continue
            if previous["extra_data"].get("digest") == loader.load(item.path, item.id, context["max_bytes"]).digest:
                done[item.id] = report.row_from_results(previous)
        except Exception:
            continue
    return done


def _isolation(requested):
    try:
        best = strongest_level()
    except IsolationUnavailable as error:
        raise UsageError(str(error)) from None
    level = best if requested == "auto" else requested
    if level_problem(level):
        raise UsageError(f"isolation {level!r} is not available here: {level_problem(level)}")
    warning = ""
    if LEVELS.index(level) > LEVELS.index(best):
        warning = f"workers run at {level!r} isolation although {best!r} is available on this machine"
    elif level != LEVELS[0]:
        warning = f"workers run at {level!r} isolation, below bubblewrap: {level_problem(LEVELS[0])}"
    return level, warning


def _run(found, sandbox, context, jobs, batch, console):
    """Grade with ``jobs`` workers at a time, in twice as many threads: while one thread's
    submission holds a worker, another's is diagnosed and written (``Sandbox.worker_slot``),
    so the grader's own work does not leave a core idle. Write results here as each
    submission finishes. Returns {id: gradebook row}."""
    rows = {}
    progress = _progress(console, len(found))
    sandbox.limit_workers(jobs)
    with progress or nullcontext(), ThreadPoolExecutor(max_workers=2 * jobs) as pool:
        task = progress.add_task("grading", total=len(found)) if progress else None
        futures = {pool.submit(grade_one, item, sandbox, context): item for item in found}
        try:
            for future in as_completed(futures):
                outcome, payload = future.result()
                item = futures.pop(future)  # let the finished record go: memory stays flat
                if outcome == "interrupted":
                    continue
                rows[item.id] = payload
                if outcome == "graded":
                    batch.graded += 1
                else:
                    batch.skipped += 1
                if progress:
                    progress.advance(task)
        except BaseException:
            # Interrupted (Ctrl-C) or a fault of ours: stop every worker, keep what is done.
            sandbox.stop()
            pool.shutdown(cancel_futures=True)
            report.write_gradebook(context["out"], [rows[i.id] for i in found if i.id in rows], batch.check_ids)
            raise
    return rows


def _progress(console, total):
    if console is None or not console.is_terminal or total == 0:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=console, transient=True)


# --- one submission --------------------------------------------------------------------


def grade_one(item, sandbox, context):
    """Grade one submission and write its results (in this thread, so that writing, and
    the pictures report.py may draw, run in parallel too): ("graded", gradebook row);
    ("skipped", row) when OUT already holds this result; ("interrupted", None) when the
    batch was stopped meanwhile, whose verdicts are not the submission's and are not kept.
    Never raises an Exception: whatever goes wrong with this one submission, a fault of
    the grader's included, is its row with status ``grader-fault`` (see ``fault_record``)."""
    started = time.monotonic()
    try:
        return _grade_one(item, sandbox, context, started)
    except Exception as error:
        if sandbox.stopping:
            return "interrupted", None
        record = fault_record(item, context, error, started, sandbox.level)
        if not isinstance(error, report.UnsafeId):  # an id that names no folder: the row says why
            try:
                report.write_submission(context["out"], record)
            except Exception as again:
                record["fault"] = untrusted(f"{record['fault']}; writing its results failed too: "
                                            f"{_exception_text(again)}", DETAIL)
        return "graded", report.row_from_record(record)


def _grade_one(item, sandbox, context, started):
    report.submission_folder(context["out"], item.id)  # an id its results cannot be written under fails first
    submission = loader.load(item.path, item.id, context["max_bytes"])
    if not context["force"]:
        previous = report.read_results(context["out"], item.id)
        if previous and _same_grading(previous["extra_data"], submission, context):
            return "skipped", report.row_from_results(previous)
    record = grade_submission(submission, context["checks"], sandbox, context["verdicts"],
                              context.get("carry_errors", True))
    record.update(seed=context["seed"], checks_hash=context["checks_hash"],
                  seconds=time.monotonic() - started - record.pop("waited", 0.0))
    if sandbox.stopping:
        return "interrupted", None
    report.write_submission(context["out"], record)
    return "graded", report.row_from_record(record)


# Shown to the student (Gradescope shows a row's message): the fault itself, whose text may
# hold anything, is kept for the instructor in results.json's extra_data and the terminal.
FAULT_MESSAGE = ("the grader itself failed on this submission (not a fault of the submission); "
                 "please contact the course staff, who can see why")


def fault_record(item, context, error, started, level=""):
    """The record of a submission whose grading raised ``error``: status ``grader-fault``,
    every check 0 and not run, no seed or checks hash (so a rerun grades it again), and
    ``fault``, the exception and where in the grader it was raised, for the instructor."""
    record = {"id": item.id, "path": str(item.path), "status": "grader-fault", "message": FAULT_MESSAGE,
              "fault": untrusted(_exception_text(error), DETAIL), "isolation": level,
              "digest": None, "worker_starts": 0, "output": "", "seed": None, "checks_hash": None,
              "seconds": time.monotonic() - started, "notes": []}
    return _finish(record, [_test(c, 0.0, "not graded: " + FAULT_MESSAGE) for c in context["checks"]])


def _exception_text(error):
    """"KeyError: 'x' (grade.py:212 in _judge)": the innermost frame of the grader's own code."""
    import traceback

    place = ""
    frames = traceback.extract_tb(error.__traceback__)
    if frames:
        last = frames[-1]
        place = f" ({Path(last.filename).name}:{last.lineno} in {last.name})"
    return f"{type(error).__name__}: {untrusted(error, MESSAGE)}{place}"


def _same_checks(extra, context):
    return extra.get("checks_hash") == context["checks_hash"] and extra.get("seed") == context["seed"]


def _same_grading(extra, submission, context):
    return _same_checks(extra, context) and extra.get("digest") == submission.digest


def grade_submission(submission, compiled, sandbox, verdicts=None, carry_errors=True):
    """Run every check on one loaded submission and judge it: the record report.py writes
    (without seed, checks_hash and seconds, which belong to the batch). ``verdicts``, a
    ``Verdicts`` shared by a batch's submissions, saves judging the same observation twice.
    ``carry_errors``: a mistake's consequences in other exercises keep their points (carry.py)."""
    record = {"id": submission.id, "path": str(submission.path), "status": "graded", "message": "",
              "isolation": sandbox.level, "digest": submission.digest, "worker_starts": 0, "output": "",
              "seed": None, "checks_hash": None, "seconds": 0.0, "notes": []}
    if not submission.ok:
        record.update(status=submission.status, message=submission.message)
        return _finish(record, [_not_run(c, submission.message) for c in compiled])
    with sandbox.worker_slot() as waited, Session(sandbox, submission) as session:
        record["waited"] = waited  # for a free worker: not this submission's grading time
        tests, evidence = _run_checks(session, submission, compiled, record, verdicts or Verdicts())
        record["worker_starts"] = session.starts
        session.close()  # the last worker's output is collected when it stops
        record["output"] = session.output()
        record["worker_cpu"] = session.cpu
    if evidence is not None:  # with the worker gone and its slot free for the next submission
        observations, texts = evidence
        judges.diagnose_tests(tests, compiled, observations)
        if carry_errors:
            carry.carry_tests(tests, compiled, observations, texts)
        for test in tests:  # the diagnosis rewrote them: clean and cap again
            test.update(message=untrusted(test["message"], MESSAGE), detail=untrusted(test["detail"], DETAIL))
    if submission.notes:  # the loader's (a module filled in from the handout): said with the score
        record["message"] = "; ".join([*submission.notes, *([record["message"]] if record["message"] else [])])
    return _finish(record, tests)


def _run_checks(session, submission, compiled, record, verdicts):
    """Load the submission, ask every check's question and judge each reply: (test entries,
    (observations, their JSON texts) for the diagnosis, or None when no check ran)."""
    loaded = session.load()
    if loaded.is_fault:
        record["status"] = "timeout" if loaded.kind in ("timeout", "budget") else "crashed"
        record["message"] = loaded.describe()
        return [_not_run(c, record["message"]) for c in compiled], None
    if not loaded.ok:
        record["status"] = "load-error"
        record["message"] = "the submission's top-level code " + _raised(submission, loaded.error)
        return [_not_run(c, record["message"]) for c in compiled], None
    record["notes"] = list(submission.notes) + _cells_raised(submission, loaded.result,
                                                              session.sandbox.limits.top_level_seconds)
    missing = _missing(loaded.result)
    if missing:
        record["message"] = f"the submission does not define {', '.join(missing)}"
    if "Value" in missing:
        record["status"] = "load-error"
        return [_not_run(c, record["message"]) for c in compiled], None
    timeout_override = session.sandbox.limits.check_timeout
    # Checks that ask the same question (probe and parameters) share one answer, kept only
    # until the last check that asks it: a reply may be megabytes, so memory stays flat.
    # The questions go to the worker in batches (Session.probes) and their replies are
    # judged as they arrive; a question is public when any check asking it is. Public
    # questions are asked first: a check's child can leave files in the worker's /tmp for
    # the checks after it, and a public check shows its exception's message in full.
    questions = [json.dumps([check["probe"], check["params"]], sort_keys=True) for check in compiled]
    still_asked = Counter(questions)
    public = {q for q, check in zip(questions, compiled) if check["visibility"] == "public"}
    order = sorted(range(len(compiled)), key=lambda index: questions[index] not in public)
    first = {}
    for index in order:
        first.setdefault(questions[index], compiled[index])
    answers = session.probes([(c["probe"], c["params"], timeout_override or c["timeout"], q in public)
                              for q, c in first.items()])
    replies, tests = {}, [None] * len(compiled)
    observations, texts = [None] * len(compiled), [None] * len(compiled)
    for index in order:
        check, question = compiled[index], questions[index]
        if question not in replies:
            reply = next(answers)
            # The observation's JSON text, written once: what Verdicts and carry remember it by.
            replies[question] = reply, (json.dumps(reply.result, sort_keys=True) if reply.ok else None)
        still_asked[question] -= 1
        reply, text = replies[question] if still_asked[question] else replies.pop(question)
        tests[index] = _judge(check, reply, text, submission, missing, verdicts)
        if text is not None and len(text) <= Verdicts.LARGEST:  # a huge (hostile) observation: no model reproduces it
            observations[index], texts[index] = reply.result, text
        if reply.kind == "budget":
            record["status"] = "timeout"
            record["message"] = reply.fault
    return tests, (observations, texts)


def _missing(result):
    names = result.get("missing") if isinstance(result, dict) else None
    return [n for n in probes.NAMES if isinstance(names, list) and n in names]


def _judge(check, reply, text, submission, missing, verdicts):
    """The verdict on one check, as a test entry (``text``: the reply's result as
    ``json.dumps(result, sort_keys=True)``). Exceptions, hangs and crashes become verdicts
    through ``judge.judge_failure``, as in every other mode; the worker's own words ("exited
    with status 0") replace its generic message for faults."""
    public = check["visibility"] == "public"
    if reply.kind == "budget":
        return _test(check, 0.0, reply.fault)
    if reply.is_fault:
        failure = {"error": "Timeout" if reply.kind == "timeout" else "Crash", "message": reply.fault, "where": None}
        verdict = judges.judge_failure(check, failure, reply.phase)
        message = reply.describe(None if public else _vague(reply.phase))
        return _test(check, 0.0, message, verdict.detail, verdict.diagnoses)
    if not reply.ok:
        error = reply.error
        name = error["message"].strip("'\"")
        if error["error"] == "KeyError" and name in missing:
            return _test(check, 0.0, f"the submission does not define {name}", diagnoses=["load-error"])
        if error["error"] == "KeyError" and name in probes.EXTENSION_NAMES:
            return _test(check, 0.0, f"the submission does not define {name}: moons.py is missing, or does not "
                         f"define {name}; hand in moons.py beside engine.py", diagnoses=["load-error"])
        failure = dict(error, where=_student_where(submission, error.get("where")))
        verdict = judges.judge_failure(check, failure, reply.phase)
        if not public:  # the submission can write its whole error reply: say only what cannot carry inputs
            safe = judges.judge_failure(check, {"error": _known_exception(error["error"]), "message": "",
                                                "where": None}, _vague(reply.phase))
            verdict = judges.Verdict(verdict.score, safe.message, verdict.detail, verdict.diagnoses)
    else:
        try:
            verdict = verdicts(check, reply.result, text)
        except Exception as error:  # untrusted data the judge did not foresee: fail, do not crash
            return _test(check, 0.0, "the grader could not judge what the submission reported",
                         detail=f"{type(error).__name__}: {untrusted(error, MESSAGE)}")
    score = min(max(float(verdict.score), 0.0), 1.0)
    return _test(check, score, verdict.message, verdict.detail, verdict.diagnoses,
                 getattr(verdict, "observation", None))


class Verdicts:
    """``judge.judge`` remembered for one batch (one compiled catalogue): a judge is a pure
    function of the check and the observation, and most submissions (every correct one,
    and those sharing a common bug) report identical observations, so each distinct one is
    judged once. Bounded, so a batch of any size keeps the grader's memory flat."""

    LIMIT = 20_000

    def __init__(self):
        self._known = {}

    LARGEST = 64 * 1024  # an observation bigger than this (a hostile one) is judged, not kept

    def __call__(self, check, observed, text):
        """The verdict on ``observed``, whose ``json.dumps(observed, sort_keys=True)`` is
        ``text`` (written once per reply, by ``_run_checks``)."""
        key = (check["id"], text)
        verdict = self._known.get(key)
        if verdict is None:
            verdict = judges.judge(check["judge"], observed, check["expected"], check["params"])
            if len(self._known) >= self.LIMIT:
                self._known.clear()
            if len(key[1]) <= self.LARGEST:
                self._known[key] = verdict
        copy = judges.Verdict(verdict.score, verdict.message, verdict.detail, list(verdict.diagnoses))
        copy.observation = getattr(verdict, "observation", None)  # plain numbers, never changed
        return copy


def _student_where(submission, where):
    """A worker's {file, line, function} with the file and line as the student knows them:
    their own file name, or "cell 4" and the line within it."""
    if not where:
        return where
    file = Path(where["file"]).name
    if file not in submission.sources:
        return dict(where, file=file)
    place = submission.place(file, where["line"])  # alice.py, line 12; or cell 4, line 2
    return dict(where, file=place.file, line=place.line)


def _raised(submission, error):
    """"raised ZeroDivisionError: float division by zero at cell 3, line 2 in f()"."""
    text = f"raised {error['error']}"
    if error["message"]:
        text += f": {error['message']}"
    where = error.get("where")
    if where:
        place = submission.where(Path(where["file"]).name, where["line"])
        text += f" at {place}" + (f" in {where['function']}()" if where["function"] not in ("", "<module>") else "")
    return text


def _cells_raised(submission, result, budget):
    """Notes on notebook cells that raised while loading (and were skipped, as in Jupyter)
    or ran past their ``budget`` of seconds (and were stopped)."""
    cells = result.get("cells_raised") if isinstance(result, dict) else None
    notes = []
    for cell in cells[:10] if isinstance(cells, list) else []:
        if not isinstance(cell, dict):
            continue
        number = cell.get("cell")
        if "stopped" in cell:
            where = f"cell {number}" if type(number) is int else "the top-level code"
            notes.append(f"{where} ran for more than {budget:g} s and was stopped there, as when "
                         "you interrupt a cell in Jupyter; what was defined by then is graded")
        elif type(number) is int:
            notes.append(f"cell {number} {_raised(submission, clean_error(cell))}")
    return notes


# What a hidden check's message may say about where it failed. The worker reports its phase
# itself, so a submission can write any phase (a check's inputs spelled in letters, say):
# only the probes' own phases, stripped of their inputs, are shown.
SAFE_PHASES = {"running the submission's top-level code", "importing the submission's modules", "running a cell",
               "backward()", "_backward()", "repr()", "Neuron()", "calling the Neuron", "Neuron.parameters()",
               "backward() from the Neuron's output", "MLP()", "calling the MLP", "MLP.parameters()",
               "MLP.zero_grad()", "training", *(f"the {name} probe" for name in probes.PROBES)}


def _vague(phase):
    """A phase safe to show for a hidden check: no numbers or expressions from its inputs."""
    if phase.startswith("building"):
        return "building the check's expression"
    phase = re.sub(r"^training epoch .*", "training", re.sub(r"^running cell .*", "running a cell", phase))
    phase = re.sub(r"\(.+\)$", "()", re.sub(r" (on|of) .*$", "", phase))  # MLP(3, [3, 1]) -> MLP()
    return phase if phase in SAFE_PHASES else "running the check"


def _known_exception(name):
    """A built-in exception's name; a class the submission made could be named anything."""
    import builtins

    kind = getattr(builtins, name, None)
    return name if isinstance(kind, type) and issubclass(kind, BaseException) else "an exception"


def _test(check, score, message="", detail="", diagnoses=(), observation=None):
    """A check's entry in the record. Its message and detail may hold text the submission
    chose: both are cleaned and capped here (``text.MESSAGE``, ``text.DETAIL``). A gradient
    check's ``observation`` (``judge.Verdict.observation``: numbers and node indices) is
    kept for the feedback's picture when the graph is small enough to draw."""
    test = {"check": check["id"], "title": check["title"], "exercise": check["exercise"],
            "visibility": check["visibility"], "max_score": check["points"],
            "score": score * check["points"], "passed": score >= 1.0,
            "message": untrusted(message, MESSAGE), "detail": untrusted(detail, DETAIL),
            "diagnoses": list(diagnoses)}
    if _drawable(observation):
        test["observation"] = observation
    return test


OBSERVATION_NODES = 200  # a larger graph (the deep chain) is no picture anyone reads


def _drawable(observation):
    if not isinstance(observation, dict):
        return False
    lists = [observation.get(k) for k in ("data", "grad", "expected_grad", "wrong")]
    return (all(isinstance(x, list) for x in lists) and 0 < len(lists[1]) <= OBSERVATION_NODES
            and len(lists[0]) == len(lists[1]) == len(lists[2])
            and all(judges.is_number(x) for x in lists[0] + lists[1] + lists[2])
            and all(type(i) is int and 0 <= i < len(lists[1]) for i in lists[3]))


def _not_run(check, message):
    return _test(check, 0.0, message, diagnoses=["load-error"])


CUT = "(not shown: this submission's feedback reached its size limit)"


def _finish(record, tests):
    """The record with its tests and totals; every text in it cleaned and capped, and all of
    them together within ``text.SUBMISSION`` characters: past that, a check keeps a short
    message and no detail. (A 4 MB class name copied into every check's message once made
    one submission write 246 MB.)"""
    record["message"] = untrusted(record["message"], MESSAGE)
    record["notes"] = [untrusted(note, NOTE) for note in record.get("notes", [])[:10]]
    record["output"] = untrusted(record.get("output", ""), OUTPUT, lines=True)
    spent = len(record["message"]) + sum(len(note) for note in record["notes"])
    for test in tests:
        if spent + len(test["message"]) + len(test["detail"]) > SUBMISSION:
            test["message"] = untrusted(test["message"], 200)
            test["detail"] = CUT if test["detail"] else ""
        spent += len(test["message"]) + len(test["detail"])
    record["tests"] = tests
    record["score"] = sum(t["score"] for t in tests)
    record["max_score"] = sum(t["max_score"] for t in tests)
    return record


# --- the command line's view -------------------------------------------------------------


def command(paths, console=None, **options):
    """``autodiff101 grade``: grade, print the summary; the exit code: 0 the batch completed,
    whatever the scores; 3 it completed, but the grader failed on some submissions (their
    rows say ``grader-fault``; a rerun grades them again); 2 bad usage; 1 the grader failed
    outside any one submission (the batch did not complete); 130 interrupted (Ctrl-C); 143
    stopped by SIGTERM (``Terminated``). Stopped either way, what was graded stays, and a rerun
    of the same command grades the rest."""
    import traceback

    importing = None
    if console is None and not sys.stdout.isatty():
        # No progress bar to draw: rich is needed for the summary only, so it is imported while
        # this process waits for its workers, not while it starts them (a thread importing
        # holds the lock every Python thread needs).
        importing = threading.Thread(target=_import_rich, name="autodiff101-import-rich", daemon=True).start
    else:
        console = console or _import_rich().Console()
    try:
        with _stopped_by_sigterm():
            batch = grade(paths, console=console, while_grading=importing, **options)
    except UsageError as error:
        _errors().print(f"autodiff101 grade: {untrusted(error, 2 * DETAIL)}", markup=False, highlight=False)
        return 2
    except KeyboardInterrupt as stop:
        how, status = ("stopped (SIGTERM)", 128 + 15) if isinstance(stop, Terminated) else ("interrupted", 130)
        _errors().print(f"autodiff101 grade: {how}; rerun the same command to finish the batch")
        return status
    except Exception:
        _errors().print("autodiff101 grade: the grader itself failed (a bug; please report it):")
        _errors().print(untrusted(traceback.format_exc(), OUTPUT, lines=True), markup=False, highlight=False)
        return 1
    print_summary(batch, console or _import_rich().Console())
    return 3 if any(row["status"] == "grader-fault" for row in batch.rows) else 0


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, ``kill``, a cancelled CI job, a container's shutdown): the batch
    stops as Ctrl-C stops it, its workers ended and its temporary folders (copies of students'
    code) removed, instead of the process dying where it stands."""


@contextmanager
def _stopped_by_sigterm():
    """SIGTERM raises Terminated in this (the main) thread for the block; elsewhere, nothing."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _import_rich():
    """rich's console module, with what the summary table uses."""
    import rich.console
    import rich.table
    import rich.text  # noqa: F401

    return rich.console


def _errors():
    return _import_rich().Console(stderr=True, soft_wrap=True)  # a path is never split over two lines


def print_summary(batch, console):
    if batch.warning:
        console.print(f"[yellow]warning:[/] {batch.warning}", highlight=False, soft_wrap=True)  # one line, even in a log
    names = [untrusted(loader.shown(Path(path).name), NAME) for path in batch.not_submissions]
    for why, listed in (("hidden: the name starts with a dot", [name for name in names if name.startswith(".")]),
                        ("not a .py, .ipynb, .zip or folder", [name for name in names if not name.startswith(".")])):
        if listed:
            more = f" and {len(listed) - 20} more" if len(listed) > 20 else ""
            console.print(f"not graded ({why}): {', '.join(listed[:20])}{more}",
                          markup=False, highlight=False, soft_wrap=True)
    if not batch.rows:
        console.print("[yellow]warning:[/] no submissions found: nothing was graded", highlight=False, soft_wrap=True)
    title = f"{plural(len(batch.rows), 'submission')} in {untrusted(batch.out, 1000)}"
    console.print(report.summary_table(batch.rows, title=title))
    seed_note = "given with --seed" if batch.seed_given else "the course's, from its config"
    timing = f"{batch.seconds:.1f} s"
    if batch.graded:
        timing += f", {batch.seconds / batch.graded:.2f} s per graded submission"
    console.print(
        f"graded {batch.graded}, already done {batch.skipped}; isolation {batch.isolation}; "
        f"seed {batch.seed} ({seed_note}); {timing}; gradebook {untrusted(batch.out / report.GRADEBOOK, 1000)}",
        highlight=False, markup=False, soft_wrap=True)
    faults = sum(1 for row in batch.rows if row["status"] == "grader-fault")
    if faults:
        console.print(f"the grader itself failed on {plural(faults, 'submission')} (status grader-fault, "
                      "the reason in the table and in results.json's extra_data.fault); rerun to grade "
                      f"{'it' if faults == 1 else 'them'} again", highlight=False, markup=False, soft_wrap=True)
