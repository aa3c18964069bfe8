//! The content of a `models` table: header, coefficient rows, indicator rows, fit statistics,
//! difference-test rows and notes, from the fitted columns.
//!
//! Owns: what each row says and in which order (the intercept last, as esttab and etable put
//! it; sets and fixed effects as Yes/No rows; optional statistics only where some column has
//! them). Deliberately does not own: fitting (`models`) or rendering (`table`).

use indexmap::IndexMap;
use repro_estimators::fit::VcovSpec;
use repro_estimators::result::FitResult;

use repro_estimators::result::Coefficient;

use super::spec::{Below, DiffMethod, DifferenceEntry, Model, ModelsSpec};
use crate::fitting;
use crate::stars::Stars;
use crate::table::{self, Cell, Row, Spanner, Table};

/// One column of the table.
pub(super) struct Column {
    pub(super) model: Model,
    pub(super) outcome: String,
    pub(super) fixed_effects: Vec<String>,
    pub(super) result: FitResult,
    /// For a first-stage column, the endogenous variable it explains.
    pub(super) first_stage_of: Option<String>,
    /// Mean of the dependent variable over the rows the fit used.
    pub(super) dep_mean: f64,
}

/// How the table is marked up beyond the spec's content.
pub(super) struct Marks<'a> {
    pub(super) stars: &'a Stars,
}

/// The whole table: every section, the column labels and groups, and the notes.
pub(super) fn build_table(
    spec: &ModelsSpec,
    columns: &[Column],
    diffs: &[(DifferenceEntry, f64)],
    marks: &Marks<'_>,
) -> Table {
    // Columns are always numbered; labels, when some model has one, head the numbers.
    let numbers: Vec<String> = (1..=columns.len()).map(|k| format!("({k})")).collect();
    let labelled = columns.iter().any(|c| c.model.label.is_some());
    let heads: Vec<String> = match labelled {
        false => numbers.clone(),
        true => columns
            .iter()
            .map(|c| match (&c.model.label, &c.first_stage_of) {
                (_, Some(_)) => "First stage".to_string(),
                (Some(l), None) => l.clone(),
                (None, None) => String::new(),
            })
            .collect(),
    };
    let groups = table::spans(
        &columns
            .iter()
            .map(|c| c.model.group.clone())
            .collect::<Vec<_>>(),
    );
    let outcomes: Vec<Option<String>> = columns
        .iter()
        .map(|c| {
            let l = label(&spec.labels, &c.outcome);
            // Unlabelled columns give no other sign that a column is a first stage.
            Some(match (&c.first_stage_of, labelled) {
                (Some(_), false) => format!("{l} (first stage)"),
                _ => l.to_string(),
            })
        })
        .collect();
    Table {
        title: spec.title.clone(),
        groups: if groups.iter().any(|g| !g.label.is_empty()) {
            groups
        } else {
            Vec::new()
        },
        spanners: vec![Spanner {
            label: "Dependent variable".into(),
            groups: table::spans(&outcomes),
        }],
        numbered: labelled,
        sections: vec![
            coefficient_rows(spec, columns, marks),
            indicator_rows(spec, columns),
            statistic_rows(spec, columns),
            difference_rows(spec, columns, diffs),
        ],
        notes: notes(spec, columns, &numbers, diffs, marks),
        columns: heads,
        caption: spec.caption.clone(),
        label: spec.latex_label.clone(),
    }
}

/// The text under an estimate: its standard error, t statistic or p-value in parentheses, or
/// its 95% confidence interval in brackets.
fn below_cell(below: Below, k: &Coefficient, df_t: Option<usize>, digits: usize) -> Cell {
    match below {
        Below::Se => table::paren(k.std_error, digits),
        Below::T => table::paren(k.statistic, digits),
        Below::P => Cell::text(format!("({})", table::p_value(k.p_value, digits))),
        Below::Ci => {
            let crit = critical_value(df_t);
            Cell::text(format!(
                "[{}, {}]",
                table::fixed(k.estimate - crit * k.std_error, digits),
                table::fixed(k.estimate + crit * k.std_error, digits)
            ))
        }
    }
}

/// The two-sided 95% critical value of the p-values' distribution (Student's t with `df`, else
/// normal).
fn critical_value(df: Option<usize>) -> f64 {
    use statrs::distribution::{ContinuousCDF, Normal, StudentsT};
    match df.filter(|&d| d > 0) {
        Some(d) => StudentsT::new(0.0, 1.0, d as f64).map_or(f64::NAN, |t| t.inverse_cdf(0.975)),
        None => Normal::standard().inverse_cdf(0.975),
    }
}

