#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Writes all of `buffer` to `fd` with write(2), retrying short writes and EINTR. Returns 0, or the errno of the
/// failing call (the caller names the file in its own error type).
public func writeFully(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) -> Int32 {
    var offset = 0
    while offset < buffer.count {
        #if canImport(Glibc)
        let n = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
        #else
        let n = Darwin.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
        #endif
        if n < 0 {
            if errno == EINTR { continue }
            return errno
        }
        offset += n
    }
    return 0
}
