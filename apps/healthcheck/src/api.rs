//! The HTTP API (axum): the origin registry and health, members, the node,
//! Prometheus metrics and a status page.
//!
//! | route | answer |
//! |---|---|
//! | `GET /v1/origins` | `[{ "id", "spec", "status", "health", "maintenance" }]`: `status` is `up`, `down`, `unknown` or `maintenance`; `health` null until checked, `maintenance` null unless in force |
//! | `GET /v1/origins/{id}` | one such object; 404 with a JSON error |
//! | `PUT /v1/origins/{id}` | a spec body: 201 created / 200 replaced; 400 naming the bad field |
//! | `DELETE /v1/origins/{id}` | 204; 404 if unknown |
//! | `PUT /v1/origins/{id}/maintenance` | `{ "reason", "duration_ms" }`: 200 with `{ "reason", "since_ms", "until_ms", "set_by" }`; 400 naming the field; 404 for an unknown origin (see [`crate::maintenance`]) |
//! | `GET`, `DELETE /v1/origins/{id}/maintenance` | the maintenance in force / 204 ending it; 404 if none |
//! | `GET /v1/origins/{id}/history` | `{ "id", "transitions": [{ "at_ms", "from", "to", "reason", "by" }] }`, the last 32 this agent saw |
//! | `GET /v1/events` | Server-Sent Events (see [`crate::api_events`]) |
//! | `GET /v1/members` | `[{ "id", "gossip_addr", "sync_addr", "state" }]` |
//! | `GET /v1/node` | `{ "id", "owned_origins", "checks_total", … }` |
//! | `GET /metrics` | Prometheus text |
//! | `GET /` | the status page |
//!
//! Errors are `{ "error": "...", "field": "..." }` (field when one is at
//! fault), all of them: 405, 413 (field `body`) and axum's own rejections
//! too. A registry change is persisted before the answer.
//!
//! With a token file (see [`crate::tokens`]) every route asks for a token:
//! `GET` needs `read`, `PUT` and `DELETE` need `write`. No token, or an
//! unknown one: 401 (with `WWW-Authenticate` challenges for Bearer and
//! Basic); a `read` token on a write: 403. Both as JSON errors.
//!
//! `GET /v1/origins` is served from a cached body (and its gzip form, for
//! clients that accept it), rebuilt when older than [`LIST_MAX_AGE`](crate::list_cache::LIST_MAX_AGE) or
//! after a registry change made through this agent, but at most every
//! [`LIST_MIN_REBUILD`](crate::list_cache::LIST_MIN_REBUILD) (a request waits out the rest): this agent's own
//! writes are always in the next answer; changes replicated from other
//! agents and new check results appear within `LIST_MAX_AGE`. At
//! 10k origins the body is ~3.5 MB and takes ~30 ms of CPU to build: one
//! build serves every request in its window.

use std::sync::Arc;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, Request, State},
    http::{Method, StatusCode, header},
    middleware::{self, Next},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use serde::Serialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    maintenance::{Maintenance, MaintenanceRequest, Shown},
    node_view::NodeView,
    record::HealthRecord,
    shared::Shared,
    snapshot::Snapshot,
    spec::{self, OriginSpec},
};

/// The metrics registry, built once per process (it holds no agent's data:
/// each scrape hands it the agent's snapshot).
static METRICS: std::sync::LazyLock<crate::metrics::Metrics> =
    std::sync::LazyLock::new(crate::metrics::Metrics::default);

/// Largest request body accepted (a spec is far smaller).
const MAX_BODY: usize = 64 * 1024;

/// An origin as the API shows it.
#[derive(Debug, Serialize)]
pub struct OriginView {
    /// Its id.
    pub id: String,
    /// Its spec.
    pub spec: OriginSpec,
    /// What it shows: `up`, `down`, `unknown` or `maintenance`.
    pub status: Shown,
    /// Its visible health record, if any agent has checked it (kept while
    /// under maintenance: the last verdict before it).
    pub health: Option<HealthRecord>,
    /// Its maintenance, while in force.
    pub maintenance: Option<Maintenance>,
}

/// Serves the API on `listener` until `shutdown`, under the agent's
/// connection limits (see [`crate::api_server`]).
pub(crate) async fn serve(shared: Arc<Shared>, listener: TcpListener, shutdown: CancellationToken) {
    let server =
        crate::api_server::ApiServer::new(router(shared.clone()), shared.api_limits, shutdown);
    let _ = shared.api_connections.set(server.stats());
    let tls = shared
        .api_tls
        .as_ref()
        .map(crate::api_tls::ApiTls::acceptor);
    server.run(listener, tls).await;
}

/// The API's routes.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/v1/origins", get(list))
        .route("/v1/events", get(crate::api_events::events))
        .route("/v1/origins/{id}", get(one).put(put).delete(delete))
        .route("/v1/origins/{id}/history", get(history))
        .route(
            "/v1/origins/{id}/maintenance",
            get(get_maintenance)
                .put(put_maintenance)
                .delete(end_maintenance),
        )
        .route("/v1/members", get(members))
        .route("/v1/node", get(node))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        // after the routes: it applies to those added before it
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        // inside `authorize`: a request without a token gets its 401 first
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn_with_state(shared.clone(), authorize))
        .with_state(shared)
}

