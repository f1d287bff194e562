"""Sandbox: how a worker process is started, at the strongest isolation the machine offers.

Levels, strongest first (``LEVELS``):

- ``bubblewrap``: the worker sees only the interpreter and its standard library, a copy of
  ``probes.py`` and the submission, all read-only, and a tmpfs ``/tmp``; no network, no other
  processes, runs as an unprivileged user. When the grader is root it drops to ``nobody``
  *before* starting bwrap: root running ``bwrap --uid`` could still read root-only files.
- ``unprivileged-user`` (root without bubblewrap): the worker runs as ``nobody`` in fresh
  mount, network, pid, ipc and uts namespaces (``unshare``), with the kit, OUT and the
  submissions' folders covered by empty, unreadable mounts.
- ``rlimits`` (neither): a plain child process with resource limits.

At every level the worker gets rlimits (set by ``probes.serve`` before any student code),
a clean environment with ``MPLBACKEND=Agg``, stdin from /dev/null, stdout and stderr to
files, a fresh working directory, and its own process group, killed whole at the end.
Where the machine has usable control groups (``cgroups.py``), each worker and all its
children get their own, which bounds their total memory and process count and measures
their CPU time.

Packages: a submission may import the standard library and the packages the course allows
(``[worker] allowed_packages`` in the course's config, by default numpy alone), with what
they need. Display libraries the course does not allow (matplotlib among them, by default)
are stand-ins that accept every call and draw nothing (``probes.DisplayStubs``). Only those are visible in the worker: their folders are bound one by
one into a package folder of their own, never the whole site-packages where the kit and
everything else the grader installed live.

Determinism: the worker runs with a fixed hash seed and without address-space
randomisation (``setarch -R``), so that a submission whose result depends on the order of
a ``set`` of its objects (ordered by their addresses) gets the same result on every run.

An interpreter under a folder ``nobody`` cannot enter (pyenv in ``/root``, say) is made
reachable inside a private mount namespace: bind it aside, cover the closed folder with an
empty tmpfs, recreate the path and bind the interpreter back, so that its absolute library
paths still work and nothing else of that folder is visible.
"""
import dataclasses
import importlib.util
import os
import platform
import py_compile
import queue
import re
import shutil
import site
import stat
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from . import cgroups

LEVELS = ("bubblewrap", "unprivileged-user", "rlimits")
NOBODY = 65534
PROBES = Path(__file__).with_name("probes.py")
# Inside the bubblewrap sandbox: where the submission and probes.py are mounted.
SUBMISSION_MOUNT = "/submission"
GRADER_MOUNT = "/grader"
PACKAGES_MOUNT = "/packages"
# The course's config (``[worker]`` table) and what a submission may import when it says nothing.
DEFAULT_CONFIG = Path(__file__).with_name("checks.toml")
# Not matplotlib: nobody sees a picture drawn while grading, and importing the real library
# costs a plotting submission about 0.6 s of CPU; its stand-in costs nothing.
DEFAULT_PACKAGES = ("numpy",)
# Fixes what a submission cannot see but its results may depend on: str hashes (dict and set
# layouts) and, through setarch -R, object addresses (the order of a set of objects).
HASH_SEED = "0"
# Shared libraries the interpreter links against (symlinks on merged-/usr systems).
LIBRARY_DIRS = ("/lib", "/lib64", "/lib32", "/usr/lib", "/usr/lib64", "/usr/lib32")
# World-writable folders of the host: covered at the unprivileged-user level.
SHARED_SCRATCH = ("/tmp", "/var/tmp", "/dev/shm")

# Run inside the worker's private mount namespace, as root, before dropping to nobody:
# each operation is "bind SRC DST", "rbind SRC DST" (with the mounts below it), "tmpfs DIR MODE SIZE", "mkdir DIR", "hide PATH" or "cd DIR";
# then "--"
# and the command to exec. Written for /bin/sh so that no extra interpreter starts.
LAUNCHER = r"""
while [ "$1" != "--" ]; do
  case "$1" in
    bind) mount --bind "$2" "$3" || exit 125; shift 3 ;;
    rbind) mount --rbind "$2" "$3" || exit 125; shift 3 ;;
    tmpfs) mount -t tmpfs -o "mode=$3,size=$4" autodiff101 "$2" || exit 125; shift 4 ;;
    mkdir) mkdir -p "$2" || exit 125; shift 2 ;;
    hide) if [ -e "$2" ]; then mount -t tmpfs -o mode=000,size=4k autodiff101 "$2" || exit 125; fi; shift 2 ;;
    cd) cd "$2" || exit 125; shift 2 ;;
    *) exit 125 ;;
  esac
done
shift
exec "$@"
"""


# Run as root first thing: moves itself into the worker's control groups (each argument up
# to "--" a cgroup.procs file), then execs the rest, so that everything the worker starts is
# in them from its first instruction.
JOIN = r"""
while [ "$1" != "--" ]; do
  echo $$ > "$1" || exit 125
  shift
done
shift
exec "$@"
"""

# The interpreter's flags: no user site, no site module (no site-packages), no bytecode
# written, not the current folder on sys.path (3.11+). Not -I: it would ignore PYTHONHASHSEED.
PYTHON_FLAGS = ["-s", "-S", "-B"] + (["-P"] if sys.version_info >= (3, 11) else [])

