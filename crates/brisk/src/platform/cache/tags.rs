//! The names entries are filed under and writes invalidate. One place, so
//! a reader and the writes that change what it read agree on spelling.
//!
//! A tag names a set of facts: whoever writes one of them invalidates the
//! tag after the commit; whoever caches a read that used one of them files
//! the entry under it.

use crate::platform::tenant::TenantId;

/// Everything a product page or category list shows: products, variants,
/// prices, stock totals, categories.
pub fn catalog(tenant: &TenantId) -> String {
    format!("t:{}:catalog", tenant.as_str())
}

/// One product as its detail and its share links show it (variants and
/// their stock included).
pub fn product(tenant: &TenantId, product_id: &str) -> String {
    format!("t:{}:product:{product_id}", tenant.as_str())
}

/// The dashboard's figures: orders, customers, quotations, low stock.
pub fn dashboard(tenant: &TenantId) -> String {
    format!("t:{}:dashboard", tenant.as_str())
}

/// The tenant's customers as their list and detail show them (tags
/// included); a wallet's reads also check the customer exists.
pub fn customers(tenant: &TenantId) -> String {
    format!("t:{}:customers", tenant.as_str())
}

/// Every wallet's balance and ledger: credits, and the debits and refunds
/// of wallet-paid orders.
pub fn wallets(tenant: &TenantId) -> String {
    format!("t:{}:wallets", tenant.as_str())
}

/// The tenant's quotations, list and detail (their lines included).
pub fn quotations(tenant: &TenantId) -> String {
    format!("t:{}:quotations", tenant.as_str())
}

/// The tenant's orders, list and detail (lines and status history).
pub fn orders(tenant: &TenantId) -> String {
    format!("t:{}:orders", tenant.as_str())
}

/// The tenant's users (they are only ever added).
pub fn users(tenant: &TenantId) -> String {
    format!("t:{}:users", tenant.as_str())
}

/// The tenant's background jobs as the admin list shows them: every job
/// state change (queued, claimed, settled, handed back, retried, brought
/// forward, purged) invalidates it after its commit.
pub fn jobs(tenant: &TenantId) -> String {
    format!("t:{}:jobs", tenant.as_str())
}

/// The job-list tags of these tenants, each once (a batch of jobs often
/// belongs to a few tenants many times over).
pub fn jobs_of<'a>(tenants: impl IntoIterator<Item = &'a TenantId>) -> Vec<String> {
    let mut tags: Vec<String> = tenants.into_iter().map(jobs).collect();
    tags.sort_unstable();
    tags.dedup();
    tags
}

/// The tenant's webhooks as stored (their circuit's failure count and
/// cool-down included): the API's writes and every delivery outcome that
/// moves a circuit invalidate it. The circuit's state is derived from these
/// facts with the clock when a read answers, since an open circuit turns
/// half-open with time alone.
pub fn webhooks(tenant: &TenantId) -> String {
    format!("t:{}:webhooks", tenant.as_str())
}

/// Sales of one UTC month (`YYYY-MM`): what a report covering it shows.
pub fn sales_month(tenant: &TenantId, month: &str) -> String {
    format!("t:{}:sales:{month}", tenant.as_str())
}

/// What a change to a customer (created, edited, deleted) makes stale: the
/// customer reads, the wallets (whose reads answer 404 for a deleted
/// customer) and the dashboard's customer count.
pub fn customer_changed(tenant: &TenantId) -> Vec<String> {
    vec![customers(tenant), wallets(tenant), dashboard(tenant)]
}

/// What a quotation's change makes stale: the quotation reads and the
/// dashboard's open quotations.
pub fn quotation_changed(tenant: &TenantId) -> Vec<String> {
    vec![quotations(tenant), dashboard(tenant)]
}

/// What an order placed, moved or cancelled makes stale: the order reads,
/// the wallets when it was paid from one (debit, refund), and its
/// products' stock with everything that shows it ([`products_changed`]).
pub fn order_changed<'a>(
    tenant: &TenantId,
    paid_from_wallet: bool,
    product_ids: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let mut tags = products_changed(tenant, product_ids);
    tags.push(orders(tenant));
    if paid_from_wallet {
        tags.push(wallets(tenant));
    }
    tags
}

/// The tenant's share links as the API lists and shows them (clicks
/// included: the click flusher invalidates it when it writes counts).
pub fn share_links(tenant: &TenantId) -> String {
    format!("t:{}:share-links", tenant.as_str())
}

/// One share link, by its public code (who answers `/s/{code}`).
pub fn share_link(code: &str) -> String {
    format!("link:{code}")
}

/// What a change to products or stock makes stale: the tenant's catalog
/// pages (with the stock levels and movements read under the catalog tag),
/// the named products' details (and share links), and the dashboard
/// (low-stock count, top products).
pub fn products_changed<'a>(
    tenant: &TenantId,
    product_ids: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let mut tags = vec![catalog(tenant), dashboard(tenant)];
    for id in product_ids {
        let tag = product(tenant, id);
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    tags
}
