//! XGBoost's JSON model format (`Booster.save_model("model.json")`, XGBoost 1.0 and later).
//!
//! A node goes left when `x < split_condition` (in `f32`), and a missing value (NaN) follows the
//! node's `default_left`. `base_score` is stored in the objective's output space and turned into
//! a margin with the objective's inverse link (logit for logistic, log for count models).

use serde::Deserialize;
use serde_json::Value;

use super::forest::{Child, ForestBuilder, Missing, Precision, Split};
use super::{Link, Objective, Parsed};

#[derive(Deserialize)]
struct ModelFile {
    learner: Learner,
}

#[derive(Deserialize)]
struct Learner {
    #[serde(default)]
    feature_names: Vec<String>,
    gradient_booster: Booster,
    learner_model_param: LearnerModelParam,
    objective: ObjectiveJson,
}

#[derive(Deserialize)]
struct Booster {
    name: String,
    /// `gbtree`: the trees.
    model: Option<TreesJson>,
    /// `dart`: the wrapped `gbtree` and one weight per tree.
    gbtree: Option<Box<Booster>>,
    weight_drop: Option<Vec<f64>>,
}

#[derive(Deserialize)]
struct TreesJson {
    trees: Vec<TreeJson>,
    tree_info: Vec<i64>,
}

#[derive(Deserialize)]
struct TreeJson {
    left_children: Vec<i64>,
    right_children: Vec<i64>,
    split_indices: Vec<i64>,
    split_conditions: Vec<f32>,
    default_left: Vec<Value>,
    #[serde(default)]
    split_type: Vec<i64>,
    tree_param: TreeParam,
}

#[derive(Deserialize)]
struct TreeParam {
    #[serde(default)]
    size_leaf_vector: Option<String>,
}

#[derive(Deserialize)]
struct LearnerModelParam {
    base_score: String,
    num_class: String,
    num_feature: String,
    #[serde(default)]
    num_target: Option<String>,
}

#[derive(Deserialize)]
struct ObjectiveJson {
    name: String,
}

fn parse_count(field: &str, value: &str) -> Result<usize, String> {
    value
        .trim()
        .parse::<usize>()
        .map_err(|_| format!("learner_model_param.{field}: expected a count, got {value:?}"))
}

/// `base_score` is `"5E-1"` (XGBoost < 3) or `"[5E-1]"` / `"[a,b,c]"` (XGBoost 3).
fn parse_base_score(value: &str) -> Result<Vec<f64>, String> {
    let inner = value.trim().trim_start_matches('[').trim_end_matches(']');
    inner
        .split(',')
        .map(|v| {
            v.trim().parse::<f64>().map_err(|_| {
                format!("learner_model_param.base_score: expected numbers, got {value:?}")
            })
        })
        .collect()
}

/// Turns `base_score`, stored in the objective's output space, into a margin.
type ToMargin = fn(f64) -> f64;

/// How the objective maps margins to outputs, and how `base_score` becomes a margin.
fn objective(name: &str, classes: usize, targets: usize) -> Result<(Objective, ToMargin), String> {
    let logit = |p: f64| -(1.0 / p - 1.0).ln();
    let identity = |x: f64| x;
    let ln = |x: f64| x.ln();
    let regression = |link| Objective::Regression { targets, link };
    Ok(match name {
        "binary:logistic" => (Objective::Binary { scale: 1.0 }, logit),
        "binary:logitraw" => (regression(Link::Identity), logit),
        "reg:logistic" => (regression(Link::Sigmoid { scale: 1.0 }), logit),
        "multi:softprob" | "multi:softmax" => (Objective::Softmax { classes }, identity),
        "count:poisson" | "reg:gamma" | "reg:tweedie" | "survival:cox" | "survival:aft" => {
            (regression(Link::Exp), ln)
        }
        "reg:squarederror"
        | "reg:linear"
        | "reg:squaredlogerror"
        | "reg:pseudohubererror"
        | "reg:absoluteerror"
        | "reg:quantileerror"
        | "rank:pairwise"
        | "rank:ndcg"
        | "rank:map" => (regression(Link::Identity), identity),
        other => return Err(format!("objective {other:?} is not supported")),
    })
}

fn default_left(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_u64().map(|n| n != 0),
        _ => None,
    }
}

