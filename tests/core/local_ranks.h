// Ranks as threads of one process (core/cluster.h's LocalCluster), for the
// tests of data-parallel computations.
#pragma once

#include <cstddef>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/cluster.h"
#include "core/transitions.h"

namespace mtf::testing {

/// Rank r's shard: the rows of users u with u mod ranks == r (whole sessions).
inline std::vector<TransitionRow> shard_of(const std::vector<TransitionRow>& rows, int ranks, int r) {
  std::vector<TransitionRow> out;
  for (const TransitionRow& t : rows)
    if (t.user % ranks == r) out.push_back(t);
  return out;
}

/// f(rank, cluster) on `ranks` threads, each with its LocalCluster of one hub;
/// every rank's result (default-constructible), in rank order. A rank that
/// throws leaves the hub (LocalHub::leave), so that the others' collectives
/// do not wait for it; after every thread ended, the first error thrown is
/// rethrown as it was thrown (the others may have failed after it, on what
/// the leaving rank no longer sent).
template <class F>
auto on_local_ranks(int ranks, F f) {
  using Result = decltype(f(0, std::declval<const Cluster&>()));
  LocalHub hub(ranks);
  std::vector<Result> out(static_cast<std::size_t>(ranks));
  std::exception_ptr first;
  std::mutex mu;
  std::vector<std::thread> pool;
  for (int r = 0; r < ranks; ++r)
    pool.emplace_back([&, r] {
      const LocalCluster cl(hub, r);
      try {
        out[static_cast<std::size_t>(r)] = f(r, cl);
      } catch (...) {
        {
          const std::lock_guard lock(mu);
          if (!first) first = std::current_exception();
        }
        hub.leave();
      }
    });
  for (auto& t : pool) t.join();
  if (first) std::rethrow_exception(first);
  return out;
}

}  // namespace mtf::testing
