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

#[test]
fn the_unknown_email_hash_costs_what_a_real_one_does() {
    // Same algorithm, version and parameters as a hash made now, so a login
    // for an unknown e-mail takes as long as one for a known e-mail.
    let fresh = argon2()
        .hash_password(random_secret().as_bytes())
        .map(|h| h.to_string())
        .unwrap_or_default();
    let params = |phc: &str| phc.rsplitn(3, '$').nth(2).map(str::to_owned);
    assert!(params(&fresh).is_some());
    assert_eq!(
        params(DUMMY_HASH),
        params(&fresh),
        "DUMMY_HASH must use today's parameters, e.g. {fresh}"
    );
    assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    assert!(is_current(DUMMY_HASH) && is_current(&fresh));
    let older = "$argon2id$v=19$m=19456,t=2,p=1$de7SRzMa3GjJFeROfg8D/g$JdkLEwQdl3mDY3x1U3L5tGBjBQFYN/F5/b015t94F80";
    assert!(!is_current(older), "other parameters are not current");
    assert!(!is_current("not a hash"));
}
