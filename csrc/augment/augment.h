// Data-augmentation kernels on image batches. Every kernel takes per-sample parameters (one
// entry per image), so one call augments a whole batch with independent random draws; the
// random numbers themselves are drawn in Python (fastconv/augment), except the per-pixel noise,
// which is a counter-based hash of (sample key, element index) so it does not depend on the
// thread count or on how a batch was split into chunks.
//
// Storage: float (values in any range) or uint8 (0..255; results rounded and saturated).
// Computation is always in float. Layout: NCHW, or NHWC (channels_last) so that uint8 HWC
// images are augmented as they are, without conversion.
#pragma once
#include <cstdint>

namespace fastconv {
namespace augment {

enum class Interp : int { nearest = 0, bilinear = 1 };
// reflect = mirror without repeating the edge (numpy 'reflect', cv2 BORDER_REFLECT_101).
enum class Border : int { constant = 0, reflect = 1, replicate = 2 };

struct Image {
  int64_t N, C, H, W;
  bool channels_last;
};

// dst (N, C, OH, OW) sampled from src at (sx, sy) = inv[n] * (x, y, 1); inv holds N
// row-major 2x3 matrices mapping output pixel centres to input pixel centres.
template <typename T>
void warp_affine(const T* src, T* dst, Image im, int64_t OH, int64_t OW, const double* inv,
                 Interp interp, Border border, float fill);

// Exact flips (no resampling): per-sample flags, 0 or 1.
template <typename T>
void flip(const T* src, T* dst, Image im, const uint8_t* hflip, const uint8_t* vflip);

// Separable Gaussian blur, per-sample sigma (<= 0: copy), radius = int(truncate * sigma + 0.5)
// as scipy.ndimage.gaussian_filter.
template <typename T>
void gaussian_blur(const T* src, T* dst, Image im, const double* sigma, double truncate, Border border);

// Brightness, contrast, saturation, hue in that order, each followed by a clamp to [lo, hi]
// (torchvision.transforms.functional semantics). params: N x 4 (b, c, s, h); b=c=s=1, h=0 is
// the identity. Saturation and hue need C == 3.
template <typename T>
void color_adjust(const T* src, T* dst, Image im, const float* params, float lo, float hi);

// uint8 only: `steps` brightness / contrast steps in a row, each exactly color_adjust with
// saturation 1 and hue 0 (params: N x steps x 2 (b, c); ranges: steps x 2 (lo, hi)), values
// rounded to uint8 between steps as if each were stored, composed into one 256-entry table
// per image and applied in one pass.
void color_lut_chain(const uint8_t* src, uint8_t* dst, Image im, int64_t steps, const float* params,
                     const float* ranges);

// dst = clamp(src + std[n] * z), z ~ N(0, 1) from hash(key[n], element index).
template <typename T>
void gaussian_noise(const T* src, T* dst, int64_t N, int64_t per_sample, const uint64_t* key,
                    const float* std, float lo, float hi);

// Each element becomes `pepper` with probability amount/2 and `salt` with probability amount/2.
template <typename T>
void salt_pepper(const T* src, T* dst, int64_t N, int64_t per_sample, const uint64_t* key,
                 const float* amount, float salt, float pepper);

}  // namespace augment
}  // namespace fastconv
