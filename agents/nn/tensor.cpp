// Flop counter and thread setting of the network library, and the product of
// acting (affine_columns: per-column fma chains, register-tiled).
#include "agents/nn/tensor.h"

#include <Eigen/Core>
#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstddef>
#include <cmath>
#include <stdexcept>
#include <vector>

namespace mtf::nn {
namespace {
std::atomic<double> g_flops{0.0};
std::atomic<int> g_threads{1};
std::atomic<bool> g_counting{false};
}  // namespace

void set_flop_counting(bool on) noexcept { g_counting.store(on, std::memory_order_relaxed); }

void add_flops(double flops) noexcept {
  if (!g_counting.load(std::memory_order_relaxed)) return;
  // Relaxed: the count is a statistic read after the work is done.
  double cur = g_flops.load(std::memory_order_relaxed);
  while (!g_flops.compare_exchange_weak(cur, cur + flops, std::memory_order_relaxed)) {
  }
}
double flop_count() noexcept { return g_flops.load(std::memory_order_relaxed); }
void reset_flop_count() noexcept { g_flops.store(0.0, std::memory_order_relaxed); }

void set_num_threads(int threads) {
  if (threads < 1) throw std::invalid_argument("threads: expected an integer >= 1");
  g_threads.store(threads, std::memory_order_relaxed);
  // Each task runs Eigen on one thread; see tensor.h for why.
  Eigen::setNbThreads(1);
}
int num_threads() noexcept { return g_threads.load(std::memory_order_relaxed); }

// ---------------------------------------------------------------- acting product
namespace {

// Tile shape of affine_columns: kRows rows (whole SIMD registers) by kCols
// columns of accumulators kept in registers, so each load of W feeds kCols
// fused multiply-adds. Groups of fewer columns (a batch's last columns, act()'s
// single one) take taller panels so that enough independent chains hide the fma
// latency. Only speed depends on the shape, never the bits.
#if defined(__AVX512F__)
constexpr int kRows = 32;  // 2 x 16 lanes; 8 columns: 16 of the 32 zmm registers
constexpr int kCols = 8;
#else
constexpr int kRows = 16;  // 2 x 8 lanes (AVX2); 6 columns: 12 of the 16 ymm registers
constexpr int kCols = 6;
#endif

// One tile: out(0:R, 0:C) = b + W x, W an R x depth panel (stride ldw), x
// depth x C (stride ldx). Each entry is the chain acc = fma(w_k, x_k, acc) from
// the bias, k ascending: one correctly rounded fused multiply-add per term, so
// the explicit SIMD form below and the portable loop give the same bits.
#if defined(__AVX512F__)
using Lane = __m512;
constexpr int kLanes = 16;
inline Lane lane_load(const float* p) { return _mm512_loadu_ps(p); }
inline void lane_store(float* p, Lane v) { _mm512_storeu_ps(p, v); }
inline Lane lane_set1(float x) { return _mm512_set1_ps(x); }
inline Lane lane_fma(Lane a, Lane b, Lane c) { return _mm512_fmadd_ps(a, b, c); }
#define MTF_LANES 1
#elif defined(__AVX2__) && defined(__FMA__)
using Lane = __m256;
constexpr int kLanes = 8;
inline Lane lane_load(const float* p) { return _mm256_loadu_ps(p); }
inline void lane_store(float* p, Lane v) { _mm256_storeu_ps(p, v); }
inline Lane lane_set1(float x) { return _mm256_set1_ps(x); }
inline Lane lane_fma(Lane a, Lane b, Lane c) { return _mm256_fmadd_ps(a, b, c); }
#define MTF_LANES 1
#endif

#ifdef MTF_LANES
// Accumulators in named vector registers: C x R / kLanes of them, each weight
// vector loaded once per k and used for C columns. (GCC does not keep the
// portable loop's float acc[C][R] in registers: it spilled and shuffled it in
// 128-bit pieces, at about an eighth of this speed.)
template <int R, int C>
inline void tile(const float* __restrict w, std::ptrdiff_t ldw, const float* __restrict b,
                 const float* __restrict x, std::ptrdiff_t ldx, std::ptrdiff_t depth, float* __restrict out,
                 std::ptrdiff_t ldo) {
  static_assert(R % kLanes == 0);
  constexpr int V = R / kLanes;
  Lane acc[C][V];
  for (int v = 0; v < V; ++v) {
    const Lane bv = lane_load(b + v * kLanes);
    for (int c = 0; c < C; ++c) acc[c][v] = bv;
  }
  for (std::ptrdiff_t k = 0; k < depth; ++k) {
    const float* wk = w + k * ldw;
    Lane wv[V];
    for (int v = 0; v < V; ++v) wv[v] = lane_load(wk + v * kLanes);
    for (int c = 0; c < C; ++c) {
      const Lane xv = lane_set1(x[c * ldx + k]);
      for (int v = 0; v < V; ++v) acc[c][v] = lane_fma(wv[v], xv, acc[c][v]);
    }
  }
  for (int c = 0; c < C; ++c)
    for (int v = 0; v < V; ++v) lane_store(out + c * ldo + v * kLanes, acc[c][v]);
}
#else
// Portable: the same chains, left to the compiler.
template <int R, int C>
inline void tile(const float* __restrict w, std::ptrdiff_t ldw, const float* __restrict b,
                 const float* __restrict x, std::ptrdiff_t ldx, std::ptrdiff_t depth, float* __restrict out,
                 std::ptrdiff_t ldo) {
  float acc[C][R];
  for (int c = 0; c < C; ++c)
    for (int r = 0; r < R; ++r) acc[c][r] = b[r];
  for (std::ptrdiff_t k = 0; k < depth; ++k) {
    const float* wk = w + k * ldw;
    for (int c = 0; c < C; ++c) {
      const float xv = x[c * ldx + k];
      for (int r = 0; r < R; ++r) acc[c][r] = std::fma(wk[r], xv, acc[c][r]);
    }
  }
  for (int c = 0; c < C; ++c)
    for (int r = 0; r < R; ++r) out[c * ldo + r] = acc[c][r];
}
#endif

// All rows of C columns: taller panels for few columns, then kRows, then the zero-padded
// copy of the last rows (pad_w: kRows x depth, pad_b: kRows; valid rows tail).
template <int C>
void column_group(const float* w, std::ptrdiff_t ldw, const float* b, std::ptrdiff_t rows, std::ptrdiff_t depth,
                  const float* x, std::ptrdiff_t ldx, float* out, std::ptrdiff_t ldo, const float* pad_w,
                  const float* pad_b) {
  std::ptrdiff_t i0 = 0;
  if constexpr (C == 1)
    for (; i0 + 4 * kRows <= rows; i0 += 4 * kRows) tile<4 * kRows, C>(w + i0, ldw, b + i0, x, ldx, depth, out + i0, ldo);
  if constexpr (C <= 3)
    for (; i0 + 2 * kRows <= rows; i0 += 2 * kRows) tile<2 * kRows, C>(w + i0, ldw, b + i0, x, ldx, depth, out + i0, ldo);
  for (; i0 + kRows <= rows; i0 += kRows) tile<kRows, C>(w + i0, ldw, b + i0, x, ldx, depth, out + i0, ldo);
  if (i0 < rows) {
    float tmp[C * kRows];
    tile<kRows, C>(pad_w, kRows, pad_b, x, ldx, depth, tmp, kRows);
    for (int c = 0; c < C; ++c) std::copy_n(tmp + c * kRows, rows - i0, out + c * ldo + i0);
  }
}

}  // namespace

void affine_columns(const float* w, std::ptrdiff_t ldw, const float* b, std::ptrdiff_t rows, std::ptrdiff_t depth,
                    const float* x, std::ptrdiff_t ldx, std::ptrdiff_t cols, float* out, std::ptrdiff_t ldo) {
  if (rows <= 0 || cols <= 0) return;
  add_flops(2.0 * double(rows) * double(depth) * double(cols));
  // The last rows (fewer than kRows) go through a zero-padded copy of their
  // panel; padded rows are computed and dropped. A padded row changes no other
  // row's chain, so the kept rows have the bits of an unpadded computation.
  const std::ptrdiff_t full = rows / kRows * kRows;
  const std::ptrdiff_t tail_rows = rows - full;
  std::vector<float> pad_w, pad_b;
  if (tail_rows > 0) {
    pad_w.assign(static_cast<std::size_t>(kRows * depth), 0.0f);
    pad_b.assign(kRows, 0.0f);
    for (std::ptrdiff_t k = 0; k < depth; ++k) std::copy_n(w + k * ldw + full, tail_rows, pad_w.data() + k * kRows);
    std::copy_n(b + full, tail_rows, pad_b.data());
  }
  // Column groups outer: a group's x (depth x kCols) stays in L1 while W passes
  // over it once (W, at most a few hundred KiB for the actors, stays in L2).
  std::ptrdiff_t j = 0;
  for (; j + kCols <= cols; j += kCols)
    column_group<kCols>(w, ldw, b, rows, depth, x + j * ldx, ldx, out + j * ldo, ldo, pad_w.data(), pad_b.data());
  const float* xj = x + j * ldx;
  float* oj = out + j * ldo;
  switch (cols - j) {
    case 0: break;
    case 1: column_group<1>(w, ldw, b, rows, depth, xj, ldx, oj, ldo, pad_w.data(), pad_b.data()); break;
    case 2: column_group<2>(w, ldw, b, rows, depth, xj, ldx, oj, ldo, pad_w.data(), pad_b.data()); break;
    case 3: column_group<3>(w, ldw, b, rows, depth, xj, ldx, oj, ldo, pad_w.data(), pad_b.data()); break;
    case 4: column_group<4>(w, ldw, b, rows, depth, xj, ldx, oj, ldo, pad_w.data(), pad_b.data()); break;
    case 5: column_group<5>(w, ldw, b, rows, depth, xj, ldx, oj, ldo, pad_w.data(), pad_b.data()); break;
#if defined(__AVX512F__)
    case 6: column_group<6>(w, ldw, b, rows, depth, xj, ldx, oj, ldo, pad_w.data(), pad_b.data()); break;
    case 7: column_group<7>(w, ldw, b, rows, depth, xj, ldx, oj, ldo, pad_w.data(), pad_b.data()); break;
#endif
    default: assert(false);
  }
}

float tanh_exact_order(float v) noexcept {
  // Eigen's generic_fast_tanh_float (FMA variant): clamp, odd/even polynomials
  // in Horner form, one division; |v| < 0.0004 returns v.
  const float x = std::max(std::min(v, 7.99881172180175781f), -7.99881172180175781f);
  const float x2 = x * x;
  float p = std::fma(x2, -2.76076847742355e-16f, 2.00018790482477e-13f);
  p = std::fma(x2, p, -8.60467152213735e-11f);
  p = std::fma(x2, p, 5.12229709037114e-08f);
  p = std::fma(x2, p, 1.48572235717979e-05f);
  p = std::fma(x2, p, 6.37261928875436e-04f);
  p = std::fma(x2, p, 4.89352455891786e-03f);
  p = x * p;
  float q = std::fma(x2, 1.19825839466702e-06f, 1.18534705686654e-04f);
  q = std::fma(x2, q, 2.26843463243900e-03f);
  q = std::fma(x2, q, 4.89352518554385e-03f);
  return std::abs(v) < 0.0004f ? x : p / q;
}

void tanh_in_place(MutRef m) noexcept {
  for (Eigen::Index j = 0; j < m.cols(); ++j) {
    float* c = m.col(j).data();
    for (Eigen::Index i = 0; i < m.rows(); ++i) c[i] = tanh_exact_order(c[i]);
  }
}

}  // namespace mtf::nn
