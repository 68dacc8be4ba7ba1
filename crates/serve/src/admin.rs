//! The admin REST API under `/api/v1/`: list and show models, register versions, move and
//! remove aliases, point endpoints, ask what was live at a time and read the audit log. JSON in
//! and out; every failure is `{"error": "message"}` with its status: 400 for bad input (a name,
//! body, base64, query value or model file), 404 for an unknown model, version, alias or
//! target, 409 for bytes already registered, 503 when the store cannot be reached, else 500.
//! `GET /api/v1/openapi.json` serves the OpenAPI document generated from these handlers.
//!
//! Who makes a change comes from the `x-berth-actor` header (default `api`) and is recorded in
//! the audit log with the optional `reason` of the body.

mod types;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use berth_registry::{
    LiveState, ModelDetail, ModelRef, RegisterRequest, Registry, Selector, TrafficPolicy,
    check_alias, check_name,
};
use berth_store::{AuditFilter, AuditRecord, EndpointRecord, Lineage, ModelRecord, VersionRecord};
use chrono::{DateTime, Utc};
use utoipa::OpenApi;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Actor, ApiJson, ApiPath, ApiQuery, OptionalJson};
use types::{
    AliasDeleted, AliasSet, AuditQuery, DeleteAlias, HistoryQuery, RegisterVersion, SetAlias,
    SetEndpoint,
};

/// The largest request body accepted: a model file travels in the body as base64, so this
/// bounds the model files that can be registered over the API (about 190 MiB of model).
pub const MAX_REQUEST_BYTES: usize = 256 * 1024 * 1024;

/// The OpenAPI document of the admin API, generated from the handlers and their types.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "berth admin API",
        description = "Models, versions, aliases, endpoints, what was live when, and the audit log. \
                       Errors are `{\"error\": \"message\"}`. Changes record the `x-berth-actor` \
                       header (default `api`) as who made them."
    ),
    paths(
        list_models,
        show_model,
        register_version,
        show_version,
        show_alias,
        set_alias,
        delete_alias,
        list_endpoints,
        set_endpoint,
        history,
        audit,
        openapi_json
    ),
    tags(
        (name = "models", description = "Models, their versions and aliases"),
        (name = "endpoints", description = "What clients call and what it serves"),
        (name = "history", description = "What was live when, and who changed it"),
        (name = "meta", description = "This API itself")
    )
)]
pub struct AdminApi;

/// The admin API over `registry`, with the routes under `/api/v1/`. It has no fallback of its
/// own, so it can be merged with the serving routers.
pub fn admin_router(registry: Registry) -> Router {
    Router::new()
        .route("/api/v1/models", get(list_models))
        .route("/api/v1/models/{name}", get(show_model))
        .route("/api/v1/models/{name}/versions", post(register_version))
        .route(
            "/api/v1/models/{name}/versions/{version}",
            get(show_version),
        )
        .route(
            "/api/v1/models/{name}/aliases/{alias}",
            get(show_alias).put(set_alias).delete(delete_alias),
        )
        .route("/api/v1/endpoints", get(list_endpoints))
        .route("/api/v1/endpoints/{name}", put(set_endpoint))
        .route("/api/v1/history", get(history))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/openapi.json", get(openapi_json))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(registry)
}

type ApiResult<T> = Result<Json<T>, ApiError>;

