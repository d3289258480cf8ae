// fastconv's thread pool (see thread_pool.h for what it guarantees and why it exists).
//
// Protocol. One atomic word `state_` = generation << 1 | open. The caller that owns the pool
// (busy_ mutex) writes the job's fields while the current generation is closed, then publishes
// them with one store of (generation + 1, open). A worker that sees a new generation registers
// in `inside_` and only then re-reads `state_`: if the job is still the open one it saw, the
// caller will wait for it; otherwise (closed, or already replaced) it leaves without touching
// the fields. The caller closes the job once every item is claimed and waits until `inside_`
// is zero, so a late worker never holds a pointer into a finished job.
#include "common/thread_pool.h"

#include "common/host_openmp.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <new>
#include <system_error>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FASTCONV_CPU_RELAX() _mm_pause()
#else
#define FASTCONV_CPU_RELAX() std::this_thread::yield()
#endif

namespace fastconv {
namespace {

// An idle worker spins this long before sleeping: long enough to catch the next kernel of a
// training step (Python spends tens of microseconds between calls), short enough that an idle
// pool costs nothing measurable to torch, numpy's BLAS or other processes.
constexpr int kDefaultSpinUs = 50;
// Threads beyond this are never started, whatever set_num_threads asks for.
constexpr int kMaxWorkers = 255;

int env_int(const char* name, int fallback, int lo, int hi) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < lo || x > hi) return fallback;
  return static_cast<int>(x);
}

// CPUs this process may run on (respects taskset / cgroup cpusets), like OpenMP's default.
int default_threads() {
#ifdef __linux__
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  return std::max(1u, std::thread::hardware_concurrency());
}

struct ThreadState {
  int id = 0;          // 0: a caller; w >= 1: worker w
  bool in_job = false;
  int team = 1;        // team size of the job this thread is running
  int caller_team = 0; // this thread's team size as a caller (0: not chosen yet)
};
thread_local ThreadState t_state;

class Pool {
 public:
  Pool()
      : setting_(env_int("FASTCONV_NUM_THREADS", env_int("OMP_NUM_THREADS", default_threads(), 1, kMaxWorkers + 1),
                         1, kMaxWorkers + 1)),
        spin_us_(env_int("FASTCONV_SPIN_US", kDefaultSpinUs, 0, 1000000)) {}

  int setting() const { return setting_.load(std::memory_order_relaxed); }
  void set_setting(int n) { setting_.store(n, std::memory_order_relaxed); }
  int spin_us() const { return spin_us_; }
  int workers() const { return workers_.load(std::memory_order_relaxed); }

  bool run(int64_t n, int team, PoolItemFn fn, void* ctx) {
    std::unique_lock<std::mutex> own(busy_, std::try_to_lock);
    if (!own.owns_lock()) return false;
    const HostOpenMP* omp = host_openmp();
    if (omp && omp->in_parallel()) return false;  // called from inside the host's own region
    if (!omp) team = std::min(team, start_workers(team - 1) + 1);
    if (team <= 1) return false;

    set_job(n, team, fn, ctx);
    if (omp) {
      run_on_host_team(*omp, team);
    } else {
      run_on_own_workers();
    }
    if (error_) std::rethrow_exception(error_);
    return true;
  }

  bool on_host_openmp() const { return host_openmp() != nullptr; }

  // The child of fork() has only the forking thread: forget the workers (their memory stays
  // allocated; it is small) and rebuild the synchronisation objects, which a worker may have
  // held at the moment of the fork.
  void reset_after_fork() {
    new (&busy_) std::mutex();
    new (&m_) std::mutex();
    new (&work_cv_) std::condition_variable();
    new (&done_cv_) std::condition_variable();
    workers_.store(0);
    inside_.store(0);
    sleepers_.store(0);
    caller_waiting_.store(false);
    state_.store(state_.load() & ~uint64_t(1));
  }

 private:
  void set_job(int64_t n, int team, PoolItemFn fn, void* ctx) {
    fn_ = fn;
    ctx_ = ctx;
    n_ = n;
    team_ = team;
    // Items are claimed in chunks: one atomic per item costs a cache-line transfer between
    // cores each time, which dominated small loops (4096 pooling planes of 9 pixels took
    // ~350 us). Eight chunks per thread keep the dynamic balance for uneven items.
    chunk_ = std::max<int64_t>(1, n / (int64_t(team) * 8));
    error_ = nullptr;
    next_.store(0, std::memory_order_relaxed);
  }

  // The same job on the host runtime's team: the caller is its thread 0 (OpenMP's master is
  // the encountering thread), the others keep their OpenMP numbers as ids. The team may come
  // out smaller than asked (the runtime's thread limit), never larger: buffers sized by
  // max_threads() stay large enough.
  void run_on_host_team(const HostOpenMP& omp, int team) {
    struct Call {
      Pool* pool;
      const HostOpenMP* omp;
    } call{this, &omp};
    omp.parallel(
        [](void* data) {
          const Call& c = *static_cast<Call*>(data);
          const ThreadState saved = t_state;
          t_state.id = c.omp->thread_num();
          t_state.in_job = true;
          t_state.team = c.omp->num_threads();
          c.pool->run_items();
          t_state = saved;
        },
        &call, static_cast<unsigned>(team), 0);
  }

