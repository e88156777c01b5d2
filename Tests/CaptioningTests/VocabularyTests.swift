import BatchCaptioning
import CaptionData
import CaptionMetrics
import CaptionSupport
import CaptionTraining
import Captioning
import SyntheticWorld
import Foundation
import TestSupport
import XCTest

final class VocabularyTests: XCTestCase {
    func testTokenizerLowercasesAndSplitsOnNonAlphanumerics() {
        XCTAssertEqual(CaptionTokenizer.words("A man's hat, on the TABLE."), ["a", "man", "s", "hat", "on", "the", "table"])
        XCTAssertEqual(CaptionTokenizer.words("  two\tred-circles\n(3.5 cm) "), ["two", "red", "circles", "3", "5", "cm"])
        XCTAssertEqual(CaptionTokenizer.words("Café naïve"), ["café", "naïve"])
        XCTAssertEqual(CaptionTokenizer.words(" ... !"), [])
    }

    func testWordMapLayout() {
        let vocab = Vocabulary(words: ["a", "red", "circle"])
        XCTAssertEqual(vocab.tokens, ["<pad>", "a", "red", "circle", "<unk>", "<start>", "<end>"])
        XCTAssertEqual([vocab.padIndex, vocab.unknownIndex, vocab.startIndex, vocab.endIndex], [0, 4, 5, 6])
        XCTAssertEqual(vocab.count, 7)
    }

    func testEncodeDecodeRoundTrip() {
        let vocab = Vocabulary(words: ["a", "red", "circle", "above", "blue", "square"])
        let words = ["a", "red", "circle", "above", "a", "blue", "square"]
        let encoded = vocab.encode(words)
        XCTAssertEqual(encoded, [8, 1, 2, 3, 4, 1, 5, 6, 9])
        XCTAssertEqual(vocab.decode(encoded), words)
        XCTAssertEqual(vocab.decode(vocab.encode(["a", "green", "circle"])), ["a", "<unk>", "circle"])
        // Padded rows as the tutorial stores them; stops at <end>, ignores what follows.
        XCTAssertEqual(vocab.encode(["a", "circle"], paddedTo: 4), [8, 1, 3, 9, 0, 0])
        XCTAssertNil(vocab.encode(words, paddedTo: 6))
        XCTAssertEqual(vocab.decode([8, 1, 3, 9, 2, 2]), ["a", "circle"])
        XCTAssertEqual(vocab.decode([1, 99, -1]), ["a", "<unk>", "<unk>"])
    }

    func testBuildMatchesTutorialWordMap() throws {
        // The oracle: the tutorial's create_input_files logic run by scripts/make_data_fixtures.py over
        // every split's tokens, min_word_freq=1.
        let file = try KarpathySplitFile.load(Fixtures.path("data/karpathy/dataset_coco.json"))
        let captions = file.entries.flatMap { $0.image.captions.map(\.tokens) }
        let built = Vocabulary.build(from: captions, minWordFrequency: 1)
        let expected = try Vocabulary.load(from: Fixtures.path("data/karpathy/wordmap_min1.json"))
        XCTAssertEqual(built, expected)
        XCTAssertEqual(Array(built.tokens[1...8]), ["a", "red", "circle", "blue", "square", "green", "star", "is"])
    }

    func testMinimumFrequencyIsStrict() {
        let captions = [["a", "b", "c"], ["a", "b"], ["a"]]
        XCTAssertEqual(Vocabulary.build(from: captions, minWordFrequency: 0).tokens.dropFirst().prefix(3), ["a", "b", "c"])
        XCTAssertEqual(Vocabulary.build(from: captions, minWordFrequency: 1).count, 2 + 4)
        XCTAssertEqual(Vocabulary.build(from: captions, minWordFrequency: 2).count, 1 + 4)
        XCTAssertEqual(Vocabulary.build(from: captions, minWordFrequency: 3).count, 4)
    }

    func testSaveAndLoadRoundTripInTutorialOrder() throws {
        let vocab = Vocabulary(words: ["a", "red", "\"quoted\"", "café/x"])
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vocab-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("vocab.json").path
        try vocab.save(to: path)
        XCTAssertEqual(try Vocabulary.load(from: path), vocab)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(text.hasPrefix("{\"a\": 1, \"red\": 2"), text)
        XCTAssertTrue(text.hasSuffix("\"<end>\": 7, \"<pad>\": 0}\n"), text)
        let parsed = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Int]
        XCTAssertEqual(parsed["café/x"], 4)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), ["vocab.json"])
    }

    func testLoadRejectsBrokenWordMaps() throws {
        func load(_ json: String) -> String {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("wm-\(UUID()).json").path
            _ = FileManager.default.createFile(atPath: path, contents: Data(json.utf8))
            defer { try? FileManager.default.removeItem(atPath: path) }
            do { _ = try Vocabulary.load(from: path); return "loaded" } catch { return "\(error)".replacingOccurrences(of: path, with: "F") }
        }
        XCTAssertEqual(load("{\"<pad>\": 0, \"a\": 1, \"<unk>\": 2, \"<start>\": 3, \"<end>\": 4}"), "loaded")
        XCTAssertEqual(load("{\"<pad>\": 0, \"a\": 1, \"<unk>\": 2, \"<start>\": 3}"), "F: missing the special token <end>")
        XCTAssertEqual(load("{\"<pad>\": 0, \"a\": 1, \"b\": 1, \"<unk>\": 2, \"<start>\": 3, \"<end>\": 4}"),
                       "F: index 1 is used by both \"a\" and \"b\"")
        XCTAssertEqual(load("{\"<pad>\": 0, \"a\": 5, \"<unk>\": 2, \"<start>\": 3, \"<end>\": 4}"),
                       "F: index 5 of \"a\" is outside 0..<5 (indices must be 0, 1, 2, ... with no gaps)")
        XCTAssertEqual(load("{\"<pad>\": 0, \"a\": \"1\"}"), "F: \"a\": expected an integer, found a string")
        XCTAssertEqual(load("[1, 2]"), "F: top level: expected an object, found an array")
        XCTAssertTrue(load("{\"a\": 1,\n \"b\" 2}").hasPrefix("F: malformed JSON: "), load("{\"a\": 1,\n \"b\" 2}"))
    }
}
