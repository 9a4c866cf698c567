//! Requestable tools over MCP (issue 15, "Access requests and just-in-time
//! grants"): with `GovernanceSettings.show_requestable_tools` on,
//! `tools/list` also offers the tools a user could obtain from a
//! requestable access profile they do not hold, marked as requestable in
//! the description and in `_meta` under [`META_REQUESTABLE`]; calling one
//! opens (or reuses) an access request instead of running it (an
//! auto-approved profile is granted at once and the call runs). The
//! gateway tool [`REQUEST_TOOL`] asks for a profile ahead of time.
//!
//! The marked views are made once per policy snapshot ([`Offers`], kept in
//! [`super::World`]), like the plain ones; per call only the user's own
//! grants are looked at. The writes are [`crate::access_requests`]'.
//! Results never carry another user's data, and the audit event of the
//! call gets the request's id, not the user's reason.

use std::collections::HashSet;
use std::sync::Arc;

use rmcp::model::{CallToolResult, ContentBlock, MetaObject, Tool as McpTool};
use serde_json::{Map, Value, json};

use super::World;
use crate::access_requests::{self as requests, Ask, RequestError};
use crate::governance::Subject;
use crate::governance::requests::{MAX_DURATION_SECS, MAX_REASON_CHARS, holds_live_grant, latest};
use crate::model::{
    AccessProfile, AccessRequest, AccessRequestState, Outcome, ProfileObtain, Tool, UserStatus,
};
use crate::store::Store;

/// The gateway's own tool that asks for an access profile ahead of time.
pub const REQUEST_TOOL: &str = "toolgate_request_access";

/// `_meta` key of a requestable tool's marker in tools/list:
/// `{"profile_id", "profile", "approval": "admin"|"automatic",
/// "max_duration_secs": <seconds or null>}`.
pub const META_REQUESTABLE: &str = "toolgate/requestable";

/// `_meta` key of a call result that opened, reused or was answered by an
/// access request: `{"id", "state", "profile_id", "profile", "created",
/// "expires_at" (Unix ms)}`.
pub const META_ACCESS_REQUEST: &str = "toolgate/access_request";

/// One requestable profile and what it would give, in a policy snapshot.
#[derive(Debug)]
struct Offer {
    /// Position in [`World::profiles`].
    profile: usize,
    /// Positions in [`World::tools`] a holder could call, ascending, with
    /// their marked MCP views.
    tools: Vec<(usize, McpTool)>,
}

/// Every requestable profile of a policy snapshot, by name, with its tools.
#[derive(Debug, Default)]
pub struct Offers {
    offers: Vec<Offer>,
}

impl Offers {
    /// Builds the offers of `world` (empty when the setting is off).
    pub(super) fn new(world: &World) -> Self {
        if !world.settings.governance.show_requestable_tools {
            return Self::default();
        }
        let mut positions: Vec<usize> = (0..world.profiles.len())
            .filter(|&i| world.profiles[i].obtain.is_requestable())
            .collect();
        positions.sort_by(|&a, &b| world.profiles[a].name.cmp(&world.profiles[b].name));
        let offers = positions
            .into_iter()
            .map(|p| {
                let profile = &world.profiles[p];
                let tools = crate::governance::requests::grantable_positions(
                    &world.settings,
                    &world.servers,
                    &world.tools,
                    &world.index,
                    profile,
                    &world.toolsets,
                )
                .into_iter()
                .map(|i| (i, marked(world.listed(i), profile)))
                .collect();
                Offer { profile: p, tools }
            })
            .collect();
        Self { offers }
    }
}

/// A tool the user may request: its position, its marked view, and the
/// profile that carries it.
#[derive(Debug, Clone, Copy)]
pub struct Requestable<'w> {
    /// Position in [`World::tools`].
    pub position: usize,
    /// The marked MCP view.
    pub view: &'w McpTool,
    /// The profile a request asks for.
    pub profile: &'w AccessProfile,
}

fn approval(profile: &AccessProfile) -> &'static str {
    match profile.obtain {
        ProfileObtain::RequestAutoApprove => "automatic",
        _ => "admin",
    }
}

fn duration_text(secs: Option<u64>) -> String {
    match secs {
        None => "without an end".into(),
        Some(s) if s.is_multiple_of(86_400) => format!("for up to {} day(s)", s / 86_400),
        Some(s) if s.is_multiple_of(3600) => format!("for up to {} hour(s)", s / 3600),
        Some(s) if s.is_multiple_of(60) => format!("for up to {} minute(s)", s / 60),
        Some(s) => format!("for up to {s} second(s)"),
    }
}

