// The AVX-512 VNNI version: vpdpbusd multiplies 64 u8 activations by 64 s8 weights and adds them in groups
// of four to 16 int32 accumulators, one instruction.
//
// Layout: the units in blocks of 16 (the last block padded with zero weights), each block `depth / 4` groups
// of 16 units × 4 consecutive weights, so one 64-byte load gives the weights for four inputs of 16 units;
// then one `TandemInt8Parameters16` per block. A tile of up to 8 rows × 3 blocks keeps 24 accumulators in
// registers: per step of 4 inputs, 3 weight loads and 8 broadcasts feed 24 vpdpbusd.
#include "Kernels.h"

#if TANDEM_INT8_X86
#include <immintrin.h>

#define VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define ALWAYS_INLINE static inline __attribute__((always_inline))

enum { lanes = 16, maximumRows = 8, maximumBlocks = 3 };

static size_t block_count(size_t units) { return (units + lanes - 1) / lanes; }
static size_t weight_bytes(size_t units, size_t depth) { return block_count(units) * depth * lanes; }

size_t tandem_int8_vnni_packed_size(size_t units, size_t depth)
{
    return weight_bytes(units, depth) + block_count(units) * sizeof(TandemInt8Parameters16);
}

void tandem_int8_vnni_pack(
    const int8_t *weights, size_t units, size_t rowLength, size_t depth, const int32_t *bias,
    const int32_t *multiplier, const int32_t *shift, void *packed)
{
    int8_t *w = packed;
    memset(packed, 0, tandem_int8_vnni_packed_size(units, depth));
    for (size_t o = 0; o < units; o++) {
        int8_t *block = w + (o / lanes) * depth * lanes;
        for (size_t k = 0; k < rowLength; k++)
            block[(k / 4) * 4 * lanes + (o % lanes) * 4 + k % 4] = weights[o * rowLength + k];
    }
    TandemInt8Parameters16 *parameters = (TandemInt8Parameters16 *)((uint8_t *)packed + weight_bytes(units, depth));
    for (size_t b = 0; b < block_count(units); b++) {
        TandemInt8Parameters16 *p = parameters + b;
        tandem_int8_fill_parameters(
            lanes, b * lanes, units, bias, multiplier, shift, p->bias, p->multiplier, p->multiplierOdd, p->shiftEven,
            p->shiftOdd, p->halfEven, p->halfOdd);
    }
}

/// `FixedPointMultiplier.requantize` (biased by 128) on 16 accumulators (bias not yet added), on
/// magnitudes: rounding half away from zero is `sign(v) · ((|v| · multiplier + 2^(shift − 1)) >> shift)`,
/// which needs only unsigned 64-bit products and logical shifts. Magnitudes are capped at 383 (any larger
/// value saturates either way, as offset and bounds lie in [0, 255]) so even and odd units recombine into
/// 32-bit lanes.
ALWAYS_INLINE VNNI __m512i requantize(
    __m512i accumulators, const TandemInt8Parameters16 *p, __m512i offset, __m512i lower, __m512i upper)
{
    const __m512i cap = _mm512_set1_epi64(383);
    __m512i v = _mm512_add_epi32(accumulators, _mm512_loadu_si512(p->bias));
    __mmask16 negative = _mm512_cmplt_epi32_mask(v, _mm512_setzero_si512());
    // |INT32_MIN| = 2^31 is right as an unsigned 32-bit value, which is how vpmuludq reads it.
    __m512i magnitude = _mm512_abs_epi32(v);
    __m512i even = _mm512_mul_epu32(magnitude, _mm512_loadu_si512(p->multiplier));
    __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(magnitude, 32), _mm512_loadu_si512(p->multiplierOdd));
    even = _mm512_srlv_epi64(_mm512_add_epi64(even, _mm512_loadu_si512(p->halfEven)), _mm512_loadu_si512(p->shiftEven));
    odd = _mm512_srlv_epi64(_mm512_add_epi64(odd, _mm512_loadu_si512(p->halfOdd)), _mm512_loadu_si512(p->shiftOdd));
    even = _mm512_min_epu64(even, cap);
    odd = _mm512_min_epu64(odd, cap);
    __m512i rounded = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
    rounded = _mm512_mask_sub_epi32(rounded, negative, _mm512_setzero_si512(), rounded);
    return _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(rounded, offset), lower), upper);
}

/// `rows` rows × `blocks` blocks of 16 units; both are constants once inlined, so the accumulator arrays
/// become registers.
ALWAYS_INLINE VNNI void tile(
    const uint8_t *x, size_t inputStride, const int8_t *w, size_t depth, const TandemInt8Parameters16 *p,
    size_t firstUnit, size_t units, const int rows, const int blocks, __m512i offset, __m512i lower, __m512i upper,
    uint8_t *output, int32_t *accumulators)
{
    const size_t blockBytes = depth * lanes;
    __m512i acc[maximumRows][maximumBlocks];
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < blocks; b++) acc[r][b] = _mm512_setzero_si512();
    for (size_t k = 0; k < depth; k += 4) {
        __m512i weights[maximumBlocks];
        for (int b = 0; b < blocks; b++) weights[b] = _mm512_loadu_si512(w + b * blockBytes + k * lanes);
        for (int r = 0; r < rows; r++) {
            int32_t four;
            memcpy(&four, x + r * inputStride + k, sizeof four);
            __m512i broadcast = _mm512_set1_epi32(four);
            for (int b = 0; b < blocks; b++) acc[r][b] = _mm512_dpbusd_epi32(acc[r][b], broadcast, weights[b]);
        }
    }
    for (int b = 0; b < blocks; b++) {
        size_t unit = firstUnit + (size_t)b * lanes;
        size_t count = units - unit < lanes ? units - unit : lanes;
        __mmask16 mask = (__mmask16)((1u << count) - 1);
        for (int r = 0; r < rows; r++) {
            if (accumulators) {
                __m512i sums = _mm512_add_epi32(acc[r][b], _mm512_loadu_si512(p[b].bias));
                _mm512_mask_storeu_epi32(accumulators + r * units + unit, mask, sums);
            } else {
                __m128i bytes = _mm512_cvtepi32_epi8(requantize(acc[r][b], p + b, offset, lower, upper));
                if (count == lanes) {
                    _mm_storeu_si128((__m128i *)(output + r * units + unit), bytes);
                } else {
                    _mm_mask_storeu_epi8(output + r * units + unit, mask, bytes);
                }
            }
        }
    }
}

