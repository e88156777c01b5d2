import Foundation
import Imaging
import TensorCore
import XCTest
@testable import Video

/// Reading sequences: folders in natural order, non-images skipped, one-line errors; data folders; the
/// generator's PNG round trip.
final class SequenceIOTests: XCTestCase {
    var root: String!

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "video-io-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: root) }

    /// Writes gray frames as PNGs named by `name(i)`.
    func writeFrames(_ frames: [[UInt8]], size: Int, folder: String, name: (Int) -> String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (i, frame) in frames.enumerated() {
            let rgb = frame.flatMap { [$0, $0, $0] }
            try RGBImage(width: size, height: size, pixels: rgb).writePNG(to: folder + "/" + name(i))
        }
    }

    func testNaturalOrder() {
        let names = ["f10.png", "f2.png", "f1.png", "f02.png", "a.png", "f1b.png"]
        XCTAssertEqual(names.sorted(by: SequenceReader.naturalOrder), ["a.png", "f1.png", "f1b.png", "f02.png", "f2.png", "f10.png"])
    }

    func testFolderFramesInNaturalOrderSkippingOtherFiles() throws {
        let frames = (0..<12).map { i in [UInt8](repeating: UInt8(i * 20), count: 16) }
        try writeFrames(frames, size: 4, folder: root + "/seq", name: { "frame_\($0).png" })   // frame_2 < frame_10
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: root + "/seq/notes.txt"))
        try Data("x".utf8).write(to: URL(fileURLWithPath: root + "/seq/.hidden.png"))
        let images = try SequenceReader.images(at: root + "/seq")
        XCTAssertEqual(images.count, 12)
        XCTAssertEqual(images.map { $0.pixels[0] }, frames.map { $0[0] })
        XCTAssertEqual(try SequenceReader.images(at: root + "/seq", maxFrames: 3).count, 3)
    }

    func testErrorsNameTheFile() throws {
        XCTAssertThrowsError(try SequenceReader.images(at: root + "/missing")) { error in
            XCTAssertEqual("\(error)", root + "/missing: no such file or folder")
        }
        try FileManager.default.createDirectory(atPath: root + "/empty", withIntermediateDirectories: true)
        XCTAssertThrowsError(try SequenceReader.images(at: root + "/empty")) { error in
            XCTAssertEqual("\(error)", root + "/empty: no PNG or JPEG frames in folder")
        }
        XCTAssertThrowsError(try SequenceReader.sequences(in: root + "/empty")) { error in
            XCTAssertTrue("\(error)".hasPrefix(root + "/empty: no sequences"))
        }
    }

    func testVideoFileWithoutFFmpegIsAClearError() throws {
        let path = root + "/clip.mp4"
        try Data([0, 0, 0, 24]).write(to: URL(fileURLWithPath: path))
        let saved = ProcessInfo.processInfo.environment["PATH"] ?? ""
        setenv("PATH", root, 1)
        defer { setenv("PATH", saved, 1) }
        XCTAssertThrowsError(try SequenceReader.images(at: path)) { error in
            XCTAssertTrue("\(error)".hasPrefix(path + ": reading a video file needs ffmpeg, which is not installed"), "\(error)")
        }
    }

    /// Needs ffmpeg (skipped when absent, as on CI): frames written as a video decode back to as many frames.
    func testVideoFileThroughFFmpeg() throws {
        guard let ffmpeg = SequenceReader.ffmpegPath else { throw XCTSkip("ffmpeg is not installed") }
        let generator = MovingObjects(size: 32, frames: 6, patchSize: 14, seed: 5)
        try writeFrames(generator.sequence(0).frames, size: 32, folder: root + "/png", name: { String(format: "%03d.png", $0) })
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ffmpeg)
        process.arguments = ["-nostdin", "-v", "error", "-framerate", "10", "-i", root + "/png/%03d.png",
                             "-c:v", "ffv1", root + "/clip.mkv"]
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        let images = try SequenceReader.images(at: root + "/clip.mkv")
        XCTAssertEqual(images.count, 6)
        XCTAssertEqual(images[0].width, 32)
        XCTAssertEqual(try SequenceReader.sequences(in: root), [root + "/clip.mkv", root + "/png"])
    }

    func testDatasetLoadsGeneratorFramesExactly() throws {
        let generator = MovingObjects(size: 16, frames: 5, patchSize: 8, seed: 11)
        for s in 0..<3 {
            try writeFrames(generator.sequence(s).frames, size: 16, folder: root + "/data/seq_\(s)", name: { "frame_\($0).png" })
        }
        let data = try VideoDataset.loadPixels(folder: root + "/data", size: 16, channels: 1, minimumLength: 4)
        let reference = VideoDataset.synthetic(generator, indices: 0..<3)
        XCTAssertEqual(data.count, 3)
        XCTAssertEqual(data.batch(0..<3, frames: 5).frames, reference.batch(0..<3, frames: 5).frames)
        // Synthetic sequences are drawn on demand: any range of the generator, named by seed and index.
        let later = VideoDataset.synthetic(generator, indices: 1..<3)
        XCTAssertEqual(later.names, ["synthetic:11:1", "synthetic:11:2"])
        XCTAssertEqual(later.batch([(sequence: 1, start: 2)], frames: 3).frames,
                       reference.batch([(sequence: 2, start: 2)], frames: 3).frames)
        XCTAssertThrowsError(try VideoDataset.loadPixels(folder: root + "/data", size: 16, channels: 1, minimumLength: 6)) { error in
            XCTAssertEqual("\(error)", root + "/data/seq_0: has 5 frames, the model needs at least 6")
        }
        // RGB, resized: channel-major planes, equal for a gray source.
        let rgb = try VideoDataset.loadPixels(folder: root + "/data", size: 8, channels: 3, minimumLength: 5)
        XCTAssertEqual(rgb.dimension, 3 * 64)
        let frame = Array(rgb.batch(0..<1, frames: 1).frames.storage)
        XCTAssertEqual(Array(frame[0..<64]), Array(frame[64..<128]))
    }

    func testMovingObjectsStayOnTheCanvasAndBounce() {
        let generator = MovingObjects(frames: 60, kind: .mixed, seed: 4)
        for s in 0..<8 {
            let (frames, tracks) = generator.sequence(s)
            XCTAssertEqual(tracks.count, 2)
            for track in tracks {
                for p in track.positions { XCTAssertTrue((0...36).contains(p[0]) && (0...36).contains(p[1])) }
            }
            XCTAssertTrue(frames.allSatisfy { frame in frame.contains { $0 > 200 } }, "every frame shows an object")
        }
    }
}
