import Foundation
import Imaging
import TensorCore
import CaptionSupport
import CaptionData

/// Writes a synthetic shapes dataset as a COCO-style folder (CLI.md "COCO-style folder"):
///
///     DIR/images/000001.png ...
///     DIR/annotations/captions_train.json, captions_val.json, captions_test.json
///
/// Each annotation file has `images[{id, file_name, width, height, objects[{shape, color, size,
/// bbox}]}]`, `annotations[{id, image_id, caption}]` and the generation settings under `info`.
/// Images 1...N are split in order by `fractions` (train first). Output is byte-for-byte a function
/// of (options, count, seed, fractions); every file is written to a temporary name and renamed, and
/// the annotation files come last, so a folder with annotations is complete.
public struct ShapesDatasetWriter {
    /// The generator the scenes and captions come from.
    public let world: ShapesWorld
    /// Number of images, at least 1, split in order into train, val and test.
    public let count: Int
    /// The dataset's seed; image `i` is `world.scene(seed:index:purpose:)` with index `i`.
    public let seed: UInt64
    /// Shares of train, val and test; they must sum to 1.
    public let fractions: (train: Double, val: Double, test: Double)

    /// Checks `count` and `fractions` (a usage error when `count` < 1 or the fractions do not sum to 1).
    public init(world: ShapesWorld, count: Int, seed: UInt64,
                fractions: (train: Double, val: Double, test: Double) = (0.8, 0.1, 0.1)) throws {
        guard count >= 1 else { throw CaptionError.usage("--count must be at least 1, got \(count)") }
        guard [fractions.train, fractions.val, fractions.test].allSatisfy({ $0 >= 0 }),
              abs(fractions.train + fractions.val + fractions.test - 1) < 1e-6 else {
            throw CaptionError.usage("split fractions must be non-negative and sum to 1, got \(fractions.train), \(fractions.val), \(fractions.test)")
        }
        self.world = world; self.count = count; self.seed = seed; self.fractions = fractions
    }

    /// How many images each split gets (rounded; test takes the remainder).
    public var splitCounts: (train: Int, val: Int, test: Int) {
        let train = min(count, Int((Double(count) * fractions.train).rounded()))
        let val = min(count - train, Int((Double(count) * fractions.val).rounded()))
        return (train, val, count - train - val)
    }

    /// The split of image `index` (0-based).
    public func purpose(ofImage index: Int) -> ShapesWorld.Purpose {
        let counts = splitCounts
        return index < counts.train ? .train : index < counts.train + counts.val ? .val : .test
    }

    /// Generates everything and writes it under `folder` (created; it must not exist or be empty).
    /// `progress(done)` is called after each chunk of images.
    public func write(to folder: String, progress: ((Int) -> Void)? = nil) throws {
        let fm = FileManager.default
        if let existing = try? fm.contentsOfDirectory(atPath: folder), !existing.isEmpty {
            throw CaptionError(file: folder, "already exists and is not empty (choose a new --out folder)")
        }
        let imagesFolder = (folder as NSString).appendingPathComponent("images")
        let annotationsFolder = (folder as NSString).appendingPathComponent("annotations")
        do {
            try fm.createDirectory(atPath: imagesFolder, withIntermediateDirectories: true)
            try fm.createDirectory(atPath: annotationsFolder, withIntermediateDirectories: true)
        } catch {
            throw CaptionError(file: folder, "cannot create folder: \(error.localizedDescription)")
        }

        var records = [ImageRecord?](repeating: nil, count: count)
        let chunk = 256
        for start in stride(from: 0, to: count, by: chunk) {
            let end = min(count, start + chunk)
            let results = try makeImages(start..<end, imagesFolder: imagesFolder)
            for (offset, record) in results.enumerated() { records[start + offset] = record }
            progress?(end)
        }

        for purpose in [ShapesWorld.Purpose.train, .val, .test] {
            let members = records.compactMap { $0 }.filter { $0.purpose == purpose }
            guard !members.isEmpty else { continue }
            let path = (annotationsFolder as NSString).appendingPathComponent("captions_\(purpose.rawValue).json")
            do {
                try annotationJSON(members, split: purpose).write(to: URL(fileURLWithPath: path), options: .atomic)
            } catch {
                throw CaptionError(file: path, "cannot write: \(error.localizedDescription)")
            }
        }
    }

    /// File name of image `index` (0-based): `000001.png` for the first.
    public func fileName(ofImage index: Int) -> String {
        let digits = max(6, String(count).count)
        let number = String(index + 1)
        return String(repeating: "0", count: digits - number.count) + number + ".png"
    }

    // MARK: - Internals

    struct ImageRecord {
        var id: Int
        var fileName: String
        var purpose: ShapesWorld.Purpose
        var objects: [SceneObject]
        var captions: [String]
    }

    /// Renders and writes a range of images in parallel; each is independent of the others.
    private func makeImages(_ range: Range<Int>, imagesFolder: String) throws -> [ImageRecord] {
        let lock = NSLock()
        var records = [ImageRecord?](repeating: nil, count: range.count)
        var failure: Error?
        parallelFor(range.count) { offset in
            let index = range.lowerBound + offset
            let purpose = self.purpose(ofImage: index)
            let scene = world.scene(seed: seed, index: index, purpose: purpose)
            let record = ImageRecord(id: index + 1, fileName: fileName(ofImage: index), purpose: purpose,
                                     objects: scene.sceneObjects,
                                     captions: world.captions(for: scene, seed: seed, index: index))
            do {
                try SceneRenderer.render(scene).writePNG(to: (imagesFolder as NSString).appendingPathComponent(record.fileName))
                lock.lock(); records[offset] = record; lock.unlock()
            } catch {
                lock.lock(); if failure == nil { failure = error }; lock.unlock()
            }
        }
        if let failure { throw failure }
        return records.map { $0! }
    }

    private func annotationJSON(_ records: [ImageRecord], split: ShapesWorld.Purpose) throws -> Data {
        let options = world.options
        let side = options.imageSize
        var annotations: [[String: Any]] = []
        var images: [[String: Any]] = []
        for record in records {
            images.append([
                "id": record.id, "file_name": record.fileName, "width": side, "height": side,
                "objects": record.objects.map { object -> [String: Any] in
                    ["shape": object.shape, "color": object.color, "size": object.size,
                     "bbox": [object.bbox.x, object.bbox.y, object.bbox.width, object.bbox.height].map { Int($0) }]
                },
            ])
            // Annotation ids 100·image + k: unique, and stable whatever the split sizes (≤ 20 captions).
            for (k, caption) in record.captions.enumerated() {
                annotations.append(["id": record.id * 100 + k + 1, "image_id": record.id, "caption": caption])
            }
        }
        let info: [String: Any] = [
            "description": "caption synthetic shapes world", "version": 1, "split": split.rawValue,
            // JSON readers lose integers above 2^53; such seeds are written as strings.
            "seed": seed < (1 << 53) ? Int(seed) as Any : String(seed), "count": count, "image_size": side, "background": options.background.rawValue,
            "objects_per_image": [options.minObjects, options.maxObjects],
            "shapes": options.shapes.map(\.rawValue), "colors": options.colors.map(\.rawValue),
            "sizes": options.sizes.map(\.rawValue), "holdout": options.holdout.map(\.description),
            "fractions": [fractions.train, fractions.val, fractions.test],
        ]
        let root: [String: Any] = ["info": info, "licenses": [Any](), "images": images, "annotations": annotations]
        var data = try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys, .withoutEscapingSlashes])
        data.append(UInt8(ascii: "\n"))
        return data
    }
}
