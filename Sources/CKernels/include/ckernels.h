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

/// 1 when the AVX2+FMA build is in use.
int ck_uses_avx2(void);

/// Allows (1, the default) or forbids (0) the AVX2+FMA build, e.g. so tests can check the portable one.
/// Returns whether it is in use afterwards.
int ck_allow_avx2(int allow);

#endif
