//! Approval of a single call: a tool call that `GovernanceSettings.call_approval`
//! matches ([`crate::governance::needs_call_approval`]) is held until a
//! person approves it (DESIGN.md, "Held call"; gRPC
//! `toolgate.v1.HeldCallService`).
//!
//! An approval is bound to the user, the tool, the SHA-256 of the
//! arguments exactly as they will be sent ([`arguments_digest`], canonical
//! JSON) and the policy in force ([`policy_revision`]), and expires
//! `held_call_ttl_secs` after it was given. [`gate`] decides a call on the
//! stored held calls of its user and tool: an approval that matches lets
//! it run once ([`consume`] marks it USED in a write that re-reads it, so
//! two retries, even on two replicas, run it at most once); anything else
//! holds the call as a new PENDING one (or answers with the one already
//! pending, or with a recent denial). The arguments are sealed in the
//! store (`HeldCall::arguments_key`) only while a decision or a retry may
//! still need them; [`sweep`] expires undecided and unused calls.
//!
//! Must not: put arguments (which may hold personal data) in an audit
//! event, a log line or a `_meta`; run a call on anything but an APPROVED
//! record re-read inside the consuming write.

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{
    ElicitRequest, ElicitRequestParams, ElicitationSchema, InputRequest, InputRequests,
    InputRequiredResult,
};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::World;
use super::auth::Caller;
use super::prompt::{ConnectPrompts, HELD_CALL_KEY, Retry};
use crate::audit::Action;
use crate::governance::toolset_contains;
use crate::model::{
    AccessProfile, AuditEvent, HeldCall, HeldCallState, Millis, Server, Tool, new_id, now_ms,
};
use crate::store::{Batch, Store, StoreError};

/// How often the daemon expires held calls (one minute). A call is never
/// run on an approval past its expiry whatever the sweeper did; the sweep
/// makes the state visible and drops the sealed arguments.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// The JSON text of `value` with every object's keys in byte order, no
/// insignificant whitespace, and strings and numbers as `serde_json` writes
/// them. serde_json keeps insertion order in this workspace (its
/// `preserve_order` feature is on through a dependency), so keys are sorted
/// here explicitly.
pub fn canonical_json(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, key) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    write(&map[key], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// SHA-256 (lowercase hex) of [`canonical_json`] of `args`: the digest an
/// approval is bound to.
pub fn arguments_digest(args: &Value) -> String {
    hex::encode(Sha256::digest(canonical_json(args).as_bytes()))
}

/// The parts of policy a held call of `user_id` calling `tool` (of
/// `server`) depends on, each labelled: the settings (all but sign-in), the tool record, its
/// server, every access profile that grants the user the tool (with only
/// this user's grant, so another user's grant does not void the approval)
/// and the toolsets through which they grant it, and the tool-call hooks
/// (they decide what is sent and returned).
pub fn policy_parts(world: &World, user_id: &str, tool: &Tool, server: &Server) -> Vec<Value> {
    let mut profiles: Vec<AccessProfile> = Vec::new();
    let mut toolsets = Vec::new();
    for profile in &world.profiles {
        if !profile.grants.iter().any(|g| g.user_id == user_id) {
            continue;
        }
        let binding: Vec<_> = world
            .toolsets
            .iter()
            .filter(|ts| profile.toolset_ids.contains(&ts.id) && toolset_contains(ts, tool))
            .collect();
        if binding.is_empty() {
            continue;
        }
        let mut own = profile.clone();
        own.grants.retain(|g| g.user_id == user_id);
        profiles.push(own);
        toolsets.extend(binding);
    }
    toolsets.sort_by(|a, b| a.id.cmp(&b.id));
    toolsets.dedup_by(|a, b| a.id == b.id);
    vec![
        json!({"settings": {
            // Sign-in settings do not decide what a call does.
            "mcp_traffic_enabled": world.settings.mcp_traffic_enabled,
            "require_tool_approval": world.settings.require_tool_approval,
            "default_classification": world.settings.default_classification,
            "governance": world.settings.governance,
        }}),
        json!({"tool": tool}),
        json!({"server": server}),
        json!({"profiles": profiles}),
        json!({"toolsets": toolsets}),
        json!({"hooks": world.hooks}),
    ]
}

/// SHA-256 (lowercase hex) over [`canonical_json`] of `parts` (from
/// [`policy_parts`]): equal only while none of them changed.
pub fn policy_revision(parts: &[Value]) -> String {
    hex::encode(Sha256::digest(
        canonical_json(&Value::Array(parts.to_vec())).as_bytes(),
    ))
}

/// What [`gate`] decided.
#[derive(Debug)]
pub enum Gate {
    /// Run the call on this approved held call, after [`consume`]
    /// succeeds.
    Approved(String),
    /// Do not run: tell the client.
    Held(Box<Notice>),
}

/// A held (or refused) call's answer, built into the tool result by the
/// MCP handler.
#[derive(Debug)]
pub struct Notice {
    /// The held call's id.
    pub id: String,
    /// Its state (`PENDING`, `DENIED`).
    pub state: HeldCallState,
    /// The text the client reads.
    pub message: String,
    /// The tool-call audit event's reason.
    pub reason: String,
    /// On 2026-07-28 to a client that takes form elicitations: the
    /// `input_required` result to send instead of the text.
    pub input: Option<InputRequiredResult>,
}

impl Notice {
    /// The audit details of the tool-call event: the held call and its
    /// state (never the arguments).
    pub fn details(&self) -> Map<String, Value> {
        let mut details = Map::new();
        details.insert("held_call".into(), json!(self.id));
        details.insert("held_call_state".into(), json!(self.state));
        details
    }

    /// `_meta` of the tool result: `toolgate/held_call` with the id and
    /// state, for clients that read it instead of the text.
    pub fn meta(&self) -> Map<String, Value> {
        let mut meta = Map::new();
        meta.insert(
            "toolgate/held_call".into(),
            json!({"id": self.id, "state": self.state}),
        );
        meta
    }
}

/// How the client is spoken to.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    /// Protocol 2026-07-28 or later and the client takes form
    /// elicitations: the notice is an `input_required` result.
    pub input_required: bool,
}

