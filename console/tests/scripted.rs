//! The whole console, scripted key by key against a real daemon on port 0:
//! register Salesforce with its credentials, approve two pending tools with
//! a bulk action, create a toolset and an access profile, grant a user and
//! issue their token, turn that AI client's tool calls off, set the
//! identity provider; then the daemon's state is checked through the API.

mod common;

use common::{Harness, clients, mcp_tool_call, render, start_daemon};
use toolgate_console::state::{
    ACTION_EXAMPLES, Overlay, Screen, TARGET_EXAMPLE, Tail, claude_config_line,
};
use toolgate_console::ui::Theme;
use toolgate_proto::v1;

const SECRET: &str = "consumer-secret-9f8e7d";
const IDP_SECRET: &str = "idp-secret-5c4b3a";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sets_up_salesforce_from_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, token) = start_daemon(dir.path()).await;
    let addr = format!("http://{}", daemon.grpc_addr);
    let mut api = clients(daemon.grpc_addr, &token);
    let mut console = Harness::new(clients(daemon.grpc_addr, &token), &addr, 100, 30).await;
    let theme = Theme { color: false };
    let mut screens = Vec::new();

    // Register Salesforce: name, prefix, login host, API version and
    // enablement keep their defaults; the consumer key and secret go in.
    console.keys("1n").await;
    let form = render(&console.app, theme);
    assert!(
        form.contains("https://toolgate.example.com/auth/callback"),
        "the register form shows the callback URL to paste:\n{form}"
    );
    console.keys("<Tab><Tab><Tab><Tab><Tab>").await;
    console.keys("3MVG9.consumer.key<Tab>").await;
    console.keys(SECRET).await;
    screens.push(render(&console.app, theme));
    console.keys("<Enter>").await;
    assert!(
        console.app.overlay.is_none(),
        "{}",
        render(&console.app, theme)
    );
    screens.push(render(&console.app, theme));
    let servers = api
        .servers
        .list_servers(v1::ListServersRequest {})
        .await
        .unwrap()
        .into_inner()
        .servers;
    assert_eq!(servers.len(), 1);
    let server = &servers[0];
    assert_eq!(server.name, "Salesforce");
    assert_eq!(server.tool_prefix, "salesforce");
    let auth = server.auth.clone().unwrap();
    assert_eq!(auth.client_id, "3MVG9.consumer.key");
    assert!(auth.client_secret_set);

    // The review queue: search, mark two, approve them together.
    console.keys("2/get_<Enter>").await;
    assert_eq!(console.app.screen, Screen::Tools);
    assert_eq!(
        console.app.tools.shown.len(),
        4,
        "get_limits, get_record, get_related_records, get_user_info"
    );
    let marked: Vec<String> = console.app.tools.shown[..2]
        .iter()
        .map(|i| console.app.tools.all[*i].name.clone())
        .collect();
    console.keys("<Space><Space>a").await;
    let confirm = render(&console.app, theme);
    assert!(confirm.contains("Approve 2 tools?"), "{confirm}");
    // The daemon's access preview: no profile holds these tools yet.
    assert!(confirm.contains("No one gains access."), "{confirm}");
    console.keys("y").await;
    screens.push(render(&console.app, theme));
    let tools = api
        .tools
        .list_tools(v1::ListToolsRequest {
            state: v1::ToolState::Approved as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tools;
    let mut approved: Vec<String> = tools.iter().map(|t| t.name.clone()).collect();
    approved.sort();
    assert_eq!(approved, marked);
    assert_eq!(console.app.tools.pending(), 11);

    // A custom toolset holding the two approved tools.
    console.keys("<Esc>3n").await;
    console
        .keys("Sales read-only<Tab>Reads for the sales team<Enter>")
        .await;
    console.keys("/sales read<Enter>").await;
    let toolset = console.app.selected_toolset().cloned().unwrap();
    assert_eq!(toolset.name, "Sales read-only");
    console.keys("m").await;
    for name in &marked {
        console.keys(name).await;
        console.keys("<Space>").await;
        for _ in 0..name.chars().count() {
            console.keys("<Backspace>").await;
        }
    }
    console.keys("<Enter>").await;
    let confirm = render(&console.app, theme);
    assert!(
        confirm.contains("Change the tools of Sales read-only?"),
        "{confirm}"
    );
    assert!(confirm.contains("No one gains access."), "{confirm}");
    console.keys("y").await;
    screens.push(render(&console.app, theme));

    // An access profile bound to it.
    console.keys("<Esc>4n").await;
    console.keys("Sales<Enter>").await;
    let profile = console.app.selected_profile().cloned().unwrap();
    assert_eq!(profile.name, "Sales");
    console.keys("b").await;
    console.keys("Sales read-only<Space><Enter>").await;
    let confirm = render(&console.app, theme);
    assert!(
        confirm.contains("Change the toolsets bound to Sales?"),
        "{confirm}"
    );
    console.keys("y").await;

    // A user, granted the profile for 30 days, with a token.
    console.keys("5n").await;
    console.keys("ana@example.com<Tab>Ana Lima<Enter>").await;
    console.keys("u").await;
    console.keys("<Tab><Tab>30d<Enter>").await;
    console.keys("i").await;
    console.keys("<Enter>").await;
    let Some(Overlay::Token(issued)) = &console.app.overlay else {
        panic!("the token is shown once: {:?}", console.app.status);
    };
    assert!(issued.secret.starts_with("tgp_"));
    let config_line = claude_config_line(issued);
    let secret = issued.secret.as_str().to_owned();
    let shown = render(&console.app, theme);
    assert!(shown.contains(&secret), "{shown}");
    assert!(
        shown.contains("https://toolgate.example.com/mcp"),
        "{shown}"
    );
    assert!(
        shown.contains("claude mcp add --transport http toolgate"),
        "{shown}"
    );
    console.keys("<Esc>").await;
    assert!(console.app.overlay.is_none());
    screens.push(render(&console.app, theme));

    // The daemon's state, through the API.
    let users = api
        .users
        .list_users(v1::ListUsersRequest {})
        .await
        .unwrap()
        .into_inner()
        .users;
    assert_eq!(users.len(), 1);
    let ana = &users[0];
    assert_eq!(
        (ana.email.as_str(), ana.display_name.as_str()),
        ("ana@example.com", "Ana Lima")
    );
    let profile = api
        .profiles
        .get_access_profile(v1::GetAccessProfileRequest { id: profile.id })
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap();
    assert_eq!(profile.toolset_ids, vec![toolset.id.clone()]);
    assert_eq!(profile.grants.len(), 1);
    let grant = &profile.grants[0];
    assert_eq!(grant.user_id, ana.id);
    let expires = grant.expires_at.unwrap().seconds - chrono::Utc::now().timestamp();
    assert!((29 * 86_400..=30 * 86_400).contains(&expires), "{expires}");
    let toolset = api
        .toolsets
        .get_toolset(v1::GetToolsetRequest { id: toolset.id })
        .await
        .unwrap()
        .into_inner()
        .toolset
        .unwrap();
    let mut members: Vec<String> = tools
        .iter()
        .filter(|t| toolset.tool_ids.contains(&t.id))
        .map(|t| t.name.clone())
        .collect();
    members.sort();
    assert_eq!(members, marked);
    let tokens = api
        .users
        .list_tokens(v1::ListTokensRequest {
            user_id: ana.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .tokens;
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].name, "laptop");
    assert!(secret.starts_with(&tokens[0].prefix));
    let mut callable = api
        .users
        .list_user_tools(v1::ListUserToolsRequest {
            user_id: ana.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .tool_names;
    callable.sort();
    assert_eq!(
        callable, marked,
        "ana may call exactly the two approved tools"
    );
    assert!(config_line.ends_with(&format!("\"Authorization: Bearer {secret}\"")));

    // Binding the server's "Read only" toolset gives Ana nothing new (she
    // has both approved read tools); approving another read tool then
    // reaches her through it, and the approval says so before it is sent.
    console.keys("4b").await;
    // Typing filters (Space would check a row): "(read" is the kind of
    // the maintained "Read only" toolset.
    console.keys("(read<Space><Enter>").await;
    let confirm = render(&console.app, theme);
    assert!(confirm.contains("Add: Salesforce: Read only"), "{confirm}");
    assert!(confirm.contains("No one gains access."), "{confirm}");
    console.keys("y").await;
    console.keys("2<Esc>/query<Enter>a").await;
    let confirm = render(&console.app, theme);
    assert!(confirm.contains("Approve salesforce_query?"), "{confirm}");
    assert!(
        confirm.contains("Profile Sales: 1 user gains salesforce_query"),
        "{confirm}"
    );
    console.keys("y").await;
    screens.push(render(&console.app, theme));
    let callable = api
        .users
        .list_user_tools(v1::ListUserToolsRequest {
            user_id: ana.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .tool_names;
    assert!(
        callable.contains(&"salesforce_query".to_owned()),
        "{callable:?}"
    );

    // AI clients: Ana's token is one. Its kill switch goes off from the
    // console (asking first); then the identity provider is set from the
    // settings screen, its secret typed masked.
    console.keys("8").await;
    let list = render(&console.app, theme);
    assert!(
        list.contains("laptop") && list.contains("ana@example.com"),
        "{list}"
    );
    console.keys("<Space>").await;
    let confirm = render(&console.app, theme);
    assert!(
        confirm.contains("Turn tool calls of laptop off"),
        "{confirm}"
    );
    console.keys("y").await;
    let ai_clients = api
        .clients
        .list_clients(v1::ListClientsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .clients;
    assert_eq!(ai_clients.len(), 1);
    assert!(!ai_clients[0].traffic_enabled);
    assert_eq!(ai_clients[0].revision, 1);
    console.keys("7gjjjjj<Space>").await;
    console
        .keys("https://login.acme.example<Tab>toolgate<Tab>")
        .await;
    console.keys(IDP_SECRET).await;
    screens.push(render(&console.app, theme));
    console.keys("<Enter>").await;
    assert!(
        console.app.overlay.is_none(),
        "{}",
        render(&console.app, theme)
    );
    screens.push(render(&console.app, theme));
    let provider = api
        .settings
        .get_settings(v1::GetSettingsRequest {})
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap()
        .sign_in
        .unwrap()
        .identity_provider
        .unwrap();
    assert_eq!(provider.issuer_url, "https://login.acme.example");
    assert!(provider.client_secret_set);

    // The audit log names the console's admin.
    let events = api
        .audit
        .list_events(v1::ListEventsRequest {
            action_prefix: "tool.".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert!(
        events.iter().any(|e| e.actor == "admin:console-test"),
        "{events:?}"
    );

    // The consumer secret was never drawn, and the token only in its box.
    for screen in &screens {
        assert!(!screen.contains(SECRET), "{screen}");
        assert!(!screen.contains(IDP_SECRET), "{screen}");
        assert!(!screen.contains(&secret), "{screen}");
    }
    drop(console);
    daemon.stop().await.unwrap();
}

/// The audit filter's hints are real: each action prefix it offers finds
/// events a daemon wrote (an MCP tool call among them), and the target
/// example finds that tool's calls, named as tool calls are audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_filter_hints_find_events() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, token) = start_daemon(dir.path()).await;
    let addr = format!("http://{}", daemon.grpc_addr);
    let mut api = clients(daemon.grpc_addr, &token);
    api.servers
        .register_server(v1::RegisterServerRequest {
            catalog_kind: "salesforce".into(),
            name: "Salesforce production".into(),
            tool_prefix: "salesforce".into(),
            login_host: Some(v1::LoginHost {
                kind: v1::LoginHostKind::Production.into(),
                url: String::new(),
            }),
            api_version: "66.0".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let user = api
        .users
        .create_user(v1::CreateUserRequest {
            email: "ana@example.com".into(),
            display_name: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    let secret = api
        .users
        .issue_token(v1::IssueTokenRequest {
            user_id: user.id,
            name: "laptop".into(),
            expires_at: None,
        })
        .await
        .unwrap()
        .into_inner()
        .secret;
    // Ana holds no profile: the call is refused, and audited.
    let answer = mcp_tool_call(daemon.http_addr, &secret, "salesforce_query").await;
    assert!(answer.contains("not in your tool list"), "{answer}");

    let mut console = Harness::new(clients(daemon.grpc_addr, &token), &addr, 160, 45).await;
    let theme = Theme { color: false };
    console.keys("6").await;
    console.until(|app| app.audit.tail == Tail::Live).await;
    console.keys("f<Tab>").await;
    let form = render(&console.app, theme);
    for example in ACTION_EXAMPLES {
        assert!(form.contains(example), "the hint offers {example}:\n{form}");
    }
    console.keys("<Esc>").await;
    for example in ACTION_EXAMPLES {
        console.keys("f<Tab>").await;
        console.keys(example).await;
        console.keys("<Enter>").await;
        console.until(|app| app.audit.tail == Tail::Live).await;
        let actions: Vec<&str> = console
            .app
            .audit
            .events
            .iter()
            .map(|e| e.action.as_str())
            .collect();
        assert!(!actions.is_empty(), "{example} finds nothing");
        assert!(
            actions.iter().all(|a| a.starts_with(example)),
            "{example}: {actions:?}"
        );
        // Clear the field again for the next example.
        console.keys("f<Tab>").await;
        for _ in 0..example.len() {
            console.keys("<Backspace>").await;
        }
        console.keys("<Enter>").await;
        console.until(|app| app.audit.tail == Tail::Live).await;
    }
    console.keys("f<Tab><Tab>").await;
    console.keys(TARGET_EXAMPLE).await;
    console.keys("<Enter>").await;
    console.until(|app| app.audit.tail == Tail::Live).await;
    let targets: Vec<(&str, &str)> = console
        .app
        .audit
        .events
        .iter()
        .map(|e| (e.action.as_str(), e.target.as_str()))
        .collect();
    assert_eq!(
        targets,
        [(
            "tool.call",
            "tool/salesforce_query on Salesforce production"
        )]
    );
    drop(console);
    daemon.stop().await.unwrap();
}
