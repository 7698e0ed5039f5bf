//! Decode and validate a located document tree into a [`ValidatedPlan`], collecting every error.
//!
//! One walker for both formats: each key is looked up by its kebab-case name, every value is
//! checked where it is read, and anything left over is an unknown key (with a did-you-mean). All
//! errors carry the location of the offending value or key and its key path.

use super::error::{closest, PlanError};
use super::node::{Key, Loc, Node, Value};
use super::types::*;
use super::WHAT_TO_SHOW;
use crate::bars::{BarSize, Duration, DurationUnit};
use crate::cache::{check_symbol, CloseSource};
use chrono::NaiveDate;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

#[cfg(test)]
mod end_tests;
mod indices;
mod limits;
mod outputs;

/// Collected errors of one load.
pub(crate) struct Ctx<'a> {
    file: &'a Path,
    pub(crate) errors: Vec<PlanError>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(file: &'a Path) -> Self {
        Ctx {
            file,
            errors: Vec::new(),
        }
    }

    fn err(&mut self, loc: Loc, path: &str, msg: impl Into<String>) {
        self.errors.push(PlanError::new(self.file, loc, path, msg));
    }

    fn err_hint(&mut self, loc: Loc, path: &str, msg: impl Into<String>, hint: impl Into<String>) {
        self.errors
            .push(PlanError::new(self.file, loc, path, msg).with_hint(hint));
    }

    fn expected(&mut self, node: &Node, path: &str, what: &str) {
        self.err(
            node.loc,
            path,
            format!("expected {what}, found {}", node.value.type_name()),
        );
    }
}

/// `parent.key`, or `parent["key with spaces"]`.
fn child(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{key:?}]"),
    }
}

fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// A mapping being read: tracks which keys were used so the rest can be reported as unknown.
struct Table<'n> {
    entries: &'n [(Key, Node)],
    loc: Loc,
    path: String,
    used: Vec<bool>,
    known: &'static [&'static str],
}

impl<'n> Table<'n> {
    fn new(
        ctx: &mut Ctx<'_>,
        node: &'n Node,
        path: &str,
        known: &'static [&'static str],
    ) -> Option<Self> {
        match &node.value {
            Value::Map(entries) => {
                let mut seen: HashMap<&str, Loc> = HashMap::new();
                for (k, _) in entries {
                    if let Some(first) = seen.insert(&k.name, k.loc) {
                        ctx.err(
                            k.loc,
                            &child(path, &k.name),
                            format!(
                                "duplicate key (first set at line {}, column {})",
                                first.line, first.col
                            ),
                        );
                    }
                }
                Some(Table {
                    entries,
                    loc: node.loc,
                    path: path.to_string(),
                    used: vec![false; entries.len()],
                    known,
                })
            }
            _ => {
                ctx.expected(node, path, "a table");
                None
            }
        }
    }

    /// The value of `key`, marked as used. YAML `key: ~` counts as absent.
    fn get(&mut self, key: &str) -> Option<&'n Node> {
        let i = self.entries.iter().position(|(k, _)| k.name == key)?;
        self.used[i] = true;
        let node = &self.entries[i].1;
        (node.value != Value::Null).then_some(node)
    }

    fn path(&self, key: &str) -> String {
        child(&self.path, key)
    }

    fn finish(self, ctx: &mut Ctx<'_>) {
        for ((k, _), used) in self.entries.iter().zip(&self.used) {
            if *used {
                continue;
            }
            let path = child(&self.path, &k.name);
            let msg = format!("unknown key `{}`", k.name);
            if !self.path.is_empty() && TOP_KEYS.contains(&k.name.as_str()) {
                // TOML: a top-level key written after a `[table]` header lands in that table.
                ctx.err_hint(
                    k.loc,
                    &path,
                    msg,
                    format!("`{}` is a top-level key: in TOML, write it before the first `[table]` header", k.name),
                );
                continue;
            }
            match closest(&k.name, self.known.iter().copied()) {
                Some(c) => ctx.err_hint(k.loc, &path, msg, format!("did you mean `{c}`?")),
                None => ctx.err_hint(
                    k.loc,
                    &path,
                    msg,
                    format!("known keys here: {}", self.known.join(", ")),
                ),
            }
        }
    }

    fn required(&mut self, ctx: &mut Ctx<'_>, key: &str) -> Option<&'n Node> {
        let n = self.get(key);
        if n.is_none() {
            let what = if self.path.is_empty() {
                "the plan".to_string()
            } else {
                format!("`{}`", self.path)
            };
            ctx.err(
                self.loc,
                &self.path(key),
                format!("missing required key `{key}` in {what}"),
            );
        }
        n
    }
}

