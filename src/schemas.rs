//! The one registry of the JSON Schemas shipped in `schemas/`: which file each one is and what
//! generates it (mostly the Rust types through `schemars`), so that editors can validate plan
//! files and tools can validate manifests, caches, records and bar files. A test fails when a
//! committed schema is stale or a file in `schemas/` is not registered here (regenerate with
//! `UPDATE_SCHEMAS=1 cargo test`).

use schemars::JsonSchema;

/// One shipped schema: its file name under `schemas/` and the function that renders it.
#[derive(Clone, Copy)]
pub struct ShippedSchema {
    /// File name under `schemas/`.
    pub file: &'static str,
    /// The schema as committed: pretty JSON with a final newline.
    pub render: fn() -> String,
}

/// The schema schemars generates for `T` (its own key order: `$schema`, `title`, ... first).
fn typed<T: JsonSchema>() -> String {
    pretty(&schemars::schema_for!(T))
}

/// The bar file description, written by hand next to the Parquet writer.
fn bar_file() -> String {
    pretty(&crate::store::bar_schema::description())
}

fn pretty(value: &impl serde::Serialize) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// Every schema in `schemas/`.
pub const SCHEMAS: &[ShippedSchema] = &[
    ShippedSchema {
        file: "plan.schema.json",
        render: typed::<crate::plan::file::PlanFile>,
    },
    ShippedSchema {
        file: "manifest.schema.json",
        render: typed::<crate::compile::manifest::Manifest>,
    },
    ShippedSchema {
        file: "contracts_cache.schema.json",
        render: typed::<crate::cache::ContractsCache>,
    },
    ShippedSchema {
        file: "plan_report.schema.json",
        render: typed::<crate::compile::plan_json::PlanReport>,
    },
    ShippedSchema {
        file: "negative_cache.schema.json",
        render: typed::<crate::discover::negative::NegativeCache>,
    },
    ShippedSchema {
        file: "discover_summary.schema.json",
        render: typed::<crate::discover::SymbolReport>,
    },
    ShippedSchema {
        file: "close_snapshot.schema.json",
        render: typed::<crate::inputs::closes::CloseRow>,
    },
    ShippedSchema {
        file: "summary_record.schema.json",
        render: typed::<crate::store::summary::SummaryRecord>,
    },
    ShippedSchema {
        file: "bar_file.schema.json",
        render: bar_file,
    },
];