# Root to nobody, for good: no supplementary groups, no regaining privileges through setuid files.
DROP_ROOT = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--no-new-privs", "--"]


@dataclass(frozen=True)
class Limits:
    """Resource limits of one worker and time limits of one submission."""

    cpu_seconds: int = 60
    memory_bytes: int = 1 << 30
    file_bytes: int = 16 << 20
    open_files: int = 64
    processes: int = 64  # of one worker with its children: a cgroup's pids.max, else RLIMIT_NPROC (not root)
    total_memory_bytes: int = 1 << 30  # one worker with all its children, where cgroups work
    # Time limits count CPU seconds (of the worker and its children), so that a busy machine
    # does not fail honest code; each has a wall-clock backstop (``wall_clock``) for code
    # that sleeps or blocks without using CPU.
    top_level_seconds: float = 3.0  # then a notebook cell (a .py: its top-level code) is stopped
    load_timeout: float = 30.0  # all of the submission's top-level code, at each worker start
    submission_timeout: float = 120.0  # all of one submission's checks and restarts
    check_timeout: float = None  # when set, replaces every check's own timeout (tests)
    # Backstop = CPU limit x wall_factor + wall_slack, for code that sleeps or blocks: code
    # still computing when it passes (a busy machine) is left to its CPU limit, within the
    # submission's wall-clock bound (worker.Clock). The slack covers start-up.
    wall_factor: float = 3.0
    wall_slack: float = 5.0
    output_chars: int = 64 * 1024  # of stdout and of stderr, kept for the instructor
    scratch_bytes: int = 64 << 20  # the worker's writable /tmp or working folder, in memory
    reply_bytes: int = 4 << 20  # one JSON reply from the worker
    reply_text_chars: int = 500  # any one string in a reply (a type name, a message)

    def rlimits(self):
        return {"cpu": self.cpu_seconds, "address_space": self.memory_bytes,
                "file_size": self.file_bytes, "open_files": self.open_files,
                "processes": self.processes}

    def wall_clock(self, cpu_seconds):
        """The wall-clock backstop of a limit of ``cpu_seconds`` CPU seconds."""
        return cpu_seconds * self.wall_factor + self.wall_slack


class IsolationUnavailable(Exception):
    pass


def is_root():
    return os.geteuid() == 0


# --- which levels this machine offers ----------------------------------------------------

_checked = {}
_checked_lock = threading.Lock()


def level_problem(level):
    """Why ``level`` cannot run here, or None when a trial worker started at it, in this
    process or in an earlier one on the same machine (``trial_facts``)."""
    with _checked_lock:
        if level not in _checked:
            _checked[level] = _remembered_trial(level)
        return _checked[level]


def _remembered_trial(level):
    """A trial worker at ``level`` once per machine state: a level that started is
    remembered on disk (``checkcache.remembered``) under ``trial_facts``; a level that
    failed is tried again by every process (its failure may have been passing)."""
    from . import checkcache

    facts = trial_facts(level)
    if facts is not None and checkcache.remembered("isolation", facts) == "works":
        return None
    problem = _trial(level)
    if problem is None and facts is not None:
        checkcache.remember("isolation", facts, "works")
    return problem


def forget_level(level):
    """Forget that ``level`` worked (a worker at it could not start after all): the next
    process tries it again."""
    from . import checkcache

    facts = trial_facts(level)
    if facts is not None:
        checkcache.forget("isolation", facts)


# Kernel settings that decide whether unprivileged namespaces (bubblewrap's) work.
SYSCTLS = ("kernel/unprivileged_userns_clone", "user/max_user_namespaces", "user/max_mnt_namespaces",
           "user/max_pid_namespaces", "user/max_net_namespaces", "kernel/apparmor_restrict_unprivileged_userns")


def trial_facts(level):
    """Everything a trial worker's start at ``level`` depends on, as JSON: the level; the
    user; the kernel's release and namespace settings; this process's seccomp,
    no-new-privileges and capability state (a container's); the interpreter's and the tools'
    paths and modification times; the sources of this module and ``cgroups.py``. None when
    one of them cannot be read (then the trial runs every time). Should a remembered level
    fail all the same, the first worker that cannot start forgets it (``forget_level``)."""
    import hashlib

    def stamp(path):
        return [path, os.stat(path).st_mtime_ns] if path else None

    def read(path):
        try:
            with open(path) as file:
                return file.read().strip()
        except OSError:
            return None

    tools = {"bubblewrap": ("bwrap",), "unprivileged-user": ("unshare", "setpriv", "mount")}.get(level, ())
    try:
        status = [line for line in (read("/proc/self/status") or "").splitlines()
                  if line.startswith(("Seccomp:", "NoNewPrivs:", "CapEff:"))]
        return {"level": level, "uid": os.geteuid(), "kernel": os.uname().release,
                "sysctls": {name: read(f"/proc/sys/{name}") for name in SYSCTLS}, "status": status,
                "interpreter": stamp(interpreter()),
                "tools": {tool: stamp(shutil.which(tool)) for tool in (*tools, "setarch")},
                "sources": hashlib.sha256(Path(__file__).read_bytes()
                                          + Path(cgroups.__file__).read_bytes()).hexdigest()}
    except OSError:
        return None


