// The process's OpenMP runtime, when another library has loaded one into the global symbol
// scope (torch does: libtorch_global_deps pulls its libgomp in with RTLD_GLOBAL).
//
// Why fastconv looks for it: after every torch op, libgomp's idle workers keep spinning for a
// while (its default wait policy). A fastconv kernel that starts its own pool right then shares
// the cores with those spinning threads and ran 1.16-1.50x slower than alone. Handing the loop
// to that same team instead puts the spinning threads to work: they pick the job up at once,
// and nothing else competes for the cores. Without such a runtime (no torch, or torch not yet
// imported) fastconv keeps its own pool, and nothing of OpenMP's is touched: no variable is read
// or set, and torch's thread count and wait policy stay as torch set them.
#pragma once

namespace fastconv {

struct HostOpenMP {
  void (*parallel)(void (*fn)(void*), void* data, unsigned num_threads, unsigned flags);  // GOMP_parallel
  int (*thread_num)();   // omp_get_thread_num
  int (*num_threads)();  // omp_get_num_threads
  int (*in_parallel)();  // omp_in_parallel
  const char* name;      // "libgomp"
};

// The runtime, or null: none is globally visible, FASTCONV_HOST_OPENMP=0 was set, or this is
// the child of a fork() (libgomp's team does not survive one). Looked up again at most every
// few milliseconds while absent, so an `import torch` after fastconv is noticed.
const HostOpenMP* host_openmp();

}  // namespace fastconv
