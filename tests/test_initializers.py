"""Initializers: the standard scales, the library presets, and seeding."""

import math

import numpy as np
import pytest

from trainart import initializers

FAN_IN, FAN_OUT = 400, 300


def draw(name):
    rng = np.random.default_rng(0)
    return initializers.get(name).draw(rng, FAN_IN, FAN_OUT, (FAN_IN, FAN_OUT))


@pytest.mark.parametrize("name,std", [
    ("random", 1.0),
    ("normal", 0.05),
    ("glorot_normal", math.sqrt(2 / (FAN_IN + FAN_OUT))),
    ("he_normal", math.sqrt(2 / FAN_IN)),
    ("lecun_normal", math.sqrt(1 / FAN_IN)),
])
def test_normal_rules_have_their_std(name, std):
    W = draw(name)
    # 120,000 draws: the sample std is within ~0.4% of the true one (4 sigma: 4/sqrt(2n)).
    assert abs(W.std() / std - 1) < 0.01
    assert abs(W.mean()) < 4 * std / math.sqrt(W.size)


@pytest.mark.parametrize("name,limit", [
    ("uniform", 0.05),
    ("glorot_uniform", math.sqrt(6 / (FAN_IN + FAN_OUT))),
    ("he_uniform", math.sqrt(6 / FAN_IN)),
])
def test_uniform_rules_fill_their_interval(name, limit):
    W = draw(name)
    assert W.min() >= -limit and W.max() <= limit
    assert W.max() > 0.99 * limit and W.min() < -0.99 * limit
    assert abs(W.std() / (limit / math.sqrt(3)) - 1) < 0.01


def test_zeros():
    assert not draw("zeros").any()


def test_presets():
    rng = np.random.default_rng(0)
    W, b = initializers.init_dense(rng, "torch", "zeros", 100, 50, "relu")
    assert np.abs(W).max() <= 0.1 and np.abs(b).max() <= 0.1 and np.abs(b).max() > 0.09
    W, b = initializers.init_dense(rng, "keras", "ones", 100, 50, "relu")
    assert not b.any() and np.abs(W).max() <= math.sqrt(6 / 150)
    W, b = initializers.init_dense(rng, "sklearn", "zeros", 100, 50, "sigmoid")
    bound = math.sqrt(2 / 150)
    assert np.abs(W).max() <= bound and np.abs(b).max() <= bound and np.abs(W).max() > 0.99 * bound


def test_same_seed_same_draw_and_bad_names():
    assert np.array_equal(draw("he_normal"), draw("he_normal"))
    with pytest.raises(ValueError, match="init"):
        initializers.get("kaiming")
    with pytest.raises(ValueError, match="scale"):
        initializers.Initializer("normal", -1.0)
