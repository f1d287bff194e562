"""Worker: runs a submission's code in a sandboxed child process and asks it for observations.

The grading process never imports student code. It starts a worker (``sandbox.py`` says
how), sends it JSON requests on one pipe and reads JSON replies from another; between them
the worker reports the phase it is in, so that a crash or a hang can be described ("the
worker exited with status 0 during backward()"). Everything read back is untrusted: size
capped, parsed defensively, and only plain JSON values ever reach the judge.

A ``Session`` grades one submission: it writes the files once, starts a worker (which
runs the submission's top-level code), and after a worker dies or hangs starts a fresh one
for the remaining checks, all within the submission's time budget.

The protocol (``probes.serve`` is the other end). Requests are framed (``probes.frame``: a
length line, then the JSON), replies are JSON lines:

1. the grader sends {"start": ...}; the worker says {"phase": "starting"} before the
   submission's first line (a worker that dies before it never ran the submission: the
   sandbox failed), loads the submission and replies once;
2. the grader sends a *batch*: many {"probe", "params"} requests in one write
   (``Session.probes``); the worker answers them in order, each in its own child forked
   from the loaded worker, one reply line each, without waiting for the grader in between.

The grader still bounds every check by itself: the clock of a request starts when the
previous reply arrives, counts the CPU time the grader measures (never the worker's word),
and a check that hangs or kills its child kills the worker, fails that check alone with the
same words as ever, and a fresh worker gets the rest of the batch. A batch is all public
or all hidden requests: a public check's message shows whatever its child writes (its
phase, its exception), and that child could read the requests still waiting in the pipe.
The grader asks the public ones first (``grade.py``), so no hidden input exists in the
worker, its pipe or its ``/tmp`` while a public check runs: two batches per submission.

Time limits count CPU seconds of the worker and all its children (its control group's
count, else its process tree's), so that a busy machine does not fail honest code; each has
a wall-clock backstop (``Limits.wall_clock``) for code that sleeps or blocks.
"""
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from .probes import frame
from .sandbox import Limits
from .text import untrusted

LOADING = "running the submission's top-level code"


@dataclass
class Reply:
    """One answer from a worker: a result, an exception the submission raised, or a fault
    (the worker exited, was killed, hung or broke the protocol)."""

    ok: bool
    result: object = None
    error: dict = field(default_factory=dict)  # {"error", "message", "where": {file, line, function}}
    fault: str = ""  # what happened to the worker, in words: "timed out after 2 s"
    kind: str = ""  # "timeout" | "exited" | "killed" | "protocol" | "budget" | "not-started"
    phase: str = ""  # what the worker was doing then: "backward()"

    @property
    def is_fault(self):
        return bool(self.fault)

    def describe(self, phase_shown=None):
        """The fault in words, with the phase (or ``phase_shown``, a vaguer version of it
        where the phase would reveal a hidden check's inputs)."""
        phase = self.phase if phase_shown is None else phase_shown
        if not phase:
            return self.fault
        if self.kind == "timeout":
            return f"{self.fault} {'while' if _gerund(phase) else 'in'} {phase}"
        return f"{self.fault} {'while' if _gerund(phase) else 'during'} {phase}"


def fault(kind, message, phase=""):
    return Reply(False, fault=message, kind=kind, phase=phase)


class WorkerNotStarted(Exception):
    """The grader could not start a worker: the machine's fault (no fork, no namespace, the
    sandbox's set-up failed), never the submission's, which has not run yet. Raised out of the
    Session, so the submission's row is a grader-fault (a rerun grades it again), not a 0."""


def _text(value, limit):
    """A string from the worker, made safe to print anywhere by ``text.untrusted``: cut to
    ``limit``, valid UTF-8, no control characters (a terminal escape sequence in a phase
    would reach the instructor's terminal). Anything but a string is ""."""
    return untrusted(value, limit) if isinstance(value, str) else ""


