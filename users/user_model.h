// How a user reacts: true propensities, multi-behaviour feedback, satisfaction,
// fatigue, interests, the leave hazard and the return time.
//
// The true propensities are linear logits in the item's attributes with
// coefficients that depend on the user and the user's current state. They are
// computed once per request (ResponseCoeffs) and evaluated both by the user,
// one shown item at a time, and by the simulator's multi-task model, for all
// candidates at once (the template `response_logits` works on floats and on
// Eigen arrays alike), so the truth has a single definition.
//
// Equations (parameters in users/user_params.h):
//   m = interest in the item's topic (0..1), c clickbait, q quality, e appeal,
//   dur = log10(duration / 30 s), tau = taste for long videos, F fatigue.
//   play logit      lp = play_bias + play_interest m + play_clickbait c
//                        + play_length tau dur + play_quality (q - 0.5) - play_fatigue F
//   watch logit     L  = watch_bias + watch_interest m + watch_quality (q - 0.5)
//                        - watch_clickbait c + (watch_length tau - watch_duration) dur - watch_fatigue F
//   watch fraction  f  = sigmoid(L + watch_noise z), z ~ N(0, 1) shared by all of the item's behaviours
//   interaction     li = {like,share,comment}_bias + interaction_u + interact_appeal e
//                        + interact_quality (q - 0.5) + interact_watch m  (+ 0.8 z when drawn)
//   utility of a played item  u = f (0.4 + q)(0.6 + 0.8 m)(1 + 0.5 tau dur) - kappa c (1 - f)
//                                 + 0.3 (like + share + comment); 0.05 for an item slid past
//   fatigue per item  F += fatigue_per_item + fatigue_unenjoyed (1 - f)
//                        + fatigue_per_minute max(0.2, 1 - 0.7 tau) (watch minutes);
//                      a list repeating one topic more than twice adds fatigue_repetition per extra item
//   satisfaction    S <- S + rate (mean u over the list - utility_reference - S)
//   leave hazard    sigmoid(leave_bias - patience - leave_satisfaction S + leave_fatigue F
//                           + leave_requests n / 10)
//   return          next start of a Poisson process with rate sessions_per_day / 24 h
//                   * exp(return_satisfaction S) * activity(hour) / mean activity;
//                   activity: 0 at night, 0.25 + exp(-d^2 / 18) at d hours from the preferred hour
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "core/rng.h"
#include "core/tasks.h"
#include "users/user.h"
#include "users/user_params.h"

