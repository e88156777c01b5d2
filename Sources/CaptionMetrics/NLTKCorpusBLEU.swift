import Foundation
import CaptionSupport
import CaptionData

/// The sgrvinod tutorial's BLEU-4: `nltk.translate.bleu_score.corpus_bleu(references, hypotheses)`
/// with the default weights (¼, ¼, ¼, ¼) and no smoothing. Not the COCO number (see `BLEU`): it
/// counts on whatever tokens it is given (the tutorial passes word indices without `<start>`,
/// `<end>` and `<pad>`) and differs in its details:
/// - each sentence's n-gram denominator is max(1, #n-grams), so very short hypotheses add 1;
/// - the brevity penalty is 1 when the hypotheses are longer than the references, 0 when they are
///   empty, else exp(1 − r/c);
/// - no unigram match gives exactly 0; an order with no match contributes log(DBL_MIN) (nltk's
///   `sys.float_info.min`), i.e. a score that is 0 in practice.
public enum NLTKCorpusBLEU {
    /// Corpus BLEU-4 of `hypotheses[i]` against `references[i]`.
    public static func score<Token: Hashable>(references: [[[Token]]], hypotheses: [[Token]]) -> Double {
        precondition(references.count == hypotheses.count, "one hypothesis per reference set")
        let maxOrder = 4
        var numerators = [Int](repeating: 0, count: maxOrder)
        var denominators = [Int](repeating: 0, count: maxOrder)
        var hypothesisLength = 0, referenceLength = 0

        for (refs, hypothesis) in zip(references, hypotheses) {
            for n in 1...maxOrder {
                let counts = ngrams(hypothesis, n)
                var maxReferenceCounts: [[Token]: Int] = [:]
                for ref in refs {
                    let refCounts = ngrams(ref, n)
                    for gram in counts.keys { maxReferenceCounts[gram] = max(maxReferenceCounts[gram] ?? 0, refCounts[gram] ?? 0) }
                }
                numerators[n - 1] += counts.reduce(0) { $0 + min($1.value, maxReferenceCounts[$1.key] ?? 0) }
                denominators[n - 1] += max(1, counts.values.reduce(0, +))
            }
            hypothesisLength += hypothesis.count
            // closest_ref_length: ties go to the shorter reference.
            referenceLength += refs.map(\.count).min { lhs, rhs in
                (abs(lhs - hypothesis.count), lhs) < (abs(rhs - hypothesis.count), rhs)
            } ?? 0
        }

        let brevityPenalty: Double
        if hypothesisLength > referenceLength { brevityPenalty = 1 }
        else if hypothesisLength == 0 { brevityPenalty = 0 }
        else { brevityPenalty = exp(1 - Double(referenceLength) / Double(hypothesisLength)) }

        if numerators[0] == 0 { return 0 }
        var logSum = 0.0
        for n in 0..<maxOrder {
            let precision = numerators[n] == 0
                ? Double.leastNormalMagnitude
                : Double(numerators[n]) / Double(denominators[n])
            logSum += 0.25 * log(precision)
        }
        return brevityPenalty * exp(logSum)
    }

    static func ngrams<Token: Hashable>(_ tokens: [Token], _ n: Int) -> [[Token]: Int] {
        var counts: [[Token]: Int] = [:]
        guard tokens.count >= n else { return counts }
        for i in 0...(tokens.count - n) { counts[Array(tokens[i..<(i + n)]), default: 0] += 1 }
        return counts
    }
}