fn as_str<'n>(ctx: &mut Ctx<'_>, node: &'n Node, path: &str) -> Option<&'n str> {
    match &node.value {
        Value::Str(s) => Some(s),
        _ => {
            ctx.expected(node, path, "a string");
            None
        }
    }
}

fn as_int(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<i64> {
    match &node.value {
        Value::Int(i) => Some(*i),
        _ => {
            ctx.expected(node, path, "an integer");
            None
        }
    }
}

fn as_bool(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<bool> {
    match &node.value {
        Value::Bool(b) => Some(*b),
        _ => {
            ctx.expected(node, path, "a boolean (true or false)");
            None
        }
    }
}

fn as_seq<'n>(ctx: &mut Ctx<'_>, node: &'n Node, path: &str) -> Option<&'n [Node]> {
    match &node.value {
        Value::Seq(items) => Some(items),
        _ => {
            ctx.expected(node, path, "a list");
            None
        }
    }
}

/// An integer in `lo..=hi`, with the range in the message.
fn int_in(ctx: &mut Ctx<'_>, node: &Node, path: &str, lo: i64, hi: i64) -> Option<i64> {
    let v = as_int(ctx, node, path)?;
    if v < lo || v > hi {
        ctx.err_hint(
            node.loc,
            path,
            format!("{v} is out of range"),
            format!("allowed: {lo}..={hi}"),
        );
        return None;
    }
    Some(v)
}

/// A name used as a path component (plan name, scope, phase name).
fn path_name(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<String> {
    let s = as_str(ctx, node, path)?;
    if let Err(e) = check_symbol(s) {
        ctx.err_hint(
            node.loc,
            path,
            format!("`{s}` is not allowed: {}", e.why),
            "it becomes a file or directory name: use letters, digits, `.`, `-`, `_`",
        );
        return None;
    }
    if s.contains(' ') {
        ctx.err_hint(
            node.loc,
            path,
            format!("`{s}` contains a space"),
            "it becomes a file or directory name: use letters, digits, `.`, `-`, `_`",
        );
        return None;
    }
    Some(s.to_string())
}

/// A human duration in milliseconds (rules in [`crate::inputs::duration`]).
fn human_duration(ctx: &mut Ctx<'_>, node: &Node, path: &str, min_ms: u64) -> Option<u64> {
    let s = as_str(ctx, node, path)?;
    let ms = crate::inputs::duration::parse(s)
        .ok()
        .and_then(|d| u64::try_from(d.as_millis()).ok());
    match ms {
        Some(ms) if ms >= min_ms => Some(ms),
        Some(_) => {
            ctx.err_hint(
                node.loc,
                path,
                format!("`{s}` is too short"),
                format!("at least {} ms", min_ms),
            );
            None
        }
        None => {
            ctx.err_hint(
                node.loc,
                path,
                format!("bad duration `{s}`"),
                crate::inputs::duration::HINT,
            );
            None
        }
    }
}

fn bar_size(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<BarSize> {
    let s = as_str(ctx, node, path)?;
    match s.parse::<BarSize>() {
        Ok(b) => Some(b),
        Err(e) => {
            let hint = match BarSize::did_you_mean(s) {
                Some(m) => format!("did you mean `{m}`? legal: {}", BarSize::legal_list()),
                None => format!("legal: {}", BarSize::legal_list()),
            };
            ctx.err_hint(node.loc, path, e.to_string(), hint);
            None
        }
    }
}

fn duration(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<Duration> {
    let s = as_str(ctx, node, path)?;
    match s.parse::<Duration>() {
        Ok(d) if d.approx_seconds() > MAX_DURATION_SECS => {
            ctx.err_hint(
                node.loc,
                path,
                format!("duration `{s}` reaches further back than the trading calendar"),
                format!(
                    "the calendar covers {}-{}: at most {} Y",
                    crate::calendar::MIN_YEAR,
                    crate::calendar::MAX_YEAR,
                    crate::calendar::MAX_YEAR - crate::calendar::MIN_YEAR + 1
                ),
            );
            None
        }
        Ok(d) => Some(d),
        Err(_) => {
            let mut hint = "grammar `N S|D|W|M|Y` with N a positive integer and one space, e.g. `6 M`, `1 D`, `3600 S`".to_string();
            let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
            if let Some(split) = compact.find(|c: char| c.is_ascii_alphabetic()) {
                let guess = format!("{} {}", &compact[..split], compact[split..].to_uppercase());
                if guess.parse::<Duration>().is_ok() {
                    hint = format!("did you mean `{guess}`? {hint}");
                }
            }
            ctx.err_hint(node.loc, path, format!("bad duration `{s}`"), hint);
            None
        }
    }
}

/// A resolved relative path: against `base` when relative.
fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

const TOP_KEYS: &[&str] = &[
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
const UNIVERSE_KEYS: &[&str] = &[
    "symbols",
    "symbols-file",
    "indices",
    "contracts-cache",
    "on-missing-cache",
];
const BATCHING_KEYS: &[&str] = &["batch-count", "batch-index"];
const GATEWAY_KEYS: &[&str] = &[
    "host",
    "port",
    "client-id",
    "connect-timeout",
    "request-timeout",
    "max-in-flight",
    "reconnect-for",
    "max-attempts",
];
const PHASE_KEYS: &[&str] = &[
    "name",
    "what-to-show",
    "use-rth",
    "bars",
    "select",
    "depends-on",
];
const CELL_KEYS: &[&str] = &["size", "duration"];
const SELECT_KEYS: &[&str] = &["near-atm"];
const NEAR_ATM_KEYS: &[&str] = &["strikes", "expiries", "reference"];

/// Largest K (strikes per right and expiry) a near-ATM phase may ask for.
pub const MAX_STRIKES: i64 = 50;
/// Largest E (expiries) a near-ATM phase may ask for.
pub const MAX_EXPIRIES: i64 = 12;
/// Longest duration a plan may name: the span of the trading calendar. Longer ones could only
/// fail later, and would overflow date arithmetic.
pub const MAX_DURATION_SECS: i64 =
    (crate::calendar::MAX_YEAR - crate::calendar::MIN_YEAR + 1) as i64 * 366 * 86_400;
/// Largest batch count.
pub const MAX_BATCH_COUNT: i64 = 10_000;

/// Decode the whole plan. Returns `None` when any error was recorded in `ctx`.
pub(crate) fn decode_plan(
    ctx: &mut Ctx<'_>,
    root: &Node,
    plan_path: &Path,
) -> Option<ValidatedPlan> {
    let plan_dir = plan_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut top = Table::new(ctx, root, "", TOP_KEYS)?;

    let name = top
        .required(ctx, "name")
        .and_then(|n| path_name(ctx, n, "name"));
    let scope = top
        .required(ctx, "scope")
        .and_then(|n| path_name(ctx, n, "scope"));
    let mut root_dir = |ctx: &mut Ctx<'_>, key: &str, default: &str| -> Option<PathBuf> {
        match top.get(key) {
            None => Some(PathBuf::from(default)),
            Some(n) => {
                let s = as_str(ctx, n, key)?;
                if s.trim().is_empty() {
                    ctx.err(n.loc, key, "must not be empty");
                    return None;
                }
                Some(PathBuf::from(s))
            }
        }
    };
    let output_root = root_dir(ctx, "output-root", "data_test");
    let state_root = root_dir(ctx, "state-root", "state");

    let time_zone = match top.get("time-zone") {
        None => Some(chrono_tz::America::New_York),
        Some(n) => as_str(ctx, n, "time-zone").and_then(|s| match s.parse::<chrono_tz::Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                let hint = match closest(s, chrono_tz::TZ_VARIANTS.iter().map(|t| t.name())) {
                    Some(c) => format!("did you mean `{c}`? an IANA name"),
                    None => "an IANA name such as `America/New_York`".to_string(),
                };
                ctx.err_hint(n.loc, "time-zone", format!("unknown time zone `{s}`"), hint);
                None
            }
        }),
    };

    let end = top.required(ctx, "end").and_then(|n| end_spec(ctx, n));

    let mut reference_closes = BTreeMap::new();
    let reference_snapshot = match top.get("reference-snapshot") {
        None => Some(None),
        Some(n) => as_str(ctx, n, "reference-snapshot").and_then(|s| {
            let p = resolve(&plan_dir, s);
            reference_closes = input_file(
                ctx,
                n.loc,
                "reference-snapshot",
                &p,
                crate::inputs::closes::read,
            )?;
            Some(Some(p))
        }),
    };
    let has_snapshot = matches!(reference_snapshot, Some(Some(_)));

    let universe = top
        .required(ctx, "universe")
        .and_then(|n| universe(ctx, n, &plan_dir, state_root.as_deref()));

    let batching = match top.get("batching") {
        None => Some(Batching::default()),
        Some(n) => batching(ctx, n),
    };
    let gateway = match top.get("gateway") {
        None => Some(GatewaySettings::default()),
        Some(n) => gateway(ctx, n),
    };
    let limits = match top.get("limits") {
        None => Some(PlanLimits::default()),
        Some(n) => limits::limits(ctx, n),
    };
    let phases = top
        .required(ctx, "phase")
        .and_then(|n| phases(ctx, n, has_snapshot));
    top.finish(ctx);

    if !ctx.errors.is_empty() {
        return None;
    }
    Some(ValidatedPlan {
        path: plan_path.to_path_buf(),
        name: name?,
        scope: scope?,
        output_root: output_root?,
        state_root: state_root?,
        time_zone: time_zone?,
        end: end?,
        reference_snapshot: reference_snapshot?,
        reference_closes,
        universe: universe?,
        batching: batching?,
        gateway: gateway?,
        limits: limits?,
        phases: phases?,
    })
}

fn end_spec(ctx: &mut Ctx<'_>, n: &Node) -> Option<EndSpec> {
    let s = as_str(ctx, n, "end")?;
    if s == "last-session" {
        return Some(EndSpec::LastSession);
    }
    // A date followed by a time: an instant.
    if s.len() > 10 && matches!(s.as_bytes()[10], b'T' | b't' | b' ') {
        return match end_instant(s) {
            Ok(t) => {
                match crate::calendar::session_on_or_before(crate::calendar::to_ny(t).date_naive())
                {
                    Ok(_) => Some(EndSpec::Instant(t)),
                    Err(e) => {
                        ctx.err(n.loc, "end", e.to_string());
                        None
                    }
                }
            }
            Err(why) => {
                ctx.err_hint(n.loc, "end", format!("bad end `{s}`: {why}"), END_HINT);
                None
            }
        };
    }
    match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        Ok(d) => match crate::calendar::session_on_or_before(d) {
            Ok(_) => Some(EndSpec::Date(d)),
            Err(e) => {
                ctx.err(n.loc, "end", e.to_string());
                None
            }
        },
        Err(_) => {
            ctx.err_hint(n.loc, "end", format!("bad end `{s}`"), END_HINT);
            None
        }
    }
}

const END_HINT: &str = "`YYYY-MM-DD` (that session's close), `last-session`, or an instant: `2026-12-01T11:00:00-05:00` or `2026-12-01T11:00 America/New_York`";

/// An explicit end instant: RFC 3339 with an offset (`2026-12-01T11:00:00-05:00`, `...Z`), or
/// a local date-time (`T` or a space, seconds optional) followed by an IANA time zone.
fn end_instant(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    use chrono::TimeZone;
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let (local, zone) = match s.rsplit_once(' ') {
        Some((l, z)) if z.contains('/') || z == "UTC" => (l.trim(), z),
        _ => {
            return Err(
                "expected an offset (`-05:00`, `Z`) or a time zone name after the time".into(),
            )
        }
    };
    let local = [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| chrono::NaiveDateTime::parse_from_str(local, f).ok())
    .ok_or_else(|| format!("`{local}` is not a `YYYY-MM-DDTHH:MM[:SS]` date-time"))?;
    let tz: chrono_tz::Tz = zone
        .parse()
        .map_err(|_| format!("unknown time zone `{zone}` (e.g. `America/New_York`)"))?;
    match tz.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) => Ok(t.with_timezone(&chrono::Utc)),
        chrono::LocalResult::Ambiguous(..) => Err(format!(
            "{local} happens twice in {zone} (the clocks go back): give the offset instead"
        )),
        chrono::LocalResult::None => Err(format!(
            "{local} does not exist in {zone} (the clocks go forward)"
        )),
    }
}

