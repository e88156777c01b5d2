// Shared by the kernels (private to CKernels): 8-float vectors in GCC/Clang vector extensions, their helpers
// per CPU target, and the run-time choice between a kernel's AVX2+FMA and baseline builds.
#ifndef CKERNELS_VECTOR_H
#define CKERNELS_VECTOR_H

#include "ckernels.h"
#include <string.h>

// The helpers pass 32-byte vectors by value; they are always inlined, so no call ever uses that ABI.
#pragma GCC diagnostic ignored "-Wpsabi"

// Multiply-adds fuse across statements wherever the target has FMA (the package sets no compiler flags, so
// the kernels ask for it here); adam.c turns contraction off in its own scope to match PyTorch bit for bit.
#pragma clang fp contract(fast)

typedef float v8 __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));

#define INLINE static inline __attribute__((always_inline, unused))  // unused: not every family needs every helper

/// NAME##_load, NAME##_store and NAME##_hsum compiled with ATTR (a target attribute, or nothing). Each kernel
/// family defines its own with its own ATTR, so inlining never crosses targets.
#define V8_HELPERS(NAME, ATTR)                                                                                    \
    ATTR INLINE v8 NAME##_load(const float *p) {                                                                  \
        v8 v;                                                                                                     \
        memcpy(&v, p, sizeof v);                                                                                  \
        return v;                                                                                                 \
    }                                                                                                             \
    ATTR INLINE void NAME##_store(float *p, v8 v) { memcpy(p, &v, sizeof v); }                                    \
    ATTR INLINE float NAME##_hsum(v8 v) {                                                                         \
        return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));                                 \
    }

#if defined(__x86_64__) || defined(__i386__)
#define CK_X86 1
#define CK_AVX2 __attribute__((target("avx2,fma")))
/// Calls the AVX2+FMA build AVX2(...) when `USE_AVX2` holds on this CPU, else the baseline GENERIC(...).
#define CK_DISPATCH(USE_AVX2, AVX2, GENERIC, ...)                                                                 \
    do {                                                                                                          \
        if (USE_AVX2) AVX2(__VA_ARGS__);                                                                          \
        else GENERIC(__VA_ARGS__);                                                                                \
    } while (0)
#else
#define CK_DISPATCH(USE_AVX2, AVX2, GENERIC, ...) GENERIC(__VA_ARGS__)
#endif

#endif
