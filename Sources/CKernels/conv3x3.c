// ck_conv3x3_*: direct 3×3 convolutions (stride 1, padding 1) for layers with few channels on small planes,
// where an im2col matrix nine times the input's size costs more to write and re-read than the arithmetic it
// feeds (a frame decoder's 16 → 4 convolution at 32×32). See ckernels.h. Like linear_rows.c: one body,
// instantiated for AVX2+FMA (chosen at run time) and for the baseline, GCC/Clang vector extensions only.
#include "vector.h"

/// The family compiled with ATTR. Planes are padded into `pad` (c × (h+2) × (w+2), zero border) one image at a
/// time, so every tap of every output row is an unaligned 8-float load without bounds checks.
///
/// - tile: RO output channels × RC chunks of 8 columns of one output row, RO·RC accumulators (4 × 2: 8
///   accumulators, 2 inputs and a weight in the 16 vector registers); every input load feeds RO FMAs.
/// - wgrad: for one input channel and kernel row, RO output channels × the three kernel columns, 12
///   accumulators over the whole plane; every load feeds three or four FMAs.
#define CONV3X3(NAME, ATTR)                                                                                       \
    V8_HELPERS(NAME, ATTR)                                                                                        \
    ATTR INLINE void NAME##_pad(int c, int h, int w, const float *x, float *pad) {                                \
        const int pw = w + 2;                                                                                     \
        memset(pad, 0, sizeof(float) * (size_t)c * (h + 2) * pw);                                                 \
        for (int ci = 0; ci < c; ci++)                                                                            \
            for (int r = 0; r < h; r++)                                                                           \
                memcpy(pad + ((long)ci * (h + 2) + r + 1) * pw + 1, x + ((long)ci * h + r) * w, sizeof(float) * w); \
    }                                                                                                             \
    ATTR INLINE void NAME##_tile(const int RO, const int RC, int c, int h, int w, const float *pad,              \
                                 const float *weight, const float *bias, int o0, int row, int x0, float *y) {     \
        const int pw = w + 2;                                                                                     \
        const long pp = (long)(h + 2) * pw;                                                                       \
        v8 acc[4][2];                                                                                             \
        for (int a = 0; a < RO; a++)                                                                              \
            for (int r = 0; r < RC; r++) acc[a][r] = (v8){0} + (bias ? bias[o0 + a] : 0.0f);                     \
        for (int ci = 0; ci < c; ci++) {                                                                          \
            const float *src = pad + ci * pp + (long)row * pw + x0;                                               \
            const float *wc = weight + ((long)o0 * c + ci) * 9;                                                   \
            for (int t = 0; t < 9; t++) {                                                                         \
                const float *s = src + (t / 3) * pw + t % 3;                                                      \
                v8 v[2];                                                                                          \
                for (int r = 0; r < RC; r++) v[r] = NAME##_load(s + 8 * r);                                       \
                for (int a = 0; a < RO; a++) {                                                                    \
                    const float k = wc[(long)a * c * 9 + t];                                                      \
                    for (int r = 0; r < RC; r++) acc[a][r] += k * v[r];                                           \
                }                                                                                                 \
            }                                                                                                     \
        }                                                                                                         \
        for (int a = 0; a < RO; a++)                                                                              \
            for (int r = 0; r < RC; r++) NAME##_store(y + ((long)(o0 + a) * h + row) * w + x0 + 8 * r, acc[a][r]); \
    }                                                                                                             \
    ATTR INLINE void NAME##_channels(const int RO, int c, int oc, int h, int w, const float *pad,                \
                                     const float *weight, const float *bias, int o0, float *y) {                  \
        (void)oc;                                                                                                 \
        for (int row = 0; row < h; row++) {                                                                       \
            int x0 = 0;                                                                                           \
            for (; x0 + 16 <= w; x0 += 16) NAME##_tile(RO, 2, c, h, w, pad, weight, bias, o0, row, x0, y);        \
            if (x0 < w) NAME##_tile(RO, 1, c, h, w, pad, weight, bias, o0, row, x0, y);                           \
        }                                                                                                         \
    }                                                                                                             \
    ATTR static void NAME##_forward(int n, int c, int oc, int h, int w, const float *x, const float *weight,     \
                                    const float *bias, float *y, float *pad) {                                    \
        for (int i = 0; i < n; i++) {                                                                             \
            NAME##_pad(c, h, w, x + (long)i * c * h * w, pad);                                                    \
            float *yi = y + (long)i * oc * h * w;                                                                 \
            int o0 = 0;                                                                                           \
            for (; o0 + 4 <= oc; o0 += 4) NAME##_channels(4, c, oc, h, w, pad, weight, bias, o0, yi);             \
            for (; o0 < oc; o0++) NAME##_channels(1, c, oc, h, w, pad, weight, bias, o0, yi);                     \
        }                                                                                                         \
    }                                                                                                             \
    ATTR INLINE void NAME##_wgrad(const int RO, int c, int h, int w, const float *pad, const float *dy, int o0,  \
                                  float *dw) {                                                                    \
        const int pw = w + 2;                                                                                     \
        const long pp = (long)(h + 2) * pw, plane = (long)h * w;                                                  \
        for (int ci = 0; ci < c; ci++) {                                                                          \
            for (int kh = 0; kh < 3; kh++) {                                                                      \
                v8 acc[4][3];                                                                                     \
                for (int a = 0; a < RO; a++) acc[a][0] = acc[a][1] = acc[a][2] = (v8){0};                        \
                for (int row = 0; row < h; row++) {                                                               \
                    const float *src = pad + ci * pp + (long)(row + kh) * pw;                                     \
                    const float *d = dy + (long)o0 * plane + (long)row * w;                                       \
                    for (int x0 = 0; x0 < w; x0 += 8) {                                                           \
                        const v8 x0v = NAME##_load(src + x0), x1v = NAME##_load(src + x0 + 1),                   \
                                 x2v = NAME##_load(src + x0 + 2);                                                 \
                        for (int a = 0; a < RO; a++) {                                                            \
                            const v8 g = NAME##_load(d + a * plane + x0);                                         \
                            acc[a][0] += g * x0v;                                                                 \
                            acc[a][1] += g * x1v;                                                                 \
                            acc[a][2] += g * x2v;                                                                 \
                        }                                                                                         \
                    }                                                                                             \
                }                                                                                                 \
                for (int a = 0; a < RO; a++)                                                                      \
                    for (int kw = 0; kw < 3; kw++)                                                                \
                        dw[((long)(o0 + a) * c + ci) * 9 + kh * 3 + kw] += NAME##_hsum(acc[a][kw]);               \
            }                                                                                                     \
        }                                                                                                         \
    }                                                                                                             \
    ATTR static void NAME##_weight_gradient(int n, int c, int oc, int h, int w, const float *x, const float *dy, \
                                            float *dw, float *db, float *pad) {                                   \
        const long plane = (long)h * w;                                                                           \
        for (int i = 0; i < n; i++) {                                                                             \
            NAME##_pad(c, h, w, x + (long)i * c * plane, pad);                                                    \
            const float *dyi = dy + (long)i * oc * plane;                                                         \
            int o0 = 0;                                                                                           \
            for (; o0 + 4 <= oc; o0 += 4) NAME##_wgrad(4, c, h, w, pad, dyi, o0, dw);                             \
            for (; o0 < oc; o0++) NAME##_wgrad(1, c, h, w, pad, dyi, o0, dw);                                     \
            if (db) {                                                                                             \
                for (int o = 0; o < oc; o++) {                                                                    \
                    v8 s = {0};                                                                                   \
                    for (long j = 0; j < plane; j += 8) s += NAME##_load(dyi + o * plane + j);                    \
                    db[o] += NAME##_hsum(s);                                                                      \
                }                                                                                                 \
            }                                                                                                     \
        }                                                                                                         \
    }

CONV3X3(conv3x3_generic, )
#ifdef CK_X86
CONV3X3(conv3x3_avx2, CK_AVX2)
#endif

void ck_conv3x3_forward(int n, int c, int oc, int h, int w, const float *x, const float *weight,
                        const float *bias, float *y, float *scratch) {
    CK_DISPATCH(ck_uses_avx2(), conv3x3_avx2_forward, conv3x3_generic_forward, n, c, oc, h, w, x, weight, bias, y,
                scratch);
}

void ck_conv3x3_weight_gradient(int n, int c, int oc, int h, int w, const float *x, const float *dy, float *dw,
                                float *db, float *scratch) {
    CK_DISPATCH(ck_uses_avx2(), conv3x3_avx2_weight_gradient, conv3x3_generic_weight_gradient, n, c, oc, h, w, x, dy,
                dw, db, scratch);
}
