// The cluster of one process, and the consistency check of every cluster (see cluster.h).
#include "core/cluster.h"

#include <algorithm>
#include <barrier>
#include <cstdint>
#include <cstring>
#include <stdexcept>

namespace mtf {

void Cluster::check_same(std::string_view bytes, const std::string& what) const {
  if (size() == 1) return;
  const std::vector<std::string> all = all_gather(bytes);
  for (std::size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0])
      throw std::runtime_error("MPI ranks disagree on " + what + ": rank " + std::to_string(r) +
                               " differs from rank 0; every rank must run the same command on the same files");
}

namespace {
class SingleProcess final : public Cluster {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::vector<std::string> all_gather(std::string_view bytes) const override { return {std::string(bytes)}; }
  std::vector<std::string> gather(std::string_view bytes, int to) const override {
    if (to != 0) throw std::invalid_argument("Cluster::gather: rank " + std::to_string(to) + " of a single process");
    return {std::string(bytes)};
  }
};
}  // namespace

const Cluster& single_process() {
  static const SingleProcess one;
  return one;
}

std::vector<double> sum_over_ranks(const Cluster* ranks, std::vector<double> values) {
  if (!ranks || ranks->size() == 1) return values;
  const std::vector<std::string> all = ranks->all_gather(
      std::string_view(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(double)));
  std::fill(values.begin(), values.end(), 0.0);
  for (std::size_t r = 0; r < all.size(); ++r) {
    if (all[r].size() != values.size() * sizeof(double))
      throw std::logic_error("sum_over_ranks: rank " + std::to_string(r) + " sent " +
                             std::to_string(all[r].size() / sizeof(double)) + " values, this rank " +
                             std::to_string(values.size()));
    for (std::size_t k = 0; k < values.size(); ++k) {
      double v = 0;
      std::memcpy(&v, all[r].data() + k * sizeof(double), sizeof v);
      values[k] += v;
    }
  }
  return values;
}

double max_over_ranks(const Cluster* ranks, double value) {
  if (!ranks || ranks->size() == 1) return value;
  const std::vector<std::string> all =
      ranks->all_gather(std::string_view(reinterpret_cast<const char*>(&value), sizeof value));
  double m = 0;  // from rank 0's, in rank order: the same on every rank, NaN included
  for (std::size_t r = 0; r < all.size(); ++r) {
    double v = 0;
    std::memcpy(&v, all[r].data(), sizeof v);
    m = r == 0 ? v : std::max(m, v);
  }
  return m;
}

std::vector<std::string> gather_in_pieces(const Cluster& ranks, std::string_view bytes, int to, std::size_t piece) {
  if (piece == 0) throw std::invalid_argument("gather_in_pieces: the piece size must be > 0");
  const auto size = static_cast<std::uint64_t>(bytes.size());
  const std::vector<std::string> sizes =
      ranks.all_gather(std::string_view(reinterpret_cast<const char*>(&size), sizeof size));
  const bool here = ranks.rank() == to;
  std::vector<std::string> out;
  if (here) out.resize(sizes.size());
  for (std::size_t r = 0; r < sizes.size(); ++r) {
    std::uint64_t n = 0;
    if (sizes[r].size() != sizeof n)
      throw std::logic_error("gather_in_pieces: rank " + std::to_string(r) + " sent no size (ranks out of step)");
    std::memcpy(&n, sizes[r].data(), sizeof n);
    const bool mine = static_cast<int>(r) == ranks.rank();
    if (here) out[r].reserve(static_cast<std::size_t>(n));
    for (std::uint64_t at = 0; at < n; at += piece) {
      const auto len = static_cast<std::size_t>(std::min<std::uint64_t>(piece, n - at));
      std::vector<std::string> got =
          ranks.gather(mine ? bytes.substr(static_cast<std::size_t>(at), len) : std::string_view(), to);
      if (here) out[r] += got[r];
    }
  }
  return out;
}

std::string broadcast_in_pieces(const Cluster& ranks, std::string_view bytes, int from, std::size_t piece) {
  if (piece == 0) throw std::invalid_argument("broadcast_in_pieces: the piece size must be > 0");
  const bool here = ranks.rank() == from;
  const auto size = static_cast<std::uint64_t>(here ? bytes.size() : 0);
  const std::vector<std::string> sizes = ranks.all_gather(
      here ? std::string_view(reinterpret_cast<const char*>(&size), sizeof size) : std::string_view());
  std::uint64_t n = 0;
  if (from < 0 || static_cast<std::size_t>(from) >= sizes.size() || sizes[static_cast<std::size_t>(from)].size() != sizeof n)
    throw std::logic_error("broadcast_in_pieces: rank " + std::to_string(from) + " sent no size (ranks out of step)");
  std::memcpy(&n, sizes[static_cast<std::size_t>(from)].data(), sizeof n);
  std::string out;
  if (!here) out.reserve(static_cast<std::size_t>(n));
  for (std::uint64_t at = 0; at < n; at += piece) {
    const auto len = static_cast<std::size_t>(std::min<std::uint64_t>(piece, n - at));
    const std::vector<std::string> got =
        ranks.all_gather(here ? bytes.substr(static_cast<std::size_t>(at), len) : std::string_view());
    if (here) continue;
    if (got[static_cast<std::size_t>(from)].size() != len)
      throw std::logic_error("broadcast_in_pieces: a piece of " + std::to_string(got[static_cast<std::size_t>(from)].size()) +
                             " bytes, expected " + std::to_string(len) + " (ranks out of step)");
    out += got[static_cast<std::size_t>(from)];
  }
  return out;
}

struct LocalHub::Impl {
  explicit Impl(int n) : barrier(n), slots(static_cast<std::size_t>(n)) {}
  std::barrier<> barrier;
  std::vector<std::string> slots;
};

LocalHub::LocalHub(int ranks) : ranks_(ranks) {
  if (ranks < 1) throw std::invalid_argument("LocalHub: at least one rank");
  impl_ = std::make_unique<Impl>(ranks);
}
LocalHub::~LocalHub() = default;

std::vector<std::string> LocalHub::exchange(int rank, std::string_view bytes) {
  impl_->slots[static_cast<std::size_t>(rank)] = std::string(bytes);
  impl_->barrier.arrive_and_wait();
  std::vector<std::string> all = impl_->slots;
  impl_->barrier.arrive_and_wait();  // no rank overwrites its slot before every rank has read
  return all;
}

void LocalHub::leave() { impl_->barrier.arrive_and_drop(); }

std::vector<std::string> LocalCluster::gather(std::string_view bytes, int to) const {
  std::vector<std::string> all = hub_.exchange(rank_, bytes);
  if (rank_ != to) return {};
  return all;
}

}  // namespace mtf
