//! HQ's promotions (DESIGN.md §18): `PUT /api/v1/promotions/{id}` authors one (a
//! `PromotionPut`, replicated to every store ahead of time, last writer wins) and
//! `GET /api/v1/promotions` lists them. Every bad field is a 422 naming it.
//!
//! `starts` and `ends` are RFC 3339 times, or dates (`2026-12-01`) read in Europe/Madrid:
//! a date `starts` at the beginning of that day and `ends` at the end of it.

use super::body::JsonBody;
use super::error::ApiError;
use super::HqState;
use crate::domain::ids::{Category, PromotionId};
use crate::domain::till::promotion::{BP_FULL, SKUS_MAX};
use crate::domain::till::{Promotion, PromotionError, PromotionKind};
use crate::domain::{Payload, Sku};
use crate::terminal::till::promotion_json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

type ApiResult = Result<Response, ApiError>;

/// The zone date-only `starts` and `ends` are read in.
const DATE_ZONE: &str = "Europe/Madrid";

/// `PUT /api/v1/promotions/{id}` as sent; each field is checked below with its own error.
#[derive(Debug, Deserialize)]
pub struct PromotionBody {
    pub kind: String,
    #[serde(default)]
    pub skus: Vec<String>,
    /// Every sku of these catalog categories is covered too.
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub percent: Option<f64>,
    #[serde(default)]
    pub n: Option<u32>,
    #[serde(default)]
    pub m: Option<u32>,
    pub starts: String,
    pub ends: String,
    #[serde(default)]
    pub priority: Option<u32>,
    #[serde(default)]
    pub name: Option<String>,
}

/// `PUT /api/v1/promotions/{id}`: 200 with the promotion; 422 naming the field.
pub async fn put(
    State(state): State<HqState>,
    Path(id): Path<String>,
    body: Result<JsonBody<PromotionBody>, ApiError>,
) -> ApiResult {
    let id = PromotionId::parse(&id).map_err(|e| ApiError::invalid("id", e.to_string()))?;
    let promotion = build(&state, id, &body?.value)?;
    let json = author(&state, promotion).await?;
    Ok((StatusCode::OK, Json(json)).into_response())
}

/// Why a promotion body was refused: a field the API could not read, or a rule of
/// `Promotion::check`, kept as such so the console says it in its own words and dates.
#[derive(Debug)]
pub enum Refusal {
    Api(ApiError),
    Rule(PromotionError),
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Refusal {
        Refusal::Api(e)
    }
}

impl From<Refusal> for ApiError {
    /// The API's 422 naming the field; an inverted range gives its times in RFC 3339.
    fn from(r: Refusal) -> ApiError {
        match r {
            Refusal::Api(e) => e,
            Refusal::Rule(PromotionError::Range { starts_ms, ends_ms }) => ApiError::invalid(
                "ends",
                format!(
                    "ends {} must be after starts {}",
                    rfc3339(ends_ms),
                    rfc3339(starts_ms)
                ),
            ),
            Refusal::Rule(e) => ApiError::invalid(e.field(), e.to_string()),
        }
    }
}

fn rfc3339(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map_or_else(|| ms.to_string(), |t| t.to_string())
}

/// The promotion a body describes, every field checked (the API's and the console's rules).
pub fn build(state: &HqState, id: PromotionId, b: &PromotionBody) -> Result<Promotion, ApiError> {
    build_checked(state, id, b).map_err(ApiError::from)
}

/// `build`, telling a broken rule apart from an unreadable field.
pub fn build_checked(
    state: &HqState,
    id: PromotionId,
    b: &PromotionBody,
) -> Result<Promotion, Refusal> {
    let kind = kind(b)?;
    let categories = categories(state, &b.categories)?;
    let skus = skus(state, &b.skus, categories.is_empty())?;
    let starts_ms = instant(&b.starts, "starts", false)?;
    let ends_ms = instant(&b.ends, "ends", true)?;
    let name = b.name.as_deref().unwrap_or(id.as_str()).trim().to_string();
    let promotion = Promotion {
        id,
        name,
        kind,
        skus,
        starts_ms,
        ends_ms,
        priority: b.priority.unwrap_or(0),
        categories,
    };
    promotion.check().map_err(Refusal::Rule)?;
    Ok(promotion)
}

