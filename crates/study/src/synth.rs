//! The `synth` built-in kind: realistic synthetic raw data with a documented, seeded
//! data-generating process (docs/dgp.md).
//!
//! Owns: checking a `synth` spec, the files a stage writes, and running one: drawing the
//! cities (`cities`), the patent application records (`records`, with the applicants of
//! `orgs`) written as a messy office export with a synthetic postcode directory (`export`),
//! first applicants' addresses in the forms real exports have (`address`, from the gazetteer's
//! tables as `places` reads them), the city-year yearbook and the province R&D table
//! (`statistics`), and the truth files (true parameters, the city-year counts at the true
//! cities and every applicant's true city: `truth`). No module asks `locate`'s matcher what a
//! text means: the true city is decided first and the text written for it. The spec's types are
//! in `spec`, the seeded streams in `draw`. Every draw comes from ChaCha8 streams derived from
//! the spec's seed and a fixed tag, so the output is byte-identical whatever the thread count.
//! Deliberately does not own: reading raw data back (`ingest`, `locate`), counting (`index`),
//! or the yearbook's column list (`crate::yearbook`).

mod address;
mod cities;
mod draw;
mod export;
mod orgs;
mod places;
mod records;
mod spec;
mod statistics;
mod truth;

use std::path::Path;

use rayon::prelude::*;

use crate::places::Cities;
use repro_kind::diag::Diagnostic;
use repro_kind::KindError;

pub use export::check_char;
pub use spec::{AddressForms, Effects, FirmNames, Mess, SynthSpec};

/// The files a `synth` stage writes, under `out_dir`.
pub const OUTPUT_FILES: &[&str] = &[
    "patents.csv",
    "yearbook.csv",
    "rd_province.csv",
    "postcodes.csv",
    "truth.json",
    "truth_city_year.csv",
    "truth_applicants.parquet",
];

pub fn parse(spec_path: &str, root: &Path) -> Result<SynthSpec, KindError> {
    let spec: SynthSpec = repro_kind::load_spec(root, spec_path)?;
    let bad = |m: String| KindError {
        location: None,
        ..repro_kind::spec_err(spec_path, m)
    };
    repro_kind::normalize_path(&spec.out_dir).map_err(|why| bad(format!("`out_dir`: {why}")))?;
    repro_kind::normalize_path(&spec.cities).map_err(|why| bad(format!("`cities`: {why}")))?;
    if spec.last_year <= spec.first_year {
        return Err(bad("`last_year` must be after `first_year`".into()));
    }
    for (field, path) in [
        ("counties", &spec.counties),
        ("place_history", &spec.place_history),
        ("institutions", &spec.institutions),
    ] {
        repro_kind::normalize_path(path).map_err(|why| bad(format!("`{field}`: {why}")))?;
    }
    check_shares("address_forms", &spec.address_forms.shares()).map_err(bad)?;
    check_shares("firm_names", &spec.firm_names.shares()).map_err(bad)?;
    let m = &spec.mess;
    if m.bad_dates + m.missing_applicants + m.bad_numbers >= 0.9 {
        return Err(bad(
            "the shares of fatal defects in `mess` (`bad_dates`, `missing_applicants`, `bad_numbers`) add up to 0.9 or more: almost no record would survive".into(),
        ));
    }
    Ok(spec)
}

/// Writes an output through `fill` into a temp file beside `rel`, renamed into place when
/// complete.
fn write_export<T>(
    root: &Path,
    rel: &str,
    fill: impl FnOnce(&mut (dyn std::io::Write + Send)) -> std::io::Result<T>,
) -> std::io::Result<T> {
    let (tmp, dest, mut file) = repro_kind::create_temp_beside(root, rel)?;
    let value = fill(&mut file)?;
    drop(file);
    std::fs::rename(&tmp, &dest)?;
    Ok(value)
}

/// Shares are each in [0, 1] and sum to 1.
fn check_shares(field: &str, shares: &[f64]) -> Result<(), String> {
    if shares.iter().any(|s| !(0.0..=1.0).contains(s)) {
        return Err(format!("`{field}`: every share must be between 0 and 1"));
    }
    let sum: f64 = shares.iter().sum();
    if (sum - 1.0).abs() > 1e-9 {
        return Err(format!("`{field}`: the shares sum to {sum}, not 1"));
    }
    Ok(())
}

/// The tables a `synth` stage reads besides its spec.
pub fn deps(spec: &SynthSpec) -> Vec<String> {
    vec![
        spec.cities.clone(),
        spec.counties.clone(),
        spec.place_history.clone(),
        spec.institutions.clone(),
    ]
}

