//! Analysis of one window: the spec's checks evaluated on the candidate's and the primary's
//! [`WindowStats`], with a verdict. The [`Analysis`] is serializable so that the audit event of
//! a rollout step carries the metrics that decided it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::spec::{Bound, During, Metric, RolloutSpec};

/// What one side (primary or candidate) did during a window.
///
/// The comparison metrics (`prediction_drift`, `shadow_agreement`) describe the candidate
/// against the primary and are read from the candidate's stats only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowStats {
    pub requests: u64,
    pub errors: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_latency_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction_drift: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow_agreement: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realized_performance: Option<f64>,
}

impl WindowStats {
    /// The metric's value, or `None` when it is missing or not finite (the error rate is missing
    /// without requests).
    pub fn value(&self, metric: Metric) -> Option<f64> {
        let value = match metric {
            Metric::ErrorRate => {
                (self.requests > 0).then(|| self.errors as f64 / self.requests as f64)
            }
            Metric::P99LatencyMs => self.p99_latency_ms,
            Metric::PredictionDrift => self.prediction_drift,
            Metric::ShadowAgreement => self.shadow_agreement,
            Metric::RealizedPerformance => self.realized_performance,
        };
        value.filter(|v| v.is_finite())
    }
}

/// The rollout phase a window was observed in; it selects the checks that apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Shadow,
    Canary,
}

impl Phase {
    fn runs(self, during: During) -> bool {
        matches!(
            (self, during),
            (_, During::Both) | (Self::Shadow, During::Shadow) | (Self::Canary, During::Canary)
        )
    }
}

/// The outcome of one bound of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    /// A value the bound needs (the candidate's, or the primary's for a relative bound) is missing.
    Missing,
}

/// One bound of one check, evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub metric: Metric,
    pub bound: Bound,
    /// The candidate's value.
    pub observed: Option<f64>,
    /// The primary's value (for comparison metrics always `None`).
    pub primary: Option<f64>,
    pub outcome: Outcome,
}

impl fmt::Display for CheckResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: Option<f64>| v.map_or("missing".to_owned(), |v| format!("{v:.6}"));
        write!(
            f,
            "{} {} (bound {}",
            self.metric,
            show(self.observed),
            self.bound
        )?;
        if self.bound.is_relative() {
            write!(f, ", primary {}", show(self.primary))?;
        }
        write!(f, ")")
    }
}

/// Whether a window lets the rollout go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    /// Some bound does not hold (on enough requests).
    Fail,
    /// Too few candidate requests, or a value a check needs is missing.
    Inconclusive,
}

/// The analysis of one window: every check's result, the verdict and the stats it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub phase: Phase,
    pub verdict: Verdict,
    pub min_requests: u64,
    pub checks: Vec<CheckResult>,
    pub primary: WindowStats,
    pub candidate: WindowStats,
}

impl Analysis {
    /// One line on why the verdict is what it is, for transition reasons and logs.
    pub fn summary(&self) -> String {
        let listed = |outcome: Outcome| {
            let hits: Vec<String> = self
                .checks
                .iter()
                .filter(|c| c.outcome == outcome)
                .map(ToString::to_string)
                .collect();
            hits.join(", ")
        };
        match self.verdict {
            Verdict::Pass => format!("{} checks passed", self.checks.len()),
            Verdict::Fail => format!("failed: {}", listed(Outcome::Fail)),
            Verdict::Inconclusive if self.candidate.requests < self.min_requests => format!(
                "inconclusive: candidate served {} requests, fewer than min_requests {}",
                self.candidate.requests, self.min_requests
            ),
            Verdict::Inconclusive => format!("inconclusive: missing {}", listed(Outcome::Missing)),
        }
    }
}

/// Evaluates the spec's checks that run in `phase` on one window.
///
/// The verdict is `Inconclusive` when the candidate served fewer than `min_requests`, else
/// `Fail` when any bound fails, else `Inconclusive` when any needed value is missing, else `Pass`.
pub fn analyse(
    spec: &RolloutSpec,
    phase: Phase,
    primary: &WindowStats,
    candidate: &WindowStats,
) -> Analysis {
    let checks: Vec<CheckResult> = spec
        .checks
        .iter()
        .filter(|check| phase.runs(check.during()))
        .flat_map(|check| {
            let observed = candidate.value(check.metric);
            let primary_value = primary.value(check.metric);
            check.bounds().map(move |bound| CheckResult {
                metric: check.metric,
                bound,
                observed,
                primary: primary_value,
                outcome: evaluate(bound, observed, primary_value),
            })
        })
        .collect();
    let any = |outcome: Outcome| checks.iter().any(|c| c.outcome == outcome);
    let verdict = if candidate.requests < spec.min_requests {
        Verdict::Inconclusive
    } else if any(Outcome::Fail) {
        Verdict::Fail
    } else if any(Outcome::Missing) {
        Verdict::Inconclusive
    } else {
        Verdict::Pass
    };
    Analysis {
        phase,
        verdict,
        min_requests: spec.min_requests,
        checks,
        primary: primary.clone(),
        candidate: candidate.clone(),
    }
}

