//! The natural logarithm, fast and the same on every platform.
//!
//! Exponential latencies and Poisson arrival gaps are `-ln(1 - u)` of a
//! uniform draw `u`, one logarithm per sample: `libm::log` took about a
//! fifth of the CPU time of the queued simulator (`perf record` of
//! sim/benches/memory-poisson.toml at 10^5 calls). [`ln`] computes the same
//! function with basic IEEE arithmetic only (`+ - * /` and integer bit
//! operations, no fused multiply-add, no platform math library), which
//! every platform rounds alike, so a seed still gives the same samples
//! everywhere. The samplers call [`ln_one_minus_unit`], which makes the
//! bits of `1 - u` from the draw's 64-bit word with integer operations
//! (a shorter chain of dependent instructions than converting `u` to
//! floating point and back) and hands them to [`ln`].
//!
//! # Method
//!
//! A positive normal `x` is `2^k × z` with `z` in `[1, 2)`. The top
//! [`BITS`] bits of `z`'s mantissa pick entry `i` of a table, which holds
//! `invc`, an approximation of the reciprocal of the middle of that
//! interval with only `BITS + 1` significant bits, and `logc = -ln(invc)`
//! as a sum of two doubles. Then
//!
//! ```text
//! ln x = k ln 2 + logc + ln(1 + r),    r = z × invc - 1,    |r| < 2^-BITS
//! ```
//!
//! * `r` is exact: split `z` into its top 45 bits and the rest; each part
//!   times `invc` is exact (at most 53 bits), and the exact `r` is a
//!   multiple of `2^-(53 + BITS)` below `2^-BITS`, a double, so the sum of
//!   the two products rounds to it.
//! * `ln 2` and `logc` are split in a high part, a multiple of `2^-42`,
//!   and a low part: `k × ln2_hi + logc_hi` is exact (`|k| < 2^11`). `r`
//!   is added to it with its rounding error kept (Dekker's fast two-sum).
//!   `ln(1 + r) - r` is `r² × q(r)`, the Taylor series to `r^9`, small
//!   beside the rest. The result is one final rounding of a sum known to
//!   far better than a unit in the last place.
//! * Near 1 the entries are exact: the interval starting at 1 has
//!   `invc = 1`, `logc = 0`, and the last one (`z` just below 2) has
//!   `invc = 1/2`, `logc = ln 2` split exactly as `k ln 2` is, so for `x`
//!   just below or above 1 the result is `r + r² × q(r)` with `r` exact,
//!   with no cancellation. `ln(1) = +0` exactly.
//!
//! Subnormal `x` are scaled by `2^54` first. Zero, negative numbers,
//! infinities and NaN go to `libm::log`, so they give what it gives:
//! `-inf` for `±0`, NaN for negative numbers and `-inf`, `+inf` for
//! `+inf`, and NaN for NaN.
//!
//! # Accuracy
//!
//! The tests measure it (`cargo test -p reflexio-sim --lib ln:: --
//! --nocapture` prints the figures):
//!
//! * `error_against_the_exact_logarithm`: against a 116-bit fixed-point
//!   logarithm, over 133,118 inputs (simulator draws, random bit patterns,
//!   the neighbours of 1), the worst error of [`ln`] is 0.500000 units in
//!   the last place (to six decimals): none of its results is more than
//!   half a unit off, so each is the correctly rounded logarithm as far as
//!   the reference resolves. That of `libm::log` is 0.803992, with 4,805
//!   results more than half a unit off.
//! * `agrees_with_libm_on_the_simulator_draws`: `ln(1 - u)` for 2^20
//!   draws `u` made as the simulator makes them ([`draws::unit`]): at
//!   most 1 unit in the last place from `libm::log` (asserted); 7.19% of
//!   the results differ, by that unit (the exact comparison above finds
//!   `libm::log` the less accurate of the two).
//! * `agrees_with_libm_on_every_binade`: 2^20 random positive bit
//!   patterns, subnormals included: at most 1 unit (asserted); 0.11%
//!   differ.
//! * `agrees_with_libm_near_one_and_the_extremes`: the 65,535 doubles
//!   nearest 1 on either side, the 4,095 smallest subnormals, the 8,192
//!   doubles around the smallest normal and the 4,096 largest: all
//!   147,453 results equal.
//! * `exponential_samples_in_whole_nanoseconds_are_libms`: `-mean ×
//!   ln(1 - u)` rounded to whole nanoseconds, as latencies and arrival
//!   gaps are, for 2^18 draws and means from 1 µs to 10 s: none of the
//!   2,097,152 samples differs from the one through `libm::log` (at most
//!   one may, asserted). A last-bit difference moves a sample only when
//!   it straddles a half nanosecond.
//!
//! [`draws::unit`]: crate::draws::unit

