//! The close snapshot row and the summary record schemas in `schemas/` match the Rust types;
//! `UPDATE_SCHEMAS=1 cargo test` rewrites them.

fn render(s: schemars::Schema) -> String {
    let mut text = serde_json::to_string_pretty(&s).unwrap();
    text.push('\n');
    text
}

#[test]
fn close_snapshot_and_summary_record_schemas_are_current() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (name, text) in [
        (
            "close_snapshot.schema.json",
            render(schemars::schema_for!(
                opt_backfill::inputs::closes::CloseRow
            )),
        ),
        (
            "summary_record.schema.json",
            render(schemars::schema_for!(
                opt_backfill::store::summary::SummaryRecord
            )),
        ),
    ] {
        let path = dir.join(name);
        if update {
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
fn shipped_close_snapshot_reads() {
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/fixtures/closes.csv");
    let snap = opt_backfill::exec::closes::read_snapshot(
        &path,
        chrono::NaiveDate::from_ymd_opt(2026, 11, 27).unwrap(),
    )
    .unwrap();
    assert!(!snap.is_empty());
}
