//! The HTML report: one self-contained file (inline CSS and SVG, a few lines of inline script
//! that only sort the heatmap rows), readable offline. A Content-Security-Policy of
//! `default-src 'none'` makes sure the page never loads anything, even if a symbol or an error
//! message carried markup (all text is escaped as well).
//!
//! The page's data is embedded as `<script type="application/json" id="page-data">` so tools
//! (and the tests) can read exactly what is drawn.

use super::page::{Heatmap, PageData};
use super::svg::{esc, legend, time_chart, Axis, Overlays, Series, Style};
use crate::verify::{Audit, Cell};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Heatmap cells drawn for expiry rows at most (about 15 bytes each in the worst case; past it,
/// the expiry rows of the symbols missing least are left out, with a note).
pub const MAX_EXPIRY_CELLS: usize = 150_000;

const CSS: &str = r#"
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px;margin:0 0 8px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:14px;margin:14px 0 2px}
table{border-collapse:collapse}td,th{padding:2px 8px;text-align:left;vertical-align:middle}
th{background:#f3f3f3}.num{text-align:right;font-variant-numeric:tabular-nums}
.kv td:first-child{color:#666}.chip{display:inline-block;padding:1px 8px;margin:2px;border-radius:10px;color:#fff}
.legend span{margin-right:14px;font-size:12px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
svg text{font:11px system-ui,sans-serif;fill:#555}.yl{text-anchor:end}
.grid{stroke:#e5e5e5}.outage{fill:#d32f2f;fill-opacity:.18}.reconnect{stroke:#d32f2f;stroke-dasharray:3 2}
.farm{fill:#ef6c00}.pause{fill:#6a1b9a}
.hm details{margin:0}.hm summary{list-style:none;display:flex;align-items:center;cursor:pointer;white-space:nowrap}
.hm summary::-webkit-details-marker{display:none}
.sym{display:inline-block;width:90px;font-weight:600;overflow:hidden}.cnt{display:inline-block;width:90px;font-size:12px;color:#666}
.exp{display:flex;align-items:center}.exp span{display:inline-block;width:180px;padding-left:20px;font-size:12px;color:#666}
.repair{margin:4px 0 10px 20px;font-size:12px;color:#444}.note{color:#8a6d00}
button{font:inherit;margin-right:6px}
"#;

const SCRIPT: &str = r#"
(function(){
  var c=document.getElementById('hm-rows');
  if(!c)return;
  function sortBy(k){
    var rows=Array.prototype.slice.call(c.children);
    rows.sort(function(a,b){
      if(k==='missing'){var d=Number(b.dataset.missing)-Number(a.dataset.missing);if(d)return d;}
      return a.dataset.symbol<b.dataset.symbol?-1:a.dataset.symbol>b.dataset.symbol?1:0;
    });
    rows.forEach(function(r){c.appendChild(r);});
  }
  document.getElementById('sort-missing').addEventListener('click',function(){sortBy('missing');});
  document.getElementById('sort-symbol').addEventListener('click',function(){sortBy('symbol');});
})();
"#;

/// Colours of the statuses (errors share reds and oranges).
fn status_colour(status: &str) -> &'static str {
    match status {
        "OK" => "#2e7d32",
        "EMPTY" => "#90a4ae",
        "UP_TO_DATE" => "#1565c0",
        "SKIPPED" => "#bdbdbd",
        "TIMEOUT" => "#ef6c00",
        "PACING" => "#6a1b9a",
        "DISCONNECTED" => "#ad1457",
        "ZERO_BARS" => "#f9a825",
        _ => "#c62828",
    }
}

/// The page.
pub fn render(data: &PageData, audit: Option<&Audit>) -> String {
    let mut h = String::with_capacity(1 << 20);
    let title = format!(
        "opt-backfill report: {}",
        data.header
            .scopes
            .first()
            .cloned()
            .or_else(|| data.heatmap.as_ref().map(|m| m.scope.clone()))
            .unwrap_or_else(|| data.header.run_ids.join(", "))
    );
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\
<meta name=\"viewport\" content=\"width=device-width\"><title>{}</title><style>{CSS}</style></head><body>",
        esc(&title)
    );
    header(&mut h, data, &title);
    timeline(&mut h, data);
    groups(&mut h, data);
    let mut notes = data.notes.clone();
    if let (Some(m), Some(a)) = (&data.heatmap, audit) {
        heatmap(&mut h, m, a, &mut notes);
    }
    near_atm(&mut h, data);
    if !notes.is_empty() {
        h.push_str("<h2>Notes</h2><ul>");
        for n in &notes {
            let _ = write!(h, "<li class=\"note\">{}</li>", esc(n));
        }
        h.push_str("</ul>");
    }
    // `<` never appears raw in the JSON, so no text inside it can close the script element.
    let json = serde_json::to_string(data)
        .unwrap_or_else(|e| format!("{{\"error\":{:?}}}", e.to_string()))
        .replace('<', "\\u003c");
    let _ = writeln!(
        h,
        "<script type=\"application/json\" id=\"page-data\">{json}</script><script>{SCRIPT}</script></body></html>"
    );
    h
}

/// Build and write the page for `run_dirs` (summaries and timelines; may be empty) and an
/// audit, atomically. Errors name the file.
pub fn write_report(
    path: &std::path::Path,
    run_dirs: &[std::path::PathBuf],
    audit: Option<(&Audit, &str)>,
    plan: Option<&std::path::Path>,
) -> Result<PageData, String> {
    let loaded = if run_dirs.is_empty() {
        super::Loaded::default()
    } else {
        super::load(run_dirs).map_err(|e| e.to_string())?
    };
    let (timelines, bad) = super::page::read_timelines(run_dirs);
    let mut data = super::page::build(&loaded.records, &timelines, audit, plan);
    if loaded.bad_lines + bad > 0 {
        data.notes.push(format!(
            "{} unreadable summary or timeline lines skipped (torn by a killed run)",
            loaded.bad_lines + bad
        ));
    }
    let html = render(&data, audit.map(|a| a.0));
    crate::store::atomic::write_bytes(path, html.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(data)
}

fn ts(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "-".into())
}

fn header(h: &mut String, d: &PageData, title: &str) {
    let hd = &d.header;
    let _ = write!(h, "<h1>{}</h1><table class=\"kv\">", esc(title));
    let mut row = |k: &str, v: String| {
        let _ = write!(h, "<tr><td>{k}</td><td>{}</td></tr>", esc(&v));
    };
    row("plan", hd.plan.clone().unwrap_or_else(|| "-".into()));
    row("scope", hd.scopes.join(", "));
    row("shards", hd.shards.join(", "));
    row("runs", hd.run_ids.join(", "));
    let dur = match (hd.start, hd.end) {
        (Some(s), Some(e)) => {
            let secs = (e - s).num_seconds().max(0);
            format!(
                " ({}h{:02}m{:02}s)",
                secs / 3600,
                (secs % 3600) / 60,
                secs % 60
            )
        }
        _ => String::new(),
    };
    row(
        "start - end",
        format!("{} - {}{dur}", ts(hd.start), ts(hd.end)),
    );
    row(
        "exit code",
        if hd.exit_codes.is_empty() {
            "unknown".into()
        } else {
            hd.exit_codes
                .iter()
                .map(|(k, v)| format!("{v} ({k})"))
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
    let _ = write!(
        h,
        "<tr><td>tasks</td><td>{}</td></tr></table><div>",
        hd.tasks
    );
    for (s, n) in &hd.totals {
        let _ = write!(
            h,
            "<span class=\"chip\" style=\"background:{}\">{} {}</span>",
            status_colour(s),
            esc(s),
            n
        );
    }
    h.push_str("</div>");
}

fn timeline(h: &mut String, d: &PageData) {
    let t = &d.timeline;
    h.push_str("<h2>Timeline</h2>");
    if t.points.is_empty() {
        h.push_str("<p>No timeline samples.</p>");
        return;
    }
    let step = 60.0 * f64::from(t.bucket_minutes.max(1));
    let axis = Axis {
        times: t.points.iter().map(|p| p.minute).collect(),
        step_secs: step,
    };
    let _ = write!(
        h,
        "<p>{} point(s) of {} minute(s); {} reconnect(s), {} outage(s), {} farm notice(s). \
Red bands: the gateway unreachable; dashed red lines: reconnects; orange marks: farm notices; purple marks: pacing pauses.</p>",
        t.points.len(),
        t.bucket_minutes,
        t.reconnect_count,
        t.outages.len(),
        t.farm_notices.len()
    );
    let mut ov = Overlays::default();
    for o in &t.outages {
        ov.bands.push((
            o.start,
            o.end,
            format!(
                "gateway {} {} - {} ({:.0} s)",
                if o.lost { "lost" } else { "unreachable" },
                o.start.format("%H:%M:%S"),
                o.end.format("%H:%M:%S"),
                o.secs
            ),
        ));
    }
    for r in &t.reconnects {
        ov.lines
            .push((*r, format!("reconnected {}", r.format("%H:%M:%S"))));
    }
    for f in &t.farm_notices {
        ov.marks
            .push((f.at, format!("{} {}", f.code, f.message), "farm"));
    }
    for p in t.points.iter().filter(|p| p.pacing_pauses > 0) {
        ov.marks.push((
            p.minute,
            format!(
                "{} pacing pause(s), paused {:.0} s",
                p.pacing_pauses, p.paused_secs
            ),
            "pause",
        ));
    }
    let per =
        |f: &dyn Fn(&crate::exec::timeline::MinuteSample) -> Option<f64>| -> Vec<Option<f64>> {
            t.points.iter().map(f).collect()
        };
    let charts: Vec<(&str, Vec<Series>, Style)> = vec![
        (
            "Requests per second",
            vec![
                Series {
                    name: "requests/s".into(),
                    colour: "#1565c0".into(),
                    values: per(&|p| Some(p.requests as f64 / step)),
                },
                Series {
                    name: "retries/s".into(),
                    colour: "#ef6c00".into(),
                    values: per(&|p| Some(p.retries as f64 / step)),
                },
            ],
            Style::Lines,
        ),
        (
            "Latency (ms)",
            vec![
                Series {
                    name: "median".into(),
                    colour: "#2e7d32".into(),
                    values: per(&|p| p.latency_p50_ms.map(|v| v as f64)),
                },
                Series {
                    name: "p95".into(),
                    colour: "#6a1b9a".into(),
                    values: per(&|p| p.latency_p95_ms.map(|v| v as f64)),
                },
            ],
            Style::Lines,
        ),
        (
            "Governor: in-flight limit (purple marks: pacing pauses)",
            vec![
                Series {
                    name: "limit at end of minute".into(),
                    colour: "#1565c0".into(),
                    values: per(&|p| Some(f64::from(p.inflight_limit))),
                },
                Series {
                    name: "lowest in minute".into(),
                    colour: "#90caf9".into(),
                    values: per(&|p| Some(f64::from(p.inflight_limit_min))),
                },
            ],
            Style::Lines,
        ),
    ];
    for (title, series, style) in &charts {
        let _ = write!(h, "<h3>{}</h3>{}", esc(title), legend(series));
        h.push_str(&time_chart(&axis, series, *style, &ov, 130.0, title));
    }
    // Errors by class: every answer class but OK and EMPTY, stacked per point.
    let mut classes: Vec<String> = t
        .points
        .iter()
        .flat_map(|p| p.answers.keys())
        .filter(|k| !matches!(k.as_str(), "OK" | "EMPTY"))
        .cloned()
        .collect();
    classes.sort();
    classes.dedup();
    let errs: Vec<Series> = classes
        .iter()
        .map(|c| Series {
            name: c.clone(),
            colour: status_colour(c).into(),
            values: per(&|p| p.answers.get(c).map(|v| *v as f64)),
        })
        .collect();
    let title = "Errors by class (answers per point)";
    let _ = write!(h, "<h3>{title}</h3>");
    if errs.is_empty() {
        h.push_str("<p>No error answers.</p>");
    } else {
        h.push_str(&legend(&errs));
    }
    h.push_str(&time_chart(
        &axis,
        &errs,
        Style::StackedBars,
        &ov,
        110.0,
        title,
    ));
    if !t.outages.is_empty() {
        h.push_str("<h3>Outages</h3><table><tr><th>start</th><th>end</th><th class=\"num\">seconds</th><th>ended by</th></tr>");
        for o in &t.outages {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{:.1}</td><td>{}</td></tr>",
                ts(Some(o.start)),
                ts(Some(o.end)),
                o.secs,
                if o.lost { "run gave up" } else { "reconnect" }
            );
        }
        h.push_str("</table>");
    }
}

fn groups(h: &mut String, d: &PageData) {
    h.push_str("<h2>Phases and bar sizes</h2><table><tr><th>phase</th><th>bar size</th><th class=\"num\">tasks</th><th>statuses</th><th class=\"num\">EMPTY rate</th><th class=\"num\">bars fetched</th><th class=\"num\">requests</th></tr>");
    for r in &d.groups {
        let mut bar = String::from("<svg width=\"300\" height=\"14\">");
        let mut x = 0.0;
        for (s, n) in &r.by_status {
            let w = 300.0 * *n as f64 / r.tasks.max(1) as f64;
            let _ = write!(
                bar,
                "<rect x=\"{x:.1}\" width=\"{w:.1}\" height=\"14\" fill=\"{}\"><title>{} {}</title></rect>",
                status_colour(s),
                esc(s),
                n
            );
            x += w;
        }
        bar.push_str("</svg>");
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{bar}</td><td class=\"num\">{:.1}%</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&r.phase),
            esc(&r.bar_size),
            r.tasks,
            100.0 * r.empty_rate,
            r.bars,
            r.requests
        );
    }
    h.push_str("</table>");
}

/// A cell's colour: bars green, empty grey, provisional amber, missing red, mixed by share
/// (in eighths, so runs of alike cells merge into one rectangle).
fn cell_colour(c: &Cell) -> String {
    let n = f64::from(c.total().max(1));
    let q = |v: u32| (f64::from(v) / n * 8.0).round() / 8.0;
    let parts = [
        (q(c.bars), (46.0, 125.0, 50.0)),
        (q(c.empty), (176.0, 190.0, 197.0)),
        (q(c.provisional), (255.0, 179.0, 0.0)),
        (q(c.missing), (211.0, 47.0, 47.0)),
    ];
    let sum: f64 = parts.iter().map(|p| p.0).sum::<f64>().max(1e-9);
    let mix = |f: fn(&(f64, f64, f64)) -> f64| {
        (parts.iter().map(|p| p.0 * f(&p.1)).sum::<f64>() / sum).round() as u8
    };
    // Any missing unit shows at least a clear red tint.
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(|c| c.0),
        mix(|c| c.1),
        mix(|c| c.2)
    )
}

/// One heatmap row, drawn compactly (a 300-symbol weekend has tens of thousands of cells): one
/// `<path>` per colour holding runs of alike cells, a `<title>` with the row's totals, and each
/// hole (a cell with missing units, when `holes` is given) as its own rectangle whose title lists
/// what a repair run fetches.
fn heat_row(
    sessions: &[NaiveDate],
    cells: &BTreeMap<NaiveDate, Cell>,
    cw: u32,
    label: &str,
    holes: Option<&BTreeMap<NaiveDate, &[String]>>,
) -> String {
    let n = sessions.len();
    let gap = u32::from(cw > 3);
    let mut paths: BTreeMap<String, String> = BTreeMap::new();
    let mut hole_rects = String::new();
    let mut sum = Cell::default();
    let mut i = 0;
    while i < n {
        let Some(c) = cells.get(&sessions[i]) else {
            i += 1;
            continue;
        };
        let colour = cell_colour(c);
        let x = cw * i as u32;
        if let (true, Some(hm)) = (c.missing > 0, holes) {
            let mut title = format!(
                "{label} {}: {} with bars, {} empty, {} provisional, {} missing",
                sessions[i], c.bars, c.empty, c.provisional, c.missing
            );
            if let Some(r) = hm.get(&sessions[i]).filter(|r| !r.is_empty()) {
                title.push_str("; a repair run fetches: ");
                title.push_str(&r.join(", "));
            }
            let _ = write!(
                hole_rects,
                "<rect x=\"{x}\" width=\"{}\" height=\"12\" fill=\"{colour}\"><title>{}</title></rect>",
                (cw - gap).max(1),
                esc(&title)
            );
            add_cell(&mut sum, c);
            i += 1;
            continue;
        }
        let mut j = i;
        while j < n {
            match cells.get(&sessions[j]) {
                Some(next)
                    if cell_colour(next) == colour && (next.missing == 0 || holes.is_none()) =>
                {
                    add_cell(&mut sum, next);
                    j += 1;
                }
                _ => break,
            }
        }
        let w = (cw * (j - i) as u32 - gap).max(1);
        let _ = write!(paths.entry(colour).or_default(), "M{x} 0h{w}v12h-{w}z");
        i = j;
    }
    let mut s = format!(
        "<svg width=\"{}\" height=\"12\"><title>{}: {} with bars, {} empty, {} provisional, {} missing</title>",
        cw * n as u32,
        esc(label),
        sum.bars,
        sum.empty,
        sum.provisional,
        sum.missing
    );
    for (colour, d) in paths {
        let _ = write!(s, "<path fill=\"{colour}\" d=\"{d}\"/>");
    }
    s.push_str(&hole_rects);
    s.push_str("</svg>");
    s
}

fn add_cell(sum: &mut Cell, c: &Cell) {
    sum.bars += c.bars;
    sum.empty += c.empty;
    sum.provisional += c.provisional;
    sum.missing += c.missing;
}

fn heatmap(h: &mut String, m: &Heatmap, a: &Audit, notes: &mut Vec<String>) {
    let n = m.sessions.len().max(1);
    let cw = (760 / n as u32).clamp(2, 16);
    let _ = write!(
        h,
        "<h2>Coverage of scope {}</h2><p>{} symbol(s) x {} session(s). Each cell: the share of the symbol's series (contracts x phases x bar sizes) that session covered with bars, answered empty or missing. Hover a row for its totals and a red cell for what a repair run fetches; click a symbol for its expiries and the repair list. {}</p>",
        esc(&m.scope),
        m.rows.len(),
        m.sessions.len(),
        if m.complete {
            "<b>Complete</b>: every session is in the lake or was answered empty."
        } else {
            "<b>Incomplete</b>: a plain <code>execute</code> of the same plan fetches the red cells."
        }
    );
    h.push_str("<div class=\"legend\"><span><i style=\"background:#2e7d32\"></i>bars</span><span><i style=\"background:#b0bec5\"></i>empty</span><span><i style=\"background:#ffb300\"></i>provisional</span><span><i style=\"background:#d32f2f\"></i>missing</span></div>");
    h.push_str("<p><button id=\"sort-missing\" type=\"button\">sort by missing</button><button id=\"sort-symbol\" type=\"button\">sort by symbol</button></p>");
    // Session axis: a label every ~70 px.
    let every = 70usize.div_ceil(cw as usize).max(1);
    let _ = write!(
        h,
        "<div class=\"hm\"><div style=\"display:flex\"><span class=\"sym\"></span><span class=\"cnt\"></span><svg width=\"{:.0}\" height=\"16\">",
        cw * n as u32
    );
    // No label that would be cut at the right edge.
    let last_label = n.saturating_sub(40usize.div_ceil(cw as usize));
    for (i, d) in m
        .sessions
        .iter()
        .enumerate()
        .step_by(every)
        .filter(|(i, _)| *i <= last_label)
    {
        let _ = write!(
            h,
            "<text x=\"{}\" y=\"12\"><title>{d}</title>{}</text>",
            cw * i as u32,
            d.format("%m-%d")
        );
    }
    h.push_str("</svg></div><div id=\"hm-rows\">");
    let mut holes: BTreeMap<&str, BTreeMap<NaiveDate, &[String]>> = BTreeMap::new();
    for hole in &m.holes {
        holes
            .entry(hole.symbol.as_str())
            .or_default()
            .insert(hole.session, hole.repair.as_slice());
    }
    // Expiry rows within a cell budget, most-missing symbols first (the rows' order).
    let mut budget = MAX_EXPIRY_CELLS;
    let mut left_out = 0usize;
    for row in &m.rows {
        let Some(cells) = a.cells.get(&row.symbol) else {
            continue;
        };
        let sym_holes = holes.get(row.symbol.as_str());
        let _ = write!(
            h,
            "<details data-symbol=\"{s}\" data-missing=\"{mi}\"><summary><span class=\"sym\">{s}</span><span class=\"cnt\">{mi} missing</span>{}</summary>",
            heat_row(&m.sessions, &cells.sessions, cw, &row.symbol, sym_holes),
            s = esc(&row.symbol),
            mi = row.missing
        );
        let expiry_cells: usize = cells.expiries.values().map(BTreeMap::len).sum();
        if expiry_cells > budget {
            left_out += 1;
            h.push_str("<div class=\"repair\">Expiry rows left out to keep the page small: run <code>verify --html</code> on a plan of fewer symbols.</div>");
        } else {
            budget -= expiry_cells;
            for (exp, ec) in &cells.expiries {
                let miss: u32 = ec.values().map(|c| c.missing).sum();
                let _ = write!(
                    h,
                    "<div class=\"exp\"><span>{exp} ({miss} missing)</span>{}</div>",
                    heat_row(&m.sessions, ec, cw, &format!("{} {exp}", row.symbol), None)
                );
            }
        }
        if let Some(sh) = sym_holes {
            h.push_str("<div class=\"repair\">A repair run fetches:<ul>");
            for (d, r) in sh.iter().take(50) {
                let _ = write!(h, "<li>{d}: {}</li>", esc(&r.join(", ")));
            }
            if sh.len() > 50 {
                let _ = write!(h, "<li>... and {} more sessions</li>", sh.len() - 50);
            }
            h.push_str("</ul></div>");
        }
        h.push_str("</details>");
    }
    h.push_str("</div></div>");
    if left_out > 0 {
        notes.push(format!(
            "expiry rows of {left_out} symbol(s) left out (more than {MAX_EXPIRY_CELLS} expiry cells in all)"
        ));
    }
    if !m.problems.is_empty() {
        h.push_str("<h3>File problems</h3><ul>");
        for p in &m.problems {
            let _ = write!(h, "<li>{}</li>", esc(p));
        }
        h.push_str("</ul>");
    }
}

fn near_atm(h: &mut String, d: &PageData) {
    if d.near_atm.is_empty() {
        return;
    }
    h.push_str("<h2>Near-ATM: EMPTY rate by distance from the reference close</h2><p>Tasks of near-ATM phases (OK or EMPTY), by |strike - reference close| / reference close. Far strikes trade less, so they answer empty more often.</p>");
    let (w, ht, left, bottom) = (760.0, 160.0, 40.0, 30.0);
    let bw = (w - left) / d.near_atm.len() as f64;
    let _ = write!(
        h,
        "<svg width=\"{w}\" height=\"{ht}\" role=\"img\" aria-label=\"EMPTY rate by distance\">"
    );
    for k in [0.0, 0.5, 1.0] {
        let y = 8.0 + (ht - bottom - 8.0) * (1.0 - k);
        let _ = write!(
            h,
            "<line class=\"grid\" x1=\"{left}\" x2=\"{w}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/><text class=\"yl\" x=\"{:.0}\" y=\"{:.1}\">{:.0}%</text>",
            left - 4.0,
            y + 3.0,
            k * 100.0
        );
    }
    for (i, b) in d.near_atm.iter().enumerate() {
        let x = left + bw * i as f64;
        let plot = ht - bottom - 8.0;
        // A bucket with tasks shows at least a hairline, so 0% reads as measured, not absent.
        let bh = if b.ok + b.empty > 0 {
            (plot * b.empty_rate).max(1.5)
        } else {
            0.0
        };
        let label = match b.to_pct {
            Some(t) => format!("{}-{}%", b.from_pct, t),
            None => format!(">={}%", b.from_pct),
        };
        let _ = write!(
            h,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#90a4ae\"><title>{label}: {} OK, {} EMPTY ({:.0}% empty)</title></rect><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">n={}</text>",
            x + 2.0,
            8.0 + plot - bh,
            bw - 4.0,
            b.ok,
            b.empty,
            100.0 * b.empty_rate,
            x + bw / 2.0,
            ht - 16.0,
            x + bw / 2.0,
            ht - 3.0,
            b.ok + b.empty
        );
    }
    h.push_str("</svg>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_colours_are_pure_for_pure_cells() {
        let c = |b, e, m| Cell {
            bars: b,
            empty: e,
            provisional: 0,
            missing: m,
        };
        assert_eq!(cell_colour(&c(3, 0, 0)), "#2e7d32");
        assert_eq!(cell_colour(&c(0, 0, 2)), "#d32f2f");
        assert_ne!(cell_colour(&c(1, 0, 1)), cell_colour(&c(2, 0, 0)));
    }

    /// A 300-symbol weekend: 6 months of sessions, 8 expiries per symbol, mixed empty answers,
    /// 2% holes, 60 hours of minutes, cells as varied as they come (little merges). The page must
    /// stay a few MB.
    #[test]
    fn a_300_symbol_weekend_stays_a_few_mb() {
        use crate::exec::timeline::{MinuteSample, TimelineLine};
        use crate::verify::{MissingTask, SymbolCells};
        let mut a = Audit::default();
        let d0 = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        let sessions: Vec<NaiveDate> = (0..180)
            .map(|i| d0 + chrono::Duration::days(i))
            .filter(|d| crate::calendar::session(*d).is_ok_and(|s| s.is_some()))
            .collect();
        let mut rng = 7u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % 100
        };
        for s in 0..300 {
            let sym = format!("S{s:03}");
            let mut c = SymbolCells::default();
            for e in 0..8 {
                let exp = d0 + chrono::Duration::days(200 + 7 * i64::from(e));
                for d in &sessions {
                    let r = next();
                    let cell = Cell {
                        bars: 20 - (r % 5) as u32,
                        empty: (r % 5) as u32,
                        provisional: 0,
                        missing: u32::from(r < 2),
                    };
                    if cell.missing > 0 {
                        a.missing.push(MissingTask {
                            symbol: sym.clone(),
                            con_id: i64::from(1000 * s + e),
                            phase: "hours".into(),
                            bar_size: "8 hours".into(),
                            sessions: vec![d.to_string()],
                        });
                    }
                    c.expiries.entry(exp).or_default().insert(*d, cell);
                    let t = c.sessions.entry(*d).or_default();
                    t.bars += cell.bars;
                    t.empty += cell.empty;
                    t.missing += cell.missing;
                }
            }
            a.cells.insert(sym, c);
        }
        let t0 = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let lines: Vec<TimelineLine> = (0..3600)
            .map(|i| {
                TimelineLine::Minute(MinuteSample {
                    minute: t0 + chrono::Duration::minutes(i),
                    requests: 600,
                    answers: [("OK".to_string(), 590), ("TIMEOUT".to_string(), 10)].into(),
                    latency_p50_ms: Some(400),
                    latency_p95_ms: Some(1500),
                    inflight_limit: 8,
                    inflight_limit_min: 6,
                    ..Default::default()
                })
            })
            .collect();
        let data =
            super::super::page::build(&[], &[("w/0of1".into(), lines)], Some((&a, "s")), None);
        let html = render(&data, Some(&a));
        let mb = html.len() as f64 / 1e6;
        let json = serde_json::to_string(&data).unwrap().len() as f64 / 1e6;
        eprintln!("300-symbol weekend page: {mb:.2} MB (embedded data {json:.2} MB)");
        assert!(mb < 5.0, "{mb:.2} MB");
    }

    #[test]
    fn runs_merge_but_holes_stand_alone() {
        let d = |i| NaiveDate::from_ymd_opt(2026, 11, i).unwrap();
        let sessions = vec![d(2), d(3), d(4), d(5)];
        let full = Cell {
            bars: 2,
            ..Default::default()
        };
        let hole = Cell {
            bars: 1,
            missing: 1,
            ..Default::default()
        };
        let cells: BTreeMap<NaiveDate, Cell> =
            [(d(2), full), (d(3), full), (d(4), hole), (d(5), full)].into();
        let repair = vec!["7 hours 8 hours".to_string()];
        let holes: BTreeMap<NaiveDate, &[String]> = [(d(4), repair.as_slice())].into();
        let svg = heat_row(&sessions, &cells, 10, "X<", Some(&holes));
        assert_eq!(svg.matches("<rect").count(), 1, "{svg}");
        assert_eq!(svg.matches("<path").count(), 1, "{svg}");
        assert!(svg.contains("M0 0h19v12h-19zM30 0h9v12h-9z"), "{svg}");
        assert!(svg.contains("a repair run fetches: 7 hours 8 hours"));
        assert!(svg.contains("X&lt;"));
    }
}
