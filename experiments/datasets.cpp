// Datasets from run databases (see datasets.h).
#include "experiments/datasets.h"

#include <numeric>
#include <stdexcept>

#include "results/recorder.h"

namespace mtf::experiments {

agents::Dataset load_dataset(const std::filesystem::path& path, bool allow_partial) {
  TransitionColumns c = read_transition_columns(path, allow_partial);
  if (c.size() == 0)
    throw std::invalid_argument("dataset: run database " + path.string() + " holds no transitions");
  std::vector<std::size_t> all(c.size());
  std::iota(all.begin(), all.end(), std::size_t{0});
  return agents::Dataset(std::move(c), all);
}

}  // namespace mtf::experiments
