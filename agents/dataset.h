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
#include <memory>
#include <span>
#include <vector>

#include "agents/nn/tensor.h"
#include "core/cluster.h"
#include "core/column_file.h"
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
  /// From per-feature means and (population) variances, in double.
  static StateNormaliser from_moments(const Eigen::VectorXd& mean, const Eigen::VectorXd& var);
  void apply(const ConstRef& raw, Matrix& out) const;
};

/// A minibatch (columns are transitions). States are raw (agents apply their own
/// normalisation, fitted on the data they first trained on). For a
/// transition without bounds, has_bounds is 0 and lower/upper are -1/1.
struct Batch {
  Matrix state, action, reward, next_state, done;
  /// 1 x B, the discount exponent of each transition when the dataset
  /// discounts by elapsed time (Dataset::discount_by_elapsed_time): s' lies
  /// steps(0, j) discount steps after s. Empty (0 x 0) when every transition is
  /// one step (per request).
  Matrix steps;
  Matrix baseline, lower, upper, has_bounds;            ///< at s (IntegratedRL-MTF Formula 4)
  Matrix next_baseline, next_lower, next_upper, next_has_bounds;  ///< at s' (Formula 6)
  int size() const { return static_cast<int>(state.cols()); }
};

/// What a backup multiplies the bootstrapped value of s' by, per transition of
/// b (1 x B): gamma * (1 - done) per request, gamma^steps * (1 - done) when the
/// batch carries discount exponents (a semi-Markov backup).
RowVector continuation(float gamma, const Batch& b);

/// How a dataset chains its transitions into episodes (docs/experiments.md,
/// "MDP formulations").
enum class Formulation {
  /// The papers': an episode is a session. s' is the session's next request;
  /// done where the session ends (the user leaves the app).
  kSession,
  /// A user's sessions chained: the last request of a session continues into
  /// the first request of the user's next session among the dataset's rows
  /// (s' is that request's state, whose hours_since_last_session feature holds
  /// the gap; the discount is per request, so a gap costs one step of gamma
  /// whatever its length; Dataset::discount_by_elapsed_time discounts by the
  /// time that passes instead). The user's last recorded request is a terminal
  /// (done) when it lies further before the dataset's last request than
  /// max(kTimeoutSeconds, twice the user's longest gap between session starts
  /// in the data): the user stopped coming back. Otherwise it is a time-out:
  /// the recording ended, not the episode, so it is not done and bootstraps
  /// from the recorded s' (the state at the ended session's end, features of
  /// that session, not of a next session's start).
  kCrossSession,
};
/// Formulation::kCrossSession: how close to the data's last request a user's
/// last request must at least be to count as cut off by the recording (a day;
/// longer for users whose sessions are further apart).
inline constexpr double kTimeoutSeconds = 86400.0;
const char* to_string(Formulation f);

/// A dataset is a view: the transitions' columns are shared (never copied per
/// dataset in memory; out of core an experiment gives a dataset of few of the
/// rows column files of their own, experiments/context.h), and the dataset holds, per transition, the row it selects, the
/// reward it learns with and where the next request of the same session is.
/// The columns may grow after the view is made (rows appended, as exploration
/// rounds do) but rows it selects must not change.
class Dataset {
 public:
  /// Builds the dataset from recorded transitions (into columns of its own).
  /// The bounds at s' of a transition are those recorded with the next request
  /// of the same session (same user, session, step + 1); when there is none
  /// (the session ended, or the row is missing) the transition's own bounds
  /// stand in for them. Throws std::invalid_argument naming the row when
  /// dimensions disagree.
  explicit Dataset(const std::vector<TransitionRow>& rows, Formulation formulation = Formulation::kSession);

