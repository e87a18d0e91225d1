// Declarations shared by the kernel versions; not part of the module's interface.
#ifndef C_INT8_KERNELS_INTERNAL_H
#define C_INT8_KERNELS_INTERNAL_H

#include "CInt8Kernels.h"

#include <string.h>

#if defined(__x86_64__)
#define TANDEM_INT8_X86 1
#endif

/// Requantization parameters of `LANES` consecutive units, laid out for the 64-bit products of
/// vpmuldq: `multiplier` serves the even units (vpmuldq reads the low half of each 64-bit lane), and
/// the odd units' mantissas, the shifts and the rounding halves `2^(shift − 1)` are stored as int64
/// lanes, even and odd units apart. Units past the end have multiplier 0, shift 1 and bias 0.
#define TANDEM_INT8_PARAMETER_BLOCK(LANES)   \
    struct {                                 \
        int32_t bias[LANES];                 \
        int32_t multiplier[LANES];           \
        int64_t multiplierOdd[(LANES) / 2];  \
        int64_t shiftEven[(LANES) / 2];      \
        int64_t shiftOdd[(LANES) / 2];       \
        int64_t halfEven[(LANES) / 2];       \
        int64_t halfOdd[(LANES) / 2];        \
    }

typedef TANDEM_INT8_PARAMETER_BLOCK(16) TandemInt8Parameters16;
typedef TANDEM_INT8_PARAMETER_BLOCK(8) TandemInt8Parameters8;

/// `count` rounded up to a multiple of `step`.
static inline size_t tandem_int8_round_up(size_t count, size_t step) { return (count + step - 1) / step * step; }

/// One input sample quantized to a biased byte (see `tandem_int8_quantize_input`); `*finite` is cleared
/// for a non-finite sample. The float product is its own statement so that it is never fused with the
/// double addition.
static inline uint8_t tandem_int8_quantize_sample(float x, float inverseScale, int32_t zeroPoint, bool *finite)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    if ((bits & 0x7f800000u) == 0x7f800000u) *finite = false;
    float scaled = x * inverseScale;
    // NaN fails the first test and becomes −512, so the conversion below is always defined.
    double clamped = scaled >= -512.0f ? (scaled <= 512.0f ? scaled : 512.0f) : -512.0f;
    int32_t q = (int32_t)(clamped + (clamped < 0 ? -0.5 : 0.5)) + zeroPoint;
    return (uint8_t)((q < -128 ? -128 : q > 127 ? 127 : q) + 128);
}

/// Fills the parameter block of units `first ..< first + lanes` (units at or past `units` are padding).
void tandem_int8_fill_parameters(
    size_t lanes, size_t first, size_t units, const int32_t *bias, const int32_t *multiplier, const int32_t *shift,
    int32_t *blockBias, int32_t *blockMultiplier, int64_t *multiplierOdd, int64_t *shiftEven, int64_t *shiftOdd,
    int64_t *halfEven, int64_t *halfOdd);

size_t tandem_int8_portable_packed_size(size_t units, size_t depth);
void tandem_int8_portable_pack(
    const int8_t *weights, size_t units, size_t rowLength, size_t depth, const int32_t *bias,
    const int32_t *multiplier, const int32_t *shift, void *packed);
size_t tandem_int8_portable_scratch_size(size_t depth);
void tandem_int8_portable_rows(
    const void *packed, size_t units, size_t depth, const uint8_t *input, size_t inputStride, size_t rows,
    int32_t outputOffset, int32_t lowerBound, uint8_t *output, int32_t *accumulators, void *scratch);

bool tandem_int8_portable_quantize_input(
    const float *input, size_t count, float inverseScale, int32_t zeroPoint, uint8_t *output);

#if TANDEM_INT8_X86
bool tandem_int8_avx2_quantize_input(
    const float *input, size_t count, float inverseScale, int32_t zeroPoint, uint8_t *output);
bool tandem_int8_vnni_quantize_input(
    const float *input, size_t count, float inverseScale, int32_t zeroPoint, uint8_t *output);
size_t tandem_int8_avx2_packed_size(size_t units, size_t depth);
size_t tandem_int8_avx2_scratch_size(size_t depth);
void tandem_int8_avx2_pack(
    const int8_t *weights, size_t units, size_t rowLength, size_t depth, const int32_t *bias,
    const int32_t *multiplier, const int32_t *shift, void *packed);
void tandem_int8_avx2_rows(
    const void *packed, size_t units, size_t depth, const uint8_t *input, size_t inputStride, size_t rows,
    int32_t outputOffset, int32_t lowerBound, uint8_t *output, int32_t *accumulators, void *scratch);

size_t tandem_int8_vnni_packed_size(size_t units, size_t depth);
void tandem_int8_vnni_pack(
    const int8_t *weights, size_t units, size_t rowLength, size_t depth, const int32_t *bias,
    const int32_t *multiplier, const int32_t *shift, void *packed);
void tandem_int8_vnni_rows(
    const void *packed, size_t units, size_t depth, const uint8_t *input, size_t inputStride, size_t rows,
    int32_t outputOffset, int32_t lowerBound, uint8_t *output, int32_t *accumulators);
#endif

#endif
