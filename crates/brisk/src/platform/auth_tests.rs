//! Unit tests of `auth`.
use super::*;
use crate::platform::http::error::ErrorCode;

#[test]
fn roles_write_only_what_the_api_allows() {
    assert!(Role::Sales.may(Action::WriteCustomers));
    assert!(!Role::Sales.may(Action::WriteCatalog));
    assert!(Role::Warehouse.may(Action::WriteCatalog));
    assert!(!Role::Warehouse.may(Action::WriteCustomers));
    assert!(!Role::Viewer.may(Action::WriteCustomers));
    assert!(!Role::Sales.may(Action::ManageUsers));
    assert!(Role::Admin.may(Action::ManageUsers));
}

#[test]
fn access_tokens_round_trip_and_forgeries_fail() {
    let keys = TokenKeys::new(b"secret-one");
    let token = keys
        .issue_access("u1", &TenantId::new("t1"), Role::Sales)
        .unwrap();
    let user = keys.verify_access(&token).unwrap();
    assert_eq!(
        (user.user_id.as_str(), user.tenant_id.as_str(), user.role),
        ("u1", "t1", Role::Sales)
    );
    let other = TokenKeys::new(b"secret-two");
    assert_eq!(
        other.verify_access(&token).unwrap_err().code,
        ErrorCode::Unauthorized
    );
    assert!(keys.verify_access("not.a.jwt").is_err());
}

#[test]
fn refresh_tokens_carry_their_tenant() {
    let t = new_refresh_token(&TenantId::new("tenant-1"));
    assert_eq!(refresh_token_tenant(&t), Some("tenant-1"));
    assert_ne!(token_hash(&t), t);
    assert_eq!(token_hash(&t).len(), 64);
}
