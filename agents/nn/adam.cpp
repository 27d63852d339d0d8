// Adam over a list of parameters; elementwise, split in fixed chunks.
#include "agents/nn/adam.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

namespace mtf::nn {

Adam::Adam(std::vector<Param*> params, const AdamOptions& opt) : opt_(opt) {
  for (Param* p : params)
    slots_.push_back({p, Matrix::Zero(p->value.rows(), p->value.cols()),
                      Matrix::Zero(p->value.rows(), p->value.cols())});
}

void Adam::average_gradients() {
  std::size_t n = 0;
  for (const Slot& s : slots_) n += static_cast<std::size_t>(s.p->grad.size());
  std::string mine(n * sizeof(float), '\0');
  std::size_t at = 0;
  for (const Slot& s : slots_) {
    const std::size_t bytes = static_cast<std::size_t>(s.p->grad.size()) * sizeof(float);
    if (bytes) std::memcpy(mine.data() + at, s.p->grad.data(), bytes);
    at += bytes;
  }
  const std::vector<std::string> all = ranks_->all_gather(mine);
  // Summed in rank order in float, then scaled: the same bits on every rank.
  std::vector<float> sum(n, 0.0f), part(n);
  for (const std::string& r : all) {
    if (r.size() != mine.size())
      throw std::runtime_error("data-parallel training: the ranks' gradients differ in size (ranks training different agents?)");
    if (n) std::memcpy(part.data(), r.data(), r.size());
    for (std::size_t i = 0; i < n; ++i) sum[i] += part[i];
  }
  const float scale = 1.0f / static_cast<float>(all.size());
  at = 0;
  for (Slot& s : slots_) {
    float* g = s.p->grad.data();
    for (Eigen::Index i = 0; i < s.p->grad.size(); ++i) g[i] = sum[at++] * scale;
  }
}

void Adam::step() {
  if (ranks_ && ranks_->size() > 1) average_gradients();
  ++t_;
  const double bc1 = 1.0 - std::pow(double(opt_.beta1), double(t_));
  const double bc2 = 1.0 - std::pow(double(opt_.beta2), double(t_));
  // Folded bias correction: lr_t = lr * sqrt(bc2) / bc1, eps_t = eps * sqrt(bc2).
  const float lr_t = static_cast<float>(opt_.lr * std::sqrt(bc2) / bc1);
  const float eps_t = static_cast<float>(opt_.eps * std::sqrt(bc2));
  const float b1 = opt_.beta1, b2 = opt_.beta2;
  // Tasks: (slot, chunk) pairs, fixed by the parameter shapes.
  std::vector<std::pair<int, std::int64_t>> tasks;
  for (int s = 0; s < static_cast<int>(slots_.size()); ++s)
    for (std::int64_t b = 0; b < slots_[s].p->value.size(); b += kElementChunk) tasks.emplace_back(s, b);
  parallel_for(static_cast<int>(tasks.size()), [&](int t) {
    Slot& s = slots_[tasks[t].first];
    const std::int64_t b = tasks[t].second;
    const std::int64_t n = std::min<std::int64_t>(kElementChunk, s.p->value.size() - b);
    auto w = Eigen::Map<Vector>(s.p->value.data() + b, n).array();
    auto g = Eigen::Map<const Vector>(s.p->grad.data() + b, n).array();
    auto m = Eigen::Map<Vector>(s.m.data() + b, n).array();
    auto v = Eigen::Map<Vector>(s.v.data() + b, n).array();
    m = b1 * m + (1.0f - b1) * g;
    v = b2 * v + (1.0f - b2) * g.square();
    w -= lr_t * m / (v.sqrt() + eps_t);
  });
}

}  // namespace mtf::nn
