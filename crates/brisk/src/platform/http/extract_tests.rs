use serde::Deserialize;

use super::*;

#[derive(Debug, Deserialize)]
#[allow(dead_code)] // only read by serde
struct Line {
    variant_id: String,
    quantity: i64,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Order {
    customer_id: String,
    items: Vec<Line>,
    payment_method: String,
    notes: Option<String>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Inner {
    a: i64,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Outer {
    inner: Inner,
    n: i64,
}

fn fields<T: DeserializeOwned + std::fmt::Debug>(body: &str) -> Vec<String> {
    let err = parse_json::<T>(body.as_bytes()).expect_err("a shape error");
    assert_eq!(err.status, axum::http::StatusCode::UNPROCESSABLE_ENTITY);
    let mut fields: Vec<String> = err.errors.into_iter().map(|e| e.field).collect();
    fields.sort();
    fields
}

#[test]
fn every_missing_field_is_listed_not_just_the_first() {
    assert_eq!(
        fields::<Order>("{}"),
        ["customer_id", "items", "payment_method"]
    );
}

#[test]
fn type_errors_and_missing_fields_are_listed_together_at_every_depth() {
    assert_eq!(
        fields::<Order>(
            r#"{"customer_id": 5, "items": [{"variant_id": "a"}, {"quantity": "x"}], "payment_method": "w"}"#
        ),
        [
            "customer_id",
            "items[0].quantity",
            "items[1].quantity",
            "items[1].variant_id"
        ]
    );
}

#[test]
fn a_missing_object_is_reported_once_not_with_its_own_fields() {
    assert_eq!(fields::<Outer>("{}"), ["inner", "n"]);
    assert_eq!(
        fields::<Outer>(r#"{"inner": {}, "n": "x"}"#),
        ["inner.a", "n"]
    );
}

#[test]
fn from_value_lists_every_field_too() {
    let err = from_value::<Order>(serde_json::json!({"items": "nope"})).expect_err("shape");
    let mut fields: Vec<String> = err.errors.into_iter().map(|e| e.field).collect();
    fields.sort();
    assert_eq!(fields, ["customer_id", "items", "payment_method"]);
}
