"""Models and layers: op lists, parameter shapes and order, validation."""

import numpy as np
import pytest

import trainart as ta


def test_mlp_ops_and_param_order():
    model = ta.MLP([5, 7, 3, 2], activation="tanh", dropout=0.5, input_dropout=0.2)
    kinds = [op["op"] for op in model.ops()]
    assert kinds == ["dropout", "dense", "dropout", "dense", "dropout", "dense"]
    shapes = [p.shape for p in model.init_params(0)]
    assert shapes == [(5, 7), (7,), (7, 3), (3,), (3, 2), (2,)]
    assert model.ops()[-1]["act"] == "identity"
    assert [op["layer"] for op in model.ops() if op["op"] == "dropout"] == [0, 1, 2]


def test_batchnorm_mlp_puts_activation_after_norm():
    model = ta.MLP([4, 6, 2], batchnorm=True)
    kinds = [op["op"] for op in model.ops()]
    assert kinds == ["dense", "batchnorm", "activation", "dense"]
    shapes = [p.shape for p in model.init_params(0)]
    assert shapes == [(4, 6), (6,), (6,), (6,), (6, 2), (2,)]
    rm, rv = model.init_buffers()
    assert not rm.any() and (rv == 1).all()


def test_activation_after_identity_dense_is_fused():
    model = ta.Sequential([ta.Dense(3), ta.Activation("gelu"), ta.Dense(1)], input_dim=2)
    ops = model.ops()
    assert [op["op"] for op in ops] == ["dense", "dense"] and ops[0]["act"] == "gelu"


