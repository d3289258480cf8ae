// The few vector operations the depthwise kernels are written in, once per ISA: output columns
// sit in the lanes, so a kernel needs loads and stores of a row segment (the tail of a row under
// a lane count), broadcasts, FMA, a horizontal sum (the weight gradient's per-tap totals), and
// the two lane shuffles of stride 2: taking the even elements of 2L consecutive ones (the
// forward window's column phases) and spreading L elements over 2L with zeros between (the
// input gradient's upsampled grad_output), or every second element of one vector (both column
// phases of a row narrower than a vector, from one load). Every function is always-inline and carries its
// ISA's target attribute, so the kernel templates compile once per ISA (isa_target.h).
//
// The dense 3x3 kernels (depthwise_dense.inc) also load, store and FMA under a lane mask given
// as bits (bit l: lane l; masked-off lanes read as zero and never fault, an FMA leaves them be),
// shift a vector by one lane taking the lane shifted in from its neighbour, clamp, split a row
// into its even and odd elements and zip two back into one (the stride-2 phases).
//
// ScalarVec<T> (one lane) is the portable baseline and the float64 path.
#pragma once
#include <algorithm>
#include <cstdint>

#include "common/isa_target.h"
#if defined(FASTCONV_X86) && defined(__GNUC__)
#include <immintrin.h>
#endif

