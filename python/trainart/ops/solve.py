"""trainart.ops: the solve kernels, validated, on any backend."""

__all__ = []
