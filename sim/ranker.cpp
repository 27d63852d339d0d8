// Retrieval, MTL predictions, fusion and top-L selection (see ranker.h).
#include "sim/ranker.h"

#include "core/fast_math.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <functional>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <cmath>
#include <numeric>

namespace mtf {
namespace {

constexpr float kProbit = 1.702f;        // Phi(x) ~ sigmoid(1.702 x)
constexpr float kFinishLogit = 3.476f;   // logit(0.97): finished when f >= 0.97
constexpr float kShock = 0.8f;           // interaction shock (users/user_model.cpp)
constexpr float kPi = 3.14159265f;

}  // namespace

void Ranker::Workspace::resize(int n) {
  items.resize(n);
  error_bits.resize(n);
  error_lo.resize(n);
  error_hi.resize(n);
  column.resize(n);
  coin.resize(n);
  frac.resize(n);
  for (auto* a : {&m, &dur, &vl, &sl, &minutes, &score, &terms.play, &terms.watch, &terms.inter})
    a->resize(n);
  for (auto& a : pred) a.resize(n);
  for (auto* a : {&logits.play, &logits.watch, &logits.like, &logits.share, &logits.comment}) a->resize(n);
  order.resize(2 * static_cast<std::size_t>(n) + 16);  // top list, then passing indices (+16 slack)
}

Ranker::Ranker(const Catalogue& catalogue, const RetrievalParams& retrieval, const MtlParams& mtl,
               const UserModel& model)
    : cat_(catalogue),
      n_(retrieval.candidates),
      // Arrays are padded to whole 16-float vectors so Eigen's vectorised exp and
      // log never fall back to scalar calls for a remainder.
      padded_((retrieval.candidates + 15) / 16 * 16),
      shown_(retrieval.shown),
      interest_bias_(static_cast<float>(retrieval.interest_bias)),
      mtl_(mtl),
      watch_noise_(static_cast<float>(model.params().watch_noise)) {
  // The item-attribute coefficients do not depend on the user (user_model.h).
  const ResponseCoeffs k = model.coeffs(UserProfile{}, UserState{});
  // gather_avx512 reads the record as four 32-bit words: fields (0, 1), (2, 3),
  // (4, 5), (6, topic), little-endian.
  static_assert(sizeof(PackedItem) == 16 && offsetof(PackedItem, q) == 0 &&
                offsetof(PackedItem, topic) == 14);
  packed_.resize(static_cast<std::size_t>(cat_.size()));
  for (int t = 0; t < cat_.topics(); ++t)
    max_topic_items_ = std::max(max_topic_items_, cat_.topic_begin[t + 1] - cat_.topic_begin[t]);
  std::vector<std::array<float, kFields>> exact(static_cast<std::size_t>(cat_.size()));
  std::array<float, kFields> largest{};
  for (int i = 0; i < cat_.size(); ++i) {
    const ItemTerms<float> t = item_terms(k, cat_.clickbait[i], cat_.quality[i], cat_.appeal[i]);
    auto& e = exact[static_cast<std::size_t>(i)];
    e = {t.play, t.watch, t.inter, cat_.dur_feature[i], cat_.valid_logit[i], cat_.skip_logit[i],
         cat_.duration[i] / 60.0f};
    for (int f = 0; f < kFields; ++f) largest[f] = std::max(largest[f], std::fabs(e[f]));
  }
  for (int f = 0; f < kFields; ++f) field_scale_[f] = largest[f] > 0 ? largest[f] / 32767.0f : 1.0f;
  for (int i = 0; i < cat_.size(); ++i) {
    PackedItem& p = packed_[static_cast<std::size_t>(i)];
    for (int f = 0; f < kFields; ++f)
      p.q[f] = static_cast<std::int16_t>(std::lround(exact[static_cast<std::size_t>(i)][f] / field_scale_[f]));
    p.topic = cat_.topic[i];
  }}

namespace {
// Retrieval pass 2 for every candidate: topic column, alias coin and the 16-bit item
// fraction from its hash (layout in Ranker::retrieve). A free function over
// restrict pointers so GCC vectorises it; the select is written arithmetically
// for the same reason.
__attribute__((noinline)) void retrieval_columns(int n, const std::uint64_t* __restrict__ hash, int topics,
                       std::uint32_t bias_threshold, float column_scale, int* __restrict__ column,
                       float* __restrict__ coin, std::uint32_t* __restrict__ frac) {
  // (This exact shape vectorises with GCC 12; small rewrites of it did not.)
  for (int i = 0; i < n; ++i) {
    const std::uint64_t h = hash[i];
    const std::uint32_t hi = h >> 32;
    const std::uint32_t lo = h;
    const float x = static_cast<float>(static_cast<std::int32_t>(lo >> 8)) * column_scale;
    int c = static_cast<int>(x);
    c = c < topics ? c : topics - 1;
    column[i] = c;
    // A uniform draw is a biased one whose coin (2) never takes the alias.
    const float cf = x - static_cast<float>(c);
    const bool biased = (hi >> 16) < bias_threshold;
    coin[i] = biased * cf + (!biased) * 2.0f;
    frac[i] = hi & 0xffff;
  }
}
// Retrieval pass 3: the alias table picks the topic of biased draws whose coin
// says so; the 16-bit fraction picks the item within the topic's range. The
// select is arithmetic (a branch would be mispredicted about half the time).
void retrieval_items(int n, const int* __restrict__ column, const float* __restrict__ coin,
                     const std::uint32_t* __restrict__ frac, const float* __restrict__ prob,
                     const int* __restrict__ alias, const int* __restrict__ topic_begin,
                     int* __restrict__ items) {
  for (int i = 0; i < n; ++i) {
    const int c = column[i];
    const int take = static_cast<int>(coin[i] >= prob[c]) & static_cast<int>(coin[i] <= 1.0f);
    const int t = c + take * (alias[c] - c);
    const int begin = topic_begin[t];
    const auto count = static_cast<std::uint64_t>(topic_begin[t + 1] - begin);
    items[i] = begin + static_cast<int>((frac[i] * count) >> 16);
  }
}
#if defined(__AVX512F__)
// Pass 3 with AVX-512: with at most 32 topics, the alias table and the topic
// ranges fit in two registers each, so a lane's lookups are permutes instead of
// scalar loads (GCC does not generate gathers for this CPU). Gives exactly the
// scalar version's items: (frac * count) >> 16 is below 2^32 when count < 2^16.
void retrieval_items_avx512(int n, int topics, const int* column, const float* coin,
                            const std::uint32_t* frac, const float* prob, const int* alias,
                            const int* topic_begin, int* items) {
  alignas(64) float prob32[32] = {};
  alignas(64) int alias32[32] = {}, begin32[32] = {}, count32[32] = {};
  for (int t = 0; t < topics; ++t) {
    prob32[t] = prob[t];
    alias32[t] = alias[t];
    begin32[t] = topic_begin[t];
    count32[t] = topic_begin[t + 1] - topic_begin[t];
  }
  const __m512 prob_lo = _mm512_load_ps(prob32), prob_hi = _mm512_load_ps(prob32 + 16);
  const __m512i alias_lo = _mm512_load_si512(alias32), alias_hi = _mm512_load_si512(alias32 + 16);
  const __m512i begin_lo = _mm512_load_si512(begin32), begin_hi = _mm512_load_si512(begin32 + 16);
  const __m512i count_lo = _mm512_load_si512(count32), count_hi = _mm512_load_si512(count32 + 16);
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int i = 0; i < n; i += 16) {
    const __m512i c = _mm512_loadu_si512(column + i);
    const __m512 cf = _mm512_loadu_ps(coin + i);
    const __m512 p = _mm512_permutex2var_ps(prob_lo, c, prob_hi);
    const __mmask16 take = _mm512_cmp_ps_mask(cf, p, _CMP_GE_OQ) & _mm512_cmp_ps_mask(cf, one, _CMP_LE_OQ);
    const __m512i t = _mm512_mask_blend_epi32(take, c, _mm512_permutex2var_epi32(alias_lo, c, alias_hi));
    const __m512i begin = _mm512_permutex2var_epi32(begin_lo, t, begin_hi);
    const __m512i count = _mm512_permutex2var_epi32(count_lo, t, count_hi);
    const __m512i fr = _mm512_loadu_si512(frac + i);
    const __m512i off = _mm512_srli_epi32(_mm512_mullo_epi32(fr, count), 16);
    _mm512_storeu_si512(items + i, _mm512_add_epi32(begin, off));
  }
}
#endif
}  // namespace

