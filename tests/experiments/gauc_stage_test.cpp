// The weighted GAUC stage's bookkeeping (offline_evaluation.cpp): it orders the
// test impressions by user, groups them by request and draws the policy's
// actions a chunk of requests at a time. Checked here against a plain reading
// of the definition: every held impression in recorded order, its request found
// by (user, session, step) among the test rows, the actions drawn request by
// request from one stream in column order, and weighted_gauc on the unsorted
// arrays. An index mixed up anywhere (request, impression, user) changes the figure.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>
#include <vector>

#include "experiments/stages.h"
#include "metrics/gauc.h"
#include "sim/fusion.h"

using namespace mtf;
using namespace mtf::experiments;

namespace {

constexpr int kS = 3, kA = 2;

/// A stochastic policy whose action depends on the state: the draws' order
/// matters, and so does which state an impression's request had.
class StatePolicy final : public Policy {
 public:
  std::string name() const override { return "state"; }
  int action_dim() const override { return kA; }
  void act(std::span<const float> s, std::span<float> a, Rng& rng, ActionInfo*) const override {
    a[0] = std::clamp(s[0] + 0.3f * (rng.uniform01() - 0.5f), -1.0f, 1.0f);
    a[1] = std::clamp(-s[1], -1.0f, 1.0f);
  }
};

FusionParams fusion() {
  FusionParams p;
  p.form = FusionForm::kProduct;
  p.fixed_weight.fill(1.0);
  p.fixed_bias.fill(0.05);
  p.dims = {{Task::kPlay, false, 0.2, 3.0}, {Task::kFinish, false, 0.2, 3.0}};
  return p;
}

using Key = std::tuple<std::int64_t, std::int32_t, std::int32_t>;

}  // namespace

TEST_CASE("the GAUC stage's impressions by user and by request give the definition's figure") {
  // Requests of 40 users over three groups (group 1 is not a test group),
  // interleaved across users as the exploration's days record them, more
  // test requests than a chunk so that the stream is carried across chunks; some
  // requests recorded twice (the later row counts), some impressions without
  // a recorded request (left out).
  const std::vector<int> test_groups = {0, 2};
  Rng world(17);
  TransitionColumns batch;
  batch.state_dim = kS;
  batch.action_dim = kA;
  std::vector<ImpressionRow> imps;
  std::vector<float> s(kS), s2(kS), a(kA, 0.0f), b(kA, 0.0f);
  const std::size_t requests = 2 * kGaucChunk;  // 27 of the 40 users are in test groups: 11,000 test requests
  std::vector<std::int32_t> steps(40, 0);
  for (std::size_t r = 0; r < requests; ++r) {
    const auto user = static_cast<std::int64_t>((r * 7919) % 40);  // interleaved users, not sorted
    const int group = static_cast<int>(user % 3);
    const std::int32_t step = steps[static_cast<std::size_t>(user)]++;
    const bool twice = r % 97 == 5;
    for (int copy = 0; copy < (twice ? 2 : 1); ++copy) {
      for (float& x : s) x = 2.0f * world.uniform01() - 1.0f;
      for (float& x : s2) x = 2.0f * world.uniform01() - 1.0f;
      TransitionColumns::Row row;
      row.user = 1000 + user;
      row.session = 0;
      row.step = step;
      row.set_group(group);
      batch.push(row, s, a, s2, b, {}, {});
    }
    if (r % 211 == 3) continue;  // a request whose impressions were not held
    for (int k = 0; k < 4; ++k) {
      ImpressionRow imp;
      imp.user = 1000 + user;
      imp.session = 0;
      imp.step = step;
      imp.group = group;
      imp.valid = world.uniform01() < 0.4f;
      imp.reward = 3.0f * world.uniform01() - 1.2f;  // some weights clamp at 0
      for (float& p : imp.pred) p = world.uniform01();
      imps.push_back(imp);
    }
  }
  // An impression of a request nobody recorded.
  ImpressionRow stray = imps.front();
  stray.step = 100000;
  imps.push_back(stray);

  Collected col;
  col.transitions->state_dim = kS;  // as the experiment sets them
  col.transitions->action_dim = kA;
  col.add(batch);
  col.add(std::span<const ImpressionRow>(imps));
  col.seal(true);
  const FusionParams fp = fusion();
  const StatePolicy policy;
  const std::uint64_t seed = 99;

  const GaucData g = gauc_data(col, test_groups);
  const GaucResult stage = policy_gauc(g, col, policy, fp, seed);

  // The definition, read plainly.
  const TransitionColumnsView c = col.view();
  std::map<Key, std::size_t> request_row;  // assigned in row order: the last row of a key
  std::vector<std::size_t> test_rows;
  for (std::size_t i = 0; i < c.size(); ++i)
    if (std::find(test_groups.begin(), test_groups.end(), c.rows[i].group) != test_groups.end()) {
      request_row[{c.rows[i].user, c.rows[i].session, c.rows[i].step}] = i;
      test_rows.push_back(i);
    }
  Rng rng(seed);
  std::map<std::size_t, FusionWeights> weights_of_row;
  std::vector<float> act(kA);
  for (const std::size_t i : test_rows) {
    policy.act(std::span<const float>(c.state.data() + i * kS, kS), act, rng, nullptr);
    weights_of_row[i] = weights_from_action(fp, act);
  }
  std::vector<std::int64_t> user;
  std::vector<std::uint8_t> label;
  std::vector<double> weight, score;
  std::int64_t clamped = 0;
  for (const HeldImpression& h : col.impressions()) {
    const auto it = request_row.find({h.user, h.session, h.step});
    if (it == request_row.end()) continue;
    const FusionWeights& fw = weights_of_row.at(it->second);
    double x = 0;
    for (int t = 0; t < kNumTasks; ++t) x += fw.weight[t] * std::log(static_cast<double>(h.pred[t]) + fw.bias[t]);
    user.push_back(h.user);
    label.push_back(h.valid ? 1 : 0);
    weight.push_back(std::max(0.0, h.reward + 1.0));
    clamped += h.reward + 1.0 < 0 ? 1 : 0;
    score.push_back(x);
  }
  const GaucResult plain = weighted_gauc(user, label, weight, score);

  REQUIRE(g.rows.size() > kGaucChunk);  // the test requests span two chunks
  CHECK(g.user.size() == user.size());
  CHECK(g.clamped == clamped);
  CHECK(clamped > 0);
  CHECK(std::is_sorted(g.user.begin(), g.user.end()));
  CHECK(stage.users_used == plain.users_used);
  CHECK(stage.users_skipped == plain.users_skipped);
  CHECK(stage.total_weight == plain.total_weight);
  CHECK(stage.gauc == plain.gauc);  // weighted_gauc's figure does not depend on the input's order, to the bit
  CHECK(stage.gauc > 0.4);
  CHECK(stage.gauc < 0.6);  // labels drawn apart from the scores

  // The check can fail: another seed's draws, or the states of other requests, give another figure.
  CHECK(policy_gauc(g, col, policy, fp, seed + 1).gauc != plain.gauc);
  GaucData shifted = g;
  std::rotate(shifted.rows.begin(), shifted.rows.begin() + 1, shifted.rows.end());
  CHECK(policy_gauc(shifted, col, policy, fp, seed).gauc != plain.gauc);
}
