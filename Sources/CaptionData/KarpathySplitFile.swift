import CaptionSupport

/// Karpathy's split file (`dataset_coco.json`, also `dataset_flickr8k.json` / `dataset_flickr30k.json`):
/// `{"images": [{filepath?, filename, split, imgid?, cocoid?, sentences: [{tokens, raw}]}]}`.
///
/// Splits are `train`, `restval`, `val` and `test`; as in the tutorial, `restval` counts as `train`.
/// Image ids are `cocoid` when present, else `imgid`, else the entry's position. Captions keep the
/// file's own tokens (the tutorial trains on them) and its `raw` text (metrics score that).
public struct KarpathySplitFile: Sendable {
    /// One image entry: its path relative to the dataset folder (`filepath/filename`) and split.
    public struct Entry: Sendable {
        /// The image, with its path relative to the dataset folder.
        public var image: CaptionedImage
        /// The split as the file writes it (`train`, `restval`, `val`, `test`, ...).
        public var split: String
    }

    /// The file read, as given (error messages name it).
    public let path: String
    /// Every image entry, in file order.
    public let entries: [Entry]

    /// Reads and validates `path` (every entry, before anything is used).
    public static func load(_ path: String) throws -> KarpathySplitFile {
        let (input, root) = try JSONInput.load(path)
        return try KarpathySplitFile(input: input, root: root)
    }

    /// The images of `split` (`train` includes `restval`), in file order.
    public func images(inSplit split: String) -> [CaptionedImage] {
        entries.filter { Self.canonicalSplit($0.split) == split }.map(\.image)
    }

    /// The split names present, canonicalised (`restval` → `train`), in train/val/test order first.
    public var splits: [String] {
        let present = Set(entries.map { Self.canonicalSplit($0.split) })
        return ["train", "val", "test"].filter(present.contains) + present.subtracting(["train", "val", "test"]).sorted()
    }

    static func canonicalSplit(_ split: String) -> String { split == "restval" ? "train" : split }

    init(input: JSONInput, root: Any) throws {
        path = input.file
        let top = try input.object(root, "top level")
        let list = try input.array(top["images"], "\"images\"")
        var entries: [Entry] = []
        var seen: [ImageID: Int] = [:]
        for (i, value) in list.enumerated() {
            let object = try input.object(value, "images[\(i)]")
            let id = try object["cocoid"].map { try input.int($0, "images[\(i)].cocoid") }
                ?? object["imgid"].map { try input.int($0, "images[\(i)].imgid") }
                ?? i
            let name = "images[\(i)] (id \(id))"
            if let first = seen[id] { throw input.error("\(name): duplicate image id (also images[\(first)])") }
            seen[id] = i
            let filename = try input.string(object["filename"], "\(name).filename")
            guard !filename.isEmpty else { throw input.error("\(name): empty filename") }
            let filepath = try object["filepath"].map { try input.string($0, "\(name).filepath") } ?? ""
            let split = try input.string(object["split"], "\(name).split")
            let sentences = try input.array(object["sentences"], "\(name).sentences")
            let captions = try sentences.enumerated().map { j, sentence -> Caption in
                let s = try input.object(sentence, "\(name).sentences[\(j)]")
                let tokens = try input.array(s["tokens"], "\(name).sentences[\(j)].tokens").enumerated().map {
                    try input.string($1, "\(name).sentences[\(j)].tokens[\($0)]")
                }.filter { !$0.isEmpty }
                let raw = try s["raw"].map { try input.string($0, "\(name).sentences[\(j)].raw") }
                guard !tokens.isEmpty else { throw input.error("\(name).sentences[\(j)]: empty caption (no tokens)") }
                let text = raw?.trimmingWhitespace ?? ""
                return Caption(text: text.isEmpty ? tokens.joined(separator: " ") : text, tokens: tokens)
            }
            guard !captions.isEmpty else { throw input.error("\(name): no sentences") }
            let relative = filepath.isEmpty ? filename : filepath + "/" + filename
            let objects = try object["objects"].map { try COCOCaptionsFile.sceneObjects($0, "\(name).objects", input) }
            entries.append(Entry(image: CaptionedImage(id: id, path: relative, captions: captions, objects: objects),
                                 split: split))
        }
        self.entries = entries
    }
}

private extension String {
    var trimmingWhitespace: String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
