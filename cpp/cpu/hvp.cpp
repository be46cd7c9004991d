// The R-operator over the engine's op list: a training-mode forward, the R-forward (directional
// derivatives of every activation), the loss Hessian on R{logits}, then the R-backward that
// differentiates each backward step along v. One GEMM per product term (trainart::gemm).
#include "hvp.hpp"

#include <algorithm>
#include <initializer_list>
#include <string>

#include "act_dispatch.hpp"
#include "activation.hpp"
#include "dense.hpp"
#include "dropout.hpp"
#include "loss.hpp"
#include "trainart/blas.hpp"
#include "trainart/buffers.hpp"
#include "trainart/math/activation.hpp"
#include "trainart/math/curvature.hpp"
#include "trainart/parallel.hpp"

namespace trainart::cpu {

namespace {

using Vec = std::vector<double>;

// Elementwise passes over n * width values; each element is independent, so any split is exact.
constexpr index_t kGrain = 8192;


// Rows [lo, hi) of width w: r += v_b (when given), rh = r f'(z).
template <math::Act K>
TRAINART_FLATTEN void rforward_rows(const double* z, const double* a, const double* vb, double* r, double* rh,
                                    index_t lo, index_t hi, index_t w, double param) {
  for (index_t row = lo; row < hi; ++row) {
    const index_t o = row * w;
    if (vb != nullptr)
      for (index_t c = 0; c < w; ++c) r[o + c] += vb[c];
    for (index_t c = 0; c < w; ++c) rh[o + c] = r[o + c] * math::act_derivative(K, z[o + c], a[o + c], param);
  }
}

// gz = g f'(z); rgz = rg f'(z) + (g f''(z)) rz, the second term only where f'' is not identically 0.
template <math::Act K>
TRAINART_FLATTEN void rbackward_elems(const double* g, const double* rg, const double* z, const double* a,
                                      const double* rz, double* gz, double* rgz, index_t lo, index_t hi,
                                      double param) {
  constexpr bool curved = K != math::Act::identity && K != math::Act::relu && K != math::Act::leaky_relu;
  for (index_t e = lo; e < hi; ++e) {
    const double fp = math::act_derivative(K, z[e], a[e], param);
    gz[e] = g[e] * fp;
    double r = rg[e] * fp;
    if constexpr (curved) r += (g[e] * math::act_second_derivative(K, z[e], a[e], param)) * rz[e];
    rgz[e] = r;
  }
}

double dropout_scale(const EngineSpec& spec, const OpSpec& op) {
  return spec.inverted_dropout ? 1.0 / (1.0 - op.rate) : 1.0;
}

// H_loss r for the mean loss: per row, cross_entropy coef (diag p - p p^T) r with
// coef = w_i / n * sum(t_i) (1 for labels); the elementwise losses coef h(z, t) r, coef = w_i / (n k).
void loss_curvature(const EngineSpec& spec, const Batchable<double>& data, const double* z, const double* r,
                    double* out, index_t n, index_t k) {
  const auto kind = static_cast<math::Loss>(spec.loss);
  const double nd = static_cast<double>(n);
  parallel_for(n, 64, [&](index_t lo, index_t hi) {
    for (index_t i = lo; i < hi; ++i) {
      const double w = data.weight ? data.weight[i] : 1.0;
      const double* zi = z + i * k;
      const double* ri = r + i * k;
      double* oi = out + i * k;
      if (kind == math::Loss::cross_entropy) {
        double coef = w / nd;
        if (data.labels == nullptr) {
          double st = 0.0;
          for (index_t j = 0; j < k; ++j) st += data.targets[i * k + j];
          coef *= st;
        }
        math::softmax_xent_curvature_row(zi, ri, oi, k, coef);
      } else {
        const double coef = w / (nd * static_cast<double>(k));
        const double* ti = data.targets + i * k;
        for (index_t j = 0; j < k; ++j)
          oi[j] = (coef * math::pointwise_loss_curvature(kind, zi[j], ti[j], spec.loss_param)) * ri[j];
      }
    }
  });
}

}  // namespace

void hvp(const EngineSpec& spec, const std::vector<const double*>& params, const Batchable<double>& data,
         const std::vector<const double*>& v, const std::vector<double*>& hv,
         const std::vector<index_t>& sizes, HvpWork& work) {
  const auto& ops = spec.ops;
  const auto nops = static_cast<index_t>(ops.size());
  index_t first = -1;
  for (index_t i = 0; i < nops; ++i) {
    TRAINART_CHECK(ops[i].kind != OpKind::batchnorm,
                   "hvp does not support BatchNorm layers: their batch statistics couple the rows");
    if (first < 0 && ops[i].kind == OpKind::dense) first = i;
  }
  TRAINART_CHECK(first >= 0, "the plan has no dense layer");
  const index_t n = data.n;
  for (size_t p = 0; p < hv.size(); ++p) std::fill(hv[p], hv[p] + sizes[p], 0.0);

  // Training-mode forward at step 0: inputs, pre-activations (dense with an activation) and outputs.
  std::vector<Vec>& a = work.a;
  std::vector<Vec>& z = work.z;
  a.resize(ops.size());
  z.resize(ops.size());
  std::vector<const double*> in(ops.size());
  const double* h = data.x;
  for (index_t i = 0; i < nops; ++i) {
    const OpSpec& op = ops[i];
    const index_t cnt = n * op.width_out;
    in[i] = h;
    a[i].resize(static_cast<size_t>(cnt));
    switch (op.kind) {
      case OpKind::dense: {
        double* zp = a[i].data();
        if (op.act != 0) {
          z[i].resize(static_cast<size_t>(cnt));
          zp = z[i].data();
        }
        dense_forward<double>(h, params[op.w], params[op.b], zp, a[i].data(), n, op.width_in, op.width_out, op.act,
                              op.act_param);
        break;
      }
      case OpKind::activation:
        activation_forward<double>(static_cast<math::Act>(op.act), h, a[i].data(), cnt, op.act_param);
        break;
      case OpKind::dropout:
        dropout<double>(h, a[i].data(), cnt, op.rate, spec.seed, op.layer, 0, dropout_scale(spec, op));
        break;
      case OpKind::batchnorm: break;
    }
    h = a[i].data();
  }
  const index_t k = ops.back().width_out;
  const double* logits = a.back().data();
  Vec& g = work.g;
  g.resize(static_cast<size_t>(n * k));
  if (data.labels != nullptr)
    cross_entropy_labels<double>(logits, data.labels, data.weight, g.data(), n, k);
  else
    loss_value_and_grad<double>(static_cast<math::Loss>(spec.loss), logits, data.targets, data.weight, g.data(), n,
                                k, spec.loss_param);

  // The pre-activation of op i (dense) or its input (activation), and f'(z) there.
  auto zin = [&](index_t i) -> const double* {
    const OpSpec& op = ops[i];
    if (op.kind == OpKind::activation) return in[i];
    return op.act == 0 ? a[i].data() : z[i].data();
  };

  // R-forward: R{z} = R{x} W + x V_W + V_b; R{a} = f'(z) R{z}; dropout masks R{a} as a.
  // Rin[i] is R{input} of op i (empty before the first dense op), Rz[i] R{z} of a dense op.
  std::vector<Vec>& Rin = work.rin;
  std::vector<Vec>& Rz = work.rz;
  Rin.resize(ops.size());
  Rz.resize(ops.size());
  Vec& Rh = work.rh;
  for (index_t i = first; i < nops; ++i) {
    const OpSpec& op = ops[i];
    const index_t cnt = n * op.width_out;
    if (op.kind == OpKind::dense) {
      Vec& r = Rz[i];
      r.resize(static_cast<size_t>(cnt));
      double beta = 0.0;
      if (i > first) {
        std::swap(Rin[i], Rh);  // hands the buffer over; Rh takes Rin[i]'s old one as scratch
        gemm(false, false, n, op.width_out, op.width_in, 1.0, Rin[i].data(), op.width_in, params[op.w],
             op.width_out, 0.0, r.data(), op.width_out);
        beta = 1.0;
      }
      gemm(false, false, n, op.width_out, op.width_in, 1.0, in[i], op.width_in, v[op.w], op.width_out, beta,
           r.data(), op.width_out);
      const double* vb = v[op.b];
      const double* zp = zin(i);
      const double* ap = a[i].data();
      Rh.resize(static_cast<size_t>(cnt));
      const index_t w = op.width_out;
      double* rh = Rh.data();
      with_act(static_cast<math::Act>(op.act), [&](auto tag) {
        parallel_for(n, std::max<index_t>(1, kGrain / w), [&](index_t lo, index_t hi) {
          rforward_rows<decltype(tag)::value>(zp, ap, vb, r.data(), rh, lo, hi, w, op.act_param);
        });
      });
    } else if (op.kind == OpKind::activation) {
      std::swap(Rin[i], Rh);
      Rh.resize(static_cast<size_t>(cnt));
      const double* zp = in[i];
      const double* ap = a[i].data();
      double* ri = Rin[i].data();
      double* rh = Rh.data();
      with_act(static_cast<math::Act>(op.act), [&](auto tag) {
        parallel_for(n, std::max<index_t>(1, kGrain / op.width_out), [&](index_t lo, index_t hi) {
          rforward_rows<decltype(tag)::value>(zp, ap, nullptr, ri, rh, lo, hi, op.width_out, op.act_param);
        });
      });
    } else {
      dropout<double>(Rh.data(), Rh.data(), cnt, op.rate, spec.seed, op.layer, 0, dropout_scale(spec, op));
    }
  }

  // R-backward from R{dL/dlogits} = H_loss R{logits}:
  // R{g_z} = R{g_a} f'(z) + g_a f''(z) R{z}; R{dW} = x^T R{g_z} + R{x}^T g_z (+ 2 l2 V_W);
  // R{db} = column sums of R{g_z}; R{g_x} = R{g_z} W^T + g_z V_W^T.
  Vec& Rg = work.rg;
  Rg.resize(static_cast<size_t>(n * k));
  loss_curvature(spec, data, logits, Rh.data(), Rg.data(), n, k);
  Vec& gz = work.gz;
  Vec& Rgz = work.rgz;
  for (index_t i = nops - 1; i >= first; --i) {
    const OpSpec& op = ops[i];
    const index_t cnt = n * op.width_out;
    if (op.kind == OpKind::dropout) {
      const double s = dropout_scale(spec, op);
      dropout<double>(g.data(), g.data(), cnt, op.rate, spec.seed, op.layer, 0, s);
      dropout<double>(Rg.data(), Rg.data(), cnt, op.rate, spec.seed, op.layer, 0, s);
      continue;
    }
    const double* zp = zin(i);
    const double* ap = a[i].data();
    const double* rz = op.kind == OpKind::dense ? Rz[i].data() : Rin[i].data();
    gz.resize(static_cast<size_t>(cnt));
    Rgz.resize(static_cast<size_t>(cnt));
    with_act(static_cast<math::Act>(op.act), [&](auto tag) {
      parallel_for(cnt, kGrain, [&](index_t lo, index_t hi) {
        rbackward_elems<decltype(tag)::value>(g.data(), Rg.data(), zp, ap, rz, gz.data(), Rgz.data(), lo, hi,
                                              op.act_param);
      });
    });
    if (op.kind == OpKind::activation) {
      std::swap(g, gz);
      std::swap(Rg, Rgz);
      continue;
    }
    const index_t din = op.width_in, dout = op.width_out;
    double* hw = hv[op.w];
    gemm(true, false, din, dout, n, 1.0, in[i], din, Rgz.data(), dout, 0.0, hw, dout);
    if (i > first)
      gemm(true, false, din, dout, n, 1.0, Rin[i].data(), din, gz.data(), dout, 1.0, hw, dout);
    if (op.l2 != 0.0) {
      const double two_l2 = 2.0 * op.l2;
      const double* vw = v[op.w];
      for (index_t e = 0; e < din * dout; ++e) hw[e] += two_l2 * vw[e];
    }
    // Column sums in a fixed order (row by row), independent of the thread count.
    double* hb = hv[op.b];
    for (index_t c = 0; c < dout; ++c) hb[c] = 0.0;
    for (index_t r = 0; r < n; ++r)
      for (index_t c = 0; c < dout; ++c) hb[c] += Rgz[r * dout + c];
    if (i > first) {
      g.resize(static_cast<size_t>(n * din));
      Rg.resize(static_cast<size_t>(n * din));
      gemm(false, true, n, din, dout, 1.0, Rgz.data(), dout, params[op.w], dout, 0.0, Rg.data(), din);
      gemm(false, true, n, din, dout, 1.0, gz.data(), dout, v[op.w], dout, 1.0, Rg.data(), din);
      gemm(false, true, n, din, dout, 1.0, gz.data(), dout, params[op.w], dout, 0.0, g.data(), din);
    }
  }
}

void HvpWork::release() {
  for (auto* per_op : {&a, &z, &rin, &rz}) free_vector(*per_op);
  for (auto* v : {&g, &rg, &gz, &rgz, &rh}) free_vector(*v);
}

std::size_t HvpWork::bytes() const {
  std::size_t total = 0;
  for (const auto* per_op : {&a, &z, &rin, &rz})
    for (const auto& v : *per_op) total += held_bytes(v);
  for (const auto* v : {&g, &rg, &gz, &rgz, &rh}) total += held_bytes(*v);
  return total;
}

}  // namespace trainart::cpu
