// Finite-difference and hand-computed checks of the agents' own loss terms
// (the parts not built from agents/nn layers): CQL's logsumexp regulariser,
// IQL's expectile and advantage-weighted losses, UWAC's weighted critic loss,
// and BCQ's perturbation through its clip. Each loss is a free function that
// the agent's update() calls, so these tests check the code that trains.
#include <doctest/doctest.h>

#include <cmath>

#include "agents/cql_sac.h"
#include "agents/iql.h"
#include "agents/nn/heads.h"
#include "agents/uwac_td3.h"
#include "gradient_check.h"

using namespace mtf;
using namespace mtf::agents;
using namespace mtf::agents::testing;

namespace {

Matrix random_matrix(int rows, int cols, std::uint64_t seed, float scale = 1.0f) {
  Rng rng(seed);
  Matrix m;
  nn::fill_normal(m, rows, cols, rng);
  return m * scale;
}

Matrix row(std::initializer_list<float> values) {
  Matrix m(1, static_cast<Eigen::Index>(values.size()));
  Eigen::Index k = 0;
  for (const float v : values) m(0, k++) = v;
  return m;
}

nn::MlpSpec tanh_spec(int in, int out, int members = 1) {
  nn::MlpSpec s;
  s.input = in;
  s.hidden = {7, 5};
  s.output = out;
  s.members = members;
  s.activation = nn::Activation::kTanh;
  return s;
}

}  // namespace

TEST_CASE("CQL's logsumexp term has the value and softmax gradient computed by hand") {
  // One critic, one state, one sample in each of the three blocks (uniform,
  // pi(.|s), pi(.|s')): x = Q - log p = (0.5 + ln 2, 0.7, -0.1).
  // T = 1: log(e^1.19315 + e^0.7 + e^-0.1) = 1.827131868, softmax
  // (0.530473812, 0.323961088, 0.145565100); T = 0.5: 0.5 * log(sum e^(2x)) = 1.378326778.
  const Matrix q = row({0.5f, 1.0f, -0.2f});
  const Matrix logp = row({-std::log(2.0f), 0.3f, -0.1f});
  Matrix grad;
  CHECK(cql_logsumexp(q, logp, 1, 3, 1.0f, 1.0f, grad) ==
        doctest::Approx(1.827131868).epsilon(1e-6));
  CHECK(grad(0, 0) == doctest::Approx(0.530473812).epsilon(1e-5));
  CHECK(grad(0, 1) == doctest::Approx(0.323961088).epsilon(1e-5));
  CHECK(grad(0, 2) == doctest::Approx(0.145565100).epsilon(1e-5));
  CHECK(cql_logsumexp(q, logp, 1, 3, 0.5f, 1.0f, grad) ==
        doctest::Approx(1.378326778).epsilon(1e-6));
  CHECK(grad(0, 0) == doctest::Approx(0.690486267).epsilon(1e-5));
  // The gradient scale multiplies the gradient only (the agent passes cql_alpha).
  CHECK(cql_logsumexp(q, logp, 1, 3, 1.0f, 5.0f, grad) ==
        doctest::Approx(1.827131868).epsilon(1e-6));
  CHECK(grad(0, 1) == doctest::Approx(5 * 0.323961088).epsilon(1e-5));
  // Shifting every Q by c shifts the term by c; values of 1000 do not overflow.
  const Matrix big = (q.array() + 1000.0f).matrix();
  CHECK(cql_logsumexp(big, logp, 1, 3, 1.0f, 1.0f, grad) ==
        doctest::Approx(1001.827131868).epsilon(1e-6));
  CHECK(grad(0, 0) == doctest::Approx(0.530473812).epsilon(1e-4));
}

TEST_CASE("CQL's logsumexp term matches finite differences on the agent's column layout") {
  // 2 critics, B = 3 states, n = 2 samples per block, 3 blocks: 18 columns,
  // column k * nB + j * n + r. Each state's softmax weights sum to 1 / B.
  const int n = 2, blocks = 3, B = 3;
  const Matrix q = random_matrix(2, blocks * n * B, 1);
  const Matrix logp = random_matrix(1, blocks * n * B, 2, 0.5f);
  const float T = 0.7f;
  Matrix grad, scratch;
  cql_logsumexp(q, logp, n, blocks, T, 1.0f, grad);
  check_input_gradient(q, grad, [&](const Matrix& x) {
    return cql_logsumexp(x, logp, n, blocks, T, 1.0f, scratch);
  });
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < B; ++j) {
      double sum = 0;
      for (int k = 0; k < blocks; ++k)
        for (int r = 0; r < n; ++r) sum += grad(i, k * n * B + j * n + r);
      CHECK(sum == doctest::Approx(1.0 / B).epsilon(1e-5));
    }
}

