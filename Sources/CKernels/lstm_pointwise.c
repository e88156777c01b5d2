// ck_lstm_pointwise_forward: the elementwise half of an LSTM step (see ckernels.h), eight lanes at a time with a
// vectorised exp. libm's scalar expf/tanhf made this about as slow as the step's matrix product. Like the
// other kernels: one body, instantiated for AVX2+FMA (chosen at run time) and for the baseline.
//
// exp: Cody–Waite range reduction x = n·ln2 + r (ln2 split in two parts) and a degree-6 polynomial for e^r on
// |r| ≤ ln2/2 (the Cephes coefficients), scaled by 2^n through the exponent bits; within 2 ulp on [−87, 88].
// tanh: an odd polynomial below |x| = 0.625 (Cephes), where 1 − 2/(e^{2x} + 1) would lose relative accuracy,
// and that formula above it.
#include "vector.h"

#define LSTM_POINTWISE(NAME, ATTR)                                                                                \
    V8_HELPERS(NAME, ATTR)                                                                                        \
    ATTR INLINE v8 NAME##_select(v8i mask, v8 a, v8 b) { return (v8)((mask & (v8i)a) | (~mask & (v8i)b)); }      \
    ATTR INLINE v8 NAME##_exp(v8 x) {                                                                             \
        const v8 hi = (v8){0} + 88.3762626647949f, lo = (v8){0} - 87.3365447504f;                                \
        x = NAME##_select(x > hi, hi, x);                                                                         \
        x = NAME##_select(x < lo, lo, x);                                                                         \
        /* n = round(x / ln2), as floor(x·log2e + 0.5) */                                                         \
        v8 t = x * 1.44269504088896341f + 0.5f;                                                                   \
        v8i n = __builtin_convertvector(t, v8i);                                                                  \
        v8 fn = __builtin_convertvector(n, v8);                                                                   \
        v8i over = fn > t;                                                                                        \
        n += over; /* −1 where truncation rounded up */                                                           \
        fn = __builtin_convertvector(n, v8);                                                                      \
        v8 r = x - fn * 0.693359375f;                                                                             \
        r = r - fn * -2.12194440e-4f;                                                                             \
        const v8 z = r * r;                                                                                       \
        v8 y = (v8){0} + 1.9875691500e-4f;                                                                        \
        y = y * r + 1.3981999507e-3f;                                                                             \
        y = y * r + 8.3334519073e-3f;                                                                             \
        y = y * r + 4.1665795894e-2f;                                                                             \
        y = y * r + 1.6666665459e-1f;                                                                             \
        y = y * r + 5.0000001201e-1f;                                                                             \
        y = y * z + r + 1.0f;                                                                                     \
        const v8i scale = (n + 127) << 23;                                                                        \
        return y * (v8)scale;                                                                                     \
    }                                                                                                             \
    ATTR INLINE v8 NAME##_sigmoid(v8 x) { return 1.0f / (1.0f + NAME##_exp(-x)); }                              \
    ATTR INLINE v8 NAME##_tanh(v8 x) {                                                                            \
        const v8i negative = x < 0.0f;                                                                            \
        const v8 a = NAME##_select(negative, -x, x);                                                              \
        const v8 z = x * x;                                                                                       \
        v8 p = (v8){0} - 5.70498872745e-3f;                                                                       \
        p = p * z + 2.06390887954e-2f;                                                                            \
        p = p * z - 5.37397155531e-2f;                                                                            \
        p = p * z + 1.33314422036e-1f;                                                                            \
        p = p * z - 3.33332819422e-1f;                                                                            \
        const v8 small = p * z * x + x;                                                                           \
        const v8 e = NAME##_exp(a + a);                                                                           \
        v8 large = 1.0f - 2.0f / (e + 1.0f);                                                                      \
        large = NAME##_select(negative, -large, large);                                                           \
        return NAME##_select(a < 0.625f, small, large);                                                           \
    }                                                                                                             \
    ATTR INLINE void NAME##_lanes(const float *gi, const float *gf, const float *gg, const float *go,            \
                                  const float *cp, float *oi, float *of, float *og, float *oo, float *c,         \
                                  float *tc, float *h) {                                                          \
        const v8 i = NAME##_sigmoid(NAME##_load(gi)), f = NAME##_sigmoid(NAME##_load(gf));                       \
        const v8 g = NAME##_tanh(NAME##_load(gg)), o = NAME##_sigmoid(NAME##_load(go));                          \
        NAME##_store(oi, i);                                                                                      \
        NAME##_store(of, f);                                                                                      \
        NAME##_store(og, g);                                                                                      \
        NAME##_store(oo, o);                                                                                      \
        const v8 cNew = (cp ? f * NAME##_load(cp) : (v8){0}) + i * g;                                            \
        const v8 t = NAME##_tanh(cNew);                                                                           \
        NAME##_store(c, cNew);                                                                                    \
        NAME##_store(tc, t);                                                                                      \
        NAME##_store(h, o * t);                                                                                   \
    }                                                                                                             \
    ATTR static void NAME(int rows, int hidden, float *gates, const float *previous_cell, float *cell,           \
                          float *tanh_cell, float *h) {                                                           \
        for (int r = 0; r < rows; r++) {                                                                          \
            float *gi = gates + (long)r * 4 * hidden, *gf = gi + hidden, *gg = gf + hidden, *go = gg + hidden;   \
            const float *cp = previous_cell ? previous_cell + (long)r * hidden : 0;                               \
            float *c = cell + (long)r * hidden, *tc = tanh_cell + (long)r * hidden, *hr = h + (long)r * hidden;  \
            int j = 0;                                                                                            \
            for (; j + 8 <= hidden; j += 8)                                                                       \
                NAME##_lanes(gi + j, gf + j, gg + j, go + j, cp ? cp + j : 0, gi + j, gf + j, gg + j, go + j,    \
                             c + j, tc + j, hr + j);                                                              \
            if (j < hidden) {                                                                                     \
                /* The tail through the same lanes, padded, so every element gets the same arithmetic. */        \
                float in[5][8] = {{0}}, out[7][8];                                                                \
                const int n = hidden - j;                                                                         \
                memcpy(in[0], gi + j, sizeof(float) * n);                                                         \
                memcpy(in[1], gf + j, sizeof(float) * n);                                                         \
                memcpy(in[2], gg + j, sizeof(float) * n);                                                         \
                memcpy(in[3], go + j, sizeof(float) * n);                                                         \
                if (cp) memcpy(in[4], cp + j, sizeof(float) * n);                                                 \
                NAME##_lanes(in[0], in[1], in[2], in[3], cp ? in[4] : 0, out[0], out[1], out[2], out[3], out[4], \
                             out[5], out[6]);                                                                     \
                memcpy(gi + j, out[0], sizeof(float) * n);                                                        \
                memcpy(gf + j, out[1], sizeof(float) * n);                                                        \
                memcpy(gg + j, out[2], sizeof(float) * n);                                                        \
                memcpy(go + j, out[3], sizeof(float) * n);                                                        \
                memcpy(c + j, out[4], sizeof(float) * n);                                                         \
                memcpy(tc + j, out[5], sizeof(float) * n);                                                        \
                memcpy(hr + j, out[6], sizeof(float) * n);                                                        \
            }                                                                                                     \
        }                                                                                                         \
    }

LSTM_POINTWISE(lstm_pointwise_generic, )
#ifdef CK_X86
LSTM_POINTWISE(lstm_pointwise_avx2, CK_AVX2)
#endif

void ck_lstm_pointwise_forward(int rows, int hidden, float *gates, const float *previous_cell, float *cell,
                               float *tanh_cell, float *h) {
    CK_DISPATCH(ck_uses_avx2(), lstm_pointwise_avx2, lstm_pointwise_generic, rows, hidden, gates, previous_cell, cell,
                tanh_cell, h);
}
