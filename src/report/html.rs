//! The HTML report: one self-contained file (inline CSS and SVG, a few lines of inline script
//! that only sort the heatmap rows), readable offline. A Content-Security-Policy of
//! `default-src 'none'` makes sure the page never loads anything, even if a symbol or an error
//! message carried markup (all text is escaped as well).
//!
//! The page's data is embedded as `<script type="application/json" id="page-data">` so tools
//! (and the tests) can read exactly what is drawn.

use super::page::{PageData, Timeline};
use super::svg::{esc, legend, time_chart, Axis, Overlays, Series, Style};
use crate::exec::timeline::MinuteSample;
use crate::verify::Audit;
use chrono::{DateTime, Utc};
use std::fmt::Write;

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
        super::html_heatmap::heatmap(&mut h, m, a, &mut notes);
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
    let ov = timeline_overlays(t);
    timeline_rate_charts(h, t, &axis, &ov, step);
    timeline_errors_chart(h, t, &axis, &ov);
    outages_table(h, t);
}

/// One value per timeline point.
fn per_point(t: &Timeline, f: &dyn Fn(&MinuteSample) -> Option<f64>) -> Vec<Option<f64>> {
    t.points.iter().map(f).collect()
}

/// What every timeline chart draws over its series: outages as bands, reconnects as lines,
/// farm notices and pacing pauses as marks.
fn timeline_overlays(t: &Timeline) -> Overlays {
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
    ov
}

/// Requests and retries per second, latency percentiles, and the governor's in-flight limit.
fn timeline_rate_charts(h: &mut String, t: &Timeline, axis: &Axis, ov: &Overlays, step: f64) {
    let per = |f: &dyn Fn(&MinuteSample) -> Option<f64>| per_point(t, f);
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
        h.push_str(&time_chart(axis, series, *style, ov, 130.0, title));
    }
}

/// Errors by answer class, stacked per point (OK and EMPTY left out).
fn timeline_errors_chart(h: &mut String, t: &Timeline, axis: &Axis, ov: &Overlays) {
    let per = |f: &dyn Fn(&MinuteSample) -> Option<f64>| per_point(t, f);
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
        axis,
        &errs,
        Style::StackedBars,
        ov,
        110.0,
        title,
    ));
}

/// The outages listed with their length and how each ended.
fn outages_table(h: &mut String, t: &Timeline) {
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
                status_colour(s.as_str()),
                esc(s.as_str()),
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
    fn a_300_symbol_weekend_stays_a_few_mb() {
        use crate::exec::timeline::{MinuteSample, TimelineLine};
        use crate::verify::{Cell, MissingTask, SymbolCells};
        use chrono::NaiveDate;
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
}