/// `view` marked as requestable through `profile`: its description opens
/// with what calling it does, and `_meta` carries [`META_REQUESTABLE`].
fn marked(view: &McpTool, profile: &AccessProfile) -> McpTool {
    let mut out = view.clone();
    let what = match profile.obtain {
        ProfileObtain::RequestAutoApprove => format!(
            "Calling it grants you access profile {:?} at once ({}) and runs the call.",
            profile.name,
            duration_text(profile.max_request_duration_secs)
        ),
        _ => format!(
            "Calling it does not run it: it asks an administrator for access profile {:?} ({}) and answers with the request id; you will get notifications/tools/list_changed when access is granted, then call it again.",
            profile.name,
            duration_text(profile.max_request_duration_secs)
        ),
    };
    let original = view.description.as_deref().unwrap_or_default();
    out.description = Some(
        format!("[Requestable] You do not have access to this tool yet. {what}\n\n{original}")
            .into(),
    );
    let mut meta = view.meta.clone().unwrap_or_default();
    meta.0.insert(
        META_REQUESTABLE.into(),
        json!({
            "profile_id": profile.id,
            "profile": profile.name,
            "approval": approval(profile),
            "max_duration_secs": profile.max_request_duration_secs,
        }),
    );
    out.meta = Some(meta);
    out
}

impl World {
    /// The tools `subject` could request (not among `allowed`, the
    /// positions they may call), in name order, each through the first
    /// requestable profile by name that carries it and that the user does
    /// not hold a live grant of. Empty when the setting is off, traffic is
    /// off or the user is disabled.
    pub fn requestable<'w>(
        &'w self,
        subject: &Subject<'_>,
        allowed: &[usize],
    ) -> Vec<Requestable<'w>> {
        if !self.settings.mcp_traffic_enabled || subject.user.status != UserStatus::Active {
            return Vec::new();
        }
        let offers = self.requestable.get_or_init(|| Offers::new(self));
        let mut seen: HashSet<usize> = allowed.iter().copied().collect();
        let mut out = Vec::new();
        for offer in &offers.offers {
            let profile = &self.profiles[offer.profile];
            if holds_live_grant(profile, &subject.user.id, subject.now) {
                continue;
            }
            for (position, view) in &offer.tools {
                if seen.insert(*position) {
                    out.push(Requestable {
                        position: *position,
                        view,
                        profile,
                    });
                }
            }
        }
        out.sort_by(|a, b| {
            self.tools[a.position]
                .name
                .cmp(&self.tools[b.position].name)
        });
        out
    }

    /// The requestable profiles `subject` does not hold a live grant of, by
    /// name (what [`REQUEST_TOOL`] offers). Empty when the setting is off,
    /// traffic is off or the user is disabled.
    pub fn requestable_profiles(&self, subject: &Subject<'_>) -> Vec<&AccessProfile> {
        if !self.settings.governance.show_requestable_tools
            || !self.settings.mcp_traffic_enabled
            || subject.user.status != UserStatus::Active
        {
            return Vec::new();
        }
        let mut out: Vec<&AccessProfile> = self
            .profiles
            .iter()
            .filter(|p| {
                p.obtain.is_requestable() && !holds_live_grant(p, &subject.user.id, subject.now)
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// What tools/list shows `subject`: the tools they may call, the ones
    /// they could request, and the profiles [`REQUEST_TOOL`] offers.
    pub fn listing<'w>(&'w self, subject: &Subject<'_>) -> Listing<'w> {
        let allowed = self.allowed(subject);
        let requestable = self.requestable(subject, &allowed);
        Listing {
            profiles: self.requestable_profiles(subject),
            allowed,
            requestable,
        }
    }
}

/// What tools/list shows one user ([`World::listing`]).
#[derive(Debug)]
pub struct Listing<'w> {
    /// Positions of the tools they may call, in name order.
    pub allowed: Vec<usize>,
    /// The tools they could request, in name order.
    pub requestable: Vec<Requestable<'w>>,
    /// The profiles [`REQUEST_TOOL`] offers (empty: it is not listed).
    pub profiles: Vec<&'w AccessProfile>,
}

impl Listing<'_> {
    /// The list as names, for change detection ([`super::notify`]): the
    /// tools they may call by name, the ones they could request as
    /// `<name> (requestable via <profile id>)`, and the request tool with
    /// the profiles it offers. A grant turns a requestable entry into a
    /// plain one, so the list counts as changed.
    pub fn names(&self, world: &World) -> Vec<String> {
        let mut names: Vec<String> = self
            .allowed
            .iter()
            .map(|&i| world.tools[i].name.clone())
            .collect();
        names.extend(self.requestable.iter().map(|r| {
            format!(
                "{} (requestable via {})",
                world.tools[r.position].name, r.profile.id
            )
        }));
        if !self.profiles.is_empty() {
            let ids: Vec<&str> = self.profiles.iter().map(|p| p.id.as_str()).collect();
            names.push(format!("{REQUEST_TOOL} ({})", ids.join(",")));
        }
        names
    }

    /// The JSON array of [`Listing::tools`], appended to `out`: the tools
    /// they may call from the JSON made once per policy snapshot
    /// ([`World::listed_json`]), the marked and request tools serialized
    /// here; in name order.
    pub fn write_json(&self, world: &World, out: &mut Vec<u8>) {
        let mut entries: Vec<(&str, std::borrow::Cow<'_, [u8]>)> = self
            .allowed
            .iter()
            .map(|&i| (world.tools[i].name.as_str(), world.listed_json(i).into()))
            .collect();
        let own = |tool: &McpTool| serde_json::to_vec(tool).unwrap_or_default();
        entries.extend(
            self.requestable
                .iter()
                .map(|r| (world.tools[r.position].name.as_str(), own(r.view).into())),
        );
        if !self.profiles.is_empty() {
            entries.push((REQUEST_TOOL, own(&request_tool(&self.profiles)).into()));
        }
        entries.sort_by(|a, b| a.0.cmp(b.0));
        out.push(b'[');
        for (n, (_, json)) in entries.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(json);
        }
        out.push(b']');
    }

    /// The MCP tools, in name order.
    pub fn tools(&self, world: &World) -> Vec<McpTool> {
        let mut tools: Vec<McpTool> = self
            .allowed
            .iter()
            .map(|&i| world.listed(i).clone())
            .chain(self.requestable.iter().map(|r| r.view.clone()))
            .collect();
        if !self.profiles.is_empty() {
            tools.push(request_tool(&self.profiles));
        }
        tools.sort_by(|a, b| a.name.cmp(&b.name));
        tools
    }
}

