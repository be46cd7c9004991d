"""trainart.ops: the optimizer kernels, validated, on any backend."""

__all__ = []
