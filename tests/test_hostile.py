"""Hostile submissions (tests/hostile.py) graded as one batch per isolation level, through
the command line as an instructor runs it. Per case: no trick scores above the honest
submission it is built on, and the attack's own report says it got nowhere. Per batch: it
finishes within a bound, every submission has a row, nothing outside OUT is created or
changed, and no process a submission started outlives it. At a level where a case cannot
hold, its test is skipped with the reason, and ``test_attacks_work_where_nothing_stops_them``
shows the attack is real."""
import csv
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from autograder import report, sandbox

import hostile
from hostile import BY_NAME, CASES, HONEST, Place

pytestmark = pytest.mark.sandbox

# `autodiff101 grade` with short limits: the same command line, so a trick that reads the
# grader's arguments from /proc finds `-o OUT`.
GRADER = """
import sys
from autograder import cli, grade
from autograder.sandbox import Limits
grade.Limits = lambda: Limits(load_timeout=5.0, submission_timeout=8.0)
sys.exit(cli.main(sys.argv[1:]))
"""
JOBS = 3
# CPU seconds of the whole batch, grader and workers (about 20 s; the two hanging cases use
# their 8 s budgets). CPU time, not wall-clock time: a busy machine must not fail the test.
BOUND_CPU_SECONDS = 90
# Only to end a batch that hangs: on a loaded machine it may take several times its CPU time.
HANG_SECONDS = 900
TRICKS_OUTSIDE_OUT = ("forge-autograder", "forge-out", "fill-disk")


@pytest.fixture(scope="session")
def zip_bomb(tmp_path_factory):
    return hostile.build_zip_bomb(tmp_path_factory.mktemp("bomb") / "bomb.zip")


@pytest.fixture(scope="session")
def listener():
    """A TCP listener on 127.0.0.1 recording what every connection sends."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    received, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            with connection:
                connection.settimeout(2)
                try:
                    received.append(connection.recv(100).decode(errors="replace"))
                except OSError:
                    received.append("")

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], received
    stop.set()
    thread.join()
    server.close()


@dataclass
class Graded:
    level: str
    root: bool
    out: Path
    rows: dict  # id -> grades.csv row
    stdout: str
    returncode: int
    seconds: float  # wall-clock time, reported only
    cpu: float  # CPU seconds of the grader and every worker it waited for
    changed: list  # paths outside OUT created, changed or removed
    left_in_tmp: list  # what the grader left in its TMPDIR
    autograder_created: bool
    survivors: dict  # "f" (fork storm) / "d" (detached child) / "h" (fork hoard) -> pids alive after the batch
    host_files: list  # files fill-disk left in the host's scratch folders
    connections: int  # connections to the listener that carried this batch's marker

    def score(self, name):
        return float(self.rows[name]["score"])

    def output(self, name):
        path = self.out / name / report.OUTPUT
        return path.read_text(errors="replace") if path.exists() else ""

    def results(self, name):
        return report.read_results(self.out, name)


def snapshot(folder, skip):
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")
            if skip not in p.parents and p != skip}


def marked_processes(marker):
    """Live processes whose name starts with ``marker``: {suffix: [pids]}."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if name.startswith(marker) and state != "Z":
            found.setdefault(name[len(marker) + 1:], []).append(int(entry.name))
    return found


def survivors_after(marker, wait=20.0):
    """Processes of this batch's submissions still alive ``wait`` s after it ended (a wide
    margin: killed processes take a moment to go on a loaded machine; none is meant to live)."""
    deadline = time.monotonic() + wait
    while marked_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = marked_processes(marker)
    for pids in alive.values():  # ours, started by this batch's submissions: end them
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return alive


