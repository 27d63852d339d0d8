// Checkpoints of an experiment (see stages.h): after each stage the run
// database gets the state the later stages need, so that `mtfsim run
// --resume` continues a killed run from there and finishes with the tables an
// uninterrupted run writes (every figure but timings).
//
// What a checkpoint holds, and where the rest comes from on resume:
// - the metric rows written so far: in table metrics already (the recorder
//   drops rows written after the checkpoint);
// - the exploration's transitions and impressions: in their tables, read back
//   in recorded order (read_transition_columns, read_impressions);
// - the agents: their full training state (Agent::save) as blobs, saved after
//   the exploration (progressive agents have trained) and after training;
// - the online learners' deployed policies (policy_to_json), the offline
//   figures and the A/B lifts so far: JSON, doubles as their bit patterns so
//   that NaN and every last digit survive;
// - the counters: sessions capped, failed agents, rows and seconds of training.
//
// Over MPI ranks rank 0 writes the checkpoints (every rank holds the same
// state: the agents too, whose data-parallel minibatch streams on the other
// ranks are derived from the step, AgentBase::train), and a resumed run's
// rank 0 reads the run database and hands every other rank the checkpoint,
// the metric rows and the recorded data, in chunks. A replicated run (no
// --data-parallel) resumes on any number of ranks, one process included, and
// finishes with the same tables; a data-parallel one on the ranks it ran on.
#include <bit>
#include <cstdint>
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "agents/online/online_policies.h"
#include "core/bytes.h"
#include "experiments/stages.h"

