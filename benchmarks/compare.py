"""Benchmark: autodiff101 vs otter-grader vs nbgrader vs the floor, on the same notebooks.

    python benchmarks/compare.py [--notebooks 24] [--repeat 3] [--seed 2024]

Needs the kit with both extras in one environment (``pip install -e '.[nbgrader,otter]'``)
and that environment's ``bin/`` on PATH (nbgrader calls ``alembic``). Not run by the tests.

Builds, untimed: ``autodiff101 export nbgrader`` (then ``nbgrader generate_assignment``) and
``autodiff101 export otter`` (then ``otter assign``) at one seed, so both tools hold the same
40 checks with the same points and hidden inputs. Each student is filled into both tools'
notebooks with the helpers of the end-to-end tests (``tests/exported.py``): the reference,
the untouched handout, the mutants of ``tests/mutants.py`` whose bug sits in an exercise
cell, the correct variants written in exercise cells, then variant + mutant pairs (every
notebook distinct: the grader judges identical observations once, so copies would flatter it).

Timed, every repetition, each as one command from start to exit:

- ``autodiff101 grade -j 2`` on nbgrader's notebooks and on otter's (strongest isolation);
- ``otter run`` once per notebook, one after the other (what otter's users do without Docker);
- ``nbgrader autograde`` on a fresh copy of the course folder with every notebook submitted;
- the floor: one ``python -S`` process compiles the checks, then loads each notebook cell by
  cell (``selfcheck.load``, the grader's loader) and runs the checks on it
  (``inprocess.run_checks``), no worker, no sandbox, no timeouts. ``-S`` gives it what the
  sandboxed worker sees, the standard library and the kit: otter's and matplotlib's cells fail
  on import in both, instead of the floor alone drawing plots and running otter's tests.

Prints the table (seconds: medians over the repetitions) and the per-check scores of every
notebook where the tools disagree (autodiff101's points kept by error carried forward count
as lost there: the other tools carry no error forward); exits 1 if any do.
"""
import argparse
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FLOOR = """
import json, sys, time
sys.path.insert(0, {root!r})
from autograder import checks, inprocess, selfcheck
compiled = checks.compile_checks({seed})
scores = {{}}
for path in {paths!r}:
    try:
        ns = selfcheck.load(path)
    except (selfcheck.BadInput, selfcheck.LoadFailed) as error:
        failure = {{"error": "LoadError", "message": str(error), "where": None}}
        results = [(check, inprocess.load_failed(check, failure)) for check in compiled]
    else:
        results = inprocess.run_checks(ns, compiled, timeouts=False)
    name = path.rsplit("/", 1)[-1][:-len(".ipynb")]
    scores[name] = {{check["id"]: check["points"] * verdict.score for check, verdict in results}}
print(json.dumps(scores))
"""


def students():
    """Distinct (name, patches) pairs, in the order notebooks are made; patches None means
    the untouched handout. Pairs whose patches touch given code are dropped by build()."""
    import mutants

    found = [("reference", ()), ("untouched", None)]
    found += [(name, m.patches) for name, m in mutants.MUTANTS.items()]
    variants = [(name, v.patches) for name, v in mutants.VARIANTS.items() if v.patches]
    found += variants
    outside_backward = [(name, m.patches) for name, m in mutants.MUTANTS.items()
                        if all(old is not mutants.BACKWARD for _, old, _ in m.patches)]
    found += [(f"{v}+{m}", vp + mp) for (v, vp), (m, mp) in itertools.product(variants, outside_backward)]
    return found


def build(work, count, seed):
    """Export, generate and fill the notebooks; return what the timed runs need."""
    import exported
    import nbformat
    from autograder.platforms import nbgrader as nbgrader_export
    from autograder.platforms import otter as otter_export

    course, otter_dir = work / "course", work / "otter"
    assert nbgrader_export.export(course, seed=seed, out=open(os.devnull, "w")) == 0
    assert otter_export.export(otter_dir, seed=seed, out=open(os.devnull, "w")) == 0
    run([exported.tool("nbgrader"), "generate_assignment", nbgrader_export.ASSIGNMENT], cwd=course)
    run([exported.tool("otter"), "assign", f"{otter_export.ASSIGNMENT}.ipynb", "dist", "--no-run-tests"],
        cwd=otter_dir)
    assignment = nbgrader_export.ASSIGNMENT
    tools = {
        "nbgrader": (course / "release" / assignment / f"{assignment}.ipynb",
                     exported.nbgrader_exercise_cells(course, assignment), "###", exported.nbgrader_key),
        "otter": (otter_dir / "dist" / "student" / f"{assignment}.ipynb",
                  exported.otter_exercise_cells(otter_dir / f"{assignment}.ipynb"), "#", exported.otter_key),
    }
    folders = {name: work / f"notebooks-{name}" for name in tools}
    for folder in folders.values():
        folder.mkdir()
    names = []
    for name, patches in students():
        try:
            books = {tool: exported.filled_notebook(path, cells, marker, key,
                                                    "untouched" if patches is None else None, patches)
                     for tool, (path, cells, marker, key) in tools.items()}
        except (AssertionError, StopIteration):  # the bug is in given code, not in an exercise cell
            continue
        for tool, book in books.items():
            nbformat.write(book, str(folders[tool] / f"{name}.ipynb"))
        submitted = course / "submitted" / name / assignment / f"{assignment}.ipynb"
        submitted.parent.mkdir(parents=True)
        nbformat.write(books["nbgrader"], str(submitted))
        names.append(name)
        if len(names) == count:
            break
    if len(names) < count:
        raise SystemExit(f"only {len(names)} distinct notebooks can be made; ask for at most that many")
    (zip_path,) = (otter_dir / "dist" / "autograder").glob("*.zip")
    return {"names": names, "course": course, "folders": folders, "zip": zip_path,
            "otter_manifest": json.loads((otter_dir / otter_export.MANIFEST).read_text()),
            "points": {c["id"]: c["points"] for c in json.loads((course / nbgrader_export.MANIFEST).read_text())["checks"]}}


