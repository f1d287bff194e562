"""Control groups: one per worker, so that a worker together with every child it forks is
bounded in total memory and in number of processes, and its CPU time can be measured.

Rlimits are per process: a submission that forks 64 children, each holding what its own
address-space limit allows, would hold 64 times that. A control group counts them together.
Both versions of the kernel's interface are handled: v1 (a hierarchy per controller:
``memory``, ``pids`` and ``cpuacct``) and v2 (one unified hierarchy). Only root can make
groups; the worker joins its group while still root, before it drops to ``nobody`` and
before any student code runs, and ``nobody`` cannot write the group's files to leave it.

``available()`` says whether this machine offers them (a trial group is made and removed
once); without them ``sandbox.py`` falls back to RLIMIT_NPROC, which bounds the processes
of a worker that runs as ``nobody`` (never root's) and so, with the per-process address-space
limit, their memory.
"""
import atexit
import itertools
import os
import signal
import threading
import time

ROOT = "/sys/fs/cgroup"
_counter = itertools.count()
_lock = threading.Lock()
_checked = []


def _own_paths():
    """{controller or "": this process's group path}, from /proc/self/cgroup."""
    paths = {}
    with open("/proc/self/cgroup") as stream:
        for line in stream:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                paths[controller] = path
    return paths


def _mounts():
    """{controller (v1) or "" (v2): mount point}, from /proc/self/mounts."""
    found = {}
    with open("/proc/self/mounts") as stream:
        for line in stream:
            _, point, kind, options, *_ = line.split()
            if kind == "cgroup2":
                found.setdefault("", point)
            elif kind == "cgroup":
                for option in options.split(","):
                    if option in ("memory", "pids", "cpuacct"):
                        found.setdefault(option, point)
    return found


def _write(path, text):
    with open(path, "w") as stream:
        stream.write(text)


def _read(path):
    with open(path) as stream:
        return stream.read()


class Layout:
    """Where this grader's groups go: one parent folder per hierarchy, below the grader's own
    group, named after its pid."""

    def __init__(self):
        if os.geteuid() != 0:
            raise OSError("only root can make control groups")
        mounts, own = _mounts(), _own_paths()
        name = f"autodiff101-{os.getpid()}"
        if all(c in mounts for c in ("memory", "pids")):
            self.version = 1
            self.parents = {c: os.path.join(mounts[c], own.get(c, "/").lstrip("/"), name)
                            for c in ("memory", "pids", "cpuacct") if c in mounts}
        elif "" in mounts and {"memory", "pids"} <= set(_read(os.path.join(mounts[""], "cgroup.controllers")).split()):
            self.version = 2
            own = own.get("", "/").strip("/")
            # A v2 group may pass controllers to its children only if it holds no process
            # itself ("no internal processes"; the root group is exempt), so below the root
            # the grader's groups hang beside its own.
            above = os.path.join(mounts[""], os.path.dirname(own)) if own else mounts[""]
            self.parents = {"": os.path.join(above, name)}
            _write(os.path.join(above, "cgroup.subtree_control"), "+memory +pids")
        else:
            raise OSError("no memory and pids controllers are mounted")
        for parent in self.parents.values():
            _remove_stale(os.path.dirname(parent))
            os.makedirs(parent, exist_ok=True)
        if self.version == 2:
            _write(os.path.join(self.parents[""], "cgroup.subtree_control"), "+memory +pids")

    def remove(self):
        for parent in self.parents.values():
            try:
                os.rmdir(parent)
            except OSError:
                pass


_layout = []


def available():
    """None when per-worker groups work on this machine (a trial group bounded and
    removed), else why not."""
    with _lock:
        if not _checked:
            try:
                group = Group(memory_bytes=64 << 20, processes=8)
                group.remove()
                _checked.append(None)
            except OSError as error:
                _checked.append(f"control groups are not usable: {error}")
        return _checked[0]


def _layout_once():
    if not _layout:
        _layout.append(Layout())
    return _layout[0]


