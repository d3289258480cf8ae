// The parallel-loop interface every kernel uses, on fastconv's own pool (thread_pool.h).
//
//   const int threads = max_threads();           // size per-thread buffers with this ...
//   std::vector<Buffer> bufs(threads);
//   parallel_for(n, [&](int64_t i) { bufs[thread_id()] ... });   // ... ids stay below it
//
// Dynamic scheduling (items claimed one at a time) because work items (image x pixel-block x
// channel-block) are uneven at the edges.
#pragma once
#include <cstdint>
#include <type_traits>

#include "common/thread_pool.h"

namespace fastconv {

// Threads the calling thread's kernels use: size per-thread buffers with it. A kernel may
// call it several times and run several loops on buffers sized by an earlier call, so the
// value must never grow while a kernel runs, and nothing marks where a kernel ends. Hence it
// is kept per calling thread and only grows through that thread's own set_threads(); a lower
// setting from another thread applies at once (fewer threads than buffers is always safe).
// Inside a job it is the job's team size (nested loops run serially on the outer thread's id).
inline int max_threads() { return pool_in_job() ? pool_job_team() : pool_caller_team(); }

inline int thread_id() { return pool_thread_id(); }

inline void set_threads(int n) { set_pool_threads(n); }

template <typename F>
void parallel_for(int64_t n, F&& f) {
  using Fn = std::remove_reference_t<F>;
  if (n > 1 && !pool_in_job()) {
    const int team = pool_caller_team();
    auto call = [](void* ctx, int64_t i) { (*static_cast<Fn*>(ctx))(i); };
    if (team > 1 && pool_run(n, team, call, const_cast<void*>(static_cast<const void*>(&f)))) return;
  }
  for (int64_t i = 0; i < n; ++i) f(i);
}

// parallel_for over [0, n) in chunks of `chunk` elements: f(begin, end) per chunk. For
// element-wise passes, where one item per element would cost more than the element.
template <typename F>
void parallel_for_chunks(int64_t n, int64_t chunk, F&& f) {
  parallel_for((n + chunk - 1) / chunk, [&](int64_t c) { f(c * chunk, c * chunk + chunk < n ? c * chunk + chunk : n); });
}

}  // namespace fastconv
