//! Estimating every specification of a curve, each once: from the memo when an entry for its
//! key checks out, else by the estimators (and then memoised).
//!
//! Owns: the memo key of a specification (blake3 over a version tag, this crate's code
//! fingerprint, the data file's content hash and the specification's canonical text), the
//! entry's encoding (the exact bits of each number, so a restored curve equals a computed one
//! byte for byte), the frames of each sample (restricted once, shared by its specifications)
//! and fitting the specifications in parallel with results in enumeration order whatever the
//! thread count. Deliberately does not own: the memo's storage or its check (`repro_kind::Memo`,
//! the engine's store), the numerics (`repro-estimators`), or the outputs.

use rayon::prelude::*;
use repro_estimators::data::Frame;
use repro_estimators::fit;
use repro_kind::diag::Diagnostic;
use repro_kind::Memo;

use super::spec::{CurveSpec, Specification};
use crate::fitting;
use crate::sample;

/// Bumped when the entry's encoding or meaning changes.
const MEMO_VERSION: &str = "repro-curve-spec-v1";

/// One specification's result: the treatment's coefficient and its inference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub estimate: f64,
    pub std_error: f64,
    pub statistic: f64,
    pub p_value: f64,
    pub nobs: usize,
    /// Degrees of freedom of the t distribution (`None`: normal).
    pub df_t: Option<usize>,
}

/// Every specification's estimate in enumeration order, and how many came from the memo.
#[derive(Debug)]
pub struct Estimated {
    pub estimates: Vec<Estimate>,
    pub restored: usize,
}

/// The frames of every sample choice: the data's rows that satisfy it (all rows when empty).
pub fn sample_frames(frame: &Frame, s: &CurveSpec) -> Result<Vec<Frame>, Diagnostic> {
    s.samples
        .iter()
        .map(|(label, text)| {
            let text = text.value.trim();
            if text.is_empty() {
                return Ok(frame.clone());
            }
            // Checked when the pipeline loaded.
            let r = sample::parse(text).map_err(Diagnostic::new)?;
            let rows = r.rows(frame).map_err(|d| Diagnostic {
                message: format!("cannot apply sample `{label}` (`{text}`): {}", d.message),
                ..d
            })?;
            Ok(sample::subset(frame, &rows))
        })
        .collect()
}

/// The memo key of `spec` on data with content hash `data_hash`.
pub fn memo_key(s: &CurveSpec, spec: &Specification, data_hash: &str) -> String {
    let mut h = blake3::Hasher::new();
    for part in [
        MEMO_VERSION,
        crate::CODE_FINGERPRINT,
        data_hash,
        &spec.canonical(s),
    ] {
        h.update(part.as_bytes());
        h.update(b"\0");
    }
    h.finalize().to_hex().to_string()
}

/// Estimates every specification on the frames of [`sample_frames`], in parallel; results in
/// `specs` order. The first specification that cannot be estimated fails the curve.
pub fn estimate_all(
    s: &CurveSpec,
    specs: &[Specification],
    frames: &[Frame],
    data_hash: &str,
    memo: &dyn Memo,
) -> Result<Estimated, Diagnostic> {
    let done: Vec<Result<(Estimate, bool), Diagnostic>> = specs
        .par_iter()
        .map(|spec| {
            let key = memo_key(s, spec, data_hash);
            if let Some(e) = memo.get(&key).and_then(|b| decode(&b)) {
                return Ok((e, true));
            }
            let e = fit_one(s, spec, &frames[spec.pick[3]])?;
            // A memo that cannot be written costs the next run time, not correctness.
            if let Err(err) = memo.put(&key, encode(&e).as_bytes()) {
                tracing::warn!(error = %err, "cannot write a curve memo entry");
            }
            Ok((e, false))
        })
        .collect();
    let mut estimates = Vec::with_capacity(done.len());
    let mut restored = 0;
    for r in done {
        let (e, hit) = r?;
        restored += usize::from(hit);
        estimates.push(e);
    }
    Ok(Estimated {
        estimates,
        restored,
    })
}

/// Fits one specification on its sample's frame.
pub fn fit_one(s: &CurveSpec, spec: &Specification, frame: &Frame) -> Result<Estimate, Diagnostic> {
    let req = spec.request(s);
    let labels = spec.labels(s).join(" / ");
    let fail = |d: Diagnostic| Diagnostic {
        message: format!(
            "cannot estimate specification `{labels}` (`{}`)",
            req.formula
        ),
        causes: std::iter::once(d.message).chain(d.causes).collect(),
        hint: d.hint.or(Some(
            "leave the combination out with an `exclude:` entry of the spec".into(),
        )),
        ..d
    };
    let model = fitting::model_spec(&req).map_err(fail)?;
    let res = fit::fit(frame, &model).map_err(|e| fail(fitting::fit_diag(e, &req)))?;
    let c = res.coefficient(spec.treatment(s)).ok_or_else(|| {
        fail(
            Diagnostic::new(format!(
                "`{}` has no estimate (dropped as collinear?)",
                spec.treatment(s)
            ))
            .cause(res.messages.join("; ")),
        )
    })?;
    Ok(Estimate {
        estimate: c.estimate,
        std_error: c.std_error,
        statistic: c.statistic,
        p_value: c.p_value,
        nobs: res.nobs,
        df_t: res.df_t,
    })
}

/// One line: the four numbers' bits in hex, then N and the degrees of freedom (`-`: none).
fn encode(e: &Estimate) -> String {
    format!(
        "{:016x} {:016x} {:016x} {:016x} {} {}",
        e.estimate.to_bits(),
        e.std_error.to_bits(),
        e.statistic.to_bits(),
        e.p_value.to_bits(),
        e.nobs,
        e.df_t.map_or("-".to_string(), |d| d.to_string())
    )
}

fn decode(bytes: &[u8]) -> Option<Estimate> {
    let text = std::str::from_utf8(bytes).ok()?;
    let parts: Vec<&str> = text.split(' ').collect();
    let [a, b, c, d, n, df] = parts.as_slice() else {
        return None;
    };
    let f = |t: &str| u64::from_str_radix(t, 16).ok().map(f64::from_bits);
    Some(Estimate {
        estimate: f(a)?,
        std_error: f(b)?,
        statistic: f(c)?,
        p_value: f(d)?,
        nobs: n.parse().ok()?,
        df_t: match *df {
            "-" => None,
            t => Some(t.parse().ok()?),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// An entry decodes to exactly the numbers encoded, bit for bit.
        #[test]
        fn entries_round_trip(a: f64, b: f64, c: f64, d: f64, n: usize, df: Option<usize>) {
            let e = Estimate { estimate: a, std_error: b, statistic: c, p_value: d, nobs: n, df_t: df };
            let back = decode(encode(&e).as_bytes()).unwrap();
            proptest::prop_assert_eq!(back.estimate.to_bits(), a.to_bits());
            proptest::prop_assert_eq!(back.p_value.to_bits(), d.to_bits());
            proptest::prop_assert_eq!((back.nobs, back.df_t), (n, df));
        }
    }

    #[test]
    fn damaged_entries_do_not_decode() {
        assert!(decode(b"12 34").is_none());
        assert!(decode(b"zz 0 0 0 1 -").is_none());
    }
}