fn evaluate(bound: Bound, observed: Option<f64>, primary: Option<f64>) -> Outcome {
    let Some(observed) = observed else {
        return Outcome::Missing;
    };
    let holds = match (bound, primary) {
        (Bound::Max(t), _) => observed <= t,
        (Bound::Min(t), _) => observed >= t,
        (_, None) => return Outcome::Missing,
        (Bound::MaxRatio(r), Some(p)) => observed <= p * r,
        (Bound::MinRatio(r), Some(p)) => observed >= p * r,
        (Bound::MaxIncrease(d), Some(p)) => observed <= p + d,
        (Bound::MaxDecrease(d), Some(p)) => observed >= p - d,
    };
    if holds { Outcome::Pass } else { Outcome::Fail }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Check;

    fn stats(requests: u64, errors: u64, p99: f64) -> WindowStats {
        WindowStats {
            requests,
            errors,
            p99_latency_ms: Some(p99),
            ..WindowStats::default()
        }
    }

    fn spec(checks: Vec<Check>) -> RolloutSpec {
        RolloutSpec {
            shadow: "5m".parse().unwrap(),
            checks,
            ..RolloutSpec::default()
        }
    }

    #[test]
    fn relative_bounds_compare_with_the_primary() {
        let spec = spec(vec![
            Check::new(Metric::ErrorRate, Bound::MaxIncrease(0.005)),
            Check::new(Metric::P99LatencyMs, Bound::MaxRatio(1.2)),
        ]);
        let primary = stats(1000, 10, 100.0);
        let pass = analyse(&spec, Phase::Canary, &primary, &stats(200, 2, 119.0));
        assert_eq!(pass.verdict, Verdict::Pass, "{}", pass.summary());
        assert_eq!(pass.checks[0].observed, Some(0.01));
        assert_eq!(pass.checks[0].primary, Some(0.01));

        let slow = analyse(&spec, Phase::Canary, &primary, &stats(200, 2, 121.0));
        assert_eq!(slow.verdict, Verdict::Fail);
        let outcomes: Vec<Outcome> = slow.checks.iter().map(|c| c.outcome).collect();
        assert_eq!(outcomes, [Outcome::Pass, Outcome::Fail]);
        assert!(
            slow.summary().contains("p99_latency_ms 121"),
            "{}",
            slow.summary()
        );

        let erring = analyse(&spec, Phase::Canary, &primary, &stats(200, 4, 100.0));
        assert_eq!(erring.verdict, Verdict::Fail);
    }

    #[test]
    fn absolute_bounds_and_every_bound_of_a_check() {
        let check = Check {
            max: Some(0.05),
            ..Check::new(Metric::RealizedPerformance, Bound::MaxDecrease(0.02))
        };
        let spec = spec(vec![check]);
        let with = |perf: f64| WindowStats {
            realized_performance: Some(perf),
            ..stats(500, 0, 1.0)
        };
        let verdict = |p: f64, c: f64| analyse(&spec, Phase::Canary, &with(p), &with(c)).verdict;
        assert_eq!(verdict(0.04, 0.03), Verdict::Pass);
        assert_eq!(verdict(0.06, 0.03), Verdict::Fail, "decrease over 0.02");
        assert_eq!(verdict(0.06, 0.055), Verdict::Fail, "over the max");
    }

    #[test]
    fn too_few_requests_or_a_missing_metric_is_inconclusive() {
        let spec = spec(vec![
            Check::new(Metric::ErrorRate, Bound::Max(0.01)),
            Check::new(Metric::PredictionDrift, Bound::Max(0.2)),
        ]);
        let primary = stats(1000, 0, 10.0);
        let few = analyse(&spec, Phase::Canary, &primary, &stats(99, 0, 10.0));
        assert_eq!(few.verdict, Verdict::Inconclusive);
        assert!(few.summary().contains("99 requests"), "{}", few.summary());

        let no_drift = analyse(&spec, Phase::Canary, &primary, &stats(100, 0, 10.0));
        assert_eq!(no_drift.verdict, Verdict::Inconclusive);
        assert!(no_drift.summary().contains("prediction_drift missing"));

        let nan_drift = WindowStats {
            prediction_drift: Some(f64::NAN),
            ..stats(100, 50, 10.0)
        };
        let failed = analyse(&spec, Phase::Canary, &primary, &nan_drift);
        assert_eq!(
            failed.verdict,
            Verdict::Fail,
            "a failure outweighs a missing value"
        );
        assert_eq!(failed.checks[1].outcome, Outcome::Missing);
    }

    #[test]
    fn checks_run_only_in_their_phase() {
        let spec = spec(vec![
            Check::new(Metric::ShadowAgreement, Bound::Min(0.95)),
            Check {
                during: Some(During::Canary),
                ..Check::new(Metric::ErrorRate, Bound::Max(0.01))
            },
        ]);
        let candidate = WindowStats {
            shadow_agreement: Some(0.9),
            ..stats(100, 50, 1.0)
        };
        let shadow = analyse(&spec, Phase::Shadow, &WindowStats::default(), &candidate);
        assert_eq!(shadow.checks.len(), 1);
        assert_eq!(shadow.checks[0].metric, Metric::ShadowAgreement);
        assert_eq!(shadow.verdict, Verdict::Fail);
        let canary = analyse(&spec, Phase::Canary, &WindowStats::default(), &candidate);
        assert_eq!(canary.checks.len(), 1);
        assert_eq!(canary.checks[0].metric, Metric::ErrorRate);

        let json = serde_json::to_string(&canary).unwrap();
        assert_eq!(serde_json::from_str::<Analysis>(&json).unwrap(), canary);
    }
}
