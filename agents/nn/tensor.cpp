// Flop counter and thread setting of the network library.
#include "agents/nn/tensor.h"

#include <Eigen/Core>
#include <atomic>
#include <stdexcept>

namespace mtf::nn {
namespace {
std::atomic<double> g_flops{0.0};
std::atomic<int> g_threads{1};
std::atomic<bool> g_counting{false};
}  // namespace

void set_flop_counting(bool on) noexcept { g_counting.store(on, std::memory_order_relaxed); }

void add_flops(double flops) noexcept {
  if (!g_counting.load(std::memory_order_relaxed)) return;
  // Relaxed: the count is a statistic read after the work is done.
  double cur = g_flops.load(std::memory_order_relaxed);
  while (!g_flops.compare_exchange_weak(cur, cur + flops, std::memory_order_relaxed)) {
  }
}
double flop_count() noexcept { return g_flops.load(std::memory_order_relaxed); }
void reset_flop_count() noexcept { g_flops.store(0.0, std::memory_order_relaxed); }

void set_num_threads(int threads) {
  if (threads < 1) throw std::invalid_argument("threads: expected an integer >= 1");
  g_threads.store(threads, std::memory_order_relaxed);
  // Each task runs Eigen on one thread; see tensor.h for why.
  Eigen::setNbThreads(1);
}
int num_threads() noexcept { return g_threads.load(std::memory_order_relaxed); }

}  // namespace mtf::nn
