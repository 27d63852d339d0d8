// Retrieval, MTL predictions, fusion and top-L selection (see ranker.h).
#include "sim/ranker.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace mtf {
namespace {

constexpr float kProbit = 1.702f;        // Phi(x) ~ sigmoid(1.702 x)
constexpr float kFinishLogit = 3.476f;   // logit(0.97): finished when f >= 0.97
constexpr float kShock = 0.8f;           // interaction shock (users/user_model.cpp)
constexpr float kPi = 3.14159265f;

template <typename A>
auto sigmoid(const A& x) {
  return (1.0f + (-x).exp()).inverse();
}

}  // namespace

void Ranker::Workspace::resize(int n) {
  items.resize(n);
  error_bits.resize(n);
  for (auto* a : {&m, &dur, &vl, &sl, &minutes, &score, &terms.play, &terms.watch, &terms.inter})
    a->resize(n);
  for (auto& a : eps) a.resize(n);
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
  // One 64-bit draw per candidate: bits 63..40 choose biased vs uniform, bits
  // 39..16 the topic (column and, for biased draws, the alias coin), bits 15..0
  // the item within the topic (a 16-bit fraction: items of a topic of n items
  // are equally likely up to n / 65536).
  const auto bias_threshold = static_cast<std::uint64_t>(interest_bias_ * 16777216.0f);
  for (int i = 0; i < n_; ++i) {
    const std::uint64_t r = rng();
    const std::uint64_t mid = (r >> 16) & 0xffffff;
    const std::uint64_t scaled = mid * static_cast<std::uint64_t>(topics);  // 24.24 fixed point
    const int column = static_cast<int>(scaled >> 24);
    const float coin = static_cast<float>(scaled & 0xffffff) * 0x1.0p-24f;
    // Branch-free: biased draws take the alias when the coin says so.
    const bool take_alias = ((r >> 40) < bias_threshold) & (coin >= ws.alias_prob[column]);
    const int t = take_alias ? ws.alias[column] : column;
    const int begin = cat_.topic_begin[t];
    const auto count = static_cast<std::uint64_t>(cat_.topic_begin[t + 1] - begin);
    ws.items[i] = begin + static_cast<int>(((r & 0xffff) * count) >> 16);
  }
  for (int i = n_; i < padded_; ++i) ws.items[i] = ws.items[0];  // padding, never selected
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

void Ranker::predict(const ResponseCoeffs& k, std::uint64_t user_key,
                     std::span<const float> interests, Workspace& ws) const {
  for (int i = 0; i < padded_; ++i) {
    const int it = ws.items[i];
    const PackedItem& p = packed_[it];
    ws.m[i] = interests[p.topic];
    ws.terms.play[i] = p.play;
    ws.terms.watch[i] = p.watch;
    ws.terms.inter[i] = p.inter;
    ws.dur[i] = p.dur;
    ws.vl[i] = p.valid_logit;
    ws.sl[i] = p.skip_logit;
    ws.minutes[i] = p.minutes;
    ws.error_bits[i] = error_bits(user_key, it);
  }
  for (int t = 0; t < kNumTasks; ++t) {
    float* e = ws.eps[t].data();
    const std::uint64_t* h = ws.error_bits.data();
    for (int i = 0; i < padded_; ++i) e[i] = error_of(h[i], t);  // vectorises
  }
  response_logits(k, ws.m, ws.dur, ws.terms, ws.logits);
  const ResponseLogits<Eigen::ArrayXf>& l = ws.logits;
  const float a = kProbit / watch_noise_;
  const float watch_scale = 1.0f / std::sqrt(1.0f + kPi * watch_noise_ * watch_noise_ / 8.0f);
  const float inter_scale = 1.0f / std::sqrt(1.0f + kPi * kShock * kShock / 8.0f);
  auto g = [&](int t, const auto& x) {
    const TaskModelParams& p = mtl_.tasks[t];
    return sigmoid(static_cast<float>(p.scale) * x + static_cast<float>(p.offset) +
                   static_cast<float>(p.noise) * ws.eps[t]);
  };
  auto& P = ws.pred;
  const auto T = [](Task t) { return static_cast<int>(t); };
  P[T(Task::kPlay)] = g(T(Task::kPlay), l.play);
  const Eigen::ArrayXf& play = P[T(Task::kPlay)];
  P[T(Task::kValid)] = play * g(T(Task::kValid), a * (l.watch - ws.vl));
  P[T(Task::kWatchTime)] = play * ws.minutes * g(T(Task::kWatchTime), watch_scale * l.watch);
  P[T(Task::kFinish)] = play * g(T(Task::kFinish), a * (l.watch - kFinishLogit));
  P[T(Task::kLike)] = play * g(T(Task::kLike), inter_scale * l.like);
  P[T(Task::kShare)] = play * g(T(Task::kShare), inter_scale * l.share);
  P[T(Task::kComment)] = play * g(T(Task::kComment), inter_scale * l.comment);
  P[T(Task::kSkip)] = 1.0f - play + play * g(T(Task::kSkip), a * (ws.sl - l.watch));
}

void Ranker::fuse(const FusionWeights& w, Workspace& ws) const {
  ws.score.setZero();
  for (int t = 0; t < kNumTasks; ++t) {
    if (w.weight[t] == 0.0f) continue;
    ws.score += w.weight[t] * (ws.pred[t] + w.bias[t]).log();
  }
}

int Ranker::select_top(Workspace& ws, std::span<int> out) const {
  const int want = std::min<int>(shown_, static_cast<int>(out.size()));
  // Keep the best k = 2 * shown by one pass of insertion (k is small): ties keep
  // the lower index first, NaN scores (a degenerate weight choice) never enter.
  const int k = std::min(n_, 2 * want);
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
