//! `toolgated audit verify` as a process: exit 0 with a summary for an
//! intact chain, exit 1 naming the first altered or missing event, on a data
//! directory and on PostgreSQL (beside a running store), and the chain
//! surviving `store copy`.

use std::path::Path;
use std::process::Output;

use toolgate_gateway::audit::Action;
use toolgate_gateway::crypto::MasterKey;
use toolgate_gateway::model::AuditEvent;
use toolgate_gateway::store::{DirLock, PgOptions, Store};

const KEY: &str = "7f3a0c5e9b2d4f6a8c1e3b5d7f9a2c4e6b8d0f1a3c5e7b9d2f4a6c8e0b1d3f5a";

fn key() -> MasterKey {
    MasterKey::parse(KEY, "test").unwrap()
}

fn open(dir: &Path) -> Store {
    Store::open(dir, key(), DirLock::acquire(dir).unwrap()).unwrap()
}

/// 1,500 tool-call events in batches of 100 (more than one verify page).
async fn fill(store: &Store) {
    for i in 0..15 {
        let events = (0..100)
            .map(|j| {
                AuditEvent::allowed(
                    "user:ada@example.com",
                    Action::ToolCall,
                    format!("tool/{i}-{j}"),
                )
                .with_details(serde_json::json!({"records": j, "ok": true}))
            })
            .collect();
        store.append_audit(events).await.unwrap();
    }
}

fn verify(store: &str, database_url: Option<&str>) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_toolgated"));
    command
        .args(["audit", "verify", "--store", store])
        .env_remove("TOOLGATE_MASTER_KEY");
    if let Some(url) = database_url {
        command.env("TOOLGATE_DATABASE_URL", url);
    }
    command.output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Rewrites stored event `seq` of a closed data directory with `edit`.
fn edit_sled_event(dir: &Path, seq: u64, edit: impl FnOnce(&mut serde_json::Value)) {
    let db = sled::Config::new().path(dir.join("db")).open().unwrap();
    let mut key = b"audit/".to_vec();
    key.extend_from_slice(&seq.to_be_bytes());
    let value = db.get(&key).unwrap().unwrap();
    let mut event: serde_json::Value = serde_json::from_slice(&value[1..]).unwrap();
    edit(&mut event);
    let mut value = vec![value[0]];
    value.extend(serde_json::to_vec(&event).unwrap());
    db.insert(key, value).unwrap();
    db.flush().unwrap();
}

#[tokio::test]
async fn a_data_directory_verifies_and_an_edited_event_is_named_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("master.key"), KEY).unwrap();
    {
        let store = open(dir.path());
        fill(&store).await;
        // While the store is open its directory is locked.
        let locked = verify(dir.path().to_str().unwrap(), None);
        assert_eq!(locked.status.code(), Some(1), "{}", text(&locked));
        assert!(text(&locked).contains("in use by another toolgated process"));
    }
    let intact = verify(dir.path().to_str().unwrap(), None);
    assert_eq!(intact.status.code(), Some(0), "{}", text(&intact));
    assert_eq!(
        String::from_utf8_lossy(&intact.stdout),
        "audit chain intact: 1500 events, #1..#1500\n"
    );
    edit_sled_event(dir.path(), 1234, |e| e["reason"] = "nothing to see".into());
    let broken = verify(dir.path().to_str().unwrap(), None);
    assert_eq!(broken.status.code(), Some(1), "{}", text(&broken));
    let out = String::from_utf8_lossy(&broken.stdout);
    assert!(
        out.starts_with("event #1234 (tool.call at ")
            && out.ends_with("Z) was altered: its hash does not match its contents\n"),
        "{out}"
    );
}

#[tokio::test]
async fn postgresql_verifies_beside_a_running_store_and_a_deleted_event_is_named() {
    let db = toolgate_pgtemp::TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    {
        let source = open(dir.path());
        fill(&source).await;
        let target = Store::open_postgres(db.url(), key(), PgOptions::default())
            .await
            .unwrap();
        toolgate_gateway::store::copy(&source, &target)
            .await
            .unwrap();
    }
    // A replica keeps running and appending on the copy.
    let running = Store::open_postgres(db.url(), key(), PgOptions::default())
        .await
        .unwrap();
    fill(&running).await;
    let intact = verify("database", Some(db.url()));
    assert_eq!(intact.status.code(), Some(0), "{}", text(&intact));
    assert_eq!(
        String::from_utf8_lossy(&intact.stdout),
        "audit chain intact: 3000 events, #1..#3000\n"
    );
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(db.url()).await.unwrap();
    sqlx::query("DELETE FROM audit_events WHERE seq = 1700")
        .execute(&mut conn)
        .await
        .unwrap();
    let broken = verify("database", Some(db.url()));
    assert_eq!(broken.status.code(), Some(1), "{}", text(&broken));
    assert_eq!(
        String::from_utf8_lossy(&broken.stdout),
        "event #1701 does not follow #1699: events are missing or reordered\n"
    );
    // The URL's password never shows; nor does an event's content.
    assert!(!text(&broken).contains("ada@example.com"));
}
