"""The worker: a sandboxed child answers JSON; faults are contained and described; each
isolation level keeps the worker away from what it must not see."""
import json
import os
import signal
import socket
from pathlib import Path

import pytest

import solutions
from autograder import examples, grade, load, sandbox
from autograder.sandbox import LEVELS, Limits, Sandbox
from autograder.worker import Session, batch_end

from conftest import in_backward, write_submission

CHAIN = {"program": [["leaf", 2.0], ["leaf", 3.0], ["mul", 0, 1], ["add", 2, 0]], "sweep": "backward"}
QUICK = Limits(load_timeout=10.0, submission_timeout=30.0)


def session_for(tmp_path, level, *patches, after="", limits=QUICK, hide=()):
    path = write_submission(tmp_path / "submissions", "student", *patches, after=after)
    box = Sandbox(level, limits, hide=hide)
    return box, Session(box, load.load(path))


@pytest.fixture
def open_session(tmp_path, level):
    """open_session(*patches, after="", ...) -> a started Session; closed afterwards."""
    opened = []

    def start(*patches, **options):
        box, session = session_for(tmp_path, options.pop("at", level), *patches, **options)
        opened.append((box, session))
        return session

    yield start
    for box, session in opened:
        session.close()
        box.close()


def test_reference_answers_a_probe(open_session):
    session = open_session()
    assert session.load().ok
    reply = session.probe("graph", CHAIN, timeout=5)
    assert reply.ok
    assert reply.result == {"data": [2.0, 3.0, 6.0, 8.0], "grad": [4.0, 2.0, 1.0, 1.0],
                            "ordered_children": True, "backward_calls": [1, 1, 1, 1]}


def test_probe_that_raises_fails_alone_and_says_where(open_session):
    session = open_session(in_backward("raise ZeroDivisionError('no')"))
    assert session.load().ok
    reply = session.probe("graph", CHAIN, timeout=5)
    assert not reply.ok and not reply.is_fault
    assert reply.error["error"] == "ZeroDivisionError" and reply.error["where"]["function"] == "backward"
    assert reply.phase == "backward()"
    assert session.probe("representation", {"data": 5.0}, timeout=5).ok  # same worker, still alive
    assert session.starts == 1


def test_sys_exit_inside_a_probe_is_an_exception_not_a_death(open_session):
    session = open_session(in_backward("raise SystemExit(0)"))
    session.load()
    assert session.probe("graph", CHAIN, timeout=5).error["error"] == "SystemExit"
    assert session.starts == 1


