//! Data quality of one column (missing, out of range, unseen categories, rejected values) and
//! schema changes between a reference and current data (fields added, gone, or changed type).

use serde::{Deserialize, Serialize};

use crate::profile::{ColumnKind, ColumnProfile, Profile, ReferenceProfile, Values};

/// How many unseen category names a quality report lists.
const UNSEEN_LISTED: usize = 10;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ColumnQuality {
    /// Missing over all values offered, per side.
    pub missing_reference: f64,
    pub missing_current: f64,
    /// Current values below the reference minimum or above its maximum, over placed values.
    pub out_of_range_current: f64,
    /// Current values in no reference category, over placed values.
    pub unseen_current: f64,
    /// The most frequent unseen categories, with counts.
    pub unseen_categories: Vec<(String, u64)>,
    /// Current values of the wrong type, and ±inf.
    pub rejected_current: u64,
    pub non_finite_current: u64,
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl ColumnQuality {
    pub fn new(reference: &ColumnProfile, current: &ColumnProfile) -> Self {
        let placed = current.placed();
        let mut quality = ColumnQuality {
            missing_reference: share(reference.missing, reference.total()),
            missing_current: share(current.missing, current.total()),
            rejected_current: current.rejected,
            non_finite_current: current.non_finite(),
            ..ColumnQuality::default()
        };
        match &current.values {
            Values::Numeric { histogram, .. } => {
                let outside = histogram.first().copied().unwrap_or(0)
                    + if histogram.len() > 1 {
                        histogram.last().copied().unwrap_or(0)
                    } else {
                        0
                    };
                quality.out_of_range_current = share(outside, placed);
            }
            Values::Categorical {
                unseen,
                unseen_other,
                ..
            } => {
                let total: u64 = unseen.values().sum::<u64>() + unseen_other;
                quality.unseen_current = share(total, placed);
                let mut listed: Vec<(String, u64)> =
                    unseen.iter().map(|(k, v)| (k.clone(), *v)).collect();
                listed.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                listed.truncate(UNSEEN_LISTED);
                quality.unseen_categories = listed;
            }
        }
        quality
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeChange {
    pub column: String,
    pub reference: String,
    pub current: String,
}

/// Fields added, gone, or of another type in current data than in the reference; columns of a
/// type berth does not profile are listed apart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaChanges {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub type_changed: Vec<TypeChange>,
    pub unsupported: Vec<String>,
}

impl SchemaChanges {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.type_changed.is_empty()
    }

    /// From a window's profile: fields it saw that the reference lacks, and reference columns
    /// it never saw a value for although it saw rows.
    pub fn of_profiles(reference: &ReferenceProfile, window: &Profile) -> Self {
        let seen_rows = window.rows() > 0;
        SchemaChanges {
            added: window.unknown_fields.keys().cloned().collect(),
            removed: reference
                .columns
                .iter()
                .filter(|c| seen_rows && window.columns.get(&c.name).is_none_or(|p| p.total() == 0))
                .map(|c| c.name.clone())
                .collect(),
            type_changed: Vec::new(),
            unsupported: Vec::new(),
        }
    }
}

impl std::fmt::Display for TypeChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} -> {}", self.column, self.reference, self.current)
    }
}

/// A column kind as a schema type name.
pub(crate) fn kind_name(kind: Option<ColumnKind>, type_name: &str) -> String {
    match kind {
        Some(k) => format!("{k} ({type_name})"),
        None => format!("unsupported ({type_name})"),
    }
}
