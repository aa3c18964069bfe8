//! Comparing two result JSON files of one model, cell by cell, as the table prints them.
//!
//! Owns: which cells a model has (per coefficient its estimate, standard error and stars; N and
//! the fit statistics), the change of an estimate in old standard errors, and the rule that marks
//! a change as rounding only. Deliberately does not own: finding the files (`diff`) or printing
//! the changes (`render`).

use serde::Serialize;
use serde_json::Value;

/// The table's printed digits when a result JSON does not record them (the table kinds'
/// default, and results written before `produced_by.printed` existed).
const DEFAULT_DIGITS: usize = 3;
/// The default star levels of the table kinds (`* p<0.1, ** p<0.05, *** p<0.01`).
const DEFAULT_STARS: [f64; 3] = [0.1, 0.05, 0.01];

/// One changed cell of a model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    /// The coefficient's term; `None` for the model's own statistics (N, R-squared...).
    pub term: Option<String>,
    /// `estimate`, `std_error`, `stars`, `nobs`, `r2`, `r2_within`, `objective` or
    /// `clusters:VAR`.
    pub field: String,
    /// The value before and after (`null` when the cell did not exist).
    pub old: Value,
    pub new: Value,
    /// For an estimate: (new - old) / old standard error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_in_se: Option<f64>,
    /// The printed text differs by at most one unit of the last printed digit.
    pub rounding: bool,
}

/// How a model's table prints it: decimals and star levels (largest first).
#[derive(Debug, Clone, PartialEq)]
pub struct Printed {
    pub digits: usize,
    pub stars: Vec<f64>,
}

impl Printed {
    /// What `produced_by.printed` says, else the table kinds' defaults.
    pub fn of(result: &Value) -> Printed {
        let p = match &result["produced_by"]["printed"] {
            Value::Null => &result["printed"],
            p => p,
        };
        let digits = p["digits"]
            .as_u64()
            .map_or(DEFAULT_DIGITS, |d| d.min(12) as usize);
        let stars = match p["stars"].as_array() {
            Some(levels) => levels.iter().filter_map(Value::as_f64).collect(),
            None => DEFAULT_STARS.to_vec(),
        };
        Printed { digits, stars }
    }

    /// The stars of a p-value: one per level it is below.
    fn mark(&self, p: f64) -> String {
        "*".repeat(self.stars.iter().filter(|&&l| p < l).count())
    }

    /// The value as the table prints it.
    pub fn text(&self, x: f64) -> String {
        repro_tables::table::fixed(x, self.digits)
    }

    /// Whether the printed texts of `a` and `b` are at most one unit of the last digit apart.
    fn rounding_only(&self, a: f64, b: f64) -> bool {
        let (Ok(pa), Ok(pb)) = (self.text(a).parse::<f64>(), self.text(b).parse::<f64>()) else {
            return false;
        };
        let units = ((pb - pa) * 10f64.powi(self.digits as i32)).round().abs();
        units <= 1.0
    }
}

/// Whether a JSON file is a model's result (a `repro fit --json` object: it has coefficients).
pub fn is_model(v: &Value) -> bool {
    v["coefficients"].is_array() && v.get("nobs").is_some()
}

/// Whether a JSON file is a difference test of a table (`diff_A_B_COEF_METHOD.json`).
pub fn is_test(v: &Value) -> bool {
    v["result"]["p_value"].is_number()
}

/// The changed cells of one result file: a model's, or a difference test's.
pub fn compare_any(old: &Value, new: &Value) -> Vec<Cell> {
    if is_model(old) && is_model(new) {
        compare(old, new)
    } else {
        compare_test(old, new)
    }
}

/// The changed numbers of a difference test (`result`: the difference, its standard error,
/// the p-values, the counts), in the new file's order.
fn compare_test(old: &Value, new: &Value) -> Vec<Cell> {
    let printed = Printed::of(new);
    let numbers = |v: &Value| -> Vec<(String, Value)> {
        v["result"].as_object().map_or_else(Vec::new, |o| {
            o.iter()
                .filter(|(_, x)| x.is_number())
                .map(|(k, x)| (k.clone(), x.clone()))
                .collect()
        })
    };
    let (o, n) = (numbers(old), numbers(new));
    let mut keys: Vec<&String> = n.iter().map(|(k, _)| k).collect();
    keys.extend(
        o.iter()
            .map(|(k, _)| k)
            .filter(|k| !n.iter().any(|(m, _)| m == *k)),
    );
    let get = |list: &[(String, Value)], k: &str| {
        list.iter().find(|(m, _)| m == k).map(|(_, v)| v.clone())
    };
    let mut cells = Vec::new();
    for k in keys {
        let (a, b) = (get(&o, k), get(&n, k));
        if a == b {
            continue;
        }
        let floats = a
            .as_ref()
            .and_then(Value::as_f64)
            .zip(b.as_ref().and_then(Value::as_f64));
        let integral = |v: &Option<Value>| v.as_ref().is_none_or(|v| v.is_u64() || v.is_i64());
        cells.push(Cell {
            term: None,
            field: k.clone(),
            old: a.clone().unwrap_or(Value::Null),
            new: b.clone().unwrap_or(Value::Null),
            change_in_se: None,
            rounding: !(integral(&a) && integral(&b))
                && floats.is_some_and(|(x, y)| printed.rounding_only(x, y)),
        });
    }
    cells
}

