//! The two approval queues: access requests (a user asks for a requestable
//! access profile; approve, optionally for a shorter time, or deny with a
//! reason) and held calls (one tool call waits for a person; approve after
//! seeing the arguments exactly as they will be sent, or deny with a
//! reason). Every decision carries the revision the admin saw, so a
//! request or call that changed meanwhile is refused (ABORTED) rather than
//! decided blind.

use toolgate_proto::v1;

use super::{App, Confirm, Field, Form, FormKind, Load, Loadable, Overlay, Purpose, Screen};
use crate::action::Command;
use crate::keymap::Intent;

/// The longest duration the daemon accepts, in seconds (one year).
const MAX_DURATION_SECS: u64 = 31_536_000;

/// An access request state as the screen writes it.
pub fn request_state_name(state: i32) -> &'static str {
    match v1::AccessRequestState::try_from(state) {
        Ok(v1::AccessRequestState::Pending) => "PENDING",
        Ok(v1::AccessRequestState::Approved) => "approved",
        Ok(v1::AccessRequestState::Denied) => "denied",
        Ok(v1::AccessRequestState::Expired) => "expired",
        _ => "?",
    }
}

/// A held call state as the screen writes it.
pub fn held_call_state_name(state: i32) -> &'static str {
    match v1::HeldCallState::try_from(state) {
        Ok(v1::HeldCallState::Pending) => "PENDING",
        Ok(v1::HeldCallState::Approved) => "approved",
        Ok(v1::HeldCallState::Denied) => "denied",
        Ok(v1::HeldCallState::Expired) => "expired",
        Ok(v1::HeldCallState::Used) => "run",
        _ => "?",
    }
}

/// A duration in seconds in the largest whole units, e.g. `1d 4h`, `90m`
/// is `1h 30m`, `45s`; `0s` for zero.
pub fn describe_duration(secs: u64) -> String {
    let units = [
        (604_800, "w"),
        (86_400, "d"),
        (3_600, "h"),
        (60, "m"),
        (1, "s"),
    ];
    let mut left = secs;
    let mut parts = Vec::new();
    for (size, name) in units {
        if left >= size {
            parts.push(format!("{}{name}", left / size));
            left %= size;
        }
        if parts.len() == 2 {
            break;
        }
    }
    if parts.is_empty() {
        "0s".into()
    } else {
        parts.join(" ")
    }
}

/// Parses a duration typed in field `field`: empty (None), seconds (`3600`)
/// or a number with a unit (`90m`, `12h`, `2d`, `1w`), 1 s to one year.
///
/// Errors: a message naming the field and the accepted forms.
pub fn parse_duration(field: &str, text: &str) -> Result<Option<u64>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let bad = || format!("{field}: {text:?} is not a duration (90m, 12h, 2d, 1w or seconds)");
    let (number, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c.to_ascii_lowercase()),
        _ => (text, 's'),
    };
    let n: u64 = number.trim().parse().map_err(|_| bad())?;
    let size = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return Err(bad()),
    };
    match n.checked_mul(size) {
        Some(0) => Err(format!("{field}: must be at least 1 second")),
        Some(secs) if secs <= MAX_DURATION_SECS => Ok(Some(secs)),
        _ => Err(format!("{field}: {text:?} is longer than a year")),
    }
}

/// JSON text pretty-printed (two-space indent, keys as given); text that is
/// not JSON comes back unchanged, so nothing is ever hidden.
pub fn pretty_json(text: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value) => serde_json::to_string_pretty(&value).unwrap_or_else(|_| text.to_owned()),
        Err(_) => text.to_owned(),
    }
}

fn is_pending_request(r: &v1::AccessRequest) -> bool {
    r.state == v1::AccessRequestState::Pending as i32
}

fn is_pending_call(c: &v1::HeldCall) -> bool {
    c.state == v1::HeldCallState::Pending as i32
}

