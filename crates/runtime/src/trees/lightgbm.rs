//! LightGBM's text model format (`Booster.save_model("model.txt")`).
//!
//! A numeric node goes left when `x <= threshold` (in `f64`); its `decision_type` byte says
//! whether it is categorical (bit 0), where missing values go (bit 1), and the missing type
//! (bits 2-3: None — NaN is read as 0 —, Zero — 0 and NaN are missing —, or NaN). Categorical
//! nodes send a value left when its integer is in the node's bitset; NaN and negatives go right.

use std::collections::HashMap;

use super::forest::{Child, ForestBuilder, Missing, Precision, Split, f32_threshold_for_le};
use super::{Link, Objective, Parsed};

const CATEGORICAL_MASK: u8 = 1;
const DEFAULT_LEFT_MASK: u8 = 2;

/// LightGBM's missing-value handling of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MissingType {
    None,
    Zero,
    Nan,
}

fn missing_type(decision_type: u8) -> MissingType {
    match (decision_type >> 2) & 3 {
        1 => MissingType::Zero,
        2 => MissingType::Nan,
        _ => MissingType::None,
    }
}

/// `key=value` lines of one section.
struct Section<'a> {
    name: String,
    fields: HashMap<&'a str, &'a str>,
}

impl<'a> Section<'a> {
    fn get(&self, key: &str) -> Result<&'a str, String> {
        self.fields
            .get(key)
            .copied()
            .ok_or_else(|| format!("{}: missing '{key}='", self.name))
    }

    fn count(&self, key: &str) -> Result<usize, String> {
        let v = self.get(key)?;
        v.trim()
            .parse()
            .map_err(|_| format!("{}: {key}: expected a count, got {v:?}", self.name))
    }

    /// A space-separated array of exactly `len` values.
    fn array<T: std::str::FromStr>(&self, key: &str, len: usize) -> Result<Vec<T>, String> {
        let v = self.get(key)?;
        let values = v
            .split_ascii_whitespace()
            .map(|x| {
                x.parse::<T>()
                    .map_err(|_| format!("{}: {key}: cannot read {x:?} as a number", self.name))
            })
            .collect::<Result<Vec<T>, String>>()?;
        if values.len() != len {
            return Err(format!(
                "{}: {key} has {} values, expected {len} (the file may be truncated)",
                self.name,
                values.len()
            ));
        }
        Ok(values)
    }
}

fn sections(text: &str) -> Result<(Section<'_>, Vec<Section<'_>>), String> {
    let mut header = Section {
        name: "header".into(),
        fields: HashMap::new(),
    };
    let mut trees: Vec<Section<'_>> = Vec::new();
    let mut ended = false;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line == "end of trees" {
            ended = true;
            break;
        }
        if let Some(index) = line.strip_prefix("Tree=") {
            trees.push(Section {
                name: format!("Tree={index}"),
                fields: HashMap::new(),
            });
            continue;
        }
        let target = trees.last_mut().unwrap_or(&mut header);
        match line.split_once('=') {
            Some((k, v)) => {
                target.fields.insert(k, v);
            }
            // Flags without a value, e.g. `average_output`.
            None if !line.is_empty() => {
                target.fields.insert(line, "");
            }
            None => {}
        }
    }
    if !ended {
        return Err("no 'end of trees' line: the file is truncated or not a LightGBM model".into());
    }
    Ok((header, trees))
}

