// The AVX2 version: vpmaddwd on 16-bit values. AVX2's byte multiply–add (vpmaddubsw) saturates its
// 16-bit pair sums, and 255 · 127 · 2 does not fit, so activations are widened to int16 once per row
// (into the caller's scratch) and weights are stored as int16: vpmaddwd's pair sums are exact in int32.
//
// Layout: the units in blocks of 8 (the last padded with zero weights), each block `depth / 2` groups of
// 8 units × 2 consecutive int16 weights, then one `TandemInt8Parameters8` per block. A tile of up to
// 3 rows × 4 blocks keeps 12 accumulators in the 16 ymm registers.
#include "Kernels.h"

#if TANDEM_INT8_X86
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2")))
#define ALWAYS_INLINE static inline __attribute__((always_inline))

enum { lanes = 8, maximumRows = 3, maximumBlocks = 4 };

static size_t block_count(size_t units) { return (units + lanes - 1) / lanes; }
static size_t weight_bytes(size_t units, size_t depth) { return block_count(units) * depth * lanes * sizeof(int16_t); }

size_t tandem_int8_avx2_packed_size(size_t units, size_t depth)
{
    return weight_bytes(units, depth) + block_count(units) * sizeof(TandemInt8Parameters8);
}

size_t tandem_int8_avx2_scratch_size(size_t depth) { return maximumRows * depth * sizeof(int16_t); }

void tandem_int8_avx2_pack(
    const int8_t *weights, size_t units, size_t rowLength, size_t depth, const int32_t *bias,
    const int32_t *multiplier, const int32_t *shift, void *packed)
{
    int16_t *w = packed;
    memset(packed, 0, tandem_int8_avx2_packed_size(units, depth));
    for (size_t o = 0; o < units; o++) {
        int16_t *block = w + (o / lanes) * depth * lanes;
        for (size_t k = 0; k < rowLength; k++)
            block[(k / 2) * 2 * lanes + (o % lanes) * 2 + k % 2] = weights[o * rowLength + k];
    }
    TandemInt8Parameters8 *parameters = (TandemInt8Parameters8 *)((uint8_t *)packed + weight_bytes(units, depth));
    for (size_t b = 0; b < block_count(units); b++) {
        TandemInt8Parameters8 *p = parameters + b;
        tandem_int8_fill_parameters(
            lanes, b * lanes, units, bias, multiplier, shift, p->bias, p->multiplier, p->multiplierOdd, p->shiftEven,
            p->shiftOdd, p->halfEven, p->halfOdd);
    }
}

/// `FixedPointMultiplier.requantize` (biased by 128) on 8 accumulators (bias not yet added), on magnitudes
/// as in the AVX-512 version: `sign(v) · ((|v| · multiplier + 2^(shift − 1)) >> shift)` needs only unsigned
/// 64-bit products and logical shifts, which AVX2 has. Magnitudes are capped at 383 (larger ones saturate
/// either way) so even and odd units recombine into 32-bit lanes, and vpsignd restores the sign.
ALWAYS_INLINE AVX2 __m256i requantize(
    __m256i accumulators, const TandemInt8Parameters8 *p, __m256i offset, __m256i lower, __m256i upper)
{
    const __m256i cap = _mm256_set1_epi64x(383);
    __m256i v = _mm256_add_epi32(accumulators, _mm256_loadu_si256((const __m256i *)p->bias));
    // |INT32_MIN| = 2^31 is right as an unsigned 32-bit value, which is how vpmuludq reads it.
    __m256i magnitude = _mm256_abs_epi32(v);
    __m256i even = _mm256_mul_epu32(magnitude, _mm256_loadu_si256((const __m256i *)p->multiplier));
    __m256i odd = _mm256_mul_epu32(
        _mm256_srli_epi64(magnitude, 32), _mm256_loadu_si256((const __m256i *)p->multiplierOdd));
    even = _mm256_srlv_epi64(
        _mm256_add_epi64(even, _mm256_loadu_si256((const __m256i *)p->halfEven)),
        _mm256_loadu_si256((const __m256i *)p->shiftEven));
    odd = _mm256_srlv_epi64(
        _mm256_add_epi64(odd, _mm256_loadu_si256((const __m256i *)p->halfOdd)),
        _mm256_loadu_si256((const __m256i *)p->shiftOdd));
    // Below 2^62, so the signed compare orders them.
    even = _mm256_blendv_epi8(even, cap, _mm256_cmpgt_epi64(even, cap));
    odd = _mm256_blendv_epi8(odd, cap, _mm256_cmpgt_epi64(odd, cap));
    __m256i rounded = _mm256_sign_epi32(_mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA), v);
    return _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(rounded, offset), lower), upper);
}

