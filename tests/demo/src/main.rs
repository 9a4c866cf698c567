//! `toolgate-demo`: runs `toolgated` against sfsim, a simulated Salesforce
//! org, in one process, and seeds it through the control API like an admin
//! would: the sfsim org registered as a Salesforce server (My Domain login
//! host) with its connected app's consumer key and secret, the read tools
//! approved (writes and deletes left pending review), a "Sales read-only"
//! toolset and access profile, a demo user granted it, and a fresh MCP
//! token. It prints what an AI client, an admin and sfsim's login page
//! need. Running it again on the same data directory re-seeds what is
//! missing and replaces the demo token. Loopback only; nothing here reaches
//! Salesforce.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use toolgate_gateway::app::{self, Listeners};
use toolgate_gateway::config::{Config, Secrets};
use toolgate_proto::admin::AdminService;
use toolgate_proto::{AdminClients, AdminToken, v1};

/// Flags.
#[derive(Debug, Parser)]
#[command(
    name = "toolgate-demo",
    version,
    about = "toolgated + a simulated Salesforce org, seeded and ready for an MCP client"
)]
struct Args {
    /// Data directory of the demo gateway.
    #[arg(long, default_value = "./toolgate-demo-data")]
    data_dir: PathBuf,
    /// Public HTTP listener of the gateway (MCP at /mcp).
    #[arg(long, default_value = "127.0.0.1:8080")]
    http_addr: SocketAddr,
    /// Control API listener.
    #[arg(long, default_value = "127.0.0.1:50051")]
    grpc_addr: SocketAddr,
    /// Prometheus metrics listener (GET /metrics); empty: off.
    #[arg(long, default_value = "127.0.0.1:9464")]
    metrics_addr: String,
    /// sfsim login host listener.
    #[arg(long, default_value = "127.0.0.1:9410")]
    sim_login_addr: SocketAddr,
    /// sfsim instance (REST API) listener.
    #[arg(long, default_value = "127.0.0.1:9411")]
    sim_instance_addr: SocketAddr,
    /// Log filter.
    #[arg(long, default_value = "warn")]
    log_level: String,
    /// Seconds an OAuth access token issued to an AI client stays valid
    /// (toolgated's `--oauth-access-token-ttl-secs`) [default: 3600].
    #[arg(long)]
    oauth_access_token_ttl_secs: Option<u64>,
    /// PEM file of extra trusted root certificates for toolgated's outbound
    /// TLS (toolgated's `--extra-ca-file`): Client ID Metadata Documents
    /// and the identity provider served with a private CA.
    #[arg(long)]
    extra_ca_file: Option<PathBuf>,
}

const DEMO_EMAIL: &str = "demo@example.com";
/// The demo toolset and access profile.
const SALES_READ_ONLY: &str = "Sales read-only";
/// The name of the demo user's MCP token.
const DEMO_TOKEN: &str = "demo";