TEST_CASE("IQL's expectile loss has the hand-computed value, gradient and minimiser") {
  // u = q - v = (0.5, -0.5, 0): weights tau = 0.7 above, 1 - tau = 0.3 below:
  // L = (0.7 * 0.25 + 0.3 * 0.25 + 0) / 3 = 1/12; dL/dv = -2 w u / 3 = (-0.2333, 0.1, 0).
  Matrix grad;
  CHECK(expectile_loss(row({1, 0, 2}), row({0.5f, 0.5f, 2}), 0.7f, grad) ==
        doctest::Approx(1.0 / 12).epsilon(1e-6));
  CHECK(grad(0, 0) == doctest::Approx(-0.7 / 3).epsilon(1e-6));
  CHECK(grad(0, 1) == doctest::Approx(0.1).epsilon(1e-6));
  CHECK(grad(0, 2) == 0.0f);
  // The tau-expectile of {0, 1} is tau: tau (1 - v) = (1 - tau) v. There the
  // gradient of a shared v (the sum over the two samples) vanishes; tau = 0.5 is the mean.
  for (const float tau : {0.5f, 0.7f, 0.9f}) {
    expectile_loss(row({0, 1}), row({tau, tau}), tau, grad);
    INFO("tau " << tau);
    CHECK(std::abs(grad.sum()) < 1e-6f);
    expectile_loss(row({0, 1}), row({tau + 0.05f, tau + 0.05f}), tau, grad);
    CHECK(grad.sum() > 0.0f);  // above the expectile the loss grows
  }
  // Finite differences on random values, u away from the kink at 0.
  const Matrix q = random_matrix(1, 8, 3);
  Matrix v = random_matrix(1, 8, 4);
  for (Eigen::Index j = 0; j < v.cols(); ++j)
    if (std::abs(q(0, j) - v(0, j)) < 0.05f) v(0, j) += 0.2f;
  Matrix scratch;
  expectile_loss(q, v, 0.7f, grad);
  check_input_gradient(v, grad,
                       [&](const Matrix& x) { return expectile_loss(q, x, 0.7f, scratch); });
}

TEST_CASE("IQL's advantage-weighted actor loss has the hand-computed weights and its gradient") {
  // Temperature 3: advantages 0, ln(2)/3 and 5 give weights 1, 2 and exp(15)
  // clipped to 100; log-probabilities -1, -2, -0.5:
  // L = -(1 * -1 + 2 * -2 + 100 * -0.5) / 3 = 55 / 3; dL/dlogp = -w / 3.
  const Matrix adv = row({0.0f, std::log(2.0f) / 3.0f, 5.0f});
  const Matrix logp = row({-1.0f, -2.0f, -0.5f});
  Matrix grad;
  CHECK(awr_loss(adv, logp, 3.0f, 100.0f, grad) == doctest::Approx(55.0 / 3).epsilon(1e-6));
  CHECK(grad(0, 0) == doctest::Approx(-1.0 / 3).epsilon(1e-6));
  CHECK(grad(0, 1) == doctest::Approx(-2.0 / 3).epsilon(1e-5));
  CHECK(grad(0, 2) == doctest::Approx(-100.0 / 3).epsilon(1e-6));
  // Through a Gaussian actor: the composed parameter gradients match finite differences.
  Rng rng(5);
  nn::GaussianActor actor(tanh_spec(3, 2), rng);
  actor.log_std.value << 0.2f, -0.4f;
  const Matrix s = random_matrix(3, 6, 6);
  const Matrix a = random_matrix(2, 6, 7, 0.4f);
  const Matrix advantage = random_matrix(1, 6, 8, 0.5f);
  nn::MlpWorkspace ws;
  Matrix dlogp;
  auto eval = [&](bool with_grad) {
    const double l = awr_loss(advantage, actor.log_prob(s, a, ws), 3.0f, 100.0f, dlogp);
    if (with_grad) actor.backward(s, a, dlogp, ws);
    return l;
  };
  check_gradients(
      actor.params(), [&] { return eval(true); }, [&] { return eval(false); });
}

