//! The store contract: one suite of async test functions, each run against
//! both backends by [`contract!`] (the embedded store in a temp dir,
//! PostgreSQL in a fresh database from `toolgate-pgtemp`; see `fixtures`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::super::*;
use super::fixtures::{
    Harness, Kind, PATIENCE, apply, connection, event, server, token, tool, toolset, user, wait_for,
};
use crate::model::{
    AccessProfile, AuditEvent, Connection, Grant, Outcome, Server, Settings, Token, Tool,
    ToolAction, ToolState, Toolset, User,
};

/// Defines `embedded::<test>` and `postgres::<test>` for each test function.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Kind::Embedded).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Kind::Postgres).await;
                }
            )*
        }
    };
}

contract!(
    every_record_kind_round_trips_and_deletes,
    a_failed_change_writes_nothing,
    secrets_are_sealed_and_a_wrong_key_is_refused,
    tool_pages_filter_order_and_count,
    audit_events_are_ordered_and_paged,
    the_live_feed_delivers_every_event_in_sequence_order,
    the_generation_moves_with_policy_writes_only,
    ephemeral_values_expire_and_are_taken_once,
    named_locks_exclude,
    import_copies_everything_into_an_empty_store_only,
    the_audit_chain_links_every_event_and_verifies,
    an_edited_audit_event_breaks_the_chain_at_that_event,
    a_deleted_middle_audit_event_is_reported_missing,
    retention_prunes_the_oldest_and_the_chain_verifies_from_the_anchor,
);

async fn every_record_kind_round_trips_and_deletes(kind: Kind) {
    let h = Harness::new(kind).await;
    let store = h.open().await;
    let s1 = server("s1");
    let t1 = tool("t1", "s1", "s1_query");
    let custom = toolset("ts1", None);
    let maintained = toolset("ts2", Some("s1"));
    let u1 = user("u1");
    let tok = token("tok1", "u1");
    let conn = connection("u1", "s1");
    let profile = AccessProfile {
        revision: 1,
        id: "p1".into(),
        name: "Sales".into(),
        description: String::new(),
        toolset_ids: vec!["ts1".into()],
        grants: vec![Grant {
            user_id: "u1".into(),
            granted_at: 1,
            expires_at: None,
            granted_by: "admin".into(),
        }],
        created_at: 1,
        updated_at: 1,
        obtain: Default::default(),
        max_request_duration_secs: None,
    };
    let settings = Settings {
        mcp_traffic_enabled: false,
        ..Settings::default()
    };
    let mut batch = Batch::default();
    // Referencing records before the ones they reference: foreign keys
    // are checked at commit.
    batch.put(&conn);
    batch.put_token_hash(&tok.hash, &tok.id);
    batch.put(&tok);
    batch.put(&t1);
    batch.put(&maintained);
    batch.put(&s1);
    batch.put(&custom);
    batch.put(&profile);
    batch.put(&u1);
    batch.put_settings(&settings);
    batch.put_meta("catalog_digest/salesforce", "abc");
    apply(&store, batch).await;

    assert_eq!(store.get::<Server>("s1").await.unwrap(), Some(s1.clone()));
    assert_eq!(store.get::<Tool>("t1").await.unwrap(), Some(t1.clone()));
    assert_eq!(
        store.list::<Toolset>().await.unwrap(),
        vec![custom.clone(), maintained.clone()]
    );
    assert_eq!(
        store.get::<AccessProfile>("p1").await.unwrap(),
        Some(profile)
    );
    assert_eq!(store.get::<User>("u1").await.unwrap(), Some(u1.clone()));
    assert_eq!(store.get::<Token>("tok1").await.unwrap(), Some(tok.clone()));
    assert_eq!(
        store.token_id_by_hash(&tok.hash).await.unwrap().as_deref(),
        Some("tok1")
    );
    assert_eq!(
        store.get::<Connection>(&conn.id).await.unwrap(),
        Some(conn.clone())
    );
    assert_eq!(store.settings().await.unwrap(), settings);
    assert_eq!(
        store
            .meta("catalog_digest/salesforce")
            .await
            .unwrap()
            .as_deref(),
        Some("abc")
    );
    assert_eq!(store.get::<User>("nobody").await.unwrap(), None);
    // Records are stored exactly as written (JSON key order included).
    let exported = store.export_records().await.unwrap();
    let (_, _, body) = exported
        .iter()
        .find(|(table, id, _)| *table == Table::Tool && id == "t1")
        .unwrap();
    assert_eq!(body, &serde_json::to_vec(&t1).unwrap());
    assert_eq!(exported.len(), 11, "{exported:?}");

    // Replacing a record.
    let mut approved = t1.clone();
    approved.state = ToolState::Approved;
    let mut batch = Batch::default();
    batch.put(&approved);
    apply(&store, batch).await;
    assert_eq!(store.list::<Tool>().await.unwrap(), vec![approved]);

    // Deleting a server with everything that references it, server first.
    let mut batch = Batch::default();
    batch.delete::<Server>("s1");
    batch.delete::<Connection>(&conn.id);
    batch.delete::<Toolset>("ts2");
    batch.delete::<Tool>("t1");
    batch.delete::<Tool>("never-existed");
    apply(&store, batch).await;
    assert_eq!(store.get::<Server>("s1").await.unwrap(), None);
    assert!(store.list::<Tool>().await.unwrap().is_empty());
    assert!(store.list::<Connection>().await.unwrap().is_empty());
    assert_eq!(store.list::<Toolset>().await.unwrap(), vec![custom]);

    // What was written is still there after reopening.
    drop(store);
    let store = h.open().await;
    assert_eq!(store.list::<User>().await.unwrap(), vec![u1]);
    assert_eq!(store.settings().await.unwrap(), settings);
}

