//! The panel's codebook: every column's name, label, definition and source, and the Markdown
//! codebook written beside the panel.
//!
//! Owns: the column list in output order (`CODEBOOK`) and rendering it with the rules for the
//! lagged and winsorised variants and the spec's settings. Deliberately does not own: computing
//! any column (`measures`, `output`).

use std::fmt::Write as _;

use super::grid::Named;
use super::spec::PanelSpec;

/// One codebook entry: the column, its label, its definition and its source.
pub struct Entry {
    pub name: &'static str,
    pub label: &'static str,
    pub definition: &'static str,
    pub source: &'static str,
}

const YB: &str = "yearbook";
const IDX: &str = "collaboration index (patent applications)";

/// Every column of the panel, in output order. Lags (`_l1`) and winsorised (`_w`) variants are
/// documented by rule under the table.
pub const CODEBOOK: &[Entry] = &[
    Entry { name: "city", label: "City", definition: "6-digit administrative code of the prefecture-level city", source: "city table" },
    Entry { name: "city_name", label: "City name", definition: "Official Chinese name", source: "city table" },
    Entry { name: "province", label: "Province", definition: "2-digit province code", source: "city table" },
    Entry { name: "year", label: "Year", definition: "Calendar year", source: "yearbook" },
    Entry { name: "gap", label: "Economic gap", definition: "The spec's chosen gap measure (default `gap_mean`)", source: YB },
    Entry { name: "gap_mean", label: "Economic gap (sample mean)", definition: "|ln pcGDP_it - ln(mean over the year's sample cities of pcGDP)|", source: YB },
    Entry { name: "gap_prov", label: "Economic gap (province mean)", definition: "|ln pcGDP_it - ln(mean pcGDP of the city's province in the year)|; 0 for a single-city province", source: YB },
    Entry { name: "gap_frontier", label: "Economic gap (frontier)", definition: "ln(max over the year's sample cities of pcGDP) - ln pcGDP_it", source: YB },
    Entry { name: "collab", label: "Collaborative innovation", definition: "Cross-city co-applied applications per 10,000 people, ln(1 + x) by default (`collab_transform`)", source: IDX },
    Entry { name: "collab_raw", label: "Collaboration per 10,000 (level)", definition: "Cross-city co-applied applications per 10,000 people", source: IDX },
    Entry { name: "collab_cp", label: "Cross-province collaboration", definition: "Co-applied applications with applicants in two or more provinces per 10,000 people, transformed as `collab`", source: IDX },
    Entry { name: "collab_inv", label: "Invention collaboration", definition: "Cross-city co-applied invention applications per 10,000 people, transformed as `collab`", source: IDX },
    Entry { name: "collab_frac", label: "Collaboration (fractional)", definition: "Fractionally counted cross-city co-applied applications per 10,000 people (the city's share of each application's applicants), transformed as `collab`", source: IDX },
    Entry { name: "iv_hist", label: "Instrument", definition: "ln(post offices per 10,000 people in 1984) x national internet users per 100 people in the year (shift-share)", source: YB },
    Entry { name: "indstr", label: "Industrial structure", definition: "Tertiary share of GDP / secondary share of GDP", source: YB },
    Entry { name: "gov", label: "Government intervention", definition: "General budget expenditure / GDP", source: YB },
    Entry { name: "open", label: "Openness", definition: "Foreign direct investment actually used / GDP", source: YB },
    Entry { name: "fin", label: "Financial development", definition: "Year-end loans of financial institutions / GDP", source: YB },
    Entry { name: "hum", label: "Human capital", definition: "ln(college students per 10,000 people)", source: YB },
    Entry { name: "dens", label: "Population density", definition: "ln(persons per square kilometre)", source: YB },
    Entry { name: "infra", label: "Infrastructure", definition: "Road area per capita (square metres)", source: YB },
    Entry { name: "info", label: "Informatisation", definition: "Internet broadband users per 100 people", source: YB },
    Entry { name: "innov", label: "Innovation capability", definition: "ln(city innovation index)", source: YB },
    Entry { name: "innov_gap", label: "Innovation gap", definition: "|ln innovation index_it - ln(mean over the year's sample cities)|", source: YB },
    Entry { name: "tfp", label: "Total factor productivity", definition: "ln GDP - alpha ln capital stock - (1 - alpha) ln employment (Solow residual; alpha = `tfp_alpha`)", source: YB },
    Entry { name: "linkage", label: "City linkage", definition: "ln(sum over other sample cities j of V_i V_j / d_ij^2): gravity model with passenger volume V (10,000 persons) and great-circle distance d (km)", source: YB },
    Entry { name: "mkt_integ", label: "Market integration", definition: "-0.5 ln(mean over the k nearest cities of the variance across goods of the de-meaned |ln P_ik - ln P_jk|), P = price index, previous year = 100 (relative-price method)", source: YB },
    Entry { name: "division", label: "Division of labour", definition: "Krugman specialisation index: sum over sectors of |employment share - national share|", source: YB },
    Entry { name: "rd_fund_flow", label: "R&D fund inflow", definition: "ln(sum over other provinces q of R&D spending_q x (wage_i / mean wage_q) / d(i, capital of q)^2)", source: "province R&D table, yearbook" },
    Entry { name: "rd_staff_flow", label: "R&D personnel inflow", definition: "As `rd_fund_flow` with R&D personnel (full-time equivalent) in place of spending", source: "province R&D table, yearbook" },
    Entry { name: "pcgdp", label: "GDP per capita", definition: "Yuan", source: YB },
    Entry { name: "pop", label: "Population", definition: "10,000 persons, year end", source: YB },
    Entry { name: "east", label: "Eastern", definition: "1 if the city's NBS region is in `east_regions`", source: "city table" },
    Entry { name: "central_west", label: "Central/western", definition: "1 - east", source: "city table" },
    Entry { name: "coastal", label: "Coastal", definition: "1 if the city borders the sea", source: "city table" },
    Entry { name: "inland", label: "Inland", definition: "1 - coastal", source: "city table" },
    Entry { name: "tertiary", label: "Tertiary-dominated", definition: "1 if the tertiary share exceeds the secondary share in the first sample year", source: YB },
    Entry { name: "secondary", label: "Not tertiary-dominated", definition: "1 - tertiary", source: YB },
    Entry { name: "agglo", label: "Urban agglomeration", definition: "1 if the city belongs to a national urban agglomeration", source: "city table" },
    Entry { name: "non_agglo", label: "Outside agglomerations", definition: "1 - agglo", source: "city table" },
    Entry { name: "capital", label: "Provincial capital", definition: "1 for provincial capitals and municipalities", source: "city table" },
    Entry { name: "municipality", label: "Municipality", definition: "1 for Beijing, Tianjin, Shanghai, Chongqing", source: "city table" },
];

