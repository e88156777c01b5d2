import NN
import XCTest

final class ScheduledSamplingTests: XCTestCase {
    func testSchedulesFollowBengioEtAl() {
        XCTAssertEqual(ScheduledSampling.teacherForcing.teacherForcingProbability(step: 10_000), 1)
        let linear = ScheduledSampling(kind: .linear, k: 1, c: 0.001, minimum: 0.25)
        XCTAssertEqual(linear.teacherForcingProbability(step: 0), 1)
        XCTAssertEqual(linear.teacherForcingProbability(step: 500), 0.5, accuracy: 1e-12)
        XCTAssertEqual(linear.teacherForcingProbability(step: 5000), 0.25)
        let exponential = ScheduledSampling(kind: .exponential, k: 0.99)
        XCTAssertEqual(exponential.teacherForcingProbability(step: 100), pow(0.99, 100), accuracy: 1e-12)
        let sigmoid = ScheduledSampling(kind: .inverseSigmoid, k: 10)
        XCTAssertEqual(sigmoid.teacherForcingProbability(step: 0), 10 / 11, accuracy: 1e-12)
        XCTAssertEqual(sigmoid.teacherForcingProbability(step: 50), 10 / (10 + exp(5)), accuracy: 1e-12)
        for s in [linear, exponential, sigmoid] {  // monotone non-increasing
            var last = 1.0
            for i in stride(from: 0, to: 3000, by: 7) {
                let e = s.teacherForcingProbability(step: i)
                XCTAssertLessThanOrEqual(e, last + 1e-15)
                last = e
            }
        }
    }
}
