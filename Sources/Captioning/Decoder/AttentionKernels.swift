import TensorCore
import CaptionSupport
import CaptionData
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Raw per-row kernels of the soft attention, shared by teacher-forced training and step-wise inference.
///
/// One "row" is one caption (or beam) at one step: its image's projected annotations `encAtt` (L×A, that is
/// encoder_att(a) computed once per image), the projected hidden state `att2` = decoder_att(h) (A), and the
/// annotations `features` (L×D). The matrix work around them (decoder_att, f_beta, the LSTM, fc) is done by
/// SGEMM over all rows of a step; these loops are the parts that differ per row.
enum AttentionKernels {
    // SIMD4 throughout: the native vector width of the baseline x86-64 target (wider Swift SIMD types get split
    // into shuffles there).

    /// Σ a[i]·b[i] with SIMD accumulators (a plain Float loop would not vectorise: strict FP ordering).
    @inline(__always)
    static func dot(_ n: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>) -> Float {
        var acc0 = SIMD4<Float>(), acc1 = SIMD4<Float>()
        var i = 0
        while i + 8 <= n {
            acc0 += load4(a + i) * load4(b + i)
            acc1 += load4(a + i + 4) * load4(b + i + 4)
            i += 8
        }
        var s = (acc0 + acc1).sum()
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }

    @inline(__always)
    static func load4(_ p: UnsafePointer<Float>) -> SIMD4<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float>.self)
    }

    /// max(v, 0) lane-wise (the stdlib's generic `pointwiseMax` is not inlined and costs a call per vector).
    @inline(__always)
    static func relu4(_ v: SIMD4<Float>) -> SIMD4<Float> { v.replacing(with: 0, where: v .< 0) }

    @inline(__always)
    static func store4(_ v: SIMD4<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD4<Float>.self)
    }

    /// Forward of one row:
    ///
    ///     e_l = w · act(encAtt_l + att2) + bias     (l < L)
    ///     α   = softmax(e)                          → alpha (L)
    ///     z   = Σ_l α_l · features_l                → context (D)
    @inline(__always)
    static func forwardRow(pixels: Int, attentionDim: Int, encoderDim: Int, tanh: Bool,
                           encAtt: UnsafePointer<Float>, att2: UnsafePointer<Float>,
                           w: UnsafePointer<Float>, bias: Float, features: UnsafePointer<Float>,
                           alpha: UnsafeMutablePointer<Float>, context: UnsafeMutablePointer<Float>) {
        scores(0..<pixels, attentionDim: attentionDim, tanh: tanh, encAtt: encAtt, att2: att2, w: w, bias: bias, alpha: alpha)
        Kernels.softmax(pixels, alpha)
        weightedSum(pixels: pixels, encoderDim: encoderDim, dims: 0..<encoderDim, features: features, alpha: alpha,
                    context: context)
    }

    /// The first line of `forwardRow` for the pixels in `range`: alpha[l] = e_l, before the softmax.
    @inline(__always)
    static func scores(_ range: Range<Int>, attentionDim nA: Int, tanh: Bool, encAtt: UnsafePointer<Float>,
                       att2: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: Float,
                       alpha: UnsafeMutablePointer<Float>) {
        for l in range {
            let e = encAtt + l * nA
            var s: Float
            if tanh {
                s = 0
                for a in 0..<nA { s += tanhf(e[a] + att2[a]) * w[a] }
            } else {
                var acc0 = SIMD4<Float>(), acc1 = SIMD4<Float>()
                var a = 0
                while a + 8 <= nA {
                    let p0 = load4(e + a) + load4(att2 + a), p1 = load4(e + a + 4) + load4(att2 + a + 4)
                    acc0 += relu4(p0) * load4(w + a)
                    acc1 += relu4(p1) * load4(w + a + 4)
                    a += 8
                }
                s = (acc0 + acc1).sum()
                while a < nA { s += max(e[a] + att2[a], 0) * w[a]; a += 1 }
            }
            alpha[l] = s + bias
        }
    }

    /// The last line of `forwardRow` for the context elements in `dims`: z_d = Σ_l α_l · features_l[d].
    @inline(__always)
    static func weightedSum(pixels nL: Int, encoderDim nD: Int, dims: Range<Int>, features: UnsafePointer<Float>,
                            alpha: UnsafePointer<Float>, context: UnsafeMutablePointer<Float>) {
        (context + dims.lowerBound).update(repeating: 0, count: dims.count)
        for l in 0..<nL {
            let weight = alpha[l], f = features + l * nD
            for d in dims { context[d] += weight * f[d] }
        }
    }

    /// Backward of `forwardRow`, given dL/dz (D) and optionally a direct dL/dα (L, the attention penalty's):
    ///
    ///     dα_l = features_l · dz + extra_l          de = α ⊙ (dα − Σ_l α_l dα_l)        (softmax backward)
    ///     dEncAtt_l += de_l · w ⊙ act'(pre_l)       dAtt2 = Σ_l de_l · w ⊙ act'(pre_l)
    ///     dW += Σ_l de_l · act(pre_l)               returns Σ_l de_l (the bias gradient)
    ///
    /// with pre_l = encAtt_l + att2 recomputed (cheaper than storing L×A per row and step). The gradient of the
    /// features through z (α_l · dz) is left to the caller, which batches it over all steps of a caption.
    @inline(__always)
    static func backwardRow(pixels: Int, attentionDim: Int, encoderDim: Int, tanh: Bool,
                            encAtt: UnsafePointer<Float>, att2: UnsafePointer<Float>, w: UnsafePointer<Float>,
                            features: UnsafePointer<Float>, alpha: UnsafePointer<Float>,
                            dContext: UnsafePointer<Float>, extraDAlpha: UnsafePointer<Float>?,
                            scratch dAlpha: UnsafeMutablePointer<Float>,
                            dEncAtt: UnsafeMutablePointer<Float>, dAtt2: UnsafeMutablePointer<Float>,
                            dW: UnsafeMutablePointer<Float>) -> Float {
        let (nL, nA, nD) = (pixels, attentionDim, encoderDim)
        var weighted: Float = 0
        for l in 0..<nL {
            let g = dot(nD, features + l * nD, dContext) + (extraDAlpha?[l] ?? 0)
            dAlpha[l] = g
            weighted += alpha[l] * g
        }
        dAtt2.update(repeating: 0, count: nA)
        var dBias: Float = 0
        for l in 0..<nL {
            let de = alpha[l] * (dAlpha[l] - weighted)
            dBias += de
            let e = encAtt + l * nA, dE = dEncAtt + l * nA
            if tanh {
                for a in 0..<nA {
                    let act = tanhf(e[a] + att2[a])
                    let g = de * w[a] * (1 - act * act)
                    dE[a] += g; dAtt2[a] += g; dW[a] += de * act
                }
            } else {
                // SIMD with selects: a scalar loop with three accumulating outputs does not vectorise well.
                let deV = SIMD4<Float>(repeating: de), zero = SIMD4<Float>()
                var a = 0
                while a + 4 <= nA {
                    let pre = load4(e + a) + load4(att2 + a)
                    let off = pre .<= zero
                    let g = (deV * load4(w + a)).replacing(with: 0, where: off)
                    store4(load4(dE + a) + g, dE + a)
                    store4(load4(dAtt2 + a) + g, dAtt2 + a)
                    store4(load4(dW + a) + deV * relu4(pre), dW + a)
                    a += 4
                }
                while a < nA {
                    let pre = e[a] + att2[a]
                    let g = pre > 0 ? de * w[a] : 0
                    dE[a] += g; dAtt2[a] += g; dW[a] += pre > 0 ? de * pre : 0
                    a += 1
                }
            }
        }
        return dBias
    }

    /// Elementwise logistic function in place.
    @inline(__always)
    static func sigmoid(_ n: Int, _ x: UnsafeMutablePointer<Float>) {
        for i in 0..<n { x[i] = 1 / (1 + expf(-x[i])) }
    }
}