/// The codebook as Markdown: the table of [`CODEBOOK`], the rules of the variants, the settings.
pub fn codebook(spec: &PanelSpec, lagged: &[Named], winsorised: &[Named]) -> String {
    let mut s = String::from("# Codebook: the city-year analysis panel\n\n");
    let _ = writeln!(
        s,
        "One row per prefecture-level city and year, {}-{}, for city-years with per-capita GDP \
         and every variable listed under `require` in the panel spec ({}).\n",
        spec.first_year,
        spec.last_year,
        spec.require.join(", ")
    );
    s.push_str("| variable | label | definition | source |\n|---|---|---|---|\n");
    for e in CODEBOOK {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} |",
            e.name,
            e.label,
            e.definition.replace('|', "\\|"),
            e.source
        );
    }
    s.push('\n');
    for (name, _) in lagged {
        let _ = writeln!(
            s,
            "- `{name}`: `{}` of the previous year (blank in the first year)",
            name.trim_end_matches("_l1")
        );
    }
    for (name, _) in winsorised {
        let _ = writeln!(
            s,
            "- `{name}`: `{}` winsorised at the {} and {} quantiles of the panel",
            name.trim_end_matches("_w"),
            spec.winsorize,
            1.0 - spec.winsorize
        );
    }
    let _ = writeln!(
        s,
        "\nSettings: collaboration transform `{:?}`, gap reference `{:?}`, yearbook interior gaps \
         {}interpolated linearly within a city, eastern regions {:?}, TFP alpha {}, market \
         integration over the {} nearest cities.",
        spec.collab_transform,
        spec.gap_reference,
        if spec.interpolate { "" } else { "not " },
        spec.east_regions,
        spec.tfp_alpha,
        spec.integration_neighbours
    );
    s
}
