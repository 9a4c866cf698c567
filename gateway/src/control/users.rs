//! `UserService`: AI-client users and their MCP personal access tokens.

use serde_json::json;
use tonic::{Request, Response, Status};
use toolgate_proto::v1;
use v1::user_service_server::UserService;

use super::Control;
use super::auth::actor;
use super::convert::{millis, opt_timestamp, timestamp};
use super::error::{ControlError, Result, require};
use super::validate;
use crate::audit::Action;
use crate::crypto::{random_token, sha256_hex};
use crate::governance::{Subject, allowed_tools};
use crate::model::{
    AccessProfile, AiClient, AuditEvent, ClientOrigin, ClientState, ClientType, Server, Token,
    Tool, Toolset, User, UserStatus, new_id, now_ms,
};
use crate::store::Batch;

/// The recognisable prefix of MCP personal access tokens.
pub(crate) const TOKEN_PREFIX: &str = "tgp_";

fn user_to_proto(u: &User) -> v1::User {
    v1::User {
        id: u.id.clone(),
        email: u.email.clone(),
        display_name: u.display_name.clone(),
        status: match u.status {
            UserStatus::Active => v1::UserStatus::Active,
            UserStatus::Disabled => v1::UserStatus::Disabled,
        }
        .into(),
        created_at: Some(timestamp(u.created_at)),
        updated_at: Some(timestamp(u.updated_at)),
    }
}

/// The AI client record of a personal access token: same id as the token
/// (so `/mcp` finds it with one read), named after its label, type
/// `Personal`, active.
pub(crate) fn token_client(token: &Token) -> AiClient {
    AiClient {
        id: token.id.clone(),
        name: token.name.clone(),
        origin: ClientOrigin::AccessToken,
        client_id: None,
        token_id: Some(token.id.clone()),
        owner_user_id: token.user_id.clone(),
        client_type: ClientType::Personal,
        state: ClientState::Active,
        traffic_enabled: true,
        close_after_idle_days: None,
        last_used_at: token.last_used_at,
        created_at: token.created_at,
        updated_at: token.created_at,
        revision: 0,
    }
}

fn token_to_proto(t: &Token) -> v1::Token {
    v1::Token {
        id: t.id.clone(),
        user_id: t.user_id.clone(),
        name: t.name.clone(),
        prefix: t.prefix.clone(),
        created_at: Some(timestamp(t.created_at)),
        expires_at: opt_timestamp(t.expires_at),
        last_used_at: opt_timestamp(t.last_used_at),
        revoked_at: opt_timestamp(t.revoked_at),
    }
}

impl Control {
    async fn set_user_status(&self, actor: String, id: &str, status: UserStatus) -> Result<User> {
        self.store
            .write(|store| async move {
                let mut user = require::<User>(&store, id).await?;
                let mut batch = Batch::default();
                if user.status != status {
                    user.status = status;
                    user.updated_at = now_ms();
                    batch.put(&user);
                    let action = match status {
                        UserStatus::Active => Action::UserEnable,
                        UserStatus::Disabled => Action::UserDisable,
                    };
                    batch.audit(
                        AuditEvent::allowed(&actor, action, format!("user/{id}"))
                            .with_details(json!({"email": user.email})),
                    );
                }
                Ok::<_, ControlError>((batch, user))
            })
            .await
    }
}

#[tonic::async_trait]
impl UserService for Control {
    async fn create_user(
        &self,
        request: Request<v1::CreateUserRequest>,
    ) -> Result<Response<v1::CreateUserResponse>, Status> {
        let actor = actor(&request);
        let req = request.into_inner();
        let email = validate::email("email", &req.email)?;
        let display_name = if req.display_name.trim().is_empty() {
            email.split('@').next().unwrap_or_default().to_owned()
        } else {
            validate::name("display_name", &req.display_name)?
        };
        let user = self
            .store
            .write(|store| async move {
                if store.list::<User>().await?.iter().any(|u| u.email == email) {
                    return Err(ControlError::AlreadyExists(format!(
                        "a user with email {email} already exists"
                    )));
                }
                let now = now_ms();
                let user = User {
                    id: new_id(),
                    email: email.clone(),
                    display_name: display_name.clone(),
                    status: UserStatus::Active,
                    created_at: now,
                    updated_at: now,
                };
                let mut batch = Batch::default();
                batch.put(&user);
                batch.audit(
                    AuditEvent::allowed(&actor, Action::UserCreate, format!("user/{}", user.id))
                        .with_reason(format!("created user {email}"))
                        .with_details(json!({"email": email, "display_name": display_name})),
                );
                Ok((batch, user))
            })
            .await?;
        Ok(Response::new(v1::CreateUserResponse {
            user: Some(user_to_proto(&user)),
        }))
    }

