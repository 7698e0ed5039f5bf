//! The dry-run report: what a manifest will send, per phase x bar cell (and per symbol on
//! request), with expired and missing-cache counts, the total and an estimated run time, so a
//! user knows before the weekend whether the plan fits in it.

use super::manifest::Manifest;
use super::windows::describe;
use crate::plan::{BarCell, Select};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Default request rate for the run-time estimate: 50 requests in flight (IB's limit) at about
/// 5 s each once the historical data service is loaded (`docs/ib-behaviour.md` section 9).
pub const DEFAULT_RATE: f64 = 10.0;

/// The named rates `--rate` offers: the default and the sustained rates the executor measured
/// against the simulator's two service models (`cargo bench --bench executor`, BENCHMARKS.md).
/// A real gateway's sustained rate is unknown and likely lies between `throttled` and
/// `realistic`.
pub const NAMED_RATES: &[(&str, f64, &str)] = &[
    (
        "default",
        DEFAULT_RATE,
        "50 in flight at about 5 s each under load",
    ),
    (
        "realistic",
        20.08,
        "measured against the realistic simulator",
    ),
    (
        "throttled",
        THROTTLED_RATE,
        "measured against the throttled simulator",
    ),
];

/// The executor's sustained rate against the `throttled` preset (BENCHMARKS.md): the lower of
/// two runs of the delivery-rate governor, 92% of the model's 2.75 requests/s.
pub const THROTTLED_RATE: f64 = 2.53;

/// The request rate of the run-time estimate: a named one of [`NAMED_RATES`] or a number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunRate {
    /// Requests per second.
    pub req_per_s: f64,
    /// Its name, when chosen by name.
    pub name: Option<&'static str>,
}

impl Default for RunRate {
    fn default() -> Self {
        RunRate {
            req_per_s: DEFAULT_RATE,
            name: Some("default"),
        }
    }
}

impl std::str::FromStr for RunRate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some((name, rate, _)) = NAMED_RATES.iter().find(|(n, _, _)| *n == s) {
            return Ok(RunRate {
                req_per_s: *rate,
                name: Some(name),
            });
        }
        let names: Vec<&str> = NAMED_RATES.iter().map(|(n, _, _)| *n).collect();
        match s.parse::<f64>() {
            Ok(r) if r.is_finite() && r > 0.0 => Ok(RunRate {
                req_per_s: r,
                name: None,
            }),
            _ => Err(format!(
                "`{s}`: expected requests per second (a positive number) or one of {}",
                names.join(", ")
            )),
        }
    }
}

impl std::fmt::Display for RunRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name {
            Some(n) => f.write_str(n),
            None => write!(f, "{}", self.req_per_s),
        }
    }
}

/// `1234567` -> `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Seconds as `3h 25m`, `12m 05s` or `40s`.
pub fn human_secs(secs: f64) -> String {
    let s = if secs.is_finite() && secs > 0.0 {
        secs.ceil() as u64
    } else {
        0
    };
    let (d, h, m, sec) = (s / 86400, (s % 86400) / 3600, (s % 3600) / 60, s % 60);
    if d > 0 {
        format!("{d}d {h}h {m:02}m")
    } else if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {sec:02}s")
    } else {
        format!("{sec}s")
    }
}

/// A plain text table: first column left-aligned, the others right-aligned.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(cols) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: Vec<&str>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = width[i].saturating_sub(c.chars().count());
            if i > 0 {
                l.push_str("  ");
            }
            if i < 2 {
                l.push_str(c);
                l.push_str(&" ".repeat(pad));
            } else {
                l.push_str(&" ".repeat(pad));
                l.push_str(c);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut out, header.to_vec());
    for r in rows {
        line(&mut out, r.iter().map(String::as_str).collect());
    }
    out
}

pub(crate) fn select_label(s: &Select) -> String {
    match s {
        Select::All => "all".into(),
        Select::NearAtm(r) => format!("near-atm K={} E={}", r.strikes, r.expiries),
    }
}