def test_ctrl_c_in_a_probe_is_a_keyboard_interrupt_even_when_the_grader_ignores_it(open_session):
    """A grader started in the background ignores SIGINT, and a child inherits that: the
    worker must still raise KeyboardInterrupt, as the student's own Python would."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        session = open_session(in_backward("import os, signal; os.kill(os.getpid(), signal.SIGINT)"))
        session.load()
        reply = session.probe("graph", CHAIN, timeout=5)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert reply.error["error"] == "KeyboardInterrupt"


def test_hang_times_out_in_its_phase_and_a_fresh_worker_continues(open_session):
    session = open_session(in_backward("while True: pass"))
    session.load()
    reply = session.probe("graph", CHAIN, timeout=0.5)
    assert reply.kind == "timeout"
    assert reply.describe() == "timed out after 0.5 s in backward()"
    assert session.probe("representation", {"data": 5.0}, timeout=5).ok
    assert session.starts == 2


def test_a_hang_in_a_batch_fails_that_check_alone_and_a_fresh_worker_answers_the_rest(open_session):
    session = open_session(in_backward("while True: pass"))
    assert session.load().ok
    shown = ("representation", {"data": 5.0}, 5, True)
    replies = list(session.probes([shown, ("graph", CHAIN, 0.5, True), shown, ("graph", CHAIN, 0.5, False), shown]))
    assert [r.ok for r in replies] == [True, False, True, False, True]
    assert replies[1].describe() == replies[3].describe() == "timed out after 0.5 s in backward()"
    assert replies[0].result == replies[2].result == replies[4].result
    assert session.starts == 3


def test_an_exit_in_a_batch_is_described_as_a_single_request_describes_it(open_session):
    session = open_session(in_backward("import os; os._exit(3)"))
    session.load()
    alone = session.probe("graph", CHAIN, timeout=5).describe()
    batched = list(session.probes([("graph", CHAIN, 5, True), ("representation", {"data": 5.0}, 5, True)]))
    assert batched[0].describe() == alone == "the worker exited with status 3 during backward()"
    assert batched[1].ok


def test_a_batch_never_mixes_public_and_hidden_requests():
    """A public check's message shows what its child says; that child could read the requests
    still waiting in the pipe, so no hidden request may wait there while it runs."""
    public = [True, True, False, False, True, False, True, True, False]
    batches, start = [], 0
    while start < len(public):
        end = batch_end(public, start)
        batches.append(public[start:end])
        start = end
    assert batches == [[True, True], [False, False], [True], [False], [True, True], [False]]


def test_public_checks_are_asked_before_hidden_ones(monkeypatch, tmp_path):
    """A check's child can leave files in the worker's /tmp for the checks after it, and a
    public check shows its exception's message in full: no hidden check may run before a
    public one."""
    asked = []
    real = Session.probes

    def recording(self, requests):
        asked.extend(public for *_, public in requests)
        return real(self, requests)

    monkeypatch.setattr(Session, "probes", recording)
    examples.write_examples(tmp_path / "subs")
    batch = grade.grade([tmp_path / "subs" / "reference"], out=tmp_path / "out", jobs=1)
    assert batch.rows[0]["status"] == "graded"
    assert True in asked and False in asked
    assert asked == sorted(asked, reverse=True)  # every public request before every hidden one


def test_os_exit_inside_a_probe_is_described(open_session):
    session = open_session(in_backward("import os; os._exit(3)"))
    session.load()
    reply = session.probe("graph", CHAIN, timeout=5)
    assert reply.describe() == "the worker exited with status 3 during backward()"
    assert session.probe("representation", {"data": 5.0}, timeout=5).ok


@pytest.mark.parametrize("at", LEVELS)
def test_segfault_is_described_by_its_signal(open_session, at):
    """The check's child dies of the signal; the loaded worker dies as it did, also where
    it is process 1 of a pid namespace (unprivileged-user), which its own signals spare."""
    level_or_skip(at)
    session = open_session(in_backward("import ctypes; ctypes.string_at(0)"), at=at)
    session.load()
    reply = session.probe("graph", CHAIN, timeout=5)
    assert reply.describe() == "the worker was killed by SIGSEGV during backward()"


def test_memory_exhaustion_is_a_memory_error(open_session):
    session = open_session(in_backward("x = bytearray(4 << 30)"))
    session.load()
    assert session.probe("graph", CHAIN, timeout=5).error["error"] == "MemoryError"


def test_exit_at_import_is_a_fault_of_the_load(open_session):
    session = open_session(after="\nimport os\nos._exit(0)\n")
    reply = session.load()
    assert reply.describe() == "the worker exited with status 0 while running the submission's top-level code"


def test_garbage_on_the_reply_channel_is_a_protocol_fault(open_session):
    spray = "\nimport os\nfor fd in range(3, 1024):\n    try:\n        os.write(fd, b'{forged\\n')\n    except OSError:\n        pass\n"
    session = open_session(after=spray)
    reply = session.load()
    assert reply.kind == "protocol" and "not JSON" in reply.fault


def test_endless_phase_lines_still_time_out(open_session):
    flood = ("import os\n        while True:\n            for fd in range(3, 1024):\n"
             "                try:\n                    os.write(fd, b'{\"phase\": \"flood\"}\\n')\n"
             "                except OSError:\n                    pass")
    session = open_session(in_backward(flood))
    session.load()
    reply = session.probe("graph", CHAIN, timeout=0.5)
    assert reply.kind == "timeout" and len(reply.phase) <= 200


def test_text_from_the_worker_cannot_drive_a_terminal():
    from autograder.worker import clean_error

    error = clean_error({"error": "Boom\x1b[2J", "message": "line\nnext\x9b31m" + "x" * 1000, "where": None})
    assert error["error"] == "Boom?[2J" and error["message"].startswith("line?next?31m")
    assert len(error["message"]) == 500


def test_oversized_reply_is_refused(open_session):
    session = open_session(limits=Limits(reply_bytes=200))
    session.load()
    reply = session.probe("training", {"weights": [[[0.1, 0.2, 0.3, 0.0]]], "xs": [[1.0, 2.0, 3.0]],
                                       "ys": [1.0], "epochs": 40, "lr": 0.01}, timeout=5)
    assert reply.kind == "protocol" and "over 200 bytes" in reply.fault


def test_a_huge_type_name_comes_back_cut_to_a_few_hundred_characters(open_session):
    """A class name of 3.9 MB as the type of a grad: one reply holds it under the 4 MB cap,
    but the grader keeps at most ``reply_text_chars`` of it, so it cannot be copied into
    every check's message by the megabyte."""
    huge = "\nHuge = type('Grad' * 1_000_000, (), {})\n_init = Value.__init__\n" \
           "def __init__(self, *args, **kwargs):\n    _init(self, *args, **kwargs)\n    self.grad = Huge()\n" \
           "Value.__init__ = __init__\n"
    session = open_session(after=huge)
    assert session.load().ok
    reply = session.probe("representation", {"data": 5.0}, timeout=5)
    assert reply.ok and reply.result["grad"]["not_a_number"].startswith("GradGrad")
    assert len(json.dumps(reply.result)) < 2 * QUICK.reply_text_chars


def test_output_is_captured_and_truncated(open_session):
    session = open_session(after="\nprint('hello from the student')\nprint('x' * 100_000)\n",
                           limits=Limits(output_chars=1000))
    session.load()
    session.close()
    output = session.output()
    assert "hello from the student" in output and "truncated]" in output
    assert len(output) < 3000