fn universe(
    ctx: &mut Ctx<'_>,
    node: &Node,
    plan_dir: &Path,
    state_root: Option<&Path>,
) -> Option<Universe> {
    let mut t = Table::new(ctx, node, "universe", UNIVERSE_KEYS)?;
    let inline = t.get("symbols");
    let file = t.get("symbols-file");
    let mut symbols_file = None;
    let symbols = match (inline, file) {
        (Some(_), Some(f)) => {
            ctx.err_hint(
                f.loc,
                "universe.symbols-file",
                "`symbols` and `symbols-file` are both set",
                "keep one of them",
            );
            None
        }
        (None, None) => {
            ctx.err_hint(
                t.loc,
                "universe",
                "no symbols",
                "set `symbols = [\"AAPL\", ...]` or `symbols-file = \"universe.csv\"`",
            );
            None
        }
        (Some(list), None) => {
            let items = as_seq(ctx, list, "universe.symbols")?;
            let mut out = Vec::new();
            let mut seen = HashMap::new();
            let before = ctx.errors.len();
            for (i, item) in items.iter().enumerate() {
                let path = index("universe.symbols", i);
                let Some(s) = as_str(ctx, item, &path) else {
                    continue;
                };
                check_universe_symbol(ctx, s, item.loc, &path, &mut seen, i);
                out.push(s.to_string());
            }
            if items.is_empty() {
                ctx.err(list.loc, "universe.symbols", "the list is empty");
            }
            (ctx.errors.len() == before).then_some(out)
        }
        (None, Some(f)) => {
            let s = as_str(ctx, f, "universe.symbols-file")?;
            let p = resolve(plan_dir, s);
            symbols_file = Some(p.clone());
            input_file(
                ctx,
                f.loc,
                "universe.symbols-file",
                &p,
                crate::inputs::symbols::read,
            )
        }
    };
    let contracts_cache = match t.get("contracts-cache") {
        None => Some(
            state_root
                .unwrap_or(Path::new("state"))
                .join("contracts_cache"),
        ),
        Some(n) => as_str(ctx, n, "universe.contracts-cache").map(PathBuf::from),
    };
    let on_missing_cache = match t.get("on-missing-cache") {
        None => Some(OnMissingCache::Skip),
        Some(n) => as_str(ctx, n, "universe.on-missing-cache").and_then(|s| match s {
            "skip" => Some(OnMissingCache::Skip),
            "fail" => Some(OnMissingCache::Fail),
            other => {
                ctx.err_hint(
                    n.loc,
                    "universe.on-missing-cache",
                    format!("unknown value `{other}`"),
                    "`skip` (record the symbol and go on) or `fail`",
                );
                None
            }
        }),
    };
    let indices = t
        .get("indices")
        .map(|n| indices::decode(ctx, n, symbols.as_deref()));
    t.finish(ctx);
    Some(Universe {
        indices: indices.unwrap_or(Some(Default::default()))?,
        symbols: symbols?,
        symbols_file,
        contracts_cache: contracts_cache?,
        on_missing_cache: on_missing_cache?,
    })
}

