// What the CPU and the operating system together support, read with CPUID and XGETBV.
//
// Swift cannot execute CPUID, hence C. A feature counts only when the operating system also saves its
// register state (XCR0): a CPU with AVX-512 under a kernel that does not enable it has no usable AVX-512.
#ifndef CCPUFEATURES_H
#define CCPUFEATURES_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The vendor string of CPUID leaf 0.
typedef enum {
    TandemCPUVendorOther = 0,
    TandemCPUVendorIntel = 1,
    TandemCPUVendorAMD = 2,
    TandemCPUVendorHygon = 3,
    TandemCPUVendorCentaur = 4,
    TandemCPUVendorZhaoxin = 5,
} TandemCPUVendor;

/// Instruction-set extensions, one bit each, set only when the CPU has them and the OS enabled their state.
typedef enum {
    TandemCPUSSE3 = 1u << 0,
    TandemCPUSSSE3 = 1u << 1,
    TandemCPUSSE41 = 1u << 2,
    TandemCPUSSE42 = 1u << 3,
    TandemCPUAVX = 1u << 4,
    TandemCPUFMA = 1u << 5,
    TandemCPUAVX2 = 1u << 6,
    TandemCPUAVX512F = 1u << 7,
    TandemCPUAVX512DQ = 1u << 8,
    TandemCPUAVX512CD = 1u << 9,
    TandemCPUAVX512BW = 1u << 10,
    TandemCPUAVX512VL = 1u << 11,
    TandemCPUAVX512VNNI = 1u << 12,
    TandemCPUAVX512BF16 = 1u << 13,
    TandemCPUAMXTile = 1u << 14,
} TandemCPUExtension;

/// Vendor, display family and model (extended fields folded in, as the vendors' manuals define them) and
/// the `TandemCPUExtension` bits. All zero on a CPU that is not x86-64.
typedef struct {
    TandemCPUVendor vendor;
    uint32_t family;
    uint32_t model;
    uint32_t extensions;
} TandemCPUFeatures;

/// Reads the features of the CPU this runs on.
TandemCPUFeatures tandem_cpu_features(void);

#ifdef __cplusplus
}
#endif

#endif
