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

/// Digits after the decimal point of a currency's minor unit (ISO 4217):
/// two unless listed.
pub fn minor_digits(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        "CLF" | "UYW" => 4,
        _ => 2,
    }
}

/// Whole units and the fraction's digits of an amount, without its sign.
fn split(minor: i64, digits: u32) -> (u64, Option<String>) {
    let magnitude = minor.unsigned_abs();
    if digits == 0 {
        return (magnitude, None);
    }
    let scale = 10u64.pow(digits);
    let fraction = format!("{:0width$}", magnitude % scale, width = digits as usize);
    (magnitude / scale, Some(fraction))
}

/// An amount in minor units as a decimal number of the currency's units:
/// 1999 USD is `19.99`, 1999 JPY is `1999` (a CSV cell).
pub fn decimal(minor: i64, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    match split(minor, minor_digits(currency)) {
        (whole, None) => format!("{sign}{whole}"),
        (whole, Some(fraction)) => format!("{sign}{whole}.{fraction}"),
    }
}

/// An amount in minor units as the currency writes it in plain text (an
/// e-mail): 1999 USD is `19.99 USD`, 1999 JPY is `1999 JPY`, 1999 KWD is
/// `1.999 KWD`.
pub fn format_money(minor: i64, currency: &str) -> String {
    format!("{} {currency}", decimal(minor, currency))
}

/// The symbol people read for a currency, where one is unambiguous.
fn symbol(currency: &str) -> Option<&'static str> {
    Some(match currency {
        "USD" => "$",
        "EUR" => "€",
        "GBP" => "£",
        "JPY" => "¥",
        "INR" => "₹",
        "KRW" => "₩",
        "CHF" => "CHF ",
        _ => return None,
    })
}

/// An amount for a person to read on a page: the currency's symbol and
/// thousands separated, `$1,234.56`; `-$2.50`; `1,999.000 KWD` where no
/// symbol is unambiguous.
pub fn display_money(minor: i64, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let (whole, fraction) = split(minor, minor_digits(currency));
    let digits = whole.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let number = match fraction {
        Some(fraction) => format!("{grouped}.{fraction}"),
        None => grouped,
    };
    match symbol(currency) {
        Some(symbol) => format!("{sign}{symbol}{number}"),
        None => format!("{sign}{number} {currency}"),
    }
}

/// An amount a person typed (`19.99`, `1,234.5`, `7`) in minor units of
/// `currency`; `None` unless it is a plain non-negative decimal with at most
/// the currency's digits after the point and within range.
pub fn parse_major(text: &str, currency: &str) -> Option<i64> {
    let text: String = text.trim().chars().filter(|c| *c != ',').collect();
    let digits = minor_digits(currency);
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (text.as_str(), ""),
    };
    let plain = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty())
        || !plain(whole)
        || !plain(fraction)
        || fraction.len() > digits as usize
    {
        return None;
    }
    let scale = 10i64.checked_pow(digits)?;
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let fraction: i64 = if fraction.is_empty() {
        0
    } else {
        let padded = format!("{fraction:0<width$}", width = digits as usize);
        padded.parse().ok()?
    };
    whole.checked_mul(scale)?.checked_add(fraction)
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

    #[test]
    fn money_is_written_in_the_currency_s_minor_unit() {
        assert_eq!(format_money(1999, "USD"), "19.99 USD");
        assert_eq!(format_money(5, "EUR"), "0.05 EUR");
        assert_eq!(format_money(0, "USD"), "0.00 USD");
        assert_eq!(format_money(-250, "USD"), "-2.50 USD");
        assert_eq!(format_money(1999, "JPY"), "1999 JPY");
        assert_eq!(format_money(1999, "KWD"), "1.999 KWD");
        assert_eq!(
            format_money(i64::MIN, "USD"),
            "-92233720368547758.08 USD",
            "no overflow at the extreme"
        );
    }

    #[test]
    fn money_on_a_page_has_its_symbol_and_thousands() {
        assert_eq!(display_money(1999, "USD"), "$19.99");
        assert_eq!(display_money(123_456_789, "USD"), "$1,234,567.89");
        assert_eq!(display_money(-250, "EUR"), "-€2.50");
        assert_eq!(display_money(0, "GBP"), "£0.00");
        assert_eq!(display_money(1_999_000, "JPY"), "¥1,999,000");
        assert_eq!(display_money(1_999_000, "KWD"), "1,999.000 KWD");
        assert_eq!(display_money(100_000, "SEK"), "1,000.00 SEK");
        assert_eq!(
            display_money(i64::MIN, "USD"),
            "-$92,233,720,368,547,758.08"
        );
    }

    #[test]
    fn typed_amounts_become_minor_units_or_nothing() {
        assert_eq!(parse_major("19.99", "USD"), Some(1999));
        assert_eq!(parse_major(" 1,234.5 ", "USD"), Some(123_450));
        assert_eq!(parse_major("7", "USD"), Some(700));
        assert_eq!(parse_major(".5", "EUR"), Some(50));
        assert_eq!(parse_major("1999", "JPY"), Some(1999));
        assert_eq!(parse_major("1.5", "JPY"), None);
        assert_eq!(parse_major("1.999", "KWD"), Some(1999));
        assert_eq!(parse_major("19.999", "USD"), None);
        assert_eq!(parse_major("-5", "USD"), None);
        assert_eq!(parse_major("", "USD"), None);
        assert_eq!(parse_major(".", "USD"), None);
        assert_eq!(parse_major("1e3", "USD"), None);
        assert_eq!(parse_major("99999999999999999999", "USD"), None);
        assert_eq!(parse_major("92233720368547758.08", "USD"), None);
    }
}
