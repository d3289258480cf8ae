// The kernel registry: every KernelTable adds its family here when it is constructed (see
// kernel_list.h); tests/test_kernel_variants.py checks on every host that each kernel dispatch
// can return is listed, and runs every listed kernel the CPU supports.
#include "common/kernel_list.h"

namespace fastconv {

std::vector<KernelFamily>& kernel_families() {
  static std::vector<KernelFamily> families;
  return families;
}

}  // namespace fastconv