def strongest_level():
    for level in LEVELS:
        if level_problem(level) is None:
            return level
    raise IsolationUnavailable("no isolation level works on this machine")  # rlimits always should


def _trial(level):
    # Without packages: the trial tests the isolation itself (each worker binds the course's
    # packages), and a batch resolves those meanwhile, in parallel with it (grade.py).
    if level == "bubblewrap" and not shutil.which("bwrap"):
        return "bubblewrap is not installed (apt-get install bubblewrap)"
    if level == "unprivileged-user":
        if not is_root():
            return "the grader is not running as root, so it cannot switch the worker to another user"
        missing = [tool for tool in ("unshare", "setpriv", "mount") if not shutil.which(tool)]
        if missing:
            return f"{', '.join(missing)} not found (util-linux)"
    with tempfile.TemporaryDirectory(prefix="autodiff101-trial-") as root, \
            Sandbox(level, root=Path(root), check=False, packages=()) as sandbox:
        argv, cwd = sandbox.command(["-c", "print('ok')"], sandbox.new_directory())
        try:
            done = subprocess.run(argv, cwd=cwd, env=sandbox.environment(cwd), capture_output=True,
                                  stdin=subprocess.DEVNULL, timeout=30, text=True, **sandbox.spawn_options())
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"a trial worker did not start: {error}"
        if done.returncode != 0 or done.stdout.strip() != "ok":
            reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
            return f"a trial worker failed: {reason}"
    return None


# --- the interpreter and what it needs ---------------------------------------------------


def interpreter():
    """The real interpreter binary (in a virtualenv, its base: the worker never needs the
    virtualenv's packages)."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def interpreter_roots():
    """Folders the interpreter needs at run time: its prefixes (binary, libpython, stdlib)."""
    roots = []
    for prefix in (sys.base_prefix, sys.base_exec_prefix, os.path.dirname(os.path.dirname(interpreter()))):
        prefix = os.path.realpath(prefix)
        if prefix not in roots and not any(_inside(prefix, r) for r in roots):
            roots = [r for r in roots if not _inside(r, prefix)] + [prefix]
    return roots


def package_folders():
    """Third-party package folders of the interpreter: covered in the sandbox, so that the
    worker finds neither the kit (a non-editable install puts solutions/ there) nor anything
    else the grader has installed."""
    folders = set(site.getsitepackages([sys.base_prefix, sys.base_exec_prefix]))
    for scheme_path in ("purelib", "platlib"):
        folders.add(sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_exec_prefix})[scheme_path])
    folders.add("/usr/lib/python3/dist-packages")
    return sorted(os.path.realpath(f) for f in folders if os.path.isdir(f))


def _inside(path, folder):
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def closed_ancestor(path):
    """The outermost folder on ``path`` that other users cannot enter, or None."""
    current = "/"
    for part in Path(path).parts[1:]:
        if not os.stat(current).st_mode & stat.S_IXOTH:
            return current
        current = os.path.join(current, part)
    return None


def reachable_temporary_folder():
    """Where a sandbox's root goes when its workers run as nobody: the temporary folder
    (``TMPDIR``) when every user may enter it and each folder above it, else the first of
    ``SHARED_SCRATCH`` that is (bubblewrap, run as nobody, binds the submission's folder from
    there: under a TMPDIR inside a private folder it could not, and every worker failed to
    start). None when none is: the temporary folder, and the failure says why."""
    for folder in (tempfile.gettempdir(), *SHARED_SCRATCH):
        if (os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK)
                and os.stat(folder).st_mode & stat.S_IXOTH and closed_ancestor(folder) is None):
            return folder
    return None


_address_prefix = []
_address_lock = threading.Lock()


def address_prefix():
    """The command that runs a program without address-space randomisation (``setarch
    ARCH -R``), or [] where it does not work here: addresses of a submission's objects then
    repeat from run to run, and so does the order of a set of them."""
    with _address_lock:
        if not _address_prefix:
            _address_prefix.append(_remembered_address_prefix())
        return list(_address_prefix[0])


def _remembered_address_prefix():
    """``address_prefix`` found by running it once per machine state: remembered on disk
    under the same facts as a trial worker's level, setarch's path and age among them."""
    from . import checkcache

    facts = trial_facts("setarch")
    stored = checkcache.remembered("address-prefix", facts) if facts is not None else None
    if isinstance(stored, list) and all(isinstance(part, str) for part in stored):
        return stored
    prefix = ["setarch", platform.machine(), "-R"]
    try:
        done = subprocess.run([*prefix, "cat", "/proc/self/personality"], capture_output=True,
                              text=True, timeout=30, stdin=subprocess.DEVNULL)
        works = done.returncode == 0 and int(done.stdout.strip() or "0", 16) & 0x0040000
    except (OSError, ValueError, subprocess.TimeoutExpired):
        works = False
    found = prefix if works else []
    if facts is not None:
        checkcache.remember("address-prefix", facts, found)
    return found


def kit_folders():
    """Where the kit's own code lives: hidden from workers that can see the host's files."""
    import importlib.util

    folders = set()
    for name in ("autograder", "solutions"):
        spec = importlib.util.find_spec(name)  # located, not imported: solutions/ is not needed here
        if spec is None or not spec.origin:
            continue
        folder = Path(spec.origin).resolve().parent
        folders.add(str(folder.parent if (folder.parent / "pyproject.toml").exists() else folder))
    return sorted(folders)


# --- packages a submission may import ----------------------------------------------------


def allowed_packages(config=None):
    """The packages a submission may import besides the standard library: the list
    ``allowed_packages`` of the ``[worker]`` table in the course's config (a TOML path;
    None or a dict of checks: ``autograder/checks.toml``), numpy alone when the table says
    nothing. Raises ValueError for an unreadable file or a list that is not
    of names."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    path = Path(config) if config and not isinstance(config, dict) else DEFAULT_CONFIG
    try:
        table = tomllib.loads(path.read_text()).get("worker", {})
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"cannot read the course configuration {path}: {error}") from error
    names = table.get("allowed_packages", list(DEFAULT_PACKAGES))
    if not isinstance(names, list) or not all(isinstance(n, str) and _DISTRIBUTION.fullmatch(n) for n in names):
        raise ValueError(f"{path}: [worker] allowed_packages must be a list of package names, "
                         f'like ["numpy", "matplotlib"]')
    return tuple(dict.fromkeys(names))


