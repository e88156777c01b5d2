import CaptionSupport
import CaptionData

/// The COCO caption metrics (BLEU-1...4, ROUGE-L, CIDEr-D) with the numbers pycocoevalcap gives:
/// captions are PTB-tokenised (`PTBTokenizer`) and scored by `BLEU`, `ROUGEL` and `CIDErD`.
///
/// `caption metrics` and `caption eval` both go through `evaluate`.
public enum COCOMetrics {
    /// Scores one hypothesis per image against that image's references.
    ///
    /// The evaluated images are those in `hypotheses` (as pycocoevalcap's example evaluates the
    /// results' images); CIDEr-D's document frequencies come from their references only.
    /// - Parameters:
    ///   - order: the image order pycocoevalcap would see (the annotation file's); images not in it
    ///     follow in ascending id order. Only the PTB tokenizer's look-ahead across captions can
    ///     depend on it (see `PTBTokenizer.tokenize(batch:)`), so ascending ids is almost always exact.
    ///   - tokenize: apply pycocoevalcap's PTB tokenisation first (false when the captions are
    ///     already tokenised strings).
    /// - Throws: `CaptionError` without a file (the caller names it with `naming(_:)`) for an empty evaluation,
    ///   a hypothesis without references, or an image whose reference list is empty.
    public static func evaluate(references: [ImageID: [String]], hypotheses: [ImageID: String],
                                order: [ImageID] = [], tokenize: Bool = true) throws -> MetricScores {
        guard !hypotheses.isEmpty else { throw CaptionError(file: "", "no captions to score") }
        var seen = Set<ImageID>()
        let ordered = order.filter { hypotheses[$0] != nil && seen.insert($0).inserted }
        let ids = ordered + hypotheses.keys.filter { !seen.contains($0) }.sorted()
        var refs: [[String]] = []
        var hyps: [String] = []
        for id in ids {
            guard let imageReferences = references[id] else { throw CaptionError(file: "", "image_id \(id) has no reference captions") }
            guard !imageReferences.isEmpty else { throw CaptionError(file: "", "image_id \(id) has an empty reference list") }
            refs.append(imageReferences)
            hyps.append(hypotheses[id]!)
        }
        if tokenize {
            // Two batches, references then hypotheses, each one caption per line, as COCOEvalCap runs them.
            let counts = refs.map(\.count)
            var flat = PTBTokenizer.normalize(batch: refs.flatMap { $0 })[...]
            refs = counts.map { n in defer { flat = flat.dropFirst(n) }; return Array(flat.prefix(n)) }
            hyps = PTBTokenizer.normalize(batch: hyps)
        }

        let bleu = BLEU.score(references: refs, hypotheses: hyps)
        let rouge = ROUGEL.score(references: refs, hypotheses: hyps)
        let cider = CIDErD.score(references: refs, hypotheses: hyps)
        var perImage: [ImageID: ImageScores] = [:]
        for (i, id) in ids.enumerated() {
            perImage[id] = ImageScores(bleu: bleu.perImage[i], rougeL: rouge.perImage[i], ciderD: cider.perImage[i])
        }
        return MetricScores(bleu: bleu.corpus, rougeL: rouge.corpus, ciderD: cider.corpus, images: ids.count,
                            perImage: perImage)
    }
}

/// Scores of one image (pycocoevalcap's `imgToEval` entry).
public struct ImageScores: Equatable, Sendable {
    /// BLEU-1...BLEU-4.
    public var bleu: [Double]
    /// ROUGE-L, in 0...1.
    public var rougeL: Double
    /// CIDEr-D, on pycocoevalcap's ×10 scale.
    public var ciderD: Double
}

/// Corpus scores on pycocoevalcap's scales (BLEU and ROUGE-L in 0...1, CIDEr-D up to 10).
public struct MetricScores: Equatable, Sendable {
    /// BLEU-1...BLEU-4.
    public var bleu: [Double]
    /// ROUGE-L, the mean over images, in 0...1.
    public var rougeL: Double
    /// CIDEr-D, the mean over images, on pycocoevalcap's ×10 scale.
    public var ciderD: Double
    /// Number of images scored.
    public var images: Int
    /// The scores of each image scored, by id.
    public var perImage: [ImageID: ImageScores]

    /// BLEU-4, the score usually quoted.
    public var bleu4: Double { bleu[3] }

    /// The contract's names and order: BLEU-1...4, ROUGE-L, CIDEr-D.
    public var named: [(name: String, value: Double)] {
        (0..<4).map { ("BLEU-\($0 + 1)", bleu[$0]) } + [("ROUGE-L", rougeL), ("CIDEr-D", ciderD)]
    }

    /// `{"BLEU-1":..,"BLEU-2":..,"BLEU-3":..,"BLEU-4":..,"ROUGE-L":..,"CIDEr-D":..,"images":N}` in that
    /// order, with `extra` fields (e.g. `pointing_accuracy`) inserted before `images`.
    public func jsonLine(extra: [(name: String, value: Double)] = []) -> String {
        JSONLine.object((named + extra).map { ($0.name, JSONLine.number($0.value)) } + [("images", "\(images)")])
    }
}
