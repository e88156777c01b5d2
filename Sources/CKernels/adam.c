// ck_adam_update: see ckernels.h. The update is a handful of IEEE operations per element, two of them divisions
// and one a square root, so at baseline SSE2 width it is bound by the divider rather than by memory; eight lanes
// (AVX2) halve that. Contraction into FMAs is off: every element gets exactly the operations, in the order, of
// the scalar formula (and of torch.optim.Adam), whichever build runs.
#include "vector.h"

#define ADAM(NAME, ATTR)                                                                                          \
    V8_HELPERS(NAME, ATTR)                                                                                        \
    ATTR static void NAME(long n, float *theta, const float *grad, float *m, float *v, float beta1, float beta2,  \
                          float eps, float weight_decay, float step_size, float sqrt_bc2) {                       \
        _Pragma("clang fp contract(off)")                                                                         \
        const float a1 = 1 - beta1, a2 = 1 - beta2, minus_step = -step_size;                                      \
        long i = 0;                                                                                               \
        for (; i + 8 <= n; i += 8) {                                                                              \
            const v8 t = NAME##_load(theta + i);                                                                  \
            v8 g = NAME##_load(grad + i);                                                                         \
            if (weight_decay != 0) g = g + weight_decay * t;                                                      \
            v8 mi = NAME##_load(m + i), vi = NAME##_load(v + i);                                                  \
            mi = mi + a1 * (g - mi);                                                                              \
            vi = vi * beta2 + a2 * (g * g);                                                                       \
            v8 root;                                                                                              \
            for (int e = 0; e < 8; e++) root[e] = __builtin_sqrtf(vi[e]);                                         \
            const v8 denom = root / sqrt_bc2 + eps;                                                               \
            NAME##_store(m + i, mi);                                                                              \
            NAME##_store(v + i, vi);                                                                              \
            NAME##_store(theta + i, t + minus_step * (mi / denom));                                               \
        }                                                                                                         \
        for (; i < n; i++) {                                                                                      \
            float g = grad[i];                                                                                    \
            if (weight_decay != 0) g = g + weight_decay * theta[i];                                               \
            m[i] = m[i] + a1 * (g - m[i]);                                                                        \
            v[i] = v[i] * beta2 + a2 * (g * g);                                                                   \
            const float denom = __builtin_sqrtf(v[i]) / sqrt_bc2 + eps;                                           \
            theta[i] = theta[i] + minus_step * (m[i] / denom);                                                    \
        }                                                                                                         \
    }

ADAM(adam_generic, )
#ifdef CK_X86
ADAM(adam_avx2, CK_AVX2)
#endif

void ck_adam_update(long n, float *theta, const float *grad, float *m, float *v, float beta1, float beta2, float eps,
                    float weight_decay, float step_size, float sqrt_bc2) {
    CK_DISPATCH(ck_uses_avx2(), adam_avx2, adam_generic, n, theta, grad, m, v, beta1, beta2, eps, weight_decay,
                step_size, sqrt_bc2);
}
