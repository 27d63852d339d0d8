// Offline dataset: transitions (rows or the simulator's columns) as column
// matrices, normalisation, minibatches.
#include "agents/dataset.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <unordered_map>

namespace mtf::agents {

StateNormaliser StateNormaliser::identity(int d) {
  return {Vector::Zero(d), Vector::Ones(d)};
}

StateNormaliser StateNormaliser::fit(const ConstRef& states) {
  const Eigen::Index N = states.cols();
  if (N == 0) throw std::invalid_argument("StateNormaliser: no states to fit");
  // Double accumulation: datasets can hold millions of rows.
  const Eigen::VectorXd mean = states.cast<double>().rowwise().mean();
  const Eigen::VectorXd var = (states.cast<double>().colwise() - mean).array().square().rowwise().mean();
  return from_moments(mean, var);
}

StateNormaliser StateNormaliser::from_moments(const Eigen::VectorXd& mean, const Eigen::VectorXd& var) {
  StateNormaliser n;
  n.mean = mean.cast<float>();
  n.stddev = var.array().sqrt().cast<float>();
  for (Eigen::Index i = 0; i < n.stddev.size(); ++i)
    if (!(n.stddev(i) > 1e-6f)) n.stddev(i) = 1.0f;
  return n;
}

void StateNormaliser::apply(const ConstRef& raw, Matrix& out) const {
  out = (raw.colwise() - mean).array().colwise() / stddev.array();
}

namespace {
struct Key {
  std::int64_t user;
  std::int32_t session, step;
  bool operator==(const Key&) const = default;
};
void check_size(const std::vector<float>& v, std::size_t n, std::size_t row, const char* field) {
  if (v.size() != n)
    throw std::invalid_argument("dataset: transition " + std::to_string(row) + "." + field + " has " +
                                std::to_string(v.size()) + " values, expected " + std::to_string(n));
}
}  // namespace

Dataset::Dataset(const std::vector<TransitionRow>& rows, Formulation formulation) : formulation_(formulation) {
  if (rows.empty()) throw std::invalid_argument("dataset: no transitions");
  const std::size_t S = rows[0].state.size(), A = rows[0].action.size();
  if (S == 0 || A == 0) throw std::invalid_argument("dataset: transition 0 has an empty state or action");
  // The rows as columns (unknown baselines and bounds as the column path fills them).
  TransitionColumns c;
  c.state_dim = static_cast<int>(S);
  c.action_dim = static_cast<int>(A);
  c.rows.reserve(rows.size());
  const std::vector<float> no_baseline(A, 0.0f);
  const std::span<const float> no_bounds;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const TransitionRow& t = rows[r];
    check_size(t.state, S, r, "state");
    check_size(t.next_state, S, r, "next_state");
    check_size(t.action, A, r, "action");
    TransitionColumns::Row row;
    row.user = t.user;
    row.session = t.session;
    row.step = t.step;
    row.time = t.time;
    row.reward = t.reward;
    row.done = t.done;
    try {
      row.set_group(t.group);
      row.counts = RequestCounts::of(t.counts);
    } catch (const std::out_of_range& e) {
      throw std::invalid_argument("dataset: transition " + std::to_string(r) + ": " + e.what());
    }
    if (t.log_density) row.log_density = *t.log_density;
    row.has_baseline = !t.baseline.empty();
    if (row.has_baseline) check_size(t.baseline, A, r, "baseline");
    const bool bounded = !t.lower.empty() || !t.upper.empty();
    if (bounded) {
      check_size(t.lower, A, r, "lower");
      check_size(t.upper, A, r, "upper");
    }
    c.push(row, t.state, t.action, t.next_state, row.has_baseline ? t.baseline : no_baseline,
           bounded ? t.lower : no_bounds, bounded ? t.upper : no_bounds);
  }
  std::vector<std::size_t> all(rows.size());
  for (std::size_t r = 0; r < all.size(); ++r) all[r] = r;
  columns_ = std::make_shared<const TransitionColumns>(std::move(c));
  build(all, {});
}

Dataset::Dataset(std::shared_ptr<const TransitionColumns> columns, std::span<const std::size_t> selection,
                 const RewardOf& reward, Formulation formulation)
    : columns_(std::move(columns)), formulation_(formulation) {
  if (!columns_) throw std::invalid_argument("dataset: no columns");
  build(selection, reward);
}

