"""Benchmark cases for the dropout kernels."""


def cases(quick):
    return []
