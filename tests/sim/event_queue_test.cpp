// The event kernel: time order, ties in scheduling order, run_until boundaries.
#include <doctest/doctest.h>

#include <vector>

#include "sim/event_queue.h"

using namespace mtf;

TEST_CASE("events run in time order whatever order they were scheduled in") {
  EventQueue q;
  q.schedule(30.0, {EventKind::kRequest, 3});
  q.schedule(10.0, {EventKind::kRequest, 1});
  q.schedule(20.0, {EventKind::kRequest, 2});
  std::vector<std::uint32_t> seen;
  std::vector<double> times;
  q.run_until(100.0, [&](const Event& e) {
    seen.push_back(e.subject);
    times.push_back(q.now());
  });
  CHECK(seen == std::vector<std::uint32_t>{1, 2, 3});
  CHECK(times == std::vector<double>{10.0, 20.0, 30.0});
  CHECK(q.now() == 100.0);
}

TEST_CASE("events at the same time run in the order they were scheduled") {
  EventQueue q;
  for (std::uint32_t i = 0; i < 50; ++i) q.schedule(5.0, {EventKind::kFeedback, i});
  std::vector<std::uint32_t> seen;
  q.run_until(5.0, [&](const Event& e) { seen.push_back(e.subject); });
  REQUIRE(seen.size() == 50);
  for (std::uint32_t i = 0; i < 50; ++i) CHECK(seen[i] == i);
}

TEST_CASE("a handler can schedule at the current time and that event runs after the ones already due") {
  EventQueue q;
  q.schedule(1.0, {EventKind::kRequest, 0});
  q.schedule(1.0, {EventKind::kRequest, 1});
  std::vector<std::uint32_t> seen;
  q.run_until(10.0, [&](const Event& e) {
    seen.push_back(e.subject);
    if (e.subject == 0) q.schedule(q.now(), {EventKind::kFeedback, 7});
  });
  CHECK(seen == std::vector<std::uint32_t>{0, 1, 7});
}

TEST_CASE("run_until leaves later events pending and includes events exactly at the limit") {
  EventQueue q;
  q.schedule(2.0, {EventKind::kSessionStart, 0});
  q.schedule(4.0, {EventKind::kSessionEnd, 1});
  q.schedule(6.0, {EventKind::kDayBoundary, 2});
  int ran = 0;
  q.run_until(4.0, [&](const Event&) { ++ran; });
  CHECK(ran == 2);
  CHECK(q.size() == 1);
  CHECK(q.next_time() == 6.0);
  CHECK(q.now() == 4.0);
}

TEST_CASE("pop takes events one at a time and a rewind lets independent subjects schedule earlier again") {
  EventQueue q;
  q.schedule(10.0, {EventKind::kRequest, 1});
  q.schedule(20.0, {EventKind::kRequest, 2});
  q.schedule(50.0, {EventKind::kDayBoundary, 0});
  CHECK(q.next_event().subject == 1);
  CHECK(q.pop().subject == 1);
  CHECK(q.now() == 10.0);
  CHECK(q.pop().subject == 2);
  CHECK(q.now() == 20.0);
  // Subject 1 waited since 10: after a rewind its next event may come before 20.
  q.rewind(10.0);
  CHECK(q.now() == 10.0);
  q.schedule(15.0, {EventKind::kFeedback, 1});
  CHECK(q.next_time() == 15.0);
  CHECK(q.pop().kind == EventKind::kFeedback);
  CHECK(q.now() == 15.0);
  CHECK(q.pop().kind == EventKind::kDayBoundary);
  CHECK(q.empty());
}
