"""
trainart CPU kernels (C++, OpenBLAS). Private: use trainart.ops.
"""
from __future__ import annotations
import numpy
import numpy.typing
import typing
__all__: list[str] = ['EngineF32', 'EngineF64', 'MAX_THREADS', 'activation_backward', 'activation_forward', 'adagrad_update', 'adam_update', 'adamax_update', 'all_finite', 'batchnorm_backward', 'batchnorm_forward_infer', 'batchnorm_forward_train', 'cholesky_solve', 'clip_by_value', 'cross_entropy_labels', 'dense_backward', 'dense_forward', 'dropout', 'dropout_mask', 'gemm', 'get_blas_num_threads', 'get_num_threads', 'global_norm', 'has_openmp', 'in_forked_child', 'loss_value_and_grad', 'nadam_update', 'philox4x32_10', 'rmsprop_update', 'scale_tensors', 'set_num_threads', 'sgd_update', 'tensor_norms']
class EngineF32:
    """
    Runs whole training epochs in C++ on arrays owned by Python.
    """
    def __init__(self, spec: dict, params: list, buffers: list, trainable: list, slots: list) -> None:
        """
        Build from the spec dict (ops, loss, opt, clip, seed, ...) and the arrays it updates in place.
        """
    def evaluate(self, X: numpy.ndarray, labels: typing.Any, targets: typing.Any, weight: typing.Any) -> tuple[float, int]:
        """
        (sum over rows of the loss, correctly classified rows) in inference mode.
        """
    def forward(self, X: numpy.ndarray, mode: typing.SupportsInt | typing.SupportsIndex, step: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float32]:
        """
        Network outputs before the link (mode 1: MC dropout).
        """
    def loss_and_grad(self, X: numpy.ndarray, labels: typing.Any, targets: typing.Any, weight: typing.Any, grads: list) -> float:
        """
        Loss (regularization included) on one batch; gradients written into grads, params unchanged.
        """
    def release_workspace(self, keep_rows: typing.SupportsInt | typing.SupportsIndex) -> None:
        """
        Free the row-sized scratch that holds more than keep_rows rows, and all of hvp's; later calls grow it again. Calls only grow it (a loop of full-batch calls allocates once).
        """
    def train_epoch(self, X: numpy.ndarray, labels: typing.Any, targets: typing.Any, weight: typing.Any, perm: numpy.ndarray, lrs: numpy.ndarray, momentums: typing.Any, step0: typing.SupportsInt | typing.SupportsIndex, batch_size: typing.SupportsInt | typing.SupportsIndex, opt_step: typing.SupportsInt | typing.SupportsIndex, mu_product: typing.SupportsFloat | typing.SupportsIndex) -> dict:
        """
        One epoch over perm in minibatches; returns the epoch's statistics as a dict.
        """
    def workspace(self) -> dict:
        """
        The scratch held between calls: {'rows': rows of the activation scratch, 'gather_rows': rows of the minibatch gather buffers, 'bytes': bytes of both and of hvp's}.
        """
class EngineF64:
    """
    Runs whole training epochs in C++ on arrays owned by Python.
    """
    def __init__(self, spec: dict, params: list, buffers: list, trainable: list, slots: list) -> None:
        """
        Build from the spec dict (ops, loss, opt, clip, seed, ...) and the arrays it updates in place.
        """
    def evaluate(self, X: numpy.ndarray, labels: typing.Any, targets: typing.Any, weight: typing.Any) -> tuple[float, int]:
        """
        (sum over rows of the loss, correctly classified rows) in inference mode.
        """
    def forward(self, X: numpy.ndarray, mode: typing.SupportsInt | typing.SupportsIndex, step: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float64]:
        """
        Network outputs before the link (mode 1: MC dropout).
        """
    def hvp(self, X: numpy.ndarray, labels: typing.Any, targets: typing.Any, weight: typing.Any, V: typing.Any, out: typing.Any) -> None:
        """
        out = H V: the exact Hessian (R-operator) of the mean loss plus penalty at the engine's parameters, training mode at step 0, times one direction V (one float64 array per parameter); out likewise.
        """
    def loss_and_grad(self, X: numpy.ndarray, labels: typing.Any, targets: typing.Any, weight: typing.Any, grads: list) -> float:
        """
        Loss (regularization included) on one batch; gradients written into grads, params unchanged.
        """
    def release_workspace(self, keep_rows: typing.SupportsInt | typing.SupportsIndex) -> None:
        """
        Free the row-sized scratch that holds more than keep_rows rows, and all of hvp's; later calls grow it again. Calls only grow it (a loop of full-batch calls allocates once).
        """
    def train_epoch(self, X: numpy.ndarray, labels: typing.Any, targets: typing.Any, weight: typing.Any, perm: numpy.ndarray, lrs: numpy.ndarray, momentums: typing.Any, step0: typing.SupportsInt | typing.SupportsIndex, batch_size: typing.SupportsInt | typing.SupportsIndex, opt_step: typing.SupportsInt | typing.SupportsIndex, mu_product: typing.SupportsFloat | typing.SupportsIndex) -> dict:
        """
        One epoch over perm in minibatches; returns the epoch's statistics as a dict.
        """
    def workspace(self) -> dict:
        """
        The scratch held between calls: {'rows': rows of the activation scratch, 'gather_rows': rows of the minibatch gather buffers, 'bytes': bytes of both and of hvp's}.
        """
