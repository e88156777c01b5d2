import Foundation
import NN
import TensorCore

/// A CNN image encoder: `N×3×S×S` images → `N×L×D` annotation vectors a₁…a_L.
///
/// The CNN's last feature map `N×D×H'×W'` is optionally resized by adaptive average pooling (the tutorial's
/// `AdaptiveAvgPool2d(14)`; it upsamples too, e.g. 8×8 → 14×14) and then laid out location-major:
/// row `l = i·W' + j` of image `n` is the D-vector at grid cell (i, j) — PyTorch's `permute(0, 2, 3, 1)`.
///
/// Two paths:
/// * `forward(images:)` — inference: BatchNorm folded into the convolutions (once, on first use after the
///   parameters change), ReLU fused into the GEMM epilogue, no caches kept.
/// * `forwardTraining(images:batchNorm:)` + `backward(_:cache:)` — training: BatchNorm on batch statistics
///   (or frozen), explicit caches, parameter gradients accumulated into `parameters.grads`.
///
/// All parameters (and BatchNorm buffers) live in one `Parameters` under torchvision's names
/// (`conv1.weight`, `layer1.0.downsample.1.running_var`, `features.28.bias`, `layers.3.bn.weight`).
///
/// Concurrency: inference may run from several threads at once (each uses its thread's `ConvWorkspace`);
/// training calls must not overlap with each other or with inference.
public final class Encoder {
    /// The CNN's family, depth and width.
    public let architecture: Architecture
    /// Adaptive-average-pool output size (H', W'), or nil to keep the CNN's own grid.
    public let pool: GridSize?
    /// Every parameter and BatchNorm buffer, one flat buffer (plus one for gradients).
    public let parameters: Parameters
    /// Length D of each annotation vector.
    public var featureDimension: Int { architecture.outputChannels }

    let layers: [Layer]
    /// Module path of each layer (`conv1`, `maxpool`, `layer3.5`, `features.28`, `layers.2`).
    let layerNames: [String]
    private let folded: FoldedWeights
    private var foldedAreCurrent = false
    private let foldLock = NSLock()
    /// Set by `releaseTrainingWeights()`: only inference is left.
    public private(set) var trainingWeightsReleased = false

    /// Leading layers excluded from training: `forwardTraining` runs them in inference mode (frozen
    /// BatchNorm, no caches) and `backward` stops before them, so their parameters get no gradient.
    public private(set) var frozenLayerCount = 0

    /// Builds the architecture with all parameters zero (load or `initialize` them next).
    public init(_ architecture: Architecture, pool: GridSize? = nil) {
        precondition(pool.map { $0.height > 0 && $0.width > 0 } ?? true, "Encoder: pool size must be positive")
        self.architecture = architecture
        self.pool = pool
        let graph = Graph(architecture)
        layers = graph.layers
        layerNames = graph.names
        parameters = Parameters(graph.layout)
        folded = FoldedWeights(count: graph.folded.count)
    }

    // MARK: Parameters

    /// torchvision's initialisation: Kaiming-normal (fan_out, ReLU) conv weights, zero conv biases,
    /// BatchNorm γ = 1, β = 0, running mean 0, running variance 1.
    public func initialize(rng: inout RNG) {
        for layer in layers { for u in layer.units { u.initialize(parameters, rng: &rng) } }
        invalidateInferenceWeights()
    }

    /// Call after writing `parameters.values` directly (loading, an optimiser step outside `forwardTraining`),
    /// so that the next inference re-folds BatchNorm into the convolutions.
    public func invalidateInferenceWeights() {
        foldLock.lock(); defer { foldLock.unlock() }
        precondition(!trainingWeightsReleased, "Encoder: the training weights were released (inference only)")
        foldedAreCurrent = false
    }

    /// For inference-only use (the command-line tool): folds BatchNorm into the inference weights now, one
    /// convolution at a time, and hands each convolution's training copy back to the kernel as soon as it is
    /// folded, so the process never holds both copies of the weights at once (ResNet-101: peak RSS 1× instead
    /// of 2× its 162 MB of weights). Afterwards the convolution weights in `parameters` read as zero, and
    /// `forwardTraining`, `backward` and `invalidateInferenceWeights` trap; `forward` works as before.
    public func releaseTrainingWeights() {
        foldLock.lock(); defer { foldLock.unlock() }
        guard !trainingWeightsReleased else { return }
        for layer in layers {
            for u in layer.units {
                if !foldedAreCurrent { u.fold(parameters, into: folded) }
                parameters.discard(u.conv.weight)
            }
        }
        foldedAreCurrent = true
        trainingWeightsReleased = true
    }

