//! What a run records: latency histograms per request type and per second,
//! errors by status and problem `code`, arrivals dropped by the open model.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Latencies in microseconds, 1 µs to 10 minutes, three significant digits
/// (a value reads back within 0.1 %).
pub struct Latency {
    hist: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            hist: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"),
        }
    }
}

impl Latency {
    pub fn record(&mut self, d: Duration) {
        let us = (d.as_micros() as u64).max(1);
        self.hist.saturating_record(us);
    }
    pub fn count(&self) -> u64 {
        self.hist.len()
    }
    pub fn merge(&mut self, other: &Latency) {
        let _ = self.hist.add(&other.hist);
    }
    /// The `p`-th percentile (0–100) in milliseconds: the smallest recorded
    /// value that at least `p` % of the values are at or below. 0 when empty.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.hist.is_empty() {
            return 0.0;
        }
        self.hist.value_at_quantile((p / 100.0).clamp(0.0, 1.0)) as f64 / 1e3
    }
    pub fn max_ms(&self) -> f64 {
        if self.hist.is_empty() {
            0.0
        } else {
            self.hist.max() as f64 / 1e3
        }
    }
    pub fn mean_ms(&self) -> f64 {
        if self.hist.is_empty() {
            0.0
        } else {
            self.hist.mean() / 1e3
        }
    }
}

/// One request type (a step of the scenario, by name).
pub struct TypeStats {
    pub name: String,
    pub method: String,
    pub path: String,
    pub latency: Latency,
    pub errors: u64,
}

/// One second of the run, by completion time.
#[derive(Default)]
pub struct Second {
    pub requests: u64,
    pub errors: u64,
    pub dropped: u64,
    pub latency: Option<Latency>,
    /// Users (closed) or requests in flight (open), the most seen.
    pub active: u64,
    /// The plan's level (users, or arrivals per second) at this second.
    pub level: f64,
}

#[derive(Default)]
pub struct Stats {
    pub types: Vec<TypeStats>,
    pub seconds: Vec<Second>,
    /// (request type, status (0 = no answer), code) → count.
    pub errors: BTreeMap<(String, u16, String), u64>,
    pub dropped: u64,
}

/// The shared recorder; a short lock per request.
pub struct Recorder {
    pub start: Instant,
    pub stats: Mutex<Stats>,
    /// Seconds of the run; results after it are still recorded, in the last
    /// bucket, so a slow last answer is not lost.
    pub max_seconds: usize,
}

impl Recorder {
    pub fn new(start: Instant, types: Vec<TypeStats>, run: Duration) -> Recorder {
        let max_seconds = run.as_secs_f64().ceil().max(1.0) as usize;
        let seconds = (0..max_seconds).map(|_| Second::default()).collect();
        Recorder {
            start,
            stats: Mutex::new(Stats {
                types,
                seconds,
                ..Stats::default()
            }),
            max_seconds,
        }
    }

    fn second_of(&self, at: Instant) -> usize {
        let s = at.saturating_duration_since(self.start).as_secs() as usize;
        s.min(self.max_seconds - 1)
    }

    pub fn record(
        &self,
        type_index: usize,
        latency: Duration,
        done: Instant,
        error: Option<(u16, String)>,
    ) {
        let sec = self.second_of(done);
        let mut stats = self
            .stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let failed = error.is_some();
        if let Some((status, code)) = error {
            let name = stats.types[type_index].name.clone();
            *stats.errors.entry((name, status, code)).or_default() += 1;
        }
        let t = &mut stats.types[type_index];
        t.latency.record(latency);
        if failed {
            t.errors += 1;
        }
        let s = &mut stats.seconds[sec];
        s.requests += 1;
        if failed {
            s.errors += 1;
        }
        s.latency
            .get_or_insert_with(Latency::default)
            .record(latency);
    }

    pub fn dropped(&self, at: Instant) {
        let sec = self.second_of(at);
        let mut stats = self
            .stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        stats.dropped += 1;
        stats.seconds[sec].dropped += 1;
    }

    pub fn observe(&self, at: Instant, active: u64, level: f64) {
        let sec = self.second_of(at);
        let mut stats = self
            .stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let s = &mut stats.seconds[sec];
        s.active = s.active.max(active);
        s.level = s.level.max(level);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latency_of(values_ms: impl IntoIterator<Item = u64>) -> Latency {
        let mut l = Latency::default();
        for v in values_ms {
            l.record(Duration::from_millis(v));
        }
        l
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= b.abs() * 0.001 + 1e-9
    }

    #[test]
    fn percentiles_of_a_uniform_spread() {
        let l = latency_of(1..=1000);
        assert_eq!(l.count(), 1000);
        assert!(
            close(l.percentile_ms(50.0), 500.0),
            "{}",
            l.percentile_ms(50.0)
        );
        assert!(close(l.percentile_ms(90.0), 900.0));
        assert!(close(l.percentile_ms(95.0), 950.0));
        assert!(close(l.percentile_ms(99.0), 990.0));
        assert!(close(l.percentile_ms(100.0), 1000.0));
        assert!(close(l.max_ms(), 1000.0));
        assert!(close(l.mean_ms(), 500.5));
    }

    #[test]
    fn percentiles_see_the_tail() {
        // 98 fast answers and 2 very slow ones: p95 is fast, p99 is slow.
        let l = latency_of((0..98).map(|_| 2).chain([3000, 3000]));
        assert!(close(l.percentile_ms(50.0), 2.0));
        assert!(close(l.percentile_ms(95.0), 2.0));
        assert!(close(l.percentile_ms(99.0), 3000.0));
        assert!(close(l.max_ms(), 3000.0));
    }

    #[test]
    fn empty_and_merged() {
        let empty = Latency::default();
        assert_eq!(empty.percentile_ms(99.0), 0.0);
        assert_eq!(empty.max_ms(), 0.0);
        let mut a = latency_of([10, 20]);
        a.merge(&latency_of([30, 40]));
        assert_eq!(a.count(), 4);
        assert!(close(a.percentile_ms(50.0), 20.0));
        assert!(close(a.max_ms(), 40.0));
        // Sub-microsecond answers count as 1 µs, never lost.
        let mut tiny = Latency::default();
        tiny.record(Duration::from_nanos(10));
        assert_eq!(tiny.count(), 1);
    }

    #[test]
    fn recorder_buckets_by_second_and_type() {
        let start = Instant::now();
        let types = ["a", "b"]
            .iter()
            .map(|n| TypeStats {
                name: n.to_string(),
                method: "GET".into(),
                path: "/".into(),
                latency: Latency::default(),
                errors: 0,
            })
            .collect();
        let r = Recorder::new(start, types, Duration::from_secs(2));
        r.record(0, Duration::from_millis(5), start, None);
        r.record(
            1,
            Duration::from_millis(5),
            start + Duration::from_millis(1500),
            Some((409, "out_of_stock".into())),
        );
        // After the end: kept, in the last second.
        r.record(
            0,
            Duration::from_millis(5),
            start + Duration::from_secs(9),
            None,
        );
        r.dropped(start);
        let s = r.stats.lock().unwrap();
        assert_eq!(s.seconds.len(), 2);
        assert_eq!(s.seconds[0].requests, 1);
        assert_eq!(s.seconds[0].dropped, 1);
        assert_eq!((s.seconds[1].requests, s.seconds[1].errors), (2, 1));
        assert_eq!(s.types[0].latency.count(), 2);
        assert_eq!(s.types[1].errors, 1);
        assert_eq!(
            s.errors[&("b".to_string(), 409, "out_of_stock".to_string())],
            1
        );
        assert_eq!(s.dropped, 1);
    }
}
