// Fuzz target: run databases (results/run_reader.cpp read_run), and what reads
// them: the reports (`mtfsim report`, markdown and HTML), the regression figures (`mtfsim regress`)
// and the agents' datasets (experiments/datasets.cpp). Input: an SQLite file
// (seeds: small run databases written by mtfsim). Expected outcomes for a bad
// file: RecordError from the reader; ExperimentError, ScenarioError from the
// report (no experiment metrics, a stored scenario this build rejects);
// std::invalid_argument from a dataset (no transitions, dimensions that disagree).
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "experiments/datasets.h"
#include "experiments/report.h"
#include "fuzz_support.h"
#include "results/recorder.h"
#include "sim/scenario.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static mtf::fuzz::InputFile file("mtf-run");
  const std::filesystem::path& path = file.write(data, size);
  mtf::RunContents run;
  try {
    run = mtf::read_run(path, /*with_transitions=*/true, /*with_rows=*/true);
  } catch (const mtf::RecordError&) {
    return 0;
  }
  try {
    (void)mtf::experiments::tracked_figures(run);
    (void)mtf::experiments::report_markdown(run);
    (void)mtf::experiments::report_html(run);
  } catch (const mtf::experiments::ExperimentError&) {
  } catch (const mtf::ScenarioError&) {
  }
  try {
    (void)mtf::experiments::load_dataset(path);
  } catch (const mtf::RecordError&) {
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
