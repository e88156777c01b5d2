import TensorCore
import TestSupport
import XCTest
@testable import Video

final class MovingObjectsTests: XCTestCase {
    func testDeterministicBySeed() {
        let g = MovingObjects(seed: 7)
        let a = g.sequence(3), b = g.sequence(3)
        XCTAssertEqual(a.frames, b.frames)
        XCTAssertEqual(a.frames.count, 20)
        XCTAssertEqual(a.frames[0].count, 64 * 64)
        XCTAssertNotEqual(g.sequence(4).frames, a.frames)
        XCTAssertNotEqual(MovingObjects(seed: 8).sequence(3).frames, a.frames)
    }
}
