//! What repeated benchmark phases share: the summary of several runs (median and spread) and
//! how busy the machine was while each ran, so that a slow run can be told apart from a
//! machine that was doing something else.

use std::time::Instant;

use serde_json::json;

/// Median, extremes and relative spread of repeated measurements.
pub(crate) fn summary(values: &[f64]) -> serde_json::Value {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return json!(null);
    }
    v.sort_by(f64::total_cmp);
    let median = median_sorted(&v);
    let (min, max) = (v[0], v[v.len() - 1]);
    json!({
        "median": median,
        "min": min,
        "max": max,
        "runs": v.len(),
        // (max − min) / median: 0.10 means the runs lay within 10 % of their median's size.
        "spread": if median > 0.0 { (max - min) / median } else { 0.0 },
    })
}

fn median_sorted(v: &[f64]) -> f64 {
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// CPU time counters of the whole machine (`/proc/stat`, clock ticks) and of this process
/// (`/proc/self/stat`).
#[derive(Debug, Clone, Copy, Default)]
struct Ticks {
    busy: u64,
    idle: u64,
    steal: u64,
    own: u64,
}

fn read_ticks() -> Option<Ticks> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let f: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal [guest guest_nice, already in user]
    if f.len() < 8 {
        return None;
    }
    let idle = f[3] + f[4];
    let steal = f[7];
    let busy = f[0] + f[1] + f[2] + f[5] + f[6];
    let own = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces) start at field 3.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })?;
    Some(Ticks {
        busy,
        idle,
        steal,
        own,
    })
}

/// Measures the machine's load over one phase.
pub(crate) struct LoadMeter {
    start: Option<Ticks>,
    at: Instant,
}

impl LoadMeter {
    pub(crate) fn start() -> LoadMeter {
        LoadMeter {
            start: read_ticks(),
            at: Instant::now(),
        }
    }

    /// Seconds since [`LoadMeter::start`] and the load over them: `machine_busy` (the
    /// share of all CPUs' time spent running anything), `this_process` (the share this
    /// process used), `other` (busy time of every other process), and `steal` (time the
    /// hypervisor gave to other guests). Empty where `/proc` cannot be read.
    pub(crate) fn stop(self) -> (f64, serde_json::Value) {
        let seconds = self.at.elapsed().as_secs_f64();
        let (Some(a), Some(b)) = (self.start, read_ticks()) else {
            return (seconds, json!({}));
        };
        let total = (b.busy + b.idle + b.steal).saturating_sub(a.busy + a.idle + a.steal);
        if total == 0 {
            return (seconds, json!({}));
        }
        let share = |t: u64| t as f64 / total as f64;
        let busy = b.busy.saturating_sub(a.busy);
        let own = b.own.saturating_sub(a.own);
        (
            seconds,
            json!({
                "machine_busy": share(busy),
                "this_process": share(own.min(busy)),
                "other": share(busy.saturating_sub(own)),
                "steal": share(b.steal.saturating_sub(a.steal)),
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_reports_median_and_spread() {
        let s = summary(&[30.0, 10.0, 20.0, f64::NAN]);
        assert_eq!(s["median"], 20.0);
        assert_eq!(s["min"], 10.0);
        assert_eq!(s["max"], 30.0);
        assert_eq!(s["runs"], 3);
        assert_eq!(s["spread"], 1.0);
        assert_eq!(summary(&[4.0, 1.0, 3.0, 2.0])["median"], 2.5);
        assert!(summary(&[]).is_null());
    }

    #[test]
    fn the_load_meter_sees_this_process_work() {
        let m = LoadMeter::start();
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_millis() < 300 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let (secs, load) = m.stop();
        assert!(secs >= 0.3);
        let own = load["this_process"].as_f64().expect("a share");
        let busy = load["machine_busy"].as_f64().expect("a share");
        // One busy thread of however many CPUs: clearly above zero, never above the machine.
        assert!(own > 0.0 && own <= busy + 1e-9, "own {own}, busy {busy}");
    }
}
