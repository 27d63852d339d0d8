// The weighted GAUC of IntegratedRL-MTF, section 4.3.1: an offline
// metric of how well a fusion policy's final scores rank each user's impressions,
// where an impression counts in proportion to the reward it earned.
//
// The samples are user-item impressions from a test log. For each:
//   label  = 1 for a valid consumption (watched more than 10 s), else 0;
//   weight = the item's reward (IntegratedRL-MTF, Formula 2) + 1, computed by the caller;
//   score  = the final (fused) score the evaluated policy gives the item.
#pragma once

#include <cstdint>
#include <limits>
#include <span>

namespace mtf {

/// The weighted GAUC and how many users it rests on.
struct GaucResult {
  double gauc = std::numeric_limits<double>::quiet_NaN();  ///< NaN when no user has both classes
  std::int64_t users_used = 0;     ///< users with positive weight in both classes
  std::int64_t users_skipped = 0;  ///< users with one class only (or zero weight in one)
  double total_weight = 0;         ///< sum of the sample weights of the used users
};

/// Weighted GAUC (IntegratedRL-MTF, section 4.3.1), computed exactly as follows.
///
/// 1. The scores are min-max normalised to [0, 1] over the whole input,
///    s' = (s - min) / (max - min) (all 0 when max == min), as the paper does.
///    The map is monotone, so it changes no per-user AUC; it is kept to follow
///    the paper. Equal raw scores map to bit-identical normalised scores (same
///    expression, same inputs), so ties are exact; the only effect of the
///    normalisation is that two distinct raw scores closer than about one ulp
///    of (max - min) may round to one value and become a tie.
/// 2. Per user u, the weighted AUC over pairs of a positive i and a negative j:
///      AUC_u = sum w_i w_j ([s_i > s_j] + 0.5 [s_i == s_j]) / sum w_i w_j,
///    computed in O(n log n) by sorting the user's samples by score and sweeping
///    the tie groups (not by enumerating pairs). Users whose positive weight or
///    negative weight is 0 (a single class, or zero weights) are skipped and
///    counted in users_skipped.
/// 3. GAUC = sum_u W_u AUC_u / sum_u W_u over the used users, with W_u the user's
///    total sample weight (positives and negatives). This is GAUC's usual
///    weighting by impression count (Zhou et al., DIN), with each impression
///    counted by its sample weight, so users with more rewarding traffic count more.
///
/// Users need not be contiguous in the input; the result does not depend on the
/// order of the samples (bit for bit: samples are grouped by user, users taken
/// in ascending order, and each user's sorted by (score, label, weight) before
/// any sum). Input already sorted by user is read in place (the weighted GAUC
/// stage orders its impressions so, once for every policy it scores).
///
/// Requirements: all four spans the same length; label[i] in {0, 1}; weight[i]
/// finite and >= 0; score[i] finite. Violations throw std::invalid_argument
/// naming the argument and the index. Empty input gives gauc = NaN and zero counts.
/// Cost: O(n log n) time; extra memory one user's samples, and an index per
/// sample when the input is not sorted by user.
GaucResult weighted_gauc(std::span<const std::int64_t> user, std::span<const std::uint8_t> label,
                         std::span<const double> weight, std::span<const double> score);

/// The weighted GAUC of the union of `parts`, each weighted_gauc of a disjoint
/// set of users (a sharded computation: every user's samples in one part):
/// sum over the parts of gauc * total_weight (the part's sum_u W_u AUC_u; 0
/// for a part without used users) over the sum of total_weight, added in the
/// parts' order; the counts summed. NaN when no part used a user. Each part
/// normalised its own scores (step 1), which changes no per-user AUC but
/// for ties closer than an ulp.
GaucResult merge_gauc(std::span<const GaucResult> parts);

}  // namespace mtf
