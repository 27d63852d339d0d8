// Implementation detail of tensor.h: the OpenMP loop behind parallel_for.
#pragma once

#include <omp.h>

namespace mtf::nn {

template <class Fn>
void parallel_for(int tasks, Fn&& fn) {
  const int threads = num_threads();
  if (threads <= 1 || tasks <= 1 || omp_in_parallel()) {
    for (int t = 0; t < tasks; ++t) fn(t);
    return;
  }
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int t = 0; t < tasks; ++t) fn(t);
}

}  // namespace mtf::nn
