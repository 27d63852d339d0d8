// Tests of the exploration policies (sim/exploration.h): support and bounds near
// the faces, sample distributions against their analytic laws, recorded log
// densities against hand-computed values, and the near-baseline share of
// IntegratedRL-MTF section 4.5.2.
//
// Statistical tolerances are 4 standard errors of the estimate at the stated
// sample size (a two-sided 4-sigma band: false alarm about 6e-5 per check), with
// fixed seeds; KS checks use the 0.1% critical value 1.95 / sqrt(n).
#include "sim/exploration.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numbers>
#include <tuple>
#include <vector>

#include "results/recorder.h"
#include "sim/policies.h"
#include "sim/scenario.h"
#include "sim/state_features.h"
#include "test_world.h"

using namespace mtf;
using Json = nlohmann::ordered_json;

namespace {

double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::numbers::sqrt2); }

PolicyPtr constant(std::vector<float> mu) {
  return std::make_shared<ConstantPolicy>(std::move(mu));
}

/// One act() with every ActionInfo buffer supplied.
struct Draw {
  std::vector<float> action, baseline, lower, upper;
  ActionInfo info;
  explicit Draw(std::size_t d) : action(d), baseline(d), lower(d), upper(d) {}
  void run(const Policy& p, Rng& rng) {
    info = ActionInfo{};
    info.baseline = baseline;
    info.lower = lower;
    info.upper = upper;
    const std::vector<float> state(kStateDim, 0.0f);
    p.act(state, action, rng, &info);
  }
};

struct Moments {
  double mean = 0, var = 0;
};
Moments moments(const std::vector<double>& x) {
  Moments m;
  for (double v : x) m.mean += v;
  m.mean /= static_cast<double>(x.size());
  for (double v : x) m.var += (v - m.mean) * (v - m.mean);
  m.var /= static_cast<double>(x.size() - 1);
  return m;
}

/// Kolmogorov-Smirnov statistic of a sample against a continuous cdf.
template <class Cdf>
double ks_statistic(std::vector<double> x, Cdf cdf) {
  std::sort(x.begin(), x.end());
  const double n = static_cast<double>(x.size());
  double d = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double f = cdf(x[i]);
    d = std::max({d, f - static_cast<double>(i) / n, static_cast<double>(i + 1) / n - f});
  }
  return d;
}

constexpr double kHalfLog2Pi = 0.91893853320467274178;  // 0.5 log(2 pi)

}  // namespace

TEST_CASE("exploration policies keep every action in [-1, 1] and record bounds near the faces") {
  // mu at a face (-1), next to one (0.95) and inside (0, 0.3).
  const std::vector<float> mu = {0.95f, -1.0f, 0.0f, 0.3f};
  const GaussianNoisePolicy gauss(constant(mu), 0.2);
  const UniformRandomPolicy random(4, constant(mu));
  const BoundedUniformPolicy bounded(constant(mu), 0.15);
  CHECK(gauss.name() == "gaussian");
  CHECK(random.name() == "random");
  CHECK(bounded.name() == "bounded_uniform");
  CHECK(gauss.action_dim() == 4);
  CHECK(bounded.action_dim() == 4);

  // Hand-computed: max(mu - 0.15, -1) and min(mu + 0.15, 1).
  const std::vector<double> lower = {0.8, -1.0, -0.15, 0.15}, upper = {1.0, -0.85, 0.15, 0.45};
  Rng rng(7, Stream::kExploration);
  Draw g(4), r(4), b(4);
  for (int k = 0; k < 5000; ++k) {
    g.run(gauss, rng);
    r.run(random, rng);
    b.run(bounded, rng);
    REQUIRE(g.info.has_baseline);
    REQUIRE_FALSE(g.info.has_bounds);
    REQUIRE(r.info.has_baseline);
    REQUIRE(r.info.has_bounds);
    REQUIRE(b.info.has_baseline);
    REQUIRE(b.info.has_bounds);
    for (std::size_t i = 0; i < 4; ++i) {
      REQUIRE(g.baseline[i] == mu[i]);
      REQUIRE(r.baseline[i] == mu[i]);
      REQUIRE(b.baseline[i] == mu[i]);
      REQUIRE(g.action[i] >= -1.0f);
      REQUIRE(g.action[i] <= 1.0f);
      REQUIRE(r.action[i] >= -1.0f);
      REQUIRE(r.action[i] <= 1.0f);
      REQUIRE(r.lower[i] == -1.0f);
      REQUIRE(r.upper[i] == 1.0f);
      REQUIRE(b.lower[i] == doctest::Approx(lower[i]).epsilon(1e-6));
      REQUIRE(b.upper[i] == doctest::Approx(upper[i]).epsilon(1e-6));
      REQUIRE(b.action[i] >= b.lower[i]);
      REQUIRE(b.action[i] <= b.upper[i]);
    }
  }
  // The face mu = -1 is exact: its lower bound is the face itself.
  CHECK(b.lower[1] == -1.0f);
  CHECK(b.upper[0] == 1.0f);
}