/// `rows` rows (widened, in `x`) × `blocks` blocks of 8 units; constants once inlined.
ALWAYS_INLINE AVX2 void tile(
    const int16_t *x, const int16_t *w, size_t depth, const TandemInt8Parameters8 *p, size_t firstUnit,
    size_t units, const int rows, const int blocks, __m256i offset, __m256i lower, __m256i upper, uint8_t *output,
    int32_t *accumulators)
{
    const size_t blockElements = depth * lanes;
    __m256i acc[maximumRows][maximumBlocks];
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < blocks; b++) acc[r][b] = _mm256_setzero_si256();
    for (size_t k = 0; k < depth; k += 2) {
        for (int r = 0; r < rows; r++) {
            int32_t pair;
            memcpy(&pair, x + r * depth + k, sizeof pair);
            __m256i broadcast = _mm256_set1_epi32(pair);
            for (int b = 0; b < blocks; b++) {
                __m256i weights = _mm256_loadu_si256((const __m256i *)(w + b * blockElements + k * lanes));
                acc[r][b] = _mm256_add_epi32(acc[r][b], _mm256_madd_epi16(broadcast, weights));
            }
        }
    }
    for (int b = 0; b < blocks; b++) {
        size_t unit = firstUnit + (size_t)b * lanes;
        size_t count = units - unit < lanes ? units - unit : lanes;
        for (int r = 0; r < rows; r++) {
            if (accumulators) {
                int32_t sums[lanes];
                _mm256_storeu_si256(
                    (__m256i *)sums, _mm256_add_epi32(acc[r][b], _mm256_loadu_si256((const __m256i *)p[b].bias)));
                memcpy(accumulators + r * units + unit, sums, count * sizeof(int32_t));
            } else {
                __m256i values = requantize(acc[r][b], p + b, offset, lower, upper);
                __m128i words = _mm_packus_epi32(_mm256_castsi256_si128(values), _mm256_extracti128_si256(values, 1));
                uint8_t bytes[16];
                _mm_storeu_si128((__m128i *)bytes, _mm_packus_epi16(words, words));
                memcpy(output + r * units + unit, bytes, count);
            }
        }
    }
}

/// Widens `depth` bytes of activations to int16.
ALWAYS_INLINE AVX2 void widen(const uint8_t *x, size_t depth, int16_t *out)
{
    size_t k = 0;
    for (; k + 16 <= depth; k += 16)
        _mm256_storeu_si256((__m256i *)(out + k), _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(x + k))));
    for (; k < depth; k++) out[k] = x[k];
}

#define TILE(ROWS, BLOCKS) tile(scratch, w, depth, p, unit, units, ROWS, BLOCKS, offset, lower, upper, out, acc)
#define TILES_OF_ROWS(ROWS)                                                                                     \
    switch (blocks) {                                                                                           \
    case 1: TILE(ROWS, 1); break;                                                                               \
    case 2: TILE(ROWS, 2); break;                                                                               \
    case 3: TILE(ROWS, 3); break;                                                                               \
    default: TILE(ROWS, 4); break;                                                                              \
    }