/// The form's values as a decision.
pub(super) fn submit(form: &mut Form) -> Option<Command> {
    match form.kind.clone() {
        FormKind::ApproveRequest { id, revision } => {
            let duration_secs = match parse_duration("grant for", &form.text("duration")) {
                Ok(d) => d,
                Err(message) => {
                    form.fail(message);
                    return None;
                }
            };
            Some(Command::ApproveAccessRequest(
                v1::ApproveAccessRequestRequest {
                    id,
                    duration_secs,
                    expected_revision: Some(revision),
                },
            ))
        }
        FormKind::DenyRequest { id, revision } => {
            let reason = reason(form)?;
            Some(Command::DenyAccessRequest(v1::DenyAccessRequestRequest {
                id,
                reason,
                expected_revision: Some(revision),
            }))
        }
        FormKind::DenyHeldCall { id, revision } => {
            let reason = reason(form)?;
            Some(Command::DenyHeldCall(v1::DenyHeldCallRequest {
                id,
                reason,
                expected_revision: Some(revision),
            }))
        }
        _ => None,
    }
}

/// The reason of a denial form: required, at most 500 characters.
fn reason(form: &mut Form) -> Option<String> {
    let reason = form.text("reason");
    if reason.is_empty() {
        form.fail("reason: required (the user is shown it)");
        return None;
    }
    if reason.chars().count() > 500 {
        form.fail("reason: at most 500 characters");
        return None;
    }
    Some(reason)
}

fn reason_field() -> Field {
    Field::text(
        "reason",
        "Reason",
        "",
        "required; the user (or their AI client) is shown it",
    )
}

impl App {
    /// The access requests shown: pending first (newest first within each
    /// group, as the daemon lists them), after the `/` filter on user,
    /// profile, tool and reason.
    pub fn requests_shown(&self) -> Vec<&v1::AccessRequest> {
        let needle = self.filter_text(Screen::Requests);
        let mut shown: Vec<&v1::AccessRequest> = self
            .access_requests
            .ready()
            .map(|all| {
                all.iter()
                    .filter(|r| {
                        needle.is_empty()
                            || r.user_email.to_lowercase().contains(&needle)
                            || r.profile_name.to_lowercase().contains(&needle)
                            || r.tool.to_lowercase().contains(&needle)
                            || r.reason.to_lowercase().contains(&needle)
                    })
                    .collect()
            })
            .unwrap_or_default();
        shown.sort_by_key(|r| !is_pending_request(r));
        shown
    }

    /// The selected access request.
    pub fn selected_request(&self) -> Option<&v1::AccessRequest> {
        self.requests_shown()
            .get(self.requests_cursor.selected)
            .copied()
    }

    /// The longest grant the profile `id` allows a request, if it is known
    /// and bounded.
    pub fn profile_max_duration(&self, id: &str) -> Option<u64> {
        self.profiles
            .ready()
            .and_then(|all| all.iter().find(|p| p.id == id))
            .and_then(|p| p.max_request_duration_secs)
    }

