import NN
import TensorCore

/// What a decoder reads at steps k ≥ 1 (it reads nothing at step 0).
enum DecoderFeed {
    /// Its own previous output: σ(logits) for pixels, the prediction itself for features. Inference.
    case free
    /// Training: the ground-truth previous frame `teacher(k)` (B×D rows, the target of step k − 1) with
    /// probability `probability` per sequence and step (scheduled sampling), else its own previous output,
    /// drawn as Bernoulli pixels when `sample`. The fed-back output is a constant (no gradient flows into it).
    case teacher((Int) -> UnsafePointer<Float>, probability: Double, sample: Bool)
}

/// One decoder of the autoencoder: a stack of recurrent cells stepped through time, all layers per step, and
/// a readout H → D on the top layer (PyTorch: an `nn.LSTM` run step by step plus an `nn.Linear` or the
/// convolutional readout).
///
/// Stepping time in the outer loop (unlike `RecurrentStack`, which runs layer after layer) is what lets a
/// conditional decoder read its own previous output. When every input is known up front (teacher forcing,
/// unconditioned decoders) the first layer's input projections of all steps are one SGEMM and so is the
/// readout; the recurrent part is the cells' own `step` / `stepBackward`.
struct FrameDecoder<Cell: RecurrentCell> {
    /// `cells[l]`: layer l; layer 0 reads E (or D) floats when conditional, nothing otherwise.
    let cells: [Cell]
    let readout: FrameReadout
    /// False when the readout is shared with the other decoder (its owner initialises it).
    let ownsReadout: Bool
    let conditional: Bool
    let loss: VideoModelConfig.Loss

    var layers: Int { cells.count }
    var hiddenSize: Int { cells[0].hiddenSize }
    var frameDimension: Int { readout.outFeatures }

    /// Builds `<name>.rnn` (parameters `weight_ih_l<k>` …) and `<name>.readout`, or uses `sharedReadout`.
    init(_ name: String, layers: Int, inputSize: Int, hiddenSize: Int, config: VideoModelConfig, conditional: Bool,
         sharedReadout: FrameReadout? = nil, layout: inout ParameterLayout,
         makeCell: (String, Int, Int, String, inout ParameterLayout) -> Cell) {
        var cells: [Cell] = []
        for l in 0..<layers {
            let input = l == 0 ? (conditional ? inputSize : 0) : hiddenSize
            cells.append(makeCell(name + ".rnn", input, hiddenSize, "_l\(l)", &layout))
        }
        self.cells = cells
        readout = sharedReadout
            ?? FrameReadout(name + ".readout", hiddenSize: hiddenSize, config: config, layout: &layout)
        ownsReadout = sharedReadout == nil
        self.conditional = conditional
        self.loss = config.loss
    }

    func initializePyTorchDefault(_ p: Parameters, rng: inout RNG) {
        for cell in cells { cell.initializePyTorchDefault(p, rng: &rng) }
        if ownsReadout { readout.initializePyTorchDefault(p, rng: &rng) }
    }

    /// Everything `backward` needs from `forward`.
    struct Cache {
        let steps: Int
        let batch: Int
        /// `stepCaches[l][k]`: the cell caches, layer l, step k.
        var stepCaches: [[Cell.StepCache]]
        /// Per layer, K·B × H: the hidden state each step started from.
        var previousHidden: [Tensor]
        /// Per layer l ≥ 1, K·B × H: layer l − 1's output (layer 0's entry is empty).
        var layerInputs: [Tensor]
        /// K·B × H: the top layer's outputs (the readout's input).
        var top: Tensor
        /// (K−1)·B × D: the frames read at steps 1..<K (conditional decoders).
        var inputFrames: Tensor?
        /// (K−1)·B × E: those frames embedded (conditional decoders with an embedding).
        var embedded: Tensor?
        /// The convolutional readout's activations for all K·B rows, when it ran once over all steps.
        var readoutActivations: ConvFrameReadout.Activations?
    }

