import TensorCore

/// A multi-layer, optionally bidirectional recurrent network over time-major sequences, parameter-compatible
/// with PyTorch's `nn.LSTM` / `nn.GRU` / `nn.RNN` (`batch_first=False`): parameters `<name>.weight_ih_l<k>`,
/// `weight_hh_l<k>`, `bias_ih_l<k>`, `bias_hh_l<k>`, plus `…_reverse` for the backward direction.
/// Layer k > 0 reads the (concatenated) outputs of layer k − 1; `dropout` is applied to those inter-layer
/// outputs in training, as PyTorch's `dropout` argument does.
///
/// States follow PyTorch's `h_0`/`h_n` layout: (numLayers · directions) × B × H, index `layer · directions + dir`.
public struct RecurrentStack<Cell: RecurrentCell> {
    /// Per-step input width `in` of layer 0.
    public let inputSize: Int
    /// Hidden width H of every cell.
    public let hiddenSize: Int
    /// Number of stacked layers (PyTorch's `num_layers`).
    public let numLayers: Int
    /// Whether each layer also runs a reverse-in-time cell.
    public let bidirectional: Bool
    /// `cells[layer][direction]`, direction 0 forward, 1 reverse.
    public let cells: [[Cell]]
    /// Dropout on the outputs of every layer but the last, in training only.
    public let dropout: Dropout

    /// 1, or 2 when bidirectional.
    public var directions: Int { bidirectional ? 2 : 1 }
    /// Per-step output width: directions · H.
    public var outputSize: Int { directions * hiddenSize }

    /// Builds the cells with `makeCell(inputSize, suffix, &layout)`; suffixes are `_l<k>` and `_l<k>_reverse`.
    public init(inputSize: Int, hiddenSize: Int, numLayers: Int = 1, bidirectional: Bool = false, dropout: Float = 0,
                layout: inout ParameterLayout, makeCell: (Int, String, inout ParameterLayout) -> Cell) {
        precondition(numLayers >= 1)
        self.inputSize = inputSize
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.bidirectional = bidirectional
        self.dropout = Dropout(probability: dropout)
        var cells: [[Cell]] = []
        for layer in 0..<numLayers {
            let layerInput = layer == 0 ? inputSize : (bidirectional ? 2 : 1) * hiddenSize
            var directionCells = [makeCell(layerInput, "_l\(layer)", &layout)]
            if bidirectional { directionCells.append(makeCell(layerInput, "_l\(layer)_reverse", &layout)) }
            cells.append(directionCells)
        }
        self.cells = cells
    }

    /// PyTorch's default U(−1/√H, 1/√H) for every cell, layer by layer, forward direction first.
    public func initializePyTorchDefault(_ p: Parameters, rng: inout RNG) {
        for layer in cells { for cell in layer { cell.initializePyTorchDefault(p, rng: &rng) } }
    }

    /// What `backward` needs from `forward`: each layer's sequence caches and the dropout masks.
    public struct Cache {
        enum Layer {
            case unidirectional(SequenceCache<Cell>)
            case bidirectional(Bidirectional<Cell>.Cache)
        }
        let layers: [Layer]
        /// Dropout masks applied to the outputs of layers 0 ..< numLayers − 1.
        let masks: [Dropout.Mask]
    }

    /// Evaluation-mode forward (no dropout). `x`: T×B×in; `initial`: h_0 (and c_0), (layers·dirs)×B×H, nil = zeros.
    public func forward(_ x: Tensor, initial: RecurrentState? = nil, _ p: Parameters)
        -> (output: Tensor, final: RecurrentState, cache: Cache) {
        var rng = RNG(seed: 0)
        return forward(x, initial: initial, training: false, rng: &rng, p)
    }

    /// Returns `output` (T×B×dirs·H, the last layer's), the final states h_n (and c_n), (layers·dirs)×B×H, and
    /// the cache for `backward`. Inter-layer dropout draws from `rng` when `training`.
    public func forward(_ x: Tensor, initial: RecurrentState? = nil, training: Bool, rng: inout RNG,
                        _ p: Parameters) -> (output: Tensor, final: RecurrentState, cache: Cache) {
        let batch = x.shape[1], hs = hiddenSize
        let withCell = cells[0][0].hasCellState
        var final = RecurrentState.zeros(batch: numLayers * directions * batch, hiddenSize: hs, withCell: withCell)
        final.h.reshape([numLayers * directions, batch, hs])
        final.c?.reshape([numLayers * directions, batch, hs])
        var layerCaches: [Cache.Layer] = [], masks: [Dropout.Mask] = []
        var input = x
        for layer in 0..<numLayers {
            let initialOf = { (d: Int) in initial.map { slice($0, index: layer * directions + d, batch: batch) } }
            let output: Tensor
            if bidirectional {
                let pair = Bidirectional(forward: cells[layer][0], reverse: cells[layer][1])
                let r = pair.forward(input, initialForward: initialOf(0), initialReverse: initialOf(1), p)
                store(r.finalForward, into: &final, index: layer * 2)
                store(r.finalReverse, into: &final, index: layer * 2 + 1)
                layerCaches.append(.bidirectional(r.cache))
                output = r.output
            } else {
                let r = cells[layer][0].forwardSequence(input, initialState: initialOf(0), p)
                store(r.final, into: &final, index: layer)
                layerCaches.append(.unidirectional(r.cache))
                output = r.output
            }
            if layer < numLayers - 1 {
                let (dropped, mask) = dropout.forward(output, training: training, rng: &rng)
                masks.append(mask)
                input = dropped
            } else {
                input = output
            }
        }
        return (input, final, Cache(layers: layerCaches, masks: masks))
    }

