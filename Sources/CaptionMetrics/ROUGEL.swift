import CaptionSupport
import CaptionData

/// ROUGE-L exactly as pycocoevalcap's rouge.py computes it.
///
/// Per image: for each reference, the longest common subsequence with the hypothesis gives a
/// precision (LCS / hypothesis length) and a recall (LCS / reference length); the *maximum*
/// precision and the *maximum* recall over references (possibly from different references) are
/// combined as F = (1 + β²)·P·R / (R + β²·P) with β = 1.2. The corpus score is the mean over images.
///
/// Like rouge.py, sentences are split on single spaces (`"".split(" ") == [""]`, so an empty
/// hypothesis is one empty token).
public enum ROUGEL {
    /// β of the F-measure: recall weighs β² times as much as precision.
    public static let beta = 1.2

    /// ROUGE-L of the corpus and of each image, in 0...1.
    public typealias Result = CorpusScore

    /// Scores `hypotheses[i]` against `references[i]` for every i (each needs at least one reference).
    public static func score(references: [[String]], hypotheses: [String]) -> Result {
        precondition(references.count == hypotheses.count, "one hypothesis per image")
        var interner = TokenInterner()
        let perImage = zip(references, hypotheses).map { refs, hypothesis -> Double in
            precondition(!refs.isEmpty, "every image needs a reference")
            let candidate = interner.intern(spaceSplit(hypothesis))
            var bestPrecision = 0.0, bestRecall = 0.0
            for ref in refs {
                let tokens = interner.intern(spaceSplit(ref))
                let lcs = Double(lcsLength(tokens, candidate))
                bestPrecision = max(bestPrecision, lcs / Double(candidate.count))
                bestRecall = max(bestRecall, lcs / Double(tokens.count))
            }
            guard bestPrecision != 0 && bestRecall != 0 else { return 0 }
            let beta2 = beta * beta
            return ((1 + beta2) * bestPrecision * bestRecall) / (bestRecall + beta2 * bestPrecision)
        }
        return Result(corpus: perImage.isEmpty ? 0 : perImage.reduce(0, +) / Double(perImage.count),
                      perImage: perImage)
    }

    /// Python's `s.split(" ")`: every single space separates, empty pieces kept.
    static func spaceSplit(_ s: String) -> [Substring] {
        s.split(separator: " ", omittingEmptySubsequences: false)
    }

    /// Length of the longest common subsequence (one rolling row of the DP table).
    static func lcsLength(_ x: [Int], _ y: [Int]) -> Int {
        let (long, short) = x.count >= y.count ? (x, y) : (y, x)
        guard !short.isEmpty else { return 0 }
        var row = [Int](repeating: 0, count: short.count + 1)
        for a in long {
            var diagonal = 0  // row[j-1] of the previous line
            for j in 1...short.count {
                let above = row[j]
                row[j] = a == short[j - 1] ? diagonal + 1 : max(above, row[j - 1])
                diagonal = above
            }
        }
        return row[short.count]
    }
}
