// The collectives built on Cluster (core/cluster.h), with ranks as threads of
// one process (LocalHub), so they are tested in every build.
#include <doctest/doctest.h>

#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/cluster.h"
#include "local_ranks.h"

using namespace mtf;

// Bytes of any size reach rank `to` whole, in rank order, sent in pieces (here
// of 5 bytes: 13 bytes go as 5 + 5 + 3, none as nothing); the other ranks get
// nothing. A users' state of several GB would not fit one MPI message.
TEST_CASE("gather_in_pieces gives every rank's bytes, whole and in rank order, to one rank") {
  const std::vector<std::string> sent = {std::string("abcdefghijklm"), std::string(), std::string("0123456\0", 8)};
  for (const int to : {0, 2}) {
    CAPTURE(to);
    const std::vector<std::vector<std::string>> got = testing::on_local_ranks(
        3, [&](int r, const Cluster& cl) { return gather_in_pieces(cl, sent[static_cast<std::size_t>(r)], to, 5); });
    for (int r = 0; r < 3; ++r) {
      if (r == to) CHECK(got[static_cast<std::size_t>(r)] == sent);
      else CHECK(got[static_cast<std::size_t>(r)].empty());
    }
  }
  LocalHub one(1);
  const LocalCluster alone(one, 0);
  CHECK(gather_in_pieces(alone, "xyz", 0, 1) == std::vector<std::string>{"xyz"});
  CHECK_THROWS_AS(gather_in_pieces(alone, "xyz", 0, 0), std::invalid_argument);
}

// Rank `from`'s bytes reach every other rank whole, in pieces (13 bytes as
// 5 + 5 + 3; nothing as no piece); `from` itself gets nothing back.
TEST_CASE("broadcast_in_pieces gives one rank's bytes, whole, to every other rank") {
  for (const std::string& sent : {std::string("abcdefghijklm"), std::string(), std::string("0123456\0", 8)})
    for (const int from : {0, 1, 2}) {
      CAPTURE(from);
      const std::vector<std::string> got = testing::on_local_ranks(3, [&](int r, const Cluster& cl) {
        return broadcast_in_pieces(cl, r == from ? sent : std::string("ignored"), from, 5);
      });
      for (int r = 0; r < 3; ++r) CHECK(got[static_cast<std::size_t>(r)] == (r == from ? std::string() : sent));
    }
  LocalHub one(1);
  const LocalCluster alone(one, 0);
  CHECK(broadcast_in_pieces(alone, "xyz", 0, 1).empty());
  CHECK_THROWS_AS(broadcast_in_pieces(alone, "xyz", 1, 1), std::logic_error);  // no rank 1
  CHECK_THROWS_AS(broadcast_in_pieces(alone, "xyz", 0, 0), std::invalid_argument);
}

// A rank that fails leaves the hub (on_local_ranks), before any collective or
// between two: the others' collectives go on without it instead of waiting
// for it forever, and its error is the one reported.
TEST_CASE("a rank of threads that throws leaves the hub: the others end, and its error is rethrown") {
  for (const int collectives_before : {0, 1}) {
    CAPTURE(collectives_before);
    int ended = 0;
    std::mutex mu;
    const auto run = [&] {
      return testing::on_local_ranks(3, [&](int r, const Cluster& cl) {
        for (int k = 0; k < collectives_before; ++k) cl.all_gather("x");
        if (r == 1) throw std::runtime_error("rank 1 failed");
        for (int k = 0; k < 3; ++k) cl.all_gather("y");
        const std::lock_guard lock(mu);
        return ++ended;
      });
    };
    CHECK_THROWS_WITH_AS(run(), "rank 1 failed", std::runtime_error);
    CHECK(ended == 2);
  }
}
