// Training benchmark: ms per step (median over steps), GFLOP/s of the counted
// matrix products, and Eigen's single-threaded GEMM peak run on every thread at
// once (the ceiling for work split into independent per-thread products).
#include "agents/train_bench.h"

#include <algorithm>
#include <chrono>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <omp.h>
#include <vector>

#include "agents/agent.h"
#include "agents/nn/heads.h"
#include "agents/nn/tensor.h"

namespace mtf::agents {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<TransitionRow> synthetic_rows(int n, int S, int A, Rng& rng) {
  std::vector<TransitionRow> rows(static_cast<std::size_t>(n));
  Matrix s, a, base;
  nn::fill_normal(s, S, n + 1, rng);
  nn::fill_uniform(base, A, n, -0.5f, 0.5f, rng);
  nn::fill_uniform(a, A, n, -0.15f, 0.15f, rng);
  for (int i = 0; i < n; ++i) {
    TransitionRow& r = rows[static_cast<std::size_t>(i)];
    r.user = i / 20;
    r.session = 0;
    r.step = i % 20;
    r.state.assign(s.col(i).data(), s.col(i).data() + S);
    r.next_state.assign(s.col(i + 1).data(), s.col(i + 1).data() + S);
    r.baseline.assign(base.col(i).data(), base.col(i).data() + A);
    r.action.resize(static_cast<std::size_t>(A));
    r.lower.resize(static_cast<std::size_t>(A));
    r.upper.resize(static_cast<std::size_t>(A));
    for (int k = 0; k < A; ++k) {
      r.action[k] = base(k, i) + a(k, i);
      r.lower[k] = base(k, i) - 0.15f;
      r.upper[k] = base(k, i) + 0.15f;
    }
    r.reward = s(0, i) * 0.1f + a(0, i);
    r.done = i % 20 == 19;
  }
  return rows;
}

// Eigen's single-threaded GEMM (n x n x n) run concurrently on `threads` threads.
double gemm_peak_gflops(int threads, int n) {
  std::vector<Matrix> a(threads), b(threads), c(threads);
  Rng rng(1, Stream::kBenchmark);
  for (int t = 0; t < threads; ++t) {
    nn::fill_uniform(a[t], n, n, -1.0f, 1.0f, rng);
    nn::fill_uniform(b[t], n, n, -1.0f, 1.0f, rng);
    c[t].resize(n, n);
  }
  const int reps = 6;
  std::vector<double> secs;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int t = 0; t < threads; ++t) c[t].noalias() = a[t] * b[t];
    secs.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::sort(secs.begin(), secs.end());
  return 2.0 * double(n) * n * n * threads / secs[secs.size() / 2] * 1e-9;
}

}  // namespace

int run_train_bench(const TrainBenchOptions& opt, std::ostream& out) {
  nn::set_num_threads(opt.threads);
  Rng data_rng(7, Stream::kBenchmark);
  const Dataset data(synthetic_rows(std::max(4 * opt.batch, 4096), opt.state_dim, opt.action_dim, data_rng));
  nlohmann::json hp = {{"hidden", {opt.hidden, opt.hidden}}, {"batch_size", opt.batch}};
  auto probe = make_agent(opt.agent, nlohmann::json::object(), opt.state_dim, opt.action_dim, 1);
  const bool has_critics = probe->hyperparameters().contains("critics");
  if (has_critics) hp["critics"] = opt.critics;
  for (const auto& [key, value] : opt.hyperparameters.items()) hp[key] = value;
  auto agent = make_agent(opt.agent, hp, opt.state_dim, opt.action_dim, 1);

  agent->train(data, opt.warmup);
  std::vector<double> ms;
  nn::reset_flop_count();
  nn::set_flop_counting(true);
  auto last = Clock::now();
  agent->train(data, opt.steps, [&](const TrainProgress&) {
    const auto now = Clock::now();
    ms.push_back(std::chrono::duration<double, std::milli>(now - last).count());
    last = now;
  });
  nn::set_flop_counting(false);
  const double flops_per_step = nn::flop_count() / std::max(1, opt.steps);
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  const double p10 = sorted[sorted.size() / 10], p90 = sorted[(sorted.size() * 9) / 10];
  const double gflops = flops_per_step / (median * 1e-3) * 1e-9;
  const double peak = gemm_peak_gflops(opt.threads, 512);
  const double peak1 = gemm_peak_gflops(1, 512);

  out << "train benchmark: " << opt.agent << ", hidden " << opt.hidden << "-" << opt.hidden;
  if (has_critics) out << ", " << opt.critics << " critics";
  out << ", state " << opt.state_dim << ", action " << opt.action_dim << ", batch " << opt.batch << ", "
      << opt.threads << " threads\n"
      << std::fixed << std::setprecision(2) << "  ms per step   median " << median << "  (p10 " << p10 << ", p90 "
      << p90 << ", " << opt.steps << " steps after " << opt.warmup << " warm-up)\n"
      << "  GFLOP per step " << flops_per_step * 1e-9 << " (matrix products)\n"
      << "  GFLOP/s        " << gflops << "\n"
      << "  Eigen GEMM peak " << peak << " GFLOP/s on " << opt.threads << " threads (" << peak1
      << " on 1), 512^3 per thread\n"
      << "  fraction of peak " << gflops / peak << "\n";
  const nlohmann::json j = {{"bench", "train"},
                            {"agent", opt.agent},
                            {"hidden", opt.hidden},
                            {"critics", has_critics ? opt.critics : 0},
                            {"batch", opt.batch},
                            {"threads", opt.threads},
                            {"state_dim", opt.state_dim},
                            {"action_dim", opt.action_dim},
                            {"steps", opt.steps},
                            {"ms_per_step", median},
                            {"ms_per_step_p10", p10},
                            {"ms_per_step_p90", p90},
                            {"steps_per_second", 1000.0 / median},
                            {"gflop_per_step", flops_per_step * 1e-9},
                            {"gflops", gflops},
                            {"gemm_peak_gflops", peak},
                            {"gemm_peak_gflops_1thread", peak1}};
  out << j.dump() << "\n";
  return 0;
}

}  // namespace mtf::agents