def clean_error(message):
    """Keep only well-typed fields of a worker's error report."""
    where = message.get("where")
    if isinstance(where, dict) and isinstance(where.get("line"), int) and not isinstance(where.get("line"), bool):
        where = {"file": _text(where.get("file"), 300), "line": where["line"],
                 "function": _text(where.get("function"), 100)}
    else:
        where = None
    return {"error": _text(message.get("error"), 100) or "Exception",
            "message": _text(message.get("message"), 500), "where": where}


def _gerund(phase):
    """"during backward()" but "while building a + b"."""
    return phase.split(" ", 1)[0].endswith("ing")


def _signal_name(number):
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def cap_text(value, limit):
    """A JSON value from the worker with every string (keys too) cut to ``limit``
    characters: a type name of megabytes cannot be copied into every message."""
    if isinstance(value, str):
        return value[:limit]
    if isinstance(value, list):
        return [cap_text(item, limit) for item in value]
    if isinstance(value, dict):
        return {key[:limit]: cap_text(item, limit) for key, item in value.items()}
    return value


_MISSING_MODULE = re.compile(r"No module named '([A-Za-z_][A-Za-z0-9_]*)(?:\.[A-Za-z0-9_.]*)?'")


def explain_import(error, packages, own_modules=()):
    """``error`` (a worker's exception report) with a message that says why an import
    failed when the module is neither the standard library's nor the submission's own:
    "import torch: the course does not allow torch (allowed: numpy)", or, for an
    allowed package the grading machine lacks, that it is not installed. Other errors are
    returned unchanged. ``packages``: the sandbox's ``Packages``."""
    if not isinstance(error, dict) or error.get("error") != "ModuleNotFoundError":
        return error
    match = _MISSING_MODULE.fullmatch(str(error.get("message", "")))
    if not match:
        return error
    name = match.group(1)
    if name in sys.stdlib_module_names or name in own_modules or name in packages.modules:
        return error
    from .sandbox import normalized

    allowed = ", ".join(packages.allowed) or "none"
    if normalized(name) in {normalized(m) for m in packages.missing}:
        message = (f"import {name}: the course allows {name}, but it is not installed where the grader "
                   f"runs (tell your instructor)")
    else:
        message = f"import {name}: the course does not allow {name} (allowed: {allowed})"
    return dict(error, message=message)


class Clock:
    """One CPU-time limit of a worker, with a wall-clock backstop for code that sleeps or
    blocks: ``expired()`` says which one ran out ("cpu" or "wall"), if any.

    The backstop is for code that does not compute. A worker still computing when it passes
    (at least ``COMPUTING`` of a core over the last ``WINDOW`` seconds: on a busy machine it
    waits its turn to run) is left to its CPU limit, up to ``hard_seconds`` (the
    submission's own wall-clock bound), so that load alone never fails honest code."""

    COMPUTING = 0.02  # of one core; sleeping or blocked code uses none
    WINDOW = 1.0  # seconds over which that share is measured

    def __init__(self, worker, cpu_seconds, wall_seconds, hard_seconds=None):
        self.worker = worker
        self.cpu_seconds, self.wall_seconds = cpu_seconds, wall_seconds
        now = time.monotonic()
        self.wall_deadline = now + wall_seconds
        self.hard_deadline = now + (wall_seconds if hard_seconds is None else max(hard_seconds, wall_seconds))
        self.cpu_start = worker.cpu_used()
        self._samples = [(now, 0.0)]  # (time, CPU used) over the last WINDOW seconds
        # How often the CPU count is read while the worker is silent: overshoot is at most this.
        self.poll = 0.1 if worker.group is not None else 0.25

    def wait(self):
        """How long to wait for the worker before looking at the clock again."""
        return max(0.0, min(self.poll, self.hard_deadline - time.monotonic()))

    def expired(self):
        now, used = time.monotonic(), self.worker.cpu_used() - self.cpu_start
        if used >= self.cpu_seconds:
            return "cpu"
        self._samples.append((now, used))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.WINDOW:
            self._samples.pop(0)
        if now >= self.hard_deadline:
            return "wall"
        if now >= self.wall_deadline:
            since, then = self._samples[0]
            if now - since < self.WINDOW or used - then < self.COMPUTING * (now - since):
                return "wall"
        return None


