// The discrete-event kernel: a clock and an event queue ordered by
// (simulated time, sequence number), so events at the same time run in the
// order they were scheduled. A plain object: the simulator owns one per block
// of users it simulates, so there is no global clock. The clock only moves
// forward, except through rewind(): for subjects that are independent of each
// other (the simulator's users), an event may be scheduled after later events of
// other subjects have run.
#pragma once

#include <cassert>
#include <cstdint>
#include <queue>
#include <vector>

#include "core/sim_time.h"

namespace mtf {

enum class EventKind : std::uint8_t {
  kSessionStart,
  kRequest,
  kFeedback,
  kSessionEnd,
  kDayBoundary,
};

/// An event: what happens, to whom (index of a user within the kernel's block).
struct Event {
  EventKind kind = EventKind::kRequest;
  std::uint32_t subject = 0;
};

class EventQueue {
 public:
  /// Schedules `event` at `time` (>= now()). Returns its sequence number.
  std::uint64_t schedule(SimTime time, Event event) {
    assert(time >= now_);
    const std::uint64_t seq = next_seq_++;
    heap_.push(Entry{time, seq, event});
    return seq;
  }

  /// Runs events with time <= `until` in (time, sequence) order, calling
  /// handler(event) with now() set to the event's time; handlers may schedule
  /// more events. Afterwards now() == until (or the last event's time if later
  /// events remain beyond `until`, now() is still `until`).
  template <typename Handler>
  void run_until(SimTime until, Handler&& handler) {
    while (!heap_.empty() && heap_.top().time <= until) {
      const Entry e = heap_.top();
      heap_.pop();
      now_ = e.time;
      handler(e.event);
    }
    if (until > now_) now_ = until;
  }

  /// Removes and returns the next event, setting now() to its time. Only when !empty().
  Event pop() {
    const Entry e = heap_.top();
    heap_.pop();
    now_ = e.time;
    return e.event;
  }
  /// The next event (not removed); only valid when !empty().
  const Event& next_event() const { return heap_.top().event; }

  /// Moves the clock back to `time` (<= now()) so that events from `time` on can
  /// be scheduled again. The queue still runs events in (time, sequence) order,
  /// but events already run at times after `time` are not undone: use it only
  /// when the events scheduled after the rewind concern subjects independent of
  /// those that ran since (the simulator finishes deferred requests this way).
  void rewind(SimTime time) {
    assert(time <= now_);
    now_ = time;
  }

  SimTime now() const { return now_; }
  bool empty() const { return heap_.empty(); }
  std::size_t size() const { return heap_.size(); }
  /// Time of the next event; only valid when !empty().
  SimTime next_time() const { return heap_.top().time; }

  /// Drops pending events and sets the clock (for reuse across blocks).
  void reset(SimTime now) {
    heap_ = {};
    now_ = now;
  }

 private:
  struct Entry {
    SimTime time;
    std::uint64_t seq;
    Event event;
  };
  struct Later {
    bool operator()(const Entry& a, const Entry& b) const {
      return a.time != b.time ? a.time > b.time : a.seq > b.seq;
    }
  };
  std::priority_queue<Entry, std::vector<Entry>, Later> heap_;
  std::uint64_t next_seq_ = 0;
  SimTime now_ = 0;
};

}  // namespace mtf