async fn a_failed_change_writes_nothing(kind: Kind) {
    let h = Harness::new(kind).await;
    let store = h.open().await;
    let start = store.generation();
    let result: Result<(), StoreError> = store
        .write(|tx| async move {
            // Reads inside the change work; the change then fails.
            assert!(tx.get::<User>("u1").await?.is_none());
            let mut batch = Batch::default();
            batch.put(&user("u1"));
            batch.put_secret("server/s1/client_secret", b"secret");
            batch.audit(event("admin", "user.create", "user/u1"));
            drop(batch);
            Err(StoreError::Corrupt {
                key: "x".into(),
                reason: "refused".into(),
            })
        })
        .await;
    assert!(result.is_err());
    assert!(store.list::<User>().await.unwrap().is_empty());
    assert!(store.export_secrets().await.unwrap().is_empty());
    assert_eq!(store.last_audit_sequence(), 0);
    assert!(
        store
            .audit_page(None, 10, |_| true)
            .await
            .unwrap()
            .0
            .is_empty()
    );
    assert_eq!(store.generation(), start);
    // The store takes the next change (the failed one released its lock).
    let mut batch = Batch::default();
    batch.put(&user("u2"));
    tokio::time::timeout(PATIENCE, apply(&store, batch))
        .await
        .expect("the admin lock was released");
    assert_eq!(store.list::<User>().await.unwrap(), vec![user("u2")]);
}

async fn secrets_are_sealed_and_a_wrong_key_is_refused(kind: Kind) {
    let h = Harness::new(kind).await;
    let store = h.open().await;
    store.check_master_key().await.unwrap();
    let mut batch = Batch::default();
    batch.put_secret("server/s1/client_secret", b"plain-consumer-secret");
    batch.put_secret("connection/u1.s1/refresh_token", b"plain-refresh-token");
    apply(&store, batch).await;
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
    // What the backend holds is sealed.
    let sealed = store.export_secrets().await.unwrap();
    assert_eq!(
        sealed.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        [
            "connection/u1.s1/refresh_token",
            "meta/key_check",
            "server/s1/client_secret"
        ]
    );
    for (_, bytes) in &sealed {
        assert!(!bytes.windows(5).any(|w| w == b"plain"), "{bytes:?}");
    }
    // Deleting a secret.
    let mut batch = Batch::default();
    batch.delete_secret("connection/u1.s1/refresh_token");
    apply(&store, batch).await;
    assert!(
        store
            .secret("connection/u1.s1/refresh_token")
            .await
            .unwrap()
            .is_none()
    );
    // Another master key: refused at start-up, and nothing opens.
    drop(store);
    let other = MasterKey::parse(&"22".repeat(32), "test").unwrap();
    let store = h.open_with(other).await.unwrap();
    assert!(matches!(
        store.check_master_key().await,
        Err(StoreError::WrongKey)
    ));
    assert!(matches!(
        store.secret("server/s1/client_secret").await,
        Err(StoreError::Crypto(_))
    ));
}

