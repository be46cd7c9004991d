"""Benchmark cases for the optimizer kernels."""


def cases(quick):
    return []
