//! The audit hash chain: tamper evidence for the audit log.
//!
//! Every event the store appends carries `hash`, the lowercase hex of
//!
//! ```text
//! SHA-256( prev || canonical(event) )
//! ```
//!
//! where `prev` is the 32 raw bytes of the previous event's hash (32 zero
//! bytes before the first chained event, or the hash recorded in the
//! retention anchor once older events were pruned), and `canonical(event)`
//! is the UTF-8 JSON text of the array
//!
//! ```text
//! [sequence, time, actor, action, target, outcome, reason, latency_ms, details]
//! ```
//!
//! with no whitespace, object keys sorted by their UTF-8 bytes at every
//! depth, strings escaped as JSON requires (`"`, `\`, and control
//! characters; `\n`, `\r`, `\t`, `\b`, `\f` in short form, the rest as
//! `\u00XX` in lowercase hex; everything else as-is, not `\u`-escaped),
//! `time` in Unix milliseconds and `outcome` as stored (`ALLOWED`, `DENIED`,
//! `ERROR`). Python's `json.dumps(value, sort_keys=True,
//! separators=(",", ":"), ensure_ascii=False)` writes the same bytes for
//! every event toolgate writes (their numbers are integers); see
//! docs/audit-export.md for a verifier.
//!
//! The encoding is computed from parsed values, never from stored bytes, so
//! it is the same on both backends (PostgreSQL's `json` column keeps text
//! as written, the embedded store its own serialisation) and after
//! `toolgated store copy`.
//!
//! What it proves: an event edited, removed from the middle, or reordered
//! after it was written breaks the chain at that event, and
//! [`Store::verify_audit_chain`] names it. What it does not prove: someone
//! able to write the database can rewrite every hash after an edit; export
//! the events (or at least the newest hash) to a separate system to anchor
//! them (docs/security.md).

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Store, StoreError};
use crate::model::AuditEvent;

/// The `prev` of the first chained event: 32 zero bytes.
pub const GENESIS: [u8; 32] = [0; 32];

/// The metadata record (`meta/audit_anchor`) that names the newest event
/// pruned by retention: `<sequence>:<hash hex>`.
pub const ANCHOR_META: &str = "audit_anchor";

/// Events read per step by [`Store::verify_audit_chain`].
const VERIFY_PAGE: usize = 1000;

/// Where the kept audit log starts: the newest event pruned by retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// Its sequence number: every event up to it was pruned.
    pub sequence: u64,
    /// Its hash (lowercase hex; empty if it predates the chain).
    pub hash: String,
}

impl Anchor {
    /// The metadata value: `<sequence>:<hash>`.
    pub(crate) fn encode(&self) -> String {
        format!("{}:{}", self.sequence, self.hash)
    }

    /// Parses [`Anchor::encode`]'s form.
    ///
    /// Errors: [`StoreError::Corrupt`] if it is not that form.
    pub(crate) fn decode(value: &str) -> Result<Self, StoreError> {
        let corrupt = || StoreError::Corrupt {
            key: format!("meta/{ANCHOR_META}"),
            reason: "not <sequence>:<hash>".into(),
        };
        let (seq, hash) = value.split_once(':').ok_or_else(corrupt)?;
        Ok(Self {
            sequence: seq.parse().map_err(|_| corrupt())?,
            hash: hash.to_owned(),
        })
    }
}

/// The canonical encoding of `event` that its hash covers (module docs).
pub fn canonical_bytes(event: &AuditEvent) -> Vec<u8> {
    let outcome = match serde_json::to_value(event.outcome) {
        Ok(Value::String(name)) => name,
        _ => String::new(),
    };
    let mut out = Vec::with_capacity(256);
    out.push(b'[');
    out.extend_from_slice(event.sequence.to_string().as_bytes());
    out.push(b',');
    out.extend_from_slice(event.time.to_string().as_bytes());
    for text in [
        &event.actor,
        &event.action,
        &event.target,
        &outcome,
        &event.reason,
    ] {
        out.push(b',');
        write_string(&mut out, text);
    }
    out.push(b',');
    out.extend_from_slice(event.latency_ms.to_string().as_bytes());
    out.push(b',');
    write_value(&mut out, &event.details);
    out.push(b']');
    out
}

fn write_string(out: &mut Vec<u8>, text: &str) {
    // serde_json escapes exactly as the module docs say.
    out.extend_from_slice(&serde_json::to_vec(text).expect("a string serialises"));
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(out, key);
                out.push(b':');
                write_value(out, value);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

/// The hash of `event` following `prev` (raw bytes), as lowercase hex.
pub fn link_hash(prev: &[u8; 32], event: &AuditEvent) -> String {
    hex::encode(link_bytes(prev, event))
}

fn link_bytes(prev: &[u8; 32], event: &AuditEvent) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(prev);
    hasher.update(canonical_bytes(event));
    hasher.finalize().into()
}

/// The raw bytes of a stored hash; [`GENESIS`] for an empty or malformed
/// one (an event stored before the chain).
pub(crate) fn hash_bytes(hash: &str) -> [u8; 32] {
    let mut out = GENESIS;
    if hex::decode_to_slice(hash, &mut out).is_err() {
        return GENESIS;
    }
    out
}

/// Numbers nothing; hashes `events` (already numbered and stamped) in
/// order after `prev`, and returns the new last hash.
pub(crate) fn chain(prev: [u8; 32], events: &mut [AuditEvent]) -> [u8; 32] {
    let mut prev = prev;
    for event in events {
        prev = link_bytes(&prev, event);
        event.hash = hex::encode(prev);
    }
    prev
}

