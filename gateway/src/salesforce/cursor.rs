//! Paging cursors: opaque, signed, and bound to who may use them.
//!
//! Owns: the cursor format and its MAC, and the query-path check.
//! A cursor is `<payload>.<mac>`, both base64url without padding. The
//! payload is JSON `{"v":1, "p"|"h", "o", "n", "m"?, "q"}`: where the next
//! page starts, either `p`, a Salesforce query locator path
//! (`nextRecordsUrl` verbatim) or `h`, the id of a page the gateway holds
//! (see [`super::held`]); `o`, the records of that page already returned;
//! `n`, the records returned by earlier calls; `m`, the `max_records` the
//! query started with; `q`, a digest of the query (its kind and SOQL).
//! It never carries query text or record values.
//!
//! The MAC is HMAC-SHA256 (RFC 2104) under a key derived from the master
//! key ([`crate::crypto::MasterKey::derive`], purpose
//! [`CURSOR_KEY_PURPOSE`]) over the payload and the owner: the Salesforce
//! connection id, which names the toolgate user and the server. So a
//! cursor works only for the user and connection it was issued to, and
//! an edited cursor (another locator, a query string, another offset) is
//! refused before anything reaches Salesforce.
//!
//! Must not: trust a decoded path before [`check_query_path`] (kept as a
//! second line of defence behind the MAC).
//!
//! Source: REST API Developer Guide, "Query" and "Execute a SOQL Query"
//! (`nextRecordsUrl`, e.g. `/services/data/v66.0/query/01gRO0000016PIAYA2-2000`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::SfError;
use super::held::{HeldLimits, HeldPages};

/// The longest cursor accepted (characters). Cursors carry no query text,
/// so real ones stay well under 1 KiB.
pub(crate) const MAX_CURSOR_LEN: usize = 4096;

/// The purpose the cursor MAC key is derived for
/// ([`crate::store::Store::derived_key`]).
pub const CURSOR_KEY_PURPOSE: &str = "query-cursor-mac";

const MAC_CONTEXT: &[u8] = b"toolgate query cursor v1\0";

type HmacSha256 = Hmac<Sha256>;

/// Where the next page comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A Salesforce query locator path (`nextRecordsUrl`).
    Locator(String),
    /// A page the gateway holds (the rest of a first page).
    Held(String),
}

/// Where the next page starts, and for which query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The page to read.
    pub source: Source,
    /// Records of that page already returned.
    pub offset: usize,
    /// Records returned by earlier calls of this query (for "records
    /// 201-400 of 900" in the text).
    pub returned: u64,
    /// The `max_records` the query started with, kept so that a call
    /// with only `cursor` pages the same way.
    pub max_records: Option<usize>,
    /// [`query_digest`] of the query it continues.
    pub query: String,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    v: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    h: Option<String>,
    o: usize,
    n: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    m: Option<usize>,
    q: String,
}

/// The digest that names a query in cursors and held pages: the first 16
/// bytes of SHA-256 of `<kind>\n<soql>`, as hex (`kind` is `query` or
/// `queryAll`).
pub fn query_digest(kind: &str, soql: &str) -> String {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update(b"\n");
    h.update(soql.as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// Signs and checks cursors, and holds first pages for them. One per
/// gateway; shared by every connection (each cursor names its owner).
pub struct Cursors {
    key: [u8; 32],
    held: HeldPages,
}

impl std::fmt::Debug for Cursors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cursors")
            .field("key", &"<redacted>")
            .field("held", &self.held)
            .finish()
    }
}

fn mac(key: &[u8; 32], owner: &str, payload: &str) -> HmacSha256 {
    // HMAC takes keys of any length; 32 bytes never fails.
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(MAC_CONTEXT);
    m.update(&(owner.len() as u64).to_be_bytes());
    m.update(owner.as_bytes());
    m.update(payload.as_bytes());
    m
}

impl Cursors {
    /// Cursors signed with `key` (derive it from the master key with
    /// purpose [`CURSOR_KEY_PURPOSE`]), holding pages within the default
    /// [`HeldLimits`].
    pub fn new(key: [u8; 32]) -> Self {
        Self::with_limits(key, HeldLimits::default())
    }

    /// As [`Cursors::new`], with other bounds on held pages.
    pub fn with_limits(key: [u8; 32], limits: HeldLimits) -> Self {
        Self {
            key,
            held: HeldPages::new(limits),
        }
    }

