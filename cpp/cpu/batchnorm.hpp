// Batch normalization over (n, f) activations, torch.nn.BatchNorm1d's convention: training
// forward (batch statistics, running averages updated in place), inference forward, backward.
#pragma once

#include "trainart/common.hpp"

namespace trainart::cpu {

// y = gamma (x - mean) invstd + beta with the batch mean and biased variance; mean and invstd
// (f,) are written for the backward; running_mean/var updated in place (unbiased variance).
// Requires n >= 2.
template <class T>
void batchnorm_forward_train(const T* x, index_t n, index_t f, const T* gamma, const T* beta,
                             T* running_mean, T* running_var, double momentum, double eps, T* y,
                             T* mean, T* invstd);

// y = gamma (x - running_mean) / sqrt(running_var + eps) + beta.
template <class T>
void batchnorm_forward_infer(const T* x, index_t n, index_t f, const T* gamma, const T* beta,
                             const T* running_mean, const T* running_var, double eps, T* y);

// dbeta = sum dy, dgamma = sum dy xhat, dx = gamma invstd / n (n dy - dbeta - xhat dgamma).
// dx may be null (a BatchNorm that is the network's first parameterized op): no dx pass.
template <class T>
void batchnorm_backward(const T* dy, const T* x, index_t n, index_t f, const T* gamma,
                        const T* mean, const T* invstd, T* dx, T* dgamma, T* dbeta);

}  // namespace trainart::cpu