/// The MCP view of [`REQUEST_TOOL`] offering `profiles` (at least one).
pub fn request_tool(profiles: &[&AccessProfile]) -> McpTool {
    let list: Vec<String> = profiles
        .iter()
        .map(|p| {
            let how = match p.obtain {
                ProfileObtain::RequestAutoApprove => "granted at once",
                _ => "an administrator approves",
            };
            let about = if p.description.is_empty() {
                String::new()
            } else {
                format!(": {}", p.description)
            };
            format!(
                "- {:?} ({how}, {}){about}",
                p.name,
                duration_text(p.max_request_duration_secs)
            )
        })
        .collect();
    let names: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
    let schema = json!({
        "type": "object",
        "properties": {
            "profile": {
                "type": "string",
                "enum": names,
                "description": "The access profile's name."
            },
            "reason": {
                "type": "string",
                "maxLength": MAX_REASON_CHARS,
                "description": "Why you need it (shown to the administrator)."
            },
            "duration_secs": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_DURATION_SECS,
                "description": "How long you need it, seconds; omitted: as long as the profile allows."
            }
        },
        "required": ["profile"],
        "additionalProperties": false
    });
    let mut tool = McpTool::new(
        REQUEST_TOOL,
        format!(
            "Ask for an access profile you do not hold, ahead of time. Approved access adds its tools to your list (you get notifications/tools/list_changed) and expires by itself after the granted time. Requestable profiles:\n{}",
            list.join("\n")
        ),
        Arc::new(schema.as_object().cloned().unwrap_or_default()),
    );
    tool.title = Some("Request access".into());
    tool
}

/// The answer to a call that met an access request, sent instead of
/// running the tool.
#[derive(Debug)]
pub struct Answer {
    /// Audit outcome.
    pub outcome: Outcome,
    /// Audit reason.
    pub reason: String,
    /// The result.
    pub result: CallToolResult,
    /// Audit details (the request's id and state).
    pub details: Map<String, Value>,
}

