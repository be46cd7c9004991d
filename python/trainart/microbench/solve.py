"""Benchmark cases for the solve kernels."""


def cases(quick):
    return []
