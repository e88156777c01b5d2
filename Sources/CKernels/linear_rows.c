// ck_linear_rows: y = x·Wᵀ + b for a few rows (see ckernels.h). One source, built twice: for AVX2+FMA (chosen
// at run time) and for the baseline target. GCC/Clang vector extensions keep it free of intrinsics.
#include "ckernels.h"
#include <string.h>

// The helpers below pass 32-byte vectors by value; they are always inlined, so no call ever uses that ABI.
#pragma GCC diagnostic ignored "-Wpsabi"

typedef float v8 __attribute__((vector_size(32)));

static inline __attribute__((always_inline)) v8 load8(const float *p) {
    v8 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline __attribute__((always_inline)) float hsum(v8 v) {
    return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
}

static inline __attribute__((always_inline)) void put(float *y, float v, const float *bias, int j, int accumulate) {
    float b = bias ? bias[j] : 0.0f;
    *y = accumulate ? *y + (v + b) : v + b;
}

static inline __attribute__((always_inline)) void linear_rows(int m, int n, int k, const float *x, int ldx,
                                                               const float *w, const float *bias, float *y, int ldy,
                                                               int accumulate) {
    const int k8 = k & ~7;
    int r = 0;
    // Four input rows against two weight rows: 8 accumulators, each weight vector loaded once for 4 FMAs.
    for (; r + 4 <= m; r += 4) {
        const float *x0 = x + (long)r * ldx, *x1 = x0 + ldx, *x2 = x1 + ldx, *x3 = x2 + ldx;
        for (int j = 0; j < n; j += 2) {
            const int two = j + 1 < n;
            const float *w0 = w + (long)j * k, *w1 = two ? w0 + k : w0;
            v8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0};
            for (int i = 0; i < k8; i += 8) {
                v8 u = load8(w0 + i), v = load8(w1 + i);
                v8 p0 = load8(x0 + i), p1 = load8(x1 + i), p2 = load8(x2 + i), p3 = load8(x3 + i);
                a0 += u * p0; a1 += u * p1; a2 += u * p2; a3 += u * p3;
                b0 += v * p0; b1 += v * p1; b2 += v * p2; b3 += v * p3;
            }
            float s[8] = {hsum(a0), hsum(a1), hsum(a2), hsum(a3), hsum(b0), hsum(b1), hsum(b2), hsum(b3)};
            for (int i = k8; i < k; i++) {
                s[0] += w0[i] * x0[i]; s[1] += w0[i] * x1[i]; s[2] += w0[i] * x2[i]; s[3] += w0[i] * x3[i];
                s[4] += w1[i] * x0[i]; s[5] += w1[i] * x1[i]; s[6] += w1[i] * x2[i]; s[7] += w1[i] * x3[i];
            }
            for (int q = 0; q < 4; q++) put(y + (long)(r + q) * ldy + j, s[q], bias, j, accumulate);
            if (two) for (int q = 0; q < 4; q++) put(y + (long)(r + q) * ldy + j + 1, s[4 + q], bias, j + 1, accumulate);
        }
    }
    // Three rows (the default beam) against two weight rows.
    if (m - r == 3) {
        const float *x0 = x + (long)r * ldx, *x1 = x0 + ldx, *x2 = x1 + ldx;
        for (int j = 0; j < n; j += 2) {
            const int two = j + 1 < n;
            const float *w0 = w + (long)j * k, *w1 = two ? w0 + k : w0;
            v8 a0 = {0}, a1 = {0}, a2 = {0}, b0 = {0}, b1 = {0}, b2 = {0};
            for (int i = 0; i < k8; i += 8) {
                v8 u = load8(w0 + i), v = load8(w1 + i), p0 = load8(x0 + i), p1 = load8(x1 + i), p2 = load8(x2 + i);
                a0 += u * p0; a1 += u * p1; a2 += u * p2; b0 += v * p0; b1 += v * p1; b2 += v * p2;
            }
            float s[6] = {hsum(a0), hsum(a1), hsum(a2), hsum(b0), hsum(b1), hsum(b2)};
            for (int i = k8; i < k; i++) {
                s[0] += w0[i] * x0[i]; s[1] += w0[i] * x1[i]; s[2] += w0[i] * x2[i];
                s[3] += w1[i] * x0[i]; s[4] += w1[i] * x1[i]; s[5] += w1[i] * x2[i];
            }
            for (int q = 0; q < 3; q++) put(y + (long)(r + q) * ldy + j, s[q], bias, j, accumulate);
            if (two) for (int q = 0; q < 3; q++) put(y + (long)(r + q) * ldy + j + 1, s[3 + q], bias, j + 1, accumulate);
        }
        return;
    }
    // Two rows against two weight rows.
    for (; r + 2 <= m; r += 2) {
        const float *x0 = x + (long)r * ldx, *x1 = x0 + ldx;
        for (int j = 0; j < n; j += 2) {
            const int two = j + 1 < n;
            const float *w0 = w + (long)j * k, *w1 = two ? w0 + k : w0;
            v8 a0 = {0}, a1 = {0}, b0 = {0}, b1 = {0};
            for (int i = 0; i < k8; i += 8) {
                v8 u = load8(w0 + i), v = load8(w1 + i), p0 = load8(x0 + i), p1 = load8(x1 + i);
                a0 += u * p0; a1 += u * p1; b0 += v * p0; b1 += v * p1;
            }
            float s[4] = {hsum(a0), hsum(a1), hsum(b0), hsum(b1)};
            for (int i = k8; i < k; i++) {
                s[0] += w0[i] * x0[i]; s[1] += w0[i] * x1[i]; s[2] += w1[i] * x0[i]; s[3] += w1[i] * x1[i];
            }
            put(y + (long)r * ldy + j, s[0], bias, j, accumulate);
            put(y + (long)(r + 1) * ldy + j, s[1], bias, j, accumulate);
            if (two) {
                put(y + (long)r * ldy + j + 1, s[2], bias, j + 1, accumulate);
                put(y + (long)(r + 1) * ldy + j + 1, s[3], bias, j + 1, accumulate);
            }
        }
    }
    // One row against four weight rows.
    for (; r < m; r++) {
        const float *x0 = x + (long)r * ldx;
        for (int j = 0; j < n; j += 4) {
            const int c = n - j < 4 ? n - j : 4;
            const float *w0 = w + (long)j * k;
            const float *w1 = c > 1 ? w0 + k : w0, *w2 = c > 2 ? w0 + 2 * k : w0, *w3 = c > 3 ? w0 + 3 * k : w0;
            v8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
            for (int i = 0; i < k8; i += 8) {
                v8 p = load8(x0 + i);
                a0 += load8(w0 + i) * p; a1 += load8(w1 + i) * p; a2 += load8(w2 + i) * p; a3 += load8(w3 + i) * p;
            }
            float s[4] = {hsum(a0), hsum(a1), hsum(a2), hsum(a3)};
            for (int i = k8; i < k; i++) {
                s[0] += w0[i] * x0[i]; s[1] += w1[i] * x0[i]; s[2] += w2[i] * x0[i]; s[3] += w3[i] * x0[i];
            }
            for (int q = 0; q < c; q++) put(y + (long)r * ldy + j + q, s[q], bias, j + q, accumulate);
        }
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

static int avx2_state = -1;

int ck_uses_avx2(void) {
    if (avx2_state < 0) {
        __builtin_cpu_init();
        avx2_state = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return avx2_state;
}
#else
int ck_uses_avx2(void) { return 0; }
#endif

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
