import NN
import TensorCore
import CaptionSupport
import CaptionData

extension AttentionDecoder {
    /// One decoding step for the few rows of a search: the same computation as `step(tokens:state:images:imageOfRow:)`
    /// (same kernels for the attention and the LSTM pointwise part), with every matrix product done by `RowGEMM`,
    /// which reads each weight matrix once per step instead of packing it for SGEMM. For the tutorial's sizes that
    /// is ~49 MB of weights per step (W_ih 21 MB, fc 19 MB, W_hh, f_beta, decoder_att 9 MB), whatever the row count.
    ///
    ///     att2 = decoder_att(h)   gate = σ(f_beta(h))   pre = W_hh·h + b_hh          (h: k×H)
    ///     α, z = attention(encoder_att(a), att2, a)     x = [embedding(token) ; gate ⊙ z]
    ///     pre += W_ih·x + b_ih   (h', c') = LSTM(pre, c)   logits = fc(h')
    ///
    /// `half`: half-precision copies of the step matrices (same values), read instead of the float ones.
    func decodingStep(tokens: [Int], state: DecoderState, images: EncodedImages, imageOfRow: [Int]?,
                      _ p: Parameters, half: HalfStepWeights? = nil) -> DecoderStepOutput {
        let (alpha, next) = decodingAdvance(tokens: tokens, state: state, images: images, imageOfRow: imageOfRow, p, half: half)
        return DecoderStepOutput(logits: outputLogits(next.h, p, half: half), alpha: alpha, state: next)
    }

    /// `fc(h)` for the k×H rows of a decoding step: k×V logits, by `RowGEMM` (so for up to `RowGEMM.maxRows` rows
    /// each row's logits are the same values whatever the row count).
    func outputLogits(_ h: Tensor, _ p: Parameters, half: HalfStepWeights? = nil) -> Tensor {
        let k = h.shape[0]
        var logits = Tensor(shape: [k, config.vocabSize])
        h.withUnsafeBufferPointer { hb in
            logits.withUnsafeMutableBufferPointer {
                RowGEMM.forward(fc, rows: k, hb.baseAddress!, into: $0.baseAddress!, p, half: half)
            }
        }
        return logits
    }

