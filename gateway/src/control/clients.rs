//! `ClientService`: AI clients (OAuth clients users signed in with, and
//! personal access tokens) as governed objects: list, read, change type,
//! state, kill switch, idle limit and name, and revoke credentials.
//!
//! Closing or deleting a client revokes its credentials in the same write
//! ([`crate::authz::lifecycle::revoke_credentials`]); `/mcp` reads the
//! client, its grant or its token on every call, so changes apply to the
//! next request. Each change writes one audit event on `client/<id>`.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use tonic::{Request, Response, Status};
use toolgate_proto::v1;
use v1::client_service_server::ClientService;

use super::Control;
use super::auth::actor;
use super::convert::{opt_timestamp, timestamp};
use super::error::{ControlError, Result, require};
use super::records::{Edited, check_revision};
use super::validate;
use crate::audit::Action;
use crate::authz::lifecycle::revoke_credentials;
use crate::model::{
    AiClient, AuditEvent, ClientOrigin, ClientState, ClientType, OAuthClient, User, now_ms,
};
use crate::store::{Batch, Tx};

/// The longest idle limit an admin may set (10 years), in days.
pub(super) const MAX_IDLE_DAYS: u32 = 3650;

/// Domain client type to proto.
pub(super) fn type_to_proto(t: ClientType) -> v1::ClientType {
    match t {
        ClientType::Personal => v1::ClientType::Personal,
        ClientType::Shared => v1::ClientType::Shared,
        ClientType::Service => v1::ClientType::Service,
        ClientType::Ephemeral => v1::ClientType::Ephemeral,
    }
}

/// Proto client type to domain; unspecified or unknown values are
/// `INVALID_ARGUMENT` naming `field`.
pub(super) fn type_from_proto(value: i32, field: &str) -> Result<ClientType> {
    match v1::ClientType::try_from(value) {
        Ok(v1::ClientType::Personal) => Ok(ClientType::Personal),
        Ok(v1::ClientType::Shared) => Ok(ClientType::Shared),
        Ok(v1::ClientType::Service) => Ok(ClientType::Service),
        Ok(v1::ClientType::Ephemeral) => Ok(ClientType::Ephemeral),
        _ => Err(ControlError::invalid(
            field,
            "must be CLIENT_TYPE_PERSONAL, CLIENT_TYPE_SHARED, CLIENT_TYPE_SERVICE or CLIENT_TYPE_EPHEMERAL",
        )),
    }
}

fn state_to_proto(s: ClientState) -> v1::ClientState {
    match s {
        ClientState::Active => v1::ClientState::Active,
        ClientState::Hidden => v1::ClientState::Hidden,
        ClientState::Closed => v1::ClientState::Closed,
        ClientState::Deleted => v1::ClientState::Deleted,
    }
}

fn state_from_proto(value: i32, field: &str) -> Result<ClientState> {
    match v1::ClientState::try_from(value) {
        Ok(v1::ClientState::Active) => Ok(ClientState::Active),
        Ok(v1::ClientState::Hidden) => Ok(ClientState::Hidden),
        Ok(v1::ClientState::Closed) => Ok(ClientState::Closed),
        Ok(v1::ClientState::Deleted) => Ok(ClientState::Deleted),
        _ => Err(ControlError::invalid(
            field,
            "must be CLIENT_STATE_ACTIVE, CLIENT_STATE_HIDDEN, CLIENT_STATE_CLOSED or CLIENT_STATE_DELETED",
        )),
    }
}

fn origin_to_proto(o: ClientOrigin) -> v1::ClientOrigin {
    match o {
        ClientOrigin::AccessToken => v1::ClientOrigin::AccessToken,
        ClientOrigin::MetadataDocument => v1::ClientOrigin::MetadataDocument,
        ClientOrigin::DynamicRegistration => v1::ClientOrigin::DynamicRegistration,
    }
}

