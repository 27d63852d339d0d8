// One request's ranking pipeline: retrieval of N candidates biased toward the
// user's interests, the multi-task model's predictions for every candidate,
// fusion into one score, and the top-L list.
//
// The multi-task model (MTL) sees the truth of users/user_model.h through a
// distortion per task t (seed-independent of the request):
//   x_t  = the true conditional logit of task t for (user, item, state)
//   g_t  = sigmoid(scale_t x_t + offset_t + noise_t eps_t(user, item))
// with eps a fixed error per (user, item, task) of unit variance taken from a
// hash (a model's error on a pair does not change between requests, and a hash
// costs far less than a random draw). Predictions: play = g_play;
// valid = g_play g_valid; watch_time = g_play (duration / 60) g_watch (minutes);
// finish, like, share, comment = g_play g_t; skip = 1 - g_play + g_play g_skip.
// The conditional logits use the logistic approximation Phi(x) ~ sigmoid(1.702 x)
// of the truth's probit terms; that approximation is part of the model's error.
#pragma once

#include <Eigen/Core>
#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "sim/catalogue.h"
#include "sim/fusion.h"
#include "core/rng.h"
#include "users/user_model.h"

namespace mtf {

class Ranker {
 public:
  /// Buffers reused across requests (one per simulation thread).
  struct Workspace {
    std::vector<int> items;                 ///< candidate item ids (padded: use the first candidates())
    std::vector<std::uint64_t> error_bits;  ///< retrieval's per-candidate hashes
    std::vector<std::uint32_t> error_lo, error_hi;  ///< per candidate: MTL error bytes of tasks 0-3, 4-7
    Eigen::ArrayXf m, dur, vl, sl, minutes;  ///< per candidate: interest, dur_feature, valid and skip logits, minutes
    ItemTerms<Eigen::ArrayXf> terms;         ///< per candidate: the item's part of the logits
    ResponseLogits<Eigen::ArrayXf> logits;  ///< the truth's logits per candidate
    std::array<Eigen::ArrayXf, kNumTasks> pred;  ///< MTL predictions per task
    Eigen::ArrayXf score;
    std::vector<int> order;
    std::vector<float> alias_prob;  ///< retrieval's alias table over topics
    std::vector<int> alias, small, large;
    std::vector<int> column;          ///< retrieval: topic column per candidate
    std::vector<float> coin;          ///< retrieval: alias coin (> 1: uniform draw)
    std::vector<std::uint32_t> frac;  ///< retrieval: 16-bit item fraction
    void resize(int n);
  };

  Ranker(const Catalogue& catalogue, const RetrievalParams& retrieval, const MtlParams& mtl,
         const UserModel& model);

  int candidates() const { return n_; }
  int shown() const { return shown_; }

  /// Draws the candidates: a share interest_bias from topics in proportion to
  /// interest^2, the rest uniformly over topics; items uniform within a topic.
  void retrieve(std::span<const float> interests, Rng& rng, Workspace& ws) const;
  /// Fills ws.pred for every candidate (the user's truth coefficients `k`).
  void predict(const ResponseCoeffs& k, std::uint64_t user_key, std::span<const float> interests,
               Workspace& ws) const;
  /// Fills ws.score = sum_t weight_t log(pred_t + bias_t) (Formula 1 in log space / Eq. 1).
  void fuse(const FusionWeights& w, Workspace& ws) const;
  /// Writes the candidates' indices (into ws.items) of the top `shown` distinct
  /// items by score, best first; returns how many were written.
  int select_top(Workspace& ws, std::span<int> out) const;

  /// Tests only: use the portable scalar code instead of the AVX-512 paths
  /// (both must give identical results).
  void force_scalar(bool on) { force_scalar_ = on; }

  /// The MTL error of task t for (user, item), in [-1.73, 1.73] with unit variance.
  static float mtl_error(std::uint64_t user_key, int item, int task);

 private:
  /// What predict() reads of an item, packed in one 16-byte record so a candidate
  /// costs one load and the table stays in the L2 cache: seven fields quantised
  /// to 16 bits with a per-field scale (the field's largest magnitude / 32767, so
  /// the error is below 2e-5 of that magnitude; this rounding is part of the
  /// multi-task model's error, users react to the exact values) and the topic.
  enum PackedField { kTermPlay, kTermWatch, kTermInter, kDur, kValidLogit, kSkipLogit, kMinutes, kFields };
  struct alignas(16) PackedItem {
    std::int16_t q[kFields];
    std::uint16_t topic;
  };
  float field_scale_[kFields] = {};
  const Catalogue& cat_;
  std::vector<PackedItem> packed_;
  int n_, padded_, shown_;
  int max_topic_items_ = 0;
  bool force_scalar_ = false;
  float interest_bias_;
  MtlParams mtl_;
  float watch_noise_;
};

}  // namespace mtf