void Ranker::retrieve(std::span<const float> interests, Rng& rng, Workspace& ws) const {
  if (static_cast<int>(ws.items.size()) != padded_) ws.resize(padded_);
  const int topics = static_cast<int>(interests.size());
  // Walker's alias table over topics with weights interest^2 (Vose's construction):
  // a biased draw then costs one comparison instead of a search.
  ws.alias_prob.resize(topics);
  ws.alias.resize(topics);
  ws.small.clear();
  ws.large.clear();
  float total = 0;
  for (int t = 0; t < topics; ++t) total += interests[t] * interests[t];
  for (int t = 0; t < topics; ++t) {
    ws.alias_prob[t] = interests[t] * interests[t] * static_cast<float>(topics) / total;
    ws.alias[t] = t;
    (ws.alias_prob[t] < 1.0f ? ws.small : ws.large).push_back(t);
  }
  while (!ws.small.empty() && !ws.large.empty()) {
    const int s = ws.small.back();
    ws.small.pop_back();
    const int l = ws.large.back();
    ws.alias[s] = l;
    ws.alias_prob[l] -= 1.0f - ws.alias_prob[s];
    if (ws.alias_prob[l] < 1.0f) {
      ws.large.pop_back();
      ws.small.push_back(l);
    }
  }
  for (const int t : ws.small) ws.alias_prob[t] = 1.0f;  // rounding leftovers
  for (const int t : ws.large) ws.alias_prob[t] = 1.0f;
  // One draw from the user's stream keys the request; candidate i then uses the
  // counter-based hash h_i = mix64(key + i * golden), so the loop has no serial
  // dependency and vectorises. Bits of h_i: 63..48 biased-or-uniform (16 bits),
  // 47..32 the item within its topic (a 16-bit fraction: items of a topic of n
  // items are equally likely up to n / 65536), 31..8 the topic column and the
  // alias coin (24 bits).
  const std::uint64_t key = rng();
  const auto bias_threshold = static_cast<std::uint32_t>(interest_bias_ * 65536.0f);
  const float column_scale = static_cast<float>(topics) * 0x1.0p-24f;
  const int n = padded_;
  // Passes 1 and 2 (vectorised): hashes; column, coin and item fraction.
  std::uint64_t* hash = ws.error_bits.data();
  for (int i = 0; i < n; ++i) hash[i] = mix64(key + static_cast<std::uint64_t>(i) * 0x9e3779b97f4a7c15ULL);
  retrieval_columns(n, hash, topics, bias_threshold, column_scale, ws.column.data(), ws.coin.data(),
                    ws.frac.data());
  // Pass 3: alias lookup and the item within the topic.
#if defined(__AVX512F__)
  if (topics <= 32 && max_topic_items_ < 65536 && !force_scalar_) {
    retrieval_items_avx512(n, topics, ws.column.data(), ws.coin.data(), ws.frac.data(),
                           ws.alias_prob.data(), ws.alias.data(), cat_.topic_begin.data(), ws.items.data());
  } else
#endif
  {
    retrieval_items(n, ws.column.data(), ws.coin.data(), ws.frac.data(), ws.alias_prob.data(),
                    ws.alias.data(), cat_.topic_begin.data(), ws.items.data());
  }
  // predict() reads each candidate's packed record next: start the cache misses
  // now, all at once, instead of one dependent chain at a time.
  for (int i = 0; i < n; ++i) __builtin_prefetch(&packed_[static_cast<std::size_t>(ws.items[i])]);
}

