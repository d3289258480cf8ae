// The parallel-loop interface every kernel uses, on fastconv's own pool (thread_pool.h).
//
//   const int threads = max_threads();           // size per-thread buffers with this ...
//   std::vector<Buffer> bufs(threads);
//   parallel_for(n, [&](int64_t i) { bufs[thread_id()] ... });   // ... ids stay below it
//
// Dynamic scheduling (items claimed one at a time) because work items (image x pixel-block x
// channel-block) are uneven at the edges.
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "common/thread_pool.h"

namespace fastconv {

// Threads the next parallel_for of this calling thread may use. The value is latched per
// calling thread: set_threads() from another Python thread between a kernel sizing its
// buffers and running its loop must not hand out thread ids past those buffers. Inside a
// job it is the job's team size (nested loops run serially on the outer thread's id).
inline int max_threads() {
  if (pool_in_job()) return pool_job_team();
  return pool_latched_team() = pool_threads_setting();
}

inline int thread_id() { return pool_thread_id(); }

inline void set_threads(int n) {
  set_pool_threads(n);
  pool_latched_team() = n;  // this thread's next kernel sees its own setting at once
}

template <typename F>
void parallel_for(int64_t n, F&& f) {
  using Fn = std::remove_reference_t<F>;
  if (n > 1 && !pool_in_job()) {
    const int latched = pool_latched_team();
    const int team = std::min(pool_threads_setting(), latched > 0 ? latched : pool_threads_setting());
    auto call = [](void* ctx, int64_t i) { (*static_cast<Fn*>(ctx))(i); };
    if (team > 1 && pool_run(n, team, call, const_cast<void*>(static_cast<const void*>(&f)))) return;
  }
  for (int64_t i = 0; i < n; ++i) f(i);
}

}  // namespace fastconv
