//! `toolgated store copy`: every record, sealed secret and audit event
//! moves, secrets stay sealed under the same key, and a non-empty target is
//! refused without being touched.

use std::path::Path;

use toolgate_gateway::audit::Action;
use toolgate_gateway::crypto::MasterKey;
use toolgate_gateway::model::{AuditEvent, User, UserStatus};
use toolgate_gateway::store::{Batch, DirLock, Store, StoreError, Table};

const KEY: &str = "7f3a0c5e9b2d4f6a8c1e3b5d7f9a2c4e6b8d0f1a3c5e7b9d2f4a6c8e0b1d3f5a";

fn key() -> MasterKey {
    MasterKey::parse(KEY, "test").unwrap()
}

fn open(dir: &Path) -> Store {
    Store::open(dir, key(), DirLock::acquire(dir).unwrap()).unwrap()
}

fn user(id: &str, email: &str) -> User {
    User {
        id: id.into(),
        email: email.into(),
        display_name: email.into(),
        status: UserStatus::Active,
        created_at: 1,
        updated_at: 2,
    }
}

/// A store with users, sealed secrets, metadata and 1,201 audit events
/// (one admin change, then lone appends).
async fn fill(store: &Store) {
    store.check_master_key().await.unwrap();
    store
        .write(|_| async move {
            let mut batch = Batch::default();
            batch.put(&user("u1", "ada@example.com"));
            batch.put(&user("u2", "grace@example.com"));
            batch.put_secret("server/s1/client_secret", b"consumer-secret-1");
            batch.put_secret("connection/u1:s1/refresh_token", b"5Aep861-refresh");
            batch.put_meta("catalog_digest/salesforce", "abc123");
            batch.audit(AuditEvent::allowed("admin", Action::UserCreate, "user/u1"));
            Ok::<_, StoreError>((batch, ()))
        })
        .await
        .unwrap();
    for i in 0..12 {
        let events = (0..100)
            .map(|j| {
                AuditEvent::allowed(
                    "user:ada@example.com",
                    Action::ToolCall,
                    format!("tool/{i}-{j}"),
                )
            })
            .collect();
        store.append_audit(events).await.unwrap();
    }
}

async fn everything(store: &Store) -> (Vec<(Table, String, Vec<u8>)>, Vec<AuditEvent>) {
    let records = store.export_records().await.unwrap();
    let events = store
        .audit_forward(1, store.last_audit_sequence(), usize::MAX)
        .await
        .unwrap();
    (records, events)
}

#[tokio::test]
async fn a_copy_holds_every_record_secret_and_audit_event_and_opens_with_the_same_key() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let source = open(a.path());
    fill(&source).await;
    let target = open(b.path());
    let report = toolgate_gateway::store::copy(&source, &target)
        .await
        .unwrap();
    assert_eq!(report.records, 3, "two users and one metadata value");
    assert_eq!(report.secrets, 3, "two secrets and the master key check");
    assert_eq!(report.audit_events, 1201);
    assert_eq!(everything(&target).await, everything(&source).await);
    assert_eq!(target.last_audit_sequence(), 1201);
    assert_eq!(
        target
            .secret("connection/u1:s1/refresh_token")
            .await
            .unwrap()
            .unwrap(),
        b"5Aep861-refresh"
    );
    // The copy goes on numbering where the source stopped.
    target
        .append_audit(vec![AuditEvent::allowed(
            "admin",
            Action::UserCreate,
            "user/u3",
        )])
        .await
        .unwrap();
    assert_eq!(target.last_audit_sequence(), 1202);
}

#[tokio::test]
async fn a_target_that_holds_records_is_refused_and_left_as_it_was() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let source = open(a.path());
    fill(&source).await;
    let target = open(b.path());
    target
        .write(|_| async move {
            let mut batch = Batch::default();
            batch.put(&user("u9", "other@example.com"));
            Ok::<_, StoreError>((batch, ()))
        })
        .await
        .unwrap();
    let before = everything(&target).await;
    let err = toolgate_gateway::store::copy(&source, &target)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already holds records"), "{err}");
    assert_eq!(everything(&target).await, before);
}

#[tokio::test]
async fn the_command_copies_a_data_directory_and_writes_its_master_key_next_to_the_copy() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(a.path().join("master.key"), KEY).unwrap();
    {
        let source = open(a.path());
        fill(&source).await;
    }
    let target = b.path().join("copy");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_toolgated"))
        .args(["store", "copy", "--from"])
        .arg(a.path())
        .arg("--to")
        .arg(&target)
        .env_remove("TOOLGATE_MASTER_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("copied 3 records, 3 secrets (still sealed) and 1201 audit events"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(target.join("master.key")).unwrap(),
        KEY
    );
    let copy = open(&target);
    assert_eq!(
        copy.secret("server/s1/client_secret")
            .await
            .unwrap()
            .unwrap(),
        b"consumer-secret-1"
    );
    assert_eq!(copy.list::<User>().await.unwrap().len(), 2);
}