def run(command, cwd=None):
    done = subprocess.run([str(part) for part in command], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, command))} failed ({done.returncode}):\n{done.stdout[-3000:]}"
                         f"{done.stderr[-3000:]}")
    return done


def timed(function):
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def grade_autodiff101(folder, out, seed, jobs):
    def go():
        run([sys.executable, "-m", "autograder", "grade", folder, "-o", out, "-j", jobs, "--seed", seed])
    seconds, _ = timed(go)
    isolation = {json.loads(p.read_text())["extra_data"].get("isolation") for p in Path(out).glob("*/results.json")}
    return seconds, scores_without_carried(out), isolation


def scores_without_carried(out):
    """{notebook: {check: score}} from autodiff101's results, a check whose points were kept
    by error carried forward (``carry.py``, on by default) counted as lost: nbgrader and otter
    carry no error forward, so that is the score they give the same code."""
    scores = {}
    for results in Path(out).glob("*/results.json"):
        tests = json.loads(results.read_text())["tests"]
        scores[results.parent.name] = {test["extra_data"]["check"]: 0 if test["extra_data"].get("carried") else test["score"]
                                       for test in tests if "check" in test.get("extra_data", {})}
    return scores


def grade_floor(folder, seed):
    paths = sorted(str(p) for p in Path(folder).glob("*.ipynb"))
    program = FLOOR.format(root=str(ROOT), seed=seed, paths=paths)
    seconds, done = timed(lambda: run([sys.executable, "-S", "-c", program], cwd=folder))
    return seconds, json.loads(done.stdout.strip().splitlines()[-1])


def grade_otter(folder, zip_path, out, manifest):
    import exported
    from autograder.platforms import otter as otter_export

    notebooks = sorted(Path(folder).glob("*.ipynb"))
    for notebook in notebooks:
        (out / notebook.stem).mkdir()

    def go():
        for notebook in notebooks:  # one at a time, as `otter run` takes them
            run([exported.tool("otter"), "run", "-a", zip_path, "-o", out / notebook.stem, "--no-logo", notebook],
                cwd=folder)
    seconds, _ = timed(go)
    return seconds, {nb.stem: otter_export.per_check_scores(json.loads((out / nb.stem / "results.json").read_text()),
                                                            manifest) for nb in notebooks}


def grade_nbgrader(pristine, copy):
    import exported
    from autograder.platforms import nbgrader as nbgrader_export

    shutil.copytree(pristine, copy)
    seconds, _ = timed(lambda: run([exported.tool("nbgrader"), "autograde", nbgrader_export.ASSIGNMENT], cwd=copy))
    _, rows = nbgrader_export.per_check_grades(copy)
    return seconds, {row["student"]: row["by_check"] for row in rows}


def disagreements(names, points, by_tool):
    """[(notebook, check, {grading: score})] wherever two gradings of the same code differ:
    the gradings of one tool's notebooks among themselves, and all of them for every notebook
    but the untouched handout (its exercise cells differ: nbgrader's stub raises
    NotImplementedError, otter's is ``...``, so a _backward that does nothing)."""
    groups = [[label for label in by_tool if tool in label] for tool in ("nbgrader", "otter")]
    found = []
    for name in names:
        for group in (groups if name == "untouched" else [[label for g in groups for label in g]]):
            for check in points:
                scores = {label: by_tool[label].get(name, {}).get(check) for label in group}
                values = list(scores.values())
                if any(s is None for s in values) or max(values) - min(values) > 1e-6:
                    found.append((name, check, scores))
    return found