    /// Accumulates every parameter gradient; returns dx (T×B×in) and the gradient of the initial state
    /// ((layers·dirs)×B×H). `dFinal` is the gradient of h_n (and c_n), nil for none.
    public func backward(_ dOutput: Tensor?, dFinal: RecurrentState? = nil, _ cache: Cache,
                         truncation: TruncatedBPTT? = nil, _ p: Parameters) -> (dx: Tensor, dInitial: RecurrentState) {
        let batch = dOutput?.shape[1] ?? dFinal!.h.shape[1], hs = hiddenSize
        let withCell = cells[0][0].hasCellState
        var dInitial = RecurrentState.zeros(batch: numLayers * directions * batch, hiddenSize: hs, withCell: withCell)
        dInitial.h.reshape([numLayers * directions, batch, hs])
        dInitial.c?.reshape([numLayers * directions, batch, hs])
        var dUpstream = dOutput
        for layer in stride(from: numLayers - 1, through: 0, by: -1) {
            if layer < numLayers - 1, let d = dUpstream { dUpstream = dropout.backward(d, cache.masks[layer]) }
            let dFinalOf = { (d: Int) in dFinal.map { slice($0, index: layer * directions + d, batch: batch) } }
            switch cache.layers[layer] {
            case .bidirectional(let layerCache):
                let pair = Bidirectional(forward: cells[layer][0], reverse: cells[layer][1])
                let r = pair.backward(dUpstream, dFinalForward: dFinalOf(0), dFinalReverse: dFinalOf(1), layerCache,
                                      truncation: truncation, p)
                store(r.dInitialForward, into: &dInitial, index: layer * 2)
                store(r.dInitialReverse, into: &dInitial, index: layer * 2 + 1)
                dUpstream = r.dx
            case .unidirectional(let layerCache):
                let r = cells[layer][0].backwardSequence(dUpstream, dFinal: dFinalOf(0), layerCache,
                                                         truncation: truncation, p)
                store(r.dInitial, into: &dInitial, index: layer)
                dUpstream = r.dx
            }
        }
        return (dUpstream!, dInitial)
    }

    /// State `index` of a (layers·dirs)×B×H stack, as B×H.
    private func slice(_ s: RecurrentState, index: Int, batch: Int) -> RecurrentState {
        let n = batch * hiddenSize
        let part = { (t: Tensor) in Tensor(shape: [batch, hiddenSize], storage: Array(t.storage[(index * n)..<((index + 1) * n)])) }
        return RecurrentState(h: part(s.h), c: s.c.map(part))
    }

    private func store(_ s: RecurrentState, into stack: inout RecurrentState, index: Int) {
        let n = s.h.count
        copyRows(s.h, into: &stack.h, at: index * n)
        if let c = s.c, stack.c != nil { copyRows(c, into: &stack.c!, at: index * n) }
    }
}

/// PyTorch `nn.LSTM` (time-major).
public typealias LSTM = RecurrentStack<LSTMCell>
/// PyTorch `nn.GRU` (time-major).
public typealias GRU = RecurrentStack<GRUCell>
/// PyTorch `nn.RNN` (time-major).
public typealias RNN = RecurrentStack<RNNCell>

extension RecurrentStack where Cell == LSTMCell {
    /// `nn.LSTM(inputSize, hiddenSize, numLayers, bias, bidirectional=…, dropout=…)` with parameters under `name`.
    public init(_ name: String, inputSize: Int, hiddenSize: Int, numLayers: Int = 1, bias: Bool = true,
                bidirectional: Bool = false, dropout: Float = 0, layout: inout ParameterLayout) {
        self.init(inputSize: inputSize, hiddenSize: hiddenSize, numLayers: numLayers, bidirectional: bidirectional,
                  dropout: dropout, layout: &layout) { input, suffix, layout in
            LSTMCell(name, inputSize: input, hiddenSize: hiddenSize, bias: bias, suffix: suffix, layout: &layout)
        }
    }
}

extension RecurrentStack where Cell == GRUCell {
    /// `nn.GRU(inputSize, hiddenSize, numLayers, bias, bidirectional=…, dropout=…)` with parameters under `name`.
    public init(_ name: String, inputSize: Int, hiddenSize: Int, numLayers: Int = 1, bias: Bool = true,
                bidirectional: Bool = false, dropout: Float = 0, layout: inout ParameterLayout) {
        self.init(inputSize: inputSize, hiddenSize: hiddenSize, numLayers: numLayers, bidirectional: bidirectional,
                  dropout: dropout, layout: &layout) { input, suffix, layout in
            GRUCell(name, inputSize: input, hiddenSize: hiddenSize, bias: bias, suffix: suffix, layout: &layout)
        }
    }
}

extension RecurrentStack where Cell == RNNCell {
    /// `nn.RNN(inputSize, hiddenSize, numLayers, nonlinearity, bias, bidirectional=…, dropout=…)`.
    public init(_ name: String, inputSize: Int, hiddenSize: Int, numLayers: Int = 1,
                nonlinearity: RNNCell.Nonlinearity = .tanh, bias: Bool = true,
                bidirectional: Bool = false, dropout: Float = 0, layout: inout ParameterLayout) {
        self.init(inputSize: inputSize, hiddenSize: hiddenSize, numLayers: numLayers, bidirectional: bidirectional,
                  dropout: dropout, layout: &layout) { input, suffix, layout in
            RNNCell(name, inputSize: input, hiddenSize: hiddenSize, nonlinearity: nonlinearity, bias: bias,
                    suffix: suffix, layout: &layout)
        }
    }
}
