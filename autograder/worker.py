"""Worker: runs a submission's code in a sandboxed child process and asks it for observations.

The grading process never imports student code. It starts a worker (``sandbox.py`` says
how), sends it JSON requests on one pipe and reads JSON replies from another; between them
the worker reports the phase it is in, so that a crash or a hang can be described ("the
worker exited with status 0 during backward()"). Everything read back is untrusted: size
capped, parsed defensively, and only plain JSON values ever reach the judge.

A ``Session`` grades one submission: it writes the files once, starts a worker (which
runs the submission's top-level code), and after a worker dies or hangs starts a fresh one
for the remaining checks, all within the submission's time budget.
"""
import json
import os
import select
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

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
    kind: str = ""  # "timeout" | "exited" | "killed" | "protocol" | "budget"
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


class Worker:
    """One worker process. Not thread-safe: one thread drives it."""

    def __init__(self, sandbox, folder):
        self.sandbox = sandbox
        self.phase = "starting"
        self.cpu = 0.0  # CPU seconds the worker says it has used, as of its last reply
        self.process = None
        self._buffer = b""
        requests_read, self._requests = os.pipe()
        self._replies, replies_write = os.pipe()
        # Nameless files (unlinked at once): no worker can open another's output by path.
        self._output = {name: tempfile.TemporaryFile(dir=sandbox.root) for name in ("stdout", "stderr")}
        self._phase_file = tempfile.TemporaryFile(dir=sandbox.root)
        code = (f"import sys; sys.path.insert(0, {sandbox.probes_folder_for_worker()!r}); "
                f"import probes; probes.serve({requests_read}, {replies_write}, {self._phase_file.fileno()})")
        argv, cwd = sandbox.command(["-c", code], folder)
        self.cwd = cwd
        try:
            self.process = subprocess.Popen(
                argv, cwd=cwd, env=sandbox.environment(cwd), stdin=subprocess.DEVNULL,
                stdout=self._output["stdout"], stderr=self._output["stderr"],
                pass_fds=(requests_read, replies_write, self._phase_file.fileno()), **sandbox.spawn_options(),
            )
        except OSError:
            self.close()
            raise
        finally:
            os.close(requests_read)
            os.close(replies_write)
        self.directory = sandbox.directory_for_worker(folder)
        if not sandbox.register(self):  # the batch was interrupted meanwhile
            self.close()
            raise OSError("the batch is stopping")

    # -- talking ---------------------------------------------------------------------

    def start(self, timeout, cells=()):
        """Ask the worker to load the submission (a notebook: ``cells``, cell by cell); the
        reply's result is {"missing": [names], "cells_raised": [...]}."""
        limits = self.sandbox.limits
        message = {"start": {"directory": self.directory, "limits": limits.rlimits(),
                             "output_chars": limits.output_chars, "cells": [list(c) for c in cells],
                             "top_level_seconds": limits.top_level_seconds}}
        self.phase = LOADING
        return self._exchange(message, timeout)

    def request(self, probe, params, timeout):
        self.phase = f"the {probe} probe"  # until the worker says more
        return self._exchange({"probe": probe, "params": params}, timeout)

    def _exchange(self, message, timeout):
        deadline = time.monotonic() + timeout
        try:
            self._send(message)
        except OSError:
            return self._died()
        while True:
            if time.monotonic() > deadline:  # also when phase lines never stop coming
                return self._timed_out(timeout)
            reply = self._read_message(deadline, timeout)
            if isinstance(reply, Reply):
                return reply
            if "ok" not in reply and "phase" in reply:  # the line-by-line way of reporting phases
                self.phase = _text(reply["phase"], 200) or self.phase
                continue
            if type(reply.get("cpu")) is float and 0 <= reply["cpu"] < 1e6:
                self.cpu = reply["cpu"]
            if reply.get("ok") is True and "result" in reply:
                return Reply(True, result=reply["result"])
            elif reply.get("ok") is False:
                return Reply(False, error=clean_error(reply), phase=_text(reply.get("phase"), 200))
            else:
                return self._broken("the worker sent a message the grader does not understand")

    def _send(self, message):
        data = (json.dumps(message) + "\n").encode()
        while data:
            data = data[os.write(self._requests, data):]

    def _read_message(self, deadline, timeout):
        """The next JSON object from the worker, or a fault Reply."""
        cap = self.sandbox.limits.reply_bytes
        complete = b"\n" in self._buffer
        while not complete:
            if len(self._buffer) > cap:
                return self._broken(f"the worker sent a reply over {cap} bytes")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return self._timed_out(timeout)
            ready, _, _ = select.select([self._replies], [], [], remaining)
            if not ready:
                return self._timed_out(timeout)
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

    def _timed_out(self, timeout):
        self.kill()
        return fault("timeout", f"timed out after {timeout:g} s", self._last_phase())

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
            return fault("killed", f"the worker was killed by {name}{extra}", self._last_phase())
        phase = self._last_phase()
        if status == 125 and phase == LOADING:
            return fault("exited", "the worker could not be started (sandbox set-up failed)")
        return fault("exited", f"the worker exited with status {status}", phase)

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
        """Kill the worker's whole process group and release its pipes."""
        if self.process is not None:
            self.interrupt()
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
        self.sandbox.unregister(self)
        for stream in (*self._output.values(), self._phase_file):
            stream.close()
        if self.cwd.parent == self.sandbox.root:  # a working folder made for this worker
            _remove_tree(self.cwd)


def _remove_tree(folder):
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


class Session:
    """Grades one submission's checks, one worker at a time, restarting after faults."""

    def __init__(self, sandbox, submission, budget=None):
        self.sandbox = sandbox
        self.submission = submission
        limits = sandbox.limits
        self.deadline = time.monotonic() + (budget or limits.submission_timeout)
        self.folder = sandbox.write_submission(submission.sources)
        self.worker = None
        self.load_reply = None  # the first start's reply
        self.starts = 0
        self.outputs = []
        self.cpu = 0.0  # of the workers that are done, as they reported it (not trusted for grades)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _remaining(self):
        return self.deadline - time.monotonic()

    def load(self):
        """Start the first worker; its reply says whether the submission loads at all."""
        self.load_reply = self._start()
        return self.load_reply

    def _start(self):
        self._retire()
        timeout = min(self.sandbox.limits.load_timeout, self._remaining())
        if timeout <= 0:
            return fault("budget", self._budget_message())
        try:
            self.worker = Worker(self.sandbox, self.folder)
        except OSError as error:
            return fault("exited", f"the worker could not be started: {error}")
        self.starts += 1
        reply = self.worker.start(timeout, self.submission.cells)
        if not reply.ok:
            self._retire()
        return reply

    def probe(self, probe, params, timeout):
        """Run one probe; a fresh worker first if the last one is gone."""
        if self.worker is None:
            reply = self._start()
            if not reply.ok:
                if reply.is_fault:
                    return reply
                return fault("exited", "a fresh worker could not load the submission again: "
                             f"{reply.error['error']}: {reply.error['message']}")
        remaining = self._remaining()
        if remaining <= 0:
            return fault("budget", self._budget_message())
        reply = self.worker.request(probe, params, min(timeout, remaining))
        if reply.is_fault:
            if reply.kind == "timeout" and timeout > remaining:
                reply = fault("budget", self._budget_message())
            self._retire()
        return reply

    def _budget_message(self):
        return f"not run: the submission used up its {self.sandbox.limits.submission_timeout:g} s time budget"

    def _retire(self):
        if self.worker is not None:
            # All it printed is in its files by now: it flushes before every reply.
            self.outputs.append(self.worker.output())
            self.cpu += self.worker.cpu
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