namespace {
// One hash per (user, item) holds the MTL errors of all 8 tasks, one byte each;
// a byte is uniform on 0..255: mean 127.5, standard deviation 73.9.
inline std::uint64_t error_bits(std::uint64_t user_key, int item) {
  return mix64(user_key ^ (static_cast<std::uint64_t>(item) * 0xd6e8feb86659fd93ULL));
}
// The error of one task from the 32-bit half of the hash that holds its byte
// (tasks 0-3: low half, 4-7: high half); 32-bit lanes vectorise twice as wide.
inline float error_of_half(std::uint32_t half, int task) {
  return (static_cast<float>((half >> (8 * (task & 3))) & 0xff) - 127.5f) * (1.0f / 73.9f);
}
inline float error_of(std::uint64_t bits, int task) {
  return error_of_half(static_cast<std::uint32_t>(bits >> (task < 4 ? 0 : 32)), task);
}
}  // namespace

float Ranker::mtl_error(std::uint64_t user_key, int item, int task) {
  return error_of(error_bits(user_key, item), task);
}

namespace {

// One task's MTL prediction for every candidate:
//   out = mult * sigmoid(s * (x1 - x2 - shift) + o + z * eps_t),
// with eps_t the task's byte of the candidate's error bits (error_of). A small
// function over restrict pointers so GCC vectorises it in one pass; x2 and mult
// may be null (none), which gives the same bits as zeros and ones would.
template <bool kHasX2, bool kHasMult>
__attribute__((noinline)) void task_pass_impl(int n, const float* __restrict__ x1, const float* __restrict__ x2,
                                              float shift, const std::uint32_t* __restrict__ half, int task,
                                              float s, float o, float z, const float* __restrict__ mult,
                                              float* __restrict__ out) {
  for (int i = 0; i < n; ++i) {
    const float x = kHasX2 ? x1[i] - x2[i] - shift : x1[i] - shift;
    const float g = fast_sigmoid(s * x + o + z * error_of_half(half[i], task));
    out[i] = kHasMult ? mult[i] * g : g;
  }
}

void task_pass(int n, const float* x1, const float* x2, float shift, const std::uint32_t* half, int task,
               float s, float o, float z, const float* mult, float* out) {
  if (x2)
    task_pass_impl<true, true>(n, x1, x2, shift, half, task, s, o, z, mult, out);
  else if (mult)
    task_pass_impl<false, true>(n, x1, x2, shift, half, task, s, o, z, mult, out);
  else
    task_pass_impl<false, false>(n, x1, x2, shift, half, task, s, o, z, mult, out);
}

}  // namespace

