//! Unit tests of `list`.
use super::*;
use crate::platform::http::error::ErrorCode;

#[test]
fn cursor_round_trips_and_garbage_is_a_400() {
    let c = Cursor {
        created_at: 42,
        id: "abc".into(),
    };
    assert_eq!(Cursor::decode(&c.encode()).ok(), Some(c));
    assert_eq!(
        Cursor::decode("!!!").err().map(|e| e.code),
        Some(ErrorCode::BadRequest)
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
    for bad in ["0", "-1", "ten", "", "-99999999999999999999", "1e3"] {
        assert!(Page::from_params(Some(bad), None).is_err(), "{bad}");
    }
    // "Larger than 100 is treated as 100", even beyond i64.
    for huge in ["99999999999999999999", "+123456789012345678901234567890"] {
        assert_eq!(
            Page::from_params(Some(huge), None).map(|p| p.limit).ok(),
            Some(100),
            "{huge}"
        );
    }
}

#[test]
fn a_forged_cursor_with_a_nul_or_an_absurd_id_is_a_400() {
    for id in ["a\0b".to_owned(), "x".repeat(65)] {
        let forged = Cursor { created_at: 1, id }.encode();
        assert_eq!(
            Cursor::decode(&forged).err().map(|e| e.status.as_u16()),
            Some(400)
        );
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
