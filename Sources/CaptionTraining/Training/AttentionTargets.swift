import Imaging
import Vision
import CaptionSupport
import CaptionData
import CaptionMetrics
import SyntheticWorld
import Captioning

/// The target cells of attention supervision (`TrainingOptions.attentionSupervision`) for every training caption,
/// from a synthetic set's object boxes.
///
/// A caption's colour and shape words name objects by `PointingAccuracy.namedWords`'s phrase rule; the word
/// predicted at step t (the caption's t-th token) gets the cells whose centres lie in those objects' boxes — the
/// cells `caption eval` scores as hits. Other words (and words whose objects cover no cell centre) get none.
enum AttentionTargets {
    /// `cells[image][caption][t]` for every caption of `dataset`; `sizes[image]` is the image's decoded size.
    static func build(_ dataset: CaptionDataset, sizes: [(width: Int, height: Int)], grid: GridSize,
                      preprocessing: Preprocessing) throws -> [[[[Int]]]] {
        try dataset.images.indices.map { i in
            let image = dataset.images[i]
            guard let objects = image.objects else {
                throw CaptionError.usage("--attention-supervision needs object boxes, and image \(image.id) of \(dataset.source) has none (only `caption synth shapes` sets record them)")
            }
            let (width, height) = sizes[i]
            return image.captions.map { caption in
                var perStep = [[Int]](repeating: [], count: caption.tokens.count)
                for named in PointingAccuracy.namedWords(caption.tokens, objects: objects) where !named.referents.isEmpty {
                    perStep[named.index] = PointingAccuracy.cells(of: named.referents, objects: objects, grid: grid,
                                                                  preprocessing: preprocessing, width: width, height: height)
                }
                return perStep
            }
        }
    }
}
