"""docs/benchmarks.md: every measured figure stands under the command that produced it.

The document is read as sections (``## `` headings). A section holding a figure (a number
with a unit of time, memory or a ratio, or a number in a table) must first name its command
(a ``Command:`` line with a backticked ``python benchmarks/<script>.py ...`` whose script
exists), then its date, environment and repetitions (with min and median); a figure above
its section's command, or in the introduction, has no command beside it.
"""
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
REPO = DOC.parents[1]

# 0.43 s, 120 ms, 15.3×, 58 MB, 1.2x: a measured quantity. Dates and section numbers have no unit.
FIGURE = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*\s?(?:ms|s|×|x|MB|GB|KB|s/step)(?![\w])")
TABLE_NUMBER = re.compile(r"^\s*\|.*\|\s*\d+(?:\.\d+)?\s*(?:×|s)?\s*\|")
COMMAND = re.compile(r"^Command:.*`(python (benchmarks/[\w-]+\.py)[^`]*)`")
DATE = re.compile(r"^Date:.*\b20\d\d-\d\d-\d\d\b")


def has_figure(line):
    return bool(FIGURE.search(line) or TABLE_NUMBER.search(line))


def problems(text, repo=REPO):
    """Each figure without a command beside it, and each section whose command, date,
    environment or repetitions are missing: a list of messages (empty when all is well)."""
    found = []
    sections = re.split(r"^(?=## )", text, flags=re.M)
    for number, section in enumerate(sections):
        lines = section.splitlines()
        title = lines[0] if lines and lines[0].startswith("## ") else "the introduction"
        command = None
        for line in lines:
            if command is None:
                match = COMMAND.match(line)
                if match:
                    command = match
                    if not (repo / match.group(2)).is_file():
                        found.append(f"{title}: {match.group(2)} does not exist")
                    continue
            if command is None and has_figure(line):
                found.append(f"{title}: a figure before any command: {line.strip()[:120]}")
        if command is not None:
            if not any(DATE.match(line) for line in lines):
                found.append(f"{title}: no 'Date: YYYY-MM-DD' line")
            if not any(line.startswith("Environment:") for line in lines):
                found.append(f"{title}: no 'Environment:' line (extras, isolation)")
            repetitions = [line for line in lines if line.startswith("Repetitions:")]
            if not repetitions or not all(word in repetitions[0] for word in ("min", "median")):
                found.append(f"{title}: no 'Repetitions:' line naming min and median")
    return found


def test_every_figure_in_the_benchmarks_doc_names_its_command_date_environment_and_repetitions():
    assert problems(DOC.read_text()) == []


def test_a_figure_without_a_command_is_found():
    text = ("# Benchmarks\n\nIntro.\n\n## Fast\n\nThe grader takes 0.4 s per notebook.\n\n"
            "## Measured\n\nCommand: `python benchmarks/single.py --repeat 7`\nDate: 2026-11-30\n"
            "Environment: bubblewrap\nRepetitions: 7, min and median\n\n| a | 1.5 |\n")
    found = problems(text)
    assert len(found) == 1 and "## Fast" in found[0] and "0.4 s" in found[0]


def test_a_section_with_a_command_but_no_date_or_repetitions_is_found():
    text = "## Measured\n\nCommand: `python benchmarks/single.py`\nEnvironment: rlimits\n\n15.3× python -c pass\n"
    found = problems(text)
    assert any("Date" in message for message in found) and any("Repetitions" in message for message in found)


def test_a_command_naming_a_missing_script_is_found():
    text = ("## Gone\n\nCommand: `python benchmarks/nowhere.py`\nDate: 2026-11-30\nEnvironment: x\n"
            "Repetitions: 5, min and median\n\n3 s\n")
    assert any("nowhere.py does not exist" in message for message in problems(text))


def test_a_table_number_counts_as_a_figure():
    assert has_figure("| `autodiff101 grade` | 0.421 | 0.700 |") and not has_figure("| command | min s |")