namespace mtf {

/// The attributes of an item a user reacts to.
struct ItemView {
  int topic = 0;
  float duration = 30;   ///< seconds
  float quality = 0.5f;
  float clickbait = 0;
  float appeal = 0.5f;
  float dur_feature = 0; ///< log10(duration / 30 s)
};

/// Per (user, request) coefficients of the truth's linear logits. The item-attribute
/// coefficients (*_c, *_q, inter_e) are the same for every user, so the simulator
/// can precompute each item's part once (item_terms) and add the user's part per
/// request (response_logits).
struct ResponseCoeffs {
  float play0, play_m, play_c, play_q, play_d;
  float watch0, watch_m, watch_c, watch_q, watch_d;
  float like0, share0, comment0, inter_e, inter_q, inter_m;
  float watch_noise;
};

/// True logits of one item (or of many: T may be an Eigen array).
template <typename T>
struct ResponseLogits {
  T play, watch, like, share, comment;
};

/// The user-independent part of an item's logits.
template <typename T>
struct ItemTerms {
  T play, watch, inter;
};

template <typename T>
ItemTerms<T> item_terms(const ResponseCoeffs& k, const T& c, const T& q, const T& e) {
  return {k.play_c * c + k.play_q * q, k.watch_c * c + k.watch_q * q, k.inter_e * e + k.inter_q * q};
}

/// Writes the true logits of one item (T = float) or of many (T = Eigen arrays,
/// O = Eigen arrays reused across requests: no allocation). `m` is the user's
/// interest in the item's topic, `dur` the item's dur_feature.
template <typename T, typename O>
void response_logits(const ResponseCoeffs& k, const T& m, const T& dur, const ItemTerms<T>& item,
                     ResponseLogits<O>& out) {
  out.play = k.play0 + k.play_m * m + k.play_d * dur + item.play;
  out.watch = k.watch0 + k.watch_m * m + k.watch_d * dur + item.watch;
  out.like = k.like0 + k.inter_m * m + item.inter;
  out.share = k.share0 + k.inter_m * m + item.inter;
  out.comment = k.comment0 + k.inter_m * m + item.inter;
}

/// What one user did with one shown item.
struct ItemFeedback {
  bool played = false, valid = false, finished = false, liked = false, shared = false,
       commented = false, skipped = false;
  float watch_seconds = 0;
  float dwell_seconds = 0;
  float fraction = 0;  ///< watch fraction (0 when not played)
  float utility = 0;   ///< contribution to satisfaction
};

/// The behaviour counts of one shown item (shown = 1).
inline BehaviourCounts counts_of(const ItemFeedback& fb) {
  BehaviourCounts c;
  c.shown = 1;
  c.plays = fb.played;
  c.valid = fb.valid;
  c.finishes = fb.finished;
  c.likes = fb.liked;
  c.shares = fb.shared;
  c.comments = fb.commented;
  c.skips = fb.skipped;
  c.watch_seconds = fb.watch_seconds;
  c.dwell_seconds = fb.dwell_seconds;
  return c;
}

inline constexpr double kActivityFloor = 0.25;        // activity away from the preferred hour
inline constexpr double kActivitySpreadHours = 3.0;   // width of the activity bump

class UserModel {
 public:
  explicit UserModel(const UserDynamicsParams& p);
  const UserDynamicsParams& params() const { return p_; }

  /// Coefficients for the user's next request given the current state.
  ResponseCoeffs coeffs(const UserProfile& profile, const UserState& state) const;

  /// Draws the user's behaviours for one shown item. `interest` is the user's
  /// interest in the item's topic.
  ItemFeedback react(const ResponseCoeffs& k, const UserProfile& profile, const ItemView& item,
                     float interest, Rng& rng) const;

  /// Updates satisfaction, fatigue, history and interests after a list was shown.
  /// `interests` is the user's whole interest vector; `neighbours(t)` gives the
  /// topic-graph neighbours as a span.
  template <typename Neighbours>
  void absorb(UserState& state, float taste_long, std::span<float> interests,
              std::span<const ItemView> items, std::span<const ItemFeedback> feedback,
              Neighbours&& neighbours) const;

  /// Probability of leaving the app after the request just absorbed.
  double leave_probability(const UserProfile& profile, const UserState& state) const;

  /// Start time of the user's next session after a session ended at `end`:
  /// the next event of a Poisson process with rate (sessions_per_day / 24 h)
  /// exp(return_satisfaction S) shaped over the day by activity().
  double next_session_start(const UserProfile& profile, const UserState& state, double end,
                            Rng& rng) const;

  /// Start time of the user's first session (the same process from time 0).
  double first_session_start(const UserProfile& profile, Rng& rng) const;

  /// Relative rate of starting a session at `hour` of the day: 0 at night,
  /// otherwise 0.25 + a Gaussian bump (3 h wide) around the preferred hour.
  double activity(double hour, double preferred_hour) const;
  /// Mean of activity() over the day (normalises the rate); tabulated for
  /// preferred hours in steps of 0.1 h.
  double mean_activity(double preferred_hour) const;

  /// Between sessions: fatigue recovers, satisfaction fades toward neutral.
  void rest(UserState& state, double gap_seconds) const;