/// A duration in words, rounded down to minutes (at least one).
fn in_words(ms: Millis) -> String {
    // Rounded up: a call held for an hour reads "1 hour" a moment later.
    let minutes = (ms.saturating_add(59_999) / 60_000).max(1);
    if minutes % 60 == 0 {
        let hours = minutes / 60;
        format!("{hours} hour{}", if hours == 1 { "" } else { "s" })
    } else {
        format!("{minutes} minute{}", if minutes == 1 { "" } else { "s" })
    }
}

/// Why an earlier approval of this user's calls of the tool does not let
/// this call run, if one exists.
fn why_not(calls: &[HeldCall], digest: &str, revision: &str, now: Millis) -> Option<String> {
    let same = calls
        .iter()
        .filter(|c| c.arguments_digest == digest)
        .max_by_key(|c| c.created_at);
    if let Some(c) = same {
        match c.state {
            HeldCallState::Used if c.policy_revision == revision => {
                return Some(format!(
                    "the approval of held call {} was already used: an approval runs one call once",
                    c.id
                ));
            }
            HeldCallState::Approved | HeldCallState::Used if c.policy_revision != revision => {
                return Some(format!(
                    "the approval of held call {} no longer applies: the policy for this tool changed after it was approved",
                    c.id
                ));
            }
            HeldCallState::Approved if c.expires_at <= now => {
                return Some(format!(
                    "the approval of held call {} expired before the call was retried",
                    c.id
                ));
            }
            _ => {}
        }
    }
    calls
        .iter()
        .filter(|c| c.state == HeldCallState::Approved && c.expires_at > now)
        .max_by_key(|c| c.created_at)
        .map(|c| {
            format!(
                "the approval of held call {} was for other arguments: only a call with exactly the approved arguments runs",
                c.id
            )
        })
}

/// Everything [`gate`] needs about one call.
#[derive(Debug)]
pub struct Call<'a> {
    /// The caller.
    pub caller: &'a Caller,
    /// The tool called (it needs approval).
    pub tool: &'a Tool,
    /// Its server.
    pub server: &'a Server,
    /// The arguments exactly as they will be sent.
    pub args: &'a Value,
    /// The policy snapshot the call was decided on.
    pub world: &'a World,
    /// The opened `requestState` of a 2026-07-28 retry, if any.
    pub retry: Option<&'a Retry>,
}

