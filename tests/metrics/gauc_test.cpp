// Tests of metrics/gauc.h: the weighted GAUC of IntegratedRL-MTF, section 4.3.1, against
// hand-computed cases, the Mann-Whitney statistic and an O(n^2) reference.
#include "metrics/gauc.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/rng.h"

using mtf::GaucResult;
using mtf::weighted_gauc;

namespace {

struct Impressions {
  std::vector<std::int64_t> user;
  std::vector<std::uint8_t> label;
  std::vector<double> weight, score;
  void add(std::int64_t u, int l, double w, double s) {
    user.push_back(u);
    label.push_back(static_cast<std::uint8_t>(l));
    weight.push_back(w);
    score.push_back(s);
  }
  GaucResult gauc() const { return weighted_gauc(user, label, weight, score); }
};

template <class F>
void check_throws_naming(F f, const std::string& needle) {
  bool thrown = false;
  try {
    f();
  } catch (const std::invalid_argument& e) {
    thrown = true;
    CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, e.what());
  }
  CHECK_MESSAGE(thrown, "expected std::invalid_argument naming " << needle);
}

/// The definition, pair by pair, on raw scores (the normalisation is monotone).
GaucResult brute_force(const Impressions& d) {
  std::map<std::int64_t, std::vector<std::size_t>> by_user;
  for (std::size_t i = 0; i < d.user.size(); ++i) by_user[d.user[i]].push_back(i);
  GaucResult r;
  double sum = 0;
  for (const auto& [u, idx] : by_user) {
    double num = 0, den = 0, total = 0;
    for (std::size_t i : idx) {
      total += d.weight[i];
      if (!d.label[i]) continue;
      for (std::size_t j : idx) {
        if (d.label[j]) continue;
        const double ww = d.weight[i] * d.weight[j];
        den += ww;
        num += ww * (d.score[i] > d.score[j] ? 1.0 : d.score[i] == d.score[j] ? 0.5 : 0.0);
      }
    }
    if (den > 0) {
      sum += total * num / den;
      r.total_weight += total;
      ++r.users_used;
    } else {
      ++r.users_skipped;
    }
  }
  if (r.users_used > 0) r.gauc = sum / r.total_weight;
  return r;
}

}  // namespace

TEST_CASE("weighted GAUC of two users with ties and unequal weights, computed by hand") {
  Impressions d;
  // User 7 (label, weight, score): P(2, 0.9), P(1, 0.5), N(3, 0.5), N(1, 0.1).
  //   P(2,.9)-N(3,.5): 2*3*1 = 6;   P(2,.9)-N(1,.1): 2*1*1 = 2;
  //   P(1,.5)-N(3,.5): 1*3*0.5 = 1.5 (tie); P(1,.5)-N(1,.1): 1*1*1 = 1.
  //   AUC = 10.5 / ((2+1)(3+1)) = 0.875; user weight 7.
  // User 3: P(1.5, 0.2), P(0.5, 0.4), N(0.5, 0.4), N(2, 0.2).
  //   P(1.5,.2)-N(.5,.4): 0;  P(1.5,.2)-N(2,.2): 1.5*2*0.5 = 1.5 (tie);
  //   P(.5,.4)-N(.5,.4): 0.5*0.5*0.5 = 0.125 (tie);  P(.5,.4)-N(2,.2): 0.5*2*1 = 1.
  //   AUC = 2.625 / ((1.5+0.5)(0.5+2)) = 0.525; user weight 4.5.
  // User 5 has positives only: skipped.
  // GAUC = (7 * 0.875 + 4.5 * 0.525) / (7 + 4.5) = 8.4875 / 11.5 = 0.73804347826...
  d.add(7, 1, 2.0, 0.9);
  d.add(3, 1, 1.5, 0.2);
  d.add(5, 1, 1.0, 0.3);
  d.add(7, 0, 3.0, 0.5);
  d.add(3, 0, 0.5, 0.4);
  d.add(7, 1, 1.0, 0.5);
  d.add(5, 1, 2.0, 0.6);
  d.add(3, 1, 0.5, 0.4);
  d.add(7, 0, 1.0, 0.1);
  d.add(3, 0, 2.0, 0.2);
  const GaucResult r = d.gauc();
  CHECK(r.gauc == doctest::Approx(8.4875 / 11.5).epsilon(1e-15));
  CHECK(r.users_used == 2);
  CHECK(r.users_skipped == 1);
  CHECK(r.total_weight == 11.5);
}

