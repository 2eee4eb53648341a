//! Pricing: the rules of docs/api.md (which tier applies, customer discount,
//! margins) as pure functions in `engine`, and the one place that loads what
//! they need — every variant with its product's rule, and the customer — in
//! a fixed number of statements, whatever the number of items. Quotations
//! and orders get their prices from here.
//!
//! Owns no table: variants and their tiers are the catalog's data (read
//! through `catalog::variants_for_sale`), customers the CRM's. Invariants: a
//! cart names each variant once, 1–500 lines, quantities ≥ 1; unknown, other
//! tenants', deleted or inactive variants are refused (each line named);
//! amounts never overflow silently; a variant whose stored tiers are corrupt
//! is an error, never priced at its list price. Failures are
//! [`PricingError`]s; `error.rs` alone maps them to HTTP.
//!
//! Calls `catalog`, `crm` and `tenancy`; none of them calls pricing.

pub mod engine;
mod error;
mod routes;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::modules::catalog::{VariantForSale, variants_for_sale};
use crate::platform::money::Money;
use crate::platform::tenant::TenantId;
use crate::platform::validation::{FieldError, Invalid, Validator};
use engine::{Line, PricedVariant, Totals};

pub use error::PricingError;
pub use routes::router;

pub const MAX_ITEMS: usize = 500;
/// Far beyond any real order, and small enough that price × quantity is
/// checked rather than trusted.
pub const MAX_QUANTITY: i64 = 1_000_000_000;

/// One requested line.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
pub struct CartItem {
    pub variant_id: String,
    pub quantity: i64,
    /// Quotations only: replaces the computed unit price.
    #[serde(default)]
    pub unit_price: Option<i64>,
}

/// A priced line, with what orders need to record it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PricedLine {
    pub variant_id: String,
    pub sku: String,
    pub quantity: i64,
    pub unit_price: Money,
    pub discount: Money,
    pub line_total: Money,
    pub margin_bp: i64,
    pub margin_ok: bool,
    #[serde(skip)]
    pub product_id: String,
    #[serde(skip)]
    pub product_name: String,
    #[serde(skip)]
    pub unit_cost: i64,
    #[serde(skip)]
    pub min_margin_bp: i64,
}

#[derive(Debug, Clone)]
pub struct PricedCart {
    pub lines: Vec<PricedLine>,
    pub totals: Totals,
}

/// Shape checks that need no database: counts, quantities, duplicates,
/// explicit prices. `allow_unit_price` is false for pricing and orders.
pub fn check_items(v: &mut Validator, items: &[CartItem], allow_unit_price: bool) {
    if items.is_empty() {
        v.error("items", "at least one item is required");
    }
    if items.len() > MAX_ITEMS {
        v.error("items", format!("at most {MAX_ITEMS} items"));
        return;
    }
    let mut seen = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let f = format!("items[{i}]");
        v.check(
            !item.variant_id.trim().is_empty(),
            format!("{f}.variant_id"),
            "is required",
        );
        v.check(
            (1..=MAX_QUANTITY).contains(&item.quantity),
            format!("{f}.quantity"),
            format!("must be between 1 and {MAX_QUANTITY}"),
        );
        if let Some(first) = seen.insert(item.variant_id.as_str(), i) {
            v.error(
                format!("{f}.variant_id"),
                format!("repeats items[{first}]: name each variant once"),
            );
        }
        match item.unit_price {
            Some(_) if !allow_unit_price => {
                v.error(format!("{f}.unit_price"), "is not accepted here")
            }
            Some(p) if p < 0 => v.error(format!("{f}.unit_price"), "must not be negative"),
            _ => {}
        }
    }
}

/// Loads every variant of the cart in one statement.
pub async fn load_variants<'c, E>(
    ex: E,
    tenant_id: &TenantId,
    items: &[CartItem],
) -> Result<HashMap<String, VariantForSale>, PricingError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let ids: Vec<&str> = items.iter().map(|i| i.variant_id.as_str()).collect();
    Ok(variants_for_sale(ex, tenant_id, &ids).await?)
}

/// The refusal of a cart whose customer does not exist: it names
/// `customer_id` and, at once, every item that is bad too.
pub fn unknown_customer(
    items: &[CartItem],
    variants: &HashMap<String, VariantForSale>,
) -> PricingError {
    let mut errors = vec![FieldError::new("customer_id", "no such customer")];
    if let Err(PricingError::Invalid(Invalid(bad_items))) = price_cart(items, variants, 0) {
        errors.extend(bad_items);
    }
    Invalid(errors).into()
}