/// What a call that met an access request ends in.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "made once per refused call and moved once; boxing buys nothing"
)]
pub enum Intercept {
    /// Not a requestable tool for this user: the policy denial stands.
    Refused,
    /// The answer to send instead of running the tool.
    Answer(Answer),
    /// An auto-approved profile was granted: run the call, adding
    /// `details` to its audit event.
    Granted {
        /// Audit details (the request's id and state).
        details: Map<String, Value>,
    },
}

fn request_meta(request: &AccessRequest, profile: &AccessProfile, created: bool) -> Value {
    json!({
        "id": request.id,
        "state": request.state,
        "profile_id": profile.id,
        "profile": profile.name,
        "created": created,
        "expires_at": request.expires_at,
    })
}

fn details(request: &AccessRequest, created: bool) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert(
        "access_request".into(),
        json!({"id": request.id, "state": request.state, "created": created}),
    );
    map
}

fn answer(
    outcome: Outcome,
    reason: String,
    text: String,
    meta: Value,
    details: Map<String, Value>,
) -> Answer {
    let mut result = CallToolResult::error(vec![ContentBlock::text(text)]);
    if !meta.is_null() {
        let mut object = MetaObject::default();
        object.0.insert(META_ACCESS_REQUEST.into(), meta);
        result.meta = Some(object);
    }
    Answer {
        outcome,
        reason,
        result,
        details,
    }
}

fn hours(secs: u64) -> String {
    if secs.is_multiple_of(86_400) {
        format!("{} day(s)", secs / 86_400)
    } else if secs.is_multiple_of(3600) {
        format!("{} hour(s)", secs / 3600)
    } else {
        format!("{} minute(s)", secs.div_ceil(60))
    }
}

fn pending_text(
    request: &AccessRequest,
    profile: &AccessProfile,
    tool: Option<&str>,
    created: bool,
    ttl_secs: u64,
) -> String {
    let opened = if created {
        "opened"
    } else {
        "is still pending (an earlier request)"
    };
    let head = match tool {
        Some(tool) => format!("You do not have access to {tool} yet, so it did not run. "),
        None => String::new(),
    };
    let again = match tool {
        Some(tool) => format!("then call {tool} again"),
        None => "then call its tools".into(),
    };
    format!(
        "{head}Access request {} for access profile {:?} {opened}. What happens next: an administrator approves or denies it (an undecided request expires after {}); when it is approved your tool list changes (notifications/tools/list_changed), {again}.",
        request.id,
        profile.name,
        hours(ttl_secs)
    )
}

/// Asks for `profile` for `caller` (a call of `tool`, or the request tool
/// when `tool` is `None`) and says what happened.
async fn ask(
    store: &Store,
    world: &World,
    user: &crate::model::User,
    profile: &AccessProfile,
    tool: Option<&Tool>,
    reason: &str,
    duration_secs: Option<u64>,
) -> Intercept {
    let tool_name = tool.map(|t| t.name.as_str());
    let opened = requests::open(
        store,
        &format!("user:{}", user.email),
        Ask {
            user_id: &user.id,
            profile_id: &profile.id,
            reason,
            duration_secs,
            tool: tool_name,
        },
    )
    .await;
    let opened = match opened {
        Ok(opened) => opened,
        Err(RequestError::Store(err)) => {
            tracing::error!(error = %err, "cannot open an access request");
            return Intercept::Answer(answer(
                Outcome::Error,
                "storage error".into(),
                "toolgate could not record your access request; try again".into(),
                Value::Null,
                Map::new(),
            ));
        }
        Err(err) => {
            let text = err.to_string();
            return Intercept::Answer(answer(
                Outcome::Denied,
                text.clone(),
                text,
                Value::Null,
                Map::new(),
            ));
        }
    };
    let request = &opened.request;
    let meta = request_meta(request, profile, opened.created);
    let details = details(request, opened.created);
    if request.state == AccessRequestState::Approved {
        if tool.is_some() {
            return Intercept::Granted { details };
        }
        let length = request.granted_duration_secs.map_or_else(
            || "without an end".to_owned(),
            |s| format!("for {}", hours(s)),
        );
        let mut result = CallToolResult::success(vec![ContentBlock::text(format!(
            "Access profile {:?} is granted to you {length} (request {}, approved automatically); its tools are in your tool list now.",
            profile.name, request.id
        ))]);
        let mut object = MetaObject::default();
        object.0.insert(META_ACCESS_REQUEST.into(), meta);
        result.meta = Some(object);
        return Intercept::Answer(Answer {
            outcome: Outcome::Allowed,
            reason: format!("access request {} approved automatically", request.id),
            result,
            details,
        });
    }
    let text = pending_text(
        request,
        profile,
        tool_name,
        opened.created,
        world.settings.governance.access_request_ttl_secs,
    );
    Intercept::Answer(answer(
        Outcome::Denied,
        format!("access request {} pending", request.id),
        text,
        meta,
        details,
    ))
}

