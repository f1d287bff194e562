"""Gradescope: the autograder zip, and what its ``run_autograder`` does on Gradescope's machine.

``build_zip(path)`` (``autodiff101 gradescope -o autograder.zip``) writes a zip whose root
holds ``setup.sh``, ``run_autograder``, ``settings.json`` (the run seed and the check
configuration) and ``kit/``, a source copy of this checkout's ``autograder``, ``solutions``
and ``assignments`` packages: Gradescope cannot reach our repository, so the kit travels
inside the zip.

On Gradescope (``ROOT`` is ``/autograder`` unless ``AUTODIFF101_GRADESCOPE_ROOT`` says
otherwise) ``run_autograder`` calls ``run(root)``: it makes ``ROOT/source`` unreadable to
other users, grades ``ROOT/submission`` as one submission with ``grade.grade`` at the
strongest isolation this machine offers, and writes ``ROOT/results/results.json``. Whatever
goes wrong, a valid results.json is written: a fault of ours gives score 0 and tells the
student to contact the course staff; the traceback (or, for a fault while grading the
submission, its ``grader-fault`` reason) goes to stdout, which only staff see.
"""
import json
import os
import stat
import sys
import tempfile
import time
import traceback
import zipfile
from pathlib import Path

from .. import checkcache
from .. import checks as catalogue
from .. import report
from ..text import DETAIL, untrusted

