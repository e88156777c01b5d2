import NN
import TensorCore
import CaptionSupport
import CaptionData

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

    /// k: the number of rows.
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
        // Row blocks on serial BLAS: the decoding steps that follow run their own parallel loops.
        let (nA, rows) = (config.attentionDim, count * pixels)
        flat.withUnsafeBufferPointer { f in
            projected.withUnsafeMutableBufferPointer { out in
                let (x, y) = (f.baseAddress!, out.baseAddress!)
                parallelRowBlocks(rows) { r in
                    encoderAtt.forward(rows: r.count, x + r.lowerBound * nD, into: y + r.lowerBound * nA, p)
                }
            }
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
        // Row kernels rather than BLAS: a multi-threaded SGEMM here would leave OpenBLAS's pool spinning through
        // the first decoding steps.
        func initial(_ layer: Linear) -> Tensor {
            var y = Tensor(shape: [n, layer.outFeatures])
            mean.withUnsafeBufferPointer { x in
                y.withUnsafeMutableBufferPointer { RowGEMM.forward(layer, rows: n, x.baseAddress!, into: $0.baseAddress!, p) }
            }
            return y
        }
        return DecoderState(h: initial(initH), c: initial(initC))
    }

    /// One decoding step for k rows: row r feeds word `tokens[r]` with state row r and attends over image
    /// `imageOfRow[r]` of `images` (default: image r). Beam search over one image passes `imageOfRow` all zeros,
    /// so the image's annotations and projection are shared by the beams instead of copied.
    ///
    ///     α = softmax(full_att(act(encoder_att(a) + decoder_att(h))))   z = Σ α_l a_l   gate = σ(f_beta(h))
    ///     (h', c') = decode_step([embedding(token) ; gate ⊙ z], (h, c))  logits = fc(h')
    ///
    /// Dropout is off (inference). The attention and LSTM kernels are the teacher-forced forward's, so `step`
    /// reproduces its scores; the matrix products read each weight once per step (`decodingStep`).
    public func step(tokens: [Int], state: DecoderState, images: EncodedImages, imageOfRow: [Int]? = nil,
                     _ p: Parameters, half: HalfStepWeights? = nil) -> DecoderStepOutput {
        decodingStep(tokens: tokens, state: state, images: images, imageOfRow: imageOfRow, p, half: half)
    }
}
