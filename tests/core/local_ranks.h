// Ranks as threads of one process (core/cluster.h's LocalCluster), for the
// tests of data-parallel computations.
#pragma once

#include <cstddef>
#include <exception>
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
/// every rank's result (default-constructible), in rank order. A rank's error
/// is rethrown as it was thrown (the first in rank order), after every thread
/// ended. A rank that throws before a collective the others enter leaves them
/// waiting: the computation under test must fail on every rank together.
template <class F>
auto on_local_ranks(int ranks, F f) {
  using Result = decltype(f(0, std::declval<const Cluster&>()));
  LocalHub hub(ranks);
  std::vector<Result> out(static_cast<std::size_t>(ranks));
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(ranks));
  std::vector<std::thread> pool;
  for (int r = 0; r < ranks; ++r)
    pool.emplace_back([&, r] {
      const LocalCluster cl(hub, r);
      try {
        out[static_cast<std::size_t>(r)] = f(r, cl);
      } catch (...) {
        errors[static_cast<std::size_t>(r)] = std::current_exception();
      }
    });
  for (auto& t : pool) t.join();
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
  return out;
}

}  // namespace mtf::testing