#if defined(__AVX512F__)
namespace {
// The gather stage of predict() with AVX-512 gathers (the packed record is 8
// four-byte fields) and, with at most 32 topics, the interest lookup as a
// permute. Writes exactly what the scalar loop writes.
void gather_avx512(int n, const int* items, const void* packed, const float* scale,
                   const float* interests, int topics, Ranker::Workspace& ws) {
  alignas(64) float interest32[32] = {};
  for (int t = 0; t < topics; ++t) interest32[t] = interests[t];
  const __m512 int_lo = _mm512_load_ps(interest32), int_hi = _mm512_load_ps(interest32 + 16);
  const int* base = static_cast<const int*>(packed);
  float* out[7] = {ws.terms.play.data(), ws.terms.watch.data(), ws.terms.inter.data(), ws.dur.data(),
                   ws.vl.data(), ws.sl.data(), ws.minutes.data()};
  __m512 sc[7];
  for (int f = 0; f < 7; ++f) sc[f] = _mm512_set1_ps(scale[f]);
  float* m = ws.m.data();
  for (int i = 0; i < n; i += 16) {
    const __m512i idx = _mm512_slli_epi32(_mm512_loadu_si512(items + i), 2);  // 4 words per record
    for (int w = 0; w < 4; ++w) {
      const __m512i word = _mm512_i32gather_epi32(idx, base + w, 4);
      // Low half: sign-extend the low 16 bits; high half: arithmetic shift.
      const __m512i low = _mm512_srai_epi32(_mm512_slli_epi32(word, 16), 16);
      _mm512_storeu_ps(out[2 * w] + i, _mm512_mul_ps(_mm512_cvtepi32_ps(low), sc[2 * w]));
      if (w < 3) {
        const __m512i high = _mm512_srai_epi32(word, 16);
        _mm512_storeu_ps(out[2 * w + 1] + i, _mm512_mul_ps(_mm512_cvtepi32_ps(high), sc[2 * w + 1]));
      } else {
        const __m512i topic = _mm512_srli_epi32(word, 16);
        _mm512_storeu_ps(m + i, _mm512_permutex2var_ps(int_lo, topic, int_hi));
      }
    }
  }
}
}  // namespace
#endif

