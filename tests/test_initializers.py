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


def test_scale_is_a_real_number_as_elsewhere():
    # Initializer("normal", True) drew with std 1 while np.float32(0.1) was refused; the scale
    # now goes through _validate.real like every other real hyperparameter.
    with pytest.raises(TypeError, match="scale must be a real number, got bool"):
        initializers.Initializer("normal", True)
    with pytest.raises(TypeError, match="scale must be a real number, got str"):
        initializers.Initializer("normal", "0.1")
    with pytest.raises(ValueError, match="scale must be finite"):
        initializers.Initializer("uniform", float("nan"))
    for scale in (np.float32(0.1), np.float64(0.1), np.int64(1), 1):
        init = initializers.Initializer("normal", scale)
        assert type(init.scale) is float and init.scale == float(scale)


def test_a_scale_the_rule_would_ignore_is_refused():
    # Initializer("he_normal", 0.3) drew he_normal and dropped the 0.3 without a word.
    with pytest.raises(ValueError, match="init scale applies to 'normal' and 'uniform' only; 'he_normal'"):
        initializers.Initializer("he_normal", 0.3)
    assert initializers.Initializer("he_normal").scale is None
    import trainart as ta

    with pytest.raises(ValueError, match=r"^bias_init scale applies to"):  # named init before
        ta.Dense(3, bias_init={"name": "he_normal", "scale": 0.5})


def test_a_scale_too_large_to_draw_or_to_hold_is_refused():
    import trainart as ta

    with pytest.raises(ValueError, match=r"init scale must be <= 1e\+300"):  # NumPy's OverflowError
        initializers.Initializer("uniform", 1e308)
    big = ta.Sequential([ta.Dense(3, init=initializers.Initializer("normal", 1e39))], input_dim=2)
    with pytest.raises(ValueError, match="parameter 0 draws values beyond the float32 range"):
        ta.Trainer(big, dtype="float32")  # was cast to inf with a RuntimeWarning
    assert np.isfinite(ta.Trainer(big, dtype="float64", executor="numpy").get_params()[0]).all()


def test_config_round_trips_and_names_its_entries():
    for init in (initializers.Initializer("normal", 0.3), initializers.Initializer("he_uniform")):
        config = init.config()
        again = initializers.Initializer.from_config(config)
        assert again == init and again.config() == config
        assert initializers.get(config) == init
        assert np.array_equal(again.draw(np.random.default_rng(1), 4, 3, (4, 3)),
                              init.draw(np.random.default_rng(1), 4, 3, (4, 3)))
    with pytest.raises(ValueError, match=r"^bias_init lacks 'name'"):
        initializers.Initializer.from_config({"scale": 0.1}, "bias_init")
    with pytest.raises(ValueError, match=r"^init\['name'\] must be one of"):
        initializers.Initializer.from_config({"name": "torch"})
    # A preset is not a rule: the message for a bare Initializer no longer lists presets.
    with pytest.raises(ValueError, match=r"^init must be one of 'zeros'.*'lecun_normal'; got 'torch'$"):
        initializers.Initializer("torch")
    with pytest.raises(TypeError, match=r"^init must be a rule name .* got list"):
        initializers.get(["normal"])


def test_normal_rules_are_untruncated_and_the_docstring_says_so():
    # He, Glorot and LeCun normal are plain normals (torch's kaiming_normal_, xavier_normal_),
    # not Keras's normals truncated at 2 std: P(|z| > 2) = 4.55%, sigma of the fraction over
    # 120,000 draws 0.06%, so 4% to 5% is a > 7 sigma band on either side.
    W = draw("he_normal")
    beyond = np.mean(np.abs(W) > 2 * math.sqrt(2 / FAN_IN))
    assert 0.04 < beyond < 0.05
    doc = " ".join(initializers.__doc__.split())
    assert "untruncated" in doc and "truncated at 2 std" in doc and "0.8796" in doc
    assert '"keras" preset uses glorot_uniform' in doc
