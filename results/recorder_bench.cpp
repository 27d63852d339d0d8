// The recorder benchmark (bench_recorder): synthetic transitions written through
// a Recorder, timed wall clock and on the writer thread's CPU. Uses only the
// public API of results/recorder.h.
#include "results/recorder.h"

#include <chrono>
#include <thread>
#include <utility>
#include <vector>

namespace mtf {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------
// Benchmark
// ---------------------------------------------------------------------------

RecorderBenchResult bench_recorder(const fs::path& file, std::int64_t transitions, int state_dim,
                                   int action_dim, const RecorderOptions& opts) {
  RunInfo info;
  info.scenario_name = "bench";
  info.scenario_json = "{}";
  info.code_version = "bench";
  info.state_dim = state_dim;
  info.action_dim = action_dim;
  for (int i = 0; i < state_dim; ++i) info.state_features.push_back("s" + std::to_string(i));
  for (int i = 0; i < action_dim; ++i) info.action_names.push_back("a" + std::to_string(i));

  // Distinct, non-trivial float values so the blobs do not compress into anything special.
  TransitionRow tmpl;
  tmpl.group = 1;
  for (int i = 0; i < state_dim; ++i) {
    tmpl.state.push_back(0.1f * static_cast<float>(i) + 0.37f);
    tmpl.next_state.push_back(0.1f * static_cast<float>(i) + 0.41f);
  }
  for (int i = 0; i < action_dim; ++i) {
    tmpl.action.push_back(0.05f * static_cast<float>(i) - 0.3f);
    tmpl.baseline.push_back(0.04f * static_cast<float>(i) - 0.2f);
    tmpl.lower.push_back(-0.5f);
    tmpl.upper.push_back(0.5f);
  }
  tmpl.log_density = -3.25;
  tmpl.counts = {6, 3, 2, 1, 1, 0, 0, 1, 41.5f, 47.5f};

  constexpr std::int64_t kBatch = 4096;
  RecorderBenchResult r;
  r.transitions = transitions;
  Recorder rec(file, info, opts);
  rec.write_groups({{0, "a", 0.5, "constant", "{}", 10}, {1, "b", 0.5, "baseline", "{}", 10}});
  const auto t0 = std::chrono::steady_clock::now();
  for (std::int64_t done = 0; done < transitions; done += kBatch) {
    RecordBatch b;
    const std::int64_t n = std::min(kBatch, transitions - done);
    b.transitions.reserve(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
      TransitionRow& t = b.transitions.emplace_back(tmpl);
      const std::int64_t k = done + i;
      t.user = k / 8;
      t.step = static_cast<std::int32_t>(k % 8);
      t.time = static_cast<double>(k);
      t.reward = static_cast<float>(k % 7);
      t.done = k % 8 == 7;
      if (k % 8 == 7) {
        SessionRow s;
        s.user = t.user;
        s.requests = 8;
        s.counts = tmpl.counts;
        b.sessions.push_back(s);
      }
      if (k % 16 == 15) {
        UserDayRow u;
        u.user = t.user;
        u.sessions = 2;
        u.counts = tmpl.counts;
        b.user_days.push_back(u);
      }
    }
    rec.submit(std::move(b));
  }
  // Wait for the writer to drain the queue (finish() would also build indexes).
  while (rec.transitions_written() < transitions) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  const auto t1 = std::chrono::steady_clock::now();
  r.writer_cpu_seconds = rec.writer_cpu_seconds();
  rec.finish({{0, "a", "valid_consumption", 1.0}}, 0.0);
  const auto t2 = std::chrono::steady_clock::now();
  r.insert_seconds = std::chrono::duration<double>(t1 - t0).count();
  r.finish_seconds = std::chrono::duration<double>(t2 - t1).count();
  r.rows_per_cpu_second =
      r.writer_cpu_seconds > 0 ? static_cast<double>(transitions) / r.writer_cpu_seconds : 0;
  r.rows_per_second = static_cast<double>(transitions) / (r.insert_seconds + r.finish_seconds);
  return r;
}

double bench_recorder_rows_per_second(const fs::path& file, std::int64_t transitions,
                                      int state_dim, int action_dim) {
  return bench_recorder(file, transitions, state_dim, action_dim).rows_per_second;
}

}  // namespace mtf
