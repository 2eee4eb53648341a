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

/// Sales of one UTC month (`YYYY-MM`): what a report covering it shows.
pub fn sales_month(tenant: &TenantId, month: &str) -> String {
    format!("t:{}:sales:{month}", tenant.as_str())
}

/// One share link, by its public code (who answers `/s/{code}`).
pub fn share_link(code: &str) -> String {
    format!("link:{code}")
}

/// What a change to products or stock makes stale: the tenant's catalog
/// pages, the named products' details (and share links), and the
/// dashboard (low-stock count, top products).
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
