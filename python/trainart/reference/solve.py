"""NumPy reference for the solve kernels (cpp/cpu/solve.cpp)."""

__all__ = []
