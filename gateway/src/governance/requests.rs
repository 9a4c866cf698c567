//! Access requests and just-in-time grants, the pure part: which profiles a
//! user may request, which tools a requestable profile would give, and how
//! long an approved request's grant lasts. No I/O, no clock: callers pass
//! `now`. The writes (open, approve, deny, expire) live in
//! [`crate::access_requests`].

use crate::model::{
    AccessProfile, AccessRequest, AccessRequestState, Grant, Millis, Server, Settings, Tool,
    Toolset, User, UserStatus,
};

use super::{Subject, ToolIndex, allowed_positions};

/// Longest duration, seconds, a request may ask for or an admin may grant
/// (one year of 365 days), as the proto documents (`1 to 31536000`).
pub const MAX_DURATION_SECS: u64 = 31_536_000;

/// Longest reason (the user's, or an admin's denial), in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// Whether `user_id` holds a grant of `profile` that has not expired at
/// `now`.
pub fn holds_live_grant(profile: &AccessProfile, user_id: &str, now: Millis) -> bool {
    profile
        .grants
        .iter()
        .any(|g| g.user_id == user_id && g.expires_at.is_none_or(|end| end > now))
}

/// The positions in `tools` (ascending) of the tools a holder of `profile`
/// could call by [`super::decide`] when nothing else stands in the way
/// (traffic on, user active, no token): the tools of its bound toolsets
/// whose server is enabled and which are APPROVED. Empty when traffic is
/// off.
pub fn grantable_positions(
    settings: &Settings,
    servers: &[Server],
    tools: &[Tool],
    index: &ToolIndex,
    profile: &AccessProfile,
    toolsets: &[Toolset],
) -> Vec<usize> {
    // A stand-in holder: the decision reads only the status and the id.
    let holder = User {
        id: String::new(),
        email: String::new(),
        display_name: String::new(),
        status: UserStatus::Active,
        created_at: 0,
        updated_at: 0,
    };
    let held = AccessProfile {
        grants: vec![Grant {
            user_id: String::new(),
            granted_at: 0,
            expires_at: None,
            granted_by: String::new(),
        }],
        ..profile.clone()
    };
    let profiles = [held];
    let subject = Subject {
        user: &holder,
        token: None,
        profiles: &profiles,
        toolsets,
        now: 0,
    };
    allowed_positions(settings, servers, tools, index, &subject)
}

/// Why a duration cannot be granted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The admin's duration is longer than the request or the profile
    /// allows.
    #[error("must be at most {limit} seconds (what was asked for and what the profile allows)")]
    OverLimit {
        /// The longest allowed, seconds.
        limit: u64,
    },
}

/// How long an approved request's grant lasts, seconds: the shortest of
/// what the user asked for (`requested`), what the admin gives (`admin`,
/// which may be shorter but not longer than the other two) and the
/// profile's maximum (`profile_max`); `None` when none of them bounds it
/// (a grant without an end).
///
/// Errors: [`DurationError::OverLimit`] when `admin` exceeds the shorter of
/// `requested` and `profile_max`.
pub fn granted_duration(
    requested: Option<u64>,
    admin: Option<u64>,
    profile_max: Option<u64>,
) -> Result<Option<u64>, DurationError> {
    let limit = match (requested, profile_max) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    match (admin, limit) {
        (Some(admin), Some(limit)) if admin > limit => Err(DurationError::OverLimit { limit }),
        (Some(admin), _) => Ok(Some(admin)),
        (None, limit) => Ok(limit),
    }
}

/// When a grant of `duration_secs` made at `now` ends (`None`: never).
pub fn grant_end(now: Millis, duration_secs: Option<u64>) -> Option<Millis> {
    duration_secs.map(|secs| now.saturating_add(secs_to_ms(secs)))
}

/// When a request opened at `now` expires if nobody decides it, under a
/// time-to-live of `ttl_secs`.
pub fn request_expiry(now: Millis, ttl_secs: u64) -> Millis {
    now.saturating_add(secs_to_ms(ttl_secs))
}

