"""Benchmark: grading throughput of ``autodiff101 grade``.

    python benchmarks/grading.py [--submissions 100] [-j 2] [--isolation auto] [--without CHECK ...]

Writes a batch of submissions made from the reference (a mix of one-file .py and .ipynb
notebooks, correct and with the bugs of ``autograder.examples``, every notebook with the
magics, prints and training loop students leave in), grades it into a fresh OUT with
``grade.grade`` (as the command line does, at the strongest isolation unless told) and
prints seconds for the batch and per submission, then a rerun's time (every submission
skipped: the cost of resuming). ``--without`` leaves checks out of the catalogue, to see
what a check costs.
"""
import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

from autograder import examples, grade

# Variants cycled through the batch: (suffix, bug or None).
VARIANTS = [(".py", None), (".ipynb", None)] + [
    (suffix, bug) for bug in examples.BUGS if bug != "syntax-error" for suffix in (".py", ".ipynb")
]


def write_batch(folder, count):
    reference = examples.reference_sources()
    for index in range(count):
        suffix, bug = VARIANTS[index % len(VARIANTS)]
        sources = dict(reference)
        if bug:
            # Every bug of the examples lives in engine.py; patch it there.
            sources["engine.py"] = examples.patched(sources["engine.py"], examples.BUGS[bug][1])
        name = f"student-{index:03d}-{bug or 'correct'}{suffix}"
        if suffix == ".py":
            text = examples.one_module(sources) + examples.DEMO
        else:
            text = examples.notebook_text(sources)
        (folder / name).write_text(text, encoding="utf-8")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=100)
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("--isolation", default="auto")
    parser.add_argument("--without", nargs="*", default=[], metavar="CHECK", help="check ids to leave out")
    args = parser.parse_args()
    if args.without:
        compile_all = grade.compile_checks
        grade.compile_checks = lambda *a, **k: [c for c in compile_all(*a, **k) if c["id"] not in args.without]
    load_before = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="autodiff101-bench-") as work:
        submissions, out = Path(work) / "submissions", Path(work) / "out"
        submissions.mkdir()
        write_batch(submissions, args.submissions)
        cpu_before = _cpu_seconds()
        started = time.perf_counter()
        batch = grade.grade([submissions], out=out, jobs=args.jobs, isolation=args.isolation, seed=1)
        seconds = time.perf_counter() - started
        grader_cpu, children_cpu = (after - before for after, before in zip(_cpu_seconds(), cpu_before))
        # What the workers report (the grader cannot account for processes inside bubblewrap).
        workers_cpu = sum(json.loads((out / row["id"] / "results.json").read_text())["extra_data"]["timing"]
                          ["worker_cpu_seconds"] for row in batch.rows)
        started = time.perf_counter()
        rerun = grade.grade([submissions], out=out, jobs=args.jobs, isolation=args.isolation, seed=1)
        rerun_seconds = time.perf_counter() - started

    statuses = {}
    for row in batch.rows:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}")
    print(f"{args.submissions} submissions ({len(VARIANTS)} variants: .py and .ipynb, correct and buggy), "
          f"{len(batch.check_ids)} checks each, -j {args.jobs}, isolation {batch.isolation}")
    print(f"statuses: {statuses}")
    print(f"batch: {seconds:.2f} s, {seconds / args.submissions:.3f} s per submission")
    print(f"CPU: grader {grader_cpu:.2f} s, its other children {children_cpu:.2f} s, workers {workers_cpu:.2f} s "
          f"as they report it; {(grader_cpu + workers_cpu) / args.submissions:.3f} CPU s per submission "
          f"(load average before the run {load_before:.2f})")
    print(f"rerun (all skipped): {rerun_seconds:.2f} s ({rerun.skipped} skipped)")


def _cpu_seconds():
    """CPU time (user + system) of this process and of its finished children (the workers
    below bubblewrap, whose sandboxed processes are not accounted to the grader; graphviz)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


if __name__ == "__main__":
    main()
