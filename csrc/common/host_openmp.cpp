// Finds a globally loaded libgomp by its symbols (see host_openmp.h for why).
#include "common/host_openmp.h"

#include <dlfcn.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace fastconv {
namespace {

constexpr auto kRecheckEvery = std::chrono::milliseconds(5);

HostOpenMP g_found;
std::atomic<const HostOpenMP*> g_runtime{nullptr};
std::atomic<bool> g_disabled{false};
std::atomic<int64_t> g_next_check_ns{0};

bool opted_out() {
  const char* v = std::getenv("FASTCONV_HOST_OPENMP");
  return v && std::strcmp(v, "0") == 0;
}

template <typename Fn>
Fn global_symbol(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, name));
}

const HostOpenMP* look_up() {
  HostOpenMP rt;
  rt.parallel = global_symbol<decltype(rt.parallel)>("GOMP_parallel");
  rt.thread_num = global_symbol<decltype(rt.thread_num)>("omp_get_thread_num");
  rt.num_threads = global_symbol<decltype(rt.num_threads)>("omp_get_num_threads");
  rt.in_parallel = global_symbol<decltype(rt.in_parallel)>("omp_in_parallel");
  rt.name = "libgomp";
  if (!rt.parallel || !rt.thread_num || !rt.num_threads || !rt.in_parallel) return nullptr;
  g_found = rt;
  return &g_found;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

const HostOpenMP* host_openmp() {
  if (const HostOpenMP* rt = g_runtime.load(std::memory_order_acquire)) return rt;
  if (g_disabled.load(std::memory_order_relaxed)) return nullptr;
  const int64_t now = now_ns();
  if (now < g_next_check_ns.load(std::memory_order_relaxed)) return nullptr;
  g_next_check_ns.store(now + std::chrono::nanoseconds(kRecheckEvery).count(), std::memory_order_relaxed);
  static const bool registered = [] {
    if (opted_out()) g_disabled.store(true);
    // A forked child inherits the parent's libgomp state without its worker threads.
    pthread_atfork(nullptr, nullptr, [] {
      g_runtime.store(nullptr);
      g_disabled.store(true);
    });
    return true;
  }();
  (void)registered;
  if (g_disabled.load(std::memory_order_relaxed)) return nullptr;
  static std::mutex lookup;  // g_found is written once, by one thread
  std::lock_guard<std::mutex> lk(lookup);
  if (const HostOpenMP* rt = g_runtime.load(std::memory_order_acquire)) return rt;
  const HostOpenMP* rt = look_up();
  if (rt) g_runtime.store(rt, std::memory_order_release);
  return rt;
}

}  // namespace fastconv
