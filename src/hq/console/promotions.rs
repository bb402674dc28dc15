//! The console's promotion forms (admin only): `POST /console/promotions/new` creates or replaces
//! one and `POST /console/promotions/{id}/end` ends one now. Both go through the HQ API's
//! rules (`hq::promotions::build_checked` and `Promotion::check`) and issue the same
//! `PromotionSet`; a refusal says what is wrong in the page's language, times as Madrid
//! dates (never milliseconds), and nothing is stored.

use super::page::Lang;
use super::views::promotions::{local_time, w};
use super::{html, lang_of, open_count, page, session, View};
use crate::domain::ids::PromotionId;
use crate::domain::till::promotion::{NAME_LEN_MAX, SKUS_MAX};
use crate::domain::till::PromotionError;
use crate::hq::promotions::{author, build_checked, PromotionBody, Refusal};
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

fn body(f: &PromotionForm) -> Result<PromotionBody, Refusal> {
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

/// A broken promotion rule in `lang`'s words. A range's end is shown as its last minute: a
/// promotion "until 2026-12-01" runs through that day, so it ends at 23:59, not on the 2nd.
fn rule_text(lang: Lang, e: &PromotionError) -> String {
    match e {
        PromotionError::Range { starts_ms, ends_ms } => {
            let (from, until) = (
                local_time(lang, *starts_ms),
                local_time(lang, ends_ms.saturating_sub(1)),
            );
            match lang {
                Lang::Es => format!(
                    "Las fechas no dejan tiempo a la promoción: empieza el {from} y termina el \
                     {until}. «Hasta» debe ser posterior a «Desde»."
                ),
                Lang::En => format!(
                    "The dates leave the promotion no time: it starts on {from} and ends on \
                     {until}. “Until” must come after “From”."
                ),
            }
        }
        PromotionError::Skus(_) => match lang {
            Lang::Es => format!("Indique de 1 a {SKUS_MAX} artículos o categorías."),
            Lang::En => format!("Name 1 to {SKUS_MAX} skus or categories."),
        },
        PromotionError::Percent(_) => w(
            lang,
            "El porcentaje debe ser mayor que 0 y como mucho 100.",
            "The percent must be over 0 and at most 100.",
        )
        .to_string(),
        PromotionError::NForM { .. } => w(
            lang,
            "N por M necesita N de 2 o más y M entre 1 y N - 1.",
            "N for M needs N of 2 or more and M from 1 to N - 1.",
        )
        .to_string(),
        PromotionError::Name => match lang {
            Lang::Es => format!("El nombre admite como mucho {NAME_LEN_MAX} caracteres."),
            Lang::En => format!("The name takes at most {NAME_LEN_MAX} characters."),
        },
    }
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
        .map_err(|e| Refusal::Api(HqApiError::invalid("id", e.to_string())))
        .and_then(|id| Ok((id, body(&form)?)))
        .and_then(|(id, b)| build_checked(&state, id, &b));
    let promotion = match built {
        Ok(p) => p,
        Err(Refusal::Api(e)) => return refused(&state, &headers, e.status, &e.message),
        Err(Refusal::Rule(e)) => {
            let text = rule_text(lang_of(&HashMap::new(), &headers), &e);
            return refused(&state, &headers, StatusCode::UNPROCESSABLE_ENTITY, &text);
        }
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
    let lang = lang_of(&HashMap::new(), &headers);
    let Some(mut promotion) = found else {
        let message = match lang {
            Lang::Es => format!("No existe la promoción {id:?}."),
            Lang::En => format!("There is no promotion {id:?}."),
        };
        return refused(&state, &headers, StatusCode::NOT_FOUND, &message);
    };
    let now = now_ms();
    if promotion.ends_ms <= now {
        let ended = local_time(lang, promotion.ends_ms.saturating_sub(1));
        let message = match lang {
            Lang::Es => format!("La promoción {id} ya terminó el {ended}."),
            Lang::En => format!("Promotion {id} already ended on {ended}."),
        };
        return refused(&state, &headers, StatusCode::CONFLICT, &message);
    }
    promotion.ends_ms = now;
    promotion.starts_ms = promotion.starts_ms.min(now.saturating_sub(1));
    if let Err(e) = promotion.check() {
        let text = rule_text(lang, &e);
        return refused(&state, &headers, StatusCode::UNPROCESSABLE_ENTITY, &text);
    }
    match author(&state, promotion).await {
        Ok(_) => {
            tracing::info!(promotion = %id, %by, "console promotion ended");
            Redirect::to("/console/promotions").into_response()
        }
        Err(e) => refused(&state, &headers, e.status, &e.message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inverted_range_is_told_with_madrid_dates_in_either_language() {
        // Starts 2026-12-31 and "until 2026-12-01" (its end is the next midnight), Madrid.
        let e = PromotionError::Range {
            starts_ms: 1_798_671_600_000,
            ends_ms: 1_796_166_000_000,
        };
        let es = rule_text(Lang::Es, &e);
        assert!(
            es.contains("empieza el 31/12/2026 00:00 y termina el 01/12/2026 23:59"),
            "{es}"
        );
        let en = rule_text(Lang::En, &e);
        assert!(
            en.contains("starts on 31 Dec 2026 00:00 and ends on 01 Dec 2026 23:59"),
            "{en}"
        );
        assert!(!es.contains("1798671600000") && !en.contains("1796166000000"));
    }
}
