//! Native tree ensembles: XGBoost JSON and LightGBM text models, scored by berth's own evaluator.
//!
//! Both formats are parsed into one flat [`forest::Forest`] plus an [`Objective`] that says how
//! raw sums become what the library itself reports (`label` and `probabilities` for classifiers,
//! with their raw `margin`; `value` for regressors), following each library's rules for missing
//! values and categories.

mod forest;
mod lightgbm;
mod xgboost;

use std::path::Path;

use berth_core::{
    Dim, ElementType, FeatureMatrix, ModelFormat, ModelInfo, NamedTensor, OutputRole, OutputSpec,
    Task, Tensor, TensorData, TensorSpec,
};

use crate::{LoadError, Model, PredictError};
use forest::Forest;

/// How a model's raw sums (one per output group) become its predictions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Objective {
    /// One sum; `p1 = sigmoid(scale * sum)`, two classes.
    Binary { scale: f64 },
    /// One sum per class; probabilities by softmax.
    Softmax { classes: usize },
    /// One sum per class; an independent sigmoid each (LightGBM `multiclassova`).
    OneVsRest { classes: usize, scale: f64 },
    /// One sum per target, through a link function.
    Regression { targets: usize, link: Link },
}

/// The inverse link of a regression objective.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Link {
    Identity,
    Exp,
    /// `1 / (1 + exp(-scale * x))`, e.g. `reg:logistic` or LightGBM `cross_entropy`.
    Sigmoid {
        scale: f64,
    },
    /// `sign(x) * x^2` (LightGBM `regression` trained with `sqrt`).
    SignedSquare,
    /// `ln(1 + exp(x))` (LightGBM `cross_entropy_lambda`).
    Softplus,
}

impl Objective {
    /// Number of raw sums per row the forest must produce.
    fn groups(self) -> usize {
        match self {
            Objective::Binary { .. } => 1,
            Objective::Softmax { classes } | Objective::OneVsRest { classes, .. } => classes,
            Objective::Regression { targets, .. } => targets,
        }
    }

    fn task(self) -> Task {
        match self {
            Objective::Binary { .. } => Task::Classification { classes: 2 },
            Objective::Softmax { classes } | Objective::OneVsRest { classes, .. } => {
                Task::Classification { classes }
            }
            Objective::Regression { targets, .. } => Task::Regression { targets },
        }
    }
}

/// An XGBoost or LightGBM model ready to score.
#[derive(Debug, Clone)]
pub struct TreeModel {
    forest: Forest,
    objective: Objective,
    info: ModelInfo,
}

/// What a parser hands over.
struct Parsed {
    forest: Forest,
    objective: Objective,
    feature_names: Option<Vec<String>>,
}

impl TreeModel {
    /// Parses an XGBoost JSON model (`save_model("model.json")`).
    pub fn from_xgboost_json(path: &Path, bytes: &[u8]) -> Result<Self, LoadError> {
        let parsed = xgboost::parse(bytes).map_err(|problem| LoadError::new(path, problem))?;
        Self::new(path, ModelFormat::XgboostJson, parsed)
    }

    /// Parses a LightGBM text model (`save_model("model.txt")`).
    pub fn from_lightgbm_text(path: &Path, bytes: &[u8]) -> Result<Self, LoadError> {
        let parsed = lightgbm::parse(bytes).map_err(|problem| LoadError::new(path, problem))?;
        Self::new(path, ModelFormat::LightgbmText, parsed)
    }

    fn new(path: &Path, format: ModelFormat, parsed: Parsed) -> Result<Self, LoadError> {
        let Parsed {
            forest,
            objective,
            feature_names,
        } = parsed;
        if forest.num_groups() != objective.groups() {
            return Err(LoadError::new(
                path,
                format!(
                    "the objective needs {} outputs per row but the trees produce {}",
                    objective.groups(),
                    forest.num_groups()
                ),
            ));
        }
        let n = forest.num_features();
        if let Some(names) = &feature_names
            && names.len() != n
        {
            return Err(LoadError::new(
                path,
                format!("the model names {} features but uses {n}", names.len()),
            ));
        }
        let task = objective.task();
        let info = ModelInfo {
            format,
            task,
            num_features: n,
            feature_names,
            inputs: vec![TensorSpec {
                name: "input".into(),
                element_type: ElementType::Fp32,
                shape: vec![Dim::Variable, Dim::Fixed(n)],
            }],
            outputs: output_specs(objective),
        };
        Ok(Self {
            forest,
            objective,
            info,
        })
    }

    /// Number of trees in the ensemble.
    pub fn num_trees(&self) -> usize {
        self.forest.num_trees()
    }
}

