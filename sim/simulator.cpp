// The day loop, the block kernel and the ordered parallel merge (see simulator.h).
// A block-day is a Simulator::Block: event dispatch with deferred, batched
// policy calls, the user's session handlers, and the row builders.
#include "sim/simulator.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <thread>
#include <type_traits>

#include "core/bytes.h"
#include "metrics/reward.h"
#include "sim/event_queue.h"
#include "sim/fusion.h"
#include "sim/policies.h"
#include "sim/ranker.h"
#include "sim/state_features.h"

#ifndef MTF_VERSION
#define MTF_VERSION "0.0.0"
#endif

namespace mtf {

const char* git_revision();  // generated at build time (cmake/git_revision.cmake)

std::string code_version() { return std::string(MTF_VERSION) + "+" + git_revision(); }

int assign_group(std::uint64_t seed, std::int64_t user, const std::vector<GroupSpec>& groups) {
  double total = 0;
  for (const auto& g : groups) total += g.share;
  const std::uint64_t h = derive_seed(seed, Stream::kGroupAssignment, static_cast<std::uint64_t>(user));
  double x = static_cast<double>(h >> 11) * 0x1.0p-53 * total;
  for (std::size_t i = 0; i + 1 < groups.size(); ++i) {
    if (x < groups[i].share) return static_cast<int>(i);
    x -= groups[i].share;
  }
  return static_cast<int>(groups.size()) - 1;
}

/// Per-user bookkeeping for one block-day.
struct UserSlot {
  bool queued = false;  // an event of the user is in the queue (at most one: see Simulator::Block)
  Rng env, ret, pol;  // the user's reaction, retrieval and policy streams for this day
  std::uint64_t mtl_key = 0;  // keys the user's fixed MTL errors
  std::vector<float> state, action, baseline, lower, upper;
  std::vector<float> next_state;  // s' of the latest request, before TransitionColumns::push stores it
  double log_density = 0;
  bool has_baseline = false, has_bounds = false;
  std::vector<ItemView> views;
  std::vector<ItemFeedback> feedback;
  BehaviourCounts counts;  // of the pending request
  double request_time = 0;
  // Day totals.
  bool active = false, returned = false;
  int sessions = 0, requests = 0, first_count = 0, capped = 0;
  double reward = 0, first_reward = 0;
  double discounted = 0;   // in-session discounted returns of the day's requests
  double chained = 0;      // sum over the day's requests j (from 0) of gamma^j r_j
  // UserTotals::chained_session_return on the window's first day: w_j = gamma
  // w_(j-1) + [request j starts a session] from w_(-1) = 0, session_chained the
  // sum of w_j r_j, session_weight the last w_j (later days add only the carry).
  double session_chained = 0, session_weight = 0;
  double last_reward = 0;  // of the user's latest request (Simulator::Stepper reads it)
  BehaviourCounts day;
  TransitionColumns transitions;  // reused across blocks: no allocation per row
  std::vector<SessionRow> sessions_rows;
  std::vector<ImpressionRow> impressions;
};

struct Simulator::BlockOut {
  // One entry per user active this day, in user order: the caller folds them into
  // the group totals in that order, so sums do not depend on the block size.
  struct ActiveUser {
    std::int64_t user;
    int group;
    bool returned;  // active yesterday too
    int sessions, requests, first_count, capped;
    double reward, first_reward, discounted, chained, session_chained, session_weight;
    BehaviourCounts counts;
  };
  std::vector<ActiveUser> active;
  std::int64_t requests = 0;
  RecordBatch batch;
  bool ready = false;
};

struct Simulator::ThreadScratch {
  Ranker::Workspace ws;
  std::vector<UserSlot> slots;
  std::vector<int> top;
  // Deferred requests: per group, the block's users waiting for an action, and
  // the buffers of one act_batch call (row r: the r-th waiting user).
  std::vector<std::vector<std::uint32_t>> pending;
  std::vector<float> states, actions;
  std::vector<Rng*> rngs;
  std::vector<ActionInfo> infos;
  std::vector<ActionInfo*> info_ptrs;
};

namespace {
/// The users a rank holds under `s` (every user without sharding).
UserShard user_shard(const UserSharding& s) {
  if (s.ranks == nullptr || s.ranks->size() <= 1) return {};
  if (s.block_users < 1)
    throw std::invalid_argument("Simulator: UserSharding::block_users must be >= 1, got " +
                                std::to_string(s.block_users));
  return UserShard{s.block_users, s.ranks->size(), s.ranks->rank()};
}
}  // namespace

Simulator::Simulator(Scenario scenario, std::vector<PolicyPtr> policies, std::uint64_t user_seed,
                     UserSharding sharding)
    : scenario_(std::move(scenario)),
      catalogue_(std::make_unique<Catalogue>(scenario_.catalogue, scenario_.seed)),
      population_(std::make_unique<Population>(scenario_.population, scenario_.catalogue.topics,
                                               user_seed ? user_seed : scenario_.seed, user_shard(sharding))),
      model_(scenario_.user_model),
      ranker_(std::make_unique<Ranker>(*catalogue_, scenario_.retrieval, scenario_.mtl, model_)),
      policies_(std::move(policies)),
      user_seed_(user_seed ? user_seed : scenario_.seed) {
  if (!population_->shard().all()) {
    shards_ = sharding.ranks;
    shard_block_ = sharding.block_users;
  }
  if (policies_.empty())
    for (const auto& g : scenario_.groups) policies_.push_back(make_policy(g.policy, scenario_));
  if (policies_.size() != scenario_.groups.size())
    throw ScenarioError("simulator: " + std::to_string(policies_.size()) + " policies for " +
                        std::to_string(scenario_.groups.size()) + " groups");
  for (std::size_t g = 0; g < policies_.size(); ++g)
    if (policies_[g]->action_dim() != scenario_.action_dim())
      throw ScenarioError("groups[" + std::to_string(g) + "].policy: produces actions of dimension " +
                          std::to_string(policies_[g]->action_dim()) + ", the fusion block has " +
                          std::to_string(scenario_.action_dim()) + " dims");
  if (scenario_.groups.size() > 255 || population_->segments().size() > 255)
    throw ScenarioError("simulator: at most 255 groups and 255 segments (stored in one byte per user)");
  const auto n = static_cast<std::size_t>(population_->size());
  group_.resize(n);
  group_users_.assign(scenario_.groups.size(), 0);
  for (std::size_t u = 0; u < n; ++u) {
    group_[u] = static_cast<std::uint8_t>(assign_group(user_seed_, static_cast<std::int64_t>(u), scenario_.groups));
    ++group_users_[group_[u]];
  }
}

Simulator::~Simulator() = default;

std::vector<GroupRow> Simulator::group_rows() const {
  std::vector<GroupRow> rows;
  for (std::size_t g = 0; g < scenario_.groups.size(); ++g)
    rows.push_back(GroupRow{static_cast<int>(g), scenario_.groups[g].name, scenario_.groups[g].share,
                            policies_[g]->name(), scenario_.groups[g].policy.json, group_users_[g]});
  return rows;
}

RunInfo Simulator::run_info(const std::string& version, int threads) const {
  RunInfo info;
  info.scenario_name = scenario_.name;
  info.scenario_json = scenario_to_json(scenario_);
  info.seed = scenario_.seed;
  info.code_version = version;
  info.state_dim = kStateDim;
  info.action_dim = scenario_.action_dim();
  for (const auto& f : kStateFeatures) info.state_features.emplace_back(f.name);
  info.action_names = action_names(scenario_.fusion);
  info.threads = threads;
  return info;
}

/// One block of users on one day. Event dispatch (run, dispatch), the user's
/// session bookkeeping (the on_* handlers, with the UserState updates in
/// UserModel) and the building of rows (the *_row functions, merge) are apart.
///
/// Requests are deferred so that policies act on batches: a request builds the
/// user's state and puts the user on its group's pending list; when nothing else
/// can happen before the day boundary (every user of the block waits for an
/// action or is done for the day), each group's policy acts once for all its
/// pending users (Policy::act_batch), and each request is finished (retrieve,
/// predict, fuse, select, react) and its feedback scheduled at the request's own
/// time plus the dwell time, after a rewind of the queue's clock. Users are
/// independent given the policies (each draws from its own streams; the
/// catalogue and the policies are read-only), a user has at most one event
/// pending, and the interests drift at the boundary only once every event
/// before it has run, so every user sees exactly the event times and the
/// states of the undeferred kernel: results are bit-identical to it.
struct Simulator::Block {
  Simulator& sim;
  const Scenario& sc;
  ThreadScratch& scratch;
  BlockOut& out;
  const int day;
  const std::int64_t begin;
  const std::size_t n;
  const bool record, rec_transitions;
  const int d;
  const double day_start, day_end;
  const int max_requests;        // the scenario's limits: a session ends at either cap
  const double max_session_s;
  /// One per group: who answers the deferred requests (the simulator's group
  /// policies, or a Stepper's actions from outside).
  std::span<const PolicyPtr> policies;
  EventQueue q;
  std::size_t pending = 0;  // requests waiting for an action, over all groups

