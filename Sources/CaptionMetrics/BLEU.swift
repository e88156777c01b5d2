import Foundation
import CaptionSupport
import CaptionData

/// BLEU-1...4 exactly as pycocoevalcap's `Bleu(4)` computes them (bleu_scorer.py, option "closest").
///
/// Corpus level: clipped n-gram matches and hypothesis n-gram counts are summed over all images,
/// the effective reference length of each image is the reference length closest to the hypothesis
/// length (ties go to the shorter), and the brevity penalty is applied to the corpus ratio. BLEU-n
/// is the geometric mean of precisions 1...n, each `(matches + 1e-15) / (guesses + 1e-9)`.
/// Per image: the same formulas on that image alone.
///
/// Inputs are whitespace-separated token strings (as `PTBTokenizer.normalize` gives).
public enum BLEU {
    static let small = 1e-9
    static let tiny = 1e-15

    /// BLEU-1...4 of the corpus and of each image, in 0...1.
    public struct Result: Equatable, Sendable {
        /// BLEU-1...BLEU-4 over the corpus.
        public var corpus: [Double]
        /// BLEU-1...BLEU-4 of each image, in input order.
        public var perImage: [[Double]]
    }

    /// Scores `hypotheses[i]` against `references[i]` for every i (each needs at least one reference).
    public static func score(references: [[String]], hypotheses: [String], maxOrder: Int = 4) -> Result {
        precondition(references.count == hypotheses.count, "one hypothesis per image")
        var interner = TokenInterner()
        var totalCorrect = [Int](repeating: 0, count: maxOrder)
        var totalGuess = [Int](repeating: 0, count: maxOrder)
        var totalTestLength = 0, totalReferenceLength = 0
        var perImage: [[Double]] = []

        for (refs, hypothesis) in zip(references, hypotheses) {
            precondition(!refs.isEmpty, "every image needs a reference")
            // cook_refs: reference lengths and, per n-gram, its largest count in any one reference.
            var referenceLengths: [Int] = []
            var maxCounts: [NGram: Int] = [:]
            for ref in refs {
                let ids = interner.intern(pythonSplit(ref))
                referenceLengths.append(ids.count)
                for (gram, count) in ngramCounts(ids, maxOrder: maxOrder) where count > maxCounts[gram, default: 0] {
                    maxCounts[gram] = count
                }
            }
            // cook_test
            let test = interner.intern(pythonSplit(hypothesis))
            let testLength = test.count
            let guess = (1...maxOrder).map { max(0, testLength - $0 + 1) }
            var correct = [Int](repeating: 0, count: maxOrder)
            for (gram, count) in ngramCounts(test, maxOrder: maxOrder) {
                correct[gram.order - 1] += min(maxCounts[gram, default: 0], count)
            }
            let referenceLength = referenceLengths.min { lhs, rhs in
                (abs(lhs - testLength), lhs) < (abs(rhs - testLength), rhs)
            }!

            totalTestLength += testLength
            totalReferenceLength += referenceLength
            for k in 0..<maxOrder { totalCorrect[k] += correct[k]; totalGuess[k] += guess[k] }
            perImage.append(combine(correct: correct, guess: guess, testLength: testLength,
                                    referenceLength: referenceLength))
        }
        let corpus = combine(correct: totalCorrect, guess: totalGuess, testLength: totalTestLength,
                             referenceLength: totalReferenceLength)
        return Result(corpus: corpus, perImage: perImage)
    }

    /// compute_score's product of smoothed precisions, n-th roots and brevity penalty.
    static func combine(correct: [Int], guess: [Int], testLength: Int, referenceLength: Int) -> [Double] {
        var scores: [Double] = []
        var product = 1.0
        for k in 0..<correct.count {
            product *= (Double(correct[k]) + tiny) / (Double(guess[k]) + small)
            scores.append(pow(product, 1.0 / Double(k + 1)))
        }
        let ratio = (Double(testLength) + tiny) / (Double(referenceLength) + small)
        if ratio < 1 {
            let penalty = exp(1 - 1 / ratio)
            scores = scores.map { $0 * penalty }
        }
        return scores
    }
}
