// Integer kernels of Tandem's int8 engine: convolution and dense rows as u8 × s8 → int32 GEMMs with the
// requantization fused, in a portable C version and x86 versions (AVX2, AVX-512 VNNI) chosen at run time.
//
// Activations are stored biased: the byte u = q + 128 for the int8 code q, so they are unsigned and the
// inner product is u8 × s8, which is what VNNI's vpdpbusd multiplies. Σ u·w = Σ q·w + 128·Σ w, so the
// caller folds −(zeroPoint + 128)·Σ w into each bias once. Accumulators wrap modulo 2^32 like the Swift
// engine's, so every version gives bit-identical results whenever the true sums fit in int32.
//
// Every version reads whole rows of `depth` bytes (a multiple of 4); padding weights are zero, so the bytes
// read past a patch only need to be readable.
#ifndef C_INT8_KERNELS_H
#define C_INT8_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/// The instruction sets the kernels are written for.
typedef enum __attribute__((enum_extensibility(closed))) TandemInt8InstructionSet {
    /// C for any CPU: 16-bit pairwise multiply–adds (SSE2's pmaddwd on x86-64) on activations widened once
    /// per row.
    TandemInt8InstructionSetPortable = 0,
    /// x86-64 AVX2: 16-bit multiply–adds (vpmaddwd) on activations widened once per row.
    TandemInt8InstructionSetAVX2 = 1,
    /// x86-64 AVX-512 F/BW/VL with VNNI: vpdpbusd, 64 u8 × s8 products per instruction.
    TandemInt8InstructionSetAVX512VNNI = 2,
} TandemInt8InstructionSet;

/// Whether this CPU and operating system can run the kernels for `isa` (CPU features are read once).
bool tandem_int8_supports(TandemInt8InstructionSet isa);

/// Bytes of a packed layer (weights and requantization parameters) for `isa`; `depth` is a multiple of 4.
size_t tandem_int8_packed_size(TandemInt8InstructionSet isa, size_t units, size_t depth);

/// Bytes of scratch memory the row kernels for `isa` need for rows of `depth` bytes.
size_t tandem_int8_scratch_size(TandemInt8InstructionSet isa, size_t depth);

/// Packs one convolution or dense layer for `isa`.
///
/// - weights: `units` rows of `rowLength` int8 values in [-127, 127].
/// - depth: `rowLength` rounded up to a multiple of 4 (the padding gets zero weights).
/// - bias: `units` folded biases: bias − (inputZeroPoint + 128) · Σ w.
/// - multiplier, shift: `units` requantization mantissas and right shifts (shift in 1...62), or NULL for
///   the last layer, which keeps its accumulators.
/// - packed: `tandem_int8_packed_size(isa, units, depth)` bytes, 64-byte aligned.
void tandem_int8_pack(
    TandemInt8InstructionSet isa, const int8_t *weights, size_t units, size_t rowLength, size_t depth,
    const int32_t *bias, const int32_t *multiplier, const int32_t *shift, void *packed);

/// Requantized output rows: for each row r and unit o,
/// `out[r · units + o] = clamp(round(acc · multiplier[o] / 2^shift[o]) + outputOffset, lowerBound, 255)`
/// with `acc = Σ_k input[r · inputStride + k] · w[o][k] + bias[o]` (int32, wrapping) and rounding half
/// away from zero.
///
/// - outputOffset: the output zero point + 128 (the output is biased like the input).
/// - lowerBound: 0, or the output zero point + 128 when a ReLU is fused.
/// - scratch: `tandem_int8_scratch_size(isa, depth)` bytes, or NULL when that is 0.
void tandem_int8_requantized_rows(
    TandemInt8InstructionSet isa, const void *packed, size_t units, size_t depth, const uint8_t *input,
    size_t inputStride, size_t rows, int32_t outputOffset, int32_t lowerBound, uint8_t *output, void *scratch);

/// Accumulator rows: `out[r · units + o] = acc` as above, for the last layer, which the caller dequantizes.
void tandem_int8_accumulator_rows(
    TandemInt8InstructionSet isa, const void *packed, size_t units, size_t depth, const uint8_t *input,
    size_t inputStride, size_t rows, int32_t *output, void *scratch);

/// Quantizes `count` input samples to biased bytes:
/// `clamp(round(x · inverseScale) + zeroPoint, −128, 127) + 128`, the float product rounded half away from
/// zero (exactly: it is clamped to ±512, widened to double and ±½ added before truncation).
///
/// - Returns: whether every sample was finite; the bytes of non-finite samples are unspecified.
bool tandem_int8_quantize_input(
    TandemInt8InstructionSet isa, const float *input, size_t count, float inverseScale, int32_t zeroPoint,
    uint8_t *output);

#endif
