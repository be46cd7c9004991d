"""NumPy reference for the dense kernels (cpp/cpu/dense.cpp)."""

__all__ = []
