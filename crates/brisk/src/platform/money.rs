//! [`Money`]: an amount in minor units of the tenant's currency (1999 =
//! 19.99 USD). A distinct type so an amount cannot be passed where a
//! quantity, a count or basis points are expected, or the other way round;
//! every operation on it is checked, so an amount never wraps.

use serde::{Deserialize, Serialize};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Money(i64);

/// Basis points per whole (10000 = 100 %).
pub const BP_PER_UNIT: i64 = 10_000;

impl Money {
    pub const ZERO: Money = Money(0);

    /// An amount of `minor` units (cents for USD).
    pub const fn minor(minor: i64) -> Money {
        Money(minor)
    }

    /// The amount in minor units, as stored and as the API shows it.
    pub const fn minor_units(self) -> i64 {
        self.0
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0.checked_sub(other.0).map(Money)
    }

    /// This amount `quantity` times (a unit price times a quantity).
    pub fn times(self, quantity: i64) -> Option<Money> {
        self.0.checked_mul(quantity).map(Money)
    }

    /// `round(self × bp / 10000)`, half away from zero, exactly (a discount
    /// or a share of this amount).
    pub fn share_bp(self, bp: i64) -> Option<Money> {
        let product = i128::from(self.0) * i128::from(bp);
        let divisor = i128::from(BP_PER_UNIT);
        let quotient = product / divisor;
        let remainder = product % divisor;
        // |remainder| × 2 ≥ divisor means the fraction is at least a half.
        let rounded = if remainder.abs() * 2 >= divisor {
            quotient + product.signum()
        } else {
            quotient
        };
        i64::try_from(rounded).ok().map(Money)
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl utoipa::ToSchema for Money {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("Money")
    }
}

impl utoipa::PartialSchema for Money {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Integer)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Int64,
            )))
            .description(Some("an amount in minor units of the tenant's currency"))
            .into()
    }
}

impl sqlx::Type<sqlx::Any> for Money {
    fn type_info() -> <sqlx::Any as sqlx::Database>::TypeInfo {
        <i64 as sqlx::Type<sqlx::Any>>::type_info()
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Any> for Money {
    fn decode(
        value: <sqlx::Any as sqlx::Database>::ValueRef<'r>,
    ) -> Result<Self, sqlx::error::BoxDynError> {
        <i64 as sqlx::Decode<'r, sqlx::Any>>::decode(value).map(Money)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_round_half_away_from_zero_and_never_wrap() {
        assert_eq!(Money::minor(5).share_bp(1000), Some(Money::minor(1))); // 0.5 → 1
        assert_eq!(Money::minor(-5).share_bp(1000), Some(Money::minor(-1)));
        assert_eq!(Money::minor(4).share_bp(1000), Some(Money::minor(0))); // 0.4 → 0
        assert_eq!(Money::minor(i64::MAX).share_bp(20_000), None);
        assert_eq!(Money::minor(i64::MAX).times(2), None);
        assert_eq!(Money::minor(i64::MAX).checked_add(Money::minor(1)), None);
        assert_eq!(Money::minor(1999).times(3), Some(Money::minor(5997)));
        assert_eq!(serde_json::to_string(&Money::minor(1999)).unwrap(), "1999");
    }
}
