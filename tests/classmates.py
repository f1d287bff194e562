"""A class for the similarity report: ten correct submissions written independently, in ten
styles, and a copy of one of them with its names changed and its methods reordered.

Each submission is one module (its engine, then the handout's nn.py as most students keep
it, or its own). ``CLASS`` maps a student id to the module's text; ``COPIER`` copied
``COPIED``. tests/test_similarity.py grades them (all correct) and compares them (only the
copy is flagged).
"""
import re

from mutants import DIRECT_SUB_DIV, KAHN_BACKWARD, RECURSIVE_BACKWARD, STACK_BACKWARD, TUTORIAL_STYLE, \
    backward_body, one_module, \
    reference_text, _reference_section


def handout_nn():
    return reference_text("nn.py").replace("from .engine import Value\n", "")


# 5. A dataclass; every operator hands its local derivatives to one helper; backward() marks
# nodes open/done on an explicit stack.
DATACLASS = '''
import random
from dataclasses import dataclass, field


@dataclass(eq=False)
class Value:
    data: float
    _children: tuple = ()
    _op: str = ""
    grad: float = 0.0
    _backward: object = field(default=lambda: None, repr=False)

    def __post_init__(self):
        self._prev = tuple(self._children)

    @staticmethod
    def lift(x):
        return x if isinstance(x, Value) else Value(x)

    def _node(self, data, parents, op, local):
        """A new node; local[i] is d(node)/d(parents[i])."""
        node = Value(data, parents, op)

        def backward_step():
            for parent, derivative in zip(parents, local):
                parent.grad += derivative * node.grad

        node._backward = backward_step
        return node

    def __add__(self, other):
        other = Value.lift(other)
        return self._node(self.data + other.data, (self, other), "+", (1.0, 1.0))

    def __mul__(self, other):
        other = Value.lift(other)
        return self._node(self.data * other.data, (self, other), "*", (other.data, self.data))

    def __pow__(self, k):
        assert isinstance(k, (int, float))
        return self._node(self.data ** k, (self,), f"**{k}", (k * self.data ** (k - 1),))

    def relu(self):
        return self._node(max(self.data, 0.0), (self,), "relu", (float(self.data > 0),))

    def __neg__(self):
        return self * -1

    def __sub__(self, other):
        return self + (-other)

    def __truediv__(self, other):
        return self * other ** -1

    __radd__ = __add__
    __rmul__ = __mul__

    def __rsub__(self, other):
        return Value.lift(other) - self

    def __rtruediv__(self, other):
        return Value.lift(other) / self

    def backward(self):
        state = {}  # node -> "open" while its children are explored, then "done"
        ordered = []
        pending = [self]
        while pending:
            node = pending[-1]
            if node not in state:
                state[node] = "open"
                pending.extend(c for c in node._prev if c not in state)
            else:
                pending.pop()
                if state[node] == "open":
                    state[node] = "done"
                    ordered.append(node)
        self.grad = 1.0
        for node in reversed(ordered):
            node._backward()

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"
'''

# 6. Every node stores its children's local derivatives and its height in the graph; one
# method applies the chain rule for all of them; backward() runs the tallest nodes first.
LOCAL_DERIVATIVES = '''
import random


def as_value(x):
    return x if isinstance(x, Value) else Value(x)


class Value:
    def __init__(self, data, _children=(), _op="", _local=()):
        self.data = data
        self.grad = 0.0
        self._prev = list(_children)
        self._op = _op
        self._local = list(_local)  # d(self)/d(child) for each child, in order
        self._height = 1 + max((child._height for child in self._prev), default=-1)
        self._backward = self._send_gradient

    def _send_gradient(self):
        for child, local in zip(self._prev, self._local):
            child.grad += local * self.grad

    def __add__(self, other):
        other = as_value(other)
        return Value(self.data + other.data, [self, other], "+", [1, 1])

    def __radd__(self, other):
        return as_value(other) + self

    def __mul__(self, other):
        other = as_value(other)
        return Value(self.data * other.data, [self, other], "*", [other.data, self.data])

    def __rmul__(self, other):
        return as_value(other) * self

    def __pow__(self, power):
        if not isinstance(power, (int, float)):
            raise TypeError("only numeric powers")
        return Value(self.data ** power, [self], "pow", [power * self.data ** (power - 1)])

    def __neg__(self):
        return Value(-self.data, [self], "neg", [-1])

    def __sub__(self, other):
        other = as_value(other)
        return Value(self.data - other.data, [self, other], "-", [1, -1])

    def __rsub__(self, other):
        return as_value(other) - self

    def __truediv__(self, other):
        other = as_value(other)
        quotient = self.data / other.data
        return Value(quotient, [self, other], "/", [1 / other.data, -quotient / other.data])

    def __rtruediv__(self, other):
        return as_value(other) / self

    def relu(self):
        positive = self.data > 0
        return Value(self.data if positive else 0, [self], "relu", [1 if positive else 0])

    def backward(self):
        reachable, todo = {self}, [self]
        while todo:
            for child in todo.pop()._prev:
                if child not in reachable:
                    reachable.add(child)
                    todo.append(child)
        self.grad = 1.0
        # A parent is always taller than its children, so tallest-first is a topological order.
        for node in sorted(reachable, key=lambda n: n._height, reverse=True):
            node._backward()

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"
'''