void Ranker::predict(const ResponseCoeffs& k, std::uint64_t user_key,
                     std::span<const float> interests, Workspace& ws) const {
  // Gather each candidate's packed record into arrays, then evaluate the
  // truth's logits (users/user_model.h, the single definition) over them.
  const int n = padded_;
  const int* items = ws.items.data();
#if defined(__AVX512F__)
  const int topics = static_cast<int>(interests.size());
  if (topics <= 32 && !force_scalar_) {
    gather_avx512(n, items, packed_.data(), field_scale_, interests.data(), topics, ws);
  } else
#endif
  {
    for (int i = 0; i < n; ++i) {
      const PackedItem& p = packed_[static_cast<std::size_t>(items[i])];
      const auto field = [&](int f) { return static_cast<float>(p.q[f]) * field_scale_[f]; };
      ws.m[i] = interests[p.topic];
      ws.terms.play[i] = field(kTermPlay);
      ws.terms.watch[i] = field(kTermWatch);
      ws.terms.inter[i] = field(kTermInter);
      ws.dur[i] = field(kDur);
      ws.vl[i] = field(kValidLogit);
      ws.sl[i] = field(kSkipLogit);
      ws.minutes[i] = field(kMinutes);
    }
  }
  response_logits(k, ws.m, ws.dur, ws.terms, ws.logits);
  const ResponseLogits<Eigen::ArrayXf>& L = ws.logits;
  const float *lp = L.play.data(), *lw = L.watch.data(), *ll = L.like.data(), *ls = L.share.data(),
              *lc = L.comment.data(), *vl = ws.vl.data(), *sl = ws.sl.data();
  std::uint32_t* lo = ws.error_lo.data();
  std::uint32_t* hi = ws.error_hi.data();
  for (int i = 0; i < n; ++i) {  // vectorised
    const std::uint64_t h = error_bits(user_key, items[i]);
    lo[i] = static_cast<std::uint32_t>(h);
    hi[i] = static_cast<std::uint32_t>(h >> 32);
  }
  const float a = kProbit / watch_noise_;
  const float watch_scale = 1.0f / std::sqrt(1.0f + kPi * watch_noise_ * watch_noise_ / 8.0f);
  const float inter_scale = 1.0f / std::sqrt(1.0f + kPi * kShock * kShock / 8.0f);
  // pred_t = mult * g_t with g_t = sigmoid(scale_t x_t + offset_t + noise_t eps_t)
  // (ranker.h); x_t = factor * (x1 - x2 - shift).
  auto pass = [&](Task task, float factor, const float* x1, const float* x2, float shift,
                  const float* mult) {
    const int t = static_cast<int>(task);
    const TaskModelParams& p = mtl_.tasks[t];
    task_pass(n, x1, x2, shift, t < 4 ? lo : hi, t, static_cast<float>(p.scale) * factor,
              static_cast<float>(p.offset), static_cast<float>(p.noise), mult, ws.pred[t].data());
  };
  pass(Task::kPlay, 1.0f, lp, nullptr, 0.0f, nullptr);
  const float* play = ws.pred[static_cast<int>(Task::kPlay)].data();
  pass(Task::kValid, a, lw, vl, 0.0f, play);
  pass(Task::kWatchTime, watch_scale, lw, nullptr, 0.0f, play);
  pass(Task::kFinish, a, lw, nullptr, kFinishLogit, play);
  pass(Task::kLike, inter_scale, ll, nullptr, 0.0f, play);
  pass(Task::kShare, inter_scale, ls, nullptr, 0.0f, play);
  pass(Task::kComment, inter_scale, lc, nullptr, 0.0f, play);
  pass(Task::kSkip, a, sl, lw, 0.0f, play);
  auto& P = ws.pred;
  P[static_cast<int>(Task::kWatchTime)] *= ws.minutes;
  // skip = (1 - play) + play * g_skip
  P[static_cast<int>(Task::kSkip)] += 1.0f - P[static_cast<int>(Task::kPlay)];
}