    pub(super) fn requests_intent(&mut self, intent: Intent, rows: usize) {
        if self.navigate(intent, rows) {
            return;
        }
        if intent == Intent::ToggleView {
            self.requests_all = !self.requests_all;
            self.requests_cursor = super::Cursor::default();
            self.info(if self.requests_all {
                "showing every access request, decided ones too"
            } else {
                "showing pending access requests"
            });
            self.load(Load::AccessRequests);
            return;
        }
        if !matches!(intent, Intent::Approve | Intent::Deny) {
            return;
        }
        let Some(request) = self.selected_request().cloned() else {
            self.info(
                "no access request selected: users open them by calling a tool they could request",
            );
            return;
        };
        if !is_pending_request(&request) {
            self.info(format!(
                "this request is {} and cannot be decided again",
                request_state_name(request.state)
            ));
            return;
        }
        let mut intro = vec![format!(
            "{} asks for {}.",
            request.user_email, request.profile_name
        )];
        if !request.tool.is_empty() {
            intro.push(format!("Opened by calling {}.", request.tool));
        }
        if !request.reason.is_empty() {
            intro.push(format!("Reason: {}", request.reason));
        }
        let form = if intent == Intent::Approve {
            let asked = request
                .requested_duration_secs
                .map_or("as long as the profile allows".to_owned(), |s| {
                    describe_duration(s)
                });
            let max = self
                .profile_max_duration(&request.profile_id)
                .map_or("no end".to_owned(), describe_duration);
            intro.push(format!(
                "Asked for: {asked}; the profile allows at most: {max}."
            ));
            Form::new(
                FormKind::ApproveRequest {
                    id: request.id.clone(),
                    revision: request.revision,
                },
                &format!("Approve {}'s request", request.user_email),
                vec![Field::text(
                    "duration",
                    "Grant for",
                    "",
                    "empty: as asked; shorter: 90m, 12h, 2d, 1w (the grant then ends by itself)",
                )],
            )
            .with_intro(intro)
        } else {
            Form::new(
                FormKind::DenyRequest {
                    id: request.id.clone(),
                    revision: request.revision,
                },
                &format!("Deny {}'s request", request.user_email),
                vec![reason_field()],
            )
            .with_intro(intro)
        };
        self.overlay = Some(Overlay::Form(form));
    }

    /// The held calls shown: pending first, after the `/` filter on user,
    /// client and tool.
    pub fn held_shown(&self) -> Vec<&v1::HeldCall> {
        let needle = self.filter_text(Screen::HeldCalls);
        let mut shown: Vec<&v1::HeldCall> = self
            .held
            .ready()
            .map(|all| {
                all.iter()
                    .filter(|c| {
                        needle.is_empty()
                            || c.user_email.to_lowercase().contains(&needle)
                            || c.client_name.to_lowercase().contains(&needle)
                            || c.tool.to_lowercase().contains(&needle)
                    })
                    .collect()
            })
            .unwrap_or_default();
        shown.sort_by_key(|c| !is_pending_call(c));
        shown
    }

    /// The selected held call (from the list, without arguments).
    pub fn selected_held(&self) -> Option<&v1::HeldCall> {
        self.held_shown().get(self.held_cursor.selected).copied()
    }

    /// The selected held call with its arguments, once loaded.
    pub fn held_detail_of(&self, id: &str) -> Option<&Loadable<v1::HeldCall>> {
        self.held_detail
            .as_ref()
            .filter(|(held_id, _)| held_id == id)
            .map(|(_, slot)| slot)
    }

    /// Loads the arguments of the selected held call when the selection
    /// moved to another call.
    pub(super) fn select_held_detail(&mut self) {
        let Some(id) = self.selected_held().map(|c| c.id.clone()) else {
            self.held_detail = None;
            return;
        };
        if self
            .held_detail
            .as_ref()
            .is_some_and(|(held, _)| *held == id)
        {
            return;
        }
        self.load_held_detail(&id);
    }

    fn load_held_detail(&mut self, id: &str) {
        self.held_detail = Some((id.to_owned(), Loadable::Loading));
        self.send(
            Command::LoadHeldCall { id: id.to_owned() },
            Purpose::HeldCall(id.to_owned()),
        );
    }

    pub(super) fn refresh_held_detail(&mut self) {
        if let Some(id) = self.held_detail.as_ref().map(|(id, _)| id.clone()) {
            self.load_held_detail(&id);
        }
    }