/// The hosts of `client`'s redirect URIs, sorted, without duplicates (a
/// URI without a host, such as `com.example.app:/cb`, adds none).
fn redirect_hosts(client: &OAuthClient) -> Vec<String> {
    let mut hosts: Vec<String> = client
        .redirect_uris
        .iter()
        .filter_map(|uri| url::Url::parse(uri).ok())
        .filter_map(|url| url.host_str().map(str::to_owned))
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

/// What a client's proto form needs besides the record.
#[derive(Debug, Default)]
struct Context {
    /// User id -> email.
    emails: HashMap<String, String>,
    /// OAuth client id -> redirect hosts.
    hosts: HashMap<String, Vec<String>>,
}

impl Context {
    /// Everything needed for `clients`, read through `tx`.
    async fn read(tx: &Tx<'_>, clients: &[AiClient]) -> Result<Self> {
        let mut context = Self::default();
        if clients.len() > 1 {
            context.emails = tx
                .list::<User>()
                .await?
                .into_iter()
                .map(|u| (u.id, u.email))
                .collect();
        } else if let Some(user) = match clients.first() {
            Some(c) => tx.get::<User>(&c.owner_user_id).await?,
            None => None,
        } {
            context.emails.insert(user.id, user.email);
        }
        for client in clients {
            if let Some(id) = &client.client_id
                && !context.hosts.contains_key(id)
                && let Some(oauth) = tx.get::<OAuthClient>(id).await?
            {
                context.hosts.insert(id.clone(), redirect_hosts(&oauth));
            }
        }
        Ok(context)
    }

    fn to_proto(&self, c: &AiClient) -> v1::AiClient {
        v1::AiClient {
            id: c.id.clone(),
            name: c.name.clone(),
            origin: origin_to_proto(c.origin).into(),
            client_id: c.client_id.clone().unwrap_or_default(),
            token_id: c.token_id.clone().unwrap_or_default(),
            owner_user_id: c.owner_user_id.clone(),
            owner_email: self
                .emails
                .get(&c.owner_user_id)
                .cloned()
                .unwrap_or_default(),
            client_type: type_to_proto(c.client_type).into(),
            state: state_to_proto(c.state).into(),
            traffic_enabled: c.traffic_enabled,
            close_after_idle_days: c.close_after_idle_days,
            last_used_at: opt_timestamp(c.last_used_at),
            created_at: Some(timestamp(c.created_at)),
            updated_at: Some(timestamp(c.updated_at)),
            revision: c.revision,
            redirect_hosts: c
                .client_id
                .as_ref()
                .and_then(|id| self.hosts.get(id))
                .cloned()
                .unwrap_or_default(),
        }
    }
}

/// The state names the audit log and messages use.
fn state_name(s: ClientState) -> &'static str {
    match s {
        ClientState::Active => "ACTIVE",
        ClientState::Hidden => "HIDDEN",
        ClientState::Closed => "CLOSED",
        ClientState::Deleted => "DELETED",
    }
}

/// The type names the audit log and messages use.
fn type_name(t: ClientType) -> &'static str {
    match t {
        ClientType::Personal => "PERSONAL",
        ClientType::Shared => "SHARED",
        ClientType::Service => "SERVICE",
        ClientType::Ephemeral => "EPHEMERAL",
    }
}

/// Whether `state` revokes a client's credentials.
fn revokes(state: ClientState) -> bool {
    matches!(state, ClientState::Closed | ClientState::Deleted)
}

/// An admin's change of one client, as validated from a request.
#[derive(Debug, Default)]
struct Change {
    client_type: Option<ClientType>,
    state: Option<ClientState>,
    traffic_enabled: Option<bool>,
    /// `Some(None)`: clear it.
    close_after_idle_days: Option<Option<u32>>,
    name: Option<String>,
    /// Revoke credentials whatever the state (RevokeClient).
    revoke: bool,
    expected_revision: Option<u64>,
}

