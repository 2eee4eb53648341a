//! Unit tests of `engine`.
use super::*;
use proptest::prelude::*;

/// An amount of minor units.
fn m(minor: i64) -> Money {
    Money::minor(minor)
}

fn variant(price: i64, cost: i64, tiers: &[(i64, i64)], min_margin_bp: i64) -> PricedVariant {
    PricedVariant {
        price: m(price),
        cost: m(cost),
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
    assert_eq!(unit_price(&v, 1), m(1000));
    assert_eq!(unit_price(&v, 4), m(1000));
    assert_eq!(unit_price(&v, 5), m(950));
    assert_eq!(unit_price(&v, 99), m(900));
    assert_eq!(unit_price(&v, 100), m(800));
}

#[test]
fn discounts_round_half_away_from_zero() {
    // 125 × 1000 bp = 12.5 → 13; 124 × 1000 bp = 12.4 → 12.
    assert_eq!(apply_bp(m(125), 1000), Ok(m(13)));
    assert_eq!(apply_bp(m(124), 1000), Ok(m(12)));
    assert_eq!(apply_bp(m(-125), 1000), Ok(m(-13)));
    assert_eq!(apply_bp(m(5), 5000), Ok(m(3)));
    assert_eq!(apply_bp(m(0), 10000), Ok(m(0)));
    assert_eq!(apply_bp(m(1999), 10000), Ok(m(1999)));
}

#[test]
fn margins_follow_the_documented_formula() {
    assert_eq!(margin_bp(m(1000), m(600), 1), 4000);
    // Truncates toward zero: (3 − 1) × 10000 / 3 = 6666.67 → 6666.
    assert_eq!(margin_bp(m(3), m(1), 1), 6666);
    // Negative margins truncate toward zero too: −6666.67 → −6666.
    assert_eq!(margin_bp(m(3), m(5), 1), -6666);
    assert_eq!(margin_bp(m(0), m(0), 3), 0);
    assert_eq!(margin_bp(m(0), m(1), 3), -10000);
    // Beyond i64 it saturates instead of refusing the line.
    assert_eq!(margin_bp(m(1), m(1_000_000_000_000_000), 1), i64::MIN);
    assert_eq!(margin_bp(m(1), m(i64::MAX), i64::MAX), i64::MIN);
    assert_eq!(margin_bp(m(-1), m(1_000_000_000_000_000), 1), i64::MAX);
}

#[test]
fn a_worked_line() {
    let v = variant(1999, 1200, &[(10, 1799)], 2000);
    let line = price_line(&v, 12, 1250, None).unwrap();
    assert_eq!(line.unit_price, m(1799));
    // 1799 × 12 = 21588; 12.5 % of it = 2698.5 → 2699.
    assert_eq!(line.discount, m(2699));
    assert_eq!(line.line_total, m(18889));
    // (18889 − 14400) × 10000 / 18889 = 2376.5 → 2376
    assert_eq!(line.margin_bp, 2376);
    assert!(line.margin_ok);
    let low = price_line(&v, 1, 0, Some(m(1300))).unwrap();
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
        prop_assert_eq!(t.total.minor_units(), priced.iter().map(|l| l.line_total.minor_units()).sum::<i64>());
        prop_assert_eq!(t.discount_total.minor_units(), priced.iter().map(|l| l.discount.minor_units()).sum::<i64>());
        prop_assert_eq!(t.subtotal.minor_units(), t.total.minor_units() + t.discount_total.minor_units());
        prop_assert_eq!(t.margin_ok, priced.iter().all(|l| l.margin_ok));
    }

    #[test]
    fn a_discount_never_exceeds_its_line_and_is_never_negative(
        v in any_variant(), q in 1i64..100_000, d in 0i64..=10_000
    ) {
        let line = price_line(&v, q, d, None).unwrap();
        let (unit, discount, total) = (line.unit_price.minor_units(), line.discount.minor_units(), line.line_total.minor_units());
        prop_assert!(discount >= 0);
        prop_assert!(discount <= unit * q);
        prop_assert!(total >= 0);
        prop_assert_eq!(total, unit * q - discount);
    }

    #[test]
    fn margin_flags_agree_with_the_formula(v in any_variant(), q in 1i64..10_000, d in 0i64..=10_000) {
        let line = price_line(&v, q, d, None).unwrap();
        let (total, cost) = (line.line_total.minor_units(), v.cost.minor_units());
        let expected = if total == 0 {
            if cost * q == 0 { 0 } else { -10_000 }
        } else {
            ((total as i128 - (cost as i128 * q as i128)) * 10_000 / total as i128) as i64
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
            prop_assert!(reached.iter().any(|t| t.min_quantity == best && m(t.price) == p));
        }
    }

    #[test]
    fn rounding_is_within_half_a_unit(amount in -1_000_000_000i64..1_000_000_000, bp in 0i64..=10_000) {
        let r = apply_bp(m(amount), bp).unwrap().minor_units() as f64;
        let exact = amount as f64 * bp as f64 / 10_000.0;
        prop_assert!((r - exact).abs() <= 0.5 + 1e-9);
    }

    #[test]
    fn margins_are_exact_within_i64_and_saturate_beyond(
        line_total in any::<i64>(), cost in 0i64..=i64::MAX, quantity in 1i64..=i64::MAX
    ) {
        let margin = margin_bp(m(line_total), m(cost), quantity);
        if line_total != 0 {
            // The exact value, in a type where nothing overflows.
            let profit = i128::from(line_total) - i128::from(cost) * i128::from(quantity);
            let exact = profit.checked_mul(10_000).map(|p| p / i128::from(line_total));
            match exact.and_then(|e| i64::try_from(e).ok()) {
                Some(e) => prop_assert_eq!(margin, e),
                None => prop_assert!(margin == i64::MAX || margin == i64::MIN),
            }
        }
    }
}
