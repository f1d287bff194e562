"""What the check catalogue costs: compiling it for a run, and running it on one submission.

    python benchmarks/catalogue.py [--repeat 3]

Compiling runs every probe on the reference once per run (seed). Running is timed in-process
(``autograder.inprocess``), so the figures are the checks' own cost, without the sandboxed
worker's start-up; over the mutant corpus of tests/mutants.py, the correct variants and the
reference. CPU seconds (``time.process_time``) are reported beside wall-clock seconds, since
other jobs on a shared machine inflate the latter.
"""
import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("MPLBACKEND", "Agg")

from autograder import checks, inprocess  # noqa: E402
from mutants import MUTANTS, VARIANTS, write  # noqa: E402


def timed(function, *args):
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="compile and grade the corpus this many times")
    args = parser.parse_args(argv)

    compiles, runs, per_check = [], {}, Counter()
    corpus = {**{f"variant {k}": v for k, v in VARIANTS.items()}, **{f"mutant {k}": v for k, v in MUTANTS.items()}}
    with tempfile.TemporaryDirectory() as scratch:
        for round_ in range(args.repeat):
            compiled, wall, cpu = timed(checks.compile_checks, round_)
            compiles.append((wall, cpu))
            for name, submission in corpus.items():
                folder = write(submission, Path(scratch) / f"{round_}-{name.split()[1]}")
                with contextlib.redirect_stdout(io.StringIO()):  # the notebook variant prints
                    ns, _ = inprocess.load(folder)
                    _, wall, cpu = timed(inprocess.run_checks, ns, compiled)
                runs.setdefault(name, []).append((wall, cpu))
                for check in compiled:  # where the time goes: each check alone, reference only
                    if name == "variant reference":
                        _, _, cpu = timed(inprocess.run_check, ns, check)
                        per_check[check["id"]] += cpu / args.repeat

    def median(pairs, i):
        return statistics.median(pair[i] for pair in pairs)

    print(f"compile_checks: median {median(compiles, 0):.3f} s wall, {median(compiles, 1):.3f} s CPU "
          f"({len(checks.CHECKS)} checks, {args.repeat} seeds)")
    every = [pair for pairs in runs.values() for pair in pairs]
    print(f"one submission, whole catalogue: median {median(every, 0):.3f} s wall, {median(every, 1):.3f} s CPU; "
          f"max {max(p[0] for p in every):.3f} s wall over {len(runs)} submissions x {args.repeat}")
    print("\n| submission | median s wall | median s CPU |\n| --- | ---: | ---: |")
    for name, pairs in sorted(runs.items(), key=lambda item: -median(item[1], 1))[:8]:
        print(f"| {name} | {median(pairs, 0):.3f} | {median(pairs, 1):.3f} |")
    print("\n| check (reference) | s CPU |\n| --- | ---: |")
    for check_id, cpu in per_check.most_common(6):
        print(f"| {check_id} | {cpu:.3f} |")


if __name__ == "__main__":
    main()
