"""`autodiff101 release`: the handout as a folder and a zip, refused when it would leak."""
import json
import shutil
import subprocess
import sys
import zipfile

import pytest

from autograder import checks, handout

SOURCES = handout.reference_sources()
REGIONS = handout.all_regions(SOURCES)


@pytest.fixture(scope="module")
def files():
    return handout.handout_files()


def fill_todos(folder):
    """Do the exercises the way a student would who copies the reference by hand."""
    for region in REGIONS:
        path = folder / region.file
        todo = "\n".join(handout.todo_lines(region))
        assert todo in path.read_text()
        path.write_text(path.read_text().replace(todo, "\n".join(region.lines)))


def self_check(folder, *args):
    """The released check.py, run with no kit importable: -I leaves out the current folder
    and user site, -S every installed package (so rich, nbformat and IPython too)."""
    return subprocess.run([sys.executable, "-I", "-S", "check.py", *args], cwd=folder,
                          capture_output=True, text=True, timeout=60)


def test_a_clean_release_passes_the_scan_and_writes_a_folder_and_a_zip(tmp_path, capsys):
    out = tmp_path / "hw1"
    assert handout.release(out) == 0, capsys.readouterr().err

    released = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert released == sorted(handout.handout_files())
    with zipfile.ZipFile(tmp_path / "hw1.zip") as bundle:
        assert sorted(bundle.namelist()) == [f"hw1/{name}" for name in released]
    assert not any("solutions" in name or name.endswith(("checks.py", "checks.toml")) for name in released)
    config = checks.load_config()
    assert all(config[c["id"]]["visibility"] == "public"
               for c in json.loads((out / handout.PUBLIC_CHECKS).read_text()))


def test_a_planted_solution_line_is_refused_naming_file_and_line(tmp_path, capsys):
    solutions = tmp_path / "solutions"
    shutil.copytree(handout.SOLUTIONS, solutions, ignore=shutil.ignore_patterns("__pycache__"))
    nn = solutions / "nn.py"
    lines = nn.read_text().splitlines()
    lines.insert(1, "# other.grad  +=  self.data*out.grad   (a reminder left in by mistake)")
    nn.write_text("\n".join(lines) + "\n")

    assert handout.release(tmp_path / "out", solutions=solutions) == 1
    error = capsys.readouterr().err
    assert "nn.py:2:" in error and "engine.py:" in error
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.zip").exists()


def new_leaks(files, **changed):
    """What the scan finds in ``files`` with ``changed`` files, beyond what it finds in ``files``."""
    before = set(handout.leaks(files, SOURCES))
    return [problem for problem in handout.leaks(dict(files, **changed), SOURCES) if problem not in before]


def test_a_solution_line_in_the_notebook_is_found_in_its_cell(files):
    book = json.loads(files[handout.NOTEBOOK])
    book["cells"][3]["source"] = "x = 1\nself.grad += (out.data > 0) * out.grad  # relu\n"
    (problem,) = new_leaks(files, **{handout.NOTEBOOK: json.dumps(book)})
    assert problem.startswith(f"{handout.NOTEBOOK}: cell 4, line 2")


def test_a_solution_line_in_prose_is_found(files):
    backward = next(region for region in REGIONS if region.exercise == "backward")
    line = next(line.strip() for line in backward.lines if not handout.is_trivial(line))
    (problem,) = new_leaks(files, **{"README.md": files["README.md"] + f"\nHint: `{line}`.\n"})
    assert problem.startswith(f"README.md:{len(files['README.md'].splitlines()) + 2}:")


def test_short_or_generic_lines_are_not_leaks(files):
    assert new_leaks(files, **{"extra.py": "while stack:\n    node._backward()\nself.grad = 1.0\n"}) == []


def test_the_handout_holds_no_differentiation_code_besides_the_stubs(files):
    """No float simulator, local derivatives or sort ship: the self-check gets the models'
    predictions as data."""
    assert handout.gradient_code(files) == []
    assert not any(path.endswith("misconceptions.py") for path in files)
    checker_judge = files[f"{handout.CHECKER}/judge.py"]
    assert "def simulate" not in checker_judge and "def finite_differences" not in checker_judge


