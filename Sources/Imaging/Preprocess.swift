import CaptionSupport
import TensorCore

/// The network-input recipe: Pillow-bilinear resize, optional centre crop, then torchvision's
/// `ToTensor()` + `Normalize(mean, std)`, giving a 3×H×W Float32 tensor (CHW).
///
/// `Preprocessing()` is the sgrvinod tutorial's: 256×256, no crop, ImageNet mean/std. The same
/// values as a torchvision pipeline give exactly:
///
///     T.Compose([T.Resize((resizeHeight, resizeWidth)), T.CenterCrop((cropHeight, cropWidth)),
///                T.ToTensor(), T.Normalize(mean, std)])
public struct Preprocessing: Codable, Equatable, Sendable {
    /// ImageNet's per-channel R, G, B mean of pixel/255, torchvision's usual `Normalize` values.
    public static let imageNetMean: [Float] = [0.485, 0.456, 0.406]
    /// ImageNet's per-channel R, G, B standard deviation of pixel/255.
    public static let imageNetStd: [Float] = [0.229, 0.224, 0.225]

    /// Width of the bilinear resize, in pixels (before any crop).
    public var resizeWidth: Int
    /// Height of the bilinear resize, in pixels (before any crop).
    public var resizeHeight: Int
    /// Centre crop after the resize (torchvision `CenterCrop`: zero-padded if larger); nil for none.
    public var cropWidth: Int?
    /// Height of the centre crop, in pixels; nil for none.
    public var cropHeight: Int?
    /// Per-channel R, G, B mean and standard deviation applied to pixel/255.
    public var mean: [Float]
    /// Per-channel R, G, B standard deviation the mean-subtracted values are divided by.
    public var std: [Float]

    enum CodingKeys: String, CodingKey {
        case resizeWidth = "resize_width", resizeHeight = "resize_height"
        case cropWidth = "crop_width", cropHeight = "crop_height"
        case mean, std
    }

    /// A recipe; the defaults are the tutorial's 256×256 resize, no crop, ImageNet mean/std.
    public init(resizeWidth: Int = 256, resizeHeight: Int = 256, cropWidth: Int? = nil, cropHeight: Int? = nil,
                mean: [Float] = Preprocessing.imageNetMean, std: [Float] = Preprocessing.imageNetStd) {
        self.resizeWidth = resizeWidth
        self.resizeHeight = resizeHeight
        self.cropWidth = cropWidth
        self.cropHeight = cropHeight
        self.mean = mean
        self.std = std
    }

    /// Width of the produced tensor (the crop's when cropping).
    public var outputWidth: Int { cropWidth ?? resizeWidth }
    /// Height of the produced tensor (the crop's when cropping).
    public var outputHeight: Int { cropHeight ?? resizeHeight }

    /// Checks the recipe (e.g. after loading it from a config file) so that applying it cannot
    /// trap: positive sizes, crop given in both directions or neither, 3 means, 3 non-zero stds.
    public func validate() throws {
        func invalid(_ why: String) -> CaptionError { ImageProblem.invalidArgument(why).error("preprocessing") }
        guard resizeWidth > 0, resizeHeight > 0 else { throw invalid("resize size \(resizeWidth)×\(resizeHeight) must be positive") }
        guard (cropWidth == nil) == (cropHeight == nil) else { throw invalid("crop needs both a width and a height") }
        if let cropWidth, let cropHeight, cropWidth <= 0 || cropHeight <= 0 {
            throw invalid("crop size \(cropWidth)×\(cropHeight) must be positive")
        }
        guard mean.count == 3, std.count == 3 else { throw invalid("mean and std need 3 values each (R, G, B)") }
        guard std.allSatisfy({ $0 != 0 && $0.isFinite }), mean.allSatisfy(\.isFinite) else {
            throw invalid("std values must be finite and non-zero")
        }
    }

    /// The resized (and cropped) RGB image the tensor is made from.
    public func image(_ image: RGBImage) -> RGBImage {
        var result = image.resized(width: resizeWidth, height: resizeHeight)
        if let cropWidth, let cropHeight { result = result.centerCropped(width: cropWidth, height: cropHeight) }
        return result
    }

    /// The network input: 3 × outputHeight × outputWidth, CHW, normalised.
    public func tensor(_ image: RGBImage) -> Tensor {
        self.image(image).normalizedTensor(mean: mean, std: std)
    }