/// What a change did.
struct Changed {
    client: AiClient,
    revoked: u32,
}

impl Control {
    /// Applies `change` to client `id` in one write with one audit event
    /// (`action` on `client/<id>`) when anything changed.
    async fn change_client(
        &self,
        actor: &str,
        id: &str,
        change: Change,
        action: Action,
    ) -> Result<(Changed, Context)> {
        let change = &change;
        self.store
            .write(|tx| async move {
                let before = require::<AiClient>(&tx, id).await?;
                check_revision(&before, change.expected_revision)?;
                let mut after = before.clone();
                if let Some(t) = change.client_type {
                    after.client_type = t;
                }
                if let Some(s) = change.state {
                    after.state = s;
                }
                if let Some(on) = change.traffic_enabled {
                    after.traffic_enabled = on;
                }
                if let Some(days) = change.close_after_idle_days {
                    after.close_after_idle_days = days;
                }
                if let Some(name) = &change.name {
                    after.name.clone_from(name);
                }
                if before.state == ClientState::Deleted && after != before {
                    return Err(ControlError::FailedPrecondition(format!(
                        "AI client {} is DELETED and cannot change any more",
                        before.id
                    )));
                }
                let mut batch = Batch::default();
                let now = now_ms();
                let revoked = if change.revoke || change.state.is_some_and(revokes) {
                    let reason = match action {
                        Action::ClientRevoke => "revoked by an admin",
                        _ => "client closed by an admin",
                    };
                    revoke_credentials(&tx, &mut batch, &after, reason, now).await?
                } else {
                    0
                };
                let mut changed = Vec::new();
                if after.client_type != before.client_type {
                    changed.push("client_type");
                }
                if after.state != before.state {
                    changed.push("state");
                }
                if after.traffic_enabled != before.traffic_enabled {
                    changed.push("traffic_enabled");
                }
                if after.close_after_idle_days != before.close_after_idle_days {
                    changed.push("close_after_idle_days");
                }
                if after.name != before.name {
                    changed.push("name");
                }
                if !changed.is_empty() || revoked > 0 {
                    after.touch(now);
                    batch.put(&after);
                    let mut words: Vec<String> = Vec::new();
                    if after.client_type != before.client_type {
                        words.push(format!(
                            "type {} -> {}",
                            type_name(before.client_type),
                            type_name(after.client_type)
                        ));
                    }
                    if after.state != before.state {
                        words.push(format!(
                            "state {} -> {}",
                            state_name(before.state),
                            state_name(after.state)
                        ));
                    }
                    if after.traffic_enabled != before.traffic_enabled {
                        words.push(if after.traffic_enabled {
                            "tool calls enabled".into()
                        } else {
                            "tool calls DISABLED (kill switch)".into()
                        });
                    }
                    if revoked > 0 {
                        words.push(format!("{revoked} credential(s) revoked"));
                    }
                    if words.is_empty() {
                        words.push(format!("{} changed", changed.join(", ")));
                    }
                    batch.audit(
                        AuditEvent::allowed(actor, action, format!("client/{id}"))
                            .with_reason(format!(
                                "AI client {:?}: {}",
                                after.name,
                                words.join("; ")
                            ))
                            .with_details(json!({
                                "name": after.name,
                                "owner_user_id": after.owner_user_id,
                                "changed": changed,
                                "before": {
                                    "client_type": before.client_type,
                                    "state": before.state,
                                    "traffic_enabled": before.traffic_enabled,
                                    "close_after_idle_days": before.close_after_idle_days,
                                    "name": before.name,
                                },
                                "after": {
                                    "client_type": after.client_type,
                                    "state": after.state,
                                    "traffic_enabled": after.traffic_enabled,
                                    "close_after_idle_days": after.close_after_idle_days,
                                    "name": after.name,
                                },
                                "revoked_credentials": revoked,
                            })),
                    );
                }
                let context = Context::read(&tx, std::slice::from_ref(&after)).await?;
                Ok::<_, ControlError>((
                    batch,
                    (
                        Changed {
                            client: after,
                            revoked,
                        },
                        context,
                    ),
                ))
            })
            .await
    }
}

