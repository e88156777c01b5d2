@testable import BatchCaptioning
@testable import CaptionData
@testable import CaptionMetrics
@testable import CaptionSupport
@testable import CaptionTraining
@testable import Captioning
@testable import SyntheticWorld
import NN
import TensorCore
import TestSupport
import XCTest

/// Beam search and teacher-forced scoring against the tutorial's `caption_image_beam_search`, re-implemented in
/// scripts/make_captioner_fixtures.py (tiny random decoder, 3 images, k = 1, 3, 5), plus the search's own rules
/// on a hand-made model.
final class BeamSearchTests: XCTestCase {
    struct Fixture {
        let decoder: AttentionDecoder
        let p: Parameters
        let f: SafeTensorsFile
        let vocabulary: Vocabulary
        /// 3×L×D
        let features: Tensor

        func image(_ i: Int) -> Tensor {
            let n = features.count / 3
            return Tensor(shape: [1] + Array(features.shape.dropFirst()), storage: Array(features.storage[(i * n)..<((i + 1) * n)]))
        }
    }

    static func load() throws -> Fixture {
        let f = try SafeTensorsFile(path: Fixtures.path("captioner/search.safetensors"))
        let vocabulary = try Vocabulary.load(from: Fixtures.path("captioner/vocab.json"))
        var layout = ParameterLayout()
        let decoder = AttentionDecoder(config: AttentionDecoderConfig(encoderDim: 16, attentionDim: 8, embedDim: 8, decoderDim: 12,
                                                                      vocabSize: vocabulary.count, dropout: 0),
                                       layout: &layout)
        let p = Parameters(layout)
        for param in layout.params { p.set(param, try f.tensor(param.name)) }
        return Fixture(decoder: decoder, p: p, f: f, vocabulary: vocabulary, features: try f.tensor("encoder_out"))
    }

    /// `screened`: greedy picks its words through an `ArgmaxScreen` (as `Captioner` does for float weights).
    func search(_ fx: Fixture, _ features: Tensor, beam: Int, maxLength: Int = 50, screened: Bool = false) -> [CaptionHypothesis] {
        let model = AttentionStepModel(decoder: fx.decoder, parameters: fx.p, images: fx.decoder.encode(features, fx.p),
                                       screen: screened ? ArgmaxScreen(fx.decoder, fx.p) : nil)
        return BeamSearch(beamSize: beam, maxLength: maxLength)
            .run(model, images: model.images.count, startToken: fx.vocabulary.startIndex, endToken: fx.vocabulary.endIndex)
    }

    func check(_ fx: Fixture, _ h: CaptionHypothesis, beam k: Int, image i: Int, _ label: String) throws {
        let prefix = "beam\(k).image\(i)."
        let seq = try fx.f.int64(prefix + "seq").map(Int.init)
        XCTAssertEqual([fx.vocabulary.startIndex] + h.tokens, seq, "\(label): tokens")
        XCTAssertTrue(h.finished, label)
        XCTAssertEqual(h.logProb, try fx.f.tensor(prefix + "score").storage[0], accuracy: 1e-4, "\(label): score")
        XCTAssertEqual(h.tokenLogProbs.reduce(0, +), h.logProb, accuracy: 1e-4, label)
        let alphas = Tensor(shape: [h.alphas.count, h.alphas.first?.count ?? 0], storage: h.alphas.flatMap { $0 })
        assertClose(alphas, try fx.f.tensor(prefix + "alphas"), rtol: 1e-4, atol: 1e-5, "\(label): alphas")
    }

    func testMatchesTutorialBeamSearchForEachImage() throws {
        let fx = try Self.load()
        XCTAssertGreaterThan(try fx.f.tensor("min_margin").storage[0], 1e-4, "fixture too close to a tie for float32")
        for k in [1, 3, 5] {
            for i in 0..<3 {
                let h = search(fx, fx.image(i), beam: k)
                XCTAssertEqual(h.count, 1)
                try check(fx, h[0], beam: k, image: i, "k=\(k) image \(i)")
            }
        }
    }

    func testImagesSearchedTogetherMatchTutorial() throws {
        let fx = try Self.load()
        for k in [1, 3, 5] {
            let all = search(fx, fx.features, beam: k)
            XCTAssertEqual(all.count, 3)
            for i in 0..<3 { try check(fx, all[i], beam: k, image: i, "batched k=\(k) image \(i)") }
        }
    }

