import BatchCaptioning
import CaptionData
import CaptionMetrics
import CaptionSupport
import CaptionTraining
import Captioning
import SyntheticWorld
import Foundation
import Imaging
import TensorCore
import TestSupport
import Vision
import XCTest

/// The `Captioner` facade on the committed tiny model folder (compact encoder + attention decoder, random
/// weights): the whole image → caption path against PyTorch (scripts/make_captioner_fixtures.py), batching,
/// scoring, and strict model-folder errors.
final class CaptionerTests: XCTestCase {
    static let folder = Fixtures.path("captioner/tiny_model")
    static let image = Fixtures.path("captioner/tiny_image.png")

    struct Expected: Decodable {
        struct Search: Decodable {
            let seq: [Int]
            let words: [String]
            let score: Float
            let alphas: [[Float]]
        }
        struct Score: Decodable {
            let caption: String
            let seq: [Int]
            let token_log_probs: [Float]
            let log_prob: Float
        }
        let beam3: Search
        let beam1: Search
        let score: Score
        let min_margin: Float
    }

    static func expected() throws -> Expected {
        try JSONDecoder().decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("captioner/tiny_expected.json"))))
    }

    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("captioner-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    /// A model folder whose decoder is stored in F16 decodes from the half weights (`halfWeights`), with exactly
    /// the tokens, log-probabilities and α of the float path on the same values.
    func testF16DecoderFileDecodesFromHalvesWithTheFloatResults() throws {
        let f16 = tmp.appendingPathComponent("f16").path
        try FileManager.default.copyItem(atPath: Self.folder, toPath: f16)
        let source = try SafeTensorsFile(path: Self.folder + "/decoder.safetensors")
        var half = SafeTensorsWriter()
        for name in source.names { half.addHalf(name, try source.tensor(name)) }
        try half.write(to: f16 + "/decoder.safetensors")
        XCTAssertNil(try Captioner(modelFolder: Self.folder).halfWeights, "float weights that are not halves")
        let captioner = try Captioner(modelFolder: f16)
        XCTAssertNotNil(captioner.halfWeights)
        let features = captioner.annotations(captioner.preprocess([try captioner.extractor.decoder.decode(path: Self.image)]))
        for beam in [1, 3] {
            let viaHalves = captioner.caption(annotations: features, beam: beam)[0]
            let model = AttentionStepModel(decoder: captioner.decoder, parameters: captioner.parameters,
                                           images: captioner.decoder.encode(features, captioner.parameters))
            let viaFloats = BeamSearch(beamSize: beam, maxLength: captioner.config.maxLength)
                .run(model, images: 1, startToken: captioner.vocabulary.startIndex, endToken: captioner.vocabulary.endIndex)[0]
            XCTAssertEqual(viaHalves.tokenIDs, viaFloats.tokens, "beam \(beam)")
            XCTAssertEqual(viaHalves.logProb, viaFloats.logProb)
            XCTAssertEqual(viaHalves.alphas, viaFloats.alphas)
        }
    }

    func testImageToCaptionMatchesPyTorch() throws {
        let expected = try Self.expected()
        XCTAssertGreaterThan(expected.min_margin, 1e-3)
        let captioner = try Captioner(modelFolder: Self.folder)
        XCTAssertEqual(captioner.grid, GridSize(height: 4, width: 4))
        for (beam, e) in [(3, expected.beam3), (1, expected.beam1)] {
            let r = try captioner.caption(imagePath: Self.image, beam: beam)
            XCTAssertEqual(r.tokenIDs, Array(e.seq.dropFirst()), "beam \(beam)")
            XCTAssertEqual(r.tokens, e.words)
            XCTAssertEqual(r.caption, e.words.joined(separator: " "))
            XCTAssertTrue(r.finished)
            XCTAssertEqual(r.logProb, e.score, accuracy: 1e-4)
            XCTAssertEqual(r.grid, GridSize(height: 4, width: 4))
            XCTAssertEqual(r.alphas.count, e.alphas.count)
            for (a, b) in zip(r.alphas, e.alphas) {
                assertClose(Tensor(shape: [a.count], storage: a), Tensor(shape: [b.count], storage: b), rtol: 1e-4, atol: 1e-5, "α")
            }
        }
    }

    func testScoreMatchesPyTorch() throws {
        let e = try Self.expected().score
        let s = try Captioner(modelFolder: Self.folder).score(imagePath: Self.image, caption: e.caption)
        XCTAssertEqual(s.words, ["a", "red", "circle", "above", "the", "square"])
        XCTAssertEqual(s.tokenIDs, Array(e.seq.dropFirst()))
        assertClose(Tensor(shape: [s.tokenLogProbs.count], storage: s.tokenLogProbs),
                    Tensor(shape: [e.token_log_probs.count], storage: e.token_log_probs), rtol: 1e-4, atol: 1e-5, "token log-probs")
        XCTAssertEqual(s.logProb, e.log_prob, accuracy: 1e-4)
        XCTAssertEqual(s.unknownWords, [])
        let unknown = try Captioner(modelFolder: Self.folder).score(imagePath: Self.image, caption: "a zebra")
        XCTAssertEqual(unknown.unknownWords, ["zebra"])
        XCTAssertEqual(unknown.tokenLogProbs.count, 3)
    }

    func testImagesCaptionedTogetherMatchOneByOne() throws {
        let captioner = try Captioner(modelFolder: Self.folder)
        let a = try ImageDecoder().decode(path: Self.image)
        var b = a
        b.pixels = a.pixels.map { 255 - $0 }  // a second, different image
        let c = RGBImage(width: 20, height: 30, pixels: (0..<(20 * 30 * 3)).map { UInt8(($0 * 7) % 256) })
        let annotations = captioner.annotations(captioner.preprocess([a, b, c]))
        XCTAssertEqual(annotations.shape, [3, 16, 16])
        for beam in [1, 3, 4] {
            let together = captioner.caption(annotations: annotations, beam: beam, maxLength: 12)
            for (i, image) in [a, b, c].enumerated() {
                let alone = captioner.caption(image: image, beam: beam, maxLength: 12)
                XCTAssertEqual(together[i].tokenIDs, alone.tokenIDs, "beam \(beam) image \(i)")
                XCTAssertEqual(together[i].logProb, alone.logProb, accuracy: 1e-4)
                XCTAssertEqual(together[i].finished, alone.finished)
            }
        }
    }

    func testJSONLines() throws {
        let r = CaptionResult(caption: "a \"red\" circle", tokens: ["a", "\"red\"", "circle"], tokenIDs: [1, 2, 3, 13],
                              tokenLogProbs: [-1, -0.5, -0.25, -1.5], logProb: -3.25, alphas: [], grid: GridSize(height: 1, width: 1),
                              finished: true)
        XCTAssertEqual(r.jsonLine(image: "dir/x\\y.png"),
                       #"{"image": "dir/x\\y.png", "caption": "a \"red\" circle", "tokens": ["a", "\"red\"", "circle"], "log_prob": -3.25}"#)
        let line = try Captioner(modelFolder: Self.folder).caption(imagePath: Self.image).jsonLine(image: Self.image)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual(Set(object.keys), ["image", "caption", "tokens", "log_prob"])
        let s = CaptionScore(words: ["a"], tokenIDs: [1, 13], tokenLogProbs: [-1, -2], logProb: -3, unknownWords: [])
        XCTAssertEqual(s.jsonLine(image: "i.png", caption: "A!"),
                       #"{"image": "i.png", "caption": "A!", "log_prob": -3.0, "token_log_probs": [-1.0, -2.0], "tokens": ["a", "<end>"]}"#)
    }

    // MARK: Strict loading

    /// A copy of the tiny model folder with `edit` applied to its files.
    func brokenModel(_ edit: (URL) throws -> Void) throws -> String {
        let dir = tmp.appendingPathComponent("model-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: URL(fileURLWithPath: Self.folder), to: dir)
        try edit(dir)
        return dir.path
    }

    func rewriteDecoder(_ dir: URL, _ edit: (inout [String: Tensor]) -> Void) throws {
        let path = dir.appendingPathComponent("decoder.safetensors").path
        let f = try SafeTensorsFile(path: path)
        var tensors: [String: Tensor] = [:]
        for name in f.names { tensors[name] = try f.tensor(name) }
        edit(&tensors)
        var w = SafeTensorsWriter()
        for (k, v) in tensors.sorted(by: { $0.key < $1.key }) { w.add(k, v) }
        try w.write(to: path)
    }

    func editConfig(_ dir: URL, _ edit: (inout [String: Any]) -> Void) throws {
        let url = dir.appendingPathComponent("config.json")
        var root = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        edit(&root)
        try JSONSerialization.data(withJSONObject: root).write(to: url)
    }

    func loadError(_ path: String) -> String? {
        do { _ = try Captioner(modelFolder: path); return nil } catch { return "\(error)" }
    }

    func testModelFolderErrorsNameTheFileAndTheProblem() throws {
        var dir = try brokenModel { try rewriteDecoder($0) { $0["fc.bias"] = nil } }
        XCTAssertEqual(loadError(dir), "\(dir)/decoder.safetensors: missing tensor fc.bias")

        dir = try brokenModel { try rewriteDecoder($0) { $0["attention.extra"] = Tensor(shape: [2]) } }
        XCTAssertEqual(loadError(dir), "\(dir)/decoder.safetensors: unexpected tensor attention.extra")

        dir = try brokenModel { try rewriteDecoder($0) { $0["init_h.weight"] = Tensor(shape: [12, 15]) } }
        XCTAssertEqual(loadError(dir), "\(dir)/decoder.safetensors: tensor init_h.weight has shape [12, 15], expected [12, 16] "
                       + "for a decoder with encoder_dim 16, attention_dim 8, embed_dim 8, decoder_dim 12, vocab_size 14")

        dir = try brokenModel { try FileManager.default.removeItem(at: $0.appendingPathComponent("decoder.safetensors")) }
        XCTAssertTrue(try XCTUnwrap(loadError(dir)).hasPrefix("\(dir)/decoder.safetensors: "), loadError(dir)!)

        dir = try brokenModel { try editConfig($0) { root in
            var d = root["decoder"] as! [String: Any]; d["vocab_size"] = 15; root["decoder"] = d } }
        XCTAssertEqual(loadError(dir), "\(dir)/vocab.json: has 14 entries but config.json's decoder.vocab_size is 15")

        dir = try brokenModel { try editConfig($0) { root in
            var d = root["decoder"] as! [String: Any]; d["gate"] = "diagonal"; root["decoder"] = d } }
        XCTAssertEqual(loadError(dir), "\(dir)/config.json: decoder.gate: expected \"vector\" or \"scalar\", found \"diagonal\"")

        dir = try brokenModel { try editConfig($0) { $0["decoder"] = nil } }
        XCTAssertEqual(loadError(dir), "\(dir)/config.json: no \"decoder\" object (an encoder-only model folder cannot caption)")

        dir = try brokenModel { try editConfig($0) { root in
            var e = root["encoder"] as! [String: Any]; e["channels"] = [8, 32]; root["encoder"] = e } }
        XCTAssertTrue(try XCTUnwrap(loadError(dir)).hasPrefix("\(dir)/encoder.safetensors: "), loadError(dir)!)

        dir = try brokenModel { try FileManager.default.removeItem(at: $0.appendingPathComponent("config.json")) }
        XCTAssertEqual(loadError(dir), "\(dir): not a model folder (no config.json)")

        XCTAssertEqual(loadError(tmp.appendingPathComponent("nowhere").path), "\(tmp.appendingPathComponent("nowhere").path): no such model folder")
        XCTAssertEqual(loadError(Self.image), "\(Self.image): not a model folder (expected a directory)")
    }

    func testEncoderFeatureSizeMustMatchDecoder() throws {
        let dir = try brokenModel { try editConfig($0) { root in
            var d = root["decoder"] as! [String: Any]; d["encoder_dim"] = 32; root["decoder"] = d } }
        // The decoder's tensors are checked first (their shapes follow encoder_dim), so make them fit too.
        try rewriteDecoder(URL(fileURLWithPath: dir)) { t in
            for (name, shape) in [("attention.encoder_att.weight", [8, 32]), ("decode_step.weight_ih", [48, 40]),
                                  ("init_h.weight", [12, 32]), ("init_c.weight", [12, 32]), ("f_beta.weight", [32, 12]),
                                  ("f_beta.bias", [32])] { t[name] = Tensor(shape: shape) }
        }
        XCTAssertEqual(loadError(dir), "\(dir)/config.json: decoder.encoder_dim is 32 but the encoder (compact [8, 16]) gives 16-d features")
    }

    func testUnreadableImageIsOneLineNamingIt() throws {
        let captioner = try Captioner(modelFolder: Self.folder)
        let bad = Fixtures.path("images/bad_truncated.jpg")
        XCTAssertThrowsError(try captioner.caption(imagePath: bad)) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(bad): "), "\(error)")
            XCTAssertFalse("\(error)".contains("\n"))
        }
    }
}
