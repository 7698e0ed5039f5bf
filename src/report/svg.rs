//! Inline SVG primitives of the HTML report: time charts (lines or stacked bars with outage
//! bands, reconnect lines and farm-notice marks) and escaping. Written by hand rather than
//! through a plotting crate: the page must be one self-contained file with no scripts needed,
//! and a few hundred lines of SVG text do that with nothing to load.

use chrono::{DateTime, Utc};
use std::fmt::Write;

/// Chart width in px (the page is laid out for it).
pub const WIDTH: f64 = 960.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 22.0;

/// Escape text for HTML and SVG content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One plotted series.
pub struct Series {
    /// Legend name.
    pub name: String,
    /// CSS colour.
    pub colour: String,
    /// One value per point (`None`: no value, the line breaks).
    pub values: Vec<Option<f64>>,
}

/// Things drawn over every time chart.
#[derive(Default)]
pub struct Overlays {
    /// Outage windows (start, end, label).
    pub bands: Vec<(DateTime<Utc>, DateTime<Utc>, String)>,
    /// Vertical lines (reconnects).
    pub lines: Vec<(DateTime<Utc>, String)>,
    /// Marks along the top (farm notices, pacing pauses).
    pub marks: Vec<(DateTime<Utc>, String, &'static str)>,
}

/// How the series are drawn.
#[derive(Clone, Copy, PartialEq)]
pub enum Style {
    /// One polyline per series.
    Lines,
    /// Bars stacked per point.
    StackedBars,
}

/// The time axis: point `i` covers `[times[i], times[i] + step)`; points need not be evenly
/// spaced (several runs days apart), lines break across gaps.
pub struct Axis {
    /// Each point's start, oldest first.
    pub times: Vec<DateTime<Utc>>,
    /// Seconds per point.
    pub step_secs: f64,
}

impl Axis {
    fn t0(&self) -> DateTime<Utc> {
        self.times.first().copied().unwrap_or_default()
    }

    fn span_secs(&self) -> f64 {
        match (self.times.first(), self.times.last()) {
            (Some(a), Some(b)) => {
                ((*b - *a).num_milliseconds() as f64 / 1000.0 + self.step_secs).max(1.0)
            }
            _ => 1.0,
        }
    }

    fn x_of_secs(&self, secs: f64) -> f64 {
        LEFT + (WIDTH - LEFT - RIGHT) * (secs / self.span_secs()).clamp(0.0, 1.0)
    }

    fn x(&self, t: DateTime<Utc>) -> f64 {
        self.x_of_secs((t - self.t0()).num_milliseconds() as f64 / 1000.0)
    }

    fn x_of_point(&self, i: usize) -> f64 {
        self.times.get(i).map_or(LEFT, |t| self.x(*t))
    }

    /// True when point `i` does not follow point `i - 1` directly.
    fn gap_before(&self, i: usize) -> bool {
        i > 0
            && (self.times[i] - self.times[i - 1]).num_milliseconds() as f64
                > 1500.0 * self.step_secs
    }
}

fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if v <= m * p {
            return m * p;
        }
    }
    10.0 * p
}

fn fmt_num(v: f64) -> String {
    if v >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A legend line (HTML) for `series`.
pub fn legend(series: &[Series]) -> String {
    let mut s = String::from("<div class=\"legend\">");
    for se in series {
        let _ = write!(
            s,
            "<span><i style=\"background:{}\"></i>{}</span>",
            esc(&se.colour),
            esc(&se.name)
        );
    }
    s.push_str("</div>");
    s
}

/// A time chart of `series` over `axis`, `height` px tall.
pub fn time_chart(
    axis: &Axis,
    series: &[Series],
    style: Style,
    overlays: &Overlays,
    height: f64,
    label: &str,
) -> String {
    let plot_h = height - TOP - BOTTOM;
    let max = match style {
        Style::Lines => series
            .iter()
            .flat_map(|s| s.values.iter().flatten())
            .fold(0.0f64, |a, b| a.max(*b)),
        Style::StackedBars => (0..axis.times.len())
            .map(|i| {
                series
                    .iter()
                    .map(|s| s.values.get(i).copied().flatten().unwrap_or(0.0))
                    .sum::<f64>()
            })
            .fold(0.0f64, f64::max),
    };
    let scale = YScale {
        plot_h,
        ymax: nice_max(max),
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" role=\"img\" aria-label=\"{}\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\">",
        esc(label)
    );
    grid(&mut s, &scale);
    outage_bands(&mut s, axis, overlays, plot_h);
    let w = (WIDTH - LEFT - RIGHT) * axis.step_secs / axis.span_secs();
    match style {
        Style::Lines => polylines(&mut s, axis, series, w, &scale),
        Style::StackedBars => stacked_bars(&mut s, axis, series, w, &scale),
    }
    lines_and_marks(&mut s, axis, overlays, plot_h);
    time_labels(&mut s, axis, height);
    s.push_str("</svg>");
    s
}

/// The vertical scale of a chart: values from 0 to `ymax` over `plot_h` px below the top margin.
struct YScale {
    plot_h: f64,
    ymax: f64,
}

impl YScale {
    fn y(&self, v: f64) -> f64 {
        TOP + self.plot_h * (1.0 - (v / self.ymax).clamp(0.0, 1.0))
    }
}

/// Grid lines and y labels at 0, half and the top of the scale.
fn grid(s: &mut String, scale: &YScale) {
    let y = |v: f64| scale.y(v);
    let ymax = scale.ymax;
    for k in 0..=2 {
        let v = ymax * f64::from(k) / 2.0;
        let yy = y(v);
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/><text class=\"yl\" x=\"{}\" y=\"{:.1}\">{}</text>",
            WIDTH - RIGHT,
            LEFT - 4.0,
            yy + 3.0,
            fmt_num(v)
        );
    }
}