pub fn outputs(spec: &SynthSpec) -> Vec<String> {
    let dir = spec.out_dir.trim_end_matches('/');
    OUTPUT_FILES.iter().map(|f| format!("{dir}/{f}")).collect()
}

/// Runs a `synth` stage: draws everything and writes the files of [`OUTPUT_FILES`].
pub fn run(root: &Path, stage: &str, spec: &SynthSpec) -> Result<(), Diagnostic> {
    let fail = |m: String| Diagnostic::new(format!("stage `{stage}` failed")).cause(m);
    let cities = Cities::load(&root.join(&spec.cities))?;
    let tables = places::Tables {
        counties: &spec.counties,
        place_history: &spec.place_history,
        institutions: &spec.institutions,
    };
    let places = places::Places::load(root, &cities, &tables)?;
    let world = cities::draw_world(spec, &cities);
    let plans = records::plan_years(spec, &world).map_err(|too_few| {
        fail(format!(
            "`records` = {} is too few for the calibrated collaboration level",
            spec.records
        ))
        .hint(format!(
            "use at least {} records, or lower `collab_first`/`collab_last`",
            too_few.at_least
        ))
    })?;

    let orgs = orgs::build_orgs(spec.seed, &cities, &world.draws, &places, &spec.firm_names);
    let address_cum = draw::cumulative(spec.address_forms.shares().into_iter());
    let orgs_of_city = orgs::orgs_by_city(&orgs, cities.rows.len());
    let prefixes = export::postcode_prefixes(&cities);
    let ctx = records::GenCtx {
        seed: spec.seed,
        cities: &cities,
        orgs: &orgs,
        orgs_of_city: &orgs_of_city,
        gravity: &world.gravity,
        mess: &spec.mess,
        address_cum: &address_cum,
        places: &places,
    };
    // Records per year, in parallel; each year has its own streams, so the result does not
    // depend on the thread count.
    let per_year: Vec<Vec<records::Record>> = plans
        .years
        .par_iter()
        .map(|p| records::gen_year(&ctx, p))
        .collect();
    let anchors = records::anchor_records(spec.seed, &orgs, &per_year, &world.years);

    let out = |f: &str| format!("{}/{f}", spec.out_dir.trim_end_matches('/'));
    let write = |f: &str, bytes: &[u8]| {
        repro_kind::write_output(root, &out(f), bytes)
            .map_err(|e| fail(format!("cannot write `{}`: {e}", out(f))))
    };
    // The truth counts while the export is written (both only read the records); the
    // applicants' truth is written while the export's last years are.
    let applicants_rel = out("truth_applicants.parquet");
    let write_applicants = |parts: Vec<truth::ApplicantTruth>| {
        let mut frame = truth::applicants_frame(&parts)?;
        drop(parts);
        repro_tabular::table::write_frame_parquet(&mut frame, root, &applicants_rel)
    };
    let (counts, written) = rayon::join(
        || {
            truth::count_clean(
                spec,
                &cities,
                per_year.iter().flatten().chain(anchors.iter()),
            )
        },
        || {
            write_export(root, &out("patents.csv"), |file| {
                export::patents_csv(
                    &ctx,
                    &per_year,
                    &anchors,
                    &world.years,
                    &prefixes,
                    file,
                    write_applicants,
                )
            })
        },
    );
    written.map_err(|e| fail(format!("cannot write `{}`: {e}", out("patents.csv"))))??;
    drop((per_year, anchors));

    let x_true = truth::collab_true(&counts, &world.pop);
    let yb = statistics::yearbook(spec, &cities, &world, &x_true);
    write("yearbook.csv", yb.csv.as_bytes())?;
    let rd = statistics::rd_province(spec.seed, &cities, &world.years);
    write("rd_province.csv", rd.as_bytes())?;
    write(
        "postcodes.csv",
        export::postcodes_csv(&prefixes, &cities).as_bytes(),
    )?;
    write(
        "truth_city_year.csv",
        truth::city_year_csv(&cities, &world, &counts).as_bytes(),
    )?;
    let realised = truth::realised_means(&world, &counts);
    let truth = truth::truth_json(spec, &cities, &world, &realised, &yb);
    let mut text = serde_json::to_string_pretty(&truth).map_err(|e| fail(e.to_string()))?;
    text.push('\n');
    write("truth.json", text.as_bytes())?;
    tracing::info!(
        records = spec.records,
        cross_city = plans.cross_total,
        "synthetic data written"
    );
    Ok(())
}
