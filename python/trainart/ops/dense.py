"""trainart.ops: the dense kernels, validated, on any backend."""

__all__ = []
