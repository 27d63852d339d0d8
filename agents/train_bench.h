// The training benchmark behind `mtfsim bench train`: times gradient steps of
// an agent on synthetic data and compares the achieved GFLOP/s of its matrix
// products with Eigen's own GEMM peak on this machine.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

namespace mtf::agents {

struct TrainBenchOptions {
  std::string agent = "integratedrl_mtf";
  int hidden = 256;   ///< width of both hidden layers
  int critics = 24;   ///< ensemble size (agents with a "critics" hyperparameter)
  int batch = 256;
  int threads = 2;
  int state_dim = 64;
  int action_dim = 10;
  int steps = 50;     ///< timed steps
  int warmup = 5;     ///< untimed steps first
  /// More hyperparameters of the agent (`bench train --set key=value`), over
  /// the ones above.
  nlohmann::json hyperparameters = nlohmann::json::object();
};

/// Runs the benchmark; writes a short table and, last, one line of JSON:
/// {"bench":"train","agent":...,"ms_per_step":median,"gflops":...,"gemm_peak_gflops":...,...}.
/// Returns 0.
int run_train_bench(const TrainBenchOptions& opt, std::ostream& out);

}  // namespace mtf::agents