/// Which limit table the request counts assume and where it came from, with the plan's
/// overrides: `observed (plan default)`, `strict (plan), overrides: 8 hours = 6 M`.
pub fn limits_label(m: &Manifest) -> String {
    let mut s = format!("{} ({})", m.limit_table, m.limit_table_origin.label());
    s.push_str(&overrides_label(m));
    s
}

/// `, overrides: 8 hours = 6 M` (empty without overrides).
pub fn overrides_label(m: &Manifest) -> String {
    if m.limits.is_empty() {
        return String::new();
    }
    let overrides: Vec<String> = m.limits.iter().map(|(b, d)| format!("{b} = {d}")).collect();
    format!(", overrides: {}", overrides.join(", "))
}

/// Requests and contracts per (phase, cell) from a manifest: (contracts, requests).
pub fn per_cell(m: &Manifest) -> BTreeMap<(usize, BarCell), (u64, u64)> {
    let phase_index: BTreeMap<&str, usize> = m
        .phases
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.as_str(), i))
        .collect();
    let mut out: BTreeMap<(usize, BarCell), (u64, u64)> = BTreeMap::new();
    for (i, p) in m.phases.iter().enumerate() {
        for c in &p.cells {
            out.insert(
                (
                    i,
                    BarCell {
                        size: c.size,
                        duration: c.duration,
                    },
                ),
                (0, 0),
            );
        }
    }
    for t in &m.tasks {
        if let Some(&pi) = phase_index.get(&*t.phase) {
            let cell = m.phases[pi].cells.iter().find(|c| {
                c.size == t.bar_size
                    && c.windows_for(&t.contract.trading_class)
                        .iter()
                        .any(|w| w.duration == t.duration && w.end == t.end)
            });
            if let Some(c) = cell {
                let e = out
                    .entry((
                        pi,
                        BarCell {
                            size: c.size,
                            duration: c.duration,
                        },
                    ))
                    .or_default();
                e.1 += 1;
                if t.window == 0 {
                    e.0 += 1;
                }
            }
        }
    }
    for s in &m.selections {
        if let Some(&pi) = phase_index.get(s.phase.as_str()) {
            for c in &s.cells {
                let e = out
                    .entry((
                        pi,
                        BarCell {
                            size: c.size,
                            duration: c.duration,
                        },
                    ))
                    .or_default();
                e.0 += u64::from(s.contracts);
                e.1 += u64::from(s.contracts) * c.windows.len() as u64;
            }
        }
    }
    out
}

/// Requests per (symbol, phase).
pub fn per_symbol(m: &Manifest) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for s in &m.symbols {
        out.entry(s.symbol.clone()).or_default();
    }
    for t in &m.tasks {
        *out.entry(t.symbol.to_string())
            .or_default()
            .entry(t.phase.to_string())
            .or_default() += 1;
    }
    for s in &m.selections {
        *out.entry(s.symbol.clone())
            .or_default()
            .entry(s.phase.clone())
            .or_default() += s.requests;
    }
    out
}

/// The classes with their own windows (closing after the equities), with the close of the end
/// session for each: `class hours: SPY closes 13:15 (equity close 13:00)`.
fn late_classes(m: &Manifest, tz: &chrono_tz::Tz) -> Option<String> {
    let mut closes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in &m.phases {
        for c in &p.cells {
            for (class, ws) in &c.class_windows {
                if let Some(last) = ws.last() {
                    let t = last.end.with_timezone(tz).format("%H:%M").to_string();
                    let v = closes.entry(t).or_default();
                    if !v.contains(class) {
                        v.push(class.clone());
                    }
                }
            }
        }
    }
    if closes.is_empty() {
        return None;
    }
    let parts: Vec<String> = closes
        .iter()
        .map(|(t, classes)| format!("{} close {t}", classes.join(", ")))
        .collect();
    Some(format!(
        "class hours: {} on the end session (other classes {})",
        parts.join("; "),
        m.end.close.with_timezone(tz).format("%H:%M")
    ))
}

