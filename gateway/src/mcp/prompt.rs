//! The connect prompt of protocol 2026-07-28 as a multi round-trip request
//! (MCP 2026-07-28 "Multi Round-Trip Requests", SEP-2322): the first call of
//! a user with no Salesforce connection answers `input_required` with a
//! URL elicitation (the connect link, key [`ELICITATION_KEY`]) and a
//! `requestState`; the client retries the same call with the elicitation's
//! answer and that state.
//!
//! This module owns the `requestState`: an HMAC-SHA256-sealed value (rmcp's
//! [`RequestStateCodec`], keyed from the master key with purpose
//! [`PROMPT_KEY_PURPOSE`], so every replica opens what any replica sealed)
//! that names the server to connect, expires with the connect link
//! ([`crate::oauth::LINK_TTL`]), and is bound to the user and the tool name
//! (associated data, not stored in it): a state echoed by another user, or
//! for another tool, or edited, does not open. The state is signed, not
//! encrypted; it holds no secret (a server id).
//!
//! Must not: decide anything from a state that did not open; the retry
//! checks the connection in the store again whatever the state says.

use std::time::Duration;

use rmcp::model::{InputResponses, RequestStateCodec, RequestStateError, SealOptions};
use serde::{Deserialize, Serialize};

/// The key-derivation purpose of the `requestState` key (see
/// [`crate::store::Store::derived_key`]).
pub const PROMPT_KEY_PURPOSE: &str = "connect-prompt-request-state";

/// The key of the connect link's URL elicitation in `inputRequests` (and of
/// its answer in `inputResponses`).
pub const ELICITATION_KEY: &str = "connect_salesforce";

/// Domain separation of the associated data.
const CONTEXT: &[u8] = b"toolgate connect prompt v1\0";

/// The key of the held-call notice's form elicitation in `inputRequests`
/// (and of its answer in `inputResponses`), see [`super::held_calls`].
pub const HELD_CALL_KEY: &str = "await_approval";

/// What a sealed state says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Sealed {
    /// The server whose connection was asked for (of a held call: the
    /// tool's server).
    server_id: String,
    /// The held call the state waits on; absent in connect prompts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    held_call: Option<String>,
}

/// A `requestState` that does not open for this call (forged, edited,
/// another user's or another tool's, or sealed under another key). One
/// error for every cause, as SEP-2322 asks; the cause goes to the log.
#[derive(Debug, thiserror::Error)]
#[error("requestState was not issued by toolgate for this call; call the tool again without it")]
pub struct InvalidState(#[source] RequestStateError);

/// The answer a retried call carries, once its state has opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// The server whose connection was asked for.
    pub server_id: String,
    /// Whether the user declined or cancelled the connect prompt (MCP
    /// "Elicitation": `action` `decline` or `cancel`); `false` when they
    /// accepted or the answer is missing. Of a held call: whether the user
    /// stopped waiting for the approval.
    pub declined: bool,
    /// The held call this retry waited on ([`ConnectPrompts::seal_held`]);
    /// `None` for a connect prompt.
    pub held_call: Option<String>,
}

/// Seals and opens connect-prompt states.
pub struct ConnectPrompts {
    codec: RequestStateCodec,
    ttl: Duration,
}

impl std::fmt::Debug for ConnectPrompts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectPrompts").finish_non_exhaustive()
    }
}

fn associated_data(user_id: &str, tool: &str) -> Vec<u8> {
    let mut data = Vec::with_capacity(CONTEXT.len() + user_id.len() + 1 + tool.len());
    data.extend_from_slice(CONTEXT);
    data.extend_from_slice(user_id.as_bytes());
    data.push(0);
    data.extend_from_slice(tool.as_bytes());
    data
}

impl ConnectPrompts {
    /// Prompts sealed with `key` (32 bytes derived from the master key with
    /// purpose [`PROMPT_KEY_PURPOSE`]), valid for `ttl`.
    pub fn new(key: [u8; 32], ttl: Duration) -> Self {
        #[allow(clippy::expect_used)]
        let codec = RequestStateCodec::try_new(key.to_vec())
            .expect("32 bytes is RequestStateCodec::MIN_KEY_LENGTH");
        Self { codec, ttl }
    }

    /// The `requestState` of a connect prompt to `user_id` calling `tool`,
    /// asking for a connection to `server_id`.
    pub fn seal(&self, user_id: &str, tool: &str, server_id: &str) -> String {
        self.seal_payload(
            user_id,
            tool,
            &Sealed {
                server_id: server_id.to_owned(),
                held_call: None,
            },
            self.ttl,
        )
    }

    /// The `requestState` of a held-call notice to `user_id` calling `tool`
    /// of `server_id`, waiting on held call `held_call_id`, valid for `ttl`
    /// (the held call's own expiry). The retry is decided on the held call
    /// as stored, never on the state.
    pub fn seal_held(
        &self,
        user_id: &str,
        tool: &str,
        server_id: &str,
        held_call_id: &str,
        ttl: Duration,
    ) -> String {
        self.seal_payload(
            user_id,
            tool,
            &Sealed {
                server_id: server_id.to_owned(),
                held_call: Some(held_call_id.to_owned()),
            },
            ttl,
        )
    }