Dataset::Dataset(TransitionColumns columns, std::span<const std::size_t> selection, const RewardOf& reward,
                 Formulation formulation)
    : Dataset(std::make_shared<const TransitionColumns>(std::move(columns)), selection, reward, formulation) {}

Dataset::Dataset(std::shared_ptr<const MappedColumns> columns, std::span<const std::size_t> selection,
                 const RewardOf& reward, Formulation formulation)
    : mapped_(std::move(columns)), formulation_(formulation) {
  if (!mapped_) throw std::invalid_argument("dataset: no columns");
  // Building reads every selected row once, in order when the selection
  // ascends (the usual case): read ahead meanwhile, then back to the random
  // reads of sampling.
  const InOrderReads in_order(*mapped_, std::is_sorted(selection.begin(), selection.end()));
  build(selection, reward);
}

const char* to_string(Formulation f) { return f == Formulation::kCrossSession ? "cross_session" : "session"; }

void Dataset::chain_sessions() {
  const TransitionColumnsView c = columns();
  const std::size_t N = row_.size();
  flags_.assign(N, 0);
  double horizon = -std::numeric_limits<double>::infinity();
  // Each user's session-initial rows (step 0), by session: where a session's
  // last request continues.
  std::unordered_map<std::int64_t, std::vector<std::pair<std::int32_t, std::uint32_t>>> starts;
  for (std::size_t r = 0; r < N; ++r) {
    const TransitionColumns::Row& t = c.rows[row_[r]];
    horizon = std::max(horizon, t.time);
    if (t.step == 0) starts[t.user].emplace_back(t.session, row_[r]);
  }
  for (auto& [user, v] : starts) std::sort(v.begin(), v.end());
  // Each user's longest gap between consecutive session starts (seconds).
  std::unordered_map<std::int64_t, double> longest_gap;
  for (const auto& [user, v] : starts) {
    double g = 0;
    for (std::size_t k = 1; k < v.size(); ++k) g = std::max(g, c.rows[v[k].second].time - c.rows[v[k - 1].second].time);
    longest_gap[user] = g;
  }
  for (std::size_t r = 0; r < N; ++r) {
    const TransitionColumns::Row& t = c.rows[row_[r]];
    if (!t.done) continue;  // within a session: as the session formulation
    const auto it = starts.find(t.user);
    if (it != starts.end()) {
      const auto& v = it->second;
      const auto next = std::upper_bound(v.begin(), v.end(), std::make_pair(t.session, std::numeric_limits<std::uint32_t>::max()));
      if (next != v.end()) {
        next_[r] = static_cast<std::int32_t>(next->second);
        flags_[r] = kCrosses;
        continue;
      }
    }
    const auto g = longest_gap.find(t.user);
    const double patience = std::max(kTimeoutSeconds, 2.0 * (g == longest_gap.end() ? 0.0 : g->second));
    flags_[r] = horizon - t.time <= patience ? kTimeout : kTerminal;
  }
}

std::span<const float> Dataset::next_state_of(int j) const {
  const std::size_t r = static_cast<std::size_t>(j);
  if (!flags_.empty() && (flags_[r] & kCrosses))
    return {columns().state.data() + static_cast<std::size_t>(next_[r]) * static_cast<std::size_t>(S_),
            static_cast<std::size_t>(S_)};
  return columns().next_state_of(row_[r]);
}

void Dataset::discount_by_elapsed_time(double unit_seconds) {
  if (!std::isfinite(unit_seconds) || !(unit_seconds > 0))
    throw std::invalid_argument("Dataset::discount_by_elapsed_time: the unit must be a finite number of seconds > 0, got " +
                                std::to_string(unit_seconds));
  const TransitionColumnsView c = columns();
  const std::size_t N = row_.size();
  // Elapsed seconds to s' where its time is known, -1 within a session and -2
  // across a session end where it is not.
  std::vector<double> dt(N);
  std::vector<double> within, across;
  for (std::size_t r = 0; r < N; ++r) {
    const TransitionColumns::Row& t = c.rows[row_[r]];
    const bool crosses = !flags_.empty() && (flags_[r] & kCrosses);
    const bool session_end = crosses || t.done;
    if (next_[r] >= 0) {
      dt[r] = std::max(0.0, c.rows[static_cast<std::size_t>(next_[r])].time - t.time);
      (session_end ? across : within).push_back(dt[r]);
    } else {
      dt[r] = session_end ? -2.0 : -1.0;
    }
  }
  const auto median = [](std::vector<double>& v, double none) {
    if (v.empty()) return none;
    const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
    std::nth_element(v.begin(), mid, v.end());
    return *mid;
  };
  const double within_median = median(within, unit_seconds);
  const double across_median = median(across, kTimeoutSeconds);
  steps_.resize(N);
  for (std::size_t r = 0; r < N; ++r) {
    const double d = dt[r] == -1.0 ? within_median : dt[r] == -2.0 ? across_median : dt[r];
    steps_[r] = static_cast<float>(d / unit_seconds);
  }
  discount_unit_ = unit_seconds;
}

