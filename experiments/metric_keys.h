// The names of the rows in table `metrics` of a run database: sections,
// subjects and metrics that the experiment stages write and the report and the
// regression bands read. One spelling for both sides.
#pragma once

#include "metrics/user_metrics.h"

namespace mtf::experiments::keys {

// Sections, in the order the protocol writes them: exploration (lifts of each
// group against the control) and exploration_level (each group's own values),
// density (samples near the baseline), progressive, training, online_learning,
// offline, ab_level (each arm's own values), ab (lifts against the control arm
// per replicate), ab_cuped (CUPED-adjusted lifts), ab_summary (lifts over the
// replicates), ab_daily (each arm's active users and return rate per day),
// agreement (offline metric against online lift), run, curve (learning
// curves), action_histogram (each policy's actions on a probe of logged states).
inline constexpr const char* kExploration = "exploration";
inline constexpr const char* kExplorationLevel = "exploration_level";
inline constexpr const char* kDensity = "density";
inline constexpr const char* kProgressive = "progressive";
inline constexpr const char* kTraining = "training";
inline constexpr const char* kOnlineLearning = "online_learning";
inline constexpr const char* kOffline = "offline";
inline constexpr const char* kAbLevel = "ab_level";
inline constexpr const char* kAb = "ab";
inline constexpr const char* kAbCuped = "ab_cuped";
inline constexpr const char* kAbSummary = "ab_summary";
inline constexpr const char* kAgreement = "agreement";
/// Each offline metric against the oracle's truth (oracle_stage.cpp): subject
/// the offline metric, metric the oracle's metric, value Kendall tau over the
/// policies both evaluated (details: kPolicies), n their count.
inline constexpr const char* kOpeVsOracle = "ope_vs_oracle";
/// The objective-alignment sweep (alignment.cpp): subject the policy
/// ("baseline", "constant:<k>"; details: the action), metric the objective
/// (reward_per_user_day, reward_per_request, discounted_return_per_session@<gamma>
/// for the session formulation, chained_return_per_user@<gamma> for the
/// cross-session one), n the users.
inline constexpr const char* kAlignment = "alignment";
/// Per objective (subject) its Kendall tau with reward_per_user_day (metric)
/// over the sweep; details: the sweep's best policy by that objective, its
/// reward per user-day's lift over the baseline (%), and the sweep's best lift.
inline constexpr const char* kAlignmentTau = "alignment_tau";
/// The objective of a per-request (gamma 0, no session) agent: reward per request.
inline constexpr const char* kRewardPerRequest = "reward_per_request";
/// An estimator's error against the oracle, per policy: subject the policy,
/// metric the estimator (fqe, conservative_ope, with "@dataset" for an extra
/// OPE dataset), value (estimate - truth) / |truth| against the oracle's value
/// of the estimator's objective: the discounted return per session for a
/// session-formulation dataset, the chained return per session for a
/// cross-session one discounted per request; details: the estimate, the truth,
/// its half-width, the oracle's metric and the gamma. Written only when the
/// estimators' gamma is the oracle's (none for a dataset discounted by
/// elapsed time).
inline constexpr const char* kOpeError = "ope_error";
inline constexpr const char* kRun = "run";
/// An agent's learning curve (agents/curves.h): rep is the agent's steps trained.
inline constexpr const char* kCurve = "curve";
/// An off-policy estimator's fit (FQE, Conservative-OPE): subject the policy,
/// metric "<method>/estimate" (the estimate if the fit stopped at that step),
/// "<method>/td_loss", "<method>/cql_regulariser"; rep the step, n the transitions.
inline constexpr const char* kOpeCurve = "ope_curve";
/// The oracle stage: each policy's true value on the same fresh users (subject:
/// the policy; ci: its 95% interval), and paired differences (subject
/// "POLICY vs REFERENCE"; details: the reference, relative difference,
/// unpaired half-width, variance reduction).
inline constexpr const char* kOracle = "oracle";
inline constexpr const char* kOracleDiff = "oracle_diff";
/// The prefix of a behaviour policy's name in the oracle: "behaviour:GROUP".
inline constexpr const char* kBehaviourPrefix = "behaviour:";
/// The policy an "if_better" progressive group ends with, beside its agent: deployed:AGENT.
inline constexpr const char* kDeployedPrefix = "deployed:";
/// Each arm's day of the A/B test (replicate 0, after the pre-period): rep is
/// the day (0 = the first A/B day); metrics kActiveShare and kReturnRate.
inline constexpr const char* kAbDaily = "ab_daily";
/// The distribution of each policy's actions on a fixed probe of logged states
/// (offline_evaluation.cpp): subject the policy, metric "a<k>" for action
/// dimension k, value the mean action, n the probe's states; details hold the
/// dimension's label and the histogram (kLabel, kLo, kHi, kCounts).
inline constexpr const char* kActionHistogram = "action_histogram";

// Subjects that are not a group, policy, agent or learner name.
inline constexpr const char* kAll = "all";
/// The production baseline policy, always the first policy evaluated.
inline constexpr const char* kBaseline = "baseline";
inline constexpr const char* kGaussian = "gaussian";
inline constexpr const char* kBoundedUniform = "bounded_uniform";
inline constexpr const char* kRatio = "ratio";

// Metrics of exploration, density, progressive, training, online_learning and run.
inline constexpr const char* kTransitions = "transitions";
inline constexpr const char* kImpressions = "impressions";
inline constexpr const char* kShareNearBaseline = "share_near_baseline";
inline constexpr const char* kMeasured = "measured";
inline constexpr const char* kAnalytic = "analytic";
inline constexpr const char* kLog2Analytic = "log2_analytic";
inline constexpr const char* kTransitionsAfterRound = "transitions_after_round";
// progressive, "accept": "if_better" (rep: the round): both estimates on the
// round's held-out users and whether the new agent became the baseline.
inline constexpr const char* kCandidateEstimate = "candidate_estimate";
inline constexpr const char* kDeployedEstimate = "deployed_estimate";
inline constexpr const char* kAccepted = "accepted";
inline constexpr const char* kDivergedAtStep = "diverged_at_step";
inline constexpr const char* kSteps = "steps";
inline constexpr const char* kSeconds = "seconds";
inline constexpr const char* kBestCandidateReward = "best_candidate_reward_per_user_day";
inline constexpr const char* kMeanCandidateReward = "mean_candidate_reward_per_user_day";
inline constexpr const char* kUserDays = "user_days";
inline constexpr const char* kWallSeconds = "wall_seconds";
inline constexpr const char* kRanks = "ranks";  ///< run/all: the MPI ranks the run was sharded over (1: one process)
/// run/all, 1 where the offline agents trained data-parallel over the ranks
/// (ExperimentOptions::data_parallel; absent otherwise).
inline constexpr const char* kDataParallel = "data_parallel";
/// exploration/all, sharded runs (ExperimentOptions::data_parallel): the
/// transitions and impressions the rank holding the most of them holds.
inline constexpr const char* kTransitionsLargestShard = "transitions_largest_shard";
inline constexpr const char* kImpressionsLargestShard = "impressions_largest_shard";
// Metrics of curve: "loss/<name>" for each of the agent's losses, and these.
inline constexpr const char* kLossPrefix = "loss/";
inline constexpr const char* kMeanQ = "mean_q";
inline constexpr const char* kOutsideBounds = "outside_bounds";
inline constexpr const char* kBaselineDistance = "baseline_distance";
inline constexpr const char* kQData = "q_data";
inline constexpr const char* kMcReturn = "mc_return";
inline constexpr const char* kDrift = "drift";
/// curve, at the convergence checkpoints (experiment block "convergence"): the
/// oracle's reward per user-day of the agent's policy at that step (ci: its
/// 95% interval), and its paired difference with the baseline policy (ci: the
/// paired interval; details: reference, relative_percent).
inline constexpr const char* kEstimateSuffix = "/estimate";
inline constexpr const char* kTdLossSuffix = "/td_loss";
inline constexpr const char* kRegulariserSuffix = "/cql_regulariser";
inline constexpr const char* kOracleReward = "oracle/reward_per_user_day";
inline constexpr const char* kOracleVsBaseline = "oracle/vs_baseline";
/// training: 1 when the curve was flat where the training stopped, else 0
/// (details: verdict, checkpoints, window, tolerance).
inline constexpr const char* kConverged = "converged";
/// ab_daily: users active that day / users of the arm (n: the arm's users).
inline constexpr const char* kActiveShare = "active_share";
/// Sessions the scenario's limits ended, over every simulation of the run.
inline constexpr const char* kSessionsCapped = "sessions_capped";

// Offline metrics: weighted GAUC and the off-policy estimators (the methods of
// the experiment block's "offline" entry).
inline constexpr const char* kWeightedGauc = "weighted_gauc";
inline constexpr const char* kConservativeOpe = "conservative_ope";
inline constexpr const char* kFqe = "fqe";
inline constexpr const char* kNcis = "ncis";

// A/B metrics: user-level metrics of metrics/user_metrics.h (ab_metrics() lists
// them with their labels and kinds), named there for the summary of a plain run too.
using user_metric::kActiveDayShare;
using user_metric::kDiscountedReturn;
using user_metric::kChainedReturn;
using user_metric::kChainedSessionReturn;
using user_metric::kChainedTailWeight;
using user_metric::kDwellPerUserDay;
using user_metric::kPositiveRate;
using user_metric::kReturnRate;
using user_metric::kRewardPerUserDay;
using user_metric::kValidPerUserDay;
using user_metric::kWatchPerUserDay;

// Keys inside a row's `details` JSON that the report or the regression bands read.
namespace detail {
inline constexpr const char* kSigma = "sigma";        ///< density: the Gaussian exploration's sigma
inline constexpr const char* kBound = "bound";        ///< density: the bounded uniform half-width
inline constexpr const char* kRadius = "radius";      ///< density: the radius counted as "near"
inline constexpr const char* kDims = "dims";          ///< density: action dimensions
inline constexpr const char* kMethod = "method";      ///< progressive acceptance: the estimator that decided
inline constexpr const char* kType = "type";          ///< training: the agent's type
inline constexpr const char* kDataset = "dataset";    ///< training: its dataset
inline constexpr const char* kHyperparameters = "hyperparameters";  ///< training: as resolved
inline constexpr const char* kControl = "control";    ///< lifts: the control's level
inline constexpr const char* kTreatment = "treatment";  ///< lifts: the treatment's level
inline constexpr const char* kNControl = "n_control";   ///< lifts: users in the control arm
inline constexpr const char* kTheta = "theta";        ///< ab_cuped: the CUPED coefficient
inline constexpr const char* kVarianceReduction = "variance_reduction";  ///< ab_cuped
inline constexpr const char* kSd = "sd";              ///< ab_summary: sd of the replicates' lifts
inline constexpr const char* kMin = "min";            ///< ab_summary
inline constexpr const char* kMax = "max";            ///< ab_summary
inline constexpr const char* kPolicies = "policies";  ///< agreement: the policies behind a tau
inline constexpr const char* kFormulation = "formulation";  ///< training/seconds: the dataset's MDP formulation
inline constexpr const char* kDiscountSeconds = "discount_seconds";  ///< training/seconds: the dataset's elapsed-time discount unit (0: per request)
inline constexpr const char* kRewardScale = "reward_scale";  ///< training/seconds: Agent::reward_scale()
inline constexpr const char* kAction = "action";    ///< alignment: the constant action
inline constexpr const char* kBestPolicy = "best_policy";  ///< alignment_tau
inline constexpr const char* kLiftPercent = "lift_percent";  ///< alignment_tau
inline constexpr const char* kBestPossiblePercent = "best_possible_percent";  ///< alignment_tau
inline constexpr const char* kEstimate = "estimate";  ///< ope_error: the estimator's value
inline constexpr const char* kTruth = "truth";        ///< ope_error: the oracle's value
inline constexpr const char* kTruthHalfWidth = "truth_half_width";  ///< ope_error: its 95% half-width
inline constexpr const char* kGamma = "gamma";        ///< ope_error: the estimators' and the oracle's gamma
inline constexpr const char* kOracleMetric = "oracle_metric";  ///< ope_error: the oracle's metric the estimate is held against
inline constexpr const char* kTruthTailWeight = "truth_tail_weight";  ///< ope_error, chained: the oracle's chained_tail_weight
inline constexpr const char* kPolicy = "policy";      ///< oracle_diff: the policy compared
inline constexpr const char* kReference = "reference";  ///< oracle_diff: what it is compared with
inline constexpr const char* kRelativePercent = "relative_percent";  ///< oracle_diff
inline constexpr const char* kUnpairedHalfWidth = "unpaired_half_width";  ///< oracle_diff
inline constexpr const char* kVerdict = "verdict";  ///< training/converged: convergence.h's verdict
inline constexpr const char* kCheckpoints = "checkpoints";  ///< training/converged: checkpoints evaluated
inline constexpr const char* kWindow = "window";      ///< training/converged: the rule's window
inline constexpr const char* kMinStep = "min_step";   ///< training/converged: the first step the rule counts
inline constexpr const char* kTolerance = "tolerance";  ///< training/converged: the rule's tolerance (reward per user-day)
inline constexpr const char* kLabel = "label";        ///< action_histogram: "<task> pow" or "<task> bias"
inline constexpr const char* kLo = "lo";              ///< action_histogram: the first bin's lower edge
inline constexpr const char* kHi = "hi";              ///< action_histogram: the last bin's upper edge
inline constexpr const char* kCounts = "counts";      ///< action_histogram: actions per bin (equal widths)
inline constexpr const char* kEstimator = "details";  ///< offline: the estimator's own figures (below)
inline constexpr const char* kEss = "ess";            ///< offline, NCIS: the weights' effective sample size
}  // namespace detail

}  // namespace mtf::experiments::keys