async fn tool_pages_filter_order_and_count(kind: Kind) {
    let h = Harness::new(kind).await;
    let store = h.open().await;
    let mut batch = Batch::default();
    batch.put(&server("s1"));
    batch.put(&server("s2"));
    let mut all = Vec::new();
    let names = [
        "s1_query",
        "s1_Query_all",
        "s1_describe",
        "s1_create",
        "s1_delete",
        "s1_a%b",
        "s1_aXb",
        "s1_a_b",
        "s2_query",
        "s2_update",
        "s2_upsert",
        "s2_QUERY_more",
        "S2_zeta",
    ];
    for (i, name) in names.iter().enumerate() {
        let server_id = if name.to_lowercase().starts_with("s1") {
            "s1"
        } else {
            "s2"
        };
        let mut t = tool(&format!("t{i:02}"), server_id, name);
        t.state = [
            ToolState::PendingReview,
            ToolState::Approved,
            ToolState::Disabled,
            ToolState::Removed,
        ][i % 4];
        t.classification.action = [ToolAction::Read, ToolAction::Write, ToolAction::Delete][i % 3];
        t.classification.sensitive = i % 2 == 0;
        t.classification.dangerous = i % 5 == 0;
        batch.put(&t);
        all.push(t);
    }
    // Two tools with the same name: ordered by id.
    let twin = tool("t99", "s1", "s1_query");
    batch.put(&twin);
    all.push(twin);
    apply(&store, batch).await;

    let queries = [
        ToolQuery::default(),
        ToolQuery {
            server_id: Some("s2".into()),
            ..ToolQuery::default()
        },
        ToolQuery {
            state: Some(ToolState::Approved),
            ..ToolQuery::default()
        },
        ToolQuery {
            action: Some(ToolAction::Write),
            sensitive: Some(true),
            ..ToolQuery::default()
        },
        ToolQuery {
            dangerous: Some(true),
            ..ToolQuery::default()
        },
        ToolQuery {
            name_contains: "query".into(),
            ..ToolQuery::default()
        },
        // LIKE wildcards match only themselves.
        ToolQuery {
            name_contains: "a%b".into(),
            ..ToolQuery::default()
        },
        ToolQuery {
            name_contains: "a_b".into(),
            ..ToolQuery::default()
        },
        ToolQuery {
            server_id: Some("nope".into()),
            ..ToolQuery::default()
        },
    ];
    for query in queries {
        let mut expected: Vec<&Tool> = all.iter().filter(|t| query.matches(t)).collect();
        expected.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        let expected: Vec<&str> = expected.iter().map(|t| t.id.as_str()).collect();
        for limit in [1, 3, 100] {
            let mut got = Vec::new();
            let mut after = None;
            loop {
                let page = store
                    .tool_page(&ToolQuery {
                        after: after.clone(),
                        limit,
                        ..query.clone()
                    })
                    .await
                    .unwrap();
                assert_eq!(page.total, expected.len() as u64, "{query:?}");
                assert!(page.tools.len() <= limit);
                got.extend(page.tools.iter().map(|t| t.id.clone()));
                assert_eq!(page.more, got.len() < expected.len(), "{query:?} {limit}");
                match page.tools.last() {
                    Some(last) if page.more => after = Some((last.name.clone(), last.id.clone())),
                    _ => break,
                }
            }
            assert_eq!(got, expected, "{query:?} limit {limit}");
        }
    }
    // The filters select something in each case above.
    let page = store
        .tool_page(&ToolQuery {
            name_contains: "QUERY".into(),
            limit: 100,
            ..ToolQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        page.tools
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        [
            "s1_Query_all",
            "s1_query",
            "s1_query",
            "s2_QUERY_more",
            "s2_query"
        ]
    );

    // A write between pages shows at once: a renamed, a re-stated and a
    // deleted tool (the embedded store pages through heads it keeps until
    // a policy record is written).
    async fn approved(store: &Store) -> Vec<(String, String)> {
        store
            .tool_page(&ToolQuery {
                state: Some(ToolState::Approved),
                limit: 100,
                ..ToolQuery::default()
            })
            .await
            .unwrap()
            .tools
            .into_iter()
            .map(|t| (t.id, t.name))
            .collect()
    }
    let before = approved(&store).await;
    assert!(!before.is_empty());
    let mut batch = Batch::default();
    let mut renamed = all[1].clone();
    renamed.name = "a_first".into();
    let mut restated = all[0].clone();
    restated.state = ToolState::Approved;
    batch.put(&renamed);
    batch.put(&restated);
    batch.delete::<Tool>(&all[5].id);
    apply(&store, batch).await;
    let after = approved(&store).await;
    let mut expected: Vec<(String, String)> = all
        .iter()
        .filter(|t| t.id != all[5].id)
        .map(|t| match t.id.as_str() {
            id if id == renamed.id => renamed.clone(),
            id if id == restated.id => restated.clone(),
            _ => t.clone(),
        })
        .filter(|t| t.state == ToolState::Approved)
        .map(|t| (t.id, t.name))
        .collect();
    expected.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
    assert_eq!(after, expected);
    assert_ne!(after, before);
}

/// Where `audit_start_after` must start, computed from the events.
fn expected_start(events: &[AuditEvent], since: i64, up_to: u64) -> u64 {
    let mut start = up_to + 1;
    for e in events.iter().rev().filter(|e| e.sequence <= up_to) {
        if e.time < since {
            break;
        }
        start = e.sequence;
    }
    start
}

async fn audit_events_are_ordered_and_paged(kind: Kind) {
    let h = Harness::new(kind).await;
    let store = h.open().await;
    let before = crate::model::now_ms();
    let mut batch = Batch::default();
    batch.put(&user("u1"));
    for i in 1..=3 {
        batch.audit(
            event("admin", "user.create", &format!("user/u{i}"))
                .with_details(json!({"b": 1, "a": [i]})),
        );
    }
    apply(&store, batch).await;
    for i in 4..=7 {
        let mut e = event("user:a@example.com", "tool.call", &format!("tool/t{i}"));
        e.outcome = Outcome::Denied;
        e.latency_ms = 12;
        store.append_audit(vec![e]).await.unwrap();
    }
    assert_eq!(store.last_audit_sequence(), 7);

    let (page, more) = store.audit_page(None, 3, |_| true).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        [7, 6, 5]
    );
    assert!(more);
    assert_eq!(page[0].target, "tool/t7");
    assert_eq!(page[0].outcome, Outcome::Denied);
    assert_eq!(page[0].latency_ms, 12);
    let (page, more) = store
        .audit_page(Some(5), 10, |e| e.actor == "admin")
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        [3, 2, 1]
    );
    assert!(!more);
    assert_eq!(page[2].details, json!({"b": 1, "a": [1]}));
    let (page, more) = store
        .audit_page(None, 2, |e| e.action == "user.create")
        .await
        .unwrap();
    assert_eq!(page.iter().map(|e| e.sequence).collect::<Vec<_>>(), [3, 2]);
    assert!(more);
    let (page, more) = store.audit_page(None, 10, |_| false).await.unwrap();
    assert!(page.is_empty() && !more);

    let forward = store.audit_forward(2, 6, 3).await.unwrap();
    assert_eq!(
        forward.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        [2, 3, 4]
    );
    assert!(store.audit_forward(5, 4, 10).await.unwrap().is_empty());
    let all = store.audit_forward(1, 7, 100).await.unwrap();
    assert_eq!(all.len(), 7);
    // Times are stamped at commit, in sequence order.
    assert!(all.windows(2).all(|w| w[0].time <= w[1].time), "{all:?}");
    assert!(all[0].time >= before - 1000 && all[6].time <= crate::model::now_ms() + 1000);

    assert_eq!(store.audit_start_after(0, 7).await.unwrap(), 1);
    assert_eq!(store.audit_start_after(i64::MAX, 7).await.unwrap(), 8);
    assert_eq!(store.audit_start_after(i64::MAX, 5).await.unwrap(), 6);
    for e in &all {
        for up_to in [3, 7] {
            assert_eq!(
                store.audit_start_after(e.time, up_to).await.unwrap(),
                expected_start(&all, e.time, up_to),
                "since {} up to {up_to}",
                e.time
            );
        }
    }
}

