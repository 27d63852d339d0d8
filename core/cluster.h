// The processes a run is spread over. A run in one process has a cluster of one
// (single_process()); `mpirun -np N mtfsim ...` built with -DMTF_MPI=ON gives
// the MPI world (core/mpi_cluster.h). The simulator shards its users' blocks
// over the ranks and exchanges what they produced through these collectives,
// so every rank merges the same results in the same order (sim/simulator.h).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mtf {

class Cluster {
 public:
  virtual ~Cluster() = default;
  virtual int rank() const = 0;  ///< this process, from 0
  virtual int size() const = 0;  ///< processes, >= 1
  bool root() const { return rank() == 0; }
  /// Every rank's bytes, in rank order, on every rank. Collective: every rank calls it.
  virtual std::vector<std::string> all_gather(std::string_view bytes) const = 0;
  /// Every rank's bytes, in rank order, on rank `to`; an empty vector elsewhere. Collective.
  virtual std::vector<std::string> gather(std::string_view bytes, int to) const = 0;
  /// Every rank's bytes at this point of the program must equal rank 0's, or
  /// every rank throws std::runtime_error naming `what`: a check that the
  /// ranks run the same program on the same inputs. Collective.
  void check_same(std::string_view bytes, const std::string& what) const;
};

/// The cluster of one process.
const Cluster& single_process();

/// Every rank's `values` (the same count on every rank), each rank's in turn:
/// element k of the result is the sum over the ranks of their element k,
/// added in rank order, so every rank gets the same bits. Null `ranks`:
/// `values` unchanged. Collective.
std::vector<double> sum_over_ranks(const Cluster* ranks, std::vector<double> values);
/// The largest of every rank's `value`, from rank 0's in rank order (the same
/// on every rank; a NaN wins only as rank 0's); null `ranks`: `value`. Collective.
double max_over_ranks(const Cluster* ranks, double value);
/// Cluster::gather for bytes of any size: one rank after another, in pieces of
/// at most `piece` bytes, so that no message nears MPI's 2 GiB (its counts are
/// ints) and no collective holds more than the ranks' pieces at once. Every
/// rank's bytes, in rank order, on rank `to`; an empty vector elsewhere.
/// Collective.
std::vector<std::string> gather_in_pieces(const Cluster& ranks, std::string_view bytes, int to,
                                          std::size_t piece = std::size_t{256} << 20);

/// Rank `from`'s bytes on every other rank, sent in pieces of at most `piece`
/// bytes as gather_in_pieces does; `bytes` is read on rank `from` only, which
/// gets an empty string (it holds them already). Collective.
std::string broadcast_in_pieces(const Cluster& ranks, std::string_view bytes, int from,
                                std::size_t piece = std::size_t{256} << 20);

/// N ranks as N threads of one process, for tests and for trying a sharded
/// computation without MPI: the threads share a LocalHub and each holds its
/// own LocalCluster; every collective meets at a barrier.
class LocalHub {
 public:
  explicit LocalHub(int ranks);
  ~LocalHub();
  LocalHub(const LocalHub&) = delete;
  LocalHub& operator=(const LocalHub&) = delete;
  int size() const { return ranks_; }
  /// Every rank's bytes, in rank order; all `ranks` threads call it.
  std::vector<std::string> exchange(int rank, std::string_view bytes);
  /// The calling rank (a thread that failed) takes no further part: the other
  /// ranks' exchanges stop waiting for it and hold its last bytes (empty when
  /// it sent none), so they end instead of waiting forever, with results that
  /// mean nothing. For tests of a failing rank; call it once, from that
  /// rank's thread, outside exchange().
  void leave();

 private:
  struct Impl;
  int ranks_;
  std::unique_ptr<Impl> impl_;
};

class LocalCluster final : public Cluster {
 public:
  LocalCluster(LocalHub& hub, int rank) : hub_(hub), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return hub_.size(); }
  std::vector<std::string> all_gather(std::string_view bytes) const override { return hub_.exchange(rank_, bytes); }
  std::vector<std::string> gather(std::string_view bytes, int to) const override;

 private:
  LocalHub& hub_;
  int rank_;
};

}  // namespace mtf
