"""L-BFGS with torch.optim.LBFGS's algorithm and arguments: the two-loop recursion, the first
step scaled by min(1, 1/|g|_1) lr, the same stopping tests, and the strong Wolfe line search
with cubic interpolation (torch's _strong_wolfe), on a flat float64 parameter vector."""

import dataclasses
import math

import numpy as np

from .._validate import choice, integer, real
from ..optim.base import register
from .base import SecondOrderOptimizer

__all__ = ["LBFGS", "cubic_interpolate", "strong_wolfe"]


def _divide(a, b):
    """a / b with IEEE semantics (+-inf, or NaN for 0/0), as torch's tensor arithmetic gives:
    a loss that is linear along the search direction makes the cubic's denominators zero."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(a) / np.float64(b))


def cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """The minimizer of the cubic through (x1, f1, g1), (x2, f2, g2), clamped to bounds
    (default [min(x1, x2), max(x1, x2)]); the bounds' midpoint when the cubic has none. A
    degenerate cubic (a straight line) extrapolates to the bound it falls towards, as torch."""
    lo, hi = bounds if bounds is not None else ((x1, x2) if x1 <= x2 else (x2, x1))
    d1 = g1 + g2 - 3.0 * _divide(f1 - f2, x1 - x2)
    d2_square = d1 * d1 - g1 * g2
    if d2_square >= 0:
        d2 = math.sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * _divide(g2 + d2 - d1, g2 - g1 + 2.0 * d2)
        else:
            min_pos = x1 - (x1 - x2) * _divide(g1 + d2 - d1, g1 - g2 + 2.0 * d2)
        if not math.isnan(min_pos):
            return min(max(min_pos, lo), hi)
    return (lo + hi) / 2.0


def strong_wolfe(obj_func, x, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    """A step t along d satisfying the strong Wolfe conditions f(x + t d) <= f + c1 t gtd and
    |g(x + t d) . d| <= -c2 gtd: bracketing by cubic extrapolation, then zoom by cubic
    interpolation (torch.optim.lbfgs._strong_wolfe, step for step).

    obj_func(x, t, d) -> (f, g) at x + t d. Returns (f_new, g_new, t, evaluations).
    """
    d_norm = float(np.abs(d).max())
    g = g.copy()
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = 1
    gtd_new = float(g_new @ d)
    t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        # Extrapolate within [t + 0.01 (t - t_prev), 10 t].
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new.copy(), gtd_new
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = float(g_new @ d)
        ls_iter += 1
    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0.0, t], [f, f_new], [g, g_new]

    # Zoom: shrink the bracket until the strong Wolfe conditions hold.
    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0],
                              bracket[1], bracket_f[1], bracket_gtd[1])
        # A point too close to the bracket's ends makes little progress: move it inwards.
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                t = max(bracket) - eps if abs(t - max(bracket)) < abs(t - min(bracket)) else min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = float(g_new @ d)
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new.copy(), gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos], bracket_gtd[high_pos] = bracket_g[low_pos], bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new.copy(), gtd_new
    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals


@register
@dataclasses.dataclass(frozen=True)
class LBFGS(SecondOrderOptimizer):
    """Limited-memory BFGS, torch.optim.LBFGS's algorithm and arguments.

    One step (one batch) runs up to max_iter iterations: the direction d = -H_k g from the
    two-loop recursion over the last history_size pairs (s = t d, y = g_new - g_old, kept
    when y.s > 1e-10) with H_0 = (y.s / y.y) I; the step length t = min(1, 1/|g|_1) lr at the
    very first iteration and lr after; with line_search_fn="strong_wolfe", t from the strong
    Wolfe line search (c1 = 1e-4, c2 = 0.9; as torch's max_ls, its iterations are capped at
    the evaluations left in max_eval, and it always evaluates its first trial point, so a step
    can end one evaluation past max_eval). It stops when max |g| <= tolerance_grad, g.d >
    -tolerance_change, max |t d| <= tolerance_change, |f - f_prev| < tolerance_change, or
    after max_eval evaluations. The history carries over between steps, as torch's state does.

    max_eval=None (default) means max_iter * 5 // 4, as torch's; it stays None in the config
    and is resolved at each step, so dataclasses.replace(opt, max_iter=100) allows 125
    evaluations, as LBFGS(max_iter=100) does.

    The logs' "func_evals" counts the objective evaluations a step made, the first one
    included (torch's state["func_evals"] counts it too): 1 for a step that stops at the
    tolerance_grad test before moving.

    Note: torch's history_size default is 100; here it is 10, to bound the memory at
    2 * history_size copies of the parameters for large networks.
    """

    lr: float = 1.0
    max_iter: int = 20
    max_eval: int = None
    tolerance_grad: float = 1e-7
    tolerance_change: float = 1e-9
    history_size: int = 10
    line_search_fn: str = None
    name = "lbfgs"

    def __post_init__(self):
        self._set(lr=real(self.lr, "lr", low=0.0, low_open=True),
                  max_iter=integer(self.max_iter, "max_iter", low=1),
                  max_eval=None if self.max_eval is None else integer(self.max_eval, "max_eval", low=1),
                  tolerance_grad=real(self.tolerance_grad, "tolerance_grad", low=0.0),
                  tolerance_change=real(self.tolerance_change, "tolerance_change", low=0.0),
                  history_size=integer(self.history_size, "history_size", low=1))
        if self.line_search_fn is not None:
            choice(self.line_search_fn, "line_search_fn", ("strong_wolfe",))

    log_keys = ("func_evals",)

    def init(self, params=None):
        return {"step": 0, "func_evals": 0, "n_iter": 0}

    def check_state(self, state, n_params):
        super().check_state(state, n_params)
        pairs = [len(state.get(k, [])) for k in ("old_dirs", "old_stps", "ro")]
        if len(set(pairs)) != 1 or pairs[0] > self.history_size:
            raise ValueError(f"LBFGS state has {pairs} entries in old_dirs, old_stps and ro; they must "
                             f"be equal and at most history_size={self.history_size}")

    def run_step(self, objective, theta, state, lr):
        """torch.optim.LBFGS.step with the closure objective.value_and_grad. `state` changes
        only when the step completes: a step that meets a non-finite value (skipped or raised)
        leaves the history and counters as they were. The logs' func_evals counts the
        evaluations made, also by a step that meets a non-finite value."""
        max_eval = self.max_iter * 5 // 4 if self.max_eval is None else self.max_eval
        x = theta.copy()
        done, state = state, {k: list(v) if isinstance(v, list) else v for k, v in state.items()}
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        loss, flat_grad = objective.value_and_grad(x)
        logs = {"grad_norm": float(np.linalg.norm(flat_grad))}
        losses = []
        if not (np.isfinite(loss) and np.isfinite(flat_grad).all()):
            return theta, [loss], dict(logs, nonfinite=True, func_evals=1)
        current_evals = 1
        state["func_evals"] += 1
        state["step"] = state.get("step", 0) + 1
        if np.abs(flat_grad).max() <= self.tolerance_grad:
            done.update(state)
            return x, [loss], dict(logs, func_evals=current_evals, iterations=0)

        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = state.get("old_dirs", []), state.get("old_stps", []), state.get("ro", [])
        H_diag = state.get("H_diag", 1.0)
        prev_flat_grad, prev_loss = state.get("prev_flat_grad"), state.get("prev_loss")
        n_iter = 0
        while n_iter < self.max_iter:
            n_iter += 1
            state["n_iter"] += 1
            losses.append(loss)
            if state["n_iter"] == 1:
                d = -flat_grad
                old_dirs, old_stps, ro = [], [], []
                H_diag = 1.0
            else:
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = float(y @ s)
                if ys > 1e-10:
                    if len(old_dirs) == self.history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    H_diag = ys / float(y @ y)
                al = [0.0] * len(old_dirs)
                q = -flat_grad
                for i in range(len(old_dirs) - 1, -1, -1):
                    al[i] = float(old_stps[i] @ q) * ro[i]
                    q -= al[i] * old_dirs[i]
                r = q * H_diag
                for i in range(len(old_dirs)):
                    be_i = float(old_dirs[i] @ r) * ro[i]
                    r += (al[i] - be_i) * old_stps[i]
                d = r
            prev_flat_grad = flat_grad.copy()
            prev_loss = loss
            t = min(1.0, 1.0 / float(np.abs(flat_grad).sum())) * lr if state["n_iter"] == 1 else lr
            gtd = float(flat_grad @ d)
            if gtd > -self.tolerance_change:
                break
            ls_func_evals = 0
            if self.line_search_fn is not None:
                def obj_func(x0, step, direction):
                    return objective.value_and_grad(x0 + step * direction)

                # The search gets the evaluations left in max_eval as its iteration cap (torch's
                # max_ls): 0 when none are left, and it still evaluates its first trial point.
                loss, flat_grad, t, ls_func_evals = strong_wolfe(obj_func, x, t, d, loss, flat_grad, gtd,
                                                                 max_ls=max_eval - current_evals)
                x = x + t * d
                opt_cond = np.abs(flat_grad).max() <= self.tolerance_grad
            else:
                x = x + t * d
                opt_cond = False
                if n_iter != self.max_iter:
                    loss, flat_grad = objective.value_and_grad(x)
                    opt_cond = np.abs(flat_grad).max() <= self.tolerance_grad
                    ls_func_evals = 1
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals
            if not (np.isfinite(loss) and np.isfinite(flat_grad).all()):
                return theta, losses, dict(logs, nonfinite=True, func_evals=current_evals)
            if n_iter == self.max_iter or current_evals >= max_eval or opt_cond:
                break
            if np.abs(d * t).max() <= self.tolerance_change or abs(loss - prev_loss) < self.tolerance_change:
                break
        if not objective.holds(x):  # the unevaluated last iterate left the dtype's range
            return theta, losses, dict(logs, nonfinite=True, func_evals=current_evals)
        done.update(state, d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=H_diag,
                    prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
        return x, losses, dict(logs, func_evals=current_evals, iterations=n_iter)
