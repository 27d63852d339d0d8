// Paper-style reports of an experiment's run database, and the regression check
// of agents against a recorded band (mtfsim report / mtfsim regress).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "experiments/experiment.h"
#include "results/recorder.h"

namespace mtf::experiments {

/// The markdown report of a run database written by run_experiment: exploration
/// cost and density, training, online learners, the offline table (weighted GAUC,
/// Conservative-OPE, FQE, NCIS) and the online A/B table, each with the paper's
/// published numbers beside the testbed's, significance marks, the offline-vs-
/// online agreement, and where the orderings agree with the paper's.
/// Throws RecordError for a file that is not a run database, ExperimentError
/// for one without experiment metrics.
std::string report_markdown(const std::filesystem::path& run_db, bool allow_partial = false);
/// The same from contents already read (read_run(path, false, false)); the
/// experiment block is read from the run's stored scenario.
std::string report_markdown(const RunContents& run);
/// The same with the experiment block already parsed (mtfsim run and regress:
/// the block is parsed once per command).
std::string report_markdown(const RunContents& run, const ExperimentSpec& spec);

/// The HTML report of a run database written by run_experiment: one
/// self-contained page (Vega and Vega-Lite inlined, no network needed) with
/// SVG charts of the learning curves, the A/B lifts (forest plot), offline
/// estimates against online lifts, each policy's action distribution per
/// dimension, daily active users and return rate per arm, and the exploration
/// cost. A chart whose data the run lacks is replaced by a sentence saying so
/// (docs/experiments.md, "The HTML report"). Throws as report_markdown does.
std::string report_html(const std::filesystem::path& run_db, bool allow_partial = false);
/// The same from contents already read (read_run(path, false, false)); the
/// experiment block is read from the run's stored scenario.
std::string report_html(const RunContents& run);
/// The same with the experiment block already parsed;
/// `note` (say, why the block is left out) is shown below the title.
std::string report_html(const RunContents& run, const ExperimentSpec& spec, const std::string& note = {});

/// One figure a regression baseline tracks.
struct BandCheck {
  std::string key;      ///< "section/subject/metric"
  double value = 0;     ///< this run
  double lo = 0, hi = 0;  ///< the band recorded in the baseline
  bool inside = true;
  bool missing = false;   ///< in the baseline, absent from this run
};

/// Figures tracked by regression baselines: offline estimates, A/B lifts
/// (replicate means and replicate 0), with the half-width of their band (see
/// docs/experiments.md, "Regression tests of agents").
struct Tracked {
  std::string key;
  double value = 0;
  double half_width = 0;
};
/// Offline importance-sampling estimates (NCIS) whose weights' effective
/// sample size is below this are not tracked: a few transitions decide them.
inline constexpr double kMinTrackedEss = 10.0;
std::vector<Tracked> tracked_figures(const RunContents& run);

/// Writes a baseline file (JSON: key -> {value, lo, hi}) from a run.
void write_baseline(const std::filesystem::path& file, const RunContents& run);
/// Compares a run with a baseline file; throws std::runtime_error naming the
/// file for an unreadable or malformed baseline.
std::vector<BandCheck> check_baseline(const std::filesystem::path& file, const RunContents& run);
/// A markdown table of the checks (all, or only the ones that moved).
std::string format_checks(const std::vector<BandCheck>& checks, bool only_failures);

}  // namespace mtf::experiments
