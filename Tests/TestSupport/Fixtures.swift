import Foundation
import TensorCore
import XCTest

/// Locates `Tests/Fixtures/` from this source file, so tests need no bundled resources.
public enum Fixtures {
    public static let directory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // TestSupport
        .deletingLastPathComponent()  // Tests
        .appendingPathComponent("Fixtures")

    /// Absolute path of a file under `Tests/Fixtures/`.
    public static func path(_ relative: String) -> String {
        directory.appendingPathComponent(relative).path
    }
}

/// Asserts two tensors have the same shape and agree within `atol + rtol·|expected|` per element,
/// reporting the worst element.
public func assertClose(_ actual: Tensor, _ expected: Tensor, rtol: Float = 1e-5, atol: Float = 1e-6,
                        _ label: String = "", file: StaticString = #filePath, line: UInt = #line) {
    guard actual.shape == expected.shape else {
        XCTFail("\(label): shape \(actual.shape) != expected \(expected.shape)", file: file, line: line)
        return
    }
    var worst = -1
    var worstExcess: Float = 0
    for i in 0..<actual.count {
        let a = actual.storage[i], e = expected.storage[i]
        let excess = abs(a - e) - (atol + rtol * abs(e))
        if excess > worstExcess || a.isNaN != e.isNaN { worstExcess = max(excess, worstExcess); worst = i }
    }
    if worst >= 0 {
        XCTFail("\(label): element \(worst) is \(actual.storage[worst]), expected \(expected.storage[worst]) "
                + "(max abs diff \(actual.maxAbsDifference(expected)), rtol \(rtol), atol \(atol))",
                file: file, line: line)
    }
}
