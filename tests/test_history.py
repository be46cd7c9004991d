"""Tests of trainart.history.History: recording, state round trips and the learning-curve plot."""

import importlib.util
import math
import os
import sys

import numpy as np
import pytest

from trainart import checkpoint
from trainart.history import History, _ema

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def filled(epochs=6, steps=8, val=True, accuracy=True, seed=0):
    rng = np.random.default_rng(seed)
    h = History()
    for e in range(epochs):
        s = np.exp(-0.3 * e) + 0.1 * rng.random(steps)
        logs = {"loss": s.mean()}
        if val:
            logs["val_loss"] = 1.1 * s.mean()
        if accuracy:
            logs["accuracy"] = np.float32(1 - s.mean() / 2)
            if val:
                logs["val_accuracy"] = 1 - s.mean() / 1.8
        logs.update(lr=1e-3 * 0.5 ** (e // 2), grad_norm=1.0 + e, skipped=np.int64(e % 2))
        h.append(e, logs, s)
    return h


def test_append_records_numbers_and_step_losses():
    h = filled(epochs=3, steps=5)
    assert h.epoch == [0, 1, 2] and len(h) == 3
    assert list(h.history) == ["loss", "val_loss", "accuracy", "val_accuracy", "lr", "grad_norm",
                               "skipped"]
    assert all(len(v) == 3 for v in h.history.values())
    assert type(h.history["accuracy"][0]) is float and type(h.history["skipped"][1]) is int
    assert h.history["skipped"] == [0, 1, 0]
    assert len(h.step_losses) == 3 and all(s.shape == (5,) and s.dtype == np.float64
                                           for s in h.step_losses)
    assert h.history["loss"][1] == pytest.approx(h.step_losses[1].mean())


def test_lists_stay_aligned_with_epochs():
    h = History()
    h.append(0, {"loss": 1.0})
    h.append(1, {"loss": 0.5, "val_loss": 0.7}, step_losses=[0.6, 0.4])
    h.append(2, {"val_loss": 0.6})
    assert h.history["loss"][:2] == [1.0, 0.5] and math.isnan(h.history["loss"][2])
    assert math.isnan(h.history["val_loss"][0]) and h.history["val_loss"][1:] == [0.7, 0.6]
    assert [s.size for s in h.step_losses] == [0, 2, 0]


def test_step_losses_are_copied():
    s = np.array([1.0, 2.0])
    h = History()
    h.append(0, {"loss": 1.5}, s)
    s[0] = 99.0
    assert h.step_losses[0][0] == 1.0


def test_append_rejects_bad_input():
    h = History()
    with pytest.raises(TypeError, match=r"logs\['loss'\] must be a real number, got str"):
        h.append(0, {"loss": "low"})
    with pytest.raises(TypeError, match="epoch must be an integer"):
        h.append(0.5, {"loss": 1.0})
    with pytest.raises(ValueError, match="step_losses must be 1-D"):
        h.append(0, {"loss": 1.0}, np.ones((2, 2)))
    with pytest.raises(TypeError, match="logs must be a dict"):
        h.append(0, [1.0])
    assert len(h) == 0 and h.history == {}


def test_state_dict_round_trip_through_a_checkpoint(tmp_path):
    h = filled(epochs=4)
    h.append(4, {"loss": math.nan, "val_loss": 0.5})   # NaN losses survive the file
    json_part, tensors = checkpoint.split_arrays(h.state_dict(), prefix="history/")
    checkpoint.write(tmp_path / "h.ckpt", tensors, {"history": json_part})
    t, meta = checkpoint.read(tmp_path / "h.ckpt")
    back = History()
    back.load_state_dict(checkpoint.join_arrays(meta["history"], t))
    assert back.epoch == h.epoch
    assert back.history.keys() == h.history.keys()
    for k in h.history:
        np.testing.assert_array_equal(back.history[k], h.history[k])
    for a, b in zip(back.step_losses, h.step_losses):
        np.testing.assert_array_equal(a, b)
    back.append(5, {"loss": 0.1})   # keeps recording after a resume
    assert len(back.history["val_loss"]) == 6


def test_state_dict_is_a_copy():
    h = filled(epochs=2)
    state = h.state_dict()
    state["history"]["loss"].append(0.0)
    state["step_losses"][0][0] = 99.0
    assert len(h.history["loss"]) == 2 and h.step_losses[0][0] != 99.0


def test_load_state_dict_rejects_inconsistent_state():
    with pytest.raises(ValueError, match="lacks step_losses"):
        History().load_state_dict({"epoch": [], "history": {}})
    with pytest.raises(ValueError, match="inconsistent"):
        History().load_state_dict({"epoch": [0, 1], "history": {"loss": [1.0]},
                                   "step_losses": [np.ones(1), np.ones(1)]})


def test_ema_is_debiased_and_skips_nonfinite():
    np.testing.assert_allclose(_ema(np.full(5, 3.0), 0.9), 3.0)
    # m = [0.5, 0.25 + 1.5], w = [0.5, 0.75]
    np.testing.assert_allclose(_ema(np.array([1.0, 3.0]), 0.5), [1.0, 1.75 / 0.75])
    out = _ema(np.array([np.nan, 2.0, np.inf, 2.0]), 0.5)
    assert math.isnan(out[0]) and np.allclose(out[1:], 2.0)


@pytest.mark.parametrize("val, accuracy, smooth", [(True, True, 0.8), (False, False, 0.0),
                                                   (False, True, 0.5)])
def test_plot_writes_a_png(tmp_path, val, accuracy, smooth):
    pytest.importorskip("matplotlib")
    h = filled(val=val, accuracy=accuracy)
    path = tmp_path / "curves.png"
    fig = h.plot(path, smooth=smooth)
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5000
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["loss"] + (["accuracy"] if accuracy else []) + ["learning rate",
                                                                      "gradient norm"]
    loss_ax = fig.axes[0]
    assert loss_ax.get_yscale() == "log"
    labels = loss_ax.get_legend_handles_labels()[1]
    assert ("validation" in labels) == val
    assert any("EMA" in s for s in labels) == (smooth > 0)


def test_plot_without_path_returns_a_figure_to_show(tmp_path, monkeypatch):
    # It was an Agg figure outside pyplot: plt.show() showed nothing and fig.show() raised,
    # unlike SearchResult.plot() and the recipe reports' plot().
    pytest.importorskip("matplotlib")
    import matplotlib
    import matplotlib.pyplot as plt

    backend = matplotlib.get_backend()
    monkeypatch.chdir(tmp_path)
    h = History()
    h.append(0, {"loss": 1.0})                  # loss only, no steps: one panel
    fig = h.plot()
    try:
        assert [ax.get_title() for ax in fig.axes] == ["loss"]
        assert list(tmp_path.iterdir()) == []
        assert matplotlib.get_backend() == backend   # no global backend switch
        assert fig.number in plt.get_fignums()
    finally:
        plt.close(fig)


def test_plot_to_a_path_leaves_no_pyplot_figure(tmp_path):
    pytest.importorskip("matplotlib")
    h = History()
    h.append(0, {"loss": 1.0})
    before = _pyplot_figures() if "matplotlib.pyplot" in sys.modules else []  # other tests' figures
    h.plot(tmp_path / "curves.png")
    assert "matplotlib.pyplot" not in sys.modules or _pyplot_figures() == before


def _pyplot_figures():
    import matplotlib.pyplot as plt

    return plt.get_fignums()


def test_plot_with_nonpositive_and_nan_losses(tmp_path):
    pytest.importorskip("matplotlib")
    h = History()
    h.append(0, {"loss": 0.0, "val_loss": math.nan, "lr": 0.1}, [0.0, -1.0, math.nan])
    h.append(1, {"loss": 0.0, "val_loss": math.nan, "lr": 0.1}, [0.0, 0.0])
    fig = h.plot(tmp_path / "zero.png", smooth=0.5)
    assert fig.axes[0].get_yscale() == "linear"   # nothing positive to put on a log axis
    assert (tmp_path / "zero.png").read_bytes().startswith(PNG_MAGIC)


def test_plot_errors(monkeypatch):
    with pytest.raises(ValueError, match="empty"):
        History().plot()
    h = filled(epochs=1)
    with pytest.raises(ValueError, match="smooth must be < 1.0, got 1.0"):
        h.plot(smooth=1.0)
    with pytest.raises(ValueError, match="smooth must be >= 0.0"):
        h.plot(smooth=-0.1)
    with pytest.raises(TypeError, match="path must be"):
        h.plot(path=3)
    with monkeypatch.context() as m:  # matplotlib not installed
        for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
            m.setitem(sys.modules, name, None)
        with pytest.raises(ImportError, match=r"pip install trainart\[plot\]"):
            h.plot()
    # Installed but broken (a part of it fails to import): the real error, not "install it".
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    if importlib.util.find_spec("matplotlib") is not None:
        with pytest.raises(ImportError, match="matplotlib.figure") as caught:
            h.plot()
        assert "pip install" not in str(caught.value)


def test_plot_path_without_extension_gets_png_appended(tmp_path):
    """As documented: no extension -> ".png" appended (matplotlib's rule), a PNG written."""
    pytest.importorskip("matplotlib")
    filled(epochs=2).plot(tmp_path / "curves")
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]
    assert (tmp_path / "curves.png").read_bytes().startswith(PNG_MAGIC)
    assert "appended" in History.plot.__doc__


@pytest.mark.parametrize("first_epoch", [0, 4])
def test_single_epoch_plot_has_whole_epoch_ticks(first_epoch):
    """One recorded epoch (with or without step losses) still gets integer epoch ticks on every
    panel; MaxNLocator used to fall back to ticks like 0.945, 0.96, ... ."""
    pytest.importorskip("matplotlib")
    for steps in (np.linspace(2.0, 1.0, 10), None):
        h = History()
        h.append(first_epoch, {"loss": 1.0, "accuracy": 0.5, "lr": 1e-3, "grad_norm": 1.0}, steps)
        fig = h.plot()
        for ax in fig.axes:
            lo, hi = ax.get_xlim()
            ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
            assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), (ax.get_title(), ticks)
            assert lo <= first_epoch and hi >= first_epoch + 1


