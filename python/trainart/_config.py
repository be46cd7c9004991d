"""Configs (JSON-able dicts of numbers, strings, lists) as identity: the immutable objects
that are equal and hash by their config() (schedules, clip rules, initializers; layers hash by
`hashable` too)."""

__all__ = ["ByConfig", "hashable"]


def hashable(value):
    """`value` (a config: dicts, lists, numbers, strings) as nested tuples that hash alike
    whenever the values compare equal (-0.0 and 0.0, 1 and 1.0), as __eq__ compares configs."""
    if isinstance(value, dict):
        return tuple(sorted((k, hashable(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(hashable(v) for v in value)
    return value


class ByConfig:
    """Immutable, equal and hashed by ``config()``: a Trainer or a layer is built from such an
    object, so a later change to it would describe a run that nothing trains. ``__init__`` sets
    the fields with ``self._set(name=value, ...)``; assigning one raises AttributeError, whose
    message ends with ``_rebuild_hint(name)``."""

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is immutable; {self._rebuild_hint(name)}")

    def _rebuild_hint(self, name):
        return "build a new one"

    def _set(self, **fields):
        """Set fields (in ``__init__``: instances are immutable otherwise)."""
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def __eq__(self, other):
        return type(self) is type(other) and self.config() == other.config()

    def __hash__(self):  # as == compares configs: -0.0 and 0.0 alike
        return hash((type(self), hashable(self.config())))
