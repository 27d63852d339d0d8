// Run databases as Python objects: transitions as numpy arrays (moved out of
// the reader's columns, not copied), a run's metadata, groups, summary,
// metrics and kept agents as dicts and lists.
#pragma once

#include <pybind11/pybind11.h>

#include <string>
#include <vector>

namespace mtf::python {

namespace py = pybind11;

/// mtfsim.read_transitions: what `mtfsim export` writes, as a dict of arrays.
py::dict read_transitions(const std::string& path, bool allow_partial, const std::vector<std::string>& groups);
/// mtfsim.read_run: everything but the per-row tables.
py::dict read_run(const std::string& path, bool allow_partial);

}  // namespace mtf::python
