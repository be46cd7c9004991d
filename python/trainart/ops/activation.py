"""trainart.ops: the activation kernels, validated, on any backend."""

__all__ = []
