//! The approval queues: access requests and held calls, pending first,
//! each with its detail (a held call's arguments exactly as they will be
//! sent, pretty-printed).

use ratatui::Frame;
use ratatui::layout::Constraint;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row};

use super::{Theme, clip, count_title, draw_detail, draw_list, when};
use crate::layout::Areas;
use crate::state::{
    App, Loadable, describe_duration, held_call_state_name, obtain_name, pretty_json,
    request_state_name,
};
use toolgate_proto::v1;

/// How long ago `time` was, in one unit (`45s`, `12m`, `3h`, `2d`); `-`
/// when unset.
pub fn age(app: &App, time: Option<&prost_types::Timestamp>) -> String {
    let Some(t) = time else {
        return "-".into();
    };
    let secs = ((app.clock)().timestamp() - t.seconds).max(0) as u64;
    match secs {
        0..60 => format!("{secs}s"),
        60..3_600 => format!("{}m", secs / 60),
        3_600..86_400 => format!("{}h", secs / 3_600),
        _ => format!("{}d", secs / 86_400),
    }
}

fn label(theme: Theme, name: &str, value: impl Into<String>) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{name:<14}"), theme.dim()),
        Span::raw(value.into()),
    ])
}

pub(super) fn draw_requests(frame: &mut Frame, app: &App, theme: Theme, areas: &Areas) {
    let shown = app.requests_shown();
    let name = if app.requests_all {
        "Access requests (all)"
    } else {
        "Access requests pending"
    };
    draw_list(
        frame,
        theme,
        areas.list,
        count_title(
            app,
            name,
            shown.len(),
            app.access_requests.ready().map(Vec::len),
        ),
        &app.access_requests,
        shown.len(),
        if app.requests_all {
            "No access requests yet. Users open them by calling a tool of a requestable profile (Profiles: e, Obtained by)."
        } else {
            "No pending access requests (v shows decided ones)."
        },
        vec!["State", "User", "Profile", "Tool", "Asked", "Age"],
        vec![
            Constraint::Length(8),
            Constraint::Min(16),
            Constraint::Length(14),
            Constraint::Min(14),
            Constraint::Length(7),
            Constraint::Length(4),
        ],
        app.requests_cursor,
        |offset, count| {
            shown[offset..offset + count]
                .iter()
                .map(|r| {
                    let pending = r.state == v1::AccessRequestState::Pending as i32;
                    Row::new(vec![
                        Cell::from(Span::styled(
                            request_state_name(r.state),
                            if pending { theme.warn() } else { theme.dim() },
                        )),
                        Cell::from(clip(&r.user_email, 30)),
                        Cell::from(clip(&r.profile_name, 24)),
                        Cell::from(if r.tool.is_empty() {
                            "(ahead of time)".to_owned()
                        } else {
                            clip(&r.tool, 40)
                        }),
                        Cell::from(
                            r.requested_duration_secs
                                .map_or("max".to_owned(), describe_duration),
                        ),
                        Cell::from(age(app, r.created_at.as_ref())),
                    ])
                })
                .collect()
        },
    );
    let Some(r) = app.selected_request() else {
        draw_detail(
            frame,
            app,
            theme,
            areas.detail,
            " Access request ".into(),
            vec![],
        );
        return;
    };
    let profile = app
        .profiles
        .ready()
        .and_then(|all| all.iter().find(|p| p.id == r.profile_id));
    let mut lines = vec![
        label(theme, "User", r.user_email.clone()),
        label(
            theme,
            "Profile",
            match profile {
                Some(p) => format!("{} ({})", r.profile_name, obtain_name(p.obtain)),
                None => r.profile_name.clone(),
            },
        ),
        label(
            theme,
            "Opened by",
            if r.tool.is_empty() {
                "a request ahead of time".to_owned()
            } else {
                format!("calling {}", r.tool)
            },
        ),
        label(
            theme,
            "Reason",
            if r.reason.is_empty() {
                "-".to_owned()
            } else {
                r.reason.clone()
            },
        ),
        label(
            theme,
            "Asked for",
            r.requested_duration_secs.map_or(
                "as long as the profile allows".to_owned(),
                describe_duration,
            ),
        ),
        label(
            theme,
            "Profile max",
            app.profile_max_duration(&r.profile_id)
                .map_or("no end".to_owned(), describe_duration),
        ),
        label(theme, "State", request_state_name(r.state)),
        label(
            theme,
            "Opened",
            format!(
                "{} ({} ago)",
                when(r.created_at.as_ref(), "-"),
                age(app, r.created_at.as_ref())
            ),
        ),
    ];
    if r.state == v1::AccessRequestState::Pending as i32 {
        lines.push(label(theme, "Expires", when(r.expires_at.as_ref(), "-")));
        lines.push(Line::default());
        lines.push(Line::from(Span::styled(
            "a approve (shorter time optional) · d deny with a reason",
            theme.dim(),
        )));
    } else {
        lines.push(label(
            theme,
            "Decided",
            format!(
                "{} by {}",
                when(r.decided_at.as_ref(), "-"),
                if r.decided_by.is_empty() {
                    "-"
                } else {
                    &r.decided_by
                }
            ),
        ));
        if let Some(secs) = r.granted_duration_secs {
            lines.push(label(theme, "Granted for", describe_duration(secs)));
        }
        if !r.decision_reason.is_empty() {
            lines.push(label(theme, "Why", r.decision_reason.clone()));
        }
    }
    draw_detail(
        frame,
        app,
        theme,
        areas.detail,
        format!(" Request of {} ", r.user_email),
        lines,
    );
}

