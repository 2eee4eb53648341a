//! `report.html`: one self-contained page. Inline CSS, charts as inline SVG
//! drawn here; no script, font, image or style sheet from anywhere else, so
//! it opens the same with the network off.

use std::fmt::Write;

use crate::report::Report;

pub fn escape(s: &str) -> String {
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

struct Series<'a> {
    label: &'a str,
    color: &'a str,
    points: Vec<(f64, f64)>,
}

/// A "nice" upper bound for an axis: 1, 2 or 5 × 10^n at or above `v`.
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= v {
            return m * p;
        }
    }
    10.0 * p
}

fn fmt_num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// A line chart over seconds of the run.
fn line_chart(title: &str, unit: &str, series: &[Series]) -> String {
    // The title on the first line, the legend on the second, then the plot.
    let (w, h) = (720.0, 240.0);
    let (left, right, top, bottom) = (56.0, 12.0, 44.0, 30.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let x_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    let y_max = nice_max(
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0, f64::max),
    );
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = escape(title)
    );
    let _ = write!(
        svg,
        r#"<text x="{left}" y="16" class="ct">{} ({})</text>"#,
        escape(title),
        escape(unit)
    );
    for i in 0..=4 {
        let v = y_max * i as f64 / 4.0;
        let y = top + ph - ph * i as f64 / 4.0;
        let _ = write!(
            svg,
            r#"<line x1="{left}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" class="grid"/><text x="{tx}" y="{ty:.1}" class="ax" text-anchor="end">{}</text>"#,
            fmt_num(v),
            x2 = left + pw,
            tx = left - 6.0,
            ty = y + 4.0
        );
    }
    let ticks = 6;
    for i in 0..=ticks {
        let v = x_max * i as f64 / ticks as f64;
        let x = left + pw * i as f64 / ticks as f64;
        let _ = write!(
            svg,
            r#"<text x="{x:.1}" y="{y}" class="ax" text-anchor="middle">{}s</text>"#,
            fmt_num(v),
            y = top + ph + 18.0
        );
    }
    let _ = write!(
        svg,
        r#"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="frame"/>"#
    );
    for (i, s) in series.iter().enumerate() {
        let pts: Vec<String> = s
            .points
            .iter()
            .map(|(x, y)| {
                format!(
                    "{:.1},{:.1}",
                    left + pw * x / x_max,
                    top + ph - ph * (y / y_max).min(1.0)
                )
            })
            .collect();
        if pts.len() == 1 {
            let _ = write!(
                svg,
                r#"<circle cx="{}" r="3" fill="{}"/>"#,
                pts[0].replace(',', "\" cy=\""),
                s.color
            );
        } else if !pts.is_empty() {
            let _ = write!(
                svg,
                r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
                s.color,
                pts.join(" ")
            );
        }
        let lx = left + 150.0 * i as f64;
        let _ = write!(
            svg,
            r#"<rect x="{lx:.1}" y="24" width="10" height="10" fill="{c}"/><text x="{tx:.1}" y="33" class="ax">{l}</text>"#,
            c = s.color,
            tx = lx + 14.0,
            l = escape(s.label)
        );
    }
    svg.push_str("</svg>");
    svg
}

fn ms(v: f64) -> String {
    format!("{v:.2}")
}