    /// The held first pages.
    pub(crate) fn held(&self) -> &HeldPages {
        &self.held
    }

    /// The opaque text handed to `owner`'s agent as `next_cursor`.
    pub fn encode(&self, owner: &str, cursor: &Cursor) -> String {
        let (p, h) = match &cursor.source {
            Source::Locator(path) => (Some(path.clone()), None),
            Source::Held(id) => (None, Some(id.clone())),
        };
        let payload = Payload {
            v: 1,
            p,
            h,
            o: cursor.offset,
            n: cursor.returned,
            m: cursor.max_records,
            q: cursor.query.clone(),
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap_or_default());
        let tag = URL_SAFE_NO_PAD.encode(mac(&self.key, owner, &payload).finalize().into_bytes());
        format!("{payload}.{tag}")
    }

    /// Reads a cursor `owner`'s agent passed back: checks its MAC, then
    /// its locator path. Errors: [`SfError::InvalidArgument`] naming
    /// `cursor`, saying whether the text is no cursor at all or a cursor
    /// that was altered or belongs to another user or connection.
    pub fn decode(&self, owner: &str, text: &str) -> Result<Cursor, SfError> {
        let not_ours = || {
            SfError::invalid(
                "cursor",
                "not a cursor from this tool; pass next_cursor exactly as a previous result returned it",
            )
        };
        let text = text.trim();
        if text.len() > MAX_CURSOR_LEN {
            return Err(not_ours());
        }
        let (payload, tag) = text.split_once('.').ok_or_else(not_ours)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| not_ours())?;
        if mac(&self.key, owner, payload).verify_slice(&tag).is_err() {
            return Err(SfError::invalid(
                "cursor",
                "this cursor was altered, or was issued to another user or Salesforce connection; pass next_cursor exactly as your own previous result returned it, or run the query again",
            ));
        }
        let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| not_ours())?;
        let p: Payload = serde_json::from_slice(&bytes).map_err(|_| not_ours())?;
        let source = match (p.v, p.p, p.h) {
            (1, Some(path), None) => {
                check_query_path(&path)?;
                Source::Locator(path)
            }
            (1, None, Some(id)) => Source::Held(id),
            _ => return Err(not_ours()),
        };
        Ok(Cursor {
            source,
            offset: p.o,
            returned: p.n,
            max_records: p.m,
            query: p.q,
        })
    }
}

