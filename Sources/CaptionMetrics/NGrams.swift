import CaptionSupport
import CaptionData

/// An n-gram (n ≤ 4) of interned token ids; unused slots are -1.
struct NGram: Hashable {
    let order: Int
    let a, b, c, d: Int

    init(_ ids: ArraySlice<Int>) {
        order = ids.count
        var it = ids.makeIterator()
        a = it.next() ?? -1; b = it.next() ?? -1; c = it.next() ?? -1; d = it.next() ?? -1
    }
}

/// Maps tokens to small integers so n-grams hash cheaply; shared by all sentences of one evaluation.
struct TokenInterner {
    private var ids: [String: Int] = [:]

    mutating func intern<S: Sequence>(_ tokens: S) -> [Int] where S.Element: StringProtocol {
        tokens.map { token in
            let key = String(token)
            if let id = ids[key] { return id }
            let id = ids.count
            ids[key] = id
            return id
        }
    }
}

/// Counts of every n-gram of order 1...maxOrder (pycocoevalcap's `precook`).
func ngramCounts(_ ids: [Int], maxOrder: Int = 4) -> [NGram: Int] {
    var counts: [NGram: Int] = [:]
    for n in 1...maxOrder where ids.count >= n {
        for i in 0...(ids.count - n) { counts[NGram(ids[i..<(i + n)]), default: 0] += 1 }
    }
    return counts
}

/// Python's `str.split()`: runs of whitespace separate, empty pieces dropped.
func pythonSplit(_ s: String) -> [Substring] {
    s.split(whereSeparator: { $0.isWhitespace })
}

/// A metric over a corpus: the mean of the per-image scores, and each image's score in input order.
public struct CorpusScore: Equatable, Sendable {
    /// The mean of the per-image scores (0 for no images).
    public var corpus: Double
    /// The score of each image, in input order.
    public var perImage: [Double]
}
