// The offline dataset agents learn from: transitions (s, a, r, s', done) plus
// what the behaviour policy knew (baseline action mu_bp(s), exploration bounds,
// log density), from recorded transitions (as rows, or straight from the
// simulator's columns; a run database is read by experiments/datasets.h); the
// state normalisation computed from the data; seeded minibatches.
//
// Layout (see nn/tensor.h): every per-transition quantity is a column, so a
// dataset of N transitions holds a state_dim x N state matrix, and a minibatch is
// a state_dim x B matrix.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <vector>

#include "agents/nn/tensor.h"
#include "core/rng.h"
#include "core/transitions.h"

namespace mtf::agents {

using nn::ConstRef;
using nn::Matrix;
using nn::Vector;
using nn::RowVector;

/// Per-feature affine normalisation x -> (x - mean) / std, computed from data.
/// Features with (near) zero spread are only centred (std 1).
struct StateNormaliser {
  Vector mean;
  Vector stddev;
  int dim() const { return static_cast<int>(mean.size()); }
  /// Identity normalisation of dimension d.
  static StateNormaliser identity(int d);
  /// Mean and standard deviation of the columns of states.
  static StateNormaliser fit(const ConstRef& states);
  void apply(const ConstRef& raw, Matrix& out) const;
};

/// A minibatch (columns are transitions). States are raw (agents apply their own
/// normalisation, fitted on the data they first trained on). For a
/// transition without bounds, has_bounds is 0 and lower/upper are -1/1.
struct Batch {
  Matrix state, action, reward, next_state, done;
  Matrix baseline, lower, upper, has_bounds;            ///< at s (IntegratedRL-MTF Formula 4)
  Matrix next_baseline, next_lower, next_upper, next_has_bounds;  ///< at s' (Formula 6)
  int size() const { return static_cast<int>(state.cols()); }
};

class Dataset {
 public:
  /// Builds the dataset from recorded transitions. The bounds at s' of a
  /// transition are those recorded with the next request of the same session
  /// (same user, session, step + 1); when there is none (the session ended, or
  /// the row is missing) the transition's own bounds stand in for them.
  /// Throws std::invalid_argument naming the row when dimensions disagree.
  explicit Dataset(const std::vector<TransitionRow>& rows);

  /// The reward a transition is learnt with, from its recorded row (a reward
  /// variant recomputed from the behaviour counts, say).
  using RewardOf = std::function<float(const TransitionColumns::Row&)>;
  /// Builds the dataset from rows `selection` (in that order) of `columns`,
  /// with each row's recorded reward or, when given, reward(row). Gives exactly
  /// the dataset of the same rows as TransitionRows. Throws
  /// std::invalid_argument for an empty selection, an index out of range or
  /// columns whose sizes disagree with their dimensions.
  Dataset(const TransitionColumns& columns, std::span<const std::size_t> selection,
          const RewardOf& reward = {});

  int size() const { return static_cast<int>(state_.cols()); }
  int state_dim() const { return static_cast<int>(state_.rows()); }
  int action_dim() const { return static_cast<int>(action_.rows()); }
  const StateNormaliser& normaliser() const { return norm_; }

  /// Raw (unnormalised) columns, for tests and evaluation.
  const Matrix& states() const { return state_; }
  const Matrix& actions() const { return action_; }
  const Matrix& rewards() const { return reward_; }
  const Matrix& next_states() const { return next_state_; }
  const Matrix& dones() const { return done_; }  ///< 1 x N, 1 where the session ended
  bool has_bounds() const { return any_bounds_; }
  /// What the behaviour policy knew at s: baseline action (A x N, 0 where
  /// unknown) and 1 x N flags, exploration bounds (-1 and 1 where unknown).
  const Matrix& baselines() const { return baseline_; }
  const Matrix& baseline_known() const { return has_baseline_; }
  const Matrix& lowers() const { return lower_; }
  const Matrix& uppers() const { return upper_; }
  const Matrix& bounded() const { return has_bounds_; }
  /// Fraction of transitions with a known behaviour log density.
  double log_density_coverage() const;
  const std::vector<double>& log_densities() const { return log_density_; }
  /// Indices (ascending) of the session-initial transitions: those recorded with
  /// TransitionRow::step == 0, i.e. the first request of a session. Off-policy
  /// estimators average over them to get a value per session (BatchRL-MTF, Eq. 9).
  /// Rows built without a step (the default 0) all count as initial, which is
  /// right for one-step problems.
  const std::vector<int>& initial_indices() const { return initial_; }

  /// Draws `batch` transitions uniformly with replacement from rng into out,
  /// reusing out's storage.
  void sample(Rng& rng, int batch, Batch& out) const;
  /// Copies the given transitions into out.
  void gather(const std::vector<int>& index, Batch& out) const;

 private:
  Matrix state_, action_, reward_, next_state_, done_;
  Matrix baseline_, lower_, upper_, has_bounds_, has_baseline_;
  Matrix next_baseline_, next_lower_, next_upper_, next_has_bounds_;
  std::vector<double> log_density_;  ///< NaN when unknown
  std::vector<int> initial_;         ///< transitions with step == 0
  StateNormaliser norm_;
  void build(const TransitionColumns& c, std::span<const std::size_t> selection,
             const RewardOf& reward);
  bool any_bounds_ = false;
};

}  // namespace mtf::agents
