//! A flat, format-independent tree ensemble and its evaluator.
//!
//! XGBoost and LightGBM files are both parsed into one [`Forest`]: every node of every tree in
//! one array, every leaf value in another, children as indices (a negative child `c` is the leaf
//! `!c`). All numeric splits are normalised to "go left when `x < threshold`" on `f32`, with a
//! per-node default direction for missing values, so the hot loop has one comparison per node.
//! Scoring walks a block of rows through one tree at a time, which keeps a tree in cache while
//! many rows use it; large batches are split across threads with rayon.

use rayon::prelude::*;

/// Rows scored per block: one tree's nodes stay in cache while this many rows walk it.
const BLOCK_ROWS: usize = 64;
/// Batches at least this large are split across the rayon thread pool.
const PARALLEL_MIN_ROWS: usize = 2048;

/// Node flag: a missing value goes to the left child.
const DEFAULT_LEFT: u32 = 1 << 31;
/// Node flag: a value within ±1e-35 counts as missing too (LightGBM `missing_type=Zero`).
const ZERO_IS_MISSING: u32 = 1 << 30;
/// Node flag: a categorical split; `threshold` holds the index of its category bitset.
const CATEGORICAL: u32 = 1 << 29;
const FEATURE_MASK: u32 = CATEGORICAL - 1;
/// The largest feature index a node can name.
pub(crate) const MAX_FEATURE: usize = FEATURE_MASK as usize;

/// LightGBM's `kZeroThreshold`: values this close to zero are "zero".
const ZERO_THRESHOLD: f32 = 1e-35;

/// One split. 16 bytes, so four fit in a cache line.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct Node {
    threshold: f32,
    feature_and_flags: u32,
    left: i32,
    right: i32,
}

/// How a node routes a missing value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Missing {
    /// NaN goes to the default side.
    DefaultLeft,
    DefaultRight,
    /// NaN and values within ±1e-35 go to the default side.
    ZeroOrNanLeft,
    ZeroOrNanRight,
}

/// A split as the parsers describe it, before it is packed into a [`Node`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Split {
    /// Left when `x < threshold`.
    Numeric {
        feature: usize,
        threshold: f32,
        missing: Missing,
    },
    /// Left when `x` is a non-negative integer whose bit is set in category set `set`;
    /// NaN and negatives go right.
    Categorical { feature: usize, set: usize },
}

/// A node reference while building: an internal node of the current tree, or a leaf of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Child {
    Node(usize),
    Leaf(usize),
}

/// A problem in a tree's structure; the parsers add which tree and file.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ForestError {
    #[error("tree {tree}: node {node} points to child {child}, which does not exist")]
    BadChild {
        tree: usize,
        node: usize,
        child: String,
    },
    #[error(
        "tree {tree}: node {node} points back to node {child}; trees must point forward, this one would loop"
    )]
    Backwards {
        tree: usize,
        node: usize,
        child: usize,
    },
    #[error("tree {tree}: node {node} splits on feature {feature}, but the model has {features}")]
    BadFeature {
        tree: usize,
        node: usize,
        feature: usize,
        features: usize,
    },
    #[error("tree {tree}: node {node} names category set {set}, but the model has {sets}")]
    BadCategorySet {
        tree: usize,
        node: usize,
        set: usize,
        sets: usize,
    },
    #[error("tree {tree}: belongs to output {group}, but the model has {groups} outputs")]
    BadGroup {
        tree: usize,
        group: usize,
        groups: usize,
    },
    #[error("model is too large: more than 2^31 nodes or leaves")]
    TooLarge,
}

/// The floating-point type sums are accumulated in, as the library that trained the model does
/// it: XGBoost adds leaf values in `f32`, LightGBM in `f64`. Matching it makes outputs equal to
/// the library's bit for bit rather than merely close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Precision {
    F32,
    F64,
}

/// An accumulator type for [`Precision`].
trait Accumulator: Copy + std::ops::AddAssign {
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
}

