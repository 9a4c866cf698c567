//! `ServerService`: registering Salesforce servers, their authentication,
//! and discovery.

use serde_json::json;
use tonic::{Request, Response, Status};
use toolgate_proto::v1;
use v1::server_service_server::ServerService;

use super::Control;
use super::auth::actor;
use super::convert::{opt_timestamp, timestamp};
use super::error::{ControlError, Result, require};
use super::records::Edited;
use super::validate;
use crate::audit::Action;
use crate::catalog;
use crate::crypto::sha256_hex;
use crate::discovery::{self, DiscoveryReport, exposed_name};
use crate::model::{
    AccessProfile, AuditEvent, AuthConfig, AuthMode, Connection, LoginHost, Server, Tool,
    ToolEnablement, Toolset, ToolsetKind, new_id, now_ms,
};
use crate::salesforce::domains::SalesforceDomains;
use crate::store::{Batch, Store, StoreError, Tx};

/// The proto kind of a login host.
pub(super) fn login_host_kind(host: &LoginHost) -> v1::LoginHostKind {
    match host {
        LoginHost::Production => v1::LoginHostKind::Production,
        LoginHost::Sandbox => v1::LoginHostKind::Sandbox,
        LoginHost::MyDomain(_) => v1::LoginHostKind::MyDomain,
    }
}

fn login_host_from_proto(
    host: Option<&v1::LoginHost>,
    domains: &SalesforceDomains,
) -> Result<LoginHost> {
    let Some(host) = host else {
        return Ok(LoginHost::Production);
    };
    match v1::LoginHostKind::try_from(host.kind) {
        Ok(v1::LoginHostKind::Unspecified | v1::LoginHostKind::Production) => {
            Ok(LoginHost::Production)
        }
        Ok(v1::LoginHostKind::Sandbox) => Ok(LoginHost::Sandbox),
        Ok(v1::LoginHostKind::MyDomain) => Ok(LoginHost::MyDomain(validate::login_url(
            "login_host.url",
            &host.url,
            domains,
        )?)),
        Err(_) => Err(ControlError::invalid(
            "login_host.kind",
            format!("unknown value {}", host.kind),
        )),
    }
}

fn enablement_from_proto(value: i32, field: &str) -> Result<Option<ToolEnablement>> {
    match v1::ToolEnablement::try_from(value) {
        Ok(v1::ToolEnablement::Unspecified) => Ok(None),
        Ok(v1::ToolEnablement::Inherit) => Ok(Some(ToolEnablement::Inherit)),
        Ok(v1::ToolEnablement::RequireApproval) => Ok(Some(ToolEnablement::RequireApproval)),
        Ok(v1::ToolEnablement::AutoApprove) => Ok(Some(ToolEnablement::AutoApprove)),
        Err(_) => Err(ControlError::invalid(
            field,
            format!("unknown value {value}"),
        )),
    }
}

fn enablement_to_proto(e: ToolEnablement) -> v1::ToolEnablement {
    match e {
        ToolEnablement::Inherit => v1::ToolEnablement::Inherit,
        ToolEnablement::RequireApproval => v1::ToolEnablement::RequireApproval,
        ToolEnablement::AutoApprove => v1::ToolEnablement::AutoApprove,
    }
}

fn auth_to_proto(auth: &AuthConfig) -> v1::AuthConfig {
    v1::AuthConfig {
        mode: match auth.mode {
            AuthMode::PerUserOauth => v1::AuthMode::PerUserOauth.into(),
        },
        client_id: auth.client_id.clone(),
        client_secret_set: auth.client_secret_set_at.is_some(),
        client_secret_set_at: opt_timestamp(auth.client_secret_set_at),
        client_secret_fingerprint: auth.client_secret_fingerprint.clone().unwrap_or_default(),
        scopes: auth.scopes.clone(),
    }
}

impl Control {
    fn server_to_proto(&self, s: &Server) -> v1::Server {
        v1::Server {
            id: s.id.clone(),
            name: s.name.clone(),
            catalog_kind: s.catalog_kind.clone(),
            tool_prefix: s.tool_prefix.clone(),
            login_host: Some(v1::LoginHost {
                kind: login_host_kind(&s.login_host).into(),
                url: s.login_host.url().to_owned(),
            }),
            api_version: s.api_version.clone(),
            tool_enablement: enablement_to_proto(s.tool_enablement).into(),
            disabled: s.disabled,
            auth: Some(s.auth.as_ref().map(auth_to_proto).unwrap_or_default()),
            created_at: Some(timestamp(s.created_at)),
            updated_at: Some(timestamp(s.updated_at)),
            callback_url: self.callback_url(),
        }
    }
}