AVX2 void tandem_int8_avx2_rows(
    const void *packed, size_t units, size_t depth, const uint8_t *input, size_t inputStride, size_t rows,
    int32_t outputOffset, int32_t lowerBound, uint8_t *output, int32_t *accumulators, void *scratchMemory)
{
    const size_t totalBlocks = block_count(units);
    const TandemInt8Parameters8 *parameters =
        (const TandemInt8Parameters8 *)((const uint8_t *)packed + weight_bytes(units, depth));
    const __m256i offset = _mm256_set1_epi32(outputOffset), lower = _mm256_set1_epi32(lowerBound);
    const __m256i upper = _mm256_set1_epi32(255);
    int16_t *scratch = scratchMemory;
    size_t row = 0;
    while (row < rows) {
        size_t tileRows = rows - row < maximumRows ? rows - row : maximumRows;
        for (size_t r = 0; r < tileRows; r++) widen(input + (row + r) * inputStride, depth, scratch + r * depth);
        uint8_t *out = output ? output + row * units : NULL;
        int32_t *acc = accumulators ? accumulators + row * units : NULL;
        for (size_t block = 0; block < totalBlocks; block += maximumBlocks) {
            size_t blocks = totalBlocks - block < maximumBlocks ? totalBlocks - block : maximumBlocks;
            const int16_t *w = (const int16_t *)packed + block * depth * lanes;
            const TandemInt8Parameters8 *p = parameters + block;
            size_t unit = block * lanes;
            switch (tileRows) {
            case 3: TILES_OF_ROWS(3) break;
            case 2: TILES_OF_ROWS(2) break;
            default: TILES_OF_ROWS(1) break;
            }
        }
        row += tileRows;
    }
}

AVX2 bool tandem_int8_avx2_quantize_input(
    const float *input, size_t count, float inverseScale, int32_t zeroPoint, uint8_t *output)
{
    const __m256 inverse = _mm256_set1_ps(inverseScale), low = _mm256_set1_ps(-512), high = _mm256_set1_ps(512);
    const __m256i exponent = _mm256_set1_epi32(0x7f800000);
    const __m256d sign = _mm256_set1_pd(-0.0), half = _mm256_set1_pd(0.5);
    const __m256i offset = _mm256_set1_epi32(zeroPoint), minimum = _mm256_set1_epi32(-128);
    const __m256i maximum = _mm256_set1_epi32(127), bias = _mm256_set1_epi32(128);
    __m256i nonFinite = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 x = _mm256_loadu_ps(input + i);
        __m256i bits = _mm256_castps_si256(x);
        nonFinite = _mm256_or_si256(nonFinite, _mm256_cmpeq_epi32(_mm256_and_si256(bits, exponent), exponent));
        // max/min return their second operand for NaN, like the scalar clamp's −512.
        __m256 scaled = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(x, inverse), low), high);
        __m256d wide[2] = {
            _mm256_cvtps_pd(_mm256_castps256_ps128(scaled)), _mm256_cvtps_pd(_mm256_extractf128_ps(scaled, 1))};
        __m128i truncated[2];
        for (int h = 0; h < 2; h++) {
            // ±½ with the value's sign, then truncation: rounding half away from zero (−0 gives −½ → 0).
            __m256d signedHalf = _mm256_or_pd(_mm256_and_pd(wide[h], sign), half);
            truncated[h] = _mm256_cvttpd_epi32(_mm256_add_pd(wide[h], signedHalf));
        }
        __m256i q = _mm256_set_m128i(truncated[1], truncated[0]);
        q = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(q, offset), minimum), maximum), bias);
        __m128i words = _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        _mm_storel_epi64((__m128i *)(output + i), _mm_packus_epi16(words, words));
    }
    bool finite = _mm256_testz_si256(nonFinite, nonFinite);
    for (; i < count; i++) output[i] = tandem_int8_quantize_sample(input[i], inverseScale, zeroPoint, &finite);
    return finite;
}

#endif