  Block(Simulator& s, ThreadScratch& scr, BlockOut& o, int dy, std::int64_t b, std::int64_t e, bool rec)
      : sim(s),
        sc(s.scenario_),
        scratch(scr),
        out(o),
        day(dy),
        begin(b),
        n(static_cast<std::size_t>(e - b)),
        record(rec),
        rec_transitions(rec && s.scenario_.record.transitions),
        d(s.scenario_.action_dim()),
        day_start(dy * kSecondsPerDay),
        day_end(dy * kSecondsPerDay + kSecondsPerDay),
        max_requests(s.scenario_.limits.max_session_requests),
        max_session_s(s.scenario_.limits.max_session_hours * 3600.0),
        policies(s.policies_) {}

  std::span<const int> neighbours(int t) const {
    const TopicGraph& g = sim.catalogue_->graph;
    return {g.neighbours_begin(t), g.neighbours_end(t)};
  }
  bool rec_impressions(int g) const {
    return record && (sc.record.impressions || (static_cast<std::size_t>(g) < sim.impression_groups_.size() &&
                                                sim.impression_groups_[static_cast<std::size_t>(g)]));
  }
  std::int64_t user(std::uint32_t i) const { return begin + i; }
  int group(std::uint32_t i) const { return sim.group_[static_cast<std::size_t>(user(i))]; }

  // --- event dispatch
  /// Schedules user i's next event. A user has at most one event queued (or one
  /// request pending): the deferred requests rely on it, so it is asserted.
  void schedule(std::uint32_t i, SimTime time, EventKind kind) {
    assert(!scratch.slots[i].queued && "a user has at most one event in the queue");
    scratch.slots[i].queued = true;
    q.schedule(time, Event{kind, i});
  }
  void setup();
  void run();
  bool advance();
  void dispatch(const Event& ev);
  void flush_requests();

  // --- a user's session
  void on_session_start(std::uint32_t i, double now);
  void on_request(std::uint32_t i, double now);
  void finish_request(std::uint32_t i);
  void on_feedback(std::uint32_t i, double now);
  void on_session_end(std::uint32_t i, double now);
  void on_day_boundary();

  // --- rows
  void impression_row(std::uint32_t i, int position, int item, const ItemFeedback& fb);
  void transition_row(std::uint32_t i, double reward, bool done, double now);
  void session_row(std::uint32_t i, double now);
  void merge();
};

void Simulator::Block::setup() {
  out.active.clear();
  out.requests = 0;
  out.batch = RecordBatch{};
  out.batch.transition_columns.state_dim = kStateDim;
  out.batch.transition_columns.action_dim = d;
  const int shown = sc.retrieval.shown;
  auto& slots = scratch.slots;
  if (slots.size() < n) slots.resize(n);
  scratch.top.resize(static_cast<std::size_t>(shown));
  scratch.pending.resize(sc.groups.size());
  for (auto& p : scratch.pending) p.clear();
  q.reset(day_start);
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t u = begin + static_cast<std::int64_t>(i);
    UserSlot& s = slots[i];
    const std::uint64_t su = static_cast<std::uint64_t>(u);
    s.env.reseed(derive_seed(sim.user_seed_, Stream::kUserBehaviour, su, static_cast<std::uint64_t>(day)));
    s.ret.reseed(derive_seed(sim.user_seed_, Stream::kRetrieval, su, static_cast<std::uint64_t>(day)));
    s.pol.reseed(derive_seed(sim.user_seed_, Stream::kPolicy, su, static_cast<std::uint64_t>(day)));
    s.mtl_key = derive_seed(sim.user_seed_, Stream::kMtlNoise, su);
    s.state.resize(kStateDim);
    for (auto* v : {&s.action, &s.baseline, &s.lower, &s.upper}) v->resize(static_cast<std::size_t>(d));
    s.views.resize(static_cast<std::size_t>(shown));
    s.feedback.resize(static_cast<std::size_t>(shown));
    s.active = s.returned = s.queued = false;
    s.sessions = s.requests = s.first_count = s.capped = 0;
    s.reward = s.first_reward = s.discounted = s.chained = s.session_chained = s.session_weight = 0;
    s.day = {};
    s.transitions.clear();
    s.transitions.state_dim = kStateDim;
    s.transitions.action_dim = d;
    s.sessions_rows.clear();
    s.impressions.clear();
    UserState& st = sim.population_->state(u);
    if (day == 0 && st.sessions_total == 0 && st.next_session < 0)
      st.next_session = sim.model_.first_session_start(sim.population_->profile(u), s.env);
    if (st.next_session >= 0 && st.next_session < day_end)
      schedule(static_cast<std::uint32_t>(i), std::max(st.next_session, day_start), EventKind::kSessionStart);
  }
  q.schedule(day_end, Event{EventKind::kDayBoundary, 0});
}

