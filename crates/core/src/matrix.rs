//! A dense, row-major matrix of `f32` features: what every model backend scores.
//!
//! Missing values are `NaN`. The constructor checks that the data fills the shape exactly, so a
//! `FeatureMatrix` in hand always has `rows * cols` values.

use thiserror::Error;

/// A shape that does not match the data it was given.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("feature matrix of {rows} rows x {cols} columns needs {expected} values, got {got}")]
pub struct MatrixError {
    pub rows: usize,
    pub cols: usize,
    pub expected: usize,
    pub got: usize,
}

/// Row-major `rows x cols` matrix of `f32`; `NaN` marks a missing value.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMatrix {
    rows: usize,
    cols: usize,
    values: Vec<f32>,
}

impl FeatureMatrix {
    /// Wraps `values` (row-major) as a `rows x cols` matrix.
    pub fn new(rows: usize, cols: usize, values: Vec<f32>) -> Result<Self, MatrixError> {
        let expected = rows.saturating_mul(cols);
        if values.len() != expected {
            return Err(MatrixError {
                rows,
                cols,
                expected,
                got: values.len(),
            });
        }
        Ok(Self { rows, cols, values })
    }

    /// Builds a matrix from rows that all have `cols` values.
    pub fn from_rows<R: AsRef<[f32]>>(cols: usize, rows: &[R]) -> Result<Self, MatrixError> {
        let mut values = Vec::with_capacity(rows.len() * cols);
        for row in rows {
            let row = row.as_ref();
            if row.len() != cols {
                return Err(MatrixError {
                    rows: rows.len(),
                    cols,
                    expected: rows.len() * cols,
                    got: values.len() + row.len(),
                });
            }
            values.extend_from_slice(row);
        }
        Self::new(rows.len(), cols, values)
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// All values, row-major.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Row `i`. Panics if `i >= rows`, like slice indexing.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.cols..(i + 1) * self.cols]
    }

    /// Iterates over the rows in order.
    pub fn iter_rows(&self) -> impl ExactSizeIterator<Item = &[f32]> {
        // `chunks_exact(0)` panics; a matrix with no columns still has `rows` (empty) rows.
        let cols = self.cols.max(1);
        let rows = self.rows;
        let empty: &[f32] = &[];
        (0..rows).map(move |i| {
            if self.cols == 0 {
                empty
            } else {
                &self.values[i * cols..(i + 1) * cols]
            }
        })
    }

    /// Rows `start..end` as a new matrix.
    pub fn slice_rows(&self, start: usize, end: usize) -> FeatureMatrix {
        FeatureMatrix {
            rows: end - start,
            cols: self.cols,
            values: self.values[start * self.cols..end * self.cols].to_vec(),
        }
    }

    pub fn into_values(self) -> Vec<f32> {
        self.values
    }

    /// Stacks matrices of the same width, rows in order; `None` if widths differ.
    pub fn concat(parts: &[&FeatureMatrix]) -> Option<FeatureMatrix> {
        let cols = parts.first().map_or(0, |p| p.cols);
        if parts.iter().any(|p| p.cols != cols) {
            return None;
        }
        let rows = parts.iter().map(|p| p.rows).sum();
        let mut values = Vec::with_capacity(rows * cols);
        for p in parts {
            values.extend_from_slice(&p.values);
        }
        Some(FeatureMatrix { rows, cols, values })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_data_that_does_not_fill_the_shape() {
        let err = FeatureMatrix::new(2, 3, vec![0.0; 5]).unwrap_err();
        assert_eq!(err.expected, 6);
        assert_eq!(err.got, 5);
        assert!(err.to_string().contains("2 rows x 3 columns"));
    }

    #[test]
    fn rows_come_back_in_order() {
        let m = FeatureMatrix::from_rows(2, &[[1.0, 2.0], [3.0, 4.0], [5.0, f32::NAN]]).unwrap();
        assert_eq!(m.rows(), 3);
        assert_eq!(m.row(1), &[3.0, 4.0]);
        let rows: Vec<_> = m.iter_rows().collect();
        assert_eq!(rows.len(), 3);
        assert!(rows[2][1].is_nan());
        assert_eq!(m.slice_rows(1, 3).row(0), &[3.0, 4.0]);
    }

    #[test]
    fn concat_stacks_rows_of_equal_width() {
        let a = FeatureMatrix::from_rows(2, &[[1.0, 2.0]]).unwrap();
        let b = FeatureMatrix::from_rows(2, &[[3.0, 4.0], [5.0, 6.0]]).unwrap();
        let c = FeatureMatrix::concat(&[&a, &b]).unwrap();
        assert_eq!((c.rows(), c.row(2)), (3, &[5.0, 6.0][..]));
        let narrow = FeatureMatrix::from_rows(1, &[[1.0]]).unwrap();
        assert!(FeatureMatrix::concat(&[&a, &narrow]).is_none());
    }

    #[test]
    fn ragged_rows_are_rejected() {
        let rows: Vec<Vec<f32>> = vec![vec![1.0, 2.0], vec![3.0]];
        assert!(FeatureMatrix::from_rows(2, &rows).is_err());
    }

    #[test]
    fn zero_column_matrix_still_has_rows() {
        let m = FeatureMatrix::new(3, 0, vec![]).unwrap();
        assert_eq!(m.iter_rows().count(), 3);
    }
}
