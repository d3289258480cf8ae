// OpenMP helpers. The build works without OpenMP (everything then runs on one thread).
#pragma once
#include <cstdint>

#ifdef FASTCONV_OPENMP
#include <omp.h>
#endif

namespace fastconv {

inline int max_threads() {
#ifdef FASTCONV_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

inline int thread_id() {
#ifdef FASTCONV_OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

inline void set_threads(int n) {
#ifdef FASTCONV_OPENMP
  omp_set_num_threads(n);
#else
  (void)n;
#endif
}

// Runs f(i) for i in [0, n) on the OpenMP team; dynamic scheduling because work items
// (image x pixel-block x channel-block) are uneven at the edges.
template <typename F>
void parallel_for(int64_t n, F&& f) {
#ifdef FASTCONV_OPENMP
  if (n > 1 && omp_get_max_threads() > 1 && !omp_in_parallel()) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
#endif
  for (int64_t i = 0; i < n; ++i) f(i);
}

}  // namespace fastconv