    /// Runs K steps from the initial states (one B×H state per layer). Writes the logits (pixels) or
    /// predictions (features), K·B × D, step-major, into `logits` (its storage is reused when it has the right
    /// size: every element is overwritten) and returns the cache. `rng` draws scheduled-sampling coins and
    /// Bernoulli frames.
    func forward(initial: [RecurrentState], steps: Int, feed: DecoderFeed, embed: Linear?, into logits: inout Tensor,
                 _ p: Parameters, rng: inout RNG) -> Cache {
        let batch = initial[0].h.shape[0], hs = hiddenSize, g = cells[0].gateRows, d = frameDimension
        let rows = steps * batch
        let inputWidth = embed?.outFeatures ?? d
        if logits.count == rows * d { logits.reshape([rows, d]) } else { logits = Tensor(shape: [rows, d], unsafeUninitialized: { _ in }) }
        var top = Tensor(shape: [rows, hs])
        var previousHidden = (0..<layers).map { _ in Tensor(shape: [rows, hs]) }
        var layerInputs = (0..<layers).map { l in Tensor(shape: l == 0 ? [0] : [rows, hs]) }
        var stepCaches = [[Cell.StepCache]](repeating: [], count: layers)
        for l in 0..<layers { stepCaches[l].reserveCapacity(steps) }

        // Which (step, sequence) inputs are the ground truth; the rest are the decoder's own outputs.
        var useTeacher = [Bool](repeating: false, count: rows)
        var teacher: ((Int) -> UnsafePointer<Float>)? = nil
        var sampleFrames = false
        if conditional, case let .teacher(frames, probability, sample) = feed {
            teacher = frames
            sampleFrames = sample
            for i in batch..<max(rows, batch) { useTeacher[i] = probability >= 1 || rng.uniform() < Float(probability) }
        }
        let readsOwnOutput = conditional && steps > 1 && useTeacher[batch...].contains(false)

        // Layer 0's input projections: b_ih everywhere, plus W_ih·input at steps ≥ 1 of a conditional decoder.
        var projection = Tensor(shape: [rows, g])
        var inputFrames: Tensor? = nil, embedded: Tensor? = nil
        projection.withUnsafeMutableBufferPointer { pr in
            if let bias = cells[0].biasIH {
                for r in 0..<rows { (pr.baseAddress! + r * g).update(from: p.value(bias), count: g) }
            } else {
                pr.update(repeating: 0)
            }
        }
        if conditional && steps > 1 {
            var frames = Tensor(shape: [rows - batch, d])
            if let teacher {
                frames.withUnsafeMutableBufferPointer { fb in
                    for k in 1..<steps {
                        let source = teacher(k)
                        for b in 0..<batch where useTeacher[k * batch + b] {
                            (fb.baseAddress! + ((k - 1) * batch + b) * d).update(from: source + b * d, count: d)
                        }
                    }
                }
            }
            inputFrames = frames
            if embed != nil { embedded = Tensor(shape: [rows - batch, inputWidth]) }
            if !readsOwnOutput {
                projectInputs(fromStep: 1, toStep: steps, batch: batch, frames: &inputFrames!, embedded: &embedded,
                              embed: embed, projection: &projection, p)
            }
        }

        var states = initial
        for k in 0..<steps {
            if readsOwnOutput && k >= 1 {
                // Feed back step k−1's output where the coin said so, then project this step's inputs.
                inputFrames!.withUnsafeMutableBufferPointer { fb in
                    logits.withUnsafeBufferPointer { lb in
                        for b in 0..<batch where !useTeacher[k * batch + b] {
                            let out = fb.baseAddress! + ((k - 1) * batch + b) * d
                            let source = lb.baseAddress! + ((k - 1) * batch + b) * d
                            ownOutput(source, into: out, count: d, sample: sampleFrames, rng: &rng)
                        }
                    }
                }
                projectInputs(fromStep: k, toStep: k + 1, batch: batch, frames: &inputFrames!, embedded: &embedded,
                              embed: embed, projection: &projection, p)
            }
            var x = Tensor(shape: [batch, g], storage: Array(projection.storage[(k * batch * g)..<((k + 1) * batch * g)]))
            for l in 0..<layers {
                if l > 0 {
                    let below = states[l - 1].h
                    copyRows(below, into: &layerInputs[l], at: k * batch * hs)
                    x = cells[l].projectInput(below, p)
                }
                copyRows(states[l].h, into: &previousHidden[l], at: k * batch * hs)
                let (next, cache) = cells[l].step(inputProjection: x, state: states[l], p)
                stepCaches[l].append(cache)
                states[l] = next
            }
            copyRows(states[layers - 1].h, into: &top, at: k * batch * hs)
            if readsOwnOutput {
                top.withUnsafeBufferPointer { tb in
                    logits.withUnsafeMutableBufferPointer { lb in
                        readout.forward(rows: batch, tb.baseAddress! + k * batch * hs, into: lb.baseAddress! + k * batch * d, p)
                    }
                }
            }
        }
        var readoutActivations: ConvFrameReadout.Activations? = nil
        if !readsOwnOutput {
            top.withUnsafeBufferPointer { tb in
                logits.withUnsafeMutableBufferPointer {
                    readoutActivations = readout.forward(rows: rows, tb.baseAddress!, into: $0.baseAddress!, p)
                }
            }
        }
        return Cache(steps: steps, batch: batch, stepCaches: stepCaches, previousHidden: previousHidden,
                     layerInputs: layerInputs, top: top, inputFrames: inputFrames, embedded: embedded,
                     readoutActivations: readoutActivations)
    }

