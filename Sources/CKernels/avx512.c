#include "CKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

// The 24 accumulators of a 12 × 32 tile of C (rows ldc floats apart), started as `start` says
// (0 zero, 1 C's values, 2 `row` in every row), and stored back.
#define TILE_ROWS(X) X(0, c00, c01) X(1, c10, c11) X(2, c20, c21) X(3, c30, c31) X(4, c40, c41) X(5, c50, c51) \
                     X(6, c60, c61) X(7, c70, c71) X(8, c80, c81) X(9, c90, c91) X(10, ca0, ca1) X(11, cb0, cb1)
#define DECLARE_ROW(r, x0, x1) __m512 x0, x1;
#define START_ROW(r, x0, x1)                                                                          \
    if (start == 0) { x0 = _mm512_setzero_ps(); x1 = _mm512_setzero_ps(); }                         \
    else if (start == 1) { x0 = _mm512_loadu_ps(c + (r) * ldc); x1 = _mm512_loadu_ps(c + (r) * ldc + 16); } \
    else { x0 = _mm512_loadu_ps(row); x1 = _mm512_loadu_ps(row + 16); }
#define STORE_ROW(r, x0, x1) _mm512_storeu_ps(c + (r) * ldc, x0); _mm512_storeu_ps(c + (r) * ldc + 16, x1);
#define TILE_START TILE_ROWS(DECLARE_ROW) TILE_ROWS(START_ROW)
#define TILE_STORE TILE_ROWS(STORE_ROW)

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma")))

// The 12 × 32 tile: 24 accumulators of the 32 ZMM registers; per step two 16-float loads of B
// and twelve broadcasts of A feed 24 FMAs, which two 512-bit FMA pipes retire in 12 cycles.
AVX512 void ckernels_sgemm_avx512_12x32(int64_t depth, const float *a, const float *b, float *c, int64_t ldc,
                                        int start, const float *row) {
    TILE_START
    for (int64_t p = 0; p < depth; p++) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        __m512 x;
#define STEP(r, x0, x1) x = _mm512_set1_ps(a[r]); x0 = _mm512_fmadd_ps(x, b0, x0); x1 = _mm512_fmadd_ps(x, b1, x1);
        TILE_ROWS(STEP)
#undef STEP
        a += 12;
        b += 32;
    }
    TILE_STORE
}

#define AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,fma")))

AVX512BF16 void ckernels_sgemm_avx512bf16_12x32(int64_t pairs, const uint32_t *a, const uint32_t *b, float *c, int64_t ldc,
                                                int start, const float *row) {
    TILE_START
    for (int64_t q = 0; q < pairs; q++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(b), b1 = (__m512bh)_mm512_loadu_si512(b + 16);
        __m512bh x;
#define STEP(r, x0, x1) x = (__m512bh)_mm512_set1_epi32((int)a[r]); x0 = _mm512_dpbf16_ps(x0, x, b0); x1 = _mm512_dpbf16_ps(x1, x, b1);
        TILE_ROWS(STEP)
#undef STEP
        a += 12;
        b += 32;
    }
    TILE_STORE
}

AVX512 float ckernels_fma_chains_avx512(int64_t iterations, float seed) {
    const __m512 factor = _mm512_set1_ps(0.999999f), addend = _mm512_set1_ps(1e-7f);
    __m512 x0 = _mm512_set1_ps(seed), x1 = _mm512_set1_ps(seed + 1), x2 = _mm512_set1_ps(seed + 2);
    __m512 x3 = _mm512_set1_ps(seed + 3), x4 = _mm512_set1_ps(seed + 4), x5 = _mm512_set1_ps(seed + 5);
    __m512 x6 = _mm512_set1_ps(seed + 6), x7 = _mm512_set1_ps(seed + 7), x8 = _mm512_set1_ps(seed + 8);
    __m512 x9 = _mm512_set1_ps(seed + 9);
    for (int64_t i = 0; i < iterations; i++) {
        x0 = _mm512_fmadd_ps(x0, factor, addend); x1 = _mm512_fmadd_ps(x1, factor, addend);
        x2 = _mm512_fmadd_ps(x2, factor, addend); x3 = _mm512_fmadd_ps(x3, factor, addend);
        x4 = _mm512_fmadd_ps(x4, factor, addend); x5 = _mm512_fmadd_ps(x5, factor, addend);
        x6 = _mm512_fmadd_ps(x6, factor, addend); x7 = _mm512_fmadd_ps(x7, factor, addend);
        x8 = _mm512_fmadd_ps(x8, factor, addend); x9 = _mm512_fmadd_ps(x9, factor, addend);
    }
    __m512 sum = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(x0, x1), _mm512_add_ps(x2, x3)),
                               _mm512_add_ps(_mm512_add_ps(x4, x5), _mm512_add_ps(_mm512_add_ps(x6, x7), _mm512_add_ps(x8, x9))));
    return _mm512_reduce_add_ps(sum);
}

AVX512BF16 float ckernels_dpbf16_chains_avx512(int64_t iterations, float seed) {
    // Pairs (0.9921875, 2^-7) against (1, 1): each chain grows by exactly 1 a step, never denormal.
    const __m512bh factor = (__m512bh)_mm512_set1_epi32(0x3C003F7E), ones = (__m512bh)_mm512_set1_epi32(0x3F803F80);
    __m512 x[10];
    for (int i = 0; i < 10; i++) x[i] = _mm512_set1_ps(seed + (float)i);
    for (int64_t i = 0; i < iterations; i++) {
        x[0] = _mm512_dpbf16_ps(x[0], factor, ones); x[1] = _mm512_dpbf16_ps(x[1], factor, ones);
        x[2] = _mm512_dpbf16_ps(x[2], factor, ones); x[3] = _mm512_dpbf16_ps(x[3], factor, ones);
        x[4] = _mm512_dpbf16_ps(x[4], factor, ones); x[5] = _mm512_dpbf16_ps(x[5], factor, ones);
        x[6] = _mm512_dpbf16_ps(x[6], factor, ones); x[7] = _mm512_dpbf16_ps(x[7], factor, ones);
        x[8] = _mm512_dpbf16_ps(x[8], factor, ones); x[9] = _mm512_dpbf16_ps(x[9], factor, ones);
    }
    __m512 sum = x[0];
    for (int i = 1; i < 10; i++) sum = _mm512_add_ps(sum, x[i]);
    return _mm512_reduce_add_ps(sum);
}

#endif