    /// Folds BatchNorm into the inference weights now if the parameters changed since the last fold.
    public func refreshInferenceWeights() {
        foldLock.lock(); defer { foldLock.unlock() }
        if foldedAreCurrent { return }
        for layer in layers { for u in layer.units { u.fold(parameters, into: folded) } }
        foldedAreCurrent = true
    }

    /// Bytes of the folded inference weights (a second copy of the conv weights).
    public var inferenceWeightBytes: Int { folded.count * MemoryLayout<Float>.stride }

    // MARK: Shapes

    /// The CNN's own output grid for an `height×width` input (before `pool`); (0, 0) when the input is
    /// too small for some layer (PyTorch's floor formula, which refuses a window larger than the padded input).
    public func featureMapSize(height: Int, width: Int) -> (height: Int, width: Int) {
        func out(_ n: Int, _ k: Int, _ s: Int, _ p: Int) -> Int { n + 2 * p < k ? 0 : (n + 2 * p - k) / s + 1 }
        func conv(_ u: ConvUnit, _ hw: (Int, Int)) -> (Int, Int) {
            let c = u.conv
            return (out(hw.0, c.kernelSize, c.stride, c.padding), out(hw.1, c.kernelSize, c.stride, c.padding))
        }
        var hw = (height, width)
        for layer in layers {
            if hw.0 <= 0 || hw.1 <= 0 { return (0, 0) }
            switch layer {
            case .conv(let u): hw = conv(u, hw)
            case .maxPool(let m):
                hw = (out(hw.0, m.kernelSize, m.stride, m.padding), out(hw.1, m.kernelSize, m.stride, m.padding))
            case .residual(let b):
                for u in b.main { hw = conv(u, hw) }
            }
        }
        return hw.0 > 0 && hw.1 > 0 ? hw : (0, 0)
    }

    /// Grid H'×W' of the annotation vectors for an input of `height×width` (L = H'·W').
    public func gridSize(height: Int, width: Int) -> (height: Int, width: Int) {
        pool.map { ($0.height, $0.width) } ?? featureMapSize(height: height, width: width)
    }

    /// Multiply–adds × 2 of one inference pass over a `batch×3×height×width` input (convolutions only).
    public func flops(batch: Int, height: Int, width: Int) -> Int {
        var h = height, w = width, total = 0
        func conv(_ u: ConvUnit, _ h: Int, _ w: Int) -> (Int, Int) {
            total += u.conv.flops(batch: batch, height: h, width: w)
            return u.conv.outputSize(height: h, width: w)
        }
        for layer in layers {
            switch layer {
            case .conv(let u): (h, w) = conv(u, h, w)
            case .maxPool(let m): (h, w) = m.outputSize(height: h, width: w)
            case .residual(let b):
                if let d = b.downsample { _ = conv(d, h, w) }
                for u in b.main { (h, w) = conv(u, h, w) }
            }
        }
        return total
    }

    /// Shape of every layer's output in an inference pass over `batch×3×height×width` images (a residual
    /// block counts as one layer; its inner tensors are smaller than its input plus output). For memory
    /// estimates.
    public func layerOutputShapes(batch: Int, height: Int, width: Int) -> [[Int]] {
        var shapes: [[Int]] = []
        var c = 3, hw = (height, width)
        for layer in layers {
            switch layer {
            case .conv(let u): hw = u.conv.outputSize(height: hw.0, width: hw.1); c = u.outChannels
            case .maxPool(let m): hw = m.outputSize(height: hw.0, width: hw.1)
            case .residual(let b):
                for u in b.main { hw = u.conv.outputSize(height: hw.0, width: hw.1) }
                c = b.outChannels
            }
            shapes.append([batch, c, hw.0, hw.1])
        }
        return shapes
    }

