//! PII redaction of tool results (an AFTER built-in): values of named
//! fields, and text matching PII patterns, replaced by a placeholder.
//!
//! Owns: [`redact_value`] (also used by the audit log's FULL verbosity)
//! and the pattern set.
//!
//! Patterns (checked in this order on every string, so a card number is
//! not also counted as a phone number):
//! - `CARD_NUMBER`: 13 to 19 digits, optionally grouped by single spaces or
//!   dashes, passing the Luhn check (ISO/IEC 7812-1, annex B);
//! - `NATIONAL_ID`: US Social Security numbers `123-45-6789` (area not
//!   000, 666 or 9xx; group not 00; serial not 0000, per the SSA's
//!   "Social Security Number Randomization");
//! - `PHONE`: North American numbers (`(415) 555-0100`, `415-555-0100`,
//!   `415.555.0100`, optionally `+1`) and international numbers written
//!   with a leading `+` and 8 to 15 digits (ITU-T E.164);
//! - `EMAIL`: `local@domain.tld`.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::{Captures, Regex};
use serde_json::Value;

use crate::model::PiiPattern;

/// The placeholder used when a hook leaves it empty.
pub const DEFAULT_PLACEHOLDER: &str = "[REDACTED]";

/// A run of digits, each pair separated by at most one space or dash:
/// where card numbers are looked for ([`find_cards`]).
static DIGIT_RUN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\d(?:[ -]?\d)*").expect("digit run regex"));
static SSN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(\d{3})-(\d{2})-(\d{4})\b").expect("ssn regex"));
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?:\+1[ .-]?)?(?:\(\d{3}\)[ ]?|\b\d{3}[ .-])\d{3}[ .-]\d{4}\b",
        r"|\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}\b",
    ))
    .expect("phone regex")
});
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*\.[a-z]{2,}\b")
        .expect("email regex")
});

/// The audit/count key of a pattern: `pattern:EMAIL`, `pattern:PHONE`,
/// `pattern:NATIONAL_ID`, `pattern:CARD_NUMBER`.
pub fn pattern_key(pattern: PiiPattern) -> &'static str {
    match pattern {
        PiiPattern::Email => "pattern:EMAIL",
        PiiPattern::Phone => "pattern:PHONE",
        PiiPattern::NationalId => "pattern:NATIONAL_ID",
        PiiPattern::CardNumber => "pattern:CARD_NUMBER",
    }
}