TEST_CASE("a user whose negatives all have zero weight is skipped") {
  Impressions d;
  d.add(1, 1, 1.0, 0.2);
  d.add(1, 0, 0.0, 0.1);  // a negative, but of weight 0: no pair carries weight
  d.add(2, 1, 1.0, 0.9);
  d.add(2, 0, 1.0, 0.1);
  const GaucResult r = d.gauc();
  CHECK(r.users_used == 1);
  CHECK(r.users_skipped == 1);
  CHECK(r.gauc == 1.0);
  CHECK(r.total_weight == 2.0);
}

TEST_CASE("with unit weights and one user the weighted GAUC is the Mann-Whitney AUC") {
  // Positives {3, 5, 5, 8}, negatives {1, 5, 7}. Midranks of the pooled sample
  // 1 3 5 5 5 7 8: 1, 2, 4, 4, 4, 6, 7; positive rank sum R = 2 + 4 + 4 + 7 = 17;
  // U = R - 4*5/2 = 7; AUC = U / (4*3) = 7/12.
  Impressions d;
  for (double s : {3.0, 5.0, 5.0, 8.0}) d.add(42, 1, 1.0, s);
  for (double s : {1.0, 5.0, 7.0}) d.add(42, 0, 1.0, s);
  const GaucResult r = d.gauc();
  CHECK(r.gauc == doctest::Approx(7.0 / 12).epsilon(1e-15));
  CHECK(r.users_used == 1);
  CHECK(r.total_weight == 7);
}

TEST_CASE("weighted GAUC agrees with the O(n^2) definition on random data") {
  mtf::Rng rng(mtf::derive_seed(20240601, mtf::Stream::kBenchmark, 10));
  Impressions d;
  for (int i = 0; i < 3000; ++i) {
    const std::int64_t u = static_cast<std::int64_t>(rng.below(60)) - 20;  // negative ids too
    const int label = rng.uniform01d() < 0.3;
    // Half the samples on a coarse grid (many exact ties), half continuous, on an
    // offset and scale that make the min-max normalisation do real work.
    const double raw = i % 2 ? rng.below(8) : 8 * rng.uniform01d();
    const double weight = rng.below(5) == 0 ? 0.0 : 1 + 3 * rng.uniform01d();
    d.add(u, label, weight, 1000 + 37.5 * raw);
  }
  const GaucResult r = d.gauc(), ref = brute_force(d);
  CHECK(r.gauc == doctest::Approx(ref.gauc).epsilon(1e-12));
  CHECK(r.users_used == ref.users_used);
  CHECK(r.users_skipped == ref.users_skipped);
  CHECK(r.total_weight == doctest::Approx(ref.total_weight).epsilon(1e-12));
  CHECK(r.users_used > 50);  // the data exercise the per-user path, not the skips
}

TEST_CASE("weighted GAUC does not depend on the order of the impressions") {
  mtf::Rng rng(mtf::derive_seed(20240601, mtf::Stream::kBenchmark, 11));
  Impressions d;
  for (int i = 0; i < 2000; ++i) {
    d.add(rng.below(40), rng.below(2), 0.5 + rng.below(4), rng.below(10) * 0.1);
  }
  const GaucResult before = d.gauc();
  // Fisher-Yates shuffle of the four columns together.
  Impressions s = d;
  for (std::size_t i = s.user.size() - 1; i > 0; --i) {
    const std::size_t j = rng.below(static_cast<std::uint32_t>(i + 1));
    std::swap(s.user[i], s.user[j]);
    std::swap(s.label[i], s.label[j]);
    std::swap(s.weight[i], s.weight[j]);
    std::swap(s.score[i], s.score[j]);
  }
  const GaucResult after = s.gauc();
  CHECK(after.gauc == before.gauc);  // bit-identical, as the header promises
  CHECK(after.users_used == before.users_used);
  CHECK(after.total_weight == before.total_weight);
  // Sorted by user, the input is read in place (no permutation): the same bits.
  std::vector<std::size_t> by_user(s.user.size());
  for (std::size_t i = 0; i < by_user.size(); ++i) by_user[i] = i;
  std::sort(by_user.begin(), by_user.end(), [&](std::size_t a, std::size_t b) { return s.user[a] < s.user[b]; });
  Impressions g;
  for (const std::size_t i : by_user) g.add(s.user[i], s.label[i], s.weight[i], s.score[i]);
  REQUIRE(std::is_sorted(g.user.begin(), g.user.end()));
  const GaucResult grouped = g.gauc();
  CHECK(grouped.gauc == before.gauc);
  CHECK(grouped.users_used == before.users_used);
  CHECK(grouped.users_skipped == before.users_skipped);
  CHECK(grouped.total_weight == before.total_weight);
}

