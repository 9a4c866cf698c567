//! Opaque paging cursors.
//!
//! Owns: the cursor format, base64url (no padding) of
//! `{"p": "<path>", "o": <offset>, "n": <returned>, "m": <max_records>?}`, where `p` is a query path on the
//! instance (Salesforce's `nextRecordsUrl` verbatim, or the first page's
//! `/query?q=...` when a call stopped inside it) and `o` the number of
//! that page's records already returned (`n`: records returned by earlier
//! calls, for display only; `m`: the page size the agent asked for). Owns the check that a path is a
//! `/services/data/vNN.N/query...` or `.../queryAll...` path, so a forged
//! cursor can neither leave the instance nor reach another resource.
//!
//! Must not: hold anything secret (a cursor is shown to the agent) or
//! trust a decoded path before [`check_query_path`].
//!
//! Source: REST API Developer Guide, "Query" and "Execute a SOQL Query"
//! (`nextRecordsUrl`, e.g. `/services/data/v66.0/query/01gRO0000016PIAYA2-2000`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::SfError;

/// The longest cursor accepted (characters); a first-page cursor carries
/// the SOQL (up to 100,000 characters, URL-encoded).
pub const MAX_CURSOR_LEN: usize = 512 * 1024;

/// Where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// A query path on the instance, with its query string.
    #[serde(rename = "p")]
    pub path: String,
    /// Records of that page already returned.
    #[serde(rename = "o", default)]
    pub offset: usize,
    /// Records returned by earlier calls of this query (for "records
    /// 201-400 of 900" in the text).
    #[serde(rename = "n", default)]
    pub returned: u64,
    /// The `max_records` the query started with, kept so that a call
    /// with only `cursor` pages the same way.
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    pub max_records: Option<usize>,
}

impl Cursor {
    /// The opaque text handed to the agent as `next_cursor`.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    /// Reads a cursor the agent passed back and checks its path. Errors:
    /// [`SfError::InvalidArgument`] naming `cursor`.
    pub fn decode(text: &str) -> Result<Self, SfError> {
        let bad = || {
            SfError::invalid(
                "cursor",
                "not a cursor from this tool; pass next_cursor exactly as a previous result returned it",
            )
        };
        if text.len() > MAX_CURSOR_LEN {
            return Err(bad());
        }
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| bad())?;
        let cursor: Self = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        check_query_path(&cursor.path)?;
        Ok(cursor)
    }
}

/// Checks that `path` is `/services/data/vNN.N/query` or `/queryAll`,
/// followed by nothing, `/<locator>` or `?<form-encoded query string>`:
/// no scheme, host, `..`, `//`, backslash, fragment, encoded `.` or `/`,
/// or whitespace. Errors: [`SfError::InvalidArgument`] naming `cursor`.
pub fn check_query_path(path: &str) -> Result<(), SfError> {
    let reject = |why: &str| SfError::invalid("cursor", format!("the cursor is not valid: {why}"));
    let Some(rest) = path.strip_prefix("/services/data/v") else {
        return Err(reject("it does not point at a Salesforce query"));
    };
    let (route, query) = match rest.split_once('?') {
        Some((route, query)) => (route, Some(query)),
        None => (rest, None),
    };
    if route.contains("..")
        || route.contains("//")
        || !route
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'/' | b'.' | b'-' | b'_' | b'%'))
    {
        return Err(reject("it contains characters a query path never has"));
    }
    // A query string as `application/x-www-form-urlencoded` writes it.
    if let Some(query) = query
        && !query.bytes().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, b'*' | b'-' | b'.' | b'_' | b'+' | b'%' | b'=' | b'&')
        })
    {
        return Err(reject("its query string is malformed"));
    }
    let lower = route.to_ascii_lowercase();
    if lower.contains("%2e") || lower.contains("%2f") || lower.contains("%5c") {
        return Err(reject("it contains encoded path characters"));
    }
    let mut parts = route.splitn(3, '/');
    let version = parts.next().unwrap_or_default();
    let kind = parts.next().unwrap_or_default();
    let locator = parts.next();
    let version_ok = version.split_once('.').is_some_and(|(a, b)| {
        !a.is_empty() && !b.is_empty() && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
    });
    if !version_ok || !matches!(kind, "query" | "queryAll") {
        return Err(reject("it does not point at a Salesforce query"));
    }
    if let Some(locator) = locator
        && (locator.is_empty()
            || !locator
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'))
    {
        return Err(reject("the query locator is malformed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let c = Cursor {
            path: "/services/data/v66.0/query/01gRO0000016PIAYA2-2000".into(),
            offset: 7,
            returned: 14,
            max_records: Some(7),
        };
        let text = c.encode();
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(Cursor::decode(&text).unwrap(), c);
        let first = Cursor {
            path: "/services/data/v66.0/queryAll?q=SELECT+Id+FROM+Account+WHERE+Name+%3D+%27O%5C%27B%27".into(),
            offset: 3,
            returned: 0,
            max_records: None,
        };
        assert_eq!(Cursor::decode(&first.encode()).unwrap(), first);
    }

    #[test]
    fn forged_cursors_are_rejected() {
        for path in [
            "https://evil.example/services/data/v66.0/query/01g-1",
            "//evil.example/services/data/v66.0/query/01g-1",
            "/services/data/v66.0/sobjects/Account/001",
            "/services/data/v66.0/query/../sobjects/Account",
            "/services/data/v66.0/query/%2e%2e/sobjects",
            "/services/data/v66.0/query/01g-1/extra",
            "/services/data/v66.0/queryX",
            "/services/data/vX/query",
            "/services/data/v66.0/query\\..\\x",
            "/services/data/v66.0/query#x",
            "/services/oauth2/userinfo",
            "@evil.example/services/data/v66.0/query",
            "/services/data/v66.0/query?q=x#frag",
            "/services/data/v66.0/query?q=a b",
        ] {
            let forged = Cursor {
                path: path.into(),
                offset: 0,
                returned: 0,
                max_records: None,
            };
            match Cursor::decode(&forged.encode()) {
                Err(SfError::InvalidArgument { field, .. }) => {
                    assert_eq!(field, "cursor", "{path}")
                }
                other => panic!("{path}: {other:?}"),
            }
        }
        for junk in ["not base64!", "e30", "", "W10"] {
            assert!(
                matches!(Cursor::decode(junk), Err(SfError::InvalidArgument { .. })),
                "{junk}"
            );
        }
    }

    #[test]
    fn valid_query_paths_pass() {
        for path in [
            "/services/data/v66.0/query",
            "/services/data/v66.0/query?q=SELECT+Id+FROM+Account",
            "/services/data/v66.0/queryAll/01gRO0000016PIAYA2-3",
            "/services/data/v9.0/query/01g_x-2000",
            "/services/data/v66.0/query?q=SELECT+Id+FROM+Account+WHERE+Name+%3D+%27..%27",
        ] {
            assert!(check_query_path(path).is_ok(), "{path}");
        }
    }
}
