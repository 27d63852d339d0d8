// Shared agent machinery: training loop, acting, the agent file, cloning.
//
// Agent file (little-endian), format version 3:
//   8 bytes  magic "MTFAGENT"
//   u32      format version
//   string   agent name            (u32 length + bytes)
//   string   hyperparameters JSON
//   i32 S, i32 A, u64 seed, i64 steps trained
//   u8       1 when the normaliser was fitted (since version 3; earlier files
//            count as fitted): an agent saved before its first train() fits it
//            on the data of that first train() after loading, as the original would
//   S floats normaliser mean, S floats normaliser std
//   tensors  the policy's and critics' parameters (named_params): u32 count, then
//            per tensor: string name, i32 rows, i32 cols, rows*cols floats (column-major)
//   -- training section (since version 2): what resumed training needs --
//   3 x 4 u64  states of the init, batch and noise streams
//   u32      counter count, then per counter: string name, i64 value (agent
//            counters, then "<optimiser>.steps" per optimiser)
//   u32      real count, then per real: string name, f64 value (the agent's
//            reals, then "reward_scale" when hyperparameter reward_scale is
//            "mean_abs": the divisor of every reward, fitted on the first data)
//   tensors  target networks ("<target>.<param>"), then per optimiser its
//            moments ("<optimiser>.<i>.m", "<optimiser>.<i>.v"), same layout as above
//   u64      FNV-1a hash of every byte above
// Version 2 is version 3 without the fitted byte.
// Version 1 is version 2 without the training section; it still loads (targets
// start as copies of the online networks, optimisers and streams start fresh).
#include "agents/agent_base.h"

#include "core/atomic_file.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>

