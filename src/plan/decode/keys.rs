//! The keys each section of a plan accepts, as the decoder reads them. The plan's JSON Schema
//! (`schemas/plan.schema.json`, from [`crate::plan::file`]) lists the same keys; a test below
//! fails when the two drift apart.

pub(super) const TOP_KEYS: &[&str] = &[
    "name",
    "scope",
    "output-root",
    "state-root",
    "time-zone",
    "end",
    "reference-snapshot",
    "universe",
    "batching",
    "gateway",
    "limits",
    "phase",
];
pub(super) const UNIVERSE_KEYS: &[&str] = &[
    "symbols",
    "symbols-file",
    "indices",
    "contracts-cache",
    "on-missing-cache",
];
pub(super) const BATCHING_KEYS: &[&str] = &["batch-count", "batch-index"];
pub(super) const GATEWAY_KEYS: &[&str] = &[
    "host",
    "port",
    "client-id",
    "connect-timeout",
    "request-timeout",
    "max-in-flight",
    "reconnect-for",
    "max-attempts",
];
pub(super) const PHASE_KEYS: &[&str] = &[
    "name",
    "what-to-show",
    "use-rth",
    "bars",
    "select",
    "depends-on",
];
pub(super) const CELL_KEYS: &[&str] = &["size", "duration"];
pub(super) const SELECT_KEYS: &[&str] = &["near-atm"];
pub(super) const NEAR_ATM_KEYS: &[&str] = &["strikes", "expiries", "reference"];

#[cfg(test)]
mod tests {
    //! The decoder's key lists against the plan's JSON Schema: a key added to
    //! [`crate::plan::file`] and not here (or here and not there) fails, and so does a section
    //! of the schema no key list covers.

    use super::*;
    use serde_json::Value;
    use std::collections::BTreeSet;

    /// Every table the decoder reads with a key list, by its place in the plan (`[]`: each item
    /// of a list), with the keys it accepts.
    const SECTIONS: &[(&str, &[&str])] = &[
        ("", TOP_KEYS),
        ("universe", UNIVERSE_KEYS),
        ("batching", BATCHING_KEYS),
        ("gateway", GATEWAY_KEYS),
        ("phase[]", PHASE_KEYS),
        ("phase[].bars[]", CELL_KEYS),
        ("phase[].select", SELECT_KEYS),
        ("phase[].select.near-atm", NEAR_ATM_KEYS),
    ];

    /// `schema` with a `$ref` followed.
    fn deref<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(r) => {
                let name = r.strip_prefix("#/$defs/").expect("local $ref");
                deref(root, &root["$defs"][name])
            }
            None => schema,
        }
    }

    /// The object schema (one with `properties`) that `schema` is or allows.
    fn object<'a>(root: &'a Value, schema: &'a Value) -> Option<&'a Value> {
        let s = deref(root, schema);
        if s.get("properties").is_some() {
            return Some(s);
        }
        ["anyOf", "oneOf"]
            .iter()
            .filter_map(|k| s[*k].as_array())
            .flatten()
            .find_map(|v| object(root, v))
    }

    /// The object schema at a section path such as `phase[].select`.
    fn section<'a>(root: &'a Value, path: &str) -> &'a Value {
        let mut cur = root;
        for seg in path.split('.').filter(|s| !s.is_empty()) {
            let (name, item) = match seg.strip_suffix("[]") {
                Some(n) => (n, true),
                None => (seg, false),
            };
            let obj = object(root, cur).unwrap_or_else(|| panic!("{path}: no object"));
            cur = &obj["properties"][name];
            assert!(!cur.is_null(), "{path}: schema has no `{name}`");
            if item {
                cur = &deref(root, cur)["items"];
            }
        }
        object(root, cur).unwrap_or_else(|| panic!("{path}: not an object in the schema"))
    }

    fn properties(obj: &Value) -> BTreeSet<&str> {
        obj["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect()
    }

    #[test]
    fn key_lists_equal_the_plan_schema() {
        let root = schemars::schema_for!(crate::plan::file::PlanFile).to_value();
        let mut covered: Vec<&Value> = Vec::new();
        for (path, keys) in SECTIONS {
            let obj = section(&root, path);
            let decoder: BTreeSet<&str> = keys.iter().copied().collect();
            assert_eq!(decoder.len(), keys.len(), "`{path}`: a key is listed twice");
            assert_eq!(
                decoder,
                properties(obj),
                "`{path}`: the decoder's keys (left) differ from plan/file.rs (right)"
            );
            covered.push(obj);
        }
        // `limits` as a table: `base` and the bar sizes.
        let limits = section(&root, "limits");
        let mut decoder: BTreeSet<&str> = crate::bars::BAR_SIZES.iter().map(|(_, s)| *s).collect();
        decoder.insert(super::super::limits::BASE_KEY);
        assert_eq!(decoder, properties(limits), "`limits`");
        covered.push(limits);
        // Every table of the schema has a key list.
        for (name, def) in root["$defs"].as_object().unwrap() {
            if def.get("properties").is_some() {
                assert!(
                    covered.iter().any(|c| std::ptr::eq(*c, def)),
                    "schema table `{name}` has no key list in plan/decode/keys.rs"
                );
            }
        }
    }
}