namespace mtf::experiments {

using nlohmann::json;

namespace {

const char* stage_name(Done d) {
  switch (d) {
    case Done::kNothing: return "nothing";
    case Done::kExplorationRound: return "exploration days";
    case Done::kExploration: return "exploration";
    case Done::kTraining: return "training";
    case Done::kLearnerRound: return "online learner round";
    case Done::kLearners: return "online learners";
    case Done::kOffline: return "offline evaluation";
    case Done::kOracle: return "oracle";
    case Done::kAbReplicate: return "A/B replicate";
  }
  return "?";
}

Done stage_of(const std::string& name) {
  for (Done d : {Done::kExplorationRound, Done::kExploration, Done::kTraining, Done::kLearnerRound, Done::kLearners,
                 Done::kOffline, Done::kOracle, Done::kAbReplicate})
    if (name.rfind(stage_name(d), 0) == 0) return d;
  throw ExperimentError("resume: unknown checkpoint stage '" + name + "' (written by another mtfsim version?)");
}

std::uint64_t bits(double x) { return std::bit_cast<std::uint64_t>(x); }
double from_bits(const json& j) { return std::bit_cast<double>(j.get<std::uint64_t>()); }

std::unique_ptr<agents::Agent> agent_from_bytes(const std::string& bytes, const std::string& key) {
  return agents::load_agent_bytes(bytes, "the checkpoint's " + key);
}

/// How the rows were sharded: the ranks under --data-parallel, 0 otherwise.
int shard_count(const ExperimentContext& ctx) { return ctx.shards() ? ctx.shards()->size() : 0; }

/// Rank 0's bytes on every rank (the others send nothing). Collective.
std::string from_root(const Cluster& ranks, std::string bytes) {
  std::vector<std::string> all = ranks.all_gather(ranks.root() ? std::string_view(bytes) : std::string_view());
  return std::move(all[0]);
}

/// Rank 0's checkpoint on every rank but 0 (into `out`). Collective. The
/// blobs go one at a time, in pieces (broadcast_in_pieces), so no message
/// nears MPI's 2 GiB and no rank holds a second copy of the whole checkpoint.
void share_checkpoint(ExperimentContext& ctx, const Cluster& ranks, std::optional<Checkpoint>& out) {
  const std::optional<Checkpoint>& cp = ctx.rec.resumed();
  std::string head;
  if (ranks.root()) {
    put(head, static_cast<std::uint8_t>(cp ? 1 : 0));
    if (cp) {
      put_string(head, cp->stage);
      put_string(head, cp->state);
      put(head, cp->metrics_rows);
      put(head, static_cast<std::uint64_t>(cp->blobs.size()));
      for (const auto& [key, blob] : cp->blobs) {
        put_string(head, key);
        put(head, static_cast<std::uint64_t>(blob.size()));
      }
    }
  }
  head = from_root(ranks, std::move(head));
  ByteReader in{head, 0, "a resumed run's checkpoint from MPI rank 0"};
  if (in.get<std::uint8_t>() == 0) return;
  Checkpoint mine;
  mine.stage = in.get_string();
  mine.state = in.get_string();
  mine.metrics_rows = in.get<std::int64_t>();
  std::vector<std::pair<std::string, std::uint64_t>> blobs;
  for (auto n = in.get<std::uint64_t>(); n > 0; --n) {
    std::string key = in.get_string();
    blobs.emplace_back(std::move(key), in.get<std::uint64_t>());
  }
  for (const auto& [key, size] : blobs) {
    std::string blob = broadcast_in_pieces(ranks, ranks.root() ? std::string_view(cp->blobs.at(key)) : std::string_view(), 0);
    if (ranks.root()) continue;
    if (blob.size() != size) throw std::runtime_error("a resumed run's checkpoint from MPI rank 0: truncated");
    mine.blobs[key] = std::move(blob);
  }
  if (!ranks.root()) out = std::move(mine);
}

/// Rank 0's metric rows on every rank. Collective.
std::vector<MetricRow> share_metrics(const Cluster& ranks, std::vector<MetricRow> rows) {
  std::string bytes;
  if (ranks.root()) {
    put(bytes, static_cast<std::uint64_t>(rows.size()));
    for (const MetricRow& r : rows) {
      for (const std::string* t : {&r.section, &r.subject, &r.metric, &r.details}) put_string(bytes, *t);
      put(bytes, r.value);
      for (const std::optional<double>* v : {&r.ci_low, &r.ci_high, &r.p_value}) put_optional(bytes, *v);
      put_optional(bytes, r.rep);
      put_optional(bytes, r.n);
    }
  }
  bytes = from_root(ranks, std::move(bytes));
  if (ranks.root()) return rows;
  ByteReader in{bytes, 0, "a resumed run's metric rows from MPI rank 0"};
  rows.resize(static_cast<std::size_t>(in.get<std::uint64_t>()));
  for (MetricRow& r : rows) {
    for (std::string* t : {&r.section, &r.subject, &r.metric, &r.details}) *t = in.get_string();
    r.value = in.get<double>();
    for (std::optional<double>* v : {&r.ci_low, &r.ci_high, &r.p_value}) *v = in.get_optional<double>();
    r.rep = in.get_optional<std::int64_t>();
    r.n = in.get_optional<std::int64_t>();
  }
  return rows;
}

/// The exploration's transitions and impressions, read back from rank 0's run
/// database in chunks and kept by every rank (ExperimentContext::keep: its
/// users' under --data-parallel). Collective.
void share_data(ExperimentContext& ctx, const Cluster& ranks) {
  const std::size_t chunk = std::max<std::size_t>(1, ctx.opt.chunk_rows);
  // Each message: 1 and a chunk of transitions, 2 and one of impressions, 0: the end.
  const auto receive = [&] {
    for (;;) {
      const std::string bytes = from_root(ranks, {});
      ByteReader in{bytes, 0, "a resumed run's recorded rows from MPI rank 0"};
      const auto kind = in.get<std::uint8_t>();
      if (kind == 0) return;
      if (kind == 1) {
        TransitionColumns c;
        get_columns(in, c);
        ctx.keep(c);
      } else {
        std::vector<ImpressionRow> rows;
        in.get_vec(rows);
        ctx.keep(std::span<const ImpressionRow>(rows));
      }
    }
  };
  if (!ranks.root()) return receive();
  read_transition_chunks(ctx.rec.file(), /*allow_partial=*/true, 1, 0, chunk, [&](TransitionColumns& c) {
    std::string bytes;
    put(bytes, std::uint8_t{1});
    put_columns(bytes, c);
    from_root(ranks, std::move(bytes));
    ctx.keep(c);
  });
  const std::vector<ImpressionRow> impressions = read_impressions(ctx.rec.file(), /*allow_partial=*/true);
  for (std::size_t i = 0; i < impressions.size(); i += chunk) {
    const auto part = std::span<const ImpressionRow>(impressions).subspan(i, std::min(chunk, impressions.size() - i));
    std::string bytes;
    put(bytes, std::uint8_t{2});
    put(bytes, static_cast<std::uint64_t>(part.size()));
    put_all(bytes, part);
    from_root(ranks, std::move(bytes));
    ctx.keep(part);
  }
  std::string end;
  put(end, std::uint8_t{0});
  from_root(ranks, std::move(end));
}

}  // namespace

void save_checkpoint(ExperimentContext& ctx, Done stage, int count, bool with_agents) {
  // Collective only after an exploration round (the users' state is gathered):
  // the training stage checkpoints when each rank's clock says so, which the
  // ranks need not agree on, so its checkpoints (Done::kExploration) must stay
  // rank 0's business alone.
  ctx.flush();
  // The users' state (each rank holds its own: gathered on rank 0, collectively).
  std::string simulator = stage == Done::kExplorationRound ? ctx.sim.save_state() : std::string();
  if (ctx.opt.cluster && !ctx.opt.cluster->root()) return;  // rank 0 writes the run database
  json st;
  st["ab_replicates"] = stage == Done::kAbReplicate ? count : 0;
  st["explored_days"] = stage == Done::kExplorationRound ? count : 0;
  st["sessions_capped"] = ctx.sessions_capped;
  st["failed"] = ctx.failed;
  st["train_rows"] = ctx.train_rows;
  st["shards"] = shard_count(ctx);
  json seconds = json::object();
  for (const auto& [name, s] : ctx.train_seconds) seconds[name] = bits(s);
  st["train_seconds"] = seconds;
  if (stage >= Done::kLearnerRound) {
    json learners = json::array();
    // After the baseline, one policy per finished learner (the agents follow them).
    for (std::size_t i = 1; i < ctx.policies.size() && i <= ctx.ex.learners.size(); ++i)
      learners.push_back({{"name", ctx.policies[i].first},
                          {"policy", agents::policy_to_json(ctx.policies[i].second, ctx.policies[0].second)}});
    st["learners"] = learners;
  }
  json offline = json::object();
  for (const auto& [metric, values] : ctx.offline)
    for (const auto& [policy, v] : values) offline[metric][policy] = bits(v);
  st["offline"] = offline;
  json online = json::object();
  for (const auto& [metric, arms] : ctx.online)
    for (const auto& [arm, lifts] : arms) {
      json& l = online[metric][arm] = json::array();
      for (double x : lifts) l.push_back(bits(x));
    }
  st["online"] = online;

  if (stage == Done::kLearnerRound) st["learner_rounds"] = ctx.learner_rounds;

  Checkpoint c;
  c.stage = stage_name(stage);
  // Users' states in pieces (a paper-sized population's is several GB); moved, not a second copy.
  if (stage == Done::kLearnerRound) c.put_large("learner_simulator", std::move(ctx.learner_sim_state));
  if (stage == Done::kAbReplicate || stage == Done::kExplorationRound) c.stage += " " + std::to_string(count);
  c.state = st.dump();
  c.metrics_rows = static_cast<std::int64_t>(ctx.M.size());
  if (with_agents)
    for (const auto& [name, agent] : ctx.agent)
      if (agent) c.blobs["agent:" + name] = agent->to_bytes();
  if (stage == Done::kExplorationRound) c.put_large("simulator", std::move(simulator));
  // A finished stage's users' state is not resumed from again: out of the file
  // (a paper-sized population's is GB, and a resume hands it to every rank).
  if (stage != Done::kExplorationRound) c.drop_large.push_back("simulator");
  if (stage != Done::kLearnerRound) c.drop_large.push_back("learner_simulator");
  if (stage == Done::kExplorationRound || with_agents)  // the last round's verdict too
    for (const auto& [name, agent] : ctx.deployed) c.blobs["deployed:" + name] = agent->to_bytes();
  ctx.rec.checkpoint(std::move(c), /*wait=*/true);  // a kill after this returns resumes from here
}

ResumePoint restore_checkpoint(ExperimentContext& ctx) {
  ResumePoint rp;
  const Cluster* ranks = ctx.ranks();
  if (ranks && ctx.opt.resume) share_checkpoint(ctx, *ranks, ctx.resumed_);
  const std::optional<Checkpoint>& cp = ctx.resumed();
  if (!cp) return rp;
  rp.done = stage_of(cp->stage);
  rp.state = json::parse(cp->state);
  const json& st = rp.state;
  rp.ab_replicates = st.at("ab_replicates").get<int>();
  rp.explored_days = st.at("explored_days").get<int>();
  // Data-parallel runs train on each rank's users' rows: only the same ranks continue them.
  if (ranks && !st.contains("shards"))
    throw ExperimentError(ctx.rec.file().string() + ": cannot resume under mpirun: the checkpoint was written by an "
                          "earlier mtfsim, which does not say how the run was sharded; resume it as one process");
  const int shards = st.value("shards", 0);
  if (shards != shard_count(ctx)) {
    const auto how = [](int n) {
      return n == 0 ? std::string("without --data-parallel")
                    : "with --data-parallel on " + std::to_string(n) + " MPI ranks";
    };
    throw ExperimentError(ctx.rec.file().string() + ": cannot resume: the run was started " + how(shards) +
                          " and is resumed " + how(shard_count(ctx)) + "; resume it as it was started (mpirun -np " +
                          std::to_string(std::max(shards, 1)) + " mtfsim run ... --resume" +
                          (shards ? " --data-parallel" : "") + ")");
  }

  // Metric rows: the ones before the checkpoint, as written.
  std::vector<MetricRow> metrics;
  if (!ranks || ranks->root()) {
    metrics = read_run(ctx.rec.file(), /*with_transitions=*/false, /*with_rows=*/false, /*allow_partial=*/true).metrics;
    if (static_cast<std::int64_t>(metrics.size()) != cp->metrics_rows)
      throw ExperimentError(ctx.rec.file().string() + ": cannot resume: the checkpoint names " +
                            std::to_string(cp->metrics_rows) + " metric rows, the file holds " +
                            std::to_string(metrics.size()));
  }
  if (ranks) metrics = share_metrics(*ranks, std::move(metrics));
  ctx.restore_metrics(std::move(metrics));

  ctx.sessions_capped = st.at("sessions_capped").get<std::int64_t>();
  ctx.failed = st.at("failed").get<std::set<std::string>>();
  ctx.train_rows = st.at("train_rows").get<std::map<std::string, std::int64_t>>();
  for (const auto& [name, s] : st.at("train_seconds").items()) ctx.train_seconds[name] = from_bits(s);
  for (const auto& [metric, values] : st.at("offline").items())
    for (const auto& [policy, v] : values.items()) ctx.offline[metric][policy] = from_bits(v);
  for (const auto& [metric, arms] : st.at("online").items())
    for (const auto& [arm, lifts] : arms.items())
      for (const json& x : lifts) ctx.online[metric][arm].push_back(from_bits(x));

  for (const auto& [key, bytes] : cp->blobs)
    if (key.rfind("agent:", 0) == 0) ctx.agent[key.substr(6)] = agent_from_bytes(bytes, key);
    else if (key.rfind("deployed:", 0) == 0) ctx.deployed[key.substr(9)] = agent_from_bytes(bytes, key);
  if (ranks && !ranks->root())  // loaded: the ranks' copies of the agents' bytes go (rank 0's recorder keeps its own)
    std::erase_if(ctx.resumed_->blobs, [](const auto& kv) {
      return kv.first.rfind("agent:", 0) == 0 || kv.first.rfind("deployed:", 0) == 0;
    });

  // The exploration's data, as it was collected.
  // Out of core, read in chunks into the column files (never all in memory).
  if (ranks)
    share_data(ctx, *ranks);
  else if (ctx.col.out_of_core())
    read_transition_chunks(ctx.rec.file(), /*allow_partial=*/true, 1, 0, ctx.opt.chunk_rows,
                           [&](TransitionColumns& chunk) { ctx.col.add(chunk); });
  else
    *ctx.col.transitions = read_transition_columns(ctx.rec.file(), /*allow_partial=*/true);
  if (!ranks) ctx.col.add(std::span<const ImpressionRow>(read_impressions(ctx.rec.file(), /*allow_partial=*/true)));
  // Readable from here; the last seal unless the exploration has days left
  // (read_transition_columns leaves no spare capacity).
  ctx.col.seal(/*last=*/rp.done != Done::kExplorationRound);
  ctx.log("resumed after: " + cp->stage + " (" + std::to_string(ctx.M.size()) + " figures, " +
          std::to_string(ctx.col.size()) + " transitions)");
  return rp;
}

void restore_learner_policies(ExperimentContext& ctx, const ResumePoint& rp) {
  if (!rp.state.contains("learners")) return;
  for (const json& l : rp.state.at("learners"))
    ctx.policies.emplace_back(l.at("name").get<std::string>(),
                              agents::policy_from_json(l.at("policy"), ctx.policies[0].second));
}

}  // namespace mtf::experiments
