"""The compiled checks, computed once: the reference's observations for a seed and a config.

Compiling the catalogue (``checks.compile_checks``) runs every probe on the reference, the
training run included; those observations depend only on

- the seed and the check configuration (its text, and the table it parses to),
- the sources of ``solutions/`` and of ``probes.py``, ``checks.py``, ``judge.py`` and
  ``misconceptions.py``,
- the Python implementation and version (``random`` and float printing may change between
  versions),

so ``compiled_checks(seed, config)`` keeps them (with what the judge derives from the
checks alone, ``precomputed``) in a file named by a SHA-256 of all of these
(``key``) and reads that file instead of compiling again: any change to one of them is a
different key, hence a new compilation. Where the files are looked for, in order:

1. ``SHIPPED`` (``autograder/compiled-checks/`` beside this module): files shipped ready-made
   inside the Gradescope zip and the PrairieLearn kit (``ship``), and written there by the
   zip's ``setup.sh`` with the image's own interpreter;
2. ``folder()``: ``$AUTODIFF101_CACHE``, else ``$XDG_CACHE_HOME/autodiff101``, else
   ``~/.cache/autodiff101``; a miss is compiled and written here atomically (a write that
   fails, on a read-only home say, only costs the next run a compilation).

A file that is not a list of compiled checks (truncated, edited) counts as a miss.

    python -m autograder.checkcache SEED [CONFIG]   # compile into SHIPPED (setup.sh does this)
"""
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHIPPED = HERE / "compiled-checks"
# Whose sources the observations depend on, relative to the checkout's root.
SOURCES = ("autograder/probes.py", "autograder/checks.py", "autograder/judge.py", "autograder/misconceptions.py")
SOLUTIONS = "solutions"

_memory = {}  # key -> the compiled checks as JSON text: one process grading several batches


