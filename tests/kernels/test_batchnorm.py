"""Batch-normalization kernels: native vs the NumPy reference, torch's running-statistics
convention in closed form, a float64 gradient check, invariants, thread-count identity, and
bad input to every binding and ops function."""

import numpy as np
import pytest

import trainart
from trainart import _native, ops
from tests.helpers import noncontiguous, tol

DTYPES = (np.float32, np.float64)
SHAPES = [(n, f) for n in (2, 7, 1025) for f in (1, 7, 33)]


def _inputs(rng, n, f, dtype):
    x = (rng.standard_normal((n, f)) * 3 + rng.standard_normal(f)).astype(dtype)
    gamma = rng.uniform(0.5, 2.0, f).astype(dtype)
    beta = rng.standard_normal(f).astype(dtype)
    rm = rng.standard_normal(f).astype(dtype)
    rv = rng.uniform(0.5, 2.0, f).astype(dtype)
    return x, gamma, beta, rm, rv


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,f", SHAPES)
def test_forward_train_matches_reference(native, rng, n, f, dtype):
    x, gamma, beta, rm, rv = _inputs(rng, n, f, dtype)
    rm_ref, rv_ref = rm.copy(), rv.copy()
    got = ops.batchnorm_forward(x, gamma, beta, rm, rv, momentum=0.3, eps=1e-3, backend=native)
    want = ops.batchnorm_forward(x, gamma, beta, rm_ref, rv_ref, momentum=0.3, eps=1e-3, backend="numpy")
    for g, w in zip(got, want):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, w, **tol(dtype))
    np.testing.assert_allclose(rm, rm_ref, **tol(dtype))
    np.testing.assert_allclose(rv, rv_ref, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,f", SHAPES)
def test_forward_infer_and_backward_match_reference(native, rng, n, f, dtype):
    x, gamma, beta, rm, rv = _inputs(rng, n, f, dtype)
    got = ops.batchnorm_forward(x, gamma, beta, rm, rv, training=False, backend=native)
    want = ops.batchnorm_forward(x, gamma, beta, rm, rv, training=False, backend="numpy")
    np.testing.assert_allclose(got, want, **tol(dtype))
    _, mean, invstd = ops.batchnorm_forward(x, gamma, beta, rm.copy(), rv.copy(), backend="numpy")
    dy = rng.standard_normal((n, f)).astype(dtype)
    got = ops.batchnorm_backward(dy, x, gamma, mean, invstd, backend=native)
    want = ops.batchnorm_backward(dy, x, gamma, mean, invstd, backend="numpy")
    for g, w in zip(got, want):
        assert g.dtype == dtype
        # dx = scale (n dy - dbeta - xhat dgamma) cancels to ~0 for n = 2; absolute slack
        # scaled by the terms' size (n |dy| ~ n) keeps the bound meaningful.
        np.testing.assert_allclose(g, w, rtol=tol(dtype)["rtol"], atol=tol(dtype)["atol"] * 10 * n)


@pytest.mark.parametrize("dtype", DTYPES)
def test_noncontiguous_inputs_and_running_stats(backend, rng, dtype):
    x, gamma, beta, rm, rv = _inputs(rng, 33, 7, dtype)
    rm_c, rv_c = rm.copy(), rv.copy()
    want = ops.batchnorm_forward(x, gamma, beta, rm_c, rv_c, backend="numpy")
    rm_nc, rv_nc = noncontiguous(rm), noncontiguous(rv)
    got = ops.batchnorm_forward(noncontiguous(x), noncontiguous(gamma), noncontiguous(beta),
                                rm_nc, rv_nc, backend=backend)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, **tol(dtype))
    # The strided running statistics were updated in place through their views.
    np.testing.assert_allclose(rm_nc, rm_c, **tol(dtype))
    np.testing.assert_allclose(rv_nc, rv_c, **tol(dtype))
    dy = rng.standard_normal(x.shape).astype(dtype)
    got = ops.batchnorm_backward(noncontiguous(dy), noncontiguous(x), noncontiguous(gamma),
                                 noncontiguous(want[1]), noncontiguous(want[2]), backend=backend)
    for g, w in zip(got, ops.batchnorm_backward(dy, x, gamma, want[1], want[2], backend="numpy")):
        np.testing.assert_allclose(g, w, **tol(dtype))


