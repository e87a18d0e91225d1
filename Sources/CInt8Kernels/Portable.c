// The portable version: C with the vector types of clang and GCC, shaped after the AVX2 version: a 16-bit
// pairwise multiply–add (SSE2's pmaddwd on any x86-64, generic vector code elsewhere) into int32 lanes.
//
// Layout: the units in blocks of 16 (the last padded with zero weights), each block `depth / 2` groups of
// 16 units × 2 consecutive weights as int16, then (64-byte aligned) bias, multiplier and shift as three
// int32 arrays, padded to whole blocks. Two rows at a time are widened to int16 in the caller's scratch; per pair of
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
typedef int32_t Int32x2 __attribute__((vector_size(8)));
typedef uint32_t UInt32x4 __attribute__((vector_size(16)));
typedef uint32_t UInt32x2 __attribute__((vector_size(8)));
typedef uint64_t UInt64x2 __attribute__((vector_size(16)));
typedef int64_t Int64x2 __attribute__((vector_size(16)));

static size_t block_count(size_t units) { return (units + lanes - 1) / lanes; }
static size_t weight_bytes(size_t units, size_t depth)
{
    return block_count(units) * depth * lanes * sizeof(int16_t);
}

size_t tandem_int8_portable_packed_size(size_t units, size_t depth)
{
    return weight_bytes(units, depth) + 3 * sizeof(int32_t) * block_count(units) * lanes;
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
        for (size_t k = 0; k < rowLength; k++)
            block[(k / 2) * 2 * lanes + (o % lanes) * 2 + k % 2] = weights[o * rowLength + k];
    }
    // Units past the end (up to a whole block) get bias 0, multiplier 0 and shift 1.
    const size_t paddedUnits = block_count(units) * lanes;
    int32_t *parameters = (int32_t *)((uint8_t *)packed + weight_bytes(units, depth));
    for (size_t o = 0; o < paddedUnits; o++) {
        parameters[o] = o < units ? bias[o] : 0;
        parameters[paddedUnits + o] = o < units && multiplier ? multiplier[o] : 0;
        parameters[2 * paddedUnits + o] = o < units && shift ? shift[o] : 1;
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

static inline Int32x4 load32(const int32_t *p)
{
    Int32x4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

/// `round(|v| · multiplier / 2^shift)` for two lanes, half up, capped at 383 (larger values saturate either
/// way); the products of zero-extended 32-bit values are SSE2's pmuludq.
static inline UInt64x2 rounded_magnitudes(UInt32x2 magnitude, Int32x2 multiplier, Int32x2 shift)
{
    const UInt64x2 one = {1, 1}, cap = {383, 383};
    UInt64x2 s = __builtin_convertvector(shift, UInt64x2);
    UInt64x2 q = (__builtin_convertvector(magnitude, UInt64x2) * __builtin_convertvector((UInt32x2)multiplier, UInt64x2)
                     + (one << (s - one)))
        >> s;
    UInt64x2 over = (UInt64x2)(q > cap);
    return (q & ~over) | (cap & over);
}

/// `FixedPointMultiplier.requantize` (biased by 128) on four accumulators (bias added), in vector operations:
/// a scalar version's comparisons become jumps on x86 (even written as masks), which mispredict on real
/// data. Same arithmetic as the SIMD versions:
/// `sign(v) · ((|v| · multiplier + 2^(shift − 1)) >> shift)`, offset, clamped to [lower, 255].
static inline Int32x4 requantize4(
    Int32x4 v, const int32_t *multiplier, const int32_t *shift, int32_t outputOffset, int32_t lowerBound)
{
    Int32x4 sign = v >> 31;
    // |INT32_MIN| = 2^31 is right as an unsigned value.
    UInt32x4 magnitude = (UInt32x4)((v ^ sign) - sign);
    Int32x4 m = load32(multiplier), sh = load32(shift);
    UInt64x2 even = rounded_magnitudes(
        __builtin_shufflevector(magnitude, magnitude, 0, 2), __builtin_shufflevector(m, m, 0, 2),
        __builtin_shufflevector(sh, sh, 0, 2));
    UInt64x2 odd = rounded_magnitudes(
        __builtin_shufflevector(magnitude, magnitude, 1, 3), __builtin_shufflevector(m, m, 1, 3),
        __builtin_shufflevector(sh, sh, 1, 3));
    Int32x2 evenValues = __builtin_convertvector(even, Int32x2), oddValues = __builtin_convertvector(odd, Int32x2);
    Int32x4 rounded = __builtin_shufflevector(evenValues, oddValues, 0, 2, 1, 3);
    Int32x4 value = ((rounded ^ sign) - sign) + outputOffset;
    const Int32x4 lower = {lowerBound, lowerBound, lowerBound, lowerBound}, upper = {255, 255, 255, 255};
    Int32x4 below = value < lower, above = value > upper;
    value = (value & ~below) | (lower & below);
    return (value & ~above) | (upper & above);
}

void tandem_int8_portable_rows(
    const void *packed, size_t units, size_t depth, const uint8_t *input, size_t inputStride, size_t rows,
    int32_t outputOffset, int32_t lowerBound, uint8_t *output, int32_t *accumulators, void *scratchMemory)
{
    const int16_t *weights = packed;
    const size_t paddedUnits = block_count(units) * lanes;
    const int32_t *bias = (const int32_t *)((const uint8_t *)packed + weight_bytes(units, depth));
    const int32_t *multiplier = bias + paddedUnits, *shift = bias + 2 * paddedUnits;
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
            size_t first = block * lanes, valid = units - first < lanes ? units - first : lanes;
            for (size_t r = 0; r < count; r++) {
                int32_t values[lanes];
                for (int q = 0; q < lanes / 4; q++) {
                    size_t o = first + (size_t)q * 4;
                    Int32x4 acc = (Int32x4)(sums[r][q] + (UInt32x4)load32(bias + o));
                    if (!accumulators) acc = requantize4(acc, multiplier + o, shift + o, outputOffset, lowerBound);
                    memcpy(values + q * 4, &acc, sizeof acc);
                }
                size_t at = (row + r) * units + first;
                if (accumulators) {
                    memcpy(accumulators + at, values, valid * sizeof(int32_t));
                } else {
                    for (size_t j = 0; j < valid; j++) output[at + j] = (uint8_t)values[j];
                }
            }
        }
    }
}

bool tandem_int8_portable_quantize_input(
    const float *input, size_t count, float inverseScale, int32_t zeroPoint, uint8_t *output)
{
    bool finite = true;
    for (size_t i = 0; i < count; i++)
        output[i] = tandem_int8_quantize_sample(input[i], inverseScale, zeroPoint, &finite);
    return finite;
}