impl Accumulator for f32 {
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

impl Accumulator for f64 {
    fn from_f64(x: f64) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
}

/// A whole ensemble, ready to score.
#[derive(Debug, Clone)]
pub(crate) struct Forest {
    nodes: Vec<Node>,
    leaves: Vec<f64>,
    /// Root of each tree: a node index, or `!leaf` for a tree that is a single leaf.
    roots: Vec<i32>,
    /// Output group each tree adds to.
    tree_group: Vec<u32>,
    /// Category sets: `(start, len)` into `category_words`.
    category_sets: Vec<(u32, u32)>,
    category_words: Vec<u32>,
    num_features: usize,
    base_margin: Vec<f64>,
    /// Divide each sum by the number of trees of its group (random-forest mode).
    average: bool,
    precision: Precision,
}

/// Builds a [`Forest`] tree by tree, checking each tree's structure.
pub(crate) struct ForestBuilder {
    forest: Forest,
    trees_per_group: Vec<usize>,
}

impl ForestBuilder {
    pub(crate) fn new(
        num_features: usize,
        base_margin: Vec<f64>,
        average: bool,
        precision: Precision,
    ) -> Self {
        let groups = base_margin.len();
        Self {
            forest: Forest {
                nodes: Vec::new(),
                leaves: Vec::new(),
                roots: Vec::new(),
                tree_group: Vec::new(),
                category_sets: Vec::new(),
                category_words: Vec::new(),
                num_features,
                base_margin,
                average,
                precision,
            },
            trees_per_group: vec![0; groups],
        }
    }

    /// Adds a category set (a bitset over category values); returns its index.
    pub(crate) fn add_category_set(&mut self, words: &[u32]) -> Result<usize, ForestError> {
        let start =
            u32::try_from(self.forest.category_words.len()).map_err(|_| ForestError::TooLarge)?;
        let len = u32::try_from(words.len()).map_err(|_| ForestError::TooLarge)?;
        self.forest.category_words.extend_from_slice(words);
        self.forest.category_sets.push((start, len));
        Ok(self.forest.category_sets.len() - 1)
    }

    /// Adds one tree. `splits[i]` has children `children[i] = (left, right)`; the root is
    /// internal node 0, or leaf 0 when `splits` is empty. Leaf values are already scaled.
    pub(crate) fn add_tree(
        &mut self,
        group: usize,
        splits: &[Split],
        children: &[(Child, Child)],
        leaf_values: &[f64],
    ) -> Result<(), ForestError> {
        let tree = self.forest.roots.len();
        let groups = self.forest.base_margin.len();
        if group >= groups {
            return Err(ForestError::BadGroup {
                tree,
                group,
                groups,
            });
        }
        let node_base = self.forest.nodes.len();
        let leaf_base = self.forest.leaves.len();
        if node_base + splits.len() > i32::MAX as usize
            || leaf_base + leaf_values.len() > i32::MAX as usize
        {
            return Err(ForestError::TooLarge);
        }
        let to_global = |node: usize, child: Child| -> Result<i32, ForestError> {
            match child {
                Child::Node(c) if c < splits.len() => {
                    if c <= node {
                        return Err(ForestError::Backwards {
                            tree,
                            node,
                            child: c,
                        });
                    }
                    Ok((node_base + c) as i32)
                }
                Child::Leaf(l) if l < leaf_values.len() => Ok(!((leaf_base + l) as i32)),
                other => Err(ForestError::BadChild {
                    tree,
                    node,
                    child: format!("{other:?}"),
                }),
            }
        };
        if splits.len() != children.len() {
            return Err(ForestError::BadChild {
                tree,
                node: splits.len().min(children.len()),
                child: "(missing)".into(),
            });
        }
        let mut nodes = Vec::with_capacity(splits.len());
        for (node, (split, &(left, right))) in splits.iter().zip(children).enumerate() {
            let (threshold, feature_and_flags) = match *split {
                Split::Numeric {
                    feature,
                    threshold,
                    missing,
                } => {
                    self.check_feature(tree, node, feature)?;
                    let flags = match missing {
                        Missing::DefaultLeft => DEFAULT_LEFT,
                        Missing::DefaultRight => 0,
                        Missing::ZeroOrNanLeft => DEFAULT_LEFT | ZERO_IS_MISSING,
                        Missing::ZeroOrNanRight => ZERO_IS_MISSING,
                    };
                    (threshold, feature as u32 | flags)
                }
                Split::Categorical { feature, set } => {
                    self.check_feature(tree, node, feature)?;
                    let sets = self.forest.category_sets.len();
                    if set >= sets {
                        return Err(ForestError::BadCategorySet {
                            tree,
                            node,
                            set,
                            sets,
                        });
                    }
                    (f32::from_bits(set as u32), feature as u32 | CATEGORICAL)
                }
            };
            nodes.push(Node {
                threshold,
                feature_and_flags,
                left: to_global(node, left)?,
                right: to_global(node, right)?,
            });
        }
        let root = if splits.is_empty() {
            if leaf_values.is_empty() {
                return Err(ForestError::BadChild {
                    tree,
                    node: 0,
                    child: "(a tree without nodes or leaves)".into(),
                });
            }
            !(leaf_base as i32)
        } else {
            node_base as i32
        };
        self.forest.nodes.extend(nodes);
        self.forest.leaves.extend_from_slice(leaf_values);
        self.forest.roots.push(root);
        self.forest.tree_group.push(group as u32);
        self.trees_per_group[group] += 1;
        Ok(())
    }

