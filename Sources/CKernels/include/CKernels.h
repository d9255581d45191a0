// Micro-kernels Swift cannot emit and the CPU queries they need. Each function that uses an
// instruction set beyond x86-64 carries its own __attribute__((target(...))), so one binary holds
// every path; Swift calls one only after ckernels_cpu_features says the CPU has it.
#ifndef CKERNELS_H
#define CKERNELS_H

#include <stdint.h>

typedef struct {
    int avx2_fma;      // AVX2 and FMA, with the OS saving the YMM state: what x86-64-v3 code needs
    int avx512f;       // AVX-512 F, BW, DQ and VL, with the OS saving the ZMM and mask state
    int avx512_bf16;   // VDPBF16PS (AVX512_BF16)
    int amx_tile;      // AMX tiles and TDPBF16PS (AMX_BF16), with the OS saving the tile state
    int amx_bf16;       // (reported only: there is no AMX kernel yet)
} ckernels_cpu_features;

/// What cpuid and xgetbv report. Never executes an instruction the CPU lacks.
ckernels_cpu_features ckernels_read_cpu_features(void);

/// The C tile's rows × columns of the AVX-512 fp32 micro-kernel.
enum { CKERNELS_AVX512_MR = 12, CKERNELS_AVX512_NR = 32 };

/// How C starts: 0 zero, 1 its current values, 2 every row = `row` (32 floats).
/// C[12, 32] (rows ldc floats apart) = start + Σ_p a[p·12 + i] · b[p·32 + j], p = 0..<depth,
/// one fused multiply-add per p in order, as the Swift micro-kernels do (the same rounding).
void ckernels_sgemm_avx512_12x32(int64_t depth, const float *a, const float *b, float *c, int64_t ldc,
                                 int start, const float *row);

/// The bf16 micro-kernel (AVX512_BF16): the same 12 × 32 tile, but each packed step holds two
/// steps of the depth as bfloat16 pairs, a 32-bit word per row of A (a[2q], a[2q+1]) and per
/// column of B (b[2q][j], b[2q+1][j]); VDPBF16PS adds both exact products to each fp32
/// accumulator (round to nearest even, denormals flushed). `pairs` is the depth in pairs.
void ckernels_sgemm_avx512bf16_12x32(int64_t pairs, const uint32_t *a, const uint32_t *b, float *c, int64_t ldc,
                                     int start, const float *row);

/// Ten independent chains of 16-wide FMAs, `iterations` long: the 512-bit fp32 peak probe.
float ckernels_fma_chains_avx512(int64_t iterations, float seed);

/// The same with VDPBF16PS (32 bfloat16 multiply-adds an instruction): the bfloat16 peak probe.
float ckernels_dpbf16_chains_avx512(int64_t iterations, float seed);

#endif
