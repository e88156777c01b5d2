import Foundation
import XCTest

/// The README's library example is the program in Examples/CaptionExample, built as `caption-example`: it must be
/// the same text, and it must print the caption the command-line tool gives for the same image.
final class LibraryExampleTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func testREADMEExampleIsTheExampleProgram() throws {
        let readme = try String(contentsOf: Self.root.appendingPathComponent("README.md"), encoding: .utf8)
        let program = try String(contentsOf: Self.root.appendingPathComponent("Examples/CaptionExample/main.swift"),
                                 encoding: .utf8)
        let start = try XCTUnwrap(readme.range(of: "```swift\n"), "README has no swift block")
        let end = try XCTUnwrap(readme.range(of: "```", range: start.upperBound..<readme.endIndex))
        XCTAssertEqual(String(readme[start.upperBound..<end.lowerBound]), program)
        XCTAssertLessThanOrEqual(program.split(separator: "\n").count, 5)
    }

    func testExampleProgramCaptionsLikeTheCLI() throws {
        // The example finds the shipped model as the CLI does (weights/ next to the executable's package) and opens
        // samples/scene7.jpg relative to the package root.
        let p = try CLIRunner.process([], program: "caption-example")
        p.currentDirectoryURL = Self.root
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))

        let sample = Self.root.appendingPathComponent("samples/scene7.jpg").path
        let cli = try CLIRunner.run([sample, "--format", "json", "--weights", Self.root.appendingPathComponent("weights").path])
        XCTAssertEqual(cli.status, 0, cli.stderr)
        let record = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(cli.stdout.utf8)) as? [String: Any])
        let caption = try XCTUnwrap(record["caption"] as? String)
        let logProb = try XCTUnwrap(record["log_prob"] as? Double)
        XCTAssertEqual(text, "\(caption) \(Float(logProb))\n")
    }
}
