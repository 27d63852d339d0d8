// A scenario: everything one run of the testbed needs, as plain structs.
//
// Loaded from JSON by `load_scenario` (sim/scenario.cpp), which validates every
// key, type and range and reports the JSON path, what was expected and what was
// found. `scenario_to_json` writes the scenario back as it was run (defaults
// filled in); the run database stores that text.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/json_error.h"
#include "core/tasks.h"
#include "metrics/reward.h"
#include "users/user_params.h"

namespace mtf {

/// Thrown for invalid scenario input; what() names the JSON path and the fix.
class ScenarioError : public JsonInputError {
 public:
  using JsonInputError::JsonInputError;
};

struct CatalogueParams {
  int items = 20000;                  ///< [100, 10^7]
  int topics = 24;                    ///< [2, min(10000, items)]
  int topic_graph_degree = 3;         ///< neighbours per topic in the ring-lattice-plus-shortcuts graph
  double duration_median_s = 35.0;    ///< lognormal median of item duration, seconds
  double duration_sigma = 0.9;        ///< lognormal sigma; durations clipped to [5, 300] s
  double clickbait_share = 0.2;       ///< share of clickbait-heavy items in [0, 1]
  bool operator==(const CatalogueParams&) const = default;
};

struct RetrievalParams {
  int candidates = 200;               ///< candidates per request, >= shown
  double interest_bias = 0.7;         ///< share of candidates drawn from the user's interests, [0, 1]
  int shown = 6;                      ///< items shown per request (top L), [1, 1000]
  bool operator==(const RetrievalParams&) const = default;
};

/// Distortion of one MTL task: pred = sigmoid(scale * x + offset + noise * eps),
/// with x the true conditional logit and eps a fixed per (user, item, task)
/// error of unit variance.
struct TaskModelParams {
  double noise = 0.3;   ///< >= 0
  double scale = 1.0;   ///< > 0
  double offset = 0.0;
  bool operator==(const TaskModelParams&) const = default;
};

struct MtlParams {
  std::array<TaskModelParams, kNumTasks> tasks{};
  bool operator==(const MtlParams&) const = default;
};

enum class FusionForm {
  kProduct,  ///< IntegratedRL-MTF Formula 1: prod_i (pred_i + bias_i)^pow_i
  kLogSum,   ///< BatchRL-MTF Eq. 1: sum_i alpha_i * log(o_i + beta_i)
};

/// One dimension of the action: which term of which task it sets, and the range
/// the action's [-1, 1] is mapped onto linearly.
struct FusionDim {
  Task task = Task::kPlay;
  bool is_bias = false;  ///< false: pow/alpha (exponent); true: bias/beta
  double lo = 0.0, hi = 1.0;
  bool operator==(const FusionDim&) const = default;
};

struct FusionParams {
  FusionForm form = FusionForm::kProduct;
  /// Values of the terms not set by the action: exponent (pow/alpha) and bias (beta).
  std::array<double, kNumTasks> fixed_weight{};
  std::array<double, kNumTasks> fixed_bias{};
  std::vector<FusionDim> dims;  ///< the action's dimensions, in order (d = dims.size())
  bool operator==(const FusionParams&) const = default;
};

/// Policy types of a group (sim/policies.h, sim/exploration.h). Values are not
/// stored anywhere; the JSON names are the contract.
enum class PolicyKind {
  kConstant,       ///< "constant"
  kBaseline,       ///< "baseline": the production rule mu_bp
  kGaussian,       ///< "gaussian": clip(mu(s) + N(0, sigma^2 I)), IntegratedRL-MTF Dataset 1, BatchRL-MTF Eq. 8
  kRandom,         ///< "random": U([-1, 1]^d), BatchRL-MTF section 3.3
  kBoundedUniform, ///< "bounded_uniform": U(mu(s) -+ bound) within the box, IntegratedRL-MTF Formula 3
  kAgent           ///< "agent": a trained agent (an agent file, or one kept in a run database)
};

/// Whether a policy of this kind is deterministic (may serve as "around").
constexpr bool is_deterministic(PolicyKind k) {
  return k == PolicyKind::kConstant || k == PolicyKind::kBaseline;
}

struct PolicySpec {
  PolicyKind kind = PolicyKind::kBaseline;
  std::vector<double> action;  ///< kConstant: the action, in [-1, 1]^d
  double sigma = 0.2;          ///< kGaussian: noise standard deviation, > 0 (action units)
  /// kBoundedUniform: exploration half-width, one value for every dimension
  /// (size 1) or one per dimension (size d); each in (0, 2].
  std::vector<double> bound{0.15};
  /// Exploration kinds: the deterministic policy mu(s) they perturb (kRandom: only
  /// the recorded baseline). Parsing fills it with one spec (default {"type":
  /// "baseline"}); empty means the baseline too. Empty for the deterministic kinds.
  /// A vector so the spec stays a comparable value type.
  std::vector<PolicySpec> around;
  /// kAgent: the agent file, or the run database that keeps the agent, as
  /// written in the scenario (relative to `base_dir`).
  std::string path;
  /// kAgent with a run database: the agent's name in it (its table agents).
  std::string agent_name;
  /// kAgent: the folder a relative `path` is read from (the scenario file's;
  /// empty: the working directory). Not part of the JSON.
  std::string base_dir;
  /// The policy block as run (canonical JSON, compact), stored with the run.
  std::string json;
  bool operator==(const PolicySpec&) const = default;
};

struct GroupSpec {
  std::string name;
  double share = 1.0;  ///< > 0; shares are normalised over groups
  PolicySpec policy;
  bool operator==(const GroupSpec&) const = default;
};

struct RecordParams {
  bool transitions = true;   ///< write every transition
  bool user_days = true;     ///< write per-user-day metrics
  /// Index transitions by (user, session, step) at the end of the run. Off by
  /// default: the index costs about a fifth of a recorded run's time and agents
  /// read transitions in order; turn it on for per-user queries.
  bool index_transitions = false;
  /// Write every shown item (table `impressions`: MTL predictions, label, item
  /// reward) of every group; experiments turn it on for their test groups only.
  bool impressions = false;
  bool operator==(const RecordParams&) const = default;
};

/// Hard caps that end a runaway session, whatever the user model says: a
/// session ends after `max_session_requests` requests or once it has lasted
/// `max_session_hours` of simulated time (checked after each request), and is
/// counted as capped (GroupSummary::sessions_capped). The defaults are far above
/// any session of the shipped scenarios (at most 13 requests and about 2 hours).
struct LimitsParams {
  int max_session_requests = 400;  ///< [1, 100000]
  double max_session_hours = 24;   ///< (0, 720]
  bool operator==(const LimitsParams&) const = default;
};

struct Scenario {
  std::string name = "scenario";
  std::uint64_t seed = 1;
  int days = 3;  ///< >= 1
  PopulationParams population;
  CatalogueParams catalogue;
  RetrievalParams retrieval;
  MtlParams mtl;
  FusionParams fusion;
  RewardParams reward;
  UserDynamicsParams user_model;
  std::vector<GroupSpec> groups;
  RecordParams record;
  LimitsParams limits;
  /// The "experiment" block as compact JSON (empty: a plain run). Validated and
  /// run by the protocol engine (experiments/experiment.h).
  std::string experiment_json;

  bool operator==(const Scenario&) const = default;
  int action_dim() const { return static_cast<int>(fusion.dims.size()); }
};

/// Parses and validates a scenario from JSON text. `origin` names the source in
/// messages (a file name). Throws ScenarioError naming the JSON path on bad input.
Scenario parse_scenario(const std::string& json_text, const std::string& origin = "scenario");
/// Reads and parses a scenario file; throws ScenarioError (missing file, bad JSON, invalid values).
Scenario load_scenario(const std::filesystem::path& path);
/// The scenario as run, every default filled in, as pretty JSON that parse_scenario accepts.
std::string scenario_to_json(const Scenario& s);

}  // namespace mtf