def _dropout_simd_level(cap: typing.SupportsInt | typing.SupportsIndex = -1) -> int:
    """
    Testing hook: the Philox code path of dropout masks (2 AVX-512, 1 AVX2, 0 portable); cap >= 0 lowers it to min(cap, what the CPU supports). Returns the level in use.
    """
def activation_backward(grad_a: numpy.ndarray, z: numpy.ndarray, a: numpy.ndarray, kind: typing.SupportsInt | typing.SupportsIndex, param: typing.SupportsFloat | typing.SupportsIndex) -> numpy.ndarray:
    """
    grad_z = grad_a * f'(z) for activation code `kind`, with f' from z and a = f(z). Returns a new array of z's shape and dtype.
    """
def activation_forward(z: numpy.ndarray, kind: typing.SupportsInt | typing.SupportsIndex, param: typing.SupportsFloat | typing.SupportsIndex) -> numpy.ndarray:
    """
    a = f(z) elementwise for activation code `kind` (trainart.reference.ACTIVATION_CODES); `param` is leaky_relu's slope or elu's alpha, ignored otherwise. Returns a new array of z's shape and dtype.
    """
def adagrad_update(params: typing.Any, grads: typing.Any, sums: typing.Any, scalars: dict) -> None:
    """
    Adagrad step (torch.optim.Adagrad); scalars['lr'] is the decayed lr of this step. `scalars` is a dict with every field of trainart::math::StepScalars (lr, grad_scale, weight_decay, param_decay, beta1, beta2, one_minus_beta1, one_minus_beta2, alpha, one_minus_alpha, eps, momentum, dampening, one_minus_dampening, step_size, bc2_sqrt, bc2, nadam_grad, nadam_avg: finite reals; nesterov, amsgrad, centered, first_step: bools), as made by trainart.reference.optimizer.step_scalars. Lists hold C-contiguous arrays of one float dtype; params and state are updated in place.
    """
def adam_update(params: typing.Any, grads: typing.Any, exp_avgs: typing.Any, exp_avg_sqs: typing.Any, max_exp_avg_sqs: typing.Any, scalars: dict) -> None:
    """
    Adam / AdamW step (torch.optim.Adam, AdamW: decoupled decay through scalars['param_decay']); max_exp_avg_sqs is ignored unless amsgrad. `scalars` is a dict with every field of trainart::math::StepScalars (lr, grad_scale, weight_decay, param_decay, beta1, beta2, one_minus_beta1, one_minus_beta2, alpha, one_minus_alpha, eps, momentum, dampening, one_minus_dampening, step_size, bc2_sqrt, bc2, nadam_grad, nadam_avg: finite reals; nesterov, amsgrad, centered, first_step: bools), as made by trainart.reference.optimizer.step_scalars. Lists hold C-contiguous arrays of one float dtype; params and state are updated in place.
    """
def adamax_update(params: typing.Any, grads: typing.Any, exp_avgs: typing.Any, exp_infs: typing.Any, scalars: dict) -> None:
    """
    Adamax step (torch.optim.Adamax). `scalars` is a dict with every field of trainart::math::StepScalars (lr, grad_scale, weight_decay, param_decay, beta1, beta2, one_minus_beta1, one_minus_beta2, alpha, one_minus_alpha, eps, momentum, dampening, one_minus_dampening, step_size, bc2_sqrt, bc2, nadam_grad, nadam_avg: finite reals; nesterov, amsgrad, centered, first_step: bools), as made by trainart.reference.optimizer.step_scalars. Lists hold C-contiguous arrays of one float dtype; params and state are updated in place.
    """
def all_finite(a: numpy.ndarray) -> bool:
    """
    Whether the C-contiguous float32/float64 array `a` (any shape, empty allowed) holds no NaN or inf.
    """
