"""Fault injection: `autodiff101 grade` killed with SIGKILL halfway through a batch of 50,
then the same command again. Every submission ends with exactly one row and one complete
results.json, nothing done before the kill is graded again, and no reader ever sees a
results.json half written."""
import csv
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from autograder import examples, report

from conftest import ASSIGN_INSTEAD_OF_ADD, write_submission

SIZE = 50
# The reference and mutants of it that still load (None: the reference itself).
VARIANTS = [None, ASSIGN_INSTEAD_OF_ADD] + [patches[0] for name, (_, patches) in examples.BUGS.items()
                                            if name not in ("syntax-error", "add-assigns-grad")]


class Watcher(threading.Thread):
    """Parses every results.json in OUT as often as it can, until stopped: each version a
    reader could have seen, and what did not parse."""

    def __init__(self, out):
        super().__init__(daemon=True)
        self.out = out
        self.seen = {}  # path -> (mtime_ns, parsed results) at the last look
        self.unparsable = []
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            self.look()
            time.sleep(0.02)
        self.look()

    def look(self):
        for path in self.out.glob(f"*/{report.RESULTS}"):
            try:
                stamp = path.stat().st_mtime_ns
                if self.seen.get(path, (None,))[0] == stamp:
                    continue
                text = path.read_text()
            except FileNotFoundError:
                continue
            try:
                self.seen[path] = (stamp, json.loads(text))
            except ValueError:
                self.unparsable.append((path, text[-200:]))

    def stop(self):
        self.stopping.set()
        self.join()


@pytest.fixture
def batch_of_50(tmp_path):
    """50 submissions, copies of the reference and of its mutants."""
    subs = tmp_path / "submissions"
    for number in range(SIZE):
        patch = VARIANTS[number % len(VARIANTS)]
        # A comment with the number makes each one a distinct file, as students' are.
        write_submission(subs, f"student-{number:02d}", *([patch] if patch else []), before=f"# student {number}\n")
    return subs, tmp_path / "OUT"


def grade_command(subs, out):
    return [sys.executable, "-m", "autograder", "grade", str(subs), "-o", str(out), "-j", "2", "--seed", "11"]


def results_on_disk(out):
    return {path.parent.name: (path.stat().st_mtime_ns, path.read_text()) for path in out.glob(f"*/{report.RESULTS}")}


@pytest.mark.slow
def test_killed_batch_resumes_without_losing_or_regrading(batch_of_50):
    subs, out = batch_of_50
    watcher = Watcher(out)
    watcher.start()
    try:
        grader = subprocess.Popen(grade_command(subs, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while len(results_on_disk(out)) < SIZE // 2 and grader.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(grader.pid, signal.SIGKILL)
        grader.wait()
        assert grader.returncode == -signal.SIGKILL, "the batch finished before it could be killed"
        before = results_on_disk(out)
        assert SIZE // 2 <= len(before) < SIZE

        rerun = subprocess.run(grade_command(subs, out), capture_output=True, text=True, timeout=600)
    finally:
        watcher.stop()
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    summary = re.search(r"graded (\d+), already done (\d+)", " ".join(rerun.stdout.split()))
    assert summary and (int(summary[1]), int(summary[2])) == (SIZE - len(before), len(before))

    after = results_on_disk(out)
    assert sorted(after) == sorted(f"student-{n:02d}" for n in range(SIZE))
    for name, (stamp, text) in before.items():  # untouched by the rerun: not graded twice
        assert after[name] == (stamp, text), name
    with open(out / report.GRADEBOOK) as stream:
        rows = [row["submission"] for row in csv.DictReader(stream)]
    assert sorted(rows) == sorted(after) and len(rows) == SIZE
    complete = {name: json.loads(text) for name, (_, text) in after.items()}
    for name, results in complete.items():
        assert results["extra_data"]["submission"] == name and results["extra_data"]["seed"] == 11
        assert results["extra_data"]["status"] == "graded"
    assert len({len(results["tests"]) for results in complete.values()}) == 1  # every check, every time

    assert watcher.unparsable == [], "a reader saw a results.json half written"
    assert len(watcher.seen) == SIZE
