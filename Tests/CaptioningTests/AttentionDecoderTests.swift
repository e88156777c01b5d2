import BatchCaptioning
import CaptionData
import CaptionMetrics
import CaptionSupport
import CaptionTraining
import Captioning
import SyntheticWorld
import NN
import TensorCore
import TestSupport
import XCTest

/// Parity with the tutorial's DecoderWithAttention re-implemented in scripts/make_decoder_fixtures.py
/// (dropout off): scores, α, loss, every parameter gradient and the encoder-output gradient.
final class AttentionDecoderTests: XCTestCase {
    struct Case {
        let decoder: AttentionDecoder
        let p: Parameters
        let f: SafeTensorsFile
        let name: String
        let features: Tensor
        let captions: [[Int]]
        let lengths: [Int]

        func tensor(_ field: String) throws -> Tensor { try f.tensor("\(name).\(field)") }

        /// A fixture tensor stored in the tutorial's sorted order (B×…), put back into the caller's order.
        func unsorted(_ field: String) throws -> Tensor {
            let sorted = try tensor(field), order = try f.int64("\(name).sort_ind").map(Int.init)
            let row = sorted.count / sorted.shape[0]
            var out = sorted
            for (i, b) in order.enumerated() {
                out.storage.replaceSubrange((b * row)..<((b + 1) * row), with: sorted.storage[(i * row)..<((i + 1) * row)])
            }
            return out
        }
    }

    static let config = AttentionDecoderConfig(encoderDim: 16, attentionDim: 8, embedDim: 8, decoderDim: 12,
                                               vocabSize: 20, dropout: 0)

    func load(_ name: String, paper: Bool = false) throws -> Case {
        let f = try SafeTensorsFile(path: Fixtures.path("decoder/decoder.safetensors"))
        var config = Self.config
        if paper { config.attentionActivation = .tanh; config.gate = .scalar }
        var layout = ParameterLayout()
        let decoder = AttentionDecoder(config: config, layout: &layout)
        let p = Parameters(layout)
        // Same parameter set as the tutorial's state_dict (each name is looked up below).
        let stateDictCount = f.names.filter { $0.hasPrefix("\(name).grad.") && $0 != "\(name).grad.encoder_out" }.count
        XCTAssertEqual(layout.params.count, stateDictCount)
        for param in layout.params { p.set(param, try f.tensor("\(name).\(param.name)")) }
        let tokens = try f.int64("\(name).encoded_captions").map(Int.init)
        let width = tokens.count / 3
        let captions = (0..<3).map { Array(tokens[($0 * width)..<(($0 + 1) * width)]) }
        let lengths = try f.int64("\(name).caption_lengths").map(Int.init)
        return Case(decoder: decoder, p: p, f: f, name: name, features: try f.tensor("\(name).encoder_out"),
                    captions: captions, lengths: lengths)
    }

    private func checkParity(_ c: Case) throws {
        let ws = DecoderWorkspace()
        var rng = RNG(seed: 0)
        let fwd = c.decoder.forward(features: c.features, captions: c.captions, lengths: c.lengths, c.p,
                                    workspace: ws, training: true, rng: &rng)
        XCTAssertEqual(fwd.tokenCount, c.lengths.map { $0 - 1 }.reduce(0, +))
        assertClose(fwd.scores(), try c.unsorted("scores"), rtol: 1e-4, atol: 1e-5, "\(c.name) scores")
        assertClose(fwd.alphas(), try c.unsorted("alphas"), rtol: 1e-4, atol: 1e-6, "\(c.name) alphas")

        let evalLoss = c.decoder.loss(fwd, alphaC: 1)
        let (loss, dFeatures) = c.decoder.backward(fwd, alphaC: 1, c.p)
        XCTAssertEqual(evalLoss, loss)
        XCTAssertEqual(loss.total, try c.tensor("loss").storage[0], accuracy: 1e-4)
        XCTAssertEqual(loss.crossEntropy, try c.tensor("cross_entropy").storage[0], accuracy: 1e-4)
        XCTAssertEqual(loss.attentionPenalty, try c.tensor("alpha_penalty").storage[0], accuracy: 1e-5)
        for param in c.p.layout.params {
            assertClose(c.p.gradTensor(param), try c.tensor("grad.\(param.name)"), rtol: 1e-4, atol: 1e-6,
                        "\(c.name) d\(param.name)")
        }
        assertClose(dFeatures!, try c.tensor("grad.encoder_out"), rtol: 1e-4, atol: 1e-6, "\(c.name) d encoder_out")
    }

    func testTutorialDecoderMatchesPyTorch() throws { try checkParity(try load("tutorial")) }