# 7. Operators are module-level functions attached in a loop; every node gets a creation
# stamp, and backward() pops the newest node from a heap.
CREATION_STAMPS = '''
import heapq
import itertools
import random

_stamps = itertools.count()


class Value:
    def __init__(self, data, _children=(), _op=""):
        self.data, self.grad = data, 0.0
        self._prev = frozenset(_children)
        self._op = _op
        self._stamp = next(_stamps)  # children are always made before their parents
        self._backward = lambda: None

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"

    def backward(self):
        self.grad = 1.0
        heap, queued = [(-self._stamp, self)], {self}
        while heap:
            _, node = heapq.heappop(heap)
            node._backward()
            for child in node._prev:
                if child not in queued:
                    queued.add(child)
                    heapq.heappush(heap, (-child._stamp, child))


def wrap(x):
    return x if isinstance(x, Value) else Value(x)


def plus(a, b):
    b = wrap(b)
    result = Value(a.data + b.data, (a, b), "+")

    def chain():
        a.grad += result.grad
        b.grad += result.grad

    result._backward = chain
    return result


def times(a, b):
    b = wrap(b)
    result = Value(a.data * b.data, (a, b), "*")

    def chain():
        a.grad += b.data * result.grad
        b.grad += a.data * result.grad

    result._backward = chain
    return result


def power(a, n):
    result = Value(a.data ** n, (a,), "**")

    def chain():
        a.grad += n * a.data ** (n - 1) * result.grad

    result._backward = chain
    return result


def rectify(a):
    result = Value(a.data * (a.data > 0), (a,), "relu")

    def chain():
        if result.data > 0:
            a.grad += result.grad

    result._backward = chain
    return result


for name, function in {
    "__add__": plus, "__radd__": plus, "__mul__": times, "__rmul__": times, "__pow__": power,
    "relu": rectify, "__neg__": lambda a: times(a, -1), "__sub__": lambda a, b: plus(a, times(wrap(b), -1)),
    "__rsub__": lambda a, b: plus(times(a, -1), b), "__truediv__": lambda a, b: times(a, power(wrap(b), -1)),
    "__rtruediv__": lambda a, b: times(power(a, -1), b),
}.items():
    setattr(Value, name, function)
'''

# 8. Short names in closures; backward() hands the graph to the standard library's graphlib.
GRAPHLIB = '''
import random
from graphlib import TopologicalSorter


class Value:
    def __init__(self, data, _children=(), _op=""):
        self.data = data
        self.grad = 0.0
        self._backward = lambda: None
        self._prev = tuple(_children)
        self._op = _op

    def __repr__(self):
        return "Value(data=%s, grad=%s)" % (self.data, self.grad)

    def __add__(s, o):
        o = o if isinstance(o, Value) else Value(o)
        r = Value(s.data + o.data, (s, o), "+")

        def propagate():
            s.grad += r.grad
            o.grad += r.grad
        r._backward = propagate
        return r

    def __mul__(s, o):
        o = o if isinstance(o, Value) else Value(o)
        r = Value(s.data * o.data, (s, o), "*")

        def propagate():
            s.grad += o.data * r.grad
            o.grad += s.data * r.grad
        r._backward = propagate
        return r

    def __pow__(s, e):
        r = Value(s.data ** e, (s,), "**")

        def propagate():
            s.grad += e * (s.data ** (e - 1)) * r.grad
        r._backward = propagate
        return r

    def relu(s):
        r = Value(s.data if s.data > 0 else 0.0, (s,), "relu")

        def propagate():
            s.grad += r.grad if r.data > 0 else 0.0
        r._backward = propagate
        return r

    def __neg__(s): return s * -1
    def __sub__(s, o): return s + (-o)
    def __truediv__(s, o): return s * o ** -1
    def __radd__(s, o): return s + o
    def __rmul__(s, o): return s * o
    def __rsub__(s, o): return (-s) + o
    def __rtruediv__(s, o): return s ** -1 * o

    def backward(self):
        graph, frontier = {}, [self]
        while frontier:
            v = frontier.pop()
            if v not in graph:
                graph[v] = v._prev
                frontier.extend(v._prev)
        self.grad = 1.0
        for v in reversed(list(TopologicalSorter(graph).static_order())):
            v._backward()
'''

