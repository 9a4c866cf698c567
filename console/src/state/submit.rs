//! Turning submitted forms into commands: read the values, check what the
//! console can check (the daemon checks the rest and its message lands in
//! the form), and build the request.

use toolgate_proto::v1;

use super::{Form, FormKind};
use crate::action::{Command, Credentials};

pub(super) fn submit_credentials(form: &mut Form, server_id: String) -> Option<Command> {
    let client_id = form.text("client_id");
    if client_id.is_empty() {
        form.fail("consumer key: required (from the connected app or External Client App)");
        return None;
    }
    let client_secret = form.take_secret("client_secret");
    Some(Command::ConfigureAuthentication {
        server_id,
        credentials: Credentials {
            client_id,
            client_secret,
        },
    })
}

/// Toolsets and access profiles: a name and a description, new or edited.
pub(super) fn submit_named(form: &mut Form) -> Option<Command> {
    let name = form.text("name");
    let description = form.text("description");
    let obtain = match form.choice("obtain").as_str() {
        "approval" => v1::ProfileObtain::RequestWithApproval,
        "auto" => v1::ProfileObtain::RequestAutoApprove,
        _ => v1::ProfileObtain::AdminGrant,
    };
    let max = form.text("max_duration");
    let max_request_duration_secs = match max
        .split_inclusive(|c: char| c.is_ascii_alphabetic())
        .map(|part| super::parse_duration("longest grant", part))
        .try_fold(None::<u64>, |sum, part| {
            part.map(|secs| match (sum, secs) {
                (None, s) => s,
                (Some(a), s) => Some(a + s.unwrap_or(0)),
            })
        }) {
        Ok(secs) => secs,
        Err(message) => {
            form.fail(message);
            return None;
        }
    };
    Some(match form.kind.clone() {
        FormKind::EditToolset { id } => Command::UpdateToolset(v1::UpdateToolsetRequest {
            expected_revision: None,
            id,
            name: Some(name),
            description: Some(description),
        }),
        FormKind::EditProfile { id } => Command::UpdateProfile(v1::UpdateAccessProfileRequest {
            expected_revision: None,
            id,
            name: Some(name),
            description: Some(description),
            obtain: obtain.into(),
            clear_max_request_duration: max_request_duration_secs.is_none(),
            max_request_duration_secs,
        }),
        FormKind::NewProfile => Command::CreateProfile(v1::CreateAccessProfileRequest {
            name,
            description,
            toolset_ids: Vec::new(),
            obtain: obtain.into(),
            max_request_duration_secs,
        }),
        _ => Command::CreateToolset(v1::CreateToolsetRequest {
            name,
            description,
            tool_ids: Vec::new(),
        }),
    })
}

pub(super) fn submit_grant(form: &mut Form) -> Option<Command> {
    let profile_id = form.choice("profile");
    let user_id = form.choice("user");
    if profile_id.is_empty() || user_id.is_empty() {
        form.fail("create a user and an access profile first");
        return None;
    }
    let expires_at = match parse_expiry(&form.text("expires"), chrono::Utc::now()) {
        Ok(t) => t,
        Err(message) => {
            form.fail(message);
            return None;
        }
    };
    Some(Command::Grant(v1::GrantUserRequest {
        expected_revision: None,
        profile_id,
        user_id,
        expires_at,
    }))
}

pub(super) fn submit_user(form: &mut Form) -> Option<Command> {
    Some(Command::CreateUser(v1::CreateUserRequest {
        email: form.text("email"),
        display_name: form.text("display_name"),
    }))
}

pub(super) fn submit_token(form: &mut Form, user_id: String) -> Option<Command> {
    let expires_at = match parse_expiry(&form.text("expires"), chrono::Utc::now()) {
        Ok(t) => t,
        Err(message) => {
            form.fail(message);
            return None;
        }
    };
    Some(Command::IssueToken(v1::IssueTokenRequest {
        user_id,
        name: form.text("name"),
        expires_at,
    }))
}

/// Parses an expiry: empty (never), a duration from now (`30d`, `12h`,
/// `2w`), or a date (`2027-01-31`, end of that day UTC) or RFC 3339 time.
///
/// Errors: a message naming the field and the accepted forms.
pub fn parse_expiry(
    text: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<prost_types::Timestamp>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let bad =
        || format!("expires: {text:?} is not a duration (30d, 12h, 2w) or a date (2027-01-31)");
    let at = if let Some(n) = text
        .strip_suffix('d')
        .or_else(|| text.strip_suffix('h'))
        .or_else(|| text.strip_suffix('w'))
    {
        let n: i64 = n.trim().parse().map_err(|_| bad())?;
        if n <= 0 {
            return Err(format!("expires: {text:?} must be in the future"));
        }
        let delta = match text.chars().last() {
            Some('h') => chrono::TimeDelta::try_hours(n),
            Some('w') => chrono::TimeDelta::try_weeks(n),
            _ => chrono::TimeDelta::try_days(n),
        };
        delta
            .and_then(|d| now.checked_add_signed(d))
            .ok_or_else(|| format!("expires: {text:?} is too far in the future"))?
    } else if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        date.and_hms_opt(23, 59, 59).ok_or_else(bad)?.and_utc()
    } else if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        time.with_timezone(&chrono::Utc)
    } else {
        return Err(bad());
    };
    if at <= now {
        return Err(format!("expires: {text:?} is in the past"));
    }
    Ok(Some(prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: 0,
    }))
}