fn check_universe_symbol(
    ctx: &mut Ctx<'_>,
    s: &str,
    loc: Loc,
    path: &str,
    seen: &mut HashMap<String, usize>,
    i: usize,
) {
    if let Err(e) = check_symbol(s) {
        ctx.err_hint(
            loc,
            path,
            e.to_string(),
            "letters, digits, `.`, `-`, `_` and inner spaces only (e.g. `BRK B`)",
        );
    } else if let Some(first) = seen.insert(s.to_string(), i) {
        ctx.err(
            loc,
            path,
            format!("duplicate symbol `{s}` (first at entry {first})"),
        );
    }
}

/// A file the plan points to, read through [`crate::inputs`]: a file that cannot be read is
/// reported at the plan key, a bad line at its place in the file (under the key's path).
fn input_file<T>(
    ctx: &mut Ctx<'_>,
    key_loc: Loc,
    key: &str,
    p: &Path,
    read: impl FnOnce(&Path) -> Result<T, crate::inputs::InputError>,
) -> Option<T> {
    match read(p) {
        Ok(v) => Some(v),
        Err(crate::inputs::InputError::Read { source, .. }) => {
            ctx.err_hint(
                key_loc,
                key,
                format!("cannot read `{}`: {source}", p.display()),
                "the path is relative to the plan file",
            );
            None
        }
        Err(crate::inputs::InputError::Invalid(errors)) => {
            for e in errors {
                let loc = Loc {
                    line: e.line,
                    col: e.col,
                };
                let mut err = PlanError::new(&e.file, loc, key, e.message);
                if let Some(h) = e.hint {
                    err = err.with_hint(h);
                }
                ctx.errors.push(err);
            }
            None
        }
    }
}

