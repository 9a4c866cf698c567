//! Webhook hooks: the call (BEFORE) or result (AFTER) POSTed as JSON to an
//! admin's URL, signed, and the answer followed.
//!
//! Request: `POST <url>`, `Content-Type: application/json`, headers
//! `X-Toolgate-Timestamp: <Unix seconds>` and `X-Toolgate-Signature:
//! sha256=<hex>`, the hex HMAC-SHA256 (RFC 2104, FIPS 180-4) under the
//! hook's secret of `<timestamp>.<raw body>`; a receiver recomputes it,
//! compares in constant time and refuses timestamps more than a few
//! minutes old (replay protection). The body is [`payload`].
//!
//! Answer: a 2xx status with a JSON body `{"decision":"allow"}`,
//! `{"decision":"deny","reason":"..."}`, `{"decision":"mutate",
//! "arguments":{...}}` (BEFORE) or `{"decision":"mutate","result":{...}}`
//! (AFTER). Redirects are not followed; any other status, a body that is
//! not such JSON (or over 1 MiB), or a network failure is an error, and the
//! call is denied (fail closed).

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::model::HookPhase;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Toolgate-Signature";
/// The timestamp header (Unix seconds, part of the signed text).
pub const TIMESTAMP_HEADER: &str = "X-Toolgate-Timestamp";
/// Longest answer read.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// The signature header value for `body` sent at `timestamp` (Unix
/// seconds): `sha256=` and the hex HMAC-SHA256 of `<timestamp>.<body>`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What the payload describes, besides the arguments or result.
#[derive(Debug, Clone)]
pub struct CallFacts<'a> {
    /// A per-call id (the same in the BEFORE and AFTER payloads of one call).
    pub call_id: &'a str,
    /// Dry run from `TestHook`: nothing will be sent to Salesforce.
    pub dry_run: bool,
    /// The hook's id and name.
    pub hook_id: &'a str,
    /// The hook's name.
    pub hook_name: &'a str,
    /// The tool's exposed name.
    pub tool: &'a str,
    /// The tool's catalog name (`query`, `create_record`).
    pub tool_definition: &'a str,
    /// The tool's server id.
    pub server_id: &'a str,
    /// The server's name.
    pub server: &'a str,
    /// The calling user's id.
    pub user_id: &'a str,
    /// The calling user's email.
    pub user_email: &'a str,
    /// The AI client's id (empty in a dry run).
    pub client_id: &'a str,
    /// The AI client's name.
    pub client_name: &'a str,
}

/// The JSON body (version 1): `{"version":1, "phase":"before"|"after",
/// "dry_run", "call_id", "hook":{"id","name"}, "tool":{"name",
/// "definition","server_id","server"}, "user":{"id","email"},
/// "client":{"id","name"}, "arguments":{...}}` (BEFORE) or
/// `"result":{...}` (AFTER, the structured content), and `"sent_at"` (Unix
/// ms).
pub fn payload(facts: &CallFacts<'_>, phase: HookPhase, value: &Value, sent_at: i64) -> Value {
    let mut body = json!({
        "version": 1,
        "phase": match phase { HookPhase::Before => "before", HookPhase::After => "after" },
        "dry_run": facts.dry_run,
        "call_id": facts.call_id,
        "hook": {"id": facts.hook_id, "name": facts.hook_name},
        "tool": {
            "name": facts.tool,
            "definition": facts.tool_definition,
            "server_id": facts.server_id,
            "server": facts.server,
        },
        "user": {"id": facts.user_id, "email": facts.user_email},
        "client": {"id": facts.client_id, "name": facts.client_name},
        "sent_at": sent_at,
    });
    let key = match phase {
        HookPhase::Before => "arguments",
        HookPhase::After => "result",
    };
    body[key] = value.clone();
    body
}

/// A webhook's decision.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Let it through.
    Allow,
    /// Refuse, with the webhook's reason.
    Deny(String),
    /// Replace the arguments (BEFORE) or result (AFTER) with this object.
    Mutate(Value),
}

/// Why a webhook call failed (the call is denied). Never holds the secret
/// or the body.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// No answer (connection refused, TLS, DNS).
    #[error("the webhook could not be reached")]
    Unreachable,
    /// A non-2xx status (redirects included: they are not followed).
    #[error("the webhook answered HTTP {0}")]
    Status(u16),
    /// The answer is not a decision.
    #[error("the webhook's answer is not a decision: {0}")]
    BadAnswer(String),
}

