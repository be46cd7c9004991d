"""NumPy reference for the dropout kernels (cpp/cpu/dropout.cpp)."""

__all__ = []
