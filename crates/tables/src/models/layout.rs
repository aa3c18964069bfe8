//! The content of a `models` table: header, coefficient rows, indicator rows, fit statistics,
//! difference-test rows and notes, from the fitted columns.
//!
//! Owns: what each row says and in which order (the intercept last, as esttab and etable put
//! it; sets and fixed effects as Yes/No rows; optional statistics only where some column has
//! them). Deliberately does not own: fitting (`models`) or rendering (`table`).

use indexmap::IndexMap;
use repro_estimators::fit::VcovSpec;
use repro_estimators::result::FitResult;

use super::spec::{DiffMethod, DifferenceEntry, Model, ModelsSpec};
use crate::fitting;
use crate::table::{self, Cell, Row, Table};

/// One column of the table.
pub(super) struct Column {
    pub(super) model: Model,
    pub(super) outcome: String,
    pub(super) fixed_effects: Vec<String>,
    pub(super) result: FitResult,
    /// For a first-stage column, the endogenous variable it explains.
    pub(super) first_stage_of: Option<String>,
}

/// The whole table: every section, the column labels and groups, and the notes.
pub(super) fn build_table(
    spec: &ModelsSpec,
    columns: &[Column],
    diffs: &[(DifferenceEntry, f64)],
) -> Table {
    let col_labels: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(k, c)| match (&c.model.label, &c.first_stage_of) {
            (Some(l), None) => l.clone(),
            _ => format!("({})", k + 1),
        })
        .collect();
    let groups = table::spans(
        &columns
            .iter()
            .map(|c| c.model.group.clone())
            .collect::<Vec<_>>(),
    );
    let head = vec![Row {
        label: "Dependent variable".into(),
        cells: columns
            .iter()
            .map(|c| {
                let l = label(&spec.labels, &c.outcome);
                Cell::text(match c.first_stage_of {
                    Some(_) => format!("{l} (first stage)"),
                    None => l.to_string(),
                })
            })
            .collect(),
    }];
    Table {
        title: spec.title.clone(),
        groups: if groups.iter().any(|g| !g.label.is_empty()) {
            groups
        } else {
            Vec::new()
        },
        sections: vec![
            head,
            coefficient_rows(spec, columns),
            indicator_rows(spec, columns),
            statistic_rows(spec, columns),
            difference_rows(spec, columns, &col_labels, diffs),
        ],
        notes: notes(spec, columns, &col_labels, diffs),
        columns: col_labels,
    }
}

/// An estimate row with stars and a standard-error row in parentheses per term.
fn coefficient_rows(spec: &ModelsSpec, columns: &[Column]) -> Vec<Row> {
    let digits = spec.digits;
    let set_members: Vec<&String> = spec.sets.values().flatten().collect();
    let terms: Vec<String> = match &spec.keep {
        Some(k) => k.clone(),
        None => {
            let mut t = Vec::new();
            for c in columns {
                for coef in &c.result.coefficients {
                    if !set_members.contains(&&coef.term) {
                        push_unique(&mut t, &coef.term);
                    }
                }
            }
            // The intercept goes last, as in esttab and etable.
            if let Some(i) = t.iter().position(|x| x == "Intercept") {
                let icpt = t.remove(i);
                t.push(icpt);
            }
            t
        }
    };
    let mut coefs = Vec::new();
    for term in &terms {
        let mut est = Vec::with_capacity(columns.len());
        let mut se = Vec::with_capacity(columns.len());
        for c in columns {
            match c.result.coefficient(term) {
                Some(k) => {
                    est.push(Cell {
                        text: table::fixed(k.estimate, digits),
                        stars: fitting::stars(k.p_value),
                    });
                    se.push(table::paren(k.std_error, digits));
                }
                None => {
                    est.push(Cell::empty());
                    se.push(Cell::empty());
                }
            }
        }
        coefs.push(Row {
            label: label(&spec.labels, term).to_string(),
            cells: est,
        });
        coefs.push(Row {
            label: String::new(),
            cells: se,
        });
    }
    coefs
}