    pub(super) fn held_intent(&mut self, intent: Intent, rows: usize) {
        if self.navigate(intent, rows) {
            return;
        }
        if intent == Intent::ToggleView {
            self.held_all = !self.held_all;
            self.held_cursor = super::Cursor::default();
            self.info(if self.held_all {
                "showing every held call, decided ones too"
            } else {
                "showing pending held calls"
            });
            self.load(Load::HeldCalls);
            return;
        }
        if !matches!(intent, Intent::Approve | Intent::Deny) {
            return;
        }
        let Some(listed) = self.selected_held().cloned() else {
            self.info("no held call selected: calls wait here when Settings › Per-call approval matches them");
            return;
        };
        if !is_pending_call(&listed) {
            self.info(format!(
                "this call is {} and cannot be decided again",
                held_call_state_name(listed.state)
            ));
            return;
        }
        if intent == Intent::Deny {
            self.overlay = Some(Overlay::Form(
                Form::new(
                    FormKind::DenyHeldCall {
                        id: listed.id.clone(),
                        revision: listed.revision,
                    },
                    &format!("Deny {}'s call of {}", listed.user_email, listed.tool),
                    vec![reason_field()],
                )
                .with_intro(vec![format!(
                    "The client is told the call was denied, with the reason."
                )]),
            ));
            return;
        }
        // Approval binds to the exact arguments: never approve unseen ones.
        let call = match self.held_detail_of(&listed.id) {
            Some(Loadable::Ready(call)) => call.clone(),
            Some(Loadable::Failed(message)) => {
                self.error(format!(
                    "cannot approve without seeing the arguments: {message} (r to retry)"
                ));
                return;
            }
            _ => {
                self.info("the arguments are still loading; press a again once they show");
                return;
            }
        };
        let mut lines = vec![
            format!("User:    {}", call.user_email),
            format!(
                "Client:  {}",
                if call.client_name.is_empty() {
                    "-"
                } else {
                    &call.client_name
                }
            ),
            format!("Tool:    {}", call.tool),
            format!(
                "Expires: {}",
                crate::ui::when(call.expires_at.as_ref(), "-")
            ),
            String::new(),
            "Arguments, exactly as they will be sent:".into(),
        ];
        lines.extend(pretty_json(&call.arguments_json).lines().map(str::to_owned));
        lines.push(String::new());
        lines.push("The client's next retry with these arguments runs once; other".into());
        lines.push("arguments, a second retry or a policy change meanwhile do not.".into());
        self.overlay = Some(Overlay::Confirm(Confirm {
            title: format!("Approve this call of {}", call.tool),
            lines,
            command: Command::ApproveHeldCall(v1::ApproveHeldCallRequest {
                id: call.id.clone(),
                expected_revision: Some(call.revision),
            }),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_name_the_field() {
        assert_eq!(parse_duration("grant for", ""), Ok(None));
        assert_eq!(parse_duration("grant for", "90m"), Ok(Some(5_400)));
        assert_eq!(parse_duration("grant for", "2h"), Ok(Some(7_200)));
        assert_eq!(parse_duration("grant for", "1D"), Ok(Some(86_400)));
        assert_eq!(parse_duration("grant for", "1w"), Ok(Some(604_800)));
        assert_eq!(parse_duration("grant for", "3600"), Ok(Some(3_600)));
        let bad = parse_duration("grant for", "soon").unwrap_err();
        assert!(bad.starts_with("grant for: \"soon\""), "{bad}");
        assert!(parse_duration("grant for", "0h").is_err());
        assert!(
            parse_duration("grant for", "53w")
                .unwrap_err()
                .contains("year")
        );
        assert!(parse_duration("grant for", "2y").is_err());
    }

    #[test]
    fn durations_are_described_in_two_units_at_most() {
        assert_eq!(describe_duration(0), "0s");
        assert_eq!(describe_duration(45), "45s");
        assert_eq!(describe_duration(5_400), "1h 30m");
        assert_eq!(describe_duration(100_800), "1d 4h");
        assert_eq!(describe_duration(604_800 + 86_400 + 60), "1w 1d");
    }

    #[test]
    fn json_is_pretty_printed_and_other_text_kept() {
        assert_eq!(
            pretty_json(r#"{"id":"001","fields":{"Name":"Acme"}}"#),
            "{\n  \"id\": \"001\",\n  \"fields\": {\n    \"Name\": \"Acme\"\n  }\n}"
        );
        assert_eq!(pretty_json("not json"), "not json");
    }
}