class Worker:
    """One worker process. Not thread-safe: one thread drives it."""

    def __init__(self, sandbox, folder):
        self.sandbox = sandbox
        self.phase = "starting"
        self.cpu = 0.0  # CPU seconds the worker says it has used, as of its last reply
        self.process = None
        self.group = None
        self.started = time.monotonic()
        self._measured_cpu = None  # the grader's last reading of the worker's CPU seconds
        self._buffer = b""
        self._started = False  # whether the worker has said it is up (before the submission runs)
        self._unsent = bytearray()  # framed requests the pipe has not taken yet
        requests_read, self._requests = os.pipe()
        os.set_blocking(self._requests, False)
        self._replies, replies_write = os.pipe()
        # Nameless files (unlinked at once): no worker can open another's output by path.
        self._output = {name: tempfile.TemporaryFile(dir=sandbox.root) for name in ("stdout", "stderr")}
        self._phase_file = tempfile.TemporaryFile(dir=sandbox.root)
        packages = sandbox.packages_dir
        # The descriptors' numbers in fixed width: the command is then the same length on every
        # run, and so are the interpreter's first allocations (see Sandbox: determinism).
        descriptors = "".join(f"{fd:>6}" for fd in (requests_read, replies_write, self._phase_file.fileno()))
        code = (f"import sys; sys.path.insert(0, {sandbox.probes_folder_for_worker()!r}); "
                + (f"sys.path.append({packages!r}); " if packages else "")
                + f"import probes; probes.serve(*map(int, {descriptors!r}.split()))")
        self.group = sandbox.new_group()
        argv, cwd = sandbox.command(["-c", code], folder, self.group)
        self.cwd = cwd
        try:
            self.process = subprocess.Popen(
                argv, cwd=cwd, env=sandbox.environment(cwd), stdin=subprocess.DEVNULL,
                stdout=self._output["stdout"], stderr=self._output["stderr"],
                pass_fds=(requests_read, replies_write, self._phase_file.fileno()), **sandbox.spawn_options(),
            )
        except OSError:
            os.close(requests_read)
            os.close(replies_write)
            self.close()
            raise
        os.close(requests_read)
        os.close(replies_write)
        self.directory = sandbox.directory_for_worker(folder)
        if not sandbox.register(self):  # the batch was interrupted meanwhile
            self.close()
            raise OSError("the batch is stopping")

    # -- talking ---------------------------------------------------------------------

    def cpu_used(self):
        """CPU seconds the worker and its children have used, as the grader measures them
        (never the worker's own word); wall-clock seconds since its start where nothing on
        this machine can measure them."""
        measured = self.sandbox.cpu_of(self.process, self.group) if self.process is not None else None
        if measured is not None:
            self._measured_cpu = max(measured, self._measured_cpu or 0.0)
        if self._measured_cpu is None:
            return time.monotonic() - self.started
        return self._measured_cpu

    def start(self, timeout, cells=(), wall=None, hard=None):
        """Ask the worker to load the submission (a notebook: ``cells``, cell by cell),
        within ``timeout`` CPU seconds (and ``wall`` seconds; default: the limits' backstop);
        the reply's result is {"missing": [names], "cells_raised": [...]}."""
        limits = self.sandbox.limits
        rlimits = limits.rlimits()
        if self.group is not None:
            # Its control group's pids.max bounds this worker alone; RLIMIT_NPROC would count
            # every process of its user (nobody), so another submission's children could
            # leave it unable to fork its checks.
            rlimits["processes"] = None
        message = {"start": {"directory": self.directory, "limits": rlimits,
                             "output_chars": limits.output_chars, "cells": [list(c) for c in cells],
                             "top_level_seconds": limits.top_level_seconds,
                             # A sleeping demo is stopped too; a computing one only by its CPU limit.
                             "top_level_wall_seconds": limits.top_level_seconds * limits.wall_factor}}
        self.phase = LOADING
        return self._exchange(message, timeout, wall, hard)

    def request(self, probe, params, timeout, wall=None, hard=None):
        """Run one probe within ``timeout`` CPU seconds (and ``wall`` seconds)."""
        clock = self.clock(timeout, wall, hard)
        if not self.send([{"probe": probe, "params": params}]):
            return self._died()
        return self.reply(probe, clock)

    def clock(self, timeout, wall=None, hard=None):
        """A clock of ``timeout`` CPU seconds (and ``wall`` seconds; default: the limits'
        backstop; a computing worker may go on up to ``hard`` seconds), starting now."""
        return Clock(self, timeout, self.sandbox.limits.wall_clock(timeout) if wall is None else wall, hard)

    def send(self, requests):
        """Queue ``requests`` ({"probe", "params"} each) for the worker, all in one write as far
        as the pipe takes them (the rest goes while replies are awaited). False if the worker
        is gone."""
        self._unsent += b"".join(frame(json.dumps(request)) for request in requests)
        try:
            self._flush()
        except OSError:
            return False
        return True

    def reply(self, probe, clock):
        """The worker's reply to the next request it was sent, a ``probe`` request, within
        ``clock``."""
        self.phase = f"the {probe} probe"  # until the worker says more
        return self._await(clock)

    def _exchange(self, message, timeout, wall=None, hard=None):
        clock = self.clock(timeout, wall, hard)
        self._unsent += frame(json.dumps(message))
        try:
            self._flush()
        except OSError:
            return self._died()
        return self._await(clock)

    def _await(self, clock):
        while True:
            if clock.expired():  # also when phase lines never stop coming
                return self._timed_out(clock)
            reply = self._read_message(clock)
            if isinstance(reply, Reply):
                return reply
            if reply == {"phase": "starting"} and not self._started:  # the worker's first word: Python is up
                self._started = True
                continue
            if "ok" not in reply and "phase" in reply:  # the line-by-line way of reporting phases
                self.phase = _text(reply["phase"], 200) or self.phase
                continue
            if type(reply.get("cpu")) is float and 0 <= reply["cpu"] < 1e6:
                self.cpu = reply["cpu"]
            if reply.get("ok") is True and "result" in reply:
                return Reply(True, result=cap_text(reply["result"], self.sandbox.limits.reply_text_chars))
            elif reply.get("ok") is False:
                return Reply(False, error=clean_error(reply), phase=_text(reply.get("phase"), 200))
            else:
                return self._broken("the worker sent a message the grader does not understand")

    def _flush(self):
        """Write what the pipe takes of the unsent requests without blocking: a worker that
        stops reading must not stall the grader while its replies fill the other pipe.
        Raises OSError when the worker is gone."""
        while self._unsent:
            try:
                written = os.write(self._requests, self._unsent)
            except BlockingIOError:
                return
            del self._unsent[:written]

    def _read_message(self, clock):
        """The next JSON object from the worker, or a fault Reply."""
        cap = self.sandbox.limits.reply_bytes
        complete = b"\n" in self._buffer
        while not complete:
            if len(self._buffer) > cap:
                return self._broken(f"the worker sent a reply over {cap} bytes")
            writing = [self._requests] if self._unsent else []
            ready, writable, _ = select.select([self._replies], writing, [], clock.wait())
            if writable:
                try:
                    self._flush()
                except OSError:
                    return self._died()
            if not ready:
                if clock.expired():
                    return self._timed_out(clock)
                continue
            chunk = os.read(self._replies, 1 << 16)
            if not chunk:
                return self._died()
            self._buffer += chunk
            complete = b"\n" in chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        if len(line) > cap:
            return self._broken(f"the worker sent a reply over {cap} bytes")
        try:
            message = json.loads(line)
        except (ValueError, RecursionError, MemoryError):
            return self._broken("the worker sent something that is not JSON")
        if not isinstance(message, dict):
            return self._broken("the worker sent something that is not a JSON object")
        return message

    # -- faults ----------------------------------------------------------------------

    def _last_phase(self):
        """What the worker said it was doing last: the record in its phase file (read only
        now that it is dead), else the last phase line, else what the grader asked for."""
        try:
            record = os.pread(self._phase_file.fileno(), 1024, 0).split(b"\0", 1)[0]
        except (OSError, ValueError):
            record = b""
        return _text(record.decode("utf-8", "replace"), 200) or self.phase

    def _timed_out(self, clock):
        reason = clock.expired()
        self.kill()
        if reason == "wall":  # it slept or blocked: its CPU time was not used up
            return fault("timeout", f"timed out after {clock.wall_seconds:g} s of waiting", self._last_phase())
        return fault("timeout", f"timed out after {clock.cpu_seconds:g} s", self._last_phase())

    def _died(self):
        try:
            status = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            return fault("exited", "the worker closed its reply channel", self._last_phase())
        self.kill()
        wrapped = self.sandbox.level != "rlimits" or self.sandbox.drop_root
        if status < 0 or (wrapped and status > 128):  # bwrap and unshare report signals as 128 + n
            number = -status if status < 0 else status - 128
            name = _signal_name(number)
            extra = {"SIGXCPU": " (CPU time limit)", "SIGXFSZ": " (file size limit)"}.get(name, "")
            if name == "SIGKILL" and self.group is not None and self.group.out_of_memory():
                extra = " (memory limit of the worker and its children)"
            return fault("killed", f"the worker was killed by {name}{extra}", self._last_phase())
        phase = self._last_phase()
        # Died before saying it was up (the launcher's status 125, bubblewrap's own set-up
        # failing with 1, Python not starting): not a line of the submission had run.
        if not self._started:
            from .sandbox import closed_ancestor, forget_level

            forget_level(self.sandbox.level)  # if it was remembered as working, try it afresh next time
            why = self._last_error_line()
            if self.sandbox.drop_root and closed_ancestor(self.sandbox.root) is not None:
                why = (f"{why}; " if why else "") + ("its folders are in one the user nobody cannot enter: "
                                                     "set TMPDIR to a folder every user can enter")
            return fault("not-started", "the worker could not be started (sandbox set-up failed"
                         + (f": {why})" if why else ")"))
        return fault("exited", f"the worker exited with status {status}", phase)

    def _last_error_line(self):
        """The last line the worker wrote to stderr before it was up (bwrap's reason, or a
        traceback's exception), for the instructor."""
        stream = self._output["stderr"]
        stream.seek(0)
        lines = stream.read(4000).decode("utf-8", "replace").strip().splitlines()
        return _text(lines[-1], 300) if lines else ""

    def _broken(self, message):
        self.kill()
        return fault("protocol", message, self._last_phase())

    def finish(self, grace=2.0):
        """End a healthy worker: close its requests so it exits by itself (its CPU time is
        then accounted to the grader), and kill it if it does not within ``grace`` seconds."""
        if self._requests >= 0:
            os.close(self._requests)
            self._requests = -1
        if self.process is not None:
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def interrupt(self):
        """Kill the process group from another thread; the driving thread then sees the
        worker die and cleans up (only it touches the pipes)."""
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def kill(self):
        """Kill the worker's whole process group (and its control group: children that left
        the process group too) and release its pipes."""
        if self.process is not None:
            self.interrupt()
            if self.group is not None:
                self.group.kill()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for fd in (self._requests, self._replies):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._requests = self._replies = -1

    def output(self):
        """What the worker printed (truncated), for the instructor; never parsed."""
        cap = self.sandbox.limits.output_chars
        parts = []
        for name, stream in self._output.items():
            stream.seek(0)
            text = stream.read(cap + 1).decode("utf-8", "replace")
            if len(text) > cap:
                text = text[:cap] + "\n[truncated]\n"
            if text:
                parts.append(f"--- {name} ---\n{text}")
        return "".join(parts)

    def close(self):
        self.kill()
        if self.group is not None:
            self.group.remove()
        self.sandbox.unregister(self)
        for stream in (*self._output.values(), self._phase_file):
            stream.close()
        if self.cwd.parent == self.sandbox.root:  # a working folder made for this worker
            _remove_tree(self.cwd)


