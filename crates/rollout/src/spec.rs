//! The rollout spec: how long to shadow, the canary steps, how long each bakes, and the checks
//! that decide whether a step passes. Parsed from YAML or filled from CLI flags (public fields,
//! [`Default`]), then [`RolloutSpec::validate`]d, which lists every problem at once.

use std::fmt;
use std::str::FromStr;

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

/// A duration written as a human string: `"0"`, `"500ms"`, `"30s"`, `"5m"`, `"1h30m"`, `"2d"`.
///
/// Serialized in its canonical form (largest units first), so parse and print round-trip.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HumanDuration {
    millis: u64,
}

const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

impl HumanDuration {
    /// The zero duration: for `shadow`, no shadowing.
    pub const ZERO: Self = Self { millis: 0 };

    /// A duration of `seconds` seconds.
    pub const fn from_secs(seconds: u32) -> Self {
        Self {
            millis: seconds as u64 * 1000,
        }
    }

    /// The duration in milliseconds.
    pub fn as_millis(self) -> u64 {
        self.millis
    }

    /// Whether this is zero.
    pub fn is_zero(self) -> bool {
        self.millis == 0
    }

    /// The duration as chrono's type, to add to or compare with timestamps.
    pub fn as_time_delta(self) -> TimeDelta {
        i64::try_from(self.millis)
            .ok()
            .and_then(TimeDelta::try_milliseconds)
            .unwrap_or(TimeDelta::MAX)
    }
}

/// A string that is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a duration such as \"30s\", \"5m\", \"1h30m\" (units ms, s, m, h, d), got {0:?}")]
pub struct DurationError(String);

impl FromStr for HumanDuration {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || DurationError(text.to_owned());
        let mut rest = text.trim();
        if rest == "0" {
            return Ok(Self::ZERO);
        }
        if rest.is_empty() {
            return Err(bad());
        }
        let mut millis: u64 = 0;
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
            let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
            let after = &rest[digits..];
            let unit_len = after
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(after.len());
            let (_, scale) = UNITS
                .iter()
                .find(|(unit, _)| *unit == &after[..unit_len])
                .ok_or_else(bad)?;
            millis = number
                .checked_mul(*scale)
                .and_then(|part| millis.checked_add(part))
                .filter(|total| i64::try_from(*total).is_ok())
                .ok_or_else(bad)?;
            rest = &after[unit_len..];
        }
        Ok(Self { millis })
    }
}

impl TryFrom<String> for HumanDuration {
    type Error = DurationError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<HumanDuration> for String {
    fn from(duration: HumanDuration) -> Self {
        duration.to_string()
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.millis == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.millis;
        for (unit, scale) in UNITS {
            if rest >= scale {
                write!(f, "{}{unit}", rest / scale)?;
                rest %= scale;
            }
        }
        Ok(())
    }
}

/// What a check measures. Values come from [`crate::WindowStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Failed requests over requests, in [0, 1].
    ErrorRate,
    /// 99th percentile latency in milliseconds.
    P99LatencyMs,
    /// Drift score of the candidate's outputs against the primary's (already a comparison).
    PredictionDrift,
    /// Share of shadowed requests where shadow and primary predict the same class (a comparison).
    ShadowAgreement,
    /// A quality metric on labelled predictions (accuracy, AUC, ...), once labels exist.
    RealizedPerformance,
}

impl Metric {
    /// The metric's name as written in a spec.
    pub fn name(self) -> &'static str {
        match self {
            Self::ErrorRate => "error_rate",
            Self::P99LatencyMs => "p99_latency_ms",
            Self::PredictionDrift => "prediction_drift",
            Self::ShadowAgreement => "shadow_agreement",
            Self::RealizedPerformance => "realized_performance",
        }
    }

    /// Metrics that already compare the candidate with the primary take absolute bounds only.
    fn is_comparison(self) -> bool {
        matches!(self, Self::PredictionDrift | Self::ShadowAgreement)
    }

    fn is_rate(self) -> bool {
        matches!(self, Self::ErrorRate | Self::ShadowAgreement)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A limit on a metric's observed value, absolute or relative to the primary's value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// observed ≤ value
    Max(f64),
    /// observed ≥ value
    Min(f64),
    /// observed ≤ primary × value
    MaxRatio(f64),
    /// observed ≥ primary × value
    MinRatio(f64),
    /// observed ≤ primary + value
    MaxIncrease(f64),
    /// observed ≥ primary − value
    MaxDecrease(f64),
}

