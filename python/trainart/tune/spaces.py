"""Search spaces: ranges and choices for hyperparameters, with random draws, grid points and the
shrinking boxes of coarse-to-fine search. Any value in a space dict that is not a Dimension is fixed."""

import itertools
import math
import numbers

import numpy as np

from .._validate import flag

__all__ = ["Dimension", "Uniform", "LogUniform", "IntUniform", "Choice", "check_space",
           "grid", "sample", "is_dimension"]


def _finite(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    return value


class Dimension:
    """Base class of a searchable hyperparameter. Subclasses define `sample(rng)` and `points()`."""

    log = False

    def sample(self, rng):
        raise NotImplementedError

    def points(self, num=None):
        raise NotImplementedError

    def __eq__(self, other):
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def __hash__(self):
        # Equal dimensions must hash alike: Uniform(0, 1) == Uniform(0.0, 1.0), and Python
        # hashes 0 and 0.0 alike, so the attribute values (not the repr) are hashed.
        return hash((type(self).__name__, tuple(self.__dict__.values())))

    def check_point(self, value, name):
        """`value` as a grid point of this dimension; ValueError naming `name` if it is not one."""
        raise NotImplementedError


def same_value(a, b):
    """Whether two parameter values are one option: the same object, or of one type and equal
    (1 and True, 0 and 0.0 are two; NumPy arrays compare as whole arrays)."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.shape == b.shape and bool(np.array_equal(a, b))
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # an object whose == gives no truth value
        return False


class _Range(Dimension):
    """A numeric interval [low, high]; `num` or `points` give the grid of grid search."""

    integer = False

    def __init__(self, low, high, *, log=False, num=None, points=None):
        self.low = _finite(low, "low")
        self.high = _finite(high, "high")
        if not low < high:
            raise ValueError(f"{type(self).__name__} needs low < high, got low={low!r}, high={high!r}")
        self.log = flag(log, "log")
        if log and low <= 0:
            raise ValueError(f"a log-scaled range needs low > 0, got low={low!r}")
        if num is not None and (isinstance(num, bool) or not isinstance(num, numbers.Integral) or num < 1):
            raise ValueError(f"num must be an int >= 1, got {num!r}")
        if num is not None and points is not None:
            raise ValueError("give num or points, not both")
        self.num = None if num is None else int(num)
        if points is not None:
            points = list(points)
            if not points:
                raise ValueError("points must not be empty")
            for i, p in enumerate(points):
                self.check_point(p, f"points[{i}]")
        self.explicit = None if points is None else tuple(points)

    def check_point(self, value, name):
        _finite(value, name)
        if not self.low <= value <= self.high:
            raise ValueError(f"{name}={value!r} lies outside [{self.low!r}, {self.high!r}]")
        return value

    # The transform that makes the range uniform: log for log ranges, identity otherwise.
    def to_unit(self, x):
        return math.log(x) if self.log else float(x)

    def from_unit(self, u):
        return math.exp(u) if self.log else float(u)

    def spaced(self, num):
        """`num` evenly spaced values in the range's uniform coordinates: linspace(low, high,
        num), geomspace with log=True; num=1 gives the midpoint (low + high) / 2, the geometric
        midpoint sqrt(low * high) with log=True, as one point stands for the whole range."""
        if num == 1:
            return [self.from_unit(0.5 * (self.to_unit(self.low) + self.to_unit(self.high)))]
        space = np.geomspace if self.log else np.linspace
        return [float(v) for v in space(self.low, self.high, num)]

    def __repr__(self):
        extra = ", log=True" if self.log and type(self) is not LogUniform else ""
        if self.num is not None:
            extra += f", num={self.num}"
        if self.explicit is not None:
            extra += f", points={list(self.explicit)!r}"
        return f"{type(self).__name__}({self.low!r}, {self.high!r}{extra})"


class Uniform(_Range):
    """A real value drawn uniformly from [low, high] (log=True: uniformly in log space).

    Grid points: `points=[...]` or `num` evenly spaced values, linspace(low, high, num)
    (geomspace with log=True); num=1 gives the midpoint (low + high) / 2 (sqrt(low * high)
    with log=True).
    """

    def __init__(self, low, high, *, log=False, num=None, points=None):
        super().__init__(low, high, log=log, num=num, points=points)
        if not log and not math.isfinite(self.high - self.low):  # NumPy's uniform cannot draw it
            raise ValueError(f"Uniform({low!r}, {high!r}): its width high - low overflows float64; narrow "
                             "the range (a positive one may be searched in log space, log=True)")

    def sample(self, rng):
        lo, hi = self.to_unit(self.low), self.to_unit(self.high)
        return min(max(self.from_unit(rng.uniform(lo, hi)), self.low), self.high)

    def points(self, num=None):
        if self.explicit is not None:
            return list(self.explicit)
        num = self.num if self.num is not None else num
        if num is None:
            raise ValueError(f"grid search needs grid points for the continuous range {self!r}: "
                             "give num=... or points=[...] to the range, or num=... to search()")
        return self.spaced(num)

    def restricted(self, low, high):
        """The same kind of range on [low, high] (for coarse-to-fine boxes)."""
        return type(self)(low, high) if type(self) is LogUniform else Uniform(low, high, log=self.log)


class LogUniform(Uniform):
    """A positive real value whose logarithm is uniform on [ln low, ln high]:
    x = exp(U(ln low, ln high)). Grid points: geomspace(low, high, num) (num=1: the geometric
    midpoint sqrt(low * high)) or `points`."""

    def __init__(self, low, high, *, num=None, points=None):
        super().__init__(low, high, log=True, num=num, points=points)


class IntUniform(_Range):
    """An integer drawn uniformly from {low, ..., high} (both included).

    log=True draws floor(exp(U(ln low, ln(high + 1)))), so each decade gets the same share.
    Grid points: every integer of the range, or `num` (rounded, deduplicated) evenly spaced
    ones (geometric with log=True; num=1: the rounded midpoint, as for Uniform), or `points`.
    """

    integer = True

    def __init__(self, low, high, *, log=False, num=None, points=None):
        for name, v in (("low", low), ("high", high)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise TypeError(f"IntUniform {name} must be an int, got {v!r}")
            # NumPy draws from [low, high + 1) in int64
            if not -2**63 <= int(v) <= 2**63 - 2:
                raise ValueError(f"IntUniform {name} must be in [-2**63, 2**63 - 2] (the draws are int64), got {v!r}")
        super().__init__(int(low), int(high), log=log, num=num, points=points)

    def check_point(self, value, name):
        super().check_point(value, name)
        if int(value) != value:
            raise ValueError(f"{name}={value!r}: IntUniform points must be integers")
        return int(value)

    def sample(self, rng):
        if self.log:
            v = int(math.floor(math.exp(rng.uniform(math.log(self.low), math.log(self.high + 1)))))
            return min(max(v, self.low), self.high)
        return int(rng.integers(self.low, self.high + 1))

    def points(self, num=None):
        if self.explicit is not None:
            return [int(p) for p in self.explicit]
        num = self.num if self.num is not None else None
        if num is None:
            if self.high - self.low >= _MAX_GRID_INTEGERS:
                raise ValueError(f"grid search over {self!r} would take its {self.high - self.low + 1} integers: give "
                                 "num=... or points=[...] to the range (search()'s num is for continuous ranges)")
            return list(range(self.low, self.high + 1))
        return sorted({int(round(v)) for v in self.spaced(num)})

    def restricted(self, low, high):
        low, high = int(math.ceil(low)), int(math.floor(high))
        return IntUniform(low, high, log=self.log) if low < high else None


# The most integers a grid takes from an IntUniform without num or points.
_MAX_GRID_INTEGERS = 10**6


class Choice(Dimension):
    """One of a list of options, each equally likely. Grid points: all options."""

    def __init__(self, options):
        if isinstance(options, (str, bytes)) or not hasattr(options, "__iter__"):
            raise TypeError(f"Choice options must be a list, got {type(options).__name__}")
        self.options = list(options)
        if not self.options:
            raise ValueError("Choice needs at least one option")

    def sample(self, rng):
        return self.options[int(rng.integers(len(self.options)))]

    def points(self, num=None):
        return list(self.options)

    def check_point(self, value, name):
        try:
            self.index(value)
        except ValueError:
            raise ValueError(f"{name}={value!r} is not an option of {self!r}") from None
        return value

    def index(self, value):
        for i, o in enumerate(self.options):
            if same_value(o, value):
                return i
        raise ValueError(f"{value!r} is not an option of {self!r}")

    def primitive(self):
        """Whether Optuna can store the options as they are: every one None, bool, int, float or
        str, and no two equal across types (Optuna would take True for 1, 0.0 for 0); otherwise
        Optuna stores the option's index."""
        if not all(o is None or type(o) in (bool, int, float, str) for o in self.options):
            return False
        return not any(a == b and type(a) is not type(b)
                       for i, a in enumerate(self.options) for b in self.options[i + 1:])

    def __hash__(self):
        # Options may be unhashable (lists); equal Choices still get equal hashes from the count.
        try:
            return hash(("Choice", tuple(self.options)))
        except TypeError:
            return hash(("Choice", len(self.options)))

    def __repr__(self):
        return f"Choice({self.options!r})"