fn batching(ctx: &mut Ctx<'_>, node: &Node) -> Option<Batching> {
    let mut t = Table::new(ctx, node, "batching", BATCHING_KEYS)?;
    let count = t
        .required(ctx, "batch-count")
        .and_then(|n| int_in(ctx, n, "batching.batch-count", 1, MAX_BATCH_COUNT));
    let index_node = t.required(ctx, "batch-index");
    let idx = index_node.and_then(|n| int_in(ctx, n, "batching.batch-index", 0, MAX_BATCH_COUNT));
    t.finish(ctx);
    let (count, idx) = (count?, idx?);
    if idx >= count {
        ctx.err_hint(
            index_node?.loc,
            "batching.batch-index",
            format!("batch index {idx} is out of range for batch-count {count}"),
            format!("allowed: 0..={}", count - 1),
        );
        return None;
    }
    Some(Batching {
        count: u32::try_from(count).ok()?,
        index: u32::try_from(idx).ok()?,
    })
}

fn gateway(ctx: &mut Ctx<'_>, node: &Node) -> Option<GatewaySettings> {
    let mut t = Table::new(ctx, node, "gateway", GATEWAY_KEYS)?;
    let mut g = GatewaySettings::default();
    let before = ctx.errors.len();
    if let Some(n) = t.get("host") {
        if let Some(s) = as_str(ctx, n, "gateway.host") {
            if s.trim().is_empty() || s.contains(char::is_whitespace) {
                ctx.err(n.loc, "gateway.host", format!("bad host `{s}`"));
            }
            g.host = s.to_string();
        }
    }
    if let Some(n) = t.get("port") {
        if let Some(v) = int_in(ctx, n, "gateway.port", 1, 65535) {
            g.port = v as u16;
        }
    }
    if let Some(n) = t.get("client-id") {
        if let Some(v) = int_in(ctx, n, "gateway.client-id", 0, i64::from(i32::MAX)) {
            g.client_id = v as i32;
        }
    }
    if let Some(n) = t.get("connect-timeout") {
        if let Some(v) = human_duration(ctx, n, "gateway.connect-timeout", 1) {
            g.connect_timeout_ms = v;
        }
    }
    if let Some(n) = t.get("request-timeout") {
        if let Some(v) = human_duration(ctx, n, "gateway.request-timeout", 1) {
            g.request_timeout_ms = v;
        }
    }
    if let Some(n) = t.get("max-in-flight") {
        if let Some(v) = int_in(ctx, n, "gateway.max-in-flight", 1, 50) {
            g.max_in_flight = v as u32;
        }
    }
    if let Some(n) = t.get("reconnect-for") {
        if let Some(v) = human_duration(ctx, n, "gateway.reconnect-for", 0) {
            g.reconnect_for_ms = v;
        }
    }
    if let Some(n) = t.get("max-attempts") {
        if let Some(v) = int_in(ctx, n, "gateway.max-attempts", 1, 100) {
            g.max_attempts = v as u32;
        }
    }
    t.finish(ctx);
    (ctx.errors.len() == before).then_some(g)
}

