import Foundation
import NN
import TensorCore
import CaptionSupport
import CaptionData

/// The result of a teacher-forced forward pass, the input of `AttentionDecoder.backward`.
///
/// Like the tutorial, the decoder internally sorts the captions by decreasing length and runs step t only for the
/// `stepRows[t]` captions whose decode length (caption length − 1) exceeds t. Step t's rows are stored packed
/// at rows `stepOffsets[t] ..< stepOffsets[t] + stepRows[t]`, which is exactly the row order of PyTorch's
/// `pack_padded_sequence(scores, decode_lengths, batch_first=True).data`.
public struct DecoderForward {
    /// B, the number of captions.
    public let batch: Int
    /// L, annotation vectors per image.
    public let pixels: Int
    /// `order[i]` is the caller's index of the caption at sorted position i.
    public let order: [Int]
    /// Caption length − 1 per caption, in the caller's order.
    public let decodeLengths: [Int]
    /// T = the longest decode length.
    public let steps: Int
    /// Number of captions still decoding at each step.
    public let stepRows: [Int]
    /// First packed row of each step.
    public let stepOffsets: [Int]
    /// N = Σ decode lengths: the number of predicted (and scored) tokens.
    public let tokenCount: Int
    /// Packed input words (`captions[b][t]`) and targets (`captions[b][t + 1]`).
    public let inputTokens: [Int]
    /// N: the packed targets (`captions[b][t + 1]`), the words the scores are trained to predict.
    public let targetTokens: [Int]
    let dropoutActive: Bool
    let workspace: DecoderWorkspace
    let generation: Int
    let vocabSize: Int

    /// The scores of all valid steps (N×V), in `pack_padded_sequence` order.
    public var packedScores: Tensor {
        let ws = workspace, n = tokenCount * vocabSize
        precondition(ws.generation == generation, "DecoderForward used after its workspace ran another forward")
        return Tensor(shape: [tokenCount, vocabSize], storage: Array(UnsafeBufferPointer(start: ws.buffer(.logits, n), count: n)))
    }

    /// Scores as B×T×V in the caller's caption order, zero past each caption's decode length.
    public func scores() -> Tensor { unpack(.logits, width: vocabSize) }

    /// Attention weights α as B×T×L in the caller's order, zero past each caption's decode length.
    public func alphas() -> Tensor { unpack(.alpha, width: pixels) }

    private func unpack(_ slot: DecoderWorkspace.Slot, width: Int) -> Tensor {
        precondition(workspace.generation == generation, "DecoderForward used after its workspace ran another forward")
        let src = workspace.buffer(slot, tokenCount * width)
        var out = Tensor(shape: [batch, steps, width])
        out.withUnsafeMutableBufferPointer { o in
            for t in 0..<steps {
                for i in 0..<stepRows[t] {
                    (o.baseAddress! + (order[i] * steps + t) * width)
                        .update(from: src + (stepOffsets[t] + i) * width, count: width)
                }
            }
        }
        return out
    }
}

/// The tutorial's training loss and its parts.
public struct DecoderLoss: Equatable, Sendable {
    /// crossEntropy + alphaC · attentionPenalty (+ supervision weight · attentionSupervision)
    public let total: Float
    /// Mean over all predicted tokens of −log p(target).
    public let crossEntropy: Float
    /// Doubly stochastic regularisation ((1 − Σ_t α_t)²).mean() over captions and pixels (before alpha_c).
    public let attentionPenalty: Float
    /// Mean over the supervised words of −log Σ_{l ∈ target cells} α_{t,l} (before its weight; 0 without
    /// supervision).
    public var attentionSupervision: Float = 0
}