    fn seal_payload(&self, user_id: &str, tool: &str, payload: &Sealed, ttl: Duration) -> String {
        let data = associated_data(user_id, tool);
        let options = SealOptions::new().associated_data(&data).ttl(ttl);
        // A struct of one string always serializes.
        self.codec
            .seal_json_with(payload, &options)
            .unwrap_or_default()
    }

    /// Opens `state` echoed by `user_id` retrying `tool`, with the client's
    /// `responses`. `Ok(None)`: the state is authentic but expired (the
    /// call is served as a first call). Errors: [`InvalidState`].
    pub fn open(
        &self,
        state: &str,
        user_id: &str,
        tool: &str,
        responses: Option<&InputResponses>,
    ) -> Result<Option<Retry>, InvalidState> {
        let data = associated_data(user_id, tool);
        let sealed: Sealed = match self.codec.open_json_with(state, &data) {
            Ok(sealed) => sealed,
            // Checked after the tag: an expired state is still ours.
            Err(RequestStateError::Expired) => return Ok(None),
            Err(err) => return Err(InvalidState(err)),
        };
        let key = if sealed.held_call.is_some() {
            HELD_CALL_KEY
        } else {
            ELICITATION_KEY
        };
        let action = responses
            .and_then(|r| r.get(key))
            .and_then(|answer| answer.get("action"))
            .and_then(|a| a.as_str());
        Ok(Some(Retry {
            server_id: sealed.server_id,
            declined: matches!(action, Some("decline" | "cancel")),
            held_call: sealed.held_call,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prompts(key: u8) -> ConnectPrompts {
        ConnectPrompts::new([key; 32], Duration::from_secs(600))
    }

    fn answer(action: &str) -> InputResponses {
        InputResponses::from([(ELICITATION_KEY.to_owned(), json!({"action": action}))])
    }

    #[test]
    fn a_state_opens_only_for_its_user_tool_and_key() {
        let p = prompts(7);
        let state = p.seal("u1", "salesforce_query", "srv1");
        let opened = p
            .open(&state, "u1", "salesforce_query", Some(&answer("accept")))
            .unwrap();
        assert_eq!(
            opened,
            Some(Retry {
                server_id: "srv1".into(),
                declined: false,
                held_call: None,
            })
        );
        for action in ["decline", "cancel"] {
            let retry = p
                .open(&state, "u1", "salesforce_query", Some(&answer(action)))
                .unwrap()
                .unwrap();
            assert!(retry.declined, "{action}");
        }
        assert!(
            !p.open(&state, "u1", "salesforce_query", None)
                .unwrap()
                .unwrap()
                .declined
        );
        // Another user, another tool, another key, an edit: refused.
        assert!(p.open(&state, "u2", "salesforce_query", None).is_err());
        assert!(p.open(&state, "u1", "salesforce_search", None).is_err());
        assert!(
            prompts(8)
                .open(&state, "u1", "salesforce_query", None)
                .is_err()
        );
        let mut edited = state.clone().into_bytes();
        let last = edited.len() - 1;
        edited[last] = if edited[last] == b'A' { b'B' } else { b'A' };
        let edited = String::from_utf8(edited).unwrap();
        assert!(p.open(&edited, "u1", "salesforce_query", None).is_err());
        assert!(
            p.open("not a state", "u1", "salesforce_query", None)
                .is_err()
        );
        // The user id and tool name are separated: ("u1", "x") is not ("u1x", "").
        let joined = p.seal("u1", "x", "srv1");
        assert!(p.open(&joined, "u1x", "", None).is_err());
    }

    #[test]
    fn a_held_call_state_names_its_call_and_reads_its_own_answer() {
        let p = prompts(7);
        let state = p.seal_held("u1", "t", "srv1", "h1", Duration::from_secs(60));
        let waiting = p.open(&state, "u1", "t", None).unwrap().unwrap();
        assert_eq!(waiting.held_call.as_deref(), Some("h1"));
        assert!(!waiting.declined);
        let stop = InputResponses::from([(HELD_CALL_KEY.to_owned(), json!({"action": "decline"}))]);
        assert!(
            p.open(&state, "u1", "t", Some(&stop))
                .unwrap()
                .unwrap()
                .declined
        );
        // The connect prompt's answer is not this one's.
        assert!(
            !p.open(&state, "u1", "t", Some(&answer("decline")))
                .unwrap()
                .unwrap()
                .declined
        );
        assert!(p.open(&state, "u2", "t", None).is_err());
    }

    #[test]
    fn an_expired_state_is_served_as_a_first_call() {
        let p = ConnectPrompts::new([7; 32], Duration::ZERO);
        let state = p.seal("u1", "t", "srv1");
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(p.open(&state, "u1", "t", None).unwrap(), None);
    }
}
