//! Reading the panel's three inputs into grids by city and year: the yearbook, the
//! collaboration index and the province R&D table.
//!
//! Owns: finding each input's row of a city-year, the yearbook's series as grids with interior
//! gaps filled linearly within a city (when the spec asks), the index's collaboration measures
//! as grids, and R&D by province-year. Deliberately does not own: the yearbook's column list
//! (`crate::yearbook`) or turning any input into a panel variable (`measures`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::grid::Grid;
use super::spec::PanelSpec;
use crate::places::Cities;
use crate::yearbook;
use repro_kind::diag::Diagnostic;
use repro_tabular::table as tabular;

/// The yearbook's series by column name, and how many cells interpolation filled.
pub struct YearbookGrids {
    pub series: BTreeMap<&'static str, Grid>,
    pub filled: usize,
}

/// The collaboration index's measures per 10,000 people, untransformed.
pub struct IndexGrids {
    pub collab: Grid,
    pub collab_cp: Grid,
    pub collab_inv: Grid,
    pub collab_frac: Grid,
}

/// R&D spending and personnel by (province code, year).
pub type Rd = HashMap<(u32, i32), (Option<f64>, Option<f64>)>;

/// The row of each (city code, year) of a table (a later duplicate wins).
fn key_rows(codes: &[Option<i64>], years: &[Option<i64>]) -> HashMap<(u32, i32), usize> {
    let mut rows = HashMap::new();
    for (r, (c, y)) in codes.iter().zip(years).enumerate() {
        if let (Some(c), Some(y)) = (c, y) {
            rows.insert((*c as u32, *y as i32), r);
        }
    }
    rows
}

/// A column as a grid: each city's value in each year, missing where the table has no row.
fn to_grid(
    col: &[Option<f64>],
    rows: &HashMap<(u32, i32), usize>,
    cities: &Cities,
    years: &[i32],
) -> Grid {
    cities
        .rows
        .iter()
        .map(|c| {
            years
                .iter()
                .map(|y| rows.get(&(c.adcode, *y)).and_then(|&r| col[r]))
                .collect()
        })
        .collect()
}

/// Reads every series of the yearbook schema as a grid, filling interior gaps when asked.
pub fn read_yearbook(
    root: &Path,
    spec: &PanelSpec,
    cities: &Cities,
    years: &[i32],
) -> Result<YearbookGrids, Diagnostic> {
    let yf = spec.yearbook.as_str();
    let ydf = tabular::read(root, yf)?;
    let codes = tabular::ints(&ydf, yf, yearbook::CITY_CODE)?;
    let yyears = tabular::ints(&ydf, yf, yearbook::YEAR)?;
    let rows = key_rows(&codes, &yyears);
    let mut cols = Vec::with_capacity(yearbook::COLUMNS.len());
    for column in &yearbook::COLUMNS {
        cols.push((column.name, tabular::floats(&ydf, yf, column.name)?));
    }
    drop(ydf);
    let mut filled = 0usize;
    let series = cols
        .into_iter()
        .map(|(name, col)| {
            let mut grid = to_grid(&col, &rows, cities, years);
            if spec.interpolate {
                for s in &mut grid {
                    filled += interpolate(s);
                }
            }
            (name, grid)
        })
        .collect();
    Ok(YearbookGrids { series, filled })
}

/// Reads the collaboration measures of the index.
pub fn read_index(
    root: &Path,
    spec: &PanelSpec,
    cities: &Cities,
    years: &[i32],
) -> Result<IndexGrids, Diagnostic> {
    let xf = spec.index.as_str();
    let xdf = tabular::read(root, xf)?;
    let xcodes = tabular::ints(&xdf, xf, "adcode6")?;
    let xyears = tabular::ints(&xdf, xf, "year")?;
    let rows = key_rows(&xcodes, &xyears);
    let grid = |name: &str| -> Result<Grid, Diagnostic> {
        let col = tabular::floats(&xdf, xf, name)?;
        Ok(to_grid(&col, &rows, cities, years))
    };
    Ok(IndexGrids {
        collab: grid("collab")?,
        collab_cp: grid("collab_cp")?,
        collab_inv: grid("collab_inv")?,
        collab_frac: grid("collab_frac")?,
    })
}

/// Reads R&D spending and personnel by province and year.
pub fn read_rd(root: &Path, spec: &PanelSpec) -> Result<Rd, Diagnostic> {
    let rf = spec.rd_province.as_str();
    let rdf = tabular::read(root, rf)?;
    let rcode = tabular::ints(&rdf, rf, "province_code")?;
    let ryear = tabular::ints(&rdf, rf, "year")?;
    let rspend = tabular::floats(&rdf, rf, "rd_spending")?;
    let rstaff = tabular::floats(&rdf, rf, "rd_personnel")?;
    let mut rd: Rd = HashMap::new();
    for r in 0..rcode.len() {
        if let (Some(c), Some(y)) = (rcode[r], ryear[r]) {
            rd.insert((c as u32, y as i32), (rspend[r], rstaff[r]));
        }
    }
    Ok(rd)
}

/// Fills interior runs of missing values linearly; returns how many cells were filled.
fn interpolate(s: &mut [Option<f64>]) -> usize {
    let known: Vec<usize> = (0..s.len()).filter(|&t| s[t].is_some()).collect();
    let mut filled = 0;
    for w in known.windows(2) {
        let (a, b) = (w[0], w[1]);
        let (va, vb) = (s[a].unwrap_or(0.0), s[b].unwrap_or(0.0));
        for (step, cell) in s[a + 1..b].iter_mut().enumerate() {
            *cell = Some(va + (vb - va) * (step + 1) as f64 / (b - a) as f64);
            filled += 1;
        }
    }
    filled
}