_DISTRIBUTION = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")


def normalized(name):
    """A distribution's name as package indexes compare them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Packages:
    """What a worker may import besides the standard library.

    ``allowed``: the names the course's config lists. ``missing``: those of them (or of
    what they require) that are not installed where the grader runs. ``entries``: (name,
    real path) of every top-level file or folder of the allowed distributions and of their
    dependencies (``numpy``, ``numpy.libs``, ``numpy-2.0.dist-info``, ``six.py``, ...);
    ``modules``: the import names those provide."""

    allowed: tuple = ()
    missing: tuple = ()
    entries: tuple = ()
    modules: frozenset = field(default_factory=frozenset)


_resolved = {}


def resolve_packages(names):
    """``Packages`` for the distributions ``names`` and, from their metadata
    (importlib.metadata), everything they require, transitively (extras left out).
    Remembered in this process, and on disk (``checkcache.remembered``) under
    ``package_facts``: reading the distributions' file lists takes a while."""
    from . import checkcache

    names = tuple(names)
    if names in _resolved:
        return _resolved[names]
    facts = package_facts(names)
    stored = checkcache.remembered("packages", facts) if facts is not None else None
    if _usable(stored):
        _resolved[names] = Packages(tuple(stored["allowed"]), tuple(stored["missing"]),
                                    tuple(map(tuple, stored["entries"])), frozenset(stored["modules"]))
        return _resolved[names]
    packages = _resolve_packages(names)
    if facts is not None:
        checkcache.remember("packages", facts, {"allowed": packages.allowed, "missing": packages.missing,
                                                "entries": packages.entries, "modules": sorted(packages.modules)})
    _resolved[names] = packages
    return packages


def package_facts(names):
    """What resolving ``names`` depends on, as JSON: the names; the interpreter; every folder
    on ``sys.path``, with its modification time where it holds distributions' metadata
    (installing, removing or upgrading one adds or removes its ``.dist-info`` there, which
    changes the time; a folder without any, such as the current one, where OUT is made, is
    keyed by its name alone); the kit's folders; the source of this module. None when one
    cannot be read (no caching)."""
    import hashlib

    def stamp(folder):
        with os.scandir(folder) as entries:
            holds = any(entry.name.endswith((".dist-info", ".egg-info")) for entry in entries)
        return os.stat(folder).st_mtime_ns if holds else None

    try:
        return {"names": list(names), "interpreter": interpreter(), "kit": kit_folders(),
                "path": [[entry, stamp(entry)] for entry in sys.path if entry and os.path.isdir(entry)],
                "source": hashlib.sha256(Path(__file__).read_bytes()).hexdigest()}
    except OSError:
        return None


def _usable(stored):
    """Whether a stored resolution has the right shape and all its entries still exist."""
    try:
        return (isinstance(stored, dict) and all(isinstance(stored[k], list) for k in ("allowed", "missing", "modules"))
                and all(isinstance(name, str) and isinstance(path, str) and os.path.isabs(path)
                        and os.path.exists(path) for name, path in stored["entries"]))
    except (KeyError, TypeError, ValueError):
        return False


def _resolve_packages(names):
    import importlib.metadata as metadata

    kit = kit_folders()
    wanted, seen, missing, entries = list(names), set(), [], {}
    while wanted:
        name = wanted.pop()
        if normalized(name) in seen:
            continue
        seen.add(normalized(name))
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
            continue
        wanted += [requirement for requirement in map(_required, distribution.requires or ()) if requirement]
        for entry in _top_level_entries(distribution):
            if os.path.basename(entry) not in entries and not any(_inside(entry, k) or _inside(k, entry) for k in kit):
                entries[os.path.basename(entry)] = entry
    modules = frozenset(_module_name(name) for name in entries if _module_name(name))
    return Packages(names, tuple(m for m in names if m in missing) + tuple(m for m in missing if m not in names),
                    tuple(sorted(entries.items())), modules)


