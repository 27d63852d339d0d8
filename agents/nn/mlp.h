// Multi-layer perceptrons and ensembles of them, forward and backward over a
// whole batch (features x batch, see tensor.h).
//
// An `Mlp` with `members` = M is M independent networks of the same shape that
// read the same input: the critic ensemble of IntegratedRL-MTF (M = 24) is one Mlp.
// Every layer is stored stacked: layer l is one (M * n_l) x n_{l-1} matrix whose
// rows [m * n_l, (m + 1) * n_l) belong to member m, so the first layers of all
// members form one product W_0 * X, and the deeper layers are per-member blocks.
// The forward pass computes that first product for all members at once (cut
// into fixed slabs of rows for the threads; without layer norm), then one task
// per member for the deeper layers (each a full-batch GEMM chain, no per-sample
// loops); a single network (M = 1) splits its batch into fixed column chunks
// instead. Members never interact, so one Adam over the stacked
// matrices is M independent optimisers.
//
// infer_columns is the forward pass of acting: built on affine_columns
// (tensor.h), a column's output does not depend on the rest of the batch.
#pragma once

#include <cstdint>
#include <vector>

#include "agents/nn/tensor.h"
#include "core/rng.h"

namespace mtf::nn {

enum class Activation { kRelu, kTanh };
enum class Init { kFanIn, kOrthogonal };

struct MlpSpec {
  int input = 0;                 ///< input features
  std::vector<int> hidden;       ///< hidden layer widths (may be empty: a linear map)
  int output = 1;                ///< outputs per member
  int members = 1;               ///< ensemble size M
  Activation activation = Activation::kRelu;  ///< of the hidden layers
  bool layer_norm = false;       ///< layer norm after each hidden linear map, before the activation
  float dropout = 0.0f;          ///< dropout on hidden activations when forward() gets an rng
  Init init = Init::kFanIn;
  /// Output layer weights and biases drawn from U(-s, s) when s > 0 (DDPG's
  /// small final layer); otherwise the layer uses `init` like the others.
  float output_init_scale = 0.0f;
};

/// Activations kept by forward() for backward(). Reused between calls: buffers
/// are resized only when the batch size changes.
struct MlpWorkspace {
  std::vector<Matrix> act;     ///< per hidden layer: activation (M * n_l) x B (before dropout)
  std::vector<Matrix> drop;    ///< per hidden layer with dropout: activation after dropout
  std::vector<Matrix> mask;    ///< per hidden layer with dropout: 0 or 1/(1-p)
  std::vector<Matrix> xhat;    ///< layer norm: normalised pre-activation
  std::vector<Matrix> rstd;    ///< layer norm: 1 / std, M x B
  Matrix out;                  ///< (M * output) x B
  std::vector<Matrix> grad_z;  ///< backward: gradient w.r.t. each layer's linear output
  std::vector<Matrix> grad_y;  ///< backward: gradient w.r.t. each layer norm's output
  bool training_dropout = false;
};

/// What backward() computes.
struct BackwardOptions {
  bool param_grads = true;     ///< write (or add to) each Param::grad
  bool accumulate = false;     ///< add to the gradients instead of overwriting them
  /// Gradient w.r.t. input rows [input_begin, input_begin + input_count), written
  /// to *input_grad (resized to input_count x B); skipped when input_grad is null.
  Matrix* input_grad = nullptr;
  int input_begin = 0;
  int input_count = -1;        ///< -1: to the last input row
};

class Mlp {
 public:
  Mlp() = default;
  /// Initialises the weights from `rng` (members drawn one after another).
  Mlp(const MlpSpec& spec, Rng& rng);

  const MlpSpec& spec() const { return spec_; }
  int members() const { return spec_.members; }
  int input_dim() const { return spec_.input; }
  int output_dim() const { return spec_.output; }

  /// Forward pass over a batch x (input x B); keeps what backward() needs in ws.
  /// With `dropout_rng` and spec().dropout > 0, applies (inverted) dropout with
  /// masks drawn from it (MC dropout). Returns ws.out, (M * output) x B.
  const Matrix& forward(const ConstRef& x, MlpWorkspace& ws, Rng* dropout_rng = nullptr) const;

  /// Back-propagates dout ((M * output) x B) through the last forward(x, ws).
  /// Parameter gradients (sums over the batch) go into params' grad.
  void backward(const ConstRef& x, const ConstRef& dout, MlpWorkspace& ws,
                const BackwardOptions& opt);
  /// Input gradient only; leaves the parameter gradients alone (const, so that
  /// an actor can back-propagate through a critic it does not update).
  void input_backward(const ConstRef& x, const ConstRef& dout, MlpWorkspace& ws, Matrix& input_grad,
                      int input_begin = 0, int input_count = -1) const;

  /// Forward pass without dropout into out, with local buffers: safe to call
  /// concurrently from many threads.
  void infer(const ConstRef& x, Matrix& out) const;

  /// The forward pass of acting: as infer() (same layers, layer norm and
  /// activations, no dropout), but each column of out depends only on the same
  /// column of x, bit for bit, whatever the other columns and the batch size
  /// (affine_columns products; layer norm summed per column in a fixed order).
  /// So a policy can act on a whole batch of requests at once and give each one
  /// exactly the action it gets alone. Agrees with infer() to float rounding,
  /// not bit for bit (infer() sums its products in Eigen's order), so training
  /// and critic targets keep infer()/forward(). Thread-safe (local buffers).
  void infer_columns(const ConstRef& x, Matrix& out) const;

  std::vector<Param*> params();
  std::vector<const Param*> params() const;
  /// Number of scalar parameters.
  std::int64_t param_count() const;

  /// this = w * other + (1 - w) * this, parameter by parameter (soft target update).
  void soft_update_from(const Mlp& other, float w);
  void copy_from(const Mlp& other);

 private:
  void backward_impl(const ConstRef& x, const ConstRef& dout, MlpWorkspace& ws,
                     const BackwardOptions& opt, bool write_grads);
  int layers() const { return static_cast<int>(spec_.hidden.size()) + 1; }
  int width(int l) const;   // outputs per member of layer l
  int fan_in(int l) const;  // inputs of layer l

  MlpSpec spec_;
  // per layer l: weight_[l] is (M * width(l)) x fan_in(l), bias_[l] is (M * width(l)) x 1;
  // ln_gain_[l], ln_bias_[l] for hidden layers when layer_norm.
  std::vector<Param> weight_, bias_, ln_gain_, ln_bias_;
};

/// Layer norm epsilon (added to the variance).
inline constexpr float kLayerNormEps = 1e-5f;

}  // namespace mtf::nn
