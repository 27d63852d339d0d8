// The day loop, the block kernel and the ordered parallel merge (see simulator.h).
#include "sim/simulator.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <thread>

#include "metrics/reward.h"
#include "sim/event_queue.h"
#include "sim/fusion.h"
#include "sim/policies.h"
#include "sim/ranker.h"
#include "sim/state_features.h"

#ifndef MTF_GIT_REVISION
#define MTF_GIT_REVISION "unknown"
#endif
#ifndef MTF_VERSION
#define MTF_VERSION "0.0.0"
#endif

namespace mtf {
namespace {

constexpr int kMaxRequestsPerSession = 400;  // a safety stop; real sessions end far earlier

}  // namespace

std::string code_version() { return std::string(MTF_VERSION) + "+" + MTF_GIT_REVISION; }

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
  Rng env, ret, pol;  // the user's reaction, retrieval and policy streams for this day
  std::uint64_t mtl_key = 0;  // keys the user's fixed MTL errors
  std::vector<float> state, action, baseline, lower, upper;
  double log_density = 0;
  bool has_baseline = false, has_bounds = false;
  std::vector<ItemView> views;
  std::vector<ItemFeedback> feedback;
  BehaviourCounts counts;  // of the pending request
  double request_time = 0;
  // Day totals.
  bool active = false, returned = false;
  int sessions = 0, requests = 0, first_count = 0;
  double reward = 0, first_reward = 0;
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
    int sessions, requests, first_count;
    double reward, first_reward;
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
};