    fn check_feature(&self, tree: usize, node: usize, feature: usize) -> Result<(), ForestError> {
        if feature >= self.forest.num_features || feature > MAX_FEATURE {
            return Err(ForestError::BadFeature {
                tree,
                node,
                feature,
                features: self.forest.num_features,
            });
        }
        Ok(())
    }

    pub(crate) fn num_trees(&self) -> usize {
        self.forest.roots.len()
    }

    pub(crate) fn finish(mut self) -> Forest {
        if self.forest.average {
            // Random-forest mode divides each group's sum by its number of trees; fold the
            // division into the leaves so scoring stays one pass.
            let per_tree_divisor: Vec<f64> = self
                .trees_per_group
                .iter()
                .map(|&n| n.max(1) as f64)
                .collect();
            self.forest.average = false;
            let mut scaled = self.forest.leaves.clone();
            for (t, &root) in self.forest.roots.iter().enumerate() {
                let divisor = per_tree_divisor[self.forest.tree_group[t] as usize];
                for leaf in self.forest.tree_leaves(root) {
                    scaled[leaf] = self.forest.leaves[leaf] / divisor;
                }
            }
            self.forest.leaves = scaled;
        }
        self.forest
    }
}

impl Forest {
    pub(crate) fn num_features(&self) -> usize {
        self.num_features
    }

    /// Number of raw outputs per row (1, or the number of classes).
    pub(crate) fn num_groups(&self) -> usize {
        self.base_margin.len()
    }

    pub(crate) fn num_trees(&self) -> usize {
        self.roots.len()
    }

    /// Leaf indices reachable from `root`.
    fn tree_leaves(&self, root: i32) -> Vec<usize> {
        let mut out = Vec::new();
        let mut stack = vec![root];
        while let Some(i) = stack.pop() {
            if i < 0 {
                out.push(!i as usize);
            } else {
                let n = self.nodes[i as usize];
                stack.push(n.left);
                stack.push(n.right);
            }
        }
        out
    }

    /// Raw sums (margins) of `rows` rows of `num_features` values each, row-major into `out`
    /// (`rows * num_groups` values). `features.len()` must be `rows * num_features`.
    pub(crate) fn margins(&self, features: &[f32], out: &mut [f64]) {
        let width = self.num_features;
        let groups = self.num_groups();
        debug_assert_eq!(features.len() / width.max(1), out.len() / groups);
        let rows = out.len() / groups;
        if rows >= PARALLEL_MIN_ROWS && rayon::current_num_threads() > 1 {
            let rows_per_task = rows
                .div_ceil(rayon::current_num_threads() * 4)
                .max(BLOCK_ROWS);
            out.par_chunks_mut(rows_per_task * groups)
                .zip(features.par_chunks(rows_per_task * width.max(1)))
                .for_each(|(out, features)| self.margins_serial(features, out));
        } else {
            self.margins_serial(features, out);
        }
    }

    fn margins_serial(&self, features: &[f32], out: &mut [f64]) {
        match self.precision {
            Precision::F32 => self.margins_as::<f32>(features, out),
            Precision::F64 => self.margins_as::<f64>(features, out),
        }
    }

