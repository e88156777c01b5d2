import Foundation
import CaptionSupport
import CaptionData
import CaptionMetrics
import SyntheticWorld
import Captioning

/// One split of a COCO-style folder: every image with its file path, reference captions and (for
/// synthetic sets) objects. See CLI.md "COCO-style folder".
///
/// Sources, in order of preference:
/// - `annotations/captions_<split>.json` (COCO captions format), images under the folder itself
///   (`file_name` may be a relative path), `images/` or `<split>/`;
/// - Karpathy's `dataset_coco.json` (in the folder or in `annotations/`), images at `filepath/filename`
///   under the folder or under `images/`; `restval` counts as `train`.
///
/// Loading validates everything up front, including that every image file exists, so training never
/// starts on half-readable data.
public struct CaptionDataset: Sendable {
    /// The dataset folder as given.
    public let folder: String
    /// `train`, `val`, `test` (or any split name the files use).
    public let split: String
    /// The annotation file the split was read from.
    public let source: String
    /// Every image of the split with its file path, reference captions and (synthetic sets) objects.
    public var images: [CaptionedImage]

    /// A dataset from already loaded images (no files are read or checked).
    public init(folder: String, split: String, source: String, images: [CaptionedImage]) {
        self.folder = folder; self.split = split; self.source = source; self.images = images
    }

    /// Reads `split` from `folder`. With `checkImages`, a missing image file is an error naming it.
    public static func load(folder: String, split: String, checkImages: Bool = true) throws -> CaptionDataset {
        let layout = try DatasetLayout.locate(folder)
        switch layout {
        case .coco(let files):
            guard let file = files[split] else {
                throw CaptionError(file: folder, "no annotations/captions_\(split).json (found: \(files.keys.sorted().joined(separator: ", ")))")
            }
            let coco = try COCOCaptionsFile.load(file)
            let resolver = ImagePathResolver(folder: folder, annotationFile: file,
                                             directories: [".", "images", split], checkImages: checkImages)
            return CaptionDataset(folder: folder, split: split, source: file,
                                  images: try resolver.resolve(coco.images))
        case .karpathy(let file):
            let karpathy = try KarpathySplitFile.load(file)
            let images = karpathy.images(inSplit: split)
            guard !images.isEmpty else {
                throw CaptionError(file: file, "no images in split \"\(split)\" (found: \(karpathy.splits.joined(separator: ", ")))")
            }
            let resolver = ImagePathResolver(folder: folder, annotationFile: file,
                                             directories: [".", "images"], checkImages: checkImages)
            return CaptionDataset(folder: folder, split: split, source: file, images: try resolver.resolve(images))
        }
    }

    /// The splits `folder` provides (`train`, `val`, `test` first).
    public static func splits(in folder: String) throws -> [String] {
        switch try DatasetLayout.locate(folder) {
        case .coco(let files):
            return ["train", "val", "test"].filter { files[$0] != nil }
                + files.keys.filter { !["train", "val", "test"].contains($0) }.sorted()
        case .karpathy(let file):
            return try KarpathySplitFile.load(file).splits
        }
    }

    /// Reference captions by image id, as written (for `COCOMetrics.evaluate`).
    public var references: [ImageID: [String]] {
        Dictionary(uniqueKeysWithValues: images.map { ($0.id, $0.captions.map(\.text)) })
    }

    /// Every caption's tokens, in order (for `Vocabulary.build`).
    public var tokenizedCaptions: [[String]] { images.flatMap { $0.captions.map(\.tokens) } }

    /// Every (image, caption) pair, the tutorial's unit of training: `images[pair.image].captions[pair.caption]`.
    public var pairs: [CaptionPair] {
        images.indices.flatMap { i in images[i].captions.indices.map { CaptionPair(image: i, caption: $0) } }
    }

    /// The tutorial's `max_len` rule: captions with more than `maxWords` tokens are dropped, and then
    /// images left without captions.
    public func limitingCaptionLength(to maxWords: Int) -> CaptionDataset {
        var copy = self
        copy.images = images.compactMap { image in
            var image = image
            image.captions = image.captions.filter { $0.tokens.count <= maxWords }
            return image.captions.isEmpty ? nil : image
        }
        return copy
    }
}

/// An index into `CaptionDataset.images` and that image's `captions`.
public struct CaptionPair: Equatable, Hashable, Codable, Sendable {
    /// Index into `CaptionDataset.images`.
    public var image: Int
    /// Index into that image's `captions`.
    public var caption: Int
    /// The pair (image, caption) of indices.
    public init(image: Int, caption: Int) { self.image = image; self.caption = caption }
}

/// Which annotation files a dataset folder has.
enum DatasetLayout {
    /// split name → `annotations/captions_<split>.json`
    case coco([String: String])
    case karpathy(String)

    static func locate(_ folder: String) throws -> DatasetLayout {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: folder, isDirectory: &isDirectory) else {
            throw CaptionError(file: folder, "no such folder")
        }
        guard isDirectory.boolValue else { throw CaptionError(file: folder, "not a folder (expected a COCO-style dataset folder)") }
        let annotations = (folder as NSString).appendingPathComponent("annotations")
        var files: [String: String] = [:]
        for name in (try? fm.contentsOfDirectory(atPath: annotations)) ?? []
        where name.hasPrefix("captions_") && name.hasSuffix(".json") {
            let split = String(name.dropFirst("captions_".count).dropLast(".json".count))
            if !split.isEmpty { files[split] = (annotations as NSString).appendingPathComponent(name) }
        }
        if !files.isEmpty { return .coco(files) }
        for candidate in [folder, annotations] {
            let file = (candidate as NSString).appendingPathComponent("dataset_coco.json")
            if fm.fileExists(atPath: file) { return .karpathy(file) }
        }
        throw CaptionError(file: folder, "no annotations/captions_<split>.json and no dataset_coco.json")
    }
}

/// Finds each image's file among the places a COCO-style folder may keep it.
struct ImagePathResolver {
    let folder: String
    let annotationFile: String
    /// Sub-folders of `folder` to look in, in order (`"."` is the folder itself).
    let directories: [String]
    let checkImages: Bool

    func resolve(_ images: [CaptionedImage]) throws -> [CaptionedImage] {
        var resolved = images
        var missing: [Int] = []
        for i in images.indices {
            if let path = locate(images[i].path) {
                resolved[i].path = path
            } else {
                missing.append(i)
                resolved[i].path = candidates(images[i].path).last!
            }
        }
        if checkImages, let first = missing.first {
            let image = images[first]
            let places = directories.map { $0 == "." ? folder : (folder as NSString).appendingPathComponent($0) }
            let more = missing.count > 1 ? " (and \(missing.count - 1) more missing)" : ""
            throw CaptionError(file: annotationFile,
                            "image \(image.id): image file \"\(image.path)\" not found in \(places.joined(separator: ", "))\(more)")
        }
        return resolved
    }

    func candidates(_ name: String) -> [String] {
        if name.hasPrefix("/") { return [name] }
        return directories.map { directory in
            let base = directory == "." ? folder : (folder as NSString).appendingPathComponent(directory)
            return (base as NSString).appendingPathComponent(name)
        }
    }

    func locate(_ name: String) -> String? {
        candidates(name).first { path in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
        }
    }
}
