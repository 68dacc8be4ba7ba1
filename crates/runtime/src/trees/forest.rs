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
/// Node flag: a categorical split on categories below 32; `threshold`'s bits are the set.
const SMALL_CATEGORICAL: u32 = 1 << 28;
const FEATURE_MASK: u32 = SMALL_CATEGORICAL - 1;
/// Batches up to this size walk each row to its leaf and stop there (lowest latency); larger
/// ones walk blocks of rows in lockstep (highest throughput).
const SMALL_BATCH_ROWS: usize = 8;
/// From this depth on, a block stops walking a tree once all its rows are at leaves.
const EARLY_EXIT_DEPTH: u32 = 4;
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
///
/// Leaves are nodes too: a leaf points to itself on both sides, so a row that reaches it early
/// stays there, and every tree can be walked a fixed number of steps (its depth) without
/// checking whether a row has arrived. That makes the walk of many rows through one tree a
/// branch-free loop whose steps for different rows overlap in the CPU.
#[derive(Debug, Clone)]
pub(crate) struct Forest {
    nodes: Vec<Node>,
    /// Value of each node that is a leaf (0 for splits), parallel to `nodes`.
    leaf_values: Vec<f64>,
    trees: Vec<TreeMeta>,
    /// Category sets: `(start, len)` into `category_words`.
    category_sets: Vec<(u32, u32)>,
    category_words: Vec<u32>,
    num_features: usize,
    base_margin: Vec<f64>,
    /// Divide each sum by the number of trees of its group (random-forest mode).
    average: bool,
    precision: Precision,
}

/// Where a tree lives in the node array and how to walk it.
#[derive(Debug, Clone, Copy)]
struct TreeMeta {
    root: u32,
    /// Index of the tree's first leaf: nodes from here on are leaves.
    first_leaf: u32,
    /// One past the tree's last node.
    end: u32,
    /// Steps from the root to the deepest leaf.
    depth: u32,
    /// Output group the tree adds to.
    group: u32,
    kind: TreeKind,
}

