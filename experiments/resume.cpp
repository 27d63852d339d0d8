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
#include <unistd.h>

#include <bit>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "agents/online/online_policies.h"
#include "experiments/stages.h"

namespace mtf::experiments {

using nlohmann::json;
namespace fs = std::filesystem;

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

/// A scratch file for Agent::save / load_agent, beside the run database.
fs::path scratch_file(const ExperimentContext& ctx) {
  fs::path p = ctx.rec.file();
  p += ".agent-" + std::to_string(::getpid()) + ".tmp";
  return p;
}

std::string agent_bytes(const ExperimentContext& ctx, const agents::Agent& a) {
  const fs::path tmp = scratch_file(ctx);
  a.save(tmp);
  std::ifstream in(tmp, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  fs::remove(tmp);
  return bytes;
}

std::unique_ptr<agents::Agent> agent_from_bytes(const ExperimentContext& ctx, const std::string& bytes) {
  const fs::path tmp = scratch_file(ctx);
  {
    std::ofstream out(tmp, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw ExperimentError(tmp.string() + ": cannot write an agent's checkpoint to restore it");
  }
  std::unique_ptr<agents::Agent> a = agents::load_agent(tmp);
  fs::remove(tmp);
  return a;
}

}  // namespace

void save_checkpoint(ExperimentContext& ctx, Done stage, int count, bool with_agents) {
  ctx.flush();
  if (ctx.opt.cluster && !ctx.opt.cluster->root()) return;  // rank 0 writes the run database
  json st;
  st["ab_replicates"] = stage == Done::kAbReplicate ? count : 0;
  st["explored_days"] = stage == Done::kExplorationRound ? count : 0;
  st["sessions_capped"] = ctx.sessions_capped;
  st["failed"] = ctx.failed;
  st["train_rows"] = ctx.train_rows;
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
  if (stage == Done::kLearnerRound) c.blobs["learner_simulator"] = std::move(ctx.learner_sim_state);  // not a second copy
  if (stage == Done::kAbReplicate || stage == Done::kExplorationRound) c.stage += " " + std::to_string(count);
  c.state = st.dump();
  c.metrics_rows = static_cast<std::int64_t>(ctx.M.size());
  if (with_agents)
    for (const auto& [name, agent] : ctx.agent)
      if (agent) c.blobs["agent:" + name] = agent_bytes(ctx, *agent);
  if (stage == Done::kExplorationRound) c.blobs["simulator"] = ctx.sim.save_state();
  if (stage == Done::kExplorationRound || with_agents)  // the last round's verdict too
    for (const auto& [name, agent] : ctx.deployed) c.blobs["deployed:" + name] = agent_bytes(ctx, *agent);
  ctx.rec.checkpoint(std::move(c), /*wait=*/true);  // a kill after this returns resumes from here
}

ResumePoint restore_checkpoint(ExperimentContext& ctx) {
  ResumePoint rp;
  const std::optional<Checkpoint>& cp = ctx.rec.resumed();
  if (!cp) return rp;
  rp.done = stage_of(cp->stage);
  rp.state = json::parse(cp->state);
  const json& st = rp.state;
  rp.ab_replicates = st.at("ab_replicates").get<int>();
  rp.explored_days = st.at("explored_days").get<int>();

  // Metric rows: the ones before the checkpoint, as written.
  RunContents run = read_run(ctx.rec.file(), /*with_transitions=*/false, /*with_rows=*/false,
                             /*allow_partial=*/true);
  if (static_cast<std::int64_t>(run.metrics.size()) != cp->metrics_rows)
    throw ExperimentError(ctx.rec.file().string() + ": cannot resume: the checkpoint names " +
                          std::to_string(cp->metrics_rows) + " metric rows, the file holds " +
                          std::to_string(run.metrics.size()));
  ctx.restore_metrics(std::move(run.metrics));

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
    if (key.rfind("agent:", 0) == 0) ctx.agent[key.substr(6)] = agent_from_bytes(ctx, bytes);
    else if (key.rfind("deployed:", 0) == 0) ctx.deployed[key.substr(9)] = agent_from_bytes(ctx, bytes);

  // The exploration's data, as it was collected.
  // Out of core, read in chunks into the column files (never all in memory).
  if (ctx.col.out_of_core())
    read_transition_chunks(ctx.rec.file(), /*allow_partial=*/true, 1, 0, ctx.opt.chunk_rows,
                           [&](TransitionColumns& chunk) { ctx.col.add(chunk); });
  else
    *ctx.col.transitions = read_transition_columns(ctx.rec.file(), /*allow_partial=*/true);
  ctx.col.add(std::span<const ImpressionRow>(read_impressions(ctx.rec.file(), /*allow_partial=*/true)));
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
