// Datasets read from a run database (experiments/datasets.h).
#include <doctest/doctest.h>

#include <filesystem>

#include "experiments/datasets.h"
#include "results/recorder.h"
#include "../agents/transition_rows.h"

using namespace mtf;
using namespace mtf::agents;

using mtf::testing::row;

TEST_CASE("a dataset reads the transitions of a run database") {
  const auto path = std::filesystem::temp_directory_path() / "mtf_agents_dataset_test.sqlite";
  RunInfo info;
  info.scenario_name = "dataset-test";
  info.scenario_json = "{}";
  info.state_dim = 2;
  info.action_dim = 1;
  info.state_features = {"x", "bias"};
  info.action_names = {"w"};
  {
    Recorder rec(path, info);
    RecordBatch batch;
    batch.transitions = {row(1, 0, 0, 1, false), row(1, 0, 1, 2, true), row(2, 0, 0, 7, true)};
    batch.transitions[2].lower.clear();  // unknown bounds
    batch.transitions[2].upper.clear();
    batch.transitions[2].log_density = -1.5;
    rec.submit(std::move(batch));
    rec.finish({}, 0.0);
  }
  const Dataset d = experiments::load_dataset(path);
  std::filesystem::remove(path);
  REQUIRE(d.size() == 3);
  CHECK(d.state_dim() == 2);
  CHECK(d.action_dim() == 1);
  Batch b;
  std::vector<int> all = {0, 1, 2};
  d.gather(all, b);
  // Row order is the database's; find the user-2 transition by its reward.
  int k = b.reward(0, 0) == 7.0f ? 0 : (b.reward(0, 1) == 7.0f ? 1 : 2);
  CHECK(b.has_bounds(0, k) == 0.0f);
  CHECK(d.log_density_coverage() == doctest::Approx(1.0 / 3.0));
}