/// Which walk a tree needs: the cheaper kinds skip checks the tree has no use for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TreeKind {
    /// Numeric splits with NaN as the only missing value.
    Plain,
    /// Plain splits and categorical splits on categories below 32.
    SmallSets,
    /// Anything, including zero-as-missing and large category sets.
    Any,
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
                leaf_values: Vec::new(),
                trees: Vec::new(),
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
        let tree = self.forest.trees.len();
        let groups = self.forest.base_margin.len();
        if group >= groups {
            return Err(ForestError::BadGroup {
                tree,
                group,
                groups,
            });
        }
        if splits.len() != children.len() {
            return Err(ForestError::BadChild {
                tree,
                node: splits.len().min(children.len()),
                child: "(missing)".into(),
            });
        }
        if leaf_values.is_empty() {
            return Err(ForestError::BadChild {
                tree,
                node: 0,
                child: "(a tree without leaves)".into(),
            });
        }
        // Splits first, then leaves: split i is at base + i, leaf l at base + splits + l.
        let base = self.forest.nodes.len();
        let end = base + splits.len() + leaf_values.len();
        if end > i32::MAX as usize {
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
                    Ok((base + c) as i32)
                }
                Child::Leaf(l) if l < leaf_values.len() => Ok((base + splits.len() + l) as i32),
                other => Err(ForestError::BadChild {
                    tree,
                    node,
                    child: format!("{other:?}"),
                }),
            }
        };
        let mut nodes = Vec::with_capacity(end - base);
        let mut kind = TreeKind::Plain;
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
                    let (start, len) = self.forest.category_sets[set];
                    let words = &self.forest.category_words[start as usize..(start + len) as usize];
                    match words {
                        [] => (f32::from_bits(0), feature as u32 | SMALL_CATEGORICAL),
                        [word] => (f32::from_bits(*word), feature as u32 | SMALL_CATEGORICAL),
                        _ => (f32::from_bits(set as u32), feature as u32 | CATEGORICAL),
                    }
                }
            };
            kind = match (
                kind,
                feature_and_flags & (CATEGORICAL | ZERO_IS_MISSING | SMALL_CATEGORICAL),
            ) {
                (_, 0) => kind,
                (TreeKind::Plain | TreeKind::SmallSets, SMALL_CATEGORICAL) => TreeKind::SmallSets,
                _ => TreeKind::Any,
            };
            nodes.push(Node {
                threshold,
                feature_and_flags,
                left: to_global(node, left)?,
                right: to_global(node, right)?,
            });
        }
        for l in 0..leaf_values.len() {
            let me = (base + splits.len() + l) as i32;
            // A leaf reads feature 0 and goes to itself either way.
            nodes.push(Node {
                threshold: 0.0,
                feature_and_flags: 0,
                left: me,
                right: me,
            });
        }
        // Children always come after their parent, so one forward pass finds every depth.
        let mut depths = vec![0u32; nodes.len()];
        let mut depth = 0;
        for i in 0..splits.len() {
            for child in [nodes[i].left, nodes[i].right] {
                let c = child as usize - base;
                depths[c] = depths[c].max(depths[i] + 1);
                depth = depth.max(depths[c]);
            }
        }
        if depth > 0 && self.forest.num_features == 0 {
            return Err(ForestError::BadFeature {
                tree,
                node: 0,
                feature: 0,
                features: 0,
            });
        }
        self.forest.nodes.extend(nodes);
        self.forest
            .leaf_values
            .extend(std::iter::repeat_n(0.0, splits.len()));
        self.forest.leaf_values.extend_from_slice(leaf_values);
        self.forest.trees.push(TreeMeta {
            root: base as u32,
            first_leaf: (base + splits.len()) as u32,
            end: end as u32,
            depth,
            group: group as u32,
            kind,
        });
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
        self.forest.trees.len()
    }

    pub(crate) fn finish(mut self) -> Forest {
        if self.forest.average {
            // Random-forest mode divides each group's sum by its number of trees; fold the
            // division into the leaves so scoring stays one pass.
            for t in &self.forest.trees {
                let divisor = self.trees_per_group[t.group as usize].max(1) as f64;
                for v in &mut self.forest.leaf_values[t.root as usize..t.end as usize] {
                    *v /= divisor;
                }
            }
            self.forest.average = false;
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
        self.trees.len()
    }

    /// Raw sums (margins) of `rows` rows of `num_features` values each, row-major into `out`
    /// (`rows * num_groups` values). `features.len()` must be `rows * num_features`.
    pub(crate) fn margins(&self, features: &[f32], out: &mut [f64]) {
        let width = self.num_features;
        let groups = self.num_groups();
        let rows = out.len() / groups;
        // The walks index `features` without bounds checks; this makes that sound.
        assert!(
            features.len() == rows * width && out.len() == rows * groups,
            "margins: {} features and {} outputs do not make whole rows of {width} and {groups}",
            features.len(),
            out.len()
        );
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
        if out.len() / groups <= SMALL_BATCH_ROWS {
            for (out, row) in out.chunks_mut(groups).zip(features.chunks(width)) {
                let mut sums = base.clone();
                for tree in &self.trees {
                    sums[tree.group as usize] +=
                        A::from_f64(self.leaf_values[self.leaf(tree.root, row)]);
                }
                for (o, s) in out.iter_mut().zip(&sums) {
                    *o = s.to_f64();
                }
            }
            return;
        }
        let mut sums: Vec<A> = Vec::with_capacity(BLOCK_ROWS * groups);
        let mut at = [0u32; BLOCK_ROWS];
        for (out, features) in out
            .chunks_mut(BLOCK_ROWS * groups)
            .zip(features.chunks(BLOCK_ROWS * width))
        {
            let rows = out.len() / groups;
            let at = &mut at[..rows];
            sums.clear();
            for _ in 0..rows {
                sums.extend_from_slice(&base);
            }
            for tree in &self.trees {
                at.fill(tree.root);
                match tree.kind {
                    TreeKind::Plain => self.walk_plain(tree, features, width, at),
                    TreeKind::SmallSets => self.walk_small_sets(tree, features, width, at),
                    TreeKind::Any => self.walk_any(tree, features, width, at),
                }
                let group = tree.group as usize;
                for (row_sums, &leaf) in sums.chunks_mut(groups).zip(at.iter()) {
                    row_sums[group] += A::from_f64(self.leaf_values[leaf as usize]);
                }
            }
            for (o, s) in out.iter_mut().zip(&sums) {
                *o = s.to_f64();
            }
        }
    }

    /// The leaf `row` reaches from `root`, stopping as soon as it gets there.
    fn leaf(&self, root: u32, row: &[f32]) -> usize {
        let mut i = root as i32;
        loop {
            let node = &self.nodes[i as usize];
            let x = row[(node.feature_and_flags & FEATURE_MASK) as usize];
            let next = self.step(node, x);
            if next == i {
                return i as usize;
            }
            i = next;
        }
    }

    /// Node `i` and the value of its feature in row `r` of a block, without bounds checks.
    ///
    /// Sound because the builder only stores node indices inside `nodes` (children are
    /// checked, roots are tree starts), every node's feature is below `num_features` (checked;
    /// leaves use feature 0 and exist in trees with splits only when there is a feature), and
    /// `margins` asserts that `features` holds whole rows of `num_features`, with `r` below the
    /// block's row count.
    #[inline(always)]
    fn node_and_value(&self, i: u32, features: &[f32], width: usize, r: usize) -> (&Node, f32) {
        debug_assert!((i as usize) < self.nodes.len());
        // SAFETY: see above; `i` is a stored node index.
        let node = unsafe { self.nodes.get_unchecked(i as usize) };
        let at = r * width + (node.feature_and_flags & FEATURE_MASK) as usize;
        debug_assert!(at < features.len());
        // SAFETY: see above; the feature is below `width` and `r` is a row of this block.
        (node, unsafe { *features.get_unchecked(at) })
    }

    /// Walks every row of a block to its leaf through a tree of plain numeric splits.
    #[inline(always)]
    fn walk_plain(&self, tree: &TreeMeta, features: &[f32], width: usize, at: &mut [u32]) {
        self.walk(tree, features, width, at, |node, x| {
            if numeric_left(node, x) {
                node.left
            } else {
                node.right
            }
        });
    }

    /// Like [`Forest::walk_plain`], for trees that also split on small category sets.
    #[inline(always)]
    fn walk_small_sets(&self, tree: &TreeMeta, features: &[f32], width: usize, at: &mut [u32]) {
        self.walk(tree, features, width, at, |node, x| {
            let left = if node.feature_and_flags & SMALL_CATEGORICAL != 0 {
                small_set_left(node, x)
            } else {
                numeric_left(node, x)
            };
            if left { node.left } else { node.right }
        });
    }

    /// Walks rows through a tree with any kind of split.
    fn walk_any(&self, tree: &TreeMeta, features: &[f32], width: usize, at: &mut [u32]) {
        self.walk(tree, features, width, at, |node, x| self.step(node, x));
    }

    /// Moves every row of a block (`at[r]` = its node, starting at the root) down to its leaf.
    /// All rows take each step together, so the steps of different rows overlap in the CPU; a
    /// row at a leaf stays there (leaves point to themselves). Once past the shallow levels,
    /// the walk stops as soon as every row is at a leaf instead of going to the full depth.
    #[inline(always)]
    fn walk(
        &self,
        tree: &TreeMeta,
        features: &[f32],
        width: usize,
        at: &mut [u32],
        step: impl Fn(&Node, f32) -> i32,
    ) {
        for level in 0..tree.depth {
            if level >= EARLY_EXIT_DEPTH && at.iter().all(|&i| i >= tree.first_leaf) {
                break;
            }
            for (r, i) in at.iter_mut().enumerate() {
                let (node, x) = self.node_and_value(*i, features, width, r);
                *i = step(node, x) as u32;
            }
        }
    }

    /// The child `x` goes to from `node`, for any kind of split.
    #[inline]
    fn step(&self, node: &Node, x: f32) -> i32 {
        let flags = node.feature_and_flags;
        let left = if flags & (CATEGORICAL | ZERO_IS_MISSING | SMALL_CATEGORICAL) == 0 {
            numeric_left(node, x)
        } else if flags & SMALL_CATEGORICAL != 0 {
            small_set_left(node, x)
        } else if flags & CATEGORICAL != 0 {
            let (start, len) = self.category_sets[node.threshold.to_bits() as usize];
            category_of(x).is_some_and(|c| {
                let word = (c / 32) as usize;
                word < len as usize
                    && (self.category_words[start as usize + word] >> (c % 32)) & 1 == 1
            })
        } else if x.is_nan() || (-ZERO_THRESHOLD..=ZERO_THRESHOLD).contains(&x) {
            flags & DEFAULT_LEFT != 0
        } else {
            x < node.threshold
        };
        if left { node.left } else { node.right }
    }
}