Simulator::Simulator(Scenario scenario, std::vector<PolicyPtr> policies, std::uint64_t user_seed)
    : scenario_(std::move(scenario)),
      catalogue_(std::make_unique<Catalogue>(scenario_.catalogue, scenario_.seed)),
      population_(std::make_unique<Population>(scenario_.population, scenario_.catalogue.topics,
                                               user_seed ? user_seed : scenario_.seed)),
      model_(scenario_.user_model),
      ranker_(std::make_unique<Ranker>(*catalogue_, scenario_.retrieval, scenario_.mtl, model_)),
      policies_(std::move(policies)),
      user_seed_(user_seed ? user_seed : scenario_.seed) {
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

void Simulator::simulate_block(int day, std::int64_t begin, std::int64_t end, bool record,
                               ThreadScratch& scratch, BlockOut& out) {
  const Scenario& sc = scenario_;
  const int d = sc.action_dim();
  const int shown = sc.retrieval.shown;
  const bool rec_transitions = record && sc.record.transitions;
  const auto rec_impressions = [&](int g) {
    return record && (sc.record.impressions ||
                      (static_cast<std::size_t>(g) < impression_groups_.size() && impression_groups_[g]));
  };
  const double day_start = day * kSecondsPerDay;
  const double day_end = day_start + kSecondsPerDay;
  const Ranker& ranker = *ranker_;
  auto neighbours = [this](int t) {
    const TopicGraph& g = catalogue_->graph;
    return std::span<const int>(g.neighbours_begin(t), g.neighbours_end(t));
  };

  out.active.clear();
  out.requests = 0;
  out.batch = RecordBatch{};
  out.batch.transition_columns.state_dim = kStateDim;
  out.batch.transition_columns.action_dim = sc.action_dim();

  const auto n = static_cast<std::size_t>(end - begin);
  auto& slots = scratch.slots;
  if (slots.size() < n) slots.resize(n);
  scratch.top.resize(shown);
  EventQueue q;
  q.reset(day_start);
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t u = begin + static_cast<std::int64_t>(i);
    UserSlot& s = slots[i];
    s.env.reseed(derive_seed(user_seed_, Stream::kUserBehaviour, static_cast<std::uint64_t>(u), day));
    s.ret.reseed(derive_seed(user_seed_, Stream::kRetrieval, static_cast<std::uint64_t>(u), day));
    s.pol.reseed(derive_seed(user_seed_, Stream::kPolicy, static_cast<std::uint64_t>(u), day));
    s.mtl_key = derive_seed(user_seed_, Stream::kMtlNoise, static_cast<std::uint64_t>(u));
    s.state.resize(kStateDim);
    for (auto* v : {&s.action, &s.baseline, &s.lower, &s.upper}) v->resize(d);
    s.views.resize(shown);
    s.feedback.resize(shown);
    s.active = s.returned = false;
    s.sessions = s.requests = s.first_count = 0;
    s.reward = s.first_reward = 0;
    s.day = {};
    s.transitions.clear();
    s.transitions.state_dim = kStateDim;
    s.transitions.action_dim = d;
    s.sessions_rows.clear();
    s.impressions.clear();
    UserState& st = population_->state(u);
    if (day == 0 && st.sessions_total == 0 && st.next_session < 0)
      st.next_session = model_.first_session_start(population_->profile(u), s.env);
    if (st.next_session >= 0 && st.next_session < day_end)
      q.schedule(std::max(st.next_session, day_start), Event{EventKind::kSessionStart, static_cast<std::uint32_t>(i)});
  }
  q.schedule(day_end, Event{EventKind::kDayBoundary, 0});

  auto handle = [&](const Event& ev) {
    const double now = q.now();
    if (ev.kind == EventKind::kDayBoundary) {
      // Interests drift along the topic graph once a day (own stream: independent of event order).
      for (std::size_t i = 0; i < n; ++i) {
        const std::int64_t u = begin + static_cast<std::int64_t>(i);
        Rng drift(user_seed_, Stream::kInterestDrift, static_cast<std::uint64_t>(u), day);
        model_.drift_interests(population_->interests(u), drift, neighbours);
      }
      return;
    }
    const std::uint32_t i = ev.subject;
    const std::int64_t u = begin + i;
    UserSlot& s = slots[i];
    UserState& st = population_->state(u);
    const UserProfile& prof = population_->profile(u);
    const int g = group_[static_cast<std::size_t>(u)];
    std::span<float> interests = population_->interests(u);

    switch (ev.kind) {
      case EventKind::kSessionStart: {
        if (st.last_session_end >= 0) model_.rest(st, now - st.last_session_end);
        st.sessions_today = s.sessions;
        st.session_start = now;
        st.requests_in_session = 0;
        st.session = {};
        st.last_request = {};
        st.session_reward = 0;
        st.next_session = -1;
        if (!s.active) {
          s.active = true;
          s.returned = st.last_active_day == day - 1;
          st.last_active_day = day;
        }
        ++s.sessions;
        q.schedule(now, Event{EventKind::kRequest, i});
        break;
      }
      case EventKind::kRequest: {
        build_state(prof, st, now, s.state);
        ActionInfo info;
        info.baseline = s.baseline;
        info.lower = s.lower;
        info.upper = s.upper;
        policies_[g]->act(s.state, s.action, s.pol, &info);
        s.has_baseline = info.has_baseline;
        s.has_bounds = info.has_bounds;
        s.log_density = info.log_density;
        const FusionWeights w = weights_from_action(sc.fusion, s.action);
        const ResponseCoeffs k = model_.coeffs(prof, st);
        ranker.retrieve(interests, s.ret, scratch.ws);
        ranker.predict(k, s.mtl_key, interests, scratch.ws);
        ranker.fuse(w, scratch.ws);
        const int got = ranker.select_top(scratch.ws, scratch.top);
        const bool impressions = rec_impressions(g);
        s.counts = {};
        for (int j = 0; j < got; ++j) {
          const int item = scratch.ws.items[scratch.top[j]];
          const ItemView& v = s.views[j] = catalogue_->view[static_cast<std::size_t>(item)];
          const ItemFeedback fb = model_.react(k, prof, v, interests[v.topic], s.env);
          s.feedback[j] = fb;
          if (impressions) {
            ImpressionRow& row = s.impressions.emplace_back();
            row.user = u;
            row.session = st.sessions_total;
            row.step = st.requests_in_session;
            row.group = g;
            row.position = j;
            row.item = item;
            row.valid = fb.valid;
            BehaviourCounts one;
            one.shown = 1;
            one.plays = fb.played;
            one.valid = fb.valid;
            one.finishes = fb.finished;
            one.likes = fb.liked;
            one.shares = fb.shared;
            one.comments = fb.commented;
            one.skips = fb.skipped;
            one.watch_seconds = fb.watch_seconds;
            one.dwell_seconds = fb.dwell_seconds;
            row.reward = static_cast<float>(reward_of(sc.reward, one));
            for (int t = 0; t < kNumTasks; ++t) row.pred[t] = scratch.ws.pred[t][scratch.top[j]];
          }
          BehaviourCounts& bc = s.counts;
          ++bc.shown;
          bc.plays += fb.played;
          bc.valid += fb.valid;
          bc.finishes += fb.finished;
          bc.likes += fb.liked;
          bc.shares += fb.shared;
          bc.comments += fb.commented;
          bc.skips += fb.skipped;
          bc.watch_seconds += fb.watch_seconds;
          bc.dwell_seconds += fb.dwell_seconds;
        }
        s.request_time = now;
        ++out.requests;
        q.schedule(now + s.counts.dwell_seconds, Event{EventKind::kFeedback, i});
        break;
      }
      case EventKind::kFeedback: {
        const int got = s.counts.shown;
        model_.absorb(st, prof.taste_long, interests, std::span<const ItemView>(s.views.data(), got),
                      std::span<const ItemFeedback>(s.feedback.data(), got), neighbours);
        const double r = reward_of(sc.reward, s.counts);
        if (st.requests_in_session == 0) {
          s.first_reward += r;
          ++s.first_count;
        }
        ++st.requests_in_session;
        st.last_request = s.counts;
        st.session += s.counts;
        st.session_reward += static_cast<float>(r);
        ++s.requests;
        s.reward += r;
        s.day += s.counts;
        const bool leave = st.requests_in_session >= kMaxRequestsPerSession ||
                           s.env.uniform01d() < model_.leave_probability(prof, st);
        if (rec_transitions) {
          TransitionColumns& tc = s.transitions;
          TransitionColumns::Row& row = tc.rows.emplace_back();
          row.user = u;
          row.session = st.sessions_total;
          row.step = st.requests_in_session - 1;
          row.group = g;
          row.time = s.request_time;
          row.reward = static_cast<float>(r);
          row.done = leave;
          row.counts = s.counts;
          row.has_baseline = s.has_baseline;
          row.has_bounds = s.has_bounds;
          if (std::isfinite(s.log_density)) row.log_density = s.log_density;
          tc.state.insert(tc.state.end(), s.state.begin(), s.state.end());
          tc.action.insert(tc.action.end(), s.action.begin(), s.action.end());
          tc.baseline.insert(tc.baseline.end(), s.baseline.begin(), s.baseline.end());
          tc.lower.insert(tc.lower.end(), s.lower.begin(), s.lower.end());
          tc.upper.insert(tc.upper.end(), s.upper.begin(), s.upper.end());
          tc.next_state.resize(tc.next_state.size() + kStateDim);
          build_state(prof, st, now,
                      std::span<float>(tc.next_state.data() + tc.next_state.size() - kStateDim, kStateDim));
        }
        q.schedule(now, Event{leave ? EventKind::kSessionEnd : EventKind::kRequest, i});
        break;
      }
      case EventKind::kSessionEnd: {
        if (record) {
          SessionRow row;
          row.user = u;
          row.session = st.sessions_total;
          row.group = g;
          row.day = day;
          row.start_time = st.session_start;
          row.end_time = now;
          row.requests = st.requests_in_session;
          row.reward = st.session_reward;
          row.counts = st.session;
          s.sessions_rows.push_back(row);
        }
        st.last_session_end = now;
        st.last_session_requests = st.requests_in_session;
        st.last_session_valid_rate =
            st.session.shown > 0 ? static_cast<float>(st.session.valid) / st.session.shown : 0.0f;
        ++st.sessions_total;
        st.next_session = model_.next_session_start(prof, st, now, s.env);
        if (st.next_session < day_end) q.schedule(st.next_session, Event{EventKind::kSessionStart, i});
        break;
      }
      case EventKind::kDayBoundary:
        break;
    }
  };
  q.run_until(std::numeric_limits<double>::infinity(), handle);

  // Merge in user order: totals and rows do not depend on event interleaving.
  if (rec_transitions) {
    std::size_t rows = 0;
    for (std::size_t i = 0; i < n; ++i) rows += slots[i].transitions.size();
    TransitionColumns& c = out.batch.transition_columns;
    c.rows.reserve(rows);
    for (auto* v : {&c.state, &c.next_state}) v->reserve(rows * kStateDim);
    for (auto* v : {&c.action, &c.baseline, &c.lower, &c.upper}) v->reserve(rows * static_cast<std::size_t>(d));
  }
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t u = begin + static_cast<std::int64_t>(i);
    const int g = group_[static_cast<std::size_t>(u)];
    UserSlot& s = slots[i];
    if (s.active)
      out.active.push_back({u, g, s.returned, s.sessions, s.requests, s.first_count, s.reward, s.first_reward, s.day});
    if (!record) continue;
    for (auto& row : s.sessions_rows) out.batch.sessions.push_back(std::move(row));
    out.batch.impressions.insert(out.batch.impressions.end(), s.impressions.begin(), s.impressions.end());
    if (rec_transitions) out.batch.transition_columns.append(s.transitions);
    if (s.active && sc.record.user_days) {
      UserDayRow row;
      row.user = u;
      row.day = day;
      row.group = g;
      row.segment = population_->profile(u).segment;
      row.sessions = s.sessions;
      row.requests = s.requests;
      row.reward = s.reward;
      row.counts = s.day;
      out.batch.user_days.push_back(row);
    }
  }
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
  if (recorder && day_ == 0) recorder->write_groups(group_rows());
  const int first_day = day_;
  if (track_users_ && first_day - totals_day0_ + ndays > 64)
    throw std::logic_error("Simulator: user totals cover at most 64 days; call reset_user_totals()");

  RunResult res;
  res.metrics = OnlineMetrics(groups, ndays);
  for (int g = 0; g < groups; ++g)
    for (int d = 0; d < ndays; ++d) res.metrics.at(g, d).users = group_users_[g];
  std::vector<double> first_sum(groups, 0.0);
  std::vector<std::int64_t> first_n(groups, 0);

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
        for (const BlockOut::ActiveUser& a : out->active) {  // user order
          GroupDayTotals& t = res.metrics.at(a.group, day - first_day);
          ++t.active;
          t.sessions += a.sessions;
          t.requests += a.requests;
          t.reward += a.reward;
          t.counts += a.counts;
          if (day > first_day && a.returned) ++res.metrics.at(a.group, day - first_day - 1).returned;
          if (track_users_) {
            UserTotals& ut = user_totals_[static_cast<std::size_t>(a.user)];
            ut.active_days |= std::uint64_t{1} << (day - totals_day0_);
            ut.sessions += a.sessions;
            ut.requests += a.requests;
            ut.reward += a.reward;
            ut.counts += a.counts;
          }
          first_sum[a.group] += a.first_reward;
          first_n[a.group] += a.first_count;
        }
        res.requests += out->requests;
        if (opt.on_batch) opt.on_batch(out->batch);
        if (recorder) recorder->submit(std::move(out->batch));
        {
          std::lock_guard lock(mu);
          out->ready = false;
          ++merged;
          cv.notify_all();
        }
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
      }
    } catch (...) {
      std::lock_guard lock(mu);
      if (!error) error = std::current_exception();
      cv.notify_all();
    }
    for (auto& th : pool) th.join();
    if (error) std::rethrow_exception(error);
  }

  double fsum = 0;
  std::int64_t fn = 0;
  for (int g = 0; g < groups; ++g) {
    GroupSummary s = res.metrics.summarise(g, group_users_[g]);
    s.name = sc.groups[g].name;
    s.policy = policies_[g]->name();
    for (int d = 0; d < ndays; ++d) res.sessions += res.metrics.at(g, d).sessions;
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