#define TILE(ROWS, BLOCKS)                                                                                     \
    tile(x, inputStride, w, depth, p, unit, units, ROWS, BLOCKS, offset, lower, upper, out, acc)
#define TILES_OF_ROWS(ROWS)                                                                                     \
    switch (blocks) {                                                                                           \
    case 1: TILE(ROWS, 1); break;                                                                               \
    case 2: TILE(ROWS, 2); break;                                                                               \
    default: TILE(ROWS, 3); break;                                                                              \
    }

VNNI void tandem_int8_vnni_rows(
    const void *packed, size_t units, size_t depth, const uint8_t *input, size_t inputStride, size_t rows,
    int32_t outputOffset, int32_t lowerBound, uint8_t *output, int32_t *accumulators)
{
    const size_t totalBlocks = block_count(units);
    const TandemInt8Parameters16 *parameters =
        (const TandemInt8Parameters16 *)((const uint8_t *)packed + weight_bytes(units, depth));
    const __m512i offset = _mm512_set1_epi32(outputOffset), lower = _mm512_set1_epi32(lowerBound);
    const __m512i upper = _mm512_set1_epi32(255);
    size_t row = 0;
    while (row < rows) {
        size_t left = rows - row;
        size_t tileRows = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
        const uint8_t *x = input + row * inputStride;
        uint8_t *out = output ? output + row * units : NULL;
        int32_t *acc = accumulators ? accumulators + row * units : NULL;
        for (size_t block = 0; block < totalBlocks; block += maximumBlocks) {
            size_t blocks = totalBlocks - block < maximumBlocks ? totalBlocks - block : maximumBlocks;
            const int8_t *w = (const int8_t *)packed + block * depth * lanes;
            const TandemInt8Parameters16 *p = parameters + block;
            size_t unit = block * lanes;
            switch (tileRows) {
            case 8: TILES_OF_ROWS(8) break;
            case 4: TILES_OF_ROWS(4) break;
            case 2: TILES_OF_ROWS(2) break;
            default: TILES_OF_ROWS(1) break;
            }
        }
        row += tileRows;
    }
}

VNNI bool tandem_int8_vnni_quantize_input(
    const float *input, size_t count, float inverseScale, int32_t zeroPoint, uint8_t *output)
{
    const __m512 inverse = _mm512_set1_ps(inverseScale), low = _mm512_set1_ps(-512), high = _mm512_set1_ps(512);
    const __m512i exponent = _mm512_set1_epi32(0x7f800000);
    const __m512i sign = _mm512_set1_epi64((long long)0x8000000000000000ull);
    const __m512i half = _mm512_set1_epi64(0x3fe0000000000000ll);  // 0.5
    const __m512i offset = _mm512_set1_epi32(zeroPoint), minimum = _mm512_set1_epi32(-128);
    const __m512i maximum = _mm512_set1_epi32(127), bias = _mm512_set1_epi32(128);
    __mmask16 nonFinite = 0;
    for (size_t i = 0; i < count; i += 16) {
        __mmask16 mask = count - i >= 16 ? 0xffff : (__mmask16)((1u << (count - i)) - 1);
        __m512 x = _mm512_maskz_loadu_ps(mask, input + i);
        __m512i bits = _mm512_castps_si512(x);
        nonFinite |= _mm512_mask_cmpeq_epi32_mask(mask, _mm512_and_si512(bits, exponent), exponent);
        __m512 scaled = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(x, inverse), low), high);
        __m512d wide[2] = {
            _mm512_cvtps_pd(_mm512_castps512_ps256(scaled)),
            _mm512_cvtps_pd(_mm256_castsi256_ps(_mm512_extracti64x4_epi64(_mm512_castps_si512(scaled), 1)))};
        __m256i truncated[2];
        for (int h = 0; h < 2; h++) {
            // ±½ with the value's sign, then truncation: rounding half away from zero (−0 gives −½ → 0).
            __m512i signedHalf = _mm512_or_si512(_mm512_and_si512(_mm512_castpd_si512(wide[h]), sign), half);
            truncated[h] = _mm512_cvttpd_epi32(_mm512_add_pd(wide[h], _mm512_castsi512_pd(signedHalf)));
        }
        __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(truncated[0]), truncated[1], 1);
        q = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(q, offset), minimum), maximum);
        _mm_mask_storeu_epi8(output + i, mask, _mm512_cvtepi32_epi8(_mm512_add_epi32(q, bias)));
    }
    return nonFinite == 0;
}

#endif