/// Render the dry-run report. `rate` is the request rate of the estimate.
pub fn render(m: &Manifest, by_symbol: bool, rate: RunRate) -> String {
    let mut o = String::new();
    render_header(&mut o, m);
    render_cells(&mut o, m);
    if by_symbol {
        render_by_symbol(&mut o, m);
    }
    render_expired(&mut o, m);
    render_totals(&mut o, m, rate);
    o
}

/// The run's frame: plan, end session and close, batch, limits, contracts caches, class hours.
fn render_header(o: &mut String, m: &Manifest) {
    let t = &m.totals;
    let tz: chrono_tz::Tz = m.time_zone.parse().unwrap_or(chrono_tz::America::New_York);
    let close_local = m.end.close.with_timezone(&tz);
    let _ = writeln!(o, "plan `{}`, scope `{}`", m.plan.name, m.plan.scope);
    let _ = writeln!(
        o,
        "end: session {}{} (from `{}`), close {} {} = {}",
        m.end.session,
        if m.end.half_day { ", half day" } else { "" },
        m.end.spec,
        close_local.format("%H:%M"),
        m.time_zone,
        m.end.close.format("%Y-%m-%dT%H:%M:%SZ")
    );
    let _ = writeln!(
        o,
        "batch: {} of {} ({} of {} symbols)",
        m.batch.index, m.batch.count, t.shard_symbols, t.universe_symbols
    );
    let _ = writeln!(o, "limits: {}", limits_label(m));
    let _ = writeln!(
        o,
        "contracts caches: {} read from {}, {} missing",
        m.symbols.len(),
        m.plan.contracts_cache,
        t.missing_cache
    );
    if !m.missing_cache.is_empty() {
        let _ = writeln!(o, "  missing (skipped): {}", m.missing_cache.join(", "));
    }
    if let Some(line) = late_classes(m, &tz) {
        let _ = writeln!(o, "{line}");
    }
    let _ = writeln!(o);
}

/// The table of requests per phase and bar cell, with the windows each cell is split into.
fn render_cells(o: &mut String, m: &Manifest) {
    let cells = per_cell(m);
    let mut rows = Vec::new();
    for ((pi, cell), (contracts, requests)) in &cells {
        let p = &m.phases[*pi];
        let windows = p
            .cells
            .iter()
            .find(|c| c.size == cell.size && c.duration == cell.duration)
            .map(|c| describe(*cell, &c.windows))
            .unwrap_or_else(|| format!("{} x {}", cell.size, cell.duration));
        rows.push(vec![
            p.name.clone(),
            format!("{windows}  [{}]", select_label(&p.select)),
            thousands(*contracts),
            thousands(*requests),
        ]);
    }
    o.push_str(&table(
        &[
            "phase",
            "bar cell (windows) [selection]",
            "contracts",
            "requests",
        ],
        &rows,
    ));
}

/// `--by-symbol`: requests per symbol and phase, with the cache date and expired contracts (a
/// symbol without a cache listed as missing).
fn render_by_symbol(o: &mut String, m: &Manifest) {
    let _ = writeln!(o);
    let names: Vec<&str> = m.phases.iter().map(|p| p.name.as_str()).collect();
    let mut header = vec!["symbol"];
    header.push("cache");
    header.extend(names.iter().copied());
    header.push("expired");
    let expired_by_symbol: BTreeMap<&str, u32> = m
        .symbols
        .iter()
        .map(|s| (s.symbol.as_str(), s.expired))
        .collect();
    let mut rows = Vec::new();
    for (sym, per) in per_symbol(m) {
        let mut r = vec![sym.clone()];
        r.push(
            m.symbols
                .iter()
                .find(|s| s.symbol == sym)
                .map(|s| s.cache_as_of.to_string())
                .unwrap_or_default(),
        );
        for n in &names {
            r.push(thousands(per.get(*n).copied().unwrap_or(0)));
        }
        r.push(thousands(u64::from(
            expired_by_symbol.get(sym.as_str()).copied().unwrap_or(0),
        )));
        rows.push(r);
    }
    for s in &m.missing_cache {
        let mut r = vec![s.clone(), "missing".to_string()];
        r.extend(names.iter().map(|_| "-".to_string()));
        r.push("-".into());
        rows.push(r);
    }
    rows.sort_by(|a, b| a[0].cmp(&b[0]));
    o.push_str(&table(&header, &rows));
}

