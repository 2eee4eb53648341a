//! `report.json`: what a run measured, its settings, thresholds and the
//! comparison with a baseline. `report.html` is drawn from the same value.

use serde::{Deserialize, Serialize};

use crate::threshold::ThresholdResult;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// This format's version.
    pub format: u32,
    pub scenario: ScenarioInfo,
    pub settings: Settings,
    pub started_at: String,
    /// Seconds from the first request sent to the last answer received.
    pub elapsed_s: f64,
    pub totals: RequestRow,
    pub requests: Vec<RequestRow>,
    pub timeline: Vec<TimelineRow>,
    pub errors: Vec<ErrorRow>,
    pub server: Option<ServerInfo>,
    pub thresholds: Vec<ThresholdResultOut>,
    pub baseline: Option<BaselineComparison>,
    /// Every threshold held and no p95 regressed past the baseline tolerance.
    pub passed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub file: String,
    pub description: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    pub url: String,
    /// `closed` (users) or `open` (arrival rate).
    pub model: String,
    /// Users (closed) or arrivals per second (open), per stage.
    pub stages: Vec<String>,
    pub duration_s: f64,
    pub seed: u64,
    pub max_in_flight: Option<usize>,
    pub timeout_ms: u64,
    pub data: Vec<DataCount>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataCount {
    pub name: String,
    pub values: usize,
}