/// Attention supervision ("attention correctness", Liu et al. 2017): for some predicted words, the grid cells
/// where the thing they name lies, and the loss `weight · mean over those words of −log Σ_{l ∈ cells} α_{t,l}`,
/// which pulls each such word's attention mass onto its cells. Synthetic sets know their objects' boxes, so
/// `caption train --attention-supervision` can use it; real captions have no such targets.
public struct AttentionSupervision: Sendable {
    /// Multiplier of the supervision loss added to the caption loss (0 switches it off).
    public var weight: Float
    /// `cells[b][t]`: the cells for the word predicted at step t of caption b (the caller's caption order);
    /// empty, or t past the end: that word is not supervised.
    public var cells: [[[Int]]]

    /// Supervision with `weight` over the target `cells[b][t]` (flat indices into the L-cell annotation grid).
    public init(weight: Float, cells: [[[Int]]]) {
        self.weight = weight
        self.cells = cells
    }
}

extension AttentionDecoder {
    /// Teacher-forced forward pass over a batch.
    ///
    /// - `features`: annotation vectors a_1..a_L of each caption's image, B×L×D (any shape B×…×D, e.g. the
    ///   encoder's B×14×14×D, is read as B×L×D).
    /// - `captions[b]`: word indices `<start> w_1 … <end>` (possibly padded); `lengths[b]` counts the real ones
    ///   (the tutorial's `caplens`), so the decoder predicts `lengths[b] − 1` words.
    /// - `training`: applies dropout before `fc`, drawing the mask from `rng`.
    ///
    /// - `sampling`: scheduled sampling (see `TokenSampling`): each input after the first is the ground truth with
    ///   probability ε, else the model's word from the previous step's scores; `inputTokens` records what was fed.
    ///   nil (or ε ≥ 1) is plain teacher forcing.
    ///
    /// All activations stay in `workspace` for `backward`. Per step the matrix work is one SGEMM per layer over
    /// the captions still decoding; `encoder_att(a)`, the word-embedding half of the LSTM input projection and
    /// `fc` run once for the whole batch (with scheduled sampling, `fc` and a replaced step's embedding half run
    /// per step).
    public func forward(features: Tensor, captions: [[Int]], lengths: [Int], _ p: Parameters,
                        workspace ws: DecoderWorkspace, training: Bool, rng: inout RNG,
                        sampling: TokenSampling? = nil) -> DecoderForward {
        let c = config
        let batch = captions.count
        precondition(batch > 0 && lengths.count == batch, "decoder: \(captions.count) captions, \(lengths.count) lengths")
        precondition(features.rank >= 2 && features.shape[0] == batch && features.shape.last == c.encoderDim,
                     "decoder: features \(features.shape), expected \(batch)×L×\(c.encoderDim)")
        let (nL, nD, nA, nE, nH, nV, gw) = (features.count / (batch * c.encoderDim), c.encoderDim, c.attentionDim,
                                            c.embedDim, c.decoderDim, c.vocabSize, c.gateWidth)
        let nG = 4 * nH, nX = nE + nD
        let tanhAttention = c.attentionActivation == .tanh

        // Plan: sort by decode length (stable, descending) and pack the steps.
        let decodeLengths = lengths.map { max($0 - 1, 0) }
        for b in 0..<batch {
            precondition(lengths[b] <= captions[b].count, "decoder: caption \(b) has \(captions[b].count) tokens, length \(lengths[b])")
        }
        let order = (0..<batch).sorted { decodeLengths[$0] > decodeLengths[$1] || (decodeLengths[$0] == decodeLengths[$1] && $0 < $1) }
        let steps = decodeLengths.max() ?? 0
        var stepRows = [Int](), stepOffsets = [Int](), inputs = [Int](), targets = [Int]()
        for t in 0..<steps {
            let rows = order.prefix { decodeLengths[$0] > t }.count
            stepOffsets.append(inputs.count)
            stepRows.append(rows)
            for i in 0..<rows {
                inputs.append(captions[order[i]][t])
                targets.append(captions[order[i]][t + 1])
            }
        }
        let n = inputs.count

        ws.generation += 1
        let feat = ws.buffer(.features, batch * nL * nD), encAtt = ws.buffer(.encAtt, batch * nL * nA)
        let mean = ws.buffer(.mean, batch * nD), h0 = ws.buffer(.h0, batch * nH), c0 = ws.buffer(.c0, batch * nH)
        let lstmInput = ws.buffer(.lstmInput, n * nX), gates = ws.buffer(.gates, n * nG)
        let hPrev = ws.buffer(.hPrev, n * nH), cPrev = ws.buffer(.cPrev, n * nH), cNext = ws.buffer(.cNext, batch * nH)
        let tanhC = ws.buffer(.tanhC, n * nH), hOut = ws.buffer(.hOut, n * nH)
        let att2 = ws.buffer(.att2, n * nA), alpha = ws.buffer(.alpha, n * nL), context = ws.buffer(.context, n * nD)
        let gate = ws.buffer(.gate, n * gw), logits = ws.buffer(.logits, n * nV)

        // Annotations in sorted order, their attention projection (once per batch) and mean.
        features.withUnsafeBufferPointer { f in
            for i in 0..<batch { (feat + i * nL * nD).update(from: f.baseAddress! + order[i] * nL * nD, count: nL * nD) }
        }
        encoderAtt.forward(rows: batch * nL, feat, into: encAtt, p)
        for b in 0..<batch {
            let m = mean + b * nD
            m.update(repeating: 0, count: nD)
            for l in 0..<nL { let row = feat + (b * nL + l) * nD; for d in 0..<nD { m[d] += row[d] } }
            Kernels.scale(nD, 1 / Float(nL), m)
        }
        initH.forward(rows: batch, mean, into: h0, p)
        initC.forward(rows: batch, mean, into: c0, p)

        // LSTM input rows are [embedding(y_t) ; gate ⊙ z]; the embedding half of x·W_ihᵀ (+ both biases) for all
        // steps in one SGEMM, the context half per step.
        let wIH = UnsafePointer(p.value(decodeStep.weightIH)), wHH = UnsafePointer(p.value(decodeStep.weightHH))
        inputs.withUnsafeBufferPointer { embedding.forward(rows: n, tokens: $0.baseAddress!, into: lstmInput, ldy: nX, p) }
        let bIH = p.value(decodeStep.biasIH!), bHH = p.value(decodeStep.biasHH!)
        for r in 0..<n { let g = gates + r * nG; for j in 0..<nG { g[j] = bIH[j] + bHH[j] } }
        sgemm(transB: true, m: n, n: nG, k: nE, a: lstmInput, lda: nX, b: wIH, ldb: nX, beta: 1, c: gates)

        // Dropout mask for fc's input, drawn before the loop so scheduled sampling can score each step as it goes.
        let dropoutActive = dropout.isActive(training: training)
        let mask = dropoutActive ? ws.buffer(.dropMask, n * nH) : nil, hDrop = dropoutActive ? ws.buffer(.hDrop, n * nH) : nil
        if let mask { dropout.drawMask(count: n * nH, into: mask, rng: &rng) }
        let fcInput = UnsafePointer(hDrop ?? hOut)
        let sampling = sampling.flatMap { $0.isTeacherForcing ? nil : $0 }

        let w = UnsafePointer(p.value(fullAtt.weight)), attBias = p.value(fullAtt.bias!)[0]
        for t in 0..<steps {
            let bt = stepRows[t], off = stepOffsets[t]
            if let sampling, t > 0 {
                // A coin per caption: the ground truth, or the model's word from step t − 1's scores (row i of step
                // t is row i of step t − 1). A replaced step recomputes its embedding half of the gates.
                var replaced = false
                for i in 0..<bt where !sampling.feedsGroundTruth(&rng) {
                    let token = sampling.modelToken(logits + (stepOffsets[t - 1] + i) * nV, count: nV, rng: &rng)
                    if token != inputs[off + i] { inputs[off + i] = token; replaced = true }
                }
                if replaced {
                    inputs.withUnsafeBufferPointer {
                        embedding.forward(rows: bt, tokens: $0.baseAddress! + off, into: lstmInput + off * nX, ldy: nX, p)
                    }
                    for r in off..<(off + bt) { let g = gates + r * nG; for j in 0..<nG { g[j] = bIH[j] + bHH[j] } }
                    sgemm(transB: true, m: bt, n: nG, k: nE, a: lstmInput + off * nX, lda: nX, b: wIH, ldb: nX,
                          beta: 1, c: gates + off * nG)
                }
            }
            let hp = hPrev + off * nH, cp = cPrev + off * nH
            if t == 0 {
                hp.update(from: h0, count: bt * nH); cp.update(from: c0, count: bt * nH)
            } else {
                hp.update(from: hOut + stepOffsets[t - 1] * nH, count: bt * nH); cp.update(from: cNext, count: bt * nH)
            }
            decoderAtt.forward(rows: bt, hp, into: att2 + off * nA, p)     // bt×A
            fBeta.forward(rows: bt, hp, into: gate + off * gw, p)          // bt×gw, pre-sigmoid
            parallelFor(bt) { b in
                let row = off + b
                AttentionKernels.forwardRow(pixels: nL, attentionDim: nA, encoderDim: nD, tanh: tanhAttention,
                                            encAtt: encAtt + b * nL * nA, att2: att2 + row * nA, w: w, bias: attBias,
                                            features: feat + b * nL * nD, alpha: alpha + row * nL,
                                            context: context + row * nD)
                let g = gate + row * gw, z = context + row * nD, x = lstmInput + row * nX + nE
                AttentionKernels.sigmoid(gw, g)
                if gw == nD { for d in 0..<nD { x[d] = g[d] * z[d] } } else { let s = g[0]; for d in 0..<nD { x[d] = s * z[d] } }
            }
            // gates += (gate ⊙ z)·W_ih[:, E:]ᵀ + h·W_hhᵀ     (bt×D · D×4H, bt×H · H×4H)
            sgemm(transB: true, m: bt, n: nG, k: nD, a: lstmInput + off * nX + nE, lda: nX, b: wIH + nE, ldb: nX,
                  beta: 1, c: gates + off * nG)
            sgemm(transB: true, m: bt, n: nG, k: nH, a: hp, b: wHH, beta: 1, c: gates + off * nG)
            LSTMCell.pointwiseForward(rows: bt, hidden: nH, gates: gates + off * nG, previousCell: cp, cell: cNext,
                                      tanhCell: tanhC + off * nH, hidden: hOut + off * nH)
            if sampling != nil {
                // This step's scores now: the next step may feed the model's word.
                if let mask, let hDrop { Kernels.mul(bt * nH, hOut + off * nH, mask + off * nH, hDrop + off * nH) }
                fc.forward(rows: bt, fcInput + off * nH, into: logits + off * nV, p)
            }
        }

        // scores = fc(dropout(h)) for all N rows at once.
        if sampling == nil {
            if let mask, let hDrop { Kernels.mul(n * nH, hOut, mask, hDrop) }
            fc.forward(rows: n, fcInput, into: logits, p)
        }

        return DecoderForward(batch: batch, pixels: nL, order: order, decodeLengths: decodeLengths, steps: steps,
                              stepRows: stepRows, stepOffsets: stepOffsets, tokenCount: n, inputTokens: inputs,
                              targetTokens: targets, dropoutActive: dropoutActive, workspace: ws,
                              generation: ws.generation, vocabSize: nV)
    }

