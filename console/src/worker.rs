//! The backend worker: owns the gRPC [`Clients`], runs each [`Request`] as
//! its own task (so a slow call never holds up the others, or the keyboard),
//! and sends every result back as [`Action::Reply`].
//!
//! It holds no console state; what to do with a reply is the update step's
//! business.

use tokio::sync::mpsc;
use tonic::Code;
use toolgate_proto::v1;

use crate::action::{
    Action, AuditFilter, Command, Credentials, Data, IssuedLink, IssuedToken, Reply, Request,
    Scope, UserDetail,
};
use crate::client::{ApiError, Clients};

/// How many events the audit backlog shows before the live tail.
pub const AUDIT_BACKLOG: u32 = 200;
/// Tools per `ListTools` page when loading the tool list.
pub const TOOLS_PAGE: u32 = 1000;
/// How long one call (or one page) may take before it fails with
/// DEADLINE_EXCEEDED, so a daemon that accepts but never answers cannot
/// leave the console waiting for ever. Not applied to the audit tail.
pub const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Runs `call`, failing it after [`CALL_TIMEOUT`].
async fn deadline<T>(
    call: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    tokio::time::timeout(CALL_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| {
            Err(ApiError {
                code: Code::DeadlineExceeded,
                message: format!(
                    "the daemon did not answer within {} s",
                    CALL_TIMEOUT.as_secs()
                ),
            })
        })
}

/// Handle to the worker: send requests with [`Worker::send`]. Dropping it
/// stops the worker (its tasks end with their next reply).
#[derive(Debug)]
pub struct Worker {
    requests: mpsc::UnboundedSender<Request>,
    tasks: tokio::task::JoinHandle<()>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.tasks.abort();
    }
}

impl Worker {
    /// Starts the worker on the current tokio runtime. Replies go to
    /// `replies`.
    pub fn start(clients: Clients, replies: mpsc::Sender<Action>) -> Self {
        let (requests, mut rx) = mpsc::unbounded_channel::<Request>();
        let tasks = tokio::spawn(async move {
            let mut running = tokio::task::JoinSet::new();
            // Long-running requests (the audit tail) by request id, so a
            // `Cancel` can stop them.
            let mut cancellable = std::collections::HashMap::new();
            loop {
                tokio::select! {
                    request = rx.recv() => match request {
                        Some(Request { command: Command::Cancel { id }, .. }) => {
                            if let Some(handle) = cancellable.remove(&id) {
                                tokio::task::AbortHandle::abort(&handle);
                            }
                        }
                        Some(request) => {
                            let id = request.id;
                            let tail = matches!(request.command, Command::TailAudit { .. });
                            let handle = running.spawn(run(clients.clone(), request, replies.clone()));
                            if tail {
                                cancellable.retain(|_, h: &mut tokio::task::AbortHandle| !h.is_finished());
                                cancellable.insert(id, handle);
                            }
                        }
                        None => break,
                    },
                    Some(_) = running.join_next(), if !running.is_empty() => {}
                }
            }
            running.abort_all();
        });
        Self { requests, tasks }
    }

    /// Queues a request. Never blocks (the queue is unbounded, but the update
    /// step sends at most a few requests per key press).
    pub fn send(&self, request: Request) {
        // The worker only stops when this handle is dropped.
        let _ = self.requests.send(request);
    }
}

struct Out {
    id: u64,
    tx: mpsc::Sender<Action>,
}

impl Out {
    async fn send(&self, last: bool, result: Result<Data, ApiError>) -> bool {
        self.tx
            .send(Action::Reply(Box::new(Reply {
                id: self.id,
                last,
                result,
            })))
            .await
            .is_ok()
    }
}

async fn run(clients: Clients, request: Request, tx: mpsc::Sender<Action>) {
    let out = Out { id: request.id, tx };
    match request.command {
        Command::LoadTools => load_tools(clients, &out).await,
        Command::TailAudit { filter } => tail_audit(clients, filter, &out).await,
        command => {
            let result = deadline(call(clients, command)).await;
            out.send(true, result).await;
        }
    }
}

