"""The reference Value: the seed figures of DESIGN.md §2, graph shapes, and random graphs
checked against finite differences."""
import sys

import pytest
from hypothesis import assume, given, settings

from solutions.engine import Value
from solutions.train import collector_paused
from strategies import expressions


def close(expected):
    return pytest.approx(expected, rel=1e-12, abs=1e-12)


# --- DESIGN.md §2: the figures the reference must reproduce ---------------------------------

def test_seed_expression_forward_and_backward():
    a, b = Value(2.0), Value(3.0)
    c = a + b
    e = c**4
    f = Value(6.0)
    g = e / f
    assert g.data == close(625 / 6)  # 104.1666...
    g.backward()
    assert a.grad == close(250 / 3)  # 83.3333...: 4 * 5**3 / 6
    assert b.grad == close(250 / 3)
    assert c.grad == close(250 / 3)
    assert e.grad == close(1 / 6)
    assert f.grad == close(-625 / 36)  # -17.3611...


def test_sub_backward_gives_minus_one_to_the_subtrahend():
    a, b = Value(6.0), Value(3.0)
    (a - b).backward()
    assert (a.grad, b.grad) == (close(1.0), close(-1.0))


def test_div_backward():
    a, b = Value(6.0), Value(3.0)
    (a / b).backward()
    assert (a.grad, b.grad) == (close(1 / 3), close(-2 / 3))


def _backward_alone(c):
    """Set c.grad to 11 and run only c's own _backward, as the tutorial's exercises do."""
    c.grad = 11.0
    c._backward()


def test_mul_backward_alone():
    a, b = Value(5.0), Value(6.0)
    _backward_alone(a * b)
    assert (a.grad, b.grad) == (66.0, 55.0)


def test_pow_backward_alone():
    a = Value(5.0)
    _backward_alone(a**2)
    assert a.grad == 110.0


@pytest.mark.parametrize("x, expected_grad", [(3.0, 11.0), (-3.0, 0.0)])
def test_relu_backward_alone(x, expected_grad):
    a = Value(x)
    _backward_alone(a.relu())
    assert a.grad == expected_grad


def test_sub_backward_alone_stops_at_the_intermediate_node():
    # c = a + (-b): c's own _backward reaches a and the node -b, not b itself.
    a, b = Value(5.0), Value(4.0)
    c = a - b
    _backward_alone(c)
    assert (a.grad, b.grad) == (11.0, 0.0)
    negated_b = next(child for child in c._prev if child is not a)
    assert negated_b.grad == 11.0


def test_sub_full_backward_reaches_the_subtrahend():
    a, b = Value(5.0), Value(4.0)
    (a - b).backward()
    assert (a.grad, b.grad) == (1.0, -1.0)
    # the same upstream gradient 11 as above, carried by a full sweep this time
    a, b = Value(5.0), Value(4.0)
    (11 * (a - b)).backward()
    assert (a.grad, b.grad) == (11.0, -11.0)


# --- graph shapes ------------------------------------------------------------------------

def test_node_used_twice_in_a_sum_gets_both_contributions():
    a = Value(3.0)
    (a + a).backward()
    assert a.grad == 2.0


def test_node_used_twice_in_a_product_gets_both_contributions():
    a = Value(3.0)
    (a * a).backward()
    assert a.grad == 6.0


def test_node_feeding_several_parents_sums_their_gradients():
    a, b = Value(2.0), Value(-3.0)
    out = a * b + a + a**2 + (a + 1).relu()  # d/da = b + 1 + 2a + 1
    out.backward()
    assert a.grad == -3.0 + 1.0 + 4.0 + 1.0
    assert b.grad == 2.0


def test_diamond_runs_each_backward_once():
    a = Value(2.0)
    left, right = a * 2, a + 3
    top = left * right  # 2a(a + 3), d/da = 4a + 6
    top.backward()
    assert a.grad == 14.0
    assert (left.grad, right.grad) == (5.0, 4.0)


@pytest.mark.parametrize("make_root", [lambda: Value(4.0), lambda: Value(4.0) * Value(2.0)])
def test_backward_seeds_the_root_with_one(make_root):
    root = make_root()
    root.backward()
    assert root.grad == 1.0


def test_deep_chain_backward_has_no_recursion_limit():
    depth = 100_000
    assert depth > sys.getrecursionlimit()
    with collector_paused():  # building a long cycle-rich graph with gc on is slow
        leaf = node = Value(0.0)
        for _ in range(depth):
            node = node + 1.0
        node.backward()
    assert node.data == depth
    assert leaf.grad == 1.0


def test_value_power_of_value_is_a_clear_type_error():
    with pytest.raises(TypeError, match="int or float exponents, not Value"):
        Value(2.0) ** Value(3.0)


def test_repr():
    assert repr(Value(5.0)) == "Value(data=5.0, grad=0.0)"
    v = Value(-1.5)
    v.grad = 2.0
    assert repr(v) == "Value(data=-1.5, grad=2.0)"


def test_leaf_backward_does_nothing():
    a = Value(1.0)
    a._backward()
    assert a.grad == 0.0


# --- random graphs against central finite differences -------------------------------------

def _central_differences(expression, leaves):
    """d output / d leaf for every leaf, from the float forward pass; None near a kink or pole."""
    signs = expression.signs(leaves)
    gradient = []
    for i, x in enumerate(leaves):
        h = 1e-6 * max(1.0, abs(x))
        plus, minus = list(leaves), list(leaves)
        plus[i], minus[i] = x + h, x - h
        if not expression.signs(plus) == signs == expression.signs(minus):
            return None
        gradient.append((expression.output(plus) - expression.output(minus)) / (2 * h))
    return gradient


@settings(max_examples=300, deadline=None)
@given(expressions())
def test_random_graph_gradients_match_finite_differences(expression):
    numeric = _central_differences(expression, expression.leaves)
    assume(numeric is not None)
    leaves = [Value(x) for x in expression.leaves]
    root = expression.output(leaves)
    assert root.data == pytest.approx(expression.output(expression.leaves), rel=1e-9, abs=1e-12)
    root.backward()
    for leaf, expected in zip(leaves, numeric):
        assert leaf.grad == pytest.approx(expected, rel=1e-5, abs=1e-6)