    /// Greedy through the argmax screen (words from half-precision fc plus float recomputation, log-probs from one
    /// product at the end) gives the tutorial's greedy captions too, one image at a time and together.
    func testScreenedGreedyMatchesTutorial() throws {
        let fx = try Self.load()
        XCTAssertNotNil(ArgmaxScreen(fx.decoder, fx.p))
        for i in 0..<3 { try check(fx, search(fx, fx.image(i), beam: 1, screened: true)[0], beam: 1, image: i, "screened image \(i)") }
        let all = search(fx, fx.features, beam: 1, screened: true)
        for i in 0..<3 { try check(fx, all[i], beam: 1, image: i, "screened, batched, image \(i)") }
    }

    /// The screen's word is the argmax of the float logits `step` computes, lowest index on ties: on random rows,
    /// on rows where many words tie or nearly tie (fc rows that are copies, or copies with a one-ulp change), and
    /// on a flat fc (every word a candidate, so the whole row is recomputed). With the portable kernel too.
    func testArgmaxScreenPicksTheFloatArgmax() throws {
        let (nH, nV) = (40, 300)
        var rng = RNG(seed: 11)
        var layout = ParameterLayout()
        let decoder = AttentionDecoder(config: AttentionDecoderConfig(encoderDim: 16, attentionDim: 8, embedDim: 8, decoderDim: nH,
                                                                      vocabSize: nV, dropout: 0), layout: &layout)
        let p = Parameters(layout)
        decoder.initialize(p, rng: &rng)
        let w = p.value(decoder.fc.weight), b = p.value(decoder.fc.bias!)
        for j in 0..<nV { b[j] = rng.uniform(-0.1, 0.1) }
        func check(_ label: String, expectFull: Bool = false) throws {
            let screen = try XCTUnwrap(ArgmaxScreen(decoder, p))
            for rows in [1, 3, 6] {
                let h = Tensor.randn([rows, nH], rng: &rng)
                let logits = decoder.outputLogits(h, p)
                let (words, recomputed) = h.withUnsafeBufferPointer { screen.argmax(rows: rows, $0.baseAddress!, fc: decoder.fc, p) }
                for r in 0..<rows {
                    let row = Array(logits.storage[(r * nV)..<((r + 1) * nV)])
                    XCTAssertEqual(words[r], row.firstIndex(of: row.max()!), "\(label), row \(r) of \(rows)")
                }
                if expectFull { XCTAssertEqual(recomputed, rows * nV, label) } else { XCTAssertLessThan(recomputed, rows * nV / 4, label) }
            }
        }
        for avx2 in [true, false] {
            RowGEMM.allowAVX2(avx2)
            defer { RowGEMM.allowAVX2(true) }
            try check("random, avx2 \(avx2)")
        }
        // Words 10…15 are copies of word 5, words 16…21 copies with one weight one ulp up; equal biases. (Fewer
        // than V/16 candidates, so they are screened, not recomputed in full.)
        for j in 10..<22 {
            (w + j * nH).update(from: w + 5 * nH, count: nH)
            b[j] = b[5]
            if j >= 16 { w[j * nH + j % nH] = w[j * nH + j % nH].nextUp }
        }
        for j in 0..<nV where j != 5 && !(10..<22).contains(j) { b[j] = -10 }  // so that the copies are the best
        try check("copies")
        for j in 0..<nV { (w + j * nH).update(from: w, count: nH); b[j] = 0.5 }
        try check("flat", expectFull: true)
    }