namespace mtf::agents {

static_assert(std::endian::native == std::endian::little, "agent files are written little-endian");

TrainingDiverged::TrainingDiverged(const std::string& agent, std::int64_t step, const std::string& loss, double value)
    : std::runtime_error(agent + ": training diverged at step " + std::to_string(step) + ": loss \"" + loss +
                         "\" is " + std::to_string(value)),
      step_(step),
      loss_(loss) {}

nlohmann::json common_defaults() {
  return {{"hidden", {256, 256}},
          {"activation", "relu"},
          {"layer_norm", false},
          {"init", "fan_in"},
          {"batch_size", 256},
          {"reward_scale", "none"}};
}

AgentBase::AgentBase(std::string name, Hyperparameters hp, int state_dim, int action_dim, std::uint64_t seed)
    : name_(std::move(name)),
      hp_(std::move(hp)),
      S_(state_dim),
      A_(action_dim),
      seed_(seed),
      init_rng_(seed, Stream::kAgentInit),
      batch_rng_(seed, Stream::kAgentBatch),
      noise_rng_(seed, Stream::kAgentNoise),
      norm_(StateNormaliser::identity(state_dim)) {
  if (state_dim <= 0 || action_dim <= 0)
    throw std::invalid_argument(name_ + ": state and action dimensions must be positive");
  batch_size_ = hp_.integer("batch_size", 1, 1 << 20);
  hp_.widths("hidden");
  hp_.choice("activation", {"relu", "tanh"});
  hp_.choice("init", {"fan_in", "orthogonal"});
  scale_rewards_ = hp_.choice("reward_scale", {"none", "mean_abs"}) == "mean_abs";
}

std::vector<std::pair<std::string, double*>> AgentBase::saved_reals(const TrainingState& ts) {
  std::vector<std::pair<std::string, double*>> reals = ts.reals;
  if (scale_rewards_) reals.emplace_back("reward_scale", &reward_scale_);
  return reals;
}

nn::MlpSpec AgentBase::spec(int input, int output, int members) const {
  nn::MlpSpec s;
  s.input = input;
  s.output = output;
  s.members = members;
  s.hidden = hp_.widths("hidden");
  s.activation = hp_.choice("activation", {"relu", "tanh"}) == "relu" ? nn::Activation::kRelu : nn::Activation::kTanh;
  s.layer_norm = hp_.flag("layer_norm");
  s.init = hp_.choice("init", {"fan_in", "orthogonal"}) == "fan_in" ? nn::Init::kFanIn : nn::Init::kOrthogonal;
  // Every network of an agent is specified here, so this bound keeps widths (from
  // a scenario or an agent file) from asking for more memory than a machine has:
  // a network and its targets and optimiser moments take about 20 bytes a weight.
  double weights = 0;
  double in = input;
  for (const int h : s.hidden) {
    weights += (in + 1) * h;
    in = h;
  }
  weights = (weights + (in + 1) * output) * members;
  if (weights > kMaxNetworkWeights)
    throw std::invalid_argument(name_ + ".hidden: expected layer widths that give networks of at most " +
                                std::to_string(kMaxNetworkWeights) + " weights, got " +
                                hp_.resolved().at("hidden").dump() + " (" + std::to_string(input) + " inputs, " +
                                std::to_string(output) + " outputs, " + std::to_string(members) + " member(s): " +
                                std::to_string(static_cast<long long>(weights)) + " weights)");
  return s;
}

namespace {
/// The mean |reward| of the data (over the union of the ranks' shards, summed
/// in rank order), or 1 when it is 0 or not finite (no reward to scale by).
double mean_abs_reward(const Dataset& data, const Cluster* ranks) {
  const Matrix r = data.rewards();
  double sums[2] = {0.0, static_cast<double>(r.cols())};
  for (Eigen::Index j = 0; j < r.cols(); ++j) sums[0] += std::abs(static_cast<double>(r(0, j)));
  if (ranks) {
    const std::vector<std::string> all =
        ranks->all_gather(std::string_view(reinterpret_cast<const char*>(sums), sizeof sums));
    sums[0] = sums[1] = 0.0;
    for (const std::string& b : all) {
      double theirs[2];
      std::memcpy(theirs, b.data(), sizeof theirs);
      sums[0] += theirs[0];
      sums[1] += theirs[1];
    }
  }
  const double m = sums[1] > 0 ? sums[0] / sums[1] : 0.0;
  return std::isfinite(m) && m > 0 ? m : 1.0;
}
}  // namespace

void throw_if_diverged(const std::string& agent, std::int64_t step, const Losses& losses, const Cluster* ranks) {
  const auto bad = std::find_if(losses.begin(), losses.end(),
                                [](const std::pair<std::string, double>& l) { return !std::isfinite(l.second); });
  if (!ranks || ranks->size() == 1) {
    if (bad != losses.end()) throw TrainingDiverged(agent, step, bad->first, bad->second);
    return;
  }
  std::string mine;
  if (bad != losses.end()) {
    mine.resize(sizeof(double));
    std::memcpy(mine.data(), &bad->second, sizeof(double));
    mine += bad->first;
  }
  const std::vector<std::string> all = ranks->all_gather(mine);
  for (std::size_t r = 0; r < all.size(); ++r) {
    if (all[r].empty()) continue;
    double value = 0;
    std::memcpy(&value, all[r].data(), sizeof value);
    throw TrainingDiverged(agent, step, all[r].substr(sizeof value) + " on MPI rank " + std::to_string(r), value);
  }
}

void AgentBase::train(const Dataset& data, std::int64_t steps, const ProgressCallback& progress) {
  if (data.state_dim() != S_ || data.action_dim() != A_)
    throw std::invalid_argument(name_ + ": dataset has state/action dimensions " + std::to_string(data.state_dim()) +
                                "/" + std::to_string(data.action_dim()) + ", agent expects " + std::to_string(S_) +
                                "/" + std::to_string(A_));
  int batch = batch_size_;
  if (ranks_) {
    const int n = ranks_->size();
    if (batch_size_ % n != 0)
      throw std::invalid_argument(name_ + ": batch_size " + std::to_string(batch_size_) + " is not a multiple of the " +
                                  std::to_string(n) + " data-parallel ranks; choose a batch size that is");
    batch = batch_size_ / n;
    ranks_->check_same(name_ + " " + hp_.resolved().dump() + " " + std::to_string(steps) + " steps from " +
                           std::to_string(steps_),
                       "the agent and steps of data-parallel training");
  }
  // Data-parallel, rank r > 0 draws step k's minibatch and noise from streams
  // of (k, r) (rank 0 continues the agent's own, as one process would): the
  // agent's saved state is then every rank's, so a checkpoint that rank 0
  // writes resumes every rank (experiments/resume.cpp), and an agent trained
  // further (mtfsim train --from) does not replay its first minibatches.
  const int shard = ranks_ ? ranks_->rank() : 0;
  if (!fitted_) {
    norm_ = normaliser_over_ranks(data, ranks_);
    if (scale_rewards_) reward_scale_ = mean_abs_reward(data, ranks_);
    fitted_ = true;
  }
  const float inv_scale = static_cast<float>(1.0 / reward_scale_);
  for (auto& [name, opt] : training_state().optimisers) opt->average_over(ranks_);
  for (std::int64_t k = 1; k <= steps; ++k) {
    if (shard > 0) {
      const auto step = static_cast<std::uint64_t>(steps_) + 1, r = static_cast<std::uint64_t>(shard);
      batch_rng_ = Rng(seed_, Stream::kAgentBatch, step, r);
      noise_rng_ = Rng(seed_, Stream::kAgentNoise, step, r);
    }
    data.sample(batch_rng_, batch, batch_);
    norm_.apply(batch_.state, batch_.state);
    norm_.apply(batch_.next_state, batch_.next_state);
    if (scale_rewards_) batch_.reward *= inv_scale;
    const Losses losses = update(batch_);
    ++steps_;
    throw_if_diverged(name_, steps_, losses, ranks_);
    if (progress) progress(TrainProgress{k, steps, &losses});
  }
}

void AgentBase::act(std::span<const float> state, std::span<float> action, Rng& rng, ActionInfo* info) const {
  if (static_cast<int>(state.size()) != S_ || static_cast<int>(action.size()) != A_)
    throw std::invalid_argument(name_ + ": act() got state/action sizes that do not match the agent");
  Matrix s = Eigen::Map<const Vector>(state.data(), S_);
  norm_.apply(s, s);
  Matrix a;
  act_normalised(s, a, rng);
  for (int i = 0; i < A_; ++i) action[static_cast<std::size_t>(i)] = std::clamp(a(i, 0), -1.0f, 1.0f);
  fill_info(info);
}

void AgentBase::fill_info(ActionInfo* info) const {
  if (!info) return;
  info->has_baseline = false;
  info->has_bounds = false;
  info->log_density = deterministic() ? std::numeric_limits<double>::infinity()
                                      : std::numeric_limits<double>::quiet_NaN();
}

void AgentBase::act_batch(std::span<const float> states, std::span<float> actions, std::span<Rng* const> rngs,
                          std::span<ActionInfo* const> infos) const {
  const std::size_t n = rngs.size();
  if (n == 0) return;
  if (states.size() != n * static_cast<std::size_t>(S_) || actions.size() != n * static_cast<std::size_t>(A_) ||
      (!infos.empty() && infos.size() != n))
    throw std::invalid_argument(name_ + ": act_batch() got state/action/info sizes that do not match the agent");
  const auto N = static_cast<Eigen::Index>(n);
  if (std::all_of(rngs.begin(), rngs.end(), [&](const Rng* r) { return r == rngs[0]; })) {
    // One shared stream (offline evaluation): one batched pass, as before batches existed.
    Matrix a;
    act_batch(Eigen::Map<const Matrix>(states.data(), S_, N), a, *rngs[0]);
    Eigen::Map<Matrix>(actions.data(), A_, N) = a;
    for (ActionInfo* info : infos) fill_info(info);
    return;
  }
  // A stochastic actor draws from each row's own stream: row by row, as act().
  if (!deterministic()) return Policy::act_batch(states, actions, rngs, infos);
  // One normalisation and one actor pass for the whole S x n batch. The heads'
  // acting functions compute each column on its own (Mlp::infer_columns: fixed
  // fma chains, no Eigen GEMM/GEMV whose summation order depends on the shape),
  // so column j has the bits act() gives for state j alone, whatever the batch.
  const Eigen::Map<const Matrix> raw(states.data(), S_, N);
  Matrix s, a;
  norm_.apply(raw, s);
  act_normalised(s, a, *rngs[0]);  // deterministic: draws nothing
  for (Eigen::Index j = 0; j < N; ++j) {
    float* out = actions.data() + static_cast<std::size_t>(j) * static_cast<std::size_t>(A_);
    for (int i = 0; i < A_; ++i) out[i] = std::clamp(a(i, j), -1.0f, 1.0f);
  }
  for (std::size_t i = 0; i < infos.size(); ++i) fill_info(infos[i]);
}

void AgentBase::act_batch(const ConstRef& states, Matrix& actions, Rng& rng) const {
  // In chunks of kActChunk states: evaluating a policy on every request of a
  // dataset (GAUC, OPE) would otherwise hold the whole batch's activations (BCQ:
  // n candidates per state) at once. The bits do not depend on the chunking:
  // acting computes each column on its own, and the draws (BCQ's latents) are
  // taken state by state, in column order, from the one stream.
  const Eigen::Index N = states.cols();
  actions.resize(A_, N);
  Matrix s, a;
  for (Eigen::Index begin = 0; begin < N; begin += kActChunk) {
    const Eigen::Index n = std::min<Eigen::Index>(kActChunk, N - begin);
    norm_.apply(states.middleCols(begin, n), s);
    act_normalised(s, a, rng);
    actions.middleCols(begin, n) = a.cwiseMax(-1.0f).cwiseMin(1.0f);
  }
}

Matrix AgentBase::q_values(const ConstRef& states, const ConstRef& actions) const {
  Matrix s;
  norm_.apply(states, s);
  if (!scale_rewards_) return q_normalised(s, actions);
  return q_normalised(s, actions) * static_cast<float>(reward_scale_);
}

Matrix AgentBase::q_normalised(const ConstRef&, const ConstRef&) const {
  throw std::logic_error(name_ + ": this agent has no critic");
}

std::vector<std::pair<std::string, const nn::Param*>> AgentBase::named_params() const {
  std::vector<std::pair<std::string, const nn::Param*>> out;
  auto* self = const_cast<AgentBase*>(this);
  for (auto& [net_name, net] : self->networks())
    for (nn::Param* p : net->params()) out.emplace_back(net_name + "." + p->name, p);
  for (nn::Param* p : self->extra_params()) out.emplace_back(p->name, p);
  return out;
}

// ---------------------------------------------------------------- file I/O
namespace {
constexpr char kMagic[8] = {'M', 'T', 'F', 'A', 'G', 'E', 'N', 'T'};
constexpr std::uint32_t kFormatVersion = 3;
constexpr std::uint32_t kOldestReadableVersion = 1;

struct Writer {
  std::string buf;
  void bytes(const void* p, std::size_t n) { buf.append(static_cast<const char*>(p), n); }
  template <class T>
  void pod(T v) { bytes(&v, sizeof v); }
  void str(const std::string& s) {
    pod(static_cast<std::uint32_t>(s.size()));
    bytes(s.data(), s.size());
  }
};

void write_tensors(Writer& w, const std::vector<std::pair<std::string, const Matrix*>>& tensors) {
  w.pod(static_cast<std::uint32_t>(tensors.size()));
  for (const auto& [name, m] : tensors) {
    w.str(name);
    w.pod(static_cast<std::int32_t>(m->rows()));
    w.pod(static_cast<std::int32_t>(m->cols()));
    w.bytes(m->data(), sizeof(float) * static_cast<std::size_t>(m->size()));
  }
}

std::uint64_t fnv1a(const char* p, std::size_t n) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(p[i])) * 0x100000001b3ULL;
  return h;
}

