//! The dashboard: one self-contained page (`web/dashboard.html`, compiled into the binary) at
//! `/`, drawn in the browser from the admin API, the V2 metadata and `/metrics`. It holds no
//! state of its own, so what it shows is what the API says.

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::routing::get;

const PAGE: &str = include_str!("../../../web/dashboard.html");

async fn page() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
}

/// `GET /` and `GET /dashboard`.
pub fn dashboard_router() -> Router {
    Router::new()
        .route("/", get(page))
        .route("/dashboard", get(page))
}
