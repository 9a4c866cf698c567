//! Pages the gateway holds for a cursor: the rest of a query's first
//! Salesforce page when a call stopped inside it.
//!
//! Why: Salesforce gives a query locator (`nextRecordsUrl`) only for the
//! records after its first batch, and none at all when the whole result
//! fits in one batch (`done: true`). When a call stops inside that first
//! page (`max_records` below Salesforce's minimum batch of 200, or the
//! byte cap), the only ways to continue are to run the query again
//! (rows inserted or deleted meanwhile would repeat or vanish) or to keep
//! what Salesforce already sent. This module keeps it, like Salesforce
//! keeps a locator: per owner (the connection), for [`HeldLimits::ttl`]
//! after its last use (Salesforce: 15 minutes), at most
//! [`HeldLimits::per_owner`] per owner (Salesforce: 10 open cursors per
//! user, the oldest goes) and [`HeldLimits::max_bytes`] in all (the least
//! recently used goes first). A page that is gone reads as expired.
//!
//! Must not: hold anything but records Salesforce returned to that owner,
//! or hand them to another owner or query. Records are kept as JSON text,
//! so the byte bound is the memory actually held (plus small overhead).
//!
//! Source: REST API Developer Guide, "Query" (`nextRecordsUrl`, `done`)
//! and "Query Options Header" (batch size 200 to 2,000); SOAP API
//! Developer Guide, "queryMore()" (locators expire after 15 minutes of
//! inactivity; 10 open cursors per user).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::SfError;

/// Bounds on held pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldLimits {
    /// A page is dropped this long after its last use (default 15 min).
    pub ttl: Duration,
    /// Most pages per owner; holding another drops the owner's oldest
    /// (default 10).
    pub per_owner: usize,
    /// Most bytes of record JSON held in all (default 128 MiB; a page is
    /// at most one Salesforce answer, itself at most 64 MiB).
    pub max_bytes: usize,
}

impl Default for HeldLimits {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(15 * 60),
            per_owner: 10,
            max_bytes: 128 * 1024 * 1024,
        }
    }
}

/// A held page, as read back.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HeldPage {
    /// The records not yet returned when the page was held, as one JSON
    /// array of the records as Salesforce sent them (with `attributes`),
    /// in Salesforce's order.
    pub records: Bytes,
    /// Salesforce's `nextRecordsUrl` after this page, if the query had
    /// more.
    pub next: Option<String>,
    /// Salesforce's `totalSize` of the query.
    pub total_size: u64,
}

struct Entry {
    owner: String,
    query: String,
    /// The records as one JSON array.
    json: Bytes,
    next: Option<String>,
    total_size: u64,
    last_used: Instant,
    serial: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    bytes: usize,
    serial: u64,
}

impl Inner {
    fn remove(&mut self, id: &str) {
        if let Some(e) = self.entries.remove(id) {
            self.bytes -= e.json.len();
        }
    }

    /// The id of the entry matching `keep` with the smallest key.
    fn oldest(
        &self,
        keep: impl Fn(&Entry) -> bool,
        key: impl Fn(&Entry) -> (Instant, u64),
    ) -> Option<String> {
        self.entries
            .iter()
            .filter(|(_, e)| keep(e))
            .min_by_key(|(_, e)| key(e))
            .map(|(id, _)| id.clone())
    }
}

/// The held pages of one gateway.
pub(crate) struct HeldPages {
    limits: HeldLimits,
    // A std mutex: every critical section is a map operation, never held
    // across an await.
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for HeldPages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("HeldPages")
            .field("limits", &self.limits)
            .field("pages", &inner.entries.len())
            .field("bytes", &inner.bytes)
            .finish()
    }
}