def _required(requirement):
    """The distribution a requirement names, or None when it applies only to an extra or
    to another platform or Python."""
    try:
        from packaging.requirements import Requirement

        parsed = Requirement(requirement)
        if parsed.marker is not None and not parsed.marker.evaluate({"extra": ""}):
            return None
        return parsed.name
    except ImportError:  # no packaging: keep requirements without markers
        name, _, marker = requirement.partition(";")
        match = _DISTRIBUTION.match(name.strip())
        return match.group(0) if match and not marker.strip() else None
    except Exception:  # an unparsable requirement in someone's metadata
        return None


def _record_tops(distribution):
    """The first component of every path a distribution installed. Its RECORD is read as
    text: ``distribution.files`` makes a path object per file (numpy's and matplotlib's
    thousands cost a third of a second); other metadata formats go through ``files``."""
    import csv

    record = distribution.read_text("RECORD")
    if record is None:
        return {Path(str(f)).parts[0] for f in (distribution.files or ()) if Path(str(f)).parts}
    return {row[0].replace("\\", "/").split("/", 1)[0] for row in csv.reader(record.splitlines()) if row and row[0]}


def _top_level_entries(distribution):
    """Real paths of a distribution's top-level files and folders in its site folder
    (its package folders, single modules, .libs and .dist-info); never a shared
    ``__pycache__``, a ``.pth`` file or anything outside the site folder."""
    site_folder = os.path.realpath(distribution.locate_file(""))
    tops = _record_tops(distribution)
    tops |= set((distribution.read_text("top_level.txt") or "").split())
    found = set()
    for top in tops:
        if top in ("..", ".", "__pycache__") or top.endswith(".pth"):
            continue
        path = os.path.join(site_folder, top)
        if not os.path.exists(path) and os.path.exists(path + ".py"):
            path += ".py"
        real = os.path.realpath(path)
        if os.path.exists(real) and os.path.dirname(real) == site_folder:
            found.add(real)
    return sorted(found)


def _module_name(entry):
    """The import name a top-level entry provides, or None (metadata, vendored libraries)."""
    if entry.endswith((".dist-info", ".egg-info", ".libs", ".data")):
        return None
    name = entry.split(".", 1)[0] if entry.endswith((".py", ".so")) or "." not in entry else None
    return name if name and name.isidentifier() else None


def _copy_with_bytecode(source, folder):
    """Copy the module ``source`` into ``folder`` with its bytecode, so that no worker compiles
    it again (workers run with -B): the kit's own bytecode (pip compiles it on install) when
    it is newer than the source, else compiled here. Returns the bytecode's path. The worker's
    interpreter checks the bytecode against the source's size and modification time, which
    the copy keeps, so a stale file costs a compile, never a wrong module."""
    target = Path(folder) / Path(source).name
    shutil.copy2(source, target)
    kit_bytecode = Path(importlib.util.cache_from_source(str(source)))
    bytecode = Path(importlib.util.cache_from_source(str(target)))
    try:
        if kit_bytecode.stat().st_mtime < Path(source).stat().st_mtime:
            raise FileNotFoundError(kit_bytecode)
        bytecode.parent.mkdir(exist_ok=True)
        shutil.copyfile(kit_bytecode, bytecode)
        return str(bytecode)
    except OSError:
        return py_compile.compile(str(target), doraise=True)


# --- the sandbox ------------------------------------------------------------------------



def remove_tree(folder):
    """Remove ``folder`` and everything in it, as far as this process may; never raises.
    ``shutil.rmtree`` recurses once per level, and code run in a worker can nest folders in
    its working folder past Python's recursion limit (and past the longest path a system
    call takes): those are removed level by level (``_remove_deep_tree``)."""
    try:
        shutil.rmtree(folder, ignore_errors=True)
    except RecursionError:
        _remove_deep_tree(folder)


