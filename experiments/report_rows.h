// What the markdown and the HTML reports (report.cpp, report_html.cpp) share
// to read table `metrics` of a run database: an index of its rows, the
// details JSON of a row, and the experiment block the run was started with.
// Internal to experiments/.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "experiments/experiment.h"
#include "results/recorder.h"

namespace mtf::experiments {

/// The rows of table metrics in write order, found by section, subject, metric and rep.
struct MetricIndex {
  std::vector<const MetricRow*> rows;
  explicit MetricIndex(const std::vector<MetricRow>& m) {
    for (const auto& r : m) rows.push_back(&r);
  }
  const MetricRow* find(const std::string& section, const std::string& subject, const std::string& metric,
                        std::optional<std::int64_t> rep = std::nullopt) const {
    for (const MetricRow* r : rows)
      if (r->section == section && r->subject == subject && r->metric == metric && (!rep || r->rep == rep)) return r;
    return nullptr;
  }
  /// The section's subjects in the order of their first row.
  std::vector<std::string> subjects(const std::string& section) const {
    std::vector<std::string> out;
    for (const MetricRow* r : rows)
      if (r->section == section && std::find(out.begin(), out.end(), r->subject) == out.end())
        out.push_back(r->subject);
    return out;
  }
  bool any(const std::string& section) const {
    return std::any_of(rows.begin(), rows.end(), [&](const MetricRow* r) { return r->section == section; });
  }
};

/// A figure's details: the JSON object its stage wrote. A run database is a
/// user's file: an empty, damaged or differently typed column gives an empty
/// object or a missing field, which the reports show as n/a.
nlohmann::json details_of(const MetricRow* r);
std::string detail_text(const nlohmann::json& d, const char* key);
/// The detail `key` as a number; `otherwise` (NaN: n/a) when missing or not a number.
double detail_number(const nlohmann::json& d, const char* key, double otherwise = std::nan(""));

/// The experiment block the run was started with (the paper's numbers, the
/// primary A/B metric), parsed from the run's stored scenario without building
/// its agents. A block that this build no longer accepts gives an empty spec
/// and a sentence for `note` saying what is left out.
ExperimentSpec stored_experiment(const RunContents& run, std::string& note);

}  // namespace mtf::experiments