impl HeldPages {
    /// An empty store with these bounds.
    pub(crate) fn new(limits: HeldLimits) -> Self {
        Self {
            limits,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn expire(&self, inner: &mut Inner, now: Instant) {
        let ttl = self.limits.ttl;
        let dead: Vec<String> = inner
            .entries
            .iter()
            .filter(|(_, e)| now.saturating_duration_since(e.last_used) >= ttl)
            .map(|(id, _)| id.clone())
            .collect();
        for id in dead {
            inner.remove(&id);
        }
    }

    /// Holds `records` (one JSON array of the rest of a page, as
    /// Salesforce sent them) for `owner` and `query` and returns the
    /// page's id (random, 43 characters). Errors:
    /// [`SfError::InvalidArgument`] (field `max_records`) when the records
    /// alone exceed [`HeldLimits::max_bytes`].
    pub(crate) fn hold(
        &self,
        owner: &str,
        query: &str,
        records: Vec<u8>,
        next: Option<String>,
        total_size: u64,
    ) -> Result<String, SfError> {
        let json = Bytes::from(records);
        if json.len() > self.limits.max_bytes {
            return Err(SfError::invalid(
                "max_records",
                "the rest of Salesforce's first page is too large to keep for a cursor; ask for fewer fields, or a larger max_records",
            ));
        }
        let id = crate::crypto::random_token("").unwrap_or_else(|_| crate::model::new_id());
        let now = Instant::now();
        let mut inner = self.lock();
        self.expire(&mut inner, now);
        while inner.entries.values().filter(|e| e.owner == owner).count()
            >= self.limits.per_owner.max(1)
        {
            match inner.oldest(|e| e.owner == owner, |e| (e.last_used, e.serial)) {
                Some(oldest) => inner.remove(&oldest),
                None => break,
            }
        }
        while inner.bytes + json.len() > self.limits.max_bytes {
            match inner.oldest(|_| true, |e| (e.last_used, e.serial)) {
                Some(oldest) => inner.remove(&oldest),
                None => break,
            }
        }
        inner.serial += 1;
        inner.bytes += json.len();
        let serial = inner.serial;
        inner.entries.insert(
            id.clone(),
            Entry {
                owner: owner.to_owned(),
                query: query.to_owned(),
                json,
                next,
                total_size,
                last_used: now,
                serial,
            },
        );
        Ok(id)
    }

    /// The page `id` if it is live and was held for `owner` and `query`
    /// (marked used now); `None` otherwise.
    pub(crate) fn get(&self, owner: &str, query: &str, id: &str) -> Option<HeldPage> {
        let now = Instant::now();
        let mut inner = self.lock();
        self.expire(&mut inner, now);
        let entry = inner
            .entries
            .get_mut(id)
            .filter(|e| e.owner == owner && e.query == query)?;
        entry.last_used = now;
        Some(HeldPage {
            records: entry.json.clone(),
            next: entry.next.clone(),
            total_size: entry.total_size,
        })
    }

    /// How many pages and bytes are held now.
    #[cfg(test)]
    pub(crate) fn usage(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.entries.len(), inner.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows(n: usize) -> Vec<u8> {
        let rows: Vec<_> = (0..n)
            .map(|i| json!({"Id": format!("001{i:015}")}))
            .collect();
        serde_json::to_vec(&rows).unwrap()
    }

    #[test]
    fn a_page_is_read_back_only_by_its_owner_and_query() {
        let held = HeldPages::new(HeldLimits::default());
        let id = held
            .hold(
                "u1.s1",
                "q1",
                rows(3),
                Some("/services/data/v66.0/query/01g-5".into()),
                9,
            )
            .unwrap();
        assert_eq!(id.len(), 43);
        let page = held.get("u1.s1", "q1", &id).unwrap();
        assert_eq!(page.records, rows(3));
        assert_eq!(
            page.next.as_deref(),
            Some("/services/data/v66.0/query/01g-5")
        );
        assert_eq!(page.total_size, 9);
        assert!(held.get("u2.s1", "q1", &id).is_none(), "another owner");
        assert!(held.get("u1.s1", "q2", &id).is_none(), "another query");
        assert!(held.get("u1.s1", "q1", "nope").is_none());
        assert!(
            held.get("u1.s1", "q1", &id).is_some(),
            "reads do not consume"
        );
    }

    #[test]
    fn pages_expire_and_owners_keep_at_most_their_limit() {
        let expired = HeldPages::new(HeldLimits {
            ttl: Duration::ZERO,
            ..HeldLimits::default()
        });
        let id = expired.hold("o", "q", rows(1), None, 1).unwrap();
        assert!(expired.get("o", "q", &id).is_none());
        assert_eq!(expired.usage(), (0, 0));

        let held = HeldPages::new(HeldLimits {
            per_owner: 2,
            ..HeldLimits::default()
        });
        let a = held.hold("o", "q", rows(1), None, 1).unwrap();
        let b = held.hold("o", "q", rows(1), None, 1).unwrap();
        let other = held.hold("p", "q", rows(1), None, 1).unwrap();
        let c = held.hold("o", "q", rows(1), None, 1).unwrap();
        assert!(held.get("o", "q", &a).is_none(), "the owner's oldest went");
        for (owner, id) in [("o", &b), ("o", &c), ("p", &other)] {
            assert!(held.get(owner, "q", id).is_some());
        }
    }

    #[test]
    fn the_byte_bound_drops_the_least_recently_used_and_refuses_a_giant() {
        let one = rows(10).len();
        let held = HeldPages::new(HeldLimits {
            max_bytes: one * 2,
            ..HeldLimits::default()
        });
        let a = held.hold("o1", "q", rows(10), None, 10).unwrap();
        let b = held.hold("o2", "q", rows(10), None, 10).unwrap();
        assert!(
            held.get("o1", "q", &a).is_some(),
            "a is now the most recent"
        );
        let c = held.hold("o3", "q", rows(10), None, 10).unwrap();
        assert!(held.get("o2", "q", &b).is_none());
        assert!(held.get("o1", "q", &a).is_some() && held.get("o3", "q", &c).is_some());
        assert_eq!(held.usage(), (2, one * 2));
        assert!(matches!(
            held.hold("o4", "q", rows(30), None, 30),
            Err(SfError::InvalidArgument { .. })
        ));
    }
}