def batchnorm_backward(dy: numpy.ndarray, x: numpy.ndarray, gamma: numpy.ndarray, mean: numpy.ndarray, invstd: numpy.ndarray) -> tuple:
    """
    Training batch-norm backward: returns (dx, dgamma, dbeta) with dbeta = sum dy, dgamma = sum dy xhat, dx = gamma invstd / n (n dy - dbeta - xhat dgamma), xhat = (x - mean) invstd.
    """
def batchnorm_forward_infer(x: numpy.ndarray, gamma: numpy.ndarray, beta: numpy.ndarray, running_mean: numpy.ndarray, running_var: numpy.ndarray, eps: typing.SupportsFloat | typing.SupportsIndex) -> numpy.ndarray:
    """
    Inference batch norm of x (n, f): y = gamma (x - running_mean) / sqrt(running_var + eps) + beta.
    """
def batchnorm_forward_train(x: numpy.ndarray, gamma: numpy.ndarray, beta: numpy.ndarray, running_mean: numpy.ndarray, running_var: numpy.ndarray, momentum: typing.SupportsFloat | typing.SupportsIndex, eps: typing.SupportsFloat | typing.SupportsIndex) -> tuple:
    """
    Training batch norm of x (n, f): returns (y, mean, invstd) with batch mean, invstd = 1/sqrt(biased var + eps), y = gamma (x - mean) invstd + beta; updates running_mean and running_var in place as (1 - momentum) running + momentum stat (unbiased variance).
    """
def cholesky_solve(a: numpy.ndarray, b: numpy.ndarray, damping: typing.SupportsFloat | typing.SupportsIndex) -> tuple:
    """
    Batched Cholesky solve: x[s] = (a[s] + damping I)^-1 b[s] for a (batch, n, n) (lower triangle read), b (batch, n, k). Returns (x, status int32 (batch,)): status 0 = solved, j > 0 = leading minor of order j not positive definite (x[s] = 0 then).
    """
def clip_by_value(tensors: typing.Any, clip_value: typing.SupportsFloat | typing.SupportsIndex) -> None:
    """
    Clamp every element of every tensor to [-clip_value, clip_value] in place (NaN stays NaN).
    """
def cross_entropy_labels(logits: numpy.ndarray, labels: numpy.ndarray, weight: typing.Any) -> tuple:
    """
    (value, grad) of softmax cross-entropy for logits (n, k) and int64 labels (n,) in [0, k): the mean over rows of logsumexp(z_i) - z_i[labels_i], each times weight[i] when given; grad = d value / d logits.
    """
def dense_backward(grad_a: numpy.ndarray, x: numpy.ndarray, w: numpy.ndarray, z: numpy.ndarray, a: numpy.ndarray, kind: typing.SupportsInt | typing.SupportsIndex, param: typing.SupportsFloat | typing.SupportsIndex, need_dx: bool) -> tuple:
    """
    Dense layer backward: dz = grad_a * f'(z, a), db = sum_rows dz (fixed 64-row chunks, bitwise identical at any thread count), dw = x^T @ dz, dx = dz @ w^T. Returns (dx or None when need_dx is False, dw, db).
    """
def dense_forward(x: numpy.ndarray, w: numpy.ndarray, b: numpy.ndarray, kind: typing.SupportsInt | typing.SupportsIndex, param: typing.SupportsFloat | typing.SupportsIndex) -> tuple:
    """
    Dense layer forward: z = x @ w + b, a = f(z) for activation code `kind` (param: leaky_relu slope or elu alpha). x (n, fan_in), w (fan_in, fan_out), b (fan_out,), one float dtype, C-contiguous. Returns (a, z); for identity a is z (the same array).
    """
def dropout(x: numpy.ndarray, p: typing.SupportsFloat | typing.SupportsIndex, seed: typing.Any, layer: typing.Any, step: typing.Any, scale: typing.SupportsFloat | typing.SupportsIndex) -> numpy.ndarray:
    """
    Dropout: y = x * keep * scale, keep from Philox4x32-10 keyed by seed with counter (element >> 3, layer, step) (spec in math/philox.hpp); mask generated in the same pass, never stored. Backward is this same call on the gradient with the same seed, layer, step and scale. p in [0, 1), seed in [0, 2**64), layer and step in [0, 2**32).
    """
def dropout_mask(rows: typing.SupportsInt | typing.SupportsIndex, cols: typing.SupportsInt | typing.SupportsIndex, p: typing.SupportsFloat | typing.SupportsIndex, seed: typing.Any, layer: typing.Any, step: typing.Any) -> numpy.typing.NDArray[numpy.bool]:
    """
    The keep mask (bool, shape (rows, cols)) that dropout applies to a (rows, cols) array.
    """
def gemm(a: numpy.ndarray, b: numpy.ndarray, out: numpy.ndarray, trans_a: bool = False, trans_b: bool = False) -> None:
    """
    out = op(a) @ op(b) with OpenBLAS: the GEMM floor the benchmarks compare against.
    """