async fn the_live_feed_delivers_every_event_in_sequence_order(kind: Kind) {
    let h = Harness::new(kind).await;
    let store = Arc::new(h.open().await);
    let mut live = store.subscribe();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..5 {
        let store = store.clone();
        tasks.spawn(async move {
            for i in 0..4 {
                store
                    .append_audit(vec![event(
                        "user:a@example.com",
                        "tool.call",
                        &format!("tool/{w}-{i}"),
                    )])
                    .await
                    .unwrap();
            }
            let mut batch = Batch::default();
            batch.put(&user(&format!("u{w}")));
            batch.audit(event("admin", "user.create", &format!("user/u{w}")));
            apply(&store, batch).await;
        });
    }
    tasks.join_all().await;
    let mut sequences = Vec::new();
    for _ in 0..25 {
        let e = tokio::time::timeout(PATIENCE, live.recv())
            .await
            .unwrap()
            .unwrap();
        sequences.push(e.sequence);
    }
    assert_eq!(sequences, (1..=25).collect::<Vec<u64>>());
    assert_eq!(store.last_audit_sequence(), 25);
}

async fn the_generation_moves_with_policy_writes_only(kind: Kind) {
    let h = Harness::new(kind).await;
    let store = h.open().await;
    let mut live = store.subscribe();
    let start = store.generation();
    store
        .append_audit(vec![event("user:a@example.com", "tool.call", "tool/t")])
        .await
        .unwrap();
    wait_for(&mut live, 1).await;
    assert_eq!(
        store.generation(),
        start,
        "tool-call audit keeps caches valid"
    );
    let mut used = token("tok1", "u1");
    used.last_used_at = Some(2);
    let mut batch = Batch::default();
    batch.put(&user("u1"));
    batch.audit(event("admin", "user.create", "user/u1"));
    apply(&store, batch).await;
    // Once the event is live, the change feed (PostgreSQL) has seen the
    // write too.
    wait_for(&mut live, 2).await;
    let after_user = store.generation();
    assert!(after_user > start, "a user write moves it");
    let mut batch = Batch::default();
    batch.put(&used);
    batch.put_secret("connection/u1.s1/access_token", b"x");
    batch.audit(event("system", "token.issue", "token/tok1"));
    apply(&store, batch).await;
    wait_for(&mut live, 3).await;
    assert_eq!(
        store.generation(),
        after_user,
        "token use keeps caches valid"
    );
    let refused = store
        .write(|_| async { Err::<(Batch, ()), _>(StoreError::WrongKey) })
        .await;
    assert!(refused.is_err());
    assert_eq!(
        store.generation(),
        after_user,
        "a refused change writes nothing"
    );
    let mut batch = Batch::default();
    batch.put_settings(&Settings {
        mcp_traffic_enabled: false,
        ..Settings::default()
    });
    batch.audit(event("admin", "settings.update", "settings"));
    apply(&store, batch).await;
    wait_for(&mut live, 4).await;
    assert!(store.generation() > after_user, "the kill switch moves it");
}

