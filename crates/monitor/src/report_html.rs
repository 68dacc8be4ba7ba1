//! A drift report as one self-contained HTML page: inline CSS and SVG, no script, no external
//! asset. A summary table on top, then per column a histogram of reference and current shares
//! overlaid on the same bins, drifted columns first and highlighted.

use std::fmt::Write;

use crate::drift::{ColumnDrift, DriftReport, short};

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 180.0;
const REFERENCE_COLOR: &str = "#4c78a8";
const CURRENT_COLOR: &str = "#f58518";

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// The score and threshold as the table shows them.
pub fn score_text(c: &ColumnDrift) -> (String, String) {
    let score = c.score.map_or("n/a".to_string(), short);
    let op = if c.method.is_test() { "≤" } else { "≥" };
    (score, format!("{op} {}", short(c.threshold)))
}

/// Renders `report` for files named `reference` and `current`.
pub fn render(report: &DriftReport, reference: &str, current: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>berth drift: {cur}</title><style>{CSS}</style></head><body>\
         <h1>Drift report</h1><p class=\"files\">reference <code>{refe}</code> ({rr} rows) · \
         current <code>{cur}</code> ({cr} rows)</p>",
        refe = escape(reference),
        cur = escape(current),
        rr = report.reference_rows,
        cr = report.current_rows,
    );
    let verdict = if report.dataset_drift {
        "drift"
    } else {
        "no drift"
    };
    let _ = write!(
        out,
        "<p class=\"verdict {cls}\">Data set: <b>{verdict}</b> — {d} of {n} columns drifted ({share})</p>",
        cls = if report.dataset_drift { "bad" } else { "ok" },
        d = report.drifted_columns,
        n = report.columns.len(),
        share = pct(report.drifted_share),
    );
    schema_section(&mut out, report);
    out.push_str(
        "<table><thead><tr><th>column</th><th>type</th><th>method</th><th>score</th>\
         <th>threshold</th><th>drift</th><th>missing ref</th><th>missing cur</th>\
         <th>out of range / unseen</th></tr></thead><tbody>",
    );
    for c in &report.columns {
        let (score, threshold) = score_text(c);
        let _ = write!(
            out,
            "<tr class=\"{cls}\"><td><a href=\"#col-{id}\">{name}</a></td><td>{kind}</td>\
             <td>{method}</td><td>{score}</td><td>{threshold}</td><td>{drift}</td><td>{mr}</td>\
             <td>{mc}</td><td>{oor}</td></tr>",
            cls = if c.drift { "drift" } else { "" },
            id = anchor(&c.column),
            name = escape(&c.column),
            kind = c.kind,
            method = c.method,
            drift = if c.drift { "yes" } else { "no" },
            mr = pct(c.quality.missing_reference),
            mc = pct(c.quality.missing_current),
            oor = pct(c.quality.out_of_range_current + c.quality.unseen_current),
        );
    }
    out.push_str("</tbody></table>");
    let _ = write!(
        out,
        "<p class=\"legend\"><span style=\"background:{REFERENCE_COLOR}\"></span>reference \
         <span style=\"background:{CURRENT_COLOR}\"></span>current (share of values per bin)</p>"
    );
    for c in &report.columns {
        column_section(&mut out, c);
    }
    out.push_str("</body></html>\n");
    out
}

