import TensorCore
import CaptionSupport
import CaptionData
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// A model that can be stepped one token at a time over many hypotheses at once (rows). The beam search owns
/// the bookkeeping; the model owns the tensors (hidden state, which image each row attends over, the
/// precomputed encoder projection). `AttentionStepModel` is the attention decoder's.
public protocol CaptionStepModel {
    associatedtype State
    /// Size of the output vocabulary (V).
    var vocabularySize: Int { get }
    /// The state before the first token: one row per image, in image order.
    func initialState() -> State
    /// Feeds one token per row and advances `state`. Returns rows×V scores (logits: the search applies
    /// log-softmax, so log-probabilities work as well) and the rows×L attention weights used for this step.
    func step(tokens: [Int], state: inout State) -> (scores: Tensor, alphas: Tensor)
    /// The state restricted to `rows` of `state`, in that order (rows may repeat).
    func select(rows: [Int], from state: State) -> State
}

/// A step model that can also decode greedily without handing over every step's full scores: it picks each
/// row's best word itself (more cheaply than computing all V scores) and, once the search is over, recomputes the
/// scores of all steps together. `AttentionStepModel` with an `ArgmaxScreen` is one.
public protocol GreedyStepModel: CaptionStepModel {
    /// True when `greedyStep` can run steps of `rows` rows (and of fewer).
    func supportsGreedySteps(rows: Int) -> Bool
    /// Advances `state` as `step` does; returns each row's best word (the largest score, the lowest index on
    /// ties), the rows×L α, and the step's outputs, from which `scores(outputs:)` gives the scores later.
    func greedyStep(tokens: [Int], state: inout State) -> (words: [Int], alphas: Tensor, outputs: Tensor)
    /// The scores `step` would have returned at each step, from the `outputs` of each `greedyStep`, in order.
    func scores(outputs: [Tensor]) -> [Tensor]
}

/// One caption hypothesis chosen by the search.
public struct CaptionHypothesis: Equatable, Sendable {
    /// Generated token ids after `<start>`, ending with `<end>` when `finished`.
    public var tokens: [Int]
    /// Natural-log probability of each generated token (same count as `tokens`).
    public var tokenLogProbs: [Float]
    /// The tutorial's cumulative score: the float32 running sum of `tokenLogProbs`.
    public var logProb: Float
    /// α_t (L weights) for each generated token: the attention of the step that produced it.
    public var alphas: [[Float]]
    /// True when the hypothesis ended with `<end>`; false when no hypothesis of the image reached `<end>`
    /// within the length limit and the best live one was taken instead.
    public var finished: Bool
}

/// Beam search exactly as the sgrvinod tutorial's `caption_image_beam_search`, for any beam size and any
/// number of images at once:
///
/// - hypotheses are ranked by cumulative log-probability Σ log p (no length normalisation);
/// - step 1 expands the single `<start>` row into the k best words (the tutorial runs k identical rows and
///   takes the top k of row 0: the same result, for a third of the work at k = 3);
/// - every later step keeps the top k of all k×V continuations, where k is the number of live hypotheses;
///   a hypothesis that emits `<end>` is retired and k shrinks; an image is done when k reaches 0;
/// - the answer is the retired hypothesis with the best score (the earliest on ties);
/// - `beamSize == 1` is greedy decoding.
///
/// Several images are searched together: each step feeds the live rows of all unfinished images to the model
/// in one call (so its matrix products cover every beam of every image), and the selection is per image.
///
/// Length limit: at most `maxLength` words, so at most `maxLength + 1` steps (the tutorial's `step > 50` stop
/// with its 50). Where the tutorial would then fail on an image with no retired hypothesis, this returns the
/// best live hypothesis of `maxLength` words, marked unfinished.
public struct BeamSearch: Sendable {
    /// k, hypotheses kept per image.
    public var beamSize: Int
    /// Most words per caption (`<end>` not counted).
    public var maxLength: Int
    /// Length penalty α for the final choice: a hypothesis of n tokens (`<end>` included) is ranked by
    /// logProb / n^α. 0 (default) is the tutorial's plain cumulative score. Pruning always uses the plain score.
    public var lengthPenalty: Float

    /// A search keeping `beamSize` hypotheses per image (1 = greedy), captions of at most `maxLength` words; both must be ≥ 1.
    public init(beamSize: Int = 3, maxLength: Int = 50, lengthPenalty: Float = 0) {
        precondition(beamSize >= 1, "beam size must be at least 1")
        precondition(maxLength >= 1, "maximum length must be at least 1")
        self.beamSize = beamSize
        self.maxLength = maxLength
        self.lengthPenalty = lengthPenalty
    }