class Group:
    """One worker's control group: made bounded, joined through ``join_files`` (write
    the joining process's pid to each), removed after its processes are killed."""

    def __init__(self, memory_bytes, processes):
        layout = _layout_once()
        self.version = layout.version
        name = f"w{next(_counter)}"
        self.folders = {c: os.path.join(parent, name) for c, parent in layout.parents.items()}
        made = []
        try:
            for folder in self.folders.values():
                os.mkdir(folder)
                made.append(folder)
            if self.version == 1:
                memory = self.folders["memory"]
                _write(os.path.join(memory, "memory.limit_in_bytes"), str(memory_bytes))
                _try_write(os.path.join(memory, "memory.memsw.limit_in_bytes"), str(memory_bytes))  # no swap either
                _write(os.path.join(self.folders["pids"], "pids.max"), str(processes))
            else:
                folder = self.folders[""]
                _write(os.path.join(folder, "memory.max"), str(memory_bytes))
                _try_write(os.path.join(folder, "memory.swap.max"), "0")
                _write(os.path.join(folder, "pids.max"), str(processes))
        except OSError:
            for folder in reversed(made):
                _try_rmdir(folder)
            raise
        self.join_files = [os.path.join(f, "cgroup.procs") for f in self.folders.values()]

    def cpu_seconds(self):
        """CPU time of every process that has been in the group, or None where no
        controller counts it."""
        try:
            if self.version == 1:
                if "cpuacct" not in self.folders:
                    return None
                return int(_read(os.path.join(self.folders["cpuacct"], "cpuacct.usage"))) / 1e9
            for line in _read(os.path.join(self.folders[""], "cpu.stat")).splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) / 1e6
        except (OSError, ValueError):
            pass
        return None

    def out_of_memory(self):
        """Whether the group has hit its memory bound (the kernel then kills one of its
        processes)."""
        try:
            if self.version == 1:
                return int(_read(os.path.join(self.folders["memory"], "memory.failcnt"))) > 0
            events = dict(line.split() for line in _read(os.path.join(self.folders[""], "memory.events")).splitlines())
            return int(events.get("oom_kill", 0)) > 0 or int(events.get("max", 0)) > 0
        except (OSError, ValueError):
            return False

    def pids(self):
        folder = self.folders.get("pids") or self.folders.get("")
        try:
            return [int(pid) for pid in _read(os.path.join(folder, "cgroup.procs")).split()]
        except (OSError, ValueError):
            return []

    def kill(self, rounds=50):
        """SIGKILL every process in the group, also those that left the worker's process
        group or session, until none is left (a fork storm may add some meanwhile)."""
        if self.version == 2 and _try_write(os.path.join(self.folders[""], "cgroup.kill"), "1"):
            rounds = min(rounds, 10)
        for _ in range(rounds):
            pids = self.pids()
            if not pids:
                return True
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.01)
        return not self.pids()

    def remove(self):
        """Kill what is left and remove the group's folders."""
        self.kill()
        for folder in self.folders.values():
            for _ in range(20):
                if _try_rmdir(folder):
                    break
                time.sleep(0.05)  # processes just killed are still leaving


def _remove_stale(folder):
    """Remove the empty groups of graders that died without cleaning up (killed, say)."""
    try:
        names = [n for n in os.listdir(folder) if n.startswith("autodiff101-") and n[12:].isdigit()]
    except OSError:
        return
    for name in names:
        if os.path.exists(f"/proc/{name[12:]}"):
            continue  # that grader is still running
        parent = os.path.join(folder, name)
        try:
            children = [os.path.join(parent, n) for n in os.listdir(parent) if n.startswith("w")]
        except OSError:
            continue
        for child in children:
            _try_rmdir(child)  # fails, and stays, while a process is still in it
        _try_rmdir(parent)


def _try_write(path, text):
    try:
        _write(path, text)
        return True
    except OSError:
        return False


def _try_rmdir(folder):
    try:
        os.rmdir(folder)
        return True
    except FileNotFoundError:
        return True
    except OSError:
        return False


def remove_layout():
    """Remove this grader's parent folders (once no group is left in them)."""
    with _lock:
        if _layout:
            _layout[0].remove()


atexit.register(remove_layout)  # the parent folders, empty by then