/// A numeric split: left when `x < threshold`, or when `x` is NaN and missing values go left.
#[inline(always)]
fn numeric_left(node: &Node, x: f32) -> bool {
    (x < node.threshold) | (x.is_nan() & (node.feature_and_flags & DEFAULT_LEFT != 0))
}

/// A categorical split whose set (categories below 32) is stored in the threshold's bits.
#[inline(always)]
fn small_set_left(node: &Node, x: f32) -> bool {
    // Truncates toward zero as LightGBM's int cast does; NaN becomes 0, so it is tested apart,
    // and a negative category wraps to a huge one, outside the set.
    let c = x as i32 as u32;
    !x.is_nan() & (c < 32) & ((node.threshold.to_bits() >> (c & 31)) & 1 == 1)
}

/// LightGBM's category of a value: its integer part, if that is not negative (NaN has none).
fn category_of(x: f32) -> Option<u32> {
    let c = x as i32;
    (!x.is_nan() && c >= 0).then_some(c as u32)
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

    /// One categorical stump over `words`, scored on each value as one batch (lockstep walk)
    /// and one row at a time (early-exit walk); both must agree.
    fn categorical_scores(words: &[u32], xs: &[f32]) -> Vec<f64> {
        let mut b = ForestBuilder::new(1, vec![0.0], false, Precision::F64);
        let set = b.add_category_set(words).unwrap();
        b.add_tree(
            0,
            &[Split::Categorical { feature: 0, set }],
            &[(Child::Leaf(0), Child::Leaf(1))],
            &[-1.0, 1.0],
        )
        .unwrap();
        let f = b.finish();
        let many: Vec<f32> = xs.iter().copied().cycle().take(xs.len() * 20).collect();
        let mut batch = vec![0.0; many.len()];
        f.margins(&many, &mut batch);
        let single: Vec<f64> = xs.iter().map(|&x| score(&f, x)).collect();
        assert_eq!(&batch[..xs.len()], &single[..]);
        single
    }

    #[test]
    fn large_category_sets_use_the_bitset() {
        // Categories 1, 3 and 32: two words, so the set lives outside the node.
        let xs = [1.0, 3.0, 3.7, 32.0, 0.0, 2.0, 64.0, -1.0, f32::NAN];
        assert_eq!(
            categorical_scores(&[0b1010, 1], &xs),
            [-1.0, -1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
        );
    }

    #[test]
    fn small_category_sets_follow_lightgbm() {
        // Categories 0 and 3; -0.5 truncates to category 0, as LightGBM's int cast does.
        let xs = [0.0, -0.5, 3.0, 3.9, 1.0, -1.0, 31.0, 32.0, 1e10, f32::NAN];
        assert_eq!(
            categorical_scores(&[0b1001], &xs),
            [-1.0, -1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
        );
        // Set with category 31 only.
        assert_eq!(
            categorical_scores(&[1 << 31], &[31.0, 30.0, 63.0]),
            [-1.0, 1.0, 1.0]
        );
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

    mod random_forests {
        //! Random trees and rows: the optimised walks agree with a plain, recursive reading of
        //! the split rules, row by row and in blocks, for every kind of split.
        use super::*;
        use proptest::prelude::*;

        /// A tree as the parsers describe it, kept for the reference evaluator.
        #[derive(Debug, Clone)]
        enum RefNode {
            Leaf(f64),
            Split(Split, Box<RefNode>, Box<RefNode>),
        }

        fn split(features: usize) -> impl Strategy<Value = Split> {
            let missing = prop_oneof![
                Just(Missing::DefaultLeft),
                Just(Missing::DefaultRight),
                Just(Missing::ZeroOrNanLeft),
                Just(Missing::ZeroOrNanRight),
            ];
            prop_oneof![
                3 => (0..features, -3.0f32..3.0, missing).prop_map(|(feature, threshold, missing)| {
                    Split::Numeric { feature, threshold, missing }
                }),
                // Category sets 0..3 of the forest (set up below): small and large.
                1 => (0..features, 0usize..3).prop_map(|(feature, set)| Split::Categorical { feature, set }),
            ]
        }

        fn tree(features: usize) -> impl Strategy<Value = RefNode> {
            let leaf = (-2.0f64..2.0).prop_map(RefNode::Leaf);
            leaf.prop_recursive(7, 64, 2, move |inner| {
                (split(features), inner.clone(), inner)
                    .prop_map(|(s, l, r)| RefNode::Split(s, Box::new(l), Box::new(r)))
            })
        }

        const SETS: [&[u32]; 3] = [&[0b1011], &[0, 1 << 3], &[]];

        fn in_set(set: usize, x: f32) -> bool {
            if x.is_nan() || (x as i64) < 0 {
                return false;
            }
            let c = x as i64 as usize;
            SETS[set]
                .get(c / 32)
                .is_some_and(|w| (w >> (c % 32)) & 1 == 1)
        }

        fn reference(node: &RefNode, row: &[f32]) -> f64 {
            match node {
                RefNode::Leaf(v) => *v,
                RefNode::Split(split, l, r) => {
                    let left = match *split {
                        Split::Numeric {
                            feature,
                            threshold,
                            missing,
                        } => {
                            let x = row[feature];
                            let zero = x.abs() <= 1e-35;
                            match missing {
                                Missing::DefaultLeft if x.is_nan() => true,
                                Missing::DefaultRight if x.is_nan() => false,
                                Missing::ZeroOrNanLeft if x.is_nan() || zero => true,
                                Missing::ZeroOrNanRight if x.is_nan() || zero => false,
                                _ => x < threshold,
                            }
                        }
                        Split::Categorical { feature, set } => in_set(set, row[feature]),
                    };
                    reference(if left { l } else { r }, row)
                }
            }
        }

        /// Flattens a tree in pre-order: splits numbered in visit order (children after parents).
        fn flatten(
            node: &RefNode,
            splits: &mut Vec<Split>,
            children: &mut Vec<(Child, Child)>,
            leaves: &mut Vec<f64>,
        ) -> Child {
            match node {
                RefNode::Leaf(v) => {
                    leaves.push(*v);
                    Child::Leaf(leaves.len() - 1)
                }
                RefNode::Split(s, l, r) => {
                    let me = splits.len();
                    splits.push(*s);
                    children.push((Child::Leaf(0), Child::Leaf(0)));
                    let left = flatten(l, splits, children, leaves);
                    let right = flatten(r, splits, children, leaves);
                    children[me] = (left, right);
                    Child::Node(me)
                }
            }
        }

        fn value() -> impl Strategy<Value = f32> {
            prop_oneof![
                Just(f32::NAN),
                Just(0.0f32),
                Just(-0.0f32),
                Just(1e-36f32),
                (-2i32..40).prop_map(|c| c as f32),
                -3.0f32..3.0,
                (-1.0f32..0.0),
            ]
        }

        proptest! {
            #[test]
            fn walks_match_the_rules(
                trees in prop::collection::vec(tree(3), 1..6),
                rows in prop::collection::vec(prop::collection::vec(value(), 3), 1..150),
            ) {
                let mut b = ForestBuilder::new(3, vec![0.25], false, Precision::F64);
                for words in SETS {
                    b.add_category_set(words).unwrap();
                }
                for t in &trees {
                    let (mut splits, mut children, mut leaves) = (Vec::new(), Vec::new(), Vec::new());
                    flatten(t, &mut splits, &mut children, &mut leaves);
                    b.add_tree(0, &splits, &children, &leaves).unwrap();
                }
                let forest = b.finish();
                let features: Vec<f32> = rows.iter().flatten().copied().collect();
                let mut batch = vec![0.0; rows.len()];
                forest.margins(&features, &mut batch);
                for (r, row) in rows.iter().enumerate() {
                    let want: f64 = 0.25 + trees.iter().map(|t| reference(t, row)).sum::<f64>();
                    let mut single = [0.0];
                    forest.margins(row, &mut single);
                    prop_assert!((single[0] - want).abs() < 1e-9, "row {r} alone: {} vs {want}", single[0]);
                    prop_assert!((batch[r] - want).abs() < 1e-9, "row {r} in a block: {} vs {want}", batch[r]);
                }
            }
        }
    }
}
