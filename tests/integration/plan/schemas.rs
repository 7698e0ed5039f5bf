//! The committed JSON Schemas match the registry (`opt_backfill::schemas::SCHEMAS`, generated
//! from the Rust types); `UPDATE_SCHEMAS=1 cargo test` rewrites them. Every file in `schemas/`
//! is registered. The shipped plans also deserialize through the serde model the plan schema
//! comes from.

use opt_backfill::plan::file::PlanFile;
use opt_backfill::schemas::SCHEMAS;

#[test]
fn committed_schemas_are_current() {
    let dir = super::repo().join("schemas");
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for schema in SCHEMAS {
        let (name, text) = (schema.file, (schema.render)());
        let path = dir.join(name);
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "stale schemas {stale:?}: regenerate with `UPDATE_SCHEMAS=1 cargo test` and commit"
    );
}

#[test]
fn every_shipped_schema_file_is_registered() {
    let mut unregistered = Vec::new();
    for entry in std::fs::read_dir(super::repo().join("schemas")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if !SCHEMAS.iter().any(|s| s.file == name) {
            unregistered.push(name);
        }
    }
    assert!(
        unregistered.is_empty(),
        "{unregistered:?} in schemas/ but not in opt_backfill::schemas::SCHEMAS"
    );
    let mut names: Vec<&str> = SCHEMAS.iter().map(|s| s.file).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), SCHEMAS.len(), "a file is registered twice");
}

#[test]
fn shipped_plans_fit_the_schema_model() {
    for p in [
        "plans/weekend.toml",
        "plans/demo.toml",
        "examples/fixtures/small.toml",
    ] {
        let text = std::fs::read_to_string(super::repo().join(p)).unwrap();
        let _: PlanFile = toml::from_str(&text).unwrap_or_else(|e| panic!("{p}: {e}"));
    }
    for p in ["plans/weekend.yaml", "examples/fixtures/small.yaml"] {
        let text = std::fs::read_to_string(super::repo().join(p)).unwrap();
        let _: PlanFile = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{p}: {e}"));
    }
}
