"""Every command of the README and the docs, run as written (read out of the markdown).

The README's own promise is tested in a fresh virtualenv: its first command, run in a copy of
this checkout, installs the kit and grades the bundled examples; then every instructor
command of the README and of docs/instructors.md runs there without a traceback. That test
needs the package index for the kit's dependencies and takes minutes: it is marked slow
(.ci/run runs the whole suite, slow tests included). The nbgrader and otter walk-throughs of
docs/nbgrader-otter.md are in test_documented_walkthroughs.py.
"""
import csv
import os
import shutil
import subprocess
import sys

import pytest

import documented
from autograder import examples, load

REPO = documented.REPO
bash, assert_ran = documented.bash, documented.assert_ran
README = REPO / "README.md"
INSTRUCTORS = REPO / "docs" / "instructors.md"
TOOLS = REPO / "docs" / "nbgrader-otter.md"
# What the documented commands expect to find where they run: the instructor's submissions
# (here the bundled examples) and a Canvas roster for them.
SUBMISSIONS, ROSTER = "submissions", "roster.csv"


def write_world(folder):
    """The submissions and the roster the README's commands name."""
    examples.write_examples(folder / SUBMISSIONS)
    ids = [found.id for found in load.discover([folder / SUBMISSIONS]).found]
    with open(folder / ROSTER, "w", newline="") as roster:
        writer = csv.writer(roster)
        writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section"])
        for number, id in enumerate(ids, 1):
            writer.writerow([f"Student {number}", 1000 + number, f"u{number}", id, "A"])


def allowed_statuses(command):
    """`check` exits 1 when checks fail (the untouched handout's do); the rest exit 0."""
    return (0, 1) if command.startswith("autodiff101 check") else (0,)


# --- the README's shape -------------------------------------------------------------------


def test_the_readme_opens_with_two_setup_commands_for_a_fresh_machine():
    first_block = documented.code_blocks(README.read_text())[0]
    assert README.read_text().startswith("# autodiff101\n\n```bash\n" + first_block)
    assert len(first_block.strip().splitlines()) == 2
    install_and_grade, install_and_test = documented.commands(README)[:2]
    assert install_and_grade.startswith("pip install -e ") and install_and_grade.endswith("&& autodiff101 grade")
    assert install_and_test.startswith("pip install -e ") and install_and_test.endswith("&& python -m pytest")


def test_the_readme_names_every_command_of_the_tool():
    from autograder import cli

    named = " ".join(documented.table_commands(README))
    verbs = next(action for action in cli.build_parser()._actions if action.dest == "verb").choices
    for verb in verbs:
        assert f"autodiff101 {verb}" in named, verb


def test_ci_runs_the_readmes_test_command_with_slow_tests_included():
    ci = (REPO / ".ci" / "run").read_text()
    _, install_and_test = documented.commands(README)[:2]
    assert install_and_test.replace("pip install", "python -m pip install -q") in ci
    assert "not slow" not in ci and "not slow" not in (REPO / "pyproject.toml").read_text()


# --- a fresh virtualenv with the README's first command ------------------------------------


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A copy of this checkout and a new virtualenv in which the README's first command ran:
    (checkout, environment with the venv first on PATH, the first command's result)."""
    top = tmp_path_factory.mktemp("fresh")
    checkout = top / "autodiff101"
    shutil.copytree(REPO, checkout, ignore=shutil.ignore_patterns(
        ".git", "__pycache__", "*.pyc", ".pytest_cache", "*.egg-info", "build", "grades"))
    venv = top / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(venv),
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    first = documented.commands(README)[0]
    return checkout, env, first, bash(first, checkout, env)


@pytest.mark.slow
def test_the_readmes_first_command_installs_the_kit_and_prints_the_gradebook(fresh):
    checkout, env, first, result = fresh
    assert_ran(result, first)
    assert "reference" in result.stdout and "100 / 100" in result.stdout
    where = bash("python -c 'import autograder; print(autograder.__file__)'", checkout.parent, env)
    assert where.stdout.strip() == str(checkout / "autograder" / "__init__.py")  # the copy, in the new venv


@pytest.mark.slow
def test_every_instructor_command_of_the_readme_runs_in_the_fresh_venv(fresh):
    checkout, env, first, installed = fresh
    assert installed.returncode == 0, installed.stderr[-3000:]
    write_world(checkout)
    commands = documented.table_commands(README)
    assert len(commands) >= 10
    for command in commands:
        assert_ran(bash(command, checkout, env), command, allowed_statuses(command))
    assert (checkout / "grades" / "report.html").is_file() and (checkout / "grades" / "canvas.csv").is_file()
    assert (checkout / "course" / "nbgrader_config.py").is_file() and (checkout / "otter" / "autodiff101.ipynb").is_file()
    assert (checkout / "loss.png").stat().st_size > 1000


@pytest.mark.slow
def test_every_command_of_the_instructors_guide_runs_in_the_fresh_venv(fresh):
    checkout, env, first, installed = fresh
    assert installed.returncode == 0, installed.stderr[-3000:]
    if not (checkout / SUBMISSIONS).exists():
        write_world(checkout)
    blocks = documented.code_blocks(INSTRUCTORS.read_text())
    assert blocks
    for block in blocks:
        assert_ran(bash(block, checkout, env), block)
    assert '"score"' in bash('cat "$PWD/gs/results/results.json"', checkout, env).stdout
    assert (checkout / "out" / "report.html").is_file()


@pytest.mark.slow
def test_the_install_lines_of_the_tools_guide_resolve(fresh):
    """`pip install -e '.[nbgrader]'` and `'.[otter]'`, as the guide writes them, checked
    with pip's --dry-run in the fresh venv (installing both tools takes long)."""
    checkout, env, first, installed = fresh
    (block,) = [b for b in documented.code_blocks(TOOLS.read_text()) if b.startswith("pip install")]
    for command in documented.commands(f"```bash\n{block}```\n"):
        result = bash(command.replace("pip install", "pip install --dry-run --quiet"), checkout, env)
        assert_ran(result, command)