/// A call of `tool` (at `position`) that policy refused for `subject`: when
/// the tool is requestable for them, opens or reuses a request (or says
/// their latest was denied, with the admin's reason), or for an
/// auto-approved profile grants it and lets the call run.
pub async fn intercept(
    store: &Store,
    world: &World,
    subject: &Subject<'_>,
    tool: &Tool,
) -> Intercept {
    let allowed = world.allowed(subject);
    let Some(offer) = world
        .requestable(subject, &allowed)
        .into_iter()
        .find(|r| world.tools[r.position].id == tool.id)
    else {
        return Intercept::Refused;
    };
    let profile = offer.profile;
    let all: Vec<AccessRequest> = match store.list().await {
        Ok(all) => all,
        Err(err) => {
            tracing::error!(error = %err, "cannot read access requests");
            return Intercept::Answer(answer(
                Outcome::Error,
                "storage error".into(),
                "toolgate could not read your access requests; try again".into(),
                Value::Null,
                Map::new(),
            ));
        }
    };
    if let Some(last) = latest(&all, &subject.user.id, &profile.id)
        && last.state == AccessRequestState::Denied
    {
        let text = format!(
            "You do not have access to {} and it did not run: your access request {} for access profile {:?} was denied by an administrator: {}. To ask again, call {REQUEST_TOOL} with profile {:?} and a reason.",
            tool.name, last.id, profile.name, last.decision_reason, profile.name
        );
        return Intercept::Answer(answer(
            Outcome::Denied,
            format!("access request {} was denied", last.id),
            text,
            request_meta(last, profile, false),
            details(last, false),
        ));
    }
    ask(store, world, subject.user, profile, Some(tool), "", None).await
}

/// A call of [`REQUEST_TOOL`] by `subject` with `args`
/// (`{"profile", "reason"?, "duration_secs"?}`): opens (or reuses) a request
/// for the named profile. `None` when the tool is not offered to them (the
/// call is then answered as for any unknown tool).
pub async fn request_access(
    store: &Store,
    world: &World,
    subject: &Subject<'_>,
    args: &Value,
) -> Option<Answer> {
    let profiles = world.requestable_profiles(subject);
    if profiles.is_empty() {
        return None;
    }
    let invalid = |message: String| {
        answer(
            Outcome::Error,
            "invalid arguments".into(),
            format!("invalid arguments for {REQUEST_TOOL}: {message}"),
            Value::Null,
            Map::new(),
        )
    };
    let names: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
    let Some(name) = args.get("profile").and_then(Value::as_str) else {
        return Some(invalid(format!(
            "profile: required, one of {}",
            names.join(", ")
        )));
    };
    let Some(profile) = profiles.iter().find(|p| p.name == name) else {
        return Some(invalid(format!(
            "profile: {name:?} is not a profile you can request; one of {}",
            names.join(", ")
        )));
    };
    let reason = match args.get("reason") {
        None | Some(Value::Null) => "",
        Some(Value::String(s)) => s.trim(),
        Some(_) => return Some(invalid("reason: must be a string".into())),
    };
    if let Err(err) = requests::check_reason("reason", reason, false) {
        return Some(invalid(err.to_string()));
    }
    let duration = match args.get("duration_secs") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(secs) => Some(secs),
            None => {
                return Some(invalid(format!(
                    "duration_secs: must be an integer from 1 to {MAX_DURATION_SECS}"
                )));
            }
        },
    };
    if let Err(err) = requests::check_duration("duration_secs", duration) {
        return Some(invalid(err.to_string()));
    }
    match ask(store, world, subject.user, profile, None, reason, duration).await {
        Intercept::Answer(answer) => Some(answer),
        // With no tool, `ask` always answers; refuse rather than run
        // nothing.
        Intercept::Granted { .. } | Intercept::Refused => None,
    }
}