#[utoipa::path(
    get,
    path = "/api/v1/models",
    tag = "models",
    responses(
        (status = 200, description = "Every model", body = Vec<ModelRecord>),
        (status = 500, description = "The store failed", body = ErrorBody),
        (status = 503, description = "The store cannot be reached", body = ErrorBody)
    )
)]
async fn list_models(State(registry): State<Registry>) -> ApiResult<Vec<ModelRecord>> {
    Ok(Json(registry.models().await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/models/{name}",
    tag = "models",
    params(("name" = String, Path, description = "The model")),
    responses(
        (status = 200, description = "The model with its versions and aliases", body = ModelDetail),
        (status = 400, description = "Not a valid model name", body = ErrorBody),
        (status = 404, description = "No such model", body = ErrorBody),
        (status = 500, description = "The store failed", body = ErrorBody),
        (status = 503, description = "The store cannot be reached", body = ErrorBody)
    )
)]
async fn show_model(
    State(registry): State<Registry>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<ModelDetail> {
    Ok(Json(registry.model(&name).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/models/{name}/versions",
    tag = "models",
    params(
        ("name" = String, Path, description = "The model; created by its first version"),
        ("x-berth-actor" = Option<String>, Header, description = "Who registers it (default `api`)")
    ),
    request_body = RegisterVersion,
    responses(
        (status = 201, description = "Registered as the model's next version", body = VersionRecord),
        (status = 400, description = "A bad name, body, base64, signature, or a model file that does not load", body = ErrorBody),
        (status = 409, description = "These exact bytes are already a version of this model", body = ErrorBody),
        (status = 413, description = "The body is larger than the limit", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = ErrorBody),
        (status = 500, description = "The store failed", body = ErrorBody),
        (status = 503, description = "The store cannot be reached", body = ErrorBody)
    )
)]
async fn register_version(
    State(registry): State<Registry>,
    ApiPath(name): ApiPath<String>,
    Actor(actor): Actor,
    ApiJson(body): ApiJson<RegisterVersion>,
) -> Result<(StatusCode, Json<VersionRecord>), ApiError> {
    let artifact = decode_base64("artifact_base64", &body.artifact_base64)?;
    let reference = match (body.reference_file_name, body.reference_base64) {
        (Some(file), Some(data)) => Some((file, decode_base64("reference_base64", &data)?)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(ApiError::bad_request(
                "reference_file_name is given without reference_base64",
            ));
        }
        (None, Some(_)) => {
            return Err(ApiError::bad_request(
                "reference_base64 is given without reference_file_name",
            ));
        }
    };
    let request = RegisterRequest {
        description: body.description,
        signature: body.signature,
        reference,
        drift: body.drift,
        features: body.features,
        tags: body.tags.unwrap_or_default(),
        metrics: body.metrics.unwrap_or_default(),
        lineage: Lineage {
            parent_version: body.parent_version,
            training_data_uri: body.training_data_uri,
            training_data_sha256: body.training_data_sha256,
            triggered_by: body.triggered_by,
            code_ref: body.code_ref,
        },
        reason: body.reason,
    };
    let version = registry
        .register(&name, &body.file_name, artifact, request, &actor)
        .await?;
    Ok((StatusCode::CREATED, Json(version)))
}

#[utoipa::path(
    get,
    path = "/api/v1/models/{name}/versions/{version}",
    tag = "models",
    params(
        ("name" = String, Path, description = "The model"),
        ("version" = i64, Path, minimum = 1, description = "The version number")
    ),
    responses(
        (status = 200, description = "The version", body = VersionRecord),
        (status = 400, description = "Not a valid model name or version number", body = ErrorBody),
        (status = 404, description = "No such model or version", body = ErrorBody),
        (status = 500, description = "The store failed", body = ErrorBody),
        (status = 503, description = "The store cannot be reached", body = ErrorBody)
    )
)]
async fn show_version(
    State(registry): State<Registry>,
    ApiPath((name, version)): ApiPath<(String, String)>,
) -> ApiResult<VersionRecord> {
    check_name("model", &name)?;
    let r = ModelRef {
        model: name,
        selector: Selector::Version(parse_count("version", &version)?),
    };
    Ok(Json(registry.resolve(&r).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/models/{name}/aliases/{alias}",
    tag = "models",
    params(
        ("name" = String, Path, description = "The model"),
        ("alias" = String, Path, description = "The alias, e.g. `champion`")
    ),
    responses(
        (status = 200, description = "The version the alias points to", body = VersionRecord),
        (status = 400, description = "Not a valid model or alias name", body = ErrorBody),
        (status = 404, description = "No such model or alias", body = ErrorBody),
        (status = 500, description = "The store failed", body = ErrorBody),
        (status = 503, description = "The store cannot be reached", body = ErrorBody)
    )
)]
async fn show_alias(
    State(registry): State<Registry>,
    ApiPath((name, alias)): ApiPath<(String, String)>,
) -> ApiResult<VersionRecord> {
    check_name("model", &name)?;
    check_alias(&alias)?;
    let r = ModelRef {
        model: name,
        selector: Selector::Alias(alias),
    };
    Ok(Json(registry.resolve(&r).await?))
}

#[utoipa::path(
    put,
    path = "/api/v1/models/{name}/aliases/{alias}",
    tag = "models",
    params(
        ("name" = String, Path, description = "The model"),
        ("alias" = String, Path, description = "The alias, e.g. `champion`; created if new"),
        ("x-berth-actor" = Option<String>, Header, description = "Who moves it (default `api`)")
    ),
    request_body = SetAlias,
    responses(
        (status = 200, description = "The alias points to the version", body = AliasSet),
        (status = 400, description = "A bad name or body", body = ErrorBody),
        (status = 404, description = "No such model or version", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = ErrorBody),
        (status = 500, description = "The store failed", body = ErrorBody),
        (status = 503, description = "The store cannot be reached", body = ErrorBody)
    )
)]
async fn set_alias(
    State(registry): State<Registry>,
    ApiPath((model, alias)): ApiPath<(String, String)>,
    Actor(actor): Actor,
    ApiJson(body): ApiJson<SetAlias>,
) -> ApiResult<AliasSet> {
    let previous_version = registry
        .set_alias(&model, &alias, body.version, &actor, body.reason)
        .await?;
    Ok(Json(AliasSet {
        model,
        alias,
        version: body.version,
        previous_version,
    }))
}