    func testPaperVariantMatchesPyTorch() throws { try checkParity(try load("paper", paper: true)) }

    /// `initState` + `step` fed the reference words give the teacher-forced scores and α of every caption.
    func testStepwiseInferenceReproducesTeacherForcing() throws {
        let c = try load("tutorial")
        let scores = try c.unsorted("scores"), alphas = try c.unsorted("alphas")
        let (steps, nV, nL) = (scores.shape[1], scores.shape[2], alphas.shape[2])
        let images = c.decoder.encode(c.features, c.p)
        XCTAssertEqual(images.count, 3)
        XCTAssertEqual(images.pixels, 9)
        var state = c.decoder.initState(images, c.p)
        for t in 0..<steps {
            // Every caption steps as long as the longest one; compare only the valid steps.
            let out = c.decoder.step(tokens: c.captions.map { $0[t] }, state: state, images: images, c.p)
            for b in 0..<3 where t < c.lengths[b] - 1 {
                let expectedScores = Array(scores.storage[((b * steps + t) * nV)..<((b * steps + t + 1) * nV)])
                let expectedAlpha = Array(alphas.storage[((b * steps + t) * nL)..<((b * steps + t + 1) * nL)])
                assertClose(Tensor(shape: [nV], storage: Array(out.logits.storage[(b * nV)..<((b + 1) * nV)])),
                            Tensor(shape: [nV], storage: expectedScores), rtol: 1e-4, atol: 1e-5, "step \(t) caption \(b) logits")
                assertClose(Tensor(shape: [nL], storage: Array(out.alpha.storage[(b * nL)..<((b + 1) * nL)])),
                            Tensor(shape: [nL], storage: expectedAlpha), rtol: 1e-4, atol: 1e-6, "step \(t) caption \(b) alpha")
            }
            state = out.state
        }
    }

    /// Beams share their image through `imageOfRow`; `selecting` repeats and reorders state rows.
    func testBeamRowsShareOneImage() throws {
        let c = try load("tutorial")
        let images = c.decoder.encode(c.features, c.p)
        let state = c.decoder.initState(images, c.p)
        let beams = state.selecting([1, 1, 1])
        let out = c.decoder.step(tokens: [3, 5, 3], state: beams, images: images, imageOfRow: [1, 1, 1], c.p)
        let single = c.decoder.step(tokens: [5], state: state.selecting([1]), images: images, imageOfRow: [1], c.p)
        XCTAssertEqual(Array(out.logits.storage[20..<40]), single.logits.storage)
        XCTAssertEqual(Array(out.logits.storage[0..<20]), Array(out.logits.storage[40..<60]))
        XCTAssertEqual(out.alpha.storage.count, 27)
    }

    /// Gradients accumulate (+=) across backward passes, as the flat gradient buffer's contract requires.
    func testBackwardAccumulates() throws {
        let c = try load("tutorial")
        let ws = DecoderWorkspace()
        var rng = RNG(seed: 0)
        let fwd = c.decoder.forward(features: c.features, captions: c.captions, lengths: c.lengths, c.p,
                                    workspace: ws, training: false, rng: &rng)
        _ = c.decoder.backward(fwd, alphaC: 1, c.p, featureGradient: false)
        let once = Array(UnsafeBufferPointer(start: c.p.grads, count: c.p.count))
        _ = c.decoder.backward(fwd, alphaC: 1, c.p, featureGradient: false)
        let twice = Array(UnsafeBufferPointer(start: c.p.grads, count: c.p.count))
        for i in stride(from: 0, to: once.count, by: 97) { XCTAssertEqual(twice[i], 2 * once[i], accuracy: 1e-6) }
    }

    /// With dropout active the mask comes from the caller's RNG (same seed, same loss) and backward uses it:
    /// central differences of the loss agree with the analytic gradient for parameters and features.
    func testDropoutIsSeededAndGradientsMatchFiniteDifferences() throws {
        let c = try load("tutorial")
        var config = Self.config
        config.dropout = 0.5
        var layout = ParameterLayout()
        let decoder = AttentionDecoder(config: config, layout: &layout)
        let p = Parameters(layout)
        p.values.update(from: c.p.values, count: p.count)
        let ws = DecoderWorkspace()
        func lossAt(_ features: Tensor) -> Float {
            var rng = RNG(seed: 42)
            let fwd = decoder.forward(features: features, captions: c.captions, lengths: c.lengths, p,
                                      workspace: ws, training: true, rng: &rng)
            return decoder.loss(fwd, alphaC: 1).total
        }
        XCTAssertEqual(lossAt(c.features), lossAt(c.features))
        var rng = RNG(seed: 42)
        let fwd = decoder.forward(features: c.features, captions: c.captions, lengths: c.lengths, p,
                                  workspace: ws, training: true, rng: &rng)
        let (_, dFeatures) = decoder.backward(fwd, alphaC: 1, p)
        checkFiniteDifferences(c.features, dFeatures: dFeatures!, p, grads: Array(UnsafeBufferPointer(start: p.grads, count: p.count)),
                               names: ["fc.weight", "decode_step.weight_ih", "attention.encoder_att.weight", "f_beta.bias", "init_c.weight"],
                               lossAt: lossAt)
    }