def test_plot_path_is_the_file_matplotlib_writes(tmp_path):
    pytest.importorskip("matplotlib")
    from trainart.history import History, plot_path

    history = History()
    history.append(0, {"loss": 1.0})
    history.append(1, {"loss": 0.5})
    for name in ("bare", "dot.", "upper.PNG", "v1.2/bare"):
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        history.plot(path)
        assert os.path.isfile(plot_path(path)), name


@pytest.mark.parametrize("path", ["", "a_folder"])
def test_plot_path_refuses_a_folder_or_nothing(tmp_path, path):
    from trainart.history import plot_path

    target = tmp_path / path if path else ""
    if path:
        target.mkdir()
    with pytest.raises(ValueError, match="path must name a file"):  # matplotlib wrote ".png.png" there
        plot_path(target)
    with pytest.raises(ValueError, match="path must name a file"):
        plot_path(str(tmp_path) + os.sep)


def test_params_as_keras_gives_them():
    # Code ported from Keras reads history.params["epochs"]: an AttributeError here.
    import pickle

    import trainart as ta

    X = np.random.default_rng(0).normal(size=(10, 3))
    t = ta.Trainer(ta.MLP([3, 4, 2]), executor="numpy", seed=0)
    history = t.fit(X, np.arange(10) % 2, epochs=2, batch_size=4, verbose=0)
    assert history.params == {"verbose": 0, "epochs": 2, "steps": 3}
    old = History()
    del old.__dict__["params"]   # as pickled before params existed
    assert pickle.loads(pickle.dumps(old)).params == {}


