import CaptionSupport

/// Image ids as COCO files carry them (`images[].id`, `annotations[].image_id`, results' `image_id`).
public typealias ImageID = Int

/// One reference caption: the text as written, and its training tokens (`CaptionTokenizer.words`,
/// or the tokens a Karpathy split file provides).
public struct Caption: Equatable, Sendable {
    /// The caption as written (metrics score this).
    public var text: String
    /// The words the model trains on.
    public var tokens: [String]

    /// A caption of `text`; `tokens` nil: tokenised with `CaptionTokenizer.words`.
    public init(text: String, tokens: [String]? = nil) {
        self.text = text
        self.tokens = tokens ?? CaptionTokenizer.words(text)
    }
}

/// An axis-aligned box in image pixels, COCO's `[x, y, width, height]` with (x, y) the top-left corner.
public struct BoundingBox: Equatable, Sendable, Codable {
    /// Left edge, in pixels.
    public var x: Double
    /// Top edge, in pixels.
    public var y: Double
    /// Width, in pixels.
    public var width: Double
    /// Height, in pixels.
    public var height: Double

    /// A box with top-left corner (x, y) and the given size, in pixels.
    public init(x: Double, y: Double, width: Double, height: Double) {
        self.x = x; self.y = y; self.width = width; self.height = height
    }

    /// True when the point lies inside the box (edges included).
    public func contains(x px: Double, y py: Double) -> Bool {
        px >= x && px <= x + width && py >= y && py <= y + height
    }

    /// The horizontal centre, in pixels.
    public var centerX: Double { x + width / 2 }
    /// The vertical centre, in pixels.
    public var centerY: Double { y + height / 2 }
}

/// An object of a synthetic scene as recorded in the `objects` field of a COCO `images` entry:
/// `{"shape": "circle", "color": "red", "size": "small", "bbox": [x, y, w, h]}`.
/// Attributes are kept as the words captions use, so pointing checks can match words to objects.
public struct SceneObject: Equatable, Sendable {
    /// The shape word, e.g. `"circle"`.
    public var shape: String
    /// The colour word, e.g. `"red"`.
    public var color: String
    /// The size word, e.g. `"small"`.
    public var size: String
    /// Where the object lies in the image, in pixels.
    public var bbox: BoundingBox

    /// An object with the given attribute words and box.
    public init(shape: String, color: String, size: String, bbox: BoundingBox) {
        self.shape = shape; self.color = color; self.size = size; self.bbox = bbox
    }

    /// True when `word` is this object's colour or shape word: the words whose attention peak
    /// pointing accuracy checks against `bbox`.
    public func isNamed(by word: String) -> Bool { word == color || word == shape }
}

/// One image of a split: where its file is, its reference captions, and (synthetic sets) its objects.
public struct CaptionedImage: Equatable, Sendable {
    /// The image's id in its annotation file.
    public var id: ImageID
    /// The image file, resolved against the dataset folder (it existed when the dataset was loaded,
    /// unless loading was told not to check).
    public var path: String
    /// Width in pixels, when the annotation file gives it.
    public var width: Int?
    /// Height in pixels, when the annotation file gives it.
    public var height: Int?
    /// The reference captions (a loaded file gives every image at least one).
    public var captions: [Caption]
    /// The scene's objects, for synthetic sets that record them; nil otherwise.
    public var objects: [SceneObject]?

    /// An image with the given fields; width, height and objects are optional.
    public init(id: ImageID, path: String, width: Int? = nil, height: Int? = nil, captions: [Caption],
                objects: [SceneObject]? = nil) {
        self.id = id; self.path = path; self.width = width; self.height = height
        self.captions = captions; self.objects = objects
    }
}
