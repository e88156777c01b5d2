import Foundation

/// Where a model comes from when none is named (the CLI's `--weights DIR` defaults to the shipped model):
///   1. `--weights PATH` when given (a model folder, or for `caption features` also a bare safetensors file);
///   2. `$CAPTION_WEIGHTS` when set: the shipped-model root (`weights/`), so `caption video` uses
///      `$CAPTION_WEIGHTS/video`;
///   3. `weights/` next to the executable's package: from the executable's real directory upwards, the first
///      folder that holds a `weights/` directory, stopping at the package root (the folder with
///      `Package.swift`), e.g. `<repo>/weights` for `<repo>/.build/release/caption`.
public enum WeightsLocation {
    /// The model path to use, or a one-line `CaptionError` when there is none.
    /// `subdirectory` is the model's place under the root (`"video"` for `caption video`).
    public static func resolve(_ explicit: String?, subdirectory: String? = nil) throws -> String {
        if let explicit { return explicit }
        let fm = FileManager.default
        func under(_ root: String) -> String {
            subdirectory.map { (root as NSString).appendingPathComponent($0) } ?? root
        }
        if let env = ProcessInfo.processInfo.environment["CAPTION_WEIGHTS"], !env.isEmpty {
            let path = under(env)
            guard fm.fileExists(atPath: path) else {
                throw CaptionError(file: path, "no model here (from CAPTION_WEIGHTS); pass --weights DIR")
            }
            return path
        }
        if let root = shippedRoot() {
            let path = under(root)
            if fm.fileExists(atPath: path) { return path }
        }
        let name = subdirectory.map { "weights/\($0)" } ?? "weights"
        throw CaptionError(file: name, "no shipped model found next to the executable; pass --weights DIR or set CAPTION_WEIGHTS")
    }

    /// The `weights/` folder next to the executable's package, if there is one.
    public static func shippedRoot() -> String? {
        let fm = FileManager.default
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let executablePath = Bundle.main.executablePath.map { URL(fileURLWithPath: $0).resolvingSymlinksInPath() } ?? exe
        var dir = executablePath.deletingLastPathComponent()
        while true {
            let candidate = dir.appendingPathComponent("weights").path
            var isDirectory: ObjCBool = false
            if fm.fileExists(atPath: candidate, isDirectory: &isDirectory), isDirectory.boolValue { return candidate }
            if fm.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { return nil }
            let parent = dir.deletingLastPathComponent()
            if parent.path == dir.path { return nil }
            dir = parent
        }
    }
}