  void run_on_own_workers() {
    const uint64_t gen = (state_.load(std::memory_order_relaxed) >> 1) + 1;
    state_.store(gen << 1 | 1);  // publish (seq_cst: pairs with the sleepers_ check below)
    if (sleepers_.load() > 0) {
      { std::lock_guard<std::mutex> lk(m_); }  // a worker between its check and its wait
      work_cv_.notify_all();
    }

    const ThreadState saved = t_state;
    t_state.id = 0;
    t_state.in_job = true;
    t_state.team = team_;
    run_items();
    t_state = saved;

    state_.store(gen << 1);  // close: late workers now leave without reading the fields
    wait_for_workers();
  }

  // Starts workers until there are `want` (bounded); returns how many there are.
  int start_workers(int want) {
    int have = workers();
    while (have < want) {
      const int id = have + 1;
      try {
        std::thread(&Pool::worker_loop, this, id, state_.load() >> 1).detach();
      } catch (const std::system_error&) {
        break;  // no more threads available: run with the ones there are
      }
      workers_.store(++have, std::memory_order_relaxed);
    }
    return have;
  }

  void run_items() {
    // Local copies: the job's fields are read once, not beside the contended counter.
    const PoolItemFn fn = fn_;
    void* const ctx = ctx_;
    const int64_t n = n_, chunk = chunk_;
    for (;;) {
      const int64_t begin = next_.fetch_add(chunk, std::memory_order_relaxed);
      if (begin >= n) return;
      const int64_t end = std::min(n, begin + chunk);
      try {
        for (int64_t i = begin; i < end; ++i) fn(ctx, i);
      } catch (...) {
        std::lock_guard<std::mutex> lk(m_);
        if (!error_) error_ = std::current_exception();
        next_.store(n, std::memory_order_relaxed);  // skip the remaining items
      }
    }
  }

  void wait_for_workers() {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_us_);
    for (int k = 0; inside_.load() != 0; ++k) {
      FASTCONV_CPU_RELAX();
      if ((k & 63) == 63 && std::chrono::steady_clock::now() > until) break;
    }
    if (inside_.load() == 0) return;
    std::unique_lock<std::mutex> lk(m_);
    caller_waiting_.store(true);
    done_cv_.wait(lk, [&] { return inside_.load() == 0; });
    caller_waiting_.store(false);
  }

  // Waits (spin, then sleep) until the generation differs from `seen`; returns the state.
  uint64_t wait_for_job(uint64_t seen) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_us_);
    for (int k = 0;; ++k) {
      const uint64_t s = state_.load();
      if ((s >> 1) != seen) return s;
      FASTCONV_CPU_RELAX();
      if ((k & 63) == 63 && std::chrono::steady_clock::now() > until) break;
    }
    std::unique_lock<std::mutex> lk(m_);
    sleepers_.fetch_add(1);
    uint64_t s;
    work_cv_.wait(lk, [&] { return ((s = state_.load()) >> 1) != seen; });
    sleepers_.fetch_sub(1);
    return s;
  }

  void worker_loop(int id, uint64_t seen) {
    t_state.id = id;
    t_state.in_job = true;  // a worker only ever runs job items: nested loops stay serial
    for (;;) {
      const uint64_t s = wait_for_job(seen);
      seen = s >> 1;
      if (!(s & 1)) continue;  // woke after the job closed
      inside_.fetch_add(1);
      if (state_.load() == s && id < team_) {
        t_state.team = team_;
        run_items();
      }
      if (inside_.fetch_sub(1) == 1 && caller_waiting_.load()) {
        std::lock_guard<std::mutex> lk(m_);
        done_cv_.notify_one();
      }
    }
  }

  std::atomic<int> setting_;
  const int spin_us_;
  std::atomic<int> workers_{0};

  std::mutex busy_;  // held by the caller that owns the pool for one job
  std::mutex m_;     // sleeping and waking only
  std::condition_variable work_cv_, done_cv_;
  // Spinning workers poll state_; keep it off the lines that the job's writes touch.
  alignas(64) std::atomic<uint64_t> state_{0};
  alignas(64) std::atomic<int> inside_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> caller_waiting_{false};

  // The job: written by the owning caller while the generation is closed.
  PoolItemFn fn_ = nullptr;
  void* ctx_ = nullptr;
  int64_t n_ = 0;
  int64_t chunk_ = 1;
  int team_ = 1;
  // On its own cache line: every claim writes it, and nothing else may share the line.
  alignas(64) std::atomic<int64_t> next_{0};
  char pad_after_next_[64 - sizeof(std::atomic<int64_t>)];
  std::exception_ptr error_;
};

// Never destroyed: detached workers may still be asleep in it while the process exits, and
// destroying a condition variable with waiters can block.
Pool& pool() {
  static Pool* p = [] {
    Pool* created = new Pool();
    pthread_atfork(nullptr, nullptr, [] { pool().reset_after_fork(); });
    return created;
  }();
  return *p;
}

}  // namespace

int pool_caller_team() {
  const int setting = pool().setting();
  int& team = t_state.caller_team;
  if (team == 0 || setting < team) team = setting;
  return team;
}
void set_pool_threads(int n) {
  n = std::min(n, kMaxWorkers + 1);
  pool().set_setting(n);
  t_state.caller_team = n;
}
int pool_thread_id() { return t_state.id; }
bool pool_in_job() { return t_state.in_job; }
int pool_job_team() { return t_state.team; }
bool pool_run(int64_t n, int team, PoolItemFn fn, void* ctx) { return pool().run(n, team, fn, ctx); }
int pool_spin_us() { return pool().spin_us(); }
int pool_workers_started() { return pool().workers(); }
bool pool_on_host_openmp() { return pool().on_host_openmp(); }

}  // namespace fastconv