struct Reader {
  const std::string& buf;
  std::size_t pos = 0;
  std::string path;
  [[noreturn]] void truncated() const {
    throw AgentFileError(path + ": truncated agent file (ends at byte " + std::to_string(buf.size()) + ")");
  }
  void bytes(void* p, std::size_t n) {
    if (buf.size() - pos < n) truncated();
    if (n == 0) return;  // p may be null (an empty tensor's data), which memcpy may not get
    std::memcpy(p, buf.data() + pos, n);
    pos += n;
  }
  template <class T>
  T pod() {
    T v;
    bytes(&v, sizeof v);
    return v;
  }
  std::string str() {
    const auto n = pod<std::uint32_t>();
    if (buf.size() - pos < n) truncated();
    std::string s = buf.substr(pos, n);
    pos += n;
    return s;
  }
};

std::vector<std::pair<std::string, Matrix>> read_tensors(Reader& r) {
  const auto count = r.pod<std::uint32_t>();
  std::vector<std::pair<std::string, Matrix>> tensors;
  for (std::uint32_t i = 0; i < count; ++i) {
    std::string tname = r.str();
    const int rows = r.pod<std::int32_t>(), cols = r.pod<std::int32_t>();
    if (rows < 0 || cols < 0 || double(rows) * double(cols) * 4.0 > double(r.buf.size())) r.truncated();
    Matrix m(rows, cols);
    r.bytes(m.data(), sizeof(float) * static_cast<std::size_t>(m.size()));
    tensors.emplace_back(std::move(tname), std::move(m));
  }
  return tensors;
}