def get_blas_num_threads() -> int:
    """
    Threads OpenBLAS uses for GEMM.
    """
def get_num_threads() -> int:
    """
    Threads trainart's own loops use.
    """
def global_norm(tensors: typing.Any) -> float:
    """
    sqrt(sum of squares over every tensor), accumulated in double over a fixed partition (chunks of each tensor in order, tensors in order): bitwise identical at any thread count. NaN or inf in the tensors gives a NaN or inf norm.
    """
def has_openmp() -> bool:
    """
    Whether the module was built with OpenMP.
    """
def in_forked_child() -> bool:
    """
    Whether this process was forked after the module loaded (it then runs on one thread).
    """
def loss_value_and_grad(logits: numpy.ndarray, target: numpy.ndarray, kind: typing.SupportsInt | typing.SupportsIndex, delta: typing.SupportsFloat | typing.SupportsIndex, weight: typing.Any) -> tuple:
    """
    (value, grad) of loss code `kind` (trainart.reference.LOSS_CODES) for logits (n, k) and a float target of the same shape, in one pass. value is the mean over rows (cross_entropy) or over all n*k elements (the others), each row's term times weight[i] when weight (n,) is given; grad = d value / d logits. delta: huber's threshold.
    """
def nadam_update(params: typing.Any, grads: typing.Any, exp_avgs: typing.Any, exp_avg_sqs: typing.Any, scalars: dict) -> None:
    """
    NAdam step (torch.optim.NAdam); the host carries mu_product in scalars['nadam_grad'] and scalars['nadam_avg']. `scalars` is a dict with every field of trainart::math::StepScalars (lr, grad_scale, weight_decay, param_decay, beta1, beta2, one_minus_beta1, one_minus_beta2, alpha, one_minus_alpha, eps, momentum, dampening, one_minus_dampening, step_size, bc2_sqrt, bc2, nadam_grad, nadam_avg: finite reals; nesterov, amsgrad, centered, first_step: bools), as made by trainart.reference.optimizer.step_scalars. Lists hold C-contiguous arrays of one float dtype; params and state are updated in place.
    """
def philox4x32_10(counters: numpy.ndarray, k0: typing.Any, k1: typing.Any) -> numpy.typing.NDArray[numpy.uint32]:
    """
    Bare Philox4x32-10 (for known-answer tests): counters uint32 (n, 4), key (k0, k1) in [0, 2**32). Returns the uint32 (n, 4) output words.
    """
def rmsprop_update(params: typing.Any, grads: typing.Any, square_avgs: typing.Any, momentum_buffers: typing.Any, grad_avgs: typing.Any, scalars: dict) -> None:
    """
    RMSprop step (torch.optim.RMSprop); momentum_buffers is ignored unless momentum > 0, grad_avgs unless centered. `scalars` is a dict with every field of trainart::math::StepScalars (lr, grad_scale, weight_decay, param_decay, beta1, beta2, one_minus_beta1, one_minus_beta2, alpha, one_minus_alpha, eps, momentum, dampening, one_minus_dampening, step_size, bc2_sqrt, bc2, nadam_grad, nadam_avg: finite reals; nesterov, amsgrad, centered, first_step: bools), as made by trainart.reference.optimizer.step_scalars. Lists hold C-contiguous arrays of one float dtype; params and state are updated in place.
    """
def scale_tensors(tensors: typing.Any, scale: typing.SupportsFloat | typing.SupportsIndex) -> None:
    """
    Multiply every element of every tensor by scale in place.
    """
def set_num_threads(n: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Set the threads of trainart's loops and of its OpenBLAS GEMMs.
    """
def sgd_update(params: typing.Any, grads: typing.Any, momentum_buffers: typing.Any, scalars: dict) -> None:
    """
    SGD step (torch.optim.SGD) over every tensor; momentum_buffers is ignored when scalars['momentum'] == 0. `scalars` is a dict with every field of trainart::math::StepScalars (lr, grad_scale, weight_decay, param_decay, beta1, beta2, one_minus_beta1, one_minus_beta2, alpha, one_minus_alpha, eps, momentum, dampening, one_minus_dampening, step_size, bc2_sqrt, bc2, nadam_grad, nadam_avg: finite reals; nesterov, amsgrad, centered, first_step: bools), as made by trainart.reference.optimizer.step_scalars. Lists hold C-contiguous arrays of one float dtype; params and state are updated in place.
    """
def tensor_norms(tensors: typing.Any) -> list:
    """
    The L2 norm of each tensor (a list of floats), summed as global_norm sums.
    """
MAX_THREADS: int = 1024
