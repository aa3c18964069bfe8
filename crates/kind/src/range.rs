//! Ranges of numeric spec fields, checked while a spec file is read.
//!
//! Owns: the [`IntRange`] and [`FloatRange`] types and the serde `deserialize_with` helpers that
//! refuse a value outside its range. Because the check runs inside deserialisation, the YAML
//! reader attaches the value's file:line:col to the error, like any other spec error.
//! Deliberately does not own: the ranges themselves (each kind declares its own, beside the
//! field, with the reason) or checks that relate two fields (`last_year` after `first_year`).

use serde::de::{Deserialize, Deserializer, Error};

/// The integers a spec field accepts, inclusive at both ends.
#[derive(Clone, Copy, Debug)]
pub struct IntRange {
    /// What the value is, as users read it: the field in backticks (`` `reps` ``), or a phrase
    /// (``a share in `mess` ``).
    pub field: &'static str,
    pub min: i64,
    pub max: i64,
}

/// The finite numbers a spec field accepts; each end is inclusive unless marked open.
#[derive(Clone, Copy, Debug)]
pub struct FloatRange {
    pub field: &'static str,
    pub min: f64,
    pub max: f64,
    pub min_open: bool,
    pub max_open: bool,
}

impl IntRange {
    pub fn contains(&self, v: i128) -> bool {
        i128::from(self.min) <= v && v <= i128::from(self.max)
    }

    /// `1 to 1,000,000`
    pub fn describe(&self) -> String {
        format!("{} to {}", group(self.min), group(self.max))
    }

    /// Checks `v`, naming the field and the range when it is outside.
    pub fn check(&self, v: i128) -> Result<(), String> {
        match self.contains(v) {
            true => Ok(()),
            false => Err(outside(self.field, v, &self.describe())),
        }
    }
}

impl FloatRange {
    pub fn contains(&self, v: f64) -> bool {
        let above = if self.min_open {
            v > self.min
        } else {
            v >= self.min
        };
        let below = if self.max_open {
            v < self.max
        } else {
            v <= self.max
        };
        v.is_finite() && above && below
    }

    /// `0 (excluded) to 1 (excluded)`
    pub fn describe(&self) -> String {
        let end = |v: f64, open: bool| {
            if open {
                format!("{v} (excluded)")
            } else {
                v.to_string()
            }
        };
        format!(
            "{} to {}",
            end(self.min, self.min_open),
            end(self.max, self.max_open)
        )
    }

    pub fn check(&self, v: f64) -> Result<(), String> {
        match self.contains(v) {
            true => Ok(()),
            false => Err(outside(self.field, short(v), &self.describe())),
        }
    }
}

/// `` `reps` is 0, outside its range: it takes 1 to 1,000,000 ``
fn outside(field: &str, v: impl std::fmt::Display, range: &str) -> String {
    format!("{field} is {v}, outside its range: it takes {range}")
}

/// A float as a person reads it: `1e308`, not its 309 digits.
fn short(v: f64) -> String {
    if v != 0.0 && !(1e-6..1e15).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        v.to_string()
    }
}

/// `1000000` as `1,000,000` (ranges are read by people).
fn group(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0 {
        out.insert(0, '-');
    }
    out
}

/// Reads an integer and checks it against `range` (use from a `deserialize_with` function).
pub fn int<'de, D, T>(d: D, range: &IntRange) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Copy + TryInto<i128>,
{
    let v = T::deserialize(d)?;
    check_int(v, range).map_err(D::Error::custom)?;
    Ok(v)
}

/// Reads an optional integer and checks it when present.
pub fn opt_int<'de, D, T>(d: D, range: &IntRange) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Copy + TryInto<i128>,
{
    let v = Option::<T>::deserialize(d)?;
    if let Some(x) = v {
        check_int(x, range).map_err(D::Error::custom)?;
    }
    Ok(v)
}

fn check_int<T: TryInto<i128>>(v: T, range: &IntRange) -> Result<(), String> {
    let wide: i128 = v
        .try_into()
        .map_err(|_| format!("{} is too large", range.field))?;
    range.check(wide)
}

/// Reads a number and checks it against `range`.
pub fn float<'de, D: Deserializer<'de>>(d: D, range: &FloatRange) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    range.check(v).map_err(D::Error::custom)?;
    Ok(v)
}

/// Reads a list of numbers and checks each against `range`.
pub fn floats<'de, D: Deserializer<'de>>(d: D, range: &FloatRange) -> Result<Vec<f64>, D::Error> {
    let v = Vec::<f64>::deserialize(d)?;
    for x in &v {
        range.check(*x).map_err(D::Error::custom)?;
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPS: IntRange = IntRange {
        field: "`reps`",
        min: 1,
        max: 1_000_000,
    };

    fn reps<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        int(d, &REPS)
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Spec {
        name: String,
        #[serde(deserialize_with = "reps")]
        reps: u64,
    }

    #[test]
    fn an_out_of_range_value_is_refused_at_its_place() {
        let e = serde_saphyr::from_str::<Spec>("name: x\nreps: 100000000000000\n").unwrap_err();
        let loc = e.location().expect("a location");
        assert_eq!((loc.line(), loc.column()), (2, 7), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("`reps` is 100000000000000, outside its range: it takes 1 to 1,000,000"),
            "{text}"
        );
        assert!(serde_saphyr::from_str::<Spec>("name: x\nreps: 0\n").is_err());
        assert_eq!(
            serde_saphyr::from_str::<Spec>("name: x\nreps: 1000000\n")
                .unwrap()
                .reps,
            1_000_000
        );
    }

    #[test]
    fn float_ranges_respect_open_ends_and_refuse_non_finite() {
        let r = FloatRange {
            field: "`taus`",
            min: 0.0,
            max: 1.0,
            min_open: true,
            max_open: true,
        };
        assert!(!r.contains(0.0) && !r.contains(1.0) && !r.contains(f64::NAN));
        assert!(r.contains(0.5));
        assert_eq!(r.describe(), "0 (excluded) to 1 (excluded)");
        assert_eq!(group(-1_234_567), "-1,234,567");
    }
}
