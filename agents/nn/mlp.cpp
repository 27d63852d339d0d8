// Multi-layer perceptrons and ensembles: forward and backward over a batch.
#include "agents/nn/mlp.h"

#include <algorithm>
#include <boost/random/normal_distribution.hpp>
#include <cassert>
#include <cmath>
#include <Eigen/QR>
#include <stdexcept>

namespace mtf::nn {
namespace {

// Parameter-gradient tasks of a single network split the output rows in chunks of this size.
constexpr int kRowChunk = 64;

int chunks(int n, int size) { return std::max(1, (n + size - 1) / size); }

/// Rows of an ensemble's stacked first layer per task (fixed, see Mlp::forward).
constexpr int kFirstLayerSlab = 768;

void fill_uniform(Eigen::Block<Matrix> m, float bound, Rng& rng) {
  for (Eigen::Index j = 0; j < m.cols(); ++j)
    for (Eigen::Index i = 0; i < m.rows(); ++i) m(i, j) = (2.0f * rng.uniform01() - 1.0f) * bound;
}

// Orthogonal init (Saxe et al.): Q of the QR decomposition of a Gaussian matrix,
// sign-corrected so that the distribution is uniform over orthogonal matrices.
void fill_orthogonal(Eigen::Block<Matrix> m, float gain, Rng& rng) {
  const Eigen::Index rows = m.rows(), cols = m.cols();
  const bool tall = rows >= cols;
  const Eigen::Index big = tall ? rows : cols, small = tall ? cols : rows;
  Eigen::MatrixXd g(big, small);
  boost::random::normal_distribution<double> normal(0.0, 1.0);
  for (Eigen::Index j = 0; j < small; ++j)
    for (Eigen::Index i = 0; i < big; ++i) g(i, j) = normal(rng);
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(g);
  Eigen::MatrixXd q = qr.householderQ() * Eigen::MatrixXd::Identity(big, small);
  const Eigen::MatrixXd r = qr.matrixQR();
  for (Eigen::Index j = 0; j < small; ++j)
    if (r(j, j) < 0) q.col(j) = -q.col(j);
  if (tall)
    m = (gain * q).cast<float>();
  else
    m = (gain * q.transpose()).cast<float>();
}

}  // namespace

int Mlp::width(int l) const {
  return l + 1 < layers() ? spec_.hidden[static_cast<std::size_t>(l)] : spec_.output;
}
int Mlp::fan_in(int l) const { return l == 0 ? spec_.input : width(l - 1); }

Mlp::Mlp(const MlpSpec& spec, Rng& rng) : spec_(spec) {
  if (spec.input <= 0 || spec.output <= 0 || spec.members <= 0)
    throw std::invalid_argument("Mlp: input, output and members must be positive");
  for (int h : spec.hidden)
    if (h <= 0) throw std::invalid_argument("Mlp: hidden widths must be positive");
  if (spec.dropout < 0.0f || spec.dropout >= 1.0f)
    throw std::invalid_argument("Mlp: dropout must be in [0, 1)");
  const int M = spec.members;
  for (int l = 0; l < layers(); ++l) {
    const std::string ln = std::to_string(l);
    weight_.push_back({"w" + ln, Matrix::Zero(M * width(l), fan_in(l)), Matrix::Zero(M * width(l), fan_in(l))});
    bias_.push_back({"b" + ln, Matrix::Zero(M * width(l), 1), Matrix::Zero(M * width(l), 1)});
    if (spec.layer_norm && l + 1 < layers()) {
      ln_gain_.push_back({"ln_gain" + ln, Matrix::Ones(M * width(l), 1), Matrix::Zero(M * width(l), 1)});
      ln_bias_.push_back({"ln_bias" + ln, Matrix::Zero(M * width(l), 1), Matrix::Zero(M * width(l), 1)});
    }
  }
  // Members one after another, so that member m's weights do not depend on M.
  for (int m = 0; m < M; ++m) {
    for (int l = 0; l < layers(); ++l) {
      const int n = width(l);
      auto w = weight_[l].value.middleRows(m * n, n);
      auto b = bias_[l].value.middleRows(m * n, n);
      const float bound = 1.0f / std::sqrt(static_cast<float>(fan_in(l)));
      const bool last = l + 1 == layers();
      if (last && spec.output_init_scale > 0.0f) {
        fill_uniform(w, spec.output_init_scale, rng);
        fill_uniform(b, spec.output_init_scale, rng);
      } else if (spec.init == Init::kOrthogonal) {
        // Gain sqrt(2) for ReLU layers, 1 for tanh and the linear output.
        const float gain = (!last && spec.activation == Activation::kRelu) ? std::sqrt(2.0f) : 1.0f;
        fill_orthogonal(w, gain, rng);
        b.setZero();
      } else {
        fill_uniform(w, bound, rng);  // PyTorch's nn.Linear default: U(-1/sqrt(fan_in), ...)
        fill_uniform(b, bound, rng);
      }
    }
  }
}

std::vector<Param*> Mlp::params() {
  std::vector<Param*> p;
  for (std::size_t l = 0; l < weight_.size(); ++l) {
    p.push_back(&weight_[l]);
    p.push_back(&bias_[l]);
    if (l < ln_gain_.size()) {
      p.push_back(&ln_gain_[l]);
      p.push_back(&ln_bias_[l]);
    }
  }
  return p;
}

std::vector<const Param*> Mlp::params() const {
  std::vector<const Param*> p;
  for (Param* q : const_cast<Mlp*>(this)->params()) p.push_back(q);
  return p;
}

std::int64_t Mlp::param_count() const {
  std::int64_t n = 0;
  for (const Param* p : params()) n += p->value.size();
  return n;
}

void Mlp::soft_update_from(const Mlp& other, float w) {
  auto dst = params();
  auto src = other.params();
  assert(dst.size() == src.size());
  for (std::size_t i = 0; i < dst.size(); ++i) {
    Matrix& d = dst[i]->value;
    const Matrix& s = src[i]->value;
    const std::int64_t n = d.size();
    parallel_for(static_cast<int>((n + kElementChunk - 1) / kElementChunk), [&](int c) {
      const std::int64_t b = c * kElementChunk, e = std::min(n, b + kElementChunk);
      auto dv = Eigen::Map<Vector>(d.data() + b, e - b);
      auto sv = Eigen::Map<const Vector>(s.data() + b, e - b);
      dv = w * sv + (1.0f - w) * dv;
    });
  }
}

void Mlp::copy_from(const Mlp& other) {
  auto dst = params();
  auto src = other.params();
  for (std::size_t i = 0; i < dst.size(); ++i) dst[i]->value = src[i]->value;
}

namespace {

// Applies layer norm (per member block, per column) and the activation in place.
void normalise_and_activate(Eigen::Block<Matrix> z, Eigen::Block<Matrix> xhat, Eigen::Block<Matrix> rstd_row,
                            const Eigen::Block<const Matrix>& gain, const Eigen::Block<const Matrix>& beta,
                            bool layer_norm, Activation act) {
  if (layer_norm) {
    const float inv_n = 1.0f / static_cast<float>(z.rows());
    for (Eigen::Index j = 0; j < z.cols(); ++j) {
      const float mean = z.col(j).sum() * inv_n;
      xhat.col(j) = z.col(j).array() - mean;
      const float var = xhat.col(j).squaredNorm() * inv_n;
      const float r = 1.0f / std::sqrt(var + kLayerNormEps);
      rstd_row(0, j) = r;
      xhat.col(j) *= r;
    }
    z = (xhat.array().colwise() * gain.col(0).array()).colwise() + beta.col(0).array();
  }
  if (act == Activation::kRelu)
    z = z.cwiseMax(0.0f);
  else
    z = z.array().tanh();
}

}  // namespace

const Matrix& Mlp::forward(const ConstRef& x, MlpWorkspace& ws, Rng* dropout_rng) const {
  assert(x.rows() == spec_.input);
  const int M = spec_.members, L = layers();
  const Eigen::Index B = x.cols();
  const bool dropout = dropout_rng != nullptr && spec_.dropout > 0.0f;
  ws.training_dropout = dropout;
  ws.act.resize(L - 1);
  ws.xhat.resize(spec_.layer_norm ? L - 1 : 0);
  ws.rstd.resize(spec_.layer_norm ? L - 1 : 0);
  ws.drop.resize(dropout ? L - 1 : 0);
  ws.mask.resize(dropout ? L - 1 : 0);
  for (int l = 0; l + 1 < L; ++l) {
    ws.act[l].resize(M * width(l), B);
    if (spec_.layer_norm) {
      ws.xhat[l].resize(M * width(l), B);
      ws.rstd[l].resize(M, B);
    }
    if (dropout) {
      ws.drop[l].resize(M * width(l), B);
      // Masks drawn here, in a fixed order, before any parallel work.
      Matrix& mk = ws.mask[l];
      mk.resize(M * width(l), B);
      const float keep_scale = 1.0f / (1.0f - spec_.dropout);
      for (Eigen::Index k = 0; k < mk.size(); ++k)
        mk.data()[k] = dropout_rng->uniform01() < spec_.dropout ? 0.0f : keep_scale;
    }
  }
  ws.out.resize(M * spec_.output, B);

  // An ensemble's first layers are one product W_0 (M n x in) * X (in x B), cut
  // into fixed slabs of rows for the threads (a fixed cut: the results do not
  // depend on the thread count); the deeper layers are per-member blocks.
  const bool stacked_first = M > 1 && L > 1 && !spec_.layer_norm;
  if (stacked_first) {
    const int rows = M * width(0);
    parallel_for(chunks(rows, kFirstLayerSlab), [&](int t) {
      const Eigen::Index r0 = static_cast<Eigen::Index>(t) * kFirstLayerSlab;
      const Eigen::Index nr = std::min<Eigen::Index>(kFirstLayerSlab, rows - r0);
      auto z = ws.act[0].middleRows(r0, nr);
      z.colwise() = bias_[0].value.middleRows(r0, nr).col(0);
      gemm_add(z, weight_[0].value.middleRows(r0, nr), x);
      if (spec_.activation == Activation::kRelu)
        z = z.cwiseMax(0.0f);
      else
        z = z.array().tanh();
      if (dropout) ws.drop[0].middleRows(r0, nr) = z.cwiseProduct(ws.mask[0].middleRows(r0, nr));
    });
  }
  const int col_chunks = M == 1 ? chunks(static_cast<int>(B), kColumnChunk) : 1;
  parallel_for(M * col_chunks, [&](int task) {
    const int m = task / col_chunks;
    const Eigen::Index c0 = static_cast<Eigen::Index>(task % col_chunks) * kColumnChunk;
    const Eigen::Index nc = col_chunks == 1 ? B : std::min<Eigen::Index>(kColumnChunk, B - c0);
    for (int l = stacked_first ? 1 : 0; l < L; ++l) {
      const int n = width(l);
      const auto w = weight_[l].value.middleRows(m * n, n);
      const auto b = bias_[l].value.middleRows(m * n, n);
      Eigen::Block<Matrix> z = l + 1 < L ? ws.act[l].block(m * n, c0, n, nc) : ws.out.block(m * n, c0, n, nc);
      // Bias first, then accumulate the product: saves Eigen's zeroing pass over z.
      z.colwise() = b.col(0);
      if (l == 0) {
        gemm_add(z, w, x.middleCols(c0, nc));
      } else {
        const int p = width(l - 1);
        const Matrix& in = dropout ? ws.drop[l - 1] : ws.act[l - 1];
        gemm_add(z, w, in.block(m * p, c0, p, nc));
      }
      if (l + 1 < L) {
        if (spec_.layer_norm) {
          normalise_and_activate(z, ws.xhat[l].block(m * n, c0, n, nc), ws.rstd[l].block(m, c0, 1, nc),
                                 ln_gain_[l].value.middleRows(m * n, n), ln_bias_[l].value.middleRows(m * n, n),
                                 true, spec_.activation);
        } else {
          if (spec_.activation == Activation::kRelu)
            z = z.cwiseMax(0.0f);
          else
            z = z.array().tanh();
        }
        if (dropout)
          ws.drop[l].block(m * n, c0, n, nc) = z.cwiseProduct(ws.mask[l].block(m * n, c0, n, nc));
      }
    }
  });
  return ws.out;
}

void Mlp::backward(const ConstRef& x, const ConstRef& dout, MlpWorkspace& ws, const BackwardOptions& opt) {
  backward_impl(x, dout, ws, opt, opt.param_grads);
}

void Mlp::input_backward(const ConstRef& x, const ConstRef& dout, MlpWorkspace& ws, Matrix& input_grad,
                         int input_begin, int input_count) const {
  BackwardOptions opt;
  opt.param_grads = false;
  opt.input_grad = &input_grad;
  opt.input_begin = input_begin;
  opt.input_count = input_count;
  // Without parameter gradients backward_impl writes nothing but ws and input_grad.
  const_cast<Mlp*>(this)->backward_impl(x, dout, ws, opt, false);
}

void Mlp::backward_impl(const ConstRef& x, const ConstRef& dout, MlpWorkspace& ws, const BackwardOptions& opt,
                        bool write_grads) {
  const int M = spec_.members, L = layers();
  const Eigen::Index B = x.cols();
  assert(dout.rows() == M * spec_.output && dout.cols() == B);
  const bool dropout = ws.training_dropout;

  // grad_z[l]: gradient w.r.t. layer l's linear output (grad_z[L-1] is dout);
  // grad_y[l]: for layer-normed layers, gradient w.r.t. the layer norm's output.
  std::vector<Matrix>& grad_z = ws.grad_z;
  std::vector<Matrix>& grad_y = ws.grad_y;
  grad_z.resize(L);
  grad_y.resize(spec_.layer_norm ? L - 1 : 0);
  for (int l = 0; l + 1 < L; ++l) {
    grad_z[l].resize(M * width(l), B);
    if (spec_.layer_norm) grad_y[l].resize(M * width(l), B);
  }
  auto dz_of = [&](int l) -> ConstRef { return l == L - 1 ? dout : ConstRef(grad_z[l]); };
  auto input_of = [&](int l) -> const Matrix& { return dropout ? ws.drop[l - 1] : ws.act[l - 1]; };

  // Parameter gradients of layer l, member m, output rows [r0, r0 + nr); sums over the whole batch.
  auto param_grads = [&](int l, int m, int r0, int nr) {
    const int n = width(l), p = fan_in(l);
    const Eigen::Index rows = static_cast<Eigen::Index>(m) * n + r0;
    auto gw = weight_[l].grad.middleRows(rows, nr);
    auto gb = bias_[l].grad.middleRows(rows, nr);
    const ConstRef dzl = dz_of(l);
    const auto dz = dzl.middleRows(rows, nr);
    if (l == 0) {
      if (opt.accumulate) gemm_add(gw, dz, x.transpose()); else gemm(gw, dz, x.transpose());
    } else {
      const auto inb = input_of(l).middleRows(static_cast<Eigen::Index>(m) * p, p);
      if (opt.accumulate) gemm_add(gw, dz, inb.transpose()); else gemm(gw, dz, inb.transpose());
    }
    if (opt.accumulate) gb += dz.rowwise().sum(); else gb = dz.rowwise().sum();
  };
  // Gradient w.r.t. layer l-1's pre-activation, member m, columns [c0, c0 + nc).
  auto hidden_grads = [&](int l, int m, Eigen::Index c0, Eigen::Index nc) {
    const int n = width(l), q = width(l - 1);
    const Eigen::Index r = static_cast<Eigen::Index>(m) * q;
    auto g = grad_z[l - 1].block(r, c0, q, nc);
    gemm(g, weight_[l].value.middleRows(static_cast<Eigen::Index>(m) * n, n).transpose(),
         dz_of(l).block(static_cast<Eigen::Index>(m) * n, c0, n, nc));
    if (dropout) g.array() *= ws.mask[l - 1].block(r, c0, q, nc).array();
    const auto a = ws.act[l - 1].block(r, c0, q, nc);
    if (spec_.activation == Activation::kRelu)
      g = (a.array() > 0.0f).select(g, 0.0f);
    else
      g.array() *= 1.0f - a.array().square();
    if (spec_.layer_norm) {
      auto gy = grad_y[l - 1].block(r, c0, q, nc);
      gy = g;
      const auto xh = ws.xhat[l - 1].block(r, c0, q, nc);
      const auto gain = ln_gain_[l - 1].value.middleRows(r, q);
      const float inv_n = 1.0f / static_cast<float>(q);
      for (Eigen::Index j = 0; j < nc; ++j) {
        const Vector dxh = gy.col(j).cwiseProduct(gain.col(0));
        const float mean_d = dxh.sum() * inv_n;
        const float mean_dx = dxh.dot(xh.col(j)) * inv_n;
        g.col(j) = ws.rstd[l - 1](m, c0 + j) * (dxh.array() - mean_d - xh.col(j).array() * mean_dx);
      }
    }
  };
  // Layer norm gain and bias gradients of layer l, member m.
  auto ln_grads = [&](int l, int m) {
    const int q = width(l);
    const Eigen::Index r = static_cast<Eigen::Index>(m) * q;
    const auto gyb = grad_y[l].middleRows(r, q);
    const Vector dgain = gyb.cwiseProduct(ws.xhat[l].middleRows(r, q)).rowwise().sum();
    const Vector dbeta = gyb.rowwise().sum();
    if (opt.accumulate) {
      ln_gain_[l].grad.middleRows(r, q) += dgain;
      ln_bias_[l].grad.middleRows(r, q) += dbeta;
    } else {
      ln_gain_[l].grad.middleRows(r, q) = dgain;
      ln_bias_[l].grad.middleRows(r, q) = dbeta;
    }
  };

  if (M > 1) {
    // Members are independent: one task per member runs the whole backward pass.
    parallel_for(M, [&](int m) {
      for (int l = L - 1; l >= 0; --l) {
        if (write_grads) param_grads(l, m, 0, width(l));
        if (l == 0) break;
        hidden_grads(l, m, 0, B);
        if (write_grads && spec_.layer_norm) ln_grads(l - 1, m);
      }
    });
  } else {
    // A single network: per layer, parameter gradients split by output rows (each
    // task sums the full batch), then the backward signal split by columns.
    const int col_chunks = chunks(static_cast<int>(B), kColumnChunk);
    for (int l = L - 1; l >= 0; --l) {
      const int n = width(l);
      if (write_grads) {
        const int row_chunks = chunks(n, kRowChunk);
        parallel_for(row_chunks, [&](int t) {
          const int r0 = t * kRowChunk;
          param_grads(l, 0, r0, std::min(kRowChunk, n - r0));
        });
      }
      if (l == 0) break;
      parallel_for(col_chunks, [&](int c) {
        const Eigen::Index c0 = static_cast<Eigen::Index>(c) * kColumnChunk;
        hidden_grads(l, 0, c0, std::min<Eigen::Index>(kColumnChunk, B - c0));
      });
      if (write_grads && spec_.layer_norm) ln_grads(l - 1, 0);
    }
  }

  if (opt.input_grad != nullptr) {
    const int r0 = opt.input_begin;
    const int k = opt.input_count < 0 ? spec_.input - r0 : opt.input_count;
    assert(r0 >= 0 && r0 + k <= spec_.input);
    Matrix& dx = *opt.input_grad;
    dx.resize(k, B);
    const ConstRef dz0 = dz_of(0);
    // Sum over all members at once: dX = W_0[:, rows]^T * dZ_0 (depth M * n_0).
    parallel_for(chunks(static_cast<int>(B), kColumnChunk), [&](int c) {
      const Eigen::Index c0 = static_cast<Eigen::Index>(c) * kColumnChunk;
      const Eigen::Index nc = std::min<Eigen::Index>(kColumnChunk, B - c0);
      gemm(dx.middleCols(c0, nc), weight_[0].value.middleCols(r0, k).transpose(), dz0.middleCols(c0, nc));
    });
  }
}

void Mlp::infer(const ConstRef& x, Matrix& out) const {
  const int M = spec_.members, L = layers();
  const Eigen::Index B = x.cols();
  out.resize(M * spec_.output, B);
  Matrix cur, next;
  Matrix xhat;
  for (int m = 0; m < M; ++m) {
    for (int l = 0; l < L; ++l) {
      const int n = width(l);
      const auto w = weight_[l].value.middleRows(m * n, n);
      const auto b = bias_[l].value.middleRows(m * n, n);
      next.resize(n, B);
      if (l == 0) gemm(next, w, x); else gemm(next, w, cur);
      next.colwise() += b.col(0);
      if (l + 1 < L) {
        Matrix rstd(1, B);
        xhat.resize(n, B);
        Eigen::Block<Matrix> nb = next.block(0, 0, n, B);
        if (spec_.layer_norm)
          normalise_and_activate(nb, xhat.block(0, 0, n, B), rstd.block(0, 0, 1, B),
                                 ln_gain_[l].value.middleRows(m * n, n), ln_bias_[l].value.middleRows(m * n, n),
                                 true, spec_.activation);
        else if (spec_.activation == Activation::kRelu)
          next = next.cwiseMax(0.0f);
        else
          next = next.array().tanh();
        std::swap(cur, next);
      } else {
        out.middleRows(m * spec_.output, spec_.output) = next;
      }
    }
  }
}

namespace {

// Layer norm of one column (n entries, in place) with fixed-order sums: 16
// partial sums by position, combined in order, so every column of every batch
// is normalised by the same operations.
void layer_norm_column(float* z, int n, const float* gain, const float* beta) {
  constexpr int kLanes = 16;
  // step(s, i): s plus the term of entry i.
  auto ordered_sum = [&](auto step) {
    float part[kLanes] = {};
    int i = 0;
    for (; i + kLanes <= n; i += kLanes)
      for (int l = 0; l < kLanes; ++l) part[l] = step(part[l], i + l);
    for (int l = 0; i < n; ++i, ++l) part[l] = step(part[l], i);
    float s = 0.0f;
    for (int l = 0; l < kLanes; ++l) s += part[l];
    return s;
  };
  const float inv_n = 1.0f / static_cast<float>(n);
  const float mean = ordered_sum([&](float s, int i) { return s + z[i]; }) * inv_n;
  for (int i = 0; i < n; ++i) z[i] -= mean;
  const float sq = ordered_sum([&](float s, int i) { return std::fma(z[i], z[i], s); });
  const float r = 1.0f / std::sqrt(std::fma(sq, inv_n, kLayerNormEps));
  for (int i = 0; i < n; ++i) z[i] = std::fma(z[i] * r, gain[i], beta[i]);
}

}  // namespace

void Mlp::infer_columns(const ConstRef& x, Matrix& out) const {
  assert(x.rows() == spec_.input);
  const int M = spec_.members, L = layers();
  const Eigen::Index B = x.cols();
  out.resize(M * spec_.output, B);
  Matrix cur, next;
  for (int m = 0; m < M; ++m) {
    for (int l = 0; l < L; ++l) {
      const int n = width(l);
      const Matrix& w = weight_[l].value;
      const float* in = l == 0 ? x.data() : cur.data();
      const Eigen::Index ld_in = l == 0 ? x.outerStride() : cur.rows();
      const float* wm = w.data() + static_cast<Eigen::Index>(m) * n;
      const float* bm = bias_[l].value.data() + static_cast<Eigen::Index>(m) * n;
      if (l + 1 == L) {
        affine_columns(wm, w.rows(), bm, n, w.cols(), in, ld_in, B, out.data() + static_cast<Eigen::Index>(m) * n,
                       out.rows());
        break;
      }
      next.resize(n, B);
      affine_columns(wm, w.rows(), bm, n, w.cols(), in, ld_in, B, next.data(), n);
      if (spec_.layer_norm)
        for (Eigen::Index j = 0; j < B; ++j)
          layer_norm_column(next.col(j).data(), n, ln_gain_[l].value.data() + static_cast<Eigen::Index>(m) * n,
                            ln_bias_[l].value.data() + static_cast<Eigen::Index>(m) * n);
      if (spec_.activation == Activation::kRelu) {
        float* p = next.data();
        for (Eigen::Index i = 0; i < next.size(); ++i) p[i] = std::max(p[i], 0.0f);
      } else {
        tanh_in_place(next);
      }
      std::swap(cur, next);
    }
  }
}

}  // namespace mtf::nn
