"""trainart's warnings name the user's line, however deep inside trainart they are raised."""

import copy
import pickle
import warnings

import numpy as np
import pytest

import trainart as ta


def _recorded(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return caught


def test_the_squashed_logits_warning_names_the_users_line_from_every_way_a_trainer_is_made(tmp_path):
    # A fixed stacklevel named trainer.py for a Trainer made by load, deepcopy, pickle or
    # from_config; the default once-per-location filter then showed it for the first only.
    trainer = ta.Trainer(ta.MLP([2, 4, 1], output_activation="sigmoid"), "binary_cross_entropy",
                         executor="numpy")
    trainer.save(tmp_path / "t.ckpt")
    for make in (lambda: ta.Trainer(ta.MLP([2, 4, 1], output_activation="sigmoid"), "binary_cross_entropy",
                                    executor="numpy"),
                 lambda: copy.deepcopy(trainer),
                 lambda: pickle.loads(pickle.dumps(trainer)),
                 lambda: ta.Trainer.load(tmp_path / "t.ckpt"),
                 lambda: ta.Trainer.from_config(trainer.config())):
        caught = _recorded(make)
        assert [r.filename for r in caught] == [__file__], [(r.filename, r.lineno) for r in caught]


def test_the_sklearn_convergence_warning_names_the_users_line():
    pytest.importorskip("sklearn")
    from sklearn.exceptions import ConvergenceWarning

    from trainart.sklearn import MLPClassifier

    X = np.random.default_rng(0).standard_normal((40, 3))
    y = (X[:, 0] > 0).astype(int)
    caught = _recorded(lambda: MLPClassifier(hidden_layer_sizes=(4,), max_iter=1, random_state=0).fit(X, y))
    convergence = [r for r in caught if issubclass(r.category, ConvergenceWarning)]
    assert convergence and all(r.filename == __file__ for r in convergence)


def test_frozen_standard_library_frames_are_not_the_users():
    # Python 3.11 runs runpy, importlib and os as frozen modules named "<frozen runpy>": the
    # warning of trainart code run by python -m named that frame.
    from trainart import _warn

    assert _warn._internal("<frozen runpy>") and _warn._internal(copy.__file__)
    assert not _warn._internal(__file__)
