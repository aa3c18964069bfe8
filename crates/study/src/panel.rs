//! The `panel` built-in kind: the city-year analysis panel and its codebook.
//!
//! Owns: checking a `panel` spec, its inputs and outputs, and running one: joining the
//! yearbook, the province R&D table and the collaboration index (`inputs`, interior gaps of
//! yearbook series filled); the economic-gap measures, the controls, the mechanism variables
//! (innovation capability and gap, TFP, gravity linkage, market integration by the
//! relative-price method, specialisation, cross-province R&D flows) and the instrument
//! (`measures`); the rows, lags, winsorised variants and group flags (`output`); and the
//! codebook that defines every column (`codebook`). The spec's types are in `spec`, the grid
//! shape and shared context in `grid`.
//! Deliberately does not own: counting collaboration (`index`), the yearbook's column list
//! (`crate::yearbook`) or estimating anything.

mod codebook;
mod grid;
mod inputs;
mod measures;
mod output;
mod spec;

use std::path::Path;

use crate::places::Cities;
use repro_kind::diag::Diagnostic;
use repro_kind::KindError;
use repro_tabular::table as tabular;

pub use codebook::{Entry, CODEBOOK};
pub use spec::{GapReference, PanelSpec, Transform, CONTROLS};

pub fn parse(spec_path: &str, root: &Path) -> Result<PanelSpec, KindError> {
    let spec: PanelSpec = repro_kind::load_spec(root, spec_path)?;
    let bad = |m: String| repro_kind::spec_err(spec_path, m);
    repro_kind::check_spec_paths(
        spec_path,
        [
            &spec.yearbook,
            &spec.rd_province,
            &spec.index,
            &spec.cities,
            &spec.out,
            &spec.codebook,
            &spec.report,
        ],
    )?;
    repro_kind::check_csv_out(spec_path, &spec.out)?;
    if spec.last_year < spec.first_year {
        return Err(bad("`last_year` is before `first_year`".into()));
    }
    let known: Vec<&str> = CODEBOOK.iter().map(|e| e.name).collect();
    for v in spec.lags.iter().chain(&spec.require) {
        if !known.contains(&v.as_str()) {
            return Err(KindError {
                hint: Some(format!("panel variables: {}", known.join(", "))),
                ..bad(format!("unknown panel variable `{v}`"))
            });
        }
    }
    Ok(spec)
}

pub fn deps(spec: &PanelSpec) -> Vec<String> {
    vec![
        spec.yearbook.clone(),
        spec.rd_province.clone(),
        spec.index.clone(),
        spec.cities.clone(),
    ]
}

pub fn outs(spec: &PanelSpec) -> Vec<String> {
    vec![
        spec.out.clone(),
        tabular::parquet_twin(&spec.out),
        spec.codebook.clone(),
        spec.report.clone(),
    ]
}

/// The columns of the panel (CSV and its Parquet twin), known from the spec before it runs, so
/// the stages reading it are checked when the pipeline loads.
pub fn columns(spec: &PanelSpec) -> Vec<(String, Vec<String>)> {
    let names = output::column_names(spec);
    vec![
        (spec.out.clone(), names.clone()),
        (tabular::parquet_twin(&spec.out), names),
    ]
}

/// Runs a `panel` stage: reads the inputs, computes every variable, keeps the complete
/// city-years and writes the panel (CSV and Parquet), its codebook and the report.
pub fn run(root: &Path, stage: &str, spec: &PanelSpec) -> Result<(), Diagnostic> {
    let fail = |d: Diagnostic| repro_kind::stage_failed(stage, d);
    let cities = Cities::load(&root.join(&spec.cities)).map_err(fail)?;
    let years: Vec<i32> = (spec.first_year..=spec.last_year).collect();
    let yb = inputs::read_yearbook(root, spec, &cities, &years).map_err(fail)?;
    let index = inputs::read_index(root, spec, &cities, &years).map_err(fail)?;
    let rd = inputs::read_rd(root, spec).map_err(fail)?;
    let frame = grid::Frame::new(spec, &cities, years, yb.series);

    let mut vars = grid::Vars::new();
    measures::gaps(&frame, &mut vars);
    measures::collaboration(&frame, index, &mut vars);
    measures::controls(&frame, &mut vars);
    measures::mechanisms(&frame, &rd, &mut vars);
    measures::instrument(&frame, &mut vars);

    let lagged = output::lags(&frame, &vars);
    let rows = output::select_rows(&frame, &vars);
    let winsorised = output::winsorise(&frame, &vars, &rows.keep);
    let table = output::table(&frame, &vars, &rows.keep, &lagged, &winsorised);
    table.write_csv(root, &spec.out).map_err(fail)?;
    table
        .write_parquet(root, &tabular::parquet_twin(&spec.out))
        .map_err(fail)?;
    let book = codebook::codebook(spec, &lagged, &winsorised);
    tabular::write(root, &spec.codebook, book.as_bytes()).map_err(fail)?;
    let report = output::report(&frame, &vars, &rows, yb.filled);
    tabular::write_json(root, &spec.report, &report).map_err(fail)?;
    Ok(())
}
