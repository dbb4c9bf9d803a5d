//! Numbers for people: durations in the unit that reads best, percentages
//! that never round a failure (or a success) away, and a mean with its
//! standard error written to the same precision.

/// A duration in milliseconds, in the unit that reads best: ms, s, min
/// or h, with three significant digits (whole milliseconds from 10 ms).
pub fn human_ms(ms: f64) -> String {
    if ms == 0.0 {
        return "0 ms".to_owned();
    }
    let (value, unit) = ms_unit(ms);
    let scaled = ms / value;
    if unit == "ms" && scaled >= 10.0 {
        return format!("{scaled:.0} ms");
    }
    format!("{} {unit}", three_digits(scaled))
}

/// The unit a duration of `ms` milliseconds reads best in: `(ms per
/// unit, unit name)`.
pub fn ms_unit(ms: f64) -> (f64, &'static str) {
    let ms = ms.abs();
    if ms >= 3_600_000.0 {
        (3_600_000.0, "h")
    } else if ms >= 60_000.0 {
        (60_000.0, "min")
    } else if ms >= 1000.0 {
        (1000.0, "s")
    } else {
        (1.0, "ms")
    }
}

/// `x` with three significant digits (at least one decimal below 100,
/// none from 100 on).
fn three_digits(x: f64) -> String {
    let a = x.abs();
    if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// A fraction in [0, 1] as a percentage with one decimal, or as many more
/// as it takes so that a value below 1 never shows as `100%` and a value
/// above 0 never shows as `0%`: 0.9999 is `99.99%`, 0.99999998 is
/// `99.999998%`.
pub fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    if !p.is_finite() {
        return format!("{p}%");
    }
    for digits in 1..=15 {
        let text = format!("{p:.digits$}");
        let shown: f64 = text.parse().unwrap_or(p);
        let hides_failure = shown >= 100.0 && p < 100.0;
        let hides_success = shown <= 0.0 && p > 0.0;
        if !hides_failure && !hides_success {
            return format!("{text}%");
        }
    }
    format!("{p}%")
}

/// Decimals that show `stderr` with two significant digits.
fn decimals_for(stderr: f64) -> usize {
    if stderr <= 0.0 || !stderr.is_finite() {
        return 0;
    }
    let exponent = stderr.log10().floor() as i32;
    (1 - exponent).clamp(0, 9) as usize
}

/// `mean ±stderr`, both in the same unit and to the same number of
/// decimals: the error with two significant digits, the mean rounded to
/// match. A zero error leaves the mean as `plain` writes it and shows
/// `±0`.
pub fn mean_error(mean: f64, stderr: f64, plain: &dyn Fn(f64) -> String) -> String {
    if stderr <= 0.0 || !stderr.is_finite() {
        return format!("{} ±0", plain(mean));
    }
    let d = decimals_for(stderr);
    format!("{mean:.d$} ±{stderr:.d$}")
}

/// [`mean_error`] for a duration in milliseconds: the unit is chosen from
/// the mean, and the error is written in it too.
pub fn mean_error_ms(mean: f64, stderr: f64) -> String {
    if stderr <= 0.0 || !stderr.is_finite() {
        return format!("{} ±0", human_ms(mean));
    }
    let (per, unit) = ms_unit(mean.max(stderr));
    let (m, e) = (mean / per, stderr / per);
    let d = decimals_for(e);
    format!("{m:.d$} ±{e:.d$} {unit}")
}

/// [`mean_error`] for a fraction shown as a percentage; a zero error
/// keeps [`percent`]'s guarantee.
pub fn mean_error_percent(mean: f64, stderr: f64) -> String {
    if stderr <= 0.0 || !stderr.is_finite() {
        return format!("{} ±0", percent(mean));
    }
    let (m, e) = (mean * 100.0, stderr * 100.0);
    let d = decimals_for(e);
    let text = format!("{m:.d$}");
    // The error may allow fewer decimals than it takes to keep a failure
    // visible: then the mean keeps its own digits.
    let text = match text.parse::<f64>() {
        Ok(shown) if (shown >= 100.0 && m < 100.0) || (shown <= 0.0 && m > 0.0) => {
            percent(mean).trim_end_matches('%').to_owned()
        }
        _ => text,
    };
    format!("{text}% ±{e:.d$}%")
}