impl Bound {
    /// The spec field that sets this bound.
    pub fn field(self) -> &'static str {
        match self {
            Self::Max(_) => "max",
            Self::Min(_) => "min",
            Self::MaxRatio(_) => "max_ratio",
            Self::MinRatio(_) => "min_ratio",
            Self::MaxIncrease(_) => "max_increase",
            Self::MaxDecrease(_) => "max_decrease",
        }
    }

    /// The number written in the spec.
    pub fn threshold(self) -> f64 {
        match self {
            Self::Max(t)
            | Self::Min(t)
            | Self::MaxRatio(t)
            | Self::MinRatio(t)
            | Self::MaxIncrease(t)
            | Self::MaxDecrease(t) => t,
        }
    }

    /// Whether the bound needs the primary's value.
    pub fn is_relative(self) -> bool {
        !matches!(self, Self::Max(_) | Self::Min(_))
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field(), self.threshold())
    }
}

/// Which rollout phase a check runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum During {
    Shadow,
    Canary,
    Both,
}

/// One check: a metric and one or more bounds, all of which must hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub metric: Metric,
    /// Unset: `shadow` for `shadow_agreement` (only shadowing produces it), `both` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub during: Option<During>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ratio: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ratio: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_increase: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_decrease: Option<f64>,
}

impl Check {
    /// A check on `metric` with a single bound.
    pub fn new(metric: Metric, bound: Bound) -> Self {
        let mut check = Self {
            metric,
            during: None,
            max: None,
            min: None,
            max_ratio: None,
            min_ratio: None,
            max_increase: None,
            max_decrease: None,
        };
        let slot = match bound {
            Bound::Max(_) => &mut check.max,
            Bound::Min(_) => &mut check.min,
            Bound::MaxRatio(_) => &mut check.max_ratio,
            Bound::MinRatio(_) => &mut check.min_ratio,
            Bound::MaxIncrease(_) => &mut check.max_increase,
            Bound::MaxDecrease(_) => &mut check.max_decrease,
        };
        *slot = Some(bound.threshold());
        check
    }

    /// The bounds set on this check, in spec field order.
    pub fn bounds(&self) -> impl Iterator<Item = Bound> + '_ {
        [
            self.max.map(Bound::Max),
            self.min.map(Bound::Min),
            self.max_ratio.map(Bound::MaxRatio),
            self.min_ratio.map(Bound::MinRatio),
            self.max_increase.map(Bound::MaxIncrease),
            self.max_decrease.map(Bound::MaxDecrease),
        ]
        .into_iter()
        .flatten()
    }

    /// The phase the check runs in, with the metric's default applied.
    pub fn during(&self) -> During {
        self.during.unwrap_or(match self.metric {
            Metric::ShadowAgreement => During::Shadow,
            _ => During::Both,
        })
    }
}

/// How to roll a candidate version out. See the crate docs for the model of a rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RolloutSpec {
    /// How long the candidate receives mirrored traffic before the canary; 0 skips shadowing.
    pub shadow: HumanDuration,
    /// Canary weights in percent, strictly increasing, ending at 100; multiples of 0.01.
    pub steps: Vec<f64>,
    /// How long each canary step serves before its analysis.
    pub bake: HumanDuration,
    /// Fewer candidate requests than this in a window make its analysis inconclusive.
    pub min_requests: u64,
    /// Failed analyses tolerated over the whole rollout; one more rolls back.
    pub failure_limit: u32,
    /// A candidate that was live within this window is a rollback target: no analysis.
    pub rollback_window: HumanDuration,
    pub checks: Vec<Check>,
}