/// Outage windows as translucent bands behind the series.
fn outage_bands(s: &mut String, axis: &Axis, overlays: &Overlays, plot_h: f64) {
    for (a, b, why) in &overlays.bands {
        let (x1, x2) = (axis.x(*a), axis.x(*b));
        let _ = write!(
            s,
            "<rect class=\"outage\" x=\"{x1:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{plot_h:.1}\"><title>{}</title></rect>",
            (x2 - x1).max(1.5),
            esc(why)
        );
    }
}

/// One polyline per series, broken where a value is missing or the points are not contiguous.
fn polylines(s: &mut String, axis: &Axis, series: &[Series], w: f64, scale: &YScale) {
    let y = |v: f64| scale.y(v);
    for se in series {
        let mut seg: Vec<String> = Vec::new();
        let flush = |seg: &mut Vec<String>, s: &mut String| {
            if seg.len() == 1 {
                seg.push(seg[0].clone());
            }
            if !seg.is_empty() {
                let _ = write!(
                    s,
                    "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>",
                    esc(&se.colour),
                    seg.join(" ")
                );
            }
            seg.clear();
        };
        for (i, v) in se.values.iter().enumerate() {
            if axis.gap_before(i) {
                flush(&mut seg, s);
            }
            match v {
                Some(v) => seg.push(format!("{:.1},{:.1}", axis.x_of_point(i) + w / 2.0, y(*v))),
                None => flush(&mut seg, s),
            }
        }
        flush(&mut seg, s);
    }
}

/// Bars stacked per point, series in order from the bottom.
fn stacked_bars(s: &mut String, axis: &Axis, series: &[Series], w: f64, scale: &YScale) {
    let y = |v: f64| scale.y(v);
    for i in 0..axis.times.len() {
        let mut base = 0.0;
        for se in series {
            let v = se.values.get(i).copied().flatten().unwrap_or(0.0);
            if v <= 0.0 {
                continue;
            }
            let (y1, y2) = (y(base + v), y(base));
            let _ = write!(
                s,
                "<rect x=\"{:.1}\" y=\"{y1:.1}\" width=\"{:.2}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {}</title></rect>",
                axis.x_of_point(i),
                (w * 0.9).max(0.5),
                (y2 - y1).max(0.5),
                esc(&se.colour),
                esc(&se.name),
                fmt_num(v)
            );
            base += v;
        }
    }
}

/// Reconnect lines and the marks along the top, drawn over the series.
fn lines_and_marks(s: &mut String, axis: &Axis, overlays: &Overlays, plot_h: f64) {
    for (t, why) in &overlays.lines {
        let x = axis.x(*t);
        let _ = write!(
            s,
            "<line class=\"reconnect\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{TOP}\" y2=\"{:.1}\"><title>{}</title></line>",
            TOP + plot_h,
            esc(why)
        );
    }
    for (t, why, class) in &overlays.marks {
        let x = axis.x(*t);
        let _ = write!(
            s,
            "<path class=\"{class}\" d=\"M{:.1} {TOP} l4 0 l-4 7 l-4 -7 z\"><title>{}</title></path>",
            x,
            esc(why)
        );
    }
}

/// Time labels along the bottom, their format by the span shown.
fn time_labels(s: &mut String, axis: &Axis, height: f64) {
    let span = axis.span_secs();
    let ticks = 6;
    for k in 0..=ticks {
        let secs = span * f64::from(k) / f64::from(ticks);
        let t = axis.t0() + chrono::Duration::milliseconds((secs * 1000.0) as i64);
        let fmt = if span > 86_400.0 {
            "%a %H:%M"
        } else if span < 600.0 {
            "%H:%M:%S"
        } else {
            "%H:%M"
        };
        let anchor = match k {
            0 => "start",
            k if k == ticks => "end",
            _ => "middle",
        };
        let _ = write!(
            s,
            "<text class=\"xl\" text-anchor=\"{anchor}\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            axis.x_of_secs(secs),
            height - 6.0,
            t.format(fmt)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_breaks_lines_on_gaps() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let t = |m: i64| DateTime::from_timestamp(60 * m, 0).unwrap();
        let axis = Axis {
            times: vec![t(0), t(1), t(2), t(3), t(60), t(61)],
            step_secs: 60.0,
        };
        let se = Series {
            name: "x".into(),
            colour: "#000".into(),
            values: vec![Some(1.0), Some(2.0), None, Some(3.0), Some(1.0), Some(1.0)],
        };
        let svg = time_chart(&axis, &[se], Style::Lines, &Overlays::default(), 100.0, "t");
        assert_eq!(svg.matches("<polyline").count(), 3, "{svg}");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }
}
