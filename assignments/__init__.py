"""The reference solution: the single source of the handout, the checks' expectations and every export."""
from .engine import Value
from .nn import MLP, Layer, Module, Neuron

__all__ = ["Value", "Module", "Neuron", "Layer", "MLP"]