/// Makes every error the API's JSON error (see the module docs), whatever
/// produced it, keeping its status and its other headers. Layered on every
/// route and fallback (inside `authorize`, outside the body limit):
///
/// - an origin id in the path that does not percent-decode to UTF-8: 400
///   with field `id`, before the handler (axum's `Path` would answer in
///   text);
/// - 413, a body over [`MAX_BODY`]: field `body`, saying the limit;
/// - any other response of status 400 or more whose content type is not
///   `application/json` (axum's rejections): the same status, its text as
///   the message, no field.
async fn json_errors(request: Request, next: Next) -> Response {
    if let Some(id) = request.uri().path().strip_prefix("/v1/origins/")
        && !percent_decodes_to_utf8(id)
    {
        return error(
            StatusCode::BAD_REQUEST,
            "id: does not decode to UTF-8 text (percent-encoded bytes must form UTF-8)",
            Some("id"),
        );
    }
    let response = next.run(request).await;
    let status = response.status();
    if status.as_u16() < 400 {
        return response;
    }
    let (parts, body) = response.into_parts();
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!(
            "body: larger than {MAX_BODY} bytes ({} KiB), the most a request may carry",
            MAX_BODY / 1024
        )
    } else if is_json(&parts.headers) {
        return Response::from_parts(parts, body);
    } else {
        let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
        let text = String::from_utf8_lossy(&text).trim().to_owned();
        if text.is_empty() {
            status.canonical_reason().unwrap_or("error").to_owned()
        } else {
            text
        }
    };
    let field = (status == StatusCode::PAYLOAD_TOO_LARGE).then_some("body");
    let mut out = error(status, message, field);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    out
}

/// Whether a response says it is JSON.
fn is_json(headers: &header::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        })
}

/// Whether `segment`, percent-decoded as axum decodes path parameters (a
/// `%` not followed by two hex digits is kept), is UTF-8.
fn percent_decodes_to_utf8(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|b| char::from(*b).to_digit(16));
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (hex(i + 1), hex(i + 2))
        {
            out.push(u8::try_from(h * 16 + l).expect("two hex digits make a byte"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    std::str::from_utf8(&out).is_ok()
}

/// A known route asked with a method it does not take; axum adds the
/// `Allow` header (the route's methods) to this answer.
async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{method} is not allowed on {}; the Allow header lists the methods it takes",
            uri.path()
        ),
        None,
    )
}

/// Lets a request through if its token's scope allows its method (see the
/// module docs); else a 401 or 403 JSON error.
async fn authorize(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    use crate::tokens::{Scope, presented};
    let needed = match *request.method() {
        Method::GET | Method::HEAD | Method::OPTIONS => Scope::Read,
        _ => Scope::Write,
    };
    let token = presented(
        request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    );
    match shared.scope_of(token.as_deref()) {
        Some(scope) if scope.allows(needed) => next.run(request).await,
        Some(scope) => error(
            StatusCode::FORBIDDEN,
            format!(
                "this token's scope is {}; this request needs {}",
                scope.as_str(),
                needed.as_str()
            ),
            None,
        ),
        None => {
            let message = if token.is_some() {
                "unknown token"
            } else {
                "a token is required: Authorization: Bearer <token>"
            };
            let mut response = error(StatusCode::UNAUTHORIZED, message, None);
            let headers = response.headers_mut();
            headers.append(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"healthcheck\""),
            );
            headers.append(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"healthcheck\""),
            );
            response
        }
    }
}

fn error(status: StatusCode, message: impl Into<String>, field: Option<&str>) -> Response {
    let mut body = json!({ "error": message.into() });
    if let Some(f) = field {
        body["field"] = json!(f);
    }
    (status, Json(body)).into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such route", None)
}

impl OriginView {
    fn new(
        id: String,
        spec: OriginSpec,
        health: Option<HealthRecord>,
        maintenance: Option<Maintenance>,
    ) -> Self {
        OriginView {
            status: Shown::of(health.as_ref(), maintenance.as_ref()),
            id,
            spec,
            health,
            maintenance,
        }
    }
}

fn view(shared: &Shared, id: String, spec: OriginSpec) -> OriginView {
    let (health, maintenance) = (shared.health(&id), shared.maintenance(&id));
    OriginView::new(id, spec, health, maintenance)
}

fn build_list(shared: &Shared) -> Vec<OriginView> {
    let mut health = shared.all_health();
    let mut maintenance = shared.all_maintenance();
    shared
        .origins()
        .into_iter()
        .map(|(id, spec)| {
            let (h, m) = (health.remove(&id), maintenance.remove(&id));
            OriginView::new(id, spec, h, m)
        })
        .collect()
}