void Simulator::Block::run() {
  setup();
  while (advance()) flush_requests();
  merge();
}

bool Simulator::Block::advance() {
  for (;;) {
    // Everything up to the boundary (or, after it, to the end); requests wait.
    while (!q.empty() && q.next_event().kind != EventKind::kDayBoundary) dispatch(q.pop());
    if (pending > 0) return true;
    if (q.empty()) return false;
    dispatch(q.pop());  // the day boundary: every event before it has run
  }
}

void Simulator::Block::dispatch(const Event& ev) {
  const double now = q.now();
  if (ev.kind != EventKind::kDayBoundary) scratch.slots[ev.subject].queued = false;
  switch (ev.kind) {
    case EventKind::kSessionStart: on_session_start(ev.subject, now); break;
    case EventKind::kRequest: on_request(ev.subject, now); break;
    case EventKind::kFeedback: on_feedback(ev.subject, now); break;
    case EventKind::kSessionEnd: on_session_end(ev.subject, now); break;
    case EventKind::kDayBoundary: on_day_boundary(); break;
  }
}

void Simulator::Block::flush_requests() {
  // Feedback goes at each request's own time, earlier than events of other users
  // that ran meanwhile: rewind to the earliest waiting request (class comment).
  double earliest = q.now();
  for (const auto& p : scratch.pending)
    for (const std::uint32_t i : p) earliest = std::min(earliest, scratch.slots[i].request_time);
  q.rewind(earliest);
  constexpr std::size_t S = kStateDim;
  const auto A = static_cast<std::size_t>(d);
  for (std::size_t g = 0; g < scratch.pending.size(); ++g) {
    std::vector<std::uint32_t>& users = scratch.pending[g];
    if (users.empty()) continue;
    const std::size_t m = users.size();
    scratch.states.resize(m * S);
    scratch.actions.resize(m * A);
    scratch.rngs.resize(m);
    scratch.infos.resize(m);
    scratch.info_ptrs.resize(m);
    for (std::size_t r = 0; r < m; ++r) {
      UserSlot& s = scratch.slots[users[r]];
      std::copy(s.state.begin(), s.state.end(), scratch.states.begin() + static_cast<std::ptrdiff_t>(r * S));
      scratch.rngs[r] = &s.pol;
      ActionInfo& info = scratch.infos[r] = ActionInfo{};
      info.baseline = s.baseline;
      info.lower = s.lower;
      info.upper = s.upper;
      scratch.info_ptrs[r] = &info;
    }
    policies[g]->act_batch(scratch.states, scratch.actions, scratch.rngs, scratch.info_ptrs);
    for (std::size_t r = 0; r < m; ++r) {
      UserSlot& s = scratch.slots[users[r]];
      const auto a = scratch.actions.begin() + static_cast<std::ptrdiff_t>(r * A);
      std::copy(a, a + static_cast<std::ptrdiff_t>(A), s.action.begin());
      s.has_baseline = scratch.infos[r].has_baseline;
      s.has_bounds = scratch.infos[r].has_bounds;
      s.log_density = scratch.infos[r].log_density;
    }
    for (const std::uint32_t i : users) finish_request(i);
    pending -= m;
    users.clear();
  }
}

void Simulator::Block::on_session_start(std::uint32_t i, double now) {
  UserSlot& s = scratch.slots[i];
  UserState& st = sim.population_->state(user(i));
  sim.model_.start_session(st, now, s.sessions);
  if (!s.active) {
    s.active = true;
    s.returned = UserModel::mark_active(st, day);
  }
  ++s.sessions;
  schedule(i, now, EventKind::kRequest);
}

void Simulator::Block::on_request(std::uint32_t i, double now) {
  UserSlot& s = scratch.slots[i];
  const std::int64_t u = user(i);
  build_state(sim.population_->profile(u), sim.population_->state(u), now, s.state);
  s.request_time = now;
  scratch.pending[static_cast<std::size_t>(group(i))].push_back(i);
  ++pending;
}

void Simulator::Block::finish_request(std::uint32_t i) {
  UserSlot& s = scratch.slots[i];
  const std::int64_t u = user(i);
  const UserState& st = sim.population_->state(u);
  const UserProfile& prof = sim.population_->profile(u);
  std::span<float> interests = sim.population_->interests(u);
  const Ranker& ranker = *sim.ranker_;
  const FusionWeights w = weights_from_action(sc.fusion, s.action);
  const ResponseCoeffs k = sim.model_.coeffs(prof, st);
  ranker.retrieve(interests, s.ret, scratch.ws);
  ranker.predict(k, s.mtl_key, interests, scratch.ws);
  ranker.fuse(w, scratch.ws);
  const int got = ranker.select_top(scratch.ws, scratch.top);
  const bool impressions = rec_impressions(group(i));
  s.counts = {};
  for (int j = 0; j < got; ++j) {
    const int item = scratch.ws.items[static_cast<std::size_t>(scratch.top[static_cast<std::size_t>(j)])];
    const ItemView& v = s.views[static_cast<std::size_t>(j)] = sim.catalogue_->view[static_cast<std::size_t>(item)];
    const ItemFeedback fb = sim.model_.react(k, prof, v, interests[static_cast<std::size_t>(v.topic)], s.env);
    s.feedback[static_cast<std::size_t>(j)] = fb;
    if (impressions) impression_row(i, j, item, fb);
    s.counts += counts_of(fb);
  }
  ++out.requests;
  schedule(i, s.request_time + s.counts.dwell_seconds, EventKind::kFeedback);
}