def test_display_libraries_and_magics_do_nothing_in_the_worker(open_session):
    notebook_code = ("\nget_ipython().run_line_magic('matplotlib', 'inline')\n"
                     "get_ipython().system('touch /tmp/pwned')\n"
                     "import matplotlib.pyplot as plt\nfig, (left, right) = plt.subplots(1, 2)\n"
                     "plt.plot([1, 2]); plt.show()\nfrom IPython.display import display, Image\n"
                     "display(Image('x.png'))\n"
                     "get_ipython().run_cell_magic('time', '', 'timed = 42\\n')\nassert timed == 42\n"
                     "import os\nprint('touched' if os.path.exists('/tmp/pwned') else 'no shell')\n")
    session = open_session(after=notebook_code)
    assert session.load().ok
    session.close()
    assert "no shell" in session.output()


def test_notebook_cells_run_over_the_real_builtins_with_get_ipython(tmp_path, level):
    """A magic in a notebook's first cell runs as in Jupyter (it once raised NameError and
    took the cell's imports with it), and no cell gets the worker's private builtins."""
    path = write_submission(tmp_path / "submissions", "student", suffix=".ipynb",
                            before="%matplotlib inline\nimport math\n",
                            after="import builtins\nprint('REAL', __builtins__ is builtins, math.pi > 3)\n")
    with Sandbox(level, QUICK) as box, Session(box, load.load(path)) as session:
        loaded = session.load()
        assert loaded.ok and loaded.result["cells_raised"] == []
        session.close()
        assert "REAL True True" in session.output()


# --- what the worker can see, per isolation level ------------------------------------------

SPY = """
import json, os, resource, socket
def attempt(action):
    try:
        action()
        return "ok"
    except Exception as error:
        return type(error).__name__
def listing(folder):
    try:
        return sorted(os.listdir(folder))
    except OSError as error:
        return type(error).__name__
def connect():
    with socket.create_connection(("127.0.0.1", {port}), timeout=2):
        pass
facts = {{
    "uid": os.getuid(),
    "env": sorted(os.environ),
    "cwd_writable": attempt(lambda: open("scratch.txt", "w").close()),
    "read_solutions": attempt(lambda: open({solutions!r}).read()),
    "list_out": attempt(lambda: os.listdir({out!r})),
    "read_out": attempt(lambda: open({out_file!r}).read()),
    "list_grader_root": attempt(lambda: os.listdir({root!r})),
    "network": attempt(connect),
    "import_kit": attempt(lambda: __import__("autograder")),
    "import_pytest": attempt(lambda: __import__("pytest")),
    "beside_numpy": sorted(os.listdir(os.path.dirname(os.path.dirname(__import__("numpy").__file__)))),
    "site_packages": listing({site_packages!r}),
    "address_space": resource.getrlimit(resource.RLIMIT_AS)[0],
    "cpu": resource.getrlimit(resource.RLIMIT_CPU)[0],
    "scratch_bytes": os.statvfs(".").f_blocks * os.statvfs(".").f_frsize,
}}
print("FACTS " + json.dumps(facts))
"""


def level_or_skip(level):
    problem = sandbox.level_problem(level)
    if problem:
        pytest.skip(f"isolation {level!r} is not available here: {problem}")


def spy(tmp_path, level):
    """What a submission's top-level code finds out about its surroundings at ``level``."""
    out = tmp_path / "OUT"
    (out / "someone").mkdir(parents=True)
    (out / "someone" / "results.json").write_text('{"score": 100}')
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        box = Sandbox(level, QUICK, hide=[out])
        code = SPY.format(port=listener.getsockname()[1], solutions=str(Path(solutions.__file__).with_name("engine.py")),
                          site_packages=sandbox.package_folders()[0],
                          out=str(out), out_file=str(out / "someone" / "results.json"), root=str(box.root))
        path = write_submission(tmp_path / "submissions", "spy", after=code)
        with box, Session(box, load.load(path)) as session:
            assert session.load().ok
            session.close()
            output = session.output()
    finally:
        listener.close()
    line = next(line for line in output.splitlines() if line.startswith("FACTS "))
    return json.loads(line[len("FACTS "):])


@pytest.mark.sandbox
@pytest.mark.parametrize("level", LEVELS)
def test_every_level_limits_and_cleans_the_worker(tmp_path, level, monkeypatch):
    level_or_skip(level)
    monkeypatch.setenv("AUTODIFF101_SECRET", "the grader's environment")
    facts = spy(tmp_path, level)
    assert facts["address_space"] == QUICK.memory_bytes and facts["cpu"] == QUICK.cpu_seconds
    assert "AUTODIFF101_SECRET" not in facts["env"] and "MPLBACKEND" in facts["env"]
    assert facts["cwd_writable"] == "ok"


