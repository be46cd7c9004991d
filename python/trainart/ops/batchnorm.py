"""trainart.ops: the batchnorm kernels, validated, on any backend."""

__all__ = []