fn phases(ctx: &mut Ctx<'_>, node: &Node, has_snapshot: bool) -> Option<Vec<Phase>> {
    let items = as_seq(ctx, node, "phase")?;
    if items.is_empty() {
        ctx.err_hint(
            node.loc,
            "phase",
            "no phases",
            "add at least one `[[phase]]`",
        );
        return None;
    }
    let before = ctx.errors.len();
    let mut out = Vec::new();
    // (name, loc of each depends-on entry) for the cross-phase checks.
    let mut deps_locs: Vec<Vec<(String, Loc)>> = Vec::new();
    let mut name_locs: Vec<Option<Loc>> = Vec::new();
    let mut raw_names: Vec<Option<String>> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = index("phase", i);
        let (p, deps, name_loc, raw_name) = phase(ctx, item, &path, has_snapshot);
        raw_names.push(raw_name);
        deps_locs.push(deps);
        name_locs.push(name_loc);
        out.push(p);
    }

    // Unique names.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, name) in raw_names.iter().enumerate() {
        if let (Some(name), Some(loc)) = (name, name_locs[i]) {
            if let Some(first) = seen.insert(name.clone(), i) {
                ctx.err(
                    loc,
                    &child(&index("phase", i), "name"),
                    format!("duplicate phase name `{name}` (also phase[{first}])"),
                );
            }
        }
    }
    // Names and dependencies as written, even for phases with other errors, so that every
    // depends-on and cycle problem is reported in the same pass.
    let names: Vec<String> = raw_names.iter().flatten().cloned().collect();
    // depends-on targets exist.
    for (i, deps) in deps_locs.iter().enumerate() {
        let own = raw_names[i].as_deref();
        let mut dup = HashSet::new();
        for (j, (d, loc)) in deps.iter().enumerate() {
            let path = index(&child(&index("phase", i), "depends-on"), j);
            if Some(d.as_str()) == own {
                ctx.err(*loc, &path, format!("phase `{d}` depends on itself"));
            } else if !names.contains(d) {
                let hint = match closest(d, names.iter().map(String::as_str)) {
                    Some(c) => format!("did you mean `{c}`? phases: {}", names.join(", ")),
                    None => format!("phases: {}", names.join(", ")),
                };
                ctx.err_hint(
                    *loc,
                    &path,
                    format!("unknown phase `{d}` in depends-on"),
                    hint,
                );
            } else if !dup.insert(d.clone()) {
                ctx.err(*loc, &path, format!("`{d}` is listed twice"));
            }
        }
    }
    // Cycles of two or more phases (self-dependencies were reported above).
    let graph: Vec<(String, Vec<String>)> = raw_names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                n.clone().unwrap_or_else(|| format!("phase[{i}]")),
                deps_locs[i].iter().map(|(d, _)| d.clone()).collect(),
            )
        })
        .collect();
    for cycle in super::find_cycles(&graph) {
        if cycle.len() < 2 {
            continue;
        }
        // Report at the first member's depends-on entry naming the next member.
        let first = &cycle[0];
        let next = &cycle[1];
        let i = graph.iter().position(|(n, _)| n == first).unwrap_or(0);
        let j = deps_locs[i]
            .iter()
            .position(|(d, _)| d == next)
            .unwrap_or(0);
        let loc = deps_locs[i].get(j).map(|(_, l)| *l).unwrap_or(node.loc);
        let mut members = cycle.clone();
        members.push(first.clone());
        ctx.err_hint(
            loc,
            &index(&child(&index("phase", i), "depends-on"), j),
            format!("dependency cycle: {}", members.join(" -> ")),
            "remove one of these depends-on entries",
        );
    }
    outputs::check_use_rth(ctx, items, &out);
    if ctx.errors.len() != before {
        return None;
    }
    let out: Vec<Phase> = out.into_iter().flatten().collect();
    (ctx.errors.len() == before).then_some(out)
}

