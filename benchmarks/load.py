"""Benchmark: does the grader's own memory stay flat as a batch grows?

    python benchmarks/load.py [--sizes 100 1000] [-j 2]

For each size, writes that many submissions (copies of the reference and of its mutants,
as .py files and notebooks: ``grading.write_batch``), runs ``autodiff101 grade`` on them as
a subprocess, and samples the grader process's /proc/<pid>/status while it runs: VmHWM
is the peak resident memory of that process alone, so the workers (other processes) are
left out. Prints a Markdown table for docs/benchmarks.md: wall time, seconds per
submission, the grader's peak memory, and its resident memory at a quarter, half and
all of the batch done.
"""
import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grading import write_batch


def status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as stream:
            for line in stream:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def run(size, jobs):
    with tempfile.TemporaryDirectory(prefix="autodiff101-load-") as work:
        submissions, out = Path(work) / "submissions", Path(work) / "out"
        submissions.mkdir()
        write_batch(submissions, size)
        command = [sys.executable, "-m", "autograder", "grade", str(submissions), "-o", str(out),
                   "-j", str(jobs), "--seed", "1"]
        started = time.monotonic()
        grader = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        peak_kb, rss_at = 0, {}
        marks = [size // 4, size // 2, size]
        while grader.poll() is None:
            peak_kb = max(peak_kb, status_kb(grader.pid, "VmHWM") or 0)
            done = sum(1 for _ in out.glob("*/results.json")) if marks else 0
            while marks and done >= marks[0]:
                rss_at[marks.pop(0)] = status_kb(grader.pid, "VmRSS")
            time.sleep(0.25)
        seconds = time.monotonic() - started
        if grader.returncode != 0:
            raise SystemExit(f"the grader failed:\n{grader.stderr.read()[-2000:]}")
        graded = sum(1 for _ in out.glob("*/results.json"))
    return {"size": size, "graded": graded, "seconds": seconds, "peak_mb": peak_kb / 1024,
            "rss_mb": {mark: (kb or 0) / 1024 for mark, kb in rss_at.items()}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("-j", "--jobs", type=int, default=2)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    rows = []
    for size in args.sizes:
        result = run(size, args.jobs)
        rows.append(result)
        print(f"{size}: {result}", file=sys.stderr, flush=True)
    print(f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores, "
          f"-j {args.jobs}; load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after\n")
    print("| submissions | wall time | per submission | grader's peak memory (VmHWM) "
          "| grader's resident memory at ¼ / ½ / all done |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        rss = " / ".join(f"{mb:.0f}" for mb in row["rss_mb"].values())
        print(f"| {row['size']} | {row['seconds']:.0f} s | {row['seconds'] / row['size']:.2f} s "
              f"| {row['peak_mb']:.0f} MB | {rss} MB |")


if __name__ == "__main__":
    main()
