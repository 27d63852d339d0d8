// Scenario JSON: parsing with validation, and writing back.
//
// The format is documented in docs/scenario-format.md. Every message has the form
//   <origin>: <json path>: expected <what>, got <what was found>
// so a person can find the key and knows what to write instead; the reader
// (nodes, checked objects, ranges, "did you mean") is core/json_reader.h.
//
// Numeric fields of the simple blocks are described once, in tables of
// (key, member, range); parsing and writing both walk the same tables, so a new
// field is one table line (equality is the structs' defaulted operator==). Policy types are a second table (name, keys,
// parse function): a later policy kind adds one entry there.
#include "sim/scenario.h"

#include "core/json_reader.h"

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string_view>
#include <variant>

namespace mtf {
namespace {

using Json = json_reader::Value;  // keeps the author's key order (policy blocks, output)

using json_reader::block;
using json_reader::child_path;
using json_reader::closed;
using json_reader::closest;
using json_reader::found;
using json_reader::half_open;
using json_reader::in_quotes;
using json_reader::int_range;
using json_reader::join_quoted;
using json_reader::Node;
using json_reader::Obj;
using json_reader::probability;
using json_reader::Range;
using json_reader::show;
using json_reader::show_number;

// ---------------------------------------------------------------------------
// Field tables
// ---------------------------------------------------------------------------

template <class S>
struct Field {
  std::string_view key;
  std::variant<double S::*, int S::*, bool S::*> member;
  Range range;
};

template <class S>
std::vector<std::string_view> keys_of(const std::vector<Field<S>>& fields,
                                      std::vector<std::string_view> extra = {}) {
  std::vector<std::string_view> keys;
  for (const auto& f : fields) keys.push_back(f.key);
  keys.insert(keys.end(), extra.begin(), extra.end());
  return keys;
}

template <class S>
void read_fields(const Obj& o, const std::vector<Field<S>>& fields, S& out) {
  for (const auto& f : fields)
    std::visit([&](auto member) { o.read(f.key, out.*member, f.range); }, f.member);
}

template <class S>
void write_fields(Json& j, const std::vector<Field<S>>& fields, const S& s) {
  for (const auto& f : fields) std::visit([&](auto member) { j[f.key] = s.*member; }, f.member);
}

using D = double;

// Every number has a finite range: generous (far beyond any realistic scenario)
// but bounded, so that no valid scenario overflows or runs without end. The
// ranges are documented in docs/scenario-format.md.
const Range kCoefficient = closed(-100, 100);  // logit coefficients and shifts
const Range kShare = {0, 1e6, true, false};    // relative sizes, normalised over their siblings

const std::vector<Field<SegmentParams>>& segment_fields() {
  using S = SegmentParams;
  static const std::vector<Field<S>> f = {
      {"share", &S::share, kShare},
      {"male_prob", &S::male_prob, probability()},
      {"sessions_per_day", &S::sessions_per_day, {0, 100, true, false}},
      {"activity_spread", &S::activity_spread, closed(0, 3)},
      {"preferred_hour", &S::preferred_hour, half_open(0, 24)},
      {"taste_long", &S::taste_long, closed(-1, 1)},
      {"clickbait_sensitivity", &S::clickbait_sensitivity, closed(0, 10)},
      {"interaction", &S::interaction, closed(-10, 10)},
      // Beyond 10 the leave hazard is below 1e-5 per request: sessions end only
      // at the caps of the limits block.
      {"patience", &S::patience, closed(-10, 10)},
      // interest_topics: also checked against catalogue.topics in parse_segment.
      {"interest_topics", &S::interest_topics, int_range(1)},
  };
  return f;
}

const std::vector<Field<CatalogueParams>>& catalogue_fields() {
  using S = CatalogueParams;
  static const std::vector<Field<S>> f = {
      {"items", &S::items, int_range(100, 10000000)},
      {"topics", &S::topics, int_range(2, 10000)},
      {"topic_graph_degree", &S::topic_graph_degree, int_range(1)},
      {"duration_median_s", &S::duration_median_s, closed(5, 300)},
      {"duration_sigma", &S::duration_sigma, closed(0, 5)},
      {"clickbait_share", &S::clickbait_share, probability()},
  };
  return f;
}

const std::vector<Field<RetrievalParams>>& retrieval_fields() {
  using S = RetrievalParams;
  static const std::vector<Field<S>> f = {
      {"candidates", &S::candidates, int_range(1, 100000)},
      {"interest_bias", &S::interest_bias, probability()},
      {"shown", &S::shown, int_range(1, 1000)},
  };
  return f;
}

const std::vector<Field<TaskModelParams>>& task_model_fields() {
  using S = TaskModelParams;
  static const std::vector<Field<S>> f = {
      {"noise", &S::noise, closed(0, 10)},
      {"scale", &S::scale, {0, 10, true, false}},
      {"offset", &S::offset, closed(-10, 10)},
  };
  return f;
}

const std::vector<Field<RewardParams>>& reward_fields() {
  using S = RewardParams;
  const Range w = closed(-1e6, 1e6);  // as the experiment's per-agent reward overrides
  static const std::vector<Field<S>> f = {
      {"play", &S::play, w},       {"valid", &S::valid, w},
      {"watch_minutes", &S::watch_minutes, w},
      {"finish", &S::finish, w},   {"like", &S::like, w},
      {"share", &S::share, w},     {"comment", &S::comment, w},
      {"skip", &S::skip, w},
  };
  return f;
}

const std::vector<Field<UserDynamicsParams>>& user_model_fields() {
  using S = UserDynamicsParams;
  const Range any = kCoefficient;
  const Range fatigue = closed(0, 10);
  static const std::vector<Field<S>> f = {
      {"play_bias", &S::play_bias, any},
      {"play_interest", &S::play_interest, any},
      {"play_clickbait", &S::play_clickbait, any},
      {"play_length", &S::play_length, any},
      {"play_quality", &S::play_quality, any},
      {"play_fatigue", &S::play_fatigue, any},
      {"watch_bias", &S::watch_bias, any},
      {"watch_interest", &S::watch_interest, any},
      {"watch_quality", &S::watch_quality, any},
      {"watch_clickbait", &S::watch_clickbait, any},
      {"watch_length", &S::watch_length, any},
      {"watch_duration", &S::watch_duration, any},
      {"watch_fatigue", &S::watch_fatigue, any},
      {"watch_noise", &S::watch_noise, {0, 10, true, false}},  // the MTL divides by it
      {"like_bias", &S::like_bias, any},
      {"share_bias", &S::share_bias, any},
      {"comment_bias", &S::comment_bias, any},
      {"interact_appeal", &S::interact_appeal, any},
      {"interact_quality", &S::interact_quality, any},
      {"interact_watch", &S::interact_watch, any},
      {"satisfaction_rate", &S::satisfaction_rate, {0, 1, true, false}},
      {"utility_reference", &S::utility_reference, any},
      {"fatigue_per_item", &S::fatigue_per_item, fatigue},
      {"fatigue_unenjoyed", &S::fatigue_unenjoyed, fatigue},
      {"fatigue_repetition", &S::fatigue_repetition, fatigue},
      {"fatigue_per_minute", &S::fatigue_per_minute, fatigue},
      {"fatigue_recovery_hours", &S::fatigue_recovery_hours, {0, 1000, true, false}},
      {"leave_bias", &S::leave_bias, any},
      {"leave_satisfaction", &S::leave_satisfaction, any},
      {"leave_fatigue", &S::leave_fatigue, any},
      {"leave_requests", &S::leave_requests, any},
      {"return_satisfaction", &S::return_satisfaction, any},
      {"night_start_hour", &S::night_start_hour, half_open(0, 24)},
      {"night_end_hour", &S::night_end_hour, half_open(0, 24)},
      {"interest_learning", &S::interest_learning, probability()},
      {"interest_spill", &S::interest_spill, probability()},
      {"interest_daily_drift", &S::interest_daily_drift, probability()},
      {"browse_seconds", &S::browse_seconds, closed(0, 300)},
  };
  return f;
}
constexpr std::size_t kUserModelFields = 38;

const std::vector<Field<LimitsParams>>& limits_fields() {
  using S = LimitsParams;
  static const std::vector<Field<S>> f = {
      {"max_session_requests", &S::max_session_requests, int_range(1, 100000)},
      {"max_session_hours", &S::max_session_hours, {0, 720, true, false}},
  };
  return f;
}
// A new field of UserDynamicsParams must be added to user_model_fields(), or the
// scenario could neither set it nor write it back.
static_assert(sizeof(UserDynamicsParams) == kUserModelFields * sizeof(double),
              "UserDynamicsParams changed: update user_model_fields() and kUserModelFields");

// ---------------------------------------------------------------------------
// Blocks
// ---------------------------------------------------------------------------

std::vector<std::string_view> task_names() {
  return {kTaskNames.begin(), kTaskNames.end()};
}

SegmentParams parse_segment(const Node& n, const Scenario& s) {
  const Obj o(n, keys_of(segment_fields(), {"name", "age_mix"}), "an object (a segment)");
  SegmentParams seg;
  o.read("name", seg.name);
  read_fields(o, segment_fields(), seg);
  if (seg.interest_topics > s.catalogue.topics) {
    o.at("interest_topics")
        .fail("an integer in [1, catalogue.topics = " + std::to_string(s.catalogue.topics) + "]",
              found(o, "interest_topics", seg.interest_topics));
  }
  if (const Node mix = o.at("age_mix"); !mix.missing()) {
    const std::string what = "an array of 4 probabilities (age groups 0..3) summing to 1";
    if (!mix.value->is_array() || mix.value->size() != 4) mix.fail(what);
    double sum = 0;
    for (std::size_t i = 0; i < 4; ++i) sum += seg.age_mix[i] = mix.at(i).number(probability());
    // Tolerance: authors write thirds as 0.333, 0.333, 0.334 and the like.
    if (std::fabs(sum - 1.0) > 1e-3) mix.fail(what, show(*mix.value) + " (sum " + show_number(sum) + ")");
  }
  return seg;
}

void parse_population(const Obj& top, Scenario& s) {
  const auto o = block(top, "population", {"size", "segments"});
  s.population.segments.clear();
  if (o) {
    if (const Node n = o->at("size"); !n.missing()) {
      const Range r = {1, 1e9, false, false, true};
      s.population.size = static_cast<std::int64_t>(n.number(r));
    }
    if (const Node n = o->at("segments"); !n.missing()) {
      const std::size_t count = n.array("an array of at least 1 segment", 1);
      if (count > 255)  // users store their segment in one byte
        n.fail("an array of at most 255 segments", std::to_string(count) + " segments");
      std::set<std::string> names;
      for (std::size_t i = 0; i < count; ++i) {
        SegmentParams seg = parse_segment(n.at(i), s);
        if (!names.insert(seg.name).second) {
          n.at(i).at("name").fail("a segment name not used before (names must be unique)",
                                  in_quotes(seg.name));
        }
        s.population.segments.push_back(std::move(seg));
      }
    }
  }
  if (s.population.segments.empty()) s.population.segments.emplace_back();
}

void parse_catalogue(const Obj& top, Scenario& s) {
  const auto o = block(top, "catalogue", keys_of(catalogue_fields()));
  if (!o) return;
  CatalogueParams& c = s.catalogue;
  read_fields(*o, catalogue_fields(), c);
  if (c.topics > c.items) {
    o->at("topics").fail("an integer in [2, catalogue.items = " + std::to_string(c.items) + "]",
                         found(*o, "topics", c.topics));
  }
  if (c.topic_graph_degree > c.topics - 1) {
    o->at("topic_graph_degree")
        .fail("an integer in [1, catalogue.topics - 1 = " + std::to_string(c.topics - 1) + "]",
              found(*o, "topic_graph_degree", c.topic_graph_degree));
  }
}

void parse_retrieval(const Obj& top, Scenario& s) {
  const auto o = block(top, "retrieval", keys_of(retrieval_fields()));
  if (!o) return;
  RetrievalParams& r = s.retrieval;
  read_fields(*o, retrieval_fields(), r);
  if (r.candidates < r.shown || r.candidates > s.catalogue.items) {
    o->at("candidates")
        .fail("an integer in [retrieval.shown = " + std::to_string(r.shown) +
                  ", catalogue.items = " + std::to_string(s.catalogue.items) + "]",
              found(*o, "candidates", r.candidates));
  }
}

void parse_mtl(const Obj& top, Scenario& s) {
  const auto o = block(top, "mtl", {"tasks"});
  if (!o) return;
  const Node tasks = o->at("tasks");
  if (tasks.missing()) return;
  const Obj t(tasks, task_names(), "an object keyed by task name");
  for (int i = 0; i < kNumTasks; ++i) {
    if (const Node n = t.at(kTaskNames[i]); !n.missing()) {
      const Obj task(n, keys_of(task_model_fields()));
      read_fields(task, task_model_fields(), s.mtl.tasks[i]);
    }
  }
}

/// The JSON names of a dimension's term, per fusion form.
std::string_view term_name(FusionForm form, bool is_bias) {
  if (form == FusionForm::kProduct) return is_bias ? "bias" : "pow";
  return is_bias ? "beta" : "alpha";
}

void parse_fusion(const Obj& top, Scenario& s) {
  const Node n = top.at("fusion");
  if (n.missing()) n.fail("an object with at least \"dims\" (the action's dimensions)");
  const Obj o(n, {"form", "fixed", "dims"});
  FusionParams& f = s.fusion;

  if (const Node form = o.at("form"); !form.missing()) {
    const std::string name = form.value->is_string() ? form.value->get<std::string>() : "";
    if (name == "product") f.form = FusionForm::kProduct;
    else if (name == "log_sum") f.form = FusionForm::kLogSum;
    else form.fail("\"product\" (IntegratedRL-MTF Formula 1) or \"log_sum\" (BatchRL-MTF Eq. 1)");
  }
  const bool log_sum = f.form == FusionForm::kLogSum;
  const std::string bias_word = log_sum ? "beta" : "bias";

  if (const Node fixed = o.at("fixed"); !fixed.missing()) {
    const Obj fx(fixed, task_names(), "an object keyed by task name");
    for (int i = 0; i < kNumTasks; ++i) {
      const Node t = fx.at(kTaskNames[i]);
      if (t.missing()) continue;
      const Obj term(t, {"weight", "bias"});
      term.read("weight", f.fixed_weight[i], kCoefficient);
      term.read("bias", f.fixed_bias[i], closed(0, 1000));
    }
  }

  const Node dims = o.at("dims");
  const std::size_t count =
      dims.array("an array of at least 1 dimension {task, term, range}", 1);
  f.dims.clear();
  for (std::size_t i = 0; i < count; ++i) {
    const Node dn = dims.at(i);
    const Obj d(dn, {"task", "term", "range"}, "an object {task, term, range}");
    FusionDim dim;
    const Node task = d.at("task");
    const std::string task_name =
        task.missing() || !task.value->is_string() ? "" : task.value->get<std::string>();
    const auto t = task_from_name(task_name);
    if (!t) {
      const std::string_view near = closest(task_name, task_names());
      task.fail("a task name (" + join_quoted(task_names()) + ")" +
                (near.empty() ? "" : ", did you mean " + in_quotes(near) + "?"));
    }
    dim.task = *t;
    const Node term = d.at("term");
    const std::string term_str =
        term.missing() || !term.value->is_string() ? "" : term.value->get<std::string>();
    if (term_str == term_name(f.form, false)) dim.is_bias = false;
    else if (term_str == term_name(f.form, true)) dim.is_bias = true;
    else {
      term.fail(in_quotes(term_name(f.form, false)) + " or " + in_quotes(term_name(f.form, true)) +
                " (fusion.form is " + (log_sum ? "\"log_sum\"" : "\"product\"") + ")");
    }
    const Node range = d.at("range");
    if (range.missing() || !range.value->is_array() || range.value->size() != 2)
      range.fail("an array [lo, hi] of two numbers");
    const Range term_range = dim.is_bias ? closed(0, 1000) : kCoefficient;
    dim.lo = range.at(std::size_t{0}).number(term_range);
    dim.hi = range.at(std::size_t{1}).number(term_range);
    if (!(dim.lo < dim.hi)) range.fail("an array [lo, hi] with lo < hi");
    for (const FusionDim& prev : f.dims) {
      if (prev.task == dim.task && prev.is_bias == dim.is_bias) {
        dn.fail("each (task, term) at most once in fusion.dims",
                "a second " + in_quotes(task_name) + " " + in_quotes(term_str));
      }
    }
    f.dims.push_back(dim);
  }

  // log(o + beta) is -inf at o = 0, so with log_sum every task that contributes
  // (alpha set by the action or fixed non-zero) needs beta > 0.
  if (log_sum) {
    for (int i = 0; i < kNumTasks; ++i) {
      bool alpha_dim = false, beta_dim = false;
      for (const FusionDim& d : f.dims) {
        if (static_cast<int>(d.task) != i) continue;
        (d.is_bias ? beta_dim : alpha_dim) = true;
        if (d.is_bias && d.lo <= 0) {
          std::size_t k = static_cast<std::size_t>(&d - f.dims.data());
          dims.at(k).at("range").at(std::size_t{0})
              .fail("a number > 0 (log_sum takes log(o + beta), and o can be 0)");
        }
      }
      if ((alpha_dim || f.fixed_weight[i] != 0) && !beta_dim && !(f.fixed_bias[i] > 0)) {
        const Node where = o.at("fixed");
        const std::string path = child_path(child_path("fusion.fixed", kTaskNames[i]), "bias");
        const Node b{nullptr, path, n.origin};
        b.fail("a " + bias_word + " > 0 for task " + in_quotes(kTaskNames[i]) +
                   " (log_sum takes log(o + beta), and o can be 0)",
               show_number(f.fixed_bias[i]) +
                   (where.missing() || where.at(kTaskNames[i]).missing() ||
                            where.at(kTaskNames[i]).at("bias").missing()
                        ? " (the default)"
                        : ""));
      }
    }
  }
}

void parse_reward(const Obj& top, Scenario& s) {
  if (const auto o = block(top, "reward", keys_of(reward_fields())))
    read_fields(*o, reward_fields(), s.reward);
}

void parse_user_model(const Obj& top, Scenario& s) {
  if (const auto o = block(top, "user_model", keys_of(user_model_fields())))
    read_fields(*o, user_model_fields(), s.user_model);
}

void parse_limits(const Obj& top, Scenario& s) {
  if (const auto o = block(top, "limits", keys_of(limits_fields())))
    read_fields(*o, limits_fields(), s.limits);
}

void parse_record(const Obj& top, Scenario& s) {
  const auto o = block(top, "record", {"transitions", "user_days", "index_transitions", "impressions"});
  if (!o) return;
  o->read("transitions", s.record.transitions, {});
  o->read("user_days", s.record.user_days, {});
  o->read("index_transitions", s.record.index_transitions, {});
  o->read("impressions", s.record.impressions, {});
}

// --- Policies: one entry per type; a new type adds a parse function and a row.

void parse_constant_policy(const Obj& o, const Scenario& s, PolicySpec& p) {
  p.kind = PolicyKind::kConstant;
  const Node a = o.at("action");
  const std::size_t d = s.fusion.dims.size();
  const std::string what = "an array of " + std::to_string(d) +
                           " numbers in [-1, 1] (one per fusion.dims entry)";
  if (a.missing() || !a.value->is_array() || a.value->size() != d) {
    std::string got = a.missing() ? "nothing (the key is required)" : show(*a.value);
    if (!a.missing() && a.value->is_array()) got += " (length " + std::to_string(a.value->size()) + ")";
    a.fail(what, got);
  }
  p.action.clear();
  for (std::size_t i = 0; i < d; ++i) p.action.push_back(a.at(i).number(closed(-1, 1)));
}

void parse_baseline_policy(const Obj&, const Scenario&, PolicySpec& p) {
  p.kind = PolicyKind::kBaseline;
}

PolicySpec parse_policy(const Node& n, const Scenario& s);
Json policy_block(const PolicySpec& p);
std::vector<std::string_view> policy_type_names();

/// The "around" block of an exploration policy: a deterministic policy, by
/// default the baseline. Its type is checked before its keys, so a stochastic
/// type is reported as such rather than through one of its own keys.
void parse_around(const Obj& o, const Scenario& s, PolicySpec& p) {
  p.around.clear();
  const Node n = o.at("around");
  if (n.missing()) {
    PolicySpec base;
    base.json = policy_block(base).dump();
    p.around.push_back(std::move(base));
    return;
  }
  const std::string what = "a deterministic policy type: \"constant\" or \"baseline\" (the "
                           "action mu(s) the exploration is around)";
  if (n.value->is_object()) {
    const Node type = n.at("type");
    if (!type.missing() && type.value->is_string()) {
      const std::string name = type.value->get<std::string>();
      const std::vector<std::string_view> names = policy_type_names();
      const bool known = std::find(names.begin(), names.end(), name) != names.end();
      if (known && name != "constant" && name != "baseline") type.fail(what);
    }
  }
  PolicySpec base = parse_policy(n, s);
  assert(is_deterministic(base.kind));
  p.around.push_back(std::move(base));
}

/// The spec an exploration policy is around (the baseline when none was set in code).
PolicySpec around_of(const PolicySpec& p) { return p.around.empty() ? PolicySpec{} : p.around[0]; }

void parse_gaussian_policy(const Obj& o, const Scenario& s, PolicySpec& p) {
  p.kind = PolicyKind::kGaussian;
  o.read("sigma", p.sigma, {0, 10, true, false});
  parse_around(o, s, p);
}

void parse_random_policy(const Obj& o, const Scenario& s, PolicySpec& p) {
  p.kind = PolicyKind::kRandom;
  parse_around(o, s, p);
}

void parse_bounded_uniform_policy(const Obj& o, const Scenario& s, PolicySpec& p) {
  p.kind = PolicyKind::kBoundedUniform;
  const Range half_width = {0, 2, true, false};  // 2 reaches the whole box from any mu
  if (const Node b = o.at("bound"); !b.missing()) {
    if (b.value->is_array()) {
      const std::size_t d = s.fusion.dims.size();
      if (b.value->size() != d) {
        b.fail("a number in (0, 2] or an array of " + std::to_string(d) +
                   " numbers in (0, 2] (one per fusion.dims entry)",
               show(*b.value) + " (length " + std::to_string(b.value->size()) + ")");
      }
      p.bound.clear();
      for (std::size_t i = 0; i < d; ++i) p.bound.push_back(b.at(i).number(half_width));
    } else {
      p.bound = {b.number(half_width)};
    }
  }
  parse_around(o, s, p);
}

void parse_agent_policy(const Obj& o, const Scenario&, PolicySpec& p) {
  p.kind = PolicyKind::kAgent;
  const Node path = o.at("path");
  if (path.missing() || !path.value->is_string() || path.value->get<std::string>().empty())
    path.fail("the agent file (*.mtfa), or the run database that keeps the agent (with \"name\"), as a "
              "non-empty string; relative to the scenario file's folder");
  p.path = path.value->get<std::string>();
  p.agent_name.clear();
  if (const Node name = o.at("name"); !name.missing()) {
    if (!name.value->is_string() || name.value->get<std::string>().empty())
      name.fail("the agent's name in the run database given as \"path\" (mtfsim report lists them)");
    p.agent_name = name.value->get<std::string>();
  }
}

struct PolicyType {
  std::string_view name;
  PolicyKind kind;
  std::vector<std::string_view> keys;  // besides "type"
  void (*parse)(const Obj&, const Scenario&, PolicySpec&);
  void (*write)(Json&, const PolicySpec&);
};

const std::vector<PolicyType>& policy_types() {
  static const std::vector<PolicyType> types = {
      {"constant", PolicyKind::kConstant, {"action"}, parse_constant_policy,
       [](Json& j, const PolicySpec& p) { j["action"] = p.action; }},
      {"baseline", PolicyKind::kBaseline, {}, parse_baseline_policy,
       [](Json&, const PolicySpec&) {}},
      {"gaussian", PolicyKind::kGaussian, {"sigma", "around"}, parse_gaussian_policy,
       [](Json& j, const PolicySpec& p) {
         j["sigma"] = p.sigma;
         j["around"] = policy_block(around_of(p));
       }},
      {"random", PolicyKind::kRandom, {"around"}, parse_random_policy,
       [](Json& j, const PolicySpec& p) { j["around"] = policy_block(around_of(p)); }},
      {"bounded_uniform", PolicyKind::kBoundedUniform, {"bound", "around"},
       parse_bounded_uniform_policy,
       [](Json& j, const PolicySpec& p) {
         j["bound"] = p.bound.size() == 1 ? Json(p.bound[0]) : Json(p.bound);
         j["around"] = policy_block(around_of(p));
       }},
      {"agent", PolicyKind::kAgent, {"path", "name"}, parse_agent_policy,
       [](Json& j, const PolicySpec& p) {
         j["path"] = p.path;
         if (!p.agent_name.empty()) j["name"] = p.agent_name;
       }},
  };
  return types;
}

std::vector<std::string_view> policy_type_names() {
  std::vector<std::string_view> names;
  for (const auto& t : policy_types()) names.push_back(t.name);
  return names;
}

/// The canonical policy block: the type's own keys written from the struct,
/// any other keys kept from the original block in their order.
Json policy_block(const PolicySpec& p) {
  for (const auto& t : policy_types()) {
    if (t.kind != p.kind) continue;
    Json j = p.json.empty() ? Json::object() : Json::parse(p.json);
    // A block of another type (the kind was changed in code) is not reused.
    if (!j.is_object() || !j.contains("type") || j["type"] != t.name) j = Json::object();
    j["type"] = t.name;
    t.write(j, p);
    return j;
  }
  assert(false && "every PolicyKind has an entry in policy_types()");
  return Json::object();
}

PolicySpec parse_policy(const Node& n, const Scenario& s) {
  if (!n.value->is_object()) n.fail("an object {\"type\": ..., ...}");
  const Node type = n.at("type");
  const std::vector<std::string_view> names = policy_type_names();
  const std::string what = "a policy type: " + join_quoted(names);
  if (type.missing() || !type.value->is_string()) type.fail(what);
  const std::string name = type.value->get<std::string>();
  const auto it = std::find_if(policy_types().begin(), policy_types().end(),
                               [&](const PolicyType& t) { return t.name == name; });
  if (it == policy_types().end()) {
    const std::string_view near = closest(name, names);
    type.fail(what + (near.empty() ? "" : " (did you mean " + in_quotes(near) + "?)"));
  }
  std::vector<std::string_view> keys = it->keys;
  keys.insert(keys.begin(), "type");
  const Obj o(n, keys);
  PolicySpec p;
  it->parse(o, s, p);
  p.json = n.value->dump();
  p.json = policy_block(p).dump();  // numbers as the struct holds them: stable round trip
  return p;
}

void parse_groups(const Obj& top, Scenario& s) {
  const Node n = top.at("groups");
  const std::size_t count =
      n.array("an array of at least 1 group {name, share, policy}", 1);
  if (count > 255)  // users store their group in one byte
    n.fail("an array of at most 255 groups", std::to_string(count) + " groups");
  s.groups.clear();
  std::set<std::string> names;
  for (std::size_t i = 0; i < count; ++i) {
    const Node gn = n.at(i);
    const Obj o(gn, {"name", "share", "policy"}, "an object {name, share, policy}");
    GroupSpec g;
    g.name = "group" + std::to_string(i);
    o.read("name", g.name);
    o.read("share", g.share, kShare);
    if (const Node p = o.at("policy"); !p.missing()) {
      g.policy = parse_policy(p, s);
    } else {
      g.policy.json = policy_block(g.policy).dump();
    }
    if (!names.insert(g.name).second) {
      o.at("name").fail("a group name not used before (names must be unique)", in_quotes(g.name));
    }
    s.groups.push_back(std::move(g));
  }
}

// --- Output layout: nlohmann's dump(2) puts every number of an array on its own
// line; a scenario reads better with short containers of scalars on one line.

/// One-line form with a space after ':' and ','.
std::string one_line(const Json& v) {
  if (!v.is_structured()) return v.dump();
  std::string out = v.is_object() ? "{" : "[";
  bool first = true;
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!first) out += ", ";
    first = false;
    if (v.is_object()) out += Json(it.key()).dump() + ": ";
    out += one_line(*it);
  }
  return out + (v.is_object() ? "}" : "]");
}

