//! Wallet SQL.

use super::error::WalletError;
use super::model::{Credited, WalletTransaction};
use crate::platform::cache::tags;
use crate::platform::clock::{new_id, now_micros};
use crate::platform::db::{SqlBuilder, Tx, commit, sql};
use crate::platform::http::list::{Cursor, Page};
use crate::platform::idempotency::Claim;
use crate::platform::money::Money;
use crate::platform::outbox::{self, topic};
use crate::platform::state::AppState;
use crate::platform::tenant::TenantId;

pub async fn balance<'c, E>(
    ex: E,
    tenant_id: &TenantId,
    customer_id: &str,
) -> Result<i64, WalletError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let row = sql("SELECT balance FROM wallets WHERE tenant_id = $1 AND customer_id = $2")
        .bind(tenant_id)
        .bind(customer_id)
        .fetch_optional(ex)
        .await?;
    Ok(match row {
        Some(r) => sqlx::Row::try_get(&r, "balance")?,
        None => 0,
    })
}

/// A change of a wallet's balance, as the row lock ordered it.
struct Applied {
    balance_after: i64,
    /// The ledger entry's time: after the wallet's previous entry, however
    /// long this transaction waited for the lock (see migration 0006).
    at: i64,
}

impl Applied {
    fn from_row(row: &sqlx::any::AnyRow) -> Result<Applied, sqlx::Error> {
        Ok(Applied {
            balance_after: sqlx::Row::try_get(row, "balance")?,
            at: sqlx::Row::try_get(row, "updated_at")?,
        })
    }
}

/// Adds `amount` to the balance (creating the wallet), refusing a balance
/// that would overflow.
async fn add(
    tx: &mut Tx,
    tenant_id: &TenantId,
    customer_id: &str,
    amount: i64,
    now: i64,
) -> Result<Applied, WalletError> {
    // The largest balance `amount` can be added to. Only a negative amount,
    // which no caller passes, has none.
    let headroom = i64::MAX
        .checked_sub(amount)
        .ok_or(WalletError::BalanceOverflow)?;
    let row = sql(
        "INSERT INTO wallets (tenant_id, customer_id, balance, updated_at) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (tenant_id, customer_id) DO UPDATE \
                   SET balance = wallets.balance + excluded.balance, \
                       updated_at = CASE WHEN wallets.updated_at + 1 > excluded.updated_at \
                                    THEN wallets.updated_at + 1 ELSE excluded.updated_at END \
                   WHERE wallets.balance <= $5 \
                   RETURNING balance, updated_at",
    )
    .bind(tenant_id)
    .bind(customer_id)
    .bind(amount)
    .bind(now)
    .bind(headroom)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(WalletError::BalanceOverflow)?;
    Ok(Applied::from_row(&row)?)
}

/// One ledger line to write.
struct Entry<'a> {
    customer_id: &'a str,
    kind: &'a str,
    amount: i64,
    applied: Applied,
    reference: Option<&'a str>,
    order_id: Option<&'a str>,
}

