// Stage 6 of the protocol (see stages.h): the ground truth no paper could
// measure, every offline metric set against the policies' mean online lifts
// (Kendall tau over the A/B arms that were also evaluated offline).
#include <cmath>
#include <nlohmann/json.hpp>

#include "experiments/metric_keys.h"
#include "experiments/stages.h"

namespace mtf::experiments {

using nlohmann::json;

void compare_with_ground_truth(ExperimentContext& ctx) {
  const AbSpec& ab = *ctx.ex.ab;
  for (const std::string& online_metric : {ab.primary, std::string(keys::kRewardPerUserDay)}) {
    for (const auto& [metric, values] : ctx.offline) {
      std::vector<double> x, y;
      std::string used;
      for (const std::string& arm : ab.arms) {
        const auto it = values.find(arm);
        if (it == values.end() || !std::isfinite(it->second)) continue;
        const auto& lifts = ctx.online[online_metric][arm];
        if (lifts.empty()) continue;
        const double mean_lift = stats::summarise(lifts).mean;
        if (!std::isfinite(mean_lift)) continue;
        x.push_back(it->second);
        y.push_back(mean_lift);
        used += (used.empty() ? "" : ", ") + arm;
      }
      const double tau = x.size() >= 2 ? stats::kendall_tau_b(x, y) : std::nan("");
      ctx.M.push_back(plain(keys::kAgreement, metric, online_metric, tau,
                            static_cast<std::int64_t>(x.size()), json{{keys::detail::kPolicies, used}}.dump()));
    }
  }
}

}  // namespace mtf::experiments