/// Decides a call whose tool needs a person's approval, on the stored held
/// calls of its user and tool (read inside one store write, so two
/// identical calls do not hold two calls):
///
/// - an APPROVED, unexpired call with the same argument digest and policy
///   revision: [`Gate::Approved`] (the caller runs the call after
///   [`consume`]);
/// - a PENDING, unexpired one with the same digest and revision: its
///   notice again (no duplicate);
/// - one DENIED within `held_call_ttl_secs` with the same digest: the
///   denial with the admin's reason;
/// - otherwise a new PENDING held call (arguments sealed, expiry now +
///   `held_call_ttl_secs`, audited `held_call.hold` in the same write), its
///   notice saying why an earlier approval did not apply, if one exists.
///
/// A 2026-07-28 retry whose user stopped waiting (declined the notice)
/// gets the text notice and no new prompt.
///
/// Errors: [`StoreError`] when the store cannot be read or written.
pub async fn gate(
    store: &Store,
    prompts: &ConnectPrompts,
    call: Call<'_>,
    client: Client,
) -> Result<Gate, StoreError> {
    let Call {
        caller,
        tool,
        server,
        args,
        world,
        retry,
    } = call;
    let digest = arguments_digest(args);
    let revision = policy_revision(&policy_parts(world, &caller.user.id, tool, server));
    let ttl_secs = world.settings.governance.held_call_ttl_secs;
    let ttl_ms = i64::try_from(ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let stopped_waiting = retry.is_some_and(|r| r.held_call.is_some() && r.declined);
    let (digest, revision) = (&digest, &revision);
    let decided = store
        .write(|tx| async move {
            let now = now_ms();
            let calls: Vec<HeldCall> = tx
                .list::<HeldCall>()
                .await?
                .into_iter()
                .filter(|c| c.user_id == caller.user.id && c.tool_id == tool.id)
                .collect();
            let mut batch = Batch::default();
            let find = |state: HeldCallState| {
                calls
                    .iter()
                    .filter(|c| {
                        c.state == state
                            && c.expires_at > now
                            && &c.arguments_digest == digest
                            && &c.policy_revision == revision
                    })
                    .max_by_key(|c| c.created_at)
            };
            if let Some(approved) = find(HeldCallState::Approved) {
                return Ok::<_, StoreError>((batch, Err(approved.id.clone())));
            }
            if let Some(pending) = find(HeldCallState::Pending) {
                return Ok((batch, Ok((pending.clone(), None))));
            }
            if let Some(denied) = calls
                .iter()
                .filter(|c| {
                    c.state == HeldCallState::Denied
                        && &c.arguments_digest == digest
                        && c.decided_at.unwrap_or(c.created_at) + ttl_ms > now
                })
                .max_by_key(|c| c.created_at)
            {
                return Ok((batch, Ok((denied.clone(), None))));
            }
            let why = why_not(&calls, digest, revision, now);
            let held = HeldCall {
                id: new_id(),
                user_id: caller.user.id.clone(),
                ai_client_id: caller.client.id.clone(),
                tool_id: tool.id.clone(),
                tool: tool.name.clone(),
                server_id: tool.server_id.clone(),
                arguments_digest: digest.clone(),
                policy_revision: revision.clone(),
                state: HeldCallState::Pending,
                created_at: now,
                expires_at: now.saturating_add(ttl_ms),
                decided_at: None,
                decided_by: String::new(),
                decision_reason: String::new(),
                used_at: None,
                revision: 1,
            };
            batch.put(&held);
            batch.put_secret(
                &HeldCall::arguments_key(&held.id),
                canonical_json(args).as_bytes(),
            );
            batch.audit(
                AuditEvent::allowed(
                    &format!("user:{}", caller.user.email),
                    Action::HeldCallHold,
                    format!("held_call/{}", held.id),
                )
                .with_reason(match &why {
                    Some(why) => format!("call of {} held for approval; {why}", tool.name),
                    None => format!("call of {} held for approval", tool.name),
                })
                .with_details(json!({
                    "user_id": held.user_id,
                    "tool": held.tool,
                    "tool_id": held.tool_id,
                    "server_id": held.server_id,
                    "client_id": held.ai_client_id,
                    "arguments_digest": held.arguments_digest,
                    "policy_revision": held.policy_revision,
                    "expires_at": held.expires_at,
                })),
            );
            Ok((batch, Ok((held, why))))
        })
        .await?;
    let (held, why) = match decided {
        Err(approved) => return Ok(Gate::Approved(approved)),
        Ok(found) => found,
    };
    Ok(Gate::Held(Box::new(notice(
        prompts,
        &held,
        why,
        caller,
        client,
        stopped_waiting,
    ))))
}

/// The answer for `held` (PENDING or DENIED).
fn notice(
    prompts: &ConnectPrompts,
    held: &HeldCall,
    why: Option<String>,
    caller: &Caller,
    client: Client,
    stopped_waiting: bool,
) -> Notice {
    let tool = &held.tool;
    let id = &held.id;
    if held.state == HeldCallState::Denied {
        return Notice {
            id: id.clone(),
            state: held.state,
            message: format!(
                "An administrator denied this call of {tool} (held call {id}): {}. It was not run; do not retry it with the same arguments.",
                held.decision_reason
            ),
            reason: format!("held call {id} was denied"),
            input: None,
        };
    }
    let left = in_words(held.expires_at - now_ms());
    let mut message = String::new();
    if let Some(why) = &why {
        message.push_str(&format!("This call of {tool} was not run: {why}. "));
    }
    message.push_str(&format!(
        "This call of {tool} needs an administrator's approval before it runs, and was not run. It is held as held call {id} for {left}. Ask your toolgate administrator to approve held call {id}; once approved, call {tool} again with exactly the same arguments and it runs once. A call with other arguments is held anew."
    ));
    let reason = match &why {
        Some(why) => format!("held for approval as held call {id}; {why}"),
        None => format!("held for approval as held call {id}"),
    };
    let input = (client.input_required && !stopped_waiting).then(|| {
        let elicit = ElicitRequest::new(ElicitRequestParams::FormElicitationParams {
            meta: None,
            message: format!(
                "{}The call of {tool} awaits an administrator's approval (held call {id}). Accept once it is approved to run it; decline to stop waiting.",
                why.as_ref().map(|w| format!("Not run: {w}. ")).unwrap_or_default()
            ),
            requested_schema: ElicitationSchema::new(Default::default()),
        });
        let requests =
            InputRequests::from([(HELD_CALL_KEY.to_owned(), InputRequest::Elicitation(elicit))]);
        let ttl = Duration::from_millis(u64::try_from(held.expires_at - now_ms()).unwrap_or(0));
        let state = prompts.seal_held(&caller.user.id, tool, &held.server_id, id, ttl);
        InputRequiredResult::new(Some(requests), Some(state))
    });
    Notice {
        id: id.clone(),
        state: held.state,
        message,
        reason,
        input,
    }
}

/// Why an approved call did not run after all.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// Another retry used (or an admin or the sweeper changed) it first.
    #[error(
        "the approval of held call {0} was already used or has expired; call the tool again to hold it anew"
    )]
    Gone(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Marks approved held call `id` USED (and drops its sealed arguments) in a
/// write that re-reads it first: it must still be APPROVED and unexpired,
/// so of two concurrent retries (on any replicas) one runs and the other
/// gets [`ConsumeError::Gone`]. The caller runs the call only on `Ok`.
pub async fn consume(store: &Store, id: &str) -> Result<(), ConsumeError> {
    store
        .write(|tx| async move {
            let now = now_ms();
            let mut held = match tx.get::<HeldCall>(id).await? {
                Some(h) if h.state == HeldCallState::Approved && h.expires_at > now => h,
                _ => return Err(ConsumeError::Gone(id.to_owned())),
            };
            held.state = HeldCallState::Used;
            held.used_at = Some(now);
            held.revision += 1;
            let mut batch = Batch::default();
            batch.put(&held);
            batch.delete_secret(&HeldCall::arguments_key(id));
            Ok((batch, ()))
        })
        .await
}

/// One sweep at `now`: every PENDING or APPROVED held call past its expiry
/// becomes EXPIRED (audited `held_call.expire`, actor `system`), and the
/// sealed arguments of every call that is done (EXPIRED, USED, DENIED) are
/// deleted; the records stay for the audit trail. Returns the ids expired.
/// Safe on every replica at once: the write re-reads the calls.
///
/// Errors: [`StoreError`] when the store cannot be read or written.
pub async fn sweep(store: &Store, now: Millis) -> Result<Vec<String>, StoreError> {
    store
        .write(|tx| async move {
            let mut batch = Batch::default();
            let mut expired = Vec::new();
            for mut held in tx.list::<HeldCall>().await? {
                let key = HeldCall::arguments_key(&held.id);
                let live = matches!(held.state, HeldCallState::Pending | HeldCallState::Approved);
                if live && held.expires_at <= now {
                    let was = held.state;
                    held.state = HeldCallState::Expired;
                    held.revision += 1;
                    batch.put(&held);
                    batch.delete_secret(&key);
                    batch.audit(
                        AuditEvent::allowed(
                            "system",
                            Action::HeldCallExpire,
                            format!("held_call/{}", held.id),
                        )
                        .with_reason(match was {
                            HeldCallState::Approved => format!(
                                "approved call of {} expired: it was not retried in time",
                                held.tool
                            ),
                            _ => format!(
                                "held call of {} expired: nobody decided in time",
                                held.tool
                            ),
                        })
                        .with_details(json!({
                            "user_id": held.user_id,
                            "tool": held.tool,
                            "was": was,
                            "expires_at": held.expires_at,
                        })),
                    );
                    expired.push(held.id);
                } else if !live && tx.secret(&key).await?.is_some() {
                    batch.delete_secret(&key);
                }
            }
            Ok::<_, StoreError>((batch, expired))
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
                Ok(expired) if !expired.is_empty() => {
                    tracing::info!(count = expired.len(), "expired held calls");
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "cannot sweep held calls"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth_and_keeps_array_order() {
        let a = json!({"b": 1, "a": {"z": [3, {"y": "é\"", "x": null}], "c": true}});
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"c":true,"z":[3,{"x":null,"y":"é\""}]},"b":1}"#
        );
        let reordered: Value =
            serde_json::from_str(r#"{"a":{"z":[3,{"x":null,"y":"é\""}],"c":true},"b":1}"#).unwrap();
        assert_eq!(arguments_digest(&a), arguments_digest(&reordered));
        assert_ne!(
            arguments_digest(&json!({"z": [1, 2]})),
            arguments_digest(&json!({"z": [2, 1]}))
        );
        assert_eq!(arguments_digest(&json!({})).len(), 64);
    }

    #[test]
    fn the_policy_revision_moves_with_any_part() {
        let parts = vec![json!({"settings": {"a": 1}}), json!({"tool": {"b": 2}})];
        let same = vec![json!({"settings": {"a": 1}}), json!({"tool": {"b": 2}})];
        assert_eq!(policy_revision(&parts), policy_revision(&same));
        let changed = vec![json!({"settings": {"a": 2}}), json!({"tool": {"b": 2}})];
        assert_ne!(policy_revision(&parts), policy_revision(&changed));
        let mut more = parts.clone();
        more.push(json!({"hooks": []}));
        assert_ne!(policy_revision(&parts), policy_revision(&more));
    }

    fn call(id: &str, state: HeldCallState, digest: &str, revision: &str) -> HeldCall {
        HeldCall {
            id: id.into(),
            user_id: "u".into(),
            ai_client_id: "c".into(),
            tool_id: "t".into(),
            tool: "salesforce_delete_record".into(),
            server_id: "s".into(),
            arguments_digest: digest.into(),
            policy_revision: revision.into(),
            state,
            created_at: 1,
            expires_at: 100,
            decided_at: None,
            decided_by: String::new(),
            decision_reason: String::new(),
            used_at: None,
            revision: 1,
        }
    }

    #[test]
    fn why_not_names_the_approval_and_what_differs() {
        let used = [call("h1", HeldCallState::Used, "d", "r")];
        assert!(
            why_not(&used, "d", "r", 50)
                .unwrap()
                .contains("h1 was already used")
        );
        let approved = [call("h2", HeldCallState::Approved, "d", "r")];
        assert!(
            why_not(&approved, "d", "r2", 50)
                .unwrap()
                .contains("policy for this tool changed")
        );
        assert!(
            why_not(&approved, "other", "r", 50)
                .unwrap()
                .contains("h2 was for other arguments")
        );
        assert!(
            why_not(&approved, "d", "r", 100)
                .unwrap()
                .contains("expired")
        );
        let pending = [call("h3", HeldCallState::Pending, "d", "r")];
        assert_eq!(why_not(&pending, "x", "r", 50), None);
        assert_eq!(why_not(&[], "d", "r", 50), None);
    }

    #[test]
    fn durations_read_as_minutes_or_hours() {
        assert_eq!(in_words(3_600_000), "1 hour");
        assert_eq!(in_words(3_599_990), "1 hour");
        assert_eq!(in_words(7_200_000), "2 hours");
        assert_eq!(in_words(90_000), "2 minutes");
        assert_eq!(in_words(60_000), "1 minute");
        assert_eq!(in_words(10), "1 minute");
        assert_eq!(in_words(600_000), "10 minutes");
    }
}
