//! Stages and the arrival schedule: how many users (closed model) or how many
//! arrivals per second (open model) the run asks for at each moment.

use std::time::Duration;

/// Parses `30s`, `500ms`, `2m`, `1h`, `1.5s`, `250us`. A bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (like 30s, 500ms, 2m)"))?;
    let secs = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown duration unit `{other}` in `{s}`")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("`{s}` is not a duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A think time: a fixed duration or a uniform range `100ms..500ms`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Think {
    pub min: Duration,
    pub max: Duration,
}

impl Think {
    pub fn parse(s: &str) -> Result<Think, String> {
        match s.split_once("..") {
            Some((a, b)) => {
                let (min, max) = (parse_duration(a)?, parse_duration(b)?);
                if max < min {
                    return Err(format!("think time `{s}`: the end is before the start"));
                }
                Ok(Think { min, max })
            }
            None => {
                let d = parse_duration(s)?;
                Ok(Think { min: d, max: d })
            }
        }
    }
}

/// Parses a rate: `200/s`, `200`, `12000/m`.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let (num, per) = s.split_once('/').unwrap_or((s, "s"));
    let value: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a rate (like 200/s)"))?;
    let per_second = match per.trim() {
        "s" | "sec" => value,
        "m" | "min" => value / 60.0,
        other => return Err(format!("unknown rate unit `/{other}` in `{s}`")),
    };
    if !per_second.is_finite() || per_second <= 0.0 {
        return Err(format!("rate `{s}` must be above zero"));
    }
    Ok(per_second)
}

/// One stage: ramp linearly from the previous level to `target` over
/// `duration` (`30s->50`), or hold `target` for `duration` (`300s@50`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    pub target: f64,
    pub ramp: bool,
}

impl Stage {
    pub fn parse(s: &str) -> Result<Stage, String> {
        let s = s.trim();
        let (dur, target, ramp) = if let Some((d, t)) = s.split_once("->") {
            (d, t, true)
        } else if let Some((d, t)) = s.split_once('→') {
            (d, t, true)
        } else if let Some((d, t)) = s.split_once('@') {
            (d, t, false)
        } else {
            return Err(format!(
                "stage `{s}`: expected DURATION->LEVEL (ramp) or DURATION@LEVEL (hold), like 30s->50 or 300s@50"
            ));
        };
        let duration = parse_duration(dur)?;
        let t = target.trim();
        let target = t
            .strip_suffix("/s")
            .unwrap_or(t)
            .parse::<f64>()
            .map_err(|_| format!("stage `{s}`: `{t}` is not a number"))?;
        if !target.is_finite() || target < 0.0 {
            return Err(format!("stage `{s}`: the level must be zero or more"));
        }
        Ok(Stage {
            duration,
            target,
            ramp,
        })
    }

    pub fn spec(&self) -> String {
        let secs = self.duration.as_secs_f64();
        format!(
            "{secs}s{}{}",
            if self.ramp { "->" } else { "@" },
            self.target
        )
    }
}

/// A sequence of stages, starting from level 0.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub stages: Vec<Stage>,
}

impl Plan {
    /// A constant level for `duration`.
    pub fn constant(level: f64, duration: Duration) -> Plan {
        Plan {
            stages: vec![Stage {
                duration,
                target: level,
                ramp: false,
            }],
        }
    }

    pub fn total(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    pub fn max_level(&self) -> f64 {
        self.stages.iter().map(|s| s.target).fold(0.0, f64::max)
    }

    /// Each stage as (start level, end level, seconds).
    fn segments(&self) -> impl Iterator<Item = (f64, f64, f64)> + '_ {
        let mut level = 0.0;
        self.stages.iter().map(move |s| {
            let start = if s.ramp { level } else { s.target };
            level = s.target;
            (start, s.target, s.duration.as_secs_f64())
        })
    }

    /// The level `t` seconds into the run (0 after the last stage).
    pub fn level_at(&self, t: f64) -> f64 {
        let mut from = 0.0;
        for (a, b, d) in self.segments() {
            if t < from + d {
                let x = if d > 0.0 { (t - from) / d } else { 1.0 };
                return a + (b - a) * x;
            }
            from += d;
        }
        0.0
    }

    /// Arrivals expected in `[0, t]` when the level is a rate per second:
    /// the integral of the level.
    pub fn cumulative(&self, t: f64) -> f64 {
        let mut from = 0.0;
        let mut total = 0.0;
        for (a, b, d) in self.segments() {
            let x = (t - from).clamp(0.0, d);
            if d > 0.0 {
                total += a * x + (b - a) * x * x / (2.0 * d);
            }
            if t <= from + d {
                break;
            }
            from += d;
        }
        total
    }