async fn write_entry(
    tx: &mut Tx,
    tenant_id: &TenantId,
    e: Entry<'_>,
) -> Result<WalletTransaction, WalletError> {
    let Entry {
        customer_id,
        kind,
        amount,
        applied: Applied { balance_after, at },
        reference,
        order_id,
    } = e;
    let entry = WalletTransaction {
        id: new_id(),
        kind: kind.to_owned(),
        amount,
        balance_after,
        reference: reference.map(str::to_owned),
        order_id: order_id.map(str::to_owned),
        created_at: at,
    };
    sql("INSERT INTO wallet_transactions (tenant_id, id, customer_id, type, amount, balance_after, reference, order_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
    .bind(tenant_id)
    .bind(entry.id.as_str())
    .bind(customer_id)
    .bind(kind)
    .bind(amount)
    .bind(balance_after)
    .bind(entry.reference.clone())
    .bind(entry.order_id.clone())
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(entry)
}

/// Credits a wallet in one transaction, remembering the response for the
/// idempotency key when there is one.
pub async fn credit(
    state: &AppState,
    tenant_id: &TenantId,
    customer_id: &str,
    amount: i64,
    reference: Option<&str>,
    claim: Option<Claim>,
) -> Result<Credited, WalletError> {
    credit_at(
        state,
        tenant_id,
        customer_id,
        amount,
        reference,
        claim,
        now_micros(),
    )
    .await
}

/// [`credit`] at the caller's clock (`brisk seed` back-dates credits before
/// the wallet-paid orders it seeds, so the ledger reads in time order).
pub async fn credit_at(
    state: &AppState,
    tenant_id: &TenantId,
    customer_id: &str,
    amount: i64,
    reference: Option<&str>,
    claim: Option<Claim>,
    now: i64,
) -> Result<Credited, WalletError> {
    let mut tx = state.db.begin().await?;
    let applied = add(&mut tx, tenant_id, customer_id, amount, now).await?;
    let balance = applied.balance_after;
    let entry = write_entry(
        &mut tx,
        tenant_id,
        Entry {
            customer_id,
            kind: "credit",
            amount,
            applied,
            reference,
            order_id: None,
        },
    )
    .await?;
    let credited = Credited {
        customer_id: customer_id.to_owned(),
        transaction: entry,
        balance,
    };
    outbox::publish(
        &mut tx,
        tenant_id,
        topic::WALLET_CREDITED,
        &outbox::aggregate("wallet", customer_id),
        &credited,
        now,
    )
    .await?;
    if let Some(claim) = claim {
        claim.record(&mut tx, &credited).await?;
    }
    commit(tx).await?;
    state.cache.invalidate(&[tags::wallets(tenant_id)]);
    Ok(credited)
}

/// Debits a wallet for an order, inside the order's transaction: 409
/// `insufficient_funds` (and nothing written) if the balance is short.
pub async fn debit(
    tx: &mut Tx,
    tenant_id: &TenantId,
    customer_id: &str,
    amount: Money,
    order_id: &str,
    now: i64,
) -> Result<i64, WalletError> {
    // The ledger stores minor units; the type kept the caller from handing
    // over a quantity or a count.
    let amount = amount.minor_units();
    if amount == 0 {
        return balance(&mut **tx, tenant_id, customer_id).await;
    }
    let row = sql(
        "UPDATE wallets SET balance = balance - $3, \
                            updated_at = CASE WHEN updated_at + 1 > $4 THEN updated_at + 1 ELSE $4 END \
         WHERE tenant_id = $1 AND customer_id = $2 AND balance >= $3 RETURNING balance, updated_at",
    )
    .bind(tenant_id)
    .bind(customer_id)
    .bind(amount)
    .bind(now)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else {
        return Err(WalletError::InsufficientFunds { amount });
    };
    let applied = Applied::from_row(&row)?;
    let balance_after = applied.balance_after;
    write_entry(
        tx,
        tenant_id,
        Entry {
            customer_id,
            kind: "debit",
            amount,
            applied,
            reference: None,
            order_id: Some(order_id),
        },
    )
    .await?;
    Ok(balance_after)
}

/// PostgreSQL, for a statement that debits a wallet with an order's other
/// writes (see the `orders` module): appends to a `WITH` list
/// `wallet_locked`, the customer's wallet locked once `after` (an SQL
/// condition of the same statement: the checks before this one passed)
/// holds, with whether it holds `amount` (> 0). Nothing is written yet:
/// [`FUNDS_ENOUGH_PG`] says whether the debit can be made, and
/// [`push_debit_pg`] makes it once every check passed.
pub fn push_funds_check_pg(
    q: &mut SqlBuilder,
    tenant_id: &TenantId,
    customer_id: &str,
    amount: Money,
    after: &str,
) {
    q.push("wallet_locked AS MATERIALIZED (SELECT balance >= ")
        .bind(amount.minor_units())
        .push(" AS enough FROM wallets WHERE tenant_id = ")
        .bind(tenant_id)
        .push(" AND customer_id = ")
        .bind(customer_id)
        .push(" AND ")
        .push(after)
        .push(" FOR UPDATE)");
}

/// Whether the wallet of [`push_funds_check_pg`] holds the amount (an SQL
/// condition of the same statement; no wallet holds nothing).
pub const FUNDS_ENOUGH_PG: &str = "EXISTS (SELECT 1 FROM wallet_locked WHERE enough)";

/// PostgreSQL: appends to a `WITH` list, after [`push_funds_check_pg`],
/// what [`debit`] does: `wallet_debit` takes `amount` once `ready` (an SQL
/// condition of the same statement: every check passed) holds, and
/// `wallet_entry` writes its ledger entry. When `ready` is false nothing
/// is written.
pub fn push_debit_pg(
    q: &mut SqlBuilder,
    tenant_id: &TenantId,
    customer_id: &str,
    amount: Money,
    order_id: &str,
    now: i64,
    ready: &str,
) {
    let amount = amount.minor_units();
    q.push("wallet_debit AS (UPDATE wallets SET balance = balance - ")
        .bind(amount)
        .push(", updated_at = CASE WHEN updated_at + 1 > ")
        .bind(now)
        .push(" THEN updated_at + 1 ELSE ")
        .bind(now)
        .push(" END WHERE tenant_id = ")
        .bind(tenant_id)
        .push(" AND customer_id = ")
        .bind(customer_id)
        .push(" AND balance >= ")
        .bind(amount)
        .push(" AND ")
        .push(ready)
        .push(
            " RETURNING balance, updated_at), wallet_entry AS (INSERT INTO wallet_transactions \
             (tenant_id, id, customer_id, type, amount, balance_after, reference, order_id, created_at) SELECT ",
        )
        .bind(tenant_id)
        .push(", ")
        .bind(new_id())
        .push(", ")
        .bind(customer_id)
        .push(", 'debit', ")
        .bind(amount)
        .push(", balance, NULL, ")
        .bind(order_id)
        .push(", updated_at FROM wallet_debit)");
}

/// Gives a wallet payment back, inside the cancellation's transaction.
pub async fn refund(
    tx: &mut Tx,
    tenant_id: &TenantId,
    customer_id: &str,
    amount: Money,
    order_id: &str,
    now: i64,
) -> Result<i64, WalletError> {
    // The ledger stores minor units; the type kept the caller from handing
    // over a quantity or a count.
    let amount = amount.minor_units();
    if amount == 0 {
        return balance(&mut **tx, tenant_id, customer_id).await;
    }
    let applied = add(tx, tenant_id, customer_id, amount, now).await?;
    let balance_after = applied.balance_after;
    write_entry(
        tx,
        tenant_id,
        Entry {
            customer_id,
            kind: "refund",
            amount,
            applied,
            reference: None,
            order_id: Some(order_id),
        },
    )
    .await?;
    Ok(balance_after)
}

pub async fn transactions(
    state: &AppState,
    tenant_id: &TenantId,
    customer_id: &str,
    page: &Page,
) -> Result<(Vec<WalletTransaction>, Option<String>), WalletError> {
    let mut q = SqlBuilder::new(
        "SELECT id, type, amount, balance_after, reference, order_id, created_at FROM wallet_transactions WHERE tenant_id = ",
    );
    q.bind(tenant_id)
        .push(" AND customer_id = ")
        .bind(customer_id)
        .after_cursor("", page.after.as_ref())
        .push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .bind(page.fetch_limit());
    let rows = q
        .build()
        .fetch_all_as::<_, WalletTransaction>(state.db.current_reader())
        .await?;
    Ok(page.finish(rows, |t| Cursor {
        created_at: t.created_at,
        id: t.id.clone(),
    }))
}

/// A wallet as a replay of back-dated history works on it (`brisk seed`'s
/// bulk order history): its balance and the time of its last entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    pub balance: i64,
    pub updated_at: i64,
}