// The training section's tensors, in file order: targets, then optimiser moments.
std::vector<std::pair<std::string, Matrix*>> training_tensors(const TrainingState& ts) {
  std::vector<std::pair<std::string, Matrix*>> out;
  for (const auto& t : ts.targets)
    for (nn::Param* p : t.target->params()) out.emplace_back(t.name + "." + p->name, &p->value);
  for (const auto& [name, opt] : ts.optimisers)
    for (std::size_t i = 0; i < opt->size(); ++i) {
      out.emplace_back(name + "." + std::to_string(i) + ".m", &opt->first_moment(i));
      out.emplace_back(name + "." + std::to_string(i) + ".v", &opt->second_moment(i));
    }
  return out;
}

// Copies file tensors into the agent's, checking names and shapes in order first.
void assign_tensors(const std::vector<std::pair<std::string, Matrix>>& file,
                    const std::vector<std::pair<std::string, Matrix*>>& agent, const std::string& what,
                    const std::string& agent_name, const std::string& path) {
  if (file.size() != agent.size())
    throw AgentFileError(path + ": holds " + std::to_string(file.size()) + " " + what + " tensors, agent " +
                         agent_name + " with these hyperparameters has " + std::to_string(agent.size()));
  for (std::size_t i = 0; i < agent.size(); ++i) {
    const auto& [name, m] = agent[i];
    const Matrix& t = file[i].second;
    if (file[i].first != name || t.rows() != m->rows() || t.cols() != m->cols())
      throw AgentFileError(path + ": " + what + " tensor " + std::to_string(i) + " is \"" + file[i].first + "\" " +
                           std::to_string(t.rows()) + "x" + std::to_string(t.cols()) + ", expected \"" + name +
                           "\" " + std::to_string(m->rows()) + "x" + std::to_string(m->cols()));
  }
  for (std::size_t i = 0; i < agent.size(); ++i) *agent[i].second = file[i].second;
}
}  // namespace