    private func checkImages(_ images: Tensor) {
        precondition(images.rank == 4 && images.shape[1] == 3, "Encoder expects N×3×H×W images, got \(images.shape)")
        let (h, w) = featureMapSize(height: images.shape[2], width: images.shape[3])
        precondition(h > 0 && w > 0, "Encoder: images \(images.shape) are too small for \(architecture)")
    }

    // MARK: Inference

    /// The CNN's last feature map, `N×3×H×W → N×D×H'×W'` (inference path, no pooling).
    ///
    /// With several images and threads, each worker runs the whole network on its share of the images with
    /// single-threaded BLAS: no synchronisation inside a layer, and every im2col and epilogue runs in parallel
    /// too (on 2 cores this scales better than splitting each GEMM). One image splits each layer instead, its
    /// GEMMs over the worker team (`Threads.withTeamGEMM`) rather than OpenBLAS's threads.
    public func featureMap(images: Tensor) -> Tensor {
        checkImages(images)
        refreshInferenceWeights()
        let n = images.shape[0]
        guard n > 1, Threads.count > 1, !Threads.isInParallelRegion else {
            // One image: each layer is split over the threads; its GEMMs too, over the same team.
            return Threads.withTeamGEMM { run(images) }
        }
        let (inSize, grid) = (images.count / n, featureMapSize(height: images.shape[2], width: images.shape[3]))
        let outSize = featureDimension * grid.height * grid.width
        var map = Tensor(shape: [n, featureDimension, grid.height, grid.width], unsafeUninitialized: { _ in })
        images.withUnsafeBufferPointer { src in
            map.withUnsafeMutableBufferPointer { dst in
                let dst = dst  // each worker writes its own images
                parallelRowBlocks(n, minRows: 1) { share in
                    var shape = images.shape
                    shape[0] = share.count
                    let input = Array(src[(share.lowerBound * inSize)..<(share.upperBound * inSize)])
                    run(Tensor(shape: shape, storage: input)).withUnsafeBufferPointer {
                        precondition($0.count == share.count * outSize, "Encoder: feature map size differs from featureMapSize")
                        (dst.baseAddress! + share.lowerBound * outSize).update(from: $0.baseAddress!, count: $0.count)
                    }
                }
            }
        }
        return map
    }

    /// The inference layers over `images` on this thread's workspace.
    private func run(_ images: Tensor) -> Tensor {
        let ws = ConvWorkspace.forCurrentThread
        var x = images
        for layer in layers { x = layer.inference(x, folded, workspace: ws) }
        return x
    }

    /// Annotation vectors, `N×3×S×S → N×L×D` (inference path).
    public func forward(images: Tensor) -> Tensor {
        Encoder.annotations(fromMap: poolMap(featureMap(images: images)))
    }

    private func poolMap(_ map: Tensor) -> Tensor {
        guard let pool else { return map }
        return AdaptiveAvgPool2d(outputHeight: pool.height, outputWidth: pool.width).forward(map)
    }

    /// `N×D×H×W → N×(H·W)×D` (per image, a D×L → L×D transpose).
    static func annotations(fromMap map: Tensor) -> Tensor {
        let (n, d, l) = (map.shape[0], map.shape[1], map.shape[2] * map.shape[3])
        return Tensor(shape: [n, l, d]) { out in
            map.withUnsafeBufferPointer { src in transpose(n, d, l, src.baseAddress!, out.baseAddress!) }
        }
    }

    /// `N×L×D → N×D×H×W` (the adjoint of `annotations(fromMap:)`).
    static func map(fromAnnotations a: Tensor, height: Int, width: Int) -> Tensor {
        let (n, l, d) = (a.shape[0], a.shape[1], a.shape[2])
        precondition(l == height * width, "annotations \(a.shape) do not match a \(height)×\(width) grid")
        return Tensor(shape: [n, d, height, width]) { out in
            a.withUnsafeBufferPointer { src in transpose(n, l, d, src.baseAddress!, out.baseAddress!) }
        }
    }