/// Bits of `z`'s mantissa that pick a table entry.
const BITS: u32 = 7;

/// Entries in the table.
const SIZE: usize = 1 << BITS;

/// Bits of an IEEE double's mantissa field.
const MANTISSA_BITS: u32 = 52;

/// The mantissa field of a double.
const MANTISSA: u64 = (1 << MANTISSA_BITS) - 1;

/// The bits of `1.0`: a mantissa with these exponent bits is `z` in
/// `[1, 2)`.
const ONE: u64 = 0x3ff0_0000_0000_0000;

/// Clears the low `BITS + 1` bits of a mantissa: `z`'s high part, which
/// times an `invc` of `BITS + 1` bits is exact.
const HIGH_PART: u64 = !((1 << (BITS + 1)) - 1);

/// The bits of the smallest positive normal double.
const MIN_NORMAL: u64 = 0x0010_0000_0000_0000;

/// The bits of `+inf`.
const INFINITY: u64 = 0x7ff0_0000_0000_0000;

/// `2^54`, which scales a subnormal up to a normal number exactly.
const TWO_TO_54: f64 = (1u64 << 54) as f64;

/// `ln 2` rounded to a multiple of `2^-42`, so that `k × LN2_HI` is exact
/// for `|k| < 2^11`.
const LN2_HI: f64 = 0.6931471805598903;
/// `ln 2 - LN2_HI`, rounded.
const LN2_LO: f64 = 5.497923018708371e-14;

/// `q(r)`: `ln(1 + r) = r + r² × q(r)`, the Taylor series of
/// `(ln(1 + r) - r) / r²` to `r^7`. Its truncation is about `|r|^9 / 10`
/// relative to `ln(1 + r)`, under `2^-66` for `|r| < 2^-7`.
const Q: [f64; 8] = [
    -1.0 / 2.0,
    1.0 / 3.0,
    -1.0 / 4.0,
    1.0 / 5.0,
    -1.0 / 6.0,
    1.0 / 7.0,
    -1.0 / 8.0,
    1.0 / 9.0,
];

