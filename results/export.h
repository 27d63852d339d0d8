// Exporting a run's transitions for offline-RL libraries: an HDF5 file with the
// keys of D4RL and d3rlpy's MDPDataset (observations, actions, rewards,
// terminals, timeouts), or CSV with one row per transition. An episode is a
// session. The layout, the timeout rule and the loading code are documented in
// docs/export.md; `mtfsim export` is the command line.
//
// Reads through read_run and read_transition_columns, so an unfinished run is
// refused unless asked for; writes through a temporary file renamed into place
// (core/atomic_file.h), so a failed export never leaves a half-written file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include "core/transitions.h"
#include "results/recorder.h"

namespace mtf {

enum class ExportFormat { kHdf5, kCsv };

/// The `format` attribute of an exported HDF5 file.
inline constexpr const char* kExportFormatName = "mtfsim-transitions";
/// The `format_version` attribute: raised when a dataset, column or attribute
/// changes name, type or meaning.
inline constexpr int kExportFormatVersion = 1;

struct ExportOptions {
  std::vector<std::string> groups;  ///< names of the groups to export (any order); empty: every group
  bool next_observations = false;   ///< also write next_observations (CSV: next_obs_<feature> columns)
  bool allow_partial = false;       ///< export a run that did not finish, as far as it got
  std::string exported_by;          ///< the exporting program's version, stored as an HDF5 attribute
};

/// Thrown when ExportOptions::groups names a group the run does not have.
class UnknownGroupError : public RecordError {
 public:
  UnknownGroupError(const std::filesystem::path& run_db, std::string name, std::vector<std::string> available);
  const std::string& name() const { return name_; }
  /// The run's group names, in group order.
  const std::vector<std::string>& available() const { return available_; }

 private:
  std::string name_;
  std::vector<std::string> available_;
};

/// Where the sessions of a set of transitions end. A session is the rows of
/// one (user, session) pair; its last row is the one with the highest step.
struct SessionEnds {
  /// Per row: 1 on the last row of a session when that row is not done (the
  /// session was cut: it has no terminal row); 0 everywhere else.
  std::vector<std::uint8_t> timeouts;
  std::size_t sessions = 0;   ///< distinct (user, session) pairs
  std::size_t terminals = 0;  ///< rows with done set
  std::size_t cut = 0;        ///< rows with a timeout
};
SessionEnds session_ends(const TransitionColumns& c);

/// The rows of an export and what the file says about them.
struct ExportTable {
  RunInfo info;
  int schema_version = 0;
  std::string started_at, finished_at;  ///< finished_at empty: an unfinished run
  std::string source;                   ///< the run database's file name
  std::vector<std::string> group_names;      ///< every group of the run, indexed by group
  std::vector<std::string> exported_groups;  ///< the groups whose rows are exported, in group order
  TransitionColumns columns;                 ///< in recorded order
  SessionEnds ends;                          ///< of `columns`
};

/// Reads the transitions of `run_db` in the groups `opts.groups` names.
/// Throws UnknownGroupError (before reading any transition) for a name the run
/// does not have, UnfinishedRunError for an unfinished run unless
/// opts.allow_partial, and RecordError for a run that recorded no transitions.
ExportTable read_export_table(const std::filesystem::path& run_db, const ExportOptions& opts);

/// Writes `t` as HDF5 to `file` (in place: export_run writes a temporary file).
void write_hdf5(const ExportTable& t, const std::filesystem::path& file, const ExportOptions& opts);
/// Writes `t` as CSV: a header line, then one line per transition.
void write_csv(const ExportTable& t, std::ostream& out, const ExportOptions& opts);
/// The CSV header's column names, in order.
std::vector<std::string> csv_columns(const ExportTable& t, bool next_observations);

/// What an export wrote.
struct ExportSummary {
  std::size_t transitions = 0, sessions = 0, terminals = 0, timeouts = 0;
  std::vector<std::string> groups;  ///< exported group names
};

/// Exports `run_db` to `out` (HDF5 or CSV) through a temporary file beside it,
/// renamed onto `out` when complete; on any error an earlier file at `out` is
/// left as it was.
ExportSummary export_run(const std::filesystem::path& run_db, const std::filesystem::path& out, ExportFormat format,
                         const ExportOptions& opts);
/// Exports `run_db` as CSV to a stream (mtfsim's `--out -`: stdout).
ExportSummary export_csv(const std::filesystem::path& run_db, std::ostream& out, const ExportOptions& opts);

}  // namespace mtf
