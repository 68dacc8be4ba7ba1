//! Bin edges derived from reference data, and which bin a value falls in.
//!
//! Edges are the reference's quantiles at `0, 1/k, ..., 1` (linear interpolation between order
//! statistics, numpy's default "linear" method, written out so that the fixture script computes
//! bit-identical edges), with repeated edges dropped. Bins are closed on the left and open on
//! the right except the last, which includes the reference maximum (numpy's `histogram`
//! convention). Two more bins count values below the reference minimum and above its maximum,
//! so every finite value lands somewhere: the layout is `[below, bin 0, ..., bin k-1, above]`.
//! A constant reference column has a single edge and one bin holding exactly that value.

/// Quantile bins per numeric column before repeated edges are dropped.
pub const DEFAULT_BINS: usize = 20;

/// Quantile `q` (in `[0, 1]`) of ascending, finite `sorted` values; `None` when empty.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let index = last as f64 * q.clamp(0.0, 1.0);
    let lo = (index.floor() as usize).min(last);
    let hi = (lo + 1).min(last);
    let gamma = index - lo as f64;
    let (a, b) = (sorted[lo], sorted[hi]);
    Some(a + (b - a) * gamma)
}

/// Edges of up to `bins` quantile bins of ascending, finite `sorted` values; empty when there are
/// no values.
pub fn quantile_edges(sorted: &[f64], bins: usize) -> Vec<f64> {
    let bins = bins.max(1);
    let mut edges: Vec<f64> = Vec::with_capacity(bins + 1);
    for i in 0..=bins {
        let Some(edge) = quantile_sorted(sorted, i as f64 / bins as f64) else {
            return Vec::new();
        };
        if edges.last() != Some(&edge) {
            edges.push(edge);
        }
    }
    edges
}

/// Slots of the histogram for `edges`: the in-range bins plus the two out-of-range ones.
pub fn slot_count(edges: &[f64]) -> usize {
    in_range_bins(edges) + 2
}

/// In-range bins for `edges` (one for a constant column, none without edges).
pub fn in_range_bins(edges: &[f64]) -> usize {
    match edges.len() {
        0 => 0,
        1 => 1,
        n => n - 1,
    }
}

/// Slot of finite value `x`: 0 below the first edge, `slot_count - 1` above the last one.
pub fn slot(edges: &[f64], x: f64) -> usize {
    let bins = in_range_bins(edges);
    let (Some(&first), Some(&last)) = (edges.first(), edges.last()) else {
        return 1;
    };
    if x < first {
        0
    } else if x > last {
        bins + 1
    } else if x == last {
        bins
    } else {
        // Edges <= x, at least one; bin index is that count minus one, plus the `below` slot.
        edges.partition_point(|&e| e <= x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_order_statistics() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&v, 0.0), Some(1.0));
        assert_eq!(quantile_sorted(&v, 0.5), Some(2.5));
        assert_eq!(quantile_sorted(&v, 1.0), Some(4.0));
        assert_eq!(quantile_sorted(&[], 0.5), None);
    }

    #[test]
    fn repeated_edges_are_dropped() {
        let v = [0.0, 0.0, 0.0, 0.0, 1.0];
        assert_eq!(quantile_edges(&v, 4), vec![0.0, 1.0]);
        assert_eq!(quantile_edges(&[5.0; 3], 20), vec![5.0]);
        assert!(quantile_edges(&[], 20).is_empty());
    }

    #[test]
    fn values_land_in_left_closed_bins_and_out_of_range_slots() {
        let edges = [0.0, 1.0, 2.0];
        assert_eq!(slot_count(&edges), 4);
        assert_eq!(slot(&edges, -0.1), 0);
        assert_eq!(slot(&edges, 0.0), 1);
        assert_eq!(slot(&edges, 0.5), 1);
        assert_eq!(slot(&edges, 1.0), 2);
        assert_eq!(slot(&edges, 2.0), 2);
        assert_eq!(slot(&edges, 2.5), 3);
    }

    #[test]
    fn a_constant_column_has_one_bin() {
        let edges = [3.0];
        assert_eq!(slot_count(&edges), 3);
        assert_eq!(
            (slot(&edges, 2.0), slot(&edges, 3.0), slot(&edges, 4.0)),
            (0, 1, 2)
        );
    }
}
