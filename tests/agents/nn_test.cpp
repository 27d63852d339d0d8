// Finite-difference checks of every layer and head of agents/nn, the
// thread-count independence of the batched products, and the batch
// independence of the acting product (infer_columns).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <functional>

#include "agents/nn/adam.h"
#include "agents/nn/heads.h"
#include "agents/nn/mlp.h"
#include "gradient_check.h"

using namespace mtf;
using namespace mtf::nn;
using mtf::agents::testing::check_gradients;

namespace {

Matrix random_matrix(int rows, int cols, std::uint64_t seed, float scale = 1.0f) {
  Rng rng(seed);
  Matrix m;
  fill_normal(m, rows, cols, rng);
  return m * scale;
}

MlpSpec small_spec(int in, int out, int members = 1, bool ln = false) {
  MlpSpec s;
  s.input = in;
  s.hidden = {7, 5};
  s.output = out;
  s.members = members;
  s.activation = Activation::kTanh;
  s.layer_norm = ln;
  return s;
}

}  // namespace

TEST_CASE("an ensemble's gradients match finite differences, with and without layer norm") {
  for (bool ln : {false, true}) {
    for (int members : {1, 3}) {
      Rng rng(1);
      Mlp net(small_spec(4, 2, members, ln), rng);
      const Matrix x = random_matrix(4, 9, 2);
      const Matrix w = random_matrix(2 * members, 9, 3);  // loss = sum(w .* out)
      MlpWorkspace ws;
      auto loss_only = [&] {
        Matrix out;
        net.infer(x, out);
        return double(out.cwiseProduct(w).sum());
      };
      auto loss_and_grad = [&] {
        const double l = double(net.forward(x, ws).cwiseProduct(w).sum());
        net.backward(x, w, ws, BackwardOptions{});
        return l;
      };
      check_gradients(net.params(), loss_and_grad, loss_only);
    }
  }
}

TEST_CASE("the input gradient of an ensemble sums over members and matches finite differences") {
  Rng rng(4);
  Mlp net(small_spec(5, 1, 4), rng);
  Matrix x = random_matrix(5, 6, 5);
  const Matrix w = random_matrix(4, 6, 6);
  MlpWorkspace ws;
  net.forward(x, ws);
  Matrix dx;
  net.input_backward(x, w, ws, dx, 3, 2);  // rows 3 and 4 only (the "action" rows)
  REQUIRE(dx.rows() == 2);
  const float h = 1e-2f;
  for (int r = 3; r < 5; ++r)
    for (int j = 0; j < 6; ++j) {
      Matrix out;
      x(r, j) += h;
      net.infer(x, out);
      const double up = out.cwiseProduct(w).sum();
      x(r, j) -= 2 * h;
      net.infer(x, out);
      const double down = out.cwiseProduct(w).sum();
      x(r, j) += h;
      CHECK(std::abs(dx(r - 3, j) - (up - down) / (2 * h)) <= 2e-3 + 1e-2 * std::abs(dx(r - 3, j)));
    }
}

TEST_CASE("relu layers back-propagate through the active units only") {
  // One linear layer then relu then a linear output: away from kinks the
  // gradient is exact, so inputs are chosen with |pre-activation| > 0.05.
  MlpSpec s;
  s.input = 3;
  s.hidden = {6};
  s.output = 1;
  Rng rng(7);
  Mlp net(s, rng);
  const Matrix x = random_matrix(3, 5, 8);
  Matrix pre = net.params()[0]->value * x;
  pre.colwise() += net.params()[1]->value.col(0);
  REQUIRE(pre.cwiseAbs().minCoeff() > 0.05f);
  const Matrix w = random_matrix(1, 5, 9);
  MlpWorkspace ws;
  auto loss_only = [&] {
    Matrix out;
    net.infer(x, out);
    return double(out.cwiseProduct(w).sum());
  };
  auto loss_and_grad = [&] {
    const double l = net.forward(x, ws).cwiseProduct(w).sum();
    net.backward(x, w, ws, BackwardOptions{});
    return l;
  };
  // h = 1e-2 moves a pre-activation by at most ~0.03 here, never across zero.
  check_gradients(net.params(), loss_and_grad, loss_only, 30);
}