std::string AgentBase::to_bytes() const {
  Writer w;
  w.bytes(kMagic, sizeof kMagic);
  w.pod(kFormatVersion);
  w.str(name_);
  w.str(hp_.resolved().dump());
  w.pod(static_cast<std::int32_t>(S_));
  w.pod(static_cast<std::int32_t>(A_));
  w.pod(static_cast<std::uint64_t>(seed_));
  w.pod(static_cast<std::int64_t>(steps_));
  w.pod(static_cast<std::uint8_t>(fitted_ ? 1 : 0));
  w.bytes(norm_.mean.data(), sizeof(float) * static_cast<std::size_t>(S_));
  w.bytes(norm_.stddev.data(), sizeof(float) * static_cast<std::size_t>(S_));
  std::vector<std::pair<std::string, const Matrix*>> params;
  for (const auto& [pname, p] : named_params()) params.emplace_back(pname, &p->value);
  write_tensors(w, params);
  // Training section.
  const TrainingState ts = const_cast<AgentBase*>(this)->training_state();
  for (const Rng* r : {&init_rng_, &batch_rng_, &noise_rng_})
    for (const std::uint64_t word : r->state()) w.pod(word);
  w.pod(static_cast<std::uint32_t>(ts.counters.size() + ts.optimisers.size()));
  for (const auto& [cname, c] : ts.counters) {
    w.str(cname);
    w.pod(static_cast<std::int64_t>(*c));
  }
  for (const auto& [oname, opt] : ts.optimisers) {
    w.str(oname + ".steps");
    w.pod(static_cast<std::int64_t>(opt->steps()));
  }
  const auto reals = const_cast<AgentBase*>(this)->saved_reals(ts);
  w.pod(static_cast<std::uint32_t>(reals.size()));
  for (const auto& [rname, x] : reals) {
    w.str(rname);
    w.pod(*x);
  }
  std::vector<std::pair<std::string, const Matrix*>> extra;
  for (const auto& [tname, m] : training_tensors(ts)) extra.emplace_back(tname, m);
  write_tensors(w, extra);
  w.pod(fnv1a(w.buf.data(), w.buf.size()));
  return std::string(w.buf.data(), w.buf.size());
}