@pytest.mark.sandbox
@pytest.mark.parametrize("level", ["bubblewrap", "unprivileged-user"])
def test_strong_levels_hide_the_kit_out_and_the_network(tmp_path, level):
    level_or_skip(level)
    facts = spy(tmp_path, level)
    if os.geteuid() == 0:
        assert facts["uid"] == sandbox.NOBODY
    assert facts["read_solutions"] != "ok", "the worker read the reference solution"
    assert facts["list_out"] != "ok" and facts["read_out"] != "ok", "the worker saw OUT"
    assert facts["list_grader_root"] != "ok", "the worker could list other submissions' folders"
    assert facts["network"] != "ok", "the worker reached the network"
    assert facts["scratch_bytes"] <= QUICK.scratch_bytes, "the working folder can fill the disk"
    # numpy is importable, but nothing else of site-packages is visible, the kit least of all.
    allowed = {name for name, _ in sandbox.resolve_packages(sandbox.DEFAULT_PACKAGES).entries}
    assert set(facts["beside_numpy"]) <= allowed and "numpy" in facts["beside_numpy"]
    assert facts["import_kit"] != "ok" and facts["import_pytest"] != "ok"
    assert not isinstance(facts["site_packages"], list) or facts["site_packages"] == [], \
        "the worker listed the grader's site-packages"


@pytest.mark.sandbox
def test_bubblewrap_shows_no_other_submission(tmp_path):
    level_or_skip("bubblewrap")
    with Sandbox("bubblewrap", QUICK) as box:
        other = box.write_submission({"secret.py": "ANSWER = 42\n"})
        code = f"\ntry:\n    print('READ', open({str(other / 'secret.py')!r}).read())\nexcept OSError as e:\n    print('DENIED', type(e).__name__)\n"
        path = write_submission(tmp_path / "submissions", "peek", after=code)
        with Session(box, load.load(path)) as session:
            assert session.load().ok
            session.close()
            assert "DENIED" in session.output() and "ANSWER" not in session.output()


# --- packages a submission may import ------------------------------------------------------

SET_ORDER_BACKWARD = ("""        order, visited = [], {self}
        stack = [(self, iter(self._prev))]  # each node with the children it has yet to visit
        while stack:
            node, children = stack[-1]
            for child in children:
                if child not in visited:
                    visited.add(child)
                    stack.append((child, iter(child._prev)))
                    break
            else:  # every child is in order already, so the node can follow them
                stack.pop()
                order.append(node)
        self.grad = 1.0
        for node in reversed(order):
            node._backward()
""", """        nodes, stack = set(), [self]
        while stack:
            node = stack.pop()
            if node not in nodes:
                nodes.add(node)
                stack.extend(node._prev)
        self.grad = 1.0
        for node in nodes:  # in the order of the set: by the nodes' addresses
            node._backward()
""")


def lost(record):
    """What a graded record lost, for an assertion's message."""
    return [record["message"]] + [(t.get("check"), t.get("message"), t.get("detail", "")[:300])
                                  for t in record["tests"] if t["score"] < t["max_score"]]


# A course that allows the real matplotlib (the default config gives its stand-in).
DRAWING = ("numpy", "matplotlib")


def graded(level, path, limits=QUICK, packages=None):
    from autograder import grade

    with Sandbox(level, limits, packages=packages) as box:
        return grade.grade_submission(load.load(path), grade.compile_checks(7), box)


@pytest.mark.sandbox
@pytest.mark.parametrize("level", LEVELS)
def test_a_correct_module_that_imports_numpy_gets_full_marks_at_every_level(tmp_path, level):
    level_or_skip(level)
    path = write_submission(tmp_path, "numpy-user", before="import numpy as np\n",
                            after="\nassert np.allclose(np.array([Value(2.0).data]) * 2, [4.0])\n")
    record = graded(level, path)
    assert (record["status"], record["score"]) == ("graded", 100), lost(record)
    assert record["notes"] == []


def test_a_notebook_whose_first_cell_imports_numpy_and_random_gets_full_marks(tmp_path, level):
    path = write_submission(tmp_path, "notebook", before="import numpy as np\nimport random\n", suffix=".ipynb")
    record = graded(level, path)
    assert (record["status"], record["score"]) == ("graded", 100), lost(record)
    assert record["notes"] == []


def test_matplotlib_draws_headless_in_the_worker(tmp_path, level):
    plot = ("\nimport io\nimport matplotlib\nimport matplotlib.pyplot as plt\nimport numpy as np\n"
            "plt.plot(np.arange(3), [1.0, 4.0, 9.0]); plt.title('loss'); plt.show()\n"
            "png = io.BytesIO(); plt.gcf().savefig(png, format='png')\n"
            "print('PLOT', matplotlib.get_backend(), png.getvalue()[:4] == b'\\x89PNG')\n")
    path = write_submission(tmp_path, "plotter", after=plot)
    record = graded(level, path, packages=DRAWING)
    assert (record["status"], record["score"]) == ("graded", 100), lost(record)
    assert "PLOT Agg True" in record["output"]  # the real library drew a real picture


