import Foundation
import Imaging
import TensorCore

/// Image file → annotation vectors, with everything in between: decode, resize (Pillow-exact bilinear),
/// optional centre crop, normalise, encode. The facade behind `caption features`.
///
/// ```swift
/// let fx = try FeatureExtractor(weights: "weights/")
/// let r = try fx.extract(path: "cat.jpg")   // r.image: H×W RGB, r.input: 3×S×S, r.features: L×D
/// ```
public final class FeatureExtractor {
    /// The CNN that turns a 3×S×S input into L×D annotation vectors.
    public let encoder: Encoder
    /// The model folder's encoder and preprocessing settings.
    public let config: EncoderConfig
    /// How a decoded image becomes the 3×S×S network input.
    public var preprocessing: Preprocessing { config.preprocessing }
    /// Reads image files into RGB pixels (its `maxPixels` limit applies).
    public let decoder: ImageDecoder

    /// Loads a model folder or a bare torchvision safetensors file (see `Encoder.load(path:)`).
    public convenience init(weights path: String) throws {
        let (encoder, config) = try Encoder.load(path: path)
        self.init(encoder: encoder, config: config)
    }

    /// An extractor over an already loaded `encoder` built for `config`.
    public init(encoder: Encoder, config: EncoderConfig, decoder: ImageDecoder = ImageDecoder()) {
        self.encoder = encoder
        self.config = config
        self.decoder = decoder
    }

    /// One image's decoded pixels (before resizing), network input and annotation vectors.
    public struct Result {
        /// The decoded RGB image, H×W×3.
        public let image: RGBImage
        /// The normalised network input, 3×S×S.
        public let input: Tensor
        /// a₁…a_L, L×D, row-major over the H'×W' grid.
        public let features: Tensor
    }

    /// Decodes, preprocesses and encodes one image file. Throws `CaptionError` for unreadable images.
    public func extract(path: String) throws -> Result {
        let image = try decoder.decode(path: path)
        return extract(image: image)
    }

    /// Preprocesses and encodes an already decoded image.
    public func extract(image: RGBImage) -> Result {
        let input = preprocessing.tensor(image)
        let batch = input.reshaped([1] + input.shape)
        let f = encoder.forward(images: batch)
        return Result(image: image, input: input, features: f.reshaped([f.shape[1], f.shape[2]]))
    }

    /// The network inputs of several images as one `N×3×S×S` batch.
    public func batch(_ images: [RGBImage]) -> Tensor {
        let (h, w) = (preprocessing.outputHeight, preprocessing.outputWidth)
        var t = Tensor(shape: [images.count, 3, h, w])
        t.withUnsafeMutableBufferPointer { buf in
            for (i, image) in images.enumerated() {
                preprocessing.write(image, into: buf.baseAddress! + i * 3 * h * w)
            }
        }
        return t
    }
}
