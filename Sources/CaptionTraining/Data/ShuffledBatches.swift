import TensorCore
import CaptionSupport
import CaptionData
import CaptionMetrics
import SyntheticWorld
import Captioning

/// Mini-batches of `0..<count` in a fresh random order each epoch.
///
/// The order of epoch `e` is a pure function of `(seed, e)`, so a run resumed at (epoch, batch)
/// sees exactly the batches the uninterrupted run would have seen: store the two numbers in the
/// checkpoint and call `batches(epoch:)` again.
public struct ShuffledBatches: Equatable, Codable, Sendable {
    /// Items shuffled: the batches cover `0..<count`.
    public let count: Int
    /// Items per batch (the last batch may be smaller unless `dropLast`).
    public let batchSize: Int
    /// With the epoch, decides each epoch's order.
    public let seed: UInt64
    /// Drop a final batch smaller than `batchSize` (otherwise it is kept).
    public let dropLast: Bool

    /// Batches of `batchSize` from `0..<count`; traps unless `count` ≥ 0 and `batchSize` > 0.
    public init(count: Int, batchSize: Int, seed: UInt64, dropLast: Bool = false) {
        precondition(count >= 0 && batchSize > 0, "ShuffledBatches needs count >= 0 and batchSize > 0")
        self.count = count; self.batchSize = batchSize; self.seed = seed; self.dropLast = dropLast
    }

    /// Batches per epoch.
    public var batchesPerEpoch: Int { dropLast ? count / batchSize : (count + batchSize - 1) / batchSize }

    /// The epoch's order: a permutation of `0..<count` (Fisher–Yates on an RNG seeded from (seed, epoch)).
    public func permutation(epoch: Int) -> [Int] {
        var order = Array(0..<count)
        var rng = RNG(seed: Self.epochSeed(seed, epoch))
        var i = count - 1
        while i > 0 {
            let j = rng.int(below: i + 1)
            order.swapAt(i, j)
            i -= 1
        }
        return order
    }

    /// The epoch's batches in order.
    public func batches(epoch: Int) -> [[Int]] {
        let order = permutation(epoch: epoch)
        return (0..<batchesPerEpoch).map { b in Array(order[(b * batchSize)..<min(count, (b + 1) * batchSize)]) }
    }

    /// Batch `index` of `epoch` (for resuming mid-epoch).
    public func batch(_ index: Int, epoch: Int) -> [Int] {
        precondition(index >= 0 && index < batchesPerEpoch, "batch \(index) out of range 0..<\(batchesPerEpoch)")
        let order = permutation(epoch: epoch)
        return Array(order[(index * batchSize)..<min(count, (index + 1) * batchSize)])
    }

    /// Independent seeds for neighbouring epochs: the SplitMix64 finaliser of seed ⊕ mixed epoch
    /// (adding the epoch to the seed directly would make epoch streams overlapping shifts of each other).
    static func epochSeed(_ seed: UInt64, _ epoch: Int) -> UInt64 {
        mix64(seed ^ mix64(UInt64(bitPattern: Int64(epoch)) &+ 0x9E37_79B9_7F4A_7C15))
    }
}
