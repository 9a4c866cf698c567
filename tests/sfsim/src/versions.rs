//! The REST API versions the org serves, as a real org does: every version
//! from 31.0 (Summer '14) through the current one, each with its release
//! label; the `latest` alias; and the answer for any other version in a
//! path. Every endpoint sfsim implements takes every served version.
//!
//! Sources (Salesforce REST API Developer Guide): "Versions" and "List
//! Available REST API Versions" (the list, its labels and the `latest`
//! alias, <https://developer.salesforce.com/docs/platform/api-rest/guide/dome-versions.html>);
//! "API End-of-Life Policy" (versions 7.0 through 20.0 retired in Summer '22
//! and 21.0 through 30.0 in Summer '25; a retired version answers
//! 410 GONE, <https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/api_rest_eol.htm>).

use axum::http::StatusCode;

use crate::error::RestError;

/// The oldest version a real org still serves: 31.0, Summer '14.
pub const OLDEST: u32 = 31;

/// The current version: 68.0, Winter '27 (the API End-of-Life Policy pages
/// list "41.0 through 68.0" as supported; the Metadata API Developer
/// Guide's previous versions list 68.0 as Winter '27). Raise it with each
/// Salesforce release.
pub const LATEST: u32 = 68;

/// The newest retired version: 30.0 (21.0 through 30.0 retired in Summer
/// '25, 7.0 through 20.0 in Summer '22). Asking for one answers 410.
pub const NEWEST_RETIRED: u32 = 30;

/// The oldest version Salesforce ever shipped in REST paths that is now
/// retired (7.0); below it a version never existed and answers 404.
pub const OLDEST_RETIRED: u32 = 7;

/// The release label of major version `major`, e.g. `Spring '26` for 66.
/// Three releases a year since Summer '14 (31): Summer, then Winter and
/// Spring of the next year.
pub fn label(major: u32) -> String {
    let since = major.saturating_sub(OLDEST);
    let (season, year) = match since % 3 {
        0 => ("Summer", 14 + since / 3),
        1 => ("Winter", 15 + since / 3),
        _ => ("Spring", 15 + since / 3),
    };
    format!("{season} '{year:02}")
}

/// Every served version, oldest first, as `(label, "66.0")`.
pub fn served() -> impl Iterator<Item = (String, String)> {
    (OLDEST..=LATEST).map(|major| (label(major), format!("{major}.0")))
}

/// The version in a REST path segment (`v59.0`, or `latest`), without the
/// `v` (`59.0`).
///
/// # Errors
/// A retired version (`v7.0` through `v30.0`) is 410 with Salesforce's
/// error-array body; anything else that is not a served version (`v99.0`,
/// `v66`, `66.0`) is 404 `NOT_FOUND`, "The requested resource does not
/// exist", as for any path the org does not serve. Salesforce documents
/// the 410 status, not its body; sfsim says which version and why.
pub fn check(segment: &str) -> Result<String, RestError> {
    if segment == "latest" {
        return Ok(format!("{LATEST}.0"));
    }
    let major = segment
        .strip_prefix('v')
        .and_then(|v| v.strip_suffix(".0"))
        .filter(|m| !m.starts_with('0') && m.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|m| m.parse::<u32>().ok())
        .ok_or_else(RestError::not_found)?;
    match major {
        OLDEST..=LATEST => Ok(format!("{major}.0")),
        OLDEST_RETIRED..=NEWEST_RETIRED => Err(RestError::new(
            StatusCode::GONE,
            "GONE",
            format!(
                "API version {major}.0 is retired and unavailable; use version {OLDEST}.0 or later"
            ),
        )),
        _ => Err(RestError::not_found()),
    }
}

#[cfg(test)]
mod tests {
    use super::{check, label, served};

    #[test]
    fn labels_follow_the_release_calendar() {
        for (major, expected) in [
            (31, "Summer '14"),
            (32, "Winter '15"),
            (33, "Spring '15"),
            (50, "Winter '21"),
            (59, "Winter '24"),
            (64, "Summer '25"),
            (65, "Winter '26"),
            (66, "Spring '26"),
            (67, "Summer '26"),
            (68, "Winter '27"),
        ] {
            assert_eq!(label(major), expected, "{major}");
        }
    }

    #[test]
    fn served_runs_from_31_to_the_latest_without_gaps() {
        let all: Vec<_> = served().map(|(_, v)| v).collect();
        assert_eq!(all.first().map(String::as_str), Some("31.0"));
        assert_eq!(all.last().map(String::as_str), Some("68.0"));
        assert_eq!(all.len(), 68 - 31 + 1);
    }

    #[test]
    fn path_segments_are_checked() {
        assert_eq!(check("v31.0").unwrap(), "31.0");
        assert_eq!(check("v59.0").unwrap(), "59.0");
        assert_eq!(check("latest").unwrap(), "68.0");
        for gone in ["v30.0", "v21.0", "v7.0"] {
            assert_eq!(check(gone).unwrap_err().status.as_u16(), 410, "{gone}");
        }
        for missing in [
            "v99.0", "v69.0", "v6.0", "v66", "66.0", "v066.0", "v66.1", "v", "",
        ] {
            let err = check(missing).unwrap_err();
            assert_eq!(err.status.as_u16(), 404, "{missing}");
            assert_eq!(err.code, "NOT_FOUND");
        }
    }
}
