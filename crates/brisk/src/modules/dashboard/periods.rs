//! The report's periods: UTC days and months as text, the range rules, and
//! the one place that turns a day into its period. Pure, so tested here.

use time::{Date, Month};

use crate::platform::clock;

/// Longest report by day, counting both ends.
pub const MAX_DAYS: i64 = 366;
/// Longest report by month, counting both ends.
pub const MAX_MONTHS: i64 = 120;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Day,
    Month,
}

impl GroupBy {
    pub fn parse(text: &str) -> Option<GroupBy> {
        match text {
            "day" => Some(GroupBy::Day),
            "month" => Some(GroupBy::Month),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Day => "day",
            GroupBy::Month => "month",
        }
    }
}

/// Why a range is refused (a 422 naming the field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeError {
    pub field: &'static str,
    pub message: String,
}

/// `YYYY-MM` of a date.
pub fn month_of(date: Date) -> String {
    format!("{:04}-{:02}", date.year(), u8::from(date.month()))
}

/// The first day of `date`'s month.
pub fn first_of_month(date: Date) -> Date {
    date.replace_day(1).unwrap_or(date)
}

/// The UTC day of an instant (micros); `None` for an instant `time` cannot
/// represent (never a stored order's).
pub fn day_of_micros(micros: i64) -> Option<Date> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .ok()
        .map(|t| t.date())
}

fn month_index(date: Date) -> i64 {
    i64::from(date.year()) * 12 + i64::from(u8::from(date.month())) - 1
}

/// Checks a range against the API's limits.
pub fn check_range(from: Date, to: Date, group_by: GroupBy) -> Result<(), RangeError> {
    if from > to {
        return Err(RangeError {
            field: "from",
            message: "must not be after to".to_owned(),
        });
    }
    match group_by {
        GroupBy::Day => {
            let days = (to - from).whole_days() + 1;
            if days > MAX_DAYS {
                return Err(RangeError {
                    field: "to",
                    message: format!(
                        "a report by day covers at most {MAX_DAYS} days; this range has {days}"
                    ),
                });
            }
        }
        GroupBy::Month => {
            let months = month_index(to) - month_index(from) + 1;
            if months > MAX_MONTHS {
                return Err(RangeError {
                    field: "to",
                    message: format!(
                        "a report by month covers at most {MAX_MONTHS} months; this range has {months}"
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Every period of a checked range, oldest first.
pub fn periods(from: Date, to: Date, group_by: GroupBy) -> Vec<String> {
    let mut out = Vec::new();
    match group_by {
        GroupBy::Day => {
            let mut day = from;
            while day <= to {
                out.push(clock::format_date(day));
                match day.next_day() {
                    Some(next) => day = next,
                    None => break,
                }
            }
        }
        GroupBy::Month => {
            let (mut year, mut month) = (from.year(), from.month());
            let last = (to.year(), to.month());
            loop {
                out.push(format!("{year:04}-{:02}", u8::from(month)));
                if (year, month) == last {
                    break;
                }
                if month == Month::December {
                    year += 1;
                }
                month = month.next();
            }
        }
    }
    out
}

/// Every `YYYY-MM` a range touches, oldest first (the report's cache tags).
pub fn months(from: Date, to: Date) -> Vec<String> {
    periods(from, to, GroupBy::Month)
}

/// The period a stored day (`YYYY-MM-DD`) falls in.
pub fn period_of(day: &str, group_by: GroupBy) -> &str {
    match group_by {
        GroupBy::Day => day,
        GroupBy::Month => day.get(..7).unwrap_or(day),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Date {
        clock::parse_date(text).unwrap()
    }

    #[test]
    fn a_range_by_day_holds_at_most_366_days_counting_both_ends() {
        assert!(check_range(d("2024-01-01"), d("2024-12-31"), GroupBy::Day).is_ok()); // 366
        let err = check_range(d("2025-01-01"), d("2026-01-02"), GroupBy::Day).unwrap_err(); // 367
        assert_eq!(err.field, "to");
        assert!(check_range(d("2026-03-01"), d("2026-03-01"), GroupBy::Day).is_ok());
    }

    #[test]
    fn a_range_by_month_holds_at_most_120_months_counting_both_ends() {
        assert!(check_range(d("2016-01-31"), d("2025-12-01"), GroupBy::Month).is_ok()); // 120
        assert!(check_range(d("2016-01-01"), d("2026-01-01"), GroupBy::Month).is_err()); // 121
    }

    #[test]
    fn from_after_to_is_refused_naming_from() {
        let err = check_range(d("2026-03-02"), d("2026-03-01"), GroupBy::Month).unwrap_err();
        assert_eq!(err.field, "from");
    }

    #[test]
    fn periods_run_oldest_first_across_year_ends() {
        assert_eq!(
            periods(d("2025-12-30"), d("2026-01-02"), GroupBy::Day),
            ["2025-12-30", "2025-12-31", "2026-01-01", "2026-01-02"]
        );
        assert_eq!(
            periods(d("2025-11-15"), d("2026-02-01"), GroupBy::Month),
            ["2025-11", "2025-12", "2026-01", "2026-02"]
        );
        assert_eq!(
            periods(d("2024-02-28"), d("2024-03-01"), GroupBy::Day).len(),
            3
        );
    }

    #[test]
    fn days_of_instants_are_utc() {
        // 2025-12-31T23:59:59.999999Z and 2026-01-01T00:00:00Z.
        assert_eq!(day_of_micros(1_767_225_599_999_999), Some(d("2025-12-31")));
        assert_eq!(day_of_micros(1_767_225_600_000_000), Some(d("2026-01-01")));
        assert_eq!(month_of(d("2026-01-01")), "2026-01");
        assert_eq!(period_of("2026-01-31", GroupBy::Month), "2026-01");
    }
}