def is_dimension(value):
    return isinstance(value, Dimension)


def check_space(space):
    """Validate a space: a non-empty dict of str names to Dimensions or fixed values."""
    if not isinstance(space, dict):
        raise TypeError(f"space must be a dict of name -> Dimension or fixed value, got {type(space).__name__}")
    if not space:
        raise ValueError("space must not be empty: give at least one name -> Dimension or fixed value")
    for name in space:
        if not isinstance(name, str) or not name:
            raise TypeError(f"space keys must be non-empty str, got {name!r}")
    return dict(space)


def sample(space, rng):
    """One parameter dict: each Dimension drawn with `rng`, fixed values copied."""
    return {k: (v.sample(rng) if is_dimension(v) else v) for k, v in space.items()}


def grid(space, num=None, points=None):
    """Every combination of the grid points, in itertools.product order (last name fastest).

    Args:
        space: the space dict.
        num: default number of points for continuous ranges that set neither num nor points.
        points: optional dict name -> non-empty list overriding a dimension's points; each point
            must be one the dimension could take (inside a range, an option of a Choice).
    """
    if num is not None and (isinstance(num, bool) or not isinstance(num, numbers.Integral) or num < 1):
        raise ValueError(f"num must be an int >= 1, got {num!r}")
    points = _check_grid_points(space, points)
    axes = []
    for k, v in space.items():
        if k in points:
            axes.append(points[k])
        elif is_dimension(v):
            axes.append(v.points(num))
        else:
            axes.append([v])
    names = list(space)
    return [dict(zip(names, combo)) for combo in itertools.product(*axes)]


