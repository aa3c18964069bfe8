//! `repro status` for a built-in stage names the fields that changed, old -> new (issue 16): of
//! its spec file (the lock records the fields it was built from) and of its kind's definition
//! (compared field by field, not as two long JSON texts). Snapshots show what the user reads.

use crate::{snapshot_settings, Project};

const MODELS_SPEC: &str = "title: Baseline\ndata: data/d.csv\nname: baseline\nvcov: hc1\n\
    models:\n  - id: a\n    formula: y ~ x\n  - id: b\n    formula: y ~ x\ndigits: 3\n";

/// Data with a known linear relation, enough rows for three regressors.
fn data_csv() -> String {
    let mut s = String::from("y,x,z,g\n");
    for i in 0..40u32 {
        let x = f64::from(i % 7) / 7.0;
        let z = f64::from((i * 5) % 11) / 11.0;
        let e = f64::from((i * 13) % 17) / 170.0;
        s.push_str(&format!(
            "{:.4},{x:.4},{z:.4},{}\n",
            1.0 + 2.0 * x + z + e,
            i % 4
        ));
    }
    s
}

fn models_project() -> Project {
    let p = Project::new();
    p.write("data/d.csv", &data_csv())
        .write("stages/baseline.yaml", MODELS_SPEC)
        .write(
            "pipeline.yaml",
            "stages:\n  baseline:\n    kind: models\n    params: {spec: stages/baseline.yaml}\n",
        );
    p
}

/// A formula edited, `digits` changed and a model added: each change is named with its old and
/// new value (the status said only "dep `stages/baseline.yaml` changed").
#[test]
fn status_names_each_changed_field_of_a_spec() {
    let p = models_project();
    p.repro(&["run"]).ok();
    let edited = MODELS_SPEC
        .replace(
            "  - id: b\n    formula: y ~ x\n",
            "  - id: b\n    formula: y ~ x + z\n  - id: c\n    formula: y ~ z\n",
        )
        .replace("digits: 3", "digits: 4");
    p.write("stages/baseline.yaml", &edited);
    let out = p.repro(&["status"]);
    out.ok();
    assert!(
        out.stdout.contains(
            "`models[1].formula`: `y ~ x` -> `y ~ x + z`; \
             `models[2]` added: `{\"id\":\"c\",\"formula\":\"y ~ z\"}`; `digits`: 3 -> 4"
        ),
        "{}",
        out.stdout
    );
    snapshot_settings().bind(|| insta::assert_snapshot!("status_spec_fields", out.snapshot()));

    // The same, structured, in `--json`.
    let json: serde_json::Value =
        serde_json::from_str(&p.repro(&["status", "--json"]).ok().stdout).unwrap();
    let changes = &json["stages"][0]["changes"];
    assert_eq!(changes.as_array().map(Vec::len), Some(3), "{json}");
    assert_eq!(
        changes[1],
        serde_json::json!({"in": "stages/baseline.yaml", "field": "models[2]", "old": null,
                           "new": {"id": "c", "formula": "y ~ z"}})
    );
    assert_eq!(
        changes[2],
        serde_json::json!({"in": "stages/baseline.yaml", "field": "digits", "old": 3, "new": 4})
    );

    // A comment changes the file's hash but no field: said so, not listed as a change.
    p.repro(&["run"]).ok();
    p.write("stages/baseline.yaml", &format!("# Table 2\n{edited}"));
    let out = p.repro(&["status"]);
    assert!(
        out.stdout.contains(
            "spec `stages/baseline.yaml` changed: no field changed (comments or layout only)"
        ),
        "{}",
        out.stdout
    );
}

/// A lock written before the lock recorded spec fields still works: the change is named by file.
#[test]
fn a_lock_without_spec_fields_names_the_file() {
    let p = models_project();
    p.repro(&["run"]).ok();
    let mut lock: serde_json::Value = serde_json::from_str(&p.read("repro.lock")).unwrap();
    lock["stages"]["baseline"]
        .as_object_mut()
        .unwrap()
        .remove("spec");
    p.write("repro.lock", &serde_json::to_string_pretty(&lock).unwrap());
    p.write(
        "stages/baseline.yaml",
        &MODELS_SPEC.replace("digits: 3", "digits: 2"),
    );
    let out = p.repro(&["status"]);
    assert!(
        out.stdout.contains("dep `stages/baseline.yaml` changed"),
        "{}",
        out.stdout
    );
}

fn synth_project() -> Project {
    let p = Project::new();
    crate::data::copy_gazetteer(&p);
    p.write(
        "stages/synth.yaml",
        "seed: 7\nrecords: 20000\ncollab_first: 0.01\ncollab_last: 0.03\nout_dir: raw\n",
    )
    .write(
        "pipeline.yaml",
        "stages:\n  synth:\n    kind: synth\n    params: {spec: stages/synth.yaml}\n",
    );
    p
}

/// A kind whose definition changed without its spec file (a repro whose defaults differ wrote the
/// lock): the status listed the two 1,000-character definitions; it names the fields.
#[test]
fn a_changed_definition_is_shown_field_by_field() {
    let p = synth_project();
    p.repro(&["run"]).ok();
    // The lock as a repro that had another default for one effect and no `foreign` mess wrote it.
    let mut lock: serde_json::Value = serde_json::from_str(&p.read("repro.lock")).unwrap();
    let entry = &mut lock["stages"]["synth"];
    let kind = entry["kind"].as_str().unwrap().to_string();
    assert!(kind.len() > 900, "{kind}");
    let older = kind
        .replace("\"instrument\":0.5", "\"instrument\":0.4")
        .replace(",\"foreign\":0.01", "");
    assert_ne!(older, kind);
    entry["kind"] = older.into();
    entry["key"] = "0".repeat(64).into();
    p.write("repro.lock", &serde_json::to_string_pretty(&lock).unwrap());
    let out = p.repro(&["status"]);
    assert!(
        out.stdout.contains(
            "definition changed: `spec.mess.foreign` added: 0.01; `spec.effects.instrument`: 0.4 -> 0.5"
        ),
        "{}",
        out.stdout
    );
    snapshot_settings()
        .bind(|| insta::assert_snapshot!("status_definition_fields", out.snapshot()));
    let json: serde_json::Value =
        serde_json::from_str(&p.repro(&["status", "--json"]).ok().stdout).unwrap();
    assert_eq!(
        json["stages"][0]["changes"][1],
        serde_json::json!({"in": "definition", "field": "spec.effects.instrument", "old": 0.4, "new": 0.5})
    );
}

/// Editing the spec of a kind whose definition holds the spec names the spec's field once, not
/// also the whole definition.
#[test]
fn a_spec_edit_is_not_also_shown_as_a_definition_change() {
    let p = synth_project();
    p.repro(&["run"]).ok();
    p.write(
        "stages/synth.yaml",
        &p.read("stages/synth.yaml").replace("seed: 7", "seed: 8"),
    );
    let out = p.repro(&["status"]);
    snapshot_settings().bind(|| insta::assert_snapshot!("status_synth_spec_edit", out.snapshot()));
    assert!(
        out.stdout
            .contains("spec `stages/synth.yaml` changed: `seed`: 7 -> 8"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("definition"), "{}", out.stdout);
}