    /// The tutorial's loss for a forward pass, without gradients (validation).
    public func loss(_ fwd: DecoderForward, alphaC: Float) -> DecoderLoss {
        precondition(fwd.workspace.generation == fwd.generation, "DecoderForward used after its workspace ran another forward")
        let n = fwd.tokenCount
        let sum = fwd.targetTokens.withUnsafeBufferPointer {
            SoftmaxCrossEntropy.forwardBackward(rows: n, classes: config.vocabSize,
                                                logits: fwd.workspace.buffer(.logits, n * config.vocabSize),
                                                targets: $0.baseAddress!, dLogits: nil, gradientScale: 0)
        }
        let ce = Float(sum / Double(max(n, 1)))
        let penalty = attentionPenalty(fwd, alphaC: alphaC)
        return DecoderLoss(total: ce + alphaC * penalty, crossEntropy: ce, attentionPenalty: penalty)
    }

    /// ((1 − Σ_t α_t)²).mean() over B×L; leaves dPenalty/dα_t (identical for every t of a caption) in `.alphaSum`.
    private func attentionPenalty(_ fwd: DecoderForward, alphaC: Float) -> Float {
        let (batch, nL) = (fwd.batch, fwd.pixels)
        let alpha = fwd.workspace.buffer(.alpha, fwd.tokenCount * nL), sums = fwd.workspace.buffer(.alphaSum, batch * nL)
        sums.update(repeating: 0, count: batch * nL)
        for t in 0..<fwd.steps {
            Kernels.axpy(fwd.stepRows[t] * nL, 1, alpha + fwd.stepOffsets[t] * nL, sums)
        }
        var penalty = 0.0
        let scale = -2 * alphaC / Float(batch * nL)
        for i in 0..<(batch * nL) {
            let r = 1 - sums[i]
            penalty += Double(r * r)
            sums[i] = scale * r
        }
        return Float(penalty / Double(batch * nL))
    }