pub(super) fn draw_held(frame: &mut Frame, app: &App, theme: Theme, areas: &Areas) {
    let shown = app.held_shown();
    let name = if app.held_all {
        "Held calls (all)"
    } else {
        "Held calls pending"
    };
    draw_list(
        frame,
        theme,
        areas.list,
        count_title(app, name, shown.len(), app.held.ready().map(Vec::len)),
        &app.held,
        shown.len(),
        if app.held_all {
            "No held calls yet. Calls wait here when Settings › Per-call approval matches them."
        } else {
            "No call waits for approval (v shows decided ones)."
        },
        vec!["State", "User", "Client", "Tool", "Age"],
        vec![
            Constraint::Length(8),
            Constraint::Min(16),
            Constraint::Length(16),
            Constraint::Min(16),
            Constraint::Length(4),
        ],
        app.held_cursor,
        |offset, count| {
            shown[offset..offset + count]
                .iter()
                .map(|c| {
                    let pending = c.state == v1::HeldCallState::Pending as i32;
                    Row::new(vec![
                        Cell::from(Span::styled(
                            held_call_state_name(c.state),
                            if pending { theme.warn() } else { theme.dim() },
                        )),
                        Cell::from(clip(&c.user_email, 30)),
                        Cell::from(clip(&c.client_name, 24)),
                        Cell::from(clip(&c.tool, 40)),
                        Cell::from(age(app, c.created_at.as_ref())),
                    ])
                })
                .collect()
        },
    );
    let Some(listed) = app.selected_held() else {
        draw_detail(
            frame,
            app,
            theme,
            areas.detail,
            " Held call ".into(),
            vec![],
        );
        return;
    };
    let mut lines = vec![
        label(theme, "User", listed.user_email.clone()),
        label(
            theme,
            "Client",
            if listed.client_name.is_empty() {
                "-".to_owned()
            } else {
                listed.client_name.clone()
            },
        ),
        label(
            theme,
            "Tool",
            format!("{} on {}", listed.tool, app.server_name(&listed.server_id)),
        ),
        label(theme, "State", held_call_state_name(listed.state)),
        label(
            theme,
            "Held",
            format!(
                "{} ({} ago)",
                when(listed.created_at.as_ref(), "-"),
                age(app, listed.created_at.as_ref())
            ),
        ),
        label(theme, "Expires", when(listed.expires_at.as_ref(), "-")),
    ];
    if !listed.decided_by.is_empty() {
        lines.push(label(
            theme,
            "Decided",
            format!(
                "{} by {}",
                when(listed.decided_at.as_ref(), "-"),
                listed.decided_by
            ),
        ));
    }
    if !listed.decision_reason.is_empty() {
        lines.push(label(theme, "Why", listed.decision_reason.clone()));
    }
    if listed.used_at.is_some() {
        lines.push(label(theme, "Ran", when(listed.used_at.as_ref(), "-")));
    }
    lines.push(Line::default());
    lines.push(Line::from(Span::styled(
        "Arguments, exactly as they will be sent:",
        theme.heading(),
    )));
    match app.held_detail_of(&listed.id) {
        Some(Loadable::Ready(call)) => {
            for line in pretty_json(&call.arguments_json).lines() {
                lines.push(Line::from(Span::styled(line.to_owned(), theme.accent())));
            }
            lines.push(label(theme, "SHA-256", clip(&call.arguments_digest, 64)));
        }
        Some(Loadable::Failed(message)) => lines.push(Line::from(Span::styled(
            format!("✗ Could not load them: {message} (r to retry)"),
            theme.error(),
        ))),
        _ => lines.push(Line::from(Span::styled("Loading…", theme.dim()))),
    }
    if listed.state == v1::HeldCallState::Pending as i32 {
        lines.push(Line::default());
        lines.push(Line::from(Span::styled(
            "a approve (runs once on the client's retry) · d deny with a reason",
            theme.dim(),
        )));
    }
    draw_detail(
        frame,
        app,
        theme,
        areas.detail,
        format!(" {} ", listed.tool),
        lines,
    );
}
