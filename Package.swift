// swift-tools-version:6.0
import PackageDescription

// Module map (see README "Architecture"):
//   CImageIO, COpenBLAS  — C shims: libjpeg-turbo/libpng decoding with C-side error handling; cblas.h
//   CKernels             — hand-vectorised C kernels with run-time CPU dispatch (AVX2+FMA when present), heap policy
//   TensorCore           — Float32 tensors, SGEMM, kernels, RNG, threading, safetensors
//   Imaging              — decoded RGB8 images, format sniffing, Pillow-exact resize, normalisation, PNG out
//   NN                   — layers as forward/backward pairs, losses, optimisers
//   Vision               — CNN encoders (ResNet, VGG, compact) and their weight loading
//   Video                — frame sequences, moving-objects generator, LSTM video autoencoder and its trainer
//   caption              — the command-line tool (argument parsing only)
let optimise: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]

let package = Package(
    name: "caption",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "caption", targets: ["caption"]),
        .library(name: "TensorCore", targets: ["TensorCore"]),
        .library(name: "Imaging", targets: ["Imaging"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS"),
        .target(
            name: "CImageIO",
            path: "Sources/CImageIO",
            cSettings: [.unsafeFlags(["-O2"])],
            linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png")]
        ),
        .target(name: "CKernels", path: "Sources/CKernels", cSettings: [.unsafeFlags(["-O3", "-ffp-contract=fast"])]),
        .target(name: "TensorCore", dependencies: ["COpenBLAS", "CKernels"], swiftSettings: optimise),
        .target(name: "Imaging", dependencies: ["CImageIO", "TensorCore"], swiftSettings: optimise),
        .target(name: "NN", dependencies: ["TensorCore", "CKernels"], swiftSettings: optimise),
        .target(name: "Video", dependencies: ["NN", "TensorCore", "Imaging"], swiftSettings: optimise),
        .target(name: "Vision", dependencies: ["NN", "TensorCore", "Imaging"], swiftSettings: optimise),
        .target(name: "Captioning", dependencies: ["NN", "TensorCore", "Imaging", "Vision", "CKernels"], swiftSettings: optimise),
        .executableTarget(
            name: "caption",
            dependencies: [
                "TensorCore", "Imaging", "Captioning", "Vision", "Video",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: optimise
        ),
        .executableTarget(name: "caption-bench", dependencies: ["TensorCore", "Imaging", "NN", "Vision", "Video", "Captioning"], path: "Sources/Bench", swiftSettings: optimise),
        .testTarget(name: "VideoTests", dependencies: ["Video", "NN", "TensorCore", "Imaging", "TestSupport"]),
        .target(name: "TestSupport", dependencies: ["TensorCore"], path: "Tests/TestSupport"),
        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore", "TestSupport"]),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging", "TensorCore", "TestSupport"]),
        .testTarget(name: "NNTests", dependencies: ["NN", "TensorCore", "CKernels", "TestSupport"]),
        .testTarget(name: "VisionTests", dependencies: ["Vision", "NN", "Imaging", "TensorCore", "TestSupport"]),
        .testTarget(name: "CaptioningTests", dependencies: ["Captioning", "NN", "TensorCore", "Imaging", "Vision", "TestSupport"]),
        // Runs the `caption` executable as a subprocess: `swift test` builds every product before running the tests,
        // and the dependency on the executable target states the need (its module is compiled before this target).
        .testTarget(name: "CLITests", dependencies: ["caption", "Imaging", "TensorCore", "TestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