void Simulator::Block::on_feedback(std::uint32_t i, double now) {
  UserSlot& s = scratch.slots[i];
  const std::int64_t u = user(i);
  UserState& st = sim.population_->state(u);
  const UserProfile& prof = sim.population_->profile(u);
  const int got = s.counts.shown;
  sim.model_.absorb(st, prof.taste_long, sim.population_->interests(u),
                    std::span<const ItemView>(s.views.data(), static_cast<std::size_t>(got)),
                    std::span<const ItemFeedback>(s.feedback.data(), static_cast<std::size_t>(got)),
                    [this](int t) { return neighbours(t); });
  const double r = reward_of(sc.reward, s.counts);
  if (st.requests_in_session == 0) {
    s.first_reward += r;
    ++s.first_count;
  }
  // gamma^k for the session's k-th request (k from 0): a session that goes on
  // past midnight keeps counting, since the user's state holds k.
  s.discounted += std::pow(sim.return_gamma_, st.requests_in_session) * r;
  // The day's requests chained across sessions (UserTotals::chained_return
  // shifts them by the user's requests on earlier days).
  s.chained += std::pow(sim.return_gamma_, s.requests) * r;
  s.session_weight = sim.return_gamma_ * s.session_weight + (st.requests_in_session == 0 ? 1.0 : 0.0);
  s.session_chained += s.session_weight * r;
  UserModel::record_request(st, s.counts, r);
  ++s.requests;
  s.reward += r;
  s.last_reward = r;
  s.day += s.counts;
  // The caps are checked before the user's own draw, which they leave alone
  // when they do not bind: results of sessions below the caps do not move.
  const bool capped = st.requests_in_session >= max_requests || now - st.session_start >= max_session_s;
  const bool leave = capped || s.env.uniform01d() < sim.model_.leave_probability(prof, st);
  s.capped += capped;
  if (rec_transitions) transition_row(i, r, leave, now);
  schedule(i, now, leave ? EventKind::kSessionEnd : EventKind::kRequest);
}

void Simulator::Block::on_session_end(std::uint32_t i, double now) {
  if (record) session_row(i, now);
  UserSlot& s = scratch.slots[i];
  const std::int64_t u = user(i);
  const double next = sim.model_.end_session(sim.population_->profile(u), sim.population_->state(u), now, s.env);
  if (next < day_end) schedule(i, next, EventKind::kSessionStart);
}

void Simulator::Block::on_day_boundary() {
  // Interests drift along the topic graph once a day (own stream: independent of event order).
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t u = begin + static_cast<std::int64_t>(i);
    Rng drift(sim.user_seed_, Stream::kInterestDrift, static_cast<std::uint64_t>(u), static_cast<std::uint64_t>(day));
    sim.model_.drift_interests(sim.population_->interests(u), drift, [this](int t) { return neighbours(t); });
  }
}

void Simulator::Block::impression_row(std::uint32_t i, int position, int item, const ItemFeedback& fb) {
  UserSlot& s = scratch.slots[i];
  const UserState& st = sim.population_->state(user(i));
  ImpressionRow& row = s.impressions.emplace_back();
  row.user = user(i);
  row.session = st.sessions_total;
  row.step = st.requests_in_session;
  row.group = group(i);
  row.position = position;
  row.item = item;
  row.valid = fb.valid;
  row.reward = static_cast<float>(reward_of(sc.reward, counts_of(fb)));
  for (int t = 0; t < kNumTasks; ++t)
    row.pred[t] = scratch.ws.pred[t][static_cast<std::size_t>(scratch.top[static_cast<std::size_t>(position)])];
}

void Simulator::Block::transition_row(std::uint32_t i, double reward, bool done, double now) {
  UserSlot& s = scratch.slots[i];
  const std::int64_t u = user(i);
  const UserState& st = sim.population_->state(u);
  TransitionColumns::Row row;
  row.user = u;
  row.session = st.sessions_total;
  row.step = st.requests_in_session - 1;
  row.set_group(group(i));
  row.time = s.request_time;
  row.reward = static_cast<float>(reward);
  row.done = done;
  row.counts = RequestCounts::of(s.counts);
  row.has_baseline = s.has_baseline;
  if (std::isfinite(s.log_density)) row.log_density = s.log_density;
  s.next_state.resize(kStateDim);
  build_state(sim.population_->profile(u), st, now, s.next_state);
  // Within a session the next request's state is built from the same user
  // state at the same moment: push() then keeps one copy.
  const std::span<const float> none;
  s.transitions.push(row, s.state, s.action, s.next_state, s.baseline, s.has_bounds ? s.lower : none,
                     s.has_bounds ? s.upper : none);
}

void Simulator::Block::session_row(std::uint32_t i, double now) {
  const UserState& st = sim.population_->state(user(i));
  SessionRow row;
  row.user = user(i);
  row.session = st.sessions_total;
  row.group = group(i);
  row.day = day;
  row.start_time = st.session_start;
  row.end_time = now;
  row.requests = st.requests_in_session;
  row.reward = st.session_reward;
  row.counts = st.session;
  scratch.slots[i].sessions_rows.push_back(row);
}

void Simulator::Block::merge() {
  // In user order: totals and rows do not depend on event interleaving.
  auto& slots = scratch.slots;
  if (rec_transitions) {
    std::size_t rows = 0, bounded = 0;
    for (std::size_t i = 0; i < n; ++i) {
      rows += slots[i].transitions.size();
      bounded += slots[i].transitions.bounds_slots();
    }
    TransitionColumns& c = out.batch.transition_columns;
    c.rows.reserve(rows);
    c.state.reserve(rows * kStateDim);
    for (auto* v : {&c.action, &c.baseline}) v->reserve(rows * static_cast<std::size_t>(d));
    for (auto* v : {&c.lower, &c.upper}) v->reserve(bounded * static_cast<std::size_t>(d));
  }
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t u = begin + static_cast<std::int64_t>(i);
    const int g = sim.group_[static_cast<std::size_t>(u)];
    UserSlot& s = slots[i];
    if (s.active)
      out.active.push_back(
          {u, g, s.returned, s.sessions, s.requests, s.first_count, s.capped, s.reward, s.first_reward, s.discounted, s.chained,
           s.session_chained, s.session_weight, s.day});
    if (!record) continue;
    for (auto& row : s.sessions_rows) out.batch.sessions.push_back(std::move(row));
    out.batch.impressions.insert(out.batch.impressions.end(), s.impressions.begin(), s.impressions.end());
    if (rec_transitions) out.batch.transition_columns.append(s.transitions);
    if (s.active && sc.record.user_days) {
      UserDayRow row;
      row.user = u;
      row.day = day;
      row.group = g;
      row.segment = sim.population_->profile(u).segment;
      row.sessions = s.sessions;
      row.requests = s.requests;
      row.reward = s.reward;
      row.counts = s.day;
      out.batch.user_days.push_back(row);
    }
  }
}

void Simulator::simulate_block(int day, std::int64_t begin, std::int64_t end, bool record,
                               ThreadScratch& scratch, BlockOut& out) {
  Block block(*this, scratch, out, day, begin, end, record);
  block.run();
}

namespace {
/// Answers every request with the action a Stepper was given for its one user.
class GivenAction final : public Policy {
 public:
  explicit GivenAction(const std::vector<float>& action) : action_(action) {}
  std::string name() const override { return "external"; }
  int action_dim() const override { return static_cast<int>(action_.size()); }
  void act(std::span<const float>, std::span<float> action, Rng&, ActionInfo*) const override {
    std::copy(action_.begin(), action_.end(), action.begin());
  }

