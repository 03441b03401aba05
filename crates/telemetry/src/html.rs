//! The HTML report: one self-contained page (inline CSS and SVG, no script, no request to
//! anywhere) that a team lead opens from disk or mails on.

use crate::metrics::Summary;
use crate::report::{Dimension, Report};
use crate::retention::CHECKPOINTS;
use std::fmt::Write;

/// The reports one page shows: the chosen table plus one per charted dimension.
pub struct Page<'a> {
    pub table: &'a Report,
    pub by_day: &'a Report,
    pub by_language: &'a Report,
    pub by_editor: &'a Report,
    pub by_user: &'a Report,
}

const W: f64 = 560.0;
const H: f64 = 220.0;
const PAD: f64 = 40.0;
const ACCENT: &str = "#2f6fde";

pub fn render(p: &Page) -> String {
    let t = &p.table.total;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>moat report {since} to {until}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1c1c1c; background: #fff; }}
h1 {{ font-size: 20px; margin: 0 0 4px; }} h2 {{ font-size: 15px; margin: 0 0 8px; }}
.note {{ color: #666; margin: 0 0 16px; }}
.kpis {{ display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 20px; }}
.kpi {{ border: 1px solid #ddd; border-radius: 6px; padding: 8px 14px; min-width: 120px; }}
.kpi b {{ display: block; font-size: 22px; }}
.grid {{ display: flex; flex-wrap: wrap; gap: 20px; }}
.card {{ border: 1px solid #ddd; border-radius: 6px; padding: 12px; }}
svg text {{ font: 11px system-ui, sans-serif; fill: #333; }}
table {{ border-collapse: collapse; margin-top: 20px; }}
th, td {{ border-bottom: 1px solid #e4e4e4; padding: 4px 8px; text-align: right; white-space: nowrap; }}
th:first-child, td:first-child {{ text-align: left; }}
</style></head><body>
<h1>moat: completions and what became of them</h1>
<p class="note">{since} to {until} (UTC). Shown = visible for at least 750 ms; a partial accept counts as the fraction of characters taken.</p>
<div class="kpis">"#,
        since = esc(&p.table.since),
        until = esc(&p.table.until),
    );
    for (label, value) in [
        ("acceptance rate", pct(t.acceptance_rate)),
        ("by characters", pct(t.char_acceptance_rate)),
        ("shown", t.shown.to_string()),
        ("accepted", format!("{:.1}", t.accepted)),
        ("committed lines by moat", pct(t.committed_share)),
        ("latency p50", ms(t.latency_p50_ms)),
        ("latency p95", ms(t.latency_p95_ms)),
    ] {
        let _ = write!(
            out,
            "<div class=\"kpi\">{label}<b>{}</b></div>",
            esc(&value)
        );
    }
    out.push_str("</div>\n<div class=\"grid\">\n");
    card(&mut out, "Acceptance rate per day", &line_chart(p.by_day));
    card(&mut out, "Retention of accepted text", &retention_chart(t));
    for (title, r) in [
        ("Acceptance rate per language", p.by_language),
        ("Acceptance rate per editor", p.by_editor),
        ("Acceptance rate per user", p.by_user),
    ] {
        card(&mut out, title, &bars(r));
    }
    out.push_str("</div>\n");
    table(&mut out, p.table);
    out.push_str("</body></html>\n");
    out
}

fn card(out: &mut String, title: &str, svg: &str) {
    let _ = writeln!(
        out,
        "<div class=\"card\"><h2>{}</h2>{svg}</div>",
        esc(title)
    );
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |x| format!("{:.1}%", x * 100.0))
}

fn ms(v: Option<f64>) -> String {
    v.map_or("–".into(), |x| format!("{x:.0} ms"))
}

fn svg_open(h: f64, label: &str) -> String {
    format!(
        r#"<svg width="{W}" height="{h}" viewBox="0 0 {W} {h}" role="img" aria-label="{}">"#,
        esc(label)
    )
}

/// A 0–100% axis with grid lines, plot area from `PAD` to `W - 10` by `10` to `H - PAD`.
fn percent_axis(out: &mut String) {
    for i in 0..=4 {
        let y = y_of(i as f64 / 4.0);
        let _ = write!(
            out,
            r##"<line x1="{PAD}" y1="{y:.1}" x2="{x2}" y2="{y:.1}" stroke="#e4e4e4"/><text x="{tx}" y="{ty:.1}" text-anchor="end">{p}%</text>"##,
            x2 = W - 10.0,
            tx = PAD - 4.0,
            ty = y + 4.0,
            p = i * 25
        );
    }
}

fn y_of(v: f64) -> f64 {
    let top = 10.0;
    let bottom = H - PAD;
    bottom - v.clamp(0.0, 1.0) * (bottom - top)
}

fn x_of(i: usize, n: usize) -> f64 {
    let (left, right) = (PAD + 10.0, W - 20.0);
    if n <= 1 {
        return (left + right) / 2.0;
    }
    left + (right - left) * i as f64 / (n - 1) as f64
}

fn empty(out: &mut String) {
    let _ = write!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">no data</text>"#,
        W / 2.0,
        H / 2.0
    );
}

fn line_chart(r: &Report) -> String {
    let mut out = svg_open(H, "acceptance rate per day");
    percent_axis(&mut out);
    let days: Vec<(&str, f64)> = r
        .groups
        .iter()
        .filter_map(|g| Some((g.key.as_str(), g.summary.acceptance_rate?)))
        .collect();
    if days.is_empty() {
        empty(&mut out);
    }
    let points: Vec<String> = days
        .iter()
        .enumerate()
        .map(|(i, (_, v))| format!("{:.1},{:.1}", x_of(i, days.len()), y_of(*v)))
        .collect();
    let _ = write!(
        out,
        r#"<polyline fill="none" stroke="{ACCENT}" stroke-width="2" points="{}"/>"#,
        points.join(" ")
    );
    let every = days.len().div_ceil(8).max(1);
    for (i, (day, v)) in days.iter().enumerate() {
        let (x, y) = (x_of(i, days.len()), y_of(*v));
        let _ = write!(
            out,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{ACCENT}"><title>{}: {}</title></circle>"#,
            esc(day),
            pct(Some(*v))
        );
        if i % every == 0 {
            let _ = write!(
                out,
                r#"<text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#,
                H - PAD + 16.0,
                esc(day.get(5..).unwrap_or(day))
            );
        }
    }
    out + "</svg>"
}

fn retention_chart(t: &Summary) -> String {
    let mut out = svg_open(H, "retention of accepted text");
    percent_axis(&mut out);
    // The checkpoints the servers used (configurable), else the default ones.
    let checkpoints: Vec<u32> = if t.retention.is_empty() {
        CHECKPOINTS.to_vec()
    } else {
        t.retention.keys().copied().collect()
    };
    let n = checkpoints.len();
    let label = |s: u32| {
        if s < 60 {
            format!("{s} s")
        } else {
            format!("{} min", s / 60)
        }
    };
    for (i, at) in checkpoints.iter().enumerate() {
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            x_of(i, n),
            H - PAD + 16.0,
            label(*at)
        );
    }
    let pts: Vec<(f64, f64, f64)> = checkpoints
        .iter()
        .enumerate()
        .filter_map(|(i, at)| {
            let v = *t.retention.get(at)?;
            Some((x_of(i, n), y_of(v), v))
        })
        .collect();
    if pts.is_empty() {
        empty(&mut out);
    }
    let line: Vec<String> = pts
        .iter()
        .map(|(x, y, _)| format!("{x:.1},{y:.1}"))
        .collect();
    let _ = write!(
        out,
        r#"<polyline fill="none" stroke="{ACCENT}" stroke-width="2" points="{}"/>"#,
        line.join(" ")
    );
    for (x, y, v) in pts {
        let _ = write!(
            out,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{ACCENT}"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            y - 8.0,
            pct(Some(v))
        );
    }
    out + "</svg>"
}

/// Horizontal bars: one per group, the acceptance rate, with the count shown.
fn bars(r: &Report) -> String {
    let rows: Vec<(&str, f64, u64)> = r
        .groups
        .iter()
        .filter_map(|g| Some((g.key.as_str(), g.summary.acceptance_rate?, g.summary.shown)))
        .take(20)
        .collect();
    let row_h = 24.0;
    let h = (rows.len().max(1) as f64) * row_h + 16.0;
    let mut out = svg_open(h, "acceptance rate per group");
    if rows.is_empty() {
        let _ = write!(
            out,
            r#"<text x="{}" y="20" text-anchor="middle">no data</text>"#,
            W / 2.0
        );
    }
    let (left, right) = (140.0, W - 120.0);
    for (i, (key, v, shown)) in rows.iter().enumerate() {
        let y = 8.0 + i as f64 * row_h;
        let key = if key.is_empty() { "(unknown)" } else { key };
        let short: String = key.chars().take(22).collect();
        let _ = write!(
            out,
            r##"<text x="{lx}" y="{ty:.1}" text-anchor="end">{k}<title>{full}</title></text><rect x="{left}" y="{y:.1}" width="{bw:.1}" height="{bh}" fill="{ACCENT}"/><rect x="{left}" y="{y:.1}" width="{fw:.1}" height="{bh}" fill="none" stroke="#ccc"/><text x="{vx:.1}" y="{ty:.1}">{p} of {shown}</text>"##,
            lx = left - 6.0,
            ty = y + 13.0,
            k = esc(&short),
            full = esc(key),
            bw = (right - left) * v.clamp(0.0, 1.0),
            bh = row_h - 8.0,
            fw = right - left,
            vx = right + 6.0,
            p = pct(Some(*v)),
        );
    }
    out + "</svg>"
}

fn table(out: &mut String, r: &Report) {
    let head = match r.by {
        Some(Dimension::User) => "user",
        Some(Dimension::Language) => "language",
        Some(Dimension::Editor) => "editor",
        Some(Dimension::Model) => "model",
        Some(Dimension::Repo) => "repository",
        Some(Dimension::Day) => "day",
        None => "",
    };
    let _ = write!(
        out,
        "<table><thead><tr><th>{head}</th><th>completions</th><th>shown</th><th>accepted</th><th>rate</th><th>char rate</th><th>lines accepted</th>"
    );
    for at in CHECKPOINTS {
        let _ = write!(out, "<th>kept {at} s</th>");
    }
    out.push_str(
        "<th>p50</th><th>p95</th><th>committed lines</th><th>by moat</th></tr></thead><tbody>\n",
    );
    let mut rows: Vec<(&str, &Summary)> = r
        .groups
        .iter()
        .map(|g| (g.key.as_str(), &g.summary))
        .collect();
    rows.push(("total", &r.total));
    for (key, s) in rows {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{:.0}</td>",
            esc(key),
            s.completions,
            s.shown,
            s.accepted,
            pct(s.acceptance_rate),
            pct(s.char_acceptance_rate),
            s.accepted_lines
        );
        for at in CHECKPOINTS {
            let _ = write!(out, "<td>{}</td>", pct(s.retention.get(&at).copied()));
        }
        let _ = writeln!(
            out,
            "<td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ms(s.latency_p50_ms),
            ms(s.latency_p95_ms),
            s.committed_lines.map_or("–".into(), |n| n.to_string()),
            pct(s.committed_share)
        );
    }
    out.push_str("</tbody></table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Completion, Event, EventKind, Loaded};

    #[test]
    fn the_page_escapes_names_and_holds_no_reference_to_elsewhere() {
        let c = |id: &str, user: &str| Completion {
            id: id.into(),
            user: user.into(),
            language: "python".into(),
            chars: 10,
            lines: 1,
            latency_ms: 120.0,
            ..Default::default()
        };
        let ev = |id: &str, t, kind| Event {
            completion: id.into(),
            time_ms: t,
            kind,
            chars: None,
            visible_ms: None,
        };
        let data = Loaded {
            completions: vec![c("a", "<script>alert(1)</script>"), c("b", "bob & co")],
            events: vec![
                ev("a", 0, EventKind::Shown),
                ev("a", 1000, EventKind::Accepted),
                ev("b", 0, EventKind::Shown),
            ],
            ..Default::default()
        };
        let page = crate::render(
            &data,
            0,
            86_400_000,
            Some(Dimension::User),
            None,
            crate::Format::Html,
        );
        assert!(page.starts_with("<!DOCTYPE html>") && page.ends_with("</html>\n"));
        assert!(!page.contains("<script"), "a user name became markup");
        assert!(page.contains("&lt;script&gt;") && page.contains("bob &amp; co"));
        assert_eq!(
            page.matches("<svg").count(),
            5,
            "day, retention, 3 bar charts"
        );
        assert!(page.contains("50.0%"), "one of two accepted");
        for remote in ["http:", "https:", "src=", "href=", "url("] {
            assert!(!page.contains(remote), "{remote}");
        }
    }
}