def machine():
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return (f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}, load average before {os.getloadavg()[0]:.1f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("-j", "--jobs", type=int, default=2, help="workers of autodiff101 grade")
    parser.add_argument("--skip", nargs="*", default=[], choices=["otter", "nbgrader"],
                        help="leave a slow peer out (its ratio is then not printed)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from single import environment

    print(machine(), flush=True)
    print("\n".join(environment("auto")), flush=True)

    with tempfile.TemporaryDirectory(prefix="autodiff101-compare-") as work:
        work = Path(work)
        seconds, built = timed(lambda: build(work, args.notebooks, args.seed))
        names, n = built["names"], len(built["names"])
        print(f"built {n} notebooks for both tools in {seconds:.1f} s (exports, generate_assignment, "
              f"otter assign): {', '.join(names)}", flush=True)
        times, scores, isolation = {}, {}, set()
        for repeat in range(args.repeat):
            round_dir = work / f"round-{repeat}"
            round_dir.mkdir()
            for tool in ("nbgrader", "otter"):
                label = f"autodiff101 grade -j {args.jobs} ({tool}'s notebooks)"
                s, got, levels = grade_autodiff101(built["folders"][tool], round_dir / f"autodiff101-{tool}",
                                                   args.seed, args.jobs)
                times.setdefault(label, []).append(s)
                scores[f"autodiff101 ({tool}'s notebooks)"] = got
                isolation |= levels
                s, got = grade_floor(built["folders"][tool], args.seed)
                times.setdefault(f"floor ({tool}'s notebooks)", []).append(s)
                scores[f"floor ({tool}'s notebooks)"] = got
            if "nbgrader" not in args.skip:
                s, got = grade_nbgrader(built["course"], round_dir / "course")
                times.setdefault("nbgrader autograde", []).append(s)
                scores["nbgrader autograde (nbgrader's notebooks)"] = got
            if "otter" not in args.skip:
                out = round_dir / "otter"
                out.mkdir()
                s, got = grade_otter(built["folders"]["otter"], built["zip"], out, built["otter_manifest"])
                times.setdefault("otter run (one at a time)", []).append(s)
                scores["otter run (otter's notebooks)"] = got
            print(f"round {repeat + 1}: " + ", ".join(f"{label} {values[-1]:.1f} s" for label, values in times.items()),
                  flush=True)
            if repeat + 1 < args.repeat:  # what a run stopped early can still record
                report(times, n, argparse.Namespace(**dict(vars(args), repeat=repeat + 1)), isolation,
                       disagreements(names, built["points"], scores), len(scores))
        disagreed = disagreements(names, built["points"], scores)
        report(times, n, args, isolation, disagreed, len(scores))
        return 1 if disagreed else 0


def report(times, n, args, isolation, disagreed, tools):
    median = {label: statistics.median(values) for label, values in times.items()}
    per = {label: seconds / n for label, seconds in median.items()}
    rows = [(label, f"{min(times[label]):.1f}", f"{median[label]:.1f}", f"{per[label]:.3f}",
             " ".join(f"{v:.1f}" for v in times[label])) for label in times]
    ratios = []
    for tool in ("nbgrader", "otter"):
        ours, floor = per[f"autodiff101 grade -j {args.jobs} ({tool}'s notebooks)"], per[f"floor ({tool}'s notebooks)"]
        peer = {"nbgrader": "nbgrader autograde", "otter": "otter run (one at a time)"}[tool]
        if peer in per:
            ratios.append((f"{peer} / autodiff101", per[peer] / ours, {"nbgrader": 15, "otter": 40}[tool], "≥"))
        ratios.append((f"autodiff101 / floor ({tool}'s notebooks)", ours / floor, 3, "≤"))
    print(f"\n{n} notebooks, {args.repeat} repetitions, medians; autodiff101's isolation: "
          f"{', '.join(sorted(filter(None, isolation))) or '?'}")
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        Console = None
    if Console:
        table = Table(title="wall seconds")
        for column in ("command", "min s", "median s", "s per notebook", "each repetition, s"):
            table.add_column(column, justify="left" if column == "command" else "right")
        for row in rows:
            table.add_row(*row)
        Console().print(table)
    else:
        for row in rows:
            print(" | ".join(row))
    print("\n| command | total s, min | total s, median | s per notebook (median) | each repetition, s |\n"
          "|---|---:|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("\n| ratio of medians (per notebook) | value | target (issue 17) | met |\n|---|---:|---:|---|")
    for label, value, target, sense in ratios:
        met = value >= target if sense == "≥" else value <= target
        print(f"| {label} | {value:.1f}× | {sense} {target}× | {'yes' if met else 'NO'} |")
    if disagreed:
        print(f"\nscores DISAGREE on {len(disagreed)} (notebook, check) pairs:")
        for name, check, by_tool in disagreed:
            print(f"  {name} {check}: " + ", ".join(f"{tool} {score}" for tool, score in by_tool.items()))
    else:
        print(f"\nper-check scores agree on every notebook across all {tools} gradings "
              "(autodiff101 and the floor on both tools' notebooks, nbgrader, otter)")


if __name__ == "__main__":
    sys.exit(main())
