"""Shared by the nbgrader and otter end-to-end tests: student notebooks made from an exported
one, and what ``autodiff101 grade`` says about the same notebooks, check by check.

A filled notebook is the student's notebook with each exercise cell replaced by the
instructor's cell, solution markers removed, and optionally one mutant from tests/mutants.py
patched in (its patches are written against solutions/, where methods sit one level deeper
than in the notebook's cells).
"""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

import mutants

# The four notebooks both tools grade: the reference, the untouched handout, two mutants
# (one that gets values wrong, one whose backward() also crashes on a deep graph).
MUTANTS = ("mul-assigns-grad", "recursive-backward-without-topo")
SEED = mutants.SEED  # the seed the corpus's expected failures are stated for


def every_extension_config(folder):
    """A copy of the kit's checks.toml in ``folder`` whose [course] chooses every extension."""
    from autograder import checks

    config = Path(folder) / "every-extension.toml"
    text = checks.DEFAULT_CONFIG.read_text()
    chosen = text.replace('# exercises = ["tanh", "exp", "log", "moons"]', 'exercises = ["tanh", "exp", "log", "moons"]')
    assert chosen != text, "checks.toml no longer carries the commented exercises line"
    config.write_text(chosen)
    return config


def tool(name):
    """The path of a console script installed next to this Python (the tools' venv)."""
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else shutil.which(name)


def without_markers(text, marker):
    """The instructor's cell as solved code: no solution markers, no otter prompt block."""
    text = re.sub(r'\n[ \t]*""" # BEGIN PROMPT\n.*?""" # END PROMPT(?=\n|$)', "", text, flags=re.S)
    return "\n".join(line for line in text.split("\n")
                     if not re.match(rf"\s*{re.escape(marker)} (BEGIN|END) SOLUTION( NO PROMPT)?\s*$", line))


def dedent_once(text):
    """Every line four spaces less indented: a method body of solutions/ as a notebook cell has it."""
    return "\n".join(line[4:] if line.startswith("    ") else line for line in text.split("\n"))


def solution_region(text, marker):
    """The lines strictly between the first BEGIN/END SOLUTION pair of ``text``."""
    lines = text.split("\n")
    begin = next(i for i, line in enumerate(lines) if f"{marker} BEGIN SOLUTION" in line)
    end = next(i for i, line in enumerate(lines) if f"{marker} END SOLUTION" in line)
    return "\n".join(lines[begin + 1:end]) + "\n"


def solved_cells(instructor_cells, marker, mutant=None, patches=None):
    """{key: source} of the exercise cells with the reference in them, ``mutant`` applied
    (or ``patches``, (file, old, new) triples of the corpus, when given instead)."""
    solved = {key: without_markers(text, marker) for key, text in instructor_cells.items()}
    if patches is None:
        patches = mutants.MUTANTS[mutant].patches if mutant else ()
    for file, old, new in patches:
        if old is mutants.BACKWARD:
            key = next(k for k, text in instructor_cells.items() if "def backward(self)" in text)
            old = solution_region(instructor_cells[key], marker)
        else:
            old = dedent_once(old)
            key = next(k for k, text in solved.items() if old in text)
        new = dedent_once(new)
        assert solved[key].count(old) == 1, f"{mutant or 'a patch'}: the patch does not match once in {key}"
        solved[key] = solved[key].replace(old, new)
    return solved


def scores_by_autodiff101(notebooks, out):
    """{submission id: {check id: score}} from ``autodiff101 grade`` on ``notebooks`` (a folder),
    without error carried forward: the in-kernel exports judge each check alone, so that is
    the grading they must agree with."""
    from autograder import checks

    config = Path(out).with_name(Path(out).name + "-checks.toml")
    config.write_text(checks.DEFAULT_CONFIG.read_text().replace("carry_errors = true", "carry_errors = false"))
    run = subprocess.run([sys.executable, "-m", "autograder", "grade", str(notebooks), "-o", str(out),
                          "--seed", str(SEED), "--config", str(config)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    return scores_in(out)


def scores_in(out):
    """{submission id: {check id: score}} from the results.json files of a graded OUT folder."""
    scores = {}
    for results in Path(out).glob("*/results.json"):
        data = json.loads(results.read_text())
        scores[results.parent.name] = {test["extra_data"]["check"]: test["score"] for test in data["tests"]
                                       if "check" in test.get("extra_data", {})}
    return scores


def read_notebook(path):
    return nbformat.read(str(path), as_version=4)


def nbgrader_exercise_cells(course, assignment):
    """{grade id: source} of the solution cells of an exported course's instructor notebook."""
    instructor = read_notebook(Path(course) / "source" / assignment / f"{assignment}.ipynb")
    return {cell.metadata.nbgrader.grade_id: cell.source for cell in instructor.cells
            if cell.metadata.get("nbgrader", {}).get("solution")}


def otter_exercise_cells(master_path):
    """{cell id: source} of otter's master notebook: the code cell right after each raw BEGIN SOLUTION."""
    master = read_notebook(master_path)
    return {cell.id: cell.source for before, cell in zip(master.cells, master.cells[1:])
            if before.cell_type == "raw" and before.source.strip() == "# BEGIN SOLUTION"}


def filled_notebook(handout_path, exercise_cells, marker, key, mutant=None, patches=None):
    """The student notebook at ``handout_path`` as a student hands it in: "untouched" as it
    was released; otherwise its exercise cells (found by ``key(cell)``) hold the reference,
    with ``mutant`` (a name of the corpus, or "reference" for none) or ``patches`` applied."""
    book = read_notebook(handout_path)
    if mutant == "untouched":
        return book
    solved = solved_cells(exercise_cells, marker, None if mutant == "reference" else mutant, patches)
    for cell in book.cells:
        if key(cell) in solved:
            cell.source = solved[key(cell)]
    return book


def nbgrader_key(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def otter_key(cell):
    return cell.id
