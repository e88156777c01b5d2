/// An 8-bit RGB image in row-major H×W×3 order (the layout Pillow's `convert("RGB")` gives).
public struct RGBImage: Equatable, Sendable {
    /// Width, in pixels.
    public let width: Int
    /// Height, in pixels.
    public let height: Int
    /// `height * width * 3` bytes: row by row, pixel by pixel, R, G, B.
    public var pixels: [UInt8]

    /// An image over `pixels`, which must hold exactly `height * width * 3` bytes (H×W×3, RGB).
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0 && pixels.count == width * height * 3,
                     "RGBImage \(width)×\(height) needs \(width * height * 3) bytes, got \(pixels.count)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// A black image.
    public init(width: Int, height: Int) {
        self.init(width: width, height: height, pixels: [UInt8](repeating: 0, count: width * height * 3))
    }
}