    /// The supervision term (mean −log of each supervised word's α mass on its cells) and, in `rows` (N×L,
    /// packed order), every row's extra dL/dα: the penalty's (same for all steps of a caption) plus
    /// `−weight / (count · mass)` on the row's target cells.
    private func supervise(_ fwd: DecoderForward, _ supervision: AttentionSupervision,
                           penaltyGradient: UnsafePointer<Float>, into rows: UnsafeMutablePointer<Float>) -> Float {
        let nL = fwd.pixels
        let alpha = fwd.workspace.buffer(.alpha, fwd.tokenCount * nL)
        precondition(supervision.cells.count == fwd.batch,
                     "attention supervision: \(supervision.cells.count) captions, expected \(fwd.batch)")
        func cells(_ i: Int, _ t: Int) -> [Int] {
            let perStep = supervision.cells[fwd.order[i]]
            return t < perStep.count ? perStep[t] : []
        }
        var count = 0
        for t in 0..<fwd.steps { for i in 0..<fwd.stepRows[t] where !cells(i, t).isEmpty { count += 1 } }
        var total = 0.0
        for t in 0..<fwd.steps {
            for i in 0..<fwd.stepRows[t] {
                let row = fwd.stepOffsets[t] + i, a = alpha + row * nL, d = rows + row * nL
                d.update(from: penaltyGradient + i * nL, count: nL)
                let target = cells(i, t)
                guard !target.isEmpty else { continue }
                var mass: Float = 0
                for l in target { precondition(l >= 0 && l < nL, "attention supervision: cell \(l) outside 0..<\(nL)"); mass += a[l] }
                mass = max(mass, 1e-12)
                total -= Double(log(mass))
                let g = -supervision.weight / (Float(count) * mass)
                for l in target { d[l] += g }
            }
        }
        return count > 0 ? Float(total / Double(count)) : 0
    }

