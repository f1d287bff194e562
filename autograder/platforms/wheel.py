"""The kit as a wheel inside an export, so that what the export sets up (otter's Gradescope
image, the machine that runs ``nbgrader autograde``) installs the kit from the export itself,
without a package index, the way the Gradescope zip carries its copy of the kit.

The wheel is built with pip from a copy of this checkout's packages (the ones the Gradescope
zip carries), so building it leaves nothing behind in the checkout. A kit installed from a
wheel has no checkout: its installed packages are copied, with a pyproject.toml written from
the installed distribution's metadata (``gradescope.kit_pyproject``).
"""
import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .gradescope import KIT_FILES, KIT_PACKAGES, NotInstalled, kit_pyproject

CHECKOUT = Path(__file__).resolve().parents[2]
SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", ".pytest_cache")


class WheelError(Exception):
    """The kit's wheel cannot be built here (no checkout, pip failed)."""


def _backend_installed():
    """Whether this Python can build the wheel itself: setuptools 70.1 or newer builds wheels
    alone, older ones (from 68, pyproject.toml's minimum) need the wheel package. Otherwise pip
    fetches the build backend from the package index into an isolated build environment."""
    try:
        from importlib.metadata import PackageNotFoundError, version

        major, minor = (int(part) for part in version("setuptools").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return False
    return (major, minor) >= (70, 1) or (major >= 68 and importlib.util.find_spec("wheel") is not None)


def build_wheel(out_dir, checkout=CHECKOUT):
    """Build ``autodiff101-<version>-py3-none-any.whl`` into ``out_dir`` (an earlier one
    there is replaced); return its path. Raises WheelError with pip's reason."""
    checkout, out_dir = Path(checkout), Path(out_dir)
    pyproject = None
    if not (checkout / "pyproject.toml").is_file():  # installed from a wheel: describe the copy
        try:
            pyproject = kit_pyproject()
        except NotInstalled as error:
            raise WheelError(str(error)) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("autodiff101-*.whl"):
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="autodiff101-wheel-") as stage:
        stage = Path(stage)
        for name in KIT_FILES:
            if (checkout / name).is_file():
                shutil.copy2(checkout / name, stage / name)
        if pyproject is not None:
            (stage / "pyproject.toml").write_text(pyproject)
        for package in KIT_PACKAGES:
            shutil.copytree(checkout / package, stage / package, ignore=SKIPPED)
        command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out_dir)]
        if _backend_installed():
            command += ["--no-build-isolation", "--no-index"]  # no index needed to build it
        run = subprocess.run([*command, str(stage)], capture_output=True, text=True)
    wheels = sorted(out_dir.glob("autodiff101-*.whl"))
    if run.returncode != 0 or len(wheels) != 1:
        raise WheelError(f"pip could not build the kit's wheel: {(run.stderr or run.stdout).strip()[-2000:]}")
    return wheels[0]
