// Retrieval, MTL predictions, fusion and top-L selection (see ranker.h).
#include "sim/ranker.h"

#include "sim/fast_math.h"

#include <algorithm>
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
  column.resize(n);
  coin.resize(n);
  frac.resize(n);
  for (auto* a : {&vl, &sl, &minutes, &score}) a->resize(n);
  zeros = Eigen::ArrayXf::Zero(n);
  ones = Eigen::ArrayXf::Ones(n);
  for (auto& a : pred) a.resize(n);
  for (auto* a : {&logits.play, &logits.watch, &logits.like, &logits.share, &logits.comment}) a->resize(n);
  order.resize(n);
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
  packed_.resize(static_cast<std::size_t>(cat_.size()));
  for (int i = 0; i < cat_.size(); ++i) {
    const ItemTerms<float> t = item_terms(k, cat_.clickbait[i], cat_.quality[i], cat_.appeal[i]);
    packed_[i] = PackedItem{t.play, t.watch, t.inter, cat_.dur_feature[i], cat_.valid_logit[i],
                            cat_.skip_logit[i], cat_.duration[i] / 60.0f, cat_.topic[i]};
  }
}

namespace {
// Retrieval pass 2 for every candidate: topic column, alias coin and the 16-bit item
// fraction from its hash (layout in Ranker::retrieve). A free function over
// restrict pointers so GCC vectorises it; the select is written arithmetically
// for the same reason.
void retrieval_columns(int n, const std::uint64_t* __restrict__ hash, int topics,
                       std::uint32_t bias_threshold, float column_scale, int* __restrict__ column,
                       float* __restrict__ coin, std::uint32_t* __restrict__ frac) {
  for (int i = 0; i < n; ++i) {
    const auto hi = static_cast<std::uint32_t>(hash[i] >> 32);
    const auto lo = static_cast<std::uint32_t>(hash[i]);
    const float x = static_cast<float>(static_cast<std::int32_t>(lo >> 8)) * column_scale;
    int c = static_cast<int>(x);
    c = c < topics ? c : topics - 1;
    column[i] = c;
    // A uniform draw is a biased one whose coin (2) never takes the alias.
    const bool biased = (hi >> 16) < bias_threshold;
    coin[i] = static_cast<float>(biased) * (x - static_cast<float>(c)) + static_cast<float>(!biased) * 2.0f;
    frac[i] = hi & 0xffff;
  }
}
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
  std::uint64_t* hash = ws.error_bits.data();  // scratch until predict() reuses it
  for (int i = 0; i < n; ++i) hash[i] = mix64(key + static_cast<std::uint64_t>(i) * 0x9e3779b97f4a7c15ULL);
  retrieval_columns(n, hash, topics, bias_threshold, column_scale, ws.column.data(), ws.coin.data(),
                    ws.frac.data());
  // Pass 3: alias lookup and the item within the topic.
  const int* column = ws.column.data();
  const float* coin = ws.coin.data();
  const std::uint32_t* frac = ws.frac.data();
  const float* prob = ws.alias_prob.data();
  const int* alias = ws.alias.data();
  const int* topic_begin = cat_.topic_begin.data();
  int* items = ws.items.data();
  for (int i = 0; i < n; ++i) {
    const int c = column[i];
    // Arithmetic select: a branch here would be mispredicted about half the time.
    const int take = static_cast<int>(coin[i] >= prob[c]) & static_cast<int>(coin[i] <= 1.0f);
    const int t = c + take * (alias[c] - c);
    const int begin = topic_begin[t];
    const auto count = static_cast<std::uint64_t>(topic_begin[t + 1] - begin);
    const int item = begin + static_cast<int>((frac[i] * count) >> 16);
    items[i] = item;
    __builtin_prefetch(&packed_[static_cast<std::size_t>(item)]);  // predict() reads it next
  }
}

namespace {
// One hash per (user, item) holds the MTL errors of all 8 tasks, one byte each;
// a byte is uniform on 0..255: mean 127.5, standard deviation 73.9.
inline std::uint64_t error_bits(std::uint64_t user_key, int item) {
  return mix64(user_key ^ (static_cast<std::uint64_t>(item) * 0xd6e8feb86659fd93ULL));
}
inline float error_of(std::uint64_t bits, int task) {
  return (static_cast<float>((bits >> (8 * task)) & 0xff) - 127.5f) * (1.0f / 73.9f);
}
}  // namespace

float Ranker::mtl_error(std::uint64_t user_key, int item, int task) {
  return error_of(error_bits(user_key, item), task);
}

namespace {

// One task's MTL prediction for every candidate:
//   out = mult * sigmoid(s * (x1 - x2 - shift) + o + z * eps_t),
// with eps_t the task's byte of the candidate's error bits (error_of). A small
// function over restrict pointers so GCC vectorises it in one pass.
void task_pass(int n, const float* __restrict__ x1, const float* __restrict__ x2, float shift,
               const std::uint64_t* __restrict__ bits, int task, float s, float o, float z,
               const float* __restrict__ mult, float* __restrict__ out) {
  for (int i = 0; i < n; ++i)
    out[i] = mult[i] * fast_sigmoid(s * (x1[i] - x2[i] - shift) + o + z * error_of(bits[i], task));
}

}  // namespace

