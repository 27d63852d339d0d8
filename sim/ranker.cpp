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
  for (auto* a : {&m, &c, &q, &e, &dur, &vl, &sl, &minutes, &score}) a->resize(n);
  for (auto& a : eps) a.resize(n);
  for (auto& a : pred) a.resize(n);
  order.resize(n);
}

Ranker::Ranker(const Catalogue& catalogue, const RetrievalParams& retrieval, const MtlParams& mtl,
               float watch_noise)
    : cat_(catalogue),
      n_(retrieval.candidates),
      shown_(retrieval.shown),
      interest_bias_(static_cast<float>(retrieval.interest_bias)),
      mtl_(mtl),
      watch_noise_(watch_noise) {}

void Ranker::retrieve(std::span<const float> interests, Rng& rng, Workspace& ws) const {
  if (static_cast<int>(ws.items.size()) != n_) ws.resize(n_);
  const int topics = static_cast<int>(interests.size());
  ws.cdf.resize(topics);
  float acc = 0;
  for (int t = 0; t < topics; ++t) {
    acc += interests[t] * interests[t];
    ws.cdf[t] = acc;
  }
  // One 64-bit draw per candidate: the top 24 bits choose biased vs uniform and
  // the topic, the low 32 bits the item within the topic.
  const auto bias_threshold = static_cast<std::uint32_t>(interest_bias_ * 16777216.0f);
  for (int i = 0; i < n_; ++i) {
    const std::uint64_t r = rng();
    const auto hi = static_cast<std::uint32_t>(r >> 40);
    const std::uint64_t r2 = rng();
    int t;
    if (hi < bias_threshold) {
      const float x = static_cast<float>(r2 >> 40) * 0x1.0p-24f * acc;
      t = static_cast<int>(std::upper_bound(ws.cdf.begin(), ws.cdf.end(), x) - ws.cdf.begin());
      if (t >= topics) t = topics - 1;
    } else {
      t = static_cast<int>(((r2 >> 32) * static_cast<std::uint64_t>(topics)) >> 32);
    }
    const int begin = cat_.topic_begin[t];
    const auto count = static_cast<std::uint64_t>(cat_.topic_begin[t + 1] - begin);
    ws.items[i] = begin + static_cast<int>(((r & 0xffffffffULL) * count) >> 32);
  }
}

float Ranker::mtl_error(std::uint64_t user_key, int item, int task) {
  const std::uint64_t h = mix64(user_key ^ (static_cast<std::uint64_t>(item) * 0xd6e8feb86659fd93ULL));
  // A byte is uniform on 0..255: mean 127.5, standard deviation 73.9.
  return (static_cast<float>((h >> (8 * task)) & 0xff) - 127.5f) * (1.0f / 73.9f);
}

void Ranker::predict(const ResponseCoeffs& k, std::uint64_t user_key,
                     std::span<const float> interests, Workspace& ws) const {
  for (int i = 0; i < n_; ++i) {
    const int it = ws.items[i];
    ws.m[i] = interests[cat_.topic[it]];
    ws.c[i] = cat_.clickbait[it];
    ws.q[i] = cat_.quality[it];
    ws.e[i] = cat_.appeal[it];
    ws.dur[i] = cat_.dur_feature[it];
    ws.vl[i] = cat_.valid_logit[it];
    ws.sl[i] = cat_.skip_logit[it];
    ws.minutes[i] = cat_.duration[it] * (1.0f / 60.0f);
    const std::uint64_t h = mix64(user_key ^ (static_cast<std::uint64_t>(it) * 0xd6e8feb86659fd93ULL));
    for (int t = 0; t < kNumTasks; ++t)
      ws.eps[t][i] = (static_cast<float>((h >> (8 * t)) & 0xff) - 127.5f) * (1.0f / 73.9f);
  }
  const ResponseLogits<Eigen::ArrayXf> l = response_logits(k, ws.m, ws.c, ws.q, ws.e, ws.dur);
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
  std::iota(ws.order.begin(), ws.order.end(), 0);
  const auto better = [&](int x, int y) {
    // NaN scores (from a degenerate weight choice) rank last; ties by index.
    const float sx = ws.score[x], sy = ws.score[y];
    const bool nx = std::isnan(sx), ny = std::isnan(sy);
    if (nx != ny) return ny;
    if (sx != sy && !nx) return sx > sy;
    return x < y;
  };
  int k = std::min(n_, 2 * want);
  for (;;) {
    std::partial_sort(ws.order.begin(), ws.order.begin() + k, ws.order.end(), better);
    int got = 0;
    for (int j = 0; j < k && got < want; ++j) {
      const int cand = ws.order[j];
      bool dup = false;
      for (int g2 = 0; g2 < got; ++g2) dup |= ws.items[out[g2]] == ws.items[cand];
      if (!dup) out[got++] = cand;
    }
    if (got == want || k == n_) return got;
    k = n_;  // rare: too many duplicates among the best; sort everything
  }
}

}  // namespace mtf
