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
        for (size_t k = 0; k < rowLength; k++) block[(k / 4) * 4 * lanes + (o % lanes) * 4 + k % 4] = weights[o * rowLength + k];
    }
    TandemInt8Parameters16 *parameters = (TandemInt8Parameters16 *)((uint8_t *)packed + weight_bytes(units, depth));
    for (size_t b = 0; b < block_count(units); b++) {
        TandemInt8Parameters16 *p = parameters + b;
        tandem_int8_fill_parameters(
            lanes, b * lanes, units, bias, multiplier, shift, p->bias, p->multiplier, p->multiplierOdd, p->shiftEven,
            p->shiftOdd, p->halfEven, p->halfOdd);
    }
}

/// `tandem_int8_requantize` on 16 accumulators (bias not yet added): the products of even and odd units in
/// two vectors of 8 int64 lanes, recombined into 16 int32 lanes in [lower, upper].
ALWAYS_INLINE VNNI __m512i requantize(
    __m512i accumulators, const TandemInt8Parameters16 *p, __m512i offset, __m512i lower, __m512i upper)
{
    __m512i v = _mm512_add_epi32(accumulators, _mm512_loadu_si512(p->bias));
    __m512i even = _mm512_mul_epi32(v, _mm512_loadu_si512(p->multiplier));
    __m512i odd = _mm512_mul_epi32(_mm512_srli_epi64(v, 32), _mm512_loadu_si512(p->multiplierOdd));
    // + 2^(shift − 1), less one for negative products (their sign bit, shifted down, is −1).
    even = _mm512_add_epi64(even, _mm512_add_epi64(_mm512_loadu_si512(p->halfEven), _mm512_srai_epi64(even, 63)));
    odd = _mm512_add_epi64(odd, _mm512_add_epi64(_mm512_loadu_si512(p->halfOdd), _mm512_srai_epi64(odd, 63)));
    even = _mm512_srav_epi64(even, _mm512_loadu_si512(p->shiftEven));
    odd = _mm512_srav_epi64(odd, _mm512_loadu_si512(p->shiftOdd));
    even = _mm512_min_epi64(_mm512_max_epi64(_mm512_add_epi64(even, offset), lower), upper);
    odd = _mm512_min_epi64(_mm512_max_epi64(_mm512_add_epi64(odd, offset), lower), upper);
    return _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
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
                __m512i values = requantize(acc[r][b], p + b, offset, lower, upper);
                _mm_mask_storeu_epi8(output + r * units + unit, mask, _mm512_cvtepi32_epi8(values));
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
    const __m512i offset = _mm512_set1_epi64(outputOffset), lower = _mm512_set1_epi64(lowerBound);
    const __m512i upper = _mm512_set1_epi64(255);
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

#endif