impl Default for RolloutSpec {
    /// No shadow, steps 5/25/50/100 % baking 5 minutes each with at least 100 requests, the first
    /// failure rolls back, rollback window 24 h, checks: error rate at most 1 point above the
    /// primary's and p99 latency at most 1.5 × the primary's.
    fn default() -> Self {
        Self {
            shadow: HumanDuration::ZERO,
            steps: vec![5.0, 25.0, 50.0, 100.0],
            bake: HumanDuration::from_secs(300),
            min_requests: 100,
            failure_limit: 0,
            rollback_window: HumanDuration::from_secs(86_400),
            checks: vec![
                Check::new(Metric::ErrorRate, Bound::MaxIncrease(0.01)),
                Check::new(Metric::P99LatencyMs, Bound::MaxRatio(1.5)),
            ],
        }
    }
}

/// One problem with a spec: the field, what it should be, what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecProblem {
    pub field: String,
    pub expected: String,
    pub got: String,
}

impl fmt::Display for SpecProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, got {}",
            self.field, self.expected, self.got
        )
    }
}

/// Every problem found in a spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid rollout spec: {}", join(.0))]
pub struct InvalidSpec(pub Vec<SpecProblem>);

fn join(problems: &[SpecProblem]) -> String {
    let texts: Vec<String> = problems.iter().map(ToString::to_string).collect();
    texts.join("; ")
}

/// A spec that could not be read or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read the rollout spec: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error(transparent)]
    Invalid(#[from] InvalidSpec),
}

impl RolloutSpec {
    /// Parses a YAML spec (omitted fields take their defaults) and validates it.
    pub fn from_yaml(text: &str) -> Result<Self, SpecError> {
        let spec: Self = serde_yaml::from_str(text)?;
        spec.validate()?;
        Ok(spec)
    }

