// The shared context of an experiment's stages (see context.h): set-up, lookups,
// row selection and metric rows (the user-level metrics are metrics/user_metrics.h).
#include "experiments/context.h"

#include "experiments/agent_refs.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/sim_time.h"
#include "core/state_features.h"
#include "experiments/metric_keys.h"

namespace mtf::experiments {

using nlohmann::json;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

int group_index(const Scenario& s, const std::string& name) {
  for (std::size_t g = 0; g < s.groups.size(); ++g)
    if (s.groups[g].name == name) return static_cast<int>(g);
  return -1;
}

Collected::~Collected() {
  impression_spill_.reset();  // removes its file
  spill_.reset();
  mapped_.reset();
  if (!dir_.empty()) remove_column_files(dir_, created_);  // scratch; never throws
}

void Collected::start_out_of_core(const std::filesystem::path& dir) {
  if (transitions->size() > 0 || spill_ || !impressions_.empty())
    throw std::logic_error("Collected::start_out_of_core after transitions or impressions were added");
  spill_ = std::make_unique<ColumnFileWriter>(dir, transitions->state_dim, transitions->action_dim);
  dir_ = dir;
  created_ = spill_->created_dir();
  impression_spill_ = std::make_unique<RecordSpill>(dir / "impressions.bin", sizeof(HeldImpression));
}

void Collected::add(const TransitionColumns& batch) {
  if (spill_)
    spill_->append(batch);
  else
    transitions->append(batch);
}

void Collected::add(std::span<const ImpressionRow> batch) {
  if (!impression_spill_) {
    for (const ImpressionRow& r : batch) impressions_.push_back(HeldImpression::of(r));
    return;
  }
  std::vector<HeldImpression> held;
  held.reserve(batch.size());
  for (const ImpressionRow& r : batch) held.push_back(HeldImpression::of(r));
  impression_spill_->append(held.data(), held.size());
}

std::span<const HeldImpression> Collected::impressions() const {
  if (impression_spill_) return impression_spill_->view<HeldImpression>();
  return impressions_;
}

namespace {
/// The room reserve() adds above its projection, and the spare seal() keeps.
constexpr double kReserveMargin = 0.10, kSpareKept = 0.15;
}  // namespace

void Collected::reserve(double times) {
  if (!(times > 1)) return;
  const auto room = [&](std::size_t n) {
    return static_cast<std::size_t>(static_cast<double>(n) * times * (1 + kReserveMargin));
  };
  if (!impression_spill_ && impressions_.capacity() < room(impressions_.size()))
    impressions_.reserve(room(impressions_.size()));
  if (!spill_) transitions->reserve_rows(room(transitions->size()));
}

void Collected::seal(bool last) {
  if (last && static_cast<double>(impressions_.capacity()) > static_cast<double>(impressions_.size()) * (1 + kSpareKept))
    impressions_.shrink_to_fit();
  if (impression_spill_) impression_spill_->seal();
  if (!spill_) {
    if (last) transitions->release_spare(kSpareKept);
    return;
  }
  if (mapped_ && mapped_->size() == spill_->rows()) {  // nothing added since the last seal
    if (last) spill_->finish();
    return;
  }
  spill_->flush();
  mapped_ = std::make_shared<const MappedColumns>(dir_);
  if (last) spill_->finish();  // (closing checks the files were written)
}

TransitionColumnsView Collected::view() const {
  if (!spill_) return transitions->view();
  if (!mapped_) {  // nothing sealed yet
    TransitionColumnsView v;
    v.state_dim = transitions->state_dim;
    v.action_dim = transitions->action_dim;
    return v;
  }
  return mapped_->view();
}

namespace {
/// A 64-bit mix (splitmix64's finaliser): the row hashes of CopyKey.
std::uint64_t mix64(std::uint64_t x) {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
}  // namespace

agents::Dataset Collected::dataset(std::span<const std::size_t> rows, const agents::Dataset::RewardOf& reward,
                                   const DatasetSpec& spec) const {
  if (spill_ && !mapped_) throw std::logic_error("Collected::dataset before seal()");
  agents::Dataset d = spill_ ? mapped_dataset(rows, reward, formulation(spec))
                             : agents::Dataset(transitions, rows, reward, formulation(spec));
  if (spec.discount_seconds > 0) d.discount_by_elapsed_time(spec.discount_seconds);
  return d;
}

agents::Dataset Collected::mapped_dataset(std::span<const std::size_t> rows, const agents::Dataset::RewardOf& reward,
                                          agents::Formulation form) const {
  // A dataset of at most half the rows gets column files of its own, its rows
  // in its order: users of every group interleave in the columns, so a
  // group's rows touch nearly every page of them, and sampling would read the
  // whole file from disk where the data is larger than memory. The same
  // values in another place: the same dataset and training bits. Datasets of
  // the same rows (a dataset's reward variants) share one copy.
  if (rows.empty() || rows.size() * 2 > mapped_->size()) return agents::Dataset(mapped_, rows, reward, form);
  CopyKey key{rows.size(), 0x9E3779B97F4A7C15ull, 0xC2B2AE3D27D4EB4Full};
  for (const std::size_t r : rows) {
    key.h1 = mix64(key.h1 ^ r);
    key.h2 = mix64(key.h2 + r * 0x165667B19E3779F9ull);
  }
  std::erase_if(copies_, [](const auto& kv) { return kv.second.expired(); });
  std::weak_ptr<const MappedColumns>& shared = copies_[key];
  std::shared_ptr<const MappedColumns> columns = shared.lock();
  if (!columns) {
    columns = map_copy_of_rows(*mapped_, rows, dir_ / ("dataset-" + std::to_string(++copies_made_)));
    shared = columns;
  }
  std::vector<std::size_t> own(rows.size());
  std::iota(own.begin(), own.end(), std::size_t{0});
  return agents::Dataset(std::move(columns), own, reward, form);
}

std::vector<std::size_t> select_rows(const TransitionColumnsView& c, const std::vector<int>& groups,
                                     double t_from, double t_to) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < c.size(); ++i) {
    const auto& r = c.rows[i];
    if (std::find(groups.begin(), groups.end(), r.group) == groups.end()) continue;
    if (r.time < t_from || r.time >= t_to) continue;
    out.push_back(i);
  }
  return out;
}

