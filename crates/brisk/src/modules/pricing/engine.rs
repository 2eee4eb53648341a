//! The pricing rules of API.md as plain functions: no I/O, no HTTP. Every
//! price a quotation or an order carries comes from here.
//!
//! All arithmetic is checked: an amount that does not fit in `i64` minor
//! units is an error ([`Overflow`]), never a wrapped number.

use serde::{Deserialize, Serialize};

/// A quantity price break: from `min_quantity` units on, the unit price is
/// `price`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tier {
    pub min_quantity: i64,
    pub price: i64,
}

/// What pricing needs to know about a variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedVariant {
    pub price: i64,
    pub cost: i64,
    pub tiers: Vec<Tier>,
    pub min_margin_bp: i64,
}

/// One priced line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    pub quantity: i64,
    pub unit_price: i64,
    pub discount: i64,
    pub line_total: i64,
    pub margin_bp: i64,
    pub margin_ok: bool,
}

/// The totals of priced lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub subtotal: i64,
    pub discount_total: i64,
    pub total: i64,
    pub margin_ok: bool,
}

/// An amount left the range of `i64` minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("amount out of range")]
pub struct Overflow;

pub const BP_PER_UNIT: i64 = 10_000;

/// The variant's price, or the price of the highest tier whose
/// `min_quantity <= quantity`.
pub fn unit_price(variant: &PricedVariant, quantity: i64) -> i64 {
    variant
        .tiers
        .iter()
        .filter(|t| t.min_quantity <= quantity)
        .max_by_key(|t| t.min_quantity)
        .map_or(variant.price, |t| t.price)
}

/// `round(amount × bp / 10000)`, half away from zero, exactly.
pub fn apply_bp(amount: i64, bp: i64) -> Result<i64, Overflow> {
    let product = i128::from(amount) * i128::from(bp);
    let divisor = i128::from(BP_PER_UNIT);
    let quotient = product / divisor;
    let remainder = product % divisor;
    // |remainder| * 2 >= divisor means the fraction is at least one half.
    let rounded = if remainder.abs() * 2 >= divisor {
        quotient + product.signum()
    } else {
        quotient
    };
    i64::try_from(rounded).map_err(|_| Overflow)
}

/// `(line_total − cost × quantity) × 10000 / line_total`, truncated toward
/// zero; when `line_total` is 0: 0 if the cost is 0, else −10000.
pub fn margin_bp(line_total: i64, cost: i64, quantity: i64) -> Result<i64, Overflow> {
    let total_cost = i128::from(cost) * i128::from(quantity);
    if line_total == 0 {
        return Ok(if total_cost == 0 { 0 } else { -BP_PER_UNIT });
    }
    let margin =
        (i128::from(line_total) - total_cost) * i128::from(BP_PER_UNIT) / i128::from(line_total);
    i64::try_from(margin).map_err(|_| Overflow)
}

