"""NumPy reference for the clip kernels (cpp/cpu/clip.cpp)."""

__all__ = []
