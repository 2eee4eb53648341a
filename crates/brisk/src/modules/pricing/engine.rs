//! The pricing rules of docs/api.md as plain functions: no I/O, no HTTP. Every
//! price a quotation or an order carries comes from here.
//!
//! Amounts are [`Money`], quantities and basis points plain integers, so
//! the two cannot be swapped. All arithmetic is checked: an amount that does
//! not fit in `i64` minor units is an error ([`Overflow`]), never a wrapped
//! number.

use crate::modules::catalog::Tier;
pub use crate::platform::money::BP_PER_UNIT;
pub use crate::platform::money::Money;

/// What pricing needs to know about a variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedVariant {
    pub price: Money,
    pub cost: Money,
    pub tiers: Vec<Tier>,
    pub min_margin_bp: i64,
}

/// One priced line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    pub quantity: i64,
    pub unit_price: Money,
    pub discount: Money,
    pub line_total: Money,
    pub margin_bp: i64,
    pub margin_ok: bool,
}

/// The totals of priced lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub subtotal: Money,
    pub discount_total: Money,
    pub total: Money,
    pub margin_ok: bool,
}

/// An amount left the range of `i64` minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("amount out of range")]
pub struct Overflow;

/// The variant's price, or the price of the highest tier whose
/// `min_quantity <= quantity`.
pub fn unit_price(variant: &PricedVariant, quantity: i64) -> Money {
    variant
        .tiers
        .iter()
        .filter(|t| t.min_quantity <= quantity)
        .max_by_key(|t| t.min_quantity)
        .map_or(variant.price, |t| Money::minor(t.price))
}

/// `round(amount × bp / 10000)`, half away from zero, exactly.
pub fn apply_bp(amount: Money, bp: i64) -> Result<Money, Overflow> {
    amount.share_bp(bp).ok_or(Overflow)
}

/// `(line_total − cost × quantity) × 10000 / line_total`, truncated toward
/// zero; when `line_total` is 0: 0 if the cost is 0, else −10000.
///
/// Computed in i128 (a cost × quantity always fits there). A margin beyond
/// i64 (say, a cost 10¹⁵ times the price) saturates: the margin only
/// reports, and a line whose every amount fits must never be refused for it.
pub fn margin_bp(line_total: Money, cost: Money, quantity: i64) -> i64 {
    let line_total = line_total.minor_units();
    let total_cost = i128::from(cost.minor_units()) * i128::from(quantity);
    if line_total == 0 {
        return if total_cost == 0 { 0 } else { -BP_PER_UNIT };
    }
    let profit = i128::from(line_total) - total_cost;
    // Only the ×10000 can leave i128 (for a profit near i64² in size).
    let margin = profit
        .checked_mul(i128::from(BP_PER_UNIT))
        .map(|scaled| scaled / i128::from(line_total));
    let saturated = if (profit < 0) == (line_total < 0) {
        i64::MAX
    } else {
        i64::MIN
    };
    margin
        .and_then(|m| i64::try_from(m).ok())
        .unwrap_or(saturated)
}

/// Prices `quantity` of `variant` for a customer with `discount_bp`, at the
/// computed unit price or at `unit_price_override`.
pub fn price_line(
    variant: &PricedVariant,
    quantity: i64,
    discount_bp: i64,
    unit_price_override: Option<Money>,
) -> Result<Line, Overflow> {
    let unit_price = unit_price_override.unwrap_or_else(|| unit_price(variant, quantity));
    let gross = unit_price.times(quantity).ok_or(Overflow)?;
    let discount = apply_bp(gross, discount_bp)?;
    let line_total = gross.checked_sub(discount).ok_or(Overflow)?;
    let margin_bp = margin_bp(line_total, variant.cost, quantity);
    Ok(Line {
        quantity,
        unit_price,
        discount,
        line_total,
        margin_bp,
        margin_ok: margin_bp >= variant.min_margin_bp,
    })
}

/// Sums lines: subtotal = Σ unit_price × quantity, discount_total = Σ
/// discount, total = subtotal − discount_total.
pub fn totals(lines: &[Line]) -> Result<Totals, Overflow> {
    let mut subtotal = Money::ZERO;
    let mut discount_total = Money::ZERO;
    for line in lines {
        let gross = line.unit_price.times(line.quantity).ok_or(Overflow)?;
        subtotal = subtotal.checked_add(gross).ok_or(Overflow)?;
        discount_total = discount_total.checked_add(line.discount).ok_or(Overflow)?;
    }
    Ok(Totals {
        subtotal,
        discount_total,
        total: subtotal.checked_sub(discount_total).ok_or(Overflow)?,
        margin_ok: lines.iter().all(|l| l.margin_ok),
    })
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