    /// `decodingStep` without its last product, fc: the α of each row and the state after the step.
    func decodingAdvance(tokens: [Int], state: DecoderState, images: EncodedImages, imageOfRow: [Int]?,
                         _ p: Parameters, half: HalfStepWeights? = nil) -> (alpha: Tensor, state: DecoderState) {
        let k = tokens.count, c = config
        let (nL, nD, nA, nE, nH, gw) = (images.pixels, c.encoderDim, c.attentionDim, c.embedDim, c.decoderDim, c.gateWidth)
        let nX = nE + nD, nG = 4 * nH
        precondition(state.rows == k, "decoder step: \(k) tokens for \(state.rows) state rows")
        precondition(imageOfRow.map { $0.count == k && $0.allSatisfy { $0 >= 0 && $0 < images.count } } ?? (k <= images.count),
                     "decoder step: rows do not map onto the \(images.count) encoded images")
        let tanhAttention = c.attentionActivation == .tanh
        func linear(_ layer: Linear, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
            RowGEMM.forward(layer, rows: k, x, into: y, p, half: half)
        }

        var att2 = [Float](repeating: 0, count: k * nA), gate = [Float](repeating: 0, count: k * gw)
        var pre = [Float](repeating: 0, count: k * nG), x = [Float](repeating: 0, count: k * nX)
        var context = [Float](repeating: 0, count: k * nD), tanhC = [Float](repeating: 0, count: k * nH)
        var alpha = Tensor(shape: [k, nL]), h = Tensor(shape: [k, nH]), cell = Tensor(shape: [k, nH])
        let lstm = decodeStep
        state.h.withUnsafeBufferPointer { hb in
            let hp = hb.baseAddress!
            att2.withUnsafeMutableBufferPointer { linear(decoderAtt, hp, $0.baseAddress!) }
            gate.withUnsafeMutableBufferPointer { linear(fBeta, hp, $0.baseAddress!) }
            pre.withUnsafeMutableBufferPointer {
                RowGEMM.linear(m: k, n: nG, k: nH, x: hp, ldx: nH, w: p.value(lstm.weightHH),
                               half: half?.weights(lstm.weightHH), bias: lstm.biasHH.map { UnsafePointer(p.value($0)) },
                               y: $0.baseAddress!, ldy: nG)
            }
        }
        let w = UnsafePointer(p.value(fullAtt.weight)), attBias = p.value(fullAtt.bias!)[0]
        x.withUnsafeMutableBufferPointer { xb in
            let xp = xb.baseAddress!
            tokens.withUnsafeBufferPointer { embedding.forward(rows: k, tokens: $0.baseAddress!, into: xp, ldy: nX, p) }
            images.projected.withUnsafeBufferPointer { e in
                images.features.withUnsafeBufferPointer { f in
                    att2.withUnsafeBufferPointer { a2 in
                        gate.withUnsafeMutableBufferPointer { gb in
                            alpha.withUnsafeMutableBufferPointer { ab in
                                context.withUnsafeMutableBufferPointer { cb in
                                    let (ep, fp, a2p, g, al, z) = (e.baseAddress!, f.baseAddress!, a2.baseAddress!,
                                                                   gb.baseAddress!, ab.baseAddress!, cb.baseAddress!)
                                    func gated(_ r: Int) {
                                        let gr = g + r * gw, zr = z + r * nD, xr = xp + r * nX + nE
                                        AttentionKernels.sigmoid(gw, gr)
                                        if gw == nD { for d in 0..<nD { xr[d] = gr[d] * zr[d] } }
                                        else { let s = gr[0]; for d in 0..<nD { xr[d] = s * zr[d] } }
                                    }
                                    let parts = Threads.count
                                    if k == 1 && parts > 1 {
                                        // One row (greedy, one image): split its scores over pixels and its
                                        // context over D instead of leaving a core idle; the same sums.
                                        let image = imageOfRow?[0] ?? 0
                                        let (e, f) = (ep + image * nL * nA, fp + image * nL * nD)
                                        parallelFor(parts) { q in
                                            AttentionKernels.scores(nL * q / parts ..< nL * (q + 1) / parts, attentionDim: nA,
                                                                    tanh: tanhAttention, encAtt: e, att2: a2p, w: w, bias: attBias,
                                                                    alpha: al)
                                        }
                                        Kernels.softmax(nL, al)
                                        parallelFor(parts) { q in
                                            AttentionKernels.weightedSum(pixels: nL, encoderDim: nD,
                                                                         dims: nD * q / parts / 8 * 8 ..< (q == parts - 1 ? nD : nD * (q + 1) / parts / 8 * 8),
                                                                         features: f, alpha: al, context: z)
                                        }
                                        gated(0)
                                    } else {
                                        parallelFor(k) { r in
                                            let image = imageOfRow?[r] ?? r
                                            AttentionKernels.forwardRow(
                                                pixels: nL, attentionDim: nA, encoderDim: nD, tanh: tanhAttention,
                                                encAtt: ep + image * nL * nA, att2: a2p + r * nA, w: w, bias: attBias,
                                                features: fp + image * nL * nD, alpha: al + r * nL, context: z + r * nD)
                                            gated(r)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            pre.withUnsafeMutableBufferPointer {
                RowGEMM.linear(m: k, n: nG, k: nX, x: xp, ldx: nX, w: p.value(lstm.weightIH),
                               half: half?.weights(lstm.weightIH), bias: lstm.biasIH.map { UnsafePointer(p.value($0)) },
                               y: $0.baseAddress!, ldy: nG, accumulate: true)
            }
        }
        pre.withUnsafeMutableBufferPointer { g in
            state.c.withUnsafeBufferPointer { cp in
                tanhC.withUnsafeMutableBufferPointer { tc in
                    cell.withUnsafeMutableBufferPointer { cb in
                        h.withUnsafeMutableBufferPointer { hb in
                            LSTMCell.pointwiseForward(rows: k, hidden: nH, gates: g.baseAddress!, previousCell: cp.baseAddress!,
                                                      cell: cb.baseAddress!, tanhCell: tc.baseAddress!, hidden: hb.baseAddress!)
                        }
                    }
                }
            }
        }
        return (alpha, DecoderState(h: h, c: cell))
    }
}
