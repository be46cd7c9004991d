"""Benchmark cases for the loss kernels."""


def cases(quick):
    return []