/// Yes/No rows: the control sets each model uses, then its fixed effects.
fn indicator_rows(spec: &ModelsSpec, columns: &[Column]) -> Vec<Row> {
    let mut indicators = Vec::new();
    let yes_no = |b: bool| Cell::text(if b { "Yes" } else { "No" });
    for set in spec.sets.keys() {
        if !columns.iter().any(|c| c.model.sets_used.contains(set)) {
            // A set no model uses would be a row of `No`s; leave it out.
            continue;
        }
        indicators.push(Row {
            label: set_label(&spec.labels, set),
            cells: columns
                .iter()
                .map(|c| yes_no(c.model.sets_used.contains(set)))
                .collect(),
        });
    }
    let mut fe_terms = Vec::new();
    for c in columns {
        for f in &c.fixed_effects {
            push_unique(&mut fe_terms, f);
        }
    }
    for f in &fe_terms {
        indicators.push(Row {
            label: spec
                .fe_labels
                .get(f)
                .cloned()
                .unwrap_or_else(|| format!("{f} FE")),
            cells: columns
                .iter()
                .map(|c| yes_no(c.fixed_effects.contains(f)))
                .collect(),
        });
    }
    indicators
}

/// Observations, then R-squared, clusters and first-stage statistics where a column has them.
fn statistic_rows(spec: &ModelsSpec, columns: &[Column]) -> Vec<Row> {
    let digits = spec.digits;
    let mut stats = vec![Row {
        label: "Observations".into(),
        cells: columns
            .iter()
            .map(|c| Cell::text(fitting::thousands(c.result.nobs)))
            .collect(),
    }];
    let opt_row = |label: &str, f: &dyn Fn(&FitResult) -> Option<String>| -> Option<Row> {
        let cells: Vec<Option<String>> = columns.iter().map(|c| f(&c.result)).collect();
        cells.iter().any(Option::is_some).then(|| Row {
            label: label.to_string(),
            cells: cells
                .into_iter()
                .map(|c| c.map_or_else(Cell::empty, Cell::text))
                .collect(),
        })
    };
    stats.extend(opt_row("R-squared", &|r| {
        r.r2.map(|x| table::fixed(x, digits))
    }));
    stats.extend(opt_row("Within R-squared", &|r| {
        r.r2_within.map(|x| table::fixed(x, digits))
    }));
    let mut cluster_vars = Vec::new();
    for c in columns {
        if let Some(cc) = &c.result.n_clusters {
            for (v, _) in &cc.0 {
                push_unique(&mut cluster_vars, v);
            }
        }
    }
    for v in &cluster_vars {
        let row_label = if cluster_vars.len() == 1 {
            "Clusters".to_string()
        } else {
            format!("Clusters ({})", label(&spec.labels, v))
        };
        stats.extend(opt_row(&row_label, &|r| {
            r.n_clusters
                .as_ref()
                .and_then(|cc| cc.0.iter().find(|(name, _)| name == v))
                .map(|(_, k)| fitting::thousands(*k))
        }));
    }
    let mut endogenous = Vec::new();
    for c in columns {
        if let Some(fs) = &c.result.first_stage {
            for f in &fs.first_stage {
                push_unique(&mut endogenous, &f.endogenous);
            }
        }
    }
    for e in &endogenous {
        let row_label = if endogenous.len() == 1 {
            "First-stage F".to_string()
        } else {
            format!("First-stage F ({})", label(&spec.labels, e))
        };
        stats.extend(opt_row(&row_label, &|r| {
            r.first_stage
                .as_ref()
                .and_then(|fs| fs.first_stage.iter().find(|f| &f.endogenous == e))
                .map(|f| table::fixed(f.f_stat, digits))
        }));
    }
    stats.extend(opt_row("Kleibergen-Paap F", &|r| {
        r.first_stage
            .as_ref()
            .and_then(|fs| fs.kleibergen_paap_f)
            .map(|x| table::fixed(x, digits))
    }));
    stats
}