/// Prices `quantity` of `variant` for a customer with `discount_bp`, at the
/// computed unit price or at `unit_price_override`.
pub fn price_line(
    variant: &PricedVariant,
    quantity: i64,
    discount_bp: i64,
    unit_price_override: Option<i64>,
) -> Result<Line, Overflow> {
    let unit_price = unit_price_override.unwrap_or_else(|| unit_price(variant, quantity));
    let gross = unit_price.checked_mul(quantity).ok_or(Overflow)?;
    let discount = apply_bp(gross, discount_bp)?;
    let line_total = gross.checked_sub(discount).ok_or(Overflow)?;
    let margin_bp = margin_bp(line_total, variant.cost, quantity)?;
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
    let mut subtotal: i64 = 0;
    let mut discount_total: i64 = 0;
    for line in lines {
        let gross = line.unit_price.checked_mul(line.quantity).ok_or(Overflow)?;
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
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn variant(price: i64, cost: i64, tiers: &[(i64, i64)], min_margin_bp: i64) -> PricedVariant {
        PricedVariant {
            price,
            cost,
            tiers: tiers
                .iter()
                .map(|&(min_quantity, price)| Tier {
                    min_quantity,
                    price,
                })
                .collect(),
            min_margin_bp,
        }
    }

    #[test]
    fn the_highest_reached_tier_sets_the_unit_price() {
        let v = variant(1000, 500, &[(10, 900), (5, 950), (100, 800)], 0);
        assert_eq!(unit_price(&v, 1), 1000);
        assert_eq!(unit_price(&v, 4), 1000);
        assert_eq!(unit_price(&v, 5), 950);
        assert_eq!(unit_price(&v, 99), 900);
        assert_eq!(unit_price(&v, 100), 800);
    }

    #[test]
    fn discounts_round_half_away_from_zero() {
        // 125 × 1000 bp = 12.5 → 13; 124 × 1000 bp = 12.4 → 12.
        assert_eq!(apply_bp(125, 1000), Ok(13));
        assert_eq!(apply_bp(124, 1000), Ok(12));
        assert_eq!(apply_bp(-125, 1000), Ok(-13));
        assert_eq!(apply_bp(5, 5000), Ok(3));
        assert_eq!(apply_bp(0, 10000), Ok(0));
        assert_eq!(apply_bp(1999, 10000), Ok(1999));
    }

    #[test]
    fn margins_follow_api_md() {
        assert_eq!(margin_bp(1000, 600, 1), Ok(4000));
        // Truncates toward zero: (3 − 1) × 10000 / 3 = 6666.67 → 6666.
        assert_eq!(margin_bp(3, 1, 1), Ok(6666));
        // Negative margins truncate toward zero too: −6666.67 → −6666.
        assert_eq!(margin_bp(3, 5, 1), Ok(-6666));
        assert_eq!(margin_bp(0, 0, 3), Ok(0));
        assert_eq!(margin_bp(0, 1, 3), Ok(-10000));
    }

    #[test]
    fn a_worked_line() {
        let v = variant(1999, 1200, &[(10, 1799)], 2000);
        let line = price_line(&v, 12, 1250, None).unwrap();
        assert_eq!(line.unit_price, 1799);
        // 1799 × 12 = 21588; 12.5 % of it = 2698.5 → 2699.
        assert_eq!(line.discount, 2699);
        assert_eq!(line.line_total, 18889);
        // (18889 − 14400) × 10000 / 18889 = 2376.5 → 2376
        assert_eq!(line.margin_bp, 2376);
        assert!(line.margin_ok);
        let low = price_line(&v, 1, 0, Some(1300)).unwrap();
        assert_eq!(low.margin_bp, 769);
        assert!(!low.margin_ok);
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        let v = variant(i64::MAX / 2, 0, &[], 0);
        assert_eq!(price_line(&v, 3, 0, None), Err(Overflow));
        let a = price_line(&variant(i64::MAX / 2, 0, &[], 0), 1, 0, None).unwrap();
        assert_eq!(totals(&[a, a, a]), Err(Overflow));
    }

    prop_compose! {
        fn any_variant()(price in 0i64..10_000_000, cost in 0i64..10_000_000,
                         tiers in proptest::collection::vec((2i64..1000, 0i64..10_000_000), 0..5),
                         min_margin_bp in -10_000i64..10_000) -> PricedVariant {
            variant(price, cost, &tiers, min_margin_bp)
        }
    }

    proptest! {
        #[test]
        fn totals_equal_the_sum_of_lines(
            lines in proptest::collection::vec((any_variant(), 1i64..10_000, 0i64..=10_000), 1..50)
        ) {
            let priced: Vec<Line> = lines.iter().map(|(v, q, d)| price_line(v, *q, *d, None).unwrap()).collect();
            let t = totals(&priced).unwrap();
            prop_assert_eq!(t.total, priced.iter().map(|l| l.line_total).sum::<i64>());
            prop_assert_eq!(t.discount_total, priced.iter().map(|l| l.discount).sum::<i64>());
            prop_assert_eq!(t.subtotal, t.total + t.discount_total);
            prop_assert_eq!(t.margin_ok, priced.iter().all(|l| l.margin_ok));
        }

        #[test]
        fn a_discount_never_exceeds_its_line_and_is_never_negative(
            v in any_variant(), q in 1i64..100_000, d in 0i64..=10_000
        ) {
            let line = price_line(&v, q, d, None).unwrap();
            prop_assert!(line.discount >= 0);
            prop_assert!(line.discount <= line.unit_price * q);
            prop_assert!(line.line_total >= 0);
            prop_assert_eq!(line.line_total, line.unit_price * q - line.discount);
        }

        #[test]
        fn margin_flags_agree_with_the_formula(v in any_variant(), q in 1i64..10_000, d in 0i64..=10_000) {
            let line = price_line(&v, q, d, None).unwrap();
            let expected = if line.line_total == 0 {
                if v.cost * q == 0 { 0 } else { -10_000 }
            } else {
                ((line.line_total as i128 - (v.cost as i128 * q as i128)) * 10_000 / line.line_total as i128) as i64
            };
            prop_assert_eq!(line.margin_bp, expected);
            prop_assert_eq!(line.margin_ok, expected >= v.min_margin_bp);
        }

        #[test]
        fn the_unit_price_is_the_base_or_a_reached_tier(v in any_variant(), q in 1i64..2_000) {
            let p = unit_price(&v, q);
            let reached: Vec<&Tier> = v.tiers.iter().filter(|t| t.min_quantity <= q).collect();
            if reached.is_empty() {
                prop_assert_eq!(p, v.price);
            } else {
                let best = reached.iter().map(|t| t.min_quantity).max().unwrap();
                prop_assert!(reached.iter().any(|t| t.min_quantity == best && t.price == p));
            }
        }

        #[test]
        fn rounding_is_within_half_a_unit(amount in -1_000_000_000i64..1_000_000_000, bp in 0i64..=10_000) {
            let r = apply_bp(amount, bp).unwrap() as f64;
            let exact = amount as f64 * bp as f64 / 10_000.0;
            prop_assert!((r - exact).abs() <= 0.5 + 1e-9);
        }
    }
}
