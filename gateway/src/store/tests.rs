//! Tests of the store. `contract` runs one suite against both backends;
//! `replicas` holds what only PostgreSQL does (schema, several replicas on
//! one database); the tests here are about the embedded store itself.

mod contract;
mod fixtures;
mod replicas;

use super::*;
use crate::audit::Action;
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

#[tokio::test]
async fn write_applies_records_and_audit_together_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        let mut rx = store.subscribe();
        store
            .write(|_| async move {
                let mut batch = Batch::default();
                batch.put(&user("u1", "a@example.com"));
                batch.put(&user("u2", "b@example.com"));
                batch.audit(AuditEvent::allowed("admin", Action::UserCreate, "user/u1"));
                batch.audit(AuditEvent::allowed("admin", Action::UserCreate, "user/u2"));
                Ok::<_, StoreError>((batch, ()))
            })
            .await
            .unwrap();
        assert_eq!(rx.recv().await.unwrap().sequence, 1);
        assert_eq!(rx.recv().await.unwrap().sequence, 2);
    }
    let store = open(dir.path());
    let users: Vec<User> = store.list().await.unwrap();
    assert_eq!(
        users.iter().map(|u| u.email.as_str()).collect::<Vec<_>>(),
        ["a@example.com", "b@example.com"]
    );
    assert_eq!(store.last_audit_sequence(), 2);
    let (page, more) = store.audit_page(None, 1, |_| true).await.unwrap();
    assert_eq!(page[0].target, "user/u2");
    assert!(more);
    let (page, more) = store.audit_page(Some(2), 10, |_| true).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].target, "user/u1");
    assert!(!more);
}

#[tokio::test]
async fn a_failed_change_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let result: Result<(), StoreError> = store
        .write(|_| async move {
            Err(StoreError::Corrupt {
                key: "x".into(),
                reason: "refused".into(),
            })
        })
        .await;
    assert!(result.is_err());
    assert!(store.list::<User>().await.unwrap().is_empty());
    assert_eq!(store.last_audit_sequence(), 0);
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
        .write(|_| async move {
            let mut batch = Batch::default();
            batch.put(&user("u1", "a@example.com"));
            Ok::<_, StoreError>((batch, ()))
        })
        .await
        .unwrap();
    let raw = store.sled_db().get("user/u1").unwrap().unwrap();
    assert_eq!(raw[0], FORMAT_VERSION);
    let mut newer = raw.to_vec();
    newer[0] = FORMAT_VERSION + 1;
    store.sled_db().insert("user/u1", newer).unwrap();
    let err = store.get::<User>("u1").await.unwrap_err();
    assert!(matches!(
        err,
        StoreError::UnsupportedVersion { version: 2, .. }
    ));
}

#[tokio::test]
async fn secrets_are_sealed_with_their_key_and_never_stored_plain() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .write(|_| async move {
            let mut batch = Batch::default();
            batch.put_secret("server/s1/client_secret", b"plain-consumer-secret");
            Ok::<_, StoreError>((batch, ()))
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .secret("server/s1/client_secret")
            .await
            .unwrap()
            .unwrap(),
        b"plain-consumer-secret"
    );
    assert!(
        store
            .secret("server/s2/client_secret")
            .await
            .unwrap()
            .is_none()
    );
    let raw = store
        .sled_db()
        .get("secret/server/s1/client_secret")
        .unwrap()
        .unwrap();
    assert!(!raw.windows(21).any(|w| w == b"plain-consumer-secret"));
    // Moving the sealed value under another record key must not open.
    store
        .sled_db()
        .insert("secret/server/s2/client_secret", raw)
        .unwrap();
    assert!(store.secret("server/s2/client_secret").await.is_err());
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
                    Action::ToolCall,
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

#[tokio::test]
async fn the_generation_moves_with_policy_writes_not_with_token_use_or_audit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let start = store.generation();
    store
        .append_audit(vec![AuditEvent::allowed(
            "user:a@example.com",
            Action::ToolCall,
            "t",
        )])
        .await
        .unwrap();
    assert_eq!(
        store.generation(),
        start,
        "tool-call audit keeps caches valid"
    );
    let token = crate::model::Token {
        id: "t1".into(),
        user_id: "u1".into(),
        name: "laptop".into(),
        prefix: "tgp_abcd".into(),
        hash: "00".repeat(32),
        created_at: 1,
        expires_at: None,
        last_used_at: Some(2),
        revoked_at: None,
    };
    store
        .write(|_| async move {
            let mut batch = Batch::default();
            batch.put(&token);
            Ok::<_, StoreError>((batch, ()))
        })
        .await
        .unwrap();
    assert_eq!(store.generation(), start, "token use keeps caches valid");
    store
        .write(|_| async move {
            let mut batch = Batch::default();
            batch.put(&user("u1", "a@example.com"));
            Ok::<_, StoreError>((batch, ()))
        })
        .await
        .unwrap();
    assert_eq!(store.generation(), start + 1);
    let refused = store
        .write(|_| async { Err::<(Batch, ()), _>(StoreError::WrongKey) })
        .await;
    assert!(refused.is_err());
    assert_eq!(
        store.generation(),
        start + 1,
        "a refused change writes nothing"
    );
}

#[test]
fn the_audit_flusher_keeps_flushing_while_writers_saturate_the_store() {
    // Four writers append tool-call events as fast as they can until the
    // background flusher has completed five flushes after they started:
    // a flusher starved by the writers (or waiting on them) never gets
    // there and the writers stop at their cap instead.
    const CAP: usize = 200_000;
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(open(dir.path()));
    let before = store.audit_flush_stats().flushes;
    let appended = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for w in 0..4 {
            let (store, appended) = (&store, &appended);
            scope.spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                for i in 0..CAP {
                    if store.audit_flush_stats().flushes >= before + 5 {
                        return;
                    }
                    runtime
                        .block_on(store.append_audit(vec![AuditEvent::allowed(
                            "user:a@example.com",
                            Action::ToolCall,
                            format!("tool/w{w}-{i}"),
                        )]))
                        .unwrap();
                    appended.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
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
        appended.load(Ordering::Relaxed) as u64,
        "every append got its sequence number"
    );
}
