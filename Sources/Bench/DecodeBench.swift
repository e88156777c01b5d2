import Foundation
import Imaging
import TensorCore

/// `caption-bench decode DIR SIZE [--threads N]`: decode every .jpg in DIR and resize it to
/// SIZE×SIZE with the Pillow-exact bilinear filter (the same work as Pillow's
/// `Image.open(f).convert("RGB").resize((S, S), BILINEAR)`), best of 3 passes over the folder.
/// With more than one thread the files are spread over workers, as `caption batch` does.
func benchDecode(_ args: [String]) {
    guard args.count >= 2, let size = Int(args[1]) else {
        FileHandle.standardError.write(Data("usage: caption-bench decode DIR SIZE [--threads N]\n".utf8))
        exit(2)
    }
    var threads = Threads.count
    if let i = args.firstIndex(of: "--threads"), i + 1 < args.count, let n = Int(args[i + 1]) { threads = n }
    let dir = args[0]
    let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])
        .filter { $0.hasSuffix(".jpg") }.sorted().map { dir + "/" + $0 }
    let decoder = ImageDecoder()
    let saved = Threads.count
    Threads.count = threads
    defer { Threads.count = saved }
    let t = bestTime(repeats: 3) {
        parallelFor(files.count) { i in
            let image = try! decoder.decode(path: files[i])
            _ = image.resized(width: size, height: size)
        }
    }
    emit(["bench": "decode_resize", "size": size, "threads": threads, "images": files.count,
          "seconds": t, "images_per_s": Double(files.count) / t])
}
