#include "CKernels.h"

#if defined(__x86_64__)
#include <cpuid.h>

// xgetbv by its encoding, so that this file needs no target attribute (the CPU has it whenever
// cpuid reports OSXSAVE, which is checked first).
static uint64_t read_xcr0(void) {
    uint32_t eax, edx;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

ckernels_cpu_features ckernels_read_cpu_features(void) {
    ckernels_cpu_features features = {0, 0, 0, 0, 0};
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return features;
    int fma = (ecx >> 12) & 1, osxsave = (ecx >> 27) & 1, avx = (ecx >> 28) & 1;
    if (!osxsave || !avx) return features;
    uint64_t xcr0 = read_xcr0();
    int ymm_state = (xcr0 & 0x6) == 0x6;            // SSE and AVX state
    int zmm_state = ymm_state && (xcr0 & 0xe0) == 0xe0;  // opmask, ZMM_Hi256, Hi16_ZMM
    int tile_state = (xcr0 & 0x60000) == 0x60000;   // XTILECFG, XTILEDATA
    if (__get_cpuid_max(0, 0) < 7) return features;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    int avx2 = (ebx >> 5) & 1;
    int avx512 = ((ebx >> 16) & 1) && ((ebx >> 17) & 1) && ((ebx >> 30) & 1) && ((ebx >> 31) & 1);
    int amx_bf16 = (edx >> 22) & 1, amx_tile = (edx >> 24) & 1;
    unsigned int leaf7_subleaves = eax;
    features.avx2_fma = ymm_state && avx2 && fma;
    features.avx512f = features.avx2_fma && zmm_state && avx512;
    if (leaf7_subleaves >= 1) {
        __cpuid_count(7, 1, eax, ebx, ecx, edx);
        features.avx512_bf16 = features.avx512f && ((eax >> 5) & 1);
    }
    features.amx_tile = tile_state && amx_tile;
    features.amx_bf16 = features.amx_tile && amx_bf16;
    return features;
}

#else

ckernels_cpu_features ckernels_read_cpu_features(void) {
    ckernels_cpu_features none = {0, 0, 0, 0, 0};
    return none;
}

#endif