def _check_grid_points(space, points):
    """grid_points validated against the space: dict name -> list of valid points."""
    if points is None:
        return {}
    if not isinstance(points, dict):
        raise TypeError(f"grid_points must be a dict name -> list of points, got {type(points).__name__}")
    unknown = set(points) - set(space)
    if unknown:
        raise ValueError(f"grid_points names {sorted(unknown)}, which are not in the space")
    checked = {}
    for k, pts in points.items():
        dim = space[k]
        if not is_dimension(dim):
            # A fixed value has one point; searching it means making it a Choice.
            raise ValueError(f"grid_points[{k!r}]: {k!r} is fixed in the space ({dim!r}); "
                             f"make it a Choice to search it")
        if isinstance(pts, (str, bytes)) or not hasattr(pts, "__iter__"):
            raise TypeError(f"grid_points[{k!r}] must be a list of points, got {type(pts).__name__}")
        pts = list(pts)
        if not pts:
            raise ValueError(f"grid_points[{k!r}] must not be empty")
        checked[k] = [dim.check_point(p, f"grid_points[{k!r}][{i}]") for i, p in enumerate(pts)]
    return checked


def shrink_box(space, top, best, shrink, margin=0.1):
    """The coarse-to-fine box of the next round, inside `space`'s.

    For each range, in its uniform coordinates (log for log ranges): the span of the top-k
    values widened by `margin` of the current width, cut to at most `shrink` times the current
    width around the best value, and clipped to the current range. A Choice keeps the options
    the top-k trials used. Fixed values stay.
    """
    new = {}
    for k, dim in space.items():
        if isinstance(dim, _Range):
            lo, hi = dim.to_unit(dim.low), dim.to_unit(dim.high)
            width = hi - lo
            vals = [dim.to_unit(p[k]) for p in top]
            b = dim.to_unit(best[k])
            a, z = min(vals) - margin * width, max(vals) + margin * width
            cap = shrink * width
            if z - a > cap:
                a, z = b - cap / 2, b + cap / 2
            # shift, not cut, a box that pokes out of the current one, so it keeps its width
            if a < lo:
                a, z = lo, min(hi, lo + (z - a))
            if z > hi:
                a, z = max(lo, hi - (z - a)), hi
            # The range's own ends where the box reaches them (exp(log(64)) is 63.99999999999998,
            # which an IntUniform would floor to 63), and the best value inside in any case.
            new_lo = dim.low if a <= lo else dim.from_unit(a)
            new_hi = dim.high if z >= hi else dim.from_unit(z)
            new_lo, new_hi = max(min(new_lo, best[k]), dim.low), min(max(new_hi, best[k]), dim.high)
            sub = dim.restricted(new_lo, new_hi) if new_lo < new_hi else None
            new[k] = best[k] if sub is None else sub
        elif isinstance(dim, Choice):
            used = {dim.index(p[k]) for p in top}
            kept = [o for i, o in enumerate(dim.options) if i in used]
            new[k] = Choice(kept) if len(kept) > 1 else kept[0]
        else:
            new[k] = dim
    return new