    fn margins_as<A: Accumulator>(&self, features: &[f32], out: &mut [f64]) {
        let width = self.num_features.max(1);
        let groups = self.num_groups();
        let base: Vec<A> = self.base_margin.iter().map(|&b| A::from_f64(b)).collect();
        let mut sums: Vec<A> = Vec::with_capacity(BLOCK_ROWS * groups);
        for (out, features) in out
            .chunks_mut(BLOCK_ROWS * groups)
            .zip(features.chunks(BLOCK_ROWS * width))
        {
            sums.clear();
            for _ in 0..out.len() / groups {
                sums.extend_from_slice(&base);
            }
            for (&root, &group) in self.roots.iter().zip(&self.tree_group) {
                let group = group as usize;
                for (row_sums, row) in sums.chunks_mut(groups).zip(features.chunks(width)) {
                    row_sums[group] += A::from_f64(self.leaves[self.leaf(root, row)]);
                }
            }
            for (o, s) in out.iter_mut().zip(&sums) {
                *o = s.to_f64();
            }
        }
    }

    /// The leaf that `row` reaches from `root`.
    #[inline(always)]
    fn leaf(&self, root: i32, row: &[f32]) -> usize {
        let mut i = root;
        while i >= 0 {
            let node = &self.nodes[i as usize];
            let flags = node.feature_and_flags;
            let x = row[(flags & FEATURE_MASK) as usize];
            i = if flags & (CATEGORICAL | ZERO_IS_MISSING) == 0 {
                if x < node.threshold {
                    node.left
                } else if x.is_nan() && flags & DEFAULT_LEFT != 0 {
                    node.left
                } else {
                    node.right
                }
            } else {
                self.rare_split(node, x)
            };
        }
        !i as usize
    }

