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
import Vision
import XCTest

/// Ten optimisation steps against PyTorch (scripts/make_trainer_fixtures.py): the tutorial's decoder, dropout off,
/// Adam with clip_grad_norm_, teacher forcing and scheduled sampling with ε = 0 (argmax), losses within 1e-4.
final class TrainerParityTests: XCTestCase {
    /// A model whose decoder has the fixture's sizes (the 1-layer compact CNN only fixes D = 16; features are given).
    static func tinyModel() throws -> TrainableModel {
        var spec = ModelSpec()
        spec.architecture = .compact(CompactNetSpec(channels: [16], strides: [1]))
        spec.imageSize = 8
        spec.attentionDim = 8; spec.embedDim = 8; spec.decoderDim = 12; spec.dropout = 0
        let vocabulary = Vocabulary(words: (1...16).map { "w\($0)" })
        XCTAssertEqual(vocabulary.count, 20)
        XCTAssertEqual(vocabulary.startIndex, 18)
        XCTAssertEqual(vocabulary.endIndex, 19)
        return try TrainableModel(spec: spec, vocabulary: vocabulary, seed: 0)
    }

    func run(_ name: String, sampling: ScheduledSampling) throws {
        let f = try SafeTensorsFile(path: Fixtures.path("trainer/steps.safetensors"))
        let model = try Self.tinyModel()
        let p = model.decoderParameters
        for param in p.layout.params { p.set(param, try f.tensor("\(name).init.\(param.name)")) }
        var options = TrainingOptions()
        options.learningRate = 3e-3
        options.clipping = .norm(0.5)
        options.alphaC = 1
        options.scheduledSampling = sampling
        let stepper = TrainingStepper(model: model, options: options)
        let losses = try f.tensor("\(name).losses").storage, norms = try f.tensor("\(name).grad_norms").storage
        for k in 0..<10 {
            let features = try f.tensor("\(name).step\(k).features")
            let lengths = try f.int64("\(name).step\(k).lengths").map(Int.init)
            let tokens = try f.int64("\(name).step\(k).captions").map(Int.init)
            let width = tokens.count / lengths.count
            let captions = lengths.indices.map { Array(tokens[($0 * width)..<($0 * width + lengths[$0])]) }
            let r = stepper.step(images: features, slot: Array(0..<lengths.count), captions: captions, stepIndex: k, lrScale: 1)
            XCTAssertEqual(r.loss.total, losses[k], accuracy: 1e-4, "\(name) step \(k) loss")
            XCTAssertEqual(r.gradientNorm, norms[k], accuracy: 1e-4 * max(1, norms[k]), "\(name) step \(k) gradient norm")
            XCTAssertLessThan(r.gradientNorm, 100)
        }
        // full_att.bias shifts every attention logit alike, so softmax makes its gradient exactly zero: both sides only
        // see rounding noise there, which Adam normalises into full-size steps. Every other parameter must agree.
        for param in p.layout.params where param.name != "attention.full_att.bias" {
            assertClose(p.tensor(param), try f.tensor("\(name).final.\(param.name)"), rtol: 1e-3, atol: 1e-4,
                        "\(name) final \(param.name)")
        }
    }

    func testTeacherForcingMatchesPyTorch() throws {
        try run("teacher", sampling: .teacherForcing)
    }

    func testArgmaxScheduledSamplingMatchesPyTorch() throws {
        // ε = 0 from the first step: every input after <start> is the model's argmax.
        try run("sampled", sampling: ScheduledSampling(kind: .linear, k: 0, c: 0, minimum: 0))
    }
}
