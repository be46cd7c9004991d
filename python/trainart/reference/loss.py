"""NumPy reference for the loss kernels (cpp/cpu/loss.cpp)."""

__all__ = []
