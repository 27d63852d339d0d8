// The MPI world as a Cluster (core/cluster.h): built only with -DMTF_MPI=ON
// (Open MPI and Boost.MPI; README, "Running at scale").
#pragma once

#include <memory>

#include "core/cluster.h"

namespace mtf {

class MpiCluster final : public Cluster {
 public:
  /// Whether this process was started by mpirun (or another MPI launcher):
  /// only then is MPI initialised, so a plain `mtfsim` of an MPI build needs
  /// no MPI runtime.
  static bool launched_by_mpirun();
  /// Initialises MPI; finalised by the destructor. One per process.
  MpiCluster(int& argc, char**& argv);
  ~MpiCluster() override;
  MpiCluster(const MpiCluster&) = delete;
  MpiCluster& operator=(const MpiCluster&) = delete;

  int rank() const override;
  int size() const override;
  std::vector<std::string> all_gather(std::string_view bytes) const override;
  std::vector<std::string> gather(std::string_view bytes, int to) const override;
  /// Ends every rank of the job (MPI_Abort): what a rank that failed alone
  /// does, since the others would wait for it in their next exchange.
  [[noreturn]] void abort(int code) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mtf