async fn ephemeral_values_expire_and_are_taken_once(kind: Kind) {
    let h = Harness::new(kind).await;
    let store = Arc::new(h.open().await);
    let later = crate::model::now_ms() + 60_000;
    let value = |owner: &str, v: &[u8], expires_at| Ephemeral {
        owner: owner.into(),
        value: v.to_vec(),
        expires_at,
    };
    store
        .put_ephemeral("link", "k1", &value("u1/s1", b"one", later))
        .await
        .unwrap();
    assert_eq!(
        store.get_ephemeral("link", "k1").await.unwrap(),
        Some(value("u1/s1", b"one", later))
    );
    // Another kind is another namespace.
    assert_eq!(store.get_ephemeral("state", "k1").await.unwrap(), None);
    // Replacing.
    store
        .put_ephemeral("link", "k1", &value("u1/s1", b"uno", later))
        .await
        .unwrap();
    assert_eq!(
        store.find_ephemeral("link", "u1/s1").await.unwrap(),
        Some(("k1".to_owned(), value("u1/s1", b"uno", later)))
    );
    assert_eq!(
        store.take_ephemeral("link", "k1").await.unwrap(),
        Some(value("u1/s1", b"uno", later))
    );
    assert_eq!(store.take_ephemeral("link", "k1").await.unwrap(), None);
    assert_eq!(store.get_ephemeral("link", "k1").await.unwrap(), None);
    // Expired values are gone.
    store
        .put_ephemeral(
            "link",
            "k2",
            &value("u2/s1", b"old", crate::model::now_ms() - 1),
        )
        .await
        .unwrap();
    assert_eq!(store.get_ephemeral("link", "k2").await.unwrap(), None);
    assert_eq!(store.find_ephemeral("link", "u2/s1").await.unwrap(), None);
    assert_eq!(store.take_ephemeral("link", "k2").await.unwrap(), None);
    // Deleting.
    store
        .put_ephemeral("link", "k3", &value("u3/s1", b"three", later))
        .await
        .unwrap();
    store.delete_ephemeral("link", "k3").await.unwrap();
    store.delete_ephemeral("link", "k3").await.unwrap();
    assert_eq!(store.find_ephemeral("link", "u3/s1").await.unwrap(), None);
    // Two concurrent takes: exactly one gets it.
    for round in 0..10 {
        let key = format!("race{round}");
        store
            .put_ephemeral("link", &key, &value("u4/s1", b"once", later))
            .await
            .unwrap();
        let (a, b) = {
            let (s1, s2) = (store.clone(), store.clone());
            let (k1, k2) = (key.clone(), key.clone());
            tokio::join!(
                tokio::spawn(async move { s1.take_ephemeral("link", &k1).await.unwrap() }),
                tokio::spawn(async move { s2.take_ephemeral("link", &k2).await.unwrap() }),
            )
        };
        let taken = [a.unwrap(), b.unwrap()];
        assert_eq!(
            taken.iter().filter(|t| t.is_some()).count(),
            1,
            "round {round}: {taken:?}"
        );
    }
    // Values are sealed at rest: the bearer of a link id cannot read them
    // under another key (the associated data is the kind and key).
    assert_eq!(store.get_ephemeral("link", "missing").await.unwrap(), None);
}

