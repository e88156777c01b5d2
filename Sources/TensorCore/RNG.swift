/// A seeded, reproducible random number generator (xoshiro256**, seeded through SplitMix64).
///
/// The same seed gives the same stream on every machine. The whole state is `Codable`, so a training
/// checkpoint can store it and a resumed run continues the exact same stream.
public struct RNG: RandomNumberGenerator, Codable, Equatable {
    private var s0, s1, s2, s3: UInt64
    /// A second normal deviate left over from the last Box–Muller pair.
    private var spareNormal: Float?

    /// The generator whose state SplitMix64 expands from `seed`; equal seeds give equal streams.
    public init(seed: UInt64) {
        var sm = seed
        func splitmix() -> UInt64 {
            sm &+= 0x9E37_79B9_7F4A_7C15
            var z = sm
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitmix(); s1 = splitmix(); s2 = splitmix(); s3 = splitmix()
        spareNormal = nil
    }

    @inlinable static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// The next 64 random bits (one xoshiro256** step).
    public mutating func next() -> UInt64 {
        let result = RNG.rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = RNG.rotl(s3, 45)
        return result
    }

    /// Uniform in [0, 1) with 24 random bits.
    public mutating func uniform() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Uniform in [lo, hi).
    public mutating func uniform(_ lo: Float, _ hi: Float) -> Float { lo + (hi - lo) * uniform() }

    /// Uniform integer in `0..<n`.
    public mutating func int(below n: Int) -> Int { Int(next(upperBound: UInt64(n))) }

    /// Standard normal deviate (Box–Muller, both values of each pair used).
    public mutating func normal() -> Float {
        if let z = spareNormal { spareNormal = nil; return z }
        var u1 = 0.0
        repeat { u1 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) } while u1 == 0
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        let r = (-2.0 * _log(u1)).squareRoot()
        spareNormal = Float(r * _sin(2 * .pi * u2))
        return Float(r * _cos(2 * .pi * u2))
    }

    /// Bernoulli trial with probability `p` of `true`.
    public mutating func bernoulli(_ p: Float) -> Bool { uniform() < p }

    /// A child generator with an independent stream, derived deterministically from this one.
    public mutating func split() -> RNG { RNG(seed: next()) }
}

// Foundation-free elementary functions (Glibc), so TensorCore's RNG needs no import beyond the stdlib.
#if canImport(Glibc)
import Glibc
@usableFromInline func _log(_ x: Double) -> Double { Glibc.log(x) }
@usableFromInline func _sin(_ x: Double) -> Double { Glibc.sin(x) }
@usableFromInline func _cos(_ x: Double) -> Double { Glibc.cos(x) }
#else
import Darwin
@usableFromInline func _log(_ x: Double) -> Double { Darwin.log(x) }
@usableFromInline func _sin(_ x: Double) -> Double { Darwin.sin(x) }
@usableFromInline func _cos(_ x: Double) -> Double { Darwin.cos(x) }
#endif

extension Tensor {
    /// Elements drawn from N(mean, std²).
    public static func randn(_ shape: [Int], mean: Float = 0, std: Float = 1, rng: inout RNG) -> Tensor {
        var t = Tensor(shape: shape)
        for i in 0..<t.count { t.storage[i] = mean + std * rng.normal() }
        return t
    }

    /// Elements drawn from U[lo, hi).
    public static func uniform(_ shape: [Int], _ lo: Float, _ hi: Float, rng: inout RNG) -> Tensor {
        var t = Tensor(shape: shape)
        for i in 0..<t.count { t.storage[i] = rng.uniform(lo, hi) }
        return t
    }
}

/// SplitMix64's output function: a bijective 64-bit mixer, for deriving independent seeds from a
/// seed and an index (epoch orders, per-sample streams, scene seeds).
public func mix64(_ value: UInt64) -> UInt64 {
    var z = value
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}