def test_running_stats_closed_form(backend, rng):
    # torch.nn.BatchNorm1d: running = (1 - m) running + m stat, with the unbiased variance.
    n, f, m = 9, 4, 0.25
    x, gamma, beta, rm, rv = _inputs(rng, n, f, np.float64)
    rm0, rv0 = rm.copy(), rv.copy()
    y, mean, invstd = ops.batchnorm_forward(x, gamma, beta, rm, rv, momentum=m, eps=1e-5, backend=backend)
    mu = x.mean(axis=0)
    var = ((x - mu) ** 2).sum(axis=0) / n
    np.testing.assert_allclose(mean, mu, rtol=1e-13)
    np.testing.assert_allclose(invstd, 1 / np.sqrt(var + 1e-5), rtol=1e-13)
    np.testing.assert_allclose(rm, (1 - m) * rm0 + m * mu, rtol=1e-13)
    np.testing.assert_allclose(rv, (1 - m) * rv0 + m * var * n / (n - 1), rtol=1e-13)
    np.testing.assert_allclose(y, gamma * (x - mu) / np.sqrt(var + 1e-5) + beta, rtol=1e-12, atol=1e-12)
    # momentum 0 leaves the running statistics alone; momentum 1 replaces them.
    rm1, rv1 = rm.copy(), rv.copy()
    ops.batchnorm_forward(x, gamma, beta, rm1, rv1, momentum=0.0, backend=backend)
    np.testing.assert_array_equal(rm1, rm)
    np.testing.assert_array_equal(rv1, rv)
    ops.batchnorm_forward(x, gamma, beta, rm1, rv1, momentum=1.0, backend=backend)
    np.testing.assert_allclose(rv1, var * n / (n - 1), rtol=1e-13)


@pytest.mark.parametrize("dtype", DTYPES)
def test_training_output_is_normalized(backend, rng, dtype):
    x, gamma, beta, rm, rv = _inputs(rng, 1025, 33, dtype)
    y = ops.batchnorm_forward(x, gamma, beta, rm, rv, eps=1e-8, backend=backend)[0].astype(np.float64)
    # Per feature: mean beta, (biased) std gamma up to eps's shrinkage and rounding.
    slack = 1e-9 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(y.mean(axis=0), beta, atol=slack * 10)
    np.testing.assert_allclose(y.std(axis=0), gamma, rtol=slack * 10)


def test_inference_uses_running_stats(backend, rng):
    x, gamma, beta, rm, rv = _inputs(rng, 7, 5, np.float64)
    y = ops.batchnorm_forward(x, gamma, beta, rm, rv, training=False, eps=1e-3, backend=backend)
    np.testing.assert_allclose(y, gamma * (x - rm) / np.sqrt(rv + 1e-3) + beta, rtol=1e-13)


def test_backward_gradient_check(backend, rng):
    # Scalar loss L = sum(y * r); float64 central differences (DESIGN §7).
    n, f, h = 6, 3, 1e-6
    x, gamma, beta, rm, rv = _inputs(rng, n, f, np.float64)
    r = rng.standard_normal((n, f))

    def loss(x_, g_, b_):
        y = ops.batchnorm_forward(x_, g_, b_, rm.copy(), rv.copy(), backend="numpy")[0]
        return float((y * r).sum())

    _, mean, invstd = ops.batchnorm_forward(x, gamma, beta, rm.copy(), rv.copy(), backend=backend)
    dx, dgamma, dbeta = ops.batchnorm_backward(r, x, gamma, mean, invstd, backend=backend)
    for arr, grad, idx_list in ((x, dx, np.ndindex(n, f)), (gamma, dgamma, np.ndindex(f)),
                                (beta, dbeta, np.ndindex(f))):
        for idx in idx_list:
            plus, minus = arr.copy(), arr.copy()
            plus[idx] += h
            minus[idx] -= h
            args_p = [plus if a is arr else a for a in (x, gamma, beta)]
            args_m = [minus if a is arr else a for a in (x, gamma, beta)]
            num = (loss(*args_p) - loss(*args_m)) / (2 * h)
            assert abs(num - grad[idx]) <= 1e-6 + 1e-4 * abs(num), (idx, num, grad[idx])