    /// A live hypothesis.
    private struct Live {
        var tokens: [Int] = []
        var tokenLogProbs: [Float] = []
        var logProb: Float = 0
        var alphas: [[Float]] = []

        func hypothesis(finished: Bool) -> CaptionHypothesis {
            CaptionHypothesis(tokens: tokens, tokenLogProbs: tokenLogProbs, logProb: logProb, alphas: alphas,
                              finished: finished)
        }
    }

    /// Searches the model's `images` images together; returns the best hypothesis of each, in image order.
    /// `endToken` nil means no token retires a hypothesis (every caption runs to `maxLength`; benchmarks).
    /// Greedy search (`beamSize == 1`) goes through `GreedyStepModel.greedyStep` when the model offers it.
    public func run<M: CaptionStepModel>(_ model: M, images: Int, startToken: Int, endToken: Int?) -> [CaptionHypothesis] {
        if beamSize == 1, let greedy = model as? any GreedyStepModel, greedy.supportsGreedySteps(rows: images) {
            return runGreedy(greedy, images: images, startToken: startToken, endToken: endToken)
        }
        let vocab = model.vocabularySize
        var state = model.initialState()
        // The state's rows are the live hypotheses of every unfinished image, image by image, in `live` order.
        var live = [[Live]](repeating: [Live()], count: images)
        var done = [[CaptionHypothesis]](repeating: [], count: images)
        var tokens = [Int](repeating: startToken, count: images)

        for step in 1...(maxLength + 1) {
            let (scores, alphas) = model.step(tokens: tokens, state: &state)
            precondition(scores.shape == [tokens.count, vocab] && alphas.rank == 2 && alphas.shape[0] == tokens.count,
                         "beam search: model returned scores \(scores.shape), alphas \(alphas.shape) for \(tokens.count) rows")
            let nL = alphas.shape[1]
            let lastStep = step == maxLength + 1
            var keepRows: [Int] = [], nextTokens: [Int] = []
            var row0 = 0
            scores.withUnsafeBufferPointer { sp in
                alphas.withUnsafeBufferPointer { ap in
                    for image in 0..<images where !live[image].isEmpty {
                        let rows = live[image].count
                        defer { row0 += rows }
                        // k: the beam at step 1, afterwards the number of live hypotheses.
                        let k = min(step == 1 ? beamSize : rows, rows * vocab)
                        let top = TopK.best(k, rows: rows, vocab: vocab, scores: sp.baseAddress! + row0 * vocab,
                                              prior: live[image].map(\.logProb))
                        var next: [Live] = []
                        for c in top {
                            var h = live[image][c.row]
                            h.tokens.append(c.word)
                            h.tokenLogProbs.append(c.tokenLogProb)
                            h.logProb = c.score
                            h.alphas.append(Array(UnsafeBufferPointer(start: ap.baseAddress! + (row0 + c.row) * nL, count: nL)))
                            if c.word == endToken {
                                done[image].append(h.hypothesis(finished: true))
                            } else if !lastStep {
                                next.append(h)
                                keepRows.append(row0 + c.row)
                                nextTokens.append(c.word)
                            }
                        }
                        // Out of steps with nothing retired: keep the best of the maxLength-word hypotheses.
                        if lastStep && done[image].isEmpty {
                            done[image] = live[image].map { $0.hypothesis(finished: false) }
                        }
                        live[image] = next
                    }
                }
            }
            if keepRows.isEmpty { break }
            state = model.select(rows: keepRows, from: state)
            tokens = nextTokens
        }
        return done.map(best)
    }