/// The objective line, e.g. `binary sigmoid:1` or `multiclass num_class:3`.
fn objective(line: &str, num_class: usize) -> Result<Objective, String> {
    let mut words = line.split_ascii_whitespace();
    let name = words.next().unwrap_or("");
    let params: HashMap<&str, &str> = words.filter_map(|w| w.split_once(':')).collect();
    let sigmoid = match params.get("sigmoid") {
        Some(s) => s
            .parse::<f64>()
            .map_err(|_| format!("objective: cannot read sigmoid:{s}"))?,
        None => 1.0,
    };
    let regression = |link| Objective::Regression { targets: 1, link };
    Ok(match name {
        "binary" => Objective::Binary { scale: sigmoid },
        "multiclass" | "softmax" => Objective::Softmax { classes: num_class },
        "multiclassova" | "multiclass_ova" | "ova" | "ovr" => Objective::OneVsRest {
            classes: num_class,
            scale: sigmoid,
        },
        "cross_entropy" | "xentropy" => regression(Link::Sigmoid { scale: 1.0 }),
        "cross_entropy_lambda" | "xentlambda" => regression(Link::Softplus),
        "poisson" | "gamma" | "tweedie" => regression(Link::Exp),
        "regression" | "regression_l2" | "l2" | "mean_squared_error" | "mse" | "regression_l1"
        | "l1" | "huber" | "fair" | "quantile" | "mape" => {
            if line.split_ascii_whitespace().any(|w| w == "sqrt") {
                regression(Link::SignedSquare)
            } else {
                regression(Link::Identity)
            }
        }
        "lambdarank" | "rank_xendcg" | "custom" | "none" | "" => regression(Link::Identity),
        other => return Err(format!("objective {other:?} is not supported")),
    })
}

pub(super) fn parse(bytes: &[u8]) -> Result<Parsed, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| "not a LightGBM text model: the file is not UTF-8 text")?;
    let (header, trees) = sections(text)?;
    let num_class = header.count("num_class")?;
    let per_iteration = header.count("num_tree_per_iteration")?;
    let num_features = header.count("max_feature_idx")? + 1;
    let objective = match header.fields.get("objective") {
        Some(line) => objective(line, num_class)?,
        None => objective("", num_class)?,
    };
    let groups = objective.groups();
    if per_iteration != groups {
        return Err(format!(
            "num_tree_per_iteration={per_iteration} does not match the objective's {groups} outputs"
        ));
    }
    let feature_names = header.fields.get("feature_names").map(|v| {
        v.split_ascii_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    });
    let average = header.fields.contains_key("average_output");

    let mut builder = ForestBuilder::new(num_features, vec![0.0; groups], average, Precision::F64);
    for (t, tree) in trees.iter().enumerate() {
        add_tree(&mut builder, tree, t % groups).map_err(|e| format!("tree {t}: {e}"))?;
    }
    if builder.num_trees() == 0 {
        return Err("the model has no trees".into());
    }
    Ok(Parsed {
        forest: builder.finish(),
        objective,
        feature_names,
    })
}