@pytest.mark.parametrize("dtype", DTYPES)
def test_bitwise_identical_across_thread_counts(native, rng, dtype):
    x, gamma, beta, rm, rv = _inputs(rng, 4099, 300, dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    before = trainart.get_num_threads()
    outs = []
    try:
        for threads in (1, 2):
            trainart.set_num_threads(threads)
            rm_t, rv_t = rm.copy(), rv.copy()
            y, mean, invstd = ops.batchnorm_forward(x, gamma, beta, rm_t, rv_t, backend=native)
            outs.append((y, mean, invstd, rm_t, rv_t)
                        + ops.batchnorm_backward(dy, x, gamma, mean, invstd, backend=native))
    finally:
        trainart.set_num_threads(before)
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


def test_failed_call_leaves_running_stats(backend, rng):
    x, gamma, beta, rm, rv = _inputs(rng, 1, 4, np.float64)
    rm0, rv0 = rm.copy(), rv.copy()
    with pytest.raises(ValueError, match="at least 2 rows"):
        ops.batchnorm_forward(x, gamma, beta, rm, rv, backend=backend)
    np.testing.assert_array_equal(rm, rm0)
    np.testing.assert_array_equal(rv, rv0)
    # One row is fine at inference.
    assert ops.batchnorm_forward(x, gamma, beta, rm, rv, training=False, backend=backend).shape == (1, 4)


# ---- bad input ------------------------------------------------------------------------------

def _cpu():
    cpu = _native.load("cpu")
    if cpu is None:
        pytest.skip("backend cpu not built")
    return cpu


def test_bindings_reject_bad_input(rng):
    cpu = _cpu()
    x, gamma, beta, rm, rv = _inputs(rng, 5, 3, np.float64)
    train = cpu.batchnorm_forward_train
    with pytest.raises(TypeError, match="x"):
        train(x.astype(np.int64), gamma, beta, rm, rv, 0.1, 1e-5)
    with pytest.raises(TypeError, match="gamma"):
        train(x, gamma.astype(np.float32), beta, rm, rv, 0.1, 1e-5)
    with pytest.raises(ValueError, match="x must have shape"):
        train(x[0], gamma, beta, rm, rv, 0.1, 1e-5)
    with pytest.raises(ValueError, match="beta must have shape"):
        train(x, gamma, beta[:2], rm, rv, 0.1, 1e-5)
    with pytest.raises(ValueError, match="x must be C-contiguous"):
        train(np.asfortranarray(x), gamma, beta, rm, rv, 0.1, 1e-5)
    with pytest.raises(ValueError, match="x must not be empty"):
        train(np.zeros((0, 3)), gamma, beta, rm, rv, 0.1, 1e-5)
    with pytest.raises(ValueError, match="at least 2 rows"):
        train(x[:1], gamma, beta, rm, rv, 0.1, 1e-5)
    ro = rm.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="running_mean must be writeable"):
        train(x, gamma, beta, ro, rv, 0.1, 1e-5)
    with pytest.raises(ValueError, match="momentum"):
        train(x, gamma, beta, rm, rv, 1.5, 1e-5)
    with pytest.raises(ValueError, match="momentum"):
        train(x, gamma, beta, rm, rv, float("nan"), 1e-5)
    with pytest.raises(ValueError, match="eps"):
        train(x, gamma, beta, rm, rv, 0.1, 0.0)
    infer = cpu.batchnorm_forward_infer
    with pytest.raises(ValueError, match="running_var"):
        infer(x, gamma, beta, rm, -rv, 1e-5)
    with pytest.raises(ValueError, match="eps"):
        infer(x, gamma, beta, rm, rv, float("inf"))
    with pytest.raises(ValueError, match="running_mean must have shape"):
        infer(x, gamma, beta, rm[:1], rv, 1e-5)
    back = cpu.batchnorm_backward
    with pytest.raises(ValueError, match="dy must have shape"):
        back(x[:2], x, gamma, rm, rv)
    with pytest.raises(TypeError, match="dy"):
        back(x.astype(np.float32), x, gamma, rm, rv)
    with pytest.raises(ValueError, match="invstd must have shape"):
        back(x, x, gamma, rm, rv[:2])
    with pytest.raises(ValueError, match="mean must be C-contiguous"):
        back(x, x, gamma, noncontiguous(rm), rv)


def test_ops_reject_bad_input(backend, rng):
    x, gamma, beta, rm, rv = _inputs(rng, 5, 3, np.float64)
    fwd = ops.batchnorm_forward

    def call(**kw):
        args = dict(x=x, gamma=gamma, beta=beta, running_mean=rm, running_var=rv)
        opts = {k: kw.pop(k) for k in list(kw) if k in ("training", "momentum", "eps")}
        args.update(kw)
        return fwd(*args.values(), backend=backend, **opts)

    bad_x = x.copy()
    bad_x[1, 1] = np.nan
    with pytest.raises(ValueError, match="x contains NaN"):
        call(x=bad_x)
    with pytest.raises(ValueError, match="x must be"):
        call(x=x[0])
    with pytest.raises(ValueError, match="x must not be empty"):
        call(x=np.zeros((0, 3)))
    with pytest.raises(TypeError, match="x must be"):
        call(x=x.astype(complex))
    with pytest.raises(TypeError, match="x must be"):
        call(x=np.array([["a", "b", "c"]] * 2))
    with pytest.raises(TypeError, match="gamma must have dtype"):
        call(gamma=gamma.astype(np.float32))
    with pytest.raises(ValueError, match="beta must have shape"):
        call(beta=beta[:2])
    with pytest.raises(TypeError, match="running_mean must be a numpy array"):
        call(running_mean=list(rm))
    with pytest.raises(TypeError, match="running_var must have the dtype"):
        call(running_var=rv.astype(np.float32))
    with pytest.raises(ValueError, match="running_var must be >= 0"):
        call(running_var=-rv)
    with pytest.raises(ValueError, match="running_mean contains NaN"):
        call(running_mean=np.full(3, np.nan))
    ro = rm.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="running_mean must be writeable"):
        call(running_mean=ro)
    with pytest.raises(ValueError, match="momentum"):
        call(momentum=-0.1)
    with pytest.raises(ValueError, match="eps"):
        call(eps=0.0)
    with pytest.raises(TypeError, match="training"):
        call(training="yes")
    with pytest.raises(ValueError, match="backend"):
        fwd(x, gamma, beta, rm, rv, backend="gpu")
    back = ops.batchnorm_backward
    with pytest.raises(ValueError, match="dy must have shape"):
        back(x[:2], x, gamma, rm, rv, backend=backend)
    with pytest.raises(ValueError, match="dy contains NaN"):
        back(bad_x, x, gamma, rm, rv, backend=backend)
    with pytest.raises(TypeError, match="invstd must have dtype"):
        back(x, x, gamma, rm, rv.astype(np.float32), backend=backend)
    with pytest.raises(ValueError, match="mean must have shape"):
        back(x, x, gamma, rm[:1], rv, backend=backend)


