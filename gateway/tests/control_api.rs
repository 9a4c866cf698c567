//! Drives every `toolgate.v1` service through tonic clients against a daemon
//! started in-process on port 0 with a temp data directory.

mod common;

use common::{admin, any_file_contains, clients, register, start};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use toolgate_proto::v1;

fn pending() -> i32 {
    v1::ToolState::PendingReview.into()
}

fn approved() -> i32 {
    v1::ToolState::Approved.into()
}

/// Asserts that `clients` are refused with UNAUTHENTICATED by two services,
/// in a message that does not hold the admin `token`.
async fn unauthenticated<I: Interceptor + Clone>(
    mut clients: toolgate_proto::Clients<InterceptedService<Channel, I>>,
    token: &str,
) {
    let err = clients
        .servers
        .list_servers(v1::ListServersRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(!err.message().contains(token));
    let err = clients
        .settings
        .get_settings(v1::GetSettingsRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn missing_or_wrong_admin_token_is_unauthenticated_and_reveals_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, token) = start(dir.path()).await;
    // No token at all, then a wrong one.
    let no_token = |request: Request<()>| Ok::<_, Status>(request);
    unauthenticated(clients(daemon.grpc_addr, no_token).await, &token).await;
    let wrong = admin("tga_wrong-token-value-000000");
    unauthenticated(clients(daemon.grpc_addr, wrong).await, &token).await;
    // A malformed actor name is refused, not silently replaced.
    let mut named = clients(
        daemon.grpc_addr,
        admin(&token).with_actor("bad actor!").unwrap(),
    )
    .await;
    let err = named
        .servers
        .list_servers(v1::ListServersRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("x-toolgate-actor:"));
    // Health needs no token.
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", daemon.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "toolgate.v1.ServerService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    daemon.stop().await.unwrap();
}

#[tokio::test]
async fn register_configure_discover_and_review_tools() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, token) = start(dir.path()).await;
    let mut c = clients(daemon.grpc_addr, admin(&token)).await;

    let catalog = c
        .catalog
        .list_catalog_entries(v1::ListCatalogEntriesRequest {})
        .await
        .unwrap()
        .into_inner();
    let sf = &catalog.entries[0];
    assert_eq!(sf.kind, "salesforce");
    assert_eq!(
        sf.callback_url,
        "https://toolgate.example.com/auth/callback"
    );
    assert_eq!(
        sf.default_scopes,
        ["api", "refresh_token", "offline_access"]
    );
    assert_eq!(sf.tools.len(), 13);

    // Registration validates, names the bad field, and runs discovery at once.
    let err = c
        .servers
        .register_server(v1::RegisterServerRequest {
            catalog_kind: "salesforce".into(),
            name: "Prod".into(),
            tool_prefix: "Sales-Force".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with("tool_prefix:"),
        "{}",
        err.message()
    );
    let err = c
        .servers
        .register_server(v1::RegisterServerRequest {
            catalog_kind: "github".into(),
            name: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = c
        .servers
        .register_server(v1::RegisterServerRequest {
            catalog_kind: "salesforce".into(),
            name: "Sandbox".into(),
            login_host: Some(v1::LoginHost {
                kind: v1::LoginHostKind::MyDomain.into(),
                url: "http://acme.my.salesforce.com".into(),
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        err.message().starts_with("login_host.url:"),
        "{}",
        err.message()
    );

    let registered = register(&mut c, "Salesforce production", "").await;
    let server = registered.server.unwrap();
    assert_eq!(server.tool_prefix, "salesforce");
    assert_eq!(server.api_version, "66.0");
    assert_eq!(
        server.login_host.unwrap().url,
        "https://login.salesforce.com"
    );
    assert_eq!(
        server.callback_url,
        "https://toolgate.example.com/auth/callback"
    );
    let discovery = registered.discovery.unwrap();
    assert_eq!(discovery.added.len(), 13);
    assert!(discovery.added.contains(&"salesforce_query".to_string()));

    let err = c
        .servers
        .register_server(v1::RegisterServerRequest {
            catalog_kind: "salesforce".into(),
            name: "Other".into(),
            tool_prefix: "salesforce".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);

    // The consumer secret is write-only: only set / when / fingerprint come back.
    let err = c
        .servers
        .configure_authentication(v1::ConfigureAuthenticationRequest {
            server_id: server.id.clone(),
            client_id: "3MVG9consumerkey".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with("client_secret:"),
        "{}",
        err.message()
    );
    let secret = "CONSUMER-SECRET-4f1c2e7d9a";
    let configured = c
        .servers
        .configure_authentication(v1::ConfigureAuthenticationRequest {
            server_id: server.id.clone(),
            client_id: "3MVG9consumerkey".into(),
            client_secret: secret.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .server
        .unwrap();
    let auth = configured.auth.clone().unwrap();
    assert!(auth.client_secret_set);
    assert_eq!(auth.client_id, "3MVG9consumerkey");
    assert_eq!(auth.client_secret_fingerprint.len(), 8);
    assert_eq!(auth.scopes, ["api", "refresh_token", "offline_access"]);
    assert!(!format!("{configured:?}").contains(secret) && !format!("{auth:?}").contains(secret));
    // Rotation changes the fingerprint; an empty secret keeps it.
    let rotated = c
        .servers
        .configure_authentication(v1::ConfigureAuthenticationRequest {
            server_id: server.id.clone(),
            client_id: "3MVG9consumerkey".into(),
            client_secret: "ROTATED-SECRET-77".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .server
        .unwrap()
        .auth
        .unwrap();
    assert_ne!(
        rotated.client_secret_fingerprint,
        auth.client_secret_fingerprint
    );
    let kept = c
        .servers
        .configure_authentication(v1::ConfigureAuthenticationRequest {
            server_id: server.id.clone(),
            client_id: "3MVG9otherkey".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .server
        .unwrap()
        .auth
        .unwrap();
    assert_eq!(
        kept.client_secret_fingerprint,
        rotated.client_secret_fingerprint
    );
    assert_eq!(kept.client_id, "3MVG9otherkey");
    daemon.store.flush().await.unwrap();
    for needle in [secret, "ROTATED-SECRET-77"] {
        assert_eq!(
            any_file_contains(dir.path(), needle.as_bytes()),
            None,
            "{needle} is stored in plaintext"
        );
    }

    // Rediscovery with nothing changed.
    let report = c
        .servers
        .discover_tools(v1::DiscoverToolsRequest {
            server_id: server.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .report
        .unwrap();
    assert_eq!((report.added.len(), report.unchanged), (0, 13));

    // Listing: filters and pagination.
    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = c
            .tools
            .list_tools(v1::ListToolsRequest {
                server_id: server.id.clone(),
                state: pending(),
                page_size: 5,
                page_token: page_token.clone(),
                omit_schemas: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.total_size, 13);
        assert!(page.tools.iter().all(|t| t.input_schema_json.is_empty()));
        seen.extend(page.tools.into_iter().map(|t| t.name));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted);
    assert_eq!(seen.len(), 13);
    let reads = c
        .tools
        .list_tools(v1::ListToolsRequest {
            action: v1::ToolAction::Read.into(),
            name_contains: "RECORD".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = reads.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["salesforce_get_record", "salesforce_get_related_records"]
    );
    let err = c
        .tools
        .list_tools(v1::ListToolsRequest {
            page_token: "garbage!".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(err.message().starts_with("page_token:"));

    // One tool: detail, classification, and the REMOVED rule.
    let tools = c
        .tools
        .list_tools(v1::ListToolsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .tools;
    let by_name = |n: &str| tools.iter().find(|t| t.name == n).unwrap().clone();
    let query = c
        .tools
        .get_tool(v1::GetToolRequest {
            id: by_name("salesforce_query").id,
        })
        .await
        .unwrap()
        .into_inner()
        .tool
        .unwrap();
    let schema: serde_json::Value = serde_json::from_str(&query.input_schema_json).unwrap();
    assert_eq!(schema["properties"]["soql"]["type"], "string");
    assert!(query.annotations.unwrap().read_only_hint);
    assert_eq!(
        by_name("salesforce_delete_record")
            .classification
            .unwrap()
            .action,
        i32::from(v1::ToolAction::Delete)
    );
    let classified = c
        .tools
        .update_tool(v1::UpdateToolRequest {
            id: query.id.clone(),
            classification: Some(v1::Classification {
                action: v1::ToolAction::Read.into(),
                sensitive: true,
                dangerous: false,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tool
        .unwrap();
    assert!(classified.classification.unwrap().sensitive);
    assert_eq!(
        classified.state,
        pending(),
        "classification never changes state"
    );
    let err = c
        .tools
        .update_tool(v1::UpdateToolRequest {
            id: query.id.clone(),
            state: Some(v1::ToolState::Removed.into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // Batch approval is atomic: one unknown id and nothing changes.
    let ids = vec![
        by_name("salesforce_query").id,
        by_name("salesforce_search").id,
    ];
    let err = c
        .tools
        .batch_update_tools(v1::BatchUpdateToolsRequest {
            ids: vec![ids[0].clone(), "no-such-tool".into()],
            state: approved(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let still = c
        .tools
        .get_tool(v1::GetToolRequest { id: ids[0].clone() })
        .await
        .unwrap()
        .into_inner()
        .tool
        .unwrap();
    assert_eq!(still.state, pending());
    let done = c
        .tools
        .batch_update_tools(v1::BatchUpdateToolsRequest {
            ids: ids.clone(),
            state: approved(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(done.tools.iter().all(|t| t.state == approved()));
    assert!(done.tools.iter().all(|t| t.updated_by == "admin"));

    // Update server: a new prefix renames exposed tools.
    let updated = c
        .servers
        .update_server(v1::UpdateServerRequest {
            id: server.id.clone(),
            tool_prefix: Some("sfprod".into()),
            api_version: Some("v65.0".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .server
        .unwrap();
    assert_eq!(updated.api_version, "65.0");
    let renamed = c
        .tools
        .get_tool(v1::GetToolRequest { id: ids[0].clone() })
        .await
        .unwrap()
        .into_inner()
        .tool
        .unwrap();
    assert_eq!(renamed.name, "sfprod_query");

    // Delete removes the server's tools and maintained toolsets.
    let other = register(&mut c, "Sandbox", "sfsandbox")
        .await
        .server
        .unwrap();
    c.servers
        .delete_server(v1::DeleteServerRequest {
            id: other.id.clone(),
        })
        .await
        .unwrap();
    let err = c
        .servers
        .get_server(v1::GetServerRequest {
            id: other.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let left = c
        .tools
        .list_tools(v1::ListToolsRequest {
            server_id: other.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(left.total_size, 0);
    let toolsets = c
        .toolsets
        .list_toolsets(v1::ListToolsetsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .toolsets;
    let names: Vec<_> = toolsets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Salesforce production: All approved",
            "Salesforce production: Read only"
        ]
    );
    daemon.stop().await.unwrap();
}

#[tokio::test]
async fn a_different_master_key_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, _) = start(dir.path()).await;
    daemon.stop().await.unwrap();
    std::fs::remove_file(dir.path().join("master.key")).unwrap();
    let config = common::config(dir.path());
    let err = toolgate_gateway::app::open(&config, &Default::default())
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}")
            .contains("master.key is missing but the data directory already holds a database"),
        "{err:#}"
    );
    assert!(
        !dir.path().join("master.key").exists(),
        "a lost key is not replaced by a new one"
    );
    // A wrong key file is refused too.
    std::fs::write(dir.path().join("master.key"), "cd".repeat(32)).unwrap();
    let err = toolgate_gateway::app::open(&config, &Default::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("master key does not match"),
        "{err:#}"
    );
    let secrets = toolgate_gateway::config::Secrets {
        master_key: Some("ab".repeat(32)),
        admin_token: None,
    };
    let err = toolgate_gateway::app::open(&config, &secrets)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("master key does not match"));
}

#[tokio::test]
async fn a_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, token) = start(dir.path()).await;
    let mut c = clients(daemon.grpc_addr, admin(&token)).await;
    let server = register(&mut c, "Salesforce", "").await.server.unwrap();
    c.servers
        .configure_authentication(v1::ConfigureAuthenticationRequest {
            server_id: server.id.clone(),
            client_id: "key".into(),
            client_secret: "secret-value-123".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let user = c
        .users
        .create_user(v1::CreateUserRequest {
            email: "cy@example.com".into(),
            display_name: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    let events_before = c
        .audit
        .list_events(v1::ListEventsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .events;
    // Each event carries its audit hash chain link (64 hex digits).
    assert!(!events_before.is_empty());
    for event in &events_before {
        assert_eq!(event.hash.len(), 64, "event {}", event.sequence);
        assert!(event.hash.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    daemon.stop().await.unwrap();

    let (daemon, token_again) = start(dir.path()).await;
    assert_eq!(token, token_again);
    let mut c = clients(daemon.grpc_addr, admin(&token)).await;
    let server_after = c
        .servers
        .get_server(v1::GetServerRequest {
            id: server.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .server
        .unwrap();
    assert!(server_after.auth.unwrap().client_secret_set);
    assert_eq!(
        daemon
            .store
            .secret(&format!("server/{}/client_secret", server.id))
            .await
            .unwrap()
            .unwrap(),
        b"secret-value-123"
    );
    let users = c
        .users
        .list_users(v1::ListUsersRequest {})
        .await
        .unwrap()
        .into_inner()
        .users;
    assert_eq!(users[0].id, user.id);
    let events_after = c
        .audit
        .list_events(v1::ListEventsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(
        events_after, events_before,
        "no rediscovery without an upgrade"
    );
    let tools = c
        .tools
        .list_tools(v1::ListToolsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(tools.total_size, 13);
    daemon.stop().await.unwrap();
}
