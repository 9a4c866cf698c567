//! Seeding through the control API (as an admin would) and connecting
//! users through sfsim's OAuth login page (as a browser would), plus the
//! direct path's Salesforce access tokens from sfsim's token endpoint.

use anyhow::{Context, bail};
use toolgate_proto::{AdminClients, AdminToken, v1};

/// The control API clients the benchmark uses.
#[derive(Clone)]
pub struct Admin {
    /// One client per service.
    pub api: AdminClients,
}

impl Admin {
    /// Connects to the control API at `grpc` (`host:port`).
    pub async fn connect(grpc: &str, admin_token: &str) -> anyhow::Result<Self> {
        let mut admin = Self {
            api: AdminClients::connect_admin(grpc, AdminToken::new(admin_token)?).await?,
        };
        admin.limits_out_of_reach().await?;
        Ok(admin)
    }

    /// Sets the per-user call limit (default 120 per minute, 8 at once) out
    /// of the load's reach, so every call is measured through the
    /// limiter's bucket check without being refused by it.
    pub async fn limits_out_of_reach(&mut self) -> anyhow::Result<()> {
        let limit = v1::CallLimit {
            rate: Some(v1::RateLimit {
                calls_per_minute: 1_000_000,
                burst: 100_000,
            }),
            max_concurrent: 0,
        };
        self.api
            .settings
            .update_settings(v1::UpdateSettingsRequest {
                limits: Some(v1::LimitSettings {
                    per_user: Some(limit),
                    org_api_usage_max_percent: 0,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    /// Registers the sfsim org as a My Domain Salesforce server with prefix
    /// `prefix`, every tool auto-approved; with `app`, also configures the
    /// connected app. Returns the server id.
    pub async fn register(
        &mut self,
        prefix: &str,
        login_url: &str,
        app: Option<&sfsim::config::ConnectedAppConfig>,
    ) -> anyhow::Result<String> {
        let server = self
            .api
            .servers
            .register_server(v1::RegisterServerRequest {
                catalog_kind: "salesforce".into(),
                name: format!("bench {prefix}"),
                tool_prefix: prefix.into(),
                login_host: Some(v1::LoginHost {
                    kind: v1::LoginHostKind::MyDomain.into(),
                    url: login_url.into(),
                }),
                api_version: "66.0".into(),
                tool_enablement: v1::ToolEnablement::AutoApprove.into(),
            })
            .await?
            .into_inner()
            .server
            .context("no server")?;
        if let Some(app) = app {
            self.api
                .servers
                .configure_authentication(v1::ConfigureAuthenticationRequest {
                    server_id: server.id.clone(),
                    client_id: app.consumer_key.clone(),
                    client_secret: app.consumer_secret.clone(),
                    ..Default::default()
                })
                .await?;
        }
        Ok(server.id)
    }

    /// Every stored tool as (id, name), paged 1,000 at a time.
    pub async fn all_tools(&mut self) -> anyhow::Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = self
                .api
                .tools
                .list_tools(v1::ListToolsRequest {
                    page_size: 1000,
                    page_token: page_token.clone(),
                    omit_schemas: true,
                    ..Default::default()
                })
                .await?
                .into_inner();
            out.extend(page.tools.into_iter().map(|t| (t.id, t.name)));
            if page.next_page_token.is_empty() {
                return Ok(out);
            }
            page_token = page.next_page_token;
        }
    }

    /// A user granted exactly `tool_ids` (through a new toolset and access
    /// profile named `name`); returns an MCP token for it.
    pub async fn user_with_tools(
        &mut self,
        name: &str,
        tool_ids: Vec<String>,
    ) -> anyhow::Result<String> {
        let toolset = self
            .api
            .toolsets
            .create_toolset(v1::CreateToolsetRequest {
                name: name.into(),
                description: String::new(),
                tool_ids,
            })
            .await?
            .into_inner()
            .toolset
            .context("no toolset")?;
        self.user_with_toolset(name, &toolset.id).await
    }

    /// A user granted toolset `toolset_id` through a new profile; returns
    /// an MCP token for it.
    pub async fn user_with_toolset(
        &mut self,
        name: &str,
        toolset_id: &str,
    ) -> anyhow::Result<String> {
        let user = self
            .api
            .users
            .create_user(v1::CreateUserRequest {
                email: format!("{name}@bench.example"),
                display_name: name.into(),
            })
            .await?
            .into_inner()
            .user
            .context("no user")?;
        let profile = self
            .api
            .profiles
            .create_access_profile(v1::CreateAccessProfileRequest {
                name: format!("profile {name}"),
                description: String::new(),
                toolset_ids: vec![toolset_id.into()],
                ..Default::default()
            })
            .await?
            .into_inner()
            .profile
            .context("no profile")?;
        self.api
            .profiles
            .grant_user(v1::GrantUserRequest {
                expected_revision: None,
                profile_id: profile.id,
                user_id: user.id.clone(),
                expires_at: None,
            })
            .await?;
        Ok(self
            .api
            .users
            .issue_token(v1::IssueTokenRequest {
                user_id: user.id,
                name: "bench".into(),
                expires_at: None,
            })
            .await?
            .into_inner()
            .secret)
    }

    /// The id of `server_id`'s toolset of `kind`.
    pub async fn toolset_of(
        &mut self,
        server_id: &str,
        kind: v1::ToolsetKind,
    ) -> anyhow::Result<String> {
        self.api
            .toolsets
            .list_toolsets(v1::ListToolsetsRequest {
                server_id: server_id.into(),
            })
            .await?
            .into_inner()
            .toolsets
            .into_iter()
            .find(|t| t.kind == i32::from(kind))
            .map(|t| t.id)
            .context("no such toolset")
    }
}

fn location(response: &reqwest::Response) -> anyhow::Result<String> {
    Ok(response
        .headers()
        .get("location")
        .with_context(|| format!("no redirect ({})", response.status()))?
        .to_str()?
        .to_owned())
}

/// Follows a gateway connect link through sfsim's login page as
/// `username` (allow), ending at the gateway's `/auth/callback`.
///
/// Errors: any step answers something else than the flow expects.
pub async fn connect(link: &str, login_url: &str, username: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let to_login = http.post(link).send().await?;
    let authorize = location(&to_login)?;
    let url = url::Url::parse(&authorize)?;
    let mut form: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    form.push(("username".into(), username.into()));
    form.push(("action".into(), "allow".into()));
    let back = http
        .post(format!("{login_url}/services/oauth2/authorize"))
        .form(&form)
        .send()
        .await?;
    let callback = location(&back)?;
    let done = http.get(callback).send().await?;
    if !done.status().is_success() {
        bail!("callback: {} {}", done.status(), done.text().await?);
    }
    Ok(())
}

/// A Salesforce access token and instance URL for `username`, through
/// sfsim's web-server flow (no PKCE) and token endpoint: what the direct
/// path calls with.
pub async fn direct_token(
    sim: &sfsim::Running,
    username: &str,
) -> anyhow::Result<(String, String)> {
    let app = &sim.sim.config.connected_app;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let back = http
        .post(format!("{}/services/oauth2/authorize", sim.login_url))
        .form(&[
            ("response_type", "code"),
            ("client_id", &app.consumer_key),
            ("redirect_uri", &app.callback_url),
            ("username", username),
            ("action", "allow"),
        ])
        .send()
        .await?;
    let callback = url::Url::parse(&location(&back)?)?;
    let code = callback
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .context("no code")?;
    let token: serde_json::Value = http
        .post(format!("{}/services/oauth2/token", sim.login_url))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &app.consumer_key),
            ("client_secret", &app.consumer_secret),
            ("redirect_uri", &app.callback_url),
        ])
        .send()
        .await?
        .json()
        .await?;
    Ok((
        token["access_token"]
            .as_str()
            .context("no access_token")?
            .into(),
        token["instance_url"]
            .as_str()
            .context("no instance_url")?
            .into(),
    ))
}
