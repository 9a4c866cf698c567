//! Date keywords (`TODAY`, `LAST_N_DAYS:n`, ...) as half-open day ranges
//! `[start, end)` relative to the injected `now` (UTC; weeks start on
//! Sunday, as in the en_US locale).
//! Source: SOQL and SOSL Reference, "Date Formats and Date Literals".

use chrono::{Datelike, Days, Months, NaiveDate};

/// A relative date keyword; `n` keywords carry their number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DateKeyword {
    Yesterday,
    Today,
    Tomorrow,
    LastWeek,
    ThisWeek,
    NextWeek,
    LastMonth,
    ThisMonth,
    NextMonth,
    Last90Days,
    Next90Days,
    LastYear,
    ThisYear,
    NextYear,
    LastNDays(u32),
    NextNDays(u32),
    NDaysAgo(u32),
    LastNWeeks(u32),
    NextNWeeks(u32),
    LastNMonths(u32),
    NextNMonths(u32),
}

/// Whether `name` is a keyword, and whether it takes `:n`.
pub(crate) fn keyword_arity(name: &str) -> Option<bool> {
    let upper = name.to_ascii_uppercase();
    if simple(&upper).is_some() {
        Some(false)
    } else if with_n(&upper, 0).is_some() {
        Some(true)
    } else {
        None
    }
}

/// The keyword `name` (with `n` if it takes one).
pub(crate) fn keyword(name: &str, n: Option<u32>) -> Option<DateKeyword> {
    let upper = name.to_ascii_uppercase();
    match n {
        None => simple(&upper),
        Some(n) => with_n(&upper, n),
    }
}

fn simple(upper: &str) -> Option<DateKeyword> {
    use DateKeyword::*;
    Some(match upper {
        "YESTERDAY" => Yesterday,
        "TODAY" => Today,
        "TOMORROW" => Tomorrow,
        "LAST_WEEK" => LastWeek,
        "THIS_WEEK" => ThisWeek,
        "NEXT_WEEK" => NextWeek,
        "LAST_MONTH" => LastMonth,
        "THIS_MONTH" => ThisMonth,
        "NEXT_MONTH" => NextMonth,
        "LAST_90_DAYS" => Last90Days,
        "NEXT_90_DAYS" => Next90Days,
        "LAST_YEAR" => LastYear,
        "THIS_YEAR" => ThisYear,
        "NEXT_YEAR" => NextYear,
        _ => return None,
    })
}

fn with_n(upper: &str, n: u32) -> Option<DateKeyword> {
    use DateKeyword::*;
    Some(match upper {
        "LAST_N_DAYS" => LastNDays(n),
        "NEXT_N_DAYS" => NextNDays(n),
        "N_DAYS_AGO" => NDaysAgo(n),
        "LAST_N_WEEKS" => LastNWeeks(n),
        "NEXT_N_WEEKS" => NextNWeeks(n),
        "LAST_N_MONTHS" => LastNMonths(n),
        "NEXT_N_MONTHS" => NextNMonths(n),
        _ => return None,
    })
}

fn plus(d: NaiveDate, days: i64) -> NaiveDate {
    if days >= 0 {
        d.checked_add_days(Days::new(days.unsigned_abs()))
    } else {
        d.checked_sub_days(Days::new(days.unsigned_abs()))
    }
    .unwrap_or(d)
}

fn plus_months(d: NaiveDate, months: i64) -> NaiveDate {
    let m = u32::try_from(months.unsigned_abs()).unwrap_or(u32::MAX);
    if months >= 0 {
        d.checked_add_months(Months::new(m))
    } else {
        d.checked_sub_months(Months::new(m))
    }
    .unwrap_or(d)
}

/// The day range `[start, end)` of `kw` when today is `today`.
pub(crate) fn range(kw: DateKeyword, today: NaiveDate) -> (NaiveDate, NaiveDate) {
    use DateKeyword::*;
    let week = plus(today, -i64::from(today.weekday().num_days_from_sunday()));
    let month = today.with_day(1).unwrap_or(today);
    let year = NaiveDate::from_ymd_opt(today.year(), 1, 1).unwrap_or(today);
    let day = |from: i64, to: i64| (plus(today, from), plus(today, to));
    let weeks = |from: i64, to: i64| (plus(week, 7 * from), plus(week, 7 * to));
    let months = |from: i64, to: i64| (plus_months(month, from), plus_months(month, to));
    let n = |n: u32| i64::from(n);
    match kw {
        Yesterday => day(-1, 0),
        Today => day(0, 1),
        Tomorrow => day(1, 2),
        LastWeek => weeks(-1, 0),
        ThisWeek => weeks(0, 1),
        NextWeek => weeks(1, 2),
        LastMonth => months(-1, 0),
        ThisMonth => months(0, 1),
        NextMonth => months(1, 2),
        Last90Days => day(-90, 1),
        Next90Days => day(1, 91),
        LastYear => (plus_months(year, -12), year),
        ThisYear => (year, plus_months(year, 12)),
        NextYear => (plus_months(year, 12), plus_months(year, 24)),
        LastNDays(k) => day(-n(k), 1),
        NextNDays(k) => day(1, n(k) + 1),
        NDaysAgo(k) => day(-n(k), 1 - n(k)),
        LastNWeeks(k) => weeks(-n(k), 0),
        NextNWeeks(k) => weeks(1, n(k) + 1),
        LastNMonths(k) => months(-n(k), 0),
        NextNMonths(k) => months(1, n(k) + 1),
    }
}