fn spec(
    name: &str,
    element_type: ElementType,
    width: Option<usize>,
    role: OutputRole,
) -> OutputSpec {
    let mut shape = vec![Dim::Variable];
    shape.extend(width.map(Dim::Fixed));
    OutputSpec {
        tensor: TensorSpec {
            name: name.into(),
            element_type,
            shape,
        },
        role,
    }
}

fn output_specs(objective: Objective) -> Vec<OutputSpec> {
    match objective.task() {
        Task::Classification { classes } => vec![
            spec("label", ElementType::Int64, None, OutputRole::Label),
            spec(
                "probabilities",
                ElementType::Fp64,
                Some(classes),
                OutputRole::Probabilities,
            ),
            spec(
                "margin",
                ElementType::Fp64,
                Some(objective.groups()),
                OutputRole::Other,
            ),
        ],
        Task::Regression { targets } => {
            vec![spec(
                "value",
                ElementType::Fp64,
                Some(targets),
                OutputRole::Score,
            )]
        }
        Task::Other => Vec::new(),
    }
}

fn sigmoid(x: f64, scale: f64) -> f64 {
    1.0 / (1.0 + (-scale * x).exp())
}

/// Index of the first largest value, as numpy's argmax picks it.
fn argmax(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

fn named(
    name: &str,
    role: OutputRole,
    shape: Vec<usize>,
    data: TensorData,
) -> Result<NamedTensor, PredictError> {
    let tensor = Tensor::new(shape, data).map_err(|e| PredictError::Backend(e.to_string()))?;
    Ok(NamedTensor {
        name: name.into(),
        role,
        tensor,
    })
}

/// Probabilities and labels of a classifier from its margins (`groups` per row).
fn classify(
    objective: Objective,
    margin: &[f64],
    rows: usize,
    classes: usize,
) -> (Vec<f64>, Vec<i64>) {
    let groups = objective.groups();
    let mut probabilities = vec![0.0; rows * classes];
    let mut labels = Vec::with_capacity(rows);
    for (m, p) in margin.chunks(groups).zip(probabilities.chunks_mut(classes)) {
        match objective {
            Objective::Binary { scale } => {
                let p1 = sigmoid(m[0], scale);
                p[0] = 1.0 - p1;
                p[1] = p1;
            }
            Objective::OneVsRest { scale, .. } => {
                for (p, &m) in p.iter_mut().zip(m) {
                    *p = sigmoid(m, scale);
                }
            }
            Objective::Softmax { .. } | Objective::Regression { .. } => {
                let max = m.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let mut sum = 0.0;
                for (p, &m) in p.iter_mut().zip(m) {
                    *p = (m - max).exp();
                    sum += *p;
                }
                for p in p.iter_mut() {
                    *p /= sum;
                }
            }
        }
        labels.push(argmax(p) as i64);
    }
    (probabilities, labels)
}

impl Model for TreeModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn predict(&self, batch: &FeatureMatrix) -> Result<Vec<NamedTensor>, PredictError> {
        let expected = self.forest.num_features();
        if batch.cols() != expected {
            return Err(PredictError::FeatureCount {
                expected,
                got: batch.cols(),
            });
        }
        let rows = batch.rows();
        let groups = self.forest.num_groups();
        let mut margin = vec![0.0; rows * groups];
        self.forest.margins(batch.values(), &mut margin);
        match self.objective {
            Objective::Regression { link, .. } => {
                for m in margin.iter_mut() {
                    *m = match link {
                        Link::Identity => *m,
                        Link::Exp => m.exp(),
                        Link::Sigmoid { scale } => sigmoid(*m, scale),
                        Link::SignedSquare => m.signum() * *m * *m,
                        Link::Softplus => m.exp().ln_1p(),
                    };
                }
                Ok(vec![named(
                    "value",
                    OutputRole::Score,
                    vec![rows, groups],
                    TensorData::Fp64(margin),
                )?])
            }
            objective => {
                let classes = match objective.task() {
                    Task::Classification { classes } => classes,
                    _ => groups,
                };
                let (probabilities, labels) = classify(objective, &margin, rows, classes);
                Ok(vec![
                    named(
                        "label",
                        OutputRole::Label,
                        vec![rows],
                        TensorData::Int64(labels),
                    )?,
                    named(
                        "probabilities",
                        OutputRole::Probabilities,
                        vec![rows, classes],
                        TensorData::Fp64(probabilities),
                    )?,
                    named(
                        "margin",
                        OutputRole::Other,
                        vec![rows, groups],
                        TensorData::Fp64(margin),
                    )?,
                ])
            }
        }
    }
}