/// Entry `i` covers `z` in `[1 + i/2^BITS, 1 + (i+1)/2^BITS)`:
/// `[invc, logc_hi, logc_lo]`. `invc` has `BITS + 1` significant bits;
/// `logc_hi + logc_lo` is `-ln(invc)`, `logc_hi` a multiple of `2^-42`.
/// Generated by the test `table_is_generated`, which recomputes every
/// bit with integer arithmetic and prints the table when it differs.
const TABLE: [[f64; 3]; SIZE] = [
    [1.0, 0.0, 0.0],
    [0.98828125, 0.011787955751970003, 7.223757580209288e-14],
    [0.98046875, 0.019724505347767263, 1.1326399700142234e-14],
    [0.97265625, 0.027724548014930406, -7.554530328896727e-14],
    [0.96484375, 0.03578910785154221, 4.3066973476878145e-14],
    [0.95703125, 0.04391923393473007, 1.0541743854342862e-13],
    [0.953125, 0.04800921918626955, 9.106054379130929e-14],
    [0.9453125, 0.05623971832278585, 9.023009281142904e-14],
    [0.9375, 0.0645385211375924, -2.1225608044809997e-14],
    [0.9296875, 0.07290677080800378, 8.399594274044337e-14],
    [0.92578125, 0.07711730334449385, -6.255850200176405e-14],
    [0.91796875, 0.0855919303353403, 6.322009333691484e-14],
    [0.91015625, 0.0941389909139616, -9.969653023079706e-14],
    [0.90625, 0.09844007281321865, 3.3871241029241416e-14],
    [0.8984375, 0.10709813555627079, 9.631011033519217e-14],
    [0.890625, 0.11583181552509814, 2.3568822182038756e-14],
    [0.88671875, 0.12022742699809896, 6.083738419972574e-14],
    [0.87890625, 0.1290770422751848, -4.2451216089619995e-14],
    [0.875, 0.13353139262449076, 3.1859736349078334e-14],
    [0.8671875, 0.14250006260726877, 1.4256439478199035e-14],
    [0.86328125, 0.14701474296180095, 8.710783796122478e-15],
    [0.85546875, 0.15610571466299916, 6.249274931606537e-14],
    [0.8515625, 0.16068238169054894, -7.547106028244807e-14],
    [0.84375, 0.16989903679541385, -1.6376276414097503e-14],
    [0.83984375, 0.17453941635199044, -9.076231556699796e-14],
    [0.83203125, 0.1838852787700489, 8.84637355812087e-14],
    [0.828125, 0.18859116980752333, 2.6693431578015818e-14],
    [0.82421875, 0.1933193110035063, -1.0320443688698849e-14],
    [0.81640625, 0.20284319251481975, -6.827661787185498e-14],
    [0.8125, 0.20763936477828793, -4.3425422595242564e-14],
    [0.80859375, 0.21245865121409224, 1.0115944196590467e-13],
    [0.80078125, 0.2221674653410446, 1.0970699320566433e-13],
    [0.796875, 0.22705745063535687, -1.078736749871691e-14],
    [0.79296875, 0.2319714654377094, 6.573097737831975e-14],
    [0.7890625, 0.2369097470784709, -1.1318526912023687e-13],
    [0.78125, 0.2468600779316148, -8.899851356560444e-14],
    [0.77734375, 0.25187261975497677, 9.331234677945918e-14],
    [0.7734375, 0.25691041378513546, -1.0822171646799124e-13],
    [0.76953125, 0.26197371574153294, 4.102651071698446e-14],
    [0.765625, 0.2670627852489815, 6.371947269815667e-14],
    [0.7578125, 0.27731928541629713, -6.279055732660844e-14],
    [0.75390625, 0.28248725557477883, -1.0190482133505088e-13],
    [0.75, 0.28768207245184385, -6.292357389008195e-14],
    [0.74609375, 0.29290401643288533, 4.727452940514406e-14],
    [0.7421875, 0.29815337231912054, -4.4204083338755686e-14],
    [0.73828125, 0.3034304294199046, 1.548345993498083e-14],
    [0.734375, 0.30873548164959175, 2.1522127491642888e-14],
    [0.73046875, 0.3140688276250785, -1.0263280755261064e-13],
    [0.7265625, 0.3194307707663029, 5.834357420090924e-14],
    [0.72265625, 0.3248216194012912, -5.351646604259541e-14],
    [0.71875, 0.33024168687052224, 5.4612144489920215e-14],
    [0.71484375, 0.3356912916381134, 2.8136969901227338e-14],
    [0.7109375, 0.3411707574027787, -1.156568624616423e-14],
    [0.70703125, 0.3466804132137895, -5.277820018864269e-14],
    [0.703125, 0.35222059358943625, -8.414918193489195e-14],
    [0.69921875, 0.3577916386389006, -9.314286694228276e-14],
    [0.6953125, 0.36339389418753854, -6.120773136055512e-14],
    [0.69140625, 0.36902771190580097, -6.763694466838294e-14],
    [0.6875, 0.3746934494413381, 7.260466149925637e-14],
    [0.68359375, 0.38039147055610556, -5.713877721652611e-14],
    [0.6796875, 0.3861221452650625, -2.9052332860840534e-14],
    [0.67578125, 0.3918858499816906, 9.290239498917686e-14],
    [0.671875, 0.3976829676660145, 9.491339403096215e-14],
    [0.66796875, 0.403513887976942, -3.935475170804319e-14],
    [0.6640625, 0.40937900742937927, -7.856027301951135e-14],
    [0.66015625, 0.41527872955657585, -8.685084519048513e-14],
    [0.65625, 0.4212134650763346, -3.1063837541003616e-14],
    [0.65625, 0.4212134650763346, -3.1063837541003616e-14],
    [0.65234375, 0.4271836320629063, -9.895853155747038e-14],
    [0.6484375, 0.4331896561229769, 4.23575007881984e-14],
    [0.64453125, 0.4392319705789305, 5.1379053454446376e-14],
    [0.640625, 0.44531101665529604, 6.800902736039238e-14],
    [0.63671875, 0.45142724367269693, 1.032095196170246e-13],
    [0.63671875, 0.45142724367269693, 1.032095196170246e-13],
    [0.6328125, 0.4575811092472577, -7.929985030417945e-14],
    [0.62890625, 0.463773079495013, 8.647188083899856e-14],
    [0.625, 0.4700036292456389, 9.667719603235566e-14],
    [0.62109375, 0.4762732422593672, -3.623014231206613e-14],
    [0.62109375, 0.4762732422593672, -3.623014231206613e-14],
    [0.6171875, 0.4825824114525403, 5.534430207540162e-14],
    [0.61328125, 0.4889316391313514, -9.698528013658646e-14],
    [0.609375, 0.4953214372301318, -1.0634899648532451e-13],
    [0.609375, 0.4953214372301318, -1.0634899648532451e-13],
    [0.60546875, 0.5017523275603253, -9.429331319885203e-15],
    [0.6015625, 0.5082248420658289, 1.0446439784833471e-13],
    [0.59765625, 0.5147395230872007, -7.371094138879885e-14],
    [0.59765625, 0.5147395230872007, -7.371094138879885e-14],
    [0.59375, 0.521296923633372, -8.590204918402764e-14],
    [0.58984375, 0.5278976076647268, -8.867353426378923e-14],
    [0.58984375, 0.5278976076647268, -8.867353426378923e-14],
    [0.5859375, 0.5345421503832313, 7.545158798754567e-14],
    [0.58203125, 0.5412311385341582, -5.4828310811468674e-14],
    [0.58203125, 0.5412311385341582, -5.4828310811468674e-14],
    [0.578125, 0.5479651707155426, -9.521443188786736e-14],
    [0.57421875, 0.5547448577008254, 7.95898808074715e-16],
    [0.57421875, 0.5547448577008254, 7.95898808074715e-16],
    [0.5703125, 0.561570822771273, -4.697812205000102e-14],
    [0.56640625, 0.5684437020590849, -9.682523838163498e-14],
    [0.56640625, 0.5684437020590849, -9.682523838163498e-14],
    [0.5625, 0.5753641449034603, 1.0152652766306816e-13],
    [0.55859375, 0.582332814219626, 2.917923890401381e-14],
    [0.55859375, 0.582332814219626, 2.917923890401381e-14],
    [0.5546875, 0.5893503868783228, -2.1007135784857706e-14],
    [0.5546875, 0.5893503868783228, -2.1007135784857706e-14],
    [0.55078125, 0.5964175541014356, -4.140144639843906e-14],
    [0.546875, 0.603535021870357, -9.883674306179806e-14],
    [0.546875, 0.603535021870357, -9.883674306179806e-14],
    [0.54296875, 0.6107035113489019, -3.1165899173794433e-14],
    [0.54296875, 0.6107035113489019, -3.1165899173794433e-14],
    [0.5390625, 0.6179237593223661, -8.311429400161732e-15],
    [0.53515625, 0.6251965186513644, 7.317429021725252e-14],
    [0.53515625, 0.6251965186513644, 7.317429021725252e-14],
    [0.53125, 0.6325225587434034, 1.0711543657844876e-13],
    [0.53125, 0.6325225587434034, 1.0711543657844876e-13],
    [0.52734375, 0.6399026660410527, 8.030091961825816e-14],
    [0.52734375, 0.6399026660410527, 8.030091961825816e-14],
    [0.5234375, 0.6473376445287613, -1.1019610326139043e-13],
    [0.51953125, 0.6548283162578628, -5.404231283494931e-14],
    [0.51953125, 0.6548283162578628, -5.404231283494931e-14],
    [0.515625, 0.6623755218931819, 9.681087609174425e-15],
    [0.515625, 0.6623755218931819, 9.681087609174425e-15],
    [0.51171875, 0.6699801212785133, -1.0232084821304799e-13],
    [0.51171875, 0.6699801212785133, -1.0232084821304799e-13],
    [0.5078125, 0.6776429940239268, 5.32517734371131e-14],
    [0.5078125, 0.6776429940239268, 5.32517734371131e-14],
    [0.50390625, 0.6853650401178584, 3.19898201408802e-14],
    [0.50390625, 0.6853650401178584, 3.19898201408802e-14],
    [0.5, 0.6931471805598903, 5.497923018708371e-14],
];

