// Matrix types, parameters, counted matrix products and the thread setting of
// the network library.
//
// Batch layout, chosen once for all of agents/: a batch is a column-major
// float32 matrix of shape features x batch, one column per sample. A layer is
// then Z = W * X + b with W of shape out x in, and every product over a batch is
// one Eigen GEMM.
//
// Threads: parallel work is split into a FIXED set of tasks (one per ensemble
// member, or fixed-size column/element chunks) that never depends on the number
// of threads, and each task runs Eigen single-threaded. A task computes the same
// bits whichever thread runs it, so training gives identical results for any
// thread count. Eigen's own multi-threaded GEMM is not used: it chooses its
// cache blocking (and so the order of its sums) from the thread count.
//
// Acting uses its own product, affine_columns: each entry is one fused
// multiply-add chain in a fixed order, so a column's result never depends on the
// other columns of the batch (Eigen's GEMM and GEMV sum in different orders).
#pragma once

#include <Eigen/Core>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mtf::nn {

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
using Vector = Eigen::VectorXf;
using RowVector = Eigen::RowVectorXf;
using ConstRef = Eigen::Ref<const Matrix>;
using MutRef = Eigen::Ref<Matrix>;

/// A trainable tensor and its gradient (same shape). Biases are n x 1 matrices.
struct Param {
  std::string name;
  Matrix value;
  Matrix grad;
};

/// Adds to the process-wide count of floating-point operations done in matrix
/// products (2 m n k per product) while counting is on; used by the training
/// benchmark. Off by default so that concurrent act() calls do not contend.
void add_flops(double flops) noexcept;
void set_flop_counting(bool on) noexcept;
/// Floating-point operations counted since the last reset.
double flop_count() noexcept;
void reset_flop_count() noexcept;

/// Number of threads used for the fixed task decompositions of agents/
/// (default 1). Never changes results, only speed.
void set_num_threads(int threads);
int num_threads() noexcept;

/// C = A * B, counted. C may be a block of a larger matrix.
template <class DC, class DA, class DB>
inline void gemm(DC&& c, const DA& a, const DB& b) {
  add_flops(2.0 * double(a.rows()) * double(a.cols()) * double(b.cols()));
  c.noalias() = a * b;
}

/// C += A * B, counted.
template <class DC, class DA, class DB>
inline void gemm_add(DC&& c, const DA& a, const DB& b) {
  add_flops(2.0 * double(a.rows()) * double(a.cols()) * double(b.cols()));
  c.noalias() += a * b;
}

/// Columns per task when a single network's batch is split across threads.
inline constexpr int kColumnChunk = 128;
/// Elements per task in elementwise parameter updates (Adam, soft updates).
inline constexpr std::int64_t kElementChunk = 1 << 16;

/// Runs fn(task) for task in [0, tasks) on num_threads() threads. The tasks must
/// be independent; they are handed out dynamically (a thread that loses its core
/// to another process does not hold the others up), which cannot change results
/// because each task's computation is fixed.
template <class Fn>
void parallel_for(int tasks, Fn&& fn);

/// out(:, j) = b + W * x(:, j) for the columns j of x, the product of acting.
/// Entry (i, j) is the chain acc = b(i); acc = fma(W(i, k), x(k, j), acc) for
/// k = 0, 1, ..., depth - 1 with std::fma semantics (one rounding per step), so
/// its bits depend only on row i of W, b(i) and column j of x: not on the other
/// columns, the batch size, the tiling or whether a lane is vectorised. That is
/// what lets a policy act on a whole batch at once and still give each request
/// exactly the action it gets alone. W is rows x depth with column stride ldw;
/// x is depth x cols with column stride ldx; out is rows x cols with column
/// stride ldo and must not overlap W, b or x. Register-tiled (32 rows x 8
/// columns with AVX-512): on batches of 8 or more columns several times faster
/// than a GEMV per column and faster than Eigen's GEMM on the actors' shapes.
void affine_columns(const float* w, std::ptrdiff_t ldw, const float* b, std::ptrdiff_t rows, std::ptrdiff_t depth,
                    const float* x, std::ptrdiff_t ldx, std::ptrdiff_t cols, float* out, std::ptrdiff_t ldo);

/// tanh(v) for float, the rational approximation of Eigen's vectorised tanh
/// (13/6 degree, a few ulp) evaluated with std::fma, so every element gets the
/// same bits whatever its position (Eigen's own tanh evaluates vector lanes and
/// scalar tails differently, which would make acting depend on the batch).
float tanh_exact_order(float v) noexcept;
/// m = tanh_exact_order(m) elementwise, in place.
void tanh_in_place(MutRef m) noexcept;

/// True when all entries are finite.
inline bool all_finite(const ConstRef& m) { return m.allFinite(); }

}  // namespace mtf::nn

#include "agents/nn/parallel_impl.h"