    async fn get_user(
        &self,
        request: Request<v1::GetUserRequest>,
    ) -> Result<Response<v1::GetUserResponse>, Status> {
        let id = validate::id("id", &request.get_ref().id)?;
        let user = require::<User>(&self.store.reader(), id).await?;
        Ok(Response::new(v1::GetUserResponse {
            user: Some(user_to_proto(&user)),
        }))
    }

    async fn list_users(
        &self,
        _request: Request<v1::ListUsersRequest>,
    ) -> Result<Response<v1::ListUsersResponse>, Status> {
        let mut users = self
            .store
            .list::<User>()
            .await
            .map_err(ControlError::from)?;
        users.sort_by(|a, b| a.email.cmp(&b.email));
        Ok(Response::new(v1::ListUsersResponse {
            users: users.iter().map(user_to_proto).collect(),
        }))
    }

    async fn disable_user(
        &self,
        request: Request<v1::DisableUserRequest>,
    ) -> Result<Response<v1::DisableUserResponse>, Status> {
        let actor = actor(&request);
        let id = validate::id("id", &request.get_ref().id)?.to_owned();
        let user = self
            .set_user_status(actor, &id, UserStatus::Disabled)
            .await?;
        Ok(Response::new(v1::DisableUserResponse {
            user: Some(user_to_proto(&user)),
        }))
    }

    async fn enable_user(
        &self,
        request: Request<v1::EnableUserRequest>,
    ) -> Result<Response<v1::EnableUserResponse>, Status> {
        let actor = actor(&request);
        let id = validate::id("id", &request.get_ref().id)?.to_owned();
        let user = self.set_user_status(actor, &id, UserStatus::Active).await?;
        Ok(Response::new(v1::EnableUserResponse {
            user: Some(user_to_proto(&user)),
        }))
    }

    async fn issue_token(
        &self,
        request: Request<v1::IssueTokenRequest>,
    ) -> Result<Response<v1::IssueTokenResponse>, Status> {
        let actor = actor(&request);
        let req = request.into_inner();
        let user_id = validate::id("user_id", &req.user_id)?.to_owned();
        let name = if req.name.trim().is_empty() {
            "token".to_owned()
        } else {
            validate::name("name", &req.name)?
        };
        let expires_at = req
            .expires_at
            .as_ref()
            .map(|ts| millis(ts, "expires_at"))
            .transpose()?;
        let now = now_ms();
        if expires_at.is_some_and(|end| end <= now) {
            return Err(ControlError::invalid("expires_at", "must be in the future").into());
        }
        let secret =
            random_token(TOKEN_PREFIX).map_err(|e| ControlError::Internal(e.to_string()))?;
        let secret_ref = &secret;
        let token = self
            .store
            .write(|store| async move {
                let secret = secret_ref;
                let user = require::<User>(&store, &user_id).await?;
                if user.status != UserStatus::Active {
                    return Err(ControlError::FailedPrecondition(format!(
                        "user {} is disabled; enable the user before issuing a token",
                        user.email
                    )));
                }
                let token = Token {
                    id: new_id(),
                    user_id: user_id.clone(),
                    name: name.clone(),
                    prefix: secret[..TOKEN_PREFIX.len() + 4].to_owned(),
                    hash: sha256_hex(secret.as_bytes()),
                    created_at: now,
                    expires_at,
                    last_used_at: None,
                    revoked_at: None,
                };
                let mut batch = Batch::default();
                batch.put(&token);
                batch.put_token_hash(&token.hash, &token.id);
                batch.put(&token_client(&token));
                batch.audit(
                    AuditEvent::allowed(&actor, Action::TokenIssue, format!("token/{}", token.id))
                        .with_reason(format!("issued token {:?} to {}", name, user.email))
                        .with_details(json!({
                            "user_id": user_id, "email": user.email,
                            "prefix": token.prefix, "expires_at": expires_at,
                        })),
                );
                Ok((batch, token))
            })
            .await?;
        Ok(Response::new(v1::IssueTokenResponse {
            token: Some(token_to_proto(&token)),
            secret,
            mcp_url: self.mcp_url(),
        }))
    }

