#include "CCPUFeatures.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

// XGETBV as raw bytes (0f 01 d0): no -mxsave flag needed. Only run when CPUID says OSXSAVE.
static uint64_t read_xcr0(void)
{
    uint32_t eax, edx;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

static TandemCPUVendor vendor_of(uint32_t ebx, uint32_t ecx, uint32_t edx)
{
    char name[13];
    memcpy(name, &ebx, 4);
    memcpy(name + 4, &edx, 4);
    memcpy(name + 8, &ecx, 4);
    name[12] = 0;
    if (strcmp(name, "GenuineIntel") == 0) return TandemCPUVendorIntel;
    if (strcmp(name, "AuthenticAMD") == 0) return TandemCPUVendorAMD;
    if (strcmp(name, "HygonGenuine") == 0) return TandemCPUVendorHygon;
    if (strcmp(name, "CentaurHauls") == 0) return TandemCPUVendorCentaur;
    if (strcmp(name, "  Shanghai  ") == 0) return TandemCPUVendorZhaoxin;
    return TandemCPUVendorOther;
}

TandemCPUFeatures tandem_cpu_features(void)
{
    TandemCPUFeatures features = {TandemCPUVendorOther, 0, 0, 0};
    uint32_t eax, ebx, ecx, edx;
    if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return features;
    const uint32_t maximumLeaf = eax;
    features.vendor = vendor_of(ebx, ecx, edx);
    if (maximumLeaf < 1) return features;

    __cpuid(1, eax, ebx, ecx, edx);
    const uint32_t baseFamily = (eax >> 8) & 0xf, baseModel = (eax >> 4) & 0xf;
    features.family = baseFamily == 0xf ? baseFamily + ((eax >> 20) & 0xff) : baseFamily;
    features.model = baseFamily == 0x6 || baseFamily == 0xf ? baseModel | (((eax >> 16) & 0xf) << 4) : baseModel;
    uint32_t bits = 0;
    if (ecx & (1u << 0)) bits |= TandemCPUSSE3;
    if (ecx & (1u << 9)) bits |= TandemCPUSSSE3;
    if (ecx & (1u << 19)) bits |= TandemCPUSSE41;
    if (ecx & (1u << 20)) bits |= TandemCPUSSE42;

    // AVX and everything above it need the OS to save the YMM (and for AVX-512 the opmask and ZMM) state.
    const int osxsave = (ecx & (1u << 27)) != 0;
    const uint64_t xcr0 = osxsave ? read_xcr0() : 0;
    const int ymm = (xcr0 & 0x6) == 0x6;
    const int zmm = ymm && (xcr0 & 0xe0) == 0xe0;
    const int tile = (xcr0 & 0x60000) == 0x60000;
    if (ymm && (ecx & (1u << 28))) bits |= TandemCPUAVX;
    if (ymm && (ecx & (1u << 12))) bits |= TandemCPUFMA;

    if (maximumLeaf >= 7) {
        uint32_t eax7, ebx7, ecx7, edx7;
        __cpuid_count(7, 0, eax7, ebx7, ecx7, edx7);
        if (ymm && (ebx7 & (1u << 5))) bits |= TandemCPUAVX2;
        if (zmm) {
            if (ebx7 & (1u << 16)) bits |= TandemCPUAVX512F;
            if (ebx7 & (1u << 17)) bits |= TandemCPUAVX512DQ;
            if (ebx7 & (1u << 28)) bits |= TandemCPUAVX512CD;
            if (ebx7 & (1u << 30)) bits |= TandemCPUAVX512BW;
            if (ebx7 & (1u << 31)) bits |= TandemCPUAVX512VL;
            if (ecx7 & (1u << 11)) bits |= TandemCPUAVX512VNNI;
        }
        if (tile && (edx7 & (1u << 24))) bits |= TandemCPUAMXTile;
        if (eax7 >= 1) {
            uint32_t eax71, ebx71, ecx71, edx71;
            __cpuid_count(7, 1, eax71, ebx71, ecx71, edx71);
            if (zmm && (eax71 & (1u << 5))) bits |= TandemCPUAVX512BF16;
        }
    }
    features.extensions = bits;
    return features;
}

#else

TandemCPUFeatures tandem_cpu_features(void)
{
    TandemCPUFeatures features = {TandemCPUVendorOther, 0, 0, 0};
    return features;
}

#endif