@pytest.mark.parametrize("state, exc, match", [
    ({"epoch": [1.7], "history": {}, "step_losses": [[]]}, TypeError, r"state\['epoch'\]\[0\] must be an integer"),
    ({"epoch": ["a"], "history": {}, "step_losses": [[]]}, TypeError, r"state\['epoch'\]\[0\] must be an integer"),
    ({"epoch": [-2], "history": {}, "step_losses": [[]]}, ValueError, r"state\['epoch'\]\[0\] must be >= 0"),
    ({"epoch": [0], "history": {"loss": 1.0}, "step_losses": [[]]}, TypeError, r"\['history'\]\['loss'\] must be a list"),
    ({"epoch": 0, "history": {}, "step_losses": []}, TypeError, r"state\['epoch'\] must be a list"),
])
def test_load_state_dict_names_a_bad_entry_and_changes_nothing(state, exc, match):
    # epoch 1.7 was stored as 1; "a" and a bare float gave messages naming no entry.
    h = History()
    h.append(0, {"loss": 1.0})
    with pytest.raises(exc, match=match):
        h.load_state_dict(state)
    assert h.epoch == [0] and h.history == {"loss": [1.0]}


def test_append_refuses_a_negative_epoch():
    with pytest.raises(ValueError, match="epoch must be >= 0"):
        History().append(-1, {"loss": 1.0})
