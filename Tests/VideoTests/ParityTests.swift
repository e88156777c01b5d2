import Foundation
import NN
import TensorCore
import TestSupport
import XCTest
@testable import Video

/// The autoencoder against PyTorch (scripts/make_video_fixtures.py): losses, every parameter gradient and
/// free-running inference, for LSTM / GRU / RNN cells, stacked and bidirectional encoders, conditional
/// (teacher-forced and free-running) and unconditioned decoders, pixels and features, linear and convolutional
/// readouts, and TBPTT(2, 3).
final class ParityTests: XCTestCase {
    struct Case: Decodable {
        let config: VideoModelConfig
        let teacher: Double
        let tbptt: [Int]?
    }

    func check(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let f = try SafeTensorsFile(path: Fixtures.path("video/parity.safetensors"))
        let spec = try JSONDecoder().decode(Case.self, from: Data(f.metadata[name]!.utf8))
        let model = try VideoAutoencoder(config: spec.config)
        let p = model.parameters
        for param in p.layout.params where param.count > 0 {
            p.set(param, try f.tensor("\(name).\(param.name)"))
        }
        let frames = try f.tensor("\(name).frames")
        let batch = FrameBatch(frames: frames)
        var rng = RNG(seed: 1)
        p.zeroGrads()
        let feed = TrainingFeed(teacherProbability: spec.teacher,
                                truncation: spec.tbptt.map { TruncatedBPTT(k1: $0[0], k2: $0[1]) })
        let losses = model.lossAndGradients(batch, feed: feed, rng: &rng)
        let expected = try f.tensor("\(name).loss")
        assertClose(Tensor(shape: [2], storage: [Float(losses.reconstruction ?? 0), Float(losses.future ?? 0)]),
                    expected, rtol: 1e-5, atol: 1e-5, "\(name) losses", file: file, line: line)
        for param in p.layout.params where param.count > 0 {
            assertClose(p.gradTensor(param), try f.tensor("\(name).grad.\(param.name)"), rtol: 1e-4, atol: 2e-5,
                        "\(name) d\(param.name)", file: file, line: line)
        }
        let inference = model.infer(batch)
        assertClose(inference.code, try f.tensor("\(name).infer.code"), rtol: 1e-4, atol: 1e-5, "\(name) code",
                    file: file, line: line)
        if let r = inference.reconstruction {
            assertClose(r, try f.tensor("\(name).infer.reconstruction"), rtol: 1e-4, atol: 1e-5, "\(name) reconstruction",
                        file: file, line: line)
        }
        if let fut = inference.future {
            assertClose(fut, try f.tensor("\(name).infer.future"), rtol: 1e-4, atol: 1e-5, "\(name) future",
                        file: file, line: line)
        }
    }

    func testStackedLSTMWithEmbeddingAndTeacherForcedConditionalDecoders() throws { try check("lstm2_embed_conditional") }
    func testBidirectionalGRUFreeRunningReconstructionUnconditionedFuture() throws { try check("gru_bi_free_running") }
    func testStackedBidirectionalRNNOnFeatures() throws { try check("rnn_bi2_features") }
    func testTruncatedBPTT() throws { try check("lstm_tbptt") }
    func testSharedReadout() throws { try check("lstm_shared_readout_free_running") }
    func testConvolutionalReadouts() throws { try check("lstm_conv_readout_free_running") }
}