void AgentBase::save(const std::filesystem::path& path) const {
  try {
    write_file_atomically(path, to_bytes());
  } catch (const std::runtime_error& e) {
    throw AgentFileError(e.what());
  }
}

void AgentBase::restore(const StateNormaliser& norm, bool fitted, std::int64_t steps,
                        const std::vector<std::pair<std::string, Matrix>>& tensors, const SavedTraining* training,
                        const std::string& path) {
  std::vector<std::pair<std::string, Matrix*>> params;
  for (const auto& [pname, p] : named_params()) params.emplace_back(pname, &const_cast<nn::Param*>(p)->value);
  assign_tensors(tensors, params, "parameter", name_, path);
  const TrainingState ts = training_state();
  if (training == nullptr) {
    for (const auto& t : ts.targets) t.target->copy_from(*t.online);
  } else {
    assign_tensors(training->tensors, training_tensors(ts), "training", name_, path);
    const std::size_t n_counters = ts.counters.size() + ts.optimisers.size();
    const auto reals = saved_reals(ts);
    if (training->counters.size() != n_counters || training->reals.size() != reals.size())
      throw AgentFileError(path + ": training section has " + std::to_string(training->counters.size()) +
                           " counters and " + std::to_string(training->reals.size()) + " reals, agent " + name_ +
                           " has " + std::to_string(n_counters) + " and " + std::to_string(reals.size()));
    auto expect = [&](const std::string& file_name, const std::string& want) {
      if (file_name != want)
        throw AgentFileError(path + ": training value \"" + file_name + "\" where \"" + want + "\" was expected");
    };
    for (std::size_t i = 0; i < ts.counters.size(); ++i) {
      expect(training->counters[i].first, ts.counters[i].first);
      *ts.counters[i].second = training->counters[i].second;
    }
    for (std::size_t i = 0; i < ts.optimisers.size(); ++i) {
      const auto& [cname, value] = training->counters[ts.counters.size() + i];
      expect(cname, ts.optimisers[i].first + ".steps");
      ts.optimisers[i].second->set_steps(value);
    }
    for (std::size_t i = 0; i < reals.size(); ++i) {
      expect(training->reals[i].first, reals[i].first);
      *reals[i].second = training->reals[i].second;
    }
    if (scale_rewards_ && !(std::isfinite(reward_scale_) && reward_scale_ > 0))
      throw AgentFileError(path + ": reward_scale " + std::to_string(reward_scale_) + " is not a positive number");
    init_rng_.set_state(training->rng[0]);
    batch_rng_.set_state(training->rng[1]);
    noise_rng_.set_state(training->rng[2]);
  }
  norm_ = norm;
  fitted_ = fitted;
  steps_ = steps;
}

std::unique_ptr<Agent> AgentBase::clone() const {
  std::unique_ptr<Agent> copy = make_agent(name_, hp_.resolved(), S_, A_, seed_);
  auto& c = static_cast<AgentBase&>(*copy);
  auto* self = const_cast<AgentBase*>(this);
  const auto mine = named_params(), theirs = c.named_params();
  for (std::size_t i = 0; i < mine.size(); ++i)
    const_cast<nn::Param*>(theirs[i].second)->value = mine[i].second->value;
  const TrainingState from = self->training_state(), to = c.training_state();
  const auto from_tensors = training_tensors(from), to_tensors = training_tensors(to);
  for (std::size_t i = 0; i < from_tensors.size(); ++i)
    *to_tensors[i].second = *from_tensors[i].second;
  for (std::size_t i = 0; i < from.counters.size(); ++i)
    *to.counters[i].second = *from.counters[i].second;
  for (std::size_t i = 0; i < from.optimisers.size(); ++i)
    to.optimisers[i].second->set_steps(from.optimisers[i].second->steps());
  for (std::size_t i = 0; i < from.reals.size(); ++i) *to.reals[i].second = *from.reals[i].second;
  c.init_rng_ = init_rng_;
  c.batch_rng_ = batch_rng_;
  c.noise_rng_ = noise_rng_;
  c.norm_ = norm_;
  c.reward_scale_ = reward_scale_;
  c.fitted_ = fitted_;
  c.steps_ = steps_;
  return copy;
}

