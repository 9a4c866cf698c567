//! Drives every `toolgate.v1` service through tonic clients against a daemon
//! started in-process on port 0 with a temp data directory.

mod common;

use common::{Bearer, Clients, any_file_contains, register, start};
use tokio_stream::StreamExt;
use tonic::Code;
use toolgate_proto::v1;

fn pending() -> i32 {
    v1::ToolState::PendingReview.into()
}

fn approved() -> i32 {
    v1::ToolState::Approved.into()
}

#[tokio::test]
async fn missing_or_wrong_admin_token_is_unauthenticated_and_reveals_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, token) = start(dir.path()).await;
    for bearer in [
        Bearer::new(None),
        Bearer::new(Some("tga_wrong-token-value-000000")),
    ] {
        let mut clients = Clients::connect(daemon.grpc_addr, bearer).await;
        let err = clients
            .servers
            .list_servers(v1::ListServersRequest {})
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
        assert!(!err.message().contains(&token));
        let err = clients
            .settings
            .get_settings(v1::GetSettingsRequest {})
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
    }
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
    let mut c = Clients::connect(daemon.grpc_addr, Bearer::new(Some(&token))).await;

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
    assert_eq!(err.code(), Code::FailedPrecondition);
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
async fn toolsets_profiles_grants_users_and_tokens_decide_who_may_call_what() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, token) = start(dir.path()).await;
    let mut c = Clients::connect(daemon.grpc_addr, Bearer::new(Some(&token))).await;
    let server = register(&mut c, "Salesforce", "").await.server.unwrap();
    let tools = c
        .tools
        .list_tools(v1::ListToolsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .tools;
    let id_of = |n: &str| tools.iter().find(|t| t.name == n).unwrap().id.clone();

    // Only approved tools may join a custom toolset.
    let err = c
        .toolsets
        .create_toolset(v1::CreateToolsetRequest {
            name: "Sales reads".into(),
            tool_ids: vec![id_of("salesforce_query")],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("PENDING_REVIEW"),
        "{}",
        err.message()
    );
    c.tools
        .batch_update_tools(v1::BatchUpdateToolsRequest {
            ids: vec![
                id_of("salesforce_query"),
                id_of("salesforce_get_record"),
                id_of("salesforce_create_record"),
            ],
            state: approved(),
        })
        .await
        .unwrap();
    let custom = c
        .toolsets
        .create_toolset(v1::CreateToolsetRequest {
            name: "Sales reads".into(),
            description: "query and get".into(),
            tool_ids: vec![id_of("salesforce_query"), id_of("salesforce_get_record")],
        })
        .await
        .unwrap()
        .into_inner()
        .toolset
        .unwrap();
    assert_eq!(custom.tool_ids.len(), 2);
    let err = c
        .toolsets
        .create_toolset(v1::CreateToolsetRequest {
            name: "sales READS".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);

    // Maintained toolsets compute themselves and refuse edits.
    let listed = c
        .toolsets
        .list_toolsets(v1::ListToolsetsRequest {
            server_id: server.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .toolsets;
    let read_only = listed
        .iter()
        .find(|t| t.kind == i32::from(v1::ToolsetKind::ReadOnly))
        .unwrap();
    let all = listed
        .iter()
        .find(|t| t.kind == i32::from(v1::ToolsetKind::AllApproved))
        .unwrap();
    assert_eq!(read_only.tool_ids.len(), 2);
    assert_eq!(all.tool_ids.len(), 3);
    let err = c
        .toolsets
        .add_toolset_tools(v1::AddToolsetToolsRequest {
            toolset_id: all.id.clone(),
            tool_ids: vec![id_of("salesforce_query")],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let err = c
        .toolsets
        .delete_toolset(v1::DeleteToolsetRequest { id: all.id.clone() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);

    // Users and tokens.
    let ana = c
        .users
        .create_user(v1::CreateUserRequest {
            email: "Ana.Souza@Example.com".into(),
            display_name: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(ana.email, "ana.souza@example.com");
    assert_eq!(ana.display_name, "ana.souza");
    let err = c
        .users
        .create_user(v1::CreateUserRequest {
            email: "ana.souza@example.com".into(),
            display_name: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    let issued = c
        .users
        .issue_token(v1::IssueTokenRequest {
            user_id: ana.id.clone(),
            name: "laptop".into(),
            expires_at: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(issued.secret.starts_with("tgp_"));
    assert_eq!(issued.secret.len(), 47);
    let listed = c
        .users
        .list_tokens(v1::ListTokensRequest {
            user_id: ana.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .tokens;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].prefix, &issued.secret[..8]);
    assert!(!format!("{listed:?}").contains(&issued.secret));
    daemon.store.flush().await.unwrap();
    assert_eq!(
        any_file_contains(dir.path(), issued.secret.as_bytes()),
        None
    );

    // Profiles: bind, grant, and see the effective tool list change.
    let profile = c
        .profiles
        .create_access_profile(v1::CreateAccessProfileRequest {
            name: "Sales".into(),
            description: String::new(),
            toolset_ids: vec![custom.id.clone()],
        })
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap();
    let user_tools = |mut c: Clients, id: String| async move {
        c.users
            .list_user_tools(v1::ListUserToolsRequest { user_id: id })
            .await
            .unwrap()
            .into_inner()
            .tool_names
    };
    assert!(user_tools(c.clone(), ana.id.clone()).await.is_empty());
    let err = c
        .profiles
        .grant_user(v1::GrantUserRequest {
            profile_id: profile.id.clone(),
            user_id: ana.id.clone(),
            expires_at: Some(prost_types::Timestamp {
                seconds: 1,
                nanos: 0,
            }),
        })
        .await
        .unwrap_err();
    assert!(err.message().starts_with("expires_at:"));
    let granted = c
        .profiles
        .grant_user(v1::GrantUserRequest {
            profile_id: profile.id.clone(),
            user_id: ana.id.clone(),
            expires_at: Some(prost_types::Timestamp {
                seconds: 4_000_000_000,
                nanos: 0,
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap();
    assert_eq!(granted.grants[0].user_id, ana.id);
    assert_eq!(
        user_tools(c.clone(), ana.id.clone()).await,
        ["salesforce_get_record", "salesforce_query"]
    );
    c.profiles
        .bind_toolsets(v1::BindToolsetsRequest {
            profile_id: profile.id.clone(),
            toolset_ids: vec![all.id.clone()],
        })
        .await
        .unwrap();
    assert_eq!(user_tools(c.clone(), ana.id.clone()).await.len(), 3);

    // Disabling a tool removes it at once, even though toolsets still list it.
    c.tools
        .update_tool(v1::UpdateToolRequest {
            id: id_of("salesforce_get_record"),
            state: Some(v1::ToolState::Disabled.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        user_tools(c.clone(), ana.id.clone()).await,
        ["salesforce_create_record", "salesforce_query"]
    );
    // The kill switch stops everything.
    c.settings
        .update_settings(v1::UpdateSettingsRequest {
            mcp_traffic_enabled: Some(false),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(user_tools(c.clone(), ana.id.clone()).await.is_empty());
    let settings = c
        .settings
        .update_settings(v1::UpdateSettingsRequest {
            mcp_traffic_enabled: Some(true),
            require_tool_approval: Some(false),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    assert!(settings.mcp_traffic_enabled && !settings.require_tool_approval);
    // With approval not required, a newly registered server's tools start APPROVED.
    let auto = register(&mut c, "Auto", "auto").await;
    let auto_tools = c
        .tools
        .list_tools(v1::ListToolsRequest {
            server_id: auto.server.unwrap().id,
            state: approved(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(auto_tools.total_size, 13);

    // Revoking the grant and disabling the user.
    c.profiles
        .revoke_user(v1::RevokeUserRequest {
            profile_id: profile.id.clone(),
            user_id: ana.id.clone(),
        })
        .await
        .unwrap();
    assert!(user_tools(c.clone(), ana.id.clone()).await.is_empty());
    let err = c
        .profiles
        .revoke_user(v1::RevokeUserRequest {
            profile_id: profile.id.clone(),
            user_id: ana.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    c.users
        .disable_user(v1::DisableUserRequest { id: ana.id.clone() })
        .await
        .unwrap();
    let err = c
        .users
        .issue_token(v1::IssueTokenRequest {
            user_id: ana.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let revoked = c
        .users
        .revoke_token(v1::RevokeTokenRequest {
            id: issued.token.unwrap().id,
        })
        .await
        .unwrap()
        .into_inner()
        .token
        .unwrap();
    assert!(revoked.revoked_at.is_some());

    // Deleting a custom toolset unbinds it from profiles.
    c.toolsets
        .delete_toolset(v1::DeleteToolsetRequest {
            id: custom.id.clone(),
        })
        .await
        .unwrap();
    let profile = c
        .profiles
        .get_access_profile(v1::GetAccessProfileRequest { id: profile.id })
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap();
    assert_eq!(profile.toolset_ids, vec![all.id.clone()]);
    daemon.stop().await.unwrap();
}

#[tokio::test]
async fn every_change_is_audited_listed_filtered_and_streamed() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, token) = start(dir.path()).await;
    let mut c = Clients::connect(
        daemon.grpc_addr,
        Bearer::new(Some(&token)).with_actor("ci-bot"),
    )
    .await;
    let mut tail = c
        .audit
        .stream_events(v1::StreamEventsRequest {
            action_prefix: "user.".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let server = register(&mut c, "Salesforce", "").await.server.unwrap();
    let user = c
        .users
        .create_user(v1::CreateUserRequest {
            email: "bo@example.com".into(),
            display_name: "Bo".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    let streamed = tail.next().await.unwrap().unwrap().event.unwrap();
    assert_eq!(streamed.action, "user.create");
    assert_eq!(streamed.actor, "admin:ci-bot");
    assert_eq!(streamed.target, format!("user/{}", user.id));

    let all = c
        .audit
        .list_events(v1::ListEventsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .events;
    // register + 13 discoveries + user.create, newest first.
    assert_eq!(all.len(), 15);
    assert_eq!(all[0].action, "user.create");
    assert!(all.windows(2).all(|w| w[0].sequence > w[1].sequence));
    let registered = all.iter().find(|e| e.action == "server.register").unwrap();
    assert_eq!(registered.target, format!("server/{}", server.id));
    assert_eq!(registered.outcome, i32::from(v1::Outcome::Allowed));

    let mut pages = 0;
    let mut count = 0;
    let mut page_token = String::new();
    loop {
        let page = c
            .audit
            .list_events(v1::ListEventsRequest {
                action_prefix: "tool.".into(),
                page_size: 4,
                page_token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        count += page.events.len();
        assert!(page.events.iter().all(|e| e.action == "tool.discover"));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!((count, pages), (13, 4));
    let by_other = c
        .audit
        .list_events(v1::ListEventsRequest {
            actor: "admin".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(by_other.events.is_empty());

    // A tail with `since` replays first, then follows.
    let mut replay = c
        .audit
        .stream_events(v1::StreamEventsRequest {
            since: Some(prost_types::Timestamp {
                seconds: 0,
                nanos: 0,
            }),
            target_prefix: "server/".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let first = replay.next().await.unwrap().unwrap().event.unwrap();
    assert_eq!(first.action, "server.register");
    c.servers
        .update_server(v1::UpdateServerRequest {
            id: server.id.clone(),
            disabled: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    let next = replay.next().await.unwrap().unwrap().event.unwrap();
    assert_eq!(next.action, "server.update");
    assert!(next.reason.contains("disabled"));
    daemon.stop().await.unwrap();
}

#[tokio::test]
async fn a_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, token) = start(dir.path()).await;
    let mut c = Clients::connect(daemon.grpc_addr, Bearer::new(Some(&token))).await;
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
    daemon.stop().await.unwrap();

    let (daemon, token_again) = start(dir.path()).await;
    assert_eq!(token, token_again);
    let mut c = Clients::connect(daemon.grpc_addr, Bearer::new(Some(&token))).await;
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