@pytest.fixture(scope="module", params=hostile.LEVELS)
def graded(request, tmp_path_factory, zip_bomb, listener):
    level = request.param
    problem = sandbox.level_problem(level)
    if problem:
        pytest.skip(f"isolation {level!r} is not available here: {problem}")
    port, received = listener
    root = tmp_path_factory.mktemp(f"hostile-{level}")
    subs, out, cwd = root / "submissions", root / "OUT", root / "cwd"
    cwd.mkdir()
    place = Place(subs, "hx" + secrets.token_hex(4), port, zip_bomb)
    hostile.write_corpus(place)
    # The grader's temporary folders, where a worker's scratch space and ../ lead: checked empty after.
    grader_tmp = Path(tempfile.mkdtemp(prefix="autodiff101-hostile-"))
    grader_tmp.chmod(0o711)
    before = snapshot(root, out)
    autograder_existed = os.path.exists("/autograder")
    started = time.monotonic()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    argv = [sys.executable, "-c", GRADER, "grade", str(subs), "-o", str(out), "-j", str(JOBS),
            "--seed", "7", "--isolation", level]
    try:
        done = subprocess.run(argv, cwd=cwd, env=dict(os.environ, TMPDIR=str(grader_tmp)),
                              capture_output=True, text=True, timeout=HANG_SECONDS)
        seconds = time.monotonic() - started
        cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
        survivors = survivors_after(place.marker)
        autograder_created = not autograder_existed and os.path.exists("/autograder")
        left_in_tmp = sorted(p.name for p in grader_tmp.iterdir())
        host_files = [str(p) for folder in hostile.HOST_SCRATCH for p in Path(folder).glob(place.marker + "*")]
    finally:
        for folder in hostile.HOST_SCRATCH:  # written at a level that cannot stop it
            for path in Path(folder).glob(place.marker + "*"):
                path.unlink()
        if not autograder_existed and os.path.exists("/autograder"):
            shutil.rmtree("/autograder")  # forged at a level that cannot stop it
        shutil.rmtree(grader_tmp, ignore_errors=True)
    after = snapshot(root, out)
    changed = sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))
    with open(out / report.GRADEBOOK) as stream:
        rows = {row["submission"]: row for row in csv.DictReader(stream)}
    print(f"\n{level}: {len(rows)} submissions graded in {seconds:.1f} s, {cpu:.1f} s of CPU time")
    return Graded(level, os.geteuid() == 0, out, rows, done.stdout + done.stderr, done.returncode, seconds, cpu,
                  changed, left_in_tmp, autograder_created, survivors, host_files,
                  sum(place.marker in message for message in received))


def skip_unless_it_holds(graded, name):
    reason = BY_NAME[name].cannot_hold(graded.level, graded.root)
    if reason:
        pytest.skip(f"{name} cannot hold at {graded.level}: {reason}")


# --- the batch ------------------------------------------------------------------------------


def test_batch_finishes_within_the_bound(graded):
    assert graded.returncode == 0, graded.stdout[-3000:]
    assert graded.cpu < BOUND_CPU_SECONDS


def test_every_submission_has_a_row_and_a_complete_results_file(graded):
    expected = {HONEST, *BY_NAME}
    assert set(graded.rows) == expected
    assert len(graded.rows) == len(expected)
    for name, row in graded.rows.items():
        assert row["status"] in report.STATUSES and row["isolation"] == graded.level
        results = graded.results(name)
        assert results is not None, name
        if not BY_NAME["forge-out"].cannot_hold(graded.level, graded.root):
            assert results["extra_data"]["submission"] == name
            assert results["score"] == float(row["score"])


def test_the_honest_submission_is_graded_with_its_bug(graded):
    assert graded.rows[HONEST]["status"] == "graded"
    assert 0 < graded.score(HONEST) < 100


def test_the_honest_submission_scores_in_the_batch_what_it_scores_alone(graded, tmp_path):
    """Nothing the tricks do reaches another submission's grade: graded alone, at the same
    level with the same seed and limits, the honest submission gets the same score, check by
    check, as beside every trick."""
    (source,) = (graded.out.parent / "submissions").glob(f"{HONEST}.*")
    alone, out = tmp_path / "alone", tmp_path / "OUT"
    alone.mkdir()
    shutil.copy(source, alone)
    done = subprocess.run([sys.executable, "-c", GRADER, "grade", str(alone), "-o", str(out), "-j", "1",
                           "--seed", "7", "--isolation", graded.level],
                          capture_output=True, text=True, timeout=HANG_SECONDS)
    assert done.returncode == 0, done.stderr

    def per_check(results):
        return {test["name"]: (test["score"], test["max_score"]) for test in results["tests"]}

    assert per_check(report.read_results(out, HONEST)) == per_check(graded.results(HONEST))
    assert report.read_results(out, HONEST)["score"] == graded.score(HONEST)


