//! The HTTP API (axum): the origin registry and health, members, the node,
//! Prometheus metrics and a status page.
//!
//! | route | answer |
//! |---|---|
//! | `GET /v1/origins` | `[{ "id", "spec", "health" }]`, `health` null until checked |
//! | `GET /v1/origins/{id}` | one such object; 404 with a JSON error |
//! | `PUT /v1/origins/{id}` | a spec body: 201 created / 200 replaced; 400 naming the bad field |
//! | `DELETE /v1/origins/{id}` | 204; 404 if unknown |
//! | `GET /v1/members` | `[{ "id", "gossip_addr", "sync_addr", "state" }]` |
//! | `GET /v1/node` | `{ "id", "owned_origins", "checks_total", … }` |
//! | `GET /metrics` | Prometheus text |
//! | `GET /` | the status page |
//!
//! Errors are `{ "error": "...", "field": "..." }` (field when one is at
//! fault). A registry change is persisted before the answer.

use std::sync::{Arc, atomic::Ordering};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, State},
    http::{StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use serde::Serialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    agent::Shared,
    record::HealthRecord,
    spec::{self, OriginSpec},
};

/// Largest request body accepted (a spec is far smaller).
const MAX_BODY: usize = 64 * 1024;

/// An origin as the API shows it.
#[derive(Debug, Serialize)]
pub struct OriginView {
    /// Its id.
    pub id: String,
    /// Its spec.
    pub spec: OriginSpec,
    /// Its visible health record, if any agent has checked it.
    pub health: Option<HealthRecord>,
}

/// Serves the API on `listener` until `shutdown`.
pub(crate) async fn serve(shared: Arc<Shared>, listener: TcpListener, shutdown: CancellationToken) {
    let app = router(shared);
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
    {
        tracing::error!(error = %e, "api server failed");
    }
}

/// The API's routes.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/v1/origins", get(list))
        .route("/v1/origins/{id}", get(one).put(put).delete(delete))
        .route("/v1/members", get(members))
        .route("/v1/node", get(node))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(shared)
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

fn view(shared: &Shared, id: String, spec: OriginSpec) -> OriginView {
    let health = shared.health(&id);
    OriginView { id, spec, health }
}

async fn list(State(shared): State<Arc<Shared>>) -> Json<Vec<OriginView>> {
    let health = shared.all_health();
    Json(
        shared
            .origins()
            .into_iter()
            .map(|(id, spec)| OriginView {
                health: health.get(&id).cloned(),
                id,
                spec,
            })
            .collect(),
    )
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
    match shared.put_origin(&id, spec.clone()).await {
        Ok(created) => {
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (status, Json(view(&shared, id, spec))).into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), None),
    }
}

async fn delete(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match shared.delete_origin(&id).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, format!("no origin {id:?}"), None),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), None),
    }
}

async fn members(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.members()).into_response()
}

/// `GET /v1/node`.
#[derive(Debug, Serialize)]
pub struct NodeView {
    /// The agent's name.
    pub id: String,
    /// Origins this agent checks now.
    pub owned_origins: u64,
    /// Checks run since start.
    pub checks_total: u64,
    /// Of which failed.
    pub checks_failed: u64,
    /// Origins taken over from a silent higher-ranked agent.
    pub takeovers: u64,
    /// Health records written.
    pub records_written: u64,
    /// Origins registered.
    pub origins: usize,
    /// Live members, this agent included.
    pub members_alive: usize,
    /// Start generation (persisted, one per start).
    pub generation: u64,
    /// This start's actor id.
    pub actor: u64,
    /// Seconds since start.
    pub uptime_s: u64,
    /// Sync counters.
    pub sync: sync::Metrics,
}

/// The node view (also used by the demo).
pub fn node_view(shared: &Shared) -> NodeView {
    let s = &shared.stats;
    let ok = s.checks_ok.load(Ordering::Relaxed);
    let failed = s.checks_failed.load(Ordering::Relaxed);
    NodeView {
        id: shared.me().to_owned(),
        owned_origins: s.owned.load(Ordering::Relaxed),
        checks_total: ok + failed,
        checks_failed: failed,
        takeovers: s.takeovers.load(Ordering::Relaxed),
        records_written: s.records_written.load(Ordering::Relaxed),
        origins: shared.origins().len(),
        members_alive: shared
            .members()
            .iter()
            .filter(|m| m.state != membership::MemberState::Down)
            .count(),
        generation: shared.generation,
        actor: shared.actor.0,
        uptime_s: shared.started.elapsed().as_secs(),
        sync: shared.node.metrics(),
    }
}

async fn node(State(shared): State<Arc<Shared>>) -> Json<NodeView> {
    Json(node_view(&shared))
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    match crate::metrics::render(&shared) {
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

async fn page(State(shared): State<Arc<Shared>>) -> Html<String> {
    Html(crate::page::render(&shared))
}
