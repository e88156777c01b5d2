// swift-tools-version:6.0
import PackageDescription

// Module map, in data-flow order (see README "Architecture"). Every arrow points down this list.
//   CImageIO, COpenBLAS  — C shims: libjpeg-turbo/libpng decoding with C-side error handling; cblas.h
//   CKernels             — hand-vectorised C kernels with run-time CPU dispatch (AVX2+FMA when present), heap policy
//   CaptionSupport       — Foundation only: the one error type (file + problem), the JSON reader and writer, file writes
//   TensorCore           — Float32 tensors, SGEMM, kernels, RNG, threading, prefetch pipeline, half floats, safetensors
//   Imaging              — decoded RGB8 images, format sniffing, Pillow-exact resize, normalisation, PNG out
//   NN                   — layers as forward/backward pairs, losses, optimisers, parameter store
//   Vision               — CNN encoders (ResNet, VGG, compact) and their weight loading
//   CaptionData          — Foundation only: COCO / Karpathy caption files, results files, annotated images
//   CaptionMetrics       — Foundation only: BLEU, ROUGE-L, CIDEr-D as pycocoevalcap computes them
//   SyntheticWorld       — the shapes world: scenes, their true captions, rendering, COCO-style folders
//   Captioning           — vocabulary, attention decoder, greedy and beam search, attention figures, `Captioner`
//   CaptionTraining      — datasets, the trainer (teacher forcing, scheduled sampling), checkpoints, evaluation
//   BatchCaptioning      — `caption batch`: folder walk, decode/encode/search pipeline, resumable output
//   Video                — frame sequences, moving-objects generator, LSTM video autoencoder and its trainer
//   caption              — the command-line tool (argument parsing only)
//   caption-bench        — the Swift half of scripts/bench.sh
//   caption-example      — the README's five-line library example (Examples/CaptionExample)
//   TestSupport          — fixture loading and tolerances shared by the test targets
//   *Tests               — one XCTest target per module group (TensorCore, Imaging, NN, Vision, Video, Captioning),
//                          and CLITests, which runs the built `caption` and `caption-example` executables
//
// No target carries unsafe flags, so every library product can be used by another package through a version.

let package = Package(
    name: "caption",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "caption", targets: ["caption"]),
        .library(name: "Captioning", targets: ["Captioning"]),
        .library(name: "CaptionTraining", targets: ["CaptionTraining"]),
        .library(name: "CaptionMetrics", targets: ["CaptionMetrics"]),
        .library(name: "SyntheticWorld", targets: ["SyntheticWorld"]),
        .library(name: "BatchCaptioning", targets: ["BatchCaptioning"]),
        .library(name: "Video", targets: ["Video"]),
        .library(name: "Vision", targets: ["Vision"]),
        .library(name: "Imaging", targets: ["Imaging"]),
        .library(name: "TensorCore", targets: ["TensorCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS"),
        .target(name: "CImageIO", linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png")]),
        .target(name: "CKernels"),
        .target(name: "CaptionSupport"),
        .target(name: "TensorCore", dependencies: ["CaptionSupport", "COpenBLAS", "CKernels"]),
        .target(name: "Imaging", dependencies: ["CaptionSupport", "CImageIO", "TensorCore"]),
        .target(name: "NN", dependencies: ["TensorCore", "CKernels"]),
        .target(name: "Vision", dependencies: ["CaptionSupport", "NN", "TensorCore", "Imaging"]),
        .target(name: "CaptionData", dependencies: ["CaptionSupport"]),
        .target(name: "CaptionMetrics", dependencies: ["CaptionSupport", "CaptionData"]),
        .target(name: "SyntheticWorld", dependencies: ["CaptionSupport", "CaptionData", "TensorCore", "Imaging"]),
        .target(
            name: "Captioning",
            dependencies: ["CaptionSupport", "CaptionData", "TensorCore", "Imaging", "NN", "Vision", "CKernels"]
        ),
        .target(
            name: "CaptionTraining",
            dependencies: [
                "CaptionSupport", "CaptionData", "CaptionMetrics", "SyntheticWorld", "TensorCore", "Imaging", "NN",
                "Vision", "Captioning",
            ]
        ),
        .target(name: "BatchCaptioning", dependencies: ["CaptionSupport", "TensorCore", "Imaging", "Captioning"]),
        .target(name: "Video", dependencies: ["CaptionSupport", "NN", "TensorCore", "Imaging"]),
        .executableTarget(
            name: "caption",
            dependencies: [
                "CaptionSupport", "TensorCore", "Imaging", "Vision", "CaptionData", "CaptionMetrics", "SyntheticWorld",
                "Captioning", "CaptionTraining", "BatchCaptioning", "Video",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The README's library example, as a user's program would be (a test runs it and compares the two).
        .executableTarget(name: "caption-example", dependencies: ["Captioning"], path: "Examples/CaptionExample"),
        .executableTarget(
            name: "caption-bench",
            dependencies: ["TensorCore", "Imaging", "NN", "Vision", "Video", "Captioning", "CaptionTraining"],
            path: "Sources/Bench"
        ),
        .target(name: "TestSupport", dependencies: ["TensorCore"], path: "Tests/TestSupport"),
        .testTarget(name: "TensorCoreTests", dependencies: ["CaptionSupport", "TensorCore", "TestSupport"]),
        .testTarget(name: "ImagingTests", dependencies: ["CaptionSupport", "Imaging", "TensorCore", "TestSupport"]),
        .testTarget(name: "NNTests", dependencies: ["NN", "TensorCore", "CKernels", "TestSupport"]),
        .testTarget(name: "VisionTests", dependencies: ["Vision", "NN", "Imaging", "TensorCore", "TestSupport"]),
        .testTarget(name: "VideoTests", dependencies: ["CaptionSupport", "Video", "NN", "TensorCore", "Imaging", "TestSupport"]),
        .testTarget(
            name: "CaptioningTests",
            dependencies: [
                "CaptionSupport", "CaptionData", "CaptionMetrics", "SyntheticWorld", "Captioning", "CaptionTraining",
                "BatchCaptioning", "NN", "TensorCore", "Imaging", "Vision", "TestSupport",
            ]
        ),
        // Runs the `caption` executable as a subprocess: `swift test` builds every product before running the tests,
        // and the dependency on the executable target states the need (its module is compiled before this target).
        .testTarget(name: "CLITests", dependencies: ["caption", "Imaging", "TensorCore", "TestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