namespace {
// score = sum_t w_t log(p_t + b_t) over the 8 tasks in one pass over the
// candidates (restrict pointers and scalar locals, so GCC vectorises it); a
// zero weight adds exactly 0 since fast_log is finite.
__attribute__((noinline)) void fuse_pass(int n, const float* __restrict__ p0, const float* __restrict__ p1,
                                         const float* __restrict__ p2, const float* __restrict__ p3,
                                         const float* __restrict__ p4, const float* __restrict__ p5,
                                         const float* __restrict__ p6, const float* __restrict__ p7,
                                         const FusionWeights& fw, float* __restrict__ score) {
  const float w0 = fw.weight[0], w1 = fw.weight[1], w2 = fw.weight[2], w3 = fw.weight[3],
              w4 = fw.weight[4], w5 = fw.weight[5], w6 = fw.weight[6], w7 = fw.weight[7];
  const float b0 = fw.bias[0], b1 = fw.bias[1], b2 = fw.bias[2], b3 = fw.bias[3], b4 = fw.bias[4],
              b5 = fw.bias[5], b6 = fw.bias[6], b7 = fw.bias[7];
  for (int i = 0; i < n; ++i) {
    float s = w0 * fast_log(p0[i] + b0);
    s += w1 * fast_log(p1[i] + b1);
    s += w2 * fast_log(p2[i] + b2);
    s += w3 * fast_log(p3[i] + b3);
    s += w4 * fast_log(p4[i] + b4);
    s += w5 * fast_log(p5[i] + b5);
    s += w6 * fast_log(p6[i] + b6);
    s += w7 * fast_log(p7[i] + b7);
    score[i] = s;
  }
}
}  // namespace

void Ranker::fuse(const FusionWeights& w, Workspace& ws) const {
  static_assert(kNumTasks == 8, "fuse_pass takes one array per task");
  const auto& P = ws.pred;
  fuse_pass(padded_, P[0].data(), P[1].data(), P[2].data(), P[3].data(), P[4].data(), P[5].data(),
            P[6].data(), P[7].data(), w, ws.score.data());
}

int Ranker::select_top(Workspace& ws, std::span<int> out) const {
  const int want = std::min<int>(shown_, static_cast<int>(out.size()));
  // Keep the best k = shown + 2 (two spares absorb duplicate items; more
  // duplicates fall back to a full sort). Ties keep the lower index first; NaN
  // scores (a degenerate weight choice) never enter.
  const int k = std::min({n_, want + 2, 64});
  // A threshold no higher than the k-th best score: the k-th largest of the
  // maxima of blocks of 16 (k blocks have a maximum at least that high). Only
  // candidates at or above it (typically 1.5 k) go through the insertion below.
  constexpr int kBlock = 16;
  const int blocks = (n_ + kBlock - 1) / kBlock;
  float threshold = -INFINITY;
  if (blocks >= k) {
    float block_max[64];
    const int nb = std::min(blocks, 64);
    int b0 = 0;
#if defined(__AVX512F__)
    if (!force_scalar_) {  // one masked load and a reduction per block (NaN and padding as -inf)
      for (; b0 < nb; ++b0) {
        const int left = n_ - b0 * kBlock;
        const __mmask16 valid = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1u);
        const __m512 x = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), valid, ws.score.data() + b0 * kBlock);
        const __m512 clean = _mm512_mask_mov_ps(_mm512_set1_ps(-INFINITY), _mm512_cmp_ps_mask(x, x, _CMP_ORD_Q), x);
        block_max[b0] = _mm512_reduce_max_ps(clean);
      }
    }
