"""Block-diagonal generalized Gauss-Newton: one (fan_in+1) x (fan_in+1) curvature block per
unit of every dense layer, all blocks of a layer solved in one batched Cholesky call."""

import dataclasses
import os

import numpy as np

from .. import linalg
from .._validate import choice
from ..optim.base import register
from ..reference.activation import act_derivative
from .base import DampedOptimizer
from .hvp import output_curvature

__all__ = ["GaussNewton", "unit_curvature", "unit_blocks"]

# Bytes of the weighted-input copy one chunk of units may take while forming blocks.
_CHUNK_BYTES = 64 << 20


def _output_factor(plan, logits, y, weight):
    """F (n, k, k) with F_i F_i^T = the loss Hessian w.r.t. row i's logits (PSD for every
    loss here; the 1/n or 1/(n k) normalization and sample weights included)."""
    n, k = logits.shape
    c, p = output_curvature(plan, logits, y, weight)
    diag = np.arange(k)
    if p is None:
        F = np.zeros((n, k, k))
        F[:, diag, diag] = np.sqrt(c)
        return F
    sp = np.sqrt(p)
    # (diag(sqrt p) - p sqrt(p)^T)(...)^T = diag(p) - p p^T because sum(p) = 1.
    F = -p[:, :, None] * sp[:, None, :]
    F[:, diag, diag] += sp
    return np.sqrt(c)[:, None, None] * F


def unit_curvature(net, params, logits, caches, y, weight, step, mode="exact"):
    """Per dense op index: c (n, fan_out), the curvature of the loss's Gauss-Newton matrix at
    each row's pre-activation z_ij.

    mode "exact": c_ij = [J_i^T H_i J_i]_jj exactly, with J_i = d logits_i / d z_i and H_i the
    loss Hessian w.r.t. the logits: a factor F_i (H_i = F_i F_i^T, k columns) is propagated
    back through the layers with the activations' first derivatives only (GGN: f'' dropped),
    S <- f'(z) S, S <- W S, S <- mask S, and c_ij = sum_r S_ijr^2. Cost O(n k sum fan_in
    fan_out) for k outputs. mode "diagonal": the cheaper Becker-LeCun recursion that keeps
    only diagonals, c_z = f'(z)^2 c_a, c_x = (W^2) c_z, starting from diag(H_i); it drops the
    cross terms between units (an approximation for hidden layers, exact at the last one).
    """
    n = len(logits)
    logits = np.asarray(logits, np.float64)
    out = {}
    if mode == "exact":
        S = _output_factor(net.plan, logits, y, weight)
    else:
        F = _output_factor(net.plan, logits, y, weight)
        S = np.einsum("nkr,nkr->nk", F, F)
    for i in range(len(net.ops) - 1, net.first - 1, -1):
        op = net.ops[i]
        kind = op["op"]
        if kind in ("dense", "activation"):
            zin = caches[i][1] if kind == "dense" else caches[i][0]
            fp = act_derivative(op["code"], np.asarray(zin, np.float64), np.asarray(caches[i][-1], np.float64),
                                op["param"])
            if mode == "exact":
                S = S * fp[:, :, None]
            else:
                S = S * (fp * fp)
            if kind == "activation":
                continue
            out[i] = np.einsum("nkr,nkr->nk", S, S) if mode == "exact" else S
            if i > net.first:
                W = np.asarray(params[op["W"]], np.float64)
                if mode == "exact":
                    r = S.shape[2]
                    S = (S.transpose(0, 2, 1).reshape(n * r, -1) @ W.T).reshape(n, r, -1).transpose(0, 2, 1)
                else:
                    S = S @ (W * W).T
        else:
            mask = net.dropout(np.ones((n, S.shape[1])), op, step)
            S = S * (mask[:, :, None] if mode == "exact" else mask * mask)
    return out