@pytest.mark.parametrize("path, code, says", [
    ("checker/misconceptions.py", (handout.KIT / "misconceptions.py").read_text(), "_local() computes a gradient"),
    ("checker/replay.py", "def replay(order, grad, local):\n    for n in order:\n        for child, d in local(n):\n"
     "            grad[child] = grad[child] + d * grad[n]\n", "replay() computes a gradient"),
    ("viz.py", "class Helper:\n    def _backward(self):\n        self.x.grad += self.y.data\n",
     "_backward() computes a gradient"),
    ("checker/fd.py", "def slopes_of(f, xs, h):\n    slopes = []\n    for x in xs:\n"
     "        slopes.append((f(x + h) - f(x - h)) / (2 * h))\n    return slopes\n", "slopes_of() computes a gradient"),
])
def test_a_function_that_computes_a_gradient_is_refused(files, path, code, says):
    problems = new_leaks(files, **{path: code})
    assert any(problem.startswith(f"{path}:") and says in problem for problem in problems), problems


@pytest.mark.parametrize("code, name, says", [
    ("def numerical_derivative(f, x, h): return (f(x + h) - f(x - h)) / (2 * h)\n",
     "numerical_derivative", "(f(x + h) - f(x - h)) / (2 * h)"),
    ("def central(f, x, h):\n    return (f(x + h) - f(x - h)) / (2 * h)\n", "central", "a finite difference"),
    ("def dpow(x, k): return k * x ** (k - 1)\n", "dpow", "k * x ** (k - 1)"),
    ("def power(x, k):\n    rule = k * x ** (k - 1)\n    return rule\n", "power", "the power rule"),
    ("def backward_of_mul(a, b):\n    return (b.data, a.data)\n", "backward_of_mul", "returns (b.data, a.data)"),
    ("class V:\n    def __mul__(self, o):\n        out = V(self.data * o.data)\n"
     "        out._backward = lambda: setattr(self, 'grad', self.grad + o.data * out.grad)\n        return out\n",
     "__mul__", "computes a gradient"),
    ("def wire(self, out):\n    step = lambda: setattr(self, 'grad', self.grad + out.grad)\n    return step\n",
     "wire", "by setattr"),
    ("def push(node):\n    for child, local in node.parts:\n        child.g += local * node.g\n",
     "push", "child.g Add assignment"),
])
def test_an_ast_shape_of_differentiation_is_refused_whatever_its_names(code, name, says):
    """The reviewer's inputs: differentiation the name-based scan let through."""
    (problem,) = handout.gradient_code({"extra.py": code})
    assert problem.startswith("extra.py:") and f": {name}() computes a gradient (" in problem and says in problem, problem


def test_a_nested_gradient_is_reported_once_at_its_outermost_function():
    code = "def relu(x):\n    def step(y):\n        y.grad += (y.data > 0) * 1.0\n    return step\n"
    assert handout.gradient_code({"extra.py": code}) == [
        "extra.py:1: relu() computes a gradient (y.grad Add assignment); the handout may hold "
        "no differentiation code besides the student's stubs"]


def test_plain_values_stubs_and_checking_arithmetic_are_not_gradient_code():
    code = ("class V:\n    def __init__(self, data):\n        self.grad = 0.0\n        self._backward = lambda: None\n"
            "    def relu(self):\n        out = V(max(self.data, 0))\n        def _backward():\n"
            "            raise NotImplementedError('exercise relu')\n        out._backward = _backward\n"
            "        return out\n\ndef close(got, want):\n    return abs(getattr(got, 'data') - want) < 1e-6\n"
            "\ndef elapsed(clock):\n    return clock() - clock()\n")
    assert handout.gradient_code({"extra.py": code}) == []


def test_a_gradient_in_a_notebook_cell_is_found_in_its_cell(files):
    book = json.loads(files[handout.NOTEBOOK])
    cell = next(i for i, c in enumerate(book["cells"]) if c["cell_type"] == "code")
    book["cells"][cell]["source"] = "%matplotlib inline\ndef push(node):\n    node.grad += 2 * node.data\n"
    problems = new_leaks(files, **{handout.NOTEBOOK: json.dumps(book)})
    assert any(p.startswith(f"{handout.NOTEBOOK}: cell {cell + 1}, line 2: push() computes a gradient")
               for p in problems), problems