Matrix Dataset::discount_steps() const {
  Matrix out = Matrix::Ones(1, size());
  for (std::size_t j = 0; j < steps_.size(); ++j) out(0, static_cast<Eigen::Index>(j)) = steps_[j];
  return out;
}

RowVector continuation(float gamma, const Batch& b) {
  if (b.steps.size() == 0) return gamma * (1.0f - b.done.row(0).array());
  RowVector c(b.size());
  for (int j = 0; j < b.size(); ++j) c(j) = std::pow(gamma, b.steps(0, j)) * (1.0f - b.done(0, j));
  return c;
}

bool Dataset::done_of(int j) const {
  const std::size_t r = static_cast<std::size_t>(j);
  if (!flags_.empty()) return (flags_[r] & kTerminal) != 0;
  return columns().rows[row_[r]].done;
}

std::vector<double> Dataset::discounted_returns(double gamma) const {
  const std::size_t N = row_.size();
  // The transition after j in its episode, or -1. Within a session it is
  // almost always the next transition (rows are selected in recorded order);
  // otherwise (a chained session, a selection out of order) a map from column
  // rows to transitions, built on the first such step only.
  std::unordered_map<std::uint32_t, std::int32_t> transition_of;
  const auto after = [&](std::size_t j) -> std::int32_t {
    if (done_of(static_cast<int>(j)) || next_[j] < 0) return -1;
    const auto want = static_cast<std::uint32_t>(next_[j]);
    if (j + 1 < N && row_[j + 1] == want) return static_cast<std::int32_t>(j + 1);
    if (transition_of.empty()) {
      transition_of.reserve(N);
      for (std::size_t k = 0; k < N; ++k) transition_of.emplace(row_[k], static_cast<std::int32_t>(k));
    }
    const auto it = transition_of.find(want);
    return it == transition_of.end() ? -1 : it->second;
  };
  std::vector<double> g(N, 0.0);
  std::vector<std::uint8_t> known(N, 0);
  std::vector<std::size_t> chain;
  // Backwards first: a session's transitions follow each other, so most
  // returns are known by the time their predecessor asks.
  for (std::size_t start = N; start-- > 0;) {
    // Walk forward to the episode's end or a known return, then sum backwards
    // (episodes run forward in time: no cycles).
    chain.clear();
    std::int32_t j = static_cast<std::int32_t>(start);
    while (j >= 0 && !known[static_cast<std::size_t>(j)]) {
      chain.push_back(static_cast<std::size_t>(j));
      j = after(static_cast<std::size_t>(j));
    }
    double tail = j >= 0 ? g[static_cast<std::size_t>(j)] : 0.0;
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      const double discount = steps_.empty() ? gamma : std::pow(gamma, static_cast<double>(steps_[*it]));
      tail = static_cast<double>(reward_[*it]) + discount * tail;
      g[*it] = tail;
      known[*it] = 1;
    }
  }
  return g;
}

Matrix Dataset::timeouts() const {
  Matrix out = Matrix::Zero(1, size());
  for (std::size_t r = 0; r < flags_.size(); ++r)
    if (flags_[r] & kTimeout) out(0, static_cast<Eigen::Index>(r)) = 1.0f;
  return out;
}

