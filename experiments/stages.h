// The stages of run_experiment (internal to experiments/), one file each, in
// protocol order; each reads and extends the shared ExperimentContext and
// appends its metric rows in a fixed order (see experiment.h for the protocol).
#pragma once

#include "experiments/context.h"

namespace mtf::experiments {

// training.cpp
/// Creates every agent of the experiment block, untrained, with its own sub-seed.
void create_agents(ExperimentContext& ctx);
/// Trains agent `a` on `data` for its steps; a diverged training is reported
/// (section training) and the agent marked failed.
void train_agent(ExperimentContext& ctx, const AgentSpec& a, const agents::Dataset& data);
/// Stage 2: trains each agent that does not explore progressively on its
/// dataset; the training rows of every agent.
void train_agents(ExperimentContext& ctx);

// exploration.cpp
/// Stage 1: the scenario's groups for its days, progressive rounds included
/// (their agents train after each round and become the next round's
/// baseline); the exploration cost against the control group; the density of
/// samples near the baseline.
void explore(ExperimentContext& ctx);

// online_learners.cpp
/// Stage 3: each online learner on its own users; its best policy joins the policies.
void run_online_learners(ExperimentContext& ctx);

// offline_evaluation.cpp
/// Stage 4: weighted GAUC, Conservative-OPE, FQE and NCIS of every policy.
void evaluate_offline(ExperimentContext& ctx);

// ab_test.cpp
/// Stage 5: the replicated A/B test of the experiment's arms.
void run_ab_tests(ExperimentContext& ctx);

// ground_truth.cpp
/// Stage 6: every offline metric against the arms' mean online lifts (Kendall tau).
void compare_with_ground_truth(ExperimentContext& ctx);

}  // namespace mtf::experiments