#[allow(clippy::type_complexity)]
fn phase(
    ctx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
    has_snapshot: bool,
) -> (
    Option<Phase>,
    Vec<(String, Loc)>,
    Option<Loc>,
    Option<String>,
) {
    let Some(mut t) = Table::new(ctx, node, path, PHASE_KEYS) else {
        return (None, Vec::new(), None, None);
    };
    let before = ctx.errors.len();
    let name_node = t.required(ctx, "name");
    let name = name_node.and_then(|n| path_name(ctx, n, &t.path("name")));
    let what = match t.get("what-to-show") {
        None => Some("TRADES".to_string()),
        Some(n) => as_str(ctx, n, &t.path("what-to-show")).and_then(|s| {
            if WHAT_TO_SHOW.contains(&s) {
                Some(s.to_string())
            } else {
                let hint = match closest(s, WHAT_TO_SHOW.iter().copied()) {
                    Some(c) => format!("did you mean `{c}`? legal: {}", WHAT_TO_SHOW.join(", ")),
                    None => format!("legal: {}", WHAT_TO_SHOW.join(", ")),
                };
                ctx.err_hint(
                    n.loc,
                    &t.path("what-to-show"),
                    format!("unknown what-to-show `{s}`"),
                    hint,
                );
                None
            }
        }),
    };
    let use_rth = match t.get("use-rth") {
        None => Some(true),
        Some(n) => as_bool(ctx, n, &t.path("use-rth")),
    };
    let bars = t
        .required(ctx, "bars")
        .and_then(|n| bar_cells(ctx, n, &t.path("bars"), use_rth.unwrap_or(true)));
    let select = match t.get("select") {
        None => Some(Select::All),
        Some(n) => select(ctx, n, &t.path("select"), has_snapshot),
    };
    let mut deps = Vec::new();
    if let Some(n) = t.get("depends-on") {
        let dpath = t.path("depends-on");
        if let Some(items) = as_seq(ctx, n, &dpath) {
            for (j, item) in items.iter().enumerate() {
                if let Some(s) = as_str(ctx, item, &index(&dpath, j)) {
                    deps.push((s.to_string(), item.loc));
                }
            }
        }
    }
    t.finish(ctx);
    let name_loc = name_node.map(|n| n.loc);
    let raw_name = name.clone();
    if ctx.errors.len() != before {
        return (None, deps, name_loc, raw_name);
    }
    let phase = (|| {
        Some(Phase {
            name: name?,
            what: what?,
            use_rth: use_rth?,
            bars: bars?,
            select: select?,
            depends_on: deps.iter().map(|(d, _)| d.clone()).collect(),
        })
    })();
    (phase, deps, name_loc, raw_name)
}

fn bar_cells(ctx: &mut Ctx<'_>, node: &Node, path: &str, use_rth: bool) -> Option<Vec<BarCell>> {
    let items = as_seq(ctx, node, path)?;
    if items.is_empty() {
        ctx.err_hint(
            node.loc,
            path,
            "no bar cells",
            "e.g. `bars = [{ size = \"8 hours\", duration = \"6 M\" }]`",
        );
        return None;
    }
    let before = ctx.errors.len();
    let mut out = Vec::new();
    let mut seen = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let cpath = index(path, i);
        let Some(mut t) = Table::new(ctx, item, &cpath, CELL_KEYS) else {
            continue;
        };
        let size_node = t.required(ctx, "size");
        let size = size_node.and_then(|n| bar_size(ctx, n, &t.path("size")));
        let dur = t
            .required(ctx, "duration")
            .and_then(|n| duration(ctx, n, &t.path("duration")));
        t.finish(ctx);
        let (Some(size), Some(dur), Some(size_node)) = (size, dur, size_node) else {
            continue;
        };
        if size.is_daily_or_longer() {
            ctx.err_hint(
                size_node.loc,
                &child(&cpath, "size"),
                format!("options have no `{size}` bars"),
                "IB answers 162 `No data of type EODChart is available` for options: use `8 hours` bars (one per session)",
            );
            continue;
        }
        if size.strict_max_duration().unit == DurationUnit::Seconds
            && !use_rth
            && dur.approx_seconds() > size.strict_max_duration().approx_seconds()
        {
            ctx.err_hint(
                size_node.loc,
                &child(&cpath, "size"),
                format!("`{size}` x `{dur}` must be split into windows of seconds, which is only planned for regular trading hours"),
                "set `use-rth = true` for this phase, or shorten the duration",
            );
            continue;
        }
        let cell = BarCell {
            size,
            duration: dur,
        };
        if let Some(first) = seen.insert(cell, i) {
            ctx.err(
                item.loc,
                &cpath,
                format!("duplicate bar cell `{size}` x `{dur}` (also {path}[{first}])"),
            );
            continue;
        }
        out.push(cell);
    }
    (ctx.errors.len() == before).then_some(out)
}