    /// Writes the network input for `image` into `destination` (3 × outputHeight × outputWidth
    /// floats, CHW), e.g. one slot of an N×3×H×W batch, without an intermediate tensor.
    public func write(_ image: RGBImage, into destination: UnsafeMutablePointer<Float>) {
        self.image(image).writeNormalized(into: destination, mean: mean, std: std)
    }
}

extension RGBImage {
    /// torchvision `CenterCrop((height, width))` on a PIL image: the crop's top-left corner is
    /// `round((size − crop) / 2)` with Python's round-half-to-even; a crop larger than the image
    /// first pads it with black ((crop − size) / 2 before, the rest after).
    public func centerCropped(width cropWidth: Int, height cropHeight: Int) -> RGBImage {
        precondition(cropWidth > 0 && cropHeight > 0, "crop \(cropWidth)×\(cropHeight): sizes must be positive")
        var source = self
        if cropWidth > width || cropHeight > height {
            let left = cropWidth > width ? (cropWidth - width) / 2 : 0
            let top = cropHeight > height ? (cropHeight - height) / 2 : 0
            let right = cropWidth > width ? (cropWidth - width + 1) / 2 : 0
            let bottom = cropHeight > height ? (cropHeight - height + 1) / 2 : 0
            source = copyRegion(left: -left, top: -top, width: width + left + right, height: height + top + bottom)
            if source.width == cropWidth && source.height == cropHeight { return source }
        }
        let top = Int((Double(source.height - cropHeight) / 2).rounded(.toNearestOrEven))
        let left = Int((Double(source.width - cropWidth) / 2).rounded(.toNearestOrEven))
        return source.copyRegion(left: left, top: top, width: cropWidth, height: cropHeight)
    }

    /// The `width × height` region whose top-left is (`left`, `top`) in this image; parts outside
    /// the image are black (PIL's `crop` semantics).
    public func copyRegion(left: Int, top: Int, width regionWidth: Int, height regionHeight: Int) -> RGBImage {
        var out = RGBImage(width: regionWidth, height: regionHeight)
        let x0 = max(left, 0), x1 = min(left + regionWidth, width)
        guard x0 < x1 else { return out }
        pixels.withUnsafeBufferPointer { src in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                for y in max(top, 0)..<max(min(top + regionHeight, height), max(top, 0)) {
                    let from = src.baseAddress! + (y * width + x0) * 3
                    let to = dst.baseAddress! + ((y - top) * regionWidth + (x0 - left)) * 3
                    to.update(from: from, count: (x1 - x0) * 3)
                }
            }
        }
        return out
    }

    /// torchvision `Normalize(mean, std)(ToTensor()(image))`: a 3×H×W (CHW) Float32 tensor with
    /// `(pixel / 255 − mean[c]) / std[c]`, computed in Float32 in that order so it matches
    /// PyTorch bit for bit.
    public func normalizedTensor(mean: [Float] = Preprocessing.imageNetMean,
                                 std: [Float] = Preprocessing.imageNetStd) -> Tensor {
        Tensor(shape: [3, height, width]) { buffer in
            writeNormalized(into: buffer.baseAddress!, mean: mean, std: std)
        }
    }

    /// Writes `normalizedTensor(mean:std:)`'s 3 × height × width floats into `destination`.
    public func writeNormalized(into destination: UnsafeMutablePointer<Float>, mean: [Float], std: [Float]) {
        precondition(mean.count == 3 && std.count == 3, "mean and std need 3 values each")
        // 256 possible values per channel: a lookup table makes the per-pixel work one load.
        var table = [Float](repeating: 0, count: 3 * 256)
        for c in 0..<3 {
            for v in 0..<256 { table[c * 256 + v] = (Float(v) / 255 - mean[c]) / std[c] }
        }
        let plane = width * height
        table.withUnsafeBufferPointer { lut in
            pixels.withUnsafeBufferPointer { src in
                let red = lut.baseAddress!, green = red + 256, blue = red + 512
                let s = src.baseAddress!
                let r = destination, g = destination + plane, b = destination + 2 * plane
                for i in 0..<plane {
                    r[i] = red[Int(s[3 * i])]
                    g[i] = green[Int(s[3 * i + 1])]
                    b[i] = blue[Int(s[3 * i + 2])]
                }
            }
        }
    }
}