    /// For each of `n` matrices: `dst[c][r] = src[r][c]`, src `rows×cols`. Blocked for cache locality.
    private static func transpose(_ n: Int, _ rows: Int, _ cols: Int, _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>) {
        let block = 32
        for i in 0..<n {
            let s = src + i * rows * cols, t = dst + i * rows * cols
            for r0 in stride(from: 0, to: rows, by: block) {
                for c0 in stride(from: 0, to: cols, by: block) {
                    for r in r0..<min(r0 + block, rows) {
                        for c in c0..<min(c0 + block, cols) { t[c * rows + r] = s[r * cols + c] }
                    }
                }
            }
        }
    }

    // MARK: Training

    /// Freezes the leading layers up to (not including) the first one whose module path starts with
    /// `module` (e.g. `"layer2"` gives the tutorial's `fine_tune`: only layer2–layer4 train). `nil`
    /// trains everything. Returns false (and changes nothing) when no layer matches.
    @discardableResult
    public func setTrainable(from module: String?) -> Bool {
        guard let module else { frozenLayerCount = 0; return true }
        guard let i = layerNames.firstIndex(where: { $0 == module || $0.hasPrefix(module + ".") }) else { return false }
        frozenLayerCount = i
        return true
    }

    /// Freezes the whole CNN: `forwardTraining` runs inference only and `backward` does nothing.
    public func freezeAll() { frozenLayerCount = layers.count }

    /// Everything `backward` needs from a training forward pass.
    public struct Cache {
        let layers: [Layer.Cache]
        /// Shape of the CNN's map before pooling (N×D×H×W).
        let mapShape: [Int]
    }

    /// Training-mode forward: `N×3×S×S → N×L×D` plus the caches for `backward`.
    /// With `.batchStatistics` the BatchNorm running statistics are updated, as in PyTorch's `train()`.
    public func forwardTraining(images: Tensor, batchNorm: BatchNormMode = .batchStatistics) -> (features: Tensor, cache: Cache) {
        precondition(!trainingWeightsReleased, "Encoder: the training weights were released (inference only)")
        checkImages(images)
        let ws = ConvWorkspace.forCurrentThread
        var x = images
        var caches: [Layer.Cache] = []
        caches.reserveCapacity(layers.count)
        if frozenLayerCount > 0 { refreshInferenceWeights() }
        Threads.withTeamGEMM {  // see backward
            for (i, layer) in layers.enumerated() {
                if i < frozenLayerCount {
                    x = layer.inference(x, folded, workspace: ws)
                    caches.append(.frozen)
                } else {
                    let (y, c) = layer.forward(x, parameters, batchNorm: batchNorm, workspace: ws)
                    x = y
                    caches.append(c)
                }
            }
        }
        // The parameters (and running statistics) are about to change: re-fold before the next inference.
        if frozenLayerCount < layers.count { invalidateInferenceWeights() }
        return (Encoder.annotations(fromMap: poolMap(x)), Cache(layers: caches, mapShape: x.shape))
    }

    /// Accumulates every trainable layer's parameter gradients from `dFeatures` (`N×L×D`, the gradient of
    /// `forwardTraining`'s output) into `parameters.grads`.
    public func backward(_ dFeatures: Tensor, cache: Cache) {
        let ms = cache.mapShape
        let (gh, gw) = pool.map { ($0.height, $0.width) } ?? (ms[2], ms[3])
        precondition(dFeatures.shape == [ms[0], gh * gw, ms[1]],
                     "Encoder.backward: dFeatures \(dFeatures.shape), expected \([ms[0], gh * gw, ms[1]])")
        guard frozenLayerCount < layers.count else { return }
        var d = Encoder.map(fromAnnotations: dFeatures, height: gh, width: gw)
        if let pool {
            d = AdaptiveAvgPool2d(outputHeight: pool.height, outputWidth: pool.width).backward(d, inputShape: ms)
        }
        let ws = ConvWorkspace.forCurrentThread
        // Every layer alternates GEMMs with the team's loops (Winograd transforms, im2col, BatchNorm): the GEMMs
        // go to the same team rather than to OpenBLAS's threads, whose spinning pool would compete with the loops.
        Threads.withTeamGEMM {
            for i in stride(from: layers.count - 1, through: frozenLayerCount, by: -1) {
                guard let dx = layers[i].backward(d, cache: cache.layers[i], parameters,
                                                  inputGradient: i > frozenLayerCount, workspace: ws) else { break }
                d = dx
            }
        }
    }
}