/// The changed cells of one model, coefficients in the new result's order (then removed ones),
/// then N and the fit statistics. The printing rules are the new result's.
pub fn compare(old: &Value, new: &Value) -> Vec<Cell> {
    let printed = Printed::of(new);
    let old_coefs = coefficients(old);
    let new_coefs = coefficients(new);
    let mut terms: Vec<&str> = new_coefs.iter().map(|(t, _)| *t).collect();
    for (t, _) in &old_coefs {
        if !terms.contains(t) {
            terms.push(t);
        }
    }
    let mut cells = Vec::new();
    for term in terms {
        let find = |list: &[(&str, Coef)]| list.iter().find(|(t, _)| *t == term).map(|(_, c)| *c);
        let (o, n) = (find(&old_coefs), find(&new_coefs));
        let cell = |field: &str, old: Value, new: Value| Cell {
            term: Some(term.to_string()),
            field: field.to_string(),
            old,
            new,
            change_in_se: None,
            rounding: false,
        };
        let est = number_cell(
            &printed,
            cell("estimate", Value::Null, Value::Null),
            o.map(|c| c.estimate),
            n.map(|c| c.estimate),
        );
        if let Some(mut c) = est {
            c.change_in_se = match (o, n) {
                (Some(o), Some(n)) if o.std_error > 0.0 => {
                    Some((n.estimate - o.estimate) / o.std_error)
                }
                _ => None,
            };
            cells.push(c);
        }
        cells.extend(number_cell(
            &printed,
            cell("std_error", Value::Null, Value::Null),
            o.map(|c| c.std_error),
            n.map(|c| c.std_error),
        ));
        let stars_old = o.map(|c| printed.mark(c.p_value));
        let stars_new = n.map(|c| printed.mark(c.p_value));
        let differ = match (&stars_old, &stars_new) {
            (Some(a), Some(b)) => a != b,
            (None, Some(s)) | (Some(s), None) => !s.is_empty(),
            (None, None) => false,
        };
        if differ {
            cells.push(cell("stars", stars_old.into(), stars_new.into()));
        }
    }
    cells.extend(statistics(&printed, old, new));
    cells
}

/// N, R-squared, within R-squared, the objective and cluster counts.
fn statistics(printed: &Printed, old: &Value, new: &Value) -> Vec<Cell> {
    let mut cells = Vec::new();
    let stat = |field: &str| Cell {
        term: None,
        field: field.to_string(),
        old: Value::Null,
        new: Value::Null,
        change_in_se: None,
        rounding: false,
    };
    if old["nobs"] != new["nobs"] {
        cells.push(Cell {
            old: old["nobs"].clone(),
            new: new["nobs"].clone(),
            ..stat("nobs")
        });
    }
    for field in ["r2", "r2_within", "objective"] {
        cells.extend(number_cell(
            printed,
            stat(field),
            old[field].as_f64(),
            new[field].as_f64(),
        ));
    }
    let clusters = |v: &Value| v["n_clusters"].as_object().cloned().unwrap_or_default();
    let (oc, nc) = (clusters(old), clusters(new));
    let mut vars: Vec<&String> = nc.keys().collect();
    vars.extend(oc.keys().filter(|k| !nc.contains_key(*k)));
    for var in vars {
        let (o, n) = (oc.get(var).cloned(), nc.get(var).cloned());
        if o != n {
            cells.push(Cell {
                old: o.unwrap_or(Value::Null),
                new: n.unwrap_or(Value::Null),
                ..stat(&format!("clusters:{var}"))
            });
        }
    }
    cells
}

/// `template` with the values filled in when they differ; `None` when they are equal (both
/// absent, or the same number).
fn number_cell(
    printed: &Printed,
    template: Cell,
    old: Option<f64>,
    new: Option<f64>,
) -> Option<Cell> {
    if old.map(f64::to_bits) == new.map(f64::to_bits) {
        return None;
    }
    let rounding = match (old, new) {
        (Some(a), Some(b)) => printed.rounding_only(a, b),
        _ => false,
    };
    Some(Cell {
        old: old.map_or(Value::Null, Value::from),
        new: new.map_or(Value::Null, Value::from),
        rounding,
        ..template
    })
}

