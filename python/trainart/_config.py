"""Configs (JSON-able dicts of numbers, strings, lists) as hash keys: what the immutable,
equal-by-config objects (layers, schedules, clip rules, initializers) hash."""

__all__ = ["hashable"]


def hashable(value):
    """`value` (a config: dicts, lists, numbers, strings) as nested tuples that hash alike
    whenever the values compare equal (-0.0 and 0.0, 1 and 1.0), as __eq__ compares configs."""
    if isinstance(value, dict):
        return tuple(sorted((k, hashable(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(hashable(v) for v in value)
    return value