TEST_CASE(
    "gaussian exploration: interior moments match mu and sigma^2, face masses the normal tails") {
  // Dimensions: interior mu = 0.1 (faces 4.5 sigma away: clipped mass 3e-6,
  // negligible), mu = 0.95 (upper face 0.25 sigma away) and mu = -1 (on the face).
  const double sigma = 0.2;
  const GaussianNoisePolicy p(constant({0.1f, 0.95f, -1.0f}), sigma);
  constexpr int n = 100000;
  Rng rng(11, Stream::kExploration);
  Draw dr(3);
  std::vector<double> interior;
  int upper_hits = 0, lower_hits = 0;
  for (int k = 0; k < n; ++k) {
    dr.run(p, rng);
    interior.push_back(dr.action[0]);
    upper_hits += dr.action[1] == 1.0f;
    lower_hits += dr.action[2] == -1.0f;
  }
  const Moments m = moments(interior);
  // Standard errors: mean sigma / sqrt(n) = 6.3e-4; sample variance
  // sigma^2 sqrt(2 / (n - 1)) = 1.8e-4 (normal fourth moment).
  CHECK(std::fabs(m.mean - 0.1) < 4 * sigma / std::sqrt(n));
  CHECK(std::fabs(m.var - sigma * sigma) < 4 * sigma * sigma * std::sqrt(2.0 / (n - 1)));

  // Clipped masses: P(0.95 + 0.2 z >= 1) = 1 - Phi(0.25) = 0.40129; P(-1 + 0.2 z <= -1) = 1/2.
  const double p_up = 1 - normal_cdf(0.25);
  CHECK(p_up == doctest::Approx(0.4012936743).epsilon(1e-9));
  const double se_up = std::sqrt(p_up * (1 - p_up) / n), se_half = std::sqrt(0.25 / n);
  CHECK(std::fabs(upper_hits / double(n) - p_up) < 4 * se_up);
  CHECK(std::fabs(lower_hits / double(n) - 0.5) < 4 * se_half);

  // KS on the interior dimension against N(0.1, 0.2^2), first 20000 draws.
  const std::vector<double> head(interior.begin(), interior.begin() + 20000);
  const double d = ks_statistic(head, [&](double x) { return normal_cdf((x - 0.1) / sigma); });
  CHECK(d < 1.95 / std::sqrt(20000.0));
}

TEST_CASE("bounded uniform exploration: mean (lower+upper)/2, variance width^2/12, uniform KS") {
  // mu = 0.95 with bound 0.15: the box is [0.8, 1] (width 0.2), clipped at the face.
  const BoundedUniformPolicy p(constant({0.95f, 0.0f}), std::vector<double>{0.15, 0.4});
  CHECK(p.bound(0) == 0.15);
  CHECK(p.bound(1) == 0.4);
  constexpr int n = 100000;
  Rng rng(13, Stream::kExploration);
  Draw dr(2);
  std::vector<double> x0, x1;
  for (int k = 0; k < n; ++k) {
    dr.run(p, rng);
    x0.push_back(dr.action[0]);
    x1.push_back(dr.action[1]);
  }
  // Standard errors: mean w / sqrt(12 n); sample variance w^2 / sqrt(180 n)
  // (Var((X - m)^2) = w^4 / 80 - w^4 / 144 = w^4 / 180 for a uniform of width w).
  for (const auto& [x, lo, hi] : {std::tuple{&x0, 0.8, 1.0}, std::tuple{&x1, -0.4, 0.4}}) {
    const double w = hi - lo;
    const Moments m = moments(*x);
    CHECK(std::fabs(m.mean - (lo + hi) / 2) < 4 * w / std::sqrt(12.0 * n));
    CHECK(std::fabs(m.var - w * w / 12) < 4 * w * w / std::sqrt(180.0 * n));
  }
  const std::vector<double> head(x0.begin(), x0.begin() + 20000);
  const double d =
      ks_statistic(head, [](double x) { return std::clamp((x - 0.8) / 0.2, 0.0, 1.0); });
  CHECK(d < 1.95 / std::sqrt(20000.0));
}

