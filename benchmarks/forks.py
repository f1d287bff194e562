"""Benchmark: what answering each check in its own forked child costs, in CPU time.

    python benchmarks/forks.py [--repeat 5]

Each repetition is a fresh ``python -S`` process shaped like a worker: it loads the reference
(``probes.namespace``, as the worker does), turns the cycle collector off (as the worker does
before its first child), then, for the compiled checks of the default seed (one question per
distinct probe and parameters, as ``grade.py`` asks them), measures in CPU ms:

- **in process**: every probe run in this process, one after the other (no isolation);
- **a child per check**: every probe run in its own child forked from the loaded process, as
  the worker answers them (this process's CPU and its children's);
- **empty children**: as many children that exit at once (the fork and exit alone);

and each child's page faults (``ru_minflt``: the copy-on-write copies of its first writes).
No sandbox, no grader, no JSON: what per-check isolation itself costs. Prints the environment,
min and median over the repetitions.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def measure(folder):
    """One repetition, in this (``python -S``) process, which imports only what a worker
    does: {figure: value}. ``folder`` holds the reference and ``questions.json``."""
    import gc
    import resource
    import time

    from autograder import probes

    questions = json.loads((Path(folder) / "questions.json").read_text())
    ns = probes.namespace(folder)
    gc.disable()

    def cpu():
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return (own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime,
                children.ru_minflt)

    def run(check):
        try:
            probes.run(ns, check["probe"], check["params"])
        except Exception:  # a probe's failure is an answer too; the reference has none
            pass

    figures = {}
    for label, in_child, work in (("in process", False, True), ("a child per check", True, True),
                                  ("empty children", True, False)):
        (start, faults), _ = cpu(), time.perf_counter()
        for check in questions:
            if not in_child:
                run(check)
                continue
            child = os.fork()
            if child == 0:
                if work:
                    run(check)
                os._exit(0)
            os.waitpid(child, 0)
        end, faults_after = cpu()
        figures[f"{label}, CPU ms for {len(questions)} questions"] = (end - start) * 1e3
        if in_child:
            figures[f"{label}, page faults per child"] = (faults_after - faults) / len(questions)
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="repetitions, at least 5")
    parser.add_argument("--one", metavar="FOLDER", help=argparse.SUPPRESS)  # a repetition's own process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one)))
        return
    if args.repeat < 5:
        parser.error("--repeat must be at least 5 (medians of at least 5)")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from single import environment, figures_table

    from autograder import checkcache, examples

    questions = {}  # one per distinct probe and parameters, as grade.py asks them
    for check in checkcache.compiled_checks(1):
        questions.setdefault(json.dumps([check["probe"], check["params"]], sort_keys=True), check)
    print("\n".join(line for line in environment("auto") if not line.startswith("isolation")))
    with tempfile.TemporaryDirectory() as folder:
        for name, text in examples.reference_sources().items():
            (Path(folder) / name).write_text(text)
        (Path(folder) / "questions.json").write_text(json.dumps(
            [{"probe": check["probe"], "params": check["params"]} for check in questions.values()]))
        runs = [json.loads(subprocess.run([sys.executable, "-S", __file__, "--one", folder], capture_output=True,
                                          text=True, check=True).stdout.strip().splitlines()[-1])
                for _ in range(args.repeat)]
    print(f"repetitions: {args.repeat}, each a fresh `python -S` process with the reference loaded\n")
    medians = figures_table(runs)
    inside, per_check, empty = (value for figure, value in medians.items() if "CPU" in figure)
    print(f"\nisolation's cost, CPU ms: {per_check - inside:.1f} (empty children alone: {empty:.1f})")


if __name__ == "__main__":
    main()