    /// Backward of the tutorial's loss `CE(packed scores, packed targets) + alphaC · ((1 − Σ_t α_t)²).mean()`.
    ///
    /// Accumulates (+=) the gradient of every decoder parameter into `p.grads` and, when `featureGradient`,
    /// returns dLoss/d(features) (B×L×D, the caller's order) for fine-tuning the encoder. Per-step work is only
    /// what the recurrence forces; the weight gradients of decode_step, f_beta, decoder_att, embedding, fc and
    /// encoder_att are each one SGEMM over all N tokens (or all B·L annotations) after the loop.
    ///
    /// `supervision` adds its term to the loss and its dL/dα to the attention rows it names.
    public func backward(_ fwd: DecoderForward, alphaC: Float, _ p: Parameters, featureGradient: Bool = true,
                         supervision: AttentionSupervision? = nil) -> (loss: DecoderLoss, dFeatures: Tensor?) {
        let ws = fwd.workspace
        precondition(ws.generation == fwd.generation, "DecoderForward used after its workspace ran another forward")
        let c = config
        let (batch, nL, nD, nA, nE, nH, nV, gw) = (fwd.batch, fwd.pixels, c.encoderDim, c.attentionDim, c.embedDim,
                                                   c.decoderDim, c.vocabSize, c.gateWidth)
        let n = fwd.tokenCount, nG = 4 * nH, nX = nE + nD
        let tanhAttention = c.attentionActivation == .tanh

        let feat = ws.buffer(.features, batch * nL * nD), encAtt = ws.buffer(.encAtt, batch * nL * nA)
        let mean = ws.buffer(.mean, batch * nD)
        let lstmInput = ws.buffer(.lstmInput, n * nX), gates = ws.buffer(.gates, n * nG)
        let hPrev = ws.buffer(.hPrev, n * nH), cPrev = ws.buffer(.cPrev, n * nH), tanhC = ws.buffer(.tanhC, n * nH)
        let hOut = ws.buffer(.hOut, n * nH)
        let att2 = ws.buffer(.att2, n * nA), alpha = ws.buffer(.alpha, n * nL), context = ws.buffer(.context, n * nD)
        let gate = ws.buffer(.gate, n * gw), logits = ws.buffer(.logits, n * nV)
        let dLogits = ws.buffer(.dLogits, n * nV), dHout = ws.buffer(.dHout, n * nH), dGates = ws.buffer(.dGates, n * nG)
        let dAtt2 = ws.buffer(.dAtt2, n * nA), dGatePre = ws.buffer(.dGatePre, n * gw)
        let dContext = ws.buffer(.dContext, n * nD), dEncAtt = ws.buffer(.dEncAtt, batch * nL * nA)
        let dh = ws.buffer(.dh, batch * nH), dc = ws.buffer(.dc, batch * nH), dhNew = ws.buffer(.dhNew, batch * nH)
        let dGated = ws.buffer(.dGated, batch * nD), dAlphaScratch = ws.buffer(.dAlphaScratch, batch * nL)
        let dWPartial = ws.buffer(.dWFullPartial, batch * nA), dBiasPartial = ws.buffer(.dBiasPartial, batch)

        // Loss: cross-entropy over the packed tokens (mean) and the attention penalty; dL/dscores, dL/dα_penalty.
        let ceSum = fwd.targetTokens.withUnsafeBufferPointer {
            SoftmaxCrossEntropy.forwardBackward(rows: n, classes: nV, logits: logits, targets: $0.baseAddress!,
                                                dLogits: dLogits, gradientScale: 1 / Float(max(n, 1)))
        }
        let ce = Float(ceSum / Double(max(n, 1)))
        let penalty = attentionPenalty(fwd, alphaC: alphaC)
        let dPenalty = UnsafePointer(ws.buffer(.alphaSum, batch * nL))
        // With supervision every row gets its own extra dL/dα (the penalty's, plus the supervision's).
        var supervisionLoss: Float = 0
        var dAlphaRows: UnsafeMutablePointer<Float>?
        if let supervision, supervision.weight > 0 {
            let rows = ws.buffer(.dAlphaRows, n * nL)
            supervisionLoss = supervise(fwd, supervision, penaltyGradient: dPenalty, into: rows)
            dAlphaRows = rows
        }

        // fc: dW += dScoresᵀ·dropout(h); dh_out = dScores·W ⊙ mask   (N×V · V×H)
        let fcInput = UnsafePointer(fwd.dropoutActive ? ws.buffer(.hDrop, n * nH) : hOut)
        fc.accumulateGradients(rows: n, dy: dLogits, input: fcInput, p)
        fc.backwardInput(rows: n, dy: dLogits, into: dHout, p)
        if fwd.dropoutActive { Kernels.mul(n * nH, dHout, ws.buffer(.dropMask, n * nH), dHout) }

        dEncAtt.update(repeating: 0, count: batch * nL * nA)
        dWPartial.update(repeating: 0, count: batch * nA)
        dBiasPartial.update(repeating: 0, count: batch)
        dh.update(repeating: 0, count: batch * nH)
        dc.update(repeating: 0, count: batch * nH)
        let wIH = UnsafePointer(p.value(decodeStep.weightIH)), wHH = UnsafePointer(p.value(decodeStep.weightHH))
        let wFBeta = UnsafePointer(p.value(fBeta.weight)), wDecAtt = UnsafePointer(p.value(decoderAtt.weight))
        let w = UnsafePointer(p.value(fullAtt.weight))

        for t in stride(from: fwd.steps - 1, through: 0, by: -1) {
            let bt = fwd.stepRows[t], off = fwd.stepOffsets[t]
            // dh (bt×H) now refers to h_t: add the gradient from this step's scores.
            Kernels.axpy(bt * nH, 1, dHout + off * nH, dh)
            LSTMCell.pointwiseBackward(rows: bt, hidden: nH, gates: gates + off * nG, previousCell: cPrev + off * nH,
                                       tanhCell: tanhC + off * nH, dHidden: dh, dCell: dc,
                                       dGates: dGates + off * nG, dPreviousCell: dc)
            // Gradient wrt h_{t-1} via the LSTM's hidden weights, and wrt the gated context via W_ih[:, E:].
            sgemm(m: bt, n: nH, k: nG, a: dGates + off * nG, b: wHH, c: dhNew)
            sgemm(m: bt, n: nD, k: nG, a: dGates + off * nG, b: wIH + nE, ldb: nX, c: dGated)
            parallelFor(bt) { b in
                let row = off + b
                let g = gate + row * gw, z = context + row * nD, dg = dGated + b * nD, dz = dContext + row * nD
                let dgp = dGatePre + row * gw
                if gw == nD {
                    for d in 0..<nD {
                        dz[d] = dg[d] * g[d]
                        dgp[d] = dg[d] * z[d] * g[d] * (1 - g[d])
                    }
                } else {
                    let s = g[0]
                    for d in 0..<nD { dz[d] = dg[d] * s }
                    dgp[0] = AttentionKernels.dot(nD, dg, z) * s * (1 - s)
                }
                dBiasPartial[b] += AttentionKernels.backwardRow(
                    pixels: nL, attentionDim: nA, encoderDim: nD, tanh: tanhAttention,
                    encAtt: encAtt + b * nL * nA, att2: att2 + row * nA, w: w, features: feat + b * nL * nD,
                    alpha: alpha + row * nL, dContext: dz,
                    extraDAlpha: dAlphaRows.map { UnsafePointer($0 + row * nL) } ?? dPenalty + b * nL,
                    scratch: dAlphaScratch + b * nL, dEncAtt: dEncAtt + b * nL * nA, dAtt2: dAtt2 + row * nA,
                    dW: dWPartial + b * nA)
            }
            // h_{t-1} also fed f_beta and decoder_att.
            sgemm(m: bt, n: nH, k: gw, a: dGatePre + off * gw, b: wFBeta, beta: 1, c: dhNew)
            sgemm(m: bt, n: nH, k: nA, a: dAtt2 + off * nA, b: wDecAtt, beta: 1, c: dhNew)
            dh.update(from: dhNew, count: bt * nH)
        }

        // h_0 = init_h(mean), c_0 = init_c(mean): dh, dc now hold dL/dh_0, dL/dc_0 (zero for unused rows).
        initH.accumulateGradients(rows: batch, dy: dh, input: mean, p)
        initC.accumulateGradients(rows: batch, dy: dc, input: mean, p)

        // decode_step: dW_ih += dGatesᵀ·[emb ; gated z], dW_hh += dGatesᵀ·h_prev, both biases += Σ dGates.
        sgemm(transA: true, m: nG, n: nX, k: n, a: dGates, b: lstmInput, beta: 1, c: p.grad(decodeStep.weightIH))
        sgemm(transA: true, m: nG, n: nH, k: n, a: dGates, b: hPrev, beta: 1, c: p.grad(decodeStep.weightHH))
        Linear.accumulateColumnSums(rows: n, columns: nG, dGates, ld: nG, into: p.grad(decodeStep.biasIH!))
        Linear.accumulateColumnSums(rows: n, columns: nG, dGates, ld: nG, into: p.grad(decodeStep.biasHH!))
        fBeta.accumulateGradients(rows: n, dy: dGatePre, input: hPrev, p)
        decoderAtt.accumulateGradients(rows: n, dy: dAtt2, input: hPrev, p)
        Linear.accumulateColumnSums(rows: batch, columns: nA, dWPartial, ld: nA, into: p.grad(fullAtt.weight))
        p.grad(fullAtt.bias!)[0] += Kernels.sum(batch, dBiasPartial)

        // embedding: d(emb rows) = dGates·W_ih[:, :E], scattered into the rows of the input words.
        let dEmb = ws.buffer(.dEmbedding, n * nE)
        sgemm(m: n, n: nE, k: nG, a: dGates, b: wIH, ldb: nX, c: dEmb)
        fwd.inputTokens.withUnsafeBufferPointer { embedding.accumulateGradients(rows: n, tokens: $0.baseAddress!, dy: dEmb, p) }

        encoderAtt.accumulateGradients(rows: batch * nL, dy: dEncAtt, input: feat, p)

        let supervisionWeight = supervision?.weight ?? 0
        let loss = DecoderLoss(total: ce + alphaC * penalty + supervisionWeight * supervisionLoss, crossEntropy: ce,
                               attentionPenalty: penalty, attentionSupervision: supervisionLoss)
        guard featureGradient else { return (loss, nil) }

        // dL/da_l = encoder_att path + Σ_t α_{t,l} dz_t (context) + (dh_0·W_init_h + dc_0·W_init_c) / L (mean).
        let dFeat = ws.buffer(.dFeatures, batch * nL * nD), dMean = ws.buffer(.dMean, batch * nD)
        encoderAtt.backwardInput(rows: batch * nL, dy: dEncAtt, into: dFeat, p)
        initH.backwardInput(rows: batch, dy: dh, into: dMean, p)
        initC.backwardInput(rows: batch, dy: dc, into: dMean, accumulate: true, p)
        let gA = ws.buffer(.gatherAlpha, fwd.steps * nL), gZ = ws.buffer(.gatherDContext, fwd.steps * nD)
        for i in 0..<batch {
            let f = dFeat + i * nL * nD, m = dMean + i * nD
            Kernels.scale(nD, 1 / Float(nL), m)
            for l in 0..<nL { Kernels.axpy(nD, 1, m, f + l * nD) }
            // Gather caption i's steps (rows off_t + i) and add α_iᵀ·dz_i (L×T_i · T_i×D) in one SGEMM.
            let ti = fwd.decodeLengths[fwd.order[i]]
            for t in 0..<ti {
                let row = fwd.stepOffsets[t] + i
                (gA + t * nL).update(from: alpha + row * nL, count: nL)
                (gZ + t * nD).update(from: dContext + row * nD, count: nD)
            }
            sgemm(transA: true, m: nL, n: nD, k: ti, a: gA, b: gZ, beta: 1, c: f)
        }
        var dFeatures = Tensor(shape: [batch, nL, nD])
        dFeatures.withUnsafeMutableBufferPointer { out in
            for i in 0..<batch {
                (out.baseAddress! + fwd.order[i] * nL * nD).update(from: dFeat + i * nL * nD, count: nL * nD)
            }
        }
        return (loss, dFeatures)
    }
}