def unit_blocks(h, c, l2=0.0):
    """blocks[j] = sum_i c_ij x_i x_i^T (+ 2 l2 on the W diagonal), x_i = [h_i, 1]:
    (fan_out, fan_in+1, fan_in+1) float64. Costs n fan_out (fan_in+1)^2 flops."""
    n, d = h.shape
    x = np.empty((n, d + 1))
    x[:, :d] = h
    x[:, d] = 1.0
    k = c.shape[1]
    blocks = np.empty((k, d + 1, d + 1))
    chunk = max(1, _CHUNK_BYTES // (8 * n * (d + 1)))
    for lo in range(0, k, chunk):
        cj = c[:, lo:lo + chunk].T  # (units, n)
        np.matmul(x.T[None], cj[:, :, None] * x[None], out=blocks[lo:lo + chunk])
    if l2:
        idx = np.arange(d)
        blocks[:, idx, idx] += 2.0 * l2
    return blocks


@register
@dataclasses.dataclass(frozen=True)
class GaussNewton(DampedOptimizer):
    """Block-diagonal generalized Gauss-Newton with Levenberg-Marquardt damping.

    For unit j of a dense layer with inputs x_i (a 1 appended for the bias) the curvature
    block is

        B_j = sum_i c_ij x_i x_i^T  (+ 2 l2 on the W entries' diagonal),

    where c_ij is the Gauss-Newton curvature of the batch loss at row i's pre-activation z_ij:
    the diagonal of J^T H_loss J (J = d logits / d z, H_loss the loss Hessian in the logits,
    which carries the 1/n mean and the sample weights), see unit_curvature. This B_j is
    exactly the GGN's diagonal block for unit j's (fan_in + 1) parameters; the approximation
    is dropping every block between two units and between layers. With curvature="diagonal",
    c itself comes from the cheaper diagonal recursion of Becker & LeCun (1988).

    The step for unit j is d_j = -(B_j + lambda I)^-1 [dW[:, j]; db_j], all of a layer's units
    in ONE ta.linalg.batched_cholesky_solve call of (fan_out, fan_in+1, fan_in+1) systems,
    then theta += lr d; lambda follows the LM rule on the same batch (DampedOptimizer). A
    block with NaN or inf entries (finite values and gradients, inputs near the float64
    range) makes the step non-finite: Trainer.fit raises ta.TrainingDiverged or, with
    nonfinite="skip", skips it.

    Cost per step and layer: forming the blocks n fan_out (fan_in+1)^2 flops, factoring them
    fan_out (fan_in+1)^3 / 3, plus O(n k fan_in fan_out) for c with k outputs. For 784-64-10
    on 500 rows: ~20 GFLOP; for the 784-512-512-10 mnist network the first two layers'
    512 blocks of 785^2 / 513^2 dominate (~6e11 flops per 1000 rows, ~1 min on 2 cores).
    Works on minibatches; dropout uses the training masks of each global step.

    Args:
        damping: initial lambda > 0 (default 1e-3).
        curvature: "exact" (default) or "diagonal" (see above).
        lr, increase, decrease, min_damping, max_damping, max_retries, tolerance_grad: as
            DampedOptimizer.
    """

    min_damping: float = 1e-8
    curvature: str = "exact"
    name = "gauss_newton"
    supports_dropout = True

    def __post_init__(self):
        self._check_damping()
        self._set(curvature=choice(self.curvature, "curvature", ("exact", "diagonal")))

    def check_memory(self, ops):
        """Refuse, before fit starts, a model whose curvature blocks cannot fit in this machine's
        memory: a step keeps every trainable Dense layer's fan_out (fan_in+1)^2 float64 block
        entries, plus the solve's copy of one layer's, and would otherwise fail part-way (numpy's
        MemoryError) or be killed by the system."""
        sizes = [8 * op["fan_out"] * (op["fan_in"] + 1) ** 2 for op in ops if op["op"] == "dense" and op["trainable"]]
        peak = sum(sizes) + max(sizes, default=0)
        total = physical_memory()
        if total is not None and peak > total:
            raise ValueError(f"GaussNewton's curvature blocks for this model need about {peak / 2**30:.1f} GiB "
                             f"(fan_out (fan_in+1)^2 float64 entries per trainable Dense layer), more than this "
                             f"machine's {total / 2**30:.1f} GiB: use ta.optim.LBFGS, or narrower layers")

    def run_step(self, objective, theta, state, lr):
        value, grad, (params, logits, caches) = objective.value_and_grad(theta, with_caches=True)
        logs = {"grad_norm": float(np.linalg.norm(grad))}
        if not (np.isfinite(value) and np.isfinite(grad).all()):
            return theta, [value], dict(logs, nonfinite=True)
        mask = objective.layout.mask
        if np.abs(grad[mask]).max(initial=0.0) <= self.tolerance_grad:
            return theta, [value], dict(logs, damping=state.get("damping", self.damping))
        net, layout = objective.net, objective.layout
        c = unit_curvature(net, params, logits, caches, objective.y, objective.weight, objective.step,
                           self.curvature)
        layers = []
        for i, op in enumerate(net.ops):
            if op["op"] != "dense" or not op["trainable"]:
                continue
            h = np.asarray(caches[i][0], np.float64)
            A = unit_blocks(h, c[i], op["l2"])
            if not np.isfinite(A).all():  # overflowing curvature: a non-finite step, as a NaN loss
                return theta, [value], dict(logs, nonfinite=True)
            gW = grad[layout.slice(op["W"])].reshape(op["fan_in"], op["fan_out"])
            gb = grad[layout.slice(op["b"])]
            B = np.concatenate([gW.T, gb[:, None]], axis=1)  # (units, fan_in + 1)
            layers.append((op, A, B))
        # Entries of the trainable-masked flat vector, in order: W then b of each trainable layer.

        def solve(lam):
            parts = []
            for op, A, B in layers:
                x, status = linalg.batched_cholesky_solve(A, -B, damping=lam, check=False)
                if status.any():
                    return None
                parts.append((op, x))
            d = np.zeros(layout.size)
            for op, x in parts:
                d[layout.slice(op["W"])] = x[:, :-1].T.ravel()
                d[layout.slice(op["b"])] = x[:, -1]
            return d[mask]

        new, info = self._lm(objective, theta, value, grad, state, lr, solve)
        state["step"] = state.get("step", 0) + 1
        return new, [value], dict(logs, **info)


def physical_memory():
    """Bytes of physical memory, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None