fn changed(message: impl Into<String>, scope: Scope) -> Data {
    Data::Changed {
        message: message.into(),
        scope,
    }
}

/// Runs a one-reply command.
async fn call(mut c: Clients, command: Command) -> Result<Data, ApiError> {
    Ok(match command {
        Command::LoadTools | Command::TailAudit { .. } | Command::Cancel { .. } => {
            unreachable!("run by `run` or by the worker loop")
        }
        Command::LoadSettings => Data::Settings(
            c.settings
                .get_settings(v1::GetSettingsRequest {})
                .await?
                .into_inner()
                .settings
                .unwrap_or_default(),
        ),
        Command::LoadCatalog => Data::Catalog(
            c.catalog
                .list_catalog_entries(v1::ListCatalogEntriesRequest {})
                .await?
                .into_inner()
                .entries,
        ),
        Command::LoadServers => Data::Servers(
            c.servers
                .list_servers(v1::ListServersRequest {})
                .await?
                .into_inner()
                .servers,
        ),
        Command::LoadTool { id } => Data::Tool(
            c.tools
                .get_tool(v1::GetToolRequest { id })
                .await?
                .into_inner()
                .tool
                .unwrap_or_default(),
        ),
        Command::LoadToolsets => Data::Toolsets(
            c.toolsets
                .list_toolsets(v1::ListToolsetsRequest::default())
                .await?
                .into_inner()
                .toolsets,
        ),
        Command::LoadProfiles => Data::Profiles(
            c.profiles
                .list_access_profiles(v1::ListAccessProfilesRequest::default())
                .await?
                .into_inner()
                .profiles,
        ),
        Command::LoadUsers => Data::Users(
            c.users
                .list_users(v1::ListUsersRequest {})
                .await?
                .into_inner()
                .users,
        ),
        Command::LoadClients { all } => {
            let mut clients = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = c
                    .clients
                    .list_clients(v1::ListClientsRequest {
                        include_hidden: all,
                        include_deleted: all,
                        page_size: 1000,
                        page_token,
                        ..Default::default()
                    })
                    .await?
                    .into_inner();
                clients.extend(page.clients);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            Data::Clients(clients)
        }
        Command::UpdateClient(request) => {
            let response = c.clients.update_client(request).await?.into_inner();
            let name = response.client.map(|c| c.name).unwrap_or_default();
            let revoked = match response.revoked_credentials {
                0 => String::new(),
                n => format!("; {n} credential(s) revoked"),
            };
            changed(format!("AI client {name:?} saved{revoked}"), Scope::Clients)
        }
        Command::RevokeClient(request) => {
            let response = c.clients.revoke_client(request).await?.into_inner();
            let name = response.client.map(|c| c.name).unwrap_or_default();
            changed(
                format!(
                    "AI client {name:?} revoked: {} credential(s)",
                    response.revoked_credentials
                ),
                Scope::Clients,
            )
        }
        Command::LoadAccessRequests { all } => {
            let state = if all {
                v1::AccessRequestState::Unspecified
            } else {
                v1::AccessRequestState::Pending
            };
            let mut requests = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = c
                    .access_requests
                    .list_access_requests(v1::ListAccessRequestsRequest {
                        state: state.into(),
                        page_size: 1000,
                        page_token,
                        ..Default::default()
                    })
                    .await?
                    .into_inner();
                requests.extend(page.requests);
                if page.next_page_token.is_empty() {
                    break Data::AccessRequests {
                        requests,
                        pending: page.pending_count,
                    };
                }
                page_token = page.next_page_token;
            }
        }
        Command::ApproveAccessRequest(request) => {
            let approved = c
                .access_requests
                .approve_access_request(request)
                .await?
                .into_inner()
                .request
                .unwrap_or_default();
            let until = match approved.granted_duration_secs {
                Some(secs) => format!(" for {}", crate::state::describe_duration(secs)),
                None => " without an end".to_owned(),
            };
            changed(
                format!(
                    "access request approved: {} holds {}{until}",
                    approved.user_email, approved.profile_name
                ),
                Scope::AccessRequests,
            )
        }
        Command::DenyAccessRequest(request) => {
            let denied = c
                .access_requests
                .deny_access_request(request)
                .await?
                .into_inner()
                .request
                .unwrap_or_default();
            changed(
                format!(
                    "access request denied: {} does not get {}",
                    denied.user_email, denied.profile_name
                ),
                Scope::AccessRequests,
            )
        }
        Command::LoadHeldCalls { all } => {
            let state = if all {
                v1::HeldCallState::Unspecified
            } else {
                v1::HeldCallState::Pending
            };
            let mut calls = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = c
                    .held_calls
                    .list_held_calls(v1::ListHeldCallsRequest {
                        state: state.into(),
                        page_size: 1000,
                        page_token,
                        ..Default::default()
                    })
                    .await?
                    .into_inner();
                calls.extend(page.held_calls);
                if page.next_page_token.is_empty() {
                    break Data::HeldCalls {
                        calls,
                        pending: page.pending_count,
                    };
                }
                page_token = page.next_page_token;
            }
        }
        Command::LoadHeldCall { id } => Data::HeldCall(
            c.held_calls
                .get_held_call(v1::GetHeldCallRequest { id })
                .await?
                .into_inner()
                .held_call
                .unwrap_or_default(),
        ),
        Command::ApproveHeldCall(request) => {
            let call = c
                .held_calls
                .approve_held_call(request)
                .await?
                .into_inner()
                .held_call
                .unwrap_or_default();
            changed(
                format!(
                    "held call approved: {}'s {} runs once when the client retries",
                    call.user_email, call.tool
                ),
                Scope::HeldCalls,
            )
        }
        Command::DenyHeldCall(request) => {
            let call = c
                .held_calls
                .deny_held_call(request)
                .await?
                .into_inner()
                .held_call
                .unwrap_or_default();
            changed(
                format!("held call denied: {}'s {}", call.user_email, call.tool),
                Scope::HeldCalls,
            )
        }
        Command::LoadHooks => Data::Hooks(
            c.hooks
                .list_hooks(v1::ListHooksRequest {})
                .await?
                .into_inner()
                .hooks,
        ),
        Command::CreateHook { hook, secret } => {
            let name = hook.name.clone();
            c.hooks
                .create_hook(v1::CreateHookRequest {
                    hook: Some(*hook),
                    webhook_secret: secret.map(|s| s.0.as_str().to_owned()),
                })
                .await?;
            changed(format!("hook {name} created"), Scope::Hooks)
        }
        Command::UpdateHook {
            hook,
            secret,
            expected_revision,
        } => {
            let name = hook.name.clone();
            c.hooks
                .update_hook(v1::UpdateHookRequest {
                    hook: Some(*hook),
                    webhook_secret: secret.map(|s| s.0.as_str().to_owned()),
                    expected_revision,
                })
                .await?;
            changed(format!("hook {name} saved"), Scope::Hooks)
        }
        Command::DeleteHook { id } => {
            c.hooks.delete_hook(v1::DeleteHookRequest { id }).await?;
            changed("hook deleted", Scope::Hooks)
        }
        Command::TestHook(request) => {
            Data::HookTested(c.hooks.test_hook(*request).await?.into_inner())
        }
        Command::LoadUserDetail { user_id } => {
            let (mut users, mut connections_client) = (c.users.clone(), c.connections.clone());
            let (tokens, connections, tools) = tokio::join!(
                users.list_tokens(v1::ListTokensRequest {
                    user_id: user_id.clone()
                }),
                connections_client.list_connections(v1::ListConnectionsRequest {
                    user_id: user_id.clone(),
                    server_id: String::new(),
                }),
                c.users.list_user_tools(v1::ListUserToolsRequest {
                    user_id: user_id.clone()
                }),
            );
            Data::UserDetail(UserDetail {
                user_id,
                tokens: tokens?.into_inner().tokens,
                connections: connections?.into_inner().connections,
                tools: tools?.into_inner().tool_names,
            })
        }
        Command::UpdateSettings(request) => {
            c.settings.update_settings(*request).await?;
            changed("settings saved", Scope::Settings)
        }
        Command::RegisterServer {
            request,
            credentials,
        } => {
            let response = c.servers.register_server(request).await?.into_inner();
            let mut server = response.server.unwrap_or_default();
            let credentials = match credentials {
                None => None,
                Some(credentials) => Some(
                    configure(&mut c, server.id.clone(), credentials)
                        .await
                        .map(|updated| server = updated),
                ),
            };
            Data::Registered {
                server,
                report: response.discovery.unwrap_or_default(),
                credentials,
            }
        }
        Command::UpdateServer(request) => {
            let server = c.servers.update_server(request).await?.into_inner();
            let name = server.server.map(|s| s.name).unwrap_or_default();
            changed(format!("server {name} saved"), Scope::Servers)
        }
        Command::ConfigureAuthentication {
            server_id,
            credentials,
        } => {
            let server = configure(&mut c, server_id, credentials).await?;
            changed(
                format!(
                    "credentials of {} saved (secret fingerprint {})",
                    server.name,
                    server
                        .auth
                        .map(|a| a.client_secret_fingerprint)
                        .unwrap_or_default()
                ),
                Scope::Servers,
            )
        }
        Command::DeleteServer { id } => {
            c.servers
                .delete_server(v1::DeleteServerRequest { id })
                .await?;
            changed("server deleted", Scope::Servers)
        }
        Command::DiscoverTools { server_id } => Data::Discovered(
            c.servers
                .discover_tools(v1::DiscoverToolsRequest { server_id })
                .await?
                .into_inner()
                .report
                .unwrap_or_default(),
        ),
        Command::PreviewAccess(request) => Data::AccessPreview(
            c.profiles
                .preview_access_change(request)
                .await?
                .into_inner(),
        ),
        Command::SetToolState { ids, state } => {
            let n = ids.len();
            if n == 1 {
                c.tools
                    .update_tool(v1::UpdateToolRequest {
                        id: ids.into_iter().next().unwrap_or_default(),
                        state: Some(state as i32),
                        classification: None,
                    })
                    .await?;
            } else {
                c.tools
                    .batch_update_tools(v1::BatchUpdateToolsRequest {
                        ids,
                        state: state as i32,
                    })
                    .await?;
            }
            let verb = match state {
                v1::ToolState::Approved => "approved",
                v1::ToolState::Disabled => "disabled",
                _ => "sent back to review",
            };
            changed(format!("{n} tool{} {verb}", plural(n)), Scope::Tools)
        }
        Command::SetClassification {
            ids,
            classification,
        } => {
            // One call per tool (UpdateTool); a failure part-way says how
            // many were saved.
            let n = ids.len();
            for (done, id) in ids.into_iter().enumerate() {
                let result = c
                    .tools
                    .update_tool(v1::UpdateToolRequest {
                        id,
                        state: None,
                        classification: Some(classification),
                    })
                    .await;
                if let Err(status) = result {
                    let mut error = ApiError::from(status);
                    if n > 1 {
                        error.message = format!(
                            "classification saved for {done} of {n} tools: {}",
                            error.message
                        );
                    }
                    return Err(error);
                }
            }
            changed(
                format!("classification of {n} tool{} saved", plural(n)),
                Scope::Tools,
            )
        }
        Command::CreateToolset(request) => {
            let name = request.name.clone();
            c.toolsets.create_toolset(request).await?;
            changed(format!("toolset {name} created"), Scope::Toolsets)
        }
        Command::UpdateToolset(request) => {
            c.toolsets.update_toolset(request).await?;
            changed("toolset saved", Scope::Toolsets)
        }
        Command::DeleteToolset { id } => {
            c.toolsets
                .delete_toolset(v1::DeleteToolsetRequest { id })
                .await?;
            changed("toolset deleted", Scope::Toolsets)
        }
        Command::EditToolsetTools {
            toolset_id,
            add,
            remove,
        } => {
            let (added, removed) = (add.len(), remove.len());
            if !add.is_empty() {
                c.toolsets
                    .add_toolset_tools(v1::AddToolsetToolsRequest {
                        expected_revision: None,
                        toolset_id: toolset_id.clone(),
                        tool_ids: add,
                    })
                    .await?;
            }
            if !remove.is_empty() {
                c.toolsets
                    .remove_toolset_tools(v1::RemoveToolsetToolsRequest {
                        expected_revision: None,
                        toolset_id,
                        tool_ids: remove,
                    })
                    .await?;
            }
            changed(
                format!(
                    "toolset: {added} tool{} added, {removed} removed",
                    plural(added)
                ),
                Scope::Toolsets,
            )
        }
        Command::CreateProfile(request) => {
            let name = request.name.clone();
            c.profiles.create_access_profile(request).await?;
            changed(format!("access profile {name} created"), Scope::Profiles)
        }
        Command::UpdateProfile(request) => {
            c.profiles.update_access_profile(request).await?;
            changed("access profile saved", Scope::Profiles)
        }
        Command::DeleteProfile { id } => {
            c.profiles
                .delete_access_profile(v1::DeleteAccessProfileRequest { id })
                .await?;
            changed("access profile deleted", Scope::Profiles)
        }
        Command::EditBindings {
            profile_id,
            bind,
            unbind,
        } => {
            let (bound, unbound) = (bind.len(), unbind.len());
            if !bind.is_empty() {
                c.profiles
                    .bind_toolsets(v1::BindToolsetsRequest {
                        expected_revision: None,
                        profile_id: profile_id.clone(),
                        toolset_ids: bind,
                    })
                    .await?;
            }
            if !unbind.is_empty() {
                c.profiles
                    .unbind_toolsets(v1::UnbindToolsetsRequest {
                        expected_revision: None,
                        profile_id,
                        toolset_ids: unbind,
                    })
                    .await?;
            }
            changed(
                format!(
                    "profile: {bound} toolset{} bound, {unbound} unbound",
                    plural(bound)
                ),
                Scope::Profiles,
            )
        }
        Command::Grant(request) => {
            c.profiles.grant_user(request).await?;
            changed("user granted", Scope::Profiles)
        }
        Command::Revoke(request) => {
            c.profiles.revoke_user(request).await?;
            changed("grant revoked", Scope::Profiles)
        }
        Command::CreateUser(request) => {
            let email = request.email.clone();
            c.users.create_user(request).await?;
            changed(format!("user {email} created"), Scope::Users)
        }
        Command::SetUserEnabled { id, enabled } => {
            if enabled {
                c.users.enable_user(v1::EnableUserRequest { id }).await?;
            } else {
                c.users.disable_user(v1::DisableUserRequest { id }).await?;
            }
            changed(
                if enabled {
                    "user enabled"
                } else {
                    "user disabled"
                },
                Scope::Users,
            )
        }
        Command::IssueSignInLink { user_id, email } => {
            let response = c
                .users
                .issue_sign_in_link(v1::IssueSignInLinkRequest { user_id })
                .await?
                .into_inner();
            Data::SignInLinkIssued(IssuedLink {
                email,
                url: response.url.into(),
                expires_at: response
                    .expires_at
                    .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
                    .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_default(),
            })
        }
        Command::IssueToken(request) => {
            let user_id = request.user_id.clone();
            let response = c.users.issue_token(request).await?.into_inner();
            Data::TokenIssued(IssuedToken {
                user_id,
                name: response.token.map(|t| t.name).unwrap_or_default(),
                secret: response.secret.into(),
                mcp_url: response.mcp_url,
            })
        }
        Command::RevokeToken { id, user_id } => {
            c.users.revoke_token(v1::RevokeTokenRequest { id }).await?;
            changed("token revoked", Scope::User(user_id))
        }
        Command::DeleteConnection { id, user_id } => {
            let revoked = c
                .connections
                .delete_connection(v1::DeleteConnectionRequest { id })
                .await?
                .into_inner()
                .revoked_at_salesforce;
            changed(
                if revoked {
                    "Salesforce connection deleted and revoked at Salesforce"
                } else {
                    "Salesforce connection deleted (Salesforce did not confirm the revocation)"
                },
                Scope::User(user_id),
            )
        }
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

async fn configure(
    c: &mut Clients,
    server_id: String,
    credentials: Credentials,
) -> Result<v1::Server, ApiError> {
    // The generated request holds a plain String: that copy lives until
    // tonic has encoded and sent it, and is freed (not wiped) then.
    let request = v1::ConfigureAuthenticationRequest {
        server_id,
        mode: v1::AuthMode::PerUserOauth as i32,
        client_id: credentials.client_id.clone(),
        client_secret: credentials.client_secret.as_str().to_owned(),
        scopes: Vec::new(),
    };
    drop(credentials);
    let response = c.servers.configure_authentication(request).await?;
    Ok(response.into_inner().server.unwrap_or_default())
}

async fn load_tools(mut c: Clients, out: &Out) {
    let mut page_token = String::new();
    loop {
        let request = v1::ListToolsRequest {
            page_size: TOOLS_PAGE,
            page_token: std::mem::take(&mut page_token),
            omit_schemas: true,
            ..Default::default()
        };
        let page = deadline(async { Ok(c.tools.list_tools(request).await?) }).await;
        match page {
            Err(error) => {
                out.send(true, Err(error)).await;
                return;
            }
            Ok(page) => {
                let page = page.into_inner();
                let last = page.next_page_token.is_empty();
                let data = Data::ToolsPage {
                    tools: page.tools,
                    total: page.total_size as usize,
                };
                if !out.send(last, Ok(data)).await || last {
                    return;
                }
                page_token = page.next_page_token;
            }
        }
    }
}

/// Subscribes to the live tail first, then lists the backlog (so nothing
/// written in between is missed; the update step drops duplicates by
/// sequence), then forwards live events. A subscriber that fell behind
/// (DATA_LOSS) resubscribes from the last event it saw.
async fn tail_audit(mut c: Clients, filter: AuditFilter, out: &Out) {
    let stream_request = |since: Option<prost_types::Timestamp>| v1::StreamEventsRequest {
        since,
        actor: filter.actor.clone(),
        action_prefix: filter.action_prefix.clone(),
        target_prefix: filter.target_prefix.clone(),
        ..Default::default()
    };
    let mut stream = match c.audit.stream_events(stream_request(None)).await {
        Ok(stream) => stream.into_inner(),
        Err(status) => {
            out.send(true, Err(status.into())).await;
            return;
        }
    };
    let backlog = c
        .audit
        .list_events(v1::ListEventsRequest {
            actor: filter.actor.clone(),
            action_prefix: filter.action_prefix.clone(),
            target_prefix: filter.target_prefix.clone(),
            page_size: AUDIT_BACKLOG,
            ..Default::default()
        })
        .await;
    let mut last_time = match backlog {
        Ok(list) => {
            let events = list.into_inner().events;
            let newest = events.first().and_then(|e| e.time);
            if !out.send(false, Ok(Data::AuditBacklog(events))).await {
                return;
            }
            newest
        }
        Err(status) => {
            out.send(true, Err(status.into())).await;
            return;
        }
    };
    loop {
        match stream.message().await {
            Ok(Some(message)) => {
                if let Some(event) = message.event {
                    last_time = event.time.or(last_time);
                    if !out.send(false, Ok(Data::AuditEvent(event))).await {
                        return;
                    }
                }
            }
            Ok(None) => {
                out.send(
                    true,
                    Err(ApiError {
                        code: Code::Unavailable,
                        message: "the daemon ended the audit tail (shutting down?)".into(),
                    }),
                )
                .await;
                return;
            }
            Err(status) if status.code() == Code::DataLoss => {
                // Fell behind: resubscribe from the last event seen; the
                // update step drops the replayed duplicates.
                match c.audit.stream_events(stream_request(last_time)).await {
                    Ok(s) => stream = s.into_inner(),
                    Err(status) => {
                        out.send(true, Err(status.into())).await;
                        return;
                    }
                }
            }
            Err(status) => {
                let mut error = ApiError::from(status);
                if error.code == Code::Unavailable {
                    error.message =
                        "the daemon closed the audit tail (it stopped or restarted)".into();
                }
                out.send(true, Err(error)).await;
                return;
            }
        }
    }
}
