"""Shared hypothesis strategies: random expression graphs that run on Values and on floats alike.

An ``Expression`` is a list of leaf numbers and of steps; each step applies one operator to
earlier nodes (so sub-expressions are shared) or to a node and a constant on either side
(so the reflected operators run too). The same steps evaluated on plain floats give the
forward pass that central finite differences need.

Generation keeps every node where a finite difference means something: values stay within
``BOUND``, and relu inputs, denominators and the bases of negative or fractional powers stay
at least ``MARGIN`` away from 0 (the bases of fractional powers on the positive side).
"""
from dataclasses import dataclass

from hypothesis import strategies as st

MARGIN = 0.25
BOUND = 50.0


def _relu(x):
    return x.relu() if hasattr(x, "relu") else (x if x > 0 else 0.0)


# Step name -> how it combines (nodes, first argument, second argument). In a name, `a` and
# `b` are indices of earlier nodes, `c` a Python number, `k` a numeric exponent.
OPERATIONS = {
    "a+b": lambda nodes, a, b: nodes[a] + nodes[b],
    "a*b": lambda nodes, a, b: nodes[a] * nodes[b],
    "a-b": lambda nodes, a, b: nodes[a] - nodes[b],
    "a/b": lambda nodes, a, b: nodes[a] / nodes[b],
    "a+c": lambda nodes, a, c: nodes[a] + c,
    "a*c": lambda nodes, a, c: nodes[a] * c,
    "a-c": lambda nodes, a, c: nodes[a] - c,
    "a/c": lambda nodes, a, c: nodes[a] / c,
    "c+a": lambda nodes, c, a: c + nodes[a],
    "c*a": lambda nodes, c, a: c * nodes[a],
    "c-a": lambda nodes, c, a: c - nodes[a],
    "c/a": lambda nodes, c, a: c / nodes[a],
    "a**k": lambda nodes, a, k: nodes[a] ** k,
    "-a": lambda nodes, a, _: -nodes[a],
    "relu(a)": lambda nodes, a, _: _relu(nodes[a]),
}
EXPONENTS = (2, 3, -1, -2, 2.0, 0.5, 1.5, -0.5)


def _guarded_node(step):
    """The node whose sign must not change under a small nudge: relu input, denominator, or base
    of a negative or fractional power."""
    name, first, second = step
    if name == "a**k":
        return first if second < 0 or second != int(second) else None
    return {"a/b": second, "c/a": second, "relu(a)": first}.get(name)


@dataclass(frozen=True)
class Expression:
    leaves: tuple
    steps: tuple

    def nodes(self, leaves):
        """Every node's value, leaves first, computed from ``leaves`` (Values or floats)."""
        nodes = list(leaves)
        for name, first, second in self.steps:
            nodes.append(OPERATIONS[name](nodes, first, second))
        return nodes

    def output(self, leaves):
        """The root: the sum of every computed node, so no step is dead code."""
        nodes = self.nodes(leaves)
        return sum(nodes[len(leaves):]) if self.steps else nodes[0]

    def signs(self, leaves):
        """Which side of 0 each kink or pole sits on; equal signs mean a smooth neighbourhood."""
        nodes = self.nodes(leaves)
        guarded = (_guarded_node(step) for step in self.steps)
        return tuple(nodes[i] > 0 for i in guarded if i is not None)


def _is_safe(name, nodes, first, second):
    if name == "a/b" or name == "c/a":
        return abs(nodes[second]) >= MARGIN
    if name == "a/c":
        return abs(second) >= MARGIN
    if name == "relu(a)":
        return abs(nodes[first]) >= MARGIN
    if name == "a**k":
        base, exponent = nodes[first], second
        if exponent != int(exponent):
            return base >= MARGIN
        return exponent > 0 or abs(base) >= MARGIN
    return True


leaf_values = st.floats(-3, 3)
constants = st.one_of(st.integers(-3, 3), st.floats(-3, 3))


@st.composite
def expressions(draw, max_leaves=4, max_steps=10):
    """An Expression of up to ``max_steps`` steps over up to ``max_leaves`` leaves."""
    leaves = draw(st.lists(leaf_values, min_size=1, max_size=max_leaves))
    nodes, steps = list(leaves), []
    for _ in range(draw(st.integers(1, max_steps))):
        name = draw(st.sampled_from(sorted(OPERATIONS)))
        node = st.integers(0, len(nodes) - 1)
        if name == "a**k":
            first, second = draw(node), draw(st.sampled_from(EXPONENTS))
        elif name.startswith("c"):
            first, second = draw(constants), draw(node)
        elif name.endswith("c"):
            first, second = draw(node), draw(constants)
        elif name in ("-a", "relu(a)"):
            first, second = draw(node), None
        else:
            first, second = draw(node), draw(node)
        if not _is_safe(name, nodes, first, second):
            continue  # skipped rather than rejected, so generation never stalls
        value = OPERATIONS[name](nodes, first, second)
        if abs(value) <= BOUND:
            nodes.append(value)
            steps.append((name, first, second))
    return Expression(tuple(leaves), tuple(steps))
