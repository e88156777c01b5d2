import CaptionSupport

/// Image ids as COCO files carry them (`images[].id`, `annotations[].image_id`, results' `image_id`).
public typealias ImageID = Int

/// One reference caption: the text as written, and its training tokens (`CaptionTokenizer.words`,
/// or the tokens a Karpathy split file provides).
public struct Caption: Equatable, Sendable {
    public var text: String
    public var tokens: [String]

    public init(text: String, tokens: [String]? = nil) {
        self.text = text
        self.tokens = tokens ?? CaptionTokenizer.words(text)
    }
}

/// An axis-aligned box in image pixels, COCO's `[x, y, width, height]` with (x, y) the top-left corner.
public struct BoundingBox: Equatable, Sendable, Codable {
    public var x: Double
    public var y: Double
    public var width: Double
    public var height: Double

    public init(x: Double, y: Double, width: Double, height: Double) {
        self.x = x; self.y = y; self.width = width; self.height = height
    }

    /// True when the point lies inside the box (edges included).
    public func contains(x px: Double, y py: Double) -> Bool {
        px >= x && px <= x + width && py >= y && py <= y + height
    }

    public var centerX: Double { x + width / 2 }
    public var centerY: Double { y + height / 2 }
}

/// An object of a synthetic scene as recorded in the `objects` field of a COCO `images` entry:
/// `{"shape": "circle", "color": "red", "size": "small", "bbox": [x, y, w, h]}`.
/// Attributes are kept as the words captions use, so pointing checks can match words to objects.
public struct SceneObject: Equatable, Sendable {
    public var shape: String
    public var color: String
    public var size: String
    public var bbox: BoundingBox

    public init(shape: String, color: String, size: String, bbox: BoundingBox) {
        self.shape = shape; self.color = color; self.size = size; self.bbox = bbox
    }

    /// True when `word` is this object's colour or shape word: the words whose attention peak
    /// pointing accuracy checks against `bbox`.
    public func isNamed(by word: String) -> Bool { word == color || word == shape }
}

/// One image of a split: where its file is, its reference captions, and (synthetic sets) its objects.
public struct CaptionedImage: Equatable, Sendable {
    public var id: ImageID
    /// The image file, resolved against the dataset folder (it existed when the dataset was loaded,
    /// unless loading was told not to check).
    public var path: String
    public var width: Int?
    public var height: Int?
    public var captions: [Caption]
    public var objects: [SceneObject]?

    public init(id: ImageID, path: String, width: Int? = nil, height: Int? = nil, captions: [Caption],
                objects: [SceneObject]? = nil) {
        self.id = id; self.path = path; self.width = width; self.height = height
        self.captions = captions; self.objects = objects
    }
}
