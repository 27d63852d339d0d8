// Offline dataset: transitions (rows or the simulator's columns) as column
// matrices, normalisation, minibatches.
#include "agents/dataset.h"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <unordered_map>

namespace mtf::agents {

StateNormaliser StateNormaliser::identity(int d) {
  return {Vector::Zero(d), Vector::Ones(d)};
}

StateNormaliser StateNormaliser::fit(const ConstRef& states) {
  StateNormaliser n;
  const Eigen::Index N = states.cols();
  if (N == 0) throw std::invalid_argument("StateNormaliser: no states to fit");
  // Double accumulation: datasets can hold millions of rows.
  const Eigen::VectorXd mean = states.cast<double>().rowwise().mean();
  const Eigen::VectorXd var = (states.cast<double>().colwise() - mean).array().square().rowwise().mean();
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
struct KeyHash {
  std::size_t operator()(const Key& k) const noexcept {
    return static_cast<std::size_t>(mix64(static_cast<std::uint64_t>(k.user) ^
                                          mix64((std::uint64_t(std::uint32_t(k.session)) << 32) |
                                                std::uint32_t(k.step))));
  }
};

void check_size(const std::vector<float>& v, std::size_t n, std::size_t row, const char* field) {
  if (v.size() != n)
    throw std::invalid_argument("dataset: transition " + std::to_string(row) + "." + field + " has " +
                                std::to_string(v.size()) + " values, expected " + std::to_string(n));
}
}  // namespace

Dataset::Dataset(const std::vector<TransitionRow>& rows) {
  if (rows.empty()) throw std::invalid_argument("dataset: no transitions");
  const std::size_t S = rows[0].state.size(), A = rows[0].action.size();
  if (S == 0 || A == 0) throw std::invalid_argument("dataset: transition 0 has an empty state or action");
  // The rows as columns (unknown baselines and bounds as the column path fills them).
  TransitionColumns c;
  c.state_dim = static_cast<int>(S);
  c.action_dim = static_cast<int>(A);
  c.rows.reserve(rows.size());
  const auto add = [](std::vector<float>& to, const std::vector<float>& from) {
    to.insert(to.end(), from.begin(), from.end());
  };
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const TransitionRow& t = rows[r];
    check_size(t.state, S, r, "state");
    check_size(t.next_state, S, r, "next_state");
    check_size(t.action, A, r, "action");
    TransitionColumns::Row row;
    row.user = t.user;
    row.session = t.session;
    row.step = t.step;
    row.group = t.group;
    row.time = t.time;
    row.reward = t.reward;
    row.done = t.done;
    row.counts = t.counts;
    row.log_density = t.log_density;
    add(c.state, t.state);
    add(c.next_state, t.next_state);
    add(c.action, t.action);
    row.has_baseline = !t.baseline.empty();
    if (row.has_baseline) {
      check_size(t.baseline, A, r, "baseline");
      add(c.baseline, t.baseline);
    } else {
      c.baseline.insert(c.baseline.end(), A, 0.0f);
    }
    row.has_bounds = !t.lower.empty() || !t.upper.empty();
    if (row.has_bounds) {
      check_size(t.lower, A, r, "lower");
      check_size(t.upper, A, r, "upper");
      add(c.lower, t.lower);
      add(c.upper, t.upper);
    } else {
      c.lower.insert(c.lower.end(), A, -1.0f);
      c.upper.insert(c.upper.end(), A, 1.0f);
    }
    c.rows.push_back(row);
  }
  std::vector<std::size_t> all(rows.size());
  for (std::size_t r = 0; r < all.size(); ++r) all[r] = r;
  build(c, all, {});
}

Dataset::Dataset(const TransitionColumns& columns, std::span<const std::size_t> selection,
                 const RewardOf& reward) {
  build(columns, selection, reward);
}