/// What [`Store::verify_audit_chain`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainReport {
    /// Every kept event links to the one before it.
    Intact {
        /// Events checked (including those that predate the chain).
        events: u64,
        /// The first and last kept sequence numbers (`None`: no events).
        range: Option<(u64, u64)>,
        /// Kept events stored before the chain existed, first and last:
        /// they carry no hash and are not covered.
        predate: Option<(u64, u64)>,
        /// The retention anchor the walk started from.
        anchor: Option<Anchor>,
    },
    /// The first broken link, in words (names the event).
    Broken(String),
}

impl std::fmt::Display for ChainReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainReport::Intact {
                events,
                range,
                predate,
                anchor,
            } => {
                write!(f, "audit chain intact: {events} events")?;
                if let Some((first, last)) = range {
                    write!(f, ", #{first}..#{last}")?;
                }
                if let Some(anchor) = anchor {
                    write!(
                        f,
                        " (events up to #{} were pruned by retention; the chain starts from its recorded hash)",
                        anchor.sequence
                    )?;
                }
                if let Some((first, last)) = predate {
                    write!(
                        f,
                        "; events {first}..{last} predate the chain and are not covered"
                    )?;
                }
                Ok(())
            }
            ChainReport::Broken(message) => f.write_str(message),
        }
    }
}

fn describe(event: &AuditEvent) -> String {
    let time = chrono::DateTime::from_timestamp_millis(event.time)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| event.time.to_string());
    format!("event #{} ({} at {time})", event.sequence, event.action)
}

impl Store {
    /// The retention anchor, if events were ever pruned.
    ///
    /// Errors: a read error, or [`StoreError::Corrupt`] if it does not parse.
    pub async fn audit_anchor(&self) -> Result<Option<Anchor>, StoreError> {
        self.meta(ANCHOR_META)
            .await?
            .map(|value| Anchor::decode(&value))
            .transpose()
    }

    /// Walks the audit chain from the retention anchor (or the first
    /// event) up to the newest event published when it starts, reading
    /// [`VERIFY_PAGE`] events at a time, and reports the first broken link
    /// or that every link holds. A broken chain is `Ok(Broken)`; `Err` is
    /// a failure to read.
    pub async fn verify_audit_chain(&self) -> Result<ChainReport, StoreError> {
        let anchor = self.audit_anchor().await?;
        let last = self.last_audit_sequence();
        let mut prev = anchor.as_ref().map_or(GENESIS, |a| hash_bytes(&a.hash));
        let mut expected = anchor.as_ref().map_or(1, |a| a.sequence + 1);
        let mut count = 0u64;
        let mut first = None;
        let mut predate: Option<(u64, u64)> = None;
        let mut chained = false;
        while expected <= last {
            let page = self.audit_forward(expected, last, VERIFY_PAGE).await?;
            if page.is_empty() {
                break;
            }
            for event in page {
                if event.sequence != expected {
                    return Ok(ChainReport::Broken(format!(
                        "event #{} does not follow #{}: events are missing or reordered",
                        event.sequence,
                        expected - 1
                    )));
                }
                if event.hash.is_empty() {
                    if chained {
                        return Ok(ChainReport::Broken(format!(
                            "{} was altered: it has no hash but follows chained events",
                            describe(&event)
                        )));
                    }
                    predate = Some((predate.map_or(event.sequence, |p| p.0), event.sequence));
                } else {
                    chained = true;
                    if link_hash(&prev, &event) != event.hash {
                        return Ok(ChainReport::Broken(format!(
                            "{} was altered: its hash does not match its contents",
                            describe(&event)
                        )));
                    }
                    prev = hash_bytes(&event.hash);
                }
                first.get_or_insert(event.sequence);
                count += 1;
                expected = event.sequence + 1;
            }
        }
        if expected <= last {
            return Ok(ChainReport::Broken(format!(
                "events #{expected}..#{last} are missing: the log was numbered up to #{last}"
            )));
        }
        Ok(ChainReport::Intact {
            events: count,
            range: first.map(|f| (f, expected - 1)),
            predate,
            anchor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Outcome;

    /// The bytes and hash Python's `json.dumps(..., sort_keys=True,
    /// separators=(",", ":"), ensure_ascii=False)` and `hashlib.sha256`
    /// give for the same event (the verifier in docs/audit-export.md).
    #[test]
    fn the_encoding_and_hash_match_the_documented_python_verifier() {
        let event = AuditEvent {
            sequence: 7,
            time: 1_796_673_662_000,
            actor: "user:ä@example.com".into(),
            action: "tool.call".into(),
            target: "tool/x".into(),
            outcome: Outcome::Allowed,
            reason: "line\n\"q\"\u{1}".into(),
            latency_ms: 84,
            details: serde_json::json!({"z": 1, "a": {"c": "é\t", "b": [1, null, true]}}),
            hash: String::new(),
        };
        assert_eq!(
            String::from_utf8(canonical_bytes(&event)).unwrap(),
            r#"[7,1796673662000,"user:ä@example.com","tool.call","tool/x","ALLOWED","line\n\"q\"\u0001",84,{"a":{"b":[1,null,true],"c":"é\t"},"z":1}]"#
        );
        let first = link_hash(&GENESIS, &event);
        assert_eq!(
            first,
            "689bee2915cf97c859f6872fa10c04d47b2f65900fbd0735e052f7aa0b9273dc"
        );
        assert_eq!(
            link_hash(&hash_bytes(&first), &event),
            "7641e7524b3e67c3e16793dad90dd9be1220aea41ea11b982c15eee509758e81"
        );
    }
}