TEST_CASE("uniform random exploration: log density -d log 2 and the uniform law on [-1, 1]") {
  const UniformRandomPolicy p(3, constant({0.5f, -0.5f, 0.0f}));
  constexpr int n = 30000;
  Rng rng(17, Stream::kExploration);
  Draw dr(3);
  std::vector<double> x;
  for (int k = 0; k < n; ++k) {
    dr.run(p, rng);
    REQUIRE(dr.info.log_density == -3 * std::numbers::ln2);
    x.push_back(dr.action[2]);
  }
  const Moments m = moments(x);
  CHECK(std::fabs(m.mean) < 4 * 2 / std::sqrt(12.0 * n));
  CHECK(std::fabs(m.var - 4.0 / 12) < 4 * 4 / std::sqrt(180.0 * n));
  const std::vector<double> head(x.begin(), x.begin() + 20000);
  CHECK(ks_statistic(head, [](double v) { return (v + 1) / 2; }) < 1.95 / std::sqrt(20000.0));

  // Without a base the baseline is unknown; the law is the same.
  const UniformRandomPolicy bare(3, nullptr);
  dr.run(bare, rng);
  CHECK_FALSE(dr.info.has_baseline);
  CHECK(dr.info.log_density == -3 * std::numbers::ln2);
}

TEST_CASE("exploration log densities equal hand-computed values") {
  const double sigma = 0.2;
  // Interior: z = 1 and z = 0 -> (-0.5 - log 0.2 - 0.5 log 2pi) + (-log 0.2 - 0.5 log 2pi).
  const std::vector<float> mu = {0.0f, 0.5f}, a = {0.2f, 0.5f};
  CHECK(clipped_gaussian_log_density(mu, a, sigma) == doctest::Approx(0.8809987585).epsilon(1e-6));
  // One clipped coordinate: log(1 - Phi(0.25)) + log pdf at z = 0.
  const std::vector<float> mu2 = {0.95f, 0.0f}, a2 = {1.0f, 0.0f};
  CHECK(clipped_gaussian_log_density(mu2, a2, sigma) ==
        doctest::Approx(-0.2225623856).epsilon(1e-6));
  // On the face mu = -1, clipped: log Phi(0) = -log 2.
  const std::vector<float> mu3 = {-1.0f}, a3 = {-1.0f};
  CHECK(clipped_gaussian_log_density(mu3, a3, sigma) == doctest::Approx(-std::numbers::ln2));
  // Bounded uniform boxes at the faces and inside: widths 0.2, 0.15, 0.3.
  const std::vector<float> lo = {0.8f, -1.0f, -0.15f}, hi = {1.0f, -0.85f, 0.15f};
  CHECK(box_uniform_log_density(lo, hi) ==
        doctest::Approx(1.6094379124 + 1.8971199849 + 1.2039728043).epsilon(1e-6));

  SUBCASE("the gaussian policy records exactly these values for the action it took") {
    // d = 1 at mu = 0.95: every clipped draw records log(1 - Phi(0.25)); every
    // interior draw the normal log pdf at its own action.
    const GaussianNoisePolicy p(constant({0.95f}), sigma);
    Rng rng(19, Stream::kExploration);
    Draw dr(1);
    int clipped = 0, inside = 0;
    for (int k = 0; k < 200; ++k) {
      dr.run(p, rng);
      if (dr.action[0] == 1.0f) {
        ++clipped;
        REQUIRE(dr.info.log_density == doctest::Approx(-0.9130617648).epsilon(1e-6));
      } else {
        ++inside;
        const double z = (static_cast<double>(dr.action[0]) - 0.95f) / sigma;
        REQUIRE(dr.info.log_density ==
                doctest::Approx(-0.5 * z * z - std::log(sigma) - kHalfLog2Pi).epsilon(1e-12));
      }
      REQUIRE(dr.info.log_density == clipped_gaussian_log_density(dr.baseline, dr.action, sigma));
    }
    CHECK(clipped > 0);
    CHECK(inside > 0);
  }
  SUBCASE("the bounded uniform policy records -sum log(width) of its clipped box") {
    const BoundedUniformPolicy p(constant({0.95f, -1.0f, 0.0f}), 0.15);
    Rng rng(23, Stream::kExploration);
    Draw dr(3);
    dr.run(p, rng);
    CHECK(dr.info.log_density ==
          doctest::Approx(1.6094379124 + 1.8971199849 + 1.2039728043).epsilon(1e-6));
    CHECK(dr.info.log_density == box_uniform_log_density(dr.lower, dr.upper));
  }
}