namespace fastconv {

template <typename T>
struct ScalarVec {
  using Elem = T;
  using V = T;
  static constexpr int lanes = 1;
  static FASTCONV_ALWAYS_INLINE V zero() { return T(0); }
  static FASTCONV_ALWAYS_INLINE V set1(T v) { return v; }
  static FASTCONV_ALWAYS_INLINE V loadu(const T* p) { return *p; }
  static FASTCONV_ALWAYS_INLINE V load_n(const T* p, int n) { return n > 0 ? *p : T(0); }
  static FASTCONV_ALWAYS_INLINE void store_n(T* p, V v, int n) {
    if (n > 0) *p = v;
  }
  static FASTCONV_ALWAYS_INLINE V load_bits(const T* p, uint32_t bits) { return bits & 1u ? *p : T(0); }
  static FASTCONV_ALWAYS_INLINE void store_bits(T* p, V v, uint32_t bits) {
    if (bits & 1u) *p = v;
  }
  static FASTCONV_ALWAYS_INLINE V fma(V a, V b, V c) { return a * b + c; }
  static FASTCONV_ALWAYS_INLINE V add(V a, V b) { return a + b; }
  static FASTCONV_ALWAYS_INLINE V fma_bits(V a, V b, V c, uint32_t bits) { return bits & 1u ? a * b + c : c; }
  static FASTCONV_ALWAYS_INLINE V shift_in_prev(V prev, V) { return prev; }
  static FASTCONV_ALWAYS_INLINE V shift_in_next(V, V next) { return next; }
  static FASTCONV_ALWAYS_INLINE V max(V a, V b) { return a > b ? a : b; }
  static FASTCONV_ALWAYS_INLINE V min(V a, V b) { return a < b ? a : b; }
  static FASTCONV_ALWAYS_INLINE T hsum(V v) { return v; }
  static FASTCONV_ALWAYS_INLINE V even_of(V a, V) { return a; }
  static FASTCONV_ALWAYS_INLINE V odd_of(V, V b) { return b; }
  static FASTCONV_ALWAYS_INLINE void zip(V e, V o, V& lo, V& hi) {
    lo = e;
    hi = o;
  }
  static FASTCONV_ALWAYS_INLINE V zero_unless(V v, uint32_t bits) { return bits & 1u ? v : T(0); }
  static FASTCONV_ALWAYS_INLINE V every_second(V a, int) { return a; }
  static FASTCONV_ALWAYS_INLINE void spread_with_zeros(V v, V& lo, V& hi) {
    lo = v;
    hi = T(0);
  }
};

#if defined(FASTCONV_X86) && defined(__GNUC__)
// GCC 12 warns about its own intrinsic headers here (a false -Wmaybe-uninitialized).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

struct Avx2F32 {
  using Elem = float;
  using V = __m256;
  static constexpr int lanes = 8;
  static FASTCONV_TARGET(avx2) FASTCONV_ALWAYS_INLINE __m256i first_n(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static FASTCONV_TARGET(avx2) FASTCONV_ALWAYS_INLINE V zero() { return _mm256_setzero_ps(); }
  static FASTCONV_TARGET(avx2) FASTCONV_ALWAYS_INLINE V set1(float v) { return _mm256_set1_ps(v); }
  static FASTCONV_TARGET(avx2) FASTCONV_ALWAYS_INLINE V loadu(const float* p) { return _mm256_loadu_ps(p); }
  static FASTCONV_TARGET(avx2) FASTCONV_ALWAYS_INLINE V load_n(const float* p, int n) {
    return n >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, first_n(n));
  }
  static FASTCONV_TARGET(avx2) FASTCONV_ALWAYS_INLINE void store_n(float* p, V v, int n) {
    if (n >= 8) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, first_n(n), v);
  }
  // Lane l of the mask from bit l of bits.
  static FASTCONV_TARGET(avx2) FASTCONV_ALWAYS_INLINE __m256i from_bits(uint32_t bits) {
    const __m256i lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(int(bits)), lane_bit), lane_bit);
  }
  static FASTCONV_TARGET(avx2) FASTCONV_ALWAYS_INLINE V load_bits(const float* p, uint32_t bits) {
    return (bits & 0xFFu) == 0xFFu ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, from_bits(bits));
  }
  static FASTCONV_TARGET(avx2) FASTCONV_ALWAYS_INLINE void store_bits(float* p, V v, uint32_t bits) {
    if ((bits & 0xFFu) == 0xFFu) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, from_bits(bits), v);
  }
  static FASTCONV_TARGET(avx2) FASTCONV_ALWAYS_INLINE V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static FASTCONV_TARGET(avx2) FASTCONV_ALWAYS_INLINE V add(V a, V b) { return _mm256_add_ps(a, b); }
  static FASTCONV_TARGET(avx2) FASTCONV_ALWAYS_INLINE V fma_bits(V a, V b, V c, uint32_t bits) {
    return _mm256_fmadd_ps(a, _mm256_and_ps(b, _mm256_castsi256_ps(from_bits(bits))), c);
  }
  // (prev[7], cur[0..6]): the 128-bit halves (prev_hi, cur_lo) then a byte shift per half.
  static FASTCONV_TARGET(avx2) FASTCONV_ALWAYS_INLINE V shift_in_prev(V prev, V cur) {
    const __m256 t = _mm256_permute2f128_ps(prev, cur, 0x21);
    return _mm256_castsi256_ps(_mm256_alignr_epi8(_mm256_castps_si256(cur), _mm256_castps_si256(t), 12));
  }
  // (cur[1..7], next[0])
  static FASTCONV_TARGET(avx2) FASTCONV_ALWAYS_INLINE V shift_in_next(V cur, V next) {
    const __m256 t = _mm256_permute2f128_ps(cur, next, 0x21);
    return _mm256_castsi256_ps(_mm256_alignr_epi8(_mm256_castps_si256(t), _mm256_castps_si256(cur), 4));
  }
  static FASTCONV_TARGET(avx2) FASTCONV_ALWAYS_INLINE V max(V a, V b) { return _mm256_max_ps(a, b); }
  static FASTCONV_TARGET(avx2) FASTCONV_ALWAYS_INLINE V min(V a, V b) { return _mm256_min_ps(a, b); }
  static FASTCONV_TARGET(avx2) FASTCONV_ALWAYS_INLINE float hsum(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // shuffle_ps gives lanes (0 2 8 10 | 4 6 12 14); permute4x64 puts them in order.
  static FASTCONV_TARGET(avx2) FASTCONV_ALWAYS_INLINE V even_of(V a, V b) {
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
  }
  static FASTCONV_TARGET(avx2) FASTCONV_ALWAYS_INLINE V odd_of(V a, V b) {
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
  }
  // (e0 o0 e1 o1 ... e3 o3) and (e4 o4 ... e7 o7): unpack within halves, then the halves in order.
  static FASTCONV_TARGET(avx2) FASTCONV_ALWAYS_INLINE void zip(V e, V o, V& lo, V& hi) {
    const __m256 l = _mm256_unpacklo_ps(e, o), h = _mm256_unpackhi_ps(e, o);
    lo = _mm256_permute2f128_ps(l, h, 0x20);
    hi = _mm256_permute2f128_ps(l, h, 0x31);
  }
  static FASTCONV_TARGET(avx2) FASTCONV_ALWAYS_INLINE V zero_unless(V v, uint32_t bits) {
    return _mm256_and_ps(v, _mm256_castsi256_ps(from_bits(bits)));
  }
  // Lanes base, base+2, base+4, ... of v (lanes past the end hold anything).
  static FASTCONV_TARGET(avx2) FASTCONV_ALWAYS_INLINE V every_second(V v, int base) {
    const __m256i idx = _mm256_add_epi32(_mm256_set1_epi32(base), _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14));
    return _mm256_permutevar8x32_ps(v, idx);
  }
  // unpack works within 128-bit halves: (a0 0 a1 0 | a4 0 a5 0) and (a2 0 a3 0 | a6 0 a7 0).
  static FASTCONV_TARGET(avx2) FASTCONV_ALWAYS_INLINE void spread_with_zeros(V v, V& lo, V& hi) {
    const __m256 z = _mm256_setzero_ps(), l = _mm256_unpacklo_ps(v, z), h = _mm256_unpackhi_ps(v, z);
    lo = _mm256_permute2f128_ps(l, h, 0x20);
    hi = _mm256_permute2f128_ps(l, h, 0x31);
  }
};