pub fn render(r: &Report) -> String {
    let mut h = String::new();
    let title = format!("Load report: {}", r.scenario.name);
    let _ = write!(
        h,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{}</title><style>{}</style></head><body>"#,
        escape(&title),
        CSS
    );
    let verdict = if r.passed {
        r#"<span class="pass">PASSED</span>"#
    } else {
        r#"<span class="fail">FAILED</span>"#
    };
    let _ = write!(
        h,
        "<h1>{} {verdict}</h1><p class=\"meta\">{} · scenario file <code>{}</code> · started {} · target <code>{}</code> · {} model, stages {} · seed {} · {:.1} s</p>",
        escape(&title),
        escape(&r.scenario.description),
        escape(&r.scenario.file),
        escape(&r.started_at),
        escape(&r.settings.url),
        escape(&r.settings.model),
        escape(&r.settings.stages.join(", ")),
        r.settings.seed,
        r.elapsed_s,
    );
    let t = &r.totals;
    let _ = write!(
        h,
        "<div class=\"cards\"><div><b>{}</b>requests</div><div><b>{:.1}</b>req/s</div><div><b>{:.3} %</b>errors</div><div><b>{} ms</b>p95</div><div><b>{} ms</b>p99</div><div><b>{}</b>dropped arrivals</div></div>",
        t.count,
        t.rps,
        t.error_rate * 100.0,
        ms(t.p95_ms),
        ms(t.p99_ms),
        t.dropped
    );

    // Thresholds.
    h.push_str("<h2>Thresholds</h2>");
    if r.thresholds.is_empty() {
        h.push_str("<p>None set.</p>");
    } else {
        h.push_str("<table><tr><th>threshold</th><th>result</th><th>measured</th></tr>");
        for th in &r.thresholds {
            let _ = write!(
                h,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                escape(&th.threshold),
                if th.passed {
                    "<span class=\"pass\">pass</span>"
                } else {
                    "<span class=\"fail\">FAIL</span>"
                },
                escape(&th.detail)
            );
        }
        h.push_str("</table>");
    }

    // Charts.
    h.push_str("<h2>Over time</h2>");
    let secs = |f: &dyn Fn(&crate::report::TimelineRow) -> f64| -> Vec<(f64, f64)> {
        r.timeline
            .iter()
            .map(|row| (row.second as f64 + 1.0, f(row)))
            .collect()
    };
    h.push_str(&line_chart(
        "Throughput",
        "requests per second",
        &[
            Series {
                label: "answered",
                color: "#2563eb",
                points: secs(&|row| row.requests as f64),
            },
            Series {
                label: "errors",
                color: "#dc2626",
                points: secs(&|row| row.errors as f64),
            },
            Series {
                label: "dropped",
                color: "#9333ea",
                points: secs(&|row| row.dropped as f64),
            },
        ],
    ));
    h.push_str(&line_chart(
        "Latency",
        "ms, per second of the run",
        &[
            Series {
                label: "p50",
                color: "#16a34a",
                points: secs(&|row| row.p50_ms),
            },
            Series {
                label: "p99",
                color: "#ea580c",
                points: secs(&|row| row.p99_ms),
            },
        ],
    ));
    let active_label = if r.settings.model == "open" {
        "in flight"
    } else {
        "users"
    };
    h.push_str(&line_chart(
        "Load",
        if r.settings.model == "open" {
            "arrivals/s planned, requests in flight"
        } else {
            "users planned and running"
        },
        &[
            Series {
                label: "planned",
                color: "#64748b",
                points: secs(&|row| row.level),
            },
            Series {
                label: active_label,
                color: "#0891b2",
                points: secs(&|row| row.active as f64),
            },
        ],
    ));
    match &r.server {
        Some(s) => {
            let _ = write!(
                h,
                "<h2>Server process {}</h2><p>RSS {:.1} MB at the start, {:.1} MB at the end (growth {:.2} MB, the median of the last tenth of the samples minus the first tenth's; most {:.1} MB); CPU {:.0} % of one core on average.</p>",
                s.pid,
                s.rss_start_bytes as f64 / 1e6,
                s.rss_end_bytes as f64 / 1e6,
                s.rss_growth_bytes as f64 / 1e6,
                s.rss_max_bytes as f64 / 1e6,
                s.cpu_mean_percent
            );
            let rss: Vec<(f64, f64)> = s
                .samples
                .iter()
                .map(|x| (x.t_s, x.rss_bytes as f64 / 1e6))
                .collect();
            let cpu: Vec<(f64, f64)> = s
                .samples
                .iter()
                .skip(1)
                .map(|x| (x.t_s, x.cpu_percent))
                .collect();
            h.push_str(&line_chart(
                "Server RSS",
                "MB",
                &[Series {
                    label: "RSS",
                    color: "#7c3aed",
                    points: rss,
                }],
            ));
            h.push_str(&line_chart(
                "Server CPU",
                "% of one core",
                &[Series {
                    label: "CPU",
                    color: "#db2777",
                    points: cpu,
                }],
            ));
        }
        None => h.push_str(
            "<h2>Server process</h2><p>Not sampled: pass <code>--server-pid PID</code> to record its RSS and CPU.</p>",
        ),
    }

    // Per request type.
    h.push_str("<h2>Requests</h2><table><tr><th>request</th><th>method</th><th>path</th><th>count</th><th>errors</th><th>req/s</th><th>mean</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>max</th></tr>");
    for row in r.requests.iter().chain(std::iter::once(&r.totals)) {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&row.name),
            escape(&row.method),
            escape(&row.path),
            row.count,
            row.errors,
            row.rps,
            ms(row.mean_ms),
            ms(row.p50_ms),
            ms(row.p90_ms),
            ms(row.p95_ms),
            ms(row.p99_ms),
            ms(row.max_ms)
        );
    }
    h.push_str("</table><p class=\"meta\">Times in milliseconds. Open model: measured from each arrival's intended send time, so a queue in front of the server shows.</p>");

    // Errors.
    h.push_str("<h2>Errors</h2>");
    if r.errors.is_empty() {
        h.push_str("<p>None.</p>");
    } else {
        h.push_str("<table><tr><th>request</th><th>status</th><th>code</th><th>count</th></tr>");
        for e in &r.errors {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                escape(&e.request),
                if e.status == 0 {
                    "no answer".to_owned()
                } else {
                    e.status.to_string()
                },
                escape(&e.code),
                e.count
            );
        }
        h.push_str("</table>");
    }

    // Baseline.
    if let Some(b) = &r.baseline {
        let _ = write!(
            h,
            "<h2>Against the baseline</h2><p>Baseline <code>{}</code>; a p95 more than {}% worse is flagged.</p><table><tr><th>request</th><th>baseline p95</th><th>p95</th><th>change</th><th></th></tr>",
            escape(&b.file),
            b.tolerance_percent
        );
        let opt = |v: Option<f64>| v.map(ms).unwrap_or_else(|| "—".into());
        for row in &b.rows {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&row.request),
                opt(row.baseline_p95_ms),
                opt(row.p95_ms),
                row.change_percent
                    .map(|c| format!("{c:+.1} %"))
                    .unwrap_or_else(|| "—".into()),
                if row.regressed {
                    "<span class=\"fail\">worse</span>"
                } else {
                    ""
                }
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</body></html>\n");
    h
}

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#0f172a;max-width:1100px}\
h1{font-size:22px}h2{font-size:17px;margin-top:28px}\
.meta{color:#475569;font-size:13px}code{font-family:ui-monospace,monospace;font-size:12px}\
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #cbd5e1;padding:4px 8px;text-align:right}\
td:first-child,th:first-child,td:nth-child(3){text-align:left}th{background:#f1f5f9}\
.pass{color:#15803d;font-weight:600}.fail{color:#b91c1c;font-weight:700}\
.cards{display:flex;gap:12px;flex-wrap:wrap}.cards div{border:1px solid #cbd5e1;border-radius:6px;padding:8px 14px;font-size:12px;color:#475569}\
.cards b{display:block;font-size:20px;color:#0f172a}\
.chart{display:block;margin:8px 0}.chart .grid{stroke:#e2e8f0}.chart .frame{fill:none;stroke:#94a3b8}\
.chart .ax{font-size:11px;fill:#475569}.chart .ct{font-size:13px;font-weight:600;fill:#0f172a}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_scales() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(1.5), 2.0);
        assert_eq!(nice_max(420.0), 500.0);
        let svg = line_chart(
            "T",
            "u",
            &[Series {
                label: "<x>",
                color: "#000",
                points: vec![(1.0, 2.0), (2.0, 3.0)],
            }],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("<polyline"));
        assert!(svg.contains("&lt;x&gt;"));
    }
}