fn select(ctx: &mut Ctx<'_>, node: &Node, path: &str, has_snapshot: bool) -> Option<Select> {
    if let Value::Str(s) = &node.value {
        if s == "all" {
            return Some(Select::All);
        }
        let hint = if s == "near-atm" {
            "near-atm needs its parameters: `select = { near-atm = { strikes = 10, expiries = 4 } }`"
        } else {
            "`all`, or `{ near-atm = { strikes = K, expiries = E, reference = [...] } }`"
        };
        ctx.err_hint(node.loc, path, format!("unknown selection `{s}`"), hint);
        return None;
    }
    let mut t = Table::new(ctx, node, path, SELECT_KEYS)?;
    let na = t.get("near-atm");
    t.finish(ctx);
    let Some(na) = na else {
        ctx.err_hint(
            node.loc,
            path,
            "empty selection",
            "`all`, or `{ near-atm = { strikes = K, expiries = E } }`",
        );
        return None;
    };
    let npath = child(path, "near-atm");
    let mut t = Table::new(ctx, na, &npath, NEAR_ATM_KEYS)?;
    let strikes = t
        .required(ctx, "strikes")
        .and_then(|n| int_in(ctx, n, &child(&npath, "strikes"), 1, MAX_STRIKES));
    let expiries = t
        .required(ctx, "expiries")
        .and_then(|n| int_in(ctx, n, &child(&npath, "expiries"), 1, MAX_EXPIRIES));
    let reference = match t.get("reference") {
        None => Some(if has_snapshot {
            vec![CloseSource::Snapshot, CloseSource::Cache]
        } else {
            vec![CloseSource::Cache]
        }),
        Some(n) => reference_sources(ctx, n, &child(&npath, "reference"), has_snapshot),
    };
    t.finish(ctx);
    Some(Select::NearAtm(NearAtmRule {
        strikes: u32::try_from(strikes?).ok()?,
        expiries: u32::try_from(expiries?).ok()?,
        reference: reference?,
    }))
}

fn reference_sources(
    ctx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
    has_snapshot: bool,
) -> Option<Vec<CloseSource>> {
    let items = as_seq(ctx, node, path)?;
    if items.is_empty() {
        ctx.err_hint(
            node.loc,
            path,
            "no reference sources",
            "some of `snapshot`, `cache`, `gateway`, in the order to try",
        );
        return None;
    }
    let before = ctx.errors.len();
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let ipath = index(path, i);
        let Some(s) = as_str(ctx, item, &ipath) else {
            continue;
        };
        let src = match s {
            "snapshot" => CloseSource::Snapshot,
            "cache" => CloseSource::Cache,
            "gateway" => CloseSource::Gateway,
            other => {
                let hint = match closest(other, ["snapshot", "cache", "gateway"]) {
                    Some(c) => format!("did you mean `{c}`? sources: snapshot, cache, gateway"),
                    None => "sources: snapshot, cache, gateway".to_string(),
                };
                ctx.err_hint(
                    item.loc,
                    &ipath,
                    format!("unknown reference source `{other}`"),
                    hint,
                );
                continue;
            }
        };
        if out.contains(&src) {
            ctx.err(item.loc, &ipath, format!("`{s}` is listed twice"));
            continue;
        }
        if src == CloseSource::Snapshot && !has_snapshot {
            ctx.err_hint(
                item.loc,
                &ipath,
                "`snapshot` needs a snapshot file",
                "set top-level `reference-snapshot = \"closes.csv\"` (symbol,date,close)",
            );
            continue;
        }
        out.push(src);
    }
    (ctx.errors.len() == before).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths() {
        assert_eq!(child("", "name"), "name");
        assert_eq!(child("phase[1]", "bars"), "phase[1].bars");
        assert_eq!(child("limits", "8 hours"), "limits[\"8 hours\"]");
    }
}
