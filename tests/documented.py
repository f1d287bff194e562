"""The shell commands of a markdown document, read out of it so that tests run the very
commands the document shows (no second copy to drift from it)."""
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def code_blocks(text, language="bash"):
    """The bodies of the ```language fenced blocks of ``text``, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.S | re.M)


def commands(path_or_text, language="bash"):
    """Every command line of the document's ```bash blocks: comments cut off (a ``#`` after
    two spaces, or a whole comment line), blank lines and ``# ...`` placeholders left out."""
    text = Path(path_or_text).read_text() if isinstance(path_or_text, Path) else path_or_text
    found = []
    for block in code_blocks(text, language):
        for line in block.splitlines():
            command = re.split(r"\s{2,}#|^#", line, maxsplit=1)[0].strip()
            if command:
                found.append(command)
    return found


def table_commands(path_or_text):
    """The `code` of a markdown table's second column whose text starts with ``autodiff101``
    (the README's instructor table)."""
    text = Path(path_or_text).read_text() if isinstance(path_or_text, Path) else path_or_text
    found = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 2:
            found += [code for code in re.findall(r"`([^`]+)`", cells[1]) if code.startswith("autodiff101 ")]
    return found


def bash(script, cwd, env=None, timeout=1800):  # wide: pip and the exports on a busy 2-core machine
    """Run ``script`` with ``bash -e``; the finished process, its output as text."""
    return subprocess.run(["bash", "-e", "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def assert_ran(result, command, allowed=(0,)):
    """The command exited with an allowed status and printed no traceback."""
    shown = f"{command}\n--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
    assert result.returncode in allowed, shown
    assert "Traceback" not in result.stdout + result.stderr, shown
