import NN
import TensorCore
import TestSupport
import XCTest

/// Shared pieces of the recurrent parity tests (fixtures from scripts/make_recurrent_fixtures.py).
enum RecurrentFixtures {
    static func file(_ name: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(path: Fixtures.path("recurrent/\(name)"))
    }

    /// Parameters of `layout` filled from `<case>.<param name>`.
    static func parameters(_ layout: ParameterLayout, _ f: SafeTensorsFile, case name: String) throws -> Parameters {
        let p = Parameters(layout)
        for param in layout.params { p.set(param, try f.tensor("\(name).\(param.name)")) }
        return p
    }

    /// Every parameter gradient against `<case>.grad.<param name>`.
    static func assertParameterGradients(_ p: Parameters, _ f: SafeTensorsFile, case name: String,
                                         file: StaticString = #filePath, line: UInt = #line) throws {
        for param in p.layout.params {
            assertClose(p.gradTensor(param), try f.tensor("\(name).grad.\(param.name)"), rtol: 1e-4, atol: 1e-4,
                        "\(name) d\(param.name)", file: file, line: line)
        }
    }

    /// Row `t` of a T×B×X tensor as B×X.
    static func step(_ x: Tensor, _ t: Int) -> Tensor {
        let n = x.shape[1] * x.shape[2]
        return Tensor(shape: [x.shape[1], x.shape[2]], storage: Array(x.storage[(t * n)..<((t + 1) * n)]))
    }

    static func close(_ a: Tensor, _ e: Tensor, _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        assertClose(a, e, rtol: 1e-4, atol: 1e-4, label, file: file, line: line)
    }
}

/// nn.LSTMCell / nn.GRUCell / nn.RNNCell unrolled over 11 steps: outputs and all gradients within 1e-4.
final class RecurrentCellTests: XCTestCase {
    typealias F = RecurrentFixtures

    /// Unrolls `cell` step by step through the single-step API (`forward` / `backward`), as a user would.
    private func checkUnrolled<Cell: RecurrentCell>(_ cell: Cell, case name: String, layout: ParameterLayout) throws {
        let f = try F.file("cells.safetensors")
        let p = try F.parameters(layout, f, case: name)
        let x = try f.tensor("\(name).x"), dout = try f.tensor("\(name).dout")
        let steps = x.shape[0]
        var state = RecurrentState(h: try f.tensor("\(name).h0"), c: cell.hasCellState ? try f.tensor("\(name).c0") : nil)
        var caches: [RecurrentStepCache<Cell.StepCache>] = []
        var outputs: [Float] = []
        for t in 0..<steps {
            let (next, cache) = cell.forward(F.step(x, t), state, p)
            outputs += next.h.storage
            caches.append(cache)
            state = next
        }
        F.close(Tensor(shape: x.shape.dropLast() + [cell.hiddenSize], storage: outputs), try f.tensor("\(name).out"), "\(name) out")
        F.close(state.h, try f.tensor("\(name).h_final"), "\(name) h_T")
        if cell.hasCellState { F.close(state.c!, try f.tensor("\(name).c_final"), "\(name) c_T") }

        var dState = RecurrentState(h: try f.tensor("\(name).dh_final"),
                                    c: cell.hasCellState ? try f.tensor("\(name).dc_final") : nil)
        var dx = [Float](repeating: 0, count: x.count)
        let stepCount = x.shape[1] * x.shape[2]
        for t in stride(from: steps - 1, through: 0, by: -1) {
            dState.h = Tensor(shape: dState.h.shape,
                              storage: zip(dState.h.storage, F.step(dout, t).storage).map { $0 + $1 })
            let (dxt, dPrev) = cell.backward(dState, caches[t], p)
            dx.replaceSubrange((t * stepCount)..<((t + 1) * stepCount), with: dxt.storage)
            dState = dPrev
        }
        F.close(Tensor(shape: x.shape, storage: dx), try f.tensor("\(name).dx"), "\(name) dx")
        F.close(dState.h, try f.tensor("\(name).dh0"), "\(name) dh0")
        if cell.hasCellState { F.close(dState.c!, try f.tensor("\(name).dc0"), "\(name) dc0") }
        try F.assertParameterGradients(p, f, case: name)
    }

