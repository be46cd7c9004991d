"""trainart.ops: the clip kernels, validated, on any backend."""

__all__ = []