TEST_CASE("exploration densities integrate to 1: interior integral plus the face masses") {
  // 1-D, mu = 0.7, sigma = 0.3: both faces carry mass (upper 0.159, lower 1e-8).
  const double sigma = 0.3;
  const std::vector<float> mu = {0.7f};
  auto density = [&](float a) {
    const std::vector<float> x = {a};
    return std::exp(clipped_gaussian_log_density(mu, x, sigma));
  };
  // Midpoint rule on (-1, 1): error ~ h^2 / 24 * max|f''| * 2 < 1e-9 with h = 1e-4.
  constexpr int steps = 20000;
  const double h = 2.0 / steps;
  double interior = 0;
  for (int k = 0; k < steps; ++k) interior += h * density(static_cast<float>(-1 + (k + 0.5) * h));
  const double faces = density(-1.0f) + density(1.0f);
  CHECK(density(1.0f) ==
        doctest::Approx(1 - normal_cdf(1.0)).epsilon(1e-6));  // (1 - 0.7) / 0.3 = 1
  CHECK(interior + faces == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(interior == doctest::Approx(normal_cdf(1.0) - normal_cdf(-1.7 / 0.3)).epsilon(1e-6));
}

TEST_CASE("near-baseline exploration share: measured matches analytic, ratio ~ 2^8.7 in 10 dims") {
  const double sigma = 0.2, bound = 0.15;
  // Interior mu: each Gaussian factor 2 Phi(0.75) - 1 = 0.5467, each uniform factor 1.
  const std::vector<float> mu10 = {0.0f, 0.1f, -0.2f, 0.3f, -0.4f, 0.5f, -0.6f, 0.7f, 0.0f, 0.2f};
  const NearBaselineDensity a10 = near_baseline_density_analytic(mu10, sigma, bound, bound);
  CHECK(a10.gaussian_share == doctest::Approx(0.0023869897).epsilon(1e-6));
  CHECK(a10.uniform_share == doctest::Approx(1.0).epsilon(1e-6));  // float bounds
  CHECK(a10.ratio == doctest::Approx(418.9377095).epsilon(1e-6));
  CHECK(std::log2(a10.ratio) == doctest::Approx(8.7106).epsilon(1e-4));

  constexpr std::int64_t n = 400000;
  const NearBaselineDensity m10 = near_baseline_density(mu10, sigma, bound, bound, n, 5);
  CHECK(m10.uniform_share == 1.0);
  const double p = a10.gaussian_share;
  CHECK(std::fabs(m10.gaussian_share - p) < 4 * std::sqrt(p * (1 - p) / n));  // about 956 hits

  SUBCASE("at the faces the shares follow the clipped laws") {
    // mu = 0.95: Gaussian 1 - Phi(-0.75) = 0.7734 (clipped draws count), uniform 1.
    // mu = -1, radius 0.1: Gaussian Phi(0.5) = 0.6915; uniform 0.1 / 0.15 = 2/3.
    const std::vector<float> up = {0.95f}, face = {-1.0f};
    const NearBaselineDensity au = near_baseline_density_analytic(up, sigma, bound, bound);
    CHECK(au.gaussian_share == doctest::Approx(0.7733726476).epsilon(1e-6));
    CHECK(au.uniform_share == doctest::Approx(1.0).epsilon(1e-6));
    const NearBaselineDensity af = near_baseline_density_analytic(face, sigma, bound, 0.1);
    CHECK(af.gaussian_share == doctest::Approx(0.6914624613).epsilon(1e-6));
    CHECK(af.uniform_share == doctest::Approx(2.0 / 3).epsilon(1e-6));
    constexpr std::int64_t k = 100000;
    for (const auto& [mu, r, an] : {std::tuple{up, bound, au}, std::tuple{face, 0.1, af}}) {
      const NearBaselineDensity me = near_baseline_density(mu, sigma, bound, r, k, 9);
      const double g = an.gaussian_share, u = an.uniform_share;
      CHECK(std::fabs(me.gaussian_share - g) < 4 * std::sqrt(g * (1 - g) / k));
      CHECK(std::fabs(me.uniform_share - u) < 4 * std::sqrt(u * (1 - u) / k) + 1e-12);
    }
  }
  SUBCASE("the ratio grows as the per-dimension factor to the power d") {
    const double per_dim = 1 / (2 * normal_cdf(0.75) - 1);
    double previous = 1;
    for (int d : {1, 2, 4, 8}) {
      const std::vector<float> mu(static_cast<std::size_t>(d), 0.0f);
      const NearBaselineDensity an = near_baseline_density_analytic(mu, sigma, bound, bound);
      CHECK(an.ratio == doctest::Approx(std::pow(per_dim, d)).epsilon(1e-6));
      const NearBaselineDensity me = near_baseline_density(mu, sigma, bound, bound, n, 3);
      // Relative standard error of the ratio: sqrt((1 - p) / (n p)), p the Gaussian share.
      const double g = an.gaussian_share;
      CHECK(std::fabs(me.ratio / an.ratio - 1) < 4 * std::sqrt((1 - g) / (n * g)));
      CHECK(me.ratio > previous);
      previous = me.ratio;
    }
  }
  SUBCASE("bad arguments name themselves") {
    CHECK_THROWS_WITH_AS(near_baseline_density(mu10, 0.0, bound, bound, n, 1),
                         doctest::Contains("sigma must be"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(near_baseline_density(mu10, sigma, 2.5, bound, n, 1),
                         doctest::Contains("bound must be in (0, 2]"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(near_baseline_density(mu10, sigma, bound, bound, 0, 1),
                         doctest::Contains("n must be >= 1"), std::invalid_argument);
    const std::vector<float> bad = {1.5f};
    CHECK_THROWS_WITH_AS(near_baseline_density_analytic(bad, sigma, bound, bound),
                         doctest::Contains("mu[0] must be in [-1, 1]"), std::invalid_argument);
  }
}

TEST_CASE("exploration policies validate their arguments") {
  CHECK_THROWS_WITH_AS(GaussianNoisePolicy(constant({0.0f}), 0.0),
                       doctest::Contains("GaussianNoisePolicy: sigma"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(GaussianNoisePolicy(nullptr, 0.2),
                       doctest::Contains("GaussianNoisePolicy: base policy is null"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(BoundedUniformPolicy(constant({0.0f}), 0.0),
                       doctest::Contains("BoundedUniformPolicy: bound must be in (0, 2]"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(BoundedUniformPolicy(constant({0.0f}), std::vector<double>{0.1, 0.1}),
                       doctest::Contains("bounds has 2 entries"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(UniformRandomPolicy(2, constant({0.0f})),
                       doctest::Contains("base policy has dimension 1, expected d = 2"),
                       std::invalid_argument);
}

TEST_CASE("exploration policies built from a scenario wrap the production baseline") {
  const Scenario s = parse_scenario(R"({
    "fusion": {"dims": [{"task": "play", "term": "pow", "range": [0, 2]},
                        {"task": "watch_time", "term": "pow", "range": [0, 2]},
                        {"task": "skip", "term": "pow", "range": [-2, 0.5]}]},
    "groups": [{"name": "g", "policy": {"type": "gaussian", "sigma": 0.1}},
               {"name": "r", "policy": {"type": "random"}},
               {"name": "b", "policy": {"type": "bounded_uniform", "bound": [0.1, 0.2, 0.3]}},
               {"name": "c", "policy": {"type": "bounded_uniform",
                                        "around": {"type": "constant", "action": [1, 0, -1]}}}]
  })");
  const PolicyPtr g = make_policy(s.groups[0].policy, s), r = make_policy(s.groups[1].policy, s),
                  b = make_policy(s.groups[2].policy, s), c = make_policy(s.groups[3].policy, s);
  CHECK(g->name() == "gaussian");
  CHECK(dynamic_cast<const GaussianNoisePolicy&>(*g).sigma() == 0.1);
  CHECK(r->name() == "random");
  CHECK(r->action_dim() == 3);
  CHECK(dynamic_cast<const BoundedUniformPolicy&>(*b).bound(2) == 0.3);

  // The recorded baseline is the production rule's action for the same state.
  const BaselinePolicy base(s.fusion);
  Rng rng(29, Stream::kExploration);
  Draw want(3), got(3);
  want.run(base, rng);
  for (const PolicyPtr& p : {g, r, b}) {
    got.run(*p, rng);
    CHECK(got.baseline == want.action);
  }
  // Around a constant at the faces: boxes [0.85, 1], [-0.15, 0.15], [-1, -0.85].
  got.run(*c, rng);
  CHECK(got.baseline == std::vector<float>{1.0f, 0.0f, -1.0f});
  CHECK(got.lower[0] == doctest::Approx(0.85).epsilon(1e-6));
  CHECK(got.upper[2] == doctest::Approx(-0.85).epsilon(1e-6));
  CHECK(got.info.log_density == doctest::Approx(-2 * std::log(0.15) - std::log(0.3)).epsilon(1e-6));
}

TEST_CASE("exploration runs record what a dataset reader needs to recompute every density") {
  // A small world, one group per exploration type; every recorded row is checked.
  Scenario s = test::quickstart_world(90, 1);
  const int d = s.action_dim();
  s.groups.clear();
  for (const char* block : {R"({"type":"gaussian","sigma":0.2})", R"({"type":"random"})",
                            R"({"type":"bounded_uniform","bound":0.15})"}) {
    GroupSpec g;
    g.name = Json::parse(block)["type"].get<std::string>();
    Scenario one =
        parse_scenario(R"({"fusion": )" + Json::parse(scenario_to_json(s))["fusion"].dump() +
                       R"(, "groups": [{"policy": )" + block + "}]}");
    g.policy = one.groups[0].policy;
    s.groups.push_back(g);
  }
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() / "mtf_exploration_test.sqlite";
  std::filesystem::remove(path);
  {
    Simulator sim(s);
    Recorder rec(path, sim.run_info("test", 1));
    RunOptions o;
    o.threads = 1;
    sim.run(o, &rec);
    rec.finish({}, 0.0);
  }
  const RunContents run = read_run(path);
  std::filesystem::remove(path);
  const BaselinePolicy base(s.fusion);
  std::array<int, 3> rows{};
  Rng unused(0);
  std::vector<float> mu(static_cast<std::size_t>(d));
  for (const TransitionRow& t : run.transitions) {
    ++rows[static_cast<std::size_t>(t.group)];
    base.act(t.state, mu, unused, nullptr);
    REQUIRE(t.baseline == mu);
    REQUIRE(t.log_density.has_value());
    for (int i = 0; i < d; ++i) REQUIRE(std::fabs(t.action[i]) <= 1.0f);
    switch (t.group) {
      case 0:
        REQUIRE(t.lower.empty());
        REQUIRE(*t.log_density == clipped_gaussian_log_density(t.baseline, t.action, 0.2));
        break;
      case 1:
        REQUIRE(t.lower == std::vector<float>(static_cast<std::size_t>(d), -1.0f));
        REQUIRE(*t.log_density == -d * std::numbers::ln2);
        break;
      default:
        REQUIRE(*t.log_density == box_uniform_log_density(t.lower, t.upper));
        for (int i = 0; i < d; ++i) {
          REQUIRE(t.action[i] >= t.lower[i]);
          REQUIRE(t.action[i] <= t.upper[i]);
          REQUIRE(t.upper[i] - t.lower[i] <= 0.3f + 1e-6f);
        }
    }
  }
  MESSAGE("rows per group: " << rows[0] << ", " << rows[1] << ", " << rows[2]);
  for (int r : rows) CHECK(r > 30);  // every group served requests
}

TEST_CASE("a batched act of an exploration policy gives, row by row, the bits, draws and information of act()") {
  const Scenario s = parse_scenario(R"({
    "fusion": {"dims": [{"task": "play", "term": "pow", "range": [0, 2]},
                        {"task": "watch_time", "term": "pow", "range": [0, 2]},
                        {"task": "skip", "term": "pow", "range": [-2, 0.5]}]},
    "groups": [{"name": "g", "policy": {"type": "gaussian", "sigma": 0.3}},
               {"name": "r", "policy": {"type": "random"}},
               {"name": "b", "policy": {"type": "bounded_uniform", "bound": [0.1, 0.2, 0.3]}},
               {"name": "c", "policy": {"type": "bounded_uniform",
                                        "around": {"type": "constant", "action": [1, 0, -1]}}}]
  })");
  constexpr std::size_t d = 3, S = kStateDim;
  Rng state_rng(31);
  for (const GroupSpec& group : s.groups) {
    const PolicyPtr p = make_policy(group.policy, s);
    INFO("policy " << group.name);
    for (const std::size_t n : {std::size_t{1}, std::size_t{2}, std::size_t{7}, std::size_t{40}}) {
      INFO("batch of " << n);
      std::vector<float> states(n * S);
      for (float& x : states) x = state_rng.uniform01();
      std::vector<Rng> batch_rngs, row_rngs;
      for (std::size_t i = 0; i < n; ++i) {
        batch_rngs.emplace_back(50, Stream::kExploration, i);
        row_rngs.emplace_back(50, Stream::kExploration, i);
      }
      std::vector<Rng*> rng_ptrs;
      for (Rng& r : batch_rngs) rng_ptrs.push_back(&r);
      std::vector<float> actions(n * d, 9.0f);
      std::vector<Draw> batch_draws(n, Draw(d)), row_draws(n, Draw(d));
      std::vector<ActionInfo*> infos;
      for (Draw& w : batch_draws) {
        w.info.baseline = w.baseline;
        w.info.lower = w.lower;
        w.info.upper = w.upper;
        infos.push_back(&w.info);
      }
      p->act_batch(states, actions, rng_ptrs, infos);
      for (std::size_t i = 0; i < n; ++i) {
        Draw& w = row_draws[i];
        w.info.baseline = w.baseline;
        w.info.lower = w.lower;
        w.info.upper = w.upper;
        p->act(std::span<const float>(states).subspan(i * S, S), w.action, row_rngs[i], &w.info);
        const Draw& b = batch_draws[i];
        CHECK(std::equal(w.action.begin(), w.action.end(), actions.begin() + static_cast<std::ptrdiff_t>(i * d)));
        CHECK(b.baseline == w.baseline);
        CHECK(b.lower == w.lower);
        CHECK(b.upper == w.upper);
        CHECK(b.info.has_baseline == w.info.has_baseline);
        CHECK(b.info.has_bounds == w.info.has_bounds);
        CHECK(b.info.log_density == w.info.log_density);
        CHECK(batch_rngs[i]() == row_rngs[i]());  // the same number of draws
      }
      // Without infos the actions and draws are the same.
      std::vector<Rng> again;
      std::vector<Rng*> again_ptrs;
      for (std::size_t i = 0; i < n; ++i) again.emplace_back(50, Stream::kExploration, i);
      for (Rng& r : again) again_ptrs.push_back(&r);
      std::vector<float> bare(n * d);
      p->act_batch(states, bare, again_ptrs, {});
      CHECK(bare == actions);
    }
  }
}