# 9. A table of operations (value and local derivatives as functions); backward() walks
# children by index on an explicit stack.
OPERATION_TABLE = '''
import operator
import random

RULES = {
    "+": (operator.add, lambda x, y: (1.0, 1.0)),
    "*": (operator.mul, lambda x, y: (y, x)),
}


class Value:
    def __init__(self, data, _children=(), _op=""):
        self.data = data
        self.grad = 0.0
        self._prev = _children
        self._op = _op
        self._backward = lambda: None

    def _apply(self, symbol, other):
        other = other if isinstance(other, Value) else Value(other)
        forward, derivatives = RULES[symbol]
        out = Value(forward(self.data, other.data), (self, other), symbol)
        d_self, d_other = derivatives(self.data, other.data)

        def backward_rule():
            self.grad += d_self * out.grad
            other.grad += d_other * out.grad

        out._backward = backward_rule
        return out

    def __add__(self, other):
        return self._apply("+", other)

    def __mul__(self, other):
        return self._apply("*", other)

    def __radd__(self, other):
        return self._apply("+", other)

    def __rmul__(self, other):
        return self._apply("*", other)

    def __pow__(self, n):
        out = Value(self.data ** n, (self,), "pow")
        slope = n * self.data ** (n - 1)

        def backward_rule():
            self.grad += slope * out.grad

        out._backward = backward_rule
        return out

    def relu(self):
        out = Value(max(0.0, self.data), (self,), "relu")

        def backward_rule():
            self.grad += (self.data > 0) * out.grad

        out._backward = backward_rule
        return out

    def __neg__(self):
        return self._apply("*", -1.0)

    def __sub__(self, other):
        return self + (-1.0) * other

    def __rsub__(self, other):
        return (-1.0) * self + other

    def __truediv__(self, other):
        return self * (other if isinstance(other, Value) else Value(other)) ** -1

    def __rtruediv__(self, other):
        return Value(other) * self ** -1

    def backward(self):
        order = []
        visited = set()
        visited.add(self)
        stack = [[self, 0]]
        while len(stack) > 0:
            top = stack[-1]
            kids = list(top[0]._prev)
            if top[1] < len(kids):
                kid = kids[top[1]]
                top[1] = top[1] + 1
                if kid not in visited:
                    visited.add(kid)
                    stack.append([kid, 0])
            else:
                order.append(top[0])
                stack.pop()
        self.grad = 1.0
        for node in order[::-1]:
            node._backward()

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"
'''