  /// The reward a transition is learnt with, from its recorded row (a reward
  /// variant recomputed from the behaviour counts, say).
  using RewardOf = std::function<float(const TransitionColumns::Row&)>;
  /// A view of rows `selection` (in that order) of `columns`, with each row's
  /// recorded reward or, when given, reward(row). The next request of a
  /// session is looked up among the selected rows: the next selected row when
  /// it continues the session (user, session, step + 1), else the first
  /// selected row with that key. Gives exactly the dataset of the same rows as
  /// TransitionRows. Throws std::invalid_argument for an empty
  /// selection, an index out of range or columns whose sizes disagree with
  /// their dimensions.
  /// With Formulation::kCrossSession the sessions of a user are chained (see
  /// Formulation); the default is the papers' session MDP.
  Dataset(std::shared_ptr<const TransitionColumns> columns, std::span<const std::size_t> selection,
          const RewardOf& reward = {}, Formulation formulation = Formulation::kSession);
  /// The same over columns handed over by value (moved in, or copied: prefer the
  /// shared form for columns that other datasets view too).
  Dataset(TransitionColumns columns, std::span<const std::size_t> selection, const RewardOf& reward = {},
          Formulation formulation = Formulation::kSession);
  /// The same over memory-mapped column files (data larger than memory): the
  /// same values give the same dataset, minibatches and training bits as
  /// columns in memory; pages are read as sampling touches them.
  Dataset(std::shared_ptr<const MappedColumns> columns, std::span<const std::size_t> selection,
          const RewardOf& reward = {}, Formulation formulation = Formulation::kSession);

  int size() const { return static_cast<int>(row_.size()); }
  Formulation formulation() const { return formulation_; }
  /// Discounts each transition by the simulated time between its request and
  /// the request of its s' instead of by one step per request: the
  /// transition's exponent is (t(s') - t(s)) / unit_seconds, so a backup
  /// multiplies Q(s', .) by gamma^exponent (Batch::steps, continuation()) and
  /// the Monte-Carlo returns discount the same way. Within a session that is
  /// the time to the next request; in the cross-session formulation, across a
  /// session end, the gap to the user's next session. Where the time of s' is
  /// not in the data (a session's next request not selected, a time-out) the
  /// exponent is the median of the known ones of the same kind (within a
  /// session, or across a session end; one unit when no within-session time
  /// is known, kTimeoutSeconds when none crosses). A dt of 0 gives exponent 0:
  /// no discount.
  /// Done transitions keep theirs (it multiplies 0). Throws
  /// std::invalid_argument unless unit_seconds is finite and > 0.
  void discount_by_elapsed_time(double unit_seconds);
  /// The unit of discount_by_elapsed_time, or 0: one step per request.
  double discount_unit_seconds() const { return discount_unit_; }
  /// 1 x N: each transition's discount exponent (all 1 per request).
  Matrix discount_steps() const;
  /// Formulation::kCrossSession: 1 x N, 1 where transition j is a user's last
  /// recorded request cut off by the end of the recording (not done); all 0
  /// for the session formulation.
  Matrix timeouts() const;
  int state_dim() const { return S_; }
  int action_dim() const { return A_; }
  const StateNormaliser& normaliser() const { return norm_; }
  /// The states' per-feature mean and population variance, in double, that
  /// normaliser() was made from (data-parallel training merges the ranks').
  const Eigen::VectorXd& state_mean() const { return state_mean_; }
  const Eigen::VectorXd& state_var() const { return state_var_; }
  /// The columns viewed (shared with other datasets of the same run), in
  /// memory or mapped; valid while this dataset lives and the columns do not grow.
  TransitionColumnsView columns() const { return mapped_ ? mapped_->view() : columns_->view(); }
  /// The row of columns() that transition j is.
  std::size_t row(int j) const { return row_[static_cast<std::size_t>(j)]; }