def test_setting_a_grad_to_a_plain_value_is_not_gradient_code(files):
    code = "def reset(ps):\n    for p in ps:\n        p.grad = 0.0\n\ndef train(p, lr):\n    p.data -= lr * p.grad\n"
    assert handout.gradient_code({"extra.py": code}) == []


@pytest.mark.parametrize("path", ["solutions/engine.py", "checks.py", "checker/checks.toml"])
def test_the_reference_or_the_catalogue_is_refused(files, path):
    assert any(problem.startswith(path) for problem in new_leaks(files, **{path: "x = 1\n"}))


def test_a_hidden_check_is_refused(files):
    hidden = checks.compile_checks(seed=0, only=("hidden",))[:1]
    public = json.loads(files[handout.PUBLIC_CHECKS])
    problems = new_leaks(files, **{handout.PUBLIC_CHECKS: json.dumps(public + hidden)})
    assert problems == [f"{handout.PUBLIC_CHECKS}: check {hidden[0]['id']!r} is not public"]


def test_a_hidden_check_relabelled_public_is_refused(files):
    hidden = dict(checks.compile_checks(seed=0, only=("hidden",))[0], visibility="public")
    problems = new_leaks(files, **{handout.PUBLIC_CHECKS: json.dumps([hidden])})
    assert problems == [f"{handout.PUBLIC_CHECKS}: check {hidden['id']!r} is not public"]


def test_an_unrelated_folder_is_not_overwritten(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    assert handout.release(tmp_path / "mine") == 2
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


@pytest.fixture(scope="module")
def unzipped(tmp_path_factory, files):
    """A release, unzipped somewhere else, as a student receives it. Written without the
    scan: whether the scan passes is the business of the tests above."""
    where = tmp_path_factory.mktemp("release")
    assert handout.write_release(where / "hw1", files) == 0
    student = tmp_path_factory.mktemp("student")
    with zipfile.ZipFile(where / "hw1.zip") as bundle:
        bundle.extractall(student)
    return student / "hw1"


def test_the_kit_is_not_importable_where_the_self_check_runs(unzipped):
    probe = subprocess.run([sys.executable, "-I", "-S", "-c", "import autograder"], cwd=unzipped,
                           capture_output=True, text=True)
    assert probe.returncode != 0


def test_end_to_end_the_filled_in_handout_passes_without_the_kit(unzipped, tmp_path):
    folder = tmp_path / "hw1"
    shutil.copytree(unzipped, folder)
    assert self_check(folder).returncode == 1  # nothing done yet
    fill_todos(folder)

    result = self_check(folder)

    assert result.returncode == 0, result.stdout + result.stderr
    public = json.loads((folder / handout.PUBLIC_CHECKS).read_text())
    assert f"{len(public)} of {len(public)} public checks pass" in result.stdout


def test_end_to_end_one_assignment_instead_of_an_addition_is_named(unzipped, tmp_path):
    folder = tmp_path / "hw1"
    shutil.copytree(unzipped, folder)
    fill_todos(folder)
    engine = folder / "engine.py"
    engine.write_text(engine.read_text().replace("other.grad += out.grad", "other.grad = out.grad", 1))

    result = self_check(folder)

    assert result.returncode == 1
    assert "accumulate-grad" in result.stdout
    assert "add to .grad (+=)" in result.stdout


def test_pytest_inside_the_release_runs_the_public_checks(unzipped, tmp_path):
    folder = tmp_path / "hw1"
    shutil.copytree(unzipped, folder)
    fill_todos(folder)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=folder,
                            capture_output=True, text=True, timeout=120)
    public = json.loads((folder / handout.PUBLIC_CHECKS).read_text())
    assert result.returncode == 0, result.stdout[-2000:]
    assert f"{len(public)} passed" in result.stdout


def test_end_to_end_the_notebook_is_checked_without_jupyter_installed(unzipped, tmp_path):
    folder = tmp_path / "hw1"
    shutil.copytree(unzipped, folder)
    notebook = folder / handout.NOTEBOOK
    assert self_check(folder, handout.NOTEBOOK).returncode == 1
    notebook.write_text(handout.handout_files(solved=True)[handout.NOTEBOOK])  # every TODO done

    result = self_check(folder, handout.NOTEBOOK)

    assert result.returncode == 0, result.stdout + result.stderr