agents::FqeOptions fqe_options(const OpeSpec& ope, const agents::Dataset& data, std::uint64_t seed, bool conservative,
                               const Cluster* ranks) {
  agents::FqeOptions fo;
  fo.gamma = ope.gamma;
  fo.steps = ope.steps;
  fo.batch = ope.batch;
  fo.hidden = ope.hidden;
  fo.tau = ope.tau;
  if (ope.reward_scale_mean_abs) fo.reward_scale = agents::mean_abs_reward(data, ranks);
  fo.ranks = ranks;
  fo.seed = seed;
  if (conservative) fo.cql_alpha = ope.cql_alpha;
  return fo;
}

agents::Dataset::RewardOf reward_function(const RewardParams* reward) {
  if (!reward) return {};
  return [w = *reward](const TransitionColumns::Row& r) {
    return static_cast<float>(reward_of(w, r.counts));
  };
}

ExperimentContext::ExperimentContext(const Scenario& scenario, const ExperimentSpec& spec,
                                     const std::filesystem::path& out,
                                     const ExperimentOptions& options, Clock::time_point start)
    : sc(scenario),
      ex(spec),
      opt(options),
      t0(start),
      S(kStateDim),
      A(scenario.action_dim()),
      period(scenario.days * kSecondsPerDay),
      sim(scenario, group_policies(scenario).policies, 0, UserSharding{options.cluster}),  // each rank holds its users
      rec(out, sim.run_info(code_version(), options.threads),
          // Rank 0 resumes the run database; restore_checkpoint() hands the others its checkpoint.
          RecorderOptions{.replace_any_file = options.force,
                          .resume = options.resume && (options.cluster == nullptr || options.cluster->root()),
                          .discard = options.cluster != nullptr && !options.cluster->root()}) {
  col.transitions->state_dim = S;
  col.transitions->action_dim = A;
  if (!options.out_of_core.empty()) col.start_out_of_core(options.out_of_core);
}

