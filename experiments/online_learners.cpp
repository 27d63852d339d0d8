// Stage 3 of the protocol (see stages.h): online learners (ES, BO, grid
// search), each for its rounds of simulated days on its own users.
#include <algorithm>
#include <bit>
#include <nlohmann/json.hpp>

#include "agents/online/online_learner.h"
#include "experiments/metric_keys.h"
#include "experiments/stages.h"

namespace mtf::experiments {

using nlohmann::json;

void run_online_learners(ExperimentContext& ctx, const ResumePoint& rp) {
  const Scenario& sc = ctx.sc;
  using namespace keys;
  // A resumed run: the learners finished before its checkpoint are among the
  // policies already; the one it was running replays its rounds.
  const bool resuming = rp.done == Done::kLearnerRound;
  const std::size_t first = ctx.policies.size() - 1;  // learners finished (after the baseline)
  for (std::size_t li = first; li < ctx.ex.learners.size(); ++li) {
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
    Simulator lsim(ls, init, ctx.sub_seed(kLearnerUsers, li), UserSharding{ctx.opt.cluster});  // each rank holds its users
    RunOptions lo;
    lo.threads = ctx.opt.threads;
    lo.cluster = ctx.opt.cluster;
    const auto tl = Clock::now();
    int first_round = 0;
    ctx.learner_rounds = {{"learner", li}, {"rounds", json::array()}};
    if (resuming && li == first && rp.state.contains("learner_rounds") &&
        rp.state["learner_rounds"].at("learner").get<std::size_t>() == li) {
      // propose and observe are deterministic: the same observations give
      // the learner's state after those rounds, to the bit.
      for (const json& r : rp.state["learner_rounds"].at("rounds")) {
        (void)learner->propose();
        std::vector<double> score;
        for (const json& x : r.at("scores")) score.push_back(std::bit_cast<double>(x.get<std::uint64_t>()));
        learner->observe(score, r.at("users").get<std::vector<std::int64_t>>());
        ctx.learner_rounds["rounds"].push_back(r);
        ++first_round;
      }
      std::string joined;
      lsim.restore_state(ctx.resumed()->large("learner_simulator", joined));
      ctx.release_resumed("learner_simulator");
    }
    for (int round = first_round; round < l.rounds; ++round) {
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
      json bits = json::array();
      for (double x : score) bits.push_back(std::bit_cast<std::uint64_t>(x));
      ctx.learner_rounds["rounds"].push_back({{"scores", bits}, {"users", users}});
      const double best = *std::max_element(score.begin(), score.end());
      double mean = 0;
      for (double x : score) mean += x / K;
      ctx.M.push_back(plain(kOnlineLearning, l.name, kBestCandidateReward, best, round));
      ctx.M.push_back(plain(kOnlineLearning, l.name, kMeanCandidateReward, mean, round));
      ctx.log("learner " + l.name + ": round " + std::to_string(round + 1) + "/" +
              std::to_string(l.rounds) + ", mean candidate reward/user-day " +
              std::to_string(mean));
      if (round + 1 < l.rounds) {
        ctx.learner_sim_state = lsim.save_state();
        save_checkpoint(ctx, Done::kLearnerRound, 0, false);
      }
    }
    ctx.M.push_back(plain(kOnlineLearning, l.name, kUserDays,
                          static_cast<double>(l.users) * l.rounds * l.days_per_round, std::nullopt,
                          learner->describe().dump()));
    ctx.M.push_back(plain(kOnlineLearning, l.name, kSeconds, seconds_since(tl)));
    ctx.policies.emplace_back(l.name, learner->best());
  }
}

}  // namespace mtf::experiments