def _remove_deep_tree(folder):
    """Depth first without recursion, one open folder at a time (entered by name, left by
    ``..``), so neither the depth nor the length of a path limits it. A folder that cannot be
    removed is passed over, so it ends."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    try:
        fd = os.open(folder, flags)
    except OSError:
        return
    names, stuck = [], set()  # the folders entered, from the top; those that would not go
    while True:
        into = None
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        if (entry.inode(), entry.name) not in stuck and into is None:
                            into, into_inode = entry.name, entry.inode()
                    else:
                        try:
                            os.unlink(entry.name, dir_fd=fd)
                        except OSError:
                            pass
        except OSError:
            pass
        if into is not None:
            try:
                inner = os.open(into, flags, dir_fd=fd)
            except OSError:
                stuck.add((into_inode, into))
                continue
            os.close(fd)
            fd = inner
            names.append(into)
            continue
        if not names:
            os.close(fd)
            try:
                os.rmdir(folder)
            except OSError:
                pass
            return
        try:
            parent = os.open("..", flags, dir_fd=fd)
            inode = os.fstat(fd).st_ino
        except OSError:
            os.close(fd)
            return
        os.close(fd)
        fd, name = parent, names.pop()
        try:
            os.rmdir(name, dir_fd=fd)
        except OSError:
            stuck.add((inode, name))


class Sandbox:
    """One batch's workers: a private temporary root holding a copy of ``probes.py`` and
    one folder per submission, and the isolation level they run at.

    ``hide`` lists extra paths (OUT, the folders submissions came from) that the
    ``unprivileged-user`` level must cover; bubblewrap shows nothing it is not given.
    """

    def __init__(self, level="auto", limits=None, hide=(), root=None, check=True, packages=None):
        if level == "auto":
            level = strongest_level()
        elif level not in LEVELS:
            raise IsolationUnavailable(f"unknown isolation level {level!r}; choose from {', '.join(LEVELS)}")
        elif check and level_problem(level):
            raise IsolationUnavailable(f"isolation {level!r} is not available: {level_problem(level)}")
        self.level = level
        self.limits = limits or Limits()
        self.drop_root = is_root() and level != "rlimits"
        self._own_root = root is None
        # mkdtemp makes the root 0700; 0711 lets nobody reach its own folder by name only.
        self.root = Path(root or tempfile.mkdtemp(prefix="autodiff101-",
                                                  dir=reachable_temporary_folder() if self.drop_root else None))
        try:
            self._prepare(hide, packages)
        except BaseException:  # Ctrl-C or SIGTERM while preparing too: no folder is left behind
            if self._own_root:
                remove_tree(self.root)
            raise

    def _prepare(self, hide, packages):
        self.root.chmod(0o711)
        self.grader_dir = self._new_folder("grader")
        cached = _copy_with_bytecode(PROBES, self.grader_dir)
        for path in (self.grader_dir / "probes.py", Path(cached), Path(cached).parent):
            path.chmod(0o755 if path.is_dir() else 0o644)
        self.hide = self._coverable(set(hide) | set(kit_folders()))
        self.interpreter_roots = interpreter_roots()
        self.package_folders = package_folders()
        self.packages = resolve_packages(allowed_packages() if packages is None else packages)
        if self.drop_root:
            # A package nobody cannot reach (a virtualenv under /root or another closed folder)
            # cannot be bound for the worker: leave it out, so that importing it says it is not
            # available instead of every worker failing to start. Making such folders reachable,
            # as the interpreter's are, is the better fix and still to do.
            roots = [Path(root) for root in self.interpreter_roots]  # made reachable below
            reachable = tuple((name, path) for name, path in self.packages.entries
                              if closed_ancestor(path) is None or any(Path(path).is_relative_to(root) for root in roots))
            if reachable != self.packages.entries:
                self.packages = dataclasses.replace(self.packages, entries=reachable)
        self.packages_dir = self._package_view()
        # setpriv drops root inside the worker's command, after it has joined its control groups.
        self._argv_drop = self.drop_root and bool(shutil.which("setpriv"))
        self.cgroups = is_root() and (self._argv_drop or not self.drop_root) and cgroups.available() is None
        self.address_prefix = address_prefix()
        self.reachability = self._reachability_operations()
        self._holder = self._start_holder()
        self.stopping = False
        self._slots = None  # see limit_workers
        self._live = set()
        self._live_lock = threading.Lock()
        self._reaped = queue.Queue()
        self._reaper = threading.Thread(target=self._reap_forever, name="autodiff101-reaper", daemon=True)
        self._reaper.start()

    def _package_view(self):
        """The folder the worker finds its allowed packages in, prepared on the host:
        symbolic links at rlimits (the worker reads the host's files anyway), mount points
        for bind mounts at unprivileged-user; bubblewrap binds them itself. None when the
        course allows no package."""
        if not self.packages.entries:
            return None
        if self.level == "bubblewrap":
            return PACKAGES_MOUNT
        view = self._new_folder("packages")
        for name, path in self.packages.entries:
            target = view / name
            if self.level == "rlimits":
                target.symlink_to(path)
            elif os.path.isdir(path):
                target.mkdir(mode=0o755)
            else:
                target.touch(mode=0o644)
        return str(view)

    def new_group(self):
        """A fresh control group for one worker, or None where they do not work."""
        if not self.cgroups:
            return None
        try:
            return cgroups.Group(self.limits.total_memory_bytes, self.limits.processes)
        except OSError:
            return None

    def reap(self, worker=None, folder=None):
        """Let a worker that is done exit, and remove a folder, in the background: the
        grading thread goes on to its next submission at once."""
        self._reaped.put((worker, folder))

    def _reap_forever(self):
        while True:
            worker, folder = self._reaped.get()
            if worker is None and folder is None:
                return
            if worker is not None:
                worker.finish()
                worker.close()
            if folder is not None:
                remove_tree(folder)

    def limit_workers(self, count):
        """At most ``count`` submissions hold a ``worker_slot`` at once."""
        self._slots = threading.BoundedSemaphore(count)

    @contextmanager
    def worker_slot(self):
        """Held while one submission's workers run (``limit_workers``; without it, always
        free): a grading thread then diagnoses and writes one submission while another's
        worker runs, and no more workers run than asked for. Gives the seconds it waited for
        the slot; OSError when the batch stops while waiting for one."""
        if self._slots is None:
            yield 0.0
            return
        asked = time.monotonic()
        while not self._slots.acquire(timeout=0.1):
            if self.stopping:
                raise OSError("the batch is stopping")
        try:
            yield time.monotonic() - asked
        finally:
            self._slots.release()

    def register(self, worker):
        """Track a running worker, so that ``stop`` can end it."""
        with self._live_lock:
            if self.stopping:
                return False
            self._live.add(worker)
            return True

    def unregister(self, worker):
        with self._live_lock:
            self._live.discard(worker)

    def stop(self):
        """Interrupt the batch: no new workers; kill every running one."""
        with self._live_lock:
            self.stopping = True
            live = list(self._live)
        for worker in live:
            worker.interrupt()

    def close(self):
        self.stop()
        self._reaped.put((None, None))
        self._reaper.join()
        if self._holder is not None:
            self._holder.stdin.close()  # its `read` returns and it exits
            try:
                self._holder.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._holder.kill()
            self._holder = None
        if self._own_root:
            remove_tree(self.root)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _new_folder(self, prefix):
        folder = Path(tempfile.mkdtemp(prefix=prefix + "-", dir=self.root))
        folder.chmod(0o755)
        return folder

    def new_directory(self):
        """A fresh folder the worker may write to (its working directory)."""
        folder = self._new_folder("cwd")
        if self.drop_root:
            os.chown(folder, NOBODY, NOBODY)
        return folder

    def write_submission(self, sources):
        """Write a submission's files into a fresh folder; the worker gets it read-only."""
        folder = self._new_folder("submission")
        for name, text in sources.items():
            target = folder / name
            target.write_text(text, encoding="utf-8")
            target.chmod(0o644)
        return folder

    def environment(self, cwd):
        home = "/tmp" if self.level == "bubblewrap" else str(cwd)
        # One thread per numerical library: results do not depend on how work is split, and
        # a worker does not take every core of the machine.
        return {"MPLBACKEND": "Agg", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8", "PATH": "/usr/bin:/bin",
                "PYTHONHASHSEED": HASH_SEED, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                "MKL_NUM_THREADS": "1"}

    def _coverable(self, paths):
        """The paths to cover at the unprivileged-user level, minus any the worker itself
        needs (an OUT of /tmp would otherwise cover the sandbox's own folders)."""
        needed = [str(self.root), *interpreter_roots(), *LIBRARY_DIRS]
        paths = {os.path.realpath(p) for p in paths}
        return sorted(p for p in paths if p != "/" and not any(_inside(n, p) for n in needed))

    def spawn_options(self):
        """Popen keywords: a process group of its own; the user switch where no launcher
        script does it."""
        options = {"process_group": 0}
        if self.drop_root and not self._argv_drop and not self._needs_launcher():
            options.update(user=NOBODY, group=NOBODY, extra_groups=[])
        return options

    def _needs_launcher(self):
        return self.level == "unprivileged-user" or (self.drop_root and self.reachability)

    def _reachability_operations(self):
        """Launcher operations that make every interpreter folder reachable by nobody."""
        operations = []
        for index, folder in enumerate(self.interpreter_roots):
            closed = closed_ancestor(folder) if self.drop_root else None
            if closed is None:
                continue
            aside = self.root / f"interpreter-{index}"
            aside.mkdir(mode=0o755, exist_ok=True)
            operations += ["bind", folder, str(aside), "tmpfs", closed, "0755", "64k", "mkdir", folder,
                           "bind", str(aside), folder]
        return operations

    def directory_for_worker(self, folder):
        """The path under which the worker sees a submission folder."""
        return SUBMISSION_MOUNT if self.level == "bubblewrap" else str(folder)

    def command(self, python_args, submission_folder, group=None):
        """argv and working directory that start ``python -s -S -B <python_args>`` as a
        worker on ``submission_folder``, in control group ``group`` (``new_group``) if any."""
        python = [interpreter(), *PYTHON_FLAGS, *python_args]
        if self.level == "bubblewrap":
            argv, cwd = self._bubblewrap(python, submission_folder), Path("/")
        else:
            argv, cwd = python, self.new_directory()
        if self.drop_root:
            operations = list(self.reachability)
            if self.level == "unprivileged-user":
                # The allowed packages first, while site-packages is still visible to bind from.
                operations += [op for name, path in self.packages.entries
                               for op in ("bind", path, os.path.join(self.packages_dir, name))]
                operations += [op for path in self.hide + self.package_folders for op in ("hide", path)]
                operations += self._shared_scratch_covers()
                # The working folder in memory, size-limited: files cannot fill the disk.
                operations += ["tmpfs", str(cwd), "1777", str(self.limits.scratch_bytes), "cd", str(cwd)]
            if self._holder is not None and self.level == "bubblewrap":
                argv = ["nsenter", f"--mount=/proc/{self._holder.pid}/ns/mnt", "--", *DROP_ROOT, *argv]
            elif operations:
                argv = self._launcher(operations, argv)
            elif self._argv_drop:
                argv = [*DROP_ROOT, *argv]
        if group is not None:
            argv = ["/bin/sh", "-c", JOIN, "autodiff101-join", *group.join_files, "--", *argv]
        return [*self.address_prefix, *argv], cwd

    def _shared_scratch_covers(self):
        """Launcher operations that cover the host's world-writable folders with small empty
        tmpfs: files a worker left there would outlive it, and could fill the disk. The
        sandbox's own root, usually under /tmp, is bound aside first and back afterwards."""
        shared = [d for d in SHARED_SCRATCH if os.path.isdir(d) and os.stat(d).st_mode & stat.S_IWOTH]
        root = str(self.root)
        holders = [d for d in shared if _inside(root, d)]
        others = [d for d in shared if d not in holders]
        operations = []
        for folder in others:
            operations += ["tmpfs", folder, "1777", str(1 << 20)]
        if holders and others:
            # rbind: the allowed packages are bound below the root already.
            aside = os.path.join(others[0], ".autodiff101-root")
            operations += ["mkdir", aside, "rbind", root, aside]
            for folder in holders:
                operations += ["tmpfs", folder, "1777", str(1 << 20)]
            operations += ["mkdir", root, "rbind", aside, root]
        return operations

    def _start_holder(self):
        """A process that keeps a mount namespace in which the interpreter is reachable by
        nobody, for the whole batch: bubblewrap workers enter it with nsenter instead of each
        building their own (the mounts cost more CPU than the worker's own start). None when
        no such namespace is needed, or when it cannot be made (each worker builds its own)."""
        if self.level != "bubblewrap" or not self.drop_root or not self.reachability or not shutil.which("nsenter"):
            return None
        wait_for_stdin = ["/bin/sh", "-c", "echo ready; read line"]
        try:
            holder = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", LAUNCHER,
                 "autodiff101-holder", *self.reachability, "--", *wait_for_stdin],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
        except OSError:
            return None
        if holder.stdout.readline().strip() != b"ready":
            holder.kill()
            holder.wait()
            return None
        return holder

    def _launcher(self, operations, argv):
        namespaces = ["--mount", "--propagation", "private"]
        if self.level == "unprivileged-user":
            namespaces += ["--net", "--ipc", "--uts", "--pid", "--fork", "--kill-child", "--mount-proc"]
        return ["unshare", *namespaces, "--", "/bin/sh", "-c", LAUNCHER, "autodiff101-launcher",
                *operations, "--", *DROP_ROOT, *argv]

    def _bubblewrap(self, python, submission_folder):
        # --disable-userns: no nested user namespaces, the usual door to kernel bugs.
        argv = ["bwrap", "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
                "--new-session", "--clearenv", "--hostname", "sandbox"]
        for folder in self.interpreter_roots:
            argv += ["--ro-bind", folder, folder]
        for folder in LIBRARY_DIRS:
            if os.path.islink(folder):
                argv += ["--symlink", os.readlink(folder), folder]
            elif os.path.isdir(folder) and not any(_inside(folder, r) for r in self.interpreter_roots):
                argv += ["--ro-bind", folder, folder]
        mounted = self.interpreter_roots + [f for f in LIBRARY_DIRS if os.path.isdir(f) and not os.path.islink(f)]
        for folder in self.package_folders:
            if any(_inside(folder, m) for m in mounted):
                argv += ["--tmpfs", folder, "--remount-ro", folder]
        for name, path in self.packages.entries:  # one by one: never the rest of site-packages
            argv += ["--ro-bind", path, f"{PACKAGES_MOUNT}/{name}"]
        argv += ["--ro-bind", str(submission_folder), SUBMISSION_MOUNT,
                 "--ro-bind", str(self.grader_dir), GRADER_MOUNT,
                 "--proc", "/proc", "--dev", "/dev", "--size", str(self.limits.scratch_bytes), "--tmpfs", "/tmp",
                 "--size", str(1 << 20), "--tmpfs", "/dev/shm",
                 # bwrap's root and /dev are unbounded tmpfs: read-only, so only the sized ones take writes.
                 "--remount-ro", "/dev", "--remount-ro", "/", "--chdir", "/tmp"]
        for name, value in self.environment("/tmp").items():
            argv += ["--setenv", name, value]
        return argv + ["--", *python]

    def probes_folder_for_worker(self):
        return GRADER_MOUNT if self.level == "bubblewrap" else str(self.grader_dir)

    def cpu_of(self, process, group=None):
        """CPU seconds used so far by a worker and all its children: its control group's
        count, else the sum over its live process tree in /proc (children that already
        exited are then missed). None when neither can be read."""
        if group is not None:
            seconds = group.cpu_seconds()
            if seconds is not None:
                return seconds
        return tree_cpu(process.pid)


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def tree_cpu(pid):
    """CPU seconds of process ``pid`` and its live descendants (with the children they
    have waited for), from /proc; None when ``pid`` is gone or /proc is unreadable."""
    parents, times = {}, {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stream:
                fields = stream.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # After the name: state, ppid, ..., utime (14th field of the line), stime, cutime, cstime.
        parents.setdefault(int(fields[1]), []).append(int(entry))
        times[int(entry)] = sum(int(f) for f in fields[11:15]) / _TICKS
    if pid not in times:
        return None
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        total += times.get(current, 0.0)
        stack += parents.get(current, [])
    return total