/// Checks that `path` has the shape of a `nextRecordsUrl`:
/// `/services/data/vNN.N/query/<locator>` or `/queryAll/<locator>` (REST
/// API Developer Guide, "Query": e.g.
/// `/services/data/v66.0/query/01gRO0000016PIAYA2-2000`), and nothing
/// else: no query string (a `nextRecordsUrl` never has one, and `?q=`
/// would run another query), scheme, host, `..`, `//`, backslash,
/// fragment, encoded `.` or `/`, or whitespace. Errors:
/// [`SfError::InvalidArgument`] naming `cursor`.
pub(crate) fn check_query_path(path: &str) -> Result<(), SfError> {
    let reject = |why: &str| SfError::invalid("cursor", format!("the cursor is not valid: {why}"));
    let Some(rest) = path.strip_prefix("/services/data/v") else {
        return Err(reject("it does not point at a Salesforce query"));
    };
    if rest.contains('?') {
        return Err(reject(
            "it carries a query string, which a Salesforce query locator never has",
        ));
    }
    let route = rest;
    if route.contains("..")
        || route.contains("//")
        || !route
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'/' | b'.' | b'-' | b'_' | b'%'))
    {
        return Err(reject("it contains characters a query path never has"));
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
    let Some(locator) = locator else {
        return Err(reject("it names no query locator"));
    };
    if locator.is_empty()
        || !locator
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    {
        return Err(reject("the query locator is malformed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursors() -> Cursors {
        Cursors::new([7u8; 32])
    }

    fn at(path: &str) -> Cursor {
        Cursor {
            source: Source::Locator(path.into()),
            offset: 7,
            returned: 14,
            max_records: Some(7),
            query: query_digest("query", "SELECT Id FROM Account"),
        }
    }

    #[test]
    fn cursors_round_trip_for_their_owner_only() {
        let c = at("/services/data/v66.0/query/01gRO0000016PIAYA2-2000");
        let text = cursors().encode("user1.server1", &c);
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        );
        assert_eq!(cursors().decode("user1.server1", &text).unwrap(), c);
        let held = Cursor {
            source: Source::Held("abc".into()),
            ..c.clone()
        };
        let text_held = cursors().encode("user1.server1", &held);
        assert_eq!(cursors().decode("user1.server1", &text_held).unwrap(), held);
        for (owner, key) in [
            ("user2.server1", [7u8; 32]),
            ("user1.server2", [7u8; 32]),
            ("user1.server1", [8u8; 32]),
        ] {
            match Cursors::new(key).decode(owner, &text) {
                Err(SfError::InvalidArgument { field, message }) => {
                    assert_eq!(field, "cursor");
                    assert!(
                        message.contains("another user or Salesforce connection"),
                        "{message}"
                    );
                }
                other => panic!("{owner}: {other:?}"),
            }
        }
    }

    #[test]
    fn edited_cursors_are_refused() {
        let text = cursors().encode("o", &at("/services/data/v66.0/query/01g-2000"));
        let (payload, tag) = text.split_once('.').unwrap();
        // Another locator, offset or query under the old tag.
        let mut json: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        for (k, v) in [
            (
                "p",
                serde_json::json!("/services/data/v66.0/query?q=SELECT+Id,Email+FROM+Contact"),
            ),
            ("o", serde_json::json!(0)),
            ("q", serde_json::json!("00")),
        ] {
            let old = json[k].clone();
            json[k] = v;
            let forged = format!(
                "{}.{tag}",
                URL_SAFE_NO_PAD.encode(serde_json::to_vec(&json).unwrap())
            );
            assert!(
                matches!(
                    cursors().decode("o", &forged),
                    Err(SfError::InvalidArgument { .. })
                ),
                "{k}"
            );
            json[k] = old;
        }
        for junk in [
            "not a cursor!",
            "e30",
            "",
            "e30.",
            "e30.AAAA",
            &"a".repeat(5000),
        ] {
            match cursors().decode("o", junk) {
                Err(SfError::InvalidArgument { field, .. }) => assert_eq!(field, "cursor"),
                other => panic!("{junk}: {other:?}"),
            }
        }
    }

    #[test]
    fn signed_cursors_still_pass_the_path_check() {
        for path in [
            "https://evil.example/services/data/v66.0/query/01g-1",
            "/services/data/v66.0/sobjects/Account/001",
            "/services/data/v66.0/query/../sobjects/Account",
        ] {
            let text = cursors().encode("o", &at(path));
            assert!(
                matches!(
                    cursors().decode("o", &text),
                    Err(SfError::InvalidArgument { .. })
                ),
                "{path}"
            );
        }
    }

    #[test]
    fn query_digests_name_kind_and_text() {
        let a = query_digest("query", "SELECT Id FROM Account");
        assert_eq!(a.len(), 32);
        assert_ne!(a, query_digest("queryAll", "SELECT Id FROM Account"));
        assert_ne!(a, query_digest("query", "SELECT Id FROM Contact"));
    }

    #[test]
    fn forged_paths_are_rejected() {
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
            // A nextRecordsUrl never has a query string or lacks a locator.
            "/services/data/v66.0/query?q=SELECT+Id+FROM+Account",
            "/services/data/v66.0/queryAll?q=SELECT+Id+FROM+Account",
            "/services/data/v66.0/query/01g-2000?q=SELECT+Id+FROM+Contact",
            "/services/data/v66.0/query/01g-2000?",
            "/services/data/v66.0/query",
            "/services/data/v66.0/query/",
        ] {
            match check_query_path(path) {
                Err(SfError::InvalidArgument { field, .. }) => {
                    assert_eq!(field, "cursor", "{path}")
                }
                other => panic!("{path}: {other:?}"),
            }
        }
    }

    #[test]
    fn valid_query_paths_pass() {
        for path in [
            "/services/data/v66.0/query/01gRO0000016PIAYA2-2000",
            "/services/data/v66.0/queryAll/01gRO0000016PIAYA2-3",
            "/services/data/v9.0/query/01g_x-2000",
        ] {
            assert!(check_query_path(path).is_ok(), "{path}");
        }
    }
}
