// Stage 3 of the protocol (see stages.h): online learners (ES, BO, grid
// search), each for its rounds of simulated days on its own users.
#include <algorithm>

#include "agents/online/online_learner.h"
#include "experiments/metric_keys.h"
#include "experiments/stages.h"

namespace mtf::experiments {

void run_online_learners(ExperimentContext& ctx) {
  const Scenario& sc = ctx.sc;
  using namespace keys;
  for (std::size_t li = 0; li < ctx.ex.learners.size(); ++li) {
    const LearnerSpec& l = ctx.ex.learners[li];
    auto learner =
        agents::make_online_learner(l.type, l.hyperparameters, ctx.S, ctx.A, ctx.policies[0].second,
                                    ctx.sub_seed(kLearnerSeed, li));
    const int K = learner->candidates_per_round();
    Scenario ls = sc;
    ls.population.size = l.users;
    ls.days = l.rounds * l.days_per_round;
    ls.groups.clear();
    for (int k = 0; k < K; ++k)
      ls.groups.push_back(GroupSpec{"candidate" + std::to_string(k), 1.0, PolicySpec{}});
    std::vector<PolicyPtr> init(static_cast<std::size_t>(K), ctx.policies[0].second);
    Simulator lsim(ls, init, ctx.sub_seed(kLearnerUsers, li));
    RunOptions lo;
    lo.threads = ctx.opt.threads;
    const auto tl = Clock::now();
    for (int round = 0; round < l.rounds; ++round) {
      const std::vector<PolicyPtr> cand = learner->propose();
      for (int k = 0; k < K; ++k) lsim.set_policy(k, cand[static_cast<std::size_t>(k)]);
      const RunResult r = lsim.run_days(l.days_per_round, lo, nullptr);
      ctx.sessions_capped += r.sessions_capped;
      std::vector<double> score(static_cast<std::size_t>(K));
      std::vector<std::int64_t> users(static_cast<std::size_t>(K));
      for (int k = 0; k < K; ++k) {
        double reward = 0;
        for (int d = 0; d < l.days_per_round; ++d) reward += r.metrics.at(k, d).reward;
        users[k] = r.metrics.at(k, 0).users;
        score[k] = users[k] > 0 ? reward / static_cast<double>(users[k]) / l.days_per_round : 0.0;
      }
      learner->observe(score, users);
      const double best = *std::max_element(score.begin(), score.end());
      double mean = 0;
      for (double x : score) mean += x / K;
      ctx.M.push_back(plain(kOnlineLearning, l.name, kBestCandidateReward, best, round));
      ctx.M.push_back(plain(kOnlineLearning, l.name, kMeanCandidateReward, mean, round));
      ctx.log("learner " + l.name + ": round " + std::to_string(round + 1) + "/" +
              std::to_string(l.rounds) + ", mean candidate reward/user-day " +
              std::to_string(mean));
    }
    ctx.M.push_back(plain(kOnlineLearning, l.name, kUserDays,
                          static_cast<double>(l.users) * l.rounds * l.days_per_round, std::nullopt,
                          learner->describe().dump()));
    ctx.M.push_back(plain(kOnlineLearning, l.name, kSeconds, seconds_since(tl)));
    ctx.policies.emplace_back(l.name, learner->best());
  }
}

}  // namespace mtf::experiments