 private:
  const std::vector<float>& action_;
};
}  // namespace

struct Simulator::Stepper::Slot {
  std::int64_t user = 0;
  ThreadScratch scratch;
  BlockOut out;
  std::vector<float> action, next_state;
  std::vector<PolicyPtr> policies;  // every group's: the GivenAction of `action`
  std::optional<Block> block;       // today's block of this one user
};

Simulator::Stepper::Stepper(Simulator& sim, std::vector<std::int64_t> users) : sim_(sim) {
  if (sim.day_ > 0 || sim.stepped_)
    throw std::logic_error("Simulator::Stepper: the simulator was already run or stepped; build a new one");
  if (sim.shards_) throw std::logic_error("Simulator::Stepper: steps one process's users; build it without UserSharding");
  if (!sim.scenario_.record.transitions)
    throw std::logic_error("Simulator::Stepper: the scenario must record transitions (record.transitions)");
  if (users.empty()) throw std::invalid_argument("Simulator::Stepper: no users to step");
  std::vector<bool> seen(static_cast<std::size_t>(sim.population_->size()), false);
  for (const std::int64_t u : users) {
    if (u < 0 || u >= sim.population_->size())
      throw std::invalid_argument("Simulator::Stepper: user " + std::to_string(u) + " is not in the population of " +
                                  std::to_string(sim.population_->size()));
    if (seen[static_cast<std::size_t>(u)])
      throw std::invalid_argument("Simulator::Stepper: user " + std::to_string(u) + " is listed twice");
    seen[static_cast<std::size_t>(u)] = true;
  }
  sim.stepped_ = true;
  const auto d = static_cast<std::size_t>(sim.scenario_.action_dim());
  for (const std::int64_t u : users) {
    auto& slot = *slots_.emplace_back(std::make_unique<Slot>());
    slot.user = u;
    slot.action.assign(d, 0.0f);
    slot.next_state.assign(kStateDim, 0.0f);
    slot.policies.assign(sim.scenario_.groups.size(), std::make_shared<GivenAction>(slot.action));
    start_day(slot, 0);
    while (!slot.block->advance()) start_day(slot, slot.block->day + 1);
  }
}

Simulator::Stepper::~Stepper() = default;

void Simulator::Stepper::start_day(Slot& slot, int day) {
  slot.block.emplace(sim_, slot.scratch, slot.out, day, slot.user, slot.user + 1, /*record=*/true);
  slot.block->policies = slot.policies;
  slot.block->setup();
}

std::span<const float> Simulator::Stepper::state(std::size_t k) const {
  return slots_[k]->scratch.slots[0].state;
}

Simulator::Stepper::Request Simulator::Stepper::request(std::size_t k) const {
  const Slot& slot = *slots_[k];
  const UserState& st = sim_.population_->state(slot.user);
  return Request{slot.user, st.sessions_total, st.requests_in_session, slot.block->day,
                 slot.scratch.slots[0].request_time};
}

Simulator::Stepper::Outcome Simulator::Stepper::step(std::size_t k, std::span<const float> action) {
  Slot& slot = *slots_[k];
  assert(slot.block->pending == 1 && action.size() == slot.action.size());
  std::copy(action.begin(), action.end(), slot.action.begin());
  UserSlot& user = slot.scratch.slots[0];
  user.transitions.clear();
  user.sessions_rows.clear();
  slot.block->flush_requests();
  // The request's transition row is written at its feedback, before anything
  // else of the user (its session's end, a next day's setup) can happen.
  Outcome o;
  bool seen = false;
  const auto take = [&] {
    if (seen || user.transitions.size() == 0) return;
    const TransitionColumns& tc = user.transitions;
    const std::span<const float> s_next = tc.next_state_of(0);
    std::copy(s_next.begin(), s_next.end(), slot.next_state.begin());
    o.reward = user.last_reward;
    o.done = tc.rows[0].done;
    seen = true;
  };
  while (!slot.block->advance()) {
    take();
    start_day(slot, slot.block->day + 1);
  }
  take();
  assert(seen);
  o.next_state = slot.next_state;
  return o;
}

void Simulator::set_policy(int group, PolicyPtr policy) {
  if (group < 0 || static_cast<std::size_t>(group) >= policies_.size())
    throw std::out_of_range("Simulator::set_policy: group " + std::to_string(group) + " of " +
                            std::to_string(policies_.size()));
  if (!policy || policy->action_dim() != scenario_.action_dim())
    throw ScenarioError("Simulator::set_policy: group " + scenario_.groups[group].name +
                        ": the policy must produce actions of dimension " +
                        std::to_string(scenario_.action_dim()));
  policies_[group] = std::move(policy);
}

namespace {
// Version 2: UserTotals holds discounted_return; 3: and chained_return; 4: and
// chained_session_return with its carry.
constexpr char kStateMagic[8] = {'M', 'T', 'F', 'S', 'T', 'A', 'T', '4'};

}  // namespace


void Simulator::pack_block(const BlockOut& out, std::int64_t b, std::int64_t begin, std::int64_t end,
                           std::string& shared, std::string* batch) const {
  put(shared, b);
  put(shared, out.requests);
  put_vec(shared, out.active);
  if (!shards_) {  // every rank holds every user: the block's users' states go to all
    const auto n = static_cast<std::size_t>(end - begin);
    const auto topics = static_cast<std::size_t>(population_->topics());
    put_all<UserState>(shared, population_->states().subspan(static_cast<std::size_t>(begin), n));
    put_all<float>(shared, population_->all_interests().subspan(static_cast<std::size_t>(begin) * topics, n * topics));
  }
  if (!batch) return;
  const RecordBatch& rb = out.batch;
  if (!rb.transitions.empty())
    throw std::logic_error("Simulator::pack_block: a block's batch holds row-wise transitions; it builds columns only");
  put(*batch, b);
  put_vec(*batch, rb.sessions);
  put_vec(*batch, rb.user_days);
  put_vec(*batch, rb.impressions);
  put_columns(*batch, rb.transition_columns);
}

