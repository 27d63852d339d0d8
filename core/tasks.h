// The multi-task model's tasks and the user behaviours they predict.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace mtf {

/// Tasks of the multi-task model (MTL). Predictions are probabilities, except
/// kWatchTime, which is expected watch time in minutes.
enum class Task : int {
  kPlay = 0,      ///< the user starts playing the item
  kValid = 1,     ///< valid consumption: watch time > 10 s
  kWatchTime = 2, ///< watch time (minutes)
  kFinish = 3,    ///< watched to the end
  kLike = 4,
  kShare = 5,
  kComment = 6,
  kSkip = 7,      ///< fast slide: dismissed within 3 s
};
inline constexpr int kNumTasks = 8;

inline constexpr std::array<std::string_view, kNumTasks> kTaskNames = {
    "play", "valid", "watch_time", "finish", "like", "share", "comment", "skip"};

inline std::optional<Task> task_from_name(std::string_view name) {
  for (int i = 0; i < kNumTasks; ++i)
    if (kTaskNames[i] == name) return static_cast<Task>(i);
  return std::nullopt;
}

/// Counts of what a user did with one shown list (one request).
struct BehaviourCounts {
  int shown = 0;
  int plays = 0;
  int valid = 0;          ///< plays with watch time > 10 s
  int finishes = 0;
  int likes = 0;
  int shares = 0;
  int comments = 0;
  int skips = 0;          ///< fast slides (< 3 s)
  double watch_seconds = 0;  ///< double: group totals over millions of user-days stay exact enough
  double dwell_seconds = 0;  ///< time in the app (watching + browsing)

  BehaviourCounts& operator+=(const BehaviourCounts& o) {
    shown += o.shown; plays += o.plays; valid += o.valid; finishes += o.finishes;
    likes += o.likes; shares += o.shares; comments += o.comments; skips += o.skips;
    watch_seconds += o.watch_seconds; dwell_seconds += o.dwell_seconds;
    return *this;
  }
};

/// One request's BehaviourCounts as the transition columns hold them: the
/// eight counts in 16 bits (a request shows at most 65,535 items), the times
/// in double as recorded. Converts back to BehaviourCounts exactly.
struct RequestCounts {
  std::uint16_t shown = 0, plays = 0, valid = 0, finishes = 0, likes = 0, shares = 0, comments = 0, skips = 0;
  double watch_seconds = 0, dwell_seconds = 0;

  /// Throws std::out_of_range naming the count that is negative or above 65,535.
  static RequestCounts of(const BehaviourCounts& c) {
    const auto narrow = [](int v, const char* name) {
      if (v < 0 || v > std::numeric_limits<std::uint16_t>::max())
        throw std::out_of_range(std::string("a request's ") + name + " count " + std::to_string(v) +
                                " is outside 0 .. 65535, the range the transition columns hold");
      return static_cast<std::uint16_t>(v);
    };
    RequestCounts r;
    r.shown = narrow(c.shown, "shown");
    r.plays = narrow(c.plays, "plays");
    r.valid = narrow(c.valid, "valid");
    r.finishes = narrow(c.finishes, "finishes");
    r.likes = narrow(c.likes, "likes");
    r.shares = narrow(c.shares, "shares");
    r.comments = narrow(c.comments, "comments");
    r.skips = narrow(c.skips, "skips");
    r.watch_seconds = c.watch_seconds;
    r.dwell_seconds = c.dwell_seconds;
    return r;
  }
  operator BehaviourCounts() const {
    return {shown, plays, valid, finishes, likes, shares, comments, skips, watch_seconds, dwell_seconds};
  }
};

}  // namespace mtf