TEST_CASE("dropout backward uses the forward pass's masks") {
  MlpSpec s = small_spec(4, 2);
  s.dropout = 0.3f;
  Rng rng(10);
  Mlp net(s, rng);
  const Matrix x = random_matrix(4, 8, 11);
  const Matrix w = random_matrix(2, 8, 12);
  MlpWorkspace ws;
  // Same mask stream for every evaluation: reseed before each forward.
  auto loss_only = [&] {
    Rng d(13);
    MlpWorkspace tmp;
    return double(net.forward(x, tmp, &d).cwiseProduct(w).sum());
  };
  auto loss_and_grad = [&] {
    Rng d(13);
    const double l = net.forward(x, ws, &d).cwiseProduct(w).sum();
    net.backward(x, w, ws, BackwardOptions{});
    return l;
  };
  check_gradients(net.params(), loss_and_grad, loss_only);
}

TEST_CASE("tanh actor gradients match finite differences") {
  Rng rng(20);
  TanhActor actor(small_spec(4, 3), rng);
  const Matrix s = random_matrix(4, 7, 21);
  const Matrix w = random_matrix(3, 7, 22);
  MlpWorkspace ws;
  auto loss_only = [&] {
    Matrix a;
    actor.infer(s, a);
    return double(a.cwiseProduct(w).sum());
  };
  auto loss_and_grad = [&] {
    const double l = actor.forward(s, ws).cwiseProduct(w).sum();
    actor.backward(s, w, ws);
    return l;
  };
  check_gradients(actor.net.params(), loss_and_grad, loss_only);
}

TEST_CASE("tanh-Gaussian actor gradients of actions and log-probabilities match finite differences") {
  Rng rng(30);
  TanhGaussianActor actor(small_spec(4, 6), rng);
  const Matrix s = random_matrix(4, 7, 31);
  const Matrix wa = random_matrix(3, 7, 32);
  const Matrix wl = random_matrix(1, 7, 33);
  MlpWorkspace ws;
  auto eval = [&](bool grad) {
    Rng noise(34);
    actor.sample(s, noise, ws);
    const double l = actor.action.cwiseProduct(wa).sum() + 0.1 * actor.log_prob.cwiseProduct(wl).sum();
    if (grad) actor.backward(s, wa, 0.1f * wl, ws);
    return l;
  };
  check_gradients(actor.net.params(), [&] { return eval(true); }, [&] { return eval(false); });
}

TEST_CASE("the tanh-Gaussian log-probability is the density of the squashed sample") {
  // One dimension, one state: compare log pi(a) with the change of variables
  // computed directly: log N(u; mu, sigma) - log(1 - tanh(u)^2).
  MlpSpec s;
  s.input = 1;
  s.output = 2;
  Rng rng(35);
  TanhGaussianActor actor(s, rng);
  MlpWorkspace ws;
  Matrix st = Matrix::Constant(1, 1, 0.3f);
  Rng noise(36);
  actor.sample(st, noise, ws);
  Matrix out;
  actor.net.infer(st, out);
  const double mu = out(0, 0), sigma = std::exp(double(out(1, 0)));
  const double u = std::atanh(double(actor.action(0, 0)));
  const double expect = -0.5 * std::pow((u - mu) / sigma, 2) - std::log(sigma) - 0.5 * std::log(2 * M_PI) -
                        std::log(1 - std::tanh(u) * std::tanh(u));
  CHECK(actor.log_prob(0, 0) == doctest::Approx(expect).epsilon(1e-4));
}

TEST_CASE("Gaussian actor log-probability gradients match finite differences") {
  Rng rng(40);
  GaussianActor actor(small_spec(4, 3), rng);
  actor.log_std.value << 0.1f, -0.3f, 0.2f;
  const Matrix s = random_matrix(4, 7, 41);
  const Matrix a = random_matrix(3, 7, 42, 0.5f);
  const Matrix w = random_matrix(1, 7, 43);
  MlpWorkspace ws;
  auto eval = [&](bool grad) {
    const double l = actor.log_prob(s, a, ws).cwiseProduct(w).sum();
    if (grad) actor.backward(s, a, w, ws);
    return l;
  };
  check_gradients(actor.params(), [&] { return eval(true); }, [&] { return eval(false); });
}

