//! The close snapshot row and the summary record schemas are in the schema registry (checked
//! against `schemas/` with the others by `plan::schemas::committed_schemas_are_current`), and
//! the shipped close snapshot reads.

#[test]
fn close_snapshot_and_summary_record_schemas_are_registered() {
    for name in ["close_snapshot.schema.json", "summary_record.schema.json"] {
        assert!(
            opt_backfill::schemas::SCHEMAS
                .iter()
                .any(|s| s.file == name),
            "{name} is not in the schema registry"
        );
    }
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