/// A tick label: whole numbers as integers, thousands and millions with
/// SI prefixes (`5k`, `16k`, `1.5M`), other values with as few decimals as
/// they need (at most three).
pub fn si(x: f64) -> String {
    let a = x.abs();
    let (scaled, prefix) = if a >= 1e9 {
        (x / 1e9, "G")
    } else if a >= 1e6 {
        (x / 1e6, "M")
    } else if a >= 1e3 {
        (x / 1e3, "k")
    } else {
        (x, "")
    };
    format!("{}{prefix}", trim(scaled))
}

/// `x` with at most three decimals and no trailing zeros.
pub fn trim(x: f64) -> String {
    let text = format!("{x:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_never_rounded_away() {
        assert_eq!(percent(1.0), "100.0%");
        assert_eq!(percent(0.9999), "99.99%");
        assert_eq!(percent(9998.0 / 10_000.0), "99.98%");
        assert_eq!(percent(9999.0 / 10_000.0), "99.99%");
        assert_eq!(percent(0.99999998), "99.999998%");
        assert_eq!(percent(1.0 - 1.0 / 50_000_000.0), "99.999998%");
        assert_eq!(percent(0.916), "91.6%");
        assert_eq!(percent(0.0), "0.0%");
        assert_eq!(percent(0.0001), "0.01%");
        // Exhaustively over every failure count of a 10,000-call run.
        for failed in 1..=10_000u32 {
            let p = percent(f64::from(10_000 - failed) / 10_000.0);
            assert_ne!(p, "100.0%", "{failed} failures");
            assert!(!p.starts_with("100"), "{failed} failures: {p}");
        }
    }

    #[test]
    fn means_and_errors_share_their_precision() {
        let count = |x: f64| format!("{x:.0}");
        assert_eq!(mean_error(91.63, 0.52, &count), "91.63 ±0.52");
        assert_eq!(mean_error(1234.5, 63.0, &count), "1234 ±63");
        assert_eq!(mean_error(5.0, 0.0, &count), "5 ±0");
        assert_eq!(mean_error_ms(60_000.0, 66.0), "1.0000 ±0.0011 min");
        assert_eq!(mean_error_ms(5180.0, 0.0), "5.18 s ±0");
        assert_eq!(mean_error_ms(5180.0, 12.0), "5.180 ±0.012 s");
        assert_eq!(mean_error_percent(0.916, 0.0), "91.6% ±0");
        assert_eq!(mean_error_percent(0.9163, 0.0021), "91.63% ±0.21%");
        assert_eq!(mean_error_percent(0.99995, 0.02), "99.995% ±2.0%");
    }

    #[test]
    fn durations_have_an_hours_unit() {
        assert_eq!(human_ms(7721.5 * 60_000.0), "129 h");
        assert_eq!(human_ms(5_400_000.0), "1.50 h");
        assert_eq!(human_ms(90_000.0), "1.50 min");
        assert_eq!(human_ms(5180.0), "5.18 s");
        assert_eq!(human_ms(42.4), "42 ms");
        assert_eq!(human_ms(2.5), "2.50 ms");
        assert_eq!(human_ms(0.0), "0 ms");
    }

    #[test]
    fn tick_labels_are_integers_or_si() {
        assert_eq!(si(5000.0), "5k");
        assert_eq!(si(16000.0), "16k");
        assert_eq!(si(1_500_000.0), "1.5M");
        assert_eq!(si(250.0), "250");
        assert_eq!(si(0.25), "0.25");
        assert_eq!(si(0.0), "0");
    }
}
