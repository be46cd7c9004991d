"""NumPy reference for the dropout kernels (cpp/cpu/dropout.cpp): Philox4x32-10 vectorized over
all counters, bit-identical to cpp/include/trainart/math/philox.hpp (the specification of the
mask is written there)."""

import math
import sys

import numpy as np

__all__ = ["dropout", "dropout_mask", "philox4x32_10"]

PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9
PHILOX_W1 = 0xBB67AE85
PHILOX_ROUNDS = 10
_MASK32 = 0xFFFFFFFF
# Where the low and high 32-bit halves of a uint64 sit in its uint32 view.
_LO_HALF, _HI_HALF = (0, 1) if sys.byteorder == "little" else (1, 0)


def _mulhilo(m, c):
    """(hi, lo) 32-bit words of the 64-bit product m * c: Python ints for an int c, else uint32
    arrays (strided views into the product, no shift or mask pass)."""
    if isinstance(c, int):
        p = m * c
        return p >> 32, p & _MASK32
    words = np.multiply(c, np.uint64(m), dtype=np.uint64).view(np.uint32)
    return words[_HI_HALF::2], words[_LO_HALF::2]


def _xor3(a, b, k):
    """a ^ b ^ k for ints or uint32 arrays (k an int), allocating at most one array."""
    if isinstance(a, int) and isinstance(b, int):
        return a ^ b ^ k
    out = np.bitwise_xor(a, b, dtype=np.uint32)
    out ^= np.uint32(k)
    return out


def _philox_lanes(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 of counters (c0, c1, c2, c3) under key (k0, k1) (ints < 2**32), as
    math::philox4x32_10. Each counter word is a uint32 array or, when the same for every
    counter (the layer and step words of a dropout mask), a Python int, which keeps the first
    rounds' work on the words that vary. Each round: (c0, c1, c2, c3) <- (hi(M1 c2) ^ c1 ^ k0,
    lo(M1 c2), hi(M0 c0) ^ c3 ^ k1, lo(M0 c0)), the key bumped by (W0, W1) between rounds.
    Returns the four output words (uint32 arrays, or ints where every counter agrees)."""
    for r in range(PHILOX_ROUNDS):
        if r > 0:
            k0 = (k0 + PHILOX_W0) & _MASK32
            k1 = (k1 + PHILOX_W1) & _MASK32
        hi0, lo0 = _mulhilo(PHILOX_M0, c0)
        hi1, lo1 = _mulhilo(PHILOX_M1, c2)
        c0, c1, c2, c3 = _xor3(hi1, c1, k0), lo1, _xor3(hi0, c3, k1), lo0
    return c0, c1, c2, c3


def philox4x32_10(counters, k0, k1):
    """Kernel signature shared with _cpu.philox4x32_10: the raw generator, for known-answer
    tests. counters: uint32 (n, 4); k0, k1: ints in [0, 2**32). Returns uint32 (n, 4)."""
    c = np.ascontiguousarray(counters, dtype=np.uint32)
    out = _philox_lanes(c[:, 0], c[:, 1], c[:, 2], c[:, 3], k0, k1)
    return np.stack(out, axis=1)


def dropout_threshold(p):
    """min(floor(p * 2**16), 2**16 - 1) with p a double, as math::dropout_threshold."""
    return max(0, min(math.floor(float(p) * 65536.0), 65535))


# Philox blocks per piece of a mask: 32768 keeps a round's uint64 temporaries at 256 KiB, in
# L2, while the per-call cost of the ~60 ufunc calls a piece takes stays small (8192-block
# pieces made a 256x512 mask 1.45x slower; bench/README log entry 35).
PHILOX_PIECE = 32768


def dropout_halves(n, seed, layer, step):
    """The 16-bit random number of each flat element e < n (uint16): half e & 1 (low first) of
    output (e >> 1) & 3 of Philox at counter (e >> 3, 0, layer, step), key (seed lo, seed hi).
    The four outputs of a block are laid side by side as little-endian uint32 words, so their
    uint16 view is the elements in order."""
    if n >= 8 << 32:
        raise ValueError(f"a dropout mask holds fewer than 2**35 elements, got {n}")
    n_blocks = (n + 7) // 8
    words = np.empty((n_blocks, 4), np.uint32)
    for lo in range(0, n_blocks, PHILOX_PIECE):
        hi = min(n_blocks, lo + PHILOX_PIECE)
        blocks = np.arange(lo, hi, dtype=np.uint32)
        lanes = _philox_lanes(blocks, 0, int(layer), int(step), seed & _MASK32, seed >> 32)
        for j, w in enumerate(lanes):
            words[lo:hi, j] = w
    return words.astype("<u4", copy=False).view("<u2").reshape(-1)[:n]


def dropout_mask(rows, cols, p, seed, layer, step):
    """Kernel signature shared with _cpu.dropout_mask: keep mask, bool (rows, cols)."""
    halves = dropout_halves(rows * cols, seed, layer, step)
    return (halves >= np.uint16(dropout_threshold(p))).reshape(rows, cols)


_BITS = {np.dtype(np.float32): np.uint32, np.dtype(np.float64): np.uint64}


def keep_bits(keep, dtype):
    """The mask `keep` as words of dtype's width: all ones where kept, zero where dropped."""
    bits = keep.astype(_BITS[np.dtype(dtype)])
    return np.negative(bits, out=bits)


def apply_mask(x, bits, scale):
    """y = keep ? x * scale : 0 (scale cast to x's dtype), the C++ kernel's per-element line:
    the bits of x * scale and-ed with keep_bits, so a dropped NaN or inf becomes +0 as there."""
    y = np.multiply(x, x.dtype.type(scale), out=np.empty_like(x))  # an array also for a 0-d x
    np.bitwise_and(y.view(bits.dtype), bits, out=y.view(bits.dtype))
    return y


def dropout(x, p, seed, layer, step, scale):
    """Kernel signature shared with _cpu.dropout: y = keep ? x * scale : 0 (scale in x's dtype).
    Backward is this call on the gradient with the same seed, layer, step and scale."""
    rows = x.shape[0] if x.ndim else 1  # a 0-d x is element 0
    keep = dropout_mask(rows, x.size // max(rows, 1), p, seed, layer, step).reshape(x.shape)
    return apply_mask(x, keep_bits(keep, x.dtype), scale)
