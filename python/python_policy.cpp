// Python callables as group policies (see python_policy.h).
#include "python_policy.h"

#include <cmath>
#include <cstring>
#include <sstream>

#include "core/state_features.h"

namespace mtf::python {

py::array_t<float, py::array::c_style> checked_actions(py::handle value, std::size_t n, std::size_t d,
                                                       const std::string& where) {
  const py::array arr = py::array::ensure(value);
  if (!arr) throw py::type_error(where + ": expected a numpy array of shape (" + std::to_string(n) + ", " +
                                 std::to_string(d) + "), got " + std::string(py::str(py::type::of(value))));
  const char kind = arr.dtype().kind();
  if (kind != 'f')
    throw py::type_error(where + ": expected float32 actions, got dtype " + std::string(py::str(arr.dtype())) +
                         " (convert with .astype(numpy.float32))");
  if (arr.ndim() != 2 || static_cast<std::size_t>(arr.shape(0)) != n || static_cast<std::size_t>(arr.shape(1)) != d) {
    std::string shape = "(";
    for (py::ssize_t i = 0; i < arr.ndim(); ++i) shape += (i ? ", " : "") + std::to_string(arr.shape(i));
    shape += arr.ndim() == 1 ? ",)" : ")";
    throw py::value_error(where + ": expected shape (" + std::to_string(n) + ", " + std::to_string(d) +
                          ") (one row of " + std::to_string(d) + " action values per request), got " + shape);
  }
  auto f = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(arr);
  if (!f) throw py::error_already_set();
  const float* p = f.data();
  for (std::size_t i = 0; i < n * d; ++i) {
    if (std::isfinite(p[i]) && p[i] >= -1.0f && p[i] <= 1.0f) continue;
    std::ostringstream msg;
    msg << where << ": row " << i / d << ", column " << i % d << " is " << p[i]
        << "; actions must be finite and in [-1, 1] (numpy.clip(actions, -1, 1))";
    throw py::value_error(msg.str());
  }
  return f;
}

PythonPolicy::PythonPolicy(py::handle fn, std::string group, int action_dim, std::shared_ptr<std::mutex> lock)
    : fn_(fn), group_(std::move(group)), d_(action_dim), lock_(std::move(lock)) {
  const py::object qualname = py::getattr(fn, "__qualname__", py::none());
  name_ = "python:" + (qualname.is_none() ? std::string(py::str(py::type::of(fn).attr("__name__")))
                                          : std::string(py::str(qualname)));
}

void PythonPolicy::act(std::span<const float> state, std::span<float> action, Rng& rng, ActionInfo* info) const {
  Rng* rngs[] = {&rng};
  ActionInfo* infos[] = {info};
  act_batch(state, action, rngs, infos);
}

void PythonPolicy::act_batch(std::span<const float> states, std::span<float> actions, std::span<Rng* const> rngs,
                             std::span<ActionInfo* const>) const {
  const std::size_t n = rngs.size();
  if (n == 0) return;
  const std::size_t S = states.size() / n, d = static_cast<std::size_t>(d_);
  std::lock_guard lock(*lock_);
  py::gil_scoped_acquire gil;
  py::array_t<float> batch({n, S});
  std::memcpy(batch.mutable_data(), states.data(), n * S * sizeof(float));
  const std::string where = "policies[\"" + group_ + "\"]";
  py::object result;
  try {
    result = fn_(batch);
  } catch (py::error_already_set& e) {
    py::raise_from(e, PyExc_RuntimeError,
                   (where + ": the policy raised an exception on a batch of " + std::to_string(n) + " states").c_str());
    throw py::error_already_set();
  }
  const auto a = checked_actions(result, n, d, where + "'s result");
  std::memcpy(actions.data(), a.data(), n * d * sizeof(float));
}

}  // namespace mtf::python
