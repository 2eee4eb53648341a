//! Tenancy, users and auth through the real HTTP server.

use crate::common::*;
use serde_json::json;

#[tokio::test]
async fn signup_creates_a_tenant_with_its_owner_and_tokens() {
    let s = start().await;
    let r = s
        .post_anon(
            "/api/v1/auth/signup",
            json!({"company_name": "Acme", "name": "Ann", "email": "Ann@Acme.Example", "password": "12345678", "currency": "EUR"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["tenant"]["name"], "Acme");
    assert_eq!(r.body["tenant"]["currency"], "EUR");
    assert_eq!(r.body["user"]["role"], "owner");
    assert_eq!(r.body["user"]["email"], "ann@acme.example");
    assert_eq!(r.body["expires_in"], 900);
    let token = r.body["access_token"].as_str().unwrap();
    let me = s.get("/api/v1/me", token).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["user"]["id"], r.body["user"]["id"]);
    assert_eq!(me.body["tenant"]["id"], r.body["tenant"]["id"]);
    assert_eq!(me.body["tenant"]["currency"], "EUR");
}

#[tokio::test]
async fn signup_defaults_currency_and_refuses_a_taken_email_case_insensitively() {
    let s = start().await;
    let body = json!({"company_name": "A", "name": "A", "email": "dup@example.com", "password": "12345678"});
    let r = s.post_anon("/api/v1/auth/signup", body).await;
    assert_eq!(r.body["tenant"]["currency"], "USD");
    let again = s
        .post_anon(
            "/api/v1/auth/signup",
            json!({"company_name": "B", "name": "B", "email": "DUP@example.com", "password": "12345678"}),
        )
        .await;
    again.assert_problem(409, "email_taken");
}

#[tokio::test]
async fn signup_validates_every_field() {
    let s = start().await;
    let r = s
        .post_anon(
            "/api/v1/auth/signup",
            json!({"company_name": "", "name": "x\u{0007}", "email": "not-an-email", "password": "short", "currency": "usd"}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    let fields = r.error_fields();
    for f in ["company_name", "name", "email", "password", "currency"] {
        assert!(
            fields.contains(&f.to_owned()),
            "{f} missing from {fields:?}"
        );
    }
    let missing = s
        .post_anon("/api/v1/auth/signup", json!({"company_name": "A"}))
        .await;
    missing.assert_problem(422, "validation_failed");
    let long = s
        .post_anon(
            "/api/v1/auth/signup",
            json!({"company_name": "x".repeat(100_000), "name": "A", "email": "a@b.co", "password": "12345678"}),
        )
        .await;
    long.assert_problem(422, "validation_failed");
    assert_eq!(long.error_fields(), vec!["company_name"]);
    // Nothing was created by any of these: the e-mail is still free.
    let ok = s
        .post_anon(
            "/api/v1/auth/signup",
            json!({"company_name": "A", "name": "A", "email": "a@b.co", "password": "12345678"}),
        )
        .await;
    assert_eq!(ok.status, 201);
}

#[tokio::test]
async fn login_accepts_any_email_case_and_refuses_wrong_credentials_alike() {
    let s = start().await;
    let owner = s.signup("Login Co").await;
    let ok = s
        .post_anon(
            "/api/v1/auth/login",
            json!({"email": owner.email.to_uppercase(), "password": "correct horse"}),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["user"]["id"], owner.user_id.as_str());
    assert!(ok.body["refresh_token"].as_str().is_some());
    let wrong_pw = s
        .post_anon(
            "/api/v1/auth/login",
            json!({"email": owner.email, "password": "wrong horse"}),
        )
        .await;
    wrong_pw.assert_problem(401, "invalid_credentials");
    let no_user = s
        .post_anon(
            "/api/v1/auth/login",
            json!({"email": "nobody@example.com", "password": "wrong horse"}),
        )
        .await;
    no_user.assert_problem(401, "invalid_credentials");
    assert_eq!(wrong_pw.body["detail"], no_user.body["detail"]);
}

/// A hash made with other (older, larger) argon2 parameters still logs in,
/// and that login re-makes it with today's; a wrong password changes
/// nothing.
#[tokio::test]
async fn a_login_re_makes_a_hash_of_older_parameters_and_a_wrong_password_changes_nothing() {
    use argon2::password_hash::PasswordHasher as _;
    let s = start().await;
    let owner = s.signup("Rehash Co").await;
    let old = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(19 * 1024, 2, 1, None).unwrap(),
    )
    .hash_password(b"correct horse")
    .unwrap()
    .to_string();
    let db = s.raw_database().await;
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(old.as_str())
        .bind(owner.user_id.as_str())
        .execute(&db)
        .await
        .unwrap();
    let stored = async || -> String {
        sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
            .bind(owner.user_id.as_str())
            .fetch_one(&db)
            .await
            .unwrap()
    };
    let login = async |password: &str| {
        s.post_anon(
            "/api/v1/auth/login",
            json!({"email": owner.email, "password": password}),
        )
        .await
    };
    login("wrong horse")
        .await
        .assert_problem(401, "invalid_credentials");
    assert_eq!(stored().await, old, "a refused login changes nothing");

    let ok = login("correct horse").await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let remade = stored().await;
    assert_ne!(remade, old);
    assert!(
        remade.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"),
        "{remade}"
    );
    assert_eq!(
        login("correct horse").await.status,
        200,
        "the new hash works"
    );
    assert_eq!(stored().await, remade, "a current hash is kept");
    login("wrong horse")
        .await
        .assert_problem(401, "invalid_credentials");
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let s = start().await;
    let owner = s.signup("Rotate").await;
    let first = s
        .post_anon(
            "/api/v1/auth/refresh",
            json!({"refresh_token": owner.refresh_token}),
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let second_token = first.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_token, owner.refresh_token);
    assert_eq!(
        s.get("/api/v1/me", first.body["access_token"].as_str().unwrap())
            .await
            .status,
        200
    );

    // The old token no longer works, and presenting it revokes the family...
    let reuse = s
        .post_anon(
            "/api/v1/auth/refresh",
            json!({"refresh_token": owner.refresh_token}),
        )
        .await;
    reuse.assert_problem(401, "unauthorized");
    // ...so the token it was exchanged for is dead too.
    let after = s
        .post_anon(
            "/api/v1/auth/refresh",
            json!({"refresh_token": second_token}),
        )
        .await;
    after.assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn reuse_revokes_only_that_login_not_other_logins() {
    let s = start().await;
    let owner = s.signup("Two Logins").await;
    let other_login = s
        .post_anon(
            "/api/v1/auth/login",
            json!({"email": owner.email, "password": "correct horse"}),
        )
        .await;
    let other_refresh = other_login.body["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let _ = s
        .post_anon(
            "/api/v1/auth/refresh",
            json!({"refresh_token": owner.refresh_token}),
        )
        .await;
    let _ = s
        .post_anon(
            "/api/v1/auth/refresh",
            json!({"refresh_token": owner.refresh_token}),
        )
        .await;
    let still = s
        .post_anon(
            "/api/v1/auth/refresh",
            json!({"refresh_token": other_refresh}),
        )
        .await;
    assert_eq!(still.status, 200, "{}", still.body);
}

#[tokio::test]
async fn concurrent_presentations_of_one_refresh_token_yield_one_winner() {
    let s = start().await;
    let owner = s.signup("Race").await;
    let mut handles = Vec::new();
    for _ in 0..10 {
        let client = s.client.clone();
        let url = format!("{}/api/v1/auth/refresh", s.base);
        let token = owner.refresh_token.clone();
        handles.push(tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({"refresh_token": token}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for h in handles {
        statuses.push(h.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        9,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn logout_revokes_the_login_and_unknown_tokens_get_204() {
    let s = start().await;
    let owner = s.signup("Logout").await;
    let rotated = s
        .post_anon(
            "/api/v1/auth/refresh",
            json!({"refresh_token": owner.refresh_token}),
        )
        .await;
    let current = rotated.body["refresh_token"].as_str().unwrap().to_owned();
    // Logout is an /api/v1 route like any other: it needs an access token.
    s.post_anon("/api/v1/auth/logout", json!({"refresh_token": current}))
        .await
        .assert_problem(401, "unauthorized");
    // Nobody ends somebody else's login, even in the same tenant.
    let colleague = s.user_with_role(&owner, "sales").await;
    let r = s
        .post(
            "/api/v1/auth/logout",
            &colleague.token,
            json!({"refresh_token": current}),
        )
        .await;
    assert_eq!(r.status, 204);
    let still = s
        .post_anon("/api/v1/auth/refresh", json!({"refresh_token": current}))
        .await;
    assert_eq!(still.status, 200, "{}", still.body);
    let current = still.body["refresh_token"].as_str().unwrap().to_owned();
    let r = s
        .post(
            "/api/v1/auth/logout",
            &owner.token,
            json!({"refresh_token": current}),
        )
        .await;
    assert_eq!(r.status, 204);
    s.post_anon("/api/v1/auth/refresh", json!({"refresh_token": current}))
        .await
        .assert_problem(401, "unauthorized");
    let unknown = s
        .post(
            "/api/v1/auth/logout",
            &owner.token,
            json!({"refresh_token": "nope"}),
        )
        .await;
    assert_eq!(unknown.status, 204);
    let forged = s
        .post_anon("/api/v1/auth/refresh", json!({"refresh_token": "x.y"}))
        .await;
    forged.assert_problem(401, "unauthorized");
}

fn sign(claims: serde_json::Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn missing_malformed_expired_and_forged_access_tokens_are_401() {
    let s = start().await;
    let owner = s.signup("Tokens").await;
    s.get_anon("/api/v1/me")
        .await
        .assert_problem(401, "unauthorized");
    s.get("/api/v1/me", "garbage")
        .await
        .assert_problem(401, "unauthorized");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = |exp: i64| json!({"sub": owner.user_id, "tid": owner.tenant_id, "role": "owner", "iat": now - 1000, "exp": exp});
    let expired = sign(claims(now - 10), "test-secret-for-brisk");
    s.get("/api/v1/me", &expired)
        .await
        .assert_problem(401, "unauthorized");
    let forged = sign(claims(now + 600), "some-other-secret");
    s.get("/api/v1/me", &forged)
        .await
        .assert_problem(401, "unauthorized");
    let valid = sign(claims(now + 600), "test-secret-for-brisk");
    assert_eq!(s.get("/api/v1/me", &valid).await.status, 200);
    // Wrong scheme.
    let r = s
        .client
        .get(format!("{}/api/v1/me", s.base))
        .header("authorization", format!("Basic {}", owner.token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test]
async fn owner_and_admin_manage_users_other_roles_get_403() {
    let s = start().await;
    let owner = s.signup("Roles").await;
    let admin = s.user_with_role(&owner, "admin").await;
    let sales = s.user_with_role(&owner, "sales").await;
    let warehouse = s.user_with_role(&owner, "warehouse").await;
    let viewer = s.user_with_role(&owner, "viewer").await;

    let new_user = |role: &str| json!({"email": format!("{role}-{}@x.example", uuid::Uuid::now_v7().simple()), "name": "N", "password": "password-1", "role": role});
    // Admin may create users, but not owners.
    assert_eq!(
        s.post("/api/v1/users", &admin.token, new_user("sales"))
            .await
            .status,
        201
    );
    s.post("/api/v1/users", &admin.token, new_user("owner"))
        .await
        .assert_problem(403, "forbidden");
    assert_eq!(
        s.post("/api/v1/users", &owner.token, new_user("owner"))
            .await
            .status,
        201
    );
    for who in [&sales, &warehouse, &viewer] {
        s.post("/api/v1/users", &who.token, new_user("viewer"))
            .await
            .assert_problem(403, "forbidden");
        s.get("/api/v1/users", &who.token)
            .await
            .assert_problem(403, "forbidden");
    }
    let list = s.get("/api/v1/users", &admin.token).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 7);
    // Every role can read itself.
    let me = s.get("/api/v1/me", &viewer.token).await;
    assert_eq!(me.body["user"]["role"], "viewer");
}

#[tokio::test]
async fn user_creation_validates_and_refuses_taken_emails() {
    let s = start().await;
    let owner = s.signup("Users").await;
    let r = s
        .post(
            "/api/v1/users",
            &owner.token,
            json!({"email": "bad", "name": "", "password": "x", "role": "boss"}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    let mut fields = r.error_fields();
    fields.sort();
    assert_eq!(fields, vec!["email", "name", "password", "role"]);
    let taken = s
        .post("/api/v1/users", &owner.token, json!({"email": owner.email.to_uppercase(), "name": "X", "password": "password-1", "role": "sales"}))
        .await;
    taken.assert_problem(409, "email_taken");
    // The 403 comes before validation.
    let viewer = s.user_with_role(&owner, "viewer").await;
    s.post("/api/v1/users", &viewer.token, json!({"email": "bad"}))
        .await
        .assert_problem(403, "forbidden");
}

#[tokio::test]
async fn users_of_other_tenants_are_invisible() {
    let s = start().await;
    let a = s.signup("Tenant A").await;
    let b = s.signup("Tenant B").await;
    s.user_with_role(&b, "sales").await;
    let list = s.get("/api/v1/users", &a.token).await;
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], a.user_id.as_str());
}

#[tokio::test]
async fn login_attempts_are_limited_per_email_and_per_ip() {
    let s = start_with(|c| c.login_rate_limit_per_minute = 3).await;
    let owner = s.signup("Limited").await;
    for _ in 0..3 {
        let r = s
            .post_anon(
                "/api/v1/auth/login",
                json!({"email": owner.email, "password": "wrong password"}),
            )
            .await;
        assert_eq!(r.status, 401);
    }
    // Even the right password is refused now, with Retry-After.
    let r = s
        .post_anon(
            "/api/v1/auth/login",
            json!({"email": owner.email.to_uppercase(), "password": "correct horse"}),
        )
        .await;
    r.assert_problem(429, "rate_limited");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // The IP's budget is spent too: another e-mail from the same client is limited.
    let r = s
        .post_anon(
            "/api/v1/auth/login",
            json!({"email": "someone@else.example", "password": "whatever"}),
        )
        .await;
    r.assert_problem(429, "rate_limited");
}

#[tokio::test]
async fn requests_are_limited_per_tenant() {
    let s = start_with(|c| c.rate_limit_per_minute = 5).await;
    let a = s.signup("Busy").await;
    let b = s.signup("Quiet").await;
    for _ in 0..5 {
        assert_eq!(s.get("/api/v1/me", &a.token).await.status, 200);
    }
    let r = s.get("/api/v1/me", &a.token).await;
    r.assert_problem(429, "rate_limited");
    assert!(r.header("retry-after").is_some());
    assert_eq!(
        s.get("/api/v1/me", &b.token).await.status,
        200,
        "other tenants are unaffected"
    );
}

#[tokio::test]
async fn concurrent_signups_all_succeed_without_lock_errors() {
    let s = start().await;
    let mut handles = Vec::new();
    for i in 0..40 {
        let client = s.client.clone();
        let url = format!("{}/api/v1/auth/signup", s.base);
        handles.push(tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({"company_name": format!("C{i}"), "name": "N", "email": format!("c{i}@example.com"), "password": "12345678"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for h in handles {
        assert_eq!(h.await.unwrap(), 201);
    }
}

/// A 422 lists every field that is missing or of the wrong type.
#[tokio::test]
async fn a_signup_missing_everything_names_every_field() {
    let s = start().await;
    let r = s.post_anon("/api/v1/auth/signup", json!({})).await;
    r.assert_problem(422, "validation_failed");
    let mut fields = r.error_fields();
    fields.sort();
    assert_eq!(fields, ["company_name", "email", "name", "password"]);
    let r = s
        .post_anon(
            "/api/v1/auth/signup",
            json!({"company_name": 1, "name": "N", "email": ["x"], "password": "12345678"}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    let mut fields = r.error_fields();
    fields.sort();
    assert_eq!(fields, ["company_name", "email"]);
}
