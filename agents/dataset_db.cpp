// Dataset from a run database (kept apart: the only part of agents/ that needs
// the results library).
#include "agents/dataset.h"

namespace mtf::agents {

Dataset Dataset::from_run(const std::filesystem::path& path) {
  RunContents run = read_run(path, /*with_transitions=*/true);
  if (run.transitions.empty())
    throw std::invalid_argument("dataset: run database " + path.string() + " holds no transitions");
  return Dataset(run.transitions);
}

}  // namespace mtf::agents