void ExperimentContext::log(const std::string& line) const {
  if (opt.log) opt.log(line);
}

void ExperimentContext::flush() {
  rec.write_metrics(
      std::vector<MetricRow>(M.begin() + static_cast<std::ptrdiff_t>(written_), M.end()));
  written_ = M.size();
}

void ExperimentContext::restore_metrics(std::vector<MetricRow> rows) {
  M = std::move(rows);
  written_ = M.size();
}

std::uint64_t ExperimentContext::sub_seed(Purpose p, std::uint64_t i) const {
  return derive_seed(sc.seed, Stream::kExperiment, p, i);
}

OracleOptions ExperimentContext::oracle_options(std::int64_t users, int days, std::uint64_t users_index) const {
  OracleOptions o;
  o.users = users;
  o.days = days;
  o.user_seed = sub_seed(kOracleUsers, users_index);
  o.threads = opt.threads;
  o.cluster = opt.cluster;
  return o;
}

TransitionColumns users_of_rank(const TransitionColumns& c, int n, int r) {
  TransitionColumns out;
  out.state_dim = c.state_dim;
  out.action_dim = c.action_dim;
  const TransitionColumnsView from = c.view();
  for (std::size_t i = 0; i < c.size(); ++i)
    if (c.rows[i].user % n == r) out.push_row(from, i);
  return out;
}

const Cluster* ExperimentContext::shards() const {
  return opt.data_parallel && opt.cluster && opt.cluster->size() > 1 ? opt.cluster : nullptr;
}

void ExperimentContext::keep(const TransitionColumns& rows) {
  if (const Cluster* ranks = shards()) return col.add(users_of_rank(rows, ranks->size(), ranks->rank()));
  col.add(rows);
}

void ExperimentContext::keep(std::span<const ImpressionRow> impressions) {
  if (const Cluster* ranks = shards()) {
    std::vector<ImpressionRow> mine;
    for (const ImpressionRow& r : impressions)
      if (r.user % ranks->size() == ranks->rank()) mine.push_back(r);
    return col.add(std::span<const ImpressionRow>(mine));
  }
  col.add(impressions);
}

const std::optional<Checkpoint>& ExperimentContext::resumed() const {
  return ranks() && !ranks()->root() ? resumed_ : rec.resumed();
}

void ExperimentContext::release_resumed(const std::string& key) {
  if (resumed_) resumed_->erase_large(key);
}

const DatasetSpec& ExperimentContext::dataset(const std::string& name) const {
  for (const auto& d : ex.datasets)
    if (d.name == name) return d;
  throw ExperimentError("experiment: no dataset " + name);
}

std::vector<int> ExperimentContext::dataset_groups(const DatasetSpec& d) const {
  std::vector<int> g;
  for (const auto& n : d.groups) g.push_back(group_index(sc, n));
  return g;
}

const AgentSpec& ExperimentContext::agent_spec(const std::string& name) const {
  for (const auto& a : ex.agents)
    if (a.name == name) return a;
  throw ExperimentError("experiment: no agent " + name);
}

// ---------------------------------------------------------------------------
// Metric rows
// ---------------------------------------------------------------------------

MetricRow lift_row(const std::string& section, const std::string& subject,
                   const std::string& metric, const stats::Lift& l,
                   std::optional<std::int64_t> rep) {
  MetricRow r;
  r.section = section;
  r.subject = subject;
  r.metric = metric;
  r.value = l.lift;
  r.ci_low = l.ci_low;
  r.ci_high = l.ci_high;
  r.p_value = l.p_value;
  r.rep = rep;
  r.n = static_cast<std::int64_t>(l.n_treatment);
  r.details =
      json{{keys::detail::kControl, l.control}, {keys::detail::kTreatment, l.treatment}, {keys::detail::kNControl, l.n_control}}.dump();
  return r;
}

MetricRow plain(const std::string& section, const std::string& subject, const std::string& metric,
                double value, std::optional<std::int64_t> n, std::string details) {
  MetricRow r;
  r.section = section;
  r.subject = subject;
  r.metric = metric;
  r.value = value;
  r.n = n;
  r.details = std::move(details);
  return r;
}

}  // namespace mtf::experiments
