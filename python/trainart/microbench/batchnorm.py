"""Benchmark cases for the batchnorm kernels."""


def cases(quick):
    return []