/// Scalars, or containers of scalars or of arrays of scalars.
bool is_flat(const Json& v, int depth = 0) {
  if (!v.is_structured()) return true;
  if (depth == 2 || (depth == 1 && v.is_object())) return false;
  return std::all_of(v.begin(), v.end(), [&](const Json& c) { return is_flat(c, depth + 1); });
}

void write_pretty(const Json& v, std::size_t indent, std::size_t prefix, std::string& out) {
  constexpr std::size_t kWidth = 100;
  if (!v.is_structured() || v.empty() ||
      (is_flat(v) && indent + prefix + one_line(v).size() <= kWidth)) {
    out += one_line(v);
    return;
  }
  out += v.is_object() ? "{\n" : "[\n";
  bool first = true;
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!first) out += ",\n";
    first = false;
    out.append(indent + 2, ' ');
    std::string key;
    if (v.is_object()) key = Json(it.key()).dump() + ": ";
    out += key;
    write_pretty(*it, indent + 2, key.size(), out);
  }
  out += "\n";
  out.append(indent, ' ');
  out += v.is_object() ? "}" : "]";
}

}  // namespace

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

Scenario parse_scenario(const std::string& json_text, const std::string& origin) {
  const json_reader::Source source{origin, &json_reader::raise_as<ScenarioError>};
  const Json doc = json_reader::parse(json_text, source);
  const Node root{&doc, "", &source};
  const Obj top(root,
                {"name", "seed", "days", "population", "catalogue", "retrieval", "mtl", "fusion",
                 "reward", "user_model", "groups", "record", "limits", "experiment"},
                "a JSON object (the scenario)");
  Scenario s;
  top.read("name", s.name);
  if (const Node n = top.at("seed"); !n.missing()) {
    if (!n.value->is_number_integer() || n.value->is_number_float() ||
        (!n.value->is_number_unsigned() && n.value->get<std::int64_t>() < 0)) {
      n.fail("an integer in [0, 18446744073709551615]");
    }
    s.seed = n.value->get<std::uint64_t>();
  }
  top.read("days", s.days, int_range(1, 3650));
  // Order matters: later blocks are checked against earlier ones (segments
  // against catalogue.topics, retrieval against catalogue.items, policies
  // against fusion.dims).
  parse_catalogue(top, s);
  parse_population(top, s);
  parse_retrieval(top, s);
  parse_mtl(top, s);
  parse_fusion(top, s);
  parse_reward(top, s);
  parse_user_model(top, s);
  parse_groups(top, s);
  parse_record(top, s);
  parse_limits(top, s);
  // The experiment block is validated by the protocol engine (experiments/),
  // which knows the agents; here it only has to be an object.
  if (const Node n = top.at("experiment"); !n.missing()) {
    if (!n.value->is_object()) n.fail("an object (the experiment protocol, see docs/experiments.md)");
    s.experiment_json = n.value->dump();
  }
  return s;
}

