//! AI clients through the control API (`ClientService`) and the sign-in
//! settings (`SettingsService`): listing, reading, changing and revoking
//! personal-access-token and OAuth clients, with the effect on `/mcp` and
//! the token endpoint; optimistic concurrency; validation of the identity
//! provider and the registration policy; the provider's secret never
//! answered; the idle-client sweeper. Daemon in-process on port 0; OAuth
//! sign-in by hand over HTTP (`common::oauth_flow`).

mod common;

use common::oauth_flow::{refresh, register, sign_in};
use common::raw_mcp::{Answer, INITIALIZE, post, send};
use common::{Fixture, any_file_contains};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tonic::Code;
use toolgate_gateway::model::{AiClient, now_ms};
use toolgate_gateway::store::{Batch, StoreError};
use toolgate_proto::v1;

fn base_of<S>(f: &Fixture<S>) -> String {
    f.mcp_url.trim_end_matches("/mcp").to_owned()
}

/// Opens a session with `token` and calls tool `name` with no arguments.
async fn call_tool(mcp_url: &str, token: &str, name: &str) -> Answer {
    let answer = send(post(mcp_url, token, None, INITIALIZE)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let session = answer.headers["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    send(post(
        mcp_url,
        token,
        Some(&session),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    ))
    .await;
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"{name}","arguments":{{}}}}}}"#
    );
    send(post(mcp_url, token, Some(&session), &body)).await
}

