"""NumPy reference for the batchnorm kernels (cpp/cpu/batchnorm.cpp)."""

__all__ = []
