import Foundation
import CaptionSupport
import CaptionData

/// The word map of the sgrvinod tutorial (its `WORDMAP_*.json`, our `vocab.json`): `<pad>` = 0, the
/// regular words 1...V, then `<unk>` = V+1, `<start>` = V+2, `<end>` = V+3.
///
/// Loading accepts any word map whose indices are exactly 0..<count and that contains the four
/// special tokens, so a tutorial WORDMAP file loads unchanged; saving writes the tutorial layout.
public struct Vocabulary: Equatable, Sendable {
    /// Fills captions past their `<end>` to a common length (index 0 in the tutorial layout).
    public static let padToken = "<pad>"
    /// Stands for every word that has no entry of its own.
    public static let unknownToken = "<unk>"
    /// The first input of every caption: decoding starts from it.
    public static let startToken = "<start>"
    /// Ends a caption: generation stops when it is emitted.
    public static let endToken = "<end>"
    /// The four tokens every vocabulary has besides its regular words.
    public static let specialTokens: Set<String> = [padToken, unknownToken, startToken, endToken]

    /// Every token by index (`tokens[0] == "<pad>"` in the tutorial layout).
    public let tokens: [String]
    private let indexByToken: [String: Int]

    /// Index of `<pad>`.
    public let padIndex: Int
    /// Index of `<unk>`, which `index(of:)` returns for unknown words.
    public let unknownIndex: Int
    /// Index of `<start>`.
    public let startIndex: Int
    /// Index of `<end>`.
    public let endIndex: Int

    /// Number of entries including the four special tokens (the decoder's output size).
    public var count: Int { tokens.count }

    /// The tutorial layout around `words` (regular words, in order, no duplicates, no special tokens).
    public init(words: [String]) {
        precondition(Set(words).count == words.count, "Vocabulary words must be unique")
        precondition(Set(words).isDisjoint(with: Self.specialTokens), "Vocabulary words must not be special tokens")
        let all = [Self.padToken] + words + [Self.unknownToken, Self.startToken, Self.endToken]
        self.init(validatedTokens: all)
    }

    /// A word map `{"word": index}` as the tutorial saves it.
    public init(wordMap: [String: Int], file: String = "word map") throws {
        var tokens = [String?](repeating: nil, count: wordMap.count)
        for (word, index) in wordMap.sorted(by: { ($0.value, $0.key) < ($1.value, $1.key) }) {
            guard index >= 0 && index < wordMap.count else {
                throw CaptionError(file: file, "index \(index) of \"\(word)\" is outside 0..<\(wordMap.count) (indices must be 0, 1, 2, ... with no gaps)")
            }
            if let other = tokens[index] {
                throw CaptionError(file: file, "index \(index) is used by both \"\(other)\" and \"\(word)\"")
            }
            tokens[index] = word
        }
        for special in [Self.padToken, Self.unknownToken, Self.startToken, Self.endToken] where wordMap[special] == nil {
            throw CaptionError(file: file, "missing the special token \(special)")
        }
        self.init(validatedTokens: tokens.map { $0! })
    }

    private init(validatedTokens: [String]) {
        tokens = validatedTokens
        indexByToken = Dictionary(uniqueKeysWithValues: validatedTokens.enumerated().map { ($1, $0) })
        padIndex = indexByToken[Self.padToken]!
        unknownIndex = indexByToken[Self.unknownToken]!
        startIndex = indexByToken[Self.startToken]!
        endIndex = indexByToken[Self.endToken]!
    }

    /// The tutorial's `create_input_files` rule: words seen *more than* `minWordFrequency` times in
    /// `captions` (tokenised), in order of first appearance. The tutorial default is 5.
    public static func build(from captions: [[String]], minWordFrequency: Int = 5) -> Vocabulary {
        var frequency: [String: Int] = [:]
        var firstSeen: [String] = []
        for caption in captions {
            for word in caption where !specialTokens.contains(word) {
                if let n = frequency[word] { frequency[word] = n + 1 } else { frequency[word] = 1; firstSeen.append(word) }
            }
        }
        return Vocabulary(words: firstSeen.filter { frequency[$0]! > minWordFrequency })
    }

    /// The index of `token`, or `<unk>`'s.
    public func index(of token: String) -> Int { indexByToken[token] ?? unknownIndex }

    /// True when `token` has its own entry.
    public func contains(_ token: String) -> Bool { indexByToken[token] != nil }

    /// `<start> w1 ... wn <end>` as indices (unknown words become `<unk>`).
    public func encode(_ words: [String]) -> [Int] {
        [startIndex] + words.map(index(of:)) + [endIndex]
    }

    /// The tutorial's training row: `<start> w1 ... wn <end>` then `<pad>` up to `maxLength + 2`
    /// entries; nil when the caption has more than `maxLength` words.
    public func encode(_ words: [String], paddedTo maxLength: Int) -> [Int]? {
        guard words.count <= maxLength else { return nil }
        return encode(words) + [Int](repeating: padIndex, count: maxLength - words.count)
    }

    /// The words of an index sequence: stops at `<end>`, skips `<start>` and `<pad>`; indices outside
    /// the vocabulary read as `<unk>`.
    public func decode(_ indices: [Int]) -> [String] {
        var words: [String] = []
        for index in indices {
            if index == endIndex { break }
            if index == startIndex || index == padIndex { continue }
            words.append(index >= 0 && index < tokens.count ? tokens[index] : Self.unknownToken)
        }
        return words
    }

    // MARK: - vocab.json

    /// Reads a WORDMAP / `vocab.json` file (`{"word": index, ...}`).
    public static func load(from path: String) throws -> Vocabulary {
        let (input, root) = try JSONInput.load(path)
        let object = try input.object(root, "top level")
        var wordMap: [String: Int] = [:]
        for (word, value) in object { wordMap[word] = try input.int(value, "\"\(word)\"") }
        return try Vocabulary(wordMap: wordMap, file: path)
    }

    /// The word map as JSON, entries in the tutorial's order (words, `<unk>`, `<start>`, `<end>`, `<pad>`).
    public func jsonData() -> Data {
        let order = tokens.indices.filter { $0 != padIndex } + [padIndex]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        let entries = order.map { index -> String in
            let key = String(decoding: try! encoder.encode(tokens[index]), as: UTF8.self)
            return "\(key): \(index)"
        }
        return Data(("{" + entries.joined(separator: ", ") + "}\n").utf8)
    }

    /// Writes `vocab.json` atomically (a temporary file renamed into place).
    public func save(to path: String) throws {
        do {
            try jsonData().write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw CaptionError(file: path, "cannot write: \(error.localizedDescription)")
        }
    }
}
