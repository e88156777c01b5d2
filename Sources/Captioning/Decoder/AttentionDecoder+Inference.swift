import NN
import TensorCore

/// Annotation vectors of a set of images together with their attention projection `encoder_att(a)`.
///
/// The projection (L×D · D×A per image, the largest matrix product of decoding) does not depend on the step or
/// the beam, so `AttentionDecoder.encode` computes it once per image and every `step` reuses it.
public struct EncodedImages {
    /// Number of images n.
    public let count: Int
    /// L, annotation vectors per image.
    public let pixels: Int
    /// n×L×D: a_1..a_L of each image.
    public let features: Tensor
    /// n×L×A: encoder_att(a_l), bias included.
    public let projected: Tensor
}

/// The LSTM state of k decoding rows (captions or beams), each H wide.
public struct DecoderState {
    /// k×H
    public var h: Tensor
    /// k×H
    public var c: Tensor

    public var rows: Int { h.shape[0] }

    /// The state of the listed rows, in that order (repeats allowed): expanding an image's state to k beams, or
    /// following the surviving beams after a step.
    public func selecting(_ rows: [Int]) -> DecoderState {
        let hs = h.shape[1]
        func pick(_ t: Tensor) -> Tensor {
            var out = Tensor(shape: [rows.count, hs])
            t.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    for (i, r) in rows.enumerated() {
                        (dst.baseAddress! + i * hs).update(from: src.baseAddress! + r * hs, count: hs)
                    }
                }
            }
            return out
        }
        return DecoderState(h: pick(h), c: pick(c))
    }
}

/// What one decoding step produces for its k rows.
public struct DecoderStepOutput {
    /// k×V raw scores `fc(h')` (no softmax; beam search takes log-softmax).
    public let logits: Tensor
    /// k×L attention weights α used for this step's word.
    public let alpha: Tensor
    /// The state after the step.
    public let state: DecoderState
}

extension AttentionDecoder {
    /// Prepares images for step-wise decoding: keeps the annotations and computes `encoder_att(a)` once.
    /// `features`: n×L×D (any n×…×D), or L×D for a single image.
    public func encode(_ features: Tensor, _ p: Parameters) -> EncodedImages {
        let nD = config.encoderDim
        precondition(features.shape.last == nD, "decoder: features \(features.shape), expected …×\(nD)")
        let count = features.rank == 2 ? 1 : features.shape[0]
        let pixels = features.count / (count * nD)
        let flat = features.reshaped([count, pixels, nD])
        var projected = Tensor(shape: [count, pixels, config.attentionDim])
        flat.withUnsafeBufferPointer { f in
            projected.withUnsafeMutableBufferPointer { encoderAtt.forward(rows: count * pixels, f.baseAddress!, into: $0.baseAddress!, p) }
        }
        return EncodedImages(count: count, pixels: pixels, features: flat, projected: projected)
    }

    /// The initial state of each image: h_0 = init_h(mean_l a_l), c_0 = init_c(mean_l a_l), one row per image
    /// (use `selecting` to repeat it for k beams).
    public func initState(_ images: EncodedImages, _ p: Parameters) -> DecoderState {
        let (n, nL, nD) = (images.count, images.pixels, config.encoderDim)
        var mean = Tensor(shape: [n, nD])
        images.features.withUnsafeBufferPointer { f in
            mean.withUnsafeMutableBufferPointer { m in
                for i in 0..<n {
                    for l in 0..<nL { Kernels.axpy(nD, 1, f.baseAddress! + (i * nL + l) * nD, m.baseAddress! + i * nD) }
                }
                Kernels.scale(n * nD, 1 / Float(nL), m.baseAddress!)
            }
        }
        return DecoderState(h: initH.forward(mean, p), c: initC.forward(mean, p))
    }

    /// One decoding step for k rows: row r feeds word `tokens[r]` with state row r and attends over image
    /// `imageOfRow[r]` of `images` (default: image r). Beam search over one image passes `imageOfRow` all zeros,
    /// so the image's annotations and projection are shared by the beams instead of copied.
    ///
    ///     α = softmax(full_att(act(encoder_att(a) + decoder_att(h))))   z = Σ α_l a_l   gate = σ(f_beta(h))
    ///     (h', c') = decode_step([embedding(token) ; gate ⊙ z], (h, c))  logits = fc(h')
    ///
    /// Dropout is off (inference). The same kernels as the teacher-forced forward, so `step` reproduces its scores.
    public func step(tokens: [Int], state: DecoderState, images: EncodedImages, imageOfRow: [Int]? = nil,
                     _ p: Parameters) -> DecoderStepOutput {
        let k = tokens.count
        let c = config
        let (nL, nD, nA, nE, gw) = (images.pixels, c.encoderDim, c.attentionDim, c.embedDim, c.gateWidth)
        let nX = nE + nD
        precondition(state.rows == k, "decoder step: \(k) tokens for \(state.rows) state rows")
        precondition(imageOfRow.map { $0.count == k && $0.allSatisfy { $0 >= 0 && $0 < images.count } } ?? (k <= images.count),
                     "decoder step: rows do not map onto the \(images.count) encoded images")
        let tanhAttention = c.attentionActivation == .tanh

        let att2 = decoderAtt.forward(state.h, p)        // k×A
        var gate = fBeta.forward(state.h, p)             // k×gw, pre-sigmoid
        var x = Tensor(shape: [k, nX])                   // [embedding ; gate ⊙ z]
        var alpha = Tensor(shape: [k, nL])
        var context = [Float](repeating: 0, count: k * nD)
        let w = UnsafePointer(p.value(fullAtt.weight)), attBias = p.value(fullAtt.bias!)[0]
        x.withUnsafeMutableBufferPointer { xb in
            let xp = xb.baseAddress!
            tokens.withUnsafeBufferPointer { embedding.forward(rows: k, tokens: $0.baseAddress!, into: xp, ldy: nX, p) }
            images.projected.withUnsafeBufferPointer { encAtt in
                images.features.withUnsafeBufferPointer { feat in
                    att2.withUnsafeBufferPointer { a2 in
                        gate.withUnsafeMutableBufferPointer { gb in
                            alpha.withUnsafeMutableBufferPointer { ab in
                                context.withUnsafeMutableBufferPointer { cb in
                                    let (e, f, a2p, g, al, z) = (encAtt.baseAddress!, feat.baseAddress!, a2.baseAddress!,
                                                                 gb.baseAddress!, ab.baseAddress!, cb.baseAddress!)
                                    parallelFor(k) { r in
                                        let image = imageOfRow?[r] ?? r
                                        AttentionKernels.forwardRow(
                                            pixels: nL, attentionDim: nA, encoderDim: nD, tanh: tanhAttention,
                                            encAtt: e + image * nL * nA, att2: a2p + r * nA, w: w, bias: attBias,
                                            features: f + image * nL * nD, alpha: al + r * nL, context: z + r * nD)
                                        let gr = g + r * gw, zr = z + r * nD, xr = xp + r * nX + nE
                                        AttentionKernels.sigmoid(gw, gr)
                                        if gw == nD { for d in 0..<nD { xr[d] = gr[d] * zr[d] } }
                                        else { let s = gr[0]; for d in 0..<nD { xr[d] = s * zr[d] } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let (next, _) = decodeStep.step(inputProjection: decodeStep.projectInput(x, p),
                                        state: RecurrentState(h: state.h, c: state.c), p)
        let newState = DecoderState(h: next.h, c: next.c!)
        return DecoderStepOutput(logits: fc.forward(newState.h, p), alpha: alpha, state: newState)
    }
}