def test_by_default_a_plot_is_drawn_by_the_stand_in_and_costs_nothing(tmp_path, level):
    """The shipped config leaves matplotlib out: its stand-in accepts the plotting calls, the
    real library (and numpy beneath it) is never imported, and full marks are kept."""
    plot = ("\nimport sys\nimport matplotlib\nimport matplotlib.pyplot as plt\n"
            "fig, ax = plt.subplots(); ax.plot([1.0, 4.0, 9.0]); plt.title('loss'); fig.savefig('loss.png')\n"
            "plt.show()\nimport os\n"
            "print('PLOT', hasattr(matplotlib, '__file__'), 'numpy' in sys.modules, os.path.exists('loss.png'))\n")
    record = graded(level, write_submission(tmp_path, "stand-in-plotter", after=plot))
    assert (record["status"], record["score"], record["notes"]) == ("graded", 100, []), lost(record)
    assert "PLOT False False False" in record["output"]


# --- IPython as a notebook's code sees it, beside the real matplotlib -------------------------

TRAIN_AND_PLOT = """
from IPython.display import clear_output
import matplotlib.pyplot as plt
model = MLP(3, [4, 4, 1])
xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
ys = [1.0, -1.0, -1.0, 1.0]
losses = []
for epoch in range(50):
    loss = sum((y - model(x)) ** 2 for x, y in zip(xs, ys))
    model.zero_grad()
    loss.backward()
    for p in model.parameters():
        p.data -= 0.05 * p.grad
    losses.append(loss.data)
    clear_output(wait=True)
plt.plot(losses); plt.show()
print("TRAINED", len(losses))
"""


@pytest.mark.parametrize("packages", [None, DRAWING], ids=["stand-in", "real-matplotlib"])
def test_importing_ipython_then_plotting_keeps_full_marks(tmp_path, level, packages):
    """matplotlib reads ``sys.modules["IPython"].version_info[:2]`` and calls its
    ``get_ipython()`` once IPython is imported: the stand-in answers as IPython does."""
    record = graded(level, write_submission(tmp_path, "ipython-py", after=TRAIN_AND_PLOT), packages=packages)
    assert (record["status"], record["score"], record["notes"]) == ("graded", 100, []), record["message"]
    assert "TRAINED 50" in record["output"]


@pytest.mark.parametrize("packages", [None, DRAWING], ids=["stand-in", "real-matplotlib"])
def test_a_notebook_that_imports_ipython_display_and_plots_among_its_classes_gets_full_marks(tmp_path, level,
                                                                                            packages):
    from conftest import notebook

    module = examples.one_module() + "\nimport matplotlib.pyplot as plt\nplt.plot([1.0, 2.0]); plt.show()\n"
    path = tmp_path / "ipython-notebook.ipynb"
    path.write_text(notebook(["from IPython.display import display\nimport random\n", module,
                              "display(Value(2.0))\n"]))
    record = graded(level, path, packages=packages)
    assert (record["status"], record["score"], record["notes"]) == ("graded", 100, []), record["message"]


def test_the_ipython_stand_in_answers_like_ipython_in_a_notebook(open_session):
    probe = ("\nimport IPython, matplotlib.pyplot as plt\nfrom IPython import get_ipython\n"
             "from IPython.core.getipython import get_ipython as core_get_ipython\n"
             "shell = get_ipython()\nshell.run_line_magic('time', 'timed = 6 * 7')\n"
             "plt.ion(); plt.figure(); plt.plot([1, 2]); plt.show(); plt.ioff()\n"
             "print('IPYTHON', IPython.version_info[:2] >= (8, 0), shell is core_get_ipython(), timed)\n")
    session = open_session(after=probe)
    assert session.load().ok
    session.close()
    assert "IPYTHON True True 42" in session.output()


def test_the_handouts_own_notebook_solved_leaves_no_note_about_ipython(tmp_path, level):
    from autograder import handout

    handout.write_files(tmp_path, handout.handout_files(checks=handout.public_checks(), solved=True))
    record = graded(level, tmp_path / handout.NOTEBOOK, limits=Limits(load_timeout=60.0, submission_timeout=120.0))
    assert record["status"] == "graded", record["message"]
    assert not [note for note in record["notes"] if "Inert" in note or "TypeError" in note], record["notes"]


# --- numpy scalars are numbers ----------------------------------------------------------------

NUMPY_RELU = ("        out = Value(self.data if self.data > 0 else 0.0, (self,), \"ReLU\")\n",
              "        out = Value(np.maximum(0, self.data), (self,), \"ReLU\")\n")
INT_SEED = ("        self.grad = 1.0\n", "        self.grad = 1\n")  # upstream micrograd's ints
INT_ZERO = ("        self.grad = 0.0\n", "        self.grad = 0\n")


def test_numpy_scalars_of_every_real_dtype_become_plain_numbers():
    import fractions

    import numpy as np

    from autograder import probes

    for value in (np.int64(-3), np.int32(3), np.uint8(7), np.int8(-1), np.float64(0.5), np.float32(0.25),
                  np.float16(1.5), np.longdouble(0.125), fractions.Fraction(3, 4), True):
        converted = probes.number(value)
        assert type(converted) in (int, float) and converted == value, (value, converted)
    for value in ("2.0", None, np.bool_(True), np.complex128(1.0), [1.0]):
        assert "not_a_number" in probes.number(value)


