import TensorCore
import CaptionSupport
import CaptionData
import CaptionMetrics
import SyntheticWorld
import Captioning

/// Which captions each batch of an epoch holds: a pure function of (seed, epoch, batch), so a resumed run sees the
/// batches the uninterrupted run would have seen.
///
/// - `captionsPerImage == 0`: the tutorial's unit, (image, caption) pairs, shuffled each epoch; every caption is
///   seen once per epoch.
/// - `captionsPerImage == k > 0`: images, shuffled each epoch; each contributes k of its captions (all if it has
///   fewer), a seeded choice per (epoch, image). The encoder runs once per image for k captions.
struct TrainingBatches {
    let pairs: [CaptionPair]
    let captionCounts: [Int]
    let captionsPerImage: Int
    let shuffle: ShuffledBatches
    let seed: UInt64

    init(dataset: CaptionDataset, batchSize: Int, captionsPerImage: Int, seed: UInt64) {
        self.captionsPerImage = captionsPerImage
        self.seed = seed
        captionCounts = dataset.images.map(\.captions.count)
        if captionsPerImage == 0 {
            pairs = dataset.pairs
            shuffle = ShuffledBatches(count: pairs.count, batchSize: batchSize, seed: seed)
        } else {
            pairs = []
            shuffle = ShuffledBatches(count: dataset.images.count, batchSize: batchSize, seed: seed)
        }
    }

    var batchesPerEpoch: Int { shuffle.batchesPerEpoch }

    /// All batches of `epoch`, in order.
    func batches(epoch: Int) -> [[CaptionPair]] {
        shuffle.batches(epoch: epoch).map { members in
            if captionsPerImage == 0 { return members.map { pairs[$0] } }
            return members.flatMap { image in chosenCaptions(image: image, epoch: epoch).map { CaptionPair(image: image, caption: $0) } }
        }
    }

    /// k distinct caption indices of `image` for `epoch` (a partial Fisher–Yates shuffle), in the drawn order.
    func chosenCaptions(image: Int, epoch: Int) -> [Int] {
        let n = captionCounts[image]
        var indices = Array(0..<n)
        let k = min(captionsPerImage, n)
        var rng = RNG(seed: mix64(ShuffledBatches.epochSeed(seed ^ 0x4341_5053, epoch) ^ mix64(UInt64(image))))
        for i in 0..<k {
            let j = i + rng.int(below: n - i)
            indices.swapAt(i, j)
        }
        return Array(indices[0..<k])
    }
}
