"""Benchmark cases for the dense kernels."""


def cases(quick):
    return []