def test_init_is_seeded():
    model = ta.MLP([3, 4, 2])
    a, b = model.init_params(1), model.init_params(1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(model.init_params(2)[0], a[0])


def test_config_round_trip():
    model = ta.Sequential([ta.Dropout(0.1), ta.Dense(4, "leaky_relu", l2=1e-3, max_norm=2.0),
                           ta.BatchNorm(momentum=0.2), ta.Dense(2)], input_dim=3)
    again = ta.Sequential.from_config(model.config())
    assert again.config() == model.config()
    assert again.ops() == model.ops()


@pytest.mark.parametrize("make,match", [
    (lambda: ta.MLP([3]), "sizes"),
    (lambda: ta.MLP([3, 0, 2]), r"sizes\[1\]"),
    (lambda: ta.MLP([3, 2], activation="relu6"), "activation"),
    (lambda: ta.MLP([3, 2], dropout=1.0), "dropout"),
    (lambda: ta.MLP([3, 2], input_dropout=-0.1), "input_dropout"),
    (lambda: ta.Dense(0), "units"),
    (lambda: ta.Dense(2, l2=-1), "l2"),
    (lambda: ta.Dense(2, max_norm=0), "max_norm"),
    (lambda: ta.Dense(2, init="bogus"), "init"),
    (lambda: ta.BatchNorm(momentum=2), "momentum"),
    (lambda: ta.Sequential([], input_dim=2), "layers"),
    (lambda: ta.Sequential([ta.Dropout(0.1)], input_dim=2), "Dense"),
    (lambda: ta.Sequential([ta.Dense(2)], input_dim=0), "input_dim"),
])
def test_bad_hyperparameters(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_layers_reject_non_layers():
    with pytest.raises(TypeError, match=r"layers\[0\]"):
        ta.Sequential(["dense"], input_dim=2)


@pytest.mark.parametrize("activation", ["sigmoid", "logistic", "relu", "tanh"])
@pytest.mark.parametrize("batchnorm", [False, True])
@pytest.mark.parametrize("output_activation", [None, "sigmoid"])
def test_sklearn_init_draws_every_layer_with_the_networks_factor(activation, batchnorm, output_activation):
    # scikit-learn's MLP draws W and b of every layer, the output layer included, from
    # U(+-sqrt(f / (fan_in + fan_out))) with f = 2 for a logistic network and 6 otherwise.
    # Its own _init_coef, fed the same Generator, is the oracle.
    sk = pytest.importorskip("sklearn.neural_network")
    sizes = [30, 20, 10, 5]
    ref = sk.MLPClassifier(hidden_layer_sizes=sizes[1:-1], activation="logistic" if activation == "sigmoid"
                           else activation)
    ref._random_state = np.random.default_rng(7)
    expected = [p for fi, fo in zip(sizes, sizes[1:]) for p in ref._init_coef(fi, fo, np.float64)]
    params = ta.MLP(sizes, activation=activation, init="sklearn", batchnorm=batchnorm,
                    output_activation=output_activation).init_params(7)
    dense = [p for i, p in enumerate(params) if not batchnorm or i % 4 < 2 or i >= len(params) - 2]
    assert len(dense) == len(expected)
    for got, want in zip(dense, expected):
        np.testing.assert_array_equal(got, want)


def test_sklearn_init_in_a_sequential_reads_each_layers_hidden_activation():
    # A Dense is drawn with the factor of the activation applied to its output (its own or
    # the Activation after a BatchNorm); the output layer with the one of the layer before.
    model = ta.Sequential([ta.Dense(40, "sigmoid", init="sklearn"),
                           ta.Dense(40, init="sklearn"), ta.BatchNorm(), ta.Activation("relu"),
                           ta.Dense(40, "relu", init="sklearn"), ta.Dense(40, "sigmoid", init="sklearn")],
                           input_dim=40)
    params = model.init_params(0)
    weights = [params[i] for i in (0, 2, 6, 8)]   # W and b of the dense layers, around gamma, beta
    biases = [params[i] for i in (1, 3, 7, 9)]
    for W, b, f in zip(weights, biases, [2.0, 6.0, 6.0, 6.0]):
        bound = np.sqrt(f / 80)
        assert 0.95 * bound < np.abs(W).max() <= bound and np.abs(b).max() <= bound


def test_dropout_rates_the_16_bit_keep_test_cannot_represent_are_refused():
    # The keep test keeps an element iff a 16-bit number u >= floor(rate * 2**16), while kept
    # units are scaled by exactly 1 / (1 - rate): rate 0.9999 gave an expected output of 1.07
    # instead of 1, and rates below 2**-16 dropped nothing. The accepted range is [2**-16,
    # 1 - 2**-10] (and 0), refused just outside, for Dropout and both MLP rates.
    from trainart.reference.dropout import dropout_threshold

    low, high = 2.0 ** -16, 1.0 - 2.0 ** -10
    for rate in (0.0, low, 1e-4, 0.05, 0.2, 0.5, 0.9, 0.99, 0.999, high):
        assert ta.Dropout(rate).rate == rate
        ta.MLP([3, 4, 2], dropout=rate, input_dropout=rate)
    refused = ((np.nextafter(low, 0.0), r"must be 0 or at least 2\*\*-16"), (1e-6, "nothing would be dropped"),
               (np.nextafter(high, 1.0), r"must be at most 1 - 2\*\*-10"), (0.9999, "16-bit"))
    for rate, match in refused:
        for make, name in ((lambda r: ta.Dropout(r), "rate"), (lambda r: ta.MLP([3, 4, 2], dropout=r), "dropout"),
                           (lambda r: ta.MLP([3, 4, 2], input_dropout=r), "input_dropout")):
            with pytest.raises(ValueError, match=rf"^{name} .*{match}"):
                make(float(rate))
    # Invariants of the accepted range, from the threshold the kernels use: every accepted
    # rate drops something, and the kept fraction exceeds 1 - rate by less than 1/64 of it.
    rates = np.concatenate([np.linspace(low, 0.01, 2001), np.linspace(0.01, high, 20001)])
    kept = np.array([1.0 - dropout_threshold(r) / 2 ** 16 for r in rates])
    assert all(dropout_threshold(r) >= 1 for r in rates)
    assert np.all(kept / (1.0 - rates) - 1.0 < 2.0 ** -6)
    assert np.all(kept / (1.0 - rates) - 1.0 >= 0.0)


def test_initializer_objects_round_trip_through_config_and_checkpoint(tmp_path):
    # An Initializer (the only way to set normal's std or uniform's limit) used to stay in the
    # config as an object: json.dumps and Trainer.save failed, and from_config could not
    # rebuild it. The config now holds its {"name", "scale"} dict, which Dense takes back.
    import json

    init, bias_init = ta.initializers.Initializer("normal", 0.3), ta.initializers.Initializer("uniform", 0.2)
    model = ta.Sequential([ta.Dense(40, "relu", init=init, bias_init=bias_init), ta.Dense(2, init="he_normal")],
                          input_dim=30)
    config = json.loads(json.dumps(model.config()))
    assert config["layers"][0]["init"] == {"name": "normal", "scale": 0.3}
    assert config["layers"][0]["bias_init"] == {"name": "uniform", "scale": 0.2}
    assert config["layers"][1]["init"] == "he_normal"   # plain names stay plain, as in old configs
    again = ta.Sequential.from_config(config)
    assert again.layers[0].init == init and again.config() == model.config()
    assert all(np.array_equal(a, b) for a, b in zip(again.init_params(3), model.init_params(3)))
    W, b = model.init_params(3)[:2]
    assert abs(W.std() / 0.3 - 1) < 0.05 and 0.19 < np.abs(b).max() <= 0.2

    trainer = ta.Trainer(model, loss="mse", executor="numpy", dtype="float64", seed=3)
    rng = np.random.default_rng(0)
    trainer.fit(rng.normal(size=(8, 30)), rng.normal(size=(8, 2)), epochs=1, verbose=0)
    trainer.save(tmp_path / "init.ckpt")
    loaded = ta.Trainer.load(tmp_path / "init.ckpt")
    assert loaded.model.config() == model.config()
    assert all(np.array_equal(a, b) for a, b in zip(loaded.get_params(), trainer.get_params()))
    fresh = ta.Trainer.from_config(loaded.config())
    first = ta.Trainer(model, loss="mse", executor="numpy", dtype="float64", seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(fresh.get_params(), first.get_params()))


@pytest.mark.parametrize("make,error,match", [
    (lambda: ta.Dense(3, activation=["relu"]), TypeError, r"^activation must be an activation name .* got list"),
    (lambda: ta.Activation({"relu"}), TypeError, r"^name must be an activation name .* got set"),
    (lambda: ta.MLP([3, 4, 2], activation=["relu"]), TypeError, r"^activation must be an activation name"),
    (lambda: ta.Dense(3, init=["he_normal"]), TypeError, r"^init must be a rule name .*'torch'.*Initializer"),
    (lambda: ta.Dense(3, bias_init=0.0), TypeError, r"^bias_init must be a rule name"),
    (lambda: ta.Dense(3, bias_init="torch"), ValueError, r"^bias_init must be one of"),
    (lambda: ta.Dense(3, init={"name": "normal", "std": 0.1}), ValueError, r"^init has unknown keys 'std'"),
    (lambda: ta.Dense(3, init={"name": "normal", "scale": -1}), ValueError, r"^init\['scale'\] must be >= 0"),
    (lambda: ta.Sequential(None, input_dim=3), TypeError, r"^layers must be a list of trainart layers, got NoneType"),
    (lambda: ta.Sequential(ta.Dense(2), input_dim=3), TypeError, r"^layers must be a list"),
    (lambda: ta.Sequential.from_config({"input_dim": 3}), ValueError, r"^config lacks 'layers'"),
    (lambda: ta.Sequential.from_config([]), TypeError, r"^config must be a dict"),
    (lambda: ta.Sequential.from_config({"input_dim": 3, "layers": [{"kind": "dense", "units": 2}, {"kind": "conv"}]}),
     ValueError, r"^config\['layers'\]\[1\] has unknown kind 'conv'; known: 'dense'"),
    (lambda: ta.Sequential.from_config({"input_dim": 3, "layers": [{"units": 2}]}),
     ValueError, r"^config\['layers'\]\[0\] lacks 'kind'"),
    (lambda: ta.Sequential.from_config({"input_dim": 3, "layers": [{"kind": "dense"}]}),
     ValueError, r"^config\['layers'\]\[0\] lacks 'units'"),
    (lambda: ta.Sequential.from_config({"input_dim": 3, "layers": [{"kind": "dense", "units": 2, "bias": 1}]}),
     ValueError, r"^config\['layers'\]\[0\] has keys 'bias' that a dense layer does not take"),
    (lambda: ta.Dense(3, trainable=1), TypeError, r"^trainable must be a bool, got int"),
])
def test_bad_arguments_are_named(make, error, match):
    # These raised bare "unhashable type: 'list'", KeyError: 'conv' or "'NoneType' object is
    # not iterable", naming neither the argument nor what it accepts.
    with pytest.raises(error, match=match):
        make()


def test_numpy_bools_are_bools():
    # trainable=np.True_ was refused with "must be a bool, got bool"; it is a bool, as for
    # the optimizers' and callbacks' flags, and is kept as a Python bool (JSON-able).
    for flag in (np.True_, np.False_):
        layer = ta.Dense(3, trainable=flag)
        assert layer.trainable is bool(flag) and type(layer.config()["trainable"]) is bool
    assert ta.MLP([3, 4, 2], batchnorm=np.True_).ops()[1]["op"] == "batchnorm"


def test_model_building_refusals_name_their_argument():
    with pytest.raises(TypeError, match="sizes must be a list of layer widths"):
        ta.MLP(64)  # "'int' object is not iterable"
    with pytest.raises(ValueError, match="^output_activation must be one of"):
        ta.MLP([3, 4, 2], output_activation="softmax")  # named `activation`
    with pytest.raises(ValueError, match="activation_param applies to 'leaky_relu' and 'elu' only; 'relu'"):
        ta.Dense(8, "relu", activation_param=0.2)  # kept, unused
    with pytest.raises(ValueError, match="activation_param applies to"):
        ta.Activation("tanh", activation_param=-3.0)

    class Scale(ta.layers.Layer):  # accepted, then left out of the ops: trained without it
        kind = "scale"

    with pytest.raises(TypeError, match=r"layers\[1\] must be a trainart Dense, Activation, Dropout or BatchNorm"):
        ta.Sequential([ta.Dense(3), Scale(), ta.Dense(1)], input_dim=2)


def test_models_are_immutable_hashable_and_equal_by_config():
    import copy
    import pickle

    model = ta.MLP([4, 8, 3], batchnorm=True)
    with pytest.raises(AttributeError, match="a Sequential is immutable"):
        model.input_dim = 6  # the Trainer planned 4 inputs and would save 6
    assert ta.Sequential.from_config(model.config()) == model == copy.deepcopy(model) == pickle.loads(pickle.dumps(model))
    assert len({ta.Dense(2), ta.Dense(2), ta.Dense(3)}) == 2 and hash(model) == hash(copy.deepcopy(model))


def test_equal_layers_and_models_hash_alike():
    # Hashing the repr split configs that compare equal: -0.0 == 0.0, but their reprs differ.
    a, b = ta.Dense(3, l2=-0.0), ta.Dense(3, l2=0.0)
    assert a == b and len({a, b}) == 1
    assert {ta.Sequential([a], input_dim=2): 1}.get(ta.Sequential([b], input_dim=2)) == 1
    assert len({ta.BatchNorm(momentum=-0.0), ta.BatchNorm(momentum=0.0)}) == 1
    assert len({ta.Dense(3, init={"name": "normal", "scale": 0.1}), ta.Dense(3, init={"scale": 0.1, "name": "normal"})}) == 1


def test_squashed_outputs_under_a_logit_loss_warn():
    # sigmoid twice: every "logit" above 0, so binary_cross_entropy's model predicted class 1 only
    with pytest.warns(UserWarning, match="output goes through sigmoid, but loss 'binary_cross_entropy' takes logits"):
        ta.Trainer(ta.MLP([3, 4, 1], output_activation="sigmoid"), loss="binary_cross_entropy")


def test_a_batchnorm_after_the_squashing_output_warns_of_nothing():
    # BatchNorm re-centres and rescales the sigmoid's outputs: the logits leave (0, 1), nothing is
    # squashed twice, yet the warning said so.
    import warnings

    model = ta.Sequential([ta.Dense(8, activation="relu"), ta.Dense(3, activation="sigmoid"), ta.BatchNorm()],
                          input_dim=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ta.Trainer(model, loss="cross_entropy")
    with pytest.warns(UserWarning, match="squashed twice"):  # a BatchNorm before it does not rescale the output
        ta.Trainer(ta.Sequential([ta.Dense(8, activation="relu"), ta.BatchNorm(), ta.Dense(3, activation="sigmoid")],
                                 input_dim=4), loss="cross_entropy")


def test_clip_rules_and_initializers_are_immutable_and_equal_by_config():
    # ClipNorm(1.0) != ClipNorm(1.0); clip.max_norm = -5 was taken unchecked (the numpy executor
    # clipped by the edited value, the engine by the old one); init.scale = -7 changed a Dense's
    # hash after it was put in a set.
    assert ta.ClipNorm(1.0) == ta.ClipNorm(1.0) and hash(ta.ClipNorm(1.0)) == hash(ta.ClipNorm(1.0))
    assert ta.ClipValue(0.5) == ta.ClipValue(0.5) and ta.ClipNorm(1.0) != ta.ClipNorm(1.0, per_tensor=True)
    for rule, field in ((ta.ClipNorm(1.0), "max_norm"), (ta.ClipValue(0.5), "value")):
        with pytest.raises(AttributeError, match="is immutable"):
            setattr(rule, field, -5.0)
    init = ta.initializers.Initializer("uniform", 0.3)
    dense = ta.Dense(3, init=init)
    with pytest.raises(AttributeError, match="Initializer is immutable"):
        init.scale = -7.0
    assert dense in {dense} and init.scale == 0.3


def test_trainer_config_is_a_copy():
    # config()["clip"] was the Plan's own dict: editing it to build a variant changed how the
    # numpy executor clipped (and pickling failed after a NaN went in).
    t = ta.Trainer(ta.MLP([3, 4, 2]), clip=ta.ClipNorm(1e-3), executor="numpy")
    cfg = t.config()
    cfg["clip"]["max_norm"] = 1e6
    assert t.config()["clip"]["max_norm"] == 1e-3 and t.plan.clip["max_norm"] == 1e-3


def test_schedule_hash_agrees_with_equality_for_signed_zero():
    a, b = ta.schedules.Constant(-0.0), ta.schedules.Constant(0.0)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1


@pytest.mark.parametrize("make, exc, match", [
    (lambda: ta.clipping.from_config({"max_norm": 1.0}), ValueError, r"config\['kind'\] must be one of"),
    (lambda: ta.clipping.from_config("norm"), TypeError, "a clip config must be a dict"),
    (lambda: ta.clipping.from_config({"kind": "norm", "max_norm": 1.0, "per_tensr": True}), ValueError, "per_tensr"),
    (lambda: ta.MLP([3, 2]).init_params(True), TypeError, "seed must be an integer"),
    (lambda: ta.MLP([3, 2]).init_params(-1), ValueError, "seed must be >= 0"),
    (lambda: ta.Dense(2**64), ValueError, "units must be <= 2147483647"),
    (lambda: ta.MLP([2**40, 3]), ValueError, r"sizes\[0\] must be <= 2147483647"),
    (lambda: ta.Sequential.from_config({"input_dim": 3, "layers": [], "input_dims": 4}), ValueError, "'input_dims'"),
    (lambda: ta.Trainer.from_config(dict(ta.Trainer(ta.MLP([3, 2])).config(), dropout_mod="inverted")), ValueError,
     "'dropout_mod'"),
])
def test_model_api_refusals_name_the_argument(make, exc, match):
    # KeyError 'kind'; a dict-update message; NumPy's seed messages (True acted as seed 1);
    # NumPy's "Maximum allowed dimension exceeded"; misspelt config keys dropped without a word.
    with pytest.raises(exc, match=match):
        make()