/// The natural logarithm of `x`, within one unit in the last place of
/// `libm::log(x)` and the same bits on every platform.
///
/// Finite positive `x` (subnormals included) are computed here; zero,
/// negative numbers, infinities and NaN give what `libm::log` gives
/// (see the module documentation).
#[inline]
pub(crate) fn ln(x: f64) -> f64 {
    let bits = x.to_bits();
    // One comparison: positive, normal and finite.
    if bits.wrapping_sub(MIN_NORMAL) >= INFINITY - MIN_NORMAL {
        return ln_special(x);
    }
    ln_normal(bits, 0)
}

/// `ln(1 - u)` for the uniform draw `u = draws::unit(word)`: the same bits
/// as `ln(1.0 - draws::unit(word))`, the logarithm of every exponential
/// sample, with the argument's bits made by integer operations rather
/// than through a conversion to floating point and back (a shorter
/// chain of dependent instructions).
#[inline]
pub(crate) fn ln_one_minus_unit(word: u64) -> f64 {
    // 1 - u = n × 2^-53 exactly, n = 2^53 - (word >> 11) in [1, 2^53].
    let n = (1u64 << 53) - (word >> 11);
    // n << shift has its leading 1 at bit 63, so the top 53 bits are the
    // significand with its leading 1, which lands on the exponent field
    // and adds 1 to it: 1 - u = 2^(10 - shift) × z, biased 1033 - shift.
    let shift = n.leading_zeros();
    let bits = ((1032 - u64::from(shift)) << MANTISSA_BITS) + ((n << shift) >> 11);
    ln(f64::from_bits(bits))
}

