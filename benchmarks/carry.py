"""Benchmark: the grading process's own work on a submission, in CPU time: error carried
forward and the deep chain.

    python benchmarks/carry.py [--repeat 5] [--mutants 40]

Each repetition is a fresh process (the models' predictions are cached per process):
- **error carried forward** (``carry.carry``, given each observation's JSON text as the
  grader gives it) on the first ``--mutants`` submissions of the test suite's catalogue of
  mistakes (``tests/mutants.py``), each judged once beforehand: a first pass over all of
  them ("cold": the models compute their predictions and every comparison is made), a
  second with the predictions kept but the remembered comparisons forgotten ("warm
  predictions": other submissions making the same mistakes, observing other numbers) and a
  third ("warm": the same observations again, as a course's recurring mistakes give them), in
  CPU ms per submission;
- the deep-chain check's probe on the reference, at the catalogue's length and at 12,000 nodes
  (its length before the probe put Python's default recursion limit back), in CPU ms, with
  the cycle collector off as in the worker's children.

CPU time, not wall-clock time: the figures hold on a busy machine. Prints the environment,
min and median over the repetitions, and the ratios.
"""
import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def measure(count):
    """One repetition, in this process: {figure: CPU ms}."""
    sys.path.insert(0, str(ROOT / "tests"))
    import mutants

    from autograder import carry, checkcache, inprocess, probes
    import solutions.engine
    import solutions.nn

    compiled = checkcache.compiled_checks(1)
    judged = []
    with tempfile.TemporaryDirectory() as folder:
        for name in list(mutants.MUTANTS)[:count]:
            ns, _ = inprocess.load(mutants.write(mutants.MUTANTS[name], Path(folder) / name))
            if ns is not None:
                judged.append([inprocess._judged(check, *inprocess.observe(ns, check)) for check in compiled])
    # Each observation's JSON text, as the grader hands carry() its replies' (grade.py).
    texts = [[json.dumps(observed, sort_keys=True) if isinstance(observed, dict) else None
              for _, observed, _ in results] for results in judged]
    figures = {}
    for label in ("cold", "warm predictions", "warm"):
        if label == "warm predictions":
            carry._AGREED.clear()  # the models' predictions kept, every comparison made again
        start = time.process_time()
        for results, observed in zip(judged, texts):
            carry.carry(results, observed)
        figures[f"error carried forward, {label}, per submission"] = (time.process_time() - start) / len(judged) * 1e3
    (deep,) = [check for check in compiled if check["id"] == "deep-chain"]
    reference = {**vars(solutions.engine), **vars(solutions.nn)}
    gc.disable()  # as in the worker's children, whose garbage dies with them
    for length in (deep["params"]["length"], 12_000):
        start = time.process_time()
        probes.chain(reference, length)
        figures[f"deep chain of {length:,} nodes, the reference"] = (time.process_time() - start) * 1e3
    gc.enable()
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="repetitions, at least 5")
    parser.add_argument("--mutants", type=int, default=40)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a repetition's own process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.mutants)))
        return
    if args.repeat < 5:
        parser.error("--repeat must be at least 5 (medians of at least 5)")
    from single import environment, figures_table

    print("\n".join(line for line in environment("auto") if not line.startswith("isolation")))
    runs = [json.loads(subprocess.run([sys.executable, __file__, "--one", "--mutants", str(args.mutants)],
                                      capture_output=True, text=True, check=True).stdout)
            for _ in range(args.repeat)]
    print(f"repetitions: {args.repeat}, each a fresh process; {args.mutants} mutants\n")
    medians = figures_table(runs, " CPU ms")
    cold, predictions = (medians[f"error carried forward, {label}, per submission"]
                         for label in ("cold", "warm predictions"))
    print(f"\nerror carried forward, cold / warm predictions: {cold / predictions:.1f}×")
    short, long = (value for figure, value in medians.items() if figure.startswith("deep chain"))
    print(f"deep chain, 12,000 nodes / the catalogue's: {long / short:.1f}×")


if __name__ == "__main__":
    main()
