// ck_linear_rows: y = x·Wᵀ + b for a few rows (see ckernels.h), with float or IEEE-half weights. One body,
// instantiated per weight type and CPU target: AVX2+FMA (+F16C for halves), chosen at run time, and the baseline.
// GCC/Clang vector extensions keep it free of intrinsics, except the F16C widening.
#include "vector.h"

typedef short v8h __attribute__((vector_size(16)));

/// IEEE half → float, exactly (normals, subnormals, ±0, inf, NaN).
INLINE float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0x1f) bits = sign | 0x7f800000u | (mant << 13);
    else if (exp != 0) bits = sign | ((exp + 112) << 23) | (mant << 13);
    else if (mant == 0) bits = sign;
    else {  // subnormal: normalise
        int e = -1;
        do { mant <<= 1; e++; } while (!(mant & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((mant & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

#define LOAD8_FLOAT(NAME, p) NAME##_load(p)
#define LOAD8_HALF(NAME, p) load8_half(p)
#define LOAD8_F16C(NAME, p) load8_f16c(p)

INLINE v8 load8_half(const uint16_t *h) {
    v8 v;
    for (int e = 0; e < 8; e++) v[e] = half_to_float(h[e]);
    return v;
}

INLINE float scalar_float(const float *w) { return *w; }
INLINE float scalar_half(const uint16_t *w) { return half_to_float(*w); }

/// The kernel family for weights of type WT, loaded eight at a time by LOAD8W(NAME, pointer) and one at a
/// time by LOAD1W, compiled with ATTR (a target attribute, or nothing). Every function that passes vectors
/// is defined per instantiation with the same ATTR, so inlining never crosses targets:
///
/// - tile: weight rows j … j+RW−1 (those past n are computed on row j and dropped) against input rows 0 … RX−1,
///   RW·RX independent accumulators so the FMA latency is hidden and each load feeds several FMAs. RW, RX are
///   constants at every call site, so the loops unroll and the accumulators stay in registers.
/// - NAME: tiles that fit the 16 vector registers: 2 weight rows × 4 input rows (8 accumulators + 4 inputs +
///   1 weight), 4 × 3 (12 + 3 + 1), 4 × 2, and 8 × 1 (8 + 1 + 1): one input row (greedy decoding) streams the
///   weights, and eight independent FMA chains keep enough loads in flight to do that at memory speed.
#define LINEAR_ROWS(NAME, ATTR, WT, LOAD8W, LOAD1W)                                                              \
    V8_HELPERS(NAME, ATTR)                                                                                        \
    ATTR INLINE void NAME##_tile(const int RW, const int RX, int k, const float *x, int ldx, const WT *w, int j,  \
                                 int n, const float *bias, float *y, int ldy, int accumulate) {                   \
        const int k8 = k & ~7, valid = n - j < RW ? n - j : RW;                                                   \
        const WT *wr[8];                                                                                          \
        const float *xr[4];                                                                                       \
        for (int a = 0; a < RW; a++) wr[a] = w + (long)(j + (a < valid ? a : 0)) * k;                            \
        for (int b = 0; b < RX; b++) xr[b] = x + (long)b * ldx;                                                   \
        v8 acc[8][4];                                                                                             \
        for (int a = 0; a < RW; a++) for (int b = 0; b < RX; b++) acc[a][b] = (v8){0};                           \
        for (int i = 0; i < k8; i += 8) {                                                                         \
            v8 xv[4];                                                                                             \
            for (int b = 0; b < RX; b++) xv[b] = NAME##_load(xr[b] + i);                                                \
            for (int a = 0; a < RW; a++) {                                                                        \
                v8 wv = LOAD8W(NAME, wr[a] + i);                                                                        \
                for (int b = 0; b < RX; b++) acc[a][b] += wv * xv[b];                                             \
            }                                                                                                     \
        }                                                                                                         \
        for (int a = 0; a < valid; a++) {                                                                         \
            for (int b = 0; b < RX; b++) {                                                                        \
                float s = NAME##_hsum(acc[a][b]);                                                                        \
                for (int i = k8; i < k; i++) s += LOAD1W(wr[a] + i) * xr[b][i];                                   \
                s += bias ? bias[j + a] : 0.0f;                                                                   \
                float *out = y + (long)b * ldy + j + a;                                                           \
                *out = accumulate ? *out + s : s;                                                                 \
            }                                                                                                     \
        }                                                                                                         \
    }                                                                                                             \
    ATTR INLINE void NAME##_pass(const int RW, const int RX, int n, int k, const float *x, int ldx, const WT *w,  \
                                 const float *bias, float *y, int ldy, int accumulate) {                          \
        for (int j = 0; j < n; j += RW) NAME##_tile(RW, RX, k, x, ldx, w, j, n, bias, y, ldy, accumulate);       \
    }                                                                                                             \
    ATTR static void NAME(int m, int n, int k, const float *x, int ldx, const WT *w, const float *bias, float *y, \
                          int ldy, int accumulate) {                                                              \
        int r = 0;                                                                                                \
        for (; m - r >= 4; r += 4)                                                                                \
            NAME##_pass(2, 4, n, k, x + (long)r * ldx, ldx, w, bias, y + (long)r * ldy, ldy, accumulate);         \
        const float *xt = x + (long)r * ldx;                                                                      \
        float *yt = y + (long)r * ldy;                                                                            \
        switch (m - r) {                                                                                          \
        case 3: NAME##_pass(4, 3, n, k, xt, ldx, w, bias, yt, ldy, accumulate); break;                            \
        case 2: NAME##_pass(4, 2, n, k, xt, ldx, w, bias, yt, ldy, accumulate); break;                            \
        case 1: NAME##_pass(8, 1, n, k, xt, ldx, w, bias, yt, ldy, accumulate); break;                            \
        }                                                                                                         \
    }

LINEAR_ROWS(linear_rows_generic, , float, LOAD8_FLOAT, scalar_float)
LINEAR_ROWS(linear_rows_f16_generic, , uint16_t, LOAD8_HALF, scalar_half)

#ifdef CK_X86
#define AVX2_F16C __attribute__((target("avx2,fma,f16c")))

AVX2_F16C INLINE v8 load8_f16c(const uint16_t *h) {
    v8h packed;
    memcpy(&packed, h, sizeof packed);
    return (v8)__builtin_ia32_vcvtph2ps256(packed);
}

LINEAR_ROWS(linear_rows_avx2, CK_AVX2, float, LOAD8_FLOAT, scalar_float)
LINEAR_ROWS(linear_rows_f16_avx2, AVX2_F16C, uint16_t, LOAD8_F16C, scalar_half)

static int avx2_state = -1, f16c_state = -1, avx2_allowed = 1;

int ck_uses_avx2(void) {
    if (avx2_state < 0) {
        __builtin_cpu_init();
        avx2_state = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        f16c_state = __builtin_cpu_supports("f16c");
    }
    return avx2_state && avx2_allowed;
}

static int uses_f16c(void) { return ck_uses_avx2() && f16c_state; }
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
    CK_DISPATCH(ck_uses_avx2(), linear_rows_avx2, linear_rows_generic, m, n, k, x, ldx, w, bias, y, ldy, accumulate);
}

void ck_linear_rows_f16(int m, int n, int k, const float *x, int ldx, const uint16_t *w, const float *bias,
                        float *y, int ldy, int accumulate) {
    CK_DISPATCH(uses_f16c(), linear_rows_f16_avx2, linear_rows_f16_generic, m, n, k, x, ldx, w, bias, y, ldy,
                accumulate);
}