    /// Greedy with and without the screen, several images stepped together, with and without an end token: the
    /// same words, α and finish, and log-probabilities equal up to the final product's summation order.
    func testScreenedGreedyGivesTheGeneralSearchResult() throws {
        var rng = RNG(seed: 5)
        var layout = ParameterLayout()
        let decoder = AttentionDecoder(config: AttentionDecoderConfig(encoderDim: 24, attentionDim: 16, embedDim: 16, decoderDim: 32,
                                                                      vocabSize: 700, dropout: 0), layout: &layout)
        let p = Parameters(layout)
        decoder.initialize(p, rng: &rng)
        let images = decoder.encode(Tensor.uniform([5, 9, 24], 0, 1, rng: &rng), p)
        let screen = try XCTUnwrap(ArgmaxScreen(decoder, p))
        let search = BeamSearch(beamSize: 1, maxLength: 12)
        // End token: image 0's fifth word, so that image 0 finishes early (the others may or may not).
        let endWord = search.run(AttentionStepModel(decoder: decoder, parameters: p, images: images), images: 5, startToken: 0,
                                 endToken: nil)[0].tokens[4]
        var finished = 0
        for end in [nil, endWord] as [Int?] {
            let plain = search.run(AttentionStepModel(decoder: decoder, parameters: p, images: images), images: 5, startToken: 0, endToken: end)
            let screened = search.run(AttentionStepModel(decoder: decoder, parameters: p, images: images, screen: screen),
                                      images: 5, startToken: 0, endToken: end)
            for (a, b) in zip(plain, screened) {
                XCTAssertEqual(b.tokens, a.tokens, "end \(String(describing: end))")
                XCTAssertEqual(b.alphas, a.alphas)
                XCTAssertEqual(b.finished, a.finished)
                XCTAssertEqual(b.tokenLogProbs.count, a.tokenLogProbs.count)
                for (x, y) in zip(b.tokenLogProbs, a.tokenLogProbs) { XCTAssertEqual(x, y, accuracy: 1e-5 * max(1, abs(y))) }
                XCTAssertEqual(b.logProb, a.logProb, accuracy: 1e-5 * max(1, abs(a.logProb)))
                if b.finished { finished += 1 }
            }
        }
        XCTAssertGreaterThan(finished, 0)
    }

    func testTeacherForcedLogProbsMatchPyTorch() throws {
        let fx = try Self.load()
        for i in 0..<3 {
            for j in 0..<2 {
                let name = "score.image\(i).caption\(j)"
                let tokens = try fx.f.int64(name).map(Int.init)
                let lp = fx.decoder.tokenLogProbabilities(tokens, image: fx.decoder.encode(fx.image(i), fx.p), fx.p)
                assertClose(Tensor(shape: [lp.count], storage: lp), try fx.f.tensor(name + ".token_log_probs"),
                            rtol: 1e-5, atol: 2e-6, name)
            }
        }
    }

    func testScoringTheBeamResultGivesItsScore() throws {
        let fx = try Self.load()
        let h = search(fx, fx.image(1), beam: 3)[0]
        let lp = fx.decoder.tokenLogProbabilities([fx.vocabulary.startIndex] + h.tokens, image: fx.decoder.encode(fx.image(1), fx.p), fx.p)
        XCTAssertEqual(lp.count, h.tokens.count)
        for (a, b) in zip(lp, h.tokenLogProbs) { XCTAssertEqual(a, b, accuracy: 1e-5) }
    }

    /// Half-precision step weights: only built when every value is exactly a half, and then the step (every row
    /// count: the kernel's 4/3/2/1-row paths, and SGEMM above its limit) gives exactly the float path's results.
    func testHalfStepWeightsGiveTheFloatResults() throws {
        let fx = try Self.load()
        XCTAssertNil(HalfStepWeights(fx.decoder, fx.p), "random float weights are not halves")
        let p = Parameters(fx.p.layout)
        p.values.update(from: fx.p.values, count: p.count)
        fx.decoder.roundStepMatricesToHalf(p)
        let half = try XCTUnwrap(HalfStepWeights(fx.decoder, p))
        XCTAssertNil(ArgmaxScreen(fx.decoder, p), "fc already exact in half precision: nothing to screen")
        XCTAssertEqual(half.bytes, fx.decoder.stepMatrices.map(\.count).reduce(0, +) * 2)
        let images = fx.decoder.encode(fx.features, p)
        for avx2 in [true, false] {
            RowGEMM.allowAVX2(avx2)
            defer { RowGEMM.allowAVX2(true) }
            var rng = RNG(seed: 3)
            for rows in [1, 2, 3, 5, 7, 13, 40] {
                let tokens = (0..<rows).map { _ in rng.int(below: fx.vocabulary.count) }
                let imageOfRow = (0..<rows).map { _ in rng.int(below: 3) }
                let state = DecoderState(h: Tensor.randn([rows, 12], rng: &rng), c: Tensor.randn([rows, 12], rng: &rng))
                let a = fx.decoder.step(tokens: tokens, state: state, images: images, imageOfRow: imageOfRow, p)
                let b = fx.decoder.step(tokens: tokens, state: state, images: images, imageOfRow: imageOfRow, p, half: half)
                XCTAssertEqual(b.logits.storage, a.logits.storage, "logits, \(rows) rows, avx2 \(avx2)")
                XCTAssertEqual(b.alpha.storage, a.alpha.storage, "alpha")
                XCTAssertEqual(b.state.h.storage, a.state.h.storage, "h")
                XCTAssertEqual(b.state.c.storage, a.state.c.storage, "c")
            }
        }
    }

