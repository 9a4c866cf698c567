//! A set of record writes applied atomically: as one sled batch, or as a
//! single key write when there is only one.

use super::{
    AUDIT_PREFIX, Entity, META_PREFIX, SECRET_PREFIX, SETTINGS_KEY, StoreError, TOKEN_HASH_PREFIX,
    audit_key, encode,
};
use crate::crypto::MasterKey;
use crate::model::{AuditEvent, Settings};

enum Op {
    Put(String, Vec<u8>),
    Remove(String),
    PutSecret(String, Vec<u8>),
}

/// Writes collected by an admin change, applied together by
/// [`super::Store::write`]: all of them land, or (on error or crash) none.
#[derive(Default)]
pub struct Batch {
    ops: Vec<Op>,
    events: Vec<AuditEvent>,
}

impl Batch {
    /// Whether it writes or removes a key starting with one of `prefixes`.
    pub fn writes_under(&self, prefixes: &[&str]) -> bool {
        self.ops.iter().any(|op| {
            let key = match op {
                Op::Put(key, _) | Op::Remove(key) => key.as_str(),
                // Stored under `secret/<record key>`: never a policy record.
                Op::PutSecret(..) => return false,
            };
            prefixes.iter().any(|prefix| key.starts_with(prefix))
        })
    }
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("ops", &self.ops.len())
            .field("events", &self.events.len())
            .finish()
    }
}

impl Batch {
    /// Writes (inserts or replaces) a record.
    pub fn put<E: Entity>(&mut self, record: &E) {
        self.ops.push(Op::Put(
            format!("{}{}", E::PREFIX, record.id()),
            encode(record),
        ));
    }

    /// Deletes a record by id (no error if absent).
    pub fn delete<E: Entity>(&mut self, id: &str) {
        self.ops.push(Op::Remove(format!("{}{id}", E::PREFIX)));
    }

    /// Writes the settings.
    pub fn put_settings(&mut self, settings: &Settings) {
        self.ops
            .push(Op::Put(SETTINGS_KEY.to_owned(), encode(settings)));
    }

    /// Maps a token hash to its token id.
    pub fn put_token_hash(&mut self, hash: &str, token_id: &str) {
        self.ops.push(Op::Put(
            format!("{TOKEN_HASH_PREFIX}{hash}"),
            encode(&token_id),
        ));
    }

    /// Removes a token hash mapping.
    pub fn delete_token_hash(&mut self, hash: &str) {
        self.ops
            .push(Op::Remove(format!("{TOKEN_HASH_PREFIX}{hash}")));
    }

    /// Seals `plaintext` under `record_key` and writes it. The plaintext is
    /// sealed when the batch is applied and never stored as is.
    pub fn put_secret(&mut self, record_key: &str, plaintext: &[u8]) {
        self.ops
            .push(Op::PutSecret(record_key.to_owned(), plaintext.to_vec()));
    }

    /// Deletes a sealed secret.
    pub fn delete_secret(&mut self, record_key: &str) {
        self.ops
            .push(Op::Remove(format!("{SECRET_PREFIX}{record_key}")));
    }

    /// Writes a metadata value.
    pub fn put_meta(&mut self, name: &str, value: &str) {
        self.ops
            .push(Op::Put(format!("{META_PREFIX}{name}"), encode(&value)));
    }

    /// Appends an audit event; its sequence number is assigned on apply.
    pub fn audit(&mut self, event: AuditEvent) {
        self.events.push(event);
    }

    /// Whether the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.events.is_empty()
    }

    pub(super) fn into_sled(
        self,
        key: &MasterKey,
        mut next_seq: impl FnMut() -> u64,
    ) -> Result<(Writes, Vec<AuditEvent>), StoreError> {
        let mut batch = Writes::default();
        for op in self.ops {
            match op {
                Op::Put(k, v) => batch.insert(k.into_bytes(), v),
                Op::Remove(k) => batch.remove(k.into_bytes()),
                Op::PutSecret(record_key, plaintext) => {
                    let mut value = vec![super::FORMAT_VERSION];
                    value.extend(key.seal(record_key.as_bytes(), &plaintext)?);
                    batch.insert(format!("{SECRET_PREFIX}{record_key}"), value);
                }
            }
        }
        let mut events = self.events;
        let now = crate::model::now_ms();
        for event in &mut events {
            event.sequence = next_seq();
            // Stamped at commit so that time order follows sequence order.
            event.time = now;
            debug_assert!(audit_key(event.sequence).starts_with(AUDIT_PREFIX));
            batch.insert(audit_key(event.sequence), encode(&*event));
        }
        Ok((batch, events))
    }
}

/// The key writes of a [`Batch`], ready to apply.
#[derive(Default)]
pub(super) struct Writes {
    /// Key, and the new value (`None` removes the key).
    ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl Writes {
    fn insert(&mut self, key: impl Into<Vec<u8>>, value: Vec<u8>) {
        self.ops.push((key.into(), Some(value)));
    }

    fn remove(&mut self, key: impl Into<Vec<u8>>) {
        self.ops.push((key.into(), None));
    }

    /// Applies the writes atomically. A single write goes straight to the
    /// tree (atomic on its own): a sled batch writes its log buffer out
    /// each time (`pin_log` rolls the buffer before and after), which made
    /// every tool call's lone audit event cost a disk write.
    pub(super) fn apply(self, db: &sled::Db) -> Result<(), sled::Error> {
        let mut ops = self.ops;
        if ops.len() == 1 {
            let (key, value) = ops.remove(0);
            match value {
                Some(value) => db.insert(key, value)?,
                None => db.remove(key)?,
            };
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for (key, value) in ops {
            match value {
                Some(value) => batch.insert(key, value),
                None => batch.remove(key),
            }
        }
        db.apply_batch(batch)
    }
}
