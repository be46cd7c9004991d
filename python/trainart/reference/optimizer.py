"""NumPy reference for the optimizer kernels (cpp/cpu/optimizer.cpp)."""

__all__ = []