    async fn list_tokens(
        &self,
        request: Request<v1::ListTokensRequest>,
    ) -> Result<Response<v1::ListTokensResponse>, Status> {
        let user_id = validate::id("user_id", &request.get_ref().user_id)?;
        require::<User>(&self.store.reader(), user_id).await?;
        let mut tokens: Vec<Token> = self
            .store
            .list::<Token>()
            .await
            .map_err(ControlError::from)?
            .into_iter()
            .filter(|t| t.user_id == user_id)
            .collect();
        tokens.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(Response::new(v1::ListTokensResponse {
            tokens: tokens.iter().map(token_to_proto).collect(),
        }))
    }

    async fn revoke_token(
        &self,
        request: Request<v1::RevokeTokenRequest>,
    ) -> Result<Response<v1::RevokeTokenResponse>, Status> {
        let actor = actor(&request);
        let id = validate::id("id", &request.get_ref().id)?.to_owned();
        let token = self
            .store
            .write(|store| async move {
                let mut token = store
                    .get::<Token>(&id)
                    .await?
                    .ok_or_else(|| ControlError::not_found("token", &id))?;
                let mut batch = Batch::default();
                if token.revoked_at.is_none() {
                    let now = now_ms();
                    token.revoked_at = Some(now);
                    batch.put(&token);
                    // Its AI client can never be used again: it shows as
                    // Closed (ClientService), not as an active client.
                    if let Some(mut client) = store.get::<AiClient>(&id).await?
                        && client.state.is_usable()
                    {
                        client.state = ClientState::Closed;
                        client.updated_at = now;
                        client.revision += 1;
                        batch.put(&client);
                    }
                    batch.audit(
                        AuditEvent::allowed(&actor, Action::TokenRevoke, format!("token/{id}"))
                            .with_details(
                                json!({"user_id": token.user_id, "prefix": token.prefix}),
                            ),
                    );
                }
                Ok::<_, ControlError>((batch, token))
            })
            .await?;
        Ok(Response::new(v1::RevokeTokenResponse {
            token: Some(token_to_proto(&token)),
        }))
    }

    async fn list_user_tools(
        &self,
        request: Request<v1::ListUserToolsRequest>,
    ) -> Result<Response<v1::ListUserToolsResponse>, Status> {
        let user_id = validate::id("user_id", &request.get_ref().user_id)?;
        let user = require::<User>(&self.store.reader(), user_id).await?;
        let store = &self.store;
        let settings = store.settings().await.map_err(ControlError::from)?;
        let servers = store.list::<Server>().await.map_err(ControlError::from)?;
        let tools = store.list::<Tool>().await.map_err(ControlError::from)?;
        let profiles = store
            .list::<AccessProfile>()
            .await
            .map_err(ControlError::from)?;
        let toolsets = store.list::<Toolset>().await.map_err(ControlError::from)?;
        let subject = Subject {
            user: &user,
            token: None,
            profiles: &profiles,
            toolsets: &toolsets,
            now: now_ms(),
        };
        let mut tool_names: Vec<String> = allowed_tools(&settings, &servers, &tools, &subject)
            .into_iter()
            .map(|t| t.name.clone())
            .collect();
        tool_names.sort();
        Ok(Response::new(v1::ListUserToolsResponse { tool_names }))
    }

    async fn issue_sign_in_link(
        &self,
        request: Request<v1::IssueSignInLinkRequest>,
    ) -> Result<Response<v1::IssueSignInLinkResponse>, Status> {
        let actor = actor(&request);
        let user_id = validate::id("user_id", &request.get_ref().user_id)?.to_owned();
        let (link, user) =
            crate::authz::signin::issue_link(&self.store, &self.public_url, &user_id)
                .await
                .map_err(|err| match err {
                    crate::authz::signin::SignInError::UnknownUser(id) => {
                        ControlError::NotFound { kind: "user", id }
                    }
                    crate::authz::signin::SignInError::Store(e) => ControlError::Store(e),
                    other => ControlError::FailedPrecondition(other.to_string()),
                })?;
        let event = crate::authz::signin::issued_event(&actor, &user, link.expires_at);
        if let Err(err) = self.store.append_audit(vec![event]).await {
            tracing::warn!(error = %err, "cannot audit a sign-in link");
        }
        Ok(Response::new(v1::IssueSignInLinkResponse {
            url: link.url,
            expires_at: Some(timestamp(link.expires_at)),
        }))
    }
}