async fn seed(grpc: SocketAddr, admin_token: &str, sim: &sfsim::Running) -> anyhow::Result<Seeded> {
    // The seeder names itself in the audit log.
    let auth = AdminToken::new(admin_token)?.with_actor("demo-seed")?;
    let toolgate_proto::Clients {
        mut servers,
        mut users,
        mut toolsets,
        mut profiles,
        mut tools,
        mut connections,
        ..
    } = AdminClients::connect_admin(&grpc.to_string(), auth).await?;

    let existing = servers
        .list_servers(v1::ListServersRequest {})
        .await?
        .into_inner()
        .servers;
    let server = match existing.into_iter().find(|s| s.tool_prefix == "salesforce") {
        Some(server) => {
            // sfsim may listen elsewhere than last time.
            servers
                .update_server(v1::UpdateServerRequest {
                    id: server.id.clone(),
                    login_host: Some(v1::LoginHost {
                        kind: v1::LoginHostKind::MyDomain.into(),
                        url: sim.login_url.clone(),
                    }),
                    ..Default::default()
                })
                .await?
                .into_inner()
                .server
                .context("no server")?
        }
        None => servers
            .register_server(v1::RegisterServerRequest {
                catalog_kind: "salesforce".into(),
                name: "Acme Demo (sfsim)".into(),
                tool_prefix: "salesforce".into(),
                login_host: Some(v1::LoginHost {
                    kind: v1::LoginHostKind::MyDomain.into(),
                    url: sim.login_url.clone(),
                }),
                api_version: "66.0".into(),
                tool_enablement: v1::ToolEnablement::RequireApproval.into(),
            })
            .await?
            .into_inner()
            .server
            .context("no server")?,
    };
    let app = &sim.sim.config.connected_app;
    servers
        .configure_authentication(v1::ConfigureAuthenticationRequest {
            server_id: server.id.clone(),
            client_id: app.consumer_key.clone(),
            client_secret: app.consumer_secret.clone(),
            ..Default::default()
        })
        .await?;
    // sfsim's org is new at every start, so Salesforce tokens stored by an
    // earlier run are worthless, and on port 0 their instance URL points
    // where nothing listens: drop those connections, so each user's next
    // call asks them to connect again instead of failing to reach the org.
    for stale in connections
        .list_connections(v1::ListConnectionsRequest {
            server_id: server.id.clone(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .connections
    {
        connections
            .delete_connection(v1::DeleteConnectionRequest { id: stale.id })
            .await?;
    }
    // Approve the read tools; writes and deletes wait for an admin's review.
    let pending_reads = read_tool_ids(&mut tools, &server.id, v1::ToolState::PendingReview).await?;
    if !pending_reads.is_empty() {
        tools
            .batch_update_tools(v1::BatchUpdateToolsRequest {
                ids: pending_reads,
                state: v1::ToolState::Approved.into(),
            })
            .await?;
    }
    let pending = tools
        .list_tools(v1::ListToolsRequest {
            server_id: server.id.clone(),
            state: v1::ToolState::PendingReview.into(),
            page_size: 1,
            omit_schemas: true,
            ..Default::default()
        })
        .await?
        .into_inner()
        .total_size;
    let approved_reads = read_tool_ids(&mut tools, &server.id, v1::ToolState::Approved).await?;

    // A "Sales read-only" toolset holding them, bound to a profile of the
    // same name.
    let toolset = match toolsets
        .list_toolsets(v1::ListToolsetsRequest::default())
        .await?
        .into_inner()
        .toolsets
        .into_iter()
        .find(|t| t.name == SALES_READ_ONLY)
    {
        Some(toolset) => toolset,
        None => toolsets
            .create_toolset(v1::CreateToolsetRequest {
                name: SALES_READ_ONLY.into(),
                description: "The demo org's read tools".into(),
                tool_ids: Vec::new(),
            })
            .await?
            .into_inner()
            .toolset
            .context("no toolset")?,
    };
    let approved = approved_reads.len();
    let missing: Vec<String> = approved_reads
        .into_iter()
        .filter(|id| !toolset.tool_ids.contains(id))
        .collect();
    if !missing.is_empty() {
        toolsets
            .add_toolset_tools(v1::AddToolsetToolsRequest {
                expected_revision: None,
                toolset_id: toolset.id.clone(),
                tool_ids: missing,
            })
            .await?;
    }
    let user = match users
        .list_users(v1::ListUsersRequest {})
        .await?
        .into_inner()
        .users
        .into_iter()
        .find(|u| u.email == DEMO_EMAIL)
    {
        Some(user) => user,
        None => users
            .create_user(v1::CreateUserRequest {
                email: DEMO_EMAIL.into(),
                display_name: "Demo User".into(),
            })
            .await?
            .into_inner()
            .user
            .context("no user")?,
    };
    let profile = match profiles
        .list_access_profiles(v1::ListAccessProfilesRequest::default())
        .await?
        .into_inner()
        .profiles
        .into_iter()
        .find(|p| p.name == SALES_READ_ONLY)
    {
        Some(profile) => profile,
        None => profiles
            .create_access_profile(v1::CreateAccessProfileRequest {
                name: SALES_READ_ONLY.into(),
                description: "Read Salesforce data; no writes".into(),
                toolset_ids: vec![toolset.id.clone()],
                ..Default::default()
            })
            .await?
            .into_inner()
            .profile
            .context("no profile")?,
    };
    if !profile.toolset_ids.contains(&toolset.id) {
        profiles
            .bind_toolsets(v1::BindToolsetsRequest {
                expected_revision: None,
                profile_id: profile.id.clone(),
                toolset_ids: vec![toolset.id.clone()],
            })
            .await?;
    }
    profiles
        .grant_user(v1::GrantUserRequest {
            expected_revision: None,
            profile_id: profile.id,
            user_id: user.id.clone(),
            expires_at: None,
        })
        .await?;

    // One live demo token: the one printed now (a second run revokes the
    // first run's).
    for old in users
        .list_tokens(v1::ListTokensRequest {
            user_id: user.id.clone(),
        })
        .await?
        .into_inner()
        .tokens
        .into_iter()
        .filter(|t| t.name == DEMO_TOKEN && t.revoked_at.is_none())
    {
        users
            .revoke_token(v1::RevokeTokenRequest { id: old.id })
            .await?;
    }
    let token = users
        .issue_token(v1::IssueTokenRequest {
            user_id: user.id.clone(),
            name: DEMO_TOKEN.into(),
            expires_at: None,
        })
        .await?
        .into_inner()
        .secret;
    // For clients that sign in (OAuth) with only the MCP URL.
    let sign_in_link = users
        .issue_sign_in_link(v1::IssueSignInLinkRequest { user_id: user.id })
        .await?
        .into_inner()
        .url;
    Ok(Seeded {
        token,
        sign_in_link,
        approved,
        pending,
    })
}

/// The ids of `server_id`'s read tools in `state` (one page: a server has
/// 13 tools).
async fn read_tool_ids(
    tools: &mut v1::tool_service_client::ToolServiceClient<AdminService>,
    server_id: &str,
    state: v1::ToolState,
) -> anyhow::Result<Vec<String>> {
    Ok(tools
        .list_tools(v1::ListToolsRequest {
            server_id: server_id.to_owned(),
            state: state.into(),
            action: v1::ToolAction::Read.into(),
            page_size: 1000,
            omit_schemas: true,
            ..Default::default()
        })
        .await?
        .into_inner()
        .tools
        .into_iter()
        .map(|t| t.id)
        .collect())
}

/// What the seeding left for the printout.
struct Seeded {
    /// The demo user's MCP token.
    token: String,
    /// A one-time sign-in link of the demo user (15 minutes).
    sign_in_link: String,
    /// Read tools approved (and in the demo toolset).
    approved: usize,
    /// Tools waiting for review.
    pending: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&args.log_level)?)
        .with_writer(std::io::stderr)
        .init();
    // toolgated's own defaults for everything the demo does not set.
    let mut config = Config::resolve(toolgate_gateway::config::Args {
        data_dir: Some(args.data_dir.clone()),
        http_addr: Some(args.http_addr),
        grpc_addr: Some(args.grpc_addr),
        metrics_addr: Some(args.metrics_addr.clone()),
        log_level: Some(args.log_level.clone()),
        oauth_access_token_ttl_secs: args.oauth_access_token_ttl_secs,
        extra_ca_file: args.extra_ca_file.clone(),
        ..Default::default()
    })?;
    let secrets = Secrets::from_env();
    let opened = app::open(&config, &secrets).await?;
    let listeners = Listeners::bind(&config).await?;
    let public = format!("http://{}", listeners.http.local_addr()?);
    config.public_url = Some(public.clone());
    let mut sim_config = sfsim::SimConfig::demo();
    sim_config.login_addr = args.sim_login_addr;
    sim_config.instance_addr = args.sim_instance_addr;
    sim_config.connected_app.callback_url = format!("{public}/auth/callback");
    let sim = sfsim::start(sim_config).await?;
    let running = app::serve(&config, opened, listeners).await?;
    let admin_token = match &running.admin_token_file {
        Some(path) => std::fs::read_to_string(path)?.trim().to_owned(),
        None => secrets.admin_token.clone().unwrap_or_default(),
    };
    let seeded = seed(running.grpc_addr, &admin_token, &sim).await?;
    let token = &seeded.token;

    println!("toolgate demo ready");
    println!("  MCP endpoint:    {public}/mcp");
    println!("  MCP token:       {token}");
    println!(
        "  control API:     {} (admin token in {})",
        running.grpc_addr,
        config.data_dir.join("admin.token").display()
    );
    match running.metrics_addr {
        Some(addr) => println!("  Metrics:         http://{addr}/metrics (Prometheus)"),
        None => println!("  Metrics:         off"),
    }
    println!(
        "  Salesforce org:  sfsim login host {} / instance {}",
        sim.login_url, sim.instance_url
    );
    println!("  Salesforce users (pick one on the login page):");
    for u in &sim.sim.config.users {
        println!("    {} ({:?})", u.username, u.profile);
    }
    println!(
        "  Governance:      {} read tools approved for {DEMO_EMAIL} (profile \"{SALES_READ_ONLY}\"); {} write and delete tools wait for review",
        seeded.approved, seeded.pending
    );
    println!(
        "  Claude Code:     claude mcp add --transport http toolgate {public}/mcp --header \"Authorization: Bearer {token}\""
    );
    println!(
        "  Sign in (OAuth): clients that sign in need only the MCP URL, e.g. claude mcp add --transport http toolgate-oauth {public}/mcp, then /mcp > Authenticate in Claude Code"
    );
    println!(
        "  Sign-in link:    {} (open it in the browser the client opens; one use, 15 minutes; a new one: admin console, Users, l)",
        seeded.sign_in_link
    );
    println!(
        "  MCP Inspector:   npx @modelcontextprotocol/inspector --cli {public}/mcp --transport http --header \"Authorization: Bearer {token}\" --method tools/list"
    );
    println!(
        "  Admin console:   cargo run -p toolgate-console -- --grpc-addr http://{} --data-dir {}",
        running.grpc_addr,
        config.data_dir.display()
    );
    println!(
        "  The first tool call answers with a link to connect your (simulated) Salesforce account."
    );
    println!("  Ctrl-C stops the demo.");
    let stop = running.shutdown_token();
    tokio::select! {
        () = app::shutdown_signal() => {}
        () = stop.cancelled() => {}
    }
    running.stop().await?;
    sim.stop().await;
    Ok(())
}
