import Foundation
import CaptionSupport
import Captioning
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Something found under the folder: a file to caption (anything that is not a directory: whether it is an
/// image is decided later, from its content), or a path that cannot be walked, with the reason.
public enum FolderEntry: Equatable, Sendable {
    case file(String)
    case problem(String, String)

    /// The path of the file or of the entry that could not be walked.
    public var path: String {
        switch self {
        case .file(let p), .problem(let p, _): return p
        }
    }
}

/// A lazy depth-first walk of a folder, yielding every non-directory entry once (as `DIR/sub/name`).
///
/// - Symbolic links are followed. A link to a folder that is one of its own ancestors (a loop) is not entered:
///   it is yielded as a `.problem`, as are broken links and folders that cannot be listed; none of them stops
///   the walk.
/// - `recursive` false: only DIR's own entries; subfolders are passed over.
/// - `sorted`: each folder's names in byte order, so the walk is the same on every run; otherwise the order in
///   which the file system lists them (`readdir`), streamed, so even a folder of millions of entries costs no
///   memory beyond the current one.
/// - Entries added or removed during the walk may or may not be seen (as with `readdir` itself); nothing fails.
public struct FolderWalk: Sequence, IteratorProtocol {
    /// A folder being listed: its path and identity (for loop detection) and either an open `DIR*` (streamed)
    /// or its sorted names.
    private final class Frame {
        let path: String
        let device: UInt64, inode: UInt64
        var stream: OpaquePointer?
        var names: [String] = []
        var next = 0

        init(path: String, device: UInt64, inode: UInt64) {
            self.path = path
            self.device = device
            self.inode = inode
        }

        deinit { if let stream { closedir(stream) } }
    }

    /// The folder walked, without trailing slashes; every yielded path starts with it.
    public let root: String
    /// Whether subfolders are entered.
    public let recursive: Bool
    /// Whether each folder's names are yielded in byte order rather than `readdir` order.
    public let sorted: Bool
    private var stack: [Frame] = []
    private var pending: [FolderEntry] = []

    /// Opens the root folder; throws a one-line `<DIR>: <problem>` error when it is missing, not a folder or
    /// cannot be listed (that is the one failure that stops a batch run).
    public init(root: String, recursive: Bool, sorted: Bool) throws {
        // "photos/" and "photos" give the same paths, so --resume matches records either way.
        var trimmed = root
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.root = trimmed
        self.recursive = recursive
        self.sorted = sorted
        var st = stat()
        guard stat(trimmed, &st) == 0 else { throw CaptionError(file: root, Self.reason(errno, folder: true)) }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { throw CaptionError(file: root, "not a folder") }
        let frame = Frame(path: trimmed, device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
        if let why = open(frame) { throw CaptionError(file: root, why) }
        stack = [frame]
    }

    /// The next non-directory entry or problem, or nil when the walk is over.
    public mutating func next() -> FolderEntry? {
        while true {
            if !pending.isEmpty { return pending.removeFirst() }
            guard let frame = stack.last else { return nil }
            guard let name = nextName(frame) else {
                stack.removeLast()
                continue
            }
            let path = frame.path == "/" ? "/" + name : frame.path + "/" + name
            if let entry = visit(path) { return entry }
        }
    }

    /// What `path` is: a file to yield, a folder to enter (nil is returned after pushing it), or a problem.
    private mutating func visit(_ path: String) -> FolderEntry? {
        var st = stat()
        if stat(path, &st) != 0 {
            let code = errno
            var link = stat()
            if lstat(path, &link) == 0 && (link.st_mode & S_IFMT) == S_IFLNK {
                return .problem(path, code == ELOOP ? "symbolic link loop" : "broken symbolic link (\(String(cString: strerror(code))))")
            }
            // Vanished since it was listed: yield it anyway, so its record says so.
            return code == ENOENT ? .file(path) : .problem(path, Self.reason(code, folder: false))
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { return .file(path) }
        guard recursive else { return nil }
        if let ancestor = stack.first(where: { $0.device == UInt64(st.st_dev) && $0.inode == UInt64(st.st_ino) }) {
            return .problem(path, "symbolic link loop: leads back to \(ancestor.path); not followed")
        }
        let frame = Frame(path: path, device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
        if let why = open(frame) { return .problem(path, why) }
        stack.append(frame)
        return nil
    }

    /// Starts listing `frame`; the problem when it cannot be listed.
    private func open(_ frame: Frame) -> String? {
        guard let dir = opendir(frame.path) else { return Self.reason(errno, folder: true) }
        frame.stream = dir
        guard sorted else { return nil }
        while let name = Self.read(dir) { frame.names.append(name) }
        closedir(dir)
        frame.stream = nil
        frame.names.sort(by: Self.namePrecedes)
        return nil
    }

    private func nextName(_ frame: Frame) -> String? {
        if let dir = frame.stream { return Self.read(dir) }
        guard frame.next < frame.names.count else { return nil }
        frame.next += 1
        return frame.names[frame.next - 1]
    }

    /// The next name from `readdir`, skipping `.` and `..`.
    private static func read(_ dir: OpaquePointer) -> String? {
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { return name }
        }
        return nil
    }

    private static func reason(_ code: Int32, folder: Bool) -> String {
        switch code {
        case ENOENT: return folder ? "no such folder" : "no such file"
        case EACCES, EPERM: return folder ? "cannot read folder: permission denied" : "permission denied"
        default: return (folder ? "cannot read folder: " : "cannot read: ") + String(cString: strerror(code))
        }
    }
}