#endif
    for (int b = b0; b < nb; ++b) {
      float m = -INFINITY;
      const int end = std::min(n_, (b + 1) * kBlock);
      for (int i = b * kBlock; i < end; ++i) m = ws.score[i] > m ? ws.score[i] : m;  // NaN never wins
      block_max[b] = m;
    }
    std::nth_element(block_max, block_max + (k - 1), block_max + nb, std::greater<float>());
    threshold = block_max[k - 1];
  }
  // Branch-free compaction of the indices that pass.
  int* pass = ws.order.data() + n_;  // second half of the scratch (order has 2n entries)
  int passed = 0;
  int i0 = 0;
#if defined(__AVX512F__)
  if (!force_scalar_) {  // 16 lanes at a time with a compress-store
    const __m512 thr = _mm512_set1_ps(threshold);
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    for (; i0 + 16 <= n_; i0 += 16) {
      const __mmask16 keep = _mm512_cmp_ps_mask(_mm512_loadu_ps(ws.score.data() + i0), thr, _CMP_GE_OQ);
      // Compress in a register and store all 16 lanes (lanes past the kept ones are
      // overwritten by the next store): a compress to memory is microcoded and slow on Zen 4.
      _mm512_storeu_si512(pass + passed, _mm512_maskz_compress_epi32(keep, _mm512_add_epi32(lane, _mm512_set1_epi32(i0))));
      passed += __builtin_popcount(keep);
    }
  }
#endif
  for (int i = i0; i < n_; ++i) {
    pass[passed] = i;
    passed += ws.score[i] >= threshold;  // false for NaN
  }
  // The shown items come from the passing candidates: start loading their
  // catalogue records (read by the user's reaction next) while we sort.
  for (int p = 0; p < passed; ++p)
    __builtin_prefetch(&cat_.view[static_cast<std::size_t>(ws.items[pass[p]])]);
  int* best = ws.order.data();
  float best_score[64];
  int filled = 0;
  for (int p = 0; p < passed; ++p) {
    const int i = pass[p];
    const float s = ws.score[i];
    if (filled == k && !(s > best_score[k - 1])) continue;
    int j = filled < k ? filled++ : k - 1;
    while (j > 0 && s > best_score[j - 1]) {
      best_score[j] = best_score[j - 1];
      best[j] = best[j - 1];
      --j;
    }
    best_score[j] = s;
    best[j] = i;
  }
  int got = 0;
  for (int j = 0; j < filled && got < want; ++j) {
    bool dup = false;
    for (int g = 0; g < got; ++g) dup |= ws.items[out[g]] == ws.items[best[j]];
    if (!dup) out[got++] = best[j];
  }
  if (got == want) return got;
  // Rare: too many duplicates (or NaNs) among the best; rank everything.
  std::vector<int> all(n_);
  std::iota(all.begin(), all.end(), 0);
  std::stable_sort(all.begin(), all.end(), [&](int x, int y) {
    const float sx = std::isnan(ws.score[x]) ? -INFINITY : ws.score[x];
    const float sy = std::isnan(ws.score[y]) ? -INFINITY : ws.score[y];
    return sx > sy;
  });
  got = 0;
  for (int j = 0; j < n_ && got < want; ++j) {
    bool dup = false;
    for (int g = 0; g < got; ++g) dup |= ws.items[out[g]] == ws.items[all[j]];
    if (!dup) out[got++] = all[j];
  }
  return got;
}

}  // namespace mtf