fn secs_to_ms(secs: u64) -> Millis {
    Millis::try_from(secs.saturating_mul(1000)).unwrap_or(Millis::MAX)
}

/// Whether `request` still waits for a decision at `now` (pending, and not
/// past its expiry even if the sweeper has not marked it yet).
pub fn is_open(request: &AccessRequest, now: Millis) -> bool {
    request.state == AccessRequestState::Pending && request.expires_at > now
}

/// The newest of `requests` by `user_id` for `profile_id` (by creation
/// time, then id).
pub fn latest<'r>(
    requests: &'r [AccessRequest],
    user_id: &str,
    profile_id: &str,
) -> Option<&'r AccessRequest> {
    requests
        .iter()
        .filter(|r| r.user_id == user_id && r.profile_id == profile_id)
        .max_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn granted_duration_is_the_shortest_bound_and_an_admin_may_only_shorten() {
        type Row = (
            Option<u64>,
            Option<u64>,
            Option<u64>,
            Result<Option<u64>, DurationError>,
        );
        let table: [Row; 9] = [
            (None, None, None, Ok(None)),
            (Some(600), None, None, Ok(Some(600))),
            (None, None, Some(3600), Ok(Some(3600))),
            (Some(7200), None, Some(3600), Ok(Some(3600))),
            (Some(600), None, Some(3600), Ok(Some(600))),
            (Some(600), Some(60), Some(3600), Ok(Some(60))),
            (None, Some(60), None, Ok(Some(60))),
            (
                Some(600),
                Some(601),
                Some(3600),
                Err(DurationError::OverLimit { limit: 600 }),
            ),
            (
                None,
                Some(3601),
                Some(3600),
                Err(DurationError::OverLimit { limit: 3600 }),
            ),
        ];
        for (requested, admin, max, want) in table {
            assert_eq!(
                granted_duration(requested, admin, max),
                want,
                "{requested:?} {admin:?} {max:?}"
            );
        }
    }

    #[test]
    fn live_grants_and_open_requests_follow_the_clock() {
        let profile = AccessProfile {
            id: "p".into(),
            name: "P".into(),
            description: String::new(),
            toolset_ids: vec![],
            grants: vec![Grant {
                user_id: "u".into(),
                granted_at: 0,
                expires_at: Some(1_000),
                granted_by: "admin:a".into(),
            }],
            created_at: 0,
            updated_at: 0,
            revision: 1,
            obtain: crate::model::ProfileObtain::RequestWithApproval,
            max_request_duration_secs: Some(1),
        };
        assert!(holds_live_grant(&profile, "u", 999));
        assert!(!holds_live_grant(&profile, "u", 1_000));
        assert!(!holds_live_grant(&profile, "v", 0));
        assert_eq!(grant_end(5, Some(2)), Some(2_005));
        assert_eq!(grant_end(5, None), None);
        assert_eq!(request_expiry(5, 1), 1_005);
        let request = |id: &str, created_at, state| AccessRequest {
            id: id.into(),
            user_id: "u".into(),
            profile_id: "p".into(),
            reason: String::new(),
            tool: None,
            state,
            requested_duration_secs: None,
            granted_duration_secs: None,
            created_at,
            expires_at: created_at + 100,
            decided_at: None,
            decided_by: String::new(),
            decision_reason: String::new(),
            revision: 1,
        };
        let pending = request("b", 10, AccessRequestState::Pending);
        assert!(is_open(&pending, 109));
        assert!(!is_open(&pending, 110));
        assert!(!is_open(&request("c", 10, AccessRequestState::Denied), 11));
        let all = [
            request("a", 5, AccessRequestState::Denied),
            pending,
            request("z", 7, AccessRequestState::Approved),
        ];
        assert_eq!(latest(&all, "u", "p").map(|r| r.id.as_str()), Some("b"));
        assert_eq!(latest(&all, "u", "q"), None);
    }
}