void Dataset::build(const TransitionColumns& c, std::span<const std::size_t> selection,
                    const RewardOf& reward) {
  if (selection.empty()) throw std::invalid_argument("dataset: no transitions");
  if (c.state_dim <= 0 || c.action_dim <= 0)
    throw std::invalid_argument("dataset: transition 0 has an empty state or action");
  const std::size_t S = static_cast<std::size_t>(c.state_dim),
                    A = static_cast<std::size_t>(c.action_dim);
  const std::size_t n = c.size();
  const auto check_column = [&](const std::vector<float>& v, std::size_t d, const char* field) {
    if (v.size() != n * d)
      throw std::invalid_argument(std::string("dataset: column ") + field + " holds " +
                                  std::to_string(v.size()) + " values, expected " +
                                  std::to_string(n * d) + " (" + std::to_string(n) + " rows x " +
                                  std::to_string(d) + ")");
  };
  check_column(c.state, S, "state");
  check_column(c.next_state, S, "next_state");
  check_column(c.action, A, "action");
  check_column(c.baseline, A, "baseline");
  check_column(c.lower, A, "lower");
  check_column(c.upper, A, "upper");
  const Eigen::Index N = static_cast<Eigen::Index>(selection.size());
  state_.resize(S, N);
  next_state_.resize(S, N);
  action_.resize(A, N);
  reward_.resize(1, N);
  done_.resize(1, N);
  baseline_ = Matrix::Zero(A, N);
  lower_ = Matrix::Constant(A, N, -1.0f);
  upper_ = Matrix::Constant(A, N, 1.0f);
  has_bounds_ = Matrix::Zero(1, N);
  has_baseline_ = Matrix::Zero(1, N);
  log_density_.assign(selection.size(), std::numeric_limits<double>::quiet_NaN());
  initial_.clear();
  any_bounds_ = false;
  std::unordered_map<Key, Eigen::Index, KeyHash> by_key;
  by_key.reserve(selection.size());
  for (std::size_t r = 0; r < selection.size(); ++r) {
    const std::size_t i = selection[r];
    if (i >= n)
      throw std::invalid_argument("dataset: selected row " + std::to_string(i) + " of " +
                                  std::to_string(n) + " transitions");
    const TransitionColumns::Row& t = c.rows[i];
    const Eigen::Index j = static_cast<Eigen::Index>(r);
    state_.col(j) = Eigen::Map<const Vector>(c.state.data() + i * S, static_cast<Eigen::Index>(S));
    next_state_.col(j) =
        Eigen::Map<const Vector>(c.next_state.data() + i * S, static_cast<Eigen::Index>(S));
    action_.col(j) =
        Eigen::Map<const Vector>(c.action.data() + i * A, static_cast<Eigen::Index>(A));
    reward_(0, j) = reward ? reward(t) : t.reward;
    done_(0, j) = t.done ? 1.0f : 0.0f;
    if (t.has_baseline) {
      baseline_.col(j) =
          Eigen::Map<const Vector>(c.baseline.data() + i * A, static_cast<Eigen::Index>(A));
      has_baseline_(0, j) = 1.0f;
    }
    if (t.has_bounds) {
      lower_.col(j) =
          Eigen::Map<const Vector>(c.lower.data() + i * A, static_cast<Eigen::Index>(A));
      upper_.col(j) =
          Eigen::Map<const Vector>(c.upper.data() + i * A, static_cast<Eigen::Index>(A));
      if ((upper_.col(j).array() < lower_.col(j).array()).any())
        throw std::invalid_argument("dataset: transition " + std::to_string(r) + " has upper < lower");
      has_bounds_(0, j) = 1.0f;
      any_bounds_ = true;
    }
    if (t.log_density) log_density_[r] = *t.log_density;
    if (t.step == 0) initial_.push_back(static_cast<int>(r));
    by_key.emplace(Key{t.user, t.session, t.step}, j);
  }
  next_baseline_ = baseline_;
  next_lower_ = lower_;
  next_upper_ = upper_;
  next_has_bounds_ = has_bounds_;
  for (std::size_t r = 0; r < selection.size(); ++r) {
    const TransitionColumns::Row& t = c.rows[selection[r]];
    if (t.done) continue;
    auto it = by_key.find(Key{t.user, t.session, t.step + 1});
    if (it == by_key.end()) continue;
    const Eigen::Index j = static_cast<Eigen::Index>(r), k = it->second;
    next_baseline_.col(j) = baseline_.col(k);
    next_lower_.col(j) = lower_.col(k);
    next_upper_.col(j) = upper_.col(k);
    next_has_bounds_(0, j) = has_bounds_(0, k);
  }
  norm_ = StateNormaliser::fit(state_);
}

double Dataset::log_density_coverage() const {
  std::size_t known = 0;
  for (double d : log_density_) known += std::isnan(d) ? 0 : 1;
  return log_density_.empty() ? 0.0 : double(known) / double(log_density_.size());
}

void Dataset::sample(Rng& rng, int batch, Batch& out) const {
  std::vector<int> index(static_cast<std::size_t>(batch));
  for (int& i : index) i = static_cast<int>(rng.below(static_cast<std::uint32_t>(size())));
  gather(index, out);
}

void Dataset::gather(const std::vector<int>& index, Batch& out) const {
  const Eigen::Index B = static_cast<Eigen::Index>(index.size());
  auto take = [&](const Matrix& src, Matrix& dst) {
    dst.resize(src.rows(), B);
    for (Eigen::Index j = 0; j < B; ++j) dst.col(j) = src.col(index[static_cast<std::size_t>(j)]);
  };
  take(state_, out.state);
  take(action_, out.action);
  take(reward_, out.reward);
  take(next_state_, out.next_state);
  take(done_, out.done);
  take(baseline_, out.baseline);
  take(lower_, out.lower);
  take(upper_, out.upper);
  take(has_bounds_, out.has_bounds);
  take(next_baseline_, out.next_baseline);
  take(next_lower_, out.next_lower);
  take(next_upper_, out.next_upper);
  take(next_has_bounds_, out.next_has_bounds);
}

}  // namespace mtf::agents