  /// A session starts at `now`: rest since the last session ends, then the
  /// session's counters start afresh (`sessions_today` sessions so far today,
  /// no next session planned).
  void start_session(UserState& state, double now, int sessions_today) const;
  /// The user's first session of `day`: returns whether the user was active the
  /// day before, and marks `day` as the last active day.
  static bool mark_active(UserState& state, int day);
  /// A request's feedback was absorbed: counts it in the session (requests,
  /// last request, session totals and reward).
  static void record_request(UserState& state, const BehaviourCounts& counts, double reward);
  /// The session ends at `now`: closes its totals into the last-session features,
  /// counts it, and draws and returns the next session's start (also stored in
  /// state.next_session) from `rng`.
  double end_session(const UserProfile& profile, UserState& state, double now, Rng& rng) const;

  /// Once per day: part of the interest mass drifts to neighbouring topics.
  template <typename Neighbours>
  void drift_interests(std::span<float> interests, Rng& rng, Neighbours&& neighbours) const;

 private:
  void learn_interest(std::span<float> interests, int topic, float delta,
                      std::span<const int> nbs) const;
  double mean_activity_exact(double preferred_hour) const;
  UserDynamicsParams p_;
  std::vector<double> mean_activity_table_;  // 240 entries: preferred hour 0.0, 0.1, ... 23.9
};

// ---- templates ----

template <typename Neighbours>
void UserModel::absorb(UserState& state, float taste_long, std::span<float> interests,
                       std::span<const ItemView> items, std::span<const ItemFeedback> feedback,
                       Neighbours&& neighbours) const {
  float utility = 0;
  int topic_count_max = 0;
  // Users with a taste for long videos tire less from watching them.
  const float length_tiredness = std::fmax(0.2f, 1.0f - 0.7f * taste_long);
  for (std::size_t i = 0; i < items.size(); ++i) {
    const ItemFeedback& fb = feedback[i];
    utility += fb.utility;
    state.fatigue += static_cast<float>(p_.fatigue_per_item +
                                        p_.fatigue_per_minute * length_tiredness * fb.watch_seconds / 60.0 +
                                        p_.fatigue_unenjoyed * (1.0f - (fb.played ? fb.fraction : 0.5f)));
    std::uint8_t bits = 0;
    if (fb.played) bits |= BehaviourHistory::kPlayed;
    if (fb.valid) bits |= BehaviourHistory::kValid;
    if (fb.finished) bits |= BehaviourHistory::kFinished;
    if (fb.liked) bits |= BehaviourHistory::kLiked;
    if (fb.shared) bits |= BehaviourHistory::kShared;
    if (fb.commented) bits |= BehaviourHistory::kCommented;
    if (fb.skipped) bits |= BehaviourHistory::kSkipped;
    state.history.push(bits, fb.watch_seconds, items[i].topic);
    if (fb.played) {
      const float delta = static_cast<float>(p_.interest_learning) * (fb.fraction - 0.4f) * 2.0f;
      learn_interest(interests, items[i].topic, delta, neighbours(items[i].topic));
    }
    int same = 0;
    for (std::size_t j = 0; j < items.size(); ++j) same += items[j].topic == items[i].topic;
    topic_count_max = same > topic_count_max ? same : topic_count_max;
  }
  // A list that repeats one topic tires more than a varied one.
  if (topic_count_max > 2)
    state.fatigue += static_cast<float>(p_.fatigue_repetition) * static_cast<float>(topic_count_max - 2);
  const float mean_u = items.empty() ? 0.0f : utility / static_cast<float>(items.size());
  state.satisfaction += static_cast<float>(p_.satisfaction_rate) *
                        (mean_u - static_cast<float>(p_.utility_reference) - state.satisfaction);
}

template <typename Neighbours>
void UserModel::drift_interests(std::span<float> interests, Rng& rng, Neighbours&& neighbours) const {
  const int topics = static_cast<int>(interests.size());
  const int from = static_cast<int>(rng.below(static_cast<std::uint32_t>(topics)));
  std::span<const int> nbs = neighbours(from);
  if (nbs.empty()) return;
  const int to = nbs[rng.below(static_cast<std::uint32_t>(nbs.size()))];
  const float moved = static_cast<float>(p_.interest_daily_drift) * interests[from];
  interests[from] -= moved;
  interests[to] = std::fmin(1.0f, interests[to] + moved);
}

}  // namespace mtf