TEST_CASE("UWAC's weights and weighted critic loss have the hand-computed values and gradients") {
  // Variances averaged over 2 critics: 0, 1, 2 -> exp(-0.5 v) = 1, 0.60653, 0.36788,
  // the last clamped up to weight_min 0.5.
  Matrix var(2, 3);
  var << 0, 1, 4, 0, 1, 0;
  const RowVector w = uwac_weights(var, 0.5f, 0.5f, 1.5f);
  CHECK(w(0) == 1.0f);
  CHECK(w(1) == doctest::Approx(0.6065306597).epsilon(1e-6));
  CHECK(w(2) == 0.5f);
  CHECK(uwac_weights(var, 0.5f, 0.0f, 0.5f)(0) == 0.5f);  // clamped down to weight_max
  // Weighted TD loss: diffs (0.5, -0.5; -0.5, 0.5), weights (0.5, 1), B = 2:
  // L = (0.5 * 0.25 + 0.25 + 0.5 * 0.25 + 0.25) / 2 = 0.375; dL/dQ = 2 w diff / 2.
  Matrix q(2, 2), grad;
  q << 1, 2, 0, 3;
  const Matrix y = row({0.5f, 2.5f});
  const RowVector w2 = row({0.5f, 1.0f});
  CHECK(td_loss(q, y, &w2, grad) == doctest::Approx(0.375));
  Matrix expect(2, 2);
  expect << 0.25f, -0.5f, -0.25f, 0.5f;
  CHECK(grad == expect);
  CHECK(td_loss(q, y, nullptr, grad) == doctest::Approx(0.5));  // TD3: unweighted
  // Through two dropout critics with fixed masks (the rng is re-seeded for each
  // evaluation): the parameter gradients of the weighted loss match finite differences.
  nn::MlpSpec cs = tanh_spec(4, 1, 2);
  cs.dropout = 0.2f;
  Rng init(9);
  nn::Mlp critics(cs, init);
  const Matrix x = random_matrix(4, 7, 10);
  const Matrix target = random_matrix(1, 7, 11);
  const RowVector weight = uwac_weights(random_matrix(2, 7, 12).cwiseAbs(), 1.0f, 0.0f, 1.5f);
  nn::MlpWorkspace ws;
  Matrix dq;
  auto eval = [&](bool with_grad) {
    Rng masks(13);
    const double l = td_loss(critics.forward(x, ws, &masks), target, &weight, dq);
    if (with_grad) critics.backward(x, dq, ws, nn::BackwardOptions{});
    return l;
  };
  check_gradients(
      critics.params(), [&] { return eval(true); }, [&] { return eval(false); });
}

TEST_CASE(
    "BCQ's perturbation gradient is zero through the clip and matches finite differences "
    "elsewhere") {
  // rho = 0.5 and data actions at +-0.9 push many a + xi past +-1, where the
  // clip makes the perturbed action constant.
  Rng rng(60);
  nn::Perturbation p(tanh_spec(5, 2), 0.5f, rng);
  const Matrix s = random_matrix(3, 12, 61);
  Matrix a(2, 12);
  for (Eigen::Index j = 0; j < 12; ++j) {
    a(0, j) = j % 2 == 0 ? 0.9f : -0.9f;
    a(1, j) = j % 3 == 0 ? 0.0f : (j % 3 == 1 ? 0.9f : -0.9f);
  }
  nn::MlpWorkspace ws;
  p.forward(s, a, ws);
  // Raw a + xi, from the perturbed actions where unclipped.
  Matrix out;
  p.net.infer(p.input, out);
  const Matrix raw = (a.array() + 0.5f * out.array().tanh()).matrix();
  const Matrix clipped = (raw.array().abs() >= 1.0f).cast<float>();
  const float margin = (raw.array().abs() - 1.0f).abs().minCoeff();
  MESSAGE("clipped entries " << clipped.sum() << " of 24, margin " << margin);
  REQUIRE(clipped.sum() >= 4);
  REQUIRE(clipped.sum() <= 20);
  // A weight step of h = 1e-2 moves xi by about rho * h * |input| ~ 0.015 here:
  // finite differences never cross the clip.
  REQUIRE(margin > 0.02f);
  CHECK((p.perturbed.array().abs() == 1.0f).cast<float>().matrix() == clipped);
  // A loss that reads only the clipped entries has exactly zero gradient.
  const Matrix w = random_matrix(2, 12, 63);
  const Matrix w_clipped = w.cwiseProduct(clipped);
  p.forward(s, a, ws);
  p.backward(w_clipped, ws);
  for (nn::Param* q : p.net.params()) CHECK(q->grad.isZero(0.0f));
  // The full loss: finite differences agree across clipped and unclipped entries.
  auto eval = [&](bool with_grad) {
    const double l = p.forward(s, a, ws).cwiseProduct(w).sum();
    if (with_grad) p.backward(w, ws);
    return l;
  };
  check_gradients(
      p.net.params(), [&] { return eval(true); }, [&] { return eval(false); }, 30);
}