    func testRowGEMMMatchesSGEMM() {
        checkRowGEMM()
        RowGEMM.allowAVX2(false)  // the portable build (what CPUs without AVX2+FMA, and arm64, run)
        defer { RowGEMM.allowAVX2(true) }
        checkRowGEMM()
    }

    func checkRowGEMM(file: StaticString = #filePath, line: UInt = #line) {
        var rng = RNG(seed: 5)
        for (n, k) in [(37, 19), (64, 512), (9, 8)] {
            let w = Tensor.randn([n, k], rng: &rng), bias = Tensor.randn([n], rng: &rng)
            for m in [1, 2, 3, 4, 5, 6, 9, 12, 33] {
                let x = Tensor.randn([m, k], rng: &rng)
                var expected = x.matmul(w, transposeOther: true)
                for r in 0..<m { for j in 0..<n { expected.storage[r * n + j] += bias.storage[j] + 1 } }
                var y = Tensor(shape: [m, n], repeating: 1)
                x.withUnsafeBufferPointer { xb in w.withUnsafeBufferPointer { wb in bias.withUnsafeBufferPointer { bb in
                    y.withUnsafeMutableBufferPointer {
                        RowGEMM.linear(m: m, n: n, k: k, x: xb.baseAddress!, ldx: k, w: wb.baseAddress!, bias: bb.baseAddress!,
                                       y: $0.baseAddress!, ldy: n, accumulate: true)
                    } } } }
                assertClose(y, expected, rtol: 1e-5, atol: 1e-4, "m=\(m) n=\(n) k=\(k) avx2=\(RowGEMM.usesAVX2)", file: file, line: line)
                // The same product from half weights equals the float kernel's on the widened values, bit for bit.
                let halves = w.storage.map(Half.bits), widened = halves.map(Half.toFloat)
                var fromFloat = Tensor(shape: [m, n], repeating: 1), fromHalf = fromFloat
                x.withUnsafeBufferPointer { xb in bias.withUnsafeBufferPointer { bb in
                    widened.withUnsafeBufferPointer { wb in fromFloat.withUnsafeMutableBufferPointer {
                        RowGEMM.linear(m: m, n: n, k: k, x: xb.baseAddress!, ldx: k, w: wb.baseAddress!, bias: bb.baseAddress!,
                                       y: $0.baseAddress!, ldy: n, accumulate: true)
                    } }
                    halves.withUnsafeBufferPointer { hb in widened.withUnsafeBufferPointer { wb in
                        fromHalf.withUnsafeMutableBufferPointer {
                            RowGEMM.linear(m: m, n: n, k: k, x: xb.baseAddress!, ldx: k, w: wb.baseAddress!, half: hb.baseAddress!,
                                           bias: bb.baseAddress!, y: $0.baseAddress!, ldy: n, accumulate: true)
                        } } }
                } }
                XCTAssertEqual(fromHalf.storage, fromFloat.storage, "half weights, m=\(m) n=\(n) k=\(k) avx2=\(RowGEMM.usesAVX2)",
                               file: file, line: line)
            }
        }
    }

    func testMaxLengthCutsAndMarksUnfinished() throws {
        let fx = try Self.load()
        for k in [1, 3] {
            let h = search(fx, fx.image(0), beam: k, maxLength: 4)[0]  // the full captions have 9–14 words
            XCTAssertFalse(h.finished)
            XCTAssertEqual(h.tokens.count, 4)
            XCTAssertEqual(h.alphas.count, 4)
            XCTAssertFalse(h.tokens.contains(fx.vocabulary.endIndex))
        }
    }