/// One ledger entry of a replay, as [`debit`] or [`refund`] would write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayedEntry {
    pub customer_id: String,
    /// `debit` or `refund`.
    pub kind: &'static str,
    pub amount: i64,
    pub balance_after: i64,
    pub order_id: String,
    pub at: i64,
}

impl Replayed {
    /// [`debit`] in memory at `now`: refused (`None`) when the balance is
    /// short.
    pub fn debit(
        &mut self,
        customer_id: &str,
        amount: i64,
        order_id: &str,
        now: i64,
    ) -> Option<Option<ReplayedEntry>> {
        self.post(customer_id, "debit", amount, order_id, now, |balance| {
            balance.checked_sub(amount).filter(|after| *after >= 0)
        })
    }

    /// [`refund`] in memory at `now`: refused (`None`) on overflow.
    pub fn refund(
        &mut self,
        customer_id: &str,
        amount: i64,
        order_id: &str,
        now: i64,
    ) -> Option<Option<ReplayedEntry>> {
        self.post(customer_id, "refund", amount, order_id, now, |balance| {
            balance.checked_add(amount)
        })
    }

    /// An amount of zero writes nothing, as the API's does not; a negative
    /// one is refused; else `next` gives the balance after (or refuses) and
    /// the entry's time follows the wallet's previous entry.
    fn post(
        &mut self,
        customer_id: &str,
        kind: &'static str,
        amount: i64,
        order_id: &str,
        now: i64,
        next: impl FnOnce(i64) -> Option<i64>,
    ) -> Option<Option<ReplayedEntry>> {
        if amount == 0 {
            return Some(None);
        }
        if amount < 0 {
            return None;
        }
        self.balance = next(self.balance)?;
        self.updated_at = self.updated_at.saturating_add(1).max(now);
        Some(Some(ReplayedEntry {
            customer_id: customer_id.to_owned(),
            kind,
            amount,
            balance_after: self.balance,
            order_id: order_id.to_owned(),
            at: self.updated_at,
        }))
    }
}

