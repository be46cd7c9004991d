"""Elementwise passes over large arrays in cache-sized pieces: the same numbers as one pass
over the whole array, with every temporary of a piece kept in L2."""

# Elements per piece.
PIECE = 32768


def pieces(*lists, size=PIECE):
    """Zip the array lists (None for an unused list) in pieces of `size` elements: tuples of
    views into the arrays, so in-place updates write through. The lists must have one length
    and the arrays at one position one size. Arrays of at most `size` elements, or not all
    C-contiguous, are yielded whole, as they are (0-d ones as 1-element views: NumPy turns the
    result of a ufunc on 0-d arrays into a scalar, which out= cannot take); larger ones as 1-D
    slices."""
    n_arrays = len(lists[0])
    for lst in lists:
        if lst is not None and len(lst) != n_arrays:  # zip would stop early: a silent partial pass
            raise ValueError(f"pieces: array lists of {n_arrays} and {len(lst)} arrays")
    for arrays in zip(*[lst if lst is not None else (None,) * n_arrays for lst in lists]):
        n = arrays[0].size
        if arrays[0].ndim == 0:
            yield tuple(None if a is None else a.reshape(1) for a in arrays)
            continue
        if n <= size or not all(a is None or a.flags.c_contiguous for a in arrays):
            yield arrays
            continue
        flat = [None if a is None else a.reshape(-1) for a in arrays]
        for lo in range(0, n, size):
            yield tuple(None if a is None else a[lo:lo + size] for a in flat)
