//! The JSON Schemas shipped in `schemas/`, generated from the Rust types so that editors can
//! validate plan files and tools can validate manifests and caches; a test fails when a
//! committed schema is stale (regenerate with `UPDATE_SCHEMAS=1 cargo test`).

/// (file name under `schemas/`, schema text with a final newline), for every shipped schema.
pub fn schemas() -> Vec<(&'static str, String)> {
    let render = |s: schemars::Schema| {
        let mut text = serde_json::to_string_pretty(&s).unwrap_or_default();
        text.push('\n');
        text
    };
    vec![
        (
            "plan.schema.json",
            render(schemars::schema_for!(super::file::PlanFile)),
        ),
        (
            "manifest.schema.json",
            render(schemars::schema_for!(crate::compile::manifest::Manifest)),
        ),
        (
            "contracts_cache.schema.json",
            render(schemars::schema_for!(crate::cache::ContractsCache)),
        ),
        (
            "plan_report.schema.json",
            render(schemars::schema_for!(crate::compile::plan_json::PlanReport)),
        ),
        (
            "negative_cache.schema.json",
            render(schemars::schema_for!(
                crate::discover::negative::NegativeCache
            )),
        ),
        (
            "discover_summary.schema.json",
            render(schemars::schema_for!(crate::discover::SymbolReport)),
        ),
    ]
}
