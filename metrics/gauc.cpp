// Weighted GAUC (IntegratedRL-MTF, section 4.3.1); see gauc.h for the definition.
#include "metrics/gauc.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace mtf {
namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw std::invalid_argument("weighted_gauc(" + where + "): " + what);
}

struct Sample {
  std::int64_t user;
  double score;  // normalised
  std::uint8_t label;
  double weight;
  // The full key makes the sorted sequence, and so every sum, independent of the
  // input order (samples equal in all four fields are interchangeable).
  friend bool operator<(const Sample& x, const Sample& y) {
    if (x.user != y.user) return x.user < y.user;
    if (x.score != y.score) return x.score < y.score;
    if (x.label != y.label) return x.label < y.label;
    return x.weight < y.weight;
  }
};

}  // namespace

GaucResult weighted_gauc(std::span<const std::int64_t> user, std::span<const std::uint8_t> label,
                         std::span<const double> weight, std::span<const double> score) {
  const std::size_t n = user.size();
  if (label.size() != n || weight.size() != n || score.size() != n) {
    fail("user, label, weight, score",
         "expected one entry per impression in each, got sizes " + std::to_string(n) + ", " +
             std::to_string(label.size()) + ", " + std::to_string(weight.size()) + ", " +
             std::to_string(score.size()) + "; pass arrays of equal length");
  }
  auto at = [](const char* arg, std::size_t i) {
    std::string s(arg);
    s += '[';
    s += std::to_string(i);
    s += ']';
    return s;
  };
  for (std::size_t i = 0; i < n; ++i) {
    if (label[i] > 1) {
      fail(at("label", i), "expected 0 or 1 (valid consumption), got " + std::to_string(label[i]));
    }
    if (!(weight[i] >= 0) || std::isinf(weight[i])) {
      fail(at("weight", i), "expected a finite weight >= 0 (reward + 1), got " +
                                std::to_string(weight[i]) +
                                "; check the reward of this impression");
    }
    if (!std::isfinite(score[i])) {
      fail(at("score", i), "expected a finite fused score, got " + std::to_string(score[i]));
    }
  }
  GaucResult result;
  if (n == 0) return result;

  // Min-max normalisation (the paper's step; monotone, see the header).
  const auto [lo_it, hi_it] = std::minmax_element(score.begin(), score.end());
  const double lo = *lo_it, range = *hi_it - *lo_it;

  // Users in ascending order, one at a time: input already grouped by
  // ascending user is read in place; otherwise through a permutation stably
  // sorted by user (8 bytes an impression, not a copy of every sample).
  const bool grouped = std::is_sorted(user.begin(), user.end());
  std::vector<std::size_t> order;
  if (!grouped) {
    order.resize(n);
    for (std::size_t i = 0; i < n; ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return user[a] < user[b]; });
  }
  const auto at_rank = [&](std::size_t k) { return grouped ? k : order[k]; };

  double weighted_auc_sum = 0;
  std::vector<Sample> samples;  // one user's, sorted by (score, label, weight)
  for (std::size_t begin = 0; begin < n;) {
    const std::int64_t u = user[at_rank(begin)];
    std::size_t end = begin;
    samples.clear();
    for (; end < n && user[at_rank(end)] == u; ++end) {
      const std::size_t i = at_rank(end);
      samples.push_back({u, range > 0 ? (score[i] - lo) / range : 0.0, label[i], weight[i]});
    }
    std::sort(samples.begin(), samples.end());
    // Sweep tie groups in ascending score: a positive beats every negative below its
    // group and ties with the negatives in its group.
    const std::size_t m = samples.size();
    double neg_below = 0, pos_total = 0, neg_total = 0, wins = 0;
    for (std::size_t g = 0; g < m;) {
      std::size_t h = g;
      double pos = 0, neg = 0;
      for (; h < m && samples[h].score == samples[g].score; ++h) {
        (samples[h].label ? pos : neg) += samples[h].weight;
      }
      wins += pos * (neg_below + 0.5 * neg);
      neg_below += neg;
      pos_total += pos;
      neg_total += neg;
      g = h;
    }
    if (pos_total > 0 && neg_total > 0) {
      const double user_weight = pos_total + neg_total;
      weighted_auc_sum += user_weight * (wins / (pos_total * neg_total));
      result.total_weight += user_weight;
      ++result.users_used;
    } else {
      ++result.users_skipped;
    }
    begin = end;
  }
  if (result.users_used > 0) result.gauc = weighted_auc_sum / result.total_weight;
  return result;
}

GaucResult merge_gauc(std::span<const GaucResult> parts) {
  GaucResult m;
  double weighted = 0;
  for (const GaucResult& p : parts) {
    if (p.users_used > 0) weighted += p.gauc * p.total_weight;
    m.total_weight += p.total_weight;
    m.users_used += p.users_used;
    m.users_skipped += p.users_skipped;
  }
  if (m.users_used > 0 && m.total_weight > 0) m.gauc = weighted / m.total_weight;
  return m;
}

}  // namespace mtf
