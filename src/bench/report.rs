//! What a scenario prints: labelled figures for people, optionally one JSON object, and the
//! final machine-readable line `RESULT <scenario> ours=<x> baseline=<y> ratio=<r>`.

use serde_json::{Map, Value};

/// One scenario's outcome: its headline pair and every supporting figure.
pub struct Report {
    scenario: &'static str,
    /// What the headline measures, with its unit, e.g. "ops/s".
    unit: &'static str,
    figures: Vec<(String, Value, String)>,
    notes: Vec<String>,
}

impl Report {
    pub fn new(scenario: &'static str, unit: &'static str) -> Report {
        Report {
            scenario,
            unit,
            figures: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// A supporting figure: `name` (snake case, the JSON key), value, unit.
    pub fn figure(&mut self, name: &str, value: impl Into<Value>, unit: &str) {
        self.figures
            .push((name.to_string(), value.into(), unit.to_string()));
    }

    /// A sentence printed under the figures (what was measured, how).
    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// Print everything, ending with the RESULT line. `ratio` is ours / baseline.
    pub fn finish(self, ours: f64, baseline: f64, json: bool) {
        let ratio = if baseline > 0.0 { ours / baseline } else { 0.0 };
        if json {
            let mut figures = Map::new();
            for (name, value, _) in &self.figures {
                figures.insert(name.clone(), value.clone());
            }
            let doc = serde_json::json!({
                "scenario": self.scenario,
                "unit": self.unit,
                "ours": round(ours),
                "baseline": round(baseline),
                "ratio": round(ratio),
                "figures": figures,
                "notes": self.notes,
            });
            println!("{doc}");
        } else {
            println!("== {} ({})", self.scenario, self.unit);
            for (name, value, unit) in &self.figures {
                let shown = match value {
                    Value::Number(n) => n
                        .as_f64()
                        .map_or_else(|| n.to_string(), |f| format!("{}", round(f))),
                    other => other.to_string(),
                };
                println!("  {name:<36} {shown:>14} {unit}");
            }
            for note in &self.notes {
                println!("  note: {note}");
            }
            println!(
                "  ours {} {}, baseline {} {}, ratio {}",
                round(ours),
                self.unit,
                round(baseline),
                self.unit,
                round(ratio)
            );
        }
        println!(
            "RESULT {} ours={} baseline={} ratio={}",
            self.scenario,
            round(ours),
            round(baseline),
            round(ratio)
        );
    }
}

/// Three significant decimals at most, so lines stay readable.
pub fn round(x: f64) -> f64 {
    if x.abs() >= 100.0 {
        x.round()
    } else {
        (x * 1000.0).round() / 1000.0
    }
}

/// Percentile `p` (0-100) of sorted samples; 0 for none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 51.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}