#[utoipa::path(
    delete,
    path = "/api/v1/models/{name}/aliases/{alias}",
    tag = "models",
    params(
        ("name" = String, Path, description = "The model"),
        ("alias" = String, Path, description = "The alias to remove"),
        ("x-berth-actor" = Option<String>, Header, description = "Who removes it (default `api`)")
    ),
    request_body(content = Option<DeleteAlias>, description = "Optional: why"),
    responses(
        (status = 200, description = "The alias is gone", body = AliasDeleted),
        (status = 400, description = "A bad name or body", body = ErrorBody),
        (status = 404, description = "No such alias", body = ErrorBody),
        (status = 500, description = "The store failed", body = ErrorBody),
        (status = 503, description = "The store cannot be reached", body = ErrorBody)
    )
)]
async fn delete_alias(
    State(registry): State<Registry>,
    ApiPath((model, alias)): ApiPath<(String, String)>,
    Actor(actor): Actor,
    OptionalJson(body): OptionalJson<DeleteAlias>,
) -> ApiResult<AliasDeleted> {
    let DeleteAlias { reason } = body.unwrap_or_default();
    let previous_version = registry
        .delete_alias(&model, &alias, &actor, reason)
        .await?;
    Ok(Json(AliasDeleted {
        model,
        alias,
        previous_version,
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/endpoints",
    tag = "endpoints",
    responses(
        (status = 200, description = "Every endpoint", body = Vec<EndpointRecord>),
        (status = 500, description = "The store failed", body = ErrorBody),
        (status = 503, description = "The store cannot be reached", body = ErrorBody)
    )
)]
async fn list_endpoints(State(registry): State<Registry>) -> ApiResult<Vec<EndpointRecord>> {
    Ok(Json(registry.endpoints().await?))
}

#[utoipa::path(
    put,
    path = "/api/v1/endpoints/{name}",
    tag = "endpoints",
    params(
        ("name" = String, Path, description = "The endpoint; created if new"),
        ("x-berth-actor" = Option<String>, Header, description = "Who points it (default `api`)")
    ),
    request_body = SetEndpoint,
    responses(
        (status = 200, description = "The endpoint serves the target", body = EndpointRecord),
        (status = 400, description = "A bad name, body or target", body = ErrorBody),
        (status = 404, description = "The target's model, version or alias does not exist", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = ErrorBody),
        (status = 500, description = "The store failed", body = ErrorBody),
        (status = 503, description = "The store cannot be reached", body = ErrorBody)
    )
)]
async fn set_endpoint(
    State(registry): State<Registry>,
    ApiPath(name): ApiPath<String>,
    Actor(actor): Actor,
    ApiJson(body): ApiJson<SetEndpoint>,
) -> ApiResult<EndpointRecord> {
    let canary = match (&body.canary, body.canary_weight) {
        (Some(target), Some(weight)) => Some((target.as_str(), weight)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(ApiError::bad_request(
                "canary_weight: expected a percent in (0, 100] with canary, got none",
            ));
        }
        (None, Some(_)) => {
            return Err(ApiError::bad_request(
                "canary: expected a target for canary_weight, got none",
            ));
        }
    };
    let policy = TrafficPolicy::from_text(
        &body.target,
        canary,
        &body.shadows,
        body.sticky_header.as_deref(),
        body.sticky_field.as_deref(),
    )?;
    let endpoint = registry
        .set_endpoint_policy(&name, &policy, &actor, body.reason)
        .await?;
    Ok(Json(endpoint))
}

