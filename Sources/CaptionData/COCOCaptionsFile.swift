import CaptionSupport

/// A COCO captions annotation file (`annotations/captions_<split>.json`):
/// `{"images": [{id, file_name, width?, height?, objects?}], "annotations": [{id?, image_id, caption}]}`.
///
/// The whole file is validated when it is read: malformed JSON (with line and column), missing or
/// mistyped fields, duplicate image ids, captions for unknown images, empty captions and images
/// without any caption are all errors naming the file and the entry.
public struct COCOCaptionsFile: Sendable {
    /// The file as it was named.
    public let path: String
    /// Images in file order; `path` holds the entry's `file_name` as written (not yet resolved),
    /// captions are in annotation order.
    public let images: [CaptionedImage]

    /// Reads and validates `path`.
    public static func load(_ path: String) throws -> COCOCaptionsFile {
        let (input, root) = try JSONInput.load(path)
        return try COCOCaptionsFile(input: input, root: root)
    }

    init(input: JSONInput, root: Any) throws {
        path = input.file
        let top = try input.object(root, "top level")
        let imageEntries = try input.array(top["images"], "\"images\"")
        let annotationEntries = try input.array(top["annotations"], "\"annotations\"")

        var images: [CaptionedImage] = []
        var position: [ImageID: Int] = [:]
        for (i, entry) in imageEntries.enumerated() {
            let name = "images[\(i)]"
            let object = try input.object(entry, name)
            let id = try input.int(object["id"], "\(name).id")
            let fileName = try input.string(object["file_name"], "\(name) (id \(id)).file_name")
            guard !fileName.isEmpty else { throw input.error("\(name) (id \(id)): empty file_name") }
            if let first = position[id] {
                throw input.error("\(name): duplicate image id \(id) (also images[\(first)])")
            }
            let width = try object["width"].map { try input.int($0, "\(name) (id \(id)).width") }
            let height = try object["height"].map { try input.int($0, "\(name) (id \(id)).height") }
            let objects = try object["objects"].map { try Self.sceneObjects($0, "\(name) (id \(id)).objects", input) }
            position[id] = images.count
            images.append(CaptionedImage(id: id, path: fileName, width: width, height: height, captions: [],
                                         objects: objects))
        }

        for (i, entry) in annotationEntries.enumerated() {
            let object = try input.object(entry, "annotations[\(i)]")
            let annotationID = try object["id"].map { try input.int($0, "annotations[\(i)].id") }
            let name = annotationID.map { "annotations[\(i)] (id \($0))" } ?? "annotations[\(i)]"
            let imageID = try input.int(object["image_id"], "\(name).image_id")
            let text = try input.string(object["caption"], "\(name).caption")
            guard let index = position[imageID] else {
                throw input.error("\(name): image_id \(imageID) is not in \"images\"")
            }
            let caption = Caption(text: text)
            guard !caption.tokens.isEmpty else {
                throw input.error("\(name) (image \(imageID)): empty caption" + (text.isEmpty ? "" : " (no words in \"\(text)\")"))
            }
            images[index].captions.append(caption)
        }

        if let i = images.firstIndex(where: { $0.captions.isEmpty }) {
            throw input.error("images[\(i)] (id \(images[i].id), \(images[i].path)): no captions in \"annotations\"")
        }
        self.images = images
    }

    /// The synthetic sets' per-image `objects` list.
    static func sceneObjects(_ value: Any, _ path: String, _ input: JSONInput) throws -> [SceneObject] {
        try input.array(value, path).enumerated().map { j, entry in
            let name = "\(path)[\(j)]"
            let object = try input.object(entry, name)
            let box = try input.array(object["bbox"], "\(name).bbox")
            guard box.count == 4 else { throw input.error("\(name).bbox: expected [x, y, width, height], found \(box.count) numbers") }
            let numbers = try box.enumerated().map { try input.double($1, "\(name).bbox[\($0)]") }
            guard numbers[2] >= 0 && numbers[3] >= 0 else { throw input.error("\(name).bbox: negative width or height") }
            return SceneObject(
                shape: try input.string(object["shape"], "\(name).shape"),
                color: try input.string(object["color"], "\(name).color"),
                size: try input.string(object["size"], "\(name).size"),
                bbox: BoundingBox(x: numbers[0], y: numbers[1], width: numbers[2], height: numbers[3]))
        }
    }
}
