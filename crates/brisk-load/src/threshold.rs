//! Thresholds: `[request type:]metric op value`, e.g. `p95<200ms`,
//! `place order:p99<20ms`, `error_rate<0.1%`, `rss_growth<2MB`,
//! `min_rps>1000`.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// A latency percentile (0–100), in milliseconds.
    Percentile(f64),
    MaxLatency,
    MeanLatency,
    /// Failed requests / all requests, a fraction.
    ErrorRate,
    /// Server RSS at the end minus at the start, bytes.
    RssGrowth,
    /// Completed requests per second over the run.
    Rps,
    /// Open-model arrivals dropped at the in-flight cap.
    Dropped,
}

impl Metric {
    pub fn unit(&self) -> &'static str {
        match self {
            Metric::Percentile(_) | Metric::MaxLatency | Metric::MeanLatency => "ms",
            Metric::ErrorRate => "%",
            Metric::RssGrowth => "bytes",
            Metric::Rps => "req/s",
            Metric::Dropped => "arrivals",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn holds(self, actual: f64, limit: f64) -> bool {
        match self {
            Op::Lt => actual < limit,
            Op::Le => actual <= limit,
            Op::Gt => actual > limit,
            Op::Ge => actual >= limit,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// As written.
    pub spec: String,
    /// A request type, or `None` for the whole run.
    pub scope: Option<String>,
    pub metric: Metric,
    pub op: Op,
    /// In the metric's base unit: ms, fraction, bytes, req/s, count.
    pub limit: f64,
}

fn number_and_unit(s: &str) -> Result<(f64, String), String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value = num
        .replace('_', "")
        .parse::<f64>()
        .map_err(|_| format!("`{s}` is not a number"))?;
    Ok((value, unit.trim().to_owned()))
}

impl Threshold {
    pub fn parse(input: &str) -> Result<Threshold, String> {
        let spec = input.trim().to_owned();
        let bad = |why: &str| format!("threshold `{spec}`: {why}");
        let op_at = spec
            .find(['<', '>'])
            .ok_or_else(|| bad("expected a comparison such as p95<200ms"))?;
        let (left, right) = spec.split_at(op_at);
        let (op, value) = if let Some(v) = right.strip_prefix("<=") {
            (Op::Le, v)
        } else if let Some(v) = right.strip_prefix(">=") {
            (Op::Ge, v)
        } else if let Some(v) = right.strip_prefix('<') {
            (Op::Lt, v)
        } else {
            (Op::Gt, &right[1..])
        };
        let (scope, metric_name) = match left.rsplit_once(':') {
            Some((scope, m)) if !scope.trim().is_empty() => {
                (Some(scope.trim().to_owned()), m.trim())
            }
            Some((_, m)) => (None, m.trim()),
            None => (None, left.trim()),
        };
        let metric = match metric_name {
            "max" => Metric::MaxLatency,
            "mean" | "avg" => Metric::MeanLatency,
            "error_rate" | "errors" => Metric::ErrorRate,
            "rss_growth" => Metric::RssGrowth,
            "min_rps" | "rps" => Metric::Rps,
            "dropped" => Metric::Dropped,
            p if p.starts_with('p') => {
                let n: f64 = p[1..]
                    .parse()
                    .map_err(|_| bad(&format!("unknown metric `{p}`")))?;
                // p999 reads as 99.9.
                let n = if p[1..].len() > 2 && p[1..].starts_with("99") && !p.contains('.') {
                    n / 10f64.powi(p[1..].len() as i32 - 2)
                } else {
                    n
                };
                if !(0.0..=100.0).contains(&n) {
                    return Err(bad("a percentile is between p0 and p100"));
                }
                Metric::Percentile(n)
            }
            other => {
                return Err(bad(&format!(
                    "unknown metric `{other}` (p50…p99, max, mean, error_rate, rss_growth, min_rps, dropped)"
                )));
            }
        };
        if metric_name == "min_rps" && matches!(op, Op::Lt | Op::Le) {
            return Err(bad("min_rps is a lower bound: write min_rps>N"));
        }
        if scope.is_some() && matches!(metric, Metric::RssGrowth | Metric::Dropped) {
            return Err(bad(
                "this metric is for the whole run, not one request type",
            ));
        }
        let (n, unit) = number_and_unit(value).map_err(|e| bad(&e))?;
        let limit = match metric {
            Metric::Percentile(_) | Metric::MaxLatency | Metric::MeanLatency => {
                match unit.as_str() {
                    "" | "ms" => n,
                    "us" | "µs" => n / 1e3,
                    "s" => n * 1e3,
                    u => return Err(bad(&format!("unknown time unit `{u}`"))),
                }
            }
            Metric::ErrorRate => match unit.as_str() {
                "%" => n / 100.0,
                "" => n,
                u => return Err(bad(&format!("unknown unit `{u}` (write 0.1% or 0.001)"))),
            },
            Metric::RssGrowth => match unit.as_str() {
                "" | "B" => n,
                "KB" | "kB" => n * 1e3,
                "MB" => n * 1e6,
                "GB" => n * 1e9,
                "KiB" => n * 1024.0,
                "MiB" => n * 1024.0 * 1024.0,
                "GiB" => n * 1024.0 * 1024.0 * 1024.0,
                u => return Err(bad(&format!("unknown size unit `{u}`"))),
            },
            Metric::Rps => match unit.as_str() {
                "" | "/s" => n,
                u => return Err(bad(&format!("unknown unit `{u}`"))),
            },
            Metric::Dropped => match unit.as_str() {
                "" => n,
                "%" => return Err(bad("dropped counts arrivals; write dropped<10")),
                u => return Err(bad(&format!("unknown unit `{u}`"))),
            },
        };
        Ok(Threshold {
            spec,
            scope,
            metric,
            op,
            limit,
        })
    }

    /// Judges an observed value (`None`: nothing was measured, which breaks
    /// the threshold: a limit on requests that never ran proves nothing).
    pub fn evaluate(&self, actual: Option<f64>) -> ThresholdResult {
        let passed = actual.is_some_and(|a| self.op.holds(a, self.limit));
        let show = |v: f64| match self.metric {
            Metric::ErrorRate => format!("{:.3} %", v * 100.0),
            Metric::RssGrowth => format!("{:.2} MB", v / 1e6),
            Metric::Rps => format!("{v:.1} req/s"),
            Metric::Dropped => format!("{v}"),
            _ => format!("{v:.2} ms"),
        };
        let detail = match actual {
            Some(a) => format!("{} (limit {})", show(a), show(self.limit)),
            None => match &self.scope {
                Some(s) => format!("no request of type `{s}` completed"),
                None => "not measured".to_owned(),
            },
        };
        ThresholdResult {
            threshold: self.spec.clone(),
            passed,
            actual,
            limit: self.limit,
            unit: self.metric.unit(),
            detail,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ThresholdResult {
    pub threshold: String,
    pub passed: bool,
    /// In the base unit (`unit`; error rates as a fraction).
    pub actual: Option<f64>,
    pub limit: f64,
    pub unit: &'static str,
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Threshold {
        Threshold::parse(s).unwrap()
    }

    #[test]
    fn parses_the_documented_forms() {
        let p95 = t("p95<200ms");
        assert_eq!(
            (p95.scope.clone(), p95.metric, p95.op, p95.limit),
            (None, Metric::Percentile(95.0), Op::Lt, 200.0)
        );
        let scoped = t("place order:p99<20ms");
        assert_eq!(scoped.scope.as_deref(), Some("place order"));
        assert_eq!(scoped.metric, Metric::Percentile(99.0));
        assert_eq!(t("p99<1.5s").limit, 1500.0);
        assert_eq!(t("p99 < 250us").limit, 0.25);
        assert_eq!(t("p999<50ms").metric, Metric::Percentile(99.9));
        assert_eq!(t("p50<=3").op, Op::Le);
        let e = t("error_rate<0.1%");
        assert_eq!(e.metric, Metric::ErrorRate);
        assert!((e.limit - 0.001).abs() < 1e-12);
        assert_eq!(t("error_rate<0.02").limit, 0.02);
        assert_eq!(t("rss_growth<2MB").limit, 2e6);
        assert_eq!(t("rss_growth<1MiB").limit, 1048576.0);
        let rps = t("min_rps>1000");
        assert_eq!(
            (rps.metric, rps.op, rps.limit),
            (Metric::Rps, Op::Gt, 1000.0)
        );
        assert_eq!(t("max<1s").metric, Metric::MaxLatency);
        assert_eq!(t("dropped<1").metric, Metric::Dropped);
    }

    #[test]
    fn refuses_nonsense() {
        for bad in [
            "p95",
            "p95<",
            "p95<fast",
            "p95<20 parsecs",
            "p101<5ms",
            "latency<5ms",
            "min_rps<10",
            "checkout:rss_growth<1MB",
            "error_rate<5 percent",
        ] {
            assert!(Threshold::parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn evaluates() {
        assert!(t("p95<200ms").evaluate(Some(150.0)).passed);
        assert!(!t("p95<200ms").evaluate(Some(200.0)).passed);
        assert!(t("p95<=200ms").evaluate(Some(200.0)).passed);
        assert!(!t("min_rps>1000").evaluate(Some(999.0)).passed);
        assert!(t("min_rps>1000").evaluate(Some(1001.0)).passed);
        let e = t("error_rate<0.1%").evaluate(Some(0.002));
        assert!(!e.passed);
        assert!(e.detail.contains("0.200 %"), "{}", e.detail);
        // Nothing measured breaks it, and says so.
        let none = t("checkout:p99<5ms").evaluate(None);
        assert!(!none.passed);
        assert!(none.detail.contains("checkout"));
    }
}