TEST_CASE("conditional VAE loss gradients match finite differences") {
  Rng rng(50);
  ConditionalVae vae(3, 2, 4, {6, 5}, Activation::kTanh, rng);
  const Matrix s = random_matrix(3, 8, 51);
  const Matrix a = random_matrix(2, 8, 52, 0.4f);
  auto eval = [&] {
    Rng noise(53);
    return vae.loss_and_grad(s, a, 0.5f, noise);
  };
  // loss_and_grad also writes gradients; the numeric side ignores them.
  check_gradients(vae.params(), eval, eval);
}

TEST_CASE("perturbation network gradients match finite differences and the bound rho holds") {
  Rng rng(60);
  Perturbation p(small_spec(5, 2), 0.15f, rng);
  const Matrix s = random_matrix(3, 9, 61);
  const Matrix a = random_matrix(2, 9, 62, 0.3f).cwiseMax(-0.8f).cwiseMin(0.8f);
  const Matrix w = random_matrix(2, 9, 63);
  MlpWorkspace ws;
  auto eval = [&](bool grad) {
    const double l = p.forward(s, a, ws).cwiseProduct(w).sum();
    if (grad) p.backward(w, ws);
    return l;
  };
  check_gradients(p.net.params(), [&] { return eval(true); }, [&] { return eval(false); });
  CHECK(((p.perturbed - a).cwiseAbs().maxCoeff()) <= 0.15f + 1e-6f);
}

TEST_CASE("MC dropout moments: a network without dropout has zero variance") {
  Rng rng(70);
  Mlp net(small_spec(3, 1, 2), rng);
  const Matrix x = random_matrix(3, 4, 71);
  MlpWorkspace ws;
  Matrix mean, var;
  Rng d(72);
  mc_dropout_moments(net, x, 5, d, ws, mean, var);
  Matrix out;
  net.infer(x, out);
  CHECK((mean - out).cwiseAbs().maxCoeff() < 1e-5f);
  CHECK(var.maxCoeff() < 1e-8f);
  MlpSpec s = small_spec(3, 1, 2);
  s.dropout = 0.2f;
  Rng rng2(70);
  Mlp drop(s, rng2);
  mc_dropout_moments(drop, x, 8, d, ws, mean, var);
  CHECK(var.maxCoeff() > 0.0f);
}

TEST_CASE("batched products give the same bits with one or two threads") {
  MlpSpec s;
  s.input = 20;
  s.hidden = {64, 64};
  s.output = 1;
  s.members = 5;
  for (int members : {1, 5}) {
    s.members = members;
    Matrix out[2], dx[2], g[2];
    for (int t = 0; t < 2; ++t) {
      set_num_threads(t + 1);
      Rng rng(80);
      Mlp net(s, rng);
      const Matrix x = random_matrix(20, 300, 81);
      const Matrix w = random_matrix(members, 300, 82);
      MlpWorkspace ws;
      out[t] = net.forward(x, ws);
      BackwardOptions opt;
      opt.input_grad = &dx[t];
      net.backward(x, w, ws, opt);
      g[t] = net.params()[0]->grad;
    }
    set_num_threads(1);
    CHECK(out[0] == out[1]);
    CHECK(dx[0] == dx[1]);
    CHECK(g[0] == g[1]);
  }
}

TEST_CASE("Adam moves a parameter against its gradient by about lr on the first step") {
  Param p{"p", Matrix::Constant(2, 1, 1.0f), Matrix::Zero(2, 1)};
  p.grad << 0.5f, -2.0f;
  Adam adam({&p}, AdamOptions{0.1f});
  adam.step();
  // First bias-corrected step is lr * g / |g| (up to eps).
  CHECK(p.value(0, 0) == doctest::Approx(0.9f).epsilon(1e-5));
  CHECK(p.value(1, 0) == doctest::Approx(1.1f).epsilon(1e-5));
}