/// One request type (or the totals).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestRow {
    pub name: String,
    pub method: String,
    pub path: String,
    pub count: u64,
    pub errors: u64,
    pub error_rate: f64,
    /// Completed per second over the run.
    pub rps: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Open model: arrivals not sent because the in-flight cap was reached
    /// (totals only).
    #[serde(default)]
    pub dropped: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimelineRow {
    pub second: u64,
    pub requests: u64,
    pub errors: u64,
    pub dropped: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Users (closed model) or requests in flight (open), the most seen.
    pub active: u64,
    /// The plan's level: users, or arrivals per second.
    pub level: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorRow {
    pub request: String,
    /// 0 when no answer came (connection error or timeout).
    pub status: u16,
    /// The problem+json `code`, or `check: …` when a check failed on an
    /// accepted status, or the transport error's kind.
    pub code: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerInfo {
    pub pid: u32,
    pub samples: Vec<ServerSample>,
    pub rss_start_bytes: u64,
    pub rss_end_bytes: u64,
    pub rss_max_bytes: u64,
    /// The median of the last tenth of the samples minus that of the first
    /// tenth (negative when it shrank): a trend, not two points of a swing.
    pub rss_growth_bytes: i64,
    pub cpu_mean_percent: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerSample {
    pub t_s: f64,
    pub rss_bytes: u64,
    /// Of one core, since the previous sample (200 = two cores busy).
    pub cpu_percent: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThresholdResultOut {
    pub threshold: String,
    pub passed: bool,
    pub actual: Option<f64>,
    pub limit: f64,
    pub unit: String,
    pub detail: String,
}

impl From<ThresholdResult> for ThresholdResultOut {
    fn from(r: ThresholdResult) -> Self {
        ThresholdResultOut {
            threshold: r.threshold,
            passed: r.passed,
            actual: r.actual,
            limit: r.limit,
            unit: r.unit.to_owned(),
            detail: r.detail,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaselineComparison {
    pub file: String,
    pub tolerance_percent: f64,
    pub rows: Vec<BaselineRow>,
    /// Any row regressed.
    pub regressed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaselineRow {
    pub request: String,
    pub baseline_p95_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    /// (now − baseline) / baseline × 100.
    pub change_percent: Option<f64>,
    /// Worse than the baseline by more than the tolerance.
    pub regressed: bool,
}

/// Parses `10%` or `10` (percent).
pub fn parse_tolerance(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let n: f64 = t
        .strip_suffix('%')
        .unwrap_or(t)
        .trim()
        .parse()
        .map_err(|_| format!("baseline tolerance `{s}` is not a percentage like 10%"))?;
    if !n.is_finite() || n < 0.0 {
        return Err(format!("baseline tolerance `{s}` must be 0% or more"));
    }
    Ok(n)
}

/// Compares the p95 of every request type (and the totals, as `all`) with a
/// baseline report. A type missing on either side is listed, not flagged.
pub fn compare(
    baseline: &Report,
    current_rows: &[RequestRow],
    current_totals: &RequestRow,
    file: &str,
    tolerance_percent: f64,
) -> BaselineComparison {
    let mut rows = Vec::new();
    let base_rows = baseline
        .requests
        .iter()
        .chain(std::iter::once(&baseline.totals));
    let cur_rows: Vec<&RequestRow> = current_rows
        .iter()
        .chain(std::iter::once(current_totals))
        .collect();
    let mut names: Vec<String> = cur_rows.iter().map(|r| r.name.clone()).collect();
    for b in base_rows.clone() {
        if !names.contains(&b.name) {
            names.push(b.name.clone());
        }
    }
    for name in names {
        let base = base_rows
            .clone()
            .find(|r| r.name == name && r.count > 0)
            .map(|r| r.p95_ms);
        let now = cur_rows
            .iter()
            .find(|r| r.name == name && r.count > 0)
            .map(|r| r.p95_ms);
        let change = match (base, now) {
            (Some(b), Some(n)) if b > 0.0 => Some((n - b) / b * 100.0),
            _ => None,
        };
        let regressed = change.is_some_and(|c| c > tolerance_percent);
        rows.push(BaselineRow {
            request: name,
            baseline_p95_ms: base,
            p95_ms: now,
            change_percent: change,
            regressed,
        });
    }
    BaselineComparison {
        file: file.to_owned(),
        tolerance_percent,
        regressed: rows.iter().any(|r| r.regressed),
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn row(name: &str, count: u64, p95: f64) -> RequestRow {
        RequestRow {
            name: name.into(),
            method: "GET".into(),
            path: "/".into(),
            count,
            errors: 0,
            error_rate: 0.0,
            rps: 0.0,
            mean_ms: 0.0,
            p50_ms: 0.0,
            p90_ms: 0.0,
            p95_ms: p95,
            p99_ms: 0.0,
            max_ms: 0.0,
            dropped: 0,
        }
    }

    fn report(rows: Vec<RequestRow>, totals: RequestRow) -> Report {
        Report {
            format: 1,
            scenario: ScenarioInfo {
                name: "s".into(),
                file: "s.toml".into(),
                description: String::new(),
            },
            settings: Settings {
                url: "http://127.0.0.1:1".into(),
                model: "closed".into(),
                stages: vec![],
                duration_s: 1.0,
                seed: 1,
                max_in_flight: None,
                timeout_ms: 1000,
                data: vec![],
            },
            started_at: String::new(),
            elapsed_s: 1.0,
            totals,
            requests: rows,
            timeline: vec![],
            errors: vec![],
            server: None,
            thresholds: vec![],
            baseline: None,
            passed: true,
        }
    }

    #[test]
    fn tolerance_parses() {
        assert_eq!(parse_tolerance("10%").unwrap(), 10.0);
        assert_eq!(parse_tolerance("2.5").unwrap(), 2.5);
        assert!(parse_tolerance("-1%").is_err());
        assert!(parse_tolerance("lots").is_err());
    }

    #[test]
    fn flags_a_p95_worse_than_the_tolerance() {
        let base = report(
            vec![
                row("list", 100, 10.0),
                row("detail", 100, 10.0),
                row("gone", 5, 1.0),
            ],
            row("all", 205, 10.0),
        );
        let now = vec![
            row("list", 100, 10.9),   // +9 %: within 10 %
            row("detail", 100, 11.5), // +15 %: flagged
            row("new", 100, 50.0),    // no baseline: listed, not flagged
        ];
        let c = compare(&base, &now, &row("all", 300, 9.0), "base.json", 10.0);
        let get = |n: &str| c.rows.iter().find(|r| r.request == n).unwrap();
        assert!(!get("list").regressed);
        assert!((get("list").change_percent.unwrap() - 9.0).abs() < 1e-9);
        assert!(get("detail").regressed);
        assert!(!get("new").regressed);
        assert_eq!(get("new").baseline_p95_ms, None);
        assert_eq!(get("gone").p95_ms, None);
        assert!(!get("all").regressed, "faster overall");
        assert!(c.regressed);
        // A looser tolerance lets it through.
        let loose = compare(&base, &now, &row("all", 300, 9.0), "base.json", 20.0);
        assert!(!loose.regressed);
    }

    #[test]
    fn a_report_round_trips_through_json() {
        let r = report(vec![row("list", 1, 2.0)], row("all", 1, 2.0));
        let text = serde_json::to_string(&r).unwrap();
        let back: Report = serde_json::from_str(&text).unwrap();
        assert_eq!(back.requests[0].p95_ms, 2.0);
    }
}