def test_a_numpy_relu_with_an_int_seed_gets_full_marks_under_every_seed(tmp_path, level):
    """``(out.data > 0) * out.grad`` is an np.int64 when data is numpy's and the seed the
    int 1: the same number as 1.0, so no check may call it "not a number"."""
    from autograder import grade

    path = write_submission(tmp_path, "numpy-relu", NUMPY_RELU, INT_SEED, INT_ZERO, before="import numpy as np\n")
    with Sandbox(level, QUICK) as box:
        for seed in (1, 2, 4, 6):  # before numbers.Real: 96, 93, 100, 89
            record = grade.grade_submission(load.load(path), grade.compile_checks(seed), box)
            assert (record["status"], record["score"]) == ("graded", 100), (seed, record["message"], record["tests"])


def test_an_import_the_course_does_not_allow_names_the_package_and_the_allowed_ones(tmp_path, level):
    record = graded(level, write_submission(tmp_path, "torch-user", before="import torch\n"))
    assert record["status"] == "load-error"
    assert "import torch: the course does not allow torch (allowed: numpy)" in record["message"]
    # A dependency of an allowed package is importable; a package the course drops is not.
    pil = write_submission(tmp_path, "pil-user", before="import PIL\n")
    assert graded(level, pil, packages=DRAWING)["score"] == 100
    record = graded(level, pil)
    assert "import PIL: the course does not allow PIL (allowed: numpy)" in record["message"]


def test_an_allowed_package_that_is_not_installed_is_said_to_be_missing(tmp_path, level):
    path = write_submission(tmp_path, "missing", before="import nosuchpackage\n", suffix=".ipynb")
    record = graded(level, path, packages=("numpy", "nosuchpackage"))
    assert record["score"] == 100  # a notebook cell that raises is skipped, as in Jupyter
    assert "import nosuchpackage: the course allows nosuchpackage, but it is not installed" in record["notes"][0]


def test_the_standard_library_and_the_submissions_own_modules_keep_pythons_message():
    from autograder.worker import explain_import

    packages = sandbox.resolve_packages(("numpy",))
    for name in ("tkinter", "engine"):
        error = {"error": "ModuleNotFoundError", "message": f"No module named '{name}'"}
        assert explain_import(error, packages, own_modules={"engine"}) == error
    missing_part = {"error": "ModuleNotFoundError", "message": "No module named 'numpy.nonsense'"}
    assert explain_import(missing_part, packages) == missing_part


def test_the_course_config_lists_the_allowed_packages(tmp_path):
    assert sandbox.allowed_packages() == ("numpy",)  # the shipped checks.toml
    assert sandbox.allowed_packages({"value-repr": {}}) == ("numpy",)  # a dict of checks
    course = tmp_path / "course.toml"
    course.write_text('[worker]\nallowed_packages = ["numpy", "scipy"]\n')
    assert sandbox.allowed_packages(course) == ("numpy", "scipy")
    course.write_text("[checks]\n")
    assert sandbox.allowed_packages(course) == sandbox.DEFAULT_PACKAGES
    course.write_text('[worker]\nallowed_packages = "numpy"\n')
    with pytest.raises(ValueError, match="list of package names"):
        sandbox.allowed_packages(course)


def test_dependencies_come_from_the_installed_metadata():
    resolved = sandbox.resolve_packages(("matplotlib",))
    assert {"matplotlib", "numpy", "PIL", "dateutil", "pyparsing", "cycler", "kiwisolver"} <= resolved.modules
    assert not {"autograder", "solutions", "pytest"} & resolved.modules
    assert all(not name.endswith(".pth") and name != "__pycache__" for name, _ in resolved.entries)


# --- the same work gets the same score ------------------------------------------------------

SET_ORDER = """
import hashlib, os, sys
orders = []
for size in (5, 60, 500):
    values = [Value(float(i)) for i in range(size)]
    index = {id(v): i for i, v in enumerate(values)}
    orders.append(hashlib.sha256(repr([index[id(v)] for v in set(values)]).encode()).hexdigest()[:8])
personality = int(open("/proc/self/personality").read(), 16)
print("ORDER", *orders, hash("autodiff"), personality & 0x0040000 != 0)
"""


def test_the_order_of_a_set_of_values_repeats_in_every_fresh_worker(tmp_path, level):
    """A set of objects iterates in the order of their addresses. With address-space
    randomisation on, two to three of four fresh workers here saw different orders (even
    of 5 Values); the worker runs without it (setarch -R) and with a fixed hash seed."""
    path = write_submission(tmp_path, "orders", after=SET_ORDER)
    seen = set()
    with Sandbox(level, QUICK) as box:
        for _ in range(4):
            with Session(box, load.load(path)) as session:
                assert session.load().ok
                session.close()
                seen.add(next(line for line in session.output().splitlines() if line.startswith("ORDER")))
    assert len(seen) == 1, seen
    if sandbox.address_prefix():
        assert seen.pop().endswith("True")  # ADDR_NO_RANDOMIZE


