// The MPI world as a Cluster (see mpi_cluster.h). Sizes travel through
// Boost.MPI's collectives; the bytes through MPI's v-collectives, which take
// int counts: one exchange carries at most 2^31 - 1 bytes in all.
#include "core/mpi_cluster.h"

#include <mpi.h>

#include <boost/mpi/collectives.hpp>
#include <boost/mpi/communicator.hpp>
#include <boost/mpi/environment.hpp>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>

namespace mtf {

struct MpiCluster::Impl {
  boost::mpi::environment env;
  boost::mpi::communicator world;
  // Threads run beside MPI (simulation, training, the recorder's writer), and
  // only the thread that initialised MPI calls it: MPI_THREAD_FUNNELED.
  Impl(int& argc, char**& argv) : env(argc, argv, boost::mpi::threading::funneled) {
    if (env.thread_level() < boost::mpi::threading::funneled)
      throw std::runtime_error("MPI: this MPI library does not support threads beside MPI (MPI_THREAD_FUNNELED)");
  }
};

bool MpiCluster::launched_by_mpirun() {
  // Open MPI's launcher sets OMPI_COMM_WORLD_SIZE; PMI/PMIx launchers (MPICH's
  // hydra, Slurm's srun) set PMI_SIZE or PMIX_RANK.
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(v) != nullptr) return true;
  return false;
}

MpiCluster::MpiCluster(int& argc, char**& argv) : impl_(std::make_unique<Impl>(argc, argv)) {}
MpiCluster::~MpiCluster() = default;

void MpiCluster::abort(int code) const {
  MPI_Abort(static_cast<MPI_Comm>(impl_->world), code);
  std::abort();
}

int MpiCluster::rank() const { return impl_->world.rank(); }
int MpiCluster::size() const { return impl_->world.size(); }

namespace {
/// Counts and displacements of one v-collective, checked against int.
void layout(const std::vector<std::int64_t>& sizes, std::vector<int>& counts, std::vector<int>& displs,
            std::size_t& total) {
  counts.resize(sizes.size());
  displs.resize(sizes.size());
  std::int64_t at = 0;
  for (std::size_t r = 0; r < sizes.size(); ++r) {
    if (sizes[r] < 0 || at + sizes[r] > INT_MAX)
      throw std::runtime_error("MPI exchange of more than 2 GiB at once (MPI counts are int); use fewer --threads per rank");
    counts[r] = static_cast<int>(sizes[r]);
    displs[r] = static_cast<int>(at);
    at += sizes[r];
  }
  total = static_cast<std::size_t>(at);
}

std::vector<std::string> split(const std::string& buf, const std::vector<int>& counts, const std::vector<int>& displs) {
  std::vector<std::string> out(counts.size());
  for (std::size_t r = 0; r < counts.size(); ++r)
    out[r].assign(buf.data() + displs[r], static_cast<std::size_t>(counts[r]));
  return out;
}

void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) throw std::runtime_error(std::string("MPI: ") + what + " failed (error " + std::to_string(rc) + ")");
}
}  // namespace

std::vector<std::string> MpiCluster::all_gather(std::string_view bytes) const {
  std::vector<std::int64_t> sizes;
  boost::mpi::all_gather(impl_->world, static_cast<std::int64_t>(bytes.size()), sizes);
  std::vector<int> counts, displs;
  std::size_t total = 0;
  layout(sizes, counts, displs, total);
  std::string buf(total, '\0');
  check(MPI_Allgatherv(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, buf.data(), counts.data(),
                       displs.data(), MPI_BYTE, static_cast<MPI_Comm>(impl_->world)),
        "MPI_Allgatherv");
  return split(buf, counts, displs);
}

std::vector<std::string> MpiCluster::gather(std::string_view bytes, int to) const {
  if (to < 0 || to >= size())
    throw std::invalid_argument("MpiCluster::gather: rank " + std::to_string(to) + " of " + std::to_string(size()));
  // Every rank learns every size, so a refused exchange is refused on every rank.
  std::vector<std::int64_t> sizes;
  boost::mpi::all_gather(impl_->world, static_cast<std::int64_t>(bytes.size()), sizes);
  std::vector<int> counts, displs;
  std::size_t total = 0;
  layout(sizes, counts, displs, total);
  if (rank() != to) total = 0;
  std::string buf(total, '\0');
  check(MPI_Gatherv(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, buf.data(), counts.data(),
                    displs.data(), MPI_BYTE, to, static_cast<MPI_Comm>(impl_->world)),
        "MPI_Gatherv");
  if (rank() != to) return {};
  return split(buf, counts, displs);
}

}  // namespace mtf