TEST_CASE("infer_columns gives a column the same bits in every batch and agrees with infer to float rounding") {
  // The actor shapes of the agents (32 -> 256 -> 256 -> 10), narrower ones with
  // layer norm and tanh, and an ensemble whose widths are not multiples of the
  // kernel's tiles: every padded row panel and partial column group is used.
  struct Case {
    int input, output, members;
    std::vector<int> hidden;
    bool layer_norm;
    Activation act;
  };
  const std::vector<Case> cases = {{32, 10, 1, {256, 256}, false, Activation::kRelu},
                                   {32, 6, 1, {64, 64}, true, Activation::kRelu},
                                   {38, 12, 1, {128, 128}, false, Activation::kTanh},
                                   {7, 3, 3, {100, 37}, true, Activation::kTanh}};
  std::uint64_t seed = 500;
  for (const Case& c : cases) {
    INFO("input " << c.input << ", first hidden " << c.hidden[0] << ", members " << c.members);
    MlpSpec spec;
    spec.input = c.input;
    spec.hidden = c.hidden;
    spec.output = c.output;
    spec.members = c.members;
    spec.layer_norm = c.layer_norm;
    spec.activation = c.act;
    Rng rng(++seed);
    const Mlp net(spec, rng);
    const Matrix x = random_matrix(c.input, 257, ++seed, 1.5f);
    Matrix all, part, ref;
    net.infer_columns(x, all);
    for (const int n : {1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 64, 65, 100, 257}) {
      for (const int offset : {0, 1, 257 - n}) {
        if (offset + n > 257) continue;
        INFO("batch of " << n << " from column " << offset);
        net.infer_columns(x.middleCols(offset, n), part);
        REQUIRE(part.rows() == all.rows());
        REQUIRE(part.cols() == n);
        CHECK(std::memcmp(part.data(), all.middleCols(offset, n).eval().data(), sizeof(float) * part.size()) == 0);
      }
    }
    // Against infer() (Eigen's products): the same sums of at most 256 float
    // terms in another order, a few roundings of 6e-8 relative per layer (the
    // worst case is depth * eps * sum |terms|, about 1.5e-5; the typical error
    // is ~sqrt(depth) * eps). 1e-4 relative to the column's scale leaves room
    // for three layers and layer norm, yet any wrong or missing term (of order
    // 1 / sqrt(fan_in), several 1e-2) would fail.
    net.infer(x, ref);
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      const float scale = 1.0f + ref.col(j).cwiseAbs().maxCoeff();
      CHECK((all.col(j) - ref.col(j)).cwiseAbs().maxCoeff() <= 1e-4f * scale);
    }
  }
}

TEST_CASE("affine_columns is, bit for bit, the chain of std::fma from the bias in k order") {
  // Whatever the SIMD form of the kernel (AVX2, AVX-512 or the portable loop),
  // each entry must be this scalar chain: the bits of acting rest on it. Rows
  // and columns cover every tile shape, the padded last rows and partial
  // column groups; strides larger than the sizes are used on every operand.
  std::uint64_t seed = 900;
  for (const int rows : {1, 7, 8, 16, 17, 33, 64, 100, 130})
    for (const int depth : {1, 5, 38, 256})
      for (const int cols : {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 20}) {
        INFO(rows << " rows, depth " << depth << ", " << cols << " columns");
        const Matrix w = random_matrix(rows + 3, depth, ++seed, 1.0f);  // ldw = rows + 3
        const Matrix b = random_matrix(rows, 1, ++seed, 1.0f);
        const Matrix x = random_matrix(depth + 2, cols, ++seed, 2.0f);  // ldx = depth + 2
        Matrix out = Matrix::Constant(rows + 1, cols, 7.0f);            // ldo = rows + 1
        affine_columns(w.data(), w.rows(), b.data(), rows, depth, x.data(), x.rows(), cols, out.data(),
                       out.rows());
        bool same = true;
        for (int j = 0; j < cols; ++j) {
          for (int i = 0; i < rows; ++i) {
            float acc = b(i, 0);
            for (int k = 0; k < depth; ++k) acc = std::fma(w(i, k), x(k, j), acc);
            same = same && std::memcmp(&acc, &out(i, j), sizeof(float)) == 0;
          }
          same = same && out(rows, j) == 7.0f;  // the row past the output untouched
        }
        CHECK(same);
      }
}

TEST_CASE("the acting tanh is within a few float ulps of std::tanh and exact at zero") {
  float worst = 0.0f;
  for (int k = -20000; k <= 20000; ++k) {
    const float v = static_cast<float>(k) * 5e-4f;  // [-10, 10]
    worst = std::max(worst, std::abs(tanh_exact_order(v) - std::tanh(v)));
  }
  CHECK(worst <= 1e-6f);  // a few ulps of values near 1 (ulp 6e-8)
  CHECK(tanh_exact_order(0.0f) == 0.0f);
  CHECK(tanh_exact_order(1e-5f) == 1e-5f);
  CHECK(std::isnan(tanh_exact_order(std::nanf(""))));
}
