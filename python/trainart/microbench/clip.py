"""Benchmark cases for the clip kernels."""


def cases(quick):
    return []
