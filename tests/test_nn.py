"""The reference Neuron, Layer and MLP: parameters, forward pass, zero_grad."""
import pytest

from solutions.engine import Value
from solutions.nn import MLP, Layer, Neuron


def _set_weights(neuron, weights, bias):
    for w, value in zip(neuron.weights, weights, strict=True):
        w.data = value
    neuron.bias.data = bias


def test_neuron_parameters_are_its_weights_then_its_bias():
    neuron = Neuron(number_inputs=3, name="n")
    assert len(neuron.weights) == 3
    assert all(-1 <= w.data <= 1 for w in neuron.weights)
    assert neuron.bias.data == 0.0
    parameters = neuron.parameters()
    assert [id(p) for p in parameters] == [id(w) for w in neuron.weights] + [id(neuron.bias)]


def test_linear_neuron_adds_the_bias():
    neuron = Neuron(number_inputs=2, name="n", is_nonlinear=False)
    _set_weights(neuron, [1.0, 2.0], bias=0.5)
    out = neuron([3.0, -4.0])
    assert isinstance(out, Value)
    assert out.data == 1.0 * 3.0 + 2.0 * -4.0 + 0.5


def test_nonlinear_neuron_applies_relu_after_the_bias():
    neuron = Neuron(number_inputs=2, name="n")
    _set_weights(neuron, [1.0, 1.0], bias=-2.5)
    assert neuron([1.0, 1.0]).data == 0.0  # 2 - 2.5 < 0: clipped
    neuron.bias.data = 0.5
    assert neuron([1.0, 1.0]).data == 2.5


def test_bias_gets_a_gradient():
    neuron = Neuron(number_inputs=2, name="n", is_nonlinear=False)
    _set_weights(neuron, [1.0, 1.0], bias=0.0)
    neuron([2.0, 3.0]).backward()
    assert [p.grad for p in neuron.parameters()] == [2.0, 3.0, 1.0]


def test_layer_with_one_output_returns_a_single_value():
    out = Layer(number_inputs=2, number_outputs=1, name="l")([1.0, 2.0])
    assert isinstance(out, Value)


def test_layer_with_several_outputs_returns_a_list():
    layer = Layer(number_inputs=2, number_outputs=3, name="l", is_nonlinear=False)
    out = layer([1.0, 2.0])
    assert len(layer.neurons) == 3
    assert isinstance(out, list) and all(isinstance(v, Value) for v in out)


def test_mlp_3_3_3_1_has_28_distinct_parameters():
    parameters = MLP(3, [3, 3, 1]).parameters()
    assert len(parameters) == 28  # (3*3 + 3) + (3*3 + 3) + (3 + 1)
    assert len({id(p) for p in parameters}) == 28


def test_mlp_hidden_layers_are_nonlinear_and_the_last_is_linear():
    model = MLP(3, [3, 3, 1])
    for layer in model.layers:
        for neuron in layer.neurons:
            # every weight -1: a pre-activation is bias - (sum of the inputs)
            _set_weights(neuron, [-1.0] * len(neuron.weights), bias=0.0)
    x = [1.0, 2.0, 3.0]
    hidden = model.layers[0](x)
    assert [h.data for h in hidden] == [0.0, 0.0, 0.0]  # ReLU clips -6
    for neuron in model.layers[1].neurons:
        neuron.bias.data = 1.0  # second layer: -0 + 1 = 1 each
    out = model(x)
    assert isinstance(out, Value)
    assert out.data == -3.0  # negative: the last layer is not clipped


def test_zero_grad_zeroes_every_parameter():
    model = MLP(3, [3, 3, 1])
    for p in model.parameters():
        p.data = 0.5  # all positive, so no ReLU is dead and every parameter gets a gradient
    loss = (model([1.0, -0.5, 0.25]) - 2.0) ** 2
    loss.backward()
    assert all(p.grad != 0.0 for p in model.parameters())
    model.zero_grad()
    assert [p.grad for p in model.parameters()] == [0.0] * 28


@pytest.mark.parametrize("sizes", [[1], [4, 2], [2, 2, 2, 1]])
def test_mlp_parameter_count_follows_the_layer_sizes(sizes):
    model = MLP(2, sizes)
    inputs = [2] + sizes[:-1]
    assert len(model.parameters()) == sum((n + 1) * m for n, m in zip(inputs, sizes))
    assert [layer.neurons[0].is_nonlinear for layer in model.layers] == [True] * (len(sizes) - 1) + [False]
