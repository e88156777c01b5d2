import Foundation
import CaptionSupport
import CaptionData

/// CIDEr-D exactly as pycocoevalcap's `Cider` computes it (cider_scorer.py), which is what COCO
/// reports as "CIDEr".
///
/// Each sentence becomes, per n-gram order 1...4, a tf-idf vector: term count × (log(#images) −
/// log(max(1, df))), where df counts the evaluated images whose references contain the n-gram.
/// The similarity to each reference is the clipped cosine Σ min(h, r)·r / (‖h‖‖r‖), times the
/// Gaussian length penalty exp(−δ²/(2σ²)), σ = 6. Per image: mean over orders, mean over
/// references, × 10; the corpus score is the mean over images.
///
/// Quirk kept on purpose: pycocoevalcap's "length" δ compares the number of *bigrams*
/// (`if n == 1: length += term_freq` with n the 0-based order), i.e. max(0, words − 1), so an empty
/// sentence and a one-word sentence have the same length.
public enum CIDErD {
    /// σ of the Gaussian length penalty, in (bigram) words.
    public static let sigma = 6.0
    /// The highest n-gram order; orders 1...4 are averaged.
    public static let maxOrder = 4

    /// CIDEr-D of the corpus and of each image, on pycocoevalcap's ×10 scale.
    public typealias Result = CorpusScore

    /// Scores `hypotheses[i]` against `references[i]` for every i (each needs at least one reference); document
    /// frequencies come from these references only.
    public static func score(references: [[String]], hypotheses: [String]) -> Result {
        precondition(references.count == hypotheses.count, "one hypothesis per image")
        var interner = TokenInterner()
        let referenceCounts = references.map { refs in
            refs.map { ngramCounts(interner.intern(pythonSplit($0)), maxOrder: maxOrder) }
        }
        let hypothesisCounts = hypotheses.map { ngramCounts(interner.intern(pythonSplit($0)), maxOrder: maxOrder) }

        // Document frequency: in how many images' reference sets each n-gram occurs.
        var documentFrequency: [NGram: Double] = [:]
        for refs in referenceCounts {
            var seen = Set<NGram>()
            for counts in refs { seen.formUnion(counts.keys) }
            for gram in seen { documentFrequency[gram, default: 0] += 1 }
        }
        let logImageCount = log(Double(references.count))

        func vector(_ counts: [NGram: Int]) -> TFIDF {
            var result = TFIDF()
            for (gram, termFrequency) in counts {
                let df = log(max(1.0, documentFrequency[gram] ?? 0))
                let weight = Double(termFrequency) * (logImageCount - df)
                result.weights[gram] = weight
                result.norms[gram.order - 1] += weight * weight
                if gram.order == 2 { result.length += termFrequency }
            }
            result.norms = result.norms.map { $0.squareRoot() }
            return result
        }

        let perImage = zip(hypothesisCounts, referenceCounts).map { hypothesis, refs -> Double in
            precondition(!refs.isEmpty, "every image needs a reference")
            let h = vector(hypothesis)
            var sum = [Double](repeating: 0, count: maxOrder)
            for ref in refs {
                let similarity = h.similarity(to: vector(ref))
                for n in 0..<maxOrder { sum[n] += similarity[n] }
            }
            let meanOverOrders = sum.reduce(0, +) / Double(maxOrder)
            return meanOverOrders / Double(refs.count) * 10
        }
        return Result(corpus: perImage.isEmpty ? 0 : perImage.reduce(0, +) / Double(perImage.count),
                      perImage: perImage)
    }

    /// One sentence's tf-idf weights, per-order norms and (bigram) length.
    struct TFIDF {
        var weights: [NGram: Double] = [:]
        var norms = [Double](repeating: 0, count: CIDErD.maxOrder)
        var length = 0

        /// cider_scorer.py's `sim`: clipped dot product per order, cosine-normalised when both norms
        /// are non-zero, times the length penalty.
        func similarity(to reference: TFIDF) -> [Double] {
            var value = [Double](repeating: 0, count: CIDErD.maxOrder)
            for (gram, weight) in weights {
                let r = reference.weights[gram] ?? 0
                value[gram.order - 1] += min(weight, r) * r
            }
            let delta = Double(length - reference.length)
            let penalty = pow(M_E, -(delta * delta) / (2 * CIDErD.sigma * CIDErD.sigma))
            for n in 0..<CIDErD.maxOrder {
                if norms[n] != 0 && reference.norms[n] != 0 { value[n] /= norms[n] * reference.norms[n] }
                value[n] *= penalty
            }
            return value
        }
    }
}