void Ranker::predict(const ResponseCoeffs& k, std::uint64_t user_key,
                     std::span<const float> interests, Workspace& ws) const {
  // Gather each candidate's packed record and evaluate the truth's logits
  // (users/user_model.h, the single definition) into arrays for the vectorised
  // passes below.
  const int n = padded_;
  const int* items = ws.items.data();
  const PackedItem* packed = packed_.data();
  const float* interest = interests.data();
  ResponseLogits<Eigen::ArrayXf>& L = ws.logits;
  float *lp = L.play.data(), *lw = L.watch.data(), *ll = L.like.data(), *ls = L.share.data(),
        *lc = L.comment.data(), *vl = ws.vl.data(), *sl = ws.sl.data(), *minutes = ws.minutes.data();
  std::uint64_t* bits = ws.error_bits.data();
  for (int i = 0; i < n; ++i) {
    const PackedItem& p = packed[items[i]];
    ResponseLogits<float> x;
    response_logits(k, interest[p.topic], p.dur, ItemTerms<float>{p.play, p.watch, p.inter}, x);
    lp[i] = x.play;
    lw[i] = x.watch;
    ll[i] = x.like;
    ls[i] = x.share;
    lc[i] = x.comment;
    vl[i] = p.valid_logit;
    sl[i] = p.skip_logit;
    minutes[i] = p.minutes;
  }
  for (int i = 0; i < n; ++i) bits[i] = error_bits(user_key, items[i]);  // vectorised
  const float a = kProbit / watch_noise_;
  const float watch_scale = 1.0f / std::sqrt(1.0f + kPi * watch_noise_ * watch_noise_ / 8.0f);
  const float inter_scale = 1.0f / std::sqrt(1.0f + kPi * kShock * kShock / 8.0f);
  // pred_t = mult * g_t with g_t = sigmoid(scale_t x_t + offset_t + noise_t eps_t)
  // (ranker.h); x_t = factor * (x1 - x2 - shift).
  const float* zeros = ws.zeros.data();
  const float* ones = ws.ones.data();
  auto pass = [&](Task task, float factor, const float* x1, const float* x2, float shift,
                  const float* mult) {
    const int t = static_cast<int>(task);
    const TaskModelParams& p = mtl_.tasks[t];
    task_pass(n, x1, x2, shift, bits, t, static_cast<float>(p.scale) * factor,
              static_cast<float>(p.offset), static_cast<float>(p.noise), mult, ws.pred[t].data());
  };
  pass(Task::kPlay, 1.0f, lp, zeros, 0.0f, ones);
  const float* play = ws.pred[static_cast<int>(Task::kPlay)].data();
  pass(Task::kValid, a, lw, vl, 0.0f, play);
  pass(Task::kWatchTime, watch_scale, lw, zeros, 0.0f, play);
  pass(Task::kFinish, a, lw, zeros, kFinishLogit, play);
  pass(Task::kLike, inter_scale, ll, zeros, 0.0f, play);
  pass(Task::kShare, inter_scale, ls, zeros, 0.0f, play);
  pass(Task::kComment, inter_scale, lc, zeros, 0.0f, play);
  pass(Task::kSkip, a, sl, lw, 0.0f, play);
  auto& P = ws.pred;
  P[static_cast<int>(Task::kWatchTime)] *= ws.minutes;
  // skip = (1 - play) + play * g_skip
  P[static_cast<int>(Task::kSkip)] += 1.0f - P[static_cast<int>(Task::kPlay)];
}

void Ranker::fuse(const FusionWeights& w, Workspace& ws) const {
  const int n = padded_;
  float* score = ws.score.data();
  std::fill(score, score + n, 0.0f);
  for (int t = 0; t < kNumTasks; ++t) {  // a zero weight adds nothing: skip its logs
    const float wt = w.weight[t], bt = w.bias[t];
    if (wt == 0.0f) continue;
    const float* __restrict__ p = ws.pred[t].data();
    float* __restrict__ out = score;
    for (int i = 0; i < n; ++i) out[i] += wt * fast_log(p[i] + bt);  // vectorised
  }
}

int Ranker::select_top(Workspace& ws, std::span<int> out) const {
  const int want = std::min<int>(shown_, static_cast<int>(out.size()));
  // Keep the best k = shown + 2 by one pass of insertion (k is small; two spares
  // absorb duplicate items, more duplicates fall back to a full sort): ties keep
  // the lower index first, NaN scores (a degenerate weight choice) never enter.
  const int k = std::min(n_, want + 2);
  int* best = ws.order.data();
  float best_score[64];
  const int kk = std::min(k, 64);
  int filled = 0;
  for (int i = 0; i < n_; ++i) {
    const float s = ws.score[i];
    if (filled == kk && !(s > best_score[kk - 1])) continue;
    if (std::isnan(s)) continue;
    int j = filled < kk ? filled++ : kk - 1;
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