    /// The intended send time (seconds from the start) of arrival `n`
    /// (0-based) of the open model: the moment the integral of the rate
    /// reaches `n`. `None` when the plan ends before it.
    pub fn arrival_time(&self, n: u64) -> Option<f64> {
        let n = n as f64;
        let mut from = 0.0;
        let mut before = 0.0;
        for (a, b, d) in self.segments() {
            if d <= 0.0 {
                continue;
            }
            let in_stage = (a + b) * d / 2.0;
            if n < before + in_stage || (n == before && in_stage > 0.0) {
                let m = n - before;
                // Solve a·x + k·x² = m with k = (b − a) / 2d, in the form
                // that stays stable when k is 0 or negative.
                let k = (b - a) / (2.0 * d);
                let disc = (a * a + 4.0 * k * m).max(0.0);
                let denom = a + disc.sqrt();
                let x = if m <= 0.0 {
                    0.0
                } else if denom > 0.0 {
                    2.0 * m / denom
                } else {
                    d
                };
                return Some(from + x.min(d));
            }
            before += in_stage;
            from += d;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(specs: &[&str]) -> Plan {
        Plan {
            stages: specs.iter().map(|s| Stage::parse(s).unwrap()).collect(),
        }
    }

    #[test]
    fn durations_and_rates_parse() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("3 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(parse_rate("200/s").unwrap(), 200.0);
        assert_eq!(parse_rate("200").unwrap(), 200.0);
        assert_eq!(parse_rate("600/m").unwrap(), 10.0);
        assert!(parse_rate("0/s").is_err());
        assert!(parse_rate("fast").is_err());
        let t = Think::parse("100ms..300ms").unwrap();
        assert_eq!(
            (t.min, t.max),
            (Duration::from_millis(100), Duration::from_millis(300))
        );
        assert!(Think::parse("3s..1s").is_err());
    }

    #[test]
    fn stages_parse() {
        let s = Stage::parse("30s->50").unwrap();
        assert!(s.ramp);
        assert_eq!(s.target, 50.0);
        assert_eq!(s.duration, Duration::from_secs(30));
        assert_eq!(Stage::parse("30s→50").unwrap(), s);
        let h = Stage::parse("300s@50").unwrap();
        assert!(!h.ramp);
        assert_eq!(h.duration, Duration::from_secs(300));
        assert_eq!(Stage::parse("10s@200/s").unwrap().target, 200.0);
        assert!(Stage::parse("30s").is_err());
        assert!(Stage::parse("30s->-1").is_err());
        assert!(Stage::parse("xs->5").is_err());
    }

    #[test]
    fn stage_interpolation() {
        let p = plan(&["30s->50", "300s@50", "30s->0"]);
        assert_eq!(p.total(), Duration::from_secs(360));
        assert_eq!(p.max_level(), 50.0);
        assert_eq!(p.level_at(0.0), 0.0);
        assert!((p.level_at(15.0) - 25.0).abs() < 1e-9);
        assert!((p.level_at(29.999) - 50.0).abs() < 0.01);
        assert_eq!(p.level_at(30.0), 50.0);
        assert_eq!(p.level_at(200.0), 50.0);
        assert!((p.level_at(345.0) - 25.0).abs() < 1e-9);
        assert_eq!(p.level_at(360.0), 0.0);
        assert_eq!(p.level_at(1e6), 0.0);
        // A hold jumps straight to its level.
        let q = plan(&["10s@5", "10s->15"]);
        assert_eq!(q.level_at(0.0), 5.0);
        assert!((q.level_at(15.0) - 10.0).abs() < 1e-9);
    }

    #[test]
    fn constant_arrival_schedule() {
        let p = Plan::constant(200.0, Duration::from_secs(2));
        assert_eq!(p.arrival_time(0), Some(0.0));
        assert!((p.arrival_time(1).unwrap() - 0.005).abs() < 1e-12);
        assert!((p.arrival_time(399).unwrap() - 1.995).abs() < 1e-9);
        assert_eq!(p.arrival_time(400), None);
        // Exactly rate × duration arrivals.
        let n = (0..).take_while(|&i| p.arrival_time(i).is_some()).count();
        assert_eq!(n, 400);
    }

    #[test]
    fn ramped_arrival_schedule() {
        // 0 → 100/s over 10 s: 500 arrivals, the n-th at sqrt(n/5).
        let p = plan(&["10s->100", "10s@100"]);
        assert!((p.cumulative(10.0) - 500.0).abs() < 1e-9);
        assert!((p.cumulative(20.0) - 1500.0).abs() < 1e-9);
        for n in [1u64, 20, 125, 499] {
            let t = p.arrival_time(n).unwrap();
            assert!((t - (n as f64 / 5.0).sqrt()).abs() < 1e-9, "n={n} t={t}");
            assert!((p.cumulative(t) - n as f64).abs() < 1e-6);
        }
        // Into the hold: 500 + 100·x.
        assert!((p.arrival_time(600).unwrap() - 11.0).abs() < 1e-9);
        assert_eq!(p.arrival_time(1500), None);
        // A ramp down is integrated too, and times only increase.
        let down = plan(&["10s@100", "10s->0"]);
        let mut last = -1.0;
        for n in 0..1500 {
            let t = down.arrival_time(n).unwrap();
            assert!(t >= last);
            last = t;
        }
        assert!(down.arrival_time(1500).is_none());
        // A level of zero sends nothing.
        assert_eq!(plan(&["5s@0"]).arrival_time(0), None);
    }
}
