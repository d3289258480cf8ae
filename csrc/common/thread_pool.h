// fastconv's own thread pool: the caller plus N-1 worker threads that claim loop items from an
// atomic counter, spin briefly after a job and then sleep on a condition variable. Where a host
// library has loaded an OpenMP runtime globally (torch), the same jobs run on that runtime's
// team instead (common/host_openmp.h says why); the guarantees below hold either way.
//
// Why not OpenMP: torch's wheel ships its own libgomp and whichever copy loads first serves
// both libraries, with the wait policy read when it loads. With torch imported first the
// team spins after every parallel region (libgomp's default), and on a busy machine a
// LeNet-5 epoch took ~20x longer; changing OMP_WAIT_POLICY from our import would change
// torch's runtime too. A pool of our own behaves the same whatever was imported first.
//
// Guarantees relied on by the kernels (see parallel.h):
//  - thread ids are stable: the caller is 0, worker w is w, all < the job's team size;
//  - the team size of a running job never changes, and a calling thread's team size only
//    grows through its own set_pool_threads (a kernel's buffers stay large enough);
//  - one job at a time: a second Python thread that finds the pool busy runs its loop on
//    its own thread instead of waiting (no deadlock, and both cores stay busy);
//  - a nested loop (inside a job) runs serially on the thread that reached it;
//  - an exception thrown by an item is rethrown on the caller once every worker has left;
//  - after fork() the child starts with no workers and creates them on first use.
#pragma once
#include <cstdint>

namespace fastconv {

using PoolItemFn = void (*)(void* ctx, int64_t item);

// The team size for the calling thread's next loop (see parallel.h: max_threads), and the
// setting: it becomes the calling thread's team size, and lowers every other thread's.
int pool_caller_team();
void set_pool_threads(int n);

// Per calling thread: the id within the current job (0 outside one), whether it is inside a
// job, and that job's team size.
int pool_thread_id();
bool pool_in_job();
int pool_job_team();

// Runs fn(ctx, i) for i in [0, n) on up to `team` threads. Returns false without running
// anything when the pool cannot take the job (busy with another caller, or one thread);
// the caller then runs the loop itself.
bool pool_run(int64_t n, int team, PoolItemFn fn, void* ctx);

// How long an idle worker spins before sleeping, in microseconds (FASTCONV_SPIN_US, default
// in thread_pool.cpp); reported by capabilities().
int pool_spin_us();
int pool_workers_started();
// Whether loops now go to the host's OpenMP team instead (common/host_openmp.h).
bool pool_on_host_openmp();

}  // namespace fastconv
