// ck_linear_rows: y = x·Wᵀ + b for a few rows (see ckernels.h). One source, built twice: for AVX2+FMA (chosen
// at run time) and for the baseline target. GCC/Clang vector extensions keep it free of intrinsics.
#include "ckernels.h"
#include <string.h>

// The helpers below pass 32-byte vectors by value; they are always inlined, so no call ever uses that ABI.
#pragma GCC diagnostic ignored "-Wpsabi"

typedef float v8 __attribute__((vector_size(32)));

#define INLINE static inline __attribute__((always_inline))

INLINE v8 load8(const float *p) {
    v8 v;
    memcpy(&v, p, sizeof v);
    return v;
}

INLINE float hsum(v8 v) {
    return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
}

/// One tile: weight rows j … j+RW−1 (those past n are computed on row j and dropped) against input rows
/// 0 … RX−1, RW·RX independent accumulators so the FMA latency is hidden and each load feeds several FMAs.
/// RW, RX are constants at every call site, so the loops unroll and the accumulators stay in registers.
INLINE void tile(const int RW, const int RX, int k, const float *x, int ldx, const float *w, int j, int n,
                 const float *bias, float *y, int ldy, int accumulate) {
    const int k8 = k & ~7, valid = n - j < RW ? n - j : RW;
    const float *wr[4], *xr[4];
    for (int a = 0; a < RW; a++) wr[a] = w + (long)(j + (a < valid ? a : 0)) * k;
    for (int b = 0; b < RX; b++) xr[b] = x + (long)b * ldx;
    v8 acc[4][4];
    for (int a = 0; a < RW; a++) for (int b = 0; b < RX; b++) acc[a][b] = (v8){0};
    for (int i = 0; i < k8; i += 8) {
        v8 xv[4];
        for (int b = 0; b < RX; b++) xv[b] = load8(xr[b] + i);
        for (int a = 0; a < RW; a++) {
            v8 wv = load8(wr[a] + i);
            for (int b = 0; b < RX; b++) acc[a][b] += wv * xv[b];
        }
    }
    for (int a = 0; a < valid; a++) {
        for (int b = 0; b < RX; b++) {
            float s = hsum(acc[a][b]);
            for (int i = k8; i < k; i++) s += wr[a][i] * xr[b][i];
            s += bias ? bias[j + a] : 0.0f;
            float *out = y + (long)b * ldy + j + a;
            *out = accumulate ? *out + s : s;
        }
    }
}

/// All weight rows against RX input rows, RW weight rows at a time.
INLINE void pass(const int RW, const int RX, int n, int k, const float *x, int ldx, const float *w,
                 const float *bias, float *y, int ldy, int accumulate) {
    for (int j = 0; j < n; j += RW) tile(RW, RX, k, x, ldx, w, j, n, bias, y, ldy, accumulate);
}

INLINE void linear_rows(int m, int n, int k, const float *x, int ldx, const float *w, const float *bias, float *y,
                        int ldy, int accumulate) {
    // Tiles that fit the 16 vector registers: 2 weight rows × 4 input rows (8 accumulators + 4 inputs + 1 weight),
    // 4 × 3 (12 + 3 + 1), 4 × 2, 4 × 1.
    int r = 0;
    for (; m - r >= 4; r += 4) pass(2, 4, n, k, x + (long)r * ldx, ldx, w, bias, y + (long)r * ldy, ldy, accumulate);
    switch (m - r) {
    case 3: pass(4, 3, n, k, x + (long)r * ldx, ldx, w, bias, y + (long)r * ldy, ldy, accumulate); break;
    case 2: pass(4, 2, n, k, x + (long)r * ldx, ldx, w, bias, y + (long)r * ldy, ldy, accumulate); break;
    case 1: pass(4, 1, n, k, x + (long)r * ldx, ldx, w, bias, y + (long)r * ldy, ldy, accumulate); break;
    }
}

static void linear_rows_generic(int m, int n, int k, const float *x, int ldx, const float *w, const float *bias,
                                float *y, int ldy, int accumulate) {
    linear_rows(m, n, k, x, ldx, w, bias, y, ldy, accumulate);
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2,fma")))
static void linear_rows_avx2(int m, int n, int k, const float *x, int ldx, const float *w, const float *bias,
                             float *y, int ldy, int accumulate) {
    linear_rows(m, n, k, x, ldx, w, bias, y, ldy, accumulate);
}

static int avx2_state = -1, avx2_allowed = 1;

int ck_uses_avx2(void) {
    if (avx2_state < 0) {
        __builtin_cpu_init();
        avx2_state = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return avx2_state && avx2_allowed;
}
#else
static int avx2_allowed = 1;
int ck_uses_avx2(void) { return 0; }
#endif

int ck_allow_avx2(int allow) {
    avx2_allowed = allow;
    return ck_uses_avx2();
}

void ck_linear_rows(int m, int n, int k, const float *x, int ldx, const float *w, const float *bias,
                    float *y, int ldy, int accumulate) {
#if defined(__x86_64__) || defined(__i386__)
    if (ck_uses_avx2()) {
        linear_rows_avx2(m, n, k, x, ldx, w, bias, y, ldy, accumulate);
        return;
    }
#endif
    linear_rows_generic(m, n, k, x, ldx, w, bias, y, ldy, accumulate);
}