KIT_PACKAGES = ("autograder", "solutions", "assignments")
KIT_FILES = ("pyproject.toml", "README.md")
SETTINGS = "settings.json"
ROOT_VARIABLE = "AUTODIFF101_GRADESCOPE_ROOT"
CONTACT_STAFF = ("The autograder itself failed on this submission (not your code's fault). "
                 "Please contact the course staff; your submission is saved.")

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
# AUTODIFF101_SETUP_SKIP_INSTALL=1 skips apt-get and pip (a machine that has them already).
set -euo pipefail
SOURCE="$(cd "$(dirname "$0")" && pwd)"
PYTHON="${AUTODIFF101_PYTHON:-python3}"
if [ "${AUTODIFF101_SETUP_SKIP_INSTALL:-0}" != 1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # bubblewrap: the strongest worker isolation; util-linux: unshare/setpriv for the next level.
  apt-get install -y -qq bubblewrap util-linux python3 python3-pip >/dev/null
  "$PYTHON" -m pip install -q "$SOURCE/kit" || "$PYTHON" -m pip install -q --break-system-packages "$SOURCE/kit"
fi
# Workers run as this unprivileged user (uid 65534), never as root.
if ! getent passwd nobody >/dev/null; then
  useradd --system --uid 65534 --no-create-home --shell /usr/sbin/nologin nobody
fi
PYTHONPATH="$SOURCE/kit" "$PYTHON" -c "import autograder.platforms.gradescope, solutions" \
  && echo "autodiff101: the kit imports; workers will run as $(getent passwd 65534 | cut -d: -f1)"
# The reference's observations, compiled once with this image's interpreter (checkcache):
# every submission then reads them instead of running the reference again.
SEED="$("$PYTHON" -c "import json,sys; print(json.load(open(sys.argv[1]))['seed'])" "$SOURCE/settings.json")"
# From inside the kit: -m puts the working folder first on sys.path.
(cd "$SOURCE/kit" && PYTHONPATH="$SOURCE/kit" "$PYTHON" -m autograder.checkcache "$SEED" "$SOURCE/kit/autograder/checks.toml")
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this once per submission, as root.
ROOT="${AUTODIFF101_GRADESCOPE_ROOT:-/autograder}"
PYTHON="${AUTODIFF101_PYTHON:-python3}"
mkdir -p "$ROOT/results"
PYTHONPATH="$ROOT/source/kit" "$PYTHON" -m autograder.platforms.gradescope "$ROOT"
status=$?
if [ $status -ne 0 ] && ! "$PYTHON" -c "import json,sys; json.load(open(sys.argv[1]))['tests']" \
     "$ROOT/results/results.json" 2>/dev/null; then
  # Python itself failed before it could write results: still a valid results.json.
  echo "autodiff101: the grader exited with status $status before writing results"
  cat > "$ROOT/results/results.json" <<'JSON'
{"score": 0, "execution_time": 0, "output": "@CONTACT@", "output_format": "text",
 "visibility": "visible", "stdout_visibility": "hidden", "tests": [],
 "extra_data": {"status": "grader-fault"}}
JSON
fi
exit 0
"""


# --- building the zip --------------------------------------------------------------------


def build_zip(output, seed=None, config=None, checkout=None):
    """Write the autograder zip to ``output``; returns its path. ``config`` is a checks.toml
    (default: the kit's), validated here so that a bad one fails now, not on Gradescope."""
    checkout = Path(checkout or Path(__file__).resolve().parents[2])
    config_text = Path(config).read_text() if config else catalogue.DEFAULT_CONFIG.read_text()
    if config:
        catalogue.load_config(config)  # raises ValueError with the reason
    # The course's seed unless told otherwise, as `autodiff101 grade` uses: the same
    # submission gets the same score locally and on Gradescope.
    settings = {"seed": catalogue.course_seed(config) if seed is None else int(seed)}
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.name}.tmp")
    with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
        _add_text(archive, "setup.sh", SETUP_SH, executable=True)
        _add_text(archive, "run_autograder", RUN_AUTOGRADER.replace("@CONTACT@", CONTACT_STAFF), executable=True)
        _add_text(archive, SETTINGS, json.dumps(settings, indent=1) + "\n")
        for name in KIT_FILES:
            if (checkout / name).is_file():
                _add_text(archive, f"kit/{name}", (checkout / name).read_text())
        if not (checkout / "pyproject.toml").is_file():  # an installed kit: setup.sh still pip-installs kit/
            _add_text(archive, "kit/pyproject.toml", kit_pyproject())
        for package in KIT_PACKAGES:
            for path in sorted((checkout / package).rglob("*")):
                relative = path.relative_to(checkout).as_posix()
                if relative == "autograder/checks.toml" or "__pycache__" in path.parts or path.suffix == ".pyc":
                    continue
                if path.is_file():
                    archive.write(path, f"kit/{relative}")
        # The check configuration the run grades with (the kit's own, unless --config).
        _add_text(archive, "kit/autograder/checks.toml", config_text)
        # Its compiled checks, ready-made (checkcache), keyed as the run will key them.
        for name, text in _compiled_checks(checkout, settings["seed"], config_text):
            _add_text(archive, f"kit/autograder/{checkcache.SHIPPED.name}/{name}", text)
    os.replace(temporary, output)
    return output


class NotInstalled(Exception):
    """Neither a checkout nor an installed distribution of the kit describes how to install it."""


def kit_pyproject(distribution="autodiff101"):
    """A minimal pyproject.toml for a copy of the installed kit's packages (KIT_PACKAGES) that
    has no checkout's pyproject.toml beside it (the kit was installed from a wheel, not with
    ``pip install -e``): name, version, Python and dependencies from the installed
    distribution's metadata, every file of the copied packages as package data. Raises
    NotInstalled when the distribution is not installed."""
    from importlib import metadata

    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        raise NotInstalled(f"the kit is neither a checkout with pyproject.toml nor an installed "
                           f"{distribution} distribution; install it with pip") from None
    # The base install's dependencies: the extras' ones are not needed to grade.
    requires = [r for r in dist.requires or [] if "extra ==" not in r.replace('"', "").replace("'", "")]
    scripts = [f"{json.dumps(e.name)} = {json.dumps(e.value)}"
               for e in dist.entry_points if e.group == "console_scripts"]
    return "\n".join([
        f"# Written by autodiff101 {dist.version} from its installed metadata (no checkout was at hand).",
        "[build-system]",
        'requires = ["setuptools>=68"]',
        'build-backend = "setuptools.build_meta"',
        "",
        "[project]",
        f"name = {json.dumps(dist.metadata['Name'])}",
        f"version = {json.dumps(dist.version)}",
        f"requires-python = {json.dumps(dist.metadata.get('Requires-Python') or '>=3.10')}",
        f"dependencies = {json.dumps(requires)}",
        "",
        "[project.scripts]",
        *scripts,
        "",
        "[tool.setuptools.packages.find]",
        f"include = {json.dumps([package + '*' for package in KIT_PACKAGES])}",
        "",
        "[tool.setuptools.package-data]",
        '"*" = ["*", "**/*"]',
        "",
    ])


def _compiled_checks(checkout, seed, config_text):
    """[(file name, text)] of the compiled checks for ``seed`` (``checkcache.ship``'s files)
    under the key the zip's kit will compute on Gradescope with this interpreter's version;
    none when ``checkout``'s sources are not the ones running here (setup.sh then compiles
    them there)."""
    with tempfile.TemporaryDirectory(prefix="autodiff101-zip-") as work:
        config = Path(work) / "checks.toml"
        config.write_text(config_text)
        if checkcache.ship(work, seed, config, catalogue.load_config(config), root=checkout) is None:
            return []
        return sorted((path.name, path.read_text()) for path in Path(work).glob("*.json"))


def _add_text(archive, name, text, executable=False):
    info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
    info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, text)


# --- on Gradescope: grading one submission --------------------------------------------------