def _remove_tree(folder):
    from .sandbox import remove_tree

    remove_tree(folder)


def batch_end(public, start):
    """Where the batch that begins at request ``start`` ends (exclusive): where the
    requests' visibility changes, so a hidden request never waits in the pipe while a public
    check's child, which could read it, runs. ``public``: one bool per request."""
    end = start + 1
    while end < len(public) and public[end] == public[start]:
        end += 1
    return end


def submission_wall_seconds(limits, budget):
    """All the wall-clock time one submission's workers may take together, loads and
    restarts included: twice its CPU budget plus the slack (245 s by default). One bound for
    the submission, not per-start backstops that add up (docs/security.md)."""
    return budget * 2 + limits.wall_slack


class Session:
    """Grades one submission's checks, one worker at a time, restarting after faults."""

    def __init__(self, sandbox, submission, budget=None):
        self.sandbox = sandbox
        self.submission = submission
        limits = sandbox.limits
        self.budget = budget or limits.submission_timeout  # CPU seconds of all its workers
        self.wall_seconds = submission_wall_seconds(limits, self.budget)
        self.wall_deadline = time.monotonic() + self.wall_seconds
        self.folder = sandbox.write_submission(submission.sources)
        self.worker = None
        self.load_reply = None  # the first start's reply
        self.starts = 0
        self.outputs = []
        self.cpu = 0.0  # of the workers that are done, as they reported it (not trusted for grades)
        self.cpu_spent = 0.0  # of the workers that are done, as the grader measured it
        # Modules of the submission itself: a failed import of one of them is not about packages.
        self.own_modules = {"submission", *(os.path.splitext(os.path.basename(name))[0]
                                            for name in submission.sources)}

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _remaining(self):
        """(CPU seconds, wall-clock seconds) left of the submission's budget."""
        used = self.cpu_spent + (self.worker.cpu_used() if self.worker is not None else 0.0)
        return self.budget - used, self.wall_deadline - time.monotonic()

    def _limits(self, cpu_seconds):
        """(CPU, wall backstop, wall bound) limits of one exchange of ``cpu_seconds``, within
        the budget (a computing worker may pass the backstop, never the bound); None when the
        budget is spent."""
        cpu_left, wall_left = self._remaining()
        if cpu_left <= 0 or wall_left <= 0:
            return None
        return min(cpu_seconds, cpu_left), min(self.sandbox.limits.wall_clock(cpu_seconds), wall_left), wall_left

    def _over_budget(self):
        return min(self._remaining()) <= 0

    def load(self):
        """Start the first worker; its reply says whether the submission loads at all."""
        self.load_reply = self._start()
        return self.load_reply

    def _start(self):
        self._retire()
        limits = self._limits(self.sandbox.limits.load_timeout)
        if limits is None:
            return fault("budget", self._budget_message())
        try:
            self.worker = Worker(self.sandbox, self.folder)
        except OSError as error:
            raise WorkerNotStarted(f"the worker could not be started: {error}") from None
        self.starts += 1
        reply = self._explained(self.worker.start(limits[0], self.submission.cells, wall=limits[1], hard=limits[2]))
        if not reply.ok:
            self._retire()
        if reply.kind == "not-started":
            raise WorkerNotStarted(reply.fault)
        return reply

    def probe(self, probe, params, timeout):
        """Run one probe within ``timeout`` CPU seconds; a fresh worker first if the last
        one is gone."""
        if self.worker is None:
            reply = self._start()
            if not reply.ok:
                if reply.is_fault:
                    return reply
                return fault("exited", "a fresh worker could not load the submission again: "
                             f"{reply.error['error']}: {reply.error['message']}")
        limits = self._limits(timeout)
        if limits is None:
            return fault("budget", self._budget_message())
        reply = self._explained(self.worker.request(probe, params, limits[0], wall=limits[1], hard=limits[2]))
        if reply.is_fault:
            if reply.kind == "timeout" and self._over_budget():
                reply = fault("budget", self._budget_message())
            self._retire()
        return reply

    def probes(self, requests):
        """Run many probes, batched (see the module's docstring): ``requests`` is a list of
        (probe, params, timeout in CPU seconds, public: bool); yields one Reply per request,
        in order, each as ``probe`` would give it. Requests go to the worker as batches,
        each split where the requests' visibility changes; after a fault a fresh
        worker gets the rest. Each request's clock starts when the reply before it arrives,
        not when the caller asks for the next reply, so judging between replies costs the
        submission nothing."""
        position = 0
        while position < len(requests):
            if self.worker is None:
                reply = self._start()
                if not reply.ok:
                    position += 1
                    yield reply if reply.is_fault else fault(
                        "exited", "a fresh worker could not load the submission again: "
                        f"{reply.error['error']}: {reply.error['message']}")
                    continue
            batch = requests[position:batch_end([public for *_, public in requests], position)]
            worker = self.worker
            clock = self._clock(batch[0][2])
            sent = clock is not None and worker.send([{"probe": probe, "params": params}
                                                      for probe, params, _, _ in batch])
            for index, (probe, _, timeout, _) in enumerate(batch):
                if clock is None:
                    reply = fault("budget", self._budget_message())
                elif not sent:
                    reply = worker._died()
                else:
                    reply = self._explained(worker.reply(probe, clock))
                position += 1
                if reply.is_fault:
                    if reply.kind == "timeout" and self._over_budget():
                        reply = fault("budget", self._budget_message())
                    self._retire()  # the rest of the batch goes to a fresh worker
                    yield reply
                    break
                if index + 1 < len(batch):
                    clock = self._clock(batch[index + 1][2])
                yield reply

    def _clock(self, timeout):
        """The clock of the next request of ``timeout`` CPU seconds, within the budget;
        None when the budget is spent."""
        limits = self._limits(timeout)
        return None if limits is None else self.worker.clock(*limits)

    def _explained(self, reply):
        """The reply with failed imports of packages explained (``explain_import``), in
        its error and in the load's cells that raised."""
        packages = self.sandbox.packages
        if reply.error:
            reply.error = explain_import(reply.error, packages, self.own_modules)
        if reply.ok and isinstance(reply.result, dict) and isinstance(reply.result.get("cells_raised"), list):
            reply.result["cells_raised"] = [explain_import(cell, packages, self.own_modules)
                                            for cell in reply.result["cells_raised"]]
        return reply

    def _budget_message(self):
        """Which budget ran out: CPU time (it computed), or waiting (it slept or blocked)."""
        if self._remaining()[0] <= 0:
            return f"not run: the submission used up its {self.budget:g} s of CPU time"
        return (f"not run: the submission used up its {self.wall_seconds:g} s of waiting (wall-clock time: it "
                "slept, blocked or restarted its worker)")

    def _retire(self):
        if self.worker is not None:
            # All it printed is in its files by now: it flushes before every reply.
            self.outputs.append(self.worker.output())
            self.cpu += self.worker.cpu
            self.cpu_spent += self.worker.cpu_used()
            self.sandbox.reap(self.worker)
            self.worker = None

    def output(self):
        """Everything the workers printed, in order, truncated to the output limit."""
        cap = self.sandbox.limits.output_chars * 2
        text = "".join(self.outputs)
        return text if len(text) <= cap else text[:cap] + "\n[truncated]\n"

    def close(self):
        self._retire()
        if self.folder:
            self.sandbox.reap(folder=self.folder)
            self.folder = None


__all__ = ["Limits", "Reply", "Session", "Worker"]
