//! The lifecycle of AI clients after sign-in: revoking a client's
//! credentials when an admin closes, deletes or revokes it
//! (`ClientService`), and the sweeper that closes idle clients (Ephemeral
//! ones after `RegistrationPolicy.ephemeral_close_after_days`, any client
//! after its own `close_after_idle_days`).
//!
//! Revocation happens inside the caller's [`Store::write`], in the same
//! batch as the state change, so a client is never Closed with a live
//! refresh token. `/mcp` reads the grant (OAuth) or the token (personal
//! access token) on every call, so the next call fails.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::audit::Action;
use crate::model::{
    AiClient, AuditEvent, ClientOrigin, ClientState, ClientType, Millis, OAuthGrant,
    RegistrationPolicy, Token, now_ms,
};
use crate::store::{Batch, Store, StoreError, Tx};

/// How often the daemon sweeps for idle clients (10 minutes).
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(600);

/// One day in milliseconds.
const DAY_MS: i64 = 24 * 3600 * 1000;

/// Revokes, into `batch`, every live credential of `client`: each
/// unrevoked OAuth grant (refresh token family) of an OAuth client, with
/// `reason` as its `revoked_reason`, or the personal access token of a
/// token client. Returns how many were revoked. Writes no audit event: the
/// caller writes one for the change as a whole.
///
/// Errors: [`StoreError`] when the store cannot be read.
pub async fn revoke_credentials(
    tx: &Tx<'_>,
    batch: &mut Batch,
    client: &AiClient,
    reason: &str,
    now: Millis,
) -> Result<u32, StoreError> {
    let mut revoked = 0;
    if client.origin == ClientOrigin::AccessToken {
        if let Some(token_id) = &client.token_id
            && let Some(mut token) = tx.get::<Token>(token_id).await?
            && token.revoked_at.is_none()
        {
            token.revoked_at = Some(now);
            batch.put(&token);
            revoked += 1;
        }
        return Ok(revoked);
    }
    for mut grant in tx.list::<OAuthGrant>().await? {
        if grant.ai_client_id != client.id || grant.revoked_at.is_some() {
            continue;
        }
        grant.revoked_at = Some(now);
        grant.revoked_reason = reason.to_owned();
        batch.put(&grant);
        revoked += 1;
    }
    Ok(revoked)
}

/// After how many idle days `client` is closed under `policy`: its own
/// `close_after_idle_days`, else the policy's `ephemeral_close_after_days`
/// for an Ephemeral client; `None`: never.
pub fn idle_limit_days(client: &AiClient, policy: &RegistrationPolicy) -> Option<u32> {
    client.close_after_idle_days.or_else(|| {
        (client.client_type == ClientType::Ephemeral)
            .then_some(policy.ephemeral_close_after_days)
            .flatten()
    })
}

/// Whether `client` has been idle (since its last use, or its creation if
/// never used) for at least its [`idle_limit_days`] at `now`. Only Active
/// and Hidden clients are due.
pub fn is_idle(client: &AiClient, policy: &RegistrationPolicy, now: Millis) -> bool {
    let Some(days) = idle_limit_days(client, policy) else {
        return false;
    };
    let since = client.last_used_at.unwrap_or(client.created_at);
    client.state.is_usable() && now.saturating_sub(since) >= i64::from(days) * DAY_MS
}

/// One sweep at `now`: closes every idle client ([`is_idle`]) and revokes
/// its credentials, each with one audit event (actor `system`, action
/// `client.close_idle`, target `client/<id>`), all in one write. Returns
/// the ids of the clients closed. Safe on every replica at once: the write
/// re-reads the clients under the change lock.
///
/// Errors: [`StoreError`] when the store cannot be read or written.
pub async fn sweep(store: &Store, now: Millis) -> Result<Vec<String>, StoreError> {
    store
        .write(|tx| async move {
            let settings = tx.settings().await?;
            let policy = &settings.sign_in.registration;
            let mut batch = Batch::default();
            let mut closed = Vec::new();
            for mut client in tx.list::<AiClient>().await? {
                if !is_idle(&client, policy, now) {
                    continue;
                }
                let days = idle_limit_days(&client, policy).unwrap_or_default();
                let revoked = revoke_credentials(
                    &tx,
                    &mut batch,
                    &client,
                    "client closed after being idle",
                    now,
                )
                .await?;
                client.state = ClientState::Closed;
                client.updated_at = now;
                client.revision += 1;
                batch.put(&client);
                batch.audit(
                    AuditEvent::allowed(
                        "system",
                        Action::ClientCloseIdle,
                        format!("client/{}", client.id),
                    )
                    .with_reason(format!(
                        "AI client {:?} closed after {days} idle day(s)",
                        client.name
                    ))
                    .with_details(json!({
                        "name": client.name,
                        "type": client.client_type,
                        "owner_user_id": client.owner_user_id,
                        "last_used_at": client.last_used_at,
                        "idle_days_limit": days,
                        "revoked_credentials": revoked,
                    })),
                );
                closed.push(client.id);
            }
            Ok::<_, StoreError>((batch, closed))
        })
        .await
}

/// Sweeps every `every` (the first sweep at once) until `stop` is
/// cancelled. A failed sweep is logged and retried at the next tick.
pub async fn run_sweeper(store: Arc<Store>, every: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => match sweep(&store, now_ms()).await {
                Ok(closed) if !closed.is_empty() => {
                    tracing::info!(count = closed.len(), "closed idle AI clients");
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "cannot sweep idle AI clients"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(client_type: ClientType, own: Option<u32>, last_used: Option<Millis>) -> AiClient {
        AiClient {
            id: "c".into(),
            name: "ci".into(),
            origin: ClientOrigin::DynamicRegistration,
            client_id: Some("x".into()),
            token_id: None,
            owner_user_id: "u".into(),
            client_type,
            state: ClientState::Active,
            traffic_enabled: true,
            close_after_idle_days: own,
            last_used_at: last_used,
            created_at: 0,
            updated_at: 0,
            revision: 1,
        }
    }

    #[test]
    fn idle_limits_come_from_the_client_then_the_policy_for_ephemeral_clients() {
        let policy = RegistrationPolicy {
            ephemeral_close_after_days: Some(2),
            ..RegistrationPolicy::default()
        };
        let day = DAY_MS;
        let eph = client(ClientType::Ephemeral, None, Some(10 * day));
        assert_eq!(idle_limit_days(&eph, &policy), Some(2));
        assert!(!is_idle(&eph, &policy, 12 * day - 1));
        assert!(is_idle(&eph, &policy, 12 * day));
        let personal = client(ClientType::Personal, None, None);
        assert_eq!(idle_limit_days(&personal, &policy), None);
        assert!(!is_idle(&personal, &policy, 1000 * day));
        let own = client(ClientType::Personal, Some(5), None);
        assert!(
            is_idle(&own, &policy, 5 * day),
            "never used: idle since creation"
        );
        let eph_own = client(ClientType::Ephemeral, Some(7), Some(0));
        assert!(!is_idle(&eph_own, &policy, 6 * day), "its own limit wins");
        let mut closed = client(ClientType::Ephemeral, None, None);
        closed.state = ClientState::Closed;
        assert!(!is_idle(&closed, &policy, 100 * day));
        let never = RegistrationPolicy {
            ephemeral_close_after_days: None,
            ..policy
        };
        assert!(!is_idle(&eph, &never, 1000 * day));
    }
}