@pytest.mark.parametrize("suffix", [".py", ".ipynb"])
def test_a_backward_that_iterates_a_set_gets_the_same_score_on_every_run(tmp_path, level, suffix):
    """Five gradings, each in a fresh sandbox and worker, at the strongest level and at
    rlimits: one score per level (the paths the worker sees differ between levels, and
    addresses with them, so the two levels may differ from each other)."""
    path = write_submission(tmp_path, "set-order", SET_ORDER_BACKWARD, suffix=suffix)
    for at in dict.fromkeys((level, "rlimits")):
        scores = [graded(at, path)["score"] for _ in range(5)]
        assert len(set(scores)) == 1 and scores[0] < 100, (at, scores)


def test_a_check_sees_the_same_addresses_whatever_checks_ran_before_it(open_session):
    """Each check runs in a child forked from the loaded worker: the garbage, replies and
    timings of earlier checks cannot move the addresses a later one's Values get."""
    from autograder import checks

    deep = next(c for c in checks.compile_checks(7) if c["id"] == "backward-random-deep")
    session = open_session(SET_ORDER_BACKWARD)
    assert session.load().ok
    first = session.probe(deep["probe"], deep["params"], timeout=10)
    for length in (3, 40, 7, 500):  # garbage of many sizes, replies of many lengths
        assert session.probe("chain", {"length": length}, timeout=10).ok
        assert session.probe("representation", {"data": length / 7}, timeout=10).ok
    again = session.probe(deep["probe"], deep["params"], timeout=10)
    assert first.ok and again.result == first.result
    assert session.starts == 1


# --- one worker with all its children is bounded ---------------------------------------------


@pytest.mark.sandbox
def test_children_of_a_worker_share_one_memory_bound(tmp_path, level):
    """Four children that each try to hold 64 MB, far under the per-process address-space
    limit: together they would hold 256 MB, but they hold no more than the worker's total
    bound (128 MB here), measured by what the children still hold at once when each is done
    or killed."""
    import re

    import hostile

    if not Sandbox(level, QUICK).cgroups:
        pytest.skip("no control groups here (root only): the bound is processes x address space")
    hoard = (hostile.FORK_HOARD.replace("CHILDREN, CHUNK, EACH = 4, 64 << 20, 600 << 20",
                                        "CHILDREN, CHUNK, EACH = 4, 16 << 20, 64 << 20")
             .replace("MARKER", "ad101-hoard"))
    bound = 128 << 20
    session = open_session_with(tmp_path, level, after=hoard,
                                limits=Limits(load_timeout=20.0, submission_timeout=30.0, total_memory_bytes=bound))
    held = int(re.search(r"HOARDED (\d+) MB", session.output())[1])
    assert 0 < held <= bound >> 20


def open_session_with(tmp_path, level, limits, after):
    box, session = session_for(tmp_path, level, after=after, limits=limits)
    with box, session:
        assert session.load().ok
        session.close()
    return session


# --- wall-clock backstops: for code that sleeps, never for code a busy machine slows -------


class _ComputingWorker:
    """A stand-in worker whose CPU count the test moves by hand."""

    group = None

    def __init__(self):
        self.cpu = 0.0

    def cpu_used(self):
        return self.cpu