async fn named_locks_exclude(kind: Kind) {
    let h = Harness::new(kind).await;
    let store = Arc::new(h.open().await);
    let first = store.named_lock("refresh/u1.s1").await.unwrap();
    let (acquired, mut rx) = tokio::sync::oneshot::channel();
    let waiter = {
        let store = store.clone();
        tokio::spawn(async move {
            let lock = store.named_lock("refresh/u1.s1").await.unwrap();
            let _ = acquired.send(());
            drop(lock);
        })
    };
    // Another name is not held.
    tokio::time::timeout(PATIENCE, store.named_lock("refresh/u2.s1"))
        .await
        .expect("another name is free")
        .unwrap();
    // The waiter cannot get the held name (a bounded look: it would get it
    // in milliseconds if the lock did not exclude).
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut rx)
            .await
            .is_err(),
        "the second holder got a held lock"
    );
    drop(first);
    tokio::time::timeout(PATIENCE, rx)
        .await
        .expect("released on drop")
        .unwrap();
    waiter.await.unwrap();
}

async fn import_copies_everything_into_an_empty_store_only(kind: Kind) {
    let source_h = Harness::new(kind).await;
    let source = source_h.open().await;
    source.check_master_key().await.unwrap();
    let mut batch = Batch::default();
    batch.put(&server("s1"));
    batch.put(&tool("t1", "s1", "s1_query"));
    batch.put(&user("u1"));
    batch.put(&token("tok1", "u1"));
    batch.put_token_hash(&token("tok1", "u1").hash, "tok1");
    batch.put(&connection("u1", "s1"));
    batch.put_secret("connection/u1.s1/refresh_token", b"refresh");
    batch.audit(event("admin", "server.register", "server/s1"));
    apply(&source, batch).await;
    source
        .append_audit(vec![event("user:u1@example.com", "tool.call", "tool/t1")])
        .await
        .unwrap();
    let records = source.export_records().await.unwrap();
    let secrets = source.export_secrets().await.unwrap();
    let events = source
        .audit_forward(1, source.last_audit_sequence(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(events.len(), 2);

    let target_h = Harness::new(kind).await;
    let target = target_h.open().await;
    target
        .import(records.clone(), secrets.clone(), events.clone())
        .await
        .unwrap();
    assert_eq!(target.export_records().await.unwrap(), records);
    assert_eq!(target.export_secrets().await.unwrap(), secrets);
    assert_eq!(target.last_audit_sequence(), 2);
    assert_eq!(target.audit_forward(1, 2, 10).await.unwrap(), events);
    assert_eq!(
        target
            .secret("connection/u1.s1/refresh_token")
            .await
            .unwrap()
            .unwrap(),
        b"refresh"
    );
    target.check_master_key().await.unwrap();
    // Numbering continues after the copied events.
    target
        .append_audit(vec![event("user:u1@example.com", "tool.call", "tool/t1")])
        .await
        .unwrap();
    assert_eq!(target.last_audit_sequence(), 3);
    // A second copy into the now non-empty store is refused and writes
    // nothing.
    let err = target.import(records, secrets, events).await.unwrap_err();
    assert!(matches!(err, StoreError::Schema(_)), "{err}");
    assert!(err.to_string().contains("empty"), "{err}");
    assert_eq!(target.audit_forward(1, 10, 10).await.unwrap().len(), 3);
}

// ---- The audit hash chain and retention ------------------------------------

/// Appends `n` lone events (tool calls) and one admin change's two events.
async fn some_events(store: &Store, n: usize) {
    for i in 0..n {
        store
            .append_audit(vec![
                event("user:a@example.com", "tool.call", &format!("tool/t{i}")).with_details(
                    json!({"z": i, "a": {"y": "ünïcode \"q\" \n", "b": [1, null, true]}}),
                ),
            ])
            .await
            .unwrap();
    }
    let mut batch = Batch::default();
    batch.put(&user("u9"));
    batch.audit(event("admin", "user.create", "user/u9"));
    batch.audit(event("admin", "user.disable", "user/u9").with_reason("renamed"));
    apply(store, batch).await;
}

/// Replaces the stored event `seq` with `edit(event)`, or deletes it when
/// `edit` is `None`, behind the store's back.
async fn tamper(h: &Harness, store: &Store, seq: u64, edit: Option<fn(&mut AuditEvent)>) {
    match (h, &store.backend) {
        (Harness::Embedded(_), Backend::Sled(s)) => {
            let mut key = b"audit/".to_vec();
            key.extend_from_slice(&seq.to_be_bytes());
            match edit {
                Some(edit) => {
                    let value = s.db().get(&key).unwrap().unwrap();
                    let mut event: AuditEvent = serde_json::from_slice(&value[1..]).unwrap();
                    edit(&mut event);
                    let mut value = vec![FORMAT_VERSION];
                    value.extend(serde_json::to_vec(&event).unwrap());
                    s.db().insert(key, value).unwrap();
                }
                None => {
                    s.db().remove(key).unwrap();
                }
            }
        }
        (Harness::Postgres(db), Backend::Postgres(_)) => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(db.url()).await.unwrap();
            let seq = i64::try_from(seq).unwrap();
            match edit {
                Some(edit) => {
                    let mut event = store
                        .audit_forward(seq as u64, seq as u64, 1)
                        .await
                        .unwrap()[0]
                        .clone();
                    edit(&mut event);
                    let mut body = serde_json::to_value(&event).unwrap();
                    body.as_object_mut().unwrap().remove("sequence");
                    body.as_object_mut().unwrap().remove("time");
                    sqlx::query("UPDATE audit_events SET body = $2::json WHERE seq = $1")
                        .bind(seq)
                        .bind(body.to_string())
                        .execute(&mut conn)
                        .await
                        .unwrap();
                }
                None => {
                    sqlx::query("DELETE FROM audit_events WHERE seq = $1")
                        .bind(seq)
                        .execute(&mut conn)
                        .await
                        .unwrap();
                }
            }
        }
        _ => unreachable!("the harness opened this store"),
    }
}

async fn the_audit_chain_links_every_event_and_verifies(kind: Kind) {
    let h = Harness::new(kind).await;
    let store = h.open().await;
    assert_eq!(
        store.verify_audit_chain().await.unwrap().to_string(),
        "audit chain intact: 0 events"
    );
    some_events(&store, 5).await;
    let events = store.audit_forward(1, 7, 100).await.unwrap();
    assert_eq!(events.len(), 7);
    let mut prev = chain::GENESIS;
    for e in &events {
        assert_eq!(
            e.hash.len(),
            64,
            "event {} has a SHA-256 hex hash",
            e.sequence
        );
        assert_eq!(e.hash, chain::link_hash(&prev, e));
        prev = chain::hash_bytes(&e.hash);
    }
    assert_eq!(
        store.verify_audit_chain().await.unwrap().to_string(),
        "audit chain intact: 7 events, #1..#7"
    );
    // The chain goes on after a reopen (from the newest stored hash).
    drop(store);
    let store = h.open().await;
    some_events(&store, 1).await;
    let next = store.audit_forward(8, 8, 1).await.unwrap();
    assert_eq!(next[0].hash, chain::link_hash(&prev, &next[0]));
    assert!(matches!(
        store.verify_audit_chain().await.unwrap(),
        ChainReport::Intact {
            events: 10,
            range: Some((1, 10)),
            ..
        }
    ));
}

async fn an_edited_audit_event_breaks_the_chain_at_that_event(kind: Kind) {
    let h = Harness::new(kind).await;
    let store = h.open().await;
    some_events(&store, 5).await;
    tamper(
        &h,
        &store,
        4,
        Some(|e: &mut AuditEvent| e.outcome = Outcome::Denied),
    )
    .await;
    let report = store.verify_audit_chain().await.unwrap().to_string();
    assert!(
        report.starts_with("event #4 (tool.call at ")
            && report.ends_with("Z) was altered: its hash does not match its contents"),
        "{report}"
    );
}

async fn a_deleted_middle_audit_event_is_reported_missing(kind: Kind) {
    let h = Harness::new(kind).await;
    let store = h.open().await;
    some_events(&store, 5).await;
    tamper(&h, &store, 3, None).await;
    assert_eq!(
        store.verify_audit_chain().await.unwrap(),
        ChainReport::Broken("event #4 does not follow #2: events are missing or reordered".into())
    );
}

async fn retention_prunes_the_oldest_and_the_chain_verifies_from_the_anchor(kind: Kind) {
    let h = Harness::new(kind).await;
    let store = h.open().await;
    some_events(&store, 10).await;
    assert_eq!(store.audit_anchor().await.unwrap(), None);
    // In small batches: 3, 3, then 1 up to #7.
    assert_eq!(store.prune_audit(7, 3).await.unwrap(), 3);
    assert_eq!(store.prune_audit(7, 3).await.unwrap(), 3);
    assert_eq!(store.prune_audit(7, 3).await.unwrap(), 1);
    assert_eq!(store.prune_audit(7, 3).await.unwrap(), 0);
    let kept: Vec<u64> = store
        .audit_forward(1, 12, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.sequence)
        .collect();
    assert_eq!(kept, (8..=12).collect::<Vec<_>>());
    let anchor = store.audit_anchor().await.unwrap().unwrap();
    assert_eq!(anchor.sequence, 7);
    assert_eq!(anchor.hash.len(), 64);
    assert_eq!(
        store.verify_audit_chain().await.unwrap().to_string(),
        "audit chain intact: 5 events, #8..#12 (events up to #7 were pruned by retention; the chain starts from its recorded hash)"
    );
    // Deleting the first kept event is still seen.
    tamper(&h, &store, 8, None).await;
    assert_eq!(
        store.verify_audit_chain().await.unwrap(),
        ChainReport::Broken("event #9 does not follow #7: events are missing or reordered".into())
    );
    // Everything pruned: the chain goes on from the anchor, also after a
    // reopen.
    store.prune_audit(12, 100).await.unwrap();
    drop(store);
    let store = h.open().await;
    some_events(&store, 1).await;
    let report = store.verify_audit_chain().await.unwrap();
    assert!(
        matches!(
            report,
            ChainReport::Intact {
                events: 3,
                range: Some((13, 15)),
                ..
            }
        ),
        "{report}"
    );
}
