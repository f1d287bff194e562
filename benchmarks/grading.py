"""Benchmark: grading throughput of ``autodiff101 grade``.

    python benchmarks/grading.py [--submissions 100] [-j 2] [--repeat 5] [--isolation auto]

Writes a batch of submissions made from the reference (a mix of one-file .py and .ipynb
notebooks, correct and with the bugs of ``autograder.examples``, every notebook with the
magics, prints and training loop students leave in), then, every repetition, times as whole
processes: ``python -c pass`` (the peer: starting the interpreter), ``autodiff101 grade
SUBMISSIONS -o FRESH -j 2 --seed 1`` (as the command line runs it, at the strongest isolation
unless told), and a rerun into that OUT (every submission skipped: the cost of resuming).
Prints the environment, min and median of each over the repetitions, the batch's ratio to
the peer, and the CPU the workers report per submission.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autograder import examples  # noqa: E402
from single import ROOT, environment, timed  # noqa: E402

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
    parser.add_argument("--repeat", type=int, default=5, help="repetitions, at least 5")
    parser.add_argument("--isolation", default="auto")
    args = parser.parse_args()
    if args.repeat < 5:
        parser.error("--repeat must be at least 5 (medians of at least 5)")
    print("\n".join(environment(args.isolation)))
    with tempfile.TemporaryDirectory(prefix="autodiff101-bench-") as work:
        work = Path(work)
        submissions = work / "submissions"
        submissions.mkdir()
        write_batch(submissions, args.submissions)
        env = dict(os.environ, PYTHONPATH=str(ROOT), AUTODIFF101_CACHE=str(work / "cache"))
        grade = [sys.executable, "-m", "autograder.cli", "grade", submissions, "-j", str(args.jobs),
                 "--seed", "1", "--isolation", args.isolation]
        timed([*grade, "-o", work / "warm"], env)  # compiles the checks into this run's cache, untimed
        peer, batch, rerun, worker_cpu = [], [], [], []
        for i in range(args.repeat):
            out = work / f"out{i}"
            peer.append(timed([sys.executable, "-c", "pass"], env))
            batch.append(timed([*grade, "-o", out], env))
            rerun.append(timed([*grade, "-o", out], env))
            worker_cpu.append(sum(json.loads(path.read_text())["extra_data"]["timing"]["worker_cpu_seconds"]
                                  for path in out.glob("*/results.json")) / args.submissions)
        statuses = {}
        for path in (work / "out0").glob("*/results.json"):
            status = json.loads(path.read_text())["extra_data"]["status"]
            statuses[status] = statuses.get(status, 0) + 1
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{args.submissions} submissions ({len(VARIANTS)} variants: .py and .ipynb, correct and buggy), "
          f"-j {args.jobs}; statuses {statuses}; repetitions: {args.repeat}, interleaved; checks' cache warm\n")
    median = statistics.median
    print("| command | min s | median s | median / `python -c pass` |")
    print("|---|---:|---:|---:|")
    print(f"| `python -c pass` | {min(peer):.3f} | {median(peer):.3f} | 1× |")
    print(f"| `autodiff101 grade` {args.submissions} submissions `-j {args.jobs}` | {min(batch):.2f} | "
          f"{median(batch):.2f} | {median(batch) / median(peer):.0f}× |")
    print(f"| the same again, all already graded | {min(rerun):.2f} | {median(rerun):.2f} | "
          f"{median(rerun) / median(peer):.0f}× |")
    print(f"\nper submission: median {median(batch) / args.submissions:.3f} s wall; worker CPU as the workers "
          f"report it, median {median(worker_cpu):.3f} s")


if __name__ == "__main__":
    main()
