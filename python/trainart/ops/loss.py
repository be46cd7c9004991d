"""trainart.ops: the loss kernels, validated, on any backend."""

__all__ = []
