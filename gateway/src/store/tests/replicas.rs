//! PostgreSQL only: the schema, and several replicas (several [`Store`]s in
//! this process) on one database.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};

use super::super::*;
use super::fixtures::{
    Harness, Kind, PATIENCE, apply, connection, event, key, server, token, tool, user, wait_for,
};
use crate::model::{self, Tool};
use toolgate_pgtemp::TestDatabase;

/// The bound: a change on one replica is enforced on every replica
/// within this.
const BOUND: Duration = Duration::from_secs(1);

async fn open(db: &TestDatabase) -> Store {
    Store::open_postgres(db.url(), key(), PgOptions::default())
        .await
        .unwrap()
}

fn pg(store: &Store) -> &postgres::PgBackend {
    match &store.backend {
        Backend::Postgres(p) => p,
        Backend::Sled(_) => unreachable!("a PostgreSQL store"),
    }
}

/// Waits (polling) until `condition` holds; returns how long it took.
async fn until(what: &str, mut condition: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_build_the_schema_once_when_replicas_start_together() {
    let db = TestDatabase::create().await;
    let (a, b, c) = tokio::join!(open(&db), open(&db), open(&db));
    let mut conn = PgConnection::connect(db.url()).await.unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(versions, vec![1, 2, 3, 4]);
    for table in [
        "settings",
        "meta",
        "servers",
        "tools",
        "toolsets",
        "access_profiles",
        "users",
        "tokens",
        "token_hashes",
        "connections",
        "oauth_clients",
        "ai_clients",
        "oauth_grants",
        "access_requests",
        "hooks",
        "held_calls",
        "secrets",
        "audit_events",
        "ephemeral",
        "store_state",
    ] {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(table)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert!(exists, "table {table}");
    }
    let state: (i64, i64) = sqlx::query_as("SELECT audit_seq, policy FROM store_state")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(state, (0, 0));
    // The typed columns follow the body.
    let mut t = tool("t1", "s1", "s1_query");
    t.state = model::ToolState::Approved;
    t.classification.sensitive = true;
    let mut batch = Batch::default();
    batch.put(&server("s1"));
    batch.put(&t);
    apply(&a, batch).await;
    let row: (String, String, String, String, bool, bool) = sqlx::query_as(
        "SELECT server_id, name, state, action, sensitive, dangerous FROM tools WHERE id = 't1'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            "s1".into(),
            "s1_query".into(),
            "APPROVED".into(),
            "READ".into(),
            true,
            false
        )
    );
    drop((a, b, c));
    // Reopening finds nothing to do.
    let again = open(&db).await;
    assert_eq!(again.list::<Tool>().await.unwrap(), vec![t]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused_with_a_clear_message() {
    let db = TestDatabase::create().await;
    drop(open(&db).await);
    let mut conn = PgConnection::connect(db.url()).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990, 'from the future', true, '\\x00', 0)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let err = Store::open_postgres(db.url(), key(), PgOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Schema(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the database schema is at version 99990, newer than this toolgated knows (4); upgrade toolgated"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_never_show_the_database_url_or_its_password() {
    // Nothing listens on port 1; the password must not appear anywhere.
    let url = "postgres://toolgate:hunter2-secret@127.0.0.1:1/toolgate";
    let err = Store::open_postgres(
        url,
        key(),
        PgOptions {
            acquire_timeout: Duration::from_millis(500),
            ..PgOptions::default()
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let text = format!("{err} {err:?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!text.contains("127.0.0.1:1"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_key_violation_fails_the_whole_change() {
    let db = TestDatabase::create().await;
    let store = open(&db).await;
    let mut batch = Batch::default();
    batch.put(&user("u1"));
    batch.put_secret("server/s9/client_secret", b"secret");
    batch.put(&tool("t1", "s9", "s9_query"));
    batch.audit(event("admin", "tool.discover", "tool/t1"));
    let err = store
        .write(|_| async move { Ok::<_, StoreError>((batch, ())) })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Postgres(_)), "{err:?}");
    assert!(err.to_string().contains("tools_server_id_fkey"), "{err}");
    assert!(store.list::<model::User>().await.unwrap().is_empty());
    assert!(store.export_secrets().await.unwrap().is_empty());
    assert!(store.audit_forward(1, 10, 10).await.unwrap().is_empty());
    assert_eq!(store.last_audit_sequence(), 0);
    // The sequence is gapless after the failed change.
    store
        .append_audit(vec![event("user:a@example.com", "tool.call", "tool/t")])
        .await
        .unwrap();
    assert_eq!(store.last_audit_sequence(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_replica_reaches_another_within_the_bound() {
    let db = TestDatabase::create().await;
    let a = open(&db).await;
    let b = open(&db).await;
    let mut live_b = b.subscribe();
    let mut worst = Duration::ZERO;
    for round in 1..=5u64 {
        assert!(pg(&b).feed_ok());
        let before = b.generation();
        let start = Instant::now();
        let mut batch = Batch::default();
        batch.put(&user(&format!("u{round}")));
        batch.audit(event("admin", "user.disable", &format!("user/u{round}")));
        apply(&a, batch).await;
        until("B's generation moves", || b.generation() > before).await;
        let moved = start.elapsed();
        let e = tokio::time::timeout(PATIENCE, live_b.recv())
            .await
            .unwrap()
            .unwrap();
        let delivered = start.elapsed();
        assert_eq!(e.sequence, round);
        assert_eq!(e.target, format!("user/u{round}"));
        println!(
            "round {round}: replica B's generation moved after {moved:?}, event delivered after {delivered:?}"
        );
        worst = worst.max(delivered);
        // What B reads now is the change.
        assert!(
            b.get::<model::User>(&format!("u{round}"))
                .await
                .unwrap()
                .is_some()
        );
    }
    println!("worst propagation over 5 rounds: {worst:?} (bound {BOUND:?})");
    assert!(worst < BOUND, "{worst:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_revision_poll_catches_a_change_whose_notification_was_lost() {
    let db = TestDatabase::create().await;
    let b = open(&db).await;
    let before = b.generation();
    let mut conn = PgConnection::connect(db.url()).await.unwrap();
    // A policy revision bump without NOTIFY: only the poll can see it.
    sqlx::query("UPDATE store_state SET policy = policy + 1")
        .execute(&mut conn)
        .await
        .unwrap();
    let took = until("the poll sees the revision", || b.generation() > before).await;
    println!("revision poll noticed the change after {took:?}");
    assert!(took < BOUND, "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_appends_on_two_replicas_get_gapless_numbers_in_order() {
    let db = TestDatabase::create().await;
    let a = Arc::new(open(&db).await);
    let b = Arc::new(open(&db).await);
    let mut live_a = a.subscribe();
    let mut live_b = b.subscribe();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.spawn(async move {
            store
                .append_audit(vec![event(
                    "user:a@example.com",
                    "tool.call",
                    &format!("call/{i}"),
                )])
                .await
                .unwrap();
        });
    }
    tasks.join_all().await;
    let stored = a.audit_forward(1, 1000, 1000).await.unwrap();
    assert_eq!(
        stored.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        (1..=50).collect::<Vec<u64>>()
    );
    let mut targets: Vec<String> = stored.iter().map(|e| e.target.clone()).collect();
    targets.sort();
    let mut sent: Vec<String> = (0..50).map(|i| format!("call/{i}")).collect();
    sent.sort();
    assert_eq!(targets, sent, "each event once");
    for live in [&mut live_a, &mut live_b] {
        let mut seen = Vec::new();
        for _ in 0..50 {
            seen.push(
                tokio::time::timeout(PATIENCE, live.recv())
                    .await
                    .unwrap()
                    .unwrap()
                    .sequence,
            );
        }
        assert_eq!(seen, (1..=50).collect::<Vec<u64>>());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_changes_on_two_replicas_never_lose_an_update() {
    let db = TestDatabase::create().await;
    let a = Arc::new(open(&db).await);
    let b = Arc::new(open(&db).await);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.spawn(async move {
            store
                .write(|tx| async move {
                    let n: u64 = tx.meta("counter").await?.map_or(0, |v| v.parse().unwrap());
                    let mut batch = Batch::default();
                    batch.put_meta("counter", &(n + 1).to_string());
                    Ok::<_, StoreError>((batch, ()))
                })
                .await
                .unwrap();
        });
    }
    tasks.join_all().await;
    assert_eq!(a.meta("counter").await.unwrap().as_deref(), Some("20"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_values_and_named_locks_hold_across_replicas() {
    let db = TestDatabase::create().await;
    let a = Arc::new(open(&db).await);
    let b = Arc::new(open(&db).await);
    let value = Ephemeral {
        owner: "u1/s1".into(),
        value: b"pkce-verifier".to_vec(),
        expires_at: model::now_ms() + 60_000,
    };
    a.put_ephemeral("oauth_state", "h1", &value).await.unwrap();
    assert_eq!(
        b.find_ephemeral("oauth_state", "u1/s1").await.unwrap(),
        Some(("h1".into(), value.clone()))
    );
    let (x, y) = tokio::join!(
        a.take_ephemeral("oauth_state", "h1"),
        b.take_ephemeral("oauth_state", "h1")
    );
    let taken = [x.unwrap(), y.unwrap()];
    assert_eq!(taken.iter().filter(|t| t.is_some()).count(), 1, "{taken:?}");

    let held = a.named_lock("refresh/u1.s1").await.unwrap();
    let (acquired, mut rx) = tokio::sync::oneshot::channel();
    let waiter = {
        let b = b.clone();
        tokio::spawn(async move {
            let lock = b.named_lock("refresh/u1.s1").await.unwrap();
            let _ = acquired.send(());
            drop(lock);
        })
    };
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut rx)
            .await
            .is_err(),
        "replica B got a lock replica A holds"
    );
    drop(held);
    tokio::time::timeout(PATIENCE, rx).await.unwrap().unwrap();
    waiter.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_feed_makes_every_policy_read_fresh_until_it_reconnects() {
    let db = TestDatabase::create().await;
    let a = open(&db).await;
    let b = open(&db).await;
    let mut live_b = b.subscribe();
    let name = pg(&b).feed_application_name().to_owned();
    assert!(pg(&b).feed_ok());
    let steady = b.generation();
    assert_eq!(
        b.generation(),
        steady,
        "a healthy feed keeps the generation"
    );

    let mut admin = PgConnection::connect(db.server_url()).await.unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(&name)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(
        !killed.is_empty(),
        "the feed's connections are named {name}"
    );

    until("B notices the lost feed", || !pg(&b).feed_ok()).await;
    let (mut seen_down, mut checked) = (false, 0);
    // While the feed is down every read of the generation is new, so no
    // cached policy is reused.
    while !pg(&b).feed_ok() && checked < 1000 {
        let first = b.generation();
        let second = b.generation();
        if !pg(&b).feed_ok() {
            assert!(
                second > first,
                "{first} then {second} while the feed is down"
            );
            seen_down = true;
        }
        checked += 1;
    }
    assert!(seen_down);
    let back = until("the feed reconnects", || pg(&b).feed_ok()).await;
    println!("feed reconnected {back:?} after the loss was noticed");

    // Back to normal: the generation holds still, and moves with A's
    // changes again, which B's subscribers receive.
    let steady = b.generation();
    assert_eq!(b.generation(), steady);
    let mut batch = Batch::default();
    batch.put(&user("u1"));
    batch.audit(event("admin", "user.create", "user/u1"));
    apply(&a, batch).await;
    wait_for(&mut live_b, 1).await;
    assert!(b.generation() > steady);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_fails_closed_within_a_short_bound() {
    let db = TestDatabase::create().await;
    let acquire_timeout = Duration::from_millis(300);
    let store = Store::open_postgres(
        db.url(),
        key(),
        PgOptions {
            acquire_timeout,
            ..PgOptions::default()
        },
    )
    .await
    .unwrap();
    store
        .append_audit(vec![event("user:a@example.com", "tool.call", "tool/t")])
        .await
        .unwrap();
    let mut admin = PgConnection::connect(db.server_url()).await.unwrap();
    sqlx::query(&format!(
        "ALTER DATABASE \"{}\" WITH ALLOW_CONNECTIONS false",
        db.name()
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(db.name())
        .execute(&mut admin)
        .await
        .unwrap();

    let start = Instant::now();
    let err = store
        .append_audit(vec![event("user:a@example.com", "tool.call", "tool/t")])
        .await
        .unwrap_err();
    let took = start.elapsed();
    println!("audit append failed closed after {took:?}: {err}");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(
        took < acquire_timeout * 4 + Duration::from_secs(1),
        "{took:?}"
    );
    let err = store
        .write(|_| async {
            let mut batch = Batch::default();
            batch.put(&user("u1"));
            Ok::<_, StoreError>((batch, ()))
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    until("the feed counts as down", || !pg(&store).feed_ok()).await;
    let first = store.generation();
    assert!(store.generation() > first);
    assert!(!store.is_healthy().await);

    // The database comes back: so does the store, by itself.
    sqlx::query(&format!(
        "ALTER DATABASE \"{}\" WITH ALLOW_CONNECTIONS true",
        db.name()
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    store
        .append_audit(vec![event("user:a@example.com", "tool.call", "tool/t")])
        .await
        .unwrap();
    assert_eq!(
        store.last_audit_sequence(),
        2,
        "the failed append wrote nothing"
    );
    until("the feed is back", || pg(&store).feed_ok()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lone_appends_share_transactions_under_load() {
    const CALLS: u64 = 400;
    let db = TestDatabase::create().await;
    let store = Arc::new(open(&db).await);
    // Every group commit notifies once: count the notifications.
    let mut listener = sqlx::postgres::PgListener::connect(db.url()).await.unwrap();
    listener.listen("toolgate_changes").await.unwrap();
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..CALLS {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .append_audit(vec![event(
                    "user:a@example.com",
                    "tool.call",
                    &format!("call/{i}"),
                )])
                .await
                .unwrap();
        });
    }
    tasks.join_all().await;
    let took = start.elapsed();
    let mut commits = 0;
    loop {
        let note = tokio::time::timeout(PATIENCE, listener.recv())
            .await
            .unwrap()
            .unwrap();
        commits += 1;
        let last: u64 = note.payload().split(' ').next().unwrap().parse().unwrap();
        if last == CALLS {
            break;
        }
    }
    println!(
        "{CALLS} concurrent lone appends committed in {took:?} ({:.0}/s) by {commits} transactions",
        CALLS as f64 / took.as_secs_f64()
    );
    assert!(
        commits < CALLS,
        "{commits} transactions for {CALLS} appends"
    );
    assert_eq!(store.last_audit_sequence(), CALLS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_does_not_decode_does_not_stop_the_feed() {
    let db = TestDatabase::create().await;
    let store = open(&db).await;
    let mut live = store.subscribe();
    let mut conn = PgConnection::connect(db.url()).await.unwrap();
    sqlx::query(
        "WITH s AS (UPDATE store_state SET audit_seq = audit_seq + 1 RETURNING audit_seq) \
         INSERT INTO audit_events (seq, time, actor, action, target, outcome, body) \
         SELECT audit_seq, 0, 'x', 'x', 'x', 'ALLOWED', '\"not an event\"' FROM s",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    store
        .append_audit(vec![event("user:a@example.com", "tool.call", "tool/t")])
        .await
        .unwrap();
    let next = tokio::time::timeout(PATIENCE, live.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((next.sequence, next.target.as_str()), (2, "tool/t"));
    assert!(pg(&store).feed_ok());
    let err = store.audit_forward(1, 1, 1).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("audit/1"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_ephemeral_value_is_stored_in_plaintext() {
    let db = TestDatabase::create().await;
    let store = open(&db).await;
    store.check_master_key().await.unwrap();
    let mut batch = Batch::default();
    batch.put(&server("s1"));
    batch.put_secret("server/s1/client_secret", b"PLAINTEXT-consumer-secret");
    batch.put_secret("connection/u1.s1/refresh_token", b"PLAINTEXT-refresh-token");
    apply(&store, batch).await;
    store
        .put_ephemeral(
            "link",
            "k1",
            &Ephemeral {
                owner: "u1/s1".into(),
                value: b"PLAINTEXT-pkce-verifier".to_vec(),
                expires_at: model::now_ms() + 60_000,
            },
        )
        .await
        .unwrap();
    let mut conn = PgConnection::connect(db.url()).await.unwrap();
    let mut dump = String::new();
    for table in ["secrets", "ephemeral", "servers", "meta", "audit_events"] {
        // Each row as text (bytea in hex) and as raw bytes.
        let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT t::text FROM {table} t"))
            .fetch_all(&mut conn)
            .await
            .unwrap();
        dump.extend(rows);
    }
    let sealed: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT sealed FROM secrets UNION ALL SELECT sealed FROM ephemeral")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        sealed.len(),
        4,
        "three secrets (with the key check) and one value"
    );
    assert!(
        dump.contains("server/s1/client_secret"),
        "the dump has the rows"
    );
    assert!(!dump.contains("PLAINTEXT"), "{dump}");
    assert!(!dump.contains(&hex::encode("PLAINTEXT")), "{dump}");
    for bytes in sealed {
        assert!(!bytes.windows(9).any(|w| w == b"PLAINTEXT"));
    }
    assert_eq!(
        store
            .take_ephemeral("link", "k1")
            .await
            .unwrap()
            .unwrap()
            .value,
        b"PLAINTEXT-pkce-verifier"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_moves_an_embedded_store_to_postgresql_and_back_unchanged() {
    let embedded = Harness::new(Kind::Embedded).await;
    let source = embedded.open().await;
    let mut batch = Batch::default();
    for s in ["s1", "s2"] {
        batch.put(&server(s));
        batch.put_secret(&format!("server/{s}/client_secret"), b"consumer-secret");
        for t in 0..50 {
            batch.put(&tool(&format!("{s}-t{t}"), s, &format!("{s}_tool{t}")));
        }
    }
    for u in ["u1", "u2"] {
        batch.put(&user(u));
        let tok = token(&format!("tok-{u}"), u);
        batch.put_token_hash(&tok.hash, &tok.id);
        batch.put(&tok);
        let conn = connection(u, "s1");
        batch.put_secret(&conn.refresh_token_key(), b"refresh");
        batch.put(&conn);
    }
    batch.put_meta("catalog_digest/salesforce", "abc");
    batch.audit(
        event("admin", "server.register", "server/s1")
            .with_details(serde_json::json!({"zeta": 1, "alpha": [1.5, "x"]})),
    );
    apply(&source, batch).await;
    for i in 0..30 {
        source
            .append_audit(vec![event(
                "user:u1@example.com",
                "tool.call",
                &format!("tool/{i}"),
            )])
            .await
            .unwrap();
    }
    let records = source.export_records().await.unwrap();
    let secrets = source.export_secrets().await.unwrap();
    let events = source.audit_forward(1, 1000, 1000).await.unwrap();

    let db = TestDatabase::create().await;
    let pg_store = open(&db).await;
    let report = copy(&source, &pg_store).await.unwrap();
    assert_eq!(report.records, records.len());
    assert_eq!(report.audit_events, 31);
    assert_eq!(pg_store.export_records().await.unwrap(), records);
    // The key check the copy sealed first is among the secrets now.
    let copied_secrets = pg_store.export_secrets().await.unwrap();
    assert_eq!(copied_secrets.len(), secrets.len() + 1);
    assert_eq!(pg_store.audit_forward(1, 1000, 1000).await.unwrap(), events);
    assert_eq!(pg_store.last_audit_sequence(), 31);

    let back = Harness::new(Kind::Embedded).await;
    let restored = back.open().await;
    copy(&pg_store, &restored).await.unwrap();
    assert_eq!(restored.export_records().await.unwrap(), records);
    assert_eq!(restored.export_secrets().await.unwrap(), copied_secrets);
    assert_eq!(restored.audit_forward(1, 1000, 1000).await.unwrap(), events);
    assert_eq!(
        restored
            .secret("connection/u2.s1/refresh_token")
            .await
            .unwrap()
            .unwrap(),
        b"refresh"
    );
}
