"""Benchmark: what one submission costs, as a ratio to starting Python at all.

    python benchmarks/single.py [--repeat 7] [--isolation auto]

What a platform that starts one grader per submission (Gradescope, PrairieLearn) pays. Times
whole processes, from start to exit, interleaved so that every repetition measures each
command under the same load:

- the peer: ``python -c pass``, the same interpreter;
- ``python -m autograder.cli grade one.py -o FRESH``: the reference as one .py with the demo
  code students leave at the top level, into a new OUT;
- the same for the handout's notebook with every TODO done (what a course's students hand in:
  its picture cells are tagged ``autodiff101-not-graded``);
- the same for a student's own notebook (the reference with magics, prints, a training loop
  and a plot at its top level: under the shipped config the plot is drawn by matplotlib's
  stand-in; a course that allows the real library pays about 0.6 CPU s more for it);
- a rerun of the first into its OUT, where the submission is already graded (skipped).

The checks are compiled once before the first repetition (``checkcache``, in a cache folder
of this run's own: ``--cold`` empties it before every command instead, the cost of a first
run). Prints the environment (Python, isolation, extras installed, load average), each
command's min and median over the repetitions, and the ratio of medians to the peer's.
"""
import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EXTRAS = ("nbgrader", "otter-grader", "jsonschema", "rfc3987-syntax", "numpy", "matplotlib")


def environment(isolation):
    """One line per fact of the run's environment, for docs/benchmarks.md. First compiles the
    kit's bytecode (``compileall``), as ``pip install`` does for an installed kit: run from a
    checkout where no ``__pycache__`` was ever written (``PYTHONDONTWRITEBYTECODE=1``, as on
    our development machines), every command would otherwise compile the grading path's
    sources again, a cost no installed kit pays."""
    import compileall
    import importlib.metadata as metadata

    from autograder import sandbox

    for package in ("autograder", "solutions"):
        compileall.compile_dir(str(ROOT / package), quiet=1)

    level = sandbox.strongest_level() if isolation == "auto" else isolation
    installed = []
    for name in EXTRAS:
        try:
            installed.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    return [f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
            f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}",
            f"isolation: {level}",
            "kit bytecode: compiled before timing (as pip install does)",
            f"installed: {', '.join(installed) or 'none of ' + ', '.join(EXTRAS)}",
            f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"]


def figures_table(runs, unit=""):
    """Print the markdown table of ``runs`` (one {figure: value} per repetition): min and
    median of each figure; returns {figure: median}."""
    print(f"| figure | min{unit} | median{unit} |\n|---|---:|---:|")
    medians = {}
    for figure in runs[0]:
        values = [run[figure] for run in runs]
        medians[figure] = statistics.median(values)
        print(f"| {figure} | {min(values):.1f} | {medians[figure]:.1f} |")
    return medians


def timed(argv, env):
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, argv))} exited {done.returncode}: {done.stderr[-2000:]}")
    return seconds


def summary(name, times, peer=None):
    line = f"| {name} | {min(times):.3f} | {statistics.median(times):.3f} |"
    if peer:
        line += f" {statistics.median(times) / statistics.median(peer):.1f}× |"
    else:
        line += " 1× |"
    return line


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="repetitions, at least 5")
    parser.add_argument("--isolation", default="auto")
    parser.add_argument("--cold", action="store_true", help="empty the checks' cache before every command")
    args = parser.parse_args()
    if args.repeat < 5:
        parser.error("--repeat must be at least 5 (medians of at least 5)")
    from autograder import examples, handout

    with tempfile.TemporaryDirectory(prefix="autodiff101-single-") as work:
        work = Path(work)
        sources = examples.reference_sources()
        (work / "one.py").write_text(examples.one_module(sources) + examples.DEMO)
        (work / "one.ipynb").write_text(examples.notebook_text(sources))
        (work / "handout.ipynb").write_text(handout.handout_files(solved=True)[handout.NOTEBOOK])
        env = dict(os.environ, PYTHONPATH=str(ROOT), AUTODIFF101_CACHE=str(work / "cache"))
        grade = [sys.executable, "-m", "autograder.cli", "grade", "--isolation", args.isolation]
        commands = {
            "`python -c pass`": lambda i: [sys.executable, "-c", "pass"],
            "`autodiff101 grade one.py -o FRESH`": lambda i: [*grade, work / "one.py", "-o", work / f"py{i}"],
            "`autodiff101 grade handout.ipynb -o FRESH` (the handout's, solved)":
                lambda i: [*grade, work / "handout.ipynb", "-o", work / f"handout{i}"],
            "`autodiff101 grade one.ipynb -o FRESH` (plots at its top level)":
                lambda i: [*grade, work / "one.ipynb", "-o", work / f"nb{i}"],
            "`autodiff101 grade one.py -o DONE` (already graded)": lambda i: [*grade, work / "one.py", "-o", work / "py0"],
        }
        print("\n".join(environment(args.isolation)))
        timed([*grade, work / "one.py", "-o", work / "py0"], env)  # compiles the checks into the cache
        times = {name: [] for name in commands}
        for i in range(1, args.repeat + 1):
            for name, argv in commands.items():
                if args.cold:
                    subprocess.run(["rm", "-rf", str(work / "cache")], check=True)
                times[name].append(timed(argv(i), env))
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"checks' cache: {'emptied before every command' if args.cold else 'warm (compiled once before)'}")
        print(f"repetitions: {args.repeat}, interleaved\n")
        print("| command | min s | median s | median / `python -c pass` |")
        print("|---|---:|---:|---:|")
        peer = times["`python -c pass`"]
        for name, values in times.items():
            print(summary(name, values, None if values is peer else peer))


if __name__ == "__main__":
    main()