    /// Categorical and zero-as-missing splits, kept out of the hot loop.
    #[cold]
    fn rare_split(&self, node: &Node, x: f32) -> i32 {
        let flags = node.feature_and_flags;
        if flags & CATEGORICAL != 0 {
            // LightGBM: NaN and negative values are never in a category set.
            if x.is_nan() || x < 0.0 {
                return node.right;
            }
            let category = x as u32; // truncates toward zero, as LightGBM's int cast does
            let (start, len) = self.category_sets[node.threshold.to_bits() as usize];
            let word = (category / 32) as usize;
            let hit = word < len as usize
                && (self.category_words[start as usize + word] >> (category % 32)) & 1 == 1;
            return if hit { node.left } else { node.right };
        }
        if x.is_nan() || (-ZERO_THRESHOLD..=ZERO_THRESHOLD).contains(&x) {
            if flags & DEFAULT_LEFT != 0 {
                node.left
            } else {
                node.right
            }
        } else if x < node.threshold {
            node.left
        } else {
            node.right
        }
    }
}

/// The `f32` threshold `t` such that, for every `f32` value `x` that is not NaN,
/// `(x as f64) <= threshold` exactly when `x < t`: LightGBM compares doubles with `<=`.
pub(crate) fn f32_threshold_for_le(threshold: f64) -> f32 {
    let mut t = threshold as f32; // rounds to nearest
    if f64::from(t) > threshold {
        t = t.next_down();
    }
    // Now `t` is the largest f32 that is <= threshold (or -inf below the f32 range).
    t.next_up()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn le_threshold_matches_double_comparison() {
        let thresholds = [
            0.5,
            0.1,
            -0.1,
            1e-40,
            -1e-40,
            0.0,
            3.4e38,
            1e39,
            -1e39,
            123.456_789,
        ];
        let values: Vec<f32> = vec![
            0.5,
            0.5f32.next_up(),
            0.1,
            0.1f32.next_up(),
            0.1f32.next_down(),
            -0.1,
            -0.1f32.next_down(),
            0.0,
            -0.0,
            1e-45,
            -1e-45,
            f32::MAX,
            f32::MIN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            123.456_79,
        ];
        for &t in &thresholds {
            let t32 = f32_threshold_for_le(t);
            for &x in &values {
                assert_eq!(f64::from(x) <= t, x < t32, "x={x} t={t} t32={t32}");
            }
        }
    }

    fn stump(missing: Missing) -> Forest {
        let mut b = ForestBuilder::new(1, vec![0.0], false, Precision::F64);
        b.add_tree(
            0,
            &[Split::Numeric {
                feature: 0,
                threshold: 1.0,
                missing,
            }],
            &[(Child::Leaf(0), Child::Leaf(1))],
            &[-1.0, 1.0],
        )
        .unwrap();
        b.finish()
    }

    fn score(forest: &Forest, x: f32) -> f64 {
        let mut out = [0.0];
        forest.margins(&[x], &mut out);
        out[0]
    }

    #[test]
    fn missing_values_follow_the_default_direction() {
        let left = stump(Missing::DefaultLeft);
        let right = stump(Missing::DefaultRight);
        assert_eq!(score(&left, 0.5), -1.0);
        assert_eq!(score(&left, 2.0), 1.0);
        assert_eq!(score(&left, f32::NAN), -1.0);
        assert_eq!(score(&right, f32::NAN), 1.0);
    }

    #[test]
    fn zero_counts_as_missing_when_flagged() {
        let f = stump(Missing::ZeroOrNanRight);
        assert_eq!(score(&f, 0.0), 1.0); // 0 < 1 would go left, but zero is missing
        assert_eq!(score(&f, 1e-36), 1.0);
        assert_eq!(score(&f, 0.5), -1.0);
        assert_eq!(score(&f, f32::NAN), 1.0);
    }

    #[test]
    fn categorical_split_uses_the_bitset() {
        let mut b = ForestBuilder::new(1, vec![0.0], false, Precision::F64);
        let set = b.add_category_set(&[0b1010, 1]).unwrap(); // categories 1, 3, 32
        b.add_tree(
            0,
            &[Split::Categorical { feature: 0, set }],
            &[(Child::Leaf(0), Child::Leaf(1))],
            &[-1.0, 1.0],
        )
        .unwrap();
        let f = b.finish();
        for (x, want) in [
            (1.0, -1.0),
            (3.0, -1.0),
            (3.7, -1.0),
            (32.0, -1.0),
            (0.0, 1.0),
            (2.0, 1.0),
            (64.0, 1.0),
            (-1.0, 1.0),
            (f32::NAN, 1.0),
        ] {
            assert_eq!(score(&f, x), want, "category {x}");
        }
    }

    #[test]
    fn malformed_trees_are_rejected() {
        let mut b = ForestBuilder::new(2, vec![0.0], false, Precision::F64);
        let split = Split::Numeric {
            feature: 0,
            threshold: 0.0,
            missing: Missing::DefaultLeft,
        };
        let cycle = b.add_tree(
            0,
            &[split, split],
            &[
                (Child::Node(1), Child::Leaf(0)),
                (Child::Node(0), Child::Leaf(1)),
            ],
            &[0.0, 1.0],
        );
        assert!(matches!(cycle, Err(ForestError::Backwards { .. })));
        let dangling = b.add_tree(0, &[split], &[(Child::Leaf(0), Child::Leaf(5))], &[0.0]);
        assert!(matches!(dangling, Err(ForestError::BadChild { .. })));
        let feature = Split::Numeric {
            feature: 2,
            threshold: 0.0,
            missing: Missing::DefaultLeft,
        };
        let bad = b.add_tree(
            0,
            &[feature],
            &[(Child::Leaf(0), Child::Leaf(1))],
            &[0.0, 1.0],
        );
        assert!(matches!(bad, Err(ForestError::BadFeature { .. })));
        assert!(matches!(
            b.add_tree(3, &[], &[], &[1.0]),
            Err(ForestError::BadGroup { .. })
        ));
    }

    #[test]
    fn parallel_and_serial_scoring_agree() {
        let mut b = ForestBuilder::new(2, vec![0.5, -0.5], false, Precision::F32);
        for t in 0..20 {
            let s = |feature, threshold| Split::Numeric {
                feature,
                threshold,
                missing: Missing::DefaultRight,
            };
            b.add_tree(
                t % 2,
                &[s(0, t as f32 / 10.0), s(1, 0.3)],
                &[
                    (Child::Node(1), Child::Leaf(0)),
                    (Child::Leaf(1), Child::Leaf(2)),
                ],
                &[t as f64, 0.25, -0.75],
            )
            .unwrap();
        }
        let f = b.finish();
        let rows = 10_000;
        let features: Vec<f32> = (0..rows * 2)
            .map(|i| ((i * 7919) % 1000) as f32 / 400.0)
            .collect();
        let mut parallel = vec![0.0; rows * 2];
        f.margins(&features, &mut parallel);
        let mut serial = vec![0.0; rows * 2];
        f.margins_serial(&features, &mut serial);
        assert_eq!(parallel, serial);
    }
}
