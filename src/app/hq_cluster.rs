//! One of several HQ processes on a shared PostgreSQL log (`[storage] url`): the node fed by
//! tailing the log (`store::pg::tail`), the API answering only after a catch-up, and, on a
//! process with `[storage] sync = false`, a sync view that says this process reaches no
//! store.

use crate::hq::{HqApiError as ApiError, LinkStatus, SyncView};
use crate::store::pg::tail::Tail;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;

/// Every API call first brings the replica level with the shared log, so any process answers
/// what any other committed before the call; PostgreSQL unreachable is 503
/// `storage_unavailable` (nothing is answered from a view that may be stale).
pub fn caught_up(router: Router, tail: Tail) -> Router {
    router.layer(axum::middleware::from_fn(
        move |req: Request, next: Next| {
            let tail = tail.clone();
            async move {
                if !req.uri().path().starts_with("/api/") {
                    return next.run(req).await;
                }
                match tail.catch_up().await {
                    Ok(_) => next.run(req).await,
                    Err(e) => unavailable(&e),
                }
            }
        },
    ))
}

fn unavailable(e: &crate::store::pg::PgError) -> Response {
    tracing::warn!(error = %e, "cannot catch up with the shared op log");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "storage_unavailable",
        "storage is unavailable; nothing was stored, try again",
    )
    .into_response()
}

/// The sync view of a process that does not sync (`[storage] sync = false`): no link.
pub struct NoSync;

impl SyncView for NoSync {
    fn link(&self, _store: &crate::domain::StoreId) -> LinkStatus {
        LinkStatus::default()
    }
    fn render_metrics(&self) -> String {
        String::new()
    }
}