fn report_to_proto(r: DiscoveryReport) -> v1::DiscoveryReport {
    v1::DiscoveryReport {
        added: r.added,
        drifted: r
            .drifted
            .into_iter()
            .map(|(name, changed)| v1::ToolDrift { name, changed })
            .collect(),
        removed: r.removed,
        unchanged: r.unchanged,
    }
}

async fn tools_of(store: &Tx<'_>, server_id: &str) -> Result<Vec<Tool>, StoreError> {
    Ok(store
        .list::<Tool>()
        .await?
        .into_iter()
        .filter(|t| t.server_id == server_id)
        .collect())
}

/// Fails with ALREADY_EXISTS if another server has this name or prefix.
async fn check_unique(
    store: &Tx<'_>,
    id: &str,
    name: Option<&str>,
    prefix: Option<&str>,
) -> Result<()> {
    for other in store.list::<Server>().await? {
        if other.id == id {
            continue;
        }
        if name.is_some_and(|n| other.name.eq_ignore_ascii_case(n)) {
            return Err(ControlError::AlreadyExists(format!(
                "a server named {:?} already exists",
                other.name
            )));
        }
        if prefix == Some(other.tool_prefix.as_str()) {
            return Err(ControlError::AlreadyExists(format!(
                "tool prefix {:?} is used by server {:?}",
                other.tool_prefix, other.name
            )));
        }
    }
    Ok(())
}