    /// Central differences (ε = 0.01) of `lossAt` against the analytic gradients: `dFeatures` at a few feature
    /// indices, and `grads` (a copy of the parameter gradients) at the middle element of each named parameter.
    func checkFiniteDifferences(_ features: Tensor, dFeatures: Tensor, _ p: Parameters, grads: [Float], names: [String],
                                lossAt: (Tensor) -> Float, file: StaticString = #filePath, line: UInt = #line) {
        let eps: Float = 1e-2
        for i in [0, 50, 200, 431] {
            var plus = features, minus = features
            plus.storage[i] += eps; minus.storage[i] -= eps
            let numeric = (lossAt(plus) - lossAt(minus)) / (2 * eps)
            XCTAssertEqual(dFeatures.storage[i], numeric, accuracy: 2e-4 + 0.02 * abs(numeric), "feature \(i)", file: file, line: line)
        }
        for name in names {
            let param = p.layout.param(named: name)!
            let i = param.offset + param.count / 2
            let saved = p.values[i]
            p.values[i] = saved + eps
            let lp = lossAt(features)
            p.values[i] = saved - eps
            let lm = lossAt(features)
            p.values[i] = saved
            let numeric = (lp - lm) / (2 * eps)
            XCTAssertEqual(grads[i], numeric, accuracy: 2e-4 + 0.02 * abs(numeric), name, file: file, line: line)
        }
    }

    /// Attention supervision: the loss is the plain loss plus weight · mean(−log Σ_{cells} α) over the supervised
    /// words (checked against α from the forward pass), and its gradients match central differences.
    func testAttentionSupervisionLossAndGradients() throws {
        let c = try load("tutorial")
        let ws = DecoderWorkspace()
        let nL = c.features.count / (c.captions.count * Self.config.encoderDim)
        // Every other word of each caption gets two cells (in the caller's caption order).
        let cells: [[[Int]]] = c.captions.indices.map { b in
            (0..<(c.lengths[b] - 1)).map { t in t % 2 == 0 ? [(b + t) % nL, (b + 3 * t + 1) % nL] : [] }
        }
        let supervision = AttentionSupervision(weight: 0.7, cells: cells)
        func forward(_ features: Tensor) -> DecoderForward {
            var rng = RNG(seed: 0)
            return c.decoder.forward(features: features, captions: c.captions, lengths: c.lengths, c.p,
                                     workspace: ws, training: true, rng: &rng)
        }
        func lossAt(_ features: Tensor) -> Float {
            let loss = c.decoder.backward(forward(features), alphaC: 1, c.p, featureGradient: false, supervision: supervision).loss
            c.p.zeroGrads()
            return loss.total
        }
        c.p.zeroGrads()
        let fwd = forward(c.features)
        let alphas = fwd.alphas(), plain = c.decoder.loss(fwd, alphaC: 1)
        var expected = 0.0, words = 0
        for b in cells.indices {
            for (t, target) in cells[b].enumerated() where !target.isEmpty {
                let mass = target.reduce(Float(0)) { $0 + alphas.storage[(b * fwd.steps + t) * nL + $1] }
                expected -= Double(log(mass)); words += 1
            }
        }
        let (loss, dFeatures) = c.decoder.backward(fwd, alphaC: 1, c.p, supervision: supervision)
        XCTAssertEqual(loss.attentionSupervision, Float(expected / Double(words)), accuracy: 1e-5)
        XCTAssertEqual(loss.total, plain.total + 0.7 * loss.attentionSupervision, accuracy: 1e-5)
        let grads = Array(UnsafeBufferPointer(start: c.p.grads, count: c.p.count))
        c.p.zeroGrads()
        checkFiniteDifferences(c.features, dFeatures: dFeatures!, c.p, grads: grads,
                               names: ["attention.full_att.weight", "attention.decoder_att.weight", "attention.encoder_att.bias",
                                       "init_h.weight"],
                               lossAt: lossAt)
    }
}
