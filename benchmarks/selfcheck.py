"""Benchmark: the public self-check on a completed handout, wall time per run.

    python benchmarks/selfcheck.py [--runs 7]

Writes the handout to a temporary folder, fills its TODOs with the reference's code, then
times whole processes, as a student would see them: ``autodiff101 check`` (the kit
installed), the handout's own ``python check.py`` (its vendored checker, every installed
package hidden with ``-I -S``), and ``python check.py autodiff101.ipynb`` (the notebook, which
also runs its demos and trains the network). Prints the median and spread of each. Target:
``autodiff101 check`` at most 1 s on a 2-core machine.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autograder import handout

TARGET_SECONDS = 1.0


def completed_handout(folder):
    """The handout with the reference's code in place of each TODO, as a student would fill it."""
    files = handout.handout_files()
    for region in handout.all_regions(handout.reference_sources()):
        files[region.file] = files[region.file].replace("\n".join(handout.todo_lines(region)),
                                                        "\n".join(region.lines))
    notebook = handout.handout_files(solved=True)[handout.NOTEBOOK]  # the notebook with its TODOs done
    files[handout.NOTEBOOK] = notebook
    handout.write_files(folder, files)
    return folder


def wall_times(command, folder, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run(command, cwd=folder, capture_output=True, text=True,
                                env={**os.environ, "COLUMNS": "120"})
        times.append(time.perf_counter() - start)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = completed_handout(Path(tmp) / "handout")
        commands = {
            "autodiff101 check": ["autodiff101", "check"],
            "python -I -S check.py (vendored, no packages)": [sys.executable, "-I", "-S", "check.py"],
            "python check.py autodiff101.ipynb": [sys.executable, "check.py", handout.NOTEBOOK],
        }
        wall_times(commands["autodiff101 check"], folder, 1)  # write the .pyc files first
        print(f"{'command':<48} {'median s':>9} {'min':>6} {'max':>6}   ({args.runs} runs)")
        for name, command in commands.items():
            times = wall_times(command, folder, args.runs)
            print(f"{name:<48} {statistics.median(times):9.3f} {min(times):6.3f} {max(times):6.3f}")
            if name == "autodiff101 check":
                verdict = "meets" if statistics.median(times) <= TARGET_SECONDS else "MISSES"
                print(f"{'':<48} {verdict} the {TARGET_SECONDS:.0f} s target")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