/// Expired contracts per phase (left out of the plan), those expiring on the end session itself,
/// and the requests dropped as duplicates or needed for reference closes.
fn render_expired(o: &mut String, m: &Manifest) {
    let t = &m.totals;
    let _ = writeln!(o);
    let mut per_phase_expired: BTreeMap<&str, u64> = BTreeMap::new();
    for e in &m.expired {
        *per_phase_expired.entry(e.phase.as_str()).or_default() += u64::from(e.contracts);
    }
    let parts: Vec<String> = m
        .phases
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p.name,
                thousands(per_phase_expired.get(p.name.as_str()).copied().unwrap_or(0))
            )
        })
        .collect();
    let _ = writeln!(
        o,
        "expired contracts (expiry on or before {}, not planned: IB serves no history for them): {}",
        m.end.session,
        parts.join(", ")
    );
    // Every phase shares the end, so count contracts once (the largest per-phase sum).
    let mut on_end_per_phase: BTreeMap<&str, u64> = BTreeMap::new();
    for e in &m.expired {
        *on_end_per_phase.entry(e.phase.as_str()).or_default() += u64::from(e.on_end);
    }
    let on_end = on_end_per_phase.values().copied().max().unwrap_or(0);
    if on_end > 0 {
        let _ = writeln!(
            o,
            "  of which {} contracts expire on the end session {} itself: IB drops expired definitions within about a day, so they are lost to any run after it",
            thousands(on_end),
            m.end.session
        );
    }
    if t.duplicates > 0 {
        let _ = writeln!(
            o,
            "identical requests planned by an earlier phase (dropped): {}",
            thousands(t.duplicates)
        );
    }
    if t.reference_closes > 0 {
        let _ = writeln!(
            o,
            "reference closes to resolve before near-ATM selection: {} symbols",
            thousands(t.reference_closes)
        );
    }
}

/// The request total and the run time it means at the chosen and the other named rates.
fn render_totals(o: &mut String, m: &Manifest, rate: RunRate) {
    let t = &m.totals;
    let _ = writeln!(
        o,
        "total requests: {} ({} tasks + {} near-ATM)",
        thousands(t.requests),
        thousands(t.tasks),
        thousands(t.selection_requests)
    );
    let secs = |r: f64| human_secs(t.requests as f64 / r.max(f64::MIN_POSITIVE));
    let why = NAMED_RATES
        .iter()
        .find(|(n, _, _)| Some(*n) == rate.name)
        .map(|(n, _, why)| format!(" ({n}: {why})"))
        .unwrap_or_default();
    let _ = writeln!(
        o,
        "estimated run time at {} req/s{why}: {}",
        rate.req_per_s,
        secs(rate.req_per_s)
    );
    let others: Vec<String> = NAMED_RATES
        .iter()
        .filter(|(n, _, _)| Some(*n) != rate.name)
        .map(|(n, r, _)| format!("{n} {r} req/s: {}", secs(*r)))
        .collect();
    let _ = writeln!(o, "  other rates (--rate NAME): {}", others.join(", "));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(human_secs(40.0), "40s");
        assert_eq!(human_secs(125.0), "2m 05s");
        assert_eq!(human_secs(3.0 * 3600.0 + 60.0), "3h 01m");
        assert_eq!(human_secs(f64::NAN), "0s");
    }
}
