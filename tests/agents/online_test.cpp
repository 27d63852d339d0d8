// Online learners (ES, BO, grid search) on synthetic objectives with known
// answers. The engine's loop is played by run_rounds(): each candidate policy is
// scored on a fixed set of states by a known function, plus seeded Gaussian noise.
#include <doctest/doctest.h>

#include <boost/random/normal_distribution.hpp>
#include <cmath>
#include <functional>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "agents/online/bo.h"
#include "agents/online/es.h"
#include "agents/online/gaussian_process.h"
#include "agents/online/grid.h"
#include "agents/online/online_learner.h"
#include "agents/online/online_policies.h"
#include "core/state_features.h"

namespace mtf::agents {
namespace {

using States = std::vector<std::vector<float>>;
/// Reward of action a in state s (higher is better).
using Reward = std::function<double(std::span<const float> s, std::span<const float> a)>;

/// Mean reward of `policy` over `states`.
double evaluate(const Policy& policy, const States& states, const Reward& reward) {
  std::vector<float> a(static_cast<std::size_t>(policy.action_dim()));
  Rng rng(7);
  double sum = 0.0;
  for (const auto& s : states) {
    policy.act(s, a, rng, nullptr);
    sum += reward(s, a);
  }
  return sum / static_cast<double>(states.size());
}

/// The engine's loop: `rounds` rounds of propose, score (+ N(0, noise_sd^2)), observe.
void run_rounds(OnlineLearner& learner, int rounds, const States& states, const Reward& reward,
                double noise_sd, std::uint64_t seed) {
  Rng rng(seed);
  boost::random::normal_distribution<double> noise(0.0, noise_sd);
  for (int r = 0; r < rounds; ++r) {
    const auto candidates = learner.propose();
    std::vector<double> scores;
    for (const auto& p : candidates) scores.push_back(evaluate(*p, states, reward) + noise(rng));
    const std::vector<std::int64_t> users(candidates.size(), 1000);
    learner.observe(scores, users);
  }
}

/// n simulator-like states: every feature uniform over its documented range, bias 1.
States feature_states(int n, std::uint64_t seed) {
  Rng rng(seed);
  States states(static_cast<std::size_t>(n), std::vector<float>(kStateDim));
  for (auto& s : states)
    for (int i = 0; i < kStateDim; ++i) {
      const StateFeature& r = kStateFeatures[static_cast<std::size_t>(i)];
      s[static_cast<std::size_t>(i)] = r.lo + (r.hi - r.lo) * rng.uniform01();
    }
  for (auto& s : states) s.back() = 1.0f;
  return states;
}

int feature(std::string_view name) {
  for (int i = 0; i < kStateDim; ++i)
    if (kStateFeatures[static_cast<std::size_t>(i)].name == name) return i;
  return -1;
}

std::vector<float> constant_action(const Policy& p) {
  std::vector<float> s(kStateDim, 0.0f), a(static_cast<std::size_t>(p.action_dim()));
  Rng rng(1);
  p.act(s, a, rng, nullptr);
  return a;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE(
    "the feature ranges used to scale ES's inputs are the documented ranges of the state "
    "features") {
  for (int i = 0; i < kStateDim; ++i) {
    const auto& f = kStateFeatures[static_cast<std::size_t>(i)];
    const auto& r = f;
    const std::string meaning(f.meaning);
    const auto open = meaning.rfind('[');
    if (open == std::string::npos) continue;  // "male" and "bias" have no bracketed range
    const std::string documented = meaning.substr(open, meaning.find(']', open) - open + 1);
    const auto fmt = [](float v) { return std::to_string(static_cast<int>(v)); };
    std::string expected = "[";
    expected += fmt(r.lo);
    expected += ", ";
    expected += fmt(r.hi);
    expected += "]";
    CHECK_MESSAGE(documented == expected, f.name);
  }
}

TEST_CASE("the GP posterior matches a hand-computed two-point example") {
  // x = {0, 1}, y = {1, -1}, l = 1, no noise: standardised y = y, R = [[1, r], [r, 1]]
  // with r = e^-1/2; (1, -1) is an eigenvector of R with eigenvalue 1 - r, so
  // alpha = (1, -1) / (1 - r) and sf2 = y' alpha / 2 = 1 / (1 - r).
  Eigen::MatrixXd X(1, 2);
  X << 0.0, 1.0;
  Eigen::VectorXd y(2);
  y << 1.0, -1.0;
  GpHyper h;
  h.length = Eigen::VectorXd::Constant(1, 1.0);
  h.noise_ratio = 0.0;
  GaussianProcess gp;
  gp.condition(X, y, Eigen::VectorXd(), h);
  const double r = std::exp(-0.5);
  CHECK(gp.hyper().signal_var == doctest::Approx(1.0 / (1.0 - r)).epsilon(1e-12));
  Eigen::MatrixXd Xs(1, 3);
  Xs << 0.5, 2.0, 0.0;
  Eigen::VectorXd mean, var;
  gp.predict(Xs, mean, &var);
  CHECK(mean(0) == doctest::Approx(0.0).scale(1.0).epsilon(1e-12));
  CHECK(mean(1) == doctest::Approx((std::exp(-2.0) - r) / (1.0 - r)).epsilon(1e-12));
  CHECK(mean(2) == doctest::Approx(1.0).epsilon(1e-9));
  // At 0.5, r* = e^-1/8 (1, 1), an eigenvector with eigenvalue 1 + r.
  CHECK(var(0) ==
        doctest::Approx((1.0 - 2.0 * std::exp(-0.25) / (1.0 + r)) / (1.0 - r)).epsilon(1e-9));
  CHECK(var(2) == doctest::Approx(0.0).scale(1.0).epsilon(1e-9));
}

TEST_CASE(
    "a GP fitted by marginal likelihood interpolates noiseless data and reverts to the mean far "
    "away") {
  Rng rng(11);
  const int n = 15;
  Eigen::MatrixXd X(2, n);
  Eigen::VectorXd y(n);
  for (int i = 0; i < n; ++i) {
    X(0, i) = 2.0 * rng.uniform01d() - 1.0;
    X(1, i) = 2.0 * rng.uniform01d() - 1.0;
    y(i) = std::sin(2.0 * X(0, i)) + 0.5 * std::cos(1.5 * X(1, i));
  }
  GaussianProcess gp;
  gp.fit(X, y, Eigen::VectorXd(), GpFitOptions{});
  // Noiseless data: the smallest noise ratio on the grid has the highest likelihood.
  CHECK(gp.hyper().noise_ratio == doctest::Approx(1e-6));
  Eigen::VectorXd mean, var;
  gp.predict(X, mean, &var);
  // With g = 1e-6 the residuals are of order g times the spread of y (~1).
  CHECK((mean - y).cwiseAbs().maxCoeff() < 1e-3);
  CHECK(var.maxCoeff() < 1e-4);
  Eigen::MatrixXd far(2, 1);
  far << 50.0, -50.0;
  gp.predict(far, mean, &var);
  CHECK(mean(0) == doctest::Approx(y.mean()).epsilon(1e-12));
  CHECK(var(0) ==
        doctest::Approx(gp.hyper().signal_var * gp.y_scale() * gp.y_scale()).epsilon(1e-12));
}

TEST_CASE("an ARD GP gives a dimension the function ignores the longest length scale on the grid") {
  Rng rng(12);
  const int n = 20;
  Eigen::MatrixXd X(2, n);
  Eigen::VectorXd y(n);
  for (int i = 0; i < n; ++i) {
    X(0, i) = 2.0 * rng.uniform01d() - 1.0;
    X(1, i) = 2.0 * rng.uniform01d() - 1.0;
    y(i) = std::sin(3.0 * X(0, i));
  }
  GpFitOptions options;
  options.ard = true;
  GaussianProcess gp;
  gp.fit(X, y, Eigen::VectorXd(), options);
  CHECK(gp.hyper().length(1) == options.length_grid.back());
  CHECK(gp.hyper().length(0) < 1.0);
  GpFitOptions iso;
  GaussianProcess gp_iso;
  gp_iso.fit(X, y, Eigen::VectorXd(), iso);
  // ARD's search starts from the best isotropic fit, so it is never less likely.
  CHECK(gp.log_marginal_likelihood() >= gp_iso.log_marginal_likelihood());
}

TEST_CASE(
    "BO finds the maximiser of a smooth function of the constant action, with UCB and with EI") {
  // score(a) = -||a - x*||^2 in d = 3, noise sd 0.002 (the spread of scores is ~1).
  const std::vector<float> target = {0.35f, -0.55f, 0.6f};
  const Reward reward = [&](std::span<const float>, std::span<const float> a) {
    double s = 0.0;
    for (int i = 0; i < 3; ++i) s -= (a[i] - target[i]) * (a[i] - target[i]);
    return s;
  };
  const States states(1, std::vector<float>(kStateDim, 0.0f));
  for (const char* acquisition : {"ucb", "ei"}) {
    CAPTURE(acquisition);
    auto bo = make_online_learner("bo", {{"acquisition", acquisition}}, kStateDim, 3, nullptr, 5);
    CHECK(constant_action(*bo->best()) ==
          std::vector<float>{0.0f, 0.0f, 0.0f});  // no baseline: start at 0
    run_rounds(*bo, 12, states, reward, 0.002, 99);
    CHECK(bo->rounds_done() == 12);
    const auto a = constant_action(*bo->best());
    double dist2 = 0.0;
    for (int i = 0; i < 3; ++i) dist2 += (a[i] - target[i]) * (a[i] - target[i]);
    // 48 evaluations of a quadratic in 3 dimensions: within 0.1 of the maximiser
    // (0.01 to 0.03 over seeds 1, 2, 3, 5 when this was written).
    INFO(bo->describe().dump());
    CHECK(std::sqrt(dist2) < 0.1);
  }
}

TEST_CASE(
    "BO's first round is its start point plus a design around it, and its batch holds distinct "
    "points") {
  const PolicyPtr baseline =
      std::make_shared<FixedActionPolicy>("baseline", std::vector<float>{0.5f, -0.5f});
  auto bo = make_online_learner("bo", {{"init_radius", 0.25}}, kStateDim, 2, baseline, 3);
  CHECK(constant_action(*bo->best()) == std::vector<float>{0.5f, -0.5f});
  const auto first = bo->propose();
  REQUIRE(first.size() == 4);
  CHECK(constant_action(*first[0]) == std::vector<float>{0.5f, -0.5f});
  for (std::size_t k = 1; k < first.size(); ++k) {
    const auto a = constant_action(*first[k]);
    CHECK(std::abs(a[0] - 0.5f) <= 0.25f);
    CHECK(std::abs(a[1] + 0.5f) <= 0.25f);
  }
  bo->observe(std::vector<double>{1.0, 0.2, 0.5, 0.4}, std::vector<std::int64_t>(4, 100));
  for (const char* batch : {"kriging_believer", "constant_liar"}) {
    CAPTURE(batch);
    auto b = make_online_learner("bo", {{"batch", batch}}, kStateDim, 2, baseline, 3);
    b->propose();
    b->observe(std::vector<double>{1.0, 0.2, 0.5, 0.4}, std::vector<std::int64_t>(4, 100));
    const auto second = b->propose();
    for (std::size_t i = 0; i < second.size(); ++i)
      for (std::size_t j = 0; j < i; ++j)
        CHECK(constant_action(*second[i]) != constant_action(*second[j]));
  }
}

TEST_CASE("ES learns a personalised policy that beats the baseline and the best constant action") {
  // The optimal action depends linearly on two features; the baseline is a
  // constant, so no constant action can be optimal: the best one is mean_s f(s).
  const int watch = feature("hist_watch_per_play"), skip = feature("hist_skip_rate");
  const auto optimum = [&](std::span<const float> s) {
    const double zw = s[static_cast<std::size_t>(watch)] - 1.0;       // [0, 2] -> [-1, 1]
    const double zs = 2.0 * s[static_cast<std::size_t>(skip)] - 1.0;  // [0, 1] -> [-1, 1]
    return std::array<double, 3>{0.1 + 0.2 * zw, 0.1 - 0.2 * zs, 0.1 + 0.1 * zw + 0.1 * zs};
  };
  const Reward reward = [&](std::span<const float> s, std::span<const float> a) {
    const auto f = optimum(s);
    double r = 0.0;
    for (int i = 0; i < 3; ++i)
      r -= (a[static_cast<std::size_t>(i)] - f[static_cast<std::size_t>(i)]) *
           (a[static_cast<std::size_t>(i)] - f[static_cast<std::size_t>(i)]);
    return r;
  };
  const States states = feature_states(256, 21);
  std::array<float, 3> mean_f{};
  for (const auto& s : states)
    for (int i = 0; i < 3; ++i)
      mean_f[static_cast<std::size_t>(i)] +=
          static_cast<float>(optimum(s)[static_cast<std::size_t>(i)]) / 256.0f;
  const FixedActionPolicy best_constant("constant", {mean_f.begin(), mean_f.end()});
  const PolicyPtr baseline =
      std::make_shared<FixedActionPolicy>("baseline", std::vector<float>{0.0f, 0.0f, 0.0f});
  const double baseline_score = evaluate(*baseline, states, reward);
  const double constant_score = evaluate(best_constant, states, reward);

  // Defaults (learning rate 0.05) for 150 rounds: Adam's fixed step size makes
  // the parameters jitter, so the policy only beats the best constant; a
  // learning rate of 0.01 for 300 rounds gets within a quarter of its squared
  // error (about a tenth over seeds 1 to 6 when this was written).
  struct Setting {
    nlohmann::json hp;
    int rounds;
    double max_error_ratio;  // allowed (ES error) / (best constant's error)
  };
  for (const Setting& setting : {Setting{nlohmann::json::object(), 150, 1.0},
                                 Setting{{{"learning_rate", 0.01}}, 300, 0.25}}) {
    CAPTURE(setting.hp.dump());
    auto es = make_online_learner("es", setting.hp, kStateDim, 3, baseline, 8);
    CHECK(es->candidates_per_round() == 8);
    // Round 0 is the baseline exactly (the output layer starts at zero).
    CHECK(evaluate(*es->best(), states, reward) == baseline_score);
    run_rounds(*es, setting.rounds, states, reward, 1e-3, 17);
    CHECK(es->rounds_done() == setting.rounds);
    const double es_score = evaluate(*es->best(), states, reward);
    INFO("baseline ", baseline_score, ", best constant ", constant_score, ", es ", es_score);
    CHECK(es_score > baseline_score);
    CHECK(es_score > setting.max_error_ratio * constant_score);
  }
}

TEST_CASE("grid search returns the best grid point of a known function") {
  // levels 5 on dims {0, 2}: values -1, -0.5, 0, 0.5, 1; dimension 1 fixed at 0.2.
  // score = -(a0 - 0.4)^2 - (a2 + 0.6)^2 - (a1 - 0.2)^2 is best at (0.5, 0.2, -0.5).
  const Reward reward = [](std::span<const float>, std::span<const float> a) {
    return -std::pow(a[0] - 0.4, 2) - std::pow(a[2] + 0.6, 2) - std::pow(a[1] - 0.2, 2);
  };
  const States states(1, std::vector<float>(kStateDim, 0.0f));
  const PolicyPtr baseline =
      std::make_shared<FixedActionPolicy>("baseline", std::vector<float>{0.f, 0.f, 0.f});
  auto grid = make_online_learner("grid", {{"levels", 5}, {"dims", {0, 2}}, {"center", 0.2}},
                                  kStateDim, 3, baseline, 4);
  CHECK(grid->best() == baseline);
  // 25 points, 4 per round: 7 rounds visit every point at least once.
  std::set<std::vector<float>> seen;
  for (int r = 0; r < 7; ++r) {
    for (const auto& p : grid->propose()) seen.insert(constant_action(*p));
    run_rounds(*grid, 1, states, reward, 0.0, 1);
  }
  CHECK(seen.size() == 25);
  for (const auto& a : seen) CHECK(a[1] == 0.2f);
  CHECK(constant_action(*grid->best()) == std::vector<float>{0.5f, 0.2f, -0.5f});
  CHECK(grid->describe()["points_evaluated"] == 25);
}

TEST_CASE("the same seed gives identical proposals, another seed different ones") {
  const States states = feature_states(16, 3);
  const Reward reward = [](std::span<const float> s, std::span<const float> a) {
    return -std::pow(a[0] - s[0], 2);
  };
  const PolicyPtr baseline =
      std::make_shared<FixedActionPolicy>("baseline", std::vector<float>{0.f, 0.f});
  const auto actions = [&](const std::string& type, std::uint64_t seed) {
    auto learner =
        make_online_learner(type, nlohmann::json::object(), kStateDim, 2, baseline, seed);
    run_rounds(*learner, 3, states, reward, 0.01, 5);
    std::vector<float> out;
    for (const auto& p : learner->propose()) {
      std::vector<float> a(2);
      Rng rng(0);
      for (const auto& s : states) {
        p->act(s, a, rng, nullptr);
        out.insert(out.end(), a.begin(), a.end());
      }
    }
    return out;
  };
  for (const char* type : {"es", "bo", "grid"}) {
    CAPTURE(type);
    CHECK(actions(type, 42) == actions(type, 42));
    CHECK(actions(type, 42) != actions(type, 43));
  }
}

TEST_CASE("ES's update and summary do not depend on where the caller's scores lie in memory") {
  // Vectorised reductions over a view of the caller's array would round
  // differently with its alignment (a thread-count dependence in experiments).
  const PolicyPtr baseline = std::make_shared<FixedActionPolicy>("baseline", std::vector<float>{0.f, 0.f});
  // Scores like a learner's (rewards per user-day with every digit used), whose
  // sum depends on the order of the additions.
  std::vector<double> scores(8);
  for (std::size_t k = 0; k < scores.size(); ++k) scores[k] = 40.0 + 15.0 * std::abs(std::sin(1000.0 * (k + 1)));
  const auto run = [&](std::size_t offset) {
    auto es = make_online_learner("es", {{"rank_shaping", false}}, kStateDim, 2, baseline, 4);
    REQUIRE(es->candidates_per_round() == static_cast<int>(scores.size()));
    (void)es->propose();
    std::vector<double> buffer(scores.size() + 8, 0.0);
    std::copy(scores.begin(), scores.end(), buffer.begin() + static_cast<std::ptrdiff_t>(offset));
    const std::vector<std::int64_t> users(scores.size(), 10);
    es->observe(std::span<const double>(buffer.data() + offset, scores.size()), users);
    return es->describe().dump() + policy_to_json(es->best(), baseline).dump();
  };
  const std::string aligned = run(0);
  for (std::size_t offset = 1; offset < 8; ++offset) {  // every position in a 64-byte line
    CAPTURE(offset);
    CHECK(run(offset) == aligned);
  }
}

TEST_CASE("the online learners' deployed policies survive policy_to_json and policy_from_json bit for bit") {
  const PolicyPtr baseline = std::make_shared<FixedActionPolicy>("baseline", std::vector<float>{0.3f, -0.1f});
  const States states = feature_states(16, 3);
  const Reward reward = [](std::span<const float> s, std::span<const float> a) {
    return -std::pow(a[0] - s[0], 2) - std::pow(a[1] + 0.2f, 2);
  };
  for (const char* type : {"es", "bo", "grid"}) {
    CAPTURE(type);
    auto learner = make_online_learner(type, nlohmann::json::object(), kStateDim, 2, baseline, 7);
    if (learner->best() == baseline)  // before any round: the baseline itself comes back
      CHECK(policy_from_json(policy_to_json(baseline, baseline), baseline) == baseline);
    run_rounds(*learner, 2, states, reward, 0.01, 5);
    const PolicyPtr p = learner->best();
    const PolicyPtr q = policy_from_json(nlohmann::json::parse(policy_to_json(p, baseline).dump()), baseline);
    CHECK(q->name() == p->name());
    std::vector<float> a(2), b(2);
    Rng r1(0), r2(0);
    for (const auto& s : states) {
      p->act(s, a, r1, nullptr);
      q->act(s, b, r2, nullptr);
      CHECK(a == b);
    }
  }
  CHECK_THROWS_AS(policy_from_json({{"type", "fixed_action"}, {"name", "x"}, {"action", {2.0, 0.0}}}, baseline),
                  std::invalid_argument);
  CHECK_THROWS_AS(policy_from_json({{"type", "nope"}}, baseline), std::invalid_argument);
}

TEST_CASE("candidate policies are deterministic and report their own action as the baseline") {
  const PolicyPtr baseline =
      std::make_shared<FixedActionPolicy>("baseline", std::vector<float>{0.9f, -0.2f});
  auto es = make_online_learner("es", {{"scale", 0.5}}, kStateDim, 2, baseline, 1);
  const auto s = feature_states(1, 9)[0];
  std::vector<float> a(2), b(2, 0.0f);
  Rng rng(0);
  for (const auto& p : es->propose()) {
    ActionInfo info;
    info.baseline = b;
    p->act(s, a, rng, &info);
    CHECK(info.has_baseline);
    CHECK(b == a);
    CHECK(info.log_density == std::numeric_limits<double>::infinity());
    CHECK(std::abs(a[0] - 0.9f) <= 0.5f);
    CHECK(a[0] <= 1.0f);  // clipped
  }
}

TEST_CASE("bad hyperparameters and bad observations are reported with the key and the fix") {
  const PolicyPtr baseline =
      std::make_shared<FixedActionPolicy>("baseline", std::vector<float>{0.f, 0.f});
  const auto make = [&](const std::string& type, const nlohmann::json& hp) {
    return error_of([&] { make_online_learner(type, hp, kStateDim, 2, baseline, 1); });
  };
  CHECK(make("es", {{"foo", 1}}).find("es.foo: expected one of the known keys: ") == 0);
  CHECK(make("es", {{"pair", 1}}) == "es.pair: expected a known key (did you mean \"pairs\"?), got unknown key \"pair\"");
  CHECK(make("es", {{"pairs", 0}}) == "es.pairs: expected an integer in [1, 512], got 0");
  CHECK(make("es", {{"learning_rate", "fast"}}) ==
        "es.learning_rate: expected a number, got \"fast\"");
  CHECK(make("es", {{"optimizer", "rmsprop"}}) ==
        "es.optimizer: expected one of \"adam\", \"sgd\", got \"rmsprop\"");
  CHECK(error_of([&] { make_online_learner("es", {}, 5, 2, baseline, 1); }).empty());
  CHECK(error_of([&] {
          make_online_learner("es", {{"state_scaling", "features"}}, 5, 2, baseline, 1);
        }).find("es.state_scaling: \"features\" needs") == 0);
  CHECK(error_of([&] {
          make_online_learner("es", {}, kStateDim, 2, nullptr, 1);
        }).find("es: baseline:") == 0);
  CHECK(make("bo", {{"acquisition", "pi"}}) ==
        "bo.acquisition: expected one of \"ucb\", \"ei\", got \"pi\"");
  CHECK(make("bo", {{"beta", -1.0}}) == "bo.beta: expected a number in [0, 100], got -1.0");
  CHECK(make("bo", {{"start", {0.5}}})
            .find("bo.start: expected [] (start from the baseline) or a list of 2") == 0);
  CHECK(make("grid", {{"dims", {0, 0}}}).find("grid.dims: expected") == 0);
  CHECK(make("grid", {{"levels", 1}}) == "grid.levels: expected an integer in [2, 1001], got 1");
  CHECK(make("cma", {}) == "online learner \"cma\": unknown type; known: \"es\", \"bo\", \"grid\"");

  auto grid = make_online_learner("grid", {}, kStateDim, 2, baseline, 1);
  const std::vector<std::int64_t> users(4, 10);
  const std::vector<double> scores(4, 0.0);
  CHECK_THROWS_AS(grid->observe(scores, users), std::logic_error);
  grid->propose();
  CHECK(error_of([&] {
          grid->observe(std::vector<double>(3, 0.0), users);
        }).find("grid.observe: expected 4 scores") == 0);
  CHECK(error_of([&] {
          grid->observe(std::vector<double>{0.0, std::nan(""), 0.0, 0.0}, users);
        }).find("grid.observe: scores[1] is not finite") == 0);
  CHECK(error_of([&] {
          grid->observe(scores, std::vector<std::int64_t>{1, 1, 0, 1});
        }).find("grid.observe: users[2] = 0") == 0);
  grid->observe(scores, users);
  CHECK(grid->rounds_done() == 1);
}

}  // namespace mtf::agents
