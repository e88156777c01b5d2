#ifndef CKERNELS_H
#define CKERNELS_H

#include <stdint.h>

/// Hand-vectorised C kernels with run-time CPU dispatch: on x86-64 the AVX2+FMA build of a kernel runs when
/// the CPU has them (Swift code is compiled for baseline x86-64, i.e. SSE2 without FMA), else the portable
/// build (the same source, vectorised for the baseline).

/// y[r·ldy + j] = (accumulate ? y[r·ldy + j] : 0) + bias[j] + Σ_i x[r·ldx + i] · w[j·k + i]
/// for r < m, j < n: a Linear layer (`w` n×k, PyTorch layout) on m rows, reading `w` once, four input rows
/// at a time. `bias` may be NULL.
void ck_linear_rows(int m, int n, int k, const float *x, int ldx, const float *w, const float *bias,
                    float *y, int ldy, int accumulate);

/// ck_linear_rows with IEEE half-precision weights (`w` n×k halves), widened to float as they are read (F16C
/// when the CPU has it): half the weight bytes per call, the same sums as ck_linear_rows on the widened weights
/// (up to summation order).
void ck_linear_rows_f16(int m, int n, int k, const float *x, int ldx, const uint16_t *w, const float *bias,
                        float *y, int ldy, int accumulate);

/// Direct 3×3 convolution, stride 1, padding 1, of `n` images of c × h × w (w a multiple of 8), PyTorch layout:
/// y[i][o][r][x] = bias[o] + Σ_ci,kh,kw weight[o][ci][kh][kw] · x[i][ci][r+kh−1][x+kw−1] (0 outside the plane),
/// y being n × oc × h × w. `bias` may be NULL. `scratch`: c·(h+2)·(w+2) floats (one padded image).
void ck_conv3x3_forward(int n, int c, int oc, int h, int w, const float *x, const float *weight,
                        const float *bias, float *y, float *scratch);

/// The weight and bias gradients of ck_conv3x3_forward, accumulated:
/// dw[o][ci][kh][kw] += Σ_i,r,x dy[i][o][r][x] · x[i][ci][r+kh−1][x+kw−1];  db[o] += Σ_i,r,x dy[i][o][r][x]
/// (`db` may be NULL). `scratch` as for the forward.
void ck_conv3x3_weight_gradient(int n, int c, int oc, int h, int w, const float *x, const float *dy, float *dw,
                                float *db, float *scratch);

/// The elementwise half of an LSTM step for `rows` rows (PyTorch's gate order i, f, g, o): `gates` (rows × 4H)
/// holds the pre-activations on entry and σ(i), σ(f), tanh(g), σ(o) on exit; writes c' = f·c + i·g, tanh(c') and
/// h' = o·tanh(c') (rows × H each). `previous_cell` NULL means c = 0. Vectorised exp and tanh, within a few ulp
/// of libm's.
void ck_lstm_pointwise_forward(int rows, int hidden, float *gates, const float *previous_cell, float *cell,
                               float *tanh_cell, float *h);

/// One Adam step (torch.optim.Adam's single-tensor formula) on `n` consecutive elements, per element:
/// g ← grad + weight_decay·θ (when weight_decay ≠ 0); m ← m + (1−β1)·(g − m); v ← v·β2 + (1−β2)·g²;
/// θ ← θ + (−step_size)·(m / (√v / sqrt_bc2 + eps)), with step_size = lr / (1 − β1ᵗ) and sqrt_bc2 = √(1 − β2ᵗ).
/// The same IEEE operations in both builds (no FMA contraction), so the same bits.
void ck_adam_update(long n, float *theta, const float *grad, float *m, float *v, float beta1, float beta2, float eps,
                    float weight_decay, float step_size, float sqrt_bc2);

/// glibc: serve blocks of up to 32 MB from the heap instead of fresh mmaps, and never trim the heap, so freed
/// memory is reused without page faults (see TensorCore's HeapPolicy). No effect with other C libraries.
void ck_heap_retain_freed_memory(void);

/// 1 when the AVX2+FMA build is in use.
int ck_uses_avx2(void);

/// Allows (1, the default) or forbids (0) the AVX2+FMA build, e.g. so tests can check the portable one.
/// Returns whether it is in use afterwards.
int ck_allow_avx2(int allow);

#endif
