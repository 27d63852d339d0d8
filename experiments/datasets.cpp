// Datasets from run databases (see datasets.h).
#include "experiments/datasets.h"

#include <stdexcept>

#include "results/recorder.h"

namespace mtf::experiments {

agents::Dataset load_dataset(const std::filesystem::path& path) {
  RunContents run = read_run(path, /*with_transitions=*/true);
  if (run.transitions.empty())
    throw std::invalid_argument("dataset: run database " + path.string() + " holds no transitions");
  return agents::Dataset(run.transitions);
}

}  // namespace mtf::experiments
