//! The till's rules at the edge of `POST /api/v1/sales` (DESIGN.md §18): discounts as given
//! (`discount_pct` per line, `ticket_discount_pct`), the associate's limit and the manager's
//! approval on the same screen, promotions applied from the replica, the cash-session rule
//! and the till a sale or return is taken at.

use super::auth::{self, Role, Session};
use super::error::ApiError;
use super::sales::{ApprovalBody, LineBody};
use super::stock::resolve;
use super::TerminalState;
use crate::domain::op::{SaleLine, Tender};
use crate::domain::till::{default_till, price, SalePricing, TillDoc, TillLine};
use crate::domain::Payload;
use axum::http::StatusCode;
use serde_json::{json, Value};

/// A percent field (0-100, decimals allowed) in basis points; absent or null is 0. Negative or
/// over 100 % is a 422 naming the field (not a number is refused with the body).
pub fn discount_bp(pct: Option<f64>, field: &str) -> Result<u32, ApiError> {
    match pct {
        None => Ok(0),
        Some(p) if (0.0..=100.0).contains(&p) => Ok((p * 100.0).round() as u32),
        _ => Err(ApiError::unprocessable(
            "invalid_discount",
            format!("{field} must be a percent from 0 to 100"),
        )
        .with("field", field)),
    }
}

/// Each sale line's manual discount from the request's lines (a sku given twice keeps the
/// larger), in the order of `lines`.
pub fn line_discounts(
    state: &TerminalState,
    raw: &[LineBody],
    lines: &[(SaleLine, String)],
) -> Result<Vec<u32>, ApiError> {
    let mut out = vec![0u32; lines.len()];
    for line in raw {
        let bp = discount_bp(line.discount_pct, "discount_pct")?;
        if bp == 0 {
            continue;
        }
        let sku = resolve(state, &line.sku)?.sku;
        if let Some(i) = lines.iter().position(|(l, _)| l.sku == sku) {
            out[i] = out[i].max(bp);
        }
    }
    Ok(out)
}

/// The ticket priced with the promotions valid at `now_ms` and the manual discounts.
pub fn price_ticket(
    state: &TerminalState,
    lines: &[(SaleLine, String)],
    manual_bp: &[u32],
    ticket_bp: u32,
    now_ms: u64,
) -> SalePricing {
    state.read(|r| {
        let st = r.state();
        let till: Vec<TillLine> = lines
            .iter()
            .zip(manual_bp)
            .map(|((l, _), bp)| TillLine {
                sku: l.sku.clone(),
                qty: l.qty,
                unit_cents: l.unit_cents,
                vat_bp: l.vat_bp,
                manual_bp: *bp,
                category: st.catalog.category(&l.sku).cloned(),
            })
            .collect();
        price(&st.promotions, now_ms, &till, ticket_bp)
    })
}

/// Who approved the manual discounts: nobody needed within the associate's limit; a manager
/// at the till approves their own; otherwise `"approval": {"staff", "pin"}` of a manager, or
/// `403 manager_required`.
pub async fn approval(
    state: &TerminalState,
    session: &Session,
    pricing: &SalePricing,
    approval: Option<&ApprovalBody>,
) -> Result<Option<String>, ApiError> {
    let limit_bp = state.config().till.associate_max_bp();
    if pricing.manual_bp_max() <= limit_bp {
        return Ok(None);
    }
    if session.role == Role::Manager {
        return Ok(Some(session.staff.clone()));
    }
    let Some(approval) = approval else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "manager_required",
            format!(
                "a discount over {} % needs a manager's approval",
                limit_bp / 100
            ),
        )
        .with("limit_pct", limit_bp / 100));
    };
    let (staff, pin) = (approval.staff.trim(), approval.pin.as_str());
    if !auth::valid_staff(staff) || pin.len() > 64 {
        return Err(ApiError::unprocessable(
            "invalid_staff",
            "approval needs a manager's staff number and PIN",
        )
        .with("field", "approval"));
    }
    auth::manager_approval(state, staff, pin.to_string())
        .await
        .map(Some)
}

/// `409 no_cash_session` for a cash sale while the drawer of the session's till is closed
/// (when `[till] cash_session_required`); card sales never need one.
pub fn require_cash_session(
    state: &TerminalState,
    session: &Session,
    tender: Tender,
) -> Result<(), ApiError> {
    if tender != Tender::Cash || !state.config().till.cash_session_required {
        return Ok(());
    }
    let store = state.store().clone();
    if state.read(|r| r.state().cash.current(&store, &session.till).is_some()) {
        Ok(())
    } else {
        Err(ApiError::conflict(
            "no_cash_session",
            format!(
                "open a cash session at till {} before taking cash",
                session.till
            ),
        )
        .with("till", session.till.as_str()))
    }
}

/// The `TakenAt` op that puts `doc` in the session's till, to issue just before it; none at
/// the default till (a document without one was taken there), so a single-till store logs
/// exactly what it did before tills existed.
pub fn taken_at(state: &TerminalState, session: &Session, doc: TillDoc) -> Option<Payload> {
    (session.till != default_till()).then(|| Payload::TakenAt {
        store: state.store().clone(),
        till: session.till.clone(),
        doc,
    })
}

/// The answer's `lines`: each line's list price and what came off it.
pub fn lines_json(lines: &[(SaleLine, String)], pricing: &SalePricing) -> Vec<Value> {
    lines
        .iter()
        .enumerate()
        .map(|(i, (l, name))| {
            let d = pricing.lines.get(i).filter(|d| d.sku == l.sku);
            json!({
                "sku": l.sku.as_str(),
                "name": name,
                "qty": l.qty,
                "unit_cents": l.unit_cents,
                "discount_cents": d.map_or(0, |d| d.cents()),
                "promotion": d.and_then(|d| d.promotion.as_ref()).map(|p| p.as_str()),
            })
        })
        .collect()
}

/// A promotion as the HQ and store APIs show it.
pub fn promotion_json(p: &crate::domain::till::Promotion) -> Value {
    use crate::domain::till::PromotionKind;
    let mut v = json!({
        "id": p.id.as_str(),
        "name": p.name,
        "skus": p.skus.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "categories": p.categories.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "starts": rfc3339(p.starts_ms),
        "ends": rfc3339(p.ends_ms),
        "starts_ms": p.starts_ms,
        "ends_ms": p.ends_ms,
        "priority": p.priority,
    });
    let extra = match p.kind {
        PromotionKind::Percent { bp } => {
            json!({"kind": "percent", "percent": f64::from(bp) / 100.0})
        }
        PromotionKind::NForM { n, m } => json!({"kind": "n_for_m", "n": n, "m": m}),
        PromotionKind::SecondUnit { bp } => {
            json!({"kind": "second_unit", "percent": f64::from(bp) / 100.0})
        }
    };
    if let (Some(v), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
        v.extend(extra.clone());
    }
    v
}

fn rfc3339(ms: u64) -> Option<String> {
    let ms = i64::try_from(ms).ok()?;
    jiff::Timestamp::from_millisecond(ms)
        .ok()
        .map(|t| t.to_string())
}

/// `GET /api/v1/promotions` (store): the promotions valid now, as the till applies them.
pub async fn list_promotions(
    axum::extract::State(state): axum::extract::State<TerminalState>,
    _session: Session,
) -> axum::Json<Value> {
    let now = crate::store::now_ms();
    axum::Json(Value::Array(state.read(|r| {
        r.state()
            .promotions
            .iter()
            .filter(|p| p.active_at(now))
            .map(promotion_json)
            .collect()
    })))
}
