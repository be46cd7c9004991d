"""trainart.ops: the dropout kernels, validated, on any backend."""

__all__ = []
