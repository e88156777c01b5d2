import Foundation
import Vision
import CaptionSupport
import CaptionData

/// A generated caption with its scores and attention.
public struct CaptionResult: Equatable, Sendable {
    /// The words joined by single spaces.
    public var caption: String
    /// The generated words, `<end>` excluded (the `tokens` of `caption --format json`).
    public var tokens: [String]
    /// The generated token ids; `tokenIDs.last` is `<end>` when `finished`.
    public var tokenIDs: [Int]
    /// Natural-log probability of each generated id (aligned with `tokenIDs`).
    public var tokenLogProbs: [Float]
    /// Σ tokenLogProbs (`<end>` included): the beam search's score.
    public var logProb: Float
    /// α for each generated id (aligned with `tokenIDs`, so `alphas[i]` is the attention behind `tokens[i]`):
    /// `grid.height·grid.width` weights summing to 1, row-major over the annotation grid.
    public var alphas: [[Float]]
    /// The annotation grid H'×W' (L = H'·W').
    public var grid: GridSize
    /// False when the caption was cut at the maximum length without reaching `<end>`.
    public var finished: Bool

    /// A result from its parts, stored as given (the arrays aligned as documented above).
    public init(caption: String, tokens: [String], tokenIDs: [Int], tokenLogProbs: [Float], logProb: Float,
                alphas: [[Float]], grid: GridSize, finished: Bool) {
        self.caption = caption
        self.tokens = tokens
        self.tokenIDs = tokenIDs
        self.tokenLogProbs = tokenLogProbs
        self.logProb = logProb
        self.alphas = alphas
        self.grid = grid
        self.finished = finished
    }

    /// The contract's JSON record, one line: `{"image": PATH, "caption": "...", "tokens": [...], "log_prob": -3.21}`.
    public func jsonLine(image: String) -> String {
        JSONLine.object([("image", JSONLine.string(image)), ("caption", JSONLine.string(caption)),
                         ("tokens", JSONLine.array(tokens.map(JSONLine.string))), ("log_prob", JSONLine.number(logProb))])
    }
}

/// The teacher-forced score of a given caption.
public struct CaptionScore: Equatable, Sendable {
    /// The caption's words after tokenisation (lower-cased, split on non-letters/digits).
    public var words: [String]
    /// The scored ids: w_1 … w_n `<end>` (a word missing from the vocabulary is `<unk>`).
    public var tokenIDs: [Int]
    /// log p(tokenIDs[t] | `<start>`, w_1 … w_t, image), natural log; n + 1 entries.
    public var tokenLogProbs: [Float]
    /// Σ tokenLogProbs.
    public var logProb: Float
    /// Words of the caption that are not in the vocabulary (scored as `<unk>`).
    public var unknownWords: [String]

    /// A score from its parts, stored as given (`tokenLogProbs` aligned with `tokenIDs`).
    public init(words: [String], tokenIDs: [Int], tokenLogProbs: [Float], logProb: Float, unknownWords: [String]) {
        self.words = words
        self.tokenIDs = tokenIDs
        self.tokenLogProbs = tokenLogProbs
        self.logProb = logProb
        self.unknownWords = unknownWords
    }

    /// `{"image": PATH, "caption": TEXT, "log_prob": -7.1, "token_log_probs": [...], "tokens": [...]}` on one line.
    public func jsonLine(image: String, caption: String) -> String {
        JSONLine.object([("image", JSONLine.string(image)), ("caption", JSONLine.string(caption)),
                         ("log_prob", JSONLine.number(logProb)),
                         ("token_log_probs", JSONLine.array(tokenLogProbs.map(JSONLine.number))),
                         ("tokens", JSONLine.array((words + [Vocabulary.endToken]).map(JSONLine.string)))])
    }
}