/// `PUT /v1/origins/{id}/maintenance`: `{"reason": ..., "duration_ms": N}`
/// puts the origin under maintenance from now (replacing one in force);
/// answers once durable with the maintenance; 404 for an unknown origin.
async fn put_maintenance(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let request = match MaintenanceRequest::parse(&body) {
        Ok(request) => request,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string(), Some(&e.field)),
    };
    match shared.put_maintenance(&id, &request).await {
        Ok(Some(maintenance)) => Json(maintenance).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no origin {id:?}"), None),
        Err(e) => persist_error(&e),
    }
}

/// `DELETE /v1/origins/{id}/maintenance`: ends it now (204); 404 if the
/// origin is not under maintenance.
async fn end_maintenance(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match shared.end_maintenance(&id).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => error(
            StatusCode::NOT_FOUND,
            format!("origin {id:?} is not under maintenance"),
            None,
        ),
        Err(e) => persist_error(&e),
    }
}

/// `GET /v1/origins/{id}/maintenance`: the maintenance in force; 404 if
/// none.
async fn get_maintenance(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match shared.maintenance(&id) {
        Some(maintenance) => Json(maintenance).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!("origin {id:?} is not under maintenance"),
            None,
        ),
    }
}

async fn list(
    State(shared): State<Arc<Shared>>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> Response {
    // A blocking read (`?index=N&wait=…`) answers once the index passes N.
    let index = match crate::api_events::blocking(uri.query()) {
        Ok(Some((after, wait))) => shared.wait_for_index(after, wait).await,
        Ok(None) => shared.index(),
        Err((field, message)) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("{field}: {message}"),
                Some(field),
            );
        }
    };
    let mut response = list_now(&shared, &headers).await;
    if let Ok(value) = header::HeaderValue::from_str(&index.to_string()) {
        response
            .headers_mut()
            .insert(crate::api_events::INDEX_HEADER, value);
    }
    response
}

async fn list_now(shared: &Shared, headers: &axum::http::HeaderMap) -> Response {
    let gzip_ok = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let built = shared
        .list
        .get(gzip_ok, || serde_json::to_vec(&build_list(shared)));
    let listing = match built.await {
        Ok(listing) => listing,
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("encoding the origins: {e}"),
                None,
            );
        }
    };
    if let Some(gz) = listing.gzip {
        return (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CONTENT_ENCODING, "gzip"),
                (header::VARY, "accept-encoding"),
            ],
            gz,
        )
            .into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::VARY, "accept-encoding"),
        ],
        listing.json,
    )
        .into_response()
}

async fn one(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match shared.origin(&id) {
        Some(spec) => Json(view(&shared, id, spec)).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no origin {id:?}"), None),
    }
}

async fn put(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Response {
    if let Err(e) = spec::validate_id(&id) {
        return error(StatusCode::BAD_REQUEST, e.to_string(), Some(&e.field));
    }
    let spec = match spec::parse_json(&body) {
        Ok(spec) => spec,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string(), Some(&e.field)),
    };
    // Where this agent may not check, no agent should be asked to: a
    // literal is judged here, a name resolved (briefly) and judged.
    if let Err(e) = shared.targets.check_spec(&spec).await {
        return error(StatusCode::BAD_REQUEST, e.to_string(), Some(&e.field));
    }
    // The TLS files it names must be in this agent's tls_dir and parse
    // (each agent reads its own copy when it checks).
    if let Err(e) = shared.tls_dir.check(&spec) {
        return error(StatusCode::BAD_REQUEST, e.to_string(), Some(&e.field));
    }
    match shared.put_origin(&id, spec.clone()).await {
        Ok(created) => {
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (status, Json(view(&shared, id, spec))).into_response()
        }
        Err(e) => persist_error(&e),
    }
}

async fn delete(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match shared.delete_origin(&id).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, format!("no origin {id:?}"), None),
        Err(e) => persist_error(&e),
    }
}

/// A change that could not be acknowledged: 503 while the agent verifies
/// its identity or stops (retry), 500 if its commit failed.
fn persist_error(e: &crate::shared::PersistError) -> Response {
    use crate::shared::PersistError;
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    let status = match e {
        PersistError::NotReady | PersistError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
        PersistError::Store(_) | PersistError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, text, None)
}

/// `GET /v1/origins/{id}/history`: the origin's last transitions as this
/// agent saw them, oldest first; 404 for an unknown origin.
async fn history(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    if shared.origin(&id).is_none() {
        return error(
            StatusCode::NOT_FOUND,
            format!("no origin {id:?}"),
            Some("id"),
        );
    }
    let transitions = shared
        .events
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .history(&id);
    Json(json!({ "id": id, "transitions": transitions })).into_response()
}

async fn members(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.members()).into_response()
}

async fn node(State(shared): State<Arc<Shared>>) -> Json<NodeView> {
    Json(NodeView::of(&shared))
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    match METRICS.render(Snapshot::of(&shared)) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), None),
    }
}

async fn page(State(shared): State<Arc<Shared>>, uri: axum::http::Uri) -> Html<String> {
    let query = crate::page::PageQuery::parse(uri.query());
    Html(crate::page::render(&Snapshot::of(&shared), &query))
}