def test_nothing_outside_out_is_created_or_changed(graded):
    undefended = [n for n in TRICKS_OUTSIDE_OUT if BY_NAME[n].cannot_hold(graded.level, graded.root)]
    if undefended:
        pytest.skip(f"at {graded.level}, {', '.join(undefended)} write outside OUT: "
                    + "; ".join(BY_NAME[n].cannot_hold(graded.level, graded.root) for n in undefended))
    assert graded.changed == []
    assert graded.left_in_tmp == []
    assert not graded.autograder_created
    assert graded.host_files == []


def test_no_process_a_submission_started_outlives_the_batch(graded):
    skip_unless_it_holds(graded, "detached-child")
    assert graded.survivors == {}


def test_a_warning_names_the_stronger_level_when_one_is_available(graded):
    warnings = [line for line in graded.stdout.splitlines() if line.startswith("warning:")]
    best = sandbox.strongest_level()
    if graded.level == best:
        assert warnings == [] if best == "bubblewrap" else len(warnings) == 1
        return
    assert len(warnings) == 1
    assert graded.level in warnings[0] and best in warnings[0] and warnings[0].rstrip().endswith("machine")


# --- every case -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [case.name for case in CASES])
def test_trick_scores_no_more_than_the_honest_submission(graded, name):
    skip_unless_it_holds(graded, name)
    assert graded.score(name) <= graded.score(HONEST)
    assert "ESCAPED" not in graded.output(name)
    check = CHECKS.get(name)
    if check:
        check(graded, graded.rows[name])


def messages(graded, name):
    return " | ".join(test["output"] for test in graded.results(name)["tests"])


def lost_to_the_lie(graded, row):
    assert graded.score(row["submission"]) < graded.score(HONEST)


def check_exit_in_backward(graded, row):
    assert "SystemExit" in messages(graded, row["submission"])


def check_exit_at_import(graded, row):
    assert row["status"] == "crashed" and float(row["score"]) == 0
    assert "exited with status 0" in graded.results(row["submission"])["extra_data"]["message"]


def check_keyboard_interrupt(graded, row):
    assert "KeyboardInterrupt" in messages(graded, row["submission"])


# A check that spins is stopped by its CPU limit ("timed out"). On a heavily loaded machine
# (load average 12 on 2 cores here) the whole submission's wall-clock bound, which stops
# sleepers, can end it first ("used up its 21 s of waiting"): stopped for time either way.
STOPPED_FOR_TIME = re.compile(r"timed out|used up its \d+ s of waiting")


def check_endless_loop(graded, row):
    assert STOPPED_FOR_TIME.search(messages(graded, row["submission"]))


def check_memory(graded, row):
    # MemoryError, or the load timeout first; on a busy machine the top-level code may instead
    # run past its time budget and be stopped there like an interrupted cell, and what it
    # defined until then is graded (never above the honest part, asserted for every case).
    notes = graded.results(row["submission"])["extra_data"].get("notes", [])
    stopped = row["status"] == "graded" and any("was stopped" in note for note in notes)
    assert stopped or (row["status"] in ("load-error", "crashed", "timeout") and float(row["score"]) == 0)


def check_fork_storm(graded, row):
    assert "f" not in graded.survivors
    forked = int(re.search(r"forked (\d+)", graded.output(row["submission"]))[1])
    assert forked > 0
    if graded.level != "rlimits" or not graded.root:  # RLIMIT_NPROC holds for every user but root
        assert forked < sandbox.Limits().processes


def check_fork_hoard(graded, row):
    hoarded = int(re.search(r"HOARDED (\d+) MB", graded.output(row["submission"]))[1])
    assert 0 < hoarded <= sandbox.Limits().total_memory_bytes >> 20  # of the 4 x 600 MB it tried
    assert "h" not in graded.survivors


def check_flood(graded, row):
    limit = 3 * 64 * 1024  # stdout and stderr are each kept to 64 KB
    assert (graded.out / row["submission"] / report.OUTPUT).stat().st_size < limit


def check_flood_fd(graded, row):
    check_flood(graded, row)
    assert float(row["score"]) == 0  # its write fails past RLIMIT_FSIZE, at import


def check_segfault(graded, row):
    assert "SIGSEGV" in messages(graded, row["submission"])
    assert float(row["score"]) > 0  # the checks that never call backward() still ran