    /// The same fixture through the sequence runner (batched input projection and weight gradients).
    private func checkSequence<Cell: RecurrentCell>(_ cell: Cell, case name: String, layout: ParameterLayout,
                                                    truncation: TruncatedBPTT? = nil) throws {
        let f = try F.file("cells.safetensors")
        let p = try F.parameters(layout, f, case: name)
        let x = try f.tensor("\(name).x")
        let initial = RecurrentState(h: try f.tensor("\(name).h0"), c: cell.hasCellState ? try f.tensor("\(name).c0") : nil)
        let (out, final, cache) = cell.forwardSequence(x, initialState: initial, p)
        if truncation == nil {
            F.close(out, try f.tensor("\(name).out"), "\(name) out")
            F.close(final.h, try f.tensor("\(name).h_final"), "\(name) h_T")
        }
        let dFinal = RecurrentState(h: try f.tensor("\(name).dh_final"),
                                    c: cell.hasCellState ? try f.tensor("\(name).dc_final") : nil)
        let (dx, dInitial) = cell.backwardSequence(try f.tensor("\(name).dout"), dFinal: dFinal, cache,
                                                   truncation: truncation, p)
        F.close(dx, try f.tensor("\(name).dx"), "\(name) dx")
        F.close(dInitial.h, try f.tensor("\(name).dh0"), "\(name) dh0")
        if cell.hasCellState { F.close(dInitial.c!, try f.tensor("\(name).dc0"), "\(name) dc0") }
        try F.assertParameterGradients(p, f, case: name)
    }

    private func lstm(_ layout: inout ParameterLayout) -> LSTMCell { LSTMCell("", inputSize: 5, hiddenSize: 6, layout: &layout) }
    private func gru(_ layout: inout ParameterLayout) -> GRUCell { GRUCell("", inputSize: 5, hiddenSize: 6, layout: &layout) }
    private func rnn(_ n: RNNCell.Nonlinearity, _ layout: inout ParameterLayout) -> RNNCell {
        RNNCell("", inputSize: 5, hiddenSize: 6, nonlinearity: n, layout: &layout)
    }

    func testLSTMCellUnrolledMatchesPyTorch() throws {
        var layout = ParameterLayout(); let cell = lstm(&layout)
        XCTAssertEqual(layout.params.map(\.name), ["weight_ih", "weight_hh", "bias_ih", "bias_hh"])
        try checkUnrolled(cell, case: "lstm", layout: layout)
    }

    func testGRUCellUnrolledMatchesPyTorch() throws {
        var layout = ParameterLayout(); let cell = gru(&layout)
        try checkUnrolled(cell, case: "gru", layout: layout)
    }

    func testRNNCellTanhUnrolledMatchesPyTorch() throws {
        var layout = ParameterLayout(); let cell = rnn(.tanh, &layout)
        try checkUnrolled(cell, case: "rnn_tanh", layout: layout)
    }

    func testRNNCellReLUUnrolledMatchesPyTorch() throws {
        var layout = ParameterLayout(); let cell = rnn(.relu, &layout)
        try checkUnrolled(cell, case: "rnn_relu", layout: layout)
    }

    func testSequenceRunnerMatchesPyTorch() throws {
        do { var layout = ParameterLayout(); let cell = lstm(&layout); try checkSequence(cell, case: "lstm", layout: layout) }
        do { var layout = ParameterLayout(); let cell = gru(&layout); try checkSequence(cell, case: "gru", layout: layout) }
        do { var layout = ParameterLayout(); let cell = rnn(.tanh, &layout); try checkSequence(cell, case: "rnn_tanh", layout: layout) }
        do { var layout = ParameterLayout(); let cell = rnn(.relu, &layout); try checkSequence(cell, case: "rnn_relu", layout: layout) }
    }

    func testTruncatedBPTTMatchesWindowedPyTorch() throws {
        for (name, k1, k2) in [("tbptt_3_5", 3, 5), ("tbptt_4_4", 4, 4)] {
            var layout = ParameterLayout(); let cell = lstm(&layout)
            try checkSequence(cell, case: name, layout: layout, truncation: TruncatedBPTT(k1: k1, k2: k2))
        }
    }

    /// TBPTT with windows covering the whole sequence is plain BPTT.
    func testTruncationLongerThanSequenceIsFullBPTT() throws {
        var layout = ParameterLayout(); let cell = lstm(&layout)
        try checkSequence(cell, case: "lstm", layout: layout, truncation: TruncatedBPTT(every: 50))
    }
}

/// nn.LSTM / nn.GRU with num_layers = 2 (bidirectional and not), from given h_0 (c_0).
final class RecurrentStackTests: XCTestCase {
    typealias F = RecurrentFixtures