pub(super) fn parse(bytes: &[u8]) -> Result<Parsed, String> {
    let file: ModelFile = serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "not a valid XGBoost JSON model ({e}); save it with Booster.save_model(\"model.json\")"
        )
    })?;
    let learner = file.learner;
    let param = &learner.learner_model_param;
    let num_features = parse_count("num_feature", &param.num_feature)?;
    let num_class = parse_count("num_class", &param.num_class)?;
    let num_target = param
        .num_target
        .as_deref()
        .map(|t| parse_count("num_target", t))
        .transpose()?
        .unwrap_or(1)
        .max(1);
    let (objective, to_margin) = objective(&learner.objective.name, num_class, num_target)?;
    let groups = objective.groups();

    let base_score = parse_base_score(&param.base_score)?;
    let base_margin: Vec<f64> = match base_score.len() {
        1 => vec![to_margin(base_score[0]); groups],
        n if n == groups => base_score.iter().map(|&b| to_margin(b)).collect(),
        n => {
            return Err(format!(
                "base_score has {n} values but the model has {groups} outputs"
            ));
        }
    };
    // XGBoost adds base_score to the margin in f32.
    let base_margin = base_margin.iter().map(|&m| f64::from(m as f32)).collect();

    let (trees, weights) = match learner.gradient_booster.name.as_str() {
        "gbtree" => (learner.gradient_booster.model, None),
        "dart" => {
            let inner = learner
                .gradient_booster
                .gbtree
                .ok_or("dart booster without its gbtree")?;
            (inner.model, learner.gradient_booster.weight_drop)
        }
        other => {
            return Err(format!(
                "booster {other:?} is not supported (only tree boosters: gbtree, dart)"
            ));
        }
    };
    let trees = trees.ok_or("gradient_booster.model is missing")?;
    if trees.tree_info.len() != trees.trees.len() {
        return Err(format!(
            "tree_info names {} trees but the model has {}",
            trees.tree_info.len(),
            trees.trees.len()
        ));
    }
    if let Some(w) = &weights
        && w.len() != trees.trees.len()
    {
        return Err(format!(
            "dart weight_drop has {} weights for {} trees",
            w.len(),
            trees.trees.len()
        ));
    }

    let mut builder = ForestBuilder::new(num_features, base_margin, false, Precision::F32);
    for (t, (tree, &group)) in trees.trees.iter().zip(&trees.tree_info).enumerate() {
        // XGBoost keeps dart weights in f32.
        let weight = weights.as_ref().map_or(1.0, |w| f64::from(w[t] as f32));
        let group =
            usize::try_from(group).map_err(|_| format!("tree {t}: negative group {group}"))?;
        add_tree(&mut builder, t, tree, group, weight)?;
    }
    if builder.num_trees() == 0 {
        return Err("the model has no trees".into());
    }
    let feature_names = (!learner.feature_names.is_empty()).then_some(learner.feature_names);
    Ok(Parsed {
        forest: builder.finish(),
        objective,
        feature_names,
    })
}

fn add_tree(
    builder: &mut ForestBuilder,
    t: usize,
    tree: &TreeJson,
    group: usize,
    weight: f64,
) -> Result<(), String> {
    if let Some(size) = &tree.tree_param.size_leaf_vector
        && !matches!(size.trim(), "0" | "1")
    {
        return Err(format!(
            "tree {t}: vector leaves (multi_strategy=multi_output_tree) are not supported"
        ));
    }
    let n = tree.left_children.len();
    for (field, len) in [
        ("right_children", tree.right_children.len()),
        ("split_indices", tree.split_indices.len()),
        ("split_conditions", tree.split_conditions.len()),
        ("default_left", tree.default_left.len()),
    ] {
        if len != n {
            return Err(format!(
                "tree {t}: {field} has {len} entries, left_children has {n}"
            ));
        }
    }
    if tree.split_type.iter().any(|&s| s != 0) {
        return Err(format!(
            "tree {t}: categorical splits (enable_categorical=True) are not supported yet; \
             encode categories as numbers or export the model to ONNX"
        ));
    }
    // XGBoost numbers nodes 0..n with leaves among them; berth keeps splits and leaves apart.
    let mut slot = vec![Child::Leaf(0); n];
    let (mut splits_seen, mut leaves_seen) = (0, 0);
    for (slot, &left) in slot.iter_mut().zip(&tree.left_children) {
        if left == -1 {
            *slot = Child::Leaf(leaves_seen);
            leaves_seen += 1;
        } else {
            *slot = Child::Node(splits_seen);
            splits_seen += 1;
        }
    }
    let child = |node: usize, c: i64| -> Result<Child, String> {
        usize::try_from(c)
            .ok()
            .and_then(|c| slot.get(c).copied())
            .ok_or_else(|| {
                format!("tree {t}: node {node} points to child {c}, which does not exist")
            })
    };
    let mut splits = Vec::with_capacity(splits_seen);
    let mut children = Vec::with_capacity(splits_seen);
    let mut leaves = Vec::with_capacity(leaves_seen);
    for i in 0..n {
        if tree.left_children[i] == -1 {
            leaves.push(f64::from(tree.split_conditions[i]) * weight);
            continue;
        }
        let feature = usize::try_from(tree.split_indices[i])
            .map_err(|_| format!("tree {t}: node {i} has a negative feature index"))?;
        let default_left = default_left(&tree.default_left[i])
            .ok_or_else(|| format!("tree {t}: default_left[{i}] is not 0, 1, true or false"))?;
        splits.push(Split::Numeric {
            feature,
            threshold: tree.split_conditions[i],
            missing: if default_left {
                Missing::DefaultLeft
            } else {
                Missing::DefaultRight
            },
        });
        children.push((
            child(i, tree.left_children[i])?,
            child(i, tree.right_children[i])?,
        ));
    }
    builder
        .add_tree(group, &splits, &children, &leaves)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_score_forms() {
        assert_eq!(parse_base_score("5E-1").unwrap(), vec![0.5]);
        assert_eq!(parse_base_score("[2.5E-1]").unwrap(), vec![0.25]);
        assert_eq!(parse_base_score("[1E0,2E0]").unwrap(), vec![1.0, 2.0]);
        assert!(parse_base_score("[x]").is_err());
    }

    #[test]
    fn unsupported_objectives_and_boosters_are_named() {
        let err = objective("binary:hinge", 0, 1).unwrap_err();
        assert!(err.contains("binary:hinge"), "{err}");
        let json = br#"{"learner":{"gradient_booster":{"name":"gblinear"},
            "learner_model_param":{"base_score":"5E-1","num_class":"0","num_feature":"2"},
            "objective":{"name":"reg:squarederror"}}}"#;
        let err = parse(json).err().unwrap();
        assert!(err.contains("gblinear"), "{err}");
    }

    #[test]
    fn json_that_is_not_a_model_says_so() {
        let err = parse(br#"{"hello": 1}"#).err().unwrap();
        assert!(err.contains("not a valid XGBoost JSON model"), "{err}");
        assert!(err.contains("learner"), "{err}");
    }
}