    // MARK: Rules, on a hand-made model

    /// Scores depend only on the previous token: a fixed V×V table of log-probabilities.
    struct TableModel: CaptionStepModel {
        let table: [[Float]]
        var vocabularySize: Int { table.count }
        func initialState() -> [Int] { [0] }  // state: rows' ids, only to check select
        func step(tokens: [Int], state: inout [Int]) -> (scores: Tensor, alphas: Tensor) {
            state = tokens
            return (Tensor(shape: [tokens.count, table.count], storage: tokens.flatMap { table[$0] }),
                    Tensor(shape: [tokens.count, 1], repeating: 1))
        }
        func select(rows: [Int], from state: [Int]) -> [Int] { rows.map { state[$0] } }
    }

    /// 0 = <start>, 1 = <end>, 2 = "a", 3 = "b". From <start>: a 0.5, b 0.4, <end> 0.1. After a: <end> 0.2, a 0.8.
    /// After b: <end> 0.9, b 0.1.
    static let table: [[Float]] = [[0, 0.1, 0.5, 0.4], [0.25, 0.25, 0.25, 0.25], [0, 0.2, 0.8, 0], [0, 0.9, 0, 0.1]]
        .map { $0.map { $0 > 0 ? logf($0) : -30 } }

    func testGreedyFollowsTheLocalBestAndBeamFindsTheBetterSequence() {
        let model = TableModel(table: Self.table)
        // Greedy: a a a … (0.5·0.8^n) never ends within 6 words → unfinished "a a a a a a".
        let greedy = BeamSearch(beamSize: 1, maxLength: 6).run(model, images: 1, startToken: 0, endToken: 1)[0]
        XCTAssertEqual(greedy.tokens, [2, 2, 2, 2, 2, 2])
        XCTAssertFalse(greedy.finished)
        // Beam 2: "b <end>" (0.36) beats "<end>" (0.1, not in the beam) and every "a …" continuation.
        let beam = BeamSearch(beamSize: 2, maxLength: 6).run(model, images: 1, startToken: 0, endToken: 1)[0]
        XCTAssertEqual(beam.tokens, [3, 1])
        XCTAssertTrue(beam.finished)
        XCTAssertEqual(beam.logProb, logf(0.4) + logf(0.9), accuracy: 1e-6)
        // Beam 3 also holds "<end>" at step 1 (score log 0.1): retired first, still loses to "b <end>".
        XCTAssertEqual(BeamSearch(beamSize: 3, maxLength: 6).run(model, images: 1, startToken: 0, endToken: 1)[0].tokens, [3, 1])
    }

    func testNoEndTokenRunsToMaxLength() {
        let model = TableModel(table: Self.table)
        let h = BeamSearch(beamSize: 2, maxLength: 5).run(model, images: 1, startToken: 0, endToken: nil)[0]
        XCTAssertEqual(h.tokens.count, 5)
        XCTAssertFalse(h.finished)
    }

    func testLengthPenaltyChangesOnlyTheFinalChoice() {
        // From <start>: <end> 0.4, a 0.6; after a: <end> 0.55, a 0.45. Beam 2 retires "<end>" (0.4) at step 1 and
        // "a <end>" (0.33) at step 2. Plain scores pick the shorter; logProb / n^1 picks "a <end>" (−0.55 > −0.92).
        let t: [[Float]] = [[-30, logf(0.4), logf(0.6)], [-1, -1, -1], [-30, logf(0.55), logf(0.45)]]
        let model = TableModel(table: t)
        let plain = BeamSearch(beamSize: 2, maxLength: 5).run(model, images: 1, startToken: 0, endToken: 1)[0]
        XCTAssertEqual(plain.tokens, [1])
        let penalised = BeamSearch(beamSize: 2, maxLength: 5, lengthPenalty: 1).run(model, images: 1, startToken: 0, endToken: 1)[0]
        XCTAssertEqual(penalised.tokens, [2, 1])
        XCTAssertEqual(penalised.logProb, logf(0.6) + logf(0.55), accuracy: 1e-6)
    }
}
