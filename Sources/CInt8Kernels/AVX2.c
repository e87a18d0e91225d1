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
        for (size_t k = 0; k < rowLength; k++) block[(k / 2) * 2 * lanes + (o % lanes) * 2 + k % 2] = weights[o * rowLength + k];
    }
    TandemInt8Parameters8 *parameters = (TandemInt8Parameters8 *)((uint8_t *)packed + weight_bytes(units, depth));
    for (size_t b = 0; b < block_count(units); b++) {
        TandemInt8Parameters8 *p = parameters + b;
        tandem_int8_fill_parameters(
            lanes, b * lanes, units, bias, multiplier, shift, p->bias, p->multiplier, p->multiplierOdd, p->shiftEven,
            p->shiftOdd, p->halfEven, p->halfOdd);
    }
}

/// `tandem_int8_requantize` on 8 accumulators (bias not yet added). AVX2 has no 64-bit arithmetic shift,
/// minimum or maximum: the shift runs on the one's complement of negative values (¬(¬t >> s) = t >> s),
/// and the clamps are compares and blends.
ALWAYS_INLINE AVX2 __m256i requantize(
    __m256i accumulators, const TandemInt8Parameters8 *p, __m256i offset, __m256i lower, __m256i upper)
{
    const __m256i zero = _mm256_setzero_si256();
    __m256i v = _mm256_add_epi32(accumulators, _mm256_loadu_si256((const __m256i *)p->bias));
    __m256i even = _mm256_mul_epi32(v, _mm256_loadu_si256((const __m256i *)p->multiplier));
    __m256i odd = _mm256_mul_epi32(_mm256_srli_epi64(v, 32), _mm256_loadu_si256((const __m256i *)p->multiplierOdd));
    __m256i halves[2] = {
        _mm256_loadu_si256((const __m256i *)p->halfEven), _mm256_loadu_si256((const __m256i *)p->halfOdd)};
    __m256i shifts[2] = {
        _mm256_loadu_si256((const __m256i *)p->shiftEven), _mm256_loadu_si256((const __m256i *)p->shiftOdd)};
    __m256i products[2] = {even, odd};
    for (int i = 0; i < 2; i++) {
        __m256i t = products[i];
        // + 2^(shift − 1), less one for negative products (the compare gives −1).
        t = _mm256_add_epi64(t, _mm256_add_epi64(halves[i], _mm256_cmpgt_epi64(zero, t)));
        __m256i sign = _mm256_cmpgt_epi64(zero, t);
        t = _mm256_xor_si256(_mm256_srlv_epi64(_mm256_xor_si256(t, sign), shifts[i]), sign);
        t = _mm256_add_epi64(t, offset);
        t = _mm256_blendv_epi8(t, lower, _mm256_cmpgt_epi64(lower, t));
        products[i] = _mm256_blendv_epi8(t, upper, _mm256_cmpgt_epi64(t, upper));
    }
    return _mm256_blend_epi32(products[0], _mm256_slli_epi64(products[1], 32), 0xAA);
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
    const __m256i offset = _mm256_set1_epi64x(outputOffset), lower = _mm256_set1_epi64x(lowerBound);
    const __m256i upper = _mm256_set1_epi64x(255);
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

#endif
