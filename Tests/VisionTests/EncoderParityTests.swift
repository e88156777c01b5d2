import Foundation
import NN
import TensorCore
import TestSupport
@testable import Vision
import XCTest

/// Whole-network parity with PyTorch (fixtures: scripts/make_encoder_fixtures.py). The networks are
/// torchvision's with *narrow* widths (first stage 4 or 2 channels instead of 64): same topology, same
/// tensor names, 1/256 of the weights, so the fixtures stay small.
final class EncoderParityTests: XCTestCase {
    static func io(_ name: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(path: Fixtures.path("encoders/\(name).io.safetensors"))
    }

    static func weights(_ name: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(path: Fixtures.path("encoders/\(name).weights.safetensors"))
    }

    /// |actual − expected| ≤ rtol·max|expected| everywhere (relative to the tensor's scale).
    static func assertRelativeClose(_ actual: Tensor, _ expected: Tensor, rtol: Float = 1e-4, _ label: String,
                                    file: StaticString = #filePath, line: UInt = #line) {
        let scale = expected.storage.reduce(0) { max($0, abs($1)) }
        XCTAssertGreaterThan(scale, 0, "\(label): reference is all zero", file: file, line: line)
        assertClose(actual, expected, rtol: 0, atol: rtol * scale, label, file: file, line: line)
    }

    func testNarrowResNet18ThroughTutorialNamesAndUpsamplingPoolMatchesPyTorch() throws {
        let io = try Self.io("resnet18_w4_tutorial")
        let encoder = Encoder(.resnet(depth: 18, width: 4), pool: GridSize(height: 14, width: 14))
        let file = try Self.weights("resnet18_w4_tutorial")
        XCTAssertEqual(TensorNaming.detect(file.names), .tutorial)
        try encoder.load(from: file)
        let features = encoder.forward(images: try io.tensor("input"))
        XCTAssertEqual(features.shape, [1, 196, 32])
        Self.assertRelativeClose(features, try io.tensor("output"), "resnet18 w4 features")
    }

    func testNarrowResNet50FeatureMapMatchesPyTorch() throws {
        let io = try Self.io("resnet50_w4")
        let encoder = Encoder(.resnet(depth: 50, width: 4))
        try encoder.load(from: try Self.weights("resnet50_w4"))
        Self.assertRelativeClose(encoder.featureMap(images: try io.tensor("input")), try io.tensor("output"),
                                 "resnet50 w4 layer4")
        // The same through the annotation layout: N×L×D, row-major over the grid.
        let a = encoder.forward(images: try io.tensor("input"))
        XCTAssertEqual(a.shape, [2, 4, 128])
        let map = try io.tensor("output")
        XCTAssertEqual(a[1, 3, 5], map[1, 5, 1, 1], accuracy: 1e-4 * 10)
    }

    /// Several images on several threads run image-parallel (each worker the whole network on its share, serial
    /// BLAS): the same maps as one thread, up to summation order.
    func testImageParallelInferenceEqualsOneThread() throws {
        let encoder = Encoder(.resnet(depth: 50, width: 4))
        try encoder.load(from: try Self.weights("resnet50_w4"))
        let two = try Self.io("resnet50_w4").tensor("input")
        let input = Tensor(shape: [3] + Array(two.shape.dropFirst()), storage: two.storage + Array(two.storage.prefix(two.count / 2)))
        let saved = Threads.count
        defer { Threads.count = saved }
        Threads.count = 1
        let serial = encoder.featureMap(images: input)
        Threads.count = 2
        let parallel = encoder.featureMap(images: input)
        XCTAssertEqual(parallel.shape, serial.shape)
        // Sub-batches change the GEMM shapes, hence OpenBLAS's summation order: equal to float rounding.
        Self.assertRelativeClose(parallel, serial, rtol: 1e-5, "3 images, 2 threads vs 1")
    }

    func testNarrowVGG16WithBatchNormConv5MapMatchesPyTorch() throws {
        let io = try Self.io("vgg16_bn_w2")
        let encoder = Encoder(.vgg(depth: 16, batchNorm: true, width: 2))
        try encoder.load(from: try Self.weights("vgg16_bn_w2"))
        Self.assertRelativeClose(encoder.featureMap(images: try io.tensor("input")), try io.tensor("output"), "vgg16_bn w2")
    }

    func testNarrowVGG16Conv5MapMatchesPyTorch() throws {
        let io = try Self.io("vgg16_w2")
        let encoder = Encoder(.vgg(depth: 16, batchNorm: false, width: 2))
        try encoder.load(from: try Self.weights("vgg16_w2"))
        Self.assertRelativeClose(encoder.featureMap(images: try io.tensor("input")), try io.tensor("output"), "vgg16 w2")
    }

    /// Training mode on a whole (narrow) compact net: batch statistics, output, every parameter gradient
    /// and the running-statistics update.
    func testNarrowCompactNetTrainingForwardBackwardMatchesPyTorch() throws {
        let io = try Self.io("compact_train")
        let spec = CompactNetSpec(channels: try io.tensor("spec.channels").storage.map { Int($0) },
                                  strides: try io.tensor("spec.strides").storage.map { Int($0) })
        let encoder = Encoder(.compact(spec))
        try encoder.load(from: try Self.weights("compact_train"))
        let (features, cache) = encoder.forwardTraining(images: try io.tensor("input"))
        Self.assertRelativeClose(features, try io.tensor("output"), "compact training output")
        encoder.backward(try io.tensor("dy"), cache: cache)
        let p = encoder.parameters
        var checked = 0
        for param in p.layout.params {
            if param.trainable {
                Self.assertRelativeClose(p.gradTensor(param), try io.tensor("grad.\(param.name)"), "grad \(param.name)")
                checked += 1
            } else if param.name.contains("running") {
                assertClose(p.tensor(param), try io.tensor("after.\(param.name)"), rtol: 1e-5, atol: 1e-6, param.name)
            }
        }
        XCTAssertEqual(checked, 3 * spec.channels.count)
    }

    /// The inference path (BatchNorm folded, ReLU fused) equals the training path with frozen BatchNorm.
    func testFoldedInferenceEqualsUnfoldedRunningStatisticsForward() throws {
        let io = try Self.io("resnet50_w4")
        let encoder = Encoder(.resnet(depth: 50, width: 4), pool: GridSize(height: 3, width: 3))
        try encoder.load(from: try Self.weights("resnet50_w4"))
        let x = try io.tensor("input")
        let folded = encoder.forward(images: x)
        let (unfolded, _) = encoder.forwardTraining(images: x, batchNorm: .runningStatistics)
        Self.assertRelativeClose(folded, unfolded, rtol: 1e-5, "folded vs unfolded")
    }
}
