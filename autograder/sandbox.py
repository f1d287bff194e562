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

An interpreter under a folder ``nobody`` cannot enter (pyenv in ``/root``, say) is made
reachable inside a private mount namespace: bind it aside, cover the closed folder with an
empty tmpfs, recreate the path and bind the interpreter back, so that its absolute library
paths still work and nothing else of that folder is visible.
"""
import os
import py_compile
import queue
import shutil
import site
import stat
import subprocess
import sys
import sysconfig
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

LEVELS = ("bubblewrap", "unprivileged-user", "rlimits")
NOBODY = 65534
PROBES = Path(__file__).with_name("probes.py")
# Inside the bubblewrap sandbox: where the submission and probes.py are mounted.
SUBMISSION_MOUNT = "/submission"
GRADER_MOUNT = "/grader"
# Shared libraries the interpreter links against (symlinks on merged-/usr systems).
LIBRARY_DIRS = ("/lib", "/lib64", "/lib32", "/usr/lib", "/usr/lib64", "/usr/lib32")
# World-writable folders of the host: covered at the unprivileged-user level.
SHARED_SCRATCH = ("/tmp", "/var/tmp", "/dev/shm")

# Run inside the worker's private mount namespace, as root, before dropping to nobody:
# each operation is "bind SRC DST", "tmpfs DIR MODE SIZE", "mkdir DIR", "hide PATH" or "cd DIR";
# then "--"
# and the command to exec. Written for /bin/sh so that no extra interpreter starts.
LAUNCHER = r"""
while [ "$1" != "--" ]; do
  case "$1" in
    bind) mount --bind "$2" "$3" || exit 125; shift 3 ;;
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


# Root to nobody, for good: no supplementary groups, no regaining privileges through setuid files.
DROP_ROOT = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--no-new-privs", "--"]


@dataclass(frozen=True)
class Limits:
    """Resource limits of one worker and time limits of one submission."""

    cpu_seconds: int = 60
    memory_bytes: int = 1 << 30
    file_bytes: int = 16 << 20
    open_files: int = 64
    processes: int = 64  # not enforced for root; the root levels drop to nobody first
    top_level_seconds: float = 3.0  # then a notebook cell (a .py: its top-level code) is stopped
    load_timeout: float = 30.0  # all of the submission's top-level code, at each worker start
    submission_timeout: float = 120.0  # all of one submission's checks and restarts
    check_timeout: float = None  # when set, replaces every check's own timeout (tests)
    output_chars: int = 64 * 1024  # of stdout and of stderr, kept for the instructor
    scratch_bytes: int = 64 << 20  # the worker's writable /tmp or working folder, in memory
    reply_bytes: int = 4 << 20  # one JSON reply from the worker

    def rlimits(self):
        return {"cpu": self.cpu_seconds, "address_space": self.memory_bytes,
                "file_size": self.file_bytes, "open_files": self.open_files,
                "processes": self.processes}


class IsolationUnavailable(Exception):
    pass


def is_root():
    return os.geteuid() == 0


# --- which levels this machine offers ----------------------------------------------------

_checked = {}
_checked_lock = threading.Lock()


def level_problem(level):
    """Why ``level`` cannot run here, or None when a trial worker started at it."""
    with _checked_lock:
        if level not in _checked:
            _checked[level] = _trial(level)
        return _checked[level]


def strongest_level():
    for level in LEVELS:
        if level_problem(level) is None:
            return level
    raise IsolationUnavailable("no isolation level works on this machine")  # rlimits always should


def _trial(level):
    if level == "bubblewrap" and not shutil.which("bwrap"):
        return "bubblewrap is not installed (apt-get install bubblewrap)"
    if level == "unprivileged-user":
        if not is_root():
            return "the grader is not running as root, so it cannot switch the worker to another user"
        missing = [tool for tool in ("unshare", "setpriv", "mount") if not shutil.which(tool)]
        if missing:
            return f"{', '.join(missing)} not found (util-linux)"
    with tempfile.TemporaryDirectory(prefix="autodiff101-trial-") as root, \
            Sandbox(level, root=Path(root), check=False) as sandbox:
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


def kit_folders():
    """Where the kit's own code lives: hidden from workers that can see the host's files."""
    import autograder
    import solutions

    folders = set()
    for package in (autograder, solutions):
        folder = Path(package.__file__).resolve().parent
        folders.add(str(folder.parent if (folder.parent / "pyproject.toml").exists() else folder))
    return sorted(folders)


# --- the sandbox ------------------------------------------------------------------------


class Sandbox:
    """One batch's workers: a private temporary root holding a copy of ``probes.py`` and
    one folder per submission, and the isolation level they run at.

    ``hide`` lists extra paths (OUT, the folders submissions came from) that the
    ``unprivileged-user`` level must cover; bubblewrap shows nothing it is not given.
    """

    def __init__(self, level="auto", limits=None, hide=(), root=None, check=True):
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
        self.root = Path(root or tempfile.mkdtemp(prefix="autodiff101-"))
        self.root.chmod(0o711)
        self.grader_dir = self._new_folder("grader")
        shutil.copyfile(PROBES, self.grader_dir / "probes.py")
        # Compiled once here: each worker would otherwise compile it again (it runs with -B).
        cached = py_compile.compile(str(self.grader_dir / "probes.py"), doraise=True)
        for path in (self.grader_dir / "probes.py", Path(cached), Path(cached).parent):
            path.chmod(0o755 if path.is_dir() else 0o644)
        self.hide = self._coverable(set(hide) | set(kit_folders()))
        self.interpreter_roots = interpreter_roots()
        self.package_folders = package_folders()
        self.reachability = self._reachability_operations()
        self._holder = self._start_holder()
        self.stopping = False
        self._live = set()
        self._live_lock = threading.Lock()
        self._reaped = queue.Queue()
        self._reaper = threading.Thread(target=self._reap_forever, name="autodiff101-reaper", daemon=True)
        self._reaper.start()

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
                shutil.rmtree(folder, ignore_errors=True)

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
            shutil.rmtree(self.root, ignore_errors=True)

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
        return {"MPLBACKEND": "Agg", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8", "PATH": "/usr/bin:/bin"}

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
        if self.drop_root and not self._needs_launcher():
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

    def command(self, python_args, submission_folder):
        """argv and working directory that start ``python -I -S -B <python_args>`` as a
        worker on ``submission_folder``."""
        python = [interpreter(), "-I", "-S", "-B", *python_args]
        if self.level == "bubblewrap":
            argv, cwd = self._bubblewrap(python, submission_folder), Path("/")
        else:
            argv, cwd = python, self.new_directory()
        if self.drop_root:
            operations = list(self.reachability)
            if self.level == "unprivileged-user":
                operations += [op for path in self.hide + self.package_folders for op in ("hide", path)]
                operations += self._shared_scratch_covers()
                # The working folder in memory, size-limited: files cannot fill the disk.
                operations += ["tmpfs", str(cwd), "1777", str(self.limits.scratch_bytes), "cd", str(cwd)]
            if self._holder is not None and self.level == "bubblewrap":
                argv = ["nsenter", f"--mount=/proc/{self._holder.pid}/ns/mnt", "--", *DROP_ROOT, *argv]
            elif operations:
                argv = self._launcher(operations, argv)
        return argv, cwd

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
            aside = os.path.join(others[0], ".autodiff101-root")
            operations += ["mkdir", aside, "bind", root, aside]
            for folder in holders:
                operations += ["tmpfs", folder, "1777", str(1 << 20)]
            operations += ["mkdir", root, "bind", aside, root]
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
