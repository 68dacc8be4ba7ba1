//! Two-sample statistics: each compares a reference with a current sample, either from raw
//! values or from counts on shared bins or categories.

pub mod chi2;
pub mod divergence;
pub mod gamma;
pub mod kolmogorov;
pub mod ks;
pub mod wasserstein;