/// Every wallet of the tenant, for a replay.
pub async fn replayed_wallets<'c, E>(
    ex: E,
    tenant_id: &TenantId,
) -> Result<std::collections::HashMap<String, Replayed>, sqlx::Error>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let rows: Vec<(String, i64, i64)> =
        sql("SELECT customer_id, balance, updated_at FROM wallets WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_all_as(ex)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(customer, balance, updated_at)| {
            (
                customer,
                Replayed {
                    balance,
                    updated_at,
                },
            )
        })
        .collect())
}

/// Writes a replay's ledger entries and the wallets' resulting balances, in
/// statements of a few hundred rows. Only for a replay that holds the
/// database to itself (`brisk seed`): it sets balances, it does not apply
/// amounts.
pub async fn write_replayed(
    tx: &mut Tx,
    backend: crate::platform::db::Backend,
    tenant_id: &TenantId,
    entries: &[ReplayedEntry],
    wallets: &[(&str, Replayed)],
) -> Result<(), sqlx::Error> {
    #[derive(serde::Serialize)]
    struct Row<'a> {
        tenant_id: &'a str,
        id: String,
        customer_id: &'a str,
        #[serde(rename = "type")]
        kind: &'a str,
        amount: i64,
        balance_after: i64,
        reference: Option<&'a str>,
        order_id: &'a str,
        created_at: i64,
    }
    for chunk in entries.chunks(crate::platform::db::JSON_ROWS_PER_STATEMENT) {
        let rows: Vec<Row<'_>> = chunk
            .iter()
            .map(|e| Row {
                tenant_id: tenant_id.as_str(),
                id: new_id(),
                customer_id: &e.customer_id,
                kind: e.kind,
                amount: e.amount,
                balance_after: e.balance_after,
                reference: None,
                order_id: &e.order_id,
                created_at: e.at,
            })
            .collect();
        crate::platform::db::insert_json_rows(
            tx,
            backend,
            "wallet_transactions",
            "tenant_id, id, customer_id, type, amount, balance_after, reference, order_id, created_at",
            &rows,
        )
        .await?;
    }
    for chunk in wallets.chunks(500) {
        let mut q = SqlBuilder::new("WITH w (cid, balance, changed) AS (VALUES ");
        for (i, (customer, w)) in chunk.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.push("(")
                .bind(*customer)
                .push(", ")
                .bind(w.balance)
                .push(", ")
                .bind(w.updated_at)
                .push(")");
        }
        q.push(
            ") UPDATE wallets SET balance = w.balance, updated_at = w.changed FROM w \
             WHERE wallets.tenant_id = ",
        )
        .bind(tenant_id)
        .push(" AND wallets.customer_id = w.cid");
        q.one_shot();
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}