/// An estimate row with stars and a row under it (`below`) per term.
fn coefficient_rows(spec: &ModelsSpec, columns: &[Column], marks: &Marks<'_>) -> Vec<Row> {
    let digits = spec.digits;
    let set_members: Vec<&String> = spec.sets.values().flatten().map(|v| &v.value).collect();
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
        let mut under = Vec::with_capacity(columns.len());
        for c in columns {
            match c.result.coefficient(term) {
                Some(k) => {
                    est.push(Cell {
                        text: table::fixed(k.estimate, digits),
                        stars: marks.stars.mark(k.p_value),
                    });
                    under.push(below_cell(spec.below, k, c.result.df_t, digits));
                }
                None => {
                    est.push(Cell::empty());
                    under.push(Cell::empty());
                }
            }
        }
        coefs.push(Row {
            label: label(&spec.labels, term).to_string(),
            cells: est,
        });
        coefs.push(Row {
            label: String::new(),
            cells: under,
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

/// Observations, then R-squared (and adjusted R-squared when asked), clusters and first-stage statistics where a column has them.
fn statistic_rows(spec: &ModelsSpec, columns: &[Column]) -> Vec<Row> {
    let digits = spec.digits;
    let mut stats = vec![Row {
        label: "Observations".into(),
        cells: columns
            .iter()
            .map(|c| Cell::text(fitting::thousands(c.result.nobs)))
            .collect(),
    }];
    if spec.dep_mean {
        stats.push(Row {
            label: "Mean of dep. var.".into(),
            cells: columns
                .iter()
                .map(|c| Cell::text(table::fixed(c.dep_mean, digits)))
                .collect(),
        });
    }
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
    if spec.adj_r2 {
        stats.extend(opt_row("Adjusted R-squared", &|r| {
            r.adj_r2.map(|x| table::fixed(x, digits))
        }));
    }
    stats.extend(opt_row("Within R-squared", &|r| {
        r.r2_within.map(|x| table::fixed(x, digits))
    }));
    if spec.adj_r2 {
        stats.extend(opt_row("Adjusted within R-squared", &|r| {
            r.adj_r2_within.map(|x| table::fixed(x, digits))
        }));
    }
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

/// Difference tests: the p-value sits in column b; tests of one method share a row while their
/// columns differ (the notes say which columns each compares).
fn difference_rows(
    spec: &ModelsSpec,
    columns: &[Column],
    diffs: &[(DifferenceEntry, f64)],
) -> Vec<Row> {
    let mut tests: Vec<(DiffMethod, Row)> = Vec::new();
    for (d, p) in diffs {
        let (Some(_), Some(b)) = (column_of(columns, &d.a), column_of(columns, &d.b)) else {
            continue;
        };
        let text = Cell::text(table::p_value(*p, spec.digits));
        match tests
            .iter_mut()
            .find(|(m, r)| *m == d.method && r.cells[b].text.is_empty())
        {
            Some((_, row)) => row.cells[b] = text,
            None => {
                let mut cells = vec![Cell::empty(); columns.len()];
                cells[b] = text;
                let label = match d.method {
                    DiffMethod::Stacked => "Difference, p-value",
                    DiffMethod::Permutation => "Difference, permutation p-value",
                };
                tests.push((
                    d.method,
                    Row {
                        label: label.into(),
                        cells,
                    },
                ));
            }
        }
    }
    tests.into_iter().map(|(_, r)| r).collect()
}

/// The notes under the table: what is under the estimates and how it was computed, stars, each
/// difference test, then the spec's own notes. Columns are referred to by number.
fn notes(
    spec: &ModelsSpec,
    columns: &[Column],
    numbers: &[String],
    diffs: &[(DifferenceEntry, f64)],
    marks: &Marks<'_>,
) -> Vec<String> {
    let mut notes = Vec::new();
    let mut vcovs: Vec<(String, Vec<String>)> = Vec::new();
    for (c, l) in columns.iter().zip(numbers) {
        let v = describe_vcov(&c.model.vcov);
        match vcovs.iter_mut().find(|(x, _)| *x == v) {
            Some((_, ls)) => ls.push(l.clone()),
            None => vcovs.push((v, vec![l.clone()])),
        }
    }
    let what = match spec.below {
        Below::Se => "Standard errors in parentheses",
        Below::T => "t statistics in parentheses, from standard errors",
        Below::P => "p-values in parentheses, from standard errors",
        Below::Ci => "95% confidence intervals in brackets, from standard errors",
    };
    if vcovs.len() == 1 {
        notes.push(format!("{what}, {}.", vcovs[0].0));
    } else {
        let parts: Vec<String> = vcovs
            .iter()
            .map(|(v, ls)| format!("{} {v}", ls.join(", ")))
            .collect();
        notes.push(format!("{what}: {}.", parts.join("; ")));
    }
    notes.extend(marks.stars.note());
    for (d, _) in diffs {
        let (Some(a), Some(b)) = (column_of(columns, &d.a), column_of(columns, &d.b)) else {
            continue;
        };
        let what = format!(
            "Difference in column {}: {} in {} = {}",
            numbers[b],
            label(&spec.labels, &d.coef),
            numbers[a],
            numbers[b]
        );
        notes.push(match d.method {
            DiffMethod::Stacked => format!(
                "{what}, both regressions stacked with a joint covariance (as Stata's suest), normal p-value."
            ),
            DiffMethod::Permutation => format!(
                "{what}, Fisher permutation test of the group assignment, {} permutations, seed {}.",
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