fn maintained_names(server_name: &str) -> [(ToolsetKind, String, &'static str); 2] {
    [
        (
            ToolsetKind::AllApproved,
            format!("{server_name}: All approved"),
            "Every approved tool of this server. Maintained by toolgate.",
        ),
        (
            ToolsetKind::ReadOnly,
            format!("{server_name}: Read only"),
            "Every approved tool of this server classified READ. Maintained by toolgate.",
        ),
    ]
}

/// Runs discovery for `server`, which owns the stored tools `known`,
/// against its catalog entry and adds the changed tools and audit events
/// to `batch`.
async fn discover_into(
    store: &Tx<'_>,
    server: &Server,
    known: &[Tool],
    actor: &str,
    batch: &mut Batch,
) -> Result<DiscoveryReport, StoreError> {
    let offered = catalog::entry(&server.catalog_kind)
        .map(|e| e.tools.to_vec())
        .unwrap_or_default();
    let settings = store.settings().await?;
    let reconciled = discovery::reconcile(server, known, &offered, &settings, actor, now_ms());
    for tool in &reconciled.tools {
        batch.put(tool);
    }
    for event in reconciled.events {
        batch.audit(event);
    }
    Ok(reconciled.report)
}

/// A digest of a catalog entry's tool definitions; discovery re-runs at
/// start-up when it changes (an upgrade changed the definitions).
fn catalog_digest(kind: &str) -> String {
    let hashes: Vec<String> = catalog::entry(kind)
        .map(|e| e.tools.iter().map(discovery::definition_hash).collect())
        .unwrap_or_default();
    sha256_hex(hashes.join(",").as_bytes())
}

/// Re-runs discovery for every server whose catalog definitions changed
/// since its last discovery (after an upgrade). Returns how many servers
/// were rediscovered.
pub(crate) async fn rediscover_after_upgrade(store: &Store) -> Result<usize, StoreError> {
    store
        .write(|store| async move {
            let mut batch = Batch::default();
            let mut count = 0;
            for entry in catalog::entries() {
                let digest = catalog_digest(entry.kind);
                let meta_key = format!("catalog_digest/{}", entry.kind);
                if store.meta(&meta_key).await?.as_deref() == Some(digest.as_str()) {
                    continue;
                }
                for server in store.list::<Server>().await? {
                    if server.catalog_kind == entry.kind {
                        let known = tools_of(&store, &server.id).await?;
                        discover_into(&store, &server, &known, "system", &mut batch).await?;
                        count += 1;
                    }
                }
                batch.put_meta(&meta_key, &digest);
            }
            Ok::<_, StoreError>((batch, count))
        })
        .await
}

#[tonic::async_trait]
impl ServerService for Control {
    async fn register_server(
        &self,
        request: Request<v1::RegisterServerRequest>,
    ) -> Result<Response<v1::RegisterServerResponse>, Status> {
        let actor = actor(&request);
        let req = request.into_inner();
        let kind = req.catalog_kind.trim();
        if kind.is_empty() {
            return Err(
                ControlError::invalid("catalog_kind", "is required (e.g. salesforce)").into(),
            );
        }
        let entry =
            catalog::entry(kind).ok_or_else(|| ControlError::not_found("catalog entry", kind))?;
        let name = validate::name("name", &req.name)?;
        let prefix = if req.tool_prefix.is_empty() {
            entry.default_tool_prefix.to_owned()
        } else {
            validate::tool_prefix("tool_prefix", &req.tool_prefix)?
        };
        let login_host = login_host_from_proto(req.login_host.as_ref(), &self.salesforce_domains)?;
        let api_version = if req.api_version.is_empty() {
            entry.default_api_version.to_owned()
        } else {
            validate::api_version("api_version", &req.api_version)?
        };
        let enablement = enablement_from_proto(req.tool_enablement, "tool_enablement")?
            .unwrap_or(ToolEnablement::Inherit);

        let (server, report) = self
            .store
            .write(|store| async move {
                let now = now_ms();
                let server = Server {
                    id: new_id(),
                    name: name.clone(),
                    catalog_kind: entry.kind.to_owned(),
                    tool_prefix: prefix.clone(),
                    login_host: login_host.clone(),
                    api_version: api_version.clone(),
                    tool_enablement: enablement,
                    disabled: false,
                    auth: None,
                    created_at: now,
                    updated_at: now,
                };
                check_unique(&store, &server.id, Some(&name), Some(&prefix)).await?;
                let existing_toolsets = store.list::<Toolset>().await?;
                let mut batch = Batch::default();
                batch.put(&server);
                batch.audit(
                    AuditEvent::allowed(&actor, Action::ServerRegister, format!("server/{}", server.id))
                        .with_reason(format!("registered {} server {name:?}", entry.display_name))
                        .with_details(json!({
                            "name": name, "tool_prefix": prefix, "login_host": login_host.url(),
                            "api_version": api_version,
                        })),
                );
                for (kind, ts_name, description) in maintained_names(&name) {
                    if existing_toolsets.iter().any(|t| t.name.eq_ignore_ascii_case(&ts_name)) {
                        return Err(ControlError::AlreadyExists(format!(
                            "toolset name {ts_name:?} (maintained for this server) is already taken; rename that toolset or pick another server name"
                        )));
                    }
                    batch.put(&Toolset {
                        revision: 1,
                        id: new_id(),
                        name: ts_name,
                        description: description.into(),
                        kind,
                        server_id: Some(server.id.clone()),
                        tool_ids: vec![],
                        created_at: now,
                        updated_at: now,
                    });
                }
                // A new server owns no tools yet: no need to scan them.
                let report = discover_into(&store, &server, &[], &actor, &mut batch).await?;
                batch.put_meta(
                    &format!("catalog_digest/{}", entry.kind),
                    &catalog_digest(entry.kind),
                );
                Ok((batch, (server, report)))
            })
            .await?;
        tracing::info!(server = %server.id, name = %server.name, "server registered");
        Ok(Response::new(v1::RegisterServerResponse {
            server: Some(self.server_to_proto(&server)),
            discovery: Some(report_to_proto(report)),
        }))
    }

    async fn get_server(
        &self,
        request: Request<v1::GetServerRequest>,
    ) -> Result<Response<v1::GetServerResponse>, Status> {
        let req = request.into_inner();
        let id = validate::id("id", &req.id)?;
        let server = require::<Server>(&self.store.reader(), id).await?;
        Ok(Response::new(v1::GetServerResponse {
            server: Some(self.server_to_proto(&server)),
        }))
    }

    async fn list_servers(
        &self,
        _request: Request<v1::ListServersRequest>,
    ) -> Result<Response<v1::ListServersResponse>, Status> {
        let mut servers = self
            .store
            .list::<Server>()
            .await
            .map_err(ControlError::from)?;
        servers.sort_by_key(|a| a.name.to_lowercase());
        Ok(Response::new(v1::ListServersResponse {
            servers: servers.iter().map(|s| self.server_to_proto(s)).collect(),
        }))
    }

    async fn update_server(
        &self,
        request: Request<v1::UpdateServerRequest>,
    ) -> Result<Response<v1::UpdateServerResponse>, Status> {
        let actor = actor(&request);
        let req = request.into_inner();
        let id = validate::id("id", &req.id)?.to_owned();
        let name = req
            .name
            .as_deref()
            .map(|n| validate::name("name", n))
            .transpose()?;
        let prefix = req
            .tool_prefix
            .as_deref()
            .map(|p| validate::tool_prefix("tool_prefix", p))
            .transpose()?;
        let login_host = req
            .login_host
            .as_ref()
            .map(|h| login_host_from_proto(Some(h), &self.salesforce_domains))
            .transpose()?;
        let api_version = req
            .api_version
            .as_deref()
            .map(|v| validate::api_version("api_version", v))
            .transpose()?;
        let enablement = match req.tool_enablement {
            Some(value) => Some(enablement_from_proto(value, "tool_enablement")?.ok_or_else(
                || {
                    ControlError::invalid(
                        "tool_enablement",
                        "must be INHERIT, REQUIRE_APPROVAL or AUTO_APPROVE",
                    )
                },
            )?),
            None => None,
        };
        let server = self
            .store
            .write(|store| async move {
                let before = require::<Server>(&store, &id).await?;
                check_unique(&store, &id, name.as_deref(), prefix.as_deref()).await?;
                let mut after = before.clone();
                let mut changed = Vec::new();
                if let Some(name) = &name
                    && *name != after.name
                {
                    changed.push("name");
                    after.name = name.clone();
                }
                if let Some(prefix) = &prefix
                    && *prefix != after.tool_prefix
                {
                    changed.push("tool_prefix");
                    after.tool_prefix = prefix.clone();
                }
                if let Some(host) = &login_host
                    && *host != after.login_host
                {
                    changed.push("login_host");
                    after.login_host = host.clone();
                }
                if let Some(v) = &api_version
                    && *v != after.api_version
                {
                    changed.push("api_version");
                    after.api_version = v.clone();
                }
                if let Some(e) = enablement
                    && e != after.tool_enablement
                {
                    changed.push("tool_enablement");
                    after.tool_enablement = e;
                }
                if let Some(disabled) = req.disabled
                    && disabled != after.disabled
                {
                    changed.push(if disabled { "disabled" } else { "enabled" });
                    after.disabled = disabled;
                }
                let mut batch = Batch::default();
                if changed.is_empty() {
                    return Ok((batch, after));
                }
                after.updated_at = now_ms();
                batch.put(&after);
                let mut renamed_tools = Vec::new();
                if after.tool_prefix != before.tool_prefix {
                    for mut tool in tools_of(&store, &id).await? {
                        tool.name = exposed_name(&after.tool_prefix, &tool.definition.name);
                        renamed_tools.push(tool.id.clone());
                        batch.put(&tool);
                    }
                }
                if after.name != before.name {
                    let names = maintained_names(&after.name);
                    let toolsets = store.list::<Toolset>().await?;
                    for (_, new_name, _) in &names {
                        let taken = toolsets.iter().any(|t| {
                            t.server_id.as_deref() != Some(id.as_str())
                                && t.name.eq_ignore_ascii_case(new_name)
                        });
                        if taken {
                            return Err(ControlError::AlreadyExists(format!(
                                "toolset name {new_name:?} (maintained for this server) is already taken; rename that toolset or pick another server name"
                            )));
                        }
                    }
                    for mut toolset in toolsets {
                        if toolset.server_id.as_deref() != Some(id.as_str()) {
                            continue;
                        }
                        if let Some((_, new_name, _)) =
                            names.iter().find(|(k, _, _)| *k == toolset.kind)
                        {
                            toolset.name = new_name.clone();
                            toolset.touch(after.updated_at);
                            batch.put(&toolset);
                        }
                    }
                }
                batch.audit(
                    AuditEvent::allowed(&actor, Action::ServerUpdate, format!("server/{id}"))
                        .with_reason(format!("changed {}", changed.join(", ")))
                        .with_details(json!({
                            "changed": changed,
                            "name": after.name, "tool_prefix": after.tool_prefix,
                            "login_host": after.login_host.url(), "api_version": after.api_version,
                            "disabled": after.disabled, "renamed_tool_ids": renamed_tools,
                        })),
                );
                Ok::<_, ControlError>((batch, after))
            })
            .await?;
        Ok(Response::new(v1::UpdateServerResponse {
            server: Some(self.server_to_proto(&server)),
        }))
    }

    async fn configure_authentication(
        &self,
        request: Request<v1::ConfigureAuthenticationRequest>,
    ) -> Result<Response<v1::ConfigureAuthenticationResponse>, Status> {
        let actor = actor(&request);
        let req = request.into_inner();
        let id = validate::id("server_id", &req.server_id)?.to_owned();
        match v1::AuthMode::try_from(req.mode) {
            Ok(v1::AuthMode::Unspecified | v1::AuthMode::PerUserOauth) => {}
            Err(_) => {
                return Err(
                    ControlError::invalid("mode", format!("unknown value {}", req.mode)).into(),
                );
            }
        }
        let client_id = req.client_id.trim().to_owned();
        if client_id.is_empty() {
            return Err(ControlError::invalid(
                "client_id",
                "is required: the connected app's Consumer Key",
            )
            .into());
        }
        if client_id.len() > 255
            || client_id
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ControlError::invalid(
                "client_id",
                "must be at most 255 characters without spaces",
            )
            .into());
        }
        let secret = req.client_secret.trim();
        if secret.len() > 1024 || secret.chars().any(char::is_control) {
            return Err(ControlError::invalid(
                "client_secret",
                "must be at most 1024 characters without control characters",
            )
            .into());
        }
        for (i, scope) in req.scopes.iter().enumerate() {
            if scope.is_empty() || scope.len() > 100 || scope.chars().any(|c| c.is_whitespace()) {
                return Err(ControlError::invalid(
                    format!("scopes[{i}]"),
                    "must be one scope name without spaces, e.g. api",
                )
                .into());
            }
        }
        let server = self
            .store
            .write(|store| async move {
                let mut server = require::<Server>(&store, &id).await?;
                let entry = catalog::entry(&server.catalog_kind);
                let previous = server.auth.clone();
                let now = now_ms();
                let mut batch = Batch::default();
                let stored = store.secret(&server.client_secret_key()).await?;
                let (set_at, fingerprint) = if secret.is_empty() {
                    match previous.as_ref().and_then(|a| a.client_secret_set_at) {
                        Some(at) if stored.is_some() => (
                            Some(at),
                            previous
                                .as_ref()
                                .and_then(|a| a.client_secret_fingerprint.clone()),
                        ),
                        _ => {
                            return Err(ControlError::invalid(
                                "client_secret",
                                "is required: no consumer secret is stored for this server yet",
                            ));
                        }
                    }
                } else if stored.as_deref() == Some(secret.as_bytes()) {
                    // The same secret again: nothing to rotate.
                    (
                        previous.as_ref().and_then(|a| a.client_secret_set_at),
                        previous
                            .as_ref()
                            .and_then(|a| a.client_secret_fingerprint.clone()),
                    )
                } else {
                    batch.put_secret(&server.client_secret_key(), secret.as_bytes());
                    (
                        Some(now),
                        Some(sha256_hex(secret.as_bytes())[..8].to_owned()),
                    )
                };
                let secret_changed =
                    !secret.is_empty() && stored.as_deref() != Some(secret.as_bytes());
                let scopes = if req.scopes.is_empty() {
                    entry
                        .map(|e| e.default_scopes.iter().map(|s| s.to_string()).collect())
                        .unwrap_or_default()
                } else {
                    req.scopes.clone()
                };
                server.auth = Some(AuthConfig {
                    mode: AuthMode::PerUserOauth,
                    client_id: client_id.clone(),
                    client_secret_set_at: set_at,
                    client_secret_fingerprint: fingerprint.clone(),
                    scopes: scopes.clone(),
                });
                server.updated_at = now;
                batch.put(&server);
                let rotated = secret_changed && stored.is_some();
                batch.audit(
                    AuditEvent::allowed(
                        &actor,
                        Action::ServerConfigureAuth,
                        format!("server/{id}"),
                    )
                    .with_reason(if rotated {
                        "consumer secret rotated".to_owned()
                    } else if !secret_changed {
                        "client id or scopes changed; consumer secret kept".to_owned()
                    } else {
                        "per-user OAuth configured".to_owned()
                    })
                    .with_details(json!({
                        "mode": "PER_USER_OAUTH", "client_id": client_id,
                        "client_secret_fingerprint": fingerprint, "scopes": scopes,
                        "secret_changed": secret_changed,
                    })),
                );
                Ok((batch, server))
            })
            .await?;
        Ok(Response::new(v1::ConfigureAuthenticationResponse {
            server: Some(self.server_to_proto(&server)),
        }))
    }

    async fn delete_server(
        &self,
        request: Request<v1::DeleteServerRequest>,
    ) -> Result<Response<v1::DeleteServerResponse>, Status> {
        let actor = actor(&request);
        let id = validate::id("id", &request.get_ref().id)?.to_owned();
        self.store
            .write(|store| async move {
                let server = require::<Server>(&store, &id).await?;
                let tools = tools_of(&store, &id).await?;
                let mut batch = Batch::default();
                for tool in &tools {
                    batch.delete::<Tool>(&tool.id);
                }
                let mut removed_toolsets = Vec::new();
                let mut edited_toolsets = Vec::new();
                let mut edited_profiles = Vec::new();
                let now = now_ms();
                for mut toolset in store.list::<Toolset>().await? {
                    if toolset.server_id.as_deref() == Some(id.as_str()) {
                        batch.delete::<Toolset>(&toolset.id);
                        removed_toolsets.push(toolset.id);
                    } else if toolset
                        .tool_ids
                        .iter()
                        .any(|t| tools.iter().any(|x| x.id == *t))
                    {
                        toolset
                            .tool_ids
                            .retain(|t| !tools.iter().any(|x| x.id == *t));
                        toolset.touch(now);
                        edited_toolsets.push(toolset.id.clone());
                        batch.put(&toolset);
                    }
                }
                for mut profile in store.list::<AccessProfile>().await? {
                    if profile
                        .toolset_ids
                        .iter()
                        .any(|t| removed_toolsets.contains(t))
                    {
                        profile
                            .toolset_ids
                            .retain(|t| !removed_toolsets.contains(t));
                        profile.touch(now);
                        edited_profiles.push(profile.id.clone());
                        batch.put(&profile);
                    }
                }
                batch.delete_secret(&server.client_secret_key());
                // Users' connections to this server go too (their sealed
                // tokens with them); they are not revoked at Salesforce.
                let mut deleted_connections = Vec::new();
                for connection in store.list::<Connection>().await? {
                    if connection.server_id == id {
                        batch.delete::<Connection>(&connection.id);
                        batch.delete_secret(&connection.refresh_token_key());
                        batch.delete_secret(&connection.access_token_key());
                        deleted_connections.push(connection.id);
                    }
                }
                batch.delete::<Server>(&id);
                batch.audit(
                    AuditEvent::allowed(&actor, Action::ServerDelete, format!("server/{id}"))
                        .with_reason(format!(
                            "deleted server {:?} with {} tools and its maintained toolsets",
                            server.name,
                            tools.len()
                        ))
                        .with_details(json!({
                            "name": server.name,
                            "deleted_tool_ids": tools.iter().map(|t| &t.id).collect::<Vec<_>>(),
                            "deleted_toolset_ids": removed_toolsets,
                            "edited_toolset_ids": edited_toolsets,
                            "edited_profile_ids": edited_profiles,
                            "deleted_connection_ids": deleted_connections,
                        })),
                );
                Ok::<_, ControlError>((batch, ()))
            })
            .await?;
        Ok(Response::new(v1::DeleteServerResponse {}))
    }

    async fn discover_tools(
        &self,
        request: Request<v1::DiscoverToolsRequest>,
    ) -> Result<Response<v1::DiscoverToolsResponse>, Status> {
        let actor = actor(&request);
        let id = validate::id("server_id", &request.get_ref().server_id)?.to_owned();
        let report = self
            .store
            .write(|store| async move {
                let server = require::<Server>(&store, &id).await?;
                let mut batch = Batch::default();
                let known = tools_of(&store, &id).await?;
                let report = discover_into(&store, &server, &known, &actor, &mut batch).await?;
                batch.audit(
                    AuditEvent::allowed(&actor, Action::ServerDiscover, format!("server/{id}"))
                        .with_reason(format!(
                            "{} added, {} drifted, {} removed, {} unchanged",
                            report.added.len(),
                            report.drifted.len(),
                            report.removed.len(),
                            report.unchanged
                        )),
                );
                Ok::<_, ControlError>((batch, report))
            })
            .await?;
        Ok(Response::new(v1::DiscoverToolsResponse {
            report: Some(report_to_proto(report)),
        }))
    }
}
