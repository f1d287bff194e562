"""The instructor's exports from a kit installed from its wheel (no checkout, no `pip install -e`):
the Gradescope zip's kit/ and the nbgrader export's wheel are installable as they are."""
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder.platforms.wheel import build_wheel

pytestmark = pytest.mark.slow
# pip builds and installs wheels: minutes on a loaded 2-core machine, hence the wide limits.
TIMEOUT = 900


def run(command, cwd, env=None):
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, f"{command}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A virtualenv with the kit installed from its wheel; its dependencies come from the
    system's site-packages. Returns (venv's bin folder, an environment without this checkout)."""
    where = tmp_path_factory.mktemp("installed")
    wheel = build_wheel(where / "dist")
    venv = where / "venv"
    run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], where)
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    # --force-reinstall: the kit installed in the system's site-packages (an editable install
    # of some checkout, perhaps one since removed) would otherwise count as already installed.
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall",
         str(wheel)], where, env)
    probe = run([str(venv / "bin" / "python"), "-c", "import autograder; print(autograder.__file__)"], where, env)
    assert str(venv) in probe.stdout  # the installed copy, not this checkout
    return venv / "bin", env


def test_the_gradescope_zip_of_an_installed_kit_carries_an_installable_kit(installed, tmp_path):
    bin_dir, env = installed
    run([str(bin_dir / "autodiff101"), "gradescope", "-o", "ag.zip"], tmp_path, env)
    with zipfile.ZipFile(tmp_path / "ag.zip") as archive:
        assert "kit/pyproject.toml" in archive.namelist()
        archive.extractall(tmp_path / "source")
    # What setup.sh's `pip install kit/` does, as a wheel build: the kit installs from itself.
    run([str(bin_dir / "python"), "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path / "built"),
         str(tmp_path / "source" / "kit")], tmp_path, env)
    (built,) = (tmp_path / "built").glob("autodiff101-*.whl")
    with zipfile.ZipFile(built) as archive:
        names = set(archive.namelist())
    assert {"autograder/checks.toml", "autograder/cli.py", "solutions/engine.py",
            "assignments/public_checks.json", "assignments/checker/selfcheck.py"} <= names


def test_the_nbgrader_export_of_an_installed_kit_carries_its_wheel(installed, tmp_path):
    bin_dir, env = installed
    result = run([str(bin_dir / "autodiff101"), "export", "nbgrader", "-o", "course"], tmp_path, env)
    assert "--requirement" not in result.stderr
    (wheel,) = (tmp_path / "course").glob("autodiff101-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert "autograder/platforms/kernel.py" in archive.namelist()
