"""Benchmark: where one submission's time goes in the grading process, phase by phase.

    python benchmarks/phases.py [--repeat 5] [--notebook]

Each repetition is a fresh process (as on Gradescope) that times, with ``time.perf_counter``:
importing the grading path (``autograder.grade``), compiling the checks with an empty cache
(the reference runs every probe) and reading them back from the cache, finding the isolation
level (a trial worker) and reading it back, resolving the allowed packages and reading them
back (each remembered on disk: ``checkcache.remembered``), loading the submission (the
reference as one .py, or as a notebook with ``--notebook``), preparing the sandbox, and
grading it (worker start, probes, judging) twice: the first time in the process and again.
Prints min and median of each phase over the repetitions, and the peer ``python -c pass``
timed between them.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from single import ROOT, environment  # noqa: E402

PHASES = r"""
import json, sys, time
marks = [("start", time.perf_counter())]
def mark(name):
    marks.append((name, time.perf_counter()))
from autograder import checkcache, grade, load, sandbox
mark("imports of the grading path")
grade.compile_checks(5)
mark("compiling the checks (empty cache)")
checkcache._memory.clear()
compiled = grade.compile_checks(5)
mark("reading them from the cache")
sandbox.strongest_level()
mark("isolation level (trial worker, empty cache)")
sandbox._checked.clear()
sandbox.strongest_level()
mark("isolation level (remembered on disk)")
sandbox.resolve_packages(sandbox.allowed_packages())
mark("allowed packages resolved (empty cache)")
sandbox._resolved.clear()
sandbox.resolve_packages(sandbox.allowed_packages())
mark("allowed packages (remembered on disk)")
submission = load.load(sys.argv[1])
mark("loading the submission")
with sandbox.Sandbox("auto") as box:
    mark("sandbox prepared")
    record = grade.grade_submission(submission, compiled, box)
    mark("grading it (worker, probes, judging)")
    again = grade.grade_submission(submission, compiled, box)
    mark("grading it again in the same process")
assert record["status"] == "graded" and record["score"] == again["score"]
print(json.dumps({name: end - begin for (_, begin), (name, end) in zip(marks, marks[1:])}
                 | {"worker CPU (as the worker reports it)": record.get("worker_cpu", 0.0)}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="repetitions, at least 5")
    parser.add_argument("--notebook", action="store_true", help="the reference as a notebook, not a .py")
    args = parser.parse_args()
    if args.repeat < 5:
        parser.error("--repeat must be at least 5 (medians of at least 5)")
    from autograder import examples

    print("\n".join(environment("auto")))
    with tempfile.TemporaryDirectory(prefix="autodiff101-phases-") as work:
        work = Path(work)
        sources = examples.reference_sources()
        path = work / ("one.ipynb" if args.notebook else "one.py")
        path.write_text(examples.notebook_text(sources) if args.notebook else examples.one_module(sources) + examples.DEMO)
        times, peer = {}, []
        for i in range(args.repeat):
            env = dict(os.environ, PYTHONPATH=str(ROOT), AUTODIFF101_CACHE=str(work / f"cache{i}"))
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            peer.append(time.perf_counter() - started)
            done = subprocess.run([sys.executable, "-c", PHASES, str(path)], env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(done.stderr[-3000:])
            for name, seconds in json.loads(done.stdout.splitlines()[-1]).items():
                times.setdefault(name, []).append(seconds)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"submission: the reference as {path.name}; repetitions: {args.repeat}, each a fresh process\n")
    print("| phase | min s | median s |\n|---|---:|---:|")
    print(f"| `python -c pass` (the peer, between repetitions) | {min(peer):.3f} | {statistics.median(peer):.3f} |")
    for name, values in times.items():
        print(f"| {name} | {min(values):.3f} | {statistics.median(values):.3f} |")


if __name__ == "__main__":
    main()
