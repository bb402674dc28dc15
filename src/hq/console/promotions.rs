//! The console's promotion forms (admin only): `POST /console/promotions/new` creates or replaces
//! one and `POST /console/promotions/{id}/end` ends one now. Both go through the HQ API's
//! rules (`hq::promotions::build` and `Promotion::check`) and issue the same `PromotionPut`;
//! a refusal shows the API's message naming the field, and nothing is stored.

use super::views::promotions::w;
use super::{html, lang_of, open_count, page, session, View};
use crate::domain::ids::PromotionId;
use crate::hq::promotions::{author, build, PromotionBody};
use crate::hq::{HqApiError, HqState};
use crate::store::now_ms;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use std::collections::HashMap;

/// The new-promotion form as posted: every field a string, parsed like the API's body.
#[derive(Debug, Deserialize)]
pub struct PromotionForm {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    skus: String,
    #[serde(default)]
    categories: String,
    #[serde(default)]
    percent: String,
    #[serde(default)]
    n: String,
    #[serde(default)]
    m: String,
    #[serde(default)]
    starts: String,
    #[serde(default)]
    ends: String,
    #[serde(default)]
    priority: String,
}

/// An optional number field: empty is absent, anything else must parse.
fn number<T: std::str::FromStr>(raw: &str, field: &str) -> Result<Option<T>, HqApiError> {
    match raw.trim() {
        "" => Ok(None),
        s => s
            .replace(',', ".")
            .parse()
            .map(Some)
            .map_err(|_| HqApiError::invalid(field, format!("{field} must be a number"))),
    }
}

fn body(f: &PromotionForm) -> Result<PromotionBody, HqApiError> {
    let list = |raw: &str| -> Vec<String> {
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    Ok(PromotionBody {
        kind: f.kind.trim().to_string(),
        skus: list(&f.skus),
        categories: list(&f.categories),
        percent: number(&f.percent, "percent")?,
        n: number(&f.n, "n")?,
        m: number(&f.m, "m")?,
        starts: f.starts.trim().to_string(),
        ends: f.ends.trim().to_string(),
        priority: number(&f.priority, "priority")?,
        name: Some(f.name.trim())
            .filter(|n| !n.is_empty())
            .map(String::from),
    })
}

/// The page for a refused change: the reason and a way back to the list.
fn refused(state: &HqState, headers: &HeaderMap, status: StatusCode, message: &str) -> Response {
    let q = HashMap::new();
    let lang = lang_of(&q, headers);
    let Some(who) = session(state, headers) else {
        return Redirect::to("/console/login").into_response();
    };
    let body = page::error_box(lang, message, "/console/promotions");
    let page = page::layout(lang, &who, View::Promotions, open_count(state), &body);
    html(status, lang, &q, page)
}

/// The signed-in admin's `<user>@hq`, or the response refusing the change.
fn admin(state: &HqState, headers: &HeaderMap) -> Result<String, Box<Response>> {
    let Some(who) = session(state, headers) else {
        return Err(Box::new(Redirect::to("/console/login").into_response()));
    };
    if !who.is_admin() {
        tracing::warn!(
            role = who.role.as_str(),
            "console promotion refused: read-only"
        );
        let lang = lang_of(&HashMap::new(), headers);
        return Err(Box::new(refused(
            state,
            headers,
            StatusCode::FORBIDDEN,
            w(
                lang,
                "Solo un administrador cambia promociones",
                "Only an admin changes promotions",
            ),
        )));
    }
    Ok(format!("{}@hq", who.user))
}

/// `POST /console/promotions/new`: create (or replace) a promotion from the form.
pub async fn create(
    State(state): State<HqState>,
    headers: HeaderMap,
    Form(form): Form<PromotionForm>,
) -> Response {
    let by = match admin(&state, &headers) {
        Ok(by) => by,
        Err(r) => return *r,
    };
    let built = PromotionId::parse(form.id.trim())
        .map_err(|e| HqApiError::invalid("id", e.to_string()))
        .and_then(|id| Ok((id, body(&form)?)))
        .and_then(|(id, b)| build(&state, id, &b));
    let promotion = match built {
        Ok(p) => p,
        Err(e) => return refused(&state, &headers, e.status, &e.message),
    };
    let id = promotion.id.clone();
    match author(&state, promotion).await {
        Ok(_) => {
            tracing::info!(promotion = %id, %by, "console promotion put");
            Redirect::to("/console/promotions").into_response()
        }
        Err(e) => refused(&state, &headers, e.status, &e.message),
    }
}

/// `POST /console/promotions/{id}/end`: the promotion stops now (one not started yet never
/// runs: its range becomes the millisecond before now).
pub async fn end(
    State(state): State<HqState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let by = match admin(&state, &headers) {
        Ok(by) => by,
        Err(r) => return *r,
    };
    let found = PromotionId::parse(&id)
        .ok()
        .and_then(|pid| state.node.read(|r| r.state().promotions.get(&pid).cloned()));
    let Some(mut promotion) = found else {
        let message = format!("no promotion {id:?}");
        return refused(&state, &headers, StatusCode::NOT_FOUND, &message);
    };
    let now = now_ms();
    if promotion.ends_ms <= now {
        return refused(
            &state,
            &headers,
            StatusCode::CONFLICT,
            &format!("promotion {id} has already ended"),
        );
    }
    promotion.ends_ms = now;
    promotion.starts_ms = promotion.starts_ms.min(now.saturating_sub(1));
    if let Err(e) = promotion.check() {
        return refused(
            &state,
            &headers,
            StatusCode::UNPROCESSABLE_ENTITY,
            &e.to_string(),
        );
    }
    match author(&state, promotion).await {
        Ok(_) => {
            tracing::info!(promotion = %id, %by, "console promotion ended");
            Redirect::to("/console/promotions").into_response()
        }
        Err(e) => refused(&state, &headers, e.status, &e.message),
    }
}