    /// Checks the spec and reports every problem, not only the first.
    pub fn validate(&self) -> Result<(), InvalidSpec> {
        let mut problems = Vec::new();
        let mut problem = |field: String, expected: &str, got: String| {
            problems.push(SpecProblem {
                field,
                expected: expected.to_owned(),
                got,
            })
        };
        if self.steps.is_empty() {
            problem("steps".into(), "at least one step", "[]".into());
        }
        for (i, &step) in self.steps.iter().enumerate() {
            let field = format!("steps[{i}]");
            if !(step > 0.0 && step <= 100.0) {
                problem(field.clone(), "a percent in (0, 100]", step.to_string());
            } else if ((step * 100.0).round() - step * 100.0).abs() > 1e-6 {
                problem(field.clone(), "a multiple of 0.01", step.to_string());
            }
            if let Some(&previous) = i.checked_sub(1).and_then(|p| self.steps.get(p))
                && step <= previous
            {
                let expected = format!("more than the previous step ({previous})");
                problem(field, &expected, step.to_string());
            }
        }
        if let Some(&last) = self.steps.last()
            && last != 100.0
        {
            let field = format!("steps[{}]", self.steps.len() - 1);
            problem(field, "100 as the last step", last.to_string());
        }
        for (i, check) in self.checks.iter().enumerate() {
            let metric = check.metric;
            if check.bounds().next().is_none() {
                let expected =
                    "a bound: max, min, max_ratio, min_ratio, max_increase or max_decrease";
                problem(format!("checks[{i}]"), expected, "none".into());
            }
            for bound in check.bounds() {
                let field = format!("checks[{i}].{}", bound.field());
                let value = bound.threshold();
                let got = value.to_string();
                if !(value.is_finite() && value >= 0.0) {
                    problem(field, "a finite number ≥ 0", got);
                } else if metric.is_comparison() && bound.is_relative() {
                    let expected =
                        format!("max or min ({metric} already compares candidate and primary)");
                    problem(field, &expected, bound.field().into());
                } else if metric.is_rate() && !bound.is_relative() && value > 1.0 {
                    problem(field, "a rate in [0, 1]", got);
                } else if matches!(bound, Bound::MaxRatio(_)) && value == 0.0 {
                    problem(field, "a ratio > 0", got);
                }
            }
            let during = check.during();
            if metric == Metric::ShadowAgreement && during != During::Shadow {
                let got = format!("{during:?}").to_lowercase();
                problem(
                    format!("checks[{i}].during"),
                    "shadow (only shadowing measures agreement)",
                    got,
                );
            } else if during == During::Shadow && self.shadow.is_zero() {
                let expected = "a shadow duration > 0 for a check during shadow";
                problem(format!("checks[{i}].during"), expected, "shadow: 0s".into());
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(InvalidSpec(problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print_canonically() {
        for (text, millis, canonical) in [
            ("0", 0, "0s"),
            ("0s", 0, "0s"),
            ("500ms", 500, "500ms"),
            ("30s", 30_000, "30s"),
            ("90s", 90_000, "1m30s"),
            ("5m", 300_000, "5m"),
            ("1h30m", 5_400_000, "1h30m"),
            ("2d", 172_800_000, "2d"),
        ] {
            let parsed: HumanDuration = text.parse().unwrap();
            assert_eq!(parsed.as_millis(), millis, "{text}");
            assert_eq!(parsed.to_string(), canonical);
            assert_eq!(canonical.parse::<HumanDuration>().unwrap(), parsed);
        }
        for bad in [
            "",
            "5",
            "m",
            "5 m",
            "-5m",
            "5y",
            "1.5h",
            "99999999999999999999d",
        ] {
            assert!(bad.parse::<HumanDuration>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn yaml_with_defaults_and_relative_bounds() {
        let spec = RolloutSpec::from_yaml(
            "shadow: 10m\nsteps: [10, 50, 100]\nchecks:\n  - {metric: error_rate, max: 0.02, max_increase: 0.005}\n  - {metric: shadow_agreement, min: 0.95}\n  - {metric: p99_latency_ms, max_ratio: 1.2}\n",
        )
        .unwrap();
        assert_eq!(spec.shadow, HumanDuration::from_secs(600));
        assert_eq!(spec.bake, RolloutSpec::default().bake);
        assert_eq!(spec.min_requests, 100);
        let bounds: Vec<Bound> = spec.checks[0].bounds().collect();
        assert_eq!(bounds, [Bound::Max(0.02), Bound::MaxIncrease(0.005)]);
        assert_eq!(spec.checks[1].during(), During::Shadow);
        assert_eq!(spec.checks[2].during(), During::Both);
        let again: RolloutSpec =
            serde_yaml::from_str(&serde_yaml::to_string(&spec).unwrap()).unwrap();
        assert_eq!(again, spec);
    }

    #[test]
    fn unknown_fields_and_bad_durations_are_rejected() {
        assert!(matches!(
            RolloutSpec::from_yaml("stpes: [100]"),
            Err(SpecError::Yaml(_))
        ));
        let err = RolloutSpec::from_yaml("checks: [{metric: error_rate, maxx: 1}]").unwrap_err();
        assert!(err.to_string().contains("maxx"), "{err}");
        let err = RolloutSpec::from_yaml("bake: 5 minutes").unwrap_err();
        assert!(err.to_string().contains("5 minutes"), "{err}");
    }

    #[test]
    fn validate_lists_every_problem() {
        let spec = RolloutSpec {
            steps: vec![50.0, 25.0, 120.0, 0.005],
            checks: vec![
                Check {
                    max: None,
                    ..Check::new(Metric::ErrorRate, Bound::Max(0.0))
                },
                Check::new(Metric::ErrorRate, Bound::Max(-0.1)),
                Check::new(Metric::PredictionDrift, Bound::MaxRatio(1.1)),
                Check::new(Metric::ShadowAgreement, Bound::Min(1.5)),
            ],
            ..RolloutSpec::default()
        };
        let InvalidSpec(problems) = spec.validate().unwrap_err();
        let found: Vec<(&str, &str)> = problems
            .iter()
            .map(|p| (p.field.as_str(), p.got.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                ("steps[1]", "25"),
                ("steps[2]", "120"),
                ("steps[3]", "0.005"),
                ("steps[3]", "0.005"),
                ("steps[3]", "0.005"),
                ("checks[0]", "none"),
                ("checks[1].max", "-0.1"),
                ("checks[2].max_ratio", "max_ratio"),
                ("checks[3].min", "1.5"),
                ("checks[3].during", "shadow: 0s"),
            ]
        );
        assert!(problems[0].expected.contains("previous step (50)"));
        assert!(problems[4].expected.contains("100 as the last step"));
        assert!(RolloutSpec::default().validate().is_ok());
    }
}
