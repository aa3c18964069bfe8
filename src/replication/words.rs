//! How the package README words its values: the `MISSING:` marker, code lists, durations and
//! sizes.
//!
//! Owns: those formats. Deliberately does not own: any section of the README (`readme`).

/// The marker of a fact the pipeline does not give.
pub const MISSING: &str = "MISSING:";

/// `a`, `b`: each item in backticks.
pub fn quoted(items: &[&str]) -> String {
    let v: Vec<String> = items.iter().map(|i| format!("`{i}`")).collect();
    v.join(", ")
}

/// Seconds below a minute, minutes above.
pub fn seconds(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.2} s")
    } else {
        format!("{:.1} min", s / 60.0)
    }
}

/// Bytes in binary units with one decimal.
pub fn bytes(b: u64) -> String {
    const UNITS: &[&str] = &["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
