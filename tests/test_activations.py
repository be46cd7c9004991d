"""trainart.activations: the public registry of activations by name."""

import dataclasses

import numpy as np
import pytest

import trainart as ta
from trainart import ops


def test_names_cover_the_vocabulary():
    assert set(ta.activations.NAMES) == {
        "identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "softplus", "silu",
        "gelu", "gelu_tanh", "mish"}
    assert ta.activations.ALIASES == {"logistic": "sigmoid", "swish": "silu", "linear": "identity"}


@pytest.mark.parametrize("name", list(ta.activations.NAMES))
def test_forward_backward_match_ops(rng, name):
    act = ta.activations.get(name)
    assert act.name == name
    z = rng.standard_normal((4, 5))
    g = rng.standard_normal((4, 5))
    a = act.forward(z)
    np.testing.assert_array_equal(a, ops.activation(z, name))
    np.testing.assert_array_equal(act(z), a)
    np.testing.assert_array_equal(act.backward(z, a, g), ops.activation_grad(g, z, a, name))


def test_aliases_resolve():
    assert ta.activations.get("logistic").name == "sigmoid"
    assert ta.activations.get("swish").name == "silu"


@pytest.mark.parametrize("name", list(ta.activations.NAMES) + ["logistic", "swish", "linear"])
def test_get_takes_every_name_a_layer_takes(name):
    # Dense(activation="linear") worked while ta.activations.get("linear") was refused.
    canonical = ta.Dense(2, activation=name).activation
    assert ta.activations.get(name).name == canonical == ta.layers.canonical_activation(name)
    assert ta.Activation(name).name == canonical
    x = np.linspace(-2, 2, 7)
    np.testing.assert_array_equal(ta.ops.activation(x, name), ta.ops.activation(x, canonical))


def test_parameters_and_defaults(rng):
    assert ta.activations.get("leaky_relu").param == 0.01
    assert ta.activations.get("elu").param == 1.0
    assert ta.activations.get("relu").param is None
    leaky = ta.activations.get("leaky_relu", slope=0.2)
    np.testing.assert_allclose(leaky.forward(np.array([-1.0, 2.0])), [-0.2, 2.0], rtol=1e-15)
    grad = leaky.backward(np.array([-1.0, 2.0]), np.array([-0.2, 2.0]), np.ones(2))
    np.testing.assert_allclose(grad, [0.2, 1.0], rtol=1e-15)
    elu = ta.activations.get("elu", alpha=2.0)
    np.testing.assert_allclose(elu.forward(np.array([-1.0])), [2.0 * np.expm1(-1.0)], rtol=1e-14)


def test_bad_names_and_parameters():
    with pytest.raises(ValueError, match="unknown activation 'rectifier'.*relu.*gelu"):
        ta.activations.get("rectifier")
    with pytest.raises(TypeError, match="name must be an activation name"):
        ta.activations.get(3)
    with pytest.raises(TypeError, match="no parameters"):
        ta.activations.get("relu", slope=0.1)
    with pytest.raises(TypeError, match="slope"):
        ta.activations.get("leaky_relu", alpha=0.1)
    with pytest.raises(ValueError, match="slope"):
        ta.activations.get("leaky_relu", slope=float("nan"))
    with pytest.raises(ValueError, match="unknown activation"):
        ta.activations.Activation("logistic")  # the dataclass takes canonical names only
    with pytest.raises(ValueError, match="no parameter"):
        ta.activations.Activation("tanh", 0.5)


def test_immutable_and_passthrough():
    act = ta.activations.get("gelu")
    with pytest.raises(dataclasses.FrozenInstanceError):
        act.name = "relu"
    assert ta.activations.get(act) is act
    assert ta.activations.get("gelu") == act


@pytest.mark.parametrize("name", [None, 3, 0.5, ("relu",)])
def test_get_refuses_a_non_name_with_type_error(name):
    with pytest.raises(TypeError, match="name must be an activation name"):
        ta.activations.get(name)


def test_get_with_an_activation_object_takes_no_parameters():
    elu = ta.activations.get("elu")
    with pytest.raises(TypeError, match=r"parameters only with an activation name.*get\('elu', alpha=...\)"):
        ta.activations.get(elu, alpha=2.0)
    assert ta.activations.get(elu) is elu
