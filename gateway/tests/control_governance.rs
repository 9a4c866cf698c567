//! Governance through the control API: toolsets, access profiles, grants,
//! users and tokens decide who may call what; every change is audited,
//! listed, filtered and streamed. Daemon in-process on port 0.

mod common;

use common::{Clients, admin, any_file_contains, clients, register, start};
use tokio_stream::StreamExt;
use tonic::Code;
use toolgate_proto::v1;

fn approved() -> i32 {
    v1::ToolState::Approved.into()
}

#[tokio::test]
async fn toolsets_profiles_grants_users_and_tokens_decide_who_may_call_what() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, token) = start(dir.path()).await;
    let mut c = clients(daemon.grpc_addr, admin(&token)).await;
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
            expected_revision: None,
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
    assert_eq!(issued.mcp_url, "https://toolgate.example.com/mcp");
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
            ..Default::default()
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
            expected_revision: None,
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
            expected_revision: None,
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
            expected_revision: None,
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
            expected_revision: None,
            profile_id: profile.id.clone(),
            user_id: ana.id.clone(),
        })
        .await
        .unwrap();
    assert!(user_tools(c.clone(), ana.id.clone()).await.is_empty());
    let err = c
        .profiles
        .revoke_user(v1::RevokeUserRequest {
            expected_revision: None,
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
    let mut c = clients(
        daemon.grpc_addr,
        admin(&token).with_actor("ci-bot").unwrap(),
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
