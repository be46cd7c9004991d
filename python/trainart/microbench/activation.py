"""Benchmark cases for the activation kernels."""


def cases(quick):
    return []
