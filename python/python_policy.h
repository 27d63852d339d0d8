// Python callables as group policies (mtfsim.run(..., policies={...})), and
// the check of actions handed over from Python, shared with the vectorised
// environment.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <mutex>
#include <string>

#include "core/policy.h"

namespace mtf::python {

namespace py = pybind11;

/// `value` as an (n, d) C-contiguous float32 array: any floating dtype (float64
/// is rounded to float32), every value finite and in [-1, 1]. Throws
/// py::type_error (not an array of floats) or py::value_error (shape, range),
/// the message starting with `where`. Does not copy a float32 C-contiguous array.
py::array_t<float, py::array::c_style> checked_actions(py::handle value, std::size_t n, std::size_t d,
                                                       const std::string& where);

/// A group policy that calls fn(states) once per batch of requests
/// (Policy::act_batch): states an (n, kStateDim) float32 array (a copy), the
/// result an (n, d) array of actions (checked_actions). The simulator's threads
/// call it: each call takes `lock` (shared by every Python policy of a run, so
/// one call at a time even when fn releases the GIL), then the GIL. The callable
/// is borrowed: whoever builds the policy keeps fn alive while it runs (the
/// policy may be destroyed without the GIL). Results do not depend on the thread
/// count as long as fn is a function of its argument alone.
class PythonPolicy final : public Policy {
 public:
  PythonPolicy(py::handle fn, std::string group, int action_dim, std::shared_ptr<std::mutex> lock);
  std::string name() const override { return name_; }
  int action_dim() const override { return d_; }
  void act(std::span<const float> state, std::span<float> action, Rng& rng, ActionInfo* info) const override;
  void act_batch(std::span<const float> states, std::span<float> actions, std::span<Rng* const> rngs,
                 std::span<ActionInfo* const> infos) const override;

 private:
  py::handle fn_;
  std::string group_, name_;
  int d_;
  std::shared_ptr<std::mutex> lock_;
};

}  // namespace mtf::python