std::unique_ptr<Agent> load_agent(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw AgentFileError(path.string() + ": cannot open agent file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return load_agent_bytes(ss.str(), path.string());
}

std::unique_ptr<Agent> load_agent_bytes(const std::string& buf, const std::string& origin) {
  const std::string& p = origin;
  if (buf.size() < sizeof kMagic || std::memcmp(buf.data(), kMagic, sizeof kMagic) != 0)
    throw AgentFileError(p + ": not an agent file (no MTFAGENT header)");
  Reader r{buf, sizeof kMagic, p};
  const auto version = r.pod<std::uint32_t>();
  if (version < kOldestReadableVersion || version > kFormatVersion)
    throw AgentFileError(p + ": agent file format version " + std::to_string(version) + ", this build reads versions " +
                         std::to_string(kOldestReadableVersion) + " to " + std::to_string(kFormatVersion) +
                         "; retrain or convert the agent");
  if (buf.size() < sizeof kMagic + 12) r.truncated();
  const std::uint64_t stored_hash = [&] {
    std::uint64_t h;
    std::memcpy(&h, buf.data() + buf.size() - 8, 8);
    return h;
  }();
  const std::string name = r.str();
  const std::string hp_text = r.str();
  const int S = r.pod<std::int32_t>(), A = r.pod<std::int32_t>();
  const auto seed = r.pod<std::uint64_t>();
  const auto steps = r.pod<std::int64_t>();
  const bool fitted = version >= 3 ? r.pod<std::uint8_t>() != 0 : true;
  if (S <= 0 || A <= 0 || S > (1 << 24) || A > (1 << 24)) throw AgentFileError(p + ": corrupt header");
  StateNormaliser norm{Vector(S), Vector(S)};
  r.bytes(norm.mean.data(), sizeof(float) * static_cast<std::size_t>(S));
  r.bytes(norm.stddev.data(), sizeof(float) * static_cast<std::size_t>(S));
  const std::vector<std::pair<std::string, Matrix>> tensors = read_tensors(r);
  std::optional<SavedTraining> training;
  if (version >= 2) {
    training.emplace();
    for (auto& stream : training->rng)
      for (auto& word : stream) word = r.pod<std::uint64_t>();
    const auto n_counters = r.pod<std::uint32_t>();
    for (std::uint32_t i = 0; i < n_counters; ++i) {
      std::string cname = r.str();
      training->counters.emplace_back(std::move(cname), r.pod<std::int64_t>());
    }
    const auto n_reals = r.pod<std::uint32_t>();
    for (std::uint32_t i = 0; i < n_reals; ++i) {
      std::string rname = r.str();
      training->reals.emplace_back(std::move(rname), r.pod<double>());
    }
    training->tensors = read_tensors(r);
  }
  if (buf.size() - r.pos != 8) {
    if (buf.size() - r.pos < 8) r.truncated();
    throw AgentFileError(p + ": " + std::to_string(buf.size() - r.pos - 8) + " unexpected bytes after the tensors");
  }
  if (fnv1a(buf.data(), r.pos) != stored_hash) throw AgentFileError(p + ": checksum mismatch (corrupt agent file)");
  nlohmann::json hp;
  try {
    hp = nlohmann::json::parse(hp_text);
  } catch (const nlohmann::json::exception& e) {
    throw AgentFileError(p + ": corrupt hyperparameters: " + e.what());
  }
  std::unique_ptr<Agent> agent;
  try {
    agent = make_agent(name, hp, S, A, seed);
  } catch (const std::invalid_argument& e) {
    // An unknown agent, or hyperparameters this build does not accept.
    throw AgentFileError(p + ": cannot build the agent the file describes: " + e.what());
  }
  static_cast<AgentBase*>(agent.get())->restore(norm, fitted, steps, tensors, training ? &*training : nullptr, p);
  return agent;
}

}  // namespace mtf::agents