fn anchor(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn schema_section(out: &mut String, report: &DriftReport) {
    let s = &report.schema;
    if s.is_empty() && s.unsupported.is_empty() {
        return;
    }
    out.push_str("<div class=\"schema\"><h2>Schema changes</h2><ul>");
    let list = |names: &[String]| escape(&names.join(", "));
    if !s.added.is_empty() {
        let _ = write!(out, "<li>added: {}</li>", list(&s.added));
    }
    if !s.removed.is_empty() {
        let _ = write!(out, "<li>gone: {}</li>", list(&s.removed));
    }
    for t in &s.type_changed {
        let _ = write!(out, "<li>type changed: {}</li>", escape(&t.to_string()));
    }
    if !s.unsupported.is_empty() {
        let _ = write!(
            out,
            "<li>not profiled (type): {}</li>",
            list(&s.unsupported)
        );
    }
    out.push_str("</ul></div>");
}

fn column_section(out: &mut String, c: &ColumnDrift) {
    let (score, threshold) = score_text(c);
    let _ = write!(
        out,
        "<section id=\"col-{id}\" class=\"{cls}\"><h2>{name} <small>{kind} · {method} {score} \
         (threshold {threshold}) · {verdict}</small></h2>",
        id = anchor(&c.column),
        cls = if c.drift { "drift" } else { "" },
        name = escape(&c.column),
        kind = c.kind,
        method = c.method,
        verdict = if c.drift { "DRIFT" } else { "no drift" },
    );
    histogram_svg(out, c);
    let q = &c.quality;
    let mut notes = Vec::new();
    if !q.unseen_categories.is_empty() {
        let names: Vec<String> = q
            .unseen_categories
            .iter()
            .map(|(n, k)| format!("{} ({k})", escape(n)))
            .collect();
        notes.push(format!("unseen: {}", names.join(", ")));
    }
    if q.rejected_current > 0 {
        notes.push(format!(
            "{} values rejected for their type",
            q.rejected_current
        ));
    }
    if q.non_finite_current > 0 {
        notes.push(format!("{} infinite values", q.non_finite_current));
    }
    if !notes.is_empty() {
        let _ = write!(out, "<p class=\"notes\">{}</p>", notes.join(" · "));
    }
    out.push_str("</section>");
}

fn histogram_svg(out: &mut String, c: &ColumnDrift) {
    let h = &c.histogram;
    let shares = |counts: &[u64]| -> Vec<f64> {
        let total: u64 = counts.iter().sum();
        counts
            .iter()
            .map(|&n| {
                if total == 0 {
                    0.0
                } else {
                    n as f64 / total as f64
                }
            })
            .collect()
    };
    let (r, k) = (shares(&h.reference), shares(&h.current));
    // Empty out-of-range slots on both sides are not drawn.
    let shown: Vec<usize> = (0..h.labels.len())
        .filter(|&i| r.get(i).copied().unwrap_or(0.0) + k.get(i).copied().unwrap_or(0.0) > 0.0)
        .collect();
    if shown.is_empty() {
        out.push_str("<p class=\"notes\">no values to draw</p>");
        return;
    }
    let top = shown
        .iter()
        .map(|&i| r[i].max(k[i]))
        .fold(0.0, f64::max)
        .max(1e-12);
    let slot = WIDTH / shown.len() as f64;
    let bar = (slot * 0.4).max(1.0);
    let _ = write!(
        out,
        "<svg viewBox=\"0 0 {w} {hh}\" width=\"{w}\" height=\"{hh}\" role=\"img\">",
        w = WIDTH,
        hh = HEIGHT + 40.0,
    );
    for (pos, &i) in shown.iter().enumerate() {
        let x = pos as f64 * slot + slot * 0.1;
        for (offset, value, color, side) in [
            (0.0, r[i], REFERENCE_COLOR, "reference"),
            (bar, k[i], CURRENT_COLOR, "current"),
        ] {
            let height = value / top * HEIGHT;
            let _ = write!(
                out,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{height:.1}\" \
                 fill=\"{color}\"><title>{} {side}: {}</title></rect>",
                x + offset,
                HEIGHT - height,
                escape(&h.labels[i]),
                pct(value),
            );
        }
        if shown.len() <= 24 {
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" text-anchor=\"end\" \
                 transform=\"rotate(-35 {:.1} {:.1})\">{}</text>",
                x + bar,
                HEIGHT + 12.0,
                x + bar,
                HEIGHT + 12.0,
                escape(&h.labels[i]),
            );
        }
    }
    let _ = write!(
        out,
        "<line x1=\"0\" y1=\"{HEIGHT}\" x2=\"{WIDTH}\" y2=\"{HEIGHT}\" stroke=\"#888\"/></svg>"
    );
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:60em}\
h1{margin-bottom:0.2em}h2{font-size:1.1em;margin:1.4em 0 0.3em}h2 small{font-weight:normal;color:#555}\
table{border-collapse:collapse;font-size:0.9em}td,th{padding:0.25em 0.7em;border-bottom:1px solid #ddd;text-align:left}\
tr.drift td{background:#fde2e1;font-weight:600}section.drift{border-left:4px solid #d62728;padding-left:0.8em}\
.verdict.bad{color:#b00}.verdict.ok{color:#060}.files{color:#555}.notes{color:#555;font-size:0.9em}\
.legend span{display:inline-block;width:0.9em;height:0.9em;margin:0 0.3em 0 1em;vertical-align:middle}\
.schema{background:#fff6e0;padding:0.2em 1em;border:1px solid #f0d890}svg{display:block}";