def folder():
    """The per-user cache folder (it may not exist yet)."""
    if os.environ.get("AUTODIFF101_CACHE"):
        return Path(os.environ["AUTODIFF101_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "autodiff101"


def config_text(config):
    """The configuration's content as text: a path's file, the kit's checks.toml for None,
    a loaded table as sorted JSON."""
    if isinstance(config, dict):
        return json.dumps(config, sort_keys=True)
    from .checks import DEFAULT_CONFIG

    return Path(config or DEFAULT_CONFIG).read_text()


def key(seed, config=None, table=None, root=None):
    """The 64-hex-digit cache key of the checks compiled for ``seed`` and ``config`` (a
    path, None for the kit's own, or a loaded table; ``table``: what it parses to) from the
    sources under ``root`` (default: this checkout). Raises OSError when a source is missing."""
    root = Path(root) if root else HERE.parent
    digest = hashlib.sha256()

    def part(name, data):
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)

    part("format", b"canonical JSON")  # files of older versions (keys unsorted) are misses
    part("seed", repr(seed).encode())
    part("config", config_text(config).encode())
    part("table", json.dumps(table, sort_keys=True, default=str).encode())
    part("python", f"{sys.implementation.name} {sys.version}".encode())
    for name in SOURCES:
        part(name, (root / name).read_bytes())
    for path in sorted((root / SOLUTIONS).rglob("*.py")):
        part(path.relative_to(root).as_posix(), path.read_bytes())
    return digest.hexdigest()


def compiled_checks(seed, config=None, table=None, compile=None):
    """The compiled checks for ``seed`` and ``config`` (see ``key``): from memory, a shipped
    file or the cache folder when one matches, else ``compile(seed, table)`` (default
    ``checks.compile_checks``), stored for next time. Always a fresh copy."""
    return compiled_text_and_checks(seed, config, table, compile)[1]


def compiled_text(seed, config=None, table=None, compile=None):
    """``compiled_checks`` as the JSON text it is stored as: ``canonical``, so that hashing
    it is hashing the checks (grade.fingerprint) without writing them out again."""
    return compiled_text_and_checks(seed, config, table, compile)[0]


def compiled_text_and_checks(seed, config=None, table=None, compile=None):
    """(``compiled_text``, ``compiled_checks``), the file parsed once: reading a stored file
    parses it to know it is whole, and that parse is the fresh copy returned."""
    name = key(seed, config, table)
    text = _memory.get(name)
    if text is not None:
        return text, json.loads(text)
    for place in (SHIPPED, folder()):
        stored = _read(place / f"{name}.json")
        if stored is not None:
            text, checks = stored
            break
    else:
        if compile is None:
            from .checks import compile_checks as compile
        text = canonical(precomputed(compile(seed, table if table is not None else config)))
        checks = json.loads(text)
        _write(folder() / f"{name}.json", text)
    _memory[name] = text
    return text, checks


LIGHT = ".light.json"  # beside each stored file: its checks without their signatures, and its hash


def grading_text_and_checks(seed, config=None, table=None, compile=None):
    """(the text that identifies the checks, the checks without their ``signatures``), for
    grading. The signatures are nearly all of the stored text (1.4 of 1.5 MB, 16 of 17 ms to
    parse): the checks come from a small file written beside it, ``{"checks": [...],
    "text_sha256": the stored text's}``, whose text is the one returned (it stands for both),
    and the models read the signatures from the stored text when a submission's diagnosis
    first asks (``misconceptions.read_signatures_from``), which a correct submission never
    does. A stored text whose hash is not the small file's is a miss, as a damaged file is."""
    from . import misconceptions

    name = key(seed, config, table)
    for place in (SHIPPED, folder()):
        found = _read(place / f"{name}{LIGHT}", _is_light)
        if found is None:
            continue
        light_text, light = found
        try:
            text = (place / f"{name}.json").read_text()
        except OSError:
            continue
        if hashlib.sha256(text.encode()).hexdigest() == light["text_sha256"]:
            checks = light["checks"]
            break
    else:
        text, full = compiled_text_and_checks(seed, config, table, compile)
        light_text = _light_text(text, full)
        _write(folder() / f"{name}{LIGHT}", light_text)
        checks = json.loads(light_text)["checks"]
    misconceptions.read_signatures_from(text)
    return light_text, checks


def _light_text(text, checks):
    """The light file of the stored ``text`` (``checks``, parsed from it)."""
    return canonical({"checks": [{field: value for field, value in check.items() if field != "signatures"}
                                 for check in checks],
                      "text_sha256": hashlib.sha256(text.encode()).hexdigest()})


def _is_light(data):
    return isinstance(data, dict) and isinstance(data.get("text_sha256"), str) and _are_checks(data.get("checks"))


def canonical(compiled):
    """The one JSON text of ``compiled``: keys sorted, the default separators (so that
    ``canonical(json.loads(text)) == text``)."""
    return json.dumps(compiled, sort_keys=True)


def precomputed(compiled):
    """``compiled`` with what judging derives from a check alone, computed here once instead
    of in every grading process (together most of the judging of one submission):

    - each full-backward gradient check's finite differences of the reference's forward
      pass (``expected["slopes"]``), which ``judge.gradients`` compares a matching
      submission with;
    - the misconception models' predictions (``signatures``, as the handout ships them for
      its public checks), which ``judge.signatures_of`` reads before asking the models."""
    from . import misconceptions

    for check in compiled:
        params = check.get("params") or {}
        if check.get("judge") == "gradients" and params.get("sweep", "backward") == "backward":
            check["expected"]["slopes"] = misconceptions.finite_differences(params["program"])
    return misconceptions.with_signatures(compiled)


def ship(target, seed, config=None, table=None, root=None):
    """Write the compiled checks for ``seed`` and ``config`` into the folder ``target``
    under the key they will have where ``root``'s sources run; returns the file's path,
    or None when ``root``'s sources are not this process's (its observations could differ:
    the target compiles them itself)."""
    name = key(seed, config, table, root)
    if name != key(seed, config, table):
        return None
    text, checks = compiled_text_and_checks(seed, config, table)
    path = Path(target) / f"{name}.json"
    _write(path, text, quiet=False)
    _write(Path(target) / f"{name}{LIGHT}", _light_text(text, checks), quiet=False)  # what grading reads first
    return path


def _read(path, whole=None):
    """(text, data) of a stored file whose data ``whole`` accepts (default: compiled checks;
    ``_is_light``: a light file's ``{"checks", "text_sha256"}``), else None."""
    try:
        text = path.read_text()
        data = json.loads(text)
    except (OSError, ValueError):
        return None
    if not (whole or _are_checks)(data):
        return None
    return text, data


def _are_checks(data):
    return isinstance(data, list) and data and all(isinstance(c, dict) and "id" in c and "expected" in c for c in data)


def _write(path, text, quiet=True):
    """Atomically: a reader sees the old file, none, or the whole new one."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w") as file:
                file.write(text)
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError:
        if not quiet:
            raise


# --- facts of this machine ---------------------------------------------------------------
# What the grader finds out about the machine at some cost (the isolation level a trial
# worker starts at, the files of the allowed packages) is kept the same way: a file in
# ``folder()`` named by a hash of everything the fact depends on (``facts``, a JSON
# dictionary, also stored in the file and compared on reading), so any change to one of
# them is a miss and the fact is found again.


def remembered(kind, facts):
    """The value stored by ``remember(kind, facts, value)``, or None (a miss)."""
    try:
        data = json.loads(_fact_path(kind, facts).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("facts") != json.loads(json.dumps(facts)):
        return None
    return data.get("value")


def remember(kind, facts, value):
    """Store ``value`` (plain JSON) for ``kind`` and ``facts``; quietly nothing when the
    cache folder cannot be written."""
    _write(_fact_path(kind, facts), json.dumps({"facts": facts, "value": value}))


def forget(kind, facts):
    """Remove what ``remember(kind, facts, ...)`` stored, if anything."""
    try:
        _fact_path(kind, facts).unlink()
    except OSError:
        pass


def _fact_path(kind, facts):
    digest = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()
    return folder() / f"{kind}-{digest[:32]}.json"


def main(argv=None):
    from .checks import load_config

    args = sys.argv[1:] if argv is None else argv
    if not 1 <= len(args) <= 2:
        print(__doc__.rstrip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    seed, config = int(args[0]), (args[1] if len(args) > 1 else None)
    path = ship(SHIPPED, seed, config, load_config(config))
    print(f"autodiff101: compiled checks for seed {seed} in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