TEST_CASE("all-equal scores give a weighted GAUC of exactly 0.5") {
  Impressions d;
  for (int u = 0; u < 5; ++u) {
    d.add(u, 1, 1.0 + u, 3.25);
    d.add(u, 0, 2.5, 3.25);
    d.add(u, 0, 0.5, 3.25);
  }
  const GaucResult r = d.gauc();
  CHECK(r.gauc == 0.5);
  CHECK(r.users_used == 5);
}

TEST_CASE("weighted GAUC of empty input or single-class users only is NaN") {
  Impressions empty;
  CHECK(std::isnan(empty.gauc().gauc));
  Impressions d;
  d.add(1, 0, 1.0, 0.1);
  d.add(2, 1, 1.0, 0.2);
  const GaucResult r = d.gauc();
  CHECK(std::isnan(r.gauc));
  CHECK(r.users_skipped == 2);
  CHECK(r.users_used == 0);
}

TEST_CASE("weighted GAUC rejects bad input, naming the index") {
  Impressions d;
  d.add(1, 1, 1.0, 0.1);
  d.add(1, 0, 1.0, 0.2);
  d.add(1, 0, 1.0, 0.3);
  Impressions neg = d;
  neg.weight[2] = -0.5;
  check_throws_naming([&] { neg.gauc(); }, "weighted_gauc(weight[2])");
  Impressions nan_weight = d;
  nan_weight.weight[1] = NAN;
  check_throws_naming([&] { nan_weight.gauc(); }, "weighted_gauc(weight[1])");
  Impressions bad_label = d;
  bad_label.label[0] = 2;
  check_throws_naming([&] { bad_label.gauc(); }, "weighted_gauc(label[0])");
  Impressions inf_score = d;
  inf_score.score[2] = INFINITY;
  check_throws_naming([&] { inf_score.gauc(); }, "weighted_gauc(score[2])");
  Impressions short_score = d;
  short_score.score.pop_back();
  check_throws_naming([&] { short_score.gauc(); }, "weighted_gauc(user, label, weight, score)");
}

// Sharded by user (as the experiment's ranks hold their users' impressions),
// each shard's GAUC merged gives the whole's: the same per-user AUCs (each
// shard's min-max normalisation is monotone), weighted the same.
TEST_CASE("weighted GAUC of user shards, merged, is the GAUC of the whole") {
  mtf::Rng rng(mtf::derive_seed(20240601, mtf::Stream::kBenchmark, 12));
  Impressions whole, shard[3];
  for (int i = 0; i < 3000; ++i) {
    const std::int64_t u = static_cast<std::int64_t>(rng.below(90));
    const int label = rng.uniform01d() < 0.3;
    const double weight = rng.below(5) == 0 ? 0.0 : 1 + 3 * rng.uniform01d();
    const double score = 100 * rng.uniform01d();
    whole.add(u, label, weight, score);
    shard[u % 3].add(u, label, weight, score);
  }
  for (std::int64_t u = 1000; u < 1004; ++u)  // users with negatives only: skipped
    for (int k = 0; k < 3; ++k) {
      whole.add(u, 0, 1.0, static_cast<double>(k));
      shard[u % 3].add(u, 0, 1.0, static_cast<double>(k));
    }
  const GaucResult parts[3] = {shard[0].gauc(), shard[1].gauc(), shard[2].gauc()};
  const GaucResult merged = merge_gauc(parts), w = whole.gauc();
  CHECK(merged.gauc == doctest::Approx(w.gauc).epsilon(1e-12));
  CHECK(merged.users_used == w.users_used);
  CHECK(merged.users_skipped == w.users_skipped);
  CHECK(merged.total_weight == doctest::Approx(w.total_weight).epsilon(1e-12));
  CHECK(w.users_skipped == 4);  // skipped users in some shards: not counted as AUC 0
  // A part without used users adds nothing; no used user at all: NaN.
  const GaucResult empty{};
  const GaucResult with_empty[2] = {empty, w};
  CHECK(merge_gauc(with_empty).gauc == doctest::Approx(w.gauc).epsilon(1e-12));
  const GaucResult only_empty[1] = {empty};
  CHECK(std::isnan(merge_gauc(only_empty).gauc));
}