/// The column of model `id` (not a first-stage column).
fn column_of(columns: &[Column], id: &str) -> Option<usize> {
    columns
        .iter()
        .position(|c| c.model.id == id && c.first_stage_of.is_none())
}

/// Difference tests: the p-value sits in column b, the row names both columns.
fn difference_rows(
    spec: &ModelsSpec,
    columns: &[Column],
    col_labels: &[String],
    diffs: &[(DifferenceEntry, f64)],
) -> Vec<Row> {
    let mut tests = Vec::new();
    for (d, p) in diffs {
        let (Some(a), Some(b)) = (column_of(columns, &d.a), column_of(columns, &d.b)) else {
            continue;
        };
        let mut cells = vec![Cell::empty(); columns.len()];
        cells[b] = Cell::text(table::fixed(*p, spec.digits));
        tests.push(Row {
            label: format!(
                "p-value ({}), {}: {} = {}",
                match d.method {
                    DiffMethod::Stacked => "stacked",
                    DiffMethod::Permutation => "permutation",
                },
                label(&spec.labels, &d.coef),
                col_labels[a],
                col_labels[b]
            ),
            cells,
        });
    }
    tests
}

/// The notes under the table: standard errors per column, stars, each difference test's method,
/// then the spec's own notes.
fn notes(
    spec: &ModelsSpec,
    columns: &[Column],
    col_labels: &[String],
    diffs: &[(DifferenceEntry, f64)],
) -> Vec<String> {
    let mut notes = Vec::new();
    let mut vcovs: Vec<(String, Vec<String>)> = Vec::new();
    for (c, l) in columns.iter().zip(col_labels) {
        let v = describe_vcov(&c.model.vcov);
        match vcovs.iter_mut().find(|(x, _)| *x == v) {
            Some((_, ls)) => ls.push(l.clone()),
            None => vcovs.push((v, vec![l.clone()])),
        }
    }
    if vcovs.len() == 1 {
        notes.push(format!("Standard errors in parentheses, {}.", vcovs[0].0));
    } else {
        let parts: Vec<String> = vcovs
            .iter()
            .map(|(v, ls)| format!("{} {v}", ls.join(", ")))
            .collect();
        notes.push(format!(
            "Standard errors in parentheses: {}.",
            parts.join("; ")
        ));
    }
    notes.push("* p<0.1, ** p<0.05, *** p<0.01".into());
    for (d, _) in diffs {
        let (Some(a), Some(b)) = (column_of(columns, &d.a), column_of(columns, &d.b)) else {
            continue;
        };
        let what = format!(
            "Difference test of {} between {} and {}",
            label(&spec.labels, &d.coef),
            col_labels[a],
            col_labels[b]
        );
        notes.push(match d.method {
            DiffMethod::Stacked => format!(
                "{what}: both regressions stacked with a joint covariance (as Stata's suest), normal p-value."
            ),
            DiffMethod::Permutation => format!(
                "{what}: Fisher permutation test of the group assignment, {} permutations, seed {}.",
                d.reps.unwrap_or(0),
                d.seed.unwrap_or(0)
            ),
        });
    }
    if let Some(extra) = &spec.notes {
        notes.push(extra.trim().to_string());
    }
    notes
}

fn label<'a>(labels: &'a IndexMap<String, String>, name: &'a str) -> &'a str {
    labels.get(name).map_or(name, String::as_str)
}

/// Capitalised set name (`controls` -> `Controls`) unless `labels` names it.
fn set_label(labels: &IndexMap<String, String>, set: &str) -> String {
    if let Some(l) = labels.get(set) {
        return l.clone();
    }
    let mut chars = set.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn push_unique(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|x| x == item) {
        list.push(item.to_string());
    }
}

/// How a vcov string reads in the notes.
fn describe_vcov(v: &str) -> String {
    v.parse::<VcovSpec>()
        .map_or_else(|_| v.to_string(), |spec| spec.describe())
}