def test_the_backstop_stops_code_that_sleeps_not_code_that_waits_its_turn(monkeypatch):
    """On two cores shared by many processes a CPU-bound check gets a tenth of a core: it
    passes its wall-clock backstop while computing, and only its CPU limit or the
    submission's own wall-clock bound may stop it. Once it stops computing, the backstop does."""
    from types import SimpleNamespace

    from autograder import worker as worker_module

    now = [1000.0]
    monkeypatch.setattr(worker_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    fake = _ComputingWorker()
    clock = worker_module.Clock(fake, cpu_seconds=2.0, wall_seconds=5.0, hard_seconds=60.0)
    for _ in range(150):  # 15 s at a tenth of a core: three times the backstop
        now[0] += 0.1
        fake.cpu += 0.01
        assert clock.expired() is None
    for _ in range(30):  # then it sleeps
        now[0] += 0.1
        if clock.expired():
            break
    assert clock.expired() == "wall" and now[0] - 1000.0 < 17.5

    sleeper = worker_module.Clock(_ComputingWorker(), cpu_seconds=2.0, wall_seconds=5.0, hard_seconds=60.0)
    now[0] += 4.9
    assert sleeper.expired() is None
    now[0] += 0.2
    assert sleeper.expired() == "wall"

    fake = _ComputingWorker()
    bounded = worker_module.Clock(fake, cpu_seconds=100.0, wall_seconds=5.0, hard_seconds=20.0)
    while bounded.expired() is None:  # computing slowly for ever: the submission's bound stops it
        now[0] += 0.1
        fake.cpu += 0.01
    assert bounded.expired() == "wall" and abs(now[0] - bounded.hard_deadline) < 0.2
    fake.cpu = 100.0
    assert bounded.expired() == "cpu"


def test_top_level_code_that_computes_is_stopped_by_its_cpu_limit_not_the_wall_alarm():
    """The worker's per-cell alarm: a cell that sleeps past it is stopped; one that computes
    past it (as on a busy machine, where its wall time is many times its CPU time) is not."""
    import time

    from autograder import probes

    def compute(seconds):
        end = time.process_time() + seconds
        while time.process_time() < end:
            pass
        return "done"

    assert probes.with_budget(5.0, compute, 0.6, wall=0.2) == "done"
    with pytest.raises(probes.TopLevelStopped):
        probes.with_budget(5.0, time.sleep, 3.0, wall=0.2)
    with pytest.raises(probes.TopLevelStopped):
        probes.with_budget(0.2, compute, 3.0, wall=10.0)


@pytest.mark.sandbox
def test_other_processes_of_the_workers_user_do_not_stop_its_checks(tmp_path):
    """Workers run as nobody. A submission graded beside another can hold as many children as
    its own control group allows; a per-user process limit (RLIMIT_NPROC) would then count
    them against the other worker too, whose forks for its checks failed (an honest
    submission fell from 88 to 59 in the hostile batch)."""
    import pwd
    import subprocess

    level_or_skip("unprivileged-user")
    if not Sandbox("unprivileged-user", QUICK).cgroups:
        pytest.skip("no control groups here: the per-user process limit is what bounds a worker")
    nobody = pwd.getpwnam("nobody").pw_uid
    sleepers = [subprocess.Popen(["sleep", "120"], user=nobody) for _ in range(QUICK.processes + 6)]
    try:
        record = graded("unprivileged-user", write_submission(tmp_path, "honest"))
    finally:
        for sleeper in sleepers:
            sleeper.kill()
            sleeper.wait()
    assert (record["status"], record["score"]) == ("graded", 100), lost(record)


def test_a_temporary_folder_inside_a_private_one_still_grades_an_honest_submission(tmp_path, monkeypatch, level):
    """TMPDIR under a folder only its owner may enter (pytest's own, a mkdtemp): workers run
    as nobody, so the sandbox's root goes where nobody can reach it by name. Before, bubblewrap
    could not bind the submission's folder and every worker failed to start."""
    import tempfile

    private = tmp_path / "private"
    (private / "tmp").mkdir(parents=True)
    private.chmod(0o700)
    monkeypatch.setattr(tempfile, "tempdir", str(private / "tmp"))
    path = write_submission(tmp_path / "submissions", "student")
    with Sandbox(level, QUICK) as box:
        if box.drop_root:
            assert sandbox.closed_ancestor(box.root) is None
        with Session(box, load.load(path)) as session:
            assert session.load().ok
            assert session.probe("graph", CHAIN, 5.0).ok


def test_a_sandbox_that_cannot_start_a_worker_is_the_graders_fault_not_the_submissions(tmp_path, level):
    """A worker that dies before running a line of the submission (bubblewrap refusing a
    folder it cannot reach, say) is reported as the grader's failure, with its reason: the
    submission's row says grader-fault, never crashed with 0 points."""
    from autograder.worker import WorkerNotStarted

    if level != "bubblewrap" or not sandbox.is_root():
        pytest.skip("needs bubblewrap workers that run as nobody")
    private = tmp_path / "private"
    (private / "root").mkdir(parents=True)
    path = write_submission(tmp_path / "submissions", "student")
    with Sandbox(level, QUICK, root=private / "root") as box:
        private.chmod(0o700)  # the root's parent: nobody cannot reach the submission's folder
        with Session(box, load.load(path)) as session:
            with pytest.raises(WorkerNotStarted, match="sandbox set-up failed: bwrap: .*Permission denied"):
                session.load()


def test_a_submission_cannot_pass_its_own_crash_off_as_the_sandboxs(open_session):
    """It may write a bubblewrap-like line to stderr and wipe every file it can reach (the
    phase record among them) before exiting: it ran, so it crashed; the grader knew the
    worker was up before its first line, from the reply pipe."""
    wipe = ("\nimport os, sys\nsys.stderr.write('bwrap: Creating new namespace failed\\n'); sys.stderr.flush()\n"
            "for fd in range(3, 64):\n    try:\n        os.pwrite(fd, b'\\0' * 1024, 0)\n"
            "    except OSError:\n        pass\nos._exit(1)\n")
    reply = open_session(after=wipe).load()
    assert reply.kind == "exited" and "status 1" in reply.fault and "sandbox" not in reply.fault


def test_a_sandbox_stopped_while_it_is_prepared_leaves_no_folder(tmp_path, monkeypatch, level):
    """Ctrl-C or SIGTERM can arrive while the sandbox's folders are being made: what was made
    is removed before the interruption goes on."""
    import tempfile

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    scratch.chmod(0o755)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setattr(sandbox, "reachable_temporary_folder", lambda: str(scratch))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sandbox, "interpreter_roots", interrupted)
    with pytest.raises(KeyboardInterrupt):
        Sandbox(level, QUICK)
    assert list(scratch.iterdir()) == []
