// 64-byte aligned scratch buffers (one cache line, one AVX-512 register).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

namespace fastconv {

template <typename T>
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t n) { resize(n); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  AlignedBuffer(AlignedBuffer&& o) noexcept : ptr_(o.ptr_), size_(o.size_) { o.ptr_ = nullptr; o.size_ = 0; }
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    if (this != &o) { std::free(ptr_); ptr_ = o.ptr_; size_ = o.size_; o.ptr_ = nullptr; o.size_ = 0; }
    return *this;
  }
  ~AlignedBuffer() { std::free(ptr_); }

  // Contents are not preserved. A failed allocation throws std::bad_alloc (the pool carries it
  // out of a parallel loop: Python gets MemoryError) and leaves the buffer empty, not holding
  // the freed pointer: kernels keep these per thread between calls, and a stale size would
  // make the next call write to freed memory and the destructor free it twice.
  void resize(size_t n) {
    if (n <= size_) return;
    std::free(ptr_);
    ptr_ = nullptr;
    size_ = 0;
    if (n > (SIZE_MAX - 63) / sizeof(T)) throw std::bad_alloc();  // the byte count would wrap
    const size_t bytes = ((n * sizeof(T) + 63) / 64) * 64;
    ptr_ = static_cast<T*>(std::aligned_alloc(64, bytes ? bytes : 64));
    if (!ptr_) throw std::bad_alloc();
    size_ = n;
  }
  void zero() { if (ptr_) std::memset(ptr_, 0, size_ * sizeof(T)); }
  T* data() { return ptr_; }
  const T* data() const { return ptr_; }
  size_t size() const { return size_; }

 private:
  T* ptr_ = nullptr;
  size_t size_ = 0;
};

}  // namespace fastconv
