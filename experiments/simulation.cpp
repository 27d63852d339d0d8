// A plain simulation of a scenario's groups (see simulation.h).
#include "experiments/simulation.h"

#include <memory>
#include <string>

#include "experiments/agent_refs.h"

namespace mtf::experiments {

SimulationResult run_simulation(const Scenario& sc, const SimulationOptions& options) {
  GroupPolicies gp = group_policies(sc);
  for (const auto& [g, policy] : options.policies) {
    if (g < 0 || static_cast<std::size_t>(g) >= gp.policies.size())
      throw ScenarioError("run_simulation: group " + std::to_string(g) + " is not one of the scenario's " +
                          std::to_string(gp.policies.size()) + " groups");
    gp.policies[static_cast<std::size_t>(g)] = policy;
  }
  Simulator sim(sc, gp.policies, 0, UserSharding{options.cluster});  // each rank holds its users
  std::unique_ptr<Recorder> rec;
  const bool writer = options.cluster == nullptr || options.cluster->root();
  if (!options.out.empty() && writer) {
    RecorderOptions ropt;
    ropt.index_transitions = sc.record.index_transitions;
    ropt.replace_any_file = options.replace_any_file;
    rec = std::make_unique<Recorder>(options.out, sim.run_info(code_version(), options.threads), ropt);
    if (!gp.agents.empty()) rec->write_agents(gp.agents);  // the run keeps the agents it deployed
  }
  // Per-user totals for the lifts of each group over the first (the control):
  // users, not requests, are the independent samples.
  SimulationResult out;
  out.has_lifts = sc.groups.size() > 1 && sc.days <= UserTotals::kMaxDays;
  if (out.has_lifts) sim.track_user_totals(true);
  RunOptions ro;
  ro.threads = options.threads;
  ro.on_progress = options.on_progress;
  ro.cluster = options.cluster;
  out.run = sim.run(ro, rec.get());
  for (std::size_t g = 0; g < out.run.groups.size(); ++g)
    for (const auto& [name, value] : OnlineMetrics::rows(out.run.groups[g]))
      out.summary.push_back({static_cast<int>(g), out.run.groups[g].name, name, value});
  if (rec) rec->finish(out.summary, out.run.wall_seconds);
  if (out.has_lifts)
    out.lifts = lifts_against(sim.user_totals(), sim.group_assignment(), static_cast<int>(sc.groups.size()),
                              /*control=*/0, sc.days);
  return out;
}

}  // namespace mtf::experiments
