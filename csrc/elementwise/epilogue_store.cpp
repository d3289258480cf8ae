// The conv epilogue fused into a tile's copy out (epilogue.h: epilogue_store_rows): one pass
// that reads the tile, adds the bias and the residual, applies the activation and stores, per
// ISA (isa_target.h), so the clamps vectorise at the ISA's width (this directory builds with
// -fno-trapping-math for that). SiLU is not here: its exp stays in epilogue.cpp's pass.
#include <algorithm>
#include <cstdint>

#include "common/isa_target.h"
#include "elementwise/epilogue.h"

namespace fastconv {
namespace {

template <typename T>
using StoreRowsFn = void (*)(const OutputEpilogue<T>* e, const T* src, T bias, T* dst, int64_t v0, int64_t v1,
                             int64_t Wv, int64_t OW);

// RES: 0 no residual, 1 added before the activation, 2 after it.
template <typename T, int ACT, int RES>
FASTCONV_ALWAYS_INLINE void store_rows(const T* src, T b, T* dst, const T* r, int64_t v0, int64_t v1, int64_t Wv,
                                       int64_t OW, T lo, T hi) {
  for (int64_t v = v0, oh = v0 / Wv, ow = v0 % Wv; v < v1; ++oh, ow = 0) {
    const int64_t run = std::min(Wv - ow, v1 - v);
    const int64_t valid = std::max<int64_t>(0, std::min(run, OW - ow));
    const T* s = src + (v - v0);
    const int64_t o = oh * OW + ow;
    T* d = dst + o;
    for (int64_t t = 0; t < valid; ++t) {
      T x = s[t] + b;
      if constexpr (RES == 1) x += r[o + t];
      x = epilogue_activate<T, ACT>(x, lo, hi);
      if constexpr (RES == 2) x += r[o + t];
      d[t] = x;
    }
    v += run;
  }
}

template <typename T, int ACT>
FASTCONV_ALWAYS_INLINE void store_rows_res(const OutputEpilogue<T>* e, const T* src, T b, T* dst, int64_t v0,
                                           int64_t v1, int64_t Wv, int64_t OW) {
  const T lo = e ? e->lo : T(0), hi = e ? e->hi : T(0);
  if (!e || !e->residual) return store_rows<T, ACT, 0>(src, b, dst, nullptr, v0, v1, Wv, OW, lo, hi);
  const T* r = e->residual + (dst - e->y);
  if (e->residual_after_act) return store_rows<T, ACT, 2>(src, b, dst, r, v0, v1, Wv, OW, lo, hi);
  store_rows<T, ACT, 1>(src, b, dst, r, v0, v1, Wv, OW, lo, hi);
}

template <typename T>
FASTCONV_ALWAYS_INLINE void store_rows_any(const OutputEpilogue<T>* e, const T* src, T b, T* dst, int64_t v0,
                                           int64_t v1, int64_t Wv, int64_t OW) {
  const int act = e ? e->act : kActNone;
  if (act == kActRelu) return store_rows_res<T, kActRelu>(e, src, b, dst, v0, v1, Wv, OW);
  if (act == kActClamp) return store_rows_res<T, kActClamp>(e, src, b, dst, v0, v1, Wv, OW);
  store_rows_res<T, kActNone>(e, src, b, dst, v0, v1, Wv, OW);  // (SiLU never comes here)
}

#define FASTCONV_EPILOGUE_STORE_ROWS(ISA)                                                                     \
  FASTCONV_TARGET(ISA) void store_rows_f32__##ISA(const OutputEpilogue<float>* e, const float* src, float b, \
                                                  float* dst, int64_t v0, int64_t v1, int64_t Wv, int64_t OW) { \
    store_rows_any<float>(e, src, b, dst, v0, v1, Wv, OW);                                                    \
  }                                                                                                           \
  FASTCONV_TARGET(ISA) void store_rows_f64__##ISA(const OutputEpilogue<double>* e, const double* src,         \
                                                  double b, double* dst, int64_t v0, int64_t v1, int64_t Wv,  \
                                                  int64_t OW) {                                               \
    store_rows_any<double>(e, src, b, dst, v0, v1, Wv, OW);                                                   \
  }
FASTCONV_FOR_EACH_ISA(FASTCONV_EPILOGUE_STORE_ROWS)
#undef FASTCONV_EPILOGUE_STORE_ROWS

const KernelTable<StoreRowsFn<float>> kStoreRowsF32("epilogue_store_rows", "float32",
                                                    FASTCONV_ISA_VARIANTS(store_rows_f32, "epilogue_store_rows_f32"));
const KernelTable<StoreRowsFn<double>> kStoreRowsF64("epilogue_store_rows", "float64",
                                                     FASTCONV_ISA_VARIANTS(store_rows_f64, "epilogue_store_rows_f64"));

StoreRowsFn<float> store_rows_kernel(const float*) { return kStoreRowsF32.active(); }
StoreRowsFn<double> store_rows_kernel(const double*) { return kStoreRowsF64.active(); }

}  // namespace

template <typename T>
void epilogue_store_rows(const OutputEpilogue<T>* e, const T* src, T bias, T* dst, int64_t v0, int64_t v1, int64_t Wv,
                         int64_t OW) {
  store_rows_kernel(src)(e, src, bias, dst, v0, v1, Wv, OW);
}

template void epilogue_store_rows<float>(const OutputEpilogue<float>*, const float*, float, float*, int64_t, int64_t,
                                         int64_t, int64_t);
template void epilogue_store_rows<double>(const OutputEpilogue<double>*, const double*, double, double*, int64_t,
                                          int64_t, int64_t, int64_t);

}  // namespace fastconv
