// Datasets of the experiment engine: agents' training data read from a run
// database. Kept here rather than in agents/ so that the agents depend on the
// transition types of core/ only, never on the database.
#pragma once

#include <filesystem>

#include "agents/dataset.h"

namespace mtf::experiments {

/// The transitions of a run database (results/recorder.h read_run) as a
/// dataset. Throws RecordError for an unreadable file (UnfinishedRunError for
/// a run that did not finish, unless allow_partial), std::invalid_argument
/// when it holds no transitions.
agents::Dataset load_dataset(const std::filesystem::path& path, bool allow_partial = false);

}  // namespace mtf::experiments