/// Audit events whose action starts with `action` and target with `target`,
/// newest first, with their details parsed.
async fn events(
    admin: &mut common::Clients,
    action: &str,
    target: &str,
) -> Vec<(v1::AuditEvent, Value)> {
    admin
        .audit
        .list_events(v1::ListEventsRequest {
            action_prefix: action.into(),
            target_prefix: target.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events
        .into_iter()
        .map(|e| {
            let details = serde_json::from_str(&e.details_json).unwrap_or(Value::Null);
            (e, details)
        })
        .collect()
}

async fn list(admin: &mut common::Clients, request: v1::ListClientsRequest) -> Vec<v1::AiClient> {
    admin
        .clients
        .list_clients(request)
        .await
        .unwrap()
        .into_inner()
        .clients
}

async fn update(
    admin: &mut common::Clients,
    request: v1::UpdateClientRequest,
) -> Result<v1::UpdateClientResponse, tonic::Status> {
    admin
        .clients
        .update_client(request)
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn clients_are_listed_changed_and_revoked_and_mcp_follows() {
    let mut f = Fixture::start().await;
    let base = base_of(&f);
    let ana = f.create_user("ana@example.com").await;
    let pat = f.issue_token(&ana, "laptop").await;
    let client_id = register(&base, "Claude Desktop").await;
    let tokens = sign_in(&base, &mut f.admin, &ana, &client_id).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();

    // Both AI clients are listed, newest first, with owner and origin.
    let all = list(&mut f.admin, v1::ListClientsRequest::default()).await;
    let names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Claude Desktop", "laptop"]);
    let (oauth, token_client) = (all[0].clone(), all[1].clone());
    assert_eq!(oauth.owner_email, "ana@example.com");
    assert_eq!(oauth.owner_user_id, ana);
    assert_eq!(
        oauth.origin,
        i32::from(v1::ClientOrigin::DynamicRegistration)
    );
    assert_eq!(oauth.client_id, client_id);
    assert_eq!(oauth.redirect_hosts, ["127.0.0.1"]);
    assert_eq!(oauth.client_type, i32::from(v1::ClientType::Personal));
    assert_eq!(oauth.state, i32::from(v1::ClientState::Active));
    assert!(oauth.traffic_enabled);
    assert_eq!(
        token_client.origin,
        i32::from(v1::ClientOrigin::AccessToken)
    );
    assert!(!token_client.token_id.is_empty() && token_client.client_id.is_empty());

    // Pages of one, and filters.
    let first = f
        .admin
        .clients
        .list_clients(v1::ListClientsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((first.clients.len(), first.total_size), (1, 2));
    assert_eq!(first.clients[0].id, oauth.id);
    let second = f
        .admin
        .clients
        .list_clients(v1::ListClientsRequest {
            page_size: 1,
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.clients[0].id, token_client.id);
    assert!(second.next_page_token.is_empty());
    let bad_token = f
        .admin
        .clients
        .list_clients(v1::ListClientsRequest {
            page_token: "not a token!".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_token.code(), Code::InvalidArgument);
    assert!(bad_token.message().starts_with("page_token:"));
    let bob = f.create_user("bob@example.com").await;
    assert!(
        list(
            &mut f.admin,
            v1::ListClientsRequest {
                owner_user_id: bob.clone(),
                ..Default::default()
            }
        )
        .await
        .is_empty()
    );
    assert!(
        list(
            &mut f.admin,
            v1::ListClientsRequest {
                client_type: v1::ClientType::Service.into(),
                ..Default::default()
            }
        )
        .await
        .is_empty()
    );

    // GetClient; NOT_FOUND.
    let got = f
        .admin
        .clients
        .get_client(v1::GetClientRequest {
            id: oauth.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .client
        .unwrap();
    assert_eq!(got, oauth);
    let missing = f
        .admin
        .clients
        .get_client(v1::GetClientRequest { id: "nope".into() })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    // The audit event of a tool call names its AI client (OAuth here; the
    // call is denied: the user has no grants).
    let answer = call_tool(&f.mcp_url, &access, "salesforce_query").await;
    assert!(
        answer.body.contains("not in your tool list"),
        "{}",
        answer.body
    );
    let (call, details) = events(&mut f.admin, "tool.call", "").await.remove(0);
    assert_eq!(call.outcome, i32::from(v1::Outcome::Denied));
    assert_eq!(details["client"]["id"], oauth.id.as_str());
    assert_eq!(details["client"]["name"], "Claude Desktop");
    assert_eq!(details["client"]["type"], "PERSONAL");

    // The kill switch of the token client stops its tool calls; the event
    // names that client.
    let stale = token_client.revision;
    let switched = update(
        &mut f.admin,
        v1::UpdateClientRequest {
            id: token_client.id.clone(),
            traffic_enabled: Some(false),
            expected_revision: Some(stale),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let switched = switched.client.unwrap();
    assert!(!switched.traffic_enabled);
    assert_eq!(switched.revision, stale + 1);
    let answer = call_tool(&f.mcp_url, &pat, "salesforce_query").await;
    assert!(answer.body.contains("kill switch"), "{}", answer.body);
    let (call, details) = events(&mut f.admin, "tool.call", "").await.remove(0);
    assert_eq!(call.outcome, i32::from(v1::Outcome::Denied));
    assert_eq!(details["client"]["id"], token_client.id.as_str());
    assert_eq!(details["client"]["name"], "laptop");
    let (event, details) = events(
        &mut f.admin,
        "client.update",
        &format!("client/{}", token_client.id),
    )
    .await
    .remove(0);
    assert_eq!(event.actor, "admin");
    assert_eq!(details["changed"], serde_json::json!(["traffic_enabled"]));

    // A stale revision is refused and changes nothing.
    let conflict = update(
        &mut f.admin,
        v1::UpdateClientRequest {
            id: token_client.id.clone(),
            name: Some("renamed".into()),
            expected_revision: Some(stale),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(conflict.code(), Code::Aborted, "{}", conflict.message());
    let bad = update(
        &mut f.admin,
        v1::UpdateClientRequest {
            id: token_client.id.clone(),
            client_type: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(
        bad.message().starts_with("client_type:"),
        "{}",
        bad.message()
    );

    // Revoking the OAuth client: its access and refresh tokens stop working.
    let revoked = f
        .admin
        .clients
        .revoke_client(v1::RevokeClientRequest {
            id: oauth.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revoked.revoked_credentials, 1);
    assert_eq!(
        revoked.client.unwrap().state,
        i32::from(v1::ClientState::Closed)
    );
    let refused = send(post(&f.mcp_url, &access, None, INITIALIZE)).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    let (status, answer) = refresh(&base, &client_id, &refresh_token).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("invalid_grant")),
        "{answer}"
    );
    let (event, details) = events(&mut f.admin, "client.revoke", "").await.remove(0);
    assert_eq!(event.target, format!("client/{}", oauth.id));
    assert_eq!(details["revoked_credentials"], 1);
    // Idempotent: nothing more to revoke, no new event.
    let again = f
        .admin
        .clients
        .revoke_client(v1::RevokeClientRequest {
            id: oauth.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.revoked_credentials, 0);
    assert_eq!(events(&mut f.admin, "client.revoke", "").await.len(), 1);

    // Hidden clients are listed only when asked for.
    update(
        &mut f.admin,
        v1::UpdateClientRequest {
            id: token_client.id.clone(),
            state: Some(v1::ClientState::Hidden.into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let shown = list(&mut f.admin, v1::ListClientsRequest::default()).await;
    assert_eq!(
        shown.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        [oauth.id.as_str()]
    );
    let with_hidden = list(
        &mut f.admin,
        v1::ListClientsRequest {
            include_hidden: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(with_hidden.len(), 2);
    let hidden_only = list(
        &mut f.admin,
        v1::ListClientsRequest {
            state: v1::ClientState::Hidden.into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(hidden_only[0].id, token_client.id);

    // Deleting the token client revokes its token; a deleted client stays so.
    let deleted = update(
        &mut f.admin,
        v1::UpdateClientRequest {
            id: token_client.id.clone(),
            state: Some(v1::ClientState::Deleted.into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(deleted.revoked_credentials, 1);
    let tokens = f
        .admin
        .users
        .list_tokens(v1::ListTokensRequest {
            user_id: ana.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .tokens;
    assert!(tokens[0].revoked_at.is_some());
    assert_eq!(
        send(post(&f.mcp_url, &pat, None, INITIALIZE)).await.status,
        401
    );
    let gone = update(
        &mut f.admin,
        v1::UpdateClientRequest {
            id: token_client.id.clone(),
            state: Some(v1::ClientState::Active.into()),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(gone.code(), Code::FailedPrecondition);
    assert!(
        list(&mut f.admin, v1::ListClientsRequest::default())
            .await
            .iter()
            .all(|c| c.id != token_client.id)
    );
    assert_eq!(
        list(
            &mut f.admin,
            v1::ListClientsRequest {
                include_deleted: true,
                include_hidden: true,
                ..Default::default()
            }
        )
        .await
        .len(),
        2
    );

    // Revoking a token closes its AI client.
    let other = f.issue_token(&ana, "desktop").await;
    let desktop = list(&mut f.admin, v1::ListClientsRequest::default())
        .await
        .into_iter()
        .find(|c| c.name == "desktop")
        .unwrap();
    f.admin
        .users
        .revoke_token(v1::RevokeTokenRequest {
            id: desktop.token_id.clone(),
        })
        .await
        .unwrap();
    let closed = f
        .admin
        .clients
        .get_client(v1::GetClientRequest { id: desktop.id })
        .await
        .unwrap()
        .into_inner()
        .client
        .unwrap();
    assert_eq!(closed.state, i32::from(v1::ClientState::Closed));
    assert_eq!(
        send(post(&f.mcp_url, &other, None, INITIALIZE))
            .await
            .status,
        401
    );

    // Reopened, the OAuth client signs in again.
    update(
        &mut f.admin,
        v1::UpdateClientRequest {
            id: oauth.id.clone(),
            state: Some(v1::ClientState::Active.into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let tokens = sign_in(&base, &mut f.admin, &ana, &client_id).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        send(post(&f.mcp_url, access, None, INITIALIZE))
            .await
            .status,
        200
    );
}

fn provider(secret: Option<&str>) -> v1::IdentityProviderInput {
    v1::IdentityProviderInput {
        issuer_url: "https://login.acme.example".into(),
        client_id: "toolgate-prod".into(),
        client_secret: secret.map(str::to_owned),
        scopes: vec!["email".into(), "profile".into(), "groups".into()],
        email_claim: String::new(),
        groups_claim: "groups".into(),
        allowed_email_domains: vec!["acme.example".into()],
        allowed_groups: vec!["toolgate-users".into()],
        unknown_users: v1::UnknownUsers::Create.into(),
        accept_unverified_email: false,
    }
}

async fn update_settings(
    f: &mut Fixture,
    request: v1::UpdateSettingsRequest,
) -> Result<v1::SignInSettings, tonic::Status> {
    f.admin
        .settings
        .update_settings(request)
        .await
        .map(|r| r.into_inner().settings.unwrap().sign_in.unwrap())
}

#[tokio::test]
async fn sign_in_settings_are_validated_and_the_secret_is_never_returned() {
    let mut f = Fixture::start().await;
    const SECRET: &str = "idp-secret-do-not-show-7f3a";

    // Defaults: no provider, Personal clients only, DCR open.
    let defaults = f
        .admin
        .settings
        .get_settings(v1::GetSettingsRequest {})
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap()
        .sign_in
        .unwrap();
    assert!(defaults.identity_provider.is_none());
    let policy = defaults.registration.unwrap();
    assert_eq!(policy.allowed_types, [i32::from(v1::ClientType::Personal)]);
    assert!(policy.dynamic_registration_enabled);
    assert_eq!(policy.ephemeral_close_after_days, Some(1));

    let set = update_settings(
        &mut f,
        v1::UpdateSettingsRequest {
            identity_provider: Some(provider(Some(SECRET))),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let idp = set.identity_provider.unwrap();
    let fingerprint = hex::encode(Sha256::digest(SECRET.as_bytes()))[..8].to_owned();
    assert!(idp.client_secret_set && idp.client_secret_set_at.is_some());
    assert_eq!(idp.client_secret_fingerprint, fingerprint);
    assert_eq!(idp.email_claim, "email");
    assert_eq!(idp.unknown_users, i32::from(v1::UnknownUsers::Create));
    assert_eq!(idp.allowed_email_domains, ["acme.example"]);
    let read = f
        .admin
        .settings
        .get_settings(v1::GetSettingsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(!format!("{read:?}").contains(SECRET));
    assert_eq!(
        read.settings
            .unwrap()
            .sign_in
            .unwrap()
            .identity_provider
            .unwrap(),
        idp
    );

    // The stored secret is never carried to another client id or issuer.
    for moved in [
        v1::IdentityProviderInput {
            client_id: "toolgate-2".into(),
            ..provider(None)
        },
        v1::IdentityProviderInput {
            issuer_url: "https://elsewhere.example".into(),
            ..provider(None)
        },
    ] {
        let refused = update_settings(
            &mut f,
            v1::UpdateSettingsRequest {
                identity_provider: Some(moved),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        assert!(
            refused.message().starts_with(
                "identity_provider.client_secret: is required when issuer_url or client_id changes"
            ),
            "{}",
            refused.message()
        );
    }

    // Unset keeps the secret; empty removes it.
    let kept = update_settings(
        &mut f,
        v1::UpdateSettingsRequest {
            identity_provider: Some(v1::IdentityProviderInput {
                allowed_groups: vec!["toolgate-admins".into()],
                ..provider(None)
            }),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .identity_provider
    .unwrap();
    assert_eq!(
        (
            kept.client_id.as_str(),
            kept.client_secret_fingerprint.as_str()
        ),
        ("toolgate-prod", fingerprint.as_str())
    );

    // The secret is in no answer, no audit event, no file in clear.
    let audit = f
        .admin
        .audit
        .list_events(v1::ListEventsRequest {
            action_prefix: "settings.".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(audit.len(), 2);
    assert!(
        audit
            .iter()
            .all(|e| !e.details_json.contains(SECRET) && !e.reason.contains(SECRET))
    );
    assert!(
        audit[1]
            .reason
            .contains("identity provider https://login.acme.example set"),
        "{}",
        audit[1].reason
    );
    f.daemon.store.flush().await.unwrap();
    assert_eq!(any_file_contains(&f.data_dir, SECRET.as_bytes()), None);
    let public = update_settings(
        &mut f,
        v1::UpdateSettingsRequest {
            identity_provider: Some(provider(Some(""))),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .identity_provider
    .unwrap();
    assert!(!public.client_secret_set && public.client_secret_fingerprint.is_empty());

    // Bad fields are named.
    let cases = [
        (
            v1::UpdateSettingsRequest {
                identity_provider: Some(v1::IdentityProviderInput {
                    issuer_url: "http://login.acme.example".into(),
                    ..provider(None)
                }),
                ..Default::default()
            },
            "identity_provider.issuer_url",
        ),
        (
            v1::UpdateSettingsRequest {
                identity_provider: Some(v1::IdentityProviderInput {
                    allowed_email_domains: vec!["ACME.example".into()],
                    ..provider(None)
                }),
                ..Default::default()
            },
            "identity_provider.allowed_email_domains[0]",
        ),
        (
            v1::UpdateSettingsRequest {
                identity_provider: Some(provider(None)),
                clear_identity_provider: true,
                ..Default::default()
            },
            "clear_identity_provider",
        ),
        (
            v1::UpdateSettingsRequest {
                registration: Some(v1::RegistrationPolicy {
                    allowed_types: vec![v1::ClientType::Personal.into()],
                    default_type: v1::ClientType::Shared.into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            "registration.default_type",
        ),
        (
            v1::UpdateSettingsRequest {
                registration: Some(v1::RegistrationPolicy {
                    allowed_types: vec![v1::ClientType::Personal.into()],
                    default_type: v1::ClientType::Personal.into(),
                    ephemeral_close_after_days: Some(0),
                    ..Default::default()
                }),
                ..Default::default()
            },
            "registration.ephemeral_close_after_days",
        ),
    ];
    for (request, field) in cases {
        let err = update_settings(&mut f, request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(
            err.message().starts_with(&format!("{field}:")),
            "{field}: {}",
            err.message()
        );
    }

    // The registration policy as a whole; clearing the provider.
    let policy = update_settings(
        &mut f,
        v1::UpdateSettingsRequest {
            registration: Some(v1::RegistrationPolicy {
                allowed_types: vec![
                    v1::ClientType::Personal.into(),
                    v1::ClientType::Ephemeral.into(),
                ],
                default_type: v1::ClientType::Ephemeral.into(),
                dynamic_registration_enabled: false,
                metadata_document_private_hosts: vec!["127.0.0.1:8443".into()],
                ephemeral_close_after_days: Some(2),
            }),
            clear_identity_provider: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(policy.identity_provider.is_none());
    let policy = policy.registration.unwrap();
    assert_eq!(policy.default_type, i32::from(v1::ClientType::Ephemeral));
    assert!(!policy.dynamic_registration_enabled);
    let stored = f.daemon.store.settings().await.unwrap();
    assert_eq!(
        stored.sign_in.registration.metadata_document_private_hosts,
        ["127.0.0.1:8443"]
    );
    assert_eq!(
        f.daemon
            .store
            .secret(toolgate_gateway::model::IdentityProvider::SECRET_KEY)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn the_sweeper_closes_idle_ephemeral_clients_and_revokes_their_grants() {
    let mut f = Fixture::start().await;
    let base = base_of(&f);
    f.admin
        .settings
        .update_settings(v1::UpdateSettingsRequest {
            registration: Some(v1::RegistrationPolicy {
                allowed_types: vec![
                    v1::ClientType::Personal.into(),
                    v1::ClientType::Ephemeral.into(),
                ],
                default_type: v1::ClientType::Ephemeral.into(),
                dynamic_registration_enabled: true,
                metadata_document_private_hosts: vec![],
                ephemeral_close_after_days: Some(1),
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let ana = f.create_user("ana@example.com").await;
    let bob = f.create_user("bob@example.com").await;
    let ci = register(&base, "CI job").await;
    let old_tokens = sign_in(&base, &mut f.admin, &ana, &ci).await;
    let new_tokens = sign_in(&base, &mut f.admin, &bob, &ci).await;
    let clients = f.daemon.store.list::<AiClient>().await.unwrap();
    let of = |user: &str| {
        clients
            .iter()
            .find(|c| c.owner_user_id == user)
            .unwrap()
            .clone()
    };
    let (old, recent) = (of(&ana), of(&bob));
    assert_eq!(
        old.client_type,
        toolgate_gateway::model::ClientType::Ephemeral
    );

    // Ana's client was last used three days ago.
    let mut aged = old.clone();
    aged.last_used_at = Some(now_ms() - 3 * 24 * 3600 * 1000);
    aged.created_at = aged.last_used_at.unwrap();
    f.daemon
        .store
        .write(|_| async move {
            let mut batch = Batch::default();
            batch.put(&aged);
            Ok::<_, StoreError>((batch, ()))
        })
        .await
        .unwrap();

    let closed = toolgate_gateway::authz::lifecycle::sweep(&f.daemon.store, now_ms())
        .await
        .unwrap();
    assert_eq!(closed, std::slice::from_ref(&old.id));
    let got = |id: String| {
        let mut admin = f.admin.clone();
        async move {
            admin
                .clients
                .get_client(v1::GetClientRequest { id })
                .await
                .unwrap()
                .into_inner()
                .client
                .unwrap()
        }
    };
    assert_eq!(
        got(old.id.clone()).await.state,
        i32::from(v1::ClientState::Closed)
    );
    assert_eq!(
        got(recent.id.clone()).await.state,
        i32::from(v1::ClientState::Active)
    );
    let old_access = old_tokens["access_token"].as_str().unwrap();
    assert_eq!(
        send(post(&f.mcp_url, old_access, None, INITIALIZE))
            .await
            .status,
        401
    );
    let (status, _) = refresh(&base, &ci, old_tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 400);
    let new_access = new_tokens["access_token"].as_str().unwrap();
    assert_eq!(
        send(post(&f.mcp_url, new_access, None, INITIALIZE))
            .await
            .status,
        200
    );
    let (event, details) = events(&mut f.admin, "client.close_idle", "")
        .await
        .remove(0);
    assert_eq!(
        (event.actor.as_str(), event.target),
        ("system", format!("client/{}", old.id))
    );
    assert_eq!(details["revoked_credentials"], 1);

    // A second sweep has nothing to do; a client's own idle limit applies
    // to any type.
    assert!(
        toolgate_gateway::authz::lifecycle::sweep(&f.daemon.store, now_ms())
            .await
            .unwrap()
            .is_empty()
    );
    let pat = f.issue_token(&ana, "script").await;
    let token_client = f
        .daemon
        .store
        .list::<AiClient>()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name == "script")
        .unwrap();
    update(
        &mut f.admin,
        v1::UpdateClientRequest {
            id: token_client.id.clone(),
            close_after_idle_days: Some(5),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let later = now_ms() + 6 * 24 * 3600 * 1000;
    let closed = toolgate_gateway::authz::lifecycle::sweep(&f.daemon.store, later)
        .await
        .unwrap();
    assert!(
        closed.contains(&token_client.id) && closed.contains(&recent.id),
        "{closed:?}"
    );
    assert_eq!(
        send(post(&f.mcp_url, &pat, None, INITIALIZE)).await.status,
        401
    );
}
