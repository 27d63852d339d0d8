// Adam (Kingma & Ba, 2015) over a list of parameters, with bias correction.
#pragma once

#include <cstdint>
#include <vector>

#include "agents/nn/tensor.h"
#include "core/cluster.h"

namespace mtf::nn {

struct AdamOptions {
  float lr = 3e-4f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
};

class Adam {
 public:
  Adam() = default;
  Adam(std::vector<Param*> params, const AdamOptions& opt);

  /// One update from the gradients currently in the parameters. With ranks to
  /// average over (data-parallel training), the gradients are first replaced on
  /// every rank by their mean over the ranks, summed in rank order: every rank
  /// applies the same update to the same parameters.
  void step();
  /// Data-parallel training: average gradients over these ranks before each
  /// step (a collective: every rank steps together). Null: this process's own.
  void average_over(const Cluster* ranks) { ranks_ = ranks; }
  std::int64_t steps() const { return t_; }
  /// Checkpoint access: the number of parameters (in construction order), the
  /// first and second moment estimates of parameter i (its shape), and the
  /// step count that drives the bias correction.
  std::size_t size() const { return slots_.size(); }
  Matrix& first_moment(std::size_t i) { return slots_[i].m; }
  Matrix& second_moment(std::size_t i) { return slots_[i].v; }
  void set_steps(std::int64_t t) { t_ = t; }
  const AdamOptions& options() const { return opt_; }

 private:
  struct Slot {
    Param* p;
    Matrix m, v;
  };
  std::vector<Slot> slots_;
  AdamOptions opt_;
  std::int64_t t_ = 0;
  const Cluster* ranks_ = nullptr;
  void average_gradients();
};

}  // namespace mtf::nn