/// Prices a cart whose variants are loaded. Unknown or unsellable variants
/// and overflowing amounts are refused, each line named.
pub fn price_cart(
    items: &[CartItem],
    variants: &HashMap<String, VariantForSale>,
    discount_bp: i64,
) -> Result<PricedCart, PricingError> {
    cart_of(items, variants, |i, item, v| {
        let priced_variant = PricedVariant {
            price: Money::minor(v.price),
            cost: Money::minor(v.cost),
            tiers: v.tiers.clone(),
            min_margin_bp: v.min_margin_bp,
        };
        engine::price_line(
            &priced_variant,
            item.quantity,
            discount_bp,
            item.unit_price.map(Money::minor),
        )
        .map_err(|_| FieldError {
            field: format!("items[{i}].quantity"),
            message: "the line's amount is too large".into(),
        })
    })
}

/// A line's amounts as agreed earlier (a quotation being converted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgreedAmounts {
    pub unit_price: Money,
    pub discount: Money,
    pub line_total: Money,
}

/// A cart at amounts agreed earlier, one per item: the variants are checked
/// for sale as in [`price_cart`], but today's prices play no part (they may
/// have changed, even to amounts the agreed quantities would overflow).
/// Margins are recomputed against today's cost.
pub fn agreed_cart(
    items: &[CartItem],
    agreed: &[AgreedAmounts],
    variants: &HashMap<String, VariantForSale>,
) -> Result<PricedCart, PricingError> {
    cart_of(items, variants, |i, item, v| {
        let agreed = agreed
            .get(i)
            .ok_or_else(|| FieldError::new(format!("items[{i}]"), "has no agreed price"))?;
        let margin_bp = engine::margin_bp(agreed.line_total, Money::minor(v.cost), item.quantity);
        Ok(Line {
            quantity: item.quantity,
            unit_price: agreed.unit_price,
            discount: agreed.discount,
            line_total: agreed.line_total,
            margin_bp,
            margin_ok: margin_bp >= v.min_margin_bp,
        })
    })
}

/// The shared frame of a cart: every item's variant must exist and be for
/// sale; `line` prices the rest. All refusals are gathered into one.
fn cart_of(
    items: &[CartItem],
    variants: &HashMap<String, VariantForSale>,
    line: impl Fn(usize, &CartItem, &VariantForSale) -> Result<Line, FieldError>,
) -> Result<PricedCart, PricingError> {
    let mut errors = Vec::new();
    let mut lines = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some(v) = variants.get(&item.variant_id) else {
            errors.push(FieldError {
                field: format!("items[{i}].variant_id"),
                message: "no such variant".into(),
            });
            continue;
        };
        if !v.active || !v.product_active {
            errors.push(FieldError {
                field: format!("items[{i}].variant_id"),
                message: "is not for sale (inactive)".into(),
            });
            continue;
        }
        match line(i, item, v) {
            Ok(priced) => lines.push(shown_line(item, v, priced)),
            Err(error) => errors.push(error),
        }
    }
    if !errors.is_empty() {
        return Err(Invalid(errors).into());
    }
    let plain: Vec<Line> = lines.iter().map(as_line).collect();
    let totals = engine::totals(&plain)
        .map_err(|_| Invalid::field("items", "the cart's total is too large"))?;
    Ok(PricedCart { lines, totals })
}

fn shown_line(item: &CartItem, v: &VariantForSale, line: Line) -> PricedLine {
    PricedLine {
        variant_id: item.variant_id.clone(),
        sku: v.sku.clone(),
        quantity: line.quantity,
        unit_price: line.unit_price,
        discount: line.discount,
        line_total: line.line_total,
        margin_bp: line.margin_bp,
        margin_ok: line.margin_ok,
        product_id: v.product_id.clone(),
        product_name: v.product_name.clone(),
        unit_cost: v.cost,
        min_margin_bp: v.min_margin_bp,
    }
}

/// The engine's view of a priced line (for re-totalling fixed prices).
pub fn as_line(l: &PricedLine) -> Line {
    Line {
        quantity: l.quantity,
        unit_price: l.unit_price,
        discount: l.discount,
        line_total: l.line_total,
        margin_bp: l.margin_bp,
        margin_ok: l.margin_ok,
    }
}