/// Issue a checked promotion (a `PromotionPut`, last writer wins); its JSON once committed.
pub async fn author(state: &HqState, promotion: Promotion) -> Result<Value, ApiError> {
    let json = promotion_json(&promotion);
    state
        .node
        .submit(vec![Payload::PromotionSet { promotion }])
        .await?;
    Ok(json)
}

/// `GET /api/v1/promotions`: every promotion, in id order.
pub async fn list(State(state): State<HqState>) -> ApiResult {
    let all: Vec<Value> = state
        .node
        .read(|r| r.state().promotions.iter().map(promotion_json).collect());
    Ok(Json(Value::Array(all)).into_response())
}

fn percent_bp(b: &PromotionBody) -> Result<u32, ApiError> {
    match b.percent {
        Some(p) if p > 0.0 && p <= 100.0 => Ok(((p * 100.0).round() as u32).clamp(1, BP_FULL)),
        _ => Err(ApiError::invalid(
            "percent",
            "percent must be a number over 0 and at most 100",
        )),
    }
}

fn count(v: Option<u32>, field: &str) -> Result<u32, ApiError> {
    v.filter(|n| (1..=1_000).contains(n))
        .ok_or_else(|| ApiError::invalid(field, format!("{field} must be a whole number 1-1000")))
}

fn kind(b: &PromotionBody) -> Result<PromotionKind, ApiError> {
    match b.kind.as_str() {
        "percent" => Ok(PromotionKind::Percent { bp: percent_bp(b)? }),
        "second_unit" => Ok(PromotionKind::SecondUnit { bp: percent_bp(b)? }),
        "n_for_m" => {
            let (n, m) = (count(b.n, "n")?, count(b.m, "m")?);
            if n < 2 {
                return Err(ApiError::invalid("n", "n must be at least 2"));
            }
            if m >= n {
                return Err(ApiError::invalid("m", "m must be less than n"));
            }
            Ok(PromotionKind::NForM { n, m })
        }
        other => Err(ApiError::invalid(
            "kind",
            format!("kind must be percent, n_for_m or second_unit, got {other:?}"),
        )),
    }
}

/// The skus named; none is fine when categories are (`required` otherwise).
fn skus(state: &HqState, raw: &[String], required: bool) -> Result<Vec<Sku>, ApiError> {
    if (required && raw.is_empty()) || raw.len() > SKUS_MAX {
        return Err(ApiError::invalid(
            "skus",
            format!("skus must name 1-{SKUS_MAX} skus, or categories some categories"),
        ));
    }
    let mut out: Vec<Sku> = Vec::with_capacity(raw.len());
    for s in raw {
        let sku = Sku::parse(s).map_err(|e| ApiError::invalid("skus", e.to_string()))?;
        if !state.node.read(|r| r.state().catalog.contains(&sku)) {
            return Err(ApiError::unknown_sku(
                sku.as_str(),
                StatusCode::UNPROCESSABLE_ENTITY,
            ));
        }
        if !out.contains(&sku) {
            out.push(sku);
        }
    }
    Ok(out)
}

/// The categories named, each one some catalog product is in (a typo is refused, not stored
/// as a promotion that reaches nothing).
fn categories(state: &HqState, raw: &[String]) -> Result<Vec<Category>, ApiError> {
    if raw.len() > SKUS_MAX {
        return Err(ApiError::invalid(
            "categories",
            format!("categories must name at most {SKUS_MAX} categories"),
        ));
    }
    let mut out: Vec<Category> = Vec::with_capacity(raw.len());
    for c in raw {
        let category = Category::parse(c.trim())
            .map_err(|e| ApiError::invalid("categories", e.to_string()))?;
        let known = state.node.read(|r| {
            r.state()
                .catalog
                .categories()
                .any(|(_, have)| *have == category)
        });
        if !known {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_category",
                format!("no catalog product is in category {category}"),
            )
            .with("field", "categories"));
        }
        if !out.contains(&category) {
            out.push(category);
        }
    }
    Ok(out)
}

