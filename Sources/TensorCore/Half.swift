/// IEEE 754 binary16 ("half", F16) values as their 16 raw bits, converted to and from Float in plain integer
/// arithmetic rather than through the standard library's `Float16`, which is unavailable on some platforms
/// (macOS on x86_64). Safetensors F16 tensors, the half-precision step weights and `.half()`-style rounding of
/// models all use these, so every half in the project rounds the same way (nearest, ties to even, as torch).
public enum Half {
    /// The Float a half's bits stand for, exactly (every half is a Float): subnormals, ±0, ±∞ and NaN
    /// (payload kept) included.
    public static func toFloat(_ bits: UInt16) -> Float {
        let sign = UInt32(bits & 0x8000) << 16
        let exponent = Int((bits >> 10) & 0x1F)
        let mantissa = UInt32(bits & 0x3FF)
        if exponent == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13)) }
        if exponent == 0 {
            // Subnormal (or zero): mantissa · 2⁻²⁴, exact in Float.
            let magnitude = Float(mantissa) * Float(bitPattern: 0x3380_0000)  // 2^-24
            return sign != 0 ? -magnitude : magnitude
        }
        return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
    }

    /// The bits of the half nearest to `value`, ties to even (overflow gives ±∞, NaN stays a quiet NaN); the
    /// inverse of `toFloat` on every half value.
    public static func bits(_ value: Float) -> UInt16 {
        let x = value.bitPattern
        let sign = UInt16(truncatingIfNeeded: (x >> 16) & 0x8000)
        let biased = Int((x >> 23) & 0xFF), mantissa = x & 0x7F_FFFF
        if biased == 0xFF { return sign | 0x7C00 | (mantissa != 0 ? 0x200 : 0) }
        let exponent = biased - 127 + 15
        if exponent >= 31 { return sign | 0x7C00 }
        // Keep `shift` low bits fewer; round the dropped ones to nearest, ties to even (a carry into the
        // exponent field is the correct next value, up to ∞).
        func rounded(_ value: UInt32, shift: UInt32) -> UInt32 {
            let kept = value >> shift, rest = value & ((1 << shift) - 1), half = UInt32(1) << (shift - 1)
            return rest > half || (rest == half && kept & 1 == 1) ? kept + 1 : kept
        }
        if exponent <= 0 {
            // Subnormal half: (1.mantissa) · 2^(exponent − 15) = m · 2⁻²⁴ with m = M >> (14 − exponent).
            if exponent < -10 { return sign }
            return sign | UInt16(rounded(mantissa | 0x80_0000, shift: UInt32(14 - exponent)))
        }
        return sign | UInt16(rounded(UInt32(exponent) << 23 | mantissa, shift: 13))
    }

    /// Rounds `count` floats in place to the nearest half values (what `SafeTensorsWriter.addHalf` stores), so
    /// the values in memory are the ones an F16 file holds.
    public static func round(_ values: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { values[i] = toFloat(bits(values[i])) }
    }
}
