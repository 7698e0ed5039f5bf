//! The coverage heatmap of the HTML report: symbols (rows) x sessions (columns), each symbol
//! opening to its expiries and to what a repair run fetches. Drawn compactly (one `<path>` per
//! colour and row, holes as their own titled cells) so a 300-symbol weekend stays a few MB.

use super::page::Heatmap;
use super::svg::esc;
use crate::verify::{Audit, Cell};
use chrono::NaiveDate;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Heatmap cells drawn for expiry rows at most (about 15 bytes each in the worst case; past it,
/// the expiry rows of the symbols missing least are left out, with a note).
pub const MAX_EXPIRY_CELLS: usize = 150_000;

/// A cell's colour: bars green, empty grey, provisional amber, missing red, mixed by share
/// (in eighths, so runs of alike cells merge into one rectangle).
fn cell_colour(c: &Cell) -> String {
    let n = f64::from(c.total().max(1));
    let q = |v: u32| (f64::from(v) / n * 8.0).round() / 8.0;
    let parts = [
        (q(c.bars), (46.0, 125.0, 50.0)),
        (q(c.empty), (176.0, 190.0, 197.0)),
        (q(c.provisional), (255.0, 179.0, 0.0)),
        // Any missing unit shows a clear red tint, however many series the cell holds.
        (
            if c.missing > 0 {
                q(c.missing).max(0.25)
            } else {
                0.0
            },
            (211.0, 47.0, 47.0),
        ),
    ];
    let sum: f64 = parts.iter().map(|p| p.0).sum::<f64>().max(1e-9);
    let mix = |f: fn(&(f64, f64, f64)) -> f64| {
        (parts.iter().map(|p| p.0 * f(&p.1)).sum::<f64>() / sum).round() as u8
    };
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

pub fn heatmap(h: &mut String, m: &Heatmap, a: &Audit, notes: &mut Vec<String>) {
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
        // One missing unit among 40 still tints the cell clearly red.
        let one_hole = cell_colour(&c(39, 0, 1));
        let red = u8::from_str_radix(&one_hole[1..3], 16).unwrap();
        assert!(red > 46 + 30, "{one_hole}");
    }

    /// A 300-symbol weekend: 6 months of sessions, 8 expiries per symbol, mixed empty answers,
    /// 2% holes, 60 hours of minutes, cells as varied as they come (little merges). The page must
    /// stay a few MB.
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
