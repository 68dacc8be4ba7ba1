//! The one error shape of the HTTP API, `{"error": "message"}`, and the status each failure
//! maps to: what the caller can fix is a 4xx naming the problem; what failed underneath is a
//! 5xx (503 when the metadata store cannot be reached, so a caller knows to retry).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_registry::RegistryError;
use berth_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// A failed request: its status and a message for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// What went wrong, naming the model, version, alias, field or value at fault.
    #[schema(example = "model 'churn' does not exist")]
    error: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        let status = match &e {
            RegistryError::NotFound(_) => StatusCode::NOT_FOUND,
            RegistryError::Invalid(_) => StatusCode::BAD_REQUEST,
            RegistryError::Duplicate(_) => StatusCode::CONFLICT,
            RegistryError::Store(store) if store_unreachable(store) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            RegistryError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, e.to_string())
    }
}

/// Whether the metadata store could not be reached (rather than refusing or failing a query).
/// The store keeps a failed query's cause only as sqlx's message, so a lost connection is told
/// apart by the messages sqlx gives for it.
fn store_unreachable(e: &StoreError) -> bool {
    const CONNECTION_LOST: [&str; 4] = [
        "pool timed out while waiting for an open connection",
        "attempted to acquire a connection on a closed pool",
        "error communicating with database",
        "error occurred while attempting to establish a TLS connection",
    ];
    match e {
        StoreError::Unreachable { .. } => true,
        StoreError::Database { problem, .. } => {
            CONNECTION_LOST.iter().any(|lost| problem.contains(lost))
        }
        _ => false,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, "{}", self.message);
        }
        (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(e: RegistryError) -> StatusCode {
        ApiError::from(e).status
    }

    #[test]
    fn registry_errors_map_to_statuses() {
        assert_eq!(
            status(RegistryError::NotFound("x".into())),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(RegistryError::Invalid("x".into())),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(RegistryError::Duplicate("x".into())),
            StatusCode::CONFLICT
        );
    }

    #[test]
    fn an_unreachable_store_is_503_and_other_store_failures_500() {
        let unreachable = StoreError::Unreachable {
            location: "postgres://db/berth".into(),
            problem: "connection refused".into(),
        };
        let lost = StoreError::Database {
            doing: "listing models".into(),
            problem: "pool timed out while waiting for an open connection".into(),
        };
        let refused = StoreError::Database {
            doing: "listing models".into(),
            problem: "error returned from database: relation \"models\" does not exist".into(),
        };
        let corrupt = StoreError::Corrupt {
            sha256: "ab".into(),
            actual: "cd".into(),
        };
        for (e, expected) in [
            (unreachable, StatusCode::SERVICE_UNAVAILABLE),
            (lost, StatusCode::SERVICE_UNAVAILABLE),
            (refused, StatusCode::INTERNAL_SERVER_ERROR),
            (corrupt, StatusCode::INTERNAL_SERVER_ERROR),
        ] {
            let message = e.to_string();
            let api = ApiError::from(RegistryError::Store(e));
            assert_eq!((api.status, api.message), (expected, message));
        }
    }
}