    /// `run` for k = 1 on a `GreedyStepModel`: the same hypotheses as the general search gives with k = 1 (which
    /// keeps, per image, the one word of largest log-softmax score), except that a word is chosen by its raw score
    /// (log-softmax subtracts the same number from every word of a row, so only a tie made by that subtraction's
    /// rounding could tell them apart). Token log-probabilities come from the recomputed scores at the end, by the
    /// same log-sum-exp as `TopK` (`Kernels.logSumExp`: the same loops), and are summed in the same order.
    private func runGreedy<G: GreedyStepModel>(_ model: G, images: Int, startToken: Int, endToken: Int?) -> [CaptionHypothesis] {
        var state = model.initialState()
        var imageOfRow = Array(0..<images), tokens = [Int](repeating: startToken, count: images)
        var words = [[Int]](repeating: [], count: images), alphas = [[[Float]]](repeating: [], count: images)
        var finished = [Bool](repeating: false, count: images)
        // Per step: its outputs, and for each of its rows the image and whether its word was kept.
        var outputs: [Tensor] = [], stepRows: [[(image: Int, kept: Bool)]] = []
        for step in 1...(maxLength + 1) {
            let out = model.greedyStep(tokens: tokens, state: &state)
            let nL = out.alphas.shape[1]
            var keepRows: [Int] = [], nextTokens: [Int] = [], rows: [(image: Int, kept: Bool)] = []
            out.alphas.withUnsafeBufferPointer { ap in
                for (r, image) in imageOfRow.enumerated() {
                    let word = out.words[r], isEnd = word == endToken
                    // The last step only ever adds <end>: without it the caption stays at maxLength words, unfinished.
                    let kept = isEnd || step <= maxLength
                    rows.append((image, kept))
                    guard kept else { continue }
                    words[image].append(word)
                    alphas[image].append(Array(UnsafeBufferPointer(start: ap.baseAddress! + r * nL, count: nL)))
                    if isEnd { finished[image] = true } else { keepRows.append(r); nextTokens.append(word) }
                }
            }
            outputs.append(out.outputs)
            stepRows.append(rows)
            if keepRows.isEmpty { break }  // every image finished, or the last step was taken
            state = model.select(rows: keepRows, from: state)
            imageOfRow = keepRows.map { imageOfRow[$0] }
            tokens = nextTokens
        }
        let vocab = model.vocabularySize
        var tokenLogProbs = [[Float]](repeating: [], count: images), logProb = [Float](repeating: 0, count: images)
        for (scores, rows) in zip(model.scores(outputs: outputs), stepRows) {
            scores.withUnsafeBufferPointer { sp in
                for (r, row) in rows.enumerated() where row.kept {
                    let x = sp.baseAddress! + r * vocab
                    let lp = x[words[row.image][tokenLogProbs[row.image].count]] - Kernels.logSumExp(vocab, x)
                    tokenLogProbs[row.image].append(lp)
                    logProb[row.image] += lp
                }
            }
        }
        return (0..<images).map {
            CaptionHypothesis(tokens: words[$0], tokenLogProbs: tokenLogProbs[$0], logProb: logProb[$0],
                              alphas: alphas[$0], finished: finished[$0])
        }
    }

    /// The best retired hypothesis; the earliest retired wins ties (Python's `list.index(max(...))`).
    private func best(_ hypotheses: [CaptionHypothesis]) -> CaptionHypothesis {
        func score(_ h: CaptionHypothesis) -> Float {
            lengthPenalty == 0 ? h.logProb : h.logProb / powf(Float(max(1, h.tokens.count)), lengthPenalty)
        }
        var bestIndex = 0
        for i in hypotheses.indices.dropFirst() where score(hypotheses[i]) > score(hypotheses[bestIndex]) { bestIndex = i }
        return hypotheses[bestIndex]
    }
}

/// Top-k selection over rows×V continuations without sorting (or even normalising) the vocabulary.
///
/// For row r with running score s_r and scores x_r, a continuation's score is s_r + (x_rw − lse_r) (log-softmax as
/// PyTorch computes it: x − (max + log Σ exp(x − max))). One pass per row finds the row's max and log-sum-exp; a
/// second pass keeps a sorted list of the k best, skipping at once any row whose best word cannot enter it.
enum TopK {
    struct Candidate {
        var score: Float
        var row: Int
        var word: Int
        var tokenLogProb: Float
    }

    /// The k best (score, row, word) over rows×vocab, best first; ties go to the lower flat index row·V + word
    /// (the order in which torch.topk returns equal values on CPU for these sizes is unspecified; random-weight
    /// scores do not tie).
    static func best(_ k: Int, rows: Int, vocab: Int, scores: UnsafePointer<Float>, prior: [Float]) -> [Candidate] {
        precondition(k >= 1 && prior.count == rows)
        var top: [Candidate] = []
        top.reserveCapacity(k + 1)
        var threshold = -Float.infinity
        for r in 0..<rows {
            let x = scores + r * vocab
            var m = -Float.infinity
            for w in 0..<vocab { m = max(m, x[w]) }
            var sum: Float = 0
            for w in 0..<vocab { sum += expf(x[w] - m) }
            let lse = m + logf(sum), base = prior[r]
            if top.count == k && !(base + (m - lse) > threshold) { continue }
            for w in 0..<vocab {
                let lp = x[w] - lse
                let s = base + lp
                if top.count == k && !(s > threshold) { continue }
                var i = top.count
                while i > 0 && s > top[i - 1].score { i -= 1 }
                top.insert(Candidate(score: s, row: r, word: w, tokenLogProb: lp), at: i)
                if top.count > k { top.removeLast() }
                if top.count == k { threshold = top[k - 1].score }
            }
        }
        return top
    }
}
