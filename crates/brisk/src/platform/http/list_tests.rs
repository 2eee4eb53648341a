//! Unit tests of `list`.
use super::*;

#[test]
fn cursor_round_trips_and_garbage_is_a_400() {
    let c = Cursor {
        created_at: 42,
        id: "abc".into(),
    };
    assert_eq!(Cursor::decode(&c.encode()).ok(), Some(c));
    assert_eq!(
        Cursor::decode("!!!").err().map(|e| e.code),
        Some("bad_request")
    );
    assert_eq!(
        Cursor::decode("aGVsbG8").err().map(|e| e.status.as_u16()),
        Some(400)
    );
}

#[test]
fn limit_is_clamped_and_validated() {
    assert_eq!(
        Page::from_params(None, None).map(|p| p.limit).ok(),
        Some(20)
    );
    assert_eq!(
        Page::from_params(Some("500"), None).map(|p| p.limit).ok(),
        Some(100)
    );
    for bad in ["0", "-1", "ten", ""] {
        assert!(Page::from_params(Some(bad), None).is_err(), "{bad}");
    }
}

#[test]
fn fields_keep_id_and_reject_unknown_names() {
    let f = Fields::parse(Some("name"), &["id", "name", "email"]).unwrap();
    let v = f.apply(serde_json::json!({"id": "1", "name": "a", "email": "e"}));
    assert_eq!(v, serde_json::json!({"id": "1", "name": "a"}));
    let err = Fields::parse(Some("name,nope"), &["id", "name"]).unwrap_err();
    assert_eq!(err.code, "unknown_field");
}
