// The portable version: C with the vector types of clang and GCC, shaped after the AVX2 version: a 16-bit
// pairwise multiply–add (SSE2's pmaddwd on any x86-64, generic vector code elsewhere) into int32 lanes.
//
// Layout: the units in blocks of 16 (the last padded with zero weights), each block `depth / 2` groups of
// 16 units × 2 consecutive weights as int16, then (64-byte aligned) bias, multiplier and shift as three
// arrays of `units` int32. Two rows at a time are widened to int16 in the caller's scratch; per pair of
// inputs, each row's pair is broadcast and multiplied with the block's 4 weight vectors, the two products
// of a unit summed into its int32 lane (exact: 2 · 255 · 127 < 2^31).
#include "Kernels.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

enum { lanes = 16, rowsPerPass = 2 };

typedef int16_t Int16x8 __attribute__((vector_size(16)));
typedef int16_t Int16x4 __attribute__((vector_size(8)));
typedef int32_t Int32x4 __attribute__((vector_size(16)));
typedef uint32_t UInt32x4 __attribute__((vector_size(16)));

static size_t block_count(size_t units) { return (units + lanes - 1) / lanes; }
static size_t weight_bytes(size_t units, size_t depth)
{
    return block_count(units) * depth * lanes * sizeof(int16_t);
}

size_t tandem_int8_portable_packed_size(size_t units, size_t depth)
{
    return weight_bytes(units, depth) + 3 * sizeof(int32_t) * units;
}

size_t tandem_int8_portable_scratch_size(size_t depth) { return rowsPerPass * depth * sizeof(int16_t); }

void tandem_int8_portable_pack(
    const int8_t *weights, size_t units, size_t rowLength, size_t depth, const int32_t *bias,
    const int32_t *multiplier, const int32_t *shift, void *packed)
{
    int16_t *w = packed;
    memset(packed, 0, tandem_int8_portable_packed_size(units, depth));
    for (size_t o = 0; o < units; o++) {
        int16_t *block = w + (o / lanes) * depth * lanes;
        for (size_t k = 0; k < rowLength; k++) block[(k / 2) * 2 * lanes + (o % lanes) * 2 + k % 2] = weights[o * rowLength + k];
    }
    int32_t *parameters = (int32_t *)((uint8_t *)packed + weight_bytes(units, depth));
    for (size_t o = 0; o < units; o++) {
        parameters[o] = bias[o];
        parameters[units + o] = multiplier ? multiplier[o] : 0;
        parameters[2 * units + o] = shift ? shift[o] : 1;
    }
}

/// Lane i: a[2i] · b[2i] + a[2i + 1] · b[2i + 1] in 32 bits (pmaddwd's operation). SSE2 is part of every
/// x86-64 CPU, so there it is that instruction (compilers do not reliably recognize the generic form).
static inline Int32x4 multiply_add_pairs(Int16x8 a, Int16x8 b)
{
#if defined(__SSE2__)
    return (Int32x4)_mm_madd_epi16((__m128i)a, (__m128i)b);
#else
    Int32x4 aEven = __builtin_convertvector((Int16x4)__builtin_shufflevector(a, a, 0, 2, 4, 6), Int32x4);
    Int32x4 aOdd = __builtin_convertvector((Int16x4)__builtin_shufflevector(a, a, 1, 3, 5, 7), Int32x4);
    Int32x4 bEven = __builtin_convertvector((Int16x4)__builtin_shufflevector(b, b, 0, 2, 4, 6), Int32x4);
    Int32x4 bOdd = __builtin_convertvector((Int16x4)__builtin_shufflevector(b, b, 1, 3, 5, 7), Int32x4);
    return aEven * bEven + aOdd * bOdd;
#endif
}

static inline Int16x8 load16(const int16_t *p)
{
    Int16x8 v;
    memcpy(&v, p, sizeof v);
    return v;
}

/// The pair of inputs at `p` in every 32-bit lane.
static inline Int16x8 broadcast_pair(const int16_t *p)
{
    int32_t pair;
    memcpy(&pair, p, sizeof pair);
    Int32x4 v = {pair, pair, pair, pair};
    return (Int16x8)v;
}

void tandem_int8_portable_rows(
    const void *packed, size_t units, size_t depth, const uint8_t *input, size_t inputStride, size_t rows,
    int32_t outputOffset, int32_t lowerBound, uint8_t *output, int32_t *accumulators, void *scratchMemory)
{
    const int16_t *weights = packed;
    const int32_t *bias = (const int32_t *)((const uint8_t *)packed + weight_bytes(units, depth));
    const int32_t *multiplier = bias + units, *shift = bias + 2 * units;
    int16_t *scratch = scratchMemory;
    for (size_t row = 0; row < rows; row += rowsPerPass) {
        size_t count = rows - row < rowsPerPass ? rows - row : rowsPerPass;
        for (size_t r = 0; r < rowsPerPass; r++) {
            // A missing second row repeats the first; its results are not stored.
            const uint8_t *x = input + (row + (r < count ? r : 0)) * inputStride;
            for (size_t k = 0; k < depth; k++) scratch[r * depth + k] = x[k];
        }
        for (size_t block = 0; block < block_count(units); block++) {
            const int16_t *w = weights + block * depth * lanes;
            // Unsigned sums wrap modulo 2^32 like the other versions (signed overflow would be undefined).
            UInt32x4 sums[rowsPerPass][lanes / 4] = {{0}};
            for (size_t k = 0; k < depth; k += 2) {
                Int16x8 x0 = broadcast_pair(scratch + k), x1 = broadcast_pair(scratch + depth + k);
                for (int q = 0; q < lanes / 4; q++) {
                    Int16x8 wq = load16(w + k * lanes + q * 8);
                    sums[0][q] += (UInt32x4)multiply_add_pairs(x0, wq);
                    sums[1][q] += (UInt32x4)multiply_add_pairs(x1, wq);
                }
            }
            for (size_t r = 0; r < count; r++) {
                for (size_t j = 0; j < lanes && block * lanes + j < units; j++) {
                    size_t o = block * lanes + j, at = (row + r) * units + o;
                    int32_t acc = (int32_t)(sums[r][j / 4][j % 4] + (uint32_t)bias[o]);
                    if (accumulators) {
                        accumulators[at] = acc;
                    } else {
                        output[at] = (uint8_t)tandem_int8_requantize(acc, multiplier[o], shift[o], outputOffset, lowerBound);
                    }
                }
            }
        }
    }
}

bool tandem_int8_portable_quantize_input(
    const float *input, size_t count, float inverseScale, int32_t zeroPoint, uint8_t *output)
{
    bool finite = true;
    for (size_t i = 0; i < count; i++) output[i] = tandem_int8_quantize_sample(input[i], inverseScale, zeroPoint, &finite);
    return finite;
}