void Dataset::build(std::span<const std::size_t> selection, const RewardOf& reward) {
  const TransitionColumnsView c = columns();
  if (selection.empty()) throw std::invalid_argument("dataset: no transitions");
  if (c.state_dim <= 0 || c.action_dim <= 0)
    throw std::invalid_argument("dataset: transition 0 has an empty state or action");
  S_ = c.state_dim;
  A_ = c.action_dim;
  const std::size_t S = static_cast<std::size_t>(S_), A = static_cast<std::size_t>(A_);
  const std::size_t n = c.size();
  if (const std::string wrong = c.inconsistency(); !wrong.empty())
    throw std::invalid_argument("dataset: " + wrong);
  if (n > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
    throw std::invalid_argument("dataset: " + std::to_string(n) +
                                " rows; a dataset views columns of at most 2^31 - 1 rows");
  const std::size_t N = selection.size();
  row_.resize(N);
  reward_.resize(N);
  next_.assign(N, -1);
  initial_.clear();
  any_bounds_ = false;
  for (std::size_t r = 0; r < N; ++r) {
    const std::size_t i = selection[r];
    if (i >= n)
      throw std::invalid_argument("dataset: selected row " + std::to_string(i) + " of " +
                                  std::to_string(n) + " transitions");
    const TransitionColumns::Row& t = c.rows[i];
    row_[r] = static_cast<std::uint32_t>(i);
    reward_[r] = reward ? reward(t) : t.reward;
    if (t.has_bounds()) {
      const float* lo = c.lower_of(i).data();
      const float* hi = c.upper_of(i).data();
      for (std::size_t k = 0; k < A; ++k)
        if (hi[k] < lo[k])
          throw std::invalid_argument("dataset: transition " + std::to_string(r) + " has upper < lower");
      any_bounds_ = true;
    }
    if (t.step == 0) initial_.push_back(static_cast<int>(r));
  }
  // The next request of each session among the selected rows: recorded sessions
  // are contiguous, so it is nearly always the next selected row; the rest are
  // looked up by (user, session, step + 1), the first selected row with that key
  // (the rule the header states: with duplicate keys, which only malformed
  // data has, the next selected row wins where it continues the session).
  const auto continues = [](const TransitionColumns::Row& t, const TransitionColumns::Row& u) {
    return u.user == t.user && u.session == t.session && u.step == t.step + 1;
  };
  // The rest (sessions cut by the selection's time window, say) are found in
  // one pass over the selection, holding only the keys sought (a map of every
  // selected row cost about 60 bytes a row while the dataset was built).
  std::vector<std::pair<Key, std::uint32_t>> sought;  // (key of the next request, transition)
  for (std::size_t r = 0; r < N; ++r) {
    const TransitionColumns::Row& t = c.rows[row_[r]];
    if (t.done) continue;
    if (r + 1 < N && continues(t, c.rows[row_[r + 1]]))
      next_[r] = static_cast<std::int32_t>(row_[r + 1]);
    else
      sought.push_back({Key{t.user, t.session, t.step + 1}, static_cast<std::uint32_t>(r)});
  }
  if (!sought.empty()) {
    const auto before = [](const Key& a, const Key& b) {
      return std::tie(a.user, a.session, a.step) < std::tie(b.user, b.session, b.step);
    };
    std::sort(sought.begin(), sought.end(), [&](const auto& a, const auto& b) { return before(a.first, b.first); });
    for (std::size_t q = 0; q < N; ++q) {  // in selection order: the first selected row with the key wins
      const TransitionColumns::Row& u = c.rows[row_[q]];
      const Key key{u.user, u.session, u.step};
      auto it = std::lower_bound(sought.begin(), sought.end(), key,
                                 [&](const auto& e, const Key& k) { return before(e.first, k); });
      for (; it != sought.end() && it->first == key; ++it)
        if (next_[it->second] < 0) next_[it->second] = static_cast<std::int32_t>(row_[q]);
    }
  }
  if (formulation_ == Formulation::kCrossSession) chain_sessions();
  // The normalisation, accumulated in double in transition order (datasets can
  // hold millions of rows; the float result does not depend on the order).
  Eigen::VectorXd mean = Eigen::VectorXd::Zero(S_), var = Eigen::VectorXd::Zero(S_);
  for (std::size_t r = 0; r < N; ++r) {
    const float* x = at(c.state, row_[r], S_);
    for (std::size_t k = 0; k < S; ++k) mean(static_cast<Eigen::Index>(k)) += static_cast<double>(x[k]);
  }
  mean /= static_cast<double>(N);
  for (std::size_t r = 0; r < N; ++r) {
    const float* x = at(c.state, row_[r], S_);
    for (std::size_t k = 0; k < S; ++k) {
      const double d = static_cast<double>(x[k]) - mean(static_cast<Eigen::Index>(k));
      var(static_cast<Eigen::Index>(k)) += d * d;
    }
  }
  var /= static_cast<double>(N);
  norm_ = StateNormaliser::from_moments(mean, var);
  state_mean_ = std::move(mean);
  state_var_ = std::move(var);
}

Matrix Dataset::whole(std::span<const float> column, int d) const {
  Matrix out(d, size());
  for (int j = 0; j < size(); ++j)
    out.col(j) = Eigen::Map<const Vector>(at(column, row_[static_cast<std::size_t>(j)], d), d);
  return out;
}

Matrix Dataset::states() const { return whole(columns().state, S_); }
Matrix Dataset::actions() const { return whole(columns().action, A_); }
Matrix Dataset::next_states() const {
  Matrix out(S_, size());
  for (int j = 0; j < size(); ++j) out.col(j) = Eigen::Map<const Vector>(next_state_of(j).data(), S_);
  return out;
}

Matrix Dataset::rewards() const { return Eigen::Map<const Matrix>(reward_.data(), 1, size()); }

namespace {
template <class F>
Matrix per_transition(int n, F&& f) {
  Matrix out(1, n);
  for (int j = 0; j < n; ++j) out(0, j) = f(j);
  return out;
}
}  // namespace

Matrix Dataset::dones() const {
  return per_transition(size(), [&](int j) { return done_of(j) ? 1.0f : 0.0f; });
}
Matrix Dataset::baseline_known() const {
  const TransitionColumnsView c = columns();
  return per_transition(size(), [&](int j) { return c.rows[row(j)].has_baseline ? 1.0f : 0.0f; });
}
Matrix Dataset::bounded() const {
  const TransitionColumnsView c = columns();
  return per_transition(size(), [&](int j) { return c.rows[row(j)].has_bounds() ? 1.0f : 0.0f; });
}

Matrix Dataset::baselines() const {
  const TransitionColumnsView c = columns();
  Matrix out = Matrix::Zero(A_, size());
  for (int j = 0; j < size(); ++j)
    if (c.rows[row(j)].has_baseline)
      out.col(j) = Eigen::Map<const Vector>(at(c.baseline, row(j), A_), A_);
  return out;
}

Matrix Dataset::lowers() const {
  const TransitionColumnsView c = columns();
  Matrix out = Matrix::Constant(A_, size(), -1.0f);
  for (int j = 0; j < size(); ++j)
    if (c.rows[row(j)].has_bounds()) out.col(j) = Eigen::Map<const Vector>(c.lower_of(row(j)).data(), A_);
  return out;
}

Matrix Dataset::uppers() const {
  const TransitionColumnsView c = columns();
  Matrix out = Matrix::Constant(A_, size(), 1.0f);
  for (int j = 0; j < size(); ++j)
    if (c.rows[row(j)].has_bounds()) out.col(j) = Eigen::Map<const Vector>(c.upper_of(row(j)).data(), A_);
  return out;
}

std::vector<double> Dataset::log_densities() const {
  const TransitionColumnsView c = columns();
  std::vector<double> out(row_.size(), std::numeric_limits<double>::quiet_NaN());
  for (std::size_t j = 0; j < row_.size(); ++j)
    out[j] = c.rows[row_[j]].log_density;  // NaN when unknown
  return out;
}

double Dataset::log_density_coverage() const {
  const TransitionColumnsView c = columns();
  std::size_t known = 0;
  for (std::uint32_t i : row_) known += c.rows[i].has_log_density() ? 1 : 0;
  return row_.empty() ? 0.0 : double(known) / double(row_.size());
}

void Dataset::sample(Rng& rng, int batch, Batch& out) const {
  std::vector<int> index(static_cast<std::size_t>(batch));
  for (int& i : index) i = static_cast<int>(rng.below(static_cast<std::uint32_t>(size())));
  gather(index, out);
}

void Dataset::gather(const std::vector<int>& index, Batch& out) const {
  const TransitionColumnsView c = columns();
  const Eigen::Index B = static_cast<Eigen::Index>(index.size());
  for (Matrix* m : {&out.state, &out.next_state}) m->resize(S_, B);
  for (Matrix* m : {&out.action, &out.baseline, &out.lower, &out.upper, &out.next_baseline, &out.next_lower,
                    &out.next_upper})
    m->resize(A_, B);
  for (Matrix* m : {&out.reward, &out.done, &out.has_bounds, &out.next_has_bounds}) m->resize(1, B);
  out.steps.resize(steps_.empty() ? 0 : 1, steps_.empty() ? 0 : B);
  // What the behaviour policy knew at row i, with the unknown defaults.
  const auto knew = [&](std::size_t i, Eigen::Index j, Matrix& baseline, Matrix& lower, Matrix& upper,
                        Matrix& bounded) {
    const TransitionColumns::Row& t = c.rows[i];
    if (t.has_baseline)
      baseline.col(j) = Eigen::Map<const Vector>(at(c.baseline, i, A_), A_);
    else
      baseline.col(j).setZero();
    if (t.has_bounds()) {
      lower.col(j) = Eigen::Map<const Vector>(c.lower_of(i).data(), A_);
      upper.col(j) = Eigen::Map<const Vector>(c.upper_of(i).data(), A_);
    } else {
      lower.col(j).setConstant(-1.0f);
      upper.col(j).setConstant(1.0f);
    }
    bounded(0, j) = t.has_bounds() ? 1.0f : 0.0f;
  };
  for (Eigen::Index j = 0; j < B; ++j) {
    const std::size_t r = static_cast<std::size_t>(index[static_cast<std::size_t>(j)]);
    const std::size_t i = row_[r];
    out.state.col(j) = Eigen::Map<const Vector>(at(c.state, i, S_), S_);
    out.next_state.col(j) = Eigen::Map<const Vector>(next_state_of(static_cast<int>(r)).data(), S_);
    out.action.col(j) = Eigen::Map<const Vector>(at(c.action, i, A_), A_);
    out.reward(0, j) = reward_[r];
    out.done(0, j) = done_of(static_cast<int>(r)) ? 1.0f : 0.0f;
    if (!steps_.empty()) out.steps(0, j) = steps_[r];
    knew(i, j, out.baseline, out.lower, out.upper, out.has_bounds);
    const std::size_t k = next_[r] >= 0 ? static_cast<std::size_t>(next_[r]) : i;
    knew(k, j, out.next_baseline, out.next_lower, out.next_upper, out.next_has_bounds);
  }
}

StateNormaliser normaliser_over_ranks(const Dataset& data, const Cluster* ranks_or_null) {
  if (!ranks_or_null || ranks_or_null->size() == 1) return data.normaliser();
  const Cluster& ranks = *ranks_or_null;
  const Eigen::Index S = data.state_mean().size();
  std::string mine(sizeof(double) * static_cast<std::size_t>(1 + 2 * S), '\0');
  const double n_here = static_cast<double>(data.size());
  std::memcpy(mine.data(), &n_here, sizeof(double));
  std::memcpy(mine.data() + sizeof(double), data.state_mean().data(), sizeof(double) * static_cast<std::size_t>(S));
  std::memcpy(mine.data() + sizeof(double) * static_cast<std::size_t>(1 + S), data.state_var().data(),
              sizeof(double) * static_cast<std::size_t>(S));
  const std::vector<std::string> all = ranks.all_gather(mine);
  std::vector<double> n(all.size());
  std::vector<Eigen::VectorXd> mean(all.size(), Eigen::VectorXd(S)), var(all.size(), Eigen::VectorXd(S));
  double total = 0;
  for (std::size_t r = 0; r < all.size(); ++r) {
    if (all[r].size() != mine.size())
      throw std::logic_error("data-parallel training: the ranks' datasets have different state dimensions");
    std::memcpy(&n[r], all[r].data(), sizeof(double));
    std::memcpy(mean[r].data(), all[r].data() + sizeof(double), sizeof(double) * static_cast<std::size_t>(S));
    std::memcpy(var[r].data(), all[r].data() + sizeof(double) * static_cast<std::size_t>(1 + S),
                sizeof(double) * static_cast<std::size_t>(S));
    total += n[r];
  }
  Eigen::VectorXd m = Eigen::VectorXd::Zero(S), v = Eigen::VectorXd::Zero(S);
  for (std::size_t r = 0; r < all.size(); ++r) m += (n[r] / total) * mean[r];
  for (std::size_t r = 0; r < all.size(); ++r)
    v += (n[r] / total) * (var[r].array() + (mean[r] - m).array().square()).matrix();
  return StateNormaliser::from_moments(m, v);
}

}  // namespace mtf::agents