/// Whether `digits` (ASCII digits only) pass the Luhn check.
pub fn luhn_valid(digits: &[u8]) -> bool {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(d - b'0');
            if i % 2 == 1 {
                let twice = d * 2;
                if twice > 9 { twice - 9 } else { twice }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The digits of a card-number candidate if it is 13 to 19 digits passing
/// the Luhn check.
pub fn card_digits(candidate: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = candidate.bytes().filter(u8::is_ascii_digit).collect();
    ((13..=19).contains(&digits.len()) && luhn_valid(&digits)).then_some(digits)
}

/// Every card number (Luhn-valid, 13 to 19 digits, spaces or dashes
/// allowed) in `text`, as byte ranges, left to right without overlap.
///
/// A candidate is any stretch of whole digit groups (digits between
/// separators) of 13 to 19 digits within a run of digits, the longest
/// valid one at the earliest group winning, so a card is found also when
/// more groups follow it (`4111 1111 1111 1111 12 2027`) or letters touch
/// it (`x4111111111111111`); a stretch never starts or ends inside a
/// group, which keeps look-alikes (`4111 1111 1111 1112`) out.
pub fn find_cards(text: &str) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    DIGIT_RUN
        .find_iter(text)
        .filter(|run| run.as_str().bytes().filter(u8::is_ascii_digit).count() >= 13)
        .flat_map(|run| {
            // Each group of the run: byte range in `text`, and its digits.
            let groups: Vec<(std::ops::Range<usize>, &str)> = run
                .as_str()
                .split([' ', '-'])
                .scan(run.start(), |at, group| {
                    let range = *at..*at + group.len();
                    *at += group.len() + 1;
                    Some((range, group))
                })
                .collect();
            let mut found = Vec::new();
            let mut first = 0;
            while first < groups.len() {
                let mut digits: Vec<u8> = Vec::with_capacity(19);
                let mut best = None;
                for (last, (_, group)) in groups.iter().enumerate().skip(first) {
                    digits.extend(group.bytes());
                    if digits.len() > 19 {
                        break;
                    }
                    if digits.len() >= 13 && luhn_valid(&digits) {
                        best = Some(last);
                    }
                }
                match best {
                    Some(last) => {
                        found.push(groups[first].0.start..groups[last].0.end);
                        first = last + 1;
                    }
                    None => first += 1,
                }
            }
            found
        })
}

fn ssn_valid(c: &Captures<'_>) -> bool {
    let area = &c[1];
    area != "000" && area != "666" && !area.starts_with('9') && &c[2] != "00" && &c[3] != "0000"
}

fn phone_valid(m: &str) -> bool {
    let n = m.bytes().filter(u8::is_ascii_digit).count();
    (10..=15).contains(&n) || (m.starts_with('+') && (8..=15).contains(&n))
}

/// Replaces the matches of `pattern` in `text` by `placeholder`; returns
/// how many were replaced.
fn replace_pattern(text: &mut String, pattern: PiiPattern, placeholder: &str) -> u32 {
    let (regex, valid): (&Regex, fn(&Captures<'_>) -> bool) = match pattern {
        PiiPattern::CardNumber => return replace_cards(text, placeholder),
        PiiPattern::NationalId => (&SSN, ssn_valid),
        PiiPattern::Phone => (&PHONE, |c| phone_valid(&c[0])),
        PiiPattern::Email => (&EMAIL, |_| true),
    };
    if !regex.is_match(text) {
        return 0;
    }
    let mut count = 0;
    let replaced = regex.replace_all(text, |c: &Captures<'_>| {
        if valid(c) {
            count += 1;
            placeholder.to_owned()
        } else {
            c[0].to_owned()
        }
    });
    if count > 0 {
        *text = replaced.into_owned();
    }
    count
}

/// Replaces every card number ([`find_cards`]) in `text` by
/// `placeholder`; returns how many were replaced.
fn replace_cards(text: &mut String, placeholder: &str) -> u32 {
    let ranges: Vec<_> = find_cards(text).collect();
    if ranges.is_empty() {
        return 0;
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for range in &ranges {
        out.push_str(&text[last..range.start]);
        out.push_str(placeholder);
        last = range.end;
    }
    out.push_str(&text[last..]);
    *text = out;
    u32::try_from(ranges.len()).unwrap_or(u32::MAX)
}

/// Every pattern, in the order [`redact_value`] applies them.
pub const ALL_PATTERNS: [PiiPattern; 4] = [
    PiiPattern::CardNumber,
    PiiPattern::NationalId,
    PiiPattern::Phone,
    PiiPattern::Email,
];

/// Replaces every pattern of [`ALL_PATTERNS`] in every string of `value`
/// with [`DEFAULT_PLACEHOLDER`]: for text toolgate keeps or passes on
/// (audit details, a webhook's reason) that must not carry PII.
pub fn scrub(value: &mut Value) {
    redact_value(value, &[], &ALL_PATTERNS, DEFAULT_PLACEHOLDER);
}

/// Redacts `value` in place: the value of every object key equal
/// (ASCII case-insensitively) to one of `fields`, at any depth, becomes the
/// string `placeholder` (unless it is `null`); then every string left is
/// searched for `patterns` (in the fixed order card number, national id,
/// phone, email), each match replaced by `placeholder`. An empty
/// `placeholder` means [`DEFAULT_PLACEHOLDER`].
///
/// Returns how many values were replaced, keyed by the field name as
/// given in `fields` and by [`pattern_key`] for patterns; only non-zero
/// counts appear. The counts hold no redacted content.
pub fn redact_value(
    value: &mut Value,
    fields: &[String],
    patterns: &[PiiPattern],
    placeholder: &str,
) -> BTreeMap<String, u32> {
    let placeholder = if placeholder.is_empty() {
        DEFAULT_PLACEHOLDER
    } else {
        placeholder
    };
    let mut ordered = Vec::with_capacity(4);
    for p in [
        PiiPattern::CardNumber,
        PiiPattern::NationalId,
        PiiPattern::Phone,
        PiiPattern::Email,
    ] {
        if patterns.contains(&p) {
            ordered.push(p);
        }
    }
    let mut counts = BTreeMap::new();
    walk(value, fields, &ordered, placeholder, &mut counts);
    counts
}

fn bump(counts: &mut BTreeMap<String, u32>, key: &str, by: u32) {
    if by > 0 {
        *counts.entry(key.to_owned()).or_insert(0) += by;
    }
}

fn walk(
    value: &mut Value,
    fields: &[String],
    patterns: &[PiiPattern],
    placeholder: &str,
    counts: &mut BTreeMap<String, u32>,
) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if let Some(field) = fields.iter().find(|f| f.eq_ignore_ascii_case(key)) {
                    if !v.is_null() {
                        *v = Value::String(placeholder.to_owned());
                        bump(counts, field, 1);
                    }
                } else {
                    walk(v, fields, patterns, placeholder, counts);
                }
            }
        }
        Value::Array(items) => {
            for v in items {
                walk(v, fields, patterns, placeholder, counts);
            }
        }
        Value::String(text) => {
            for &p in patterns {
                let n = replace_pattern(text, p, placeholder);
                bump(counts, pattern_key(p), n);
            }
        }
        // A card number stored as a JSON number (a 13+ digit integer).
        Value::Number(n) if patterns.contains(&PiiPattern::CardNumber) => {
            let text = n.to_string();
            if card_digits(&text).is_some() {
                *value = Value::String(placeholder.to_owned());
                bump(counts, pattern_key(PiiPattern::CardNumber), 1);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_is_found_with_digits_after_it_or_letters_around_it() {
        for (text, expected) in [
            ("4111 1111 1111 1111 12 2027", "[REDACTED] 12 2027"),
            ("4111111111111111 5", "[REDACTED] 5"),
            ("x4111111111111111y", "x[REDACTED]y"),
            ("ref 12 4111-1111-1111-1111", "ref 12 [REDACTED]"),
            ("no card 1234567890123", "no card 1234567890123"),
        ] {
            let mut value = Value::String(text.into());
            redact_value(&mut value, &[], &[PiiPattern::CardNumber], "");
            assert_eq!(value, Value::String(expected.into()), "{text}");
        }
    }
    use serde_json::json;

    const ALL: [PiiPattern; 4] = [
        PiiPattern::Email,
        PiiPattern::Phone,
        PiiPattern::NationalId,
        PiiPattern::CardNumber,
    ];

    #[test]
    fn luhn_accepts_real_test_numbers_and_rejects_off_by_one() {
        assert!(luhn_valid(b"4111111111111111"));
        assert!(luhn_valid(b"5555555555554444"));
        assert!(luhn_valid(b"378282246310005"));
        assert!(!luhn_valid(b"4111111111111112"));
        assert!(!luhn_valid(b""));
        assert_eq!(card_digits("4111-1111-1111-1111").unwrap().len(), 16);
        assert!(card_digits("4111 1111 1111 1112").is_none());
        assert!(card_digits("411111111111").is_none(), "12 digits");
    }

    #[test]
    fn named_fields_are_redacted_at_any_depth_case_insensitively() {
        let mut v = json!({
            "records": [
                {"Name": "Ana", "email": "ana@example.com", "Phone": null,
                 "Account": {"Name": "Acme", "SSN__C": "x"}},
                {"Name": "Rui", "Email": "rui@example.com"}
            ]
        });
        let fields = vec!["Email".to_owned(), "Phone".to_owned(), "SSN__c".to_owned()];
        let counts = redact_value(&mut v, &fields, &[], "");
        assert_eq!(v["records"][0]["email"], "[REDACTED]");
        assert_eq!(v["records"][1]["Email"], "[REDACTED]");
        assert_eq!(v["records"][0]["Phone"], Value::Null, "null stays null");
        assert_eq!(v["records"][0]["Account"]["SSN__C"], "[REDACTED]");
        assert_eq!(v["records"][0]["Name"], "Ana");
        assert_eq!(
            counts,
            BTreeMap::from([("Email".to_owned(), 2), ("SSN__c".to_owned(), 1)])
        );
    }

    #[test]
    fn patterns_are_found_in_free_text_and_counted() {
        let mut v = json!({
            "Description": "Call ana.souza@example.com or (415) 555-0100 / +351 912 345 678; SSN 123-45-6789; card 4111 1111 1111 1111; order 2026-07-28, id 001000000000001AAA",
            "n": 5555555555554444u64,
        });
        let counts = redact_value(&mut v, &[], &ALL, "***");
        assert_eq!(
            v["Description"],
            "Call *** or *** / ***; SSN ***; card ***; order 2026-07-28, id 001000000000001AAA"
        );
        assert_eq!(v["n"], "***");
        assert_eq!(counts["pattern:EMAIL"], 1);
        assert_eq!(counts["pattern:PHONE"], 2);
        assert_eq!(counts["pattern:NATIONAL_ID"], 1);
        assert_eq!(counts["pattern:CARD_NUMBER"], 2);
    }

    #[test]
    fn look_alikes_are_kept() {
        let mut v =
            json!({"a": "4111 1111 1111 1112", "b": "000-12-3456", "c": "v1.2.3", "d": "12345"});
        let before = v.clone();
        let counts = redact_value(&mut v, &[], &ALL, "");
        assert!(counts.is_empty(), "{counts:?}");
        assert_eq!(v, before);
    }

    #[test]
    fn only_the_asked_patterns_apply() {
        let mut v = json!("ana@example.com 415-555-0100");
        let counts = redact_value(&mut v, &[], &[PiiPattern::Email], "");
        assert_eq!(v, "[REDACTED] 415-555-0100");
        assert_eq!(counts.len(), 1);
    }
}