# 10. A beginner's long hand: every step spelled out, its own nn classes, and backward()
# counting how many parents each node waits for (Kahn's algorithm with a deque).
LONG_HAND = '''
import random
from collections import deque


class Value:
    def __init__(self, data, _children=(), _op=""):
        self.data = data
        self.grad = 0.0
        children_list = []
        for child in _children:
            children_list.append(child)
        self._prev = children_list
        self._op = _op
        self._backward = self.nothing_to_do

    def nothing_to_do(self):
        pass

    def __add__(self, other):
        if not isinstance(other, Value):
            other = Value(other)
        result_value = self.data + other.data
        result = Value(result_value, [self, other], "+")

        def add_backward():
            self.grad = self.grad + 1.0 * result.grad
            other.grad = other.grad + 1.0 * result.grad

        result._backward = add_backward
        return result

    def __mul__(self, other):
        if not isinstance(other, Value):
            other = Value(other)
        result_value = self.data * other.data
        result = Value(result_value, [self, other], "*")

        def multiply_backward():
            self.grad = self.grad + other.data * result.grad
            other.grad = other.grad + self.data * result.grad

        result._backward = multiply_backward
        return result

    def __pow__(self, exponent):
        result_value = self.data ** exponent
        result = Value(result_value, [self], "power")

        def power_backward():
            derivative = exponent * (self.data ** (exponent - 1))
            self.grad = self.grad + derivative * result.grad

        result._backward = power_backward
        return result

    def relu(self):
        if self.data > 0:
            result_value = self.data
        else:
            result_value = 0.0
        result = Value(result_value, [self], "relu")

        def relu_backward():
            if self.data > 0:
                self.grad = self.grad + result.grad

        result._backward = relu_backward
        return result

    def __neg__(self):
        return self * (-1)

    def __sub__(self, other):
        return self + (other * (-1) if isinstance(other, Value) else Value(-other))

    def __truediv__(self, other):
        if not isinstance(other, Value):
            other = Value(other)
        return self * (other ** (-1))

    def __radd__(self, other):
        return self + other

    def __rmul__(self, other):
        return self * other

    def __rsub__(self, other):
        return Value(other) - self

    def __rtruediv__(self, other):
        return Value(other) / self

    def backward(self):
        # first find every node and count its parents
        number_of_parents = {}
        number_of_parents[self] = 0
        to_visit = deque()
        to_visit.append(self)
        while len(to_visit) > 0:
            current = to_visit.popleft()
            for child in current._prev:
                if child in number_of_parents:
                    number_of_parents[child] = number_of_parents[child] + 1
                else:
                    number_of_parents[child] = 1
                    to_visit.append(child)
        # then pass gradients down, a node only when all its parents are finished
        self.grad = 1.0
        ready = deque()
        ready.append(self)
        while len(ready) > 0:
            current = ready.popleft()
            current._backward()
            for child in current._prev:
                number_of_parents[child] = number_of_parents[child] - 1
                if number_of_parents[child] == 0:
                    ready.append(child)

    def __repr__(self):
        return "Value(data=" + str(self.data) + ", grad=" + str(self.grad) + ")"


class Module:
    def zero_grad(self):
        for parameter in self.parameters():
            parameter.grad = 0.0

    def parameters(self):
        return []


class Neuron(Module):
    def __init__(self, number_inputs, name, is_nonlinear=True):
        self.weights = []
        for i in range(number_inputs):
            self.weights.append(Value(random.uniform(-1, 1)))
        self.bias = Value(0.0)
        self.name = name
        self.is_nonlinear = is_nonlinear

    def __call__(self, x):
        total = self.bias
        for i in range(len(self.weights)):
            total = total + self.weights[i] * x[i]
        if self.is_nonlinear:
            return total.relu()
        return total

    def parameters(self):
        everything = []
        for weight in self.weights:
            everything.append(weight)
        everything.append(self.bias)
        return everything


class Layer(Module):
    def __init__(self, number_inputs, number_outputs, name, **kwargs):
        self.neurons = []
        for i in range(number_outputs):
            self.neurons.append(Neuron(number_inputs, name + "_" + str(i), **kwargs))

    def __call__(self, x):
        outputs = []
        for neuron in self.neurons:
            outputs.append(neuron(x))
        if len(outputs) == 1:
            return outputs[0]
        return outputs

    def parameters(self):
        everything = []
        for neuron in self.neurons:
            for parameter in neuron.parameters():
                everything.append(parameter)
        return everything


class MLP(Module):
    def __init__(self, number_inputs, list_number_outputs):
        self.layers = []
        sizes = [number_inputs] + list(list_number_outputs)
        for i in range(len(list_number_outputs)):
            last = i == len(list_number_outputs) - 1
            self.layers.append(Layer(sizes[i], sizes[i + 1], "layer" + str(i), is_nonlinear=not last))

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self):
        everything = []
        for layer in self.layers:
            for parameter in layer.parameters():
                everything.append(parameter)
        return everything
'''


def _patched(*patches):
    return one_module(patches)


CLASS = {
    "ada": one_module(),  # 1. the handout filled in as the reference does (iterative DFS)
    "ben": TUTORIAL_STYLE,  # 2. the tutorial's style: functions assigned onto the class, recursion
    "chloe": _patched(backward_body(KAHN_BACKWARD)),  # 3. the handout with Kahn's algorithm
    "dev": _patched(  # 4. the handout with direct sub/div and a (node, done) stack
        ("engine.py", _reference_section("    def __neg__(self):", "    def __repr__(self):"), DIRECT_SUB_DIV),
        backward_body(STACK_BACKWARD)),
    "emil": DATACLASS + "\n\n" + handout_nn(),  # 5.
    "fatou": LOCAL_DERIVATIVES + "\n\n" + handout_nn(),  # 6.
    "gus": CREATION_STAMPS + "\n\n" + handout_nn(),  # 7.
    "hana": GRAPHLIB + "\n\n" + handout_nn(),  # 8.
    "ivo": OPERATION_TABLE + "\n\n" + handout_nn(),  # 9.
    "jun": LONG_HAND,  # 10.
}


