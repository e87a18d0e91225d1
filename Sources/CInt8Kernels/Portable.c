// The portable version: plain C that any compiler vectorizes as far as the target allows.
//
// Layout: the weights as `units` rows of `depth` bytes, then (64-byte aligned) bias, multiplier and
// shift as three arrays of `units` int32.
#include "Kernels.h"

static size_t weight_bytes(size_t units, size_t depth) { return tandem_int8_round_up(units * depth, 64); }

size_t tandem_int8_portable_packed_size(size_t units, size_t depth)
{
    return weight_bytes(units, depth) + 3 * sizeof(int32_t) * units;
}

void tandem_int8_portable_pack(
    const int8_t *weights, size_t units, size_t rowLength, size_t depth, const int32_t *bias,
    const int32_t *multiplier, const int32_t *shift, void *packed)
{
    int8_t *w = packed;
    memset(packed, 0, tandem_int8_portable_packed_size(units, depth));
    for (size_t o = 0; o < units; o++) memcpy(w + o * depth, weights + o * rowLength, rowLength);
    int32_t *parameters = (int32_t *)((uint8_t *)packed + weight_bytes(units, depth));
    for (size_t o = 0; o < units; o++) {
        parameters[o] = bias[o];
        parameters[units + o] = multiplier ? multiplier[o] : 0;
        parameters[2 * units + o] = shift ? shift[o] : 1;
    }
}

void tandem_int8_portable_rows(
    const void *packed, size_t units, size_t depth, const uint8_t *input, size_t inputStride, size_t rows,
    int32_t outputOffset, int32_t lowerBound, uint8_t *output, int32_t *accumulators)
{
    const int8_t *weights = packed;
    const int32_t *bias = (const int32_t *)((const uint8_t *)packed + weight_bytes(units, depth));
    const int32_t *multiplier = bias + units, *shift = bias + 2 * units;
    for (size_t r = 0; r < rows; r++) {
        const uint8_t *x = input + r * inputStride;
        for (size_t o = 0; o < units; o++) {
            const int8_t *w = weights + o * depth;
            // Unsigned sums wrap modulo 2^32 like the SIMD versions (signed overflow would be undefined).
            uint32_t sum = (uint32_t)bias[o];
            for (size_t k = 0; k < depth; k++) sum += (uint32_t)((int32_t)x[k] * (int32_t)w[k]);
            int32_t acc = (int32_t)sum;
            if (accumulators) {
                accumulators[r * units + o] = acc;
            } else {
                output[r * units + o] =
                    (uint8_t)tandem_int8_requantize(acc, multiplier[o], shift[o], outputOffset, lowerBound);
            }
        }
    }
}