/// Subnormals, and what `libm::log` answers: zero, negatives, infinities,
/// NaN.
#[cold]
#[inline(never)]
fn ln_special(x: f64) -> f64 {
    if x > 0.0 && x < f64::MIN_POSITIVE {
        ln_normal((x * TWO_TO_54).to_bits(), -54)
    } else {
        libm::log(x)
    }
}

/// The table entry of the positive normal `x` with these bits, and `r`:
/// `z × invc - 1`, exactly, for `z` in `[1, 2)`, `x`'s mantissa.
#[inline(always)]
fn reduce(bits: u64) -> (usize, f64) {
    let i = (bits >> (MANTISSA_BITS - BITS)) as usize & (SIZE - 1);
    let invc = TABLE[i][0];
    // z = z_high + z_low; each part times invc is exact, and so is
    // their sum, r.
    let z = f64::from_bits(bits & MANTISSA | ONE);
    let z_high = f64::from_bits(bits & MANTISSA & HIGH_PART | ONE);
    let z_low = z - z_high;
    (i, (z_high * invc - 1.0) + z_low * invc)
}

/// `ln(2^scale × x)` for the positive normal `x` with these bits.
#[inline(always)]
fn ln_normal(bits: u64, scale: i32) -> f64 {
    let k = f64::from((bits >> MANTISSA_BITS) as i32 - 1023 + scale);
    let (i, r) = reduce(bits);
    let [_, logc_hi, logc_lo] = TABLE[i];
    // w exact; hi + err = w + r exactly (Dekker's fast two-sum: w is 0
    // or at least |r|, as the test `fast_two_sum_is_exact` checks).
    let w = k * LN2_HI + logc_hi;
    let hi = w + r;
    let err = (w - hi) + r;
    // r² × q(r), by Estrin's scheme: few dependent steps.
    let r2 = r * r;
    let r6 = r2 * (r2 * r2);
    let q_low = (Q[0] + Q[1] * r) + r2 * (Q[2] + Q[3] * r);
    let q_high = (Q[4] + Q[5] * r) + r2 * (Q[6] + Q[7] * r);
    let tail = r2 * q_low + r6 * q_high;
    let lo = (k * LN2_LO + logc_lo) + err + tail;
    hi + lo
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngCore, SeedableRng};

    /// Fraction bits of the fixed-point arithmetic that generates the
    /// table.
    const FIX: u32 = 120;

    /// `a × b` in fixed point with `FIX` fraction bits, truncated
    /// (`a × b < 2^(128 + FIX)`).
    fn fix_mul(a: u128, b: u128) -> u128 {
        const LOW: u128 = u64::MAX as u128;
        let (a1, a0, b1, b0) = (a >> 64, a & LOW, b >> 64, b & LOW);
        let (hh, hl, lh, ll) = (a1 * b1, a1 * b0, a0 * b1, a0 * b0);
        let mid = (ll >> 64) + (hl & LOW) + (lh & LOW);
        let high = hh + (hl >> 64) + (lh >> 64) + (mid >> 64);
        let low = (mid << 64) | (ll & LOW);
        (high << (128 - FIX)) | (low >> FIX)
    }

    /// `num / den` in fixed point, truncated, for `num < den < 2^64`: long
    /// division, one bit at a time.
    fn fix_div(num: u128, den: u128) -> u128 {
        assert!(num < den && den < 1 << 64);
        let (mut q, mut rem) = (0u128, num);
        for _ in 0..FIX {
            rem <<= 1;
            q <<= 1;
            if rem >= den {
                rem -= den;
                q |= 1;
            }
        }
        q
    }

    /// `ln((den + num) / (den - num)) = 2 atanh(num / den)` in fixed
    /// point, for `num ≤ den / 3`: the series `2 Σ y^(2j+1) / (2j+1)`,
    /// to within about `2^-113`.
    fn fix_ln_ratio(num: u128, den: u128) -> u128 {
        assert!(3 * num <= den);
        let y = fix_div(num, den);
        let y2 = fix_mul(y, y);
        let (mut power, mut sum, mut j) = (y, 0u128, 1u128);
        while power != 0 {
            sum += power / j;
            power = fix_mul(power, y2);
            j += 2;
        }
        2 * sum
    }

    /// `-ln(m / 2^(BITS+1))` in fixed point, for `2^BITS ≤ m ≤ 2^(BITS+1)`:
    /// `ln((den + num) / (den - num))` with `den + num = 2^(BITS+1)`,
    /// `den - num = m`.
    fn fix_minus_ln_invc(m: u128) -> u128 {
        let full = 1u128 << (BITS + 1);
        fix_ln_ratio(full - m, full + m)
    }

    /// A fixed-point value split as the table stores it: a multiple of
    /// `2^-42`, rounded to nearest, and the rest rounded to a double.
    fn split(v: u128) -> (f64, f64) {
        let unit = FIX - 42;
        let high = (v + (1 << (unit - 1))) >> unit;
        let rest = v as i128 - (high << unit) as i128;
        (
            high as f64 / (1u64 << 42) as f64,
            rest as f64 / (1u128 << FIX) as f64,
        )
    }

    /// `invc` of entry `i` as `m / 2^(BITS+1)`: the reciprocal of the
    /// interval's middle, rounded to `BITS + 1` bits; 1 for the first
    /// entry and 1/2 for the last, so that `x` near 1 has `logc` exactly 0
    /// or exactly `ln 2`.
    fn invc_numerator(i: usize) -> u128 {
        let size = SIZE as u128;
        if i == 0 {
            return 2 * size;
        }
        // 1 / (1 + (i + 1/2) / SIZE) = 2 SIZE / (2 SIZE + 2i + 1), times
        // 2 SIZE, rounded to nearest.
        let den = 2 * size + 2 * i as u128 + 1;
        (2 * (2 * size) * (2 * size) + den) / (2 * den)
    }

    fn generated() -> (Vec<[f64; 3]>, (f64, f64)) {
        let table = (0..SIZE)
            .map(|i| {
                let m = invc_numerator(i);
                let (hi, lo) = split(fix_minus_ln_invc(m));
                [m as f64 / (2 * SIZE) as f64, hi, lo]
            })
            .collect();
        (table, split(fix_ln_ratio(1, 3)))
    }

    /// Units in the last place between two results of the same sign.
    fn ulps(a: f64, b: f64) -> u64 {
        if a == b || (a.is_nan() && b.is_nan()) {
            return 0;
        }
        assert_eq!(a.is_sign_negative(), b.is_sign_negative(), "{a} {b}");
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    /// How far `ln` is from `libm::log` over some inputs.
    #[derive(Default)]
    struct Agreement {
        inputs: u64,
        differ: u64,
        worst: u64,
        worst_at: f64,
    }

    impl Agreement {
        fn add(&mut self, x: f64) {
            let d = ulps(ln(x), libm::log(x));
            self.inputs += 1;
            self.differ += u64::from(d > 0);
            if d > self.worst {
                self.worst = d;
                self.worst_at = x;
            }
        }

        fn print(&self, what: &str) {
            println!(
                "{what}: {} inputs, {} ({:.3}%) differ from libm::log, by at most {} ulp (at {:e})",
                self.inputs,
                self.differ,
                100.0 * self.differ as f64 / self.inputs as f64,
                self.worst,
                self.worst_at
            );
        }
    }

    #[test]
    fn reduction_is_exact_and_small() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let width = 1u64 << (MANTISSA_BITS - BITS);
        for i in 0..SIZE as u64 {
            let start = (1 << MANTISSA_BITS) + i * width;
            let mut mantissas = vec![start, start + width - 1];
            mantissas.extend((0..64).map(|_| start + rng.next_u64() % width));
            for big_z in mantissas {
                // x = z in [1, 2), and x = z / 2^10: the same reduction.
                for exponent in [1023u64, 1013] {
                    let bits = (exponent << MANTISSA_BITS) | (big_z & MANTISSA);
                    let (entry, r) = reduce(bits);
                    assert_eq!(entry as u64, i);
                    // z × invc - 1 = (Z × m - 2^60) / 2^60, with z = Z / 2^52
                    // and invc = m / 2^8.
                    let m = (TABLE[i as usize][0] * (2 * SIZE) as f64) as i128;
                    let exact = big_z as i128 * m - (1i128 << 60);
                    assert_eq!(
                        (r * (1u64 << 60) as f64) as i128,
                        exact,
                        "entry {i}, z {big_z}"
                    );
                    assert!(r.abs() < 1.0 / SIZE as f64, "entry {i}: r = {r}");
                }
            }
        }
    }

    #[test]
    fn fast_two_sum_is_exact() {
        // w = k ln2_hi + logc_hi is 0 or at least |r| for every r of its
        // entry: checked for |k| ≤ 1, where |w| is smallest (for other k,
        // |w| > ln 2 - ln 2 / 2 > 2^-BITS).
        let width = 1u64 << (MANTISSA_BITS - BITS);
        for (i, &[_, logc_hi, _]) in TABLE.iter().enumerate() {
            let start = (1 << MANTISSA_BITS) + i as u64 * width;
            let r_max = [start, start + width - 1]
                .map(|z| reduce(ONE | (z & MANTISSA)).1.abs())
                .into_iter()
                .fold(0.0, f64::max);
            for k in [-1.0, 0.0, 1.0] {
                let w = k * LN2_HI + logc_hi;
                assert!(
                    w == 0.0 || w.abs() >= r_max,
                    "entry {i}, k {k}: w {w}, r up to {r_max}"
                );
            }
        }
    }

    #[test]
    fn one_minus_unit_is_ln_of_one_minus_the_draw() {
        let mut words = vec![0, 2047, 2048, u64::MAX, u64::MAX - 2047, 1 << 63];
        // Each power of two n = 1 - u in units of 2^-53, and its neighbours.
        for j in 0..=53 {
            let m = (1u64 << 53) - (1 << j);
            for m in [m.saturating_sub(1), m, (m + 1).min((1 << 53) - 1)] {
                words.extend([m << 11, (m << 11) | 2047]);
            }
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6);
        words.extend((0..1 << 18).map(|_| rng.next_u64()));
        for w in words {
            let x = 1.0 - crate::draws::unit(w);
            assert_eq!(
                ln_one_minus_unit(w).to_bits(),
                ln(x).to_bits(),
                "word {w:#x}"
            );
        }
    }

    #[test]
    fn special_values_are_libms() {
        assert_eq!(ln(1.0).to_bits(), 0.0f64.to_bits(), "ln(1) is +0");
        for x in [
            0.0,
            -0.0,
            -1.0,
            -f64::MIN_POSITIVE,
            -5e-324,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NAN,
            -f64::NAN,
            f64::from_bits(0x7ff0_0000_0000_0001),
            f64::from_bits(0xfff8_0000_0000_0001),
        ] {
            assert_eq!(ln(x).to_bits(), libm::log(x).to_bits(), "ln({x:e})");
        }
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert!(ln(-1.0).is_nan() && ln(f64::NAN).is_nan());
        assert_eq!(ln(f64::INFINITY), f64::INFINITY);
        // Exact powers of two are k × ln 2 (libm's is correctly rounded).
        for k in -1074..1024 {
            let x = 2f64.powi(k);
            assert!(ulps(ln(x), libm::log(x)) <= 1, "2^{k}");
        }
    }

    #[test]
    fn agrees_with_libm_near_one_and_the_extremes() {
        let mut near = Agreement::default();
        let ulp = f64::EPSILON;
        for m in 1..1 << 16 {
            near.add(1.0 - m as f64 * ulp / 2.0);
            near.add(1.0 + m as f64 * ulp);
        }
        for bits in (1..1 << 12).chain(MIN_NORMAL - (1 << 12)..MIN_NORMAL + (1 << 12)) {
            near.add(f64::from_bits(bits));
        }
        for bits in INFINITY - (1 << 12)..INFINITY {
            near.add(f64::from_bits(bits));
        }
        near.print("near 1, subnormals, the largest");
        assert!(near.worst <= 1);
    }

    #[test]
    fn agrees_with_libm_on_the_simulator_draws() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let mut draws = Agreement::default();
        for _ in 0..1 << 20 {
            draws.add(1.0 - crate::draws::unit(rng.next_u64()));
        }
        draws.print("1 - u for simulator draws u");
        assert!(draws.worst <= 1);
    }

    #[test]
    fn agrees_with_libm_on_every_binade() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut patterns = Agreement::default();
        while patterns.inputs < 1 << 20 {
            let x = f64::from_bits(rng.next_u64() >> 1);
            if x.is_finite() && x > 0.0 {
                patterns.add(x);
            }
        }
        patterns.print("random positive bit patterns");
        assert!(patterns.worst <= 1);
    }

    #[test]
    fn exponential_samples_in_whole_nanoseconds_are_libms() {
        // -mean × ln(1 - u) rounded to whole nanoseconds, as the
        // exponential latency and the Poisson gaps are: a last-bit
        // difference moves a sample only if it straddles a half
        // nanosecond.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut moved = 0;
        let draws = 1 << 18;
        for _ in 0..draws {
            let x = 1.0 - crate::draws::unit(rng.next_u64());
            let (ours, theirs) = (ln(x), libm::log(x));
            for mean in [1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10] {
                let sample = |l: f64| crate::latency::round_ns(-mean * l);
                moved += usize::from(sample(ours) != sample(theirs));
            }
        }
        println!(
            "{moved} of {} samples (means 1 µs to 10 s) moved by a nanosecond",
            8 * draws
        );
        assert!(moved <= 1);
    }

    /// Fraction bits of the exact reference.
    const REF: u32 = 116;

    /// `ln x` in fixed point with `REF` fraction bits, to within about
    /// `2^-105` (`k` times `ln 2`'s error), for finite positive `x`.
    fn exact_ln(x: f64) -> i128 {
        let bits = x.to_bits();
        let (mut mantissa, mut k) = (bits & MANTISSA, (bits >> MANTISSA_BITS) as i128 - 1023);
        if k == -1023 {
            k += 1;
            while mantissa < 1 << MANTISSA_BITS {
                mantissa <<= 1;
                k -= 1;
            }
        } else {
            mantissa |= 1 << MANTISSA_BITS;
        }
        // ln(Z / 2^52) = ln((den + num) / (den - num)) with den + num = 2Z,
        // den - num = 2^53.
        let (num, den) = (mantissa - (1 << 52), mantissa + (1 << 52));
        let part = (fix_ln_ratio(num.into(), den.into()) >> (FIX - REF)) as i128;
        let ln2 = (fix_ln_ratio(1, 3) >> (FIX - REF)) as i128;
        k * ln2 + part
    }

    /// `y - exact` in units in the last place of `y`.
    fn error_ulps(y: f64, exact: i128) -> f64 {
        if y == 0.0 {
            return exact as f64;
        }
        let exponent = ((y.to_bits() >> MANTISSA_BITS) & 0x7ff) as i32 - 1075;
        assert!(
            exponent + REF as i32 >= 0,
            "{y:e} is too small for the reference"
        );
        let mantissa = (y.to_bits() & MANTISSA | 1 << MANTISSA_BITS) as i128;
        let y_fixed = mantissa << (exponent + REF as i32);
        let y_fixed = if y < 0.0 { -y_fixed } else { y_fixed };
        (y_fixed - exact) as f64 / (1i128 << (exponent + REF as i32)) as f64
    }

    #[test]
    fn exact_reference_is_exact() {
        // floor(ln 10 × 2^116) and floor(ln 3 × 2^116).
        for (x, expected) in [
            (10.0, 191_291_285_517_793_717_481_772_090_503_771_330i128),
            (3.0, 91_269_138_163_186_930_567_259_322_426_872_759),
        ] {
            let diff = exact_ln(x) - expected;
            assert!(diff.abs() < 1 << 11, "ln({x}) off by {diff} × 2^-116");
        }
    }

    #[test]
    fn error_against_the_exact_logarithm() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let mut inputs: Vec<f64> = (0..1 << 16)
            .map(|_| 1.0 - crate::draws::unit(rng.next_u64()))
            .collect();
        while inputs.len() < 1 << 17 {
            let x = f64::from_bits(rng.next_u64() >> 1);
            if x.is_finite() && x > 0.0 {
                inputs.push(x);
            }
        }
        inputs.extend((1..1 << 10).map(|m| 1.0 - m as f64 * f64::EPSILON / 2.0));
        inputs.extend((1..1 << 10).map(|m| 1.0 + m as f64 * f64::EPSILON));
        // (worst error in ulp, where, results more than half an ulp off)
        let (mut ours, mut theirs) = ((0.0f64, 0.0, 0), (0.0f64, 0.0, 0));
        for &x in &inputs {
            let exact = exact_ln(x);
            for (y, worst) in [(ln(x), &mut ours), (libm::log(x), &mut theirs)] {
                let e = error_ulps(y, exact).abs();
                worst.2 += usize::from(e > 0.5);
                if e > worst.0 {
                    *worst = (e, x, worst.2);
                }
            }
        }
        for (name, (e, x, wrong)) in [("ln", ours), ("libm::log", theirs)] {
            println!(
                "{name}: {} inputs, worst error {e:.6} ulp (at {x:e}), {wrong} more than half an ulp off",
                inputs.len()
            );
        }
        assert!(ours.0 < 0.51, "ln is off by {} ulp at {:e}", ours.0, ours.1);
    }

    #[test]
    fn table_is_generated() {
        let (table, (ln2_hi, ln2_lo)) = generated();
        let same = table
            .iter()
            .zip(TABLE.iter())
            .all(|(a, b)| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()))
            && ln2_hi.to_bits() == LN2_HI.to_bits()
            && ln2_lo.to_bits() == LN2_LO.to_bits();
        if !same {
            println!("const LN2_HI: f64 = {ln2_hi:?};\nconst LN2_LO: f64 = {ln2_lo:?};");
            println!("const TABLE: [[f64; 3]; SIZE] = [");
            for [invc, hi, lo] in &table {
                println!("    [{invc:?}, {hi:?}, {lo:?}],");
            }
            println!("];");
        }
        assert!(same, "the table differs from its generator (printed above)");
        // The first and last entries are what the method needs near 1.
        assert_eq!(TABLE[0], [1.0, 0.0, 0.0]);
        assert_eq!(TABLE[SIZE - 1], [0.5, LN2_HI, LN2_LO]);
    }
}
