//! The users screen: users, and the selected one's grants, tokens,
//! Salesforce connections and callable tools.

use ratatui::Frame;
use ratatui::layout::Constraint;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row};

use super::{Theme, clip, count_title, draw_detail, draw_list, when};
use crate::layout::Areas;
use crate::state::{App, Loadable, is_active};

pub(super) fn draw(frame: &mut Frame, app: &App, theme: Theme, areas: &Areas) {
    let shown = app.users_shown();
    draw_list(
        frame,
        theme,
        areas.list,
        count_title(app, "Users", shown.len(), app.users.ready().map(Vec::len)),
        &app.users,
        shown.len(),
        "No users yet. Press n to create one.",
        vec!["Email", "Name", "Status", "Profiles"],
        vec![
            Constraint::Min(22),
            Constraint::Length(18),
            Constraint::Length(9),
            Constraint::Length(8),
        ],
        app.users_cursor,
        |offset, count| {
            shown[offset..offset + count]
                .iter()
                .map(|u| {
                    let active = is_active(u);
                    Row::new(vec![
                        Cell::from(u.email.clone()),
                        Cell::from(clip(&u.display_name, 18)),
                        Cell::from(Span::styled(
                            if active { "active" } else { "DISABLED" },
                            if active { theme.ok() } else { theme.error() },
                        )),
                        Cell::from(app.user_grants(&u.id).len().to_string()),
                    ])
                })
                .collect()
        },
    );
    let Some(user) = app.selected_user() else {
        draw_detail(frame, app, theme, areas.detail, " User ".into(), vec![]);
        return;
    };
    let mut lines = Vec::new();
    let grants = app.user_grants(&user.id);
    lines.push(Line::from(Span::styled(
        format!("Access profiles ({})", grants.len()),
        theme.heading(),
    )));
    for (name, expires) in grants {
        lines.push(Line::from(format!(
            "  {name}  expires {}",
            when(expires.as_ref(), "never")
        )));
    }
    match &app.user_detail {
        Some((id, Loadable::Ready(d))) if *id == user.id => {
            let live = d.tokens.iter().filter(|t| t.revoked_at.is_none()).count();
            lines.push(Line::from(Span::styled(
                format!("MCP tokens ({live} live)"),
                theme.heading(),
            )));
            for t in &d.tokens {
                let state = if t.revoked_at.is_some() {
                    format!("revoked {}", when(t.revoked_at.as_ref(), ""))
                } else {
                    format!(
                        "expires {}, last used {}",
                        when(t.expires_at.as_ref(), "never"),
                        when(t.last_used_at.as_ref(), "never")
                    )
                };
                lines.push(Line::from(format!("  {} ({}…)  {state}", t.name, t.prefix)));
            }
            lines.push(Line::from(Span::styled(
                format!("Salesforce connections ({})", d.connections.len()),
                theme.heading(),
            )));
            for c in &d.connections {
                let who = if c.salesforce_username.is_empty() {
                    Span::styled(
                        "username unknown (it could not be read at connect time)",
                        theme.dim(),
                    )
                } else {
                    Span::raw(c.salesforce_username.clone())
                };
                lines.push(Line::from(vec![
                    Span::raw(format!("  {}: ", app.server_name(&c.server_id))),
                    who,
                ]));
                lines.push(Line::from(format!(
                    "    org {} · user {}",
                    c.salesforce_org_id, c.salesforce_user_id
                )));
                lines.push(Line::from(Span::styled(
                    format!(
                        "    {} · since {}",
                        c.instance_url,
                        when(c.connected_at.as_ref(), "-")
                    ),
                    theme.dim(),
                )));
            }
            // Every tool, however many: the pane wraps and scrolls (J/K).
            lines.push(Line::from(Span::styled(
                format!("Callable tools ({})", d.tools.len()),
                theme.heading(),
            )));
            if d.tools.is_empty() {
                lines.push(Line::from(Span::styled(
                    "  none: grant an access profile with u",
                    theme.dim(),
                )));
            } else {
                lines.push(Line::from(d.tools.join(", ")));
            }
        }
        Some((id, Loadable::Failed(e))) if *id == user.id => {
            lines.push(Line::from(Span::styled(
                format!("✗ Could not load tokens and connections: {e}"),
                theme.error(),
            )));
        }
        _ => lines.push(Line::from(Span::styled(
            "Loading tokens and connections…",
            theme.dim(),
        ))),
    }
    let title = if user.display_name.is_empty() {
        format!(" {} ", user.email)
    } else {
        format!(" {} <{}> ", user.display_name, user.email)
    };
    draw_detail(frame, app, theme, areas.detail, title, lines);
}