void Simulator::unpack_block(BlockOut& out, std::int64_t b, std::int64_t begin, std::int64_t end, bool apply_states,
                             ByteReader& shared, ByteReader* batch) {
  if (shared.get<std::int64_t>() != b)
    throw std::runtime_error("MPI exchange: block " + std::to_string(b) + " arrived out of order (ranks disagree on the blocks)");
  out.requests = shared.get<std::int64_t>();
  shared.get_vec(out.active);
  if (!shards_) {
    const auto n = static_cast<std::size_t>(end - begin);
    const auto topics = static_cast<std::size_t>(population_->topics());
    const std::string_view st = shared.take(n * sizeof(UserState));
    const std::string_view in = shared.take(n * topics * sizeof(float));
    if (apply_states) {
      std::memcpy(population_->states().data() + begin, st.data(), st.size());
      std::memcpy(population_->all_interests().data() + static_cast<std::size_t>(begin) * topics, in.data(),
                  in.size());
    }
  }
  out.batch = RecordBatch{};
  if (!batch) return;
  if (batch->get<std::int64_t>() != b)
    throw std::runtime_error("MPI exchange: the rows of block " + std::to_string(b) + " arrived out of order");
  RecordBatch& rb = out.batch;
  batch->get_vec(rb.sessions);
  batch->get_vec(rb.user_days);
  batch->get_vec(rb.impressions);
  get_columns(*batch, rb.transition_columns);
}

std::string Simulator::save_state() const {
  const auto topics = static_cast<std::size_t>(population_->topics());
  // Sharded: every rank's users to rank 0, which puts them back in user order.
  std::vector<std::string> held;
  if (shards_) {
    std::string mine;
    mine.reserve(population_->states().size_bytes() + population_->all_interests().size_bytes());
    put_all<UserState>(mine, population_->states());
    put_all<float>(mine, population_->all_interests());
    held = gather_in_pieces(*shards_, mine, 0);  // a population's state can outgrow one MPI message
    std::string().swap(mine);    if (!shards_->root()) return {};
  }
  // Sized once: a state is tens of megabytes for a large population, and a
  // string grown by doubling would hold up to twice that while it is built.
  const std::size_t header = sizeof kStateMagic + sizeof(std::int64_t) + 3 * sizeof(std::int32_t) +
                             sizeof(std::uint8_t) + sizeof(std::uint64_t);
  const auto n = static_cast<std::size_t>(population_->size());
  std::string out;
  out.reserve(header + n * (sizeof(UserState) + topics * sizeof(float)) + user_totals_.size() * sizeof(UserTotals));
  out.append(kStateMagic, sizeof kStateMagic);
  put(out, static_cast<std::int64_t>(population_->size()));
  put(out, static_cast<std::int32_t>(population_->topics()));
  put(out, static_cast<std::int32_t>(day_));
  put(out, static_cast<std::int32_t>(totals_day0_));
  put(out, static_cast<std::uint8_t>(track_users_ ? 1 : 0));
  put(out, static_cast<std::uint64_t>(user_totals_.size()));
  if (!shards_) {
    put_all<UserState>(out, population_->states());
    put_all<float>(out, population_->all_interests());
  } else {
    // Rank r's bytes: its users' states, then their interests, both in user order.
    const int ranks = shards_->size();
    const auto block = static_cast<std::size_t>(shard_block_);
    std::vector<std::size_t> taken(static_cast<std::size_t>(ranks), 0);  // users of rank r copied so far
    const auto each_block = [&](auto&& copy) {
      std::fill(taken.begin(), taken.end(), 0);
      for (std::size_t b = 0; b * block < n; ++b) {
        const auto r = static_cast<std::size_t>(b % static_cast<std::size_t>(ranks));
        const std::size_t users = std::min(block, n - b * block);
        copy(held[r], taken[r], users);
        taken[r] += users;
      }
    };
    for (int r = 0; r < ranks; ++r) {
      const UserShard sh{shard_block_, ranks, r};
      const auto count = static_cast<std::size_t>(sh.held(population_->size()));
      if (held[static_cast<std::size_t>(r)].size() != count * (sizeof(UserState) + topics * sizeof(float)))
        throw std::runtime_error("Simulator::save_state: MPI rank " + std::to_string(r) + " sent the state of " +
                                 "another number of users than it holds (ranks disagree on the shards)");
    }
    each_block([&](const std::string& from, std::size_t first, std::size_t users) {
      out.append(from, first * sizeof(UserState), users * sizeof(UserState));
    });
    each_block([&](const std::string& from, std::size_t first, std::size_t users) {
      const std::size_t states = from.size() / (sizeof(UserState) + topics * sizeof(float)) * sizeof(UserState);
      out.append(from, states + first * topics * sizeof(float), users * topics * sizeof(float));
    });
  }
  put_all<UserTotals>(out, user_totals_);
  return out;
}

void Simulator::restore_state(std::string_view bytes) {
  std::size_t pos = 0;
  const auto take = [&](void* to, std::size_t n) {
    if (n == 0) return;  // an empty vector's data() may be null: no memcpy
    if (bytes.size() - pos < n)
      throw std::invalid_argument("Simulator::restore_state: the saved state is truncated");
    std::memcpy(to, bytes.data() + pos, n);
    pos += n;
  };
  char magic[sizeof kStateMagic];
  take(magic, sizeof magic);
  if (std::memcmp(magic, kStateMagic, sizeof magic) != 0)
    throw std::invalid_argument("Simulator::restore_state: not a simulator state of this version (a checkpoint of another mtfsim version?)");
  std::int64_t users = 0;
  std::int32_t topics = 0, day = 0, day0 = 0;
  std::uint8_t track = 0;
  std::uint64_t totals = 0;
  take(&users, sizeof users);
  take(&topics, sizeof topics);
  take(&day, sizeof day);
  take(&day0, sizeof day0);
  take(&track, sizeof track);
  take(&totals, sizeof totals);
  if (users != population_->size() || topics != population_->topics() || day < 0 || day > scenario_.days ||
      (totals != 0 && totals != static_cast<std::uint64_t>(users)))
    throw std::invalid_argument("Simulator::restore_state: the saved state is of another population (" +
                                std::to_string(users) + " users, " + std::to_string(topics) + " topics)");
  const std::span<UserState> states = population_->states();
  const std::span<float> interests = population_->all_interests();
  if (!shards_) {
    take(states.data(), states.size_bytes());
    take(interests.data(), interests.size_bytes());
  } else {  // the rank's own users, block by block
    const auto n = static_cast<std::size_t>(users), T = static_cast<std::size_t>(topics);
    const auto block = static_cast<std::size_t>(shard_block_);
    const UserShard& sh = population_->shard();
    const std::size_t at = pos;
    if (bytes.size() - at < n * (sizeof(UserState) + T * sizeof(float)))
      throw std::invalid_argument("Simulator::restore_state: the saved state is truncated");
    for (std::size_t b = 0; b * block < n; ++b) {
      const std::size_t u0 = b * block, m = std::min(block, n - u0);
      if (!sh.holds(static_cast<std::int64_t>(u0))) continue;
      const auto local = static_cast<std::size_t>(sh.local(static_cast<std::int64_t>(u0)));
      std::memcpy(states.data() + local, bytes.data() + at + u0 * sizeof(UserState), m * sizeof(UserState));
      std::memcpy(interests.data() + local * T, bytes.data() + at + n * sizeof(UserState) + u0 * T * sizeof(float),
                  m * T * sizeof(float));
    }
    pos = at + n * (sizeof(UserState) + T * sizeof(float));
  }
  user_totals_.resize(static_cast<std::size_t>(totals));
  take(user_totals_.data(), user_totals_.size() * sizeof(UserTotals));
  if (pos != bytes.size()) throw std::invalid_argument("Simulator::restore_state: unexpected bytes at the end");
  day_ = day;
  totals_day0_ = day0;
  track_users_ = track != 0;
}