def check_forge_autograder(graded, row):
    assert not graded.autograder_created
    assert "blocked" in graded.output(row["submission"])


def check_fill_disk(graded, row):
    assert graded.host_files == []
    assert "wrote" in graded.output(row["submission"])


def check_forge_out(graded, row):
    assert "grader command:" in graded.output(row["submission"])
    for name in (row["submission"], HONEST):
        assert graded.results(name)["extra_data"]["submission"] == name
        assert graded.results(name)["score"] == graded.score(name)
    assert not any("planted" in path for path in graded.changed)


def check_detached_child(graded, row):
    assert "d" not in graded.survivors
    assert STOPPED_FOR_TIME.search(messages(graded, row["submission"]))


def check_leak(graded, row):
    tests = graded.results(row["submission"])["tests"]
    assert any("LEAK" in test["output"] for test in tests if test["visibility"] == "visible")  # it did leak there
    assert not any("LEAK" in test["output"] for test in tests if test["visibility"] != "visible")
    feedback = (graded.out / row["submission"] / report.FEEDBACK).read_text()
    hidden = [line for line in feedback.split("\n- ") if "(hidden check)" in line or "after the due date" in line]
    assert hidden and not any("LEAK" in entry for entry in hidden)


def check_network(graded, row):
    assert graded.connections == 0
    assert "blocked" in graded.output(row["submission"])


def rejected_saying(*words):
    def check(graded, row):
        assert row["status"] in ("rejected", "load-error") and float(row["score"]) == 0
        message = graded.results(row["submission"])["extra_data"]["message"]
        assert all(word in message for word in words), message
    return check


CHECKS = {
    "mock-value": lost_to_the_lie, "nan-and-inf": lost_to_the_lie,
    "sys-exit-in-backward": check_exit_in_backward, "os-exit-at-import": check_exit_at_import,
    "keyboard-interrupt": check_keyboard_interrupt, "endless-loop": check_endless_loop,
    "memory-at-import": check_memory, "fork-storm": check_fork_storm, "fork-hoard": check_fork_hoard,
    "stdout-flood": check_flood, "stdout-flood-fd": check_flood_fd,
    "segfault": check_segfault, "deep-recursion": check_segfault,
    "fill-disk": check_fill_disk, "forge-autograder": check_forge_autograder, "forge-out": check_forge_out,
    "detached-child": check_detached_child, "leak-hidden-inputs": check_leak, "leak-by-phase": check_leak, "leak-by-names": check_leak, "network": check_network,
    "zip-climbing-out": rejected_saying("climbs out"), "zip-bomb": rejected_saying("expands to more than"), "symlink-to-reference": rejected_saying("symbolic link"),
    "huge-source": rejected_saying("30.0 MB", "over the"), "not-utf8": rejected_saying("not UTF-8"),
    "markdown-only": rejected_saying("no code cells"),
}


def test_attacks_work_where_nothing_stops_them(graded):
    """Where a case cannot hold, its attack succeeds: the corpus really attacks, so the
    cases that hold at stronger levels are held, not harmless."""
    undefended = [case.name for case in CASES if case.cannot_hold(graded.level, graded.root)]
    if not undefended:
        pytest.skip(f"every case holds at {graded.level}")
    for name in undefended:
        if name == "detached-child":
            assert graded.survivors.get("d"), "the detached child did not survive"
        elif name == "network":
            assert graded.connections == 1
        elif name == "forge-autograder":
            assert graded.autograder_created
        elif name == "fill-disk":
            assert graded.host_files
        elif name == "fork-hoard":
            hoarded = int(re.search(r"HOARDED (\d+) MB", graded.output(name))[1])
            assert hoarded > sandbox.Limits().total_memory_bytes >> 20
        elif name == "oracle" and graded.level == "rlimits":
            assert graded.score(name) > graded.score(HONEST)
        if name not in ("detached-child", "forge-autograder", "fork-hoard") and (name != "oracle" or graded.level == "rlimits"):
            assert "ESCAPED" in graded.output(name), name  # (a copy of the reference may be nowhere to find)


def test_security_page_has_the_current_table():
    page = Path(__file__).resolve().parents[1] / "docs" / "security.md"
    assert hostile.table() in page.read_text(), "regenerate it: python tests/hostile.py"
