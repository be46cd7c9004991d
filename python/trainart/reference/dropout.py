"""NumPy reference for the dropout kernels (cpp/cpu/dropout.cpp): Philox4x32-10 vectorized over
all counters in uint64 arithmetic, bit-identical to cpp/include/trainart/math/philox.hpp (the
specification of the mask is written there)."""

import math

import numpy as np

__all__ = ["dropout", "dropout_mask", "philox4x32_10"]

PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9
PHILOX_W1 = 0xBB67AE85
PHILOX_ROUNDS = 10
_LO = np.uint64(0xFFFFFFFF)
_32 = np.uint64(32)


def _philox_lanes(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 of counters (c0, c1, c2, c3) (uint64 arrays of 32-bit values) under key
    (k0, k1) (ints < 2**32), as math::philox4x32_10_lanes: the four output words, uint64.
    Each round: (c0, c1, c2, c3) <- (hi(M1 c2) ^ c1 ^ k0, lo(M1 c2), hi(M0 c0) ^ c3 ^ k1,
    lo(M0 c0)), the key bumped by (W0, W1) between rounds; in-place ops keep it allocation-light."""
    m0, m1 = np.uint64(PHILOX_M0), np.uint64(PHILOX_M1)
    for r in range(PHILOX_ROUNDS):
        if r > 0:
            k0 = (k0 + PHILOX_W0) & 0xFFFFFFFF
            k1 = (k1 + PHILOX_W1) & 0xFFFFFFFF
        p0 = np.multiply(c0, m0)
        p1 = np.multiply(c2, m1)
        n0 = np.right_shift(p1, _32)
        n0 ^= c1
        n0 ^= np.uint64(k0)
        n2 = np.right_shift(p0, _32)
        n2 ^= c3
        n2 ^= np.uint64(k1)
        c0, c1, c2, c3 = n0, np.bitwise_and(p1, _LO, out=p1), n2, np.bitwise_and(p0, _LO, out=p0)
    return c0, c1, c2, c3


def philox4x32_10(counters, k0, k1):
    """Kernel signature shared with _cpu.philox4x32_10: the raw generator, for known-answer
    tests. counters: uint32 (n, 4); k0, k1: ints in [0, 2**32). Returns uint32 (n, 4)."""
    c = counters.astype(np.uint64)
    out = _philox_lanes(c[:, 0], c[:, 1], c[:, 2], c[:, 3], k0, k1)
    return np.stack(out, axis=1).astype(np.uint32)


def dropout_threshold(p):
    """uint32(min(floor(p * 2**32), 2**32 - 1)) with p a double, as math::dropout_threshold."""
    return max(0, min(math.floor(float(p) * 4294967296.0), 4294967295))


def dropout_words(n, seed, layer, step):
    """The Philox word of each flat element e < n: output e & 3 at counter (e >> 2, layer, step)."""
    blocks = np.arange((n + 3) // 4, dtype=np.uint64)
    layer_c = np.full(blocks.shape, layer, np.uint64)
    step_c = np.full(blocks.shape, step, np.uint64)
    out = _philox_lanes(blocks & _LO, blocks >> _32, layer_c, step_c,
                        seed & 0xFFFFFFFF, seed >> 32)
    return np.stack(out, axis=1).astype(np.uint32).reshape(-1)[:n]


def dropout_mask(rows, cols, p, seed, layer, step):
    """Kernel signature shared with _cpu.dropout_mask: keep mask, bool (rows, cols)."""
    words = dropout_words(rows * cols, seed, layer, step)
    return (words >= np.uint32(dropout_threshold(p))).reshape(rows, cols)


def apply_mask(x, keep, scale):
    """y = keep ? x * scale : 0, scale cast to x's dtype (the C++ kernel's per-element line)."""
    return np.where(keep, x * x.dtype.type(scale), x.dtype.type(0))


def dropout(x, p, seed, layer, step, scale):
    """Kernel signature shared with _cpu.dropout: y = keep ? x * scale : 0 (scale in x's dtype).
    Backward is this call on the gradient with the same seed, layer, step and scale."""
    keep = dropout_mask(x.shape[0], x.size // x.shape[0], p, seed, layer, step).reshape(x.shape)
    return apply_mask(x, keep, scale)
