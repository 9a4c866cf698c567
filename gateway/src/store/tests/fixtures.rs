//! What the store's tests share: where a test's store lives ([`Harness`],
//! one per backend) and records to write.

use std::time::Duration;

use serde_json::json;

use super::super::*;
use crate::model::{
    AuditEvent, Classification, Connection, LoginHost, Server, Token, Tool, ToolAction,
    ToolDefinition, ToolEnablement, ToolState, Toolset, ToolsetKind, User, UserStatus,
};

/// How long a test waits for something that should take milliseconds.
pub(super) const PATIENCE: Duration = Duration::from_secs(10);

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Embedded,
    Postgres,
}

/// Where a test's store lives; opened as often as the test needs (the
/// embedded store only once at a time).
pub(super) enum Harness {
    Embedded(tempfile::TempDir),
    Postgres(toolgate_pgtemp::TestDatabase),
}

pub(super) fn key() -> MasterKey {
    MasterKey::parse(&"11".repeat(32), "test").unwrap()
}

impl Harness {
    pub(super) async fn new(kind: Kind) -> Self {
        match kind {
            Kind::Embedded => Harness::Embedded(tempfile::tempdir().unwrap()),
            Kind::Postgres => Harness::Postgres(toolgate_pgtemp::TestDatabase::create().await),
        }
    }

    pub(super) async fn open(&self) -> Store {
        self.open_with(key()).await.unwrap()
    }

    pub(super) async fn open_with(&self, key: MasterKey) -> Result<Store, StoreError> {
        match self {
            Harness::Embedded(dir) => {
                let lock = DirLock::acquire(dir.path())?;
                Store::open(dir.path(), key, lock)
            }
            Harness::Postgres(db) => {
                Store::open_postgres(db.url(), key, PgOptions::default()).await
            }
        }
    }
}

// ---- Records ---------------------------------------------------------------

pub(super) fn server(id: &str) -> Server {
    Server {
        id: id.into(),
        name: format!("Server {id}"),
        catalog_kind: "salesforce".into(),
        tool_prefix: id.into(),
        login_host: LoginHost::Production,
        api_version: "66.0".into(),
        tool_enablement: ToolEnablement::Inherit,
        disabled: false,
        auth: None,
        created_at: 1,
        updated_at: 1,
    }
}

pub(super) fn tool(id: &str, server_id: &str, name: &str) -> Tool {
    Tool {
        id: id.into(),
        server_id: server_id.into(),
        name: name.into(),
        definition: std::sync::Arc::new(ToolDefinition {
            name: name.into(),
            title: name.into(),
            description: "A tool.".into(),
            // Property order is part of what is stored ("zeta" first).
            input_schema: json!({"type": "object", "properties": {"zeta": {}, "alpha": {}}}),
            output_schema: None,
            annotations: Default::default(),
        }),
        definition_hash: "00".repeat(32),
        approved_hash: None,
        approved_definition: None,
        state: ToolState::PendingReview,
        classification: Classification {
            action: ToolAction::Read,
            sensitive: false,
            dangerous: false,
        },
        discovered_at: 1,
        updated_at: 1,
        updated_by: "system".into(),
        drift: Vec::new(),
    }
}

pub(super) fn user(id: &str) -> User {
    User {
        id: id.into(),
        email: format!("{id}@example.com"),
        display_name: id.into(),
        status: UserStatus::Active,
        created_at: 1,
        updated_at: 1,
    }
}

pub(super) fn token(id: &str, user_id: &str) -> Token {
    Token {
        id: id.into(),
        user_id: user_id.into(),
        name: "laptop".into(),
        prefix: "tgp_abcd".into(),
        hash: format!("{id:0>64}"),
        created_at: 1,
        expires_at: None,
        last_used_at: None,
        revoked_at: None,
    }
}

pub(super) fn toolset(id: &str, server_id: Option<&str>) -> Toolset {
    Toolset {
        revision: 1,
        id: id.into(),
        name: format!("Toolset {id}"),
        description: String::new(),
        kind: if server_id.is_some() {
            ToolsetKind::ReadOnly
        } else {
            ToolsetKind::Custom
        },
        server_id: server_id.map(str::to_owned),
        tool_ids: Vec::new(),
        created_at: 1,
        updated_at: 1,
    }
}

pub(super) fn connection(user_id: &str, server_id: &str) -> Connection {
    Connection {
        id: Connection::id_for(user_id, server_id),
        user_id: user_id.into(),
        server_id: server_id.into(),
        instance_url: "https://acme.my.salesforce.com".into(),
        identity_url: "https://login.salesforce.com/id/00D/005".into(),
        salesforce_user_id: "005".into(),
        salesforce_org_id: "00D".into(),
        salesforce_username: "ana@acme.example".into(),
        scopes: "api refresh_token".into(),
        connected_at: 1,
        refreshed_at: None,
    }
}

/// Runs one admin change that writes `batch`.
pub(super) async fn apply(store: &Store, batch: Batch) {
    store
        .write(|_| async move { Ok::<_, StoreError>((batch, ())) })
        .await
        .unwrap();
}

/// An allowed event of the action named `action` (e.g. `tool.call`).
pub(super) fn event(actor: &str, action: &str, target: &str) -> AuditEvent {
    let action = crate::audit::Action::parse(action).expect("an action toolgate writes");
    AuditEvent::allowed(actor, action, target)
}

/// Waits until `live` delivers the event with `sequence`.
pub(super) async fn wait_for(
    live: &mut tokio::sync::broadcast::Receiver<AuditEvent>,
    sequence: u64,
) {
    tokio::time::timeout(PATIENCE, async {
        loop {
            if live.recv().await.unwrap().sequence >= sequence {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("event {sequence} not delivered"));
}
