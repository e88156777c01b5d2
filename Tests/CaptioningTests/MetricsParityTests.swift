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

/// pycocoevalcap / nltk parity on the fixtures of scripts/make_metric_fixtures.py, to 1e-6.
final class MetricsParityTests: XCTestCase {
    struct Scores: Decodable {
        let bleu1, bleu2, bleu3, bleu4, rouge, cider: Double
        enum CodingKeys: String, CodingKey {
            case bleu1 = "BLEU-1", bleu2 = "BLEU-2", bleu3 = "BLEU-3", bleu4 = "BLEU-4", rouge = "ROUGE-L", cider = "CIDEr-D"
        }
        var all: [Double] { [bleu1, bleu2, bleu3, bleu4, rouge, cider] }
    }
    struct ParityImage: Decodable {
        let image_id: Int
        let refs_raw: [String]?
        let hyp_raw: String?
        let refs: [String]
        let hyp: String
        let scores: Scores
    }
    struct ParitySet: Decodable {
        let images: [ParityImage]
        let overall: Scores
    }

    static func fixture<T: Decodable>(_ name: String, as type: T.Type) throws -> T {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("metrics/\(name)")))
        return try JSONDecoder().decode(T.self, from: data)
    }

    static let names = ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr-D"]

    func values(_ scores: MetricScores) -> [Double] { scores.named.map(\.value) }
    func values(_ scores: ImageScores) -> [Double] { scores.bleu + [scores.rougeL, scores.ciderD] }

    func assertScores(_ actual: [Double], _ expected: [Double], _ label: String,
                      file: StaticString = #filePath, line: UInt = #line) {
        for (k, (a, e)) in zip(actual, expected).enumerated() {
            XCTAssertEqual(a, e, accuracy: 1e-6, "\(label) \(Self.names[k])", file: file, line: line)
        }
    }

    /// Scorers on the Java-tokenised captions, as COCOEvalCap runs them.
    func testScorersMatchPycocoevalcapOnTokenisedCaptions() throws {
        let set = try Self.fixture("coco_parity.json", as: ParitySet.self)
        XCTAssertEqual(set.images.count, 50)
        let scores = try COCOMetrics.evaluate(
            references: Dictionary(uniqueKeysWithValues: set.images.map { ($0.image_id, $0.refs) }),
            hypotheses: Dictionary(uniqueKeysWithValues: set.images.map { ($0.image_id, $0.hyp) }),
            tokenize: false)
        XCTAssertEqual(scores.images, 50)
        assertScores(values(scores), set.overall.all, "overall")
        for image in set.images {
            assertScores(values(scores.perImage[image.image_id]!), image.scores.all, "image \(image.image_id)")
        }
    }

    /// End to end from raw captions: our PTB tokenisation, then the scorers.
    func testEvaluateFromRawCaptionsMatchesPycocoevalcap() throws {
        let set = try Self.fixture("coco_parity.json", as: ParitySet.self)
        let scores = try COCOMetrics.evaluate(
            references: Dictionary(uniqueKeysWithValues: set.images.map { ($0.image_id, $0.refs_raw!) }),
            hypotheses: Dictionary(uniqueKeysWithValues: set.images.map { ($0.image_id, $0.hyp_raw!) }))
        assertScores(values(scores), set.overall.all, "overall")
        for image in set.images {
            assertScores(values(scores.perImage[image.image_id]!), image.scores.all, "image \(image.image_id)")
        }
    }

    func testTokenizerMatchesJavaPTBTokenizerOnFixtureCaptions() throws {
        // As COCOEvalCap runs them: all references in one batch, all hypotheses in another.
        let set = try Self.fixture("coco_parity.json", as: ParitySet.self)
        let references = set.images.flatMap { $0.refs_raw! }, hypotheses = set.images.map { $0.hyp_raw! }
        for (raw, (ours, expected)) in zip(references, zip(PTBTokenizer.normalize(batch: references), set.images.flatMap(\.refs))) {
            XCTAssertEqual(ours, expected, raw)
        }
        for (raw, (ours, expected)) in zip(hypotheses, zip(PTBTokenizer.normalize(batch: hypotheses), set.images.map(\.hyp))) {
            XCTAssertEqual(ours, expected, raw)
        }
        struct Case: Decodable { let input: String; let tokens: String }
        for c in try Self.fixture("ptb_cases.json", as: [Case].self) {
            XCTAssertEqual(PTBTokenizer.normalize(c.input), c.tokens, "\(c.input)")
        }
    }

    func testBatchTokenisationLooksAcrossCaptionsLikeTheJavaLexer() throws {
        struct Batch: Decodable { let captions: [String]; let tokens: [String] }
        let batch = try Self.fixture("ptb_batch.json", as: Batch.self)
        XCTAssertEqual(PTBTokenizer.normalize(batch: batch.captions), batch.tokens)
        // Alone, a caption is the last line of its batch: nothing follows the final "b.".
        XCTAssertEqual(PTBTokenizer.normalize("A sign with the letter b."), "a sign with the letter b.")
    }

    func testEdgeCasesMatchPycocoevalcap() throws {
        let sets = try Self.fixture("edge_cases.json", as: [String: ParitySet].self)
        XCTAssertGreaterThanOrEqual(sets.count, 7)
        for (name, set) in sets.sorted(by: { $0.key < $1.key }) {
            let scores = try COCOMetrics.evaluate(
                references: Dictionary(uniqueKeysWithValues: set.images.map { ($0.image_id, $0.refs) }),
                hypotheses: Dictionary(uniqueKeysWithValues: set.images.map { ($0.image_id, $0.hyp) }),
                tokenize: false)
            assertScores(values(scores), set.overall.all, "\(name) overall")
            for image in set.images {
                assertScores(values(scores.perImage[image.image_id]!), image.scores.all, "\(name) image \(image.image_id)")
            }
        }
    }

    func testNLTKCorpusBLEUMatchesNLTK() throws {
        struct Case: Decodable { let name: String; let references: [[[String]]]; let hypotheses: [[String]]; let bleu4: Double }
        let cases = try Self.fixture("nltk_bleu.json", as: [Case].self)
        XCTAssertGreaterThanOrEqual(cases.count, 6)
        for c in cases {
            XCTAssertEqual(NLTKCorpusBLEU.score(references: c.references, hypotheses: c.hypotheses), c.bleu4,
                           accuracy: 1e-6, c.name)
        }
        // Word indices work the same as words (the tutorial passes indices).
        let c = cases[0]
        var ids: [String: Int] = [:]
        func id(_ w: String) -> Int { if let i = ids[w] { return i }; ids[w] = ids.count; return ids[w]! }
        let refIDs = c.references.map { $0.map { $0.map(id) } }
        let hypIDs = c.hypotheses.map { $0.map(id) }
        XCTAssertEqual(NLTKCorpusBLEU.score(references: refIDs, hypotheses: hypIDs), c.bleu4, accuracy: 1e-12)
    }

    func testFileEvaluationMatchesPycocoevalcapAndContractJSON() throws {
        let scores = try COCOMetrics.evaluate(annotationFile: Fixtures.path("metrics/captions_val.json"),
                                                 resultsFile: Fixtures.path("metrics/results.json"))
        let expected = try Self.fixture("expected_cli.json", as: Scores.self)
        assertScores(values(scores), expected.all, "cli")
        XCTAssertEqual(scores.images, 20)
        let line = scores.jsonLine(extra: [("pointing_accuracy", 0.5)])
        XCTAssertTrue(line.hasPrefix("{\"BLEU-1\": "), line)
        let keys = ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr-D", "pointing_accuracy", "images"]
        let positions = keys.map { line.range(of: "\"\($0)\"")!.lowerBound }
        XCTAssertEqual(positions, positions.sorted())
        let parsed = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
        XCTAssertEqual(parsed["images"] as? Int, 20)
        XCTAssertEqual(parsed["CIDEr-D"] as! Double, expected.cider, accuracy: 1e-6)
    }
}
