"""reference.pieces: cache-sized views that write through, whole arrays where they cannot."""

import numpy as np
import pytest

from trainart.reference.pieces import PIECE, pieces


def test_pieces_cover_and_write_through():
    a = np.zeros((3, PIECE))
    b = np.ones(3 * PIECE)
    small = np.zeros(5)
    seen = 0
    for x, y in pieces([a, small], [b, np.arange(5.0)]):
        assert x.ndim == 1 and x.size <= PIECE and x.shape == y.shape
        x += y
        seen += x.size
    assert seen == a.size + small.size
    np.testing.assert_array_equal(a, 1.0)
    np.testing.assert_array_equal(small, np.arange(5.0))


def test_pieces_yield_noncontiguous_arrays_whole_and_unused_lists_as_none():
    a = np.zeros((4, 6))[:, ::2]
    out = list(pieces([a], None))
    assert len(out) == 1 and out[0][0] is a and out[0][1] is None


def test_pieces_yield_arrays_of_one_piece_as_they_are():
    a, b = np.zeros((2, 3)), np.ones((2, 3))
    (x, y), = pieces([a], [b])
    assert x is a and y is b


def test_pieces_refuse_lists_of_different_lengths():
    with pytest.raises(ValueError, match="lists of 2 and 1"):
        list(pieces([np.zeros(3), np.zeros(3)], [np.zeros(3)]))