def test_inference_accepts_read_only_running_statistics(backend, rng):
    """Inference only reads the running statistics, so read-only arrays are fine there (and are
    not written); training still needs them writeable."""
    x, gamma, beta, rm, rv = _inputs(rng, 6, 4, np.float64)
    expected = ops.batchnorm_forward(x, gamma, beta, rm.copy(), rv.copy(), training=False, backend=backend)
    ro_mean, ro_var = rm.copy(), rv.copy()
    ro_mean.flags.writeable = False
    ro_var.flags.writeable = False
    y = ops.batchnorm_forward(x, gamma, beta, ro_mean, ro_var, training=False, backend=backend)
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(ro_mean, rm)
    np.testing.assert_array_equal(ro_var, rv)
    with pytest.raises(ValueError, match="running_mean must be writeable in training"):
        ops.batchnorm_forward(x, gamma, beta, ro_mean, rv.copy(), training=True, backend=backend)


def test_training_refuses_running_statistics_that_share_memory(backend, rng):
    """The running statistics are written in place: a broadcast view (every feature's update on
    one float) and two overlapping views (the backends disagreed on the shared element) are
    refused, as the optimizer ops refuse them, before anything is written."""
    from numpy.lib.stride_tricks import as_strided
    x, gamma, beta, rm, rv = _inputs(rng, 6, 3, np.float32)
    bcast = as_strided(np.zeros(1, np.float32), shape=(3,), strides=(0,))
    with pytest.raises(ValueError, match="^running_mean has elements that share memory"):
        ops.batchnorm_forward(x, gamma, beta, bcast, rv, training=True, backend=backend)
    buf = np.ones(6, np.float32)
    with pytest.raises(ValueError, match="^running_var and running_mean share memory"):
        ops.batchnorm_forward(x, gamma, beta, buf[:3], buf[2:5], training=True, backend=backend)
    for order in ("C", "F"):  # refused whatever x's layout (a Fortran x was copied, then passed)
        xa = np.array(np.abs(x), order=order)  # read while its first row, the running variance, is written
        with pytest.raises(ValueError, match="^running_var and x share memory"):
            ops.batchnorm_forward(xa, gamma, beta, rm, xa[0], training=True, backend=backend)
    assert bcast[0] == 0 and (buf == 1).all()
    ops.batchnorm_forward(x, gamma, beta, bcast, buf[2:5], training=False, backend=backend)  # only read
    # Disjoint views of one buffer share no element: the columns of an (f, 2) array train as
    # two arrays of their own (the byte-range test refused them).
    stats = np.stack([rm, rv], axis=1)
    ops.batchnorm_forward(x, gamma, beta, stats[:, 0], stats[:, 1], training=True, backend=backend)
    rm2, rv2 = rm.copy(), rv.copy()
    ops.batchnorm_forward(x, gamma, beta, rm2, rv2, training=True, backend=backend)
    assert np.array_equal(stats[:, 0], rm2) and np.array_equal(stats[:, 1], rv2)


def test_masked_running_statistics_are_refused(backend):
    """A masked running statistic: the backends disagreed on its masked element (one read the
    hidden value, the other the filled one); refused like every masked argument."""
    x = np.arange(6.0).reshape(3, 2)
    hidden = np.ma.masked_array([0.0, 9.0], mask=[0, 1])
    with pytest.raises(TypeError, match="^running_mean is a masked array"):
        ops.batchnorm_forward(x, np.ones(2), np.zeros(2), hidden, np.ones(2), backend=backend)
