// Run-time choice of a kernel version, and the pieces every version shares.
#include "Kernels.h"

bool tandem_int8_supports(TandemInt8InstructionSet isa)
{
    switch (isa) {
    case TandemInt8InstructionSetPortable:
        return true;
#if TANDEM_INT8_X86
    // __builtin_cpu_supports reads CPUID once (at load time) and also checks that the OS saves the
    // AVX / AVX-512 register state.
    case TandemInt8InstructionSetAVX2:
        return __builtin_cpu_supports("avx2");
    case TandemInt8InstructionSetAVX512VNNI:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
            && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#else
    case TandemInt8InstructionSetAVX2:
    case TandemInt8InstructionSetAVX512VNNI:
        return false;
#endif
    }
    return false;
}

size_t tandem_int8_packed_size(TandemInt8InstructionSet isa, size_t units, size_t depth)
{
    switch (isa) {
#if TANDEM_INT8_X86
    case TandemInt8InstructionSetAVX2:
        return tandem_int8_avx2_packed_size(units, depth);
    case TandemInt8InstructionSetAVX512VNNI:
        return tandem_int8_vnni_packed_size(units, depth);
#endif
    default:
        return tandem_int8_portable_packed_size(units, depth);
    }
}

size_t tandem_int8_scratch_size(TandemInt8InstructionSet isa, size_t depth)
{
    switch (isa) {
#if TANDEM_INT8_X86
    case TandemInt8InstructionSetAVX2:
        return tandem_int8_avx2_scratch_size(depth);
    case TandemInt8InstructionSetAVX512VNNI:
        return 0;
#endif
    default:
        return tandem_int8_portable_scratch_size(depth);
    }
}

void tandem_int8_pack(
    TandemInt8InstructionSet isa, const int8_t *weights, size_t units, size_t rowLength, size_t depth,
    const int32_t *bias, const int32_t *multiplier, const int32_t *shift, void *packed)
{
    switch (isa) {
#if TANDEM_INT8_X86
    case TandemInt8InstructionSetAVX2:
        tandem_int8_avx2_pack(weights, units, rowLength, depth, bias, multiplier, shift, packed);
        return;
    case TandemInt8InstructionSetAVX512VNNI:
        tandem_int8_vnni_pack(weights, units, rowLength, depth, bias, multiplier, shift, packed);
        return;
#endif
    default:
        tandem_int8_portable_pack(weights, units, rowLength, depth, bias, multiplier, shift, packed);
    }
}

static void rows(
    TandemInt8InstructionSet isa, const void *packed, size_t units, size_t depth, const uint8_t *input,
    size_t inputStride, size_t rows, int32_t outputOffset, int32_t lowerBound, uint8_t *output, int32_t *accumulators,
    void *scratch)
{
    switch (isa) {
#if TANDEM_INT8_X86
    case TandemInt8InstructionSetAVX2:
        tandem_int8_avx2_rows(
            packed, units, depth, input, inputStride, rows, outputOffset, lowerBound, output, accumulators, scratch);
        return;
    case TandemInt8InstructionSetAVX512VNNI:
        tandem_int8_vnni_rows(
            packed, units, depth, input, inputStride, rows, outputOffset, lowerBound, output, accumulators);
        return;
#endif
    default:
        tandem_int8_portable_rows(
            packed, units, depth, input, inputStride, rows, outputOffset, lowerBound, output, accumulators, scratch);
    }
}

void tandem_int8_requantized_rows(
    TandemInt8InstructionSet isa, const void *packed, size_t units, size_t depth, const uint8_t *input,
    size_t inputStride, size_t count, int32_t outputOffset, int32_t lowerBound, uint8_t *output, void *scratch)
{
    rows(isa, packed, units, depth, input, inputStride, count, outputOffset, lowerBound, output, NULL, scratch);
}

void tandem_int8_accumulator_rows(
    TandemInt8InstructionSet isa, const void *packed, size_t units, size_t depth, const uint8_t *input,
    size_t inputStride, size_t count, int32_t *output, void *scratch)
{
    rows(isa, packed, units, depth, input, inputStride, count, 0, 0, NULL, output, scratch);
}

bool tandem_int8_quantize_input(
    TandemInt8InstructionSet isa, const float *input, size_t count, float inverseScale, int32_t zeroPoint,
    uint8_t *output)
{
    switch (isa) {
#if TANDEM_INT8_X86
    case TandemInt8InstructionSetAVX2:
        return tandem_int8_avx2_quantize_input(input, count, inverseScale, zeroPoint, output);
    case TandemInt8InstructionSetAVX512VNNI:
        return tandem_int8_vnni_quantize_input(input, count, inverseScale, zeroPoint, output);
#endif
    default:
        return tandem_int8_portable_quantize_input(input, count, inverseScale, zeroPoint, output);
    }
}

void tandem_int8_fill_parameters(
    size_t lanes, size_t first, size_t units, const int32_t *bias, const int32_t *multiplier, const int32_t *shift,
    int32_t *blockBias, int32_t *blockMultiplier, int64_t *multiplierOdd, int64_t *shiftEven, int64_t *shiftOdd,
    int64_t *halfEven, int64_t *halfOdd)
{
    for (size_t lane = 0; lane < lanes; lane++) {
        size_t unit = first + lane;
        int32_t b = 0, m = 0, s = 1;
        if (unit < units) {
            b = bias[unit];
            if (multiplier && shift) {
                m = multiplier[unit];
                s = shift[unit];
            }
        }
        blockBias[lane] = b;
        blockMultiplier[lane] = m;
        int64_t half = (int64_t)1 << (s - 1);
        if (lane % 2 == 0) {
            shiftEven[lane / 2] = s;
            halfEven[lane / 2] = half;
        } else {
            multiplierOdd[lane / 2] = m;
            shiftOdd[lane / 2] = s;
            halfOdd[lane / 2] = half;
        }
    }
}