#[derive(Debug, Clone, Copy)]
struct Coef {
    estimate: f64,
    std_error: f64,
    p_value: f64,
}

fn coefficients(v: &Value) -> Vec<(&str, Coef)> {
    let Some(list) = v["coefficients"].as_array() else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|c| {
            let num = |k: &str| c[k].as_f64().unwrap_or(f64::NAN);
            Some((
                c["term"].as_str()?,
                Coef {
                    estimate: num("estimate"),
                    std_error: num("std_error"),
                    p_value: num("p_value"),
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn model(b: f64, se: f64, p: f64, n: u64) -> Value {
        json!({"nobs": n, "r2": 0.5, "coefficients": [
            {"term": "x", "estimate": b, "std_error": se, "p_value": p}
        ]})
    }

    #[test]
    fn only_changed_cells_with_the_change_in_standard_errors() {
        let cells = compare(&model(1.0, 0.5, 0.04, 100), &model(1.25, 0.5, 0.004, 90));
        let fields: Vec<&str> = cells.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["estimate", "stars", "nobs"]);
        assert_eq!(cells[0].change_in_se, Some(0.5));
        assert_eq!(cells[1].old, json!("**"));
        assert_eq!(cells[1].new, json!("***"));
        assert!(!cells[0].rounding);
    }

    #[test]
    fn a_change_of_one_unit_in_the_last_printed_digit_is_rounding() {
        // 0.1234 prints 0.123, 0.1236 prints 0.124: one unit apart.
        let c = compare(&model(0.1234, 0.5, 0.5, 1), &model(0.1236, 0.5, 0.5, 1));
        assert!(c[0].rounding);
        // 0.1234 -> 0.1251: 0.123 -> 0.125, two units.
        let c = compare(&model(0.1234, 0.5, 0.5, 1), &model(0.1251, 0.5, 0.5, 1));
        assert!(!c[0].rounding);
        // Four digits recorded by the table: 0.1234 -> 0.1236 is two units.
        let mut new = model(0.1236, 0.5, 0.5, 1);
        new["produced_by"] = json!({"printed": {"digits": 4, "stars": []}});
        let c = compare(&model(0.1234, 0.5, 0.5, 1), &new);
        assert!(!c[0].rounding);
    }

    #[test]
    fn a_difference_test_compares_its_numbers() {
        let old =
            json!({"result": {"difference": 0.10, "p_value": 0.9461, "n_a": 357, "messages": []}});
        let new = json!({"result": {"difference": 0.20, "p_value": 0.9459, "n_a": 350, "messages": []},
                         "printed": {"digits": 3, "stars": []}});
        assert!(is_test(&old) && !is_model(&old));
        let cells = compare_any(&old, &new);
        let fields: Vec<(&str, bool)> = cells
            .iter()
            .map(|c| (c.field.as_str(), c.rounding))
            .collect();
        assert_eq!(
            fields,
            [("difference", false), ("p_value", true), ("n_a", false)]
        );
    }

    proptest::proptest! {
        /// A result compared with itself has no changed cell; swapping old and new lists the
        /// same cells with the same rounding marks.
        #[test]
        fn comparison_is_empty_on_equal_and_symmetric(
            b1 in -10.0f64..10.0, b2 in -10.0f64..10.0,
            se1 in 0.001f64..5.0, se2 in 0.001f64..5.0,
            p1 in 0.0f64..1.0, p2 in 0.0f64..1.0,
            n1 in 1u64..1000, n2 in 1u64..1000,
        ) {
            let (a, b) = (model(b1, se1, p1, n1), model(b2, se2, p2, n2));
            proptest::prop_assert!(compare(&a, &a).is_empty());
            let key = |c: &Cell| (c.term.clone(), c.field.clone(), c.rounding);
            let ab: Vec<_> = compare(&a, &b).iter().map(key).collect();
            let ba: Vec<_> = compare(&b, &a).iter().map(key).collect();
            proptest::prop_assert_eq!(ab, ba);
        }
    }

    #[test]
    fn added_and_removed_terms_are_cells_with_null() {
        let mut new = model(1.0, 0.5, 0.5, 1);
        new["coefficients"][0]["term"] = json!("z");
        let cells = compare(&model(1.0, 0.5, 0.5, 1), &new);
        let z: Vec<_> = cells
            .iter()
            .filter(|c| c.term.as_deref() == Some("z"))
            .collect();
        assert!(z.iter().all(|c| c.old.is_null() && !c.new.is_null()));
        let x: Vec<_> = cells
            .iter()
            .filter(|c| c.term.as_deref() == Some("x"))
            .collect();
        assert!(x.iter().all(|c| c.new.is_null() && !c.old.is_null()));
    }
}