Scenario load_scenario(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw ScenarioError(path.string() + ": is a directory, not a scenario file (check the path)");
  if (std::filesystem::is_regular_file(path, ec) && std::filesystem::file_size(path, ec) == 0 && !ec)
    throw ScenarioError(path.string() + ": the scenario file is empty (expected a JSON object)");
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw ScenarioError(path.string() + ": cannot read the scenario file (" +
                        std::strerror(errno) + "): check the path");
  }
  std::ostringstream text;
  text << in.rdbuf();
  Scenario s = parse_scenario(text.str(), path.string());
  // Agent policies name their files relative to the scenario file.
  for (GroupSpec& g : s.groups)
    if (g.policy.kind == PolicyKind::kAgent) g.policy.base_dir = path.parent_path().string();
  return s;
}

std::string scenario_to_json(const Scenario& s) {
  Json j;
  j["name"] = s.name;
  j["seed"] = s.seed;
  j["days"] = s.days;

  Json& pop = j["population"];
  pop["size"] = s.population.size;
  pop["segments"] = Json::array();
  for (const SegmentParams& seg : s.population.segments) {
    Json g;
    g["name"] = seg.name;
    g["share"] = seg.share;
    g["age_mix"] = seg.age_mix;
    write_fields(g, segment_fields(), seg);
    pop["segments"].push_back(std::move(g));
  }

  write_fields(j["catalogue"], catalogue_fields(), s.catalogue);
  write_fields(j["retrieval"], retrieval_fields(), s.retrieval);

  Json& tasks = j["mtl"]["tasks"];
  for (int i = 0; i < kNumTasks; ++i)
    write_fields(tasks[std::string(kTaskNames[i])], task_model_fields(), s.mtl.tasks[i]);

  Json& f = j["fusion"];
  f["form"] = s.fusion.form == FusionForm::kProduct ? "product" : "log_sum";
  for (int i = 0; i < kNumTasks; ++i) {
    Json& t = f["fixed"][std::string(kTaskNames[i])];
    t["weight"] = s.fusion.fixed_weight[i];
    t["bias"] = s.fusion.fixed_bias[i];
  }
  f["dims"] = Json::array();
  for (const FusionDim& d : s.fusion.dims) {
    Json dj;
    dj["task"] = kTaskNames[static_cast<int>(d.task)];
    dj["term"] = term_name(s.fusion.form, d.is_bias);
    dj["range"] = {d.lo, d.hi};
    f["dims"].push_back(std::move(dj));
  }

  write_fields(j["reward"], reward_fields(), s.reward);
  write_fields(j["user_model"], user_model_fields(), s.user_model);

  j["groups"] = Json::array();
  for (const GroupSpec& g : s.groups) {
    Json gj;
    gj["name"] = g.name;
    gj["share"] = g.share;
    gj["policy"] = policy_block(g.policy);
    j["groups"].push_back(std::move(gj));
  }
  j["record"]["transitions"] = s.record.transitions;
  j["record"]["user_days"] = s.record.user_days;
  j["record"]["index_transitions"] = s.record.index_transitions;
  j["record"]["impressions"] = s.record.impressions;
  write_fields(j["limits"], limits_fields(), s.limits);
  if (!s.experiment_json.empty()) j["experiment"] = Json::parse(s.experiment_json);
  std::string out;
  write_pretty(j, 0, 0, out);
  return out + "\n";
}

}  // namespace mtf