  /// Whole columns as matrices (A x N and so on): copies, made on each call,
  /// for tests and whole-dataset evaluation. Training reads minibatches
  /// through sample() and gather(), which copy only the transitions drawn.
  Matrix states() const;
  Matrix actions() const;
  Matrix rewards() const;
  Matrix next_states() const;
  Matrix dones() const;  ///< 1 x N, 1 where the episode ended (the session; see Formulation)
  bool has_bounds() const { return any_bounds_; }
  /// What the behaviour policy knew at s: baseline action (A x N, 0 where
  /// unknown) and 1 x N flags, exploration bounds (-1 and 1 where unknown).
  Matrix baselines() const;
  Matrix baseline_known() const;
  Matrix lowers() const;
  Matrix uppers() const;
  Matrix bounded() const;
  /// Fraction of transitions with a known behaviour log density.
  double log_density_coverage() const;
  /// The behaviour log density of every transition, NaN where unknown.
  std::vector<double> log_densities() const;
  /// Indices (ascending) of the session-initial transitions: those recorded with
  /// TransitionRow::step == 0, i.e. the first request of a session. Off-policy
  /// estimators average over them to get a value per session (BatchRL-MTF, Eq. 9).
  /// Rows built without a step (the default 0) all count as initial, which is
  /// right for one-step problems.
  const std::vector<int>& initial_indices() const { return initial_; }
  /// The discounted Monte-Carlo return of every transition along its episode
  /// in this dataset's formulation: G_j = r_j + gamma * G_next, where next is
  /// the transition whose state is s'_j (the session's next request; with
  /// kCrossSession, across a session end the user's next session; gamma is
  /// raised to the transition's discount exponent when the dataset discounts
  /// by elapsed time), and the
  /// sum stops at a done or where the episode leaves the dataset (a row not
  /// selected, a time-out, the recording's end: the return is truncated
  /// there, not bootstrapped). Rewards are those learnt with. What a
  /// critic's Q(s, a) of the logged action would be if the behaviour policy
  /// were followed after it; set beside Q it shows over- or underestimation.
  std::vector<double> discounted_returns(double gamma) const;

  /// Draws `batch` transitions uniformly with replacement from rng into out,
  /// reusing out's storage.
  void sample(Rng& rng, int batch, Batch& out) const;
  /// Copies the given transitions into out.
  void gather(const std::vector<int>& index, Batch& out) const;

  /// Bytes the view itself holds per transition (the shared columns not
  /// counted): what one more dataset over the same run costs in memory (one
  /// byte more in the cross-session formulation, four with
  /// discount_by_elapsed_time).
  static constexpr std::size_t kBytesPerTransition =
      sizeof(std::uint32_t) + sizeof(float) + sizeof(std::int32_t);

 private:
  std::shared_ptr<const TransitionColumns> columns_;  ///< in memory, or
  std::shared_ptr<const MappedColumns> mapped_;       ///< mapped
  int S_ = 0, A_ = 0;
  std::vector<std::uint32_t> row_;   ///< selected row of the columns
  std::vector<float> reward_;        ///< the reward learnt with
  std::vector<std::int32_t> next_;   ///< row (of the columns) of the session's next request, or -1
  std::vector<int> initial_;         ///< transitions with step == 0
  Formulation formulation_ = Formulation::kSession;
  /// kCrossSession only (empty otherwise): per transition, kCrosses (s' is the
  /// state of row next_, the user's next session), kTerminal, kTimeout.
  std::vector<std::uint8_t> flags_;
  /// discount_by_elapsed_time only (empty otherwise): each transition's
  /// discount exponent.
  std::vector<float> steps_;
  double discount_unit_ = 0;
  static constexpr std::uint8_t kCrosses = 1, kTerminal = 2, kTimeout = 4;
  std::span<const float> next_state_of(int j) const;
  bool done_of(int j) const;
  StateNormaliser norm_;
  Eigen::VectorXd state_mean_, state_var_;
  bool any_bounds_ = false;
  void build(std::span<const std::size_t> selection, const RewardOf& reward);
  void chain_sessions();
  /// Column j's slices of a per-row column of width d.
  static const float* at(std::span<const float> column, std::size_t row, int d) {
    return column.data() + row * static_cast<std::size_t>(d);
  }
  Matrix whole(std::span<const float> column, int d) const;
};

/// The normalisation of the union of the ranks' datasets (data-parallel
/// training and evaluation: each rank holds its shard): their counts, means
/// and variances merged in rank order, the same bits on every rank. Null
/// `ranks` or one rank: data.normaliser(). Collective.
StateNormaliser normaliser_over_ranks(const Dataset& data, const Cluster* ranks);

}  // namespace mtf::agents
