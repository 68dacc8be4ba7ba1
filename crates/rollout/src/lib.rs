//! berth-rollout (crate doc written below)

pub mod analysis;
pub mod controller;
pub mod shadow;
pub mod spec;
pub mod split;
