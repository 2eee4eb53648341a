//! How to reach customers, for modules that write to them (notifications):
//! many customers, of any tenants, in one statement, inside the caller's
//! transaction.

use std::collections::{BTreeSet, HashMap};

use sqlx::Row;

use crate::platform::db::{SqlBuilder, Tx};
use crate::platform::tenant::TenantId;

/// A live customer that has an e-mail address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub name: String,
    pub email: String,
}

/// The contacts of the named customers, by `(tenant, customer id)`.
/// Customers without an e-mail, deleted ones and unknown ids are absent.
/// One statement whatever the number of customers (a dispatch batch names
/// at most a few hundred).
pub async fn contacts(
    tx: &mut Tx,
    customers: &[(TenantId, String)],
) -> Result<HashMap<(TenantId, String), Contact>, sqlx::Error> {
    let wanted: BTreeSet<&(TenantId, String)> = customers.iter().collect();
    let mut found = HashMap::with_capacity(wanted.len());
    if wanted.is_empty() {
        return Ok(found);
    }
    // The primary key (tenant_id, id) serves each pair.
    let mut q = SqlBuilder::new("WITH wanted (tenant_id, id) AS (VALUES ");
    for (i, (tenant_id, id)) in wanted.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.push("(")
            .bind(tenant_id)
            .push(", ")
            .bind(id.as_str())
            .push(")");
    }
    q.push(
        ") SELECT c.tenant_id, c.id, c.name, c.email FROM wanted w \
         JOIN customers c ON c.tenant_id = w.tenant_id AND c.id = w.id \
         WHERE c.deleted_at IS NULL AND c.email IS NOT NULL",
    );
    q.one_shot();
    for row in q.build().fetch_all(&mut **tx).await? {
        let email: String = row.try_get("email")?;
        if email.trim().is_empty() {
            continue;
        }
        found.insert(
            (row.try_get("tenant_id")?, row.try_get("id")?),
            Contact {
                name: row.try_get("name")?,
                email,
            },
        );
    }
    Ok(found)
}
