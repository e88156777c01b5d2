import BatchCaptioning
import CaptionData
import CaptionMetrics
import CaptionSupport
import CaptionTraining
import Captioning
import SyntheticWorld
import Foundation
import XCTest

/// A real tutorial checkpoint (torchvision ResNet-18 with random weights, pickled `models.Encoder` /
/// `models.DecoderWithAttention` objects) converted by scripts/convert_checkpoint.py, captioned end to end and
/// compared with the PyTorch pipeline. Too large to commit: build it with
///
///     /tmp/venv/bin/python scripts/make_captioner_fixtures.py --e2e /tmp/caption-e2e
///     CAPTION_E2E=/tmp/caption-e2e swift test -c release -Xswiftc -enable-testing --filter CaptionerEndToEndTests
///
/// Skipped when CAPTION_E2E is not set.
final class CaptionerEndToEndTests: XCTestCase {
    struct Reference: Decodable {
        struct Search: Decodable {
            let seq: [Int]
            let words: [String]
            let score: Float
            let min_margin: Float
        }
        struct Score: Decodable {
            let caption: String
            let token_log_probs: [Float]
            let log_prob: Float
        }
        let image: String
        let model: String
        let beam3: Search
        let beam1: Search
        let score: Score
    }

    func testConvertedTutorialCheckpointMatchesPyTorch() throws {
        guard let dir = ProcessInfo.processInfo.environment["CAPTION_E2E"] else {
            throw XCTSkip("set CAPTION_E2E to the folder written by make_captioner_fixtures.py --e2e")
        }
        let ref = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/reference.json")))
        let captioner = try Captioner(modelFolder: ref.model)
        XCTAssertEqual(captioner.grid.height * captioner.grid.width, 196)
        XCTAssertEqual(captioner.encoder.architecture.name, "resnet18")
        for (beam, e) in [(3, ref.beam3), (1, ref.beam1)] {
            let r = try captioner.caption(imagePath: ref.image, beam: beam)
            XCTAssertEqual(r.tokenIDs, Array(e.seq.dropFirst()), "beam \(beam) (PyTorch's smallest top-k margin \(e.min_margin))")
            XCTAssertEqual(r.tokens, e.words)
            XCTAssertEqual(r.logProb, e.score, accuracy: 2e-3)
        }
        let s = try captioner.score(imagePath: ref.image, caption: ref.score.caption)
        XCTAssertEqual(s.logProb, ref.score.log_prob, accuracy: 2e-3)
        for (a, b) in zip(s.tokenLogProbs, ref.score.token_log_probs) { XCTAssertEqual(a, b, accuracy: 5e-4) }
    }
}