struct Avx512F32 {
  using Elem = float;
  using V = __m512;
  static constexpr int lanes = 16;
  static FASTCONV_TARGET(avx512) FASTCONV_ALWAYS_INLINE __mmask16 first_n(int n) {
    return __mmask16(n >= 16 ? 0xFFFF : (1u << std::max(n, 0)) - 1);
  }
  static FASTCONV_TARGET(avx512) FASTCONV_ALWAYS_INLINE V zero() { return _mm512_setzero_ps(); }
  static FASTCONV_TARGET(avx512) FASTCONV_ALWAYS_INLINE V set1(float v) { return _mm512_set1_ps(v); }
  static FASTCONV_TARGET(avx512) FASTCONV_ALWAYS_INLINE V loadu(const float* p) { return _mm512_loadu_ps(p); }
  static FASTCONV_TARGET(avx512) FASTCONV_ALWAYS_INLINE V load_n(const float* p, int n) {
    return _mm512_maskz_loadu_ps(first_n(n), p);
  }
  static FASTCONV_TARGET(avx512) FASTCONV_ALWAYS_INLINE void store_n(float* p, V v, int n) {
    _mm512_mask_storeu_ps(p, first_n(n), v);
  }
  static FASTCONV_TARGET(avx512) FASTCONV_ALWAYS_INLINE V load_bits(const float* p, uint32_t bits) {
    return _mm512_maskz_loadu_ps(__mmask16(bits), p);
  }
  static FASTCONV_TARGET(avx512) FASTCONV_ALWAYS_INLINE void store_bits(float* p, V v, uint32_t bits) {
    if ((bits & 0xFFFFu) == 0xFFFFu) _mm512_storeu_ps(p, v);  // a masked store costs more on some cores
    else _mm512_mask_storeu_ps(p, __mmask16(bits), v);
  }
  static FASTCONV_TARGET(avx512) FASTCONV_ALWAYS_INLINE V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static FASTCONV_TARGET(avx512) FASTCONV_ALWAYS_INLINE V add(V a, V b) { return _mm512_add_ps(a, b); }
  static FASTCONV_TARGET(avx512) FASTCONV_ALWAYS_INLINE V fma_bits(V a, V b, V c, uint32_t bits) {
    return _mm512_mask3_fmadd_ps(a, b, c, __mmask16(bits));
  }
  // (prev[15], cur[0..14]) and (cur[1..15], next[0])
  static FASTCONV_TARGET(avx512) FASTCONV_ALWAYS_INLINE V shift_in_prev(V prev, V cur) {
    return _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(cur), _mm512_castps_si512(prev), 15));
  }
  static FASTCONV_TARGET(avx512) FASTCONV_ALWAYS_INLINE V shift_in_next(V cur, V next) {
    return _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(next), _mm512_castps_si512(cur), 1));
  }
  static FASTCONV_TARGET(avx512) FASTCONV_ALWAYS_INLINE V max(V a, V b) { return _mm512_max_ps(a, b); }
  static FASTCONV_TARGET(avx512) FASTCONV_ALWAYS_INLINE V min(V a, V b) { return _mm512_min_ps(a, b); }
  static FASTCONV_TARGET(avx512) FASTCONV_ALWAYS_INLINE float hsum(V v) { return _mm512_reduce_add_ps(v); }
  static FASTCONV_TARGET(avx512) FASTCONV_ALWAYS_INLINE V even_of(V a, V b) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_permutex2var_ps(a, even, b);
  }
  static FASTCONV_TARGET(avx512) FASTCONV_ALWAYS_INLINE V odd_of(V a, V b) {
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    return _mm512_permutex2var_ps(a, odd, b);
  }
  static FASTCONV_TARGET(avx512) FASTCONV_ALWAYS_INLINE void zip(V e, V o, V& lo, V& hi) {
    lo = _mm512_permutex2var_ps(e, _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), o);
    hi = _mm512_permutex2var_ps(e, _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), o);
  }
  static FASTCONV_TARGET(avx512) FASTCONV_ALWAYS_INLINE V zero_unless(V v, uint32_t bits) {
    return _mm512_maskz_mov_ps(__mmask16(bits), v);
  }
  // Lanes base, base+2, base+4, ... of v (lanes past the end hold anything).
  static FASTCONV_TARGET(avx512) FASTCONV_ALWAYS_INLINE V every_second(V v, int base) {
    const __m512i two = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_permutexvar_ps(_mm512_add_epi32(_mm512_set1_epi32(base), two), v);
  }
  // Index 16 is lane 0 of the zero vector.
  static FASTCONV_TARGET(avx512) FASTCONV_ALWAYS_INLINE void spread_with_zeros(V v, V& lo, V& hi) {
    const __m512 z = _mm512_setzero_ps();
    lo = _mm512_permutex2var_ps(v, _mm512_setr_epi32(0, 16, 1, 16, 2, 16, 3, 16, 4, 16, 5, 16, 6, 16, 7, 16), z);
    hi = _mm512_permutex2var_ps(v, _mm512_setr_epi32(8, 16, 9, 16, 10, 16, 11, 16, 12, 16, 13, 16, 14, 16, 15, 16), z);
  }
};

#pragma GCC diagnostic pop
#endif

}  // namespace fastconv