def renamed_and_reordered(text, renames, move):
    """``text`` with whole-word ``renames`` applied and the methods named in ``move`` taken
    out of their class and put back, in reverse order, at the end of it (before the next
    top-level statement)."""
    for old, new in renames.items():
        text = re.sub(rf"\b{re.escape(old)}\b", new, text)
    methods = {}
    for name in move:
        match = re.search(rf"\n    def {name}\(.*?(?=\n    def |\n    [A-Za-z_]+ = |\n\S|\Z)", text, re.S)
        methods[name] = match.group(0)
        text = text.replace(match.group(0), "", 1)
    end = re.search(r"\n(?=\S)", text[text.index("class Value"):][1:])
    cut = text.index("class Value") + 1 + end.start()
    return text[:cut] + "".join(methods[name] for name in reversed(move)) + "\n" + text[cut:]


# The copier took fatou's code: every own name changed, the methods in another order, a
# comment of their own.
COPIED = "fatou"
COPIER = "kim"
COPY = renamed_and_reordered(
    CLASS[COPIED],
    {"as_value": "to_node", "_local": "_partials", "_height": "_level", "_send_gradient": "_push_grad",
     "reachable": "seen", "todo": "stack", "child": "kid", "local": "partial", "power": "k",
     "quotient": "q", "positive": "is_on"},
    ["backward", "relu", "__truediv__", "__mul__", "__pow__"],
).replace("    def backward(self):\n", "    def backward(self):\n        # my own topological sort\n", 1)


# A concise solution: the handout with the tutorial's recursive build_topo, about 80 tokenised
# characters of own code, under MIN_MATCH; its byte-identical copy must still be flagged.
CONCISE = one_module([backward_body(RECURSIVE_BACKWARD)])


def padded(body, junk="unused_{n} = len(str({n})) * 2"):
    """``body`` (indented code) with one dead statement after each line: at the line's own
    indentation, or the next line's after a line that opens a block."""
    lines = body.splitlines()
    out = []
    for n, line in enumerate(lines):
        out.append(line)
        if not line.strip():
            continue
        following = next((later for later in lines[n + 1:] if later.strip()), line)
        model = following if line.rstrip().endswith(":") else line
        out.append(" " * (len(model) - len(model.lstrip())) + junk.format(n=n))
    return "\n".join(out) + "\n"


# Kahn's algorithm written out in the handout's backward(), with a queue and in-degrees, and a
# copy of it with a junk statement after every line.
KAHN_QUEUE = """        from collections import deque

        incoming_edges = {self: 0}
        discovered = deque([self])
        while discovered:
            current_node = discovered.popleft()
            for input_node in current_node._prev:
                if input_node not in incoming_edges:
                    incoming_edges[input_node] = 0
                    discovered.append(input_node)
                incoming_edges[input_node] = incoming_edges[input_node] + 1
        self.grad = 1.0
        can_go = deque([self])
        while can_go:
            current_node = can_go.popleft()
            current_node._backward()
            for input_node in current_node._prev:
                incoming_edges[input_node] = incoming_edges[input_node] - 1
                if incoming_edges[input_node] == 0:
                    can_go.append(input_node)
"""
QUEUED = one_module([backward_body(KAHN_QUEUE)])
PADDED_KAHN = one_module([backward_body(padded(KAHN_QUEUE))])

# Honest submissions with little own code: the handout filled in as the reference does, or
# with one small change of style each.
HONEST = {
    "lea": one_module(),
    "max": one_module([("engine.py", "self._prev = tuple(_children)", "self._prev = set(_children)")]),
    "nia": one_module([("engine.py", '    __slots__ = ("data", "grad", "_prev", "_op", "_backward")\n\n', "")]),
    "omar": one_module(),
    "pia": one_module([("engine.py", "self._prev = tuple(_children)", "self._prev = list(_children)")]),
    "quin": one_module(),
    "rosa": one_module([("engine.py", "self._prev = tuple(_children)", "self._prev = frozenset(_children)")]),
    "sven": one_module(),
}


def group_of_copies(source, size):
    """``size`` - 1 copies of ``source``, each with its own names (a group sharing one
    solution): {id: text}."""
    copies = {}
    for n in range(1, size):
        renames = {"_local": f"_partials{n}", "_height": f"_level{n}", "todo": f"stack{n}", "child": f"kid{n}",
                   "local": f"partial{n}", "reachable": f"seen{n}"}
        copies[f"group{n}"] = renamed_and_reordered(source, renames, [])
    return copies