    /// The frame the decoder feeds itself: σ(logit) (or a Bernoulli draw of it) for pixels, the prediction
    /// for features.
    private func ownOutput(_ logits: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int,
                           sample: Bool, rng: inout RNG) {
        switch loss {
        case .mse: out.update(from: logits, count: count)
        case .bce:
            Kernels.sigmoid(count, logits, out)
            if sample { for j in 0..<count { out[j] = rng.uniform() < out[j] ? 1 : 0 } }
        }
    }

    /// Layer-0 input projections of steps `from..<to` (each ≥ 1): embed the frames read at those steps
    /// (when there is an embedding), then add `W_ih · input` to the bias already in `projection`.
    private func projectInputs(fromStep from: Int, toStep to: Int, batch: Int, frames: inout Tensor,
                               embedded: inout Tensor?, embed: Linear?, projection: inout Tensor, _ p: Parameters) {
        let rows = (to - from) * batch, cell = cells[0], g = cell.gateRows
        let firstRow = (from - 1) * batch
        frames.withUnsafeBufferPointer { fb in
            projection.withUnsafeMutableBufferPointer { pr in
                let target = pr.baseAddress! + from * batch * g
                if let embed, embedded != nil {
                    let e = embed.outFeatures
                    embedded!.withUnsafeMutableBufferPointer { eb in
                        embed.forward(rows: rows, fb.baseAddress! + firstRow * embed.inFeatures,
                                      into: eb.baseAddress! + firstRow * e, p)
                        sgemm(transB: true, m: rows, n: g, k: e, a: eb.baseAddress! + firstRow * e,
                              b: p.value(cell.weightIH), beta: 1, c: target)
                    }
                } else {
                    let d = frameDimension
                    sgemm(transB: true, m: rows, n: g, k: d, a: fb.baseAddress! + firstRow * d,
                          b: p.value(cell.weightIH), beta: 1, c: target)
                }
            }
        }
    }