    private func check<Cell: RecurrentCell>(_ stack: RecurrentStack<Cell>, case name: String, layout: ParameterLayout) throws {
        let f = try F.file("stacks.safetensors")
        let p = try F.parameters(layout, f, case: name)
        let withCell = stack.cells[0][0].hasCellState
        let initial = RecurrentState(h: try f.tensor("\(name).h0"), c: withCell ? try f.tensor("\(name).c0") : nil)
        let (out, final, cache) = stack.forward(try f.tensor("\(name).x"), initial: initial, p)
        F.close(out, try f.tensor("\(name).out"), "\(name) out")
        F.close(final.h, try f.tensor("\(name).h_n"), "\(name) h_n")
        if withCell { F.close(final.c!, try f.tensor("\(name).c_n"), "\(name) c_n") }
        let dFinal = RecurrentState(h: try f.tensor("\(name).dh_n"), c: withCell ? try f.tensor("\(name).dc_n") : nil)
        let (dx, dInitial) = stack.backward(try f.tensor("\(name).dout"), dFinal: dFinal, cache, p)
        F.close(dx, try f.tensor("\(name).dx"), "\(name) dx")
        F.close(dInitial.h, try f.tensor("\(name).dh0"), "\(name) dh0")
        if withCell { F.close(dInitial.c!, try f.tensor("\(name).dc0"), "\(name) dc0") }
        try F.assertParameterGradients(p, f, case: name)
    }

    func testBidirectionalTwoLayerLSTMMatchesPyTorch() throws {
        var layout = ParameterLayout()
        let lstm = LSTM("", inputSize: 5, hiddenSize: 4, numLayers: 2, bidirectional: true, layout: &layout)
        XCTAssertEqual(layout.params.count, 16)
        XCTAssertNotNil(layout.param(named: "weight_ih_l1_reverse"))
        XCTAssertEqual(layout.param(named: "weight_ih_l1")?.shape, [16, 8])
        try check(lstm, case: "lstm_bi2", layout: layout)
    }

    func testBidirectionalTwoLayerGRUMatchesPyTorch() throws {
        var layout = ParameterLayout()
        let gru = GRU("", inputSize: 5, hiddenSize: 4, numLayers: 2, bidirectional: true, layout: &layout)
        try check(gru, case: "gru_bi2", layout: layout)
    }

    func testTwoLayerLSTMMatchesPyTorch() throws {
        var layout = ParameterLayout()
        let lstm = LSTM("", inputSize: 5, hiddenSize: 4, numLayers: 2, layout: &layout)
        try check(lstm, case: "lstm_2", layout: layout)
    }

    /// Inter-layer dropout is reproducible from the seed, changes the output in training only, and its backward
    /// uses the same mask (checked against a central finite difference of a scalar loss).
    func testInterLayerDropoutIsSeededAndDifferentiable() throws {
        var layout = ParameterLayout()
        let lstm = LSTM("", inputSize: 3, hiddenSize: 4, numLayers: 2, dropout: 0.5, layout: &layout)
        let p = Parameters(layout)
        var rng = RNG(seed: 7)
        lstm.initializePyTorchDefault(p, rng: &rng)
        let x = Tensor.randn([5, 2, 3], rng: &rng)
        var r1 = RNG(seed: 1), r2 = RNG(seed: 1)
        let a = lstm.forward(x, training: true, rng: &r1, p).output
        let b = lstm.forward(x, training: true, rng: &r2, p).output
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, lstm.forward(x, p).output)

        // d/dx0 of Σ output, with the same dropout draw.
        var r3 = RNG(seed: 1)
        let (out, _, cache) = lstm.forward(x, training: true, rng: &r3, p)
        let (dx, _) = lstm.backward(Tensor(shape: out.shape, repeating: 1), cache, p)
        let eps: Float = 1e-2
        for i in [0, 7, 20] {
            var xp = x, xm = x
            xp.storage[i] += eps; xm.storage[i] -= eps
            var rp = RNG(seed: 1), rm = RNG(seed: 1)
            let lp = lstm.forward(xp, training: true, rng: &rp, p).output.storage.reduce(0, +)
            let lm = lstm.forward(xm, training: true, rng: &rm, p).output.storage.reduce(0, +)
            XCTAssertEqual(dx.storage[i], (lp - lm) / (2 * eps), accuracy: 2e-3)
        }
    }
}