/// The page token after the record `id` (base64url of the id), shared by
/// the services that page newest first by UUID v7 id.
pub(super) fn encode_page_token(id: &str) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

/// The id in a token from [`encode_page_token`]; `INVALID_ARGUMENT` on
/// `page_token` for anything else.
pub(super) fn decode_page_token(token: &str) -> Result<String> {
    let bad = || ControlError::invalid("page_token", "is not a token from a previous response");
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let id = String::from_utf8(bytes).map_err(|_| bad())?;
    if id.is_empty() || id.len() > 128 {
        return Err(bad());
    }
    Ok(id)
}

#[tonic::async_trait]
impl ClientService for Control {
    async fn list_clients(
        &self,
        request: Request<v1::ListClientsRequest>,
    ) -> Result<Response<v1::ListClientsResponse>, Status> {
        let req = request.into_inner();
        let page_size = validate::page_size("page_size", req.page_size, 100, 1000)?;
        let client_type = (req.client_type != 0)
            .then(|| type_from_proto(req.client_type, "client_type"))
            .transpose()?;
        let state = (req.state != 0)
            .then(|| state_from_proto(req.state, "state"))
            .transpose()?;
        let owner = req.owner_user_id.trim();
        let before = if req.page_token.is_empty() {
            None
        } else {
            Some(decode_page_token(&req.page_token)?)
        };
        let tx = self.store.reader();
        let mut matching: Vec<AiClient> = tx
            .list::<AiClient>()
            .await
            .map_err(ControlError::from)?
            .into_iter()
            .filter(|c| owner.is_empty() || c.owner_user_id == owner)
            .filter(|c| client_type.is_none_or(|t| c.client_type == t))
            .filter(|c| match state {
                Some(s) => c.state == s,
                None => match c.state {
                    ClientState::Active | ClientState::Closed => true,
                    ClientState::Hidden => req.include_hidden,
                    ClientState::Deleted => req.include_deleted,
                },
            })
            .collect();
        // Ids are UUID v7 (time-ordered): descending id is newest first.
        matching.sort_by(|a, b| b.id.cmp(&a.id));
        let total_size = u32::try_from(matching.len()).unwrap_or(u32::MAX);
        let start = match &before {
            Some(last) => matching.partition_point(|c| c.id.as_str() >= last.as_str()),
            None => 0,
        };
        let page: Vec<AiClient> = matching.into_iter().skip(start).collect();
        let more = page.len() > page_size;
        let page: Vec<AiClient> = page.into_iter().take(page_size).collect();
        let next_page_token = match page.last() {
            Some(last) if more => encode_page_token(&last.id),
            _ => String::new(),
        };
        let context = Context::read(&tx, &page).await?;
        Ok(Response::new(v1::ListClientsResponse {
            clients: page.iter().map(|c| context.to_proto(c)).collect(),
            next_page_token,
            total_size,
        }))
    }

    async fn get_client(
        &self,
        request: Request<v1::GetClientRequest>,
    ) -> Result<Response<v1::GetClientResponse>, Status> {
        let id = validate::id("id", &request.get_ref().id)?;
        let tx = self.store.reader();
        let client = require::<AiClient>(&tx, id).await?;
        let context = Context::read(&tx, std::slice::from_ref(&client)).await?;
        Ok(Response::new(v1::GetClientResponse {
            client: Some(context.to_proto(&client)),
        }))
    }