    /// Backpropagates `dLogits` (K·B × D): accumulates the readout's and every cell's parameter gradients and
    /// returns the gradient of each layer's initial state and, for a conditional decoder with an embedding, the
    /// gradient of the embedded inputs ((K−1)·B × E; the caller owns the embedding's backward).
    /// `truncation` is TBPTT(k1, k2) over the decoder's steps with `TruncatedBPTT`'s window semantics, all
    /// layers cut together (as re-running each window from a detached state would); nil is full BPTT.
    func backward(_ dLogits: Tensor, _ cache: Cache, truncation: TruncatedBPTT?, _ p: Parameters)
        -> (dInitial: [RecurrentState], dEmbedded: Tensor?) {
        let (steps, batch, hs, g) = (cache.steps, cache.batch, hiddenSize, cells[0].gateRows)
        let rows = steps * batch
        let withCell = cells[0].hasCellState
        // Readout, all steps at once (linear: dW += dLogitsᵀ·top, db += Σ dLogits, dTop = dLogits·W)
        var dTop = Tensor(shape: [rows, hs])
        dLogits.withUnsafeBufferPointer { dl in
            cache.top.withUnsafeBufferPointer { tb in
                dTop.withUnsafeMutableBufferPointer {
                    readout.backward(rows: rows, dy: dl.baseAddress!, input: tb.baseAddress!,
                                     cached: cache.readoutActivations, into: $0.baseAddress!, p)
                }
            }
        }

        var dInputProjection = (0..<layers).map { _ in Tensor(shape: [rows, g]) }
        var dHiddenProjection = (0..<layers).map { _ in Tensor(shape: [rows, g]) }
        var dInitial = (0..<layers).map { _ in RecurrentState.zeros(batch: batch, hiddenSize: hs, withCell: withCell) }
        let k1 = truncation?.k1 ?? max(steps, 1), k2 = truncation?.k2 ?? max(steps, 1)
        var windowEnd = min(k1, steps), outputsFrom = 0
        while outputsFrom < steps {
            let windowStart = max(windowEnd - k2, 0)
            var dStates = (0..<layers).map { _ in RecurrentState.zeros(batch: batch, hiddenSize: hs, withCell: withCell) }
            for k in stride(from: windowEnd - 1, through: windowStart, by: -1) {
                if k >= outputsFrom { addRows(dTop, from: k * batch * hs, into: &dStates[layers - 1].h) }
                for l in stride(from: layers - 1, through: 0, by: -1) {
                    let (dIn, dHid, dPrevious) = cells[l].stepBackward(dStates[l], cache.stepCaches[l][k], p)
                    addRows(dIn, into: &dInputProjection[l], at: k * batch * g)
                    addRows(dHid, into: &dHiddenProjection[l], at: k * batch * g)
                    if l > 0 {
                        // The gradient reaching layer l−1's output at step k: dIn·W_ih   (B×G · G×H)
                        dIn.withUnsafeBufferPointer { di in
                            dStates[l - 1].h.withUnsafeMutableBufferPointer { dh in
                                sgemm(m: batch, n: hs, k: g, a: di.baseAddress!, b: p.value(cells[l].weightIH),
                                      beta: 1, c: dh.baseAddress!)
                            }
                        }
                    }
                    dStates[l] = dPrevious
                }
            }
            if windowStart == 0 {
                for l in 0..<layers {
                    addRows(dStates[l].h, into: &dInitial[l].h, at: 0)
                    if let c = dStates[l].c, dInitial[l].c != nil { addRows(c, into: &dInitial[l].c!, at: 0) }
                }
            }
            outputsFrom = windowEnd
            windowEnd = min(windowEnd + k1, steps)
        }

        // Weight gradients, one SGEMM per matrix for all steps.
        var dEmbedded: Tensor? = nil
        for l in 0..<layers {
            let cell = cells[l]
            accumulate(dHiddenProjection[l], rows: rows, input: cache.previousHidden[l], weight: cell.weightHH, bias: cell.biasHH, p)
            if l > 0 {
                accumulate(dInputProjection[l], rows: rows, input: cache.layerInputs[l], weight: cell.weightIH, bias: cell.biasIH, p)
                continue
            }
            // Layer 0: the bias saw every step; the weights only steps ≥ 1 of a conditional decoder.
            if let bias = cell.biasIH {
                dInputProjection[0].withUnsafeBufferPointer {
                    Linear.accumulateColumnSums(rows: rows, columns: g, $0.baseAddress!, ld: g, into: p.grad(bias))
                }
            }
            guard conditional, steps > 1, let input = cache.embedded ?? cache.inputFrames else { continue }
            let inputRows = rows - batch, width = cell.inputSize
            dInputProjection[0].withUnsafeBufferPointer { dp in
                let dFrom1 = dp.baseAddress! + batch * g
                input.withUnsafeBufferPointer { xb in
                    sgemm(transA: true, m: g, n: width, k: inputRows, a: dFrom1, b: xb.baseAddress!, beta: 1,
                          c: p.grad(cell.weightIH))
                }
                if cache.embedded != nil {
                    var dx = Tensor(shape: [inputRows, width])
                    dx.withUnsafeMutableBufferPointer {
                        sgemm(m: inputRows, n: width, k: g, a: dFrom1, b: p.value(cell.weightIH), c: $0.baseAddress!)
                    }
                    dEmbedded = dx
                }
            }
        }
        return (dInitial, dEmbedded)
    }

    /// `dW += dᵀ·x`, `db += Σ_rows d`.
    private func accumulate(_ d: Tensor, rows: Int, input x: Tensor, weight: Param, bias: Param?, _ p: Parameters) {
        let g = d.shape[1], width = x.shape[1]
        d.withUnsafeBufferPointer { db in
            x.withUnsafeBufferPointer { xb in
                sgemm(transA: true, m: g, n: width, k: rows, a: db.baseAddress!, b: xb.baseAddress!, beta: 1, c: p.grad(weight))
            }
            if let bias { Linear.accumulateColumnSums(rows: rows, columns: g, db.baseAddress!, ld: g, into: p.grad(bias)) }
        }
    }
}

/// `dst[offset ..< offset + src.count] = src`
@inline(__always) func copyRows(_ src: Tensor, into dst: inout Tensor, at offset: Int) {
    src.withUnsafeBufferPointer { s in
        dst.withUnsafeMutableBufferPointer { (($0.baseAddress! + offset)).update(from: s.baseAddress!, count: s.count) }
    }
}

/// `dst[offset ..< offset + src.count] += src`
@inline(__always) func addRows(_ src: Tensor, into dst: inout Tensor, at offset: Int) {
    src.withUnsafeBufferPointer { s in
        dst.withUnsafeMutableBufferPointer { Kernels.axpy(s.count, 1, s.baseAddress!, $0.baseAddress! + offset) }
    }
}

/// `dst += src[offset ..< offset + dst.count]`
@inline(__always) func addRows(_ src: Tensor, from offset: Int, into dst: inout Tensor) {
    src.withUnsafeBufferPointer { s in
        dst.withUnsafeMutableBufferPointer { Kernels.axpy($0.count, 1, s.baseAddress! + offset, $0.baseAddress!) }
    }
}