fn add_tree(builder: &mut ForestBuilder, tree: &Section<'_>, group: usize) -> Result<(), String> {
    if tree
        .fields
        .get("is_linear")
        .is_some_and(|v| v.trim() == "1")
    {
        return Err("linear trees (linear_tree=true) are not supported".into());
    }
    let num_leaves = tree.count("num_leaves")?;
    if num_leaves == 0 {
        return Err("num_leaves=0".into());
    }
    let leaf_values: Vec<f64> = tree.array("leaf_value", num_leaves)?;
    let n = num_leaves - 1;
    if n == 0 {
        return builder
            .add_tree(group, &[], &[], &leaf_values)
            .map_err(|e| e.to_string());
    }
    let features: Vec<usize> = tree.array("split_feature", n)?;
    let thresholds: Vec<f64> = tree.array("threshold", n)?;
    let decision_types: Vec<u8> = tree.array("decision_type", n)?;
    let left: Vec<i64> = tree.array("left_child", n)?;
    let right: Vec<i64> = tree.array("right_child", n)?;

    let num_cat = tree.count("num_cat").unwrap_or(0);
    let mut sets = Vec::new();
    if num_cat > 0 {
        let boundaries: Vec<usize> = tree.array("cat_boundaries", num_cat + 1)?;
        let words_len = *boundaries.last().unwrap_or(&0);
        let words: Vec<u32> = tree.array("cat_threshold", words_len)?;
        for pair in boundaries.windows(2) {
            let (start, end) = (pair[0], pair[1]);
            if start > end || end > words.len() {
                return Err(format!("cat_boundaries {start}..{end} out of range"));
            }
            sets.push(
                builder
                    .add_category_set(&words[start..end])
                    .map_err(|e| e.to_string())?,
            );
        }
    }

    let child = |c: i64| -> Child {
        // Leaves are stored as `-(leaf + 1)`, i.e. `!leaf`.
        if c < 0 {
            Child::Leaf((!c) as usize)
        } else {
            Child::Node(c as usize)
        }
    };
    let mut splits = Vec::with_capacity(n);
    for i in 0..n {
        let d = decision_types[i];
        let split = if d & CATEGORICAL_MASK != 0 {
            let index = thresholds[i];
            let set = sets
                .get(index as usize)
                .copied()
                .filter(|_| index >= 0.0 && index.fract() == 0.0)
                .ok_or_else(|| format!("node {i}: category set {index} does not exist"))?;
            Split::Categorical {
                feature: features[i],
                set,
            }
        } else {
            let default_left = d & DEFAULT_LEFT_MASK != 0;
            let missing = match missing_type(d) {
                MissingType::Nan if default_left => Missing::DefaultLeft,
                MissingType::Nan => Missing::DefaultRight,
                MissingType::Zero if default_left => Missing::ZeroOrNanLeft,
                MissingType::Zero => Missing::ZeroOrNanRight,
                // NaN is read as 0.0, so it goes wherever 0.0 goes.
                MissingType::None if 0.0 <= thresholds[i] => Missing::DefaultLeft,
                MissingType::None => Missing::DefaultRight,
            };
            Split::Numeric {
                feature: features[i],
                threshold: f32_threshold_for_le(thresholds[i]),
                missing,
            }
        };
        splits.push(split);
    }
    let children: Vec<(Child, Child)> = left
        .iter()
        .zip(&right)
        .map(|(&l, &r)| (child(l), child(r)))
        .collect();
    builder
        .add_tree(group, &splits, &children, &leaf_values)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objective_lines() {
        assert_eq!(
            objective("binary sigmoid:1", 1).unwrap(),
            Objective::Binary { scale: 1.0 }
        );
        assert_eq!(
            objective("multiclass num_class:3", 3).unwrap(),
            Objective::Softmax { classes: 3 }
        );
        assert_eq!(
            objective("regression sqrt", 1).unwrap(),
            Objective::Regression {
                targets: 1,
                link: Link::SignedSquare
            }
        );
        assert!(objective("mystery", 1).unwrap_err().contains("mystery"));
    }

    #[test]
    fn truncated_text_is_reported() {
        let err = parse(b"tree\nversion=v4\nnum_class=1\n").err().unwrap();
        assert!(err.contains("truncated"), "{err}");
    }

    #[test]
    fn a_stump_scores_by_its_rules() {
        // One split on feature 0 at 0.5, missing type NaN, default left (decision_type 2|8 = 10).
        let model = "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\n\
            max_feature_idx=1\nobjective=regression\nfeature_names=a b\n\n\
            Tree=0\nnum_leaves=2\nnum_cat=0\nsplit_feature=0\nthreshold=0.5\ndecision_type=10\n\
            left_child=-1\nright_child=-2\nleaf_value=1 2\nshrinkage=1\n\nend of trees\n";
        let parsed = parse(model.as_bytes()).unwrap();
        assert_eq!(
            parsed.feature_names.as_deref(),
            Some(&["a".to_string(), "b".to_string()][..])
        );
        let mut out = [0.0; 4];
        parsed
            .forest
            .margins(&[0.5, 0.0, 0.6, 0.0, f32::NAN, 0.0, -3.0, 0.0], &mut out);
        assert_eq!(out, [1.0, 2.0, 1.0, 1.0]);
    }
}
