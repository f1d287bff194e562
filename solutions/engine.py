"""A scalar that remembers how it was computed, and reverse-mode autodiff over it.

Every operator follows the same beats: wrap plain numbers as Values, build the result with
its children, and attach a ``_backward`` closure whose body is the chain rule for that
operator: the local derivative times ``out.grad``, *added* into each child's ``grad``.
``backward`` then calls those closures once each, from the root down to the leaves.
"""
# BEGIN EXTENSION tanh exp log
import math
# END EXTENSION


class Value:
    """One node of a computation graph: a number, its gradient, and how it was made."""

    __slots__ = ("data", "grad", "_prev", "_op", "_backward")

    def __init__(self, data, _children=(), _op=""):
        self.data = data
        self.grad = 0.0
        self._prev = tuple(_children)
        self._op = _op
        self._backward = _leaf_backward

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():
            # The local derivative of a sum with respect to each input is 1, so each input
            # receives out.grad; a node used by several parents receives the sum of their
            # contributions, so add to its grad instead of replacing it.
            # BEGIN SOLUTION
            self.grad += out.grad
            other.grad += out.grad
            # END SOLUTION

        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():
            # The local derivative of a product with respect to one factor is the other
            # factor's data; multiply it by out.grad and add it to that factor's grad.
            # BEGIN SOLUTION
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
            # END SOLUTION

        out._backward = _backward
        return out

    def __pow__(self, exponent):
        if not isinstance(exponent, (int, float)):
            raise TypeError(
                f"Value ** exponent supports only int or float exponents, not {type(exponent).__name__}"
            )
        out = Value(self.data**exponent, (self,), f"**{exponent}")

        def _backward():
            # Power rule: the local derivative of x**k is k * x**(k - 1), taken at this
            # node's data; multiply it by out.grad and add it to this node's grad.
            # BEGIN SOLUTION
            self.grad += exponent * self.data ** (exponent - 1) * out.grad
            # END SOLUTION

        out._backward = _backward
        return out

    def relu(self):
        out = Value(self.data if self.data > 0 else 0.0, (self,), "ReLU")

        def _backward():
            # ReLU passes the gradient through where its output is positive and blocks it
            # (local derivative 0) where the input was clipped to 0.
            # BEGIN SOLUTION
            self.grad += (out.data > 0) * out.grad
            # END SOLUTION

        out._backward = _backward
        return out

    # BEGIN EXTENSION tanh
    def tanh(self):
        t = math.tanh(self.data)
        out = Value(t, (self,), "tanh")

        def _backward():
            # The local derivative of tanh(x) is 1 - tanh(x)**2: read it off the output t,
            # not the input x; multiply it by out.grad and add it to this node's grad.
            # BEGIN SOLUTION
            self.grad += (1 - t**2) * out.grad
            # END SOLUTION

        out._backward = _backward
        return out

    # END EXTENSION
    # BEGIN EXTENSION exp
    def exp(self):
        out = Value(math.exp(self.data), (self,), "exp")

        def _backward():
            # exp is its own derivative: the local derivative is the output's data, not the
            # input's; multiply it by out.grad and add it to this node's grad.
            # BEGIN SOLUTION
            self.grad += out.data * out.grad
            # END SOLUTION

        out._backward = _backward
        return out

    # END EXTENSION
    # BEGIN EXTENSION log
    def log(self):
        if not self.data > 0:
            raise ValueError(f"log() needs a positive number, got {self.data}")
        out = Value(math.log(self.data), (self,), "log")

        def _backward():
            # The local derivative of log(x) is 1 / x, taken at this node's data; multiply
            # it by out.grad and add it to this node's grad.
            # BEGIN SOLUTION
            self.grad += out.grad / self.data
            # END SOLUTION

        out._backward = _backward
        return out

    # END EXTENSION
    def backward(self):
        """Fill in ``grad`` on every node this Value depends on.

        Orders the graph so that every node comes after all of its children (a topological
        order, found by an iterative depth-first search, so depth is not limited by Python's
        recursion limit), seeds this root's grad with 1.0, then calls each node's
        ``_backward`` once, in reverse order: a node passes its gradient down only after
        every parent has added its share.
        """
        # BEGIN SOLUTION
        order, visited = [], {self}
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
        # END SOLUTION

    # Everything below is built from the operators above, so it needs no _backward of its own.
    def __neg__(self):  # -self
        return self * -1

    def __sub__(self, other):  # self - other
        return self + (-other)

    def __truediv__(self, other):  # self / other
        return self * other**-1

    def __radd__(self, other):  # other + self
        return self + other

    def __rmul__(self, other):  # other * self
        return self * other

    def __rsub__(self, other):  # other - self
        return other + (-self)

    def __rtruediv__(self, other):  # other / self
        return other * self**-1

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"


def _leaf_backward():
    """A leaf has no children to pass its gradient to."""