void Simulator::set_return_gamma(double gamma) {
  if (!(gamma >= 0 && gamma <= 1)) throw std::invalid_argument("Simulator::set_return_gamma: gamma must be in [0, 1]");
  return_gamma_ = gamma;
}

void Simulator::track_user_totals(bool on) {
  track_users_ = on;
  if (on && user_totals_.empty()) reset_user_totals();
}

void Simulator::reset_user_totals() {
  user_totals_.assign(static_cast<std::size_t>(population_->size()), UserTotals{});
  totals_day0_ = day_;
}

RunResult Simulator::run(const RunOptions& opt, Recorder* recorder) {
  // The population's state evolves during a run: a second run would start from
  // the first one's end, not from the scenario.
  if (day_ > 0) throw std::logic_error("Simulator::run: days were already simulated; build a new Simulator for another run");
  return run_days(scenario_.days, opt, recorder);
}

RunResult Simulator::run_days(int ndays, const RunOptions& opt, Recorder* recorder) {
  if (stepped_)
    throw std::logic_error("Simulator::run_days: a Stepper steps this simulator's users; build a new Simulator");
  if (ndays < 1 || day_ + ndays > scenario_.days)
    throw std::logic_error("Simulator::run_days: " + std::to_string(ndays) + " days after day " +
                           std::to_string(day_) + " exceeds the scenario's " +
                           std::to_string(scenario_.days) + " days");
  const auto t0 = std::chrono::steady_clock::now();
  const Scenario& sc = scenario_;
  const int groups = static_cast<int>(sc.groups.size());
  const std::int64_t users = population_->size();
  const int block = std::max(1, opt.block_users);
  const std::int64_t nblocks = (users + block - 1) / block;
  const int threads = std::max(1, opt.threads);
  const bool record = recorder != nullptr || opt.collect;
  const Cluster* cluster = opt.cluster && opt.cluster->size() > 1 ? opt.cluster : nullptr;
  if (shards_ && (cluster != shards_ || block != shard_block_))
    throw std::logic_error("Simulator::run_days: the users are sharded over " + std::to_string(shards_->size()) +
                           " ranks in blocks of " + std::to_string(shard_block_) +
                           " (UserSharding); run every day with that cluster and block_users");
  if (recorder && day_ == 0) recorder->write_groups(group_rows());
  const int first_day = day_;
  if (track_users_ && first_day - totals_day0_ + ndays > UserTotals::kMaxDays)
    throw std::logic_error("Simulator: user totals cover at most " + std::to_string(UserTotals::kMaxDays) +
                           " days; call reset_user_totals()");

  RunResult res;
  res.metrics = OnlineMetrics(groups, ndays);
  for (int g = 0; g < groups; ++g)
    for (int d = 0; d < ndays; ++d) res.metrics.at(g, d).users = group_users_[g];
  std::vector<double> first_sum(groups, 0.0);
  std::vector<std::int64_t> first_n(groups, 0);

  // Folds block b of `day` into the result, in block order (user order within a block).
  const auto merge = [&](BlockOut& out, int day, std::int64_t b) {
    for (const BlockOut::ActiveUser& a : out.active) {  // user order
      GroupDayTotals& t = res.metrics.at(a.group, day - first_day);
      ++t.active;
      t.sessions += a.sessions;
      t.requests += a.requests;
      t.sessions_capped += a.capped;
      t.reward += a.reward;
      t.counts += a.counts;
      if (day > first_day && a.returned) ++res.metrics.at(a.group, day - first_day - 1).returned;
      if (track_users_) {
        UserTotals& ut = user_totals_[static_cast<std::size_t>(a.user)];
        ut.active_days |= std::uint64_t{1} << (day - totals_day0_);
        ut.chained_return += std::pow(return_gamma_, ut.requests) * a.chained;
        // Only the window's first day starts sessions for chained_session_return;
        // on later days its sessions weigh the day's request j by C gamma^j, C the
        // carry (the weight of the user's next request) before today.
        if (day == totals_day0_) {
          ut.chained_session_return = a.session_chained;
          ut.chained_session_weight = return_gamma_ * a.session_weight;
          ut.first_day_sessions = a.sessions;
        } else {
          ut.chained_session_return += ut.chained_session_weight * a.chained;
          ut.chained_session_weight *= std::pow(return_gamma_, a.requests);
        }
        ut.sessions += a.sessions;
        ut.requests += a.requests;
        ut.reward += a.reward;
        ut.discounted_return += a.discounted;
        ut.counts += a.counts;
      }
      first_sum[a.group] += a.first_reward;
      first_n[a.group] += a.first_count;
    }
    res.requests += out.requests;
    if (opt.on_batch) opt.on_batch(out.batch);
    if (recorder) recorder->submit(std::move(out.batch));
    if (opt.on_progress) {
      Progress p;
      p.day = day - first_day;
      p.days = ndays;
      p.users_done = std::min<std::int64_t>(users, (b + 1) * block);
      p.users = users;
      p.requests = res.requests;
      p.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      opt.on_progress(p);
    }
  };

  if (cluster) {
    // Each rank simulates its blocks of a round (`per_rank` of them, on its
    // threads), then the ranks exchange them: every rank's users' states and
    // totals go to every rank, rows only to the ranks that take them.
    const int ranks = cluster->size(), me = cluster->rank();
    // Blocks per rank and round: up to 4 per thread, at most 1,024 blocks a
    // round in all (bounded exchanges, whatever the ranks and threads). Every
    // rank must run the same simulation in the same rounds.
    const std::int64_t per_rank = std::max<std::int64_t>(1, std::min<std::int64_t>(4L * threads, 1024 / ranks));
    std::string same = std::string(shards_ ? "users sharded, " : "users replicated, ") + std::to_string(users) +
                       " users, days " + std::to_string(first_day) + " + " +
                       std::to_string(ndays) + ", blocks of " + std::to_string(block) + ", " +
                       std::to_string(per_rank) + " blocks per rank and round (--threads), user seed " +
                       std::to_string(user_seed_) + ", policies";
    for (const PolicyPtr& p : policies_) same += " " + p->name();
    same += ", scenario " + scenario_to_json(sc);
    cluster->check_same(same, "the simulation (Simulator::run_days: the scenario, its policies and --threads)");
    std::vector<int> takers;  // ranks that record or collect rows
    {
      const std::vector<std::string> flags = cluster->all_gather(record ? "1" : "0");
      for (int r = 0; r < ranks; ++r)
        if (flags[static_cast<std::size_t>(r)] == "1") takers.push_back(r);
    }
    const bool build = !takers.empty();  // blocks build rows for the takers
    const std::int64_t round = per_rank * ranks;
    std::vector<ThreadScratch> scratch(static_cast<std::size_t>(threads));
    std::vector<BlockOut> outs;
    BlockOut in;
    const auto block_begin = [&](std::int64_t b) { return b * block; };
    const auto block_end = [&](std::int64_t b) { return std::min<std::int64_t>(users, (b + 1) * block); };
    for (int day = first_day; day < first_day + ndays; ++day, ++day_) {
      for (std::int64_t r0 = 0; r0 < nblocks; r0 += round) {
        const std::int64_t r1 = std::min(nblocks, r0 + round);
        std::vector<std::int64_t> mine;
        for (std::int64_t b = r0; b < r1; ++b)
          if (b % ranks == me) mine.push_back(b);
        outs.resize(std::max(outs.size(), mine.size()));
        std::atomic<std::size_t> next{0};
        std::mutex mu;
        std::string failure;  // this rank's error, sent with its blocks so that no rank waits for it
        const auto work = [&](ThreadScratch& scr) {
          for (std::size_t i = next++; i < mine.size(); i = next++) {
            try {
              simulate_block(day, block_begin(mine[i]), block_end(mine[i]), build, scr, outs[i]);
            } catch (const std::exception& e) {
              std::lock_guard lock(mu);
              if (failure.empty()) failure = e.what();
              next = mine.size();
            }
          }
        };
        std::vector<std::thread> pool;
        for (int t = 1; t < threads; ++t) pool.emplace_back(work, std::ref(scratch[static_cast<std::size_t>(t)]));
        work(scratch[0]);
        for (auto& th : pool) th.join();

        std::string shared, rows;
        put(shared, static_cast<std::uint8_t>(failure.empty() ? 0 : 1));
        if (!failure.empty()) {
          put(shared, static_cast<std::uint64_t>(failure.size()));
          shared += failure;
        } else {
          for (std::size_t i = 0; i < mine.size(); ++i)
            pack_block(outs[i], mine[i], block_begin(mine[i]), block_end(mine[i]), shared, build ? &rows : nullptr);
        }
        const std::vector<std::string> all_shared = cluster->all_gather(shared);
        std::vector<std::string> all_rows;
        for (const int t : takers) {
          std::vector<std::string> got = cluster->gather(rows, t);
          if (t == me) all_rows = std::move(got);
        }
        std::vector<ByteReader> readers, row_readers;
        for (int r = 0; r < ranks; ++r) {
          ByteReader rd{all_shared[static_cast<std::size_t>(r)]};
          if (rd.get<std::uint8_t>() != 0) {
            const auto n = rd.get<std::uint64_t>();
            throw std::runtime_error("MPI rank " + std::to_string(r) + ": " + std::string(rd.take(n)));
          }
          readers.push_back(rd);
        }
        for (const std::string& r : all_rows) row_readers.push_back(ByteReader{r});
        for (std::int64_t b = r0; b < r1; ++b) {
          const auto owner = static_cast<std::size_t>(b % ranks);
          unpack_block(in, b, block_begin(b), block_end(b), static_cast<int>(owner) != me, readers[owner],
                       record ? &row_readers[owner] : nullptr);
          merge(in, day, b);
        }
        for (const std::vector<ByteReader>* rs : {&readers, &row_readers})
          for (const ByteReader& rd : *rs)
            if (rd.pos != rd.bytes.size())
              throw std::runtime_error("MPI exchange: a rank sent more blocks than this rank expected (ranks disagree on "
                                       "the rounds)");
      }
    }
  } else {
    // At most `window` finished-but-unmerged blocks, so memory stays bounded.
    const std::int64_t window = 4L * threads;
    for (int day = first_day; day < first_day + ndays; ++day, ++day_) {
      std::vector<BlockOut> outs(static_cast<std::size_t>(std::min<std::int64_t>(nblocks, window)));
      std::mutex mu;
      std::condition_variable cv;
      std::int64_t next_block = 0, merged = 0;
      std::exception_ptr error;
      auto worker = [&] {
        ThreadScratch scratch;
        for (;;) {
          std::int64_t b;
          {
            std::unique_lock lock(mu);
            cv.wait(lock, [&] { return error || next_block >= nblocks || next_block < merged + window; });
            if (error || next_block >= nblocks) return;
            b = next_block++;
          }
          BlockOut& out = outs[static_cast<std::size_t>(b % window)];
          try {
            simulate_block(day, b * block, std::min<std::int64_t>(users, (b + 1) * block), record, scratch, out);
          } catch (...) {
            std::lock_guard lock(mu);
            error = std::current_exception();
            cv.notify_all();
            return;
          }
          std::lock_guard lock(mu);
          out.ready = true;
          cv.notify_all();
        }
      };
      std::vector<std::thread> pool;
      for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
      try {
        for (std::int64_t b = 0; b < nblocks; ++b) {
          BlockOut* out;
          {
            std::unique_lock lock(mu);
            out = &outs[static_cast<std::size_t>(b % window)];
            cv.wait(lock, [&] { return error || out->ready; });
            if (error) break;
          }
          merge(*out, day, b);
          {
            std::lock_guard lock(mu);
            out->ready = false;
            ++merged;
            cv.notify_all();
          }
        }
      } catch (...) {
        std::lock_guard lock(mu);
        if (!error) error = std::current_exception();
        cv.notify_all();
      }
      for (auto& th : pool) th.join();
      if (error) std::rethrow_exception(error);
    }

  }

  double fsum = 0;
  std::int64_t fn = 0;
  for (int g = 0; g < groups; ++g) {
    GroupSummary s = res.metrics.summarise(g, group_users_[g]);
    s.name = sc.groups[g].name;
    s.policy = policies_[g]->name();
    for (int d = 0; d < ndays; ++d) res.sessions += res.metrics.at(g, d).sessions;
    res.sessions_capped += s.sessions_capped;
    res.groups.push_back(std::move(s));
    res.group_first_request_reward.push_back(first_n[g] ? first_sum[g] / first_n[g] : 0.0);
    fsum += first_sum[g];
    fn += first_n[g];
  }
  res.first_request_reward = fn ? fsum / fn : 0.0;
  res.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace mtf