/// `starts` / `ends` in ms: an RFC 3339 time, or a date in `DATE_ZONE` (its start, or for
/// `ends` the start of the next day).
fn instant(raw: &str, field: &str, end_of_day: bool) -> Result<u64, ApiError> {
    let bad = || {
        ApiError::invalid(
            field,
            format!("{field} must be a date (2026-12-01) or an RFC 3339 time"),
        )
    };
    let raw = raw.trim();
    let ms = if let Ok(t) = raw.parse::<jiff::Timestamp>() {
        t.as_millisecond()
    } else {
        let date: jiff::civil::Date = raw.parse().map_err(|_| bad())?;
        let date = if end_of_day {
            date.tomorrow().map_err(|_| bad())?
        } else {
            date
        };
        let tz = jiff::tz::TimeZone::get(DATE_ZONE).map_err(|_| bad())?;
        date.to_zoned_datetime(tz)
            .map_err(|_| bad())?
            .timestamp()
            .as_millisecond()
    };
    u64::try_from(ms).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{fixture, madrid, send, SKU};
    use crate::domain::ids::CashSessionId;
    use crate::domain::Payload;
    use axum::http::{Method, StatusCode};
    use serde_json::{json, Value};

    #[tokio::test]
    async fn a_promotion_is_authored_listed_and_refused_with_the_field_named() {
        let f = fixture().await;
        let body = json!({"kind": "n_for_m", "skus": [SKU], "n": 3, "m": 2,
                          "starts": "2026-12-01", "ends": "2026-12-31", "priority": 2});
        let (status, p) = send(
            &f.state,
            Method::PUT,
            "/api/v1/promotions/P-3X2",
            Some(body),
            &[],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{p}");
        assert_eq!(p["kind"], "n_for_m");
        assert_eq!(
            p["starts"], "2026-11-30T23:00:00Z",
            "a date starts at midnight in Madrid"
        );
        assert_eq!(
            p["ends"], "2026-12-31T23:00:00Z",
            "and ends at the end of its last day"
        );
        let (_, all) = send(&f.state, Method::GET, "/api/v1/promotions", None, &[]).await;
        assert_eq!(all.as_array().map(Vec::len), Some(1));
        let cases = [
            (
                json!({"kind": "percent", "skus": [SKU], "percent": 10, "starts": "2026-12-31", "ends": "2026-12-01"}),
                "ends",
            ),
            (
                json!({"kind": "percent", "skus": [SKU], "percent": 10, "starts": "2026-12-01", "ends": ""}),
                "ends",
            ),
            (
                json!({"kind": "percent", "skus": [SKU], "percent": 10,
                       "starts": "2026-12-01T10:00:00Z", "ends": "2026-12-01T10:00:00Z"}),
                "ends",
            ),
            (
                json!({"kind": "percent", "skus": [SKU], "percent": 150, "starts": "2026-12-01", "ends": "2026-12-02"}),
                "percent",
            ),
            (
                json!({"kind": "percent", "skus": [SKU], "percent": -5, "starts": "2026-12-01", "ends": "2026-12-02"}),
                "percent",
            ),
            (
                json!({"kind": "percent", "skus": [], "percent": 5, "starts": "2026-12-01", "ends": "2026-12-02"}),
                "skus",
            ),
            (
                json!({"kind": "n_for_m", "skus": [SKU], "n": 2, "m": 2, "starts": "2026-12-01", "ends": "2026-12-02"}),
                "m",
            ),
            (
                json!({"kind": "bogof", "skus": [SKU], "starts": "2026-12-01", "ends": "2026-12-02"}),
                "kind",
            ),
            (
                json!({"kind": "percent", "skus": [SKU], "percent": 5, "starts": "soon", "ends": "2026-12-02"}),
                "starts",
            ),
        ];
        for (body, field) in cases {
            let (status, e) = send(
                &f.state,
                Method::PUT,
                "/api/v1/promotions/P-BAD",
                Some(body),
                &[],
            )
            .await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
            assert_eq!(e["field"], field, "{e}");
        }
        let (_, all) = send(&f.state, Method::GET, "/api/v1/promotions", None, &[]).await;
        assert_eq!(
            all.as_array().map(Vec::len),
            Some(1),
            "nothing stored from bad input"
        );
    }

    #[tokio::test]
    async fn a_category_set_through_the_catalog_is_what_a_category_promotion_targets() {
        let f = fixture().await;
        let product = |category: Value| {
            json!({"name": "Leche", "ean": "8410234782535", "price_cents": 99, "vat_bp": 400,
                   "category": category})
        };
        let promo = json!({"kind": "percent", "percent": 10, "categories": ["basicos"],
                           "starts": "2026-12-01", "ends": "2026-12-31"});
        let path = "/api/v1/promotions/P-BASICOS";
        let (status, e) = send(&f.state, Method::PUT, path, Some(promo.clone()), &[]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(
            (e["error"].as_str(), e["field"].as_str()),
            (Some("unknown_category"), Some("categories")),
            "no product is in it yet"
        );
        let sku_path = format!("/api/v1/catalog/{SKU}");
        let (status, p) = send(
            &f.state,
            Method::PUT,
            &sku_path,
            Some(product(json!("basicos"))),
            &[],
        )
        .await;
        assert_eq!(
            (status, p["category"].as_str()),
            (StatusCode::OK, Some("basicos")),
            "{p}"
        );
        let (status, p) = send(
            &f.state,
            Method::PUT,
            &sku_path,
            Some(product(Value::Null)),
            &[],
        )
        .await;
        assert_eq!(p["category"], "basicos", "null leaves it: {status} {p}");
        let (status, p) = send(&f.state, Method::PUT, path, Some(promo), &[]).await;
        assert_eq!(status, StatusCode::OK, "{p}");
        assert_eq!(p["categories"], json!(["basicos"]));
        assert_eq!(p["skus"], json!([]));
        let (status, e) = send(
            &f.state,
            Method::PUT,
            &sku_path,
            Some(product(json!("no such!"))),
            &[],
        )
        .await;
        assert_eq!(
            (status, e["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("category")),
            "{e}"
        );
        let (_, p) = send(
            &f.state,
            Method::PUT,
            &sku_path,
            Some(product(json!(""))),
            &[],
        )
        .await;
        assert_eq!(p["category"], Value::Null, "\"\" clears it");
        let both_empty = json!({"kind": "percent", "percent": 10, "skus": [], "categories": [],
                                "starts": "2026-12-01", "ends": "2026-12-31"});
        let (status, e) = send(&f.state, Method::PUT, path, Some(both_empty), &[]).await;
        assert_eq!(
            (status, e["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("skus")),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_stores_cash_session_replicates_to_hq_with_its_report() {
        let mut f = fixture().await;
        let session = CashSessionId::parse("Z1").unwrap();
        f.store_does(vec![
            Payload::CashOpen {
                store: madrid(),
                session: session.clone(),
                float_cents: 5_000,
                staff: "1001".into(),
                opened_ms: 1,
            },
            Payload::CashClose {
                store: madrid(),
                session,
                counted_cents: 4_990,
                staff: "9001".into(),
                closed_ms: 2,
            },
        ])
        .await;
        let (status, all) = send(
            &f.state,
            Method::GET,
            "/api/v1/cash/sessions?store=madrid-centro",
            None,
            &[],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(all[0]["expected_cents"], 5_000);
        assert_eq!(all[0]["difference_cents"], -10);
    }
}