#[utoipa::path(
    get,
    path = "/api/v1/history",
    tag = "history",
    params(HistoryQuery),
    responses(
        (status = 200, description = "What each alias and endpoint pointed to at that time", body = LiveState),
        (status = 400, description = "A bad model name or time", body = ErrorBody),
        (status = 404, description = "No such model", body = ErrorBody),
        (status = 500, description = "The store failed", body = ErrorBody),
        (status = 503, description = "The store cannot be reached", body = ErrorBody)
    )
)]
async fn history(
    State(registry): State<Registry>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> ApiResult<LiveState> {
    let at = match &query.at {
        Some(text) => parse_time("at", text)?,
        None => Utc::now(),
    };
    Ok(Json(registry.live_at(query.model.as_deref(), at).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "history",
    params(AuditQuery),
    responses(
        (status = 200, description = "The matching changes, oldest first", body = Vec<AuditRecord>),
        (status = 400, description = "A bad model name, time or limit", body = ErrorBody),
        (status = 500, description = "The store failed", body = ErrorBody),
        (status = 503, description = "The store cannot be reached", body = ErrorBody)
    )
)]
async fn audit(
    State(registry): State<Registry>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> ApiResult<Vec<AuditRecord>> {
    let filter = AuditFilter {
        limit: query
            .limit
            .as_deref()
            .map(|t| parse_count("limit", t))
            .transpose()?,
        since: query
            .since
            .as_deref()
            .map(|t| parse_time("since", t))
            .transpose()?,
        until: query
            .until
            .as_deref()
            .map(|t| parse_time("until", t))
            .transpose()?,
        model: query.model,
        subject_kind: None,
        subject: query.subject,
    };
    Ok(Json(registry.audit(&filter).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    responses((status = 200, description = "This OpenAPI document", body = Object))
)]
async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(AdminApi::openapi())
}

/// Decodes the base64 in body field `field` (standard alphabet; whitespace such as the line
/// breaks of `base64`'s output is ignored).
fn decode_base64(field: &str, text: &str) -> Result<Bytes, ApiError> {
    let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let bytes = BASE64
        .decode(&compact)
        .map_err(|e| ApiError::bad_request(format!("{field} is not valid base64: {e}")))?;
    if bytes.is_empty() {
        return Err(ApiError::bad_request(format!("{field} is empty")));
    }
    Ok(bytes.into())
}

/// Reads `field` (a path segment or query parameter) as a number from 1.
fn parse_count(field: &str, text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
        ApiError::bad_request(format!(
            "invalid {field} {text:?}: expected a number from 1"
        ))
    })
}

/// Reads query parameter `field` as an RFC 3339 time.
fn parse_time(field: &str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            let hint = if text.contains(' ') {
                " (in a query string, write '+' as %2B)"
            } else {
                ""
            };
            ApiError::bad_request(format!(
                "invalid {field} {text:?}: {e}; expected an RFC 3339 time such as 2026-11-17T10:00:00Z{hint}"
            ))
        })
}
