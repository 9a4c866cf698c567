//! Tests of the store. `contract` runs one suite against both backends;
//! `replicas` holds what only PostgreSQL does (schema, several replicas on
//! one database); the tests here are about the embedded store itself.

mod contract;
mod replicas;

use super::*;
use crate::model::{AuditEvent, User, UserStatus};

fn user(id: &str, email: &str) -> User {
    User {
        id: id.into(),
        email: email.into(),
        display_name: email.into(),
        status: UserStatus::Active,
        created_at: 1,
        updated_at: 1,
    }
}

fn open(dir: &Path) -> Store {
    let lock = DirLock::acquire(dir).unwrap();
    Store::open(
        dir,
        MasterKey::parse(&"11".repeat(32), "test").unwrap(),
        lock,
    )
    .unwrap()
}

#[test]
fn second_open_of_the_same_directory_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let _first = open(dir.path());
    let err = DirLock::acquire(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Locked(_)));
    assert!(err.to_string().contains("in use by another toolgated"));
}

#[tokio::test]
async fn values_carry_the_format_version_and_newer_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .write(|_| async {
            let mut batch = Batch::default();
            batch.put(&user("u1", "a@example.com"));
            batch.put_secret("server/s1/client_secret", b"plain-consumer-secret");
            Ok::<_, StoreError>((batch, ()))
        })
        .await
        .unwrap();
    drop(store);
    {
        let db = sled::open(dir.path().join("db")).unwrap();
        let raw = db.get("user/u1").unwrap().unwrap();
        assert_eq!(raw[0], FORMAT_VERSION);
        let mut newer = raw.to_vec();
        newer[0] = FORMAT_VERSION + 1;
        db.insert("user/u1", newer).unwrap();
        // The sealed secret moved under another record key.
        let sealed = db.get("secret/server/s1/client_secret").unwrap().unwrap();
        assert!(!sealed.windows(21).any(|w| w == b"plain-consumer-secret"));
        db.insert("secret/server/s2/client_secret", sealed).unwrap();
        db.flush().unwrap();
    }
    let store = open(dir.path());
    let err = store.get::<User>("u1").await.unwrap_err();
    assert!(matches!(
        err,
        StoreError::UnsupportedVersion { version: 2, .. }
    ));
    assert!(store.secret("server/s1/client_secret").await.is_ok());
    assert!(
        store.secret("server/s2/client_secret").await.is_err(),
        "a sealed value opens only under its own record key"
    );
}

#[tokio::test]
async fn lone_audit_appends_are_readable_at_once_and_survive_closing() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        let mut rx = store.subscribe();
        for i in 0..3 {
            store
                .append_audit(vec![AuditEvent::allowed(
                    "user:a@example.com",
                    "tool.call",
                    format!("tool/t{i}"),
                )])
                .await
                .unwrap();
        }
        assert_eq!(rx.recv().await.unwrap().target, "tool/t0");
        let (page, _) = store.audit_page(None, 10, |_| true).await.unwrap();
        assert_eq!(page.len(), 3, "readable before any flush");
        // Closing the store flushes what the background flusher has not.
    }
    let store = open(dir.path());
    assert_eq!(store.last_audit_sequence(), 3);
    let (page, more) = store.audit_page(None, 10, |_| true).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.target.as_str()).collect::<Vec<_>>(),
        ["tool/t2", "tool/t1", "tool/t0"]
    );
    assert!(!more);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_audit_flusher_keeps_flushing_while_writers_saturate_the_store() {
    // Four writers append tool-call events as fast as they can until the
    // background flusher has completed five flushes after they started:
    // a flusher starved by the writers (or waiting on them) never gets
    // there and the writers stop at their cap instead.
    const CAP: usize = 200_000;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    let before = store.audit_flush_stats().flushes;
    let appended = Arc::new(AtomicU64::new(0));
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..4 {
        let (store, appended) = (store.clone(), appended.clone());
        writers.spawn(async move {
            for i in 0..CAP {
                if store.audit_flush_stats().flushes >= before + 5 {
                    return;
                }
                store
                    .append_audit(vec![AuditEvent::allowed(
                        "user:a@example.com",
                        "tool.call",
                        format!("tool/w{w}-{i}"),
                    )])
                    .await
                    .unwrap();
                appended.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    writers.join_all().await;
    let stats = store.audit_flush_stats();
    assert!(
        stats.flushes >= before + 5,
        "only {} flushes during {} appends",
        stats.flushes - before,
        appended.load(Ordering::Relaxed)
    );
    // Every flush measured how long its oldest event had waited.
    assert!(stats.max_lag_us >= stats.max_flush_us, "{stats:?}");
    assert!(stats.max_flush_us > 0, "{stats:?}");
    assert_eq!(
        store.last_audit_sequence(),
        appended.load(Ordering::Relaxed),
        "every append got its sequence number"
    );
}
