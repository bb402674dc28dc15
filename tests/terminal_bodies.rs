//! The terminal's request bodies are typed (`src/http_body.rs`): a field of the wrong type,
//! wherever it sits, is a 422 with the contract's code for that field, named by its path in
//! the message, and nothing is stored, printed or parked.

mod terminal_support;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use terminal_support::{Fixture, ORDER};

/// What a refused call must leave unchanged: the replica, the printer, the parked tickets.
async fn footprint(f: &Fixture, cookie: &str) -> (String, usize, Value) {
    let (_, _, parked) = f
        .call(Method::GET, "/api/v1/sales/parked", None, Some(cookie))
        .await;
    (
        f.node.read(|r| r.digest()).to_string(),
        f.printer.jobs().len(),
        parked,
    )
}

#[tokio::test]
async fn a_field_of_the_wrong_type_gets_its_code_and_path_and_changes_nothing() {
    let f = Fixture::new().await;
    let cookie = f.login("1001", "1234").await;
    let sale_line = json!({"sku": "SKU-1", "qty": 1});
    let cases = [
        (
            "/api/v1/sales",
            json!({"lines": [sale_line, {"sku": "SKU-1", "qty": "2"}], "tender": "card"}),
            "invalid_qty",
            "qty",
            "lines[1].qty: invalid type",
        ),
        (
            "/api/v1/sales",
            json!({"lines": [sale_line], "tender": "bitcoin"}),
            "invalid_tender",
            "tender",
            "tender: unknown variant `bitcoin`, expected `cash` or `card`",
        ),
        (
            "/api/v1/sales",
            json!({"lines": [sale_line]}),
            "invalid_tender",
            "tender",
            "tender: missing field `tender`",
        ),
        (
            "/api/v1/sales",
            json!({"lines": [{"sku": "SKU-1", "qty": 1, "discount_pct": "5"}], "tender": "card"}),
            "invalid_discount",
            "discount_pct",
            "lines[0].discount_pct: invalid type",
        ),
        (
            "/api/v1/sales",
            json!({"lines": [sale_line], "tender": "card", "approval": {"staff": 9001, "pin": "1"}}),
            "invalid_staff",
            "staff",
            "approval.staff: invalid type",
        ),
        (
            "/api/v1/sales",
            json!({"lines": [sale_line], "tender": "card", "customer_tax_id": 12345678}),
            "invalid_customer_tax_id",
            "customer_tax_id",
            "customer_tax_id: invalid type",
        ),
        (
            "/api/v1/sales",
            json!({"lines": {"sku": "SKU-1"}, "tender": "card"}),
            "invalid_lines",
            "lines",
            "lines: invalid type: map",
        ),
        (
            "/api/v1/returns",
            json!({"sale": 7, "lines": [sale_line], "tender": "card"}),
            "invalid_sale",
            "sale",
            "sale: invalid type",
        ),
        (
            "/api/v1/returns",
            json!({"sale": "S1-0001", "lines": [sale_line], "tender": "card",
                   "exchange": [{"sku": "SKU-1", "qty": -1.5}]}),
            "invalid_qty",
            "qty",
            "exchange[0].qty: invalid type",
        ),
        (
            "/api/v1/sales/parked",
            json!({"lines": [sale_line], "label": 5}),
            "invalid_label",
            "label",
            "label: invalid type",
        ),
        (
            "/api/v1/cash/sessions",
            json!({"float_cents": "100"}),
            "invalid_cents",
            "float_cents",
            "float_cents: invalid type",
        ),
        (
            "/api/v1/cash/sessions/current/movements",
            json!({"kind": "sideways", "cents": 100, "reason": "bank"}),
            "invalid_kind",
            "kind",
            "kind: unknown variant `sideways`, expected `in` or `out`",
        ),
        (
            "/api/v1/cash/sessions/current/close",
            json!({}),
            "invalid_cents",
            "counted_cents",
            "counted_cents: missing field",
        ),
    ];
    let handover = format!("/api/v1/pickups/{ORDER}/handover");
    let before = footprint(&f, &cookie).await;
    for (uri, body, code, field, message) in cases.into_iter().chain([(
        handover.as_str(),
        json!({"code": 123456}),
        "invalid_code",
        "code",
        "code: invalid type",
    )]) {
        let (status, _, answer) = f
            .call(Method::POST, uri, Some(body.clone()), Some(&cookie))
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{uri} {body}: {answer}"
        );
        assert_eq!(answer["error"], code, "{uri} {body}: {answer}");
        assert_eq!(answer["field"], field, "{uri} {body}: {answer}");
        let text = answer["message"].as_str().unwrap_or_default();
        assert!(text.starts_with(message), "{uri} {body}: {text}");
    }
    assert_eq!(footprint(&f, &cookie).await, before, "nothing changed");
}

#[tokio::test]
async fn a_well_typed_value_out_of_range_is_refused_naming_its_bounds() {
    let f = Fixture::new().await;
    let cookie = f.login("1001", "1234").await;
    let before = footprint(&f, &cookie).await;
    for (uri, body, code, field, message) in [
        (
            "/api/v1/sales",
            json!({"lines": [{"sku": "SKU-1", "qty": 0}], "tender": "card"}),
            "invalid_qty",
            "qty",
            "qty must be a whole number from 1 to",
        ),
        (
            "/api/v1/cash/sessions",
            json!({"float_cents": -1}),
            "invalid_cents",
            "float_cents",
            "float_cents must be a whole number from 0 to",
        ),
        (
            "/api/v1/sales/parked",
            json!({"lines": [{"sku": "SKU-1", "qty": 1}], "label": "x".repeat(61)}),
            "invalid_label",
            "label",
            "label must be text of at most 60 characters",
        ),
    ] {
        let (status, _, answer) = f
            .call(Method::POST, uri, Some(body.clone()), Some(&cookie))
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{uri} {body}: {answer}"
        );
        assert_eq!(
            (answer["error"].as_str(), answer["field"].as_str()),
            (Some(code), Some(field)),
            "{uri} {body}: {answer}"
        );
        let text = answer["message"].as_str().unwrap_or_default();
        assert!(text.starts_with(message), "{uri} {body}: {text}");
    }
    assert_eq!(footprint(&f, &cookie).await, before, "nothing changed");
}