def run(root):
    """Grade ``root/submission`` into ``root/results/results.json``; always writes that file.
    Returns 0 when the grader worked, 1 on a fault of ours (results still written)."""
    root = Path(root)
    results = root / "results"
    results.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        data = grade_submission(root)
        status = 1 if data.get("extra_data", {}).get("status") == "grader-fault" else 0
    except Exception:
        print("autodiff101: the grader failed (this traceback is visible to staff only):")
        traceback.print_exc(file=sys.stdout)
        data = fault_results(time.monotonic() - started)
        status = 1
    report.write_atomic(results / "results.json", json.dumps(data, indent=1) + "\n")
    print(f"autodiff101: wrote {results / 'results.json'}: score {data['score']}")
    return status


def grade_submission(root):
    from ..grade import grade

    source, submission = root / "source", root / "submission"
    # Only root may read the source folder (the kit, the seed of the hidden checks).
    if source.exists():
        source.chmod(0o700)
    settings = json.loads((source / SETTINGS).read_text())
    config = source / "kit" / "autograder" / "checks.toml"
    with tempfile.TemporaryDirectory(prefix="autodiff101-gradescope-") as work:
        out = Path(work) / "out"
        batch = grade([_submission_path(submission, Path(work))], out=out, jobs=1, force=True,
                      seed=settings["seed"], config=config if config.exists() else None, isolation="auto")
        if batch.warning:
            print(f"autodiff101: warning: {batch.warning}")
        print(f"autodiff101: isolation {batch.isolation}, seed {batch.seed}, {batch.seconds:.1f} s")
        if len(batch.rows) != 1:
            raise RuntimeError(f"expected one graded submission, got {len(batch.rows)}")
        id = batch.rows[0]["id"]
        data = report.read_results(out, id)
        if data is None:
            raise RuntimeError(f"no results.json for {untrusted(repr(id))}: {untrusted(batch.rows[0].get('fault'))}")
        if data["extra_data"].get("fault"):  # the student sees FAULT_MESSAGE; staff see why
            print(f"autodiff101: the grader failed on this submission: {untrusted(data['extra_data']['fault'], DETAIL)}")
        output = (out / id / report.OUTPUT)
        if output.exists() and output.read_text(encoding="utf-8").strip():
            print("autodiff101: what the submission printed:")
            print(untrusted(output.read_text(encoding="utf-8"), 20000, lines=True))
        return data


def _submission_path(submission, work):
    """The one path ``grade`` should grade: the folder when it has the handout's layout or
    one candidate file, the file itself when it is a zip; otherwise the folder as a zip, so
    that the loader says what is wrong with it (as one submission, not several). A folder
    alone in the folder above is looked into, up to MAX_FOLDERS_IN_FOLDERS deep; deeper, it
    is graded as it is, and the loader says it holds no code."""
    from ..load import IGNORED, MAX_FOLDERS_IN_FOLDERS, _is_package, link_problem

    if not submission.is_dir():
        raise RuntimeError(f"{submission} is not a folder")
    for depth in range(MAX_FOLDERS_IN_FOLDERS + 1):
        if _is_package(submission):
            return submission
        try:
            visible = [e for e in sorted(submission.iterdir()) if not e.name.startswith(".") and e.name not in IGNORED]
        except OSError:  # a path past the system's limits: the loader says why it cannot read it
            return submission
        linked = [e for e in visible if link_problem(e)]
        if linked:  # never followed, nor packed (zipping a link stores its target): load refuses it with the reason
            return linked[0]
        if not (len(visible) == 1 and visible[0].is_dir()):
            break
        if depth == MAX_FOLDERS_IN_FOLDERS:
            return submission  # folders in folders past the limit: loading it says it holds no code
        submission = visible[0]  # an uploaded folder: grade what is inside
    entries = [e for e in visible if e.is_file()]
    if len(entries) == 1 and entries[0].suffix.lower() in (".py", ".ipynb", ".zip"):
        return entries[0]
    packed = work / "submission.zip"
    with zipfile.ZipFile(packed, "w") as archive:
        for entry in entries:
            archive.write(entry, entry.name)
    return packed


def fault_results(seconds=0.0):
    """A valid results.json for a run where the grader itself failed."""
    return {"score": 0, "execution_time": round(seconds, 3), "output": CONTACT_STAFF,
            "output_format": "text", "visibility": "visible", "stdout_visibility": "hidden",
            "tests": [], "extra_data": {"status": "grader-fault"}}


def command(output, seed=None, config=None):
    """``autodiff101 gradescope``: the exit code (2 for a bad --config)."""
    try:
        path = build_zip(output, seed=seed, config=config)
    except (ValueError, OSError) as error:
        print(f"autodiff101 gradescope: {error}", file=sys.stderr)
        return 2
    with zipfile.ZipFile(path) as archive:
        settings = json.loads(archive.read(SETTINGS))
    print(f"wrote {path} ({path.stat().st_size // 1024} KB); hidden checks' seed {settings['seed']}; "
          "upload it as the assignment's autograder (Ubuntu base image)")
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1] if len(sys.argv) > 1 else os.environ.get(ROOT_VARIABLE, "/autograder")))
