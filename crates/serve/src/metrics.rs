//! Prometheus metrics of serving, at `GET /metrics` (OpenMetrics text).
//!
//! - `berth_requests_total{endpoint, version, protocol, status}`: inference requests answered;
//! - `berth_request_seconds{endpoint, version, protocol}`: time from request to answer;
//! - `berth_queue_seconds{version}` and `berth_compute_seconds{version}`: time queued for a
//!   batch, and the model run of that batch;
//! - `berth_batch_rows{version}`: rows per model run;
//! - `berth_in_flight_requests`: requests being answered now;
//! - `berth_loaded_versions`: model versions loaded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header::CONTENT_TYPE};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub endpoint: String,
    pub version: String,
    pub protocol: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub endpoint: String,
    pub version: String,
    pub protocol: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabels {
    pub version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShadowLabels {
    pub endpoint: String,
    pub version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FieldLabels {
    pub version: String,
    pub field: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn seconds() -> Histogram {
    // 50 µs .. ~26 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
}

fn rows() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 14))
}

/// Every serving metric, and the registry that exposes them.
pub struct ServeMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Histograms<RouteLabels>,
    queue_seconds: Histograms<VersionLabels>,
    compute_seconds: Histograms<VersionLabels>,
    batch_rows: Histograms<VersionLabels>,
    rejected_fields: Family<FieldLabels, Counter>,
    shadow_shed: Family<ShadowLabels, Counter>,
    in_flight: Gauge,
    loaded: Gauge,
}

impl Default for ServeMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("berth");
        let requests = Family::<RequestLabels, Counter>::default();
        let request_seconds: Histograms<RouteLabels> = Family::new_with_constructor(seconds);
        let queue_seconds: Histograms<VersionLabels> = Family::new_with_constructor(seconds);
        let compute_seconds: Histograms<VersionLabels> = Family::new_with_constructor(seconds);
        let batch_rows: Histograms<VersionLabels> = Family::new_with_constructor(rows);
        let rejected_fields = Family::<FieldLabels, Counter>::default();
        let shadow_shed = Family::<ShadowLabels, Counter>::default();
        let in_flight = Gauge::default();
        let loaded = Gauge::default();
        registry.register("requests", "Inference requests answered", requests.clone());
        registry.register(
            "request_seconds",
            "Time from request to answer",
            request_seconds.clone(),
        );
        registry.register(
            "queue_seconds",
            "Time a request waited for its batch",
            queue_seconds.clone(),
        );
        registry.register(
            "compute_seconds",
            "Time of the model run of a request's batch",
            compute_seconds.clone(),
        );
        registry.register("batch_rows", "Rows per model run", batch_rows.clone());
        registry.register(
            "rejected_fields",
            "Input values refused by validation (the request got a 400 listing them), per field of the signature; other names count as (unknown)",
            rejected_fields.clone(),
        );
        registry.register(
            "shadow_shed",
            "Mirrored copies of requests a shadow version did not get because its queue was full",
            shadow_shed.clone(),
        );
        registry.register(
            "in_flight_requests",
            "Inference requests being answered",
            in_flight.clone(),
        );
        registry.register("loaded_versions", "Model versions loaded", loaded.clone());
        Self {
            registry,
            requests,
            request_seconds,
            queue_seconds,
            compute_seconds,
            batch_rows,
            rejected_fields,
            shadow_shed,
            in_flight,
            loaded,
        }
    }
}

/// One version's batch histograms (series of [`ServeMetrics`]'s families).
#[derive(Debug, Clone)]
pub struct BatchHistograms {
    queue_seconds: Histogram,
    compute_seconds: Histogram,
    batch_rows: Histogram,
}

impl BatchHistograms {
    /// A batch's timings, as seen by one of its requests.
    pub fn observe(&self, queued: Duration, compute: Duration, batch_rows: usize) {
        self.queue_seconds.observe(queued.as_secs_f64());
        self.compute_seconds.observe(compute.as_secs_f64());
        self.batch_rows.observe(batch_rows as f64);
    }
}

impl ServeMetrics {
    /// The serving metrics plus whatever `more` registers (e.g. the prediction recorder's).
    pub fn with(more: impl FnOnce(&mut Registry)) -> Self {
        let mut metrics = Self::default();
        more(&mut metrics.registry);
        metrics
    }

    /// The batch histograms of `version` (`model/version`), looked up once for a deployment
    /// rather than per request.
    pub fn batch_histograms(&self, version: &str) -> BatchHistograms {
        let labels = VersionLabels {
            version: version.to_string(),
        };
        BatchHistograms {
            queue_seconds: self.queue_seconds.get_or_create(&labels).clone(),
            compute_seconds: self.compute_seconds.get_or_create(&labels).clone(),
            batch_rows: self.batch_rows.get_or_create(&labels).clone(),
        }
    }

    /// Counts the values a request had refused, per field; `fields` bounds the label values
    /// (a client's typo must not make a new series).
    pub fn observe_rejected<'a>(
        &self,
        version: &str,
        fields: impl Iterator<Item = &'a str>,
        known: impl Fn(&str) -> bool,
    ) {
        for field in fields {
            let field = if known(field) { field } else { "(unknown)" };
            self.rejected_fields
                .get_or_create(&FieldLabels {
                    version: version.to_string(),
                    field: field.to_string(),
                })
                .inc();
        }
    }

    /// The counter of copies shed by `version` (`model/version`) shadowing `endpoint`.
    pub fn shadow_shed(&self, endpoint: &str, version: &str) -> Counter {
        self.shadow_shed
            .get_or_create(&ShadowLabels {
                endpoint: endpoint.to_string(),
                version: version.to_string(),
            })
            .clone()
    }

    pub fn set_loaded_versions(&self, n: usize) {
        self.loaded.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The metrics in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!("cannot encode metrics: {e}");
        }
        text
    }
}

/// `GET /metrics`.
pub async fn metrics_handler(State(metrics): State<Arc<ServeMetrics>>) -> Response {
    let mut response = metrics.render().into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// The protocol and endpoint of an inference request, from its path; `None` for other routes.
fn classify(method: &Method, path: &str) -> Option<(&'static str, String)> {
    if method != Method::POST {
        return None;
    }
    if path == "/invocations" {
        return Some(("mlflow", "-".to_string()));
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["v2", "models", m, ..] => Some(("v2", (*m).to_string())),
        ["v1", "models", m, ..] => Some(("v1", m.trim_end_matches(":predict").to_string())),
        _ => None,
    }
}

/// Middleware: counts and times inference requests, by the version that answered.
pub async fn track(
    State(metrics): State<Arc<ServeMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let Some((protocol, endpoint)) = classify(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    let endpoint = match protocol {
        "mlflow" => request
            .headers()
            .get("x-berth-model")
            .and_then(|v| v.to_str().ok())
            .map_or(endpoint, str::to_string),
        _ => endpoint,
    };
    metrics.in_flight.inc();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.in_flight.dec();
    let version = response
        .headers()
        .get("x-berth-version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let route = RouteLabels {
        endpoint,
        version,
        protocol: protocol.to_string(),
    };
    metrics
        .request_seconds
        .get_or_create(&route)
        .observe(started.elapsed().as_secs_f64());
    let labels = RequestLabels {
        endpoint: route.endpoint,
        version: route.version,
        protocol: route.protocol,
        status: response.status().as_u16().to_string(),
    };
    metrics.requests.get_or_create(&labels).inc();
    response
}
