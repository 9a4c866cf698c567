//! Write window (a BEFORE built-in): tools classified WRITE or DELETE run
//! only inside `[start_minute, end_minute)` local time on the window's days,
//! in an IANA time zone (tz database via `chrono-tz`). Other tools pass.
//! A refusal says when the window opens next.

use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::model::Weekday;

/// A write window.
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    /// Open days; empty: every day.
    pub days: &'a [Weekday],
    /// Opening, minutes after local midnight.
    pub start_minute: u32,
    /// Closing, minutes after local midnight (exclusive).
    pub end_minute: u32,
    /// The time zone.
    pub tz: Tz,
}

fn weekday(d: chrono::Weekday) -> Weekday {
    match d {
        chrono::Weekday::Mon => Weekday::Mon,
        chrono::Weekday::Tue => Weekday::Tue,
        chrono::Weekday::Wed => Weekday::Wed,
        chrono::Weekday::Thu => Weekday::Thu,
        chrono::Weekday::Fri => Weekday::Fri,
        chrono::Weekday::Sat => Weekday::Sat,
        chrono::Weekday::Sun => Weekday::Sun,
    }
}

/// `HH:MM` of minutes after midnight (`24:00` for 1440).
pub fn hhmm(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

fn day_name(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "Mon",
        Weekday::Tue => "Tue",
        Weekday::Wed => "Wed",
        Weekday::Thu => "Thu",
        Weekday::Fri => "Fri",
        Weekday::Sat => "Sat",
        Weekday::Sun => "Sun",
    }
}

impl Window<'_> {
    fn day_open(&self, d: chrono::Weekday) -> bool {
        self.days.is_empty() || self.days.contains(&weekday(d))
    }

    /// Whether the window is open at `now`.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        let local = now.with_timezone(&self.tz);
        let minute = local.hour() * 60 + local.minute();
        self.day_open(local.weekday()) && minute >= self.start_minute && minute < self.end_minute
    }

    /// When the window opens next after `now` (local time), if within a
    /// week.
    pub fn next_open(&self, now: DateTime<Utc>) -> Option<DateTime<Tz>> {
        let local = now.with_timezone(&self.tz);
        let minute = local.hour() * 60 + local.minute();
        for offset in 0..=7 {
            let date = local.date_naive() + Duration::days(offset);
            if !self.day_open(date.weekday()) || (offset == 0 && minute >= self.start_minute) {
                continue;
            }
            let time = NaiveTime::from_hms_opt(self.start_minute / 60, self.start_minute % 60, 0)?;
            // A start inside a DST gap opens at the first instant after it.
            let mut at = date.and_time(time);
            for _ in 0..4 {
                if let Some(t) = self.tz.from_local_datetime(&at).earliest() {
                    return Some(t);
                }
                at += Duration::minutes(30);
            }
        }
        None
    }

    /// The refusal of a write at `now`: what the window is and when it
    /// opens next.
    pub fn refusal(&self, now: DateTime<Utc>) -> String {
        let days = if self.days.is_empty() {
            "every day".to_owned()
        } else {
            self.days
                .iter()
                .map(|&d| day_name(d))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let next = match self.next_open(now) {
            Some(t) => format!("; it opens next at {}", t.format("%a %Y-%m-%d %H:%M %Z")),
            None => String::new(),
        };
        format!(
            "write and delete tools may run only {days} {}-{} ({}){next}",
            hhmm(self.start_minute),
            hhmm(self.end_minute),
            self.tz.name()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn open_inside_the_window_in_its_time_zone() {
        let days = [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ];
        let w = Window {
            days: &days,
            start_minute: 9 * 60,
            end_minute: 17 * 60,
            tz: "America/New_York".parse().unwrap(),
        };
        // Monday 2026-12-07 14:00 UTC is 09:00 in New York (EST, UTC-5).
        assert!(w.is_open(at("2026-12-07T14:00:00Z")));
        assert!(!w.is_open(at("2026-12-07T13:59:00Z")));
        assert!(!w.is_open(at("2026-12-07T22:00:00Z")), "17:00 is closed");
        // Friday 18:00 local: next is Monday 09:00.
        let now = at("2026-12-11T23:00:00Z");
        assert!(!w.is_open(now));
        let next = w.next_open(now).unwrap();
        assert_eq!(next.to_rfc3339(), "2026-12-14T09:00:00-05:00");
        let r = w.refusal(now);
        assert!(
            r.contains("Mon, Tue, Wed, Thu, Fri 09:00-17:00 (America/New_York)"),
            "{r}"
        );
        assert!(r.contains("Mon 2026-12-14 09:00 EST"), "{r}");
        // Early the same day: opens today.
        let early = at("2026-12-08T12:00:00Z");
        assert_eq!(
            w.next_open(early).unwrap().to_rfc3339(),
            "2026-12-08T09:00:00-05:00"
        );
    }

    #[test]
    fn next_opening_across_a_dst_change_keeps_local_time() {
        let w = Window {
            days: &[],
            start_minute: 2 * 60 + 30,
            end_minute: 4 * 60,
            tz: "Europe/Lisbon".parse().unwrap(),
        };
        // Lisbon moves from WET to WEST on 2026-03-29 at 01:00: the next
        // opening after Saturday noon is Sunday 02:30 summer time.
        let next = w.next_open(at("2026-03-28T12:00:00Z")).unwrap();
        assert_eq!(next.to_rfc3339(), "2026-03-29T02:30:00+01:00");
    }
}