/// Reads an answer body as a decision for `phase`.
pub fn parse_answer(body: &[u8], phase: HookPhase) -> Result<Decision, WebhookError> {
    let bad = |m: &str| WebhookError::BadAnswer(m.to_owned());
    let v: Value = serde_json::from_slice(body).map_err(|_| bad("not JSON"))?;
    match v.get("decision").and_then(Value::as_str) {
        Some("allow") => Ok(Decision::Allow),
        Some("deny") => {
            let reason = v
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("no reason given");
            // The reason reaches the AI client and the audit log: bounded,
            // and stripped of anything that looks like PII.
            let mut reason = Value::String(reason.chars().take(500).collect());
            super::pii::scrub(&mut reason);
            Ok(Decision::Deny(
                reason.as_str().unwrap_or_default().to_owned(),
            ))
        }
        Some("mutate") => {
            let key = match phase {
                HookPhase::Before => "arguments",
                HookPhase::After => "result",
            };
            match v.get(key) {
                Some(Value::Object(_)) => Ok(Decision::Mutate(v[key].clone())),
                _ => Err(WebhookError::BadAnswer(format!(
                    "a mutate decision needs \"{key}\" as a JSON object"
                ))),
            }
        }
        _ => Err(bad(
            "\"decision\" must be \"allow\", \"deny\" or \"mutate\"",
        )),
    }
}

/// POSTs `body` to `url` signed with `secret`, and reads the decision.
/// The caller bounds the time (the hook's timeout).
pub async fn call(
    http: &reqwest::Client,
    url: &str,
    secret: &[u8],
    body: &Value,
    phase: HookPhase,
) -> Result<Decision, WebhookError> {
    let raw = serde_json::to_vec(body).map_err(|_| WebhookError::Unreachable)?;
    let timestamp = chrono::Utc::now().timestamp();
    let response = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(TIMESTAMP_HEADER, timestamp.to_string())
        .header(SIGNATURE_HEADER, signature(secret, timestamp, &raw))
        .body(raw)
        .send()
        .await
        .map_err(|e| {
            tracing::debug!(error = %e.without_url(), "webhook hook unreachable");
            WebhookError::Unreachable
        })?;
    let status = response.status();
    if !status.is_success() {
        return Err(WebhookError::Status(status.as_u16()));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
    {
        return Err(WebhookError::BadAnswer("over 1 MiB".into()));
    }
    let mut response = response;
    let mut answer = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|_| WebhookError::Unreachable)?
    {
        answer.extend_from_slice(&chunk);
        if answer.len() > MAX_ANSWER_BYTES {
            return Err(WebhookError::BadAnswer("over 1 MiB".into()));
        }
    }
    parse_answer(&answer, phase)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_hmac() {
        // HMAC-SHA256("key", "1700000000.{}") computed independently:
        // python3 -c 'import hmac,hashlib;print(hmac.new(b"key",b"1700000000.{}",hashlib.sha256).hexdigest())'
        assert_eq!(
            signature(b"key", 1_700_000_000, b"{}"),
            "sha256=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
    }

    #[test]
    fn answers_parse_by_phase() {
        assert_eq!(
            parse_answer(br#"{"decision":"allow"}"#, HookPhase::Before).unwrap(),
            Decision::Allow
        );
        assert_eq!(
            parse_answer(br#"{"decision":"deny","reason":"no"}"#, HookPhase::After).unwrap(),
            Decision::Deny("no".into())
        );
        assert_eq!(
            parse_answer(
                br#"{"decision":"deny","reason":"ask ana@acme.example"}"#,
                HookPhase::Before
            )
            .unwrap(),
            Decision::Deny("ask [REDACTED]".into())
        );
        assert_eq!(
            parse_answer(
                br#"{"decision":"mutate","arguments":{"a":1}}"#,
                HookPhase::Before
            )
            .unwrap(),
            Decision::Mutate(json!({"a": 1}))
        );
        assert!(
            parse_answer(
                br#"{"decision":"mutate","arguments":{"a":1}}"#,
                HookPhase::After
            )
            .is_err()
        );
        assert!(parse_answer(br#"{"decision":"maybe"}"#, HookPhase::After).is_err());
        assert!(parse_answer(b"<html>", HookPhase::After).is_err());
    }

    #[test]
    fn payload_carries_the_call_and_the_phase_value() {
        let facts = CallFacts {
            call_id: "c1",
            dry_run: true,
            hook_id: "h1",
            hook_name: "audit",
            tool: "salesforce_query",
            tool_definition: "query",
            server_id: "s1",
            server: "Prod",
            user_id: "u1",
            user_email: "ana@example.com",
            client_id: "",
            client_name: "",
        };
        let p = payload(
            &facts,
            HookPhase::Before,
            &json!({"soql": "SELECT Id FROM Account"}),
            5,
        );
        assert_eq!(p["phase"], "before");
        assert_eq!(p["dry_run"], true);
        assert_eq!(p["arguments"]["soql"], "SELECT Id FROM Account");
        assert!(p.get("result").is_none());
        assert_eq!(p["tool"]["definition"], "query");
        assert_eq!(p["user"]["email"], "ana@example.com");
    }
}
