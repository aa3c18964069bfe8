//! The `synth` built-in kind: realistic synthetic raw data with a documented, seeded
//! data-generating process (docs/dgp.md).
//!
//! Owns: checking a `synth` spec, the files a stage writes, and running one: drawing the
//! cities (`cities`), the patent application records (`records`, with the applicants of
//! `orgs`) written as a messy office export with a synthetic postcode directory (`export`),
//! the city-year yearbook and the province R&D table (`statistics`), and the truth files (true
//! parameters and the city-year counts the pipeline must find: `truth`). The spec's types are
//! in `spec`, the seeded streams in `draw`. Every draw comes from ChaCha8 streams derived from
//! the spec's seed and a fixed tag, so the output is byte-identical whatever the thread count.
//! Deliberately does not own: reading raw data back (`ingest`, `locate`), counting (`index`),
//! or the yearbook's column list (`crate::yearbook`).

mod cities;
mod draw;
mod export;
mod orgs;
mod records;
mod spec;
mod statistics;
mod truth;

use std::path::Path;

use rayon::prelude::*;

use crate::places::{Cities, PlaceIndex};
use repro_kind::diag::Diagnostic;
use repro_kind::KindError;

pub use export::check_char;
pub use spec::{Effects, Mess, SynthSpec};

/// The files a `synth` stage writes, under `out_dir`.
pub const OUTPUT_FILES: &[&str] = &[
    "patents.csv",
    "yearbook.csv",
    "rd_province.csv",
    "postcodes.csv",
    "truth.json",
    "truth_city_year.csv",
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
    let m = &spec.mess;
    if m.bad_dates + m.missing_applicants + m.bad_numbers >= 0.9 {
        return Err(bad(
            "the shares of fatal defects in `mess` (`bad_dates`, `missing_applicants`, `bad_numbers`) add up to 0.9 or more: almost no record would survive".into(),
        ));
    }
    Ok(spec)
}

pub fn outputs(spec: &SynthSpec) -> Vec<String> {
    let dir = spec.out_dir.trim_end_matches('/');
    OUTPUT_FILES.iter().map(|f| format!("{dir}/{f}")).collect()
}

/// Runs a `synth` stage: draws everything and writes the files of [`OUTPUT_FILES`].
pub fn run(root: &Path, stage: &str, spec: &SynthSpec) -> Result<(), Diagnostic> {
    let fail = |m: String| Diagnostic::new(format!("stage `{stage}` failed")).cause(m);
    let cities = Cities::load(&root.join(&spec.cities))?;
    let places = PlaceIndex::new(&cities);
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

    let orgs = orgs::build_orgs(spec.seed, &cities, &world.draws, &places);
    let orgs_of_city = orgs::orgs_by_city(&orgs, cities.rows.len());
    let prefixes = export::postcode_prefixes(&cities);
    let ctx = records::GenCtx {
        seed: spec.seed,
        cities: &cities,
        orgs: &orgs,
        orgs_of_city: &orgs_of_city,
        gravity: &world.gravity,
        mess: &spec.mess,
    };
    // Records per year, in parallel; each year has its own streams, so the result does not
    // depend on the thread count.
    let per_year: Vec<Vec<records::Record>> = plans
        .years
        .par_iter()
        .map(|p| records::gen_year(&ctx, p))
        .collect();
    let anchors = records::anchor_records(spec.seed, &orgs, &per_year, &world.years);
    let counts = truth::count_clean(
        spec,
        &cities,
        per_year.iter().flatten().chain(anchors.iter()),
    );

    let out = |f: &str| format!("{}/{f}", spec.out_dir.trim_end_matches('/'));
    let write = |f: &str, bytes: &[u8]| {
        repro_kind::write_output(root, &out(f), bytes)
            .map_err(|e| fail(format!("cannot write `{}`: {e}", out(f))))
    };
    let text = export::patents_csv(&ctx, &per_year, anchors, &world.years, &prefixes);
    write("patents.csv", text.as_bytes())?;
    drop(text);

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
