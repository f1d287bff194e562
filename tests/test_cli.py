"""`autodiff101` itself: help that reads like a finished tool, --version, no traceback into a closed pipe."""
import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import cli

REPO = Path(__file__).resolve().parent.parent


def subcommands(parser, prefix=()):
    """(words, parser) for the tool and every command under it."""
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from subcommands(sub, prefix + (name,))


def test_help_opens_with_what_the_tool_is_and_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["--help"])
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith("usage: autodiff101")
    assert "course kit for teaching reverse-mode autodiff" in shown
    assert "hands them to the module" not in shown  # the module's docstring is for developers
    for verb in ("grade", "report", "check", "release", "build", "gradescope", "export", "train"):
        assert f"\n    {verb}" in shown, verb


def test_version_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"autodiff101 {cli._version()}"
    assert cli._version()[0].isdigit()


def test_every_option_of_every_command_says_what_it_is_for():
    assert len(list(subcommands(cli.build_parser()))) == 14  # the tool, its 10 commands, export's 3 tools
    undocumented = [f"{' '.join(words)} {'/'.join(action.option_strings)}"
                    for words, parser in subcommands(cli.build_parser())
                    for action in parser._actions
                    if action.option_strings and not action.help]
    assert not undocumented


def test_check_zip_passes_through_to_the_self_check(tmp_path, capsys):
    from autograder import handout

    handout.write_files(tmp_path / "hw", handout.handout_files(solved=True))
    assert cli.main(["check", str(tmp_path / "hw"), "--zip-to", str(tmp_path / "out.zip")]) == 0
    assert (tmp_path / "out.zip").is_file()


def test_a_closed_pipe_ends_a_command_without_a_traceback():
    # `true` exits at once, so the 50 epoch lines meet a closed pipe, as with `| head -1`.
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run(["bash", "-c", f"{sys.executable} -m autograder.cli train | true"],
                            env=env, capture_output=True, text=True, timeout=120)  # wide: a busy machine
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr, result.stderr


def test_grading_one_py_imports_only_what_grading_it_uses(tmp_path):
    """Every submission on Gradescope pays the grader's imports: grading one .py loads no
    package metadata (only --version, and resolving the allowed packages the first time, need
    it), no notebook reader, plotting, graph drawing or similarity report."""
    from autograder import examples

    submission = tmp_path / "one.py"
    submission.write_text(examples.one_module(examples.reference_sources()))
    unused = ("importlib.metadata", "nbformat", "IPython", "matplotlib", "graphviz", "autograder.reports.similarity",
              "autograder.reports.classreport", "autograder.platforms", "rich.progress")
    code = ("import sys\nfrom autograder import cli\ncode = cli.main(['grade', sys.argv[1], '-o', sys.argv[2]])\n"
            f"print(code, sorted(m for m in sys.modules if m.startswith({unused!r})))")
    env = dict(os.environ, PYTHONPATH=str(REPO), AUTODIFF101_CACHE=str(tmp_path / "cache"))
    for out in ("first", "second"):  # the first fills the caches, as one run on a new machine does
        done = subprocess.run([sys.executable, "-c", code, str(submission), str(tmp_path / out)], capture_output=True,
                              text=True, env=env, timeout=600)  # wide: a loaded machine
    assert done.stdout.splitlines()[-1] == "0 []", done.stdout + done.stderr
