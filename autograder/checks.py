"""The checks: what is tested, declared in one place.

Each declaration names a probe (an experiment, run wherever the student's code runs) and a
judge (run in the grading process). Points and visibility are not here: they come from
``checks.toml`` (or an instructor's copy of it), so a course can reweigh checks without
touching code.

``compile_checks(seed)`` turns the declarations into plain data: concrete parameters
(random ones drawn from the run's seed) and the reference's observations as the expected
values. All three modes run that data: the sandboxed grader, the in-kernel exports and
the public self-check.
"""
import ast
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import probes

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_CONFIG = Path(__file__).with_name("checks.toml")
VISIBILITIES = ("public", "hidden", "after_due_date")


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    exercise: str
    probe: str
    params: object  # a dict, or a function of a random.Random that returns one
    judge: str = "equal"
    timeout: float = 2.0
    extra: dict = field(default_factory=dict)

    def concrete_params(self, seed):
        if callable(self.params):
            return self.params(random.Random(f"{seed}:{self.id}"))
        return self.params


# --- writing graphs as Python expressions ---------------------------------------------


def expression(text, **leaves):
    """Compile ``text`` into a probe program. Statements may name shared sub-expressions
    ("c = a * b; c + c"); the last expression is the root; ``leaves`` give the inputs."""
    program, names = [], {}

    def emit(instruction):
        program.append(list(instruction))
        return len(program) - 1

    def operand(node):
        if isinstance(node, ast.Constant):
            return ("number", node.value)
        return ("node", visit(node))

    def visit(node):
        if isinstance(node, ast.Name):
            if node.id not in names:
                names[node.id] = emit(["leaf", float(leaves[node.id])])
            return names[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return emit(["neg", visit(node.operand)])
        if isinstance(node, ast.Call) and node.func.attr == "relu":
            return emit(["relu", visit(node.func.value)])
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            return emit(["pow", visit(node.left), node.right.value])
        if isinstance(node, ast.BinOp):
            op = {ast.Add: "add", ast.Mult: "mul", ast.Sub: "sub", ast.Div: "div"}[type(node.op)]
            (left_kind, left), (right_kind, right) = operand(node.left), operand(node.right)
            if left_kind == "number":
                return emit([f"c_{op}", left, right])
            if right_kind == "number":
                return emit([f"{op}_c", left, right])
            return emit([op, left, right])
        raise ValueError(f"cannot compile {ast.dump(node)}")

    *statements, last = ast.parse(text).body
    for statement in statements:
        names[statement.targets[0].id] = visit(statement.value)
    root = visit(last.value)
    if root != len(program) - 1:  # the root is a named node: repeat it as the last node
        emit(["mul_c", root, 1.0])
    # Leaves are created in order of first use; the leaves' values must all be used.
    unused = set(leaves) - set(names)
    if unused:
        raise ValueError(f"leaves {sorted(unused)} are not used in {text!r}")
    return program


def gradients_of(text, sweep="backward", upstream=1.0, **leaves):
    """Parameters for the graph probe."""
    return {"program": expression(text, **leaves), "sweep": sweep, "upstream": upstream}


def graph_check(id, title, exercise, text, sweep="backward", upstream=1.0, **leaves):
    return Check(id, title, exercise, "graph", gradients_of(text, sweep, upstream, **leaves), "gradients")


def random_program(rng, size=12):
    """A random expression DAG: shared sub-expressions, constants on both sides, every
    operator; inputs and exponents chosen so that nothing is near relu's kink or a
    negative base with a fractional exponent."""
    program = [["leaf", round(rng.uniform(0.5, 2.0), 3)] for _ in range(3)]
    while len(program) < size:
        i, j = rng.randrange(len(program)), rng.randrange(len(program))
        x = abs(_value(program, i))
        if not 0.25 < x < 4.0:
            i = 0  # keep magnitudes tame: fall back to a leaf
        kind = rng.choice(["add", "mul", "sub", "div", "add_c", "c_sub", "c_mul", "div_c", "pow", "neg"])
        if kind in ("add", "mul", "sub"):
            program.append([kind, i, j])
        elif kind == "div":
            program.append([kind, i, 0])  # leaf 0 is never near 0
        elif kind == "pow":
            program.append(["pow", 0, rng.choice([2, 3, -1, 0.5, 1.5])])  # leaf 0 > 0
        elif kind == "neg":
            program.append(["neg", i])
        elif kind.startswith("c_"):
            program.append([kind, round(rng.uniform(0.5, 3.0), 2), i])
        else:
            program.append([kind, i, round(rng.uniform(0.5, 3.0), 2)])
    program.append(["add", len(program) - 1, len(program) - 2])  # the root uses the last two
    return program


def _value(program, index):
    from .judge import simulate

    return simulate(program[: index + 1])[0][index]


# --- the catalogue ---------------------------------------------------------------------

CHECKS = [
    Check("repr", "repr(Value(5.0)) shows data and grad", "value", "representation", {"data": 5.0}),
    graph_check("add-accumulates", "in c = a + a, a receives both shares of the gradient", "add",
                "a + a", a=3.0),
    graph_check("sub-backward", "(a - b).backward() reaches b through the intermediate -b", "sub-div",
                "a - b", a=6.0, b=3.0),
    graph_check("div-backward", "(a / b).backward() reaches b through the intermediate b**-1", "sub-div",
                "a / b", a=6.0, b=3.0),
    Check("random-graphs", "gradients of random expression graphs match the reference", "backward",
          "graph", lambda rng: {"program": random_program(rng)}, "gradients"),
    Check("mlp-parameters", "MLP(3, [3, 3, 1]) has 28 parameters and a linear last layer", "nn",
          "structure", {"number_inputs": 3, "sizes": [3, 3, 1]}),
]


# --- configuration and compilation -----------------------------------------------------


def load_config(path=None):
    """Points and visibility per check id, validated against the catalogue."""
    path = Path(path) if path else DEFAULT_CONFIG
    try:
        table = tomllib.loads(path.read_text()).get("checks", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read check configuration {path}: {exc}") from exc
    known = {check.id for check in CHECKS}
    unknown = set(table) - known
    if unknown:
        raise ValueError(f"{path}: no such checks: {', '.join(sorted(unknown))}")
    missing = known - set(table)
    if missing:
        raise ValueError(f"{path}: no points or visibility for: {', '.join(sorted(missing))}")
    for check_id, entry in table.items():
        if entry.get("visibility") not in VISIBILITIES:
            raise ValueError(f"{path}: {check_id}: visibility must be one of {', '.join(VISIBILITIES)}")
        if not isinstance(entry.get("points"), (int, float)) or entry["points"] < 0:
            raise ValueError(f"{path}: {check_id}: points must be a number >= 0")
    return table


def reference_namespace():
    import solutions

    return {name: getattr(solutions, name) for name in solutions.__all__}


def compile_checks(seed, config=None, only=None, namespace=None):
    """The catalogue as plain data for one run: concrete parameters from ``seed`` and the
    reference's observations as ``expected``. ``only`` filters by visibility."""
    config = config if isinstance(config, dict) else load_config(config)
    namespace = namespace or reference_namespace()
    compiled = []
    for check in CHECKS:
        settings = config[check.id]
        if only and settings["visibility"] not in only:
            continue
        params = check.concrete_params(seed)
        compiled.append({
            "id": check.id,
            "title": check.title,
            "exercise": check.exercise,
            "probe": check.probe,
            "params": params,
            "judge": check.judge,
            "timeout": check.timeout,
            "points": settings["points"],
            "visibility": settings["visibility"],
            "expected": probes.run(namespace, check.probe, params),
        })
    return compiled