    async fn update_client(
        &self,
        request: Request<v1::UpdateClientRequest>,
    ) -> Result<Response<v1::UpdateClientResponse>, Status> {
        let actor = actor(&request);
        let req = request.into_inner();
        let id = validate::id("id", &req.id)?.to_owned();
        let change = Change {
            client_type: req
                .client_type
                .map(|t| type_from_proto(t, "client_type"))
                .transpose()?,
            state: req
                .state
                .map(|s| state_from_proto(s, "state"))
                .transpose()?,
            traffic_enabled: req.traffic_enabled,
            close_after_idle_days: match req.close_after_idle_days {
                None => None,
                Some(0) => Some(None),
                Some(days) if days <= MAX_IDLE_DAYS => Some(Some(days)),
                Some(_) => {
                    return Err(ControlError::invalid(
                        "close_after_idle_days",
                        format!("must be 0 (never) to {MAX_IDLE_DAYS}"),
                    )
                    .into());
                }
            },
            name: req
                .name
                .as_deref()
                .map(|n| validate::name("name", n))
                .transpose()?,
            revoke: false,
            expected_revision: req.expected_revision,
        };
        let (changed, context) = self
            .change_client(&actor, &id, change, Action::ClientUpdate)
            .await?;
        Ok(Response::new(v1::UpdateClientResponse {
            client: Some(context.to_proto(&changed.client)),
            revoked_credentials: changed.revoked,
        }))
    }

    async fn revoke_client(
        &self,
        request: Request<v1::RevokeClientRequest>,
    ) -> Result<Response<v1::RevokeClientResponse>, Status> {
        let actor = actor(&request);
        let req = request.into_inner();
        let id = validate::id("id", &req.id)?.to_owned();
        let state = match req.state {
            None => ClientState::Closed,
            Some(s) => state_from_proto(s, "state")?,
        };
        let change = Change {
            state: Some(state),
            revoke: true,
            expected_revision: req.expected_revision,
            ..Change::default()
        };
        let (changed, context) = self
            .change_client(&actor, &id, change, Action::ClientRevoke)
            .await?;
        Ok(Response::new(v1::RevokeClientResponse {
            client: Some(context.to_proto(&changed.client)),
            revoked_credentials: changed.revoked,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_and_unspecified_is_refused_naming_the_field() {
        for t in [
            ClientType::Personal,
            ClientType::Shared,
            ClientType::Service,
            ClientType::Ephemeral,
        ] {
            assert_eq!(type_from_proto(type_to_proto(t).into(), "t").unwrap(), t);
        }
        for s in [
            ClientState::Active,
            ClientState::Hidden,
            ClientState::Closed,
            ClientState::Deleted,
        ] {
            assert_eq!(state_from_proto(state_to_proto(s).into(), "s").unwrap(), s);
        }
        let err = type_from_proto(0, "registration.default_type").unwrap_err();
        assert!(err.to_string().starts_with("registration.default_type:"));
        assert!(state_from_proto(99, "state").is_err());
    }

    #[test]
    fn page_tokens_round_trip_and_garbage_is_refused() {
        let id = "0193e5a0-7c1d-7000-8000-000000000001";
        assert_eq!(decode_page_token(&encode_page_token(id)).unwrap(), id);
        assert!(decode_page_token("!!!").is_err());
        assert!(decode_page_token("").is_err());
    }

    #[test]
    fn redirect_hosts_are_sorted_unique_and_skip_private_use_schemes() {
        let client = OAuthClient {
            id: "c".into(),
            name: "c".into(),
            origin: ClientOrigin::DynamicRegistration,
            redirect_uris: vec![
                "https://claude.ai/api/mcp/auth_callback".into(),
                "http://127.0.0.1:33418/cb".into(),
                "https://claude.ai/other".into(),
                "cursor://anysphere.cursor-mcp/oauth/callback".into(),
            ],
            client_uri: None,
            token_endpoint_auth_method: "none".into(),
            secret_hash: None,
            created_at: 0,
            fetched_at: None,
        };
        assert_eq!(
            redirect_hosts(&client),
            ["127.0.0.1", "anysphere.cursor-mcp", "claude.ai"]
        );
    }
}
