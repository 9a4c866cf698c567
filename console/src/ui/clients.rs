//! The AI clients screen: every sign-in and token as a governed client,
//! and the selected one's type, state, kill switch, owner and redirect
//! hosts.

use ratatui::Frame;
use ratatui::layout::Constraint;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row};

use super::{Theme, clip, count_title, draw_detail, draw_list, when};
use crate::layout::Areas;
use crate::state::{App, client_state_name, client_type_name};
use toolgate_proto::v1;

fn origin_name(origin: i32) -> &'static str {
    match v1::ClientOrigin::try_from(origin) {
        Ok(v1::ClientOrigin::AccessToken) => "personal access token",
        Ok(v1::ClientOrigin::MetadataDocument) => "OAuth (Client ID Metadata Document)",
        Ok(v1::ClientOrigin::DynamicRegistration) => "OAuth (Dynamic Client Registration)",
        _ => "?",
    }
}

pub(super) fn draw(frame: &mut Frame, app: &App, theme: Theme, areas: &Areas) {
    let shown = app.clients_shown();
    let name = if app.clients_all {
        "AI clients (all)"
    } else {
        "AI clients"
    };
    draw_list(
        frame,
        theme,
        areas.list,
        count_title(app, name, shown.len(), app.clients.ready().map(Vec::len)),
        &app.clients,
        shown.len(),
        "No AI clients yet: they appear when a user signs in or gets a token (Users, i).",
        vec!["Name", "Owner", "Type", "State", "Calls", "Last used"],
        vec![
            Constraint::Min(16),
            Constraint::Length(22),
            Constraint::Length(9),
            Constraint::Length(7),
            Constraint::Length(5),
            Constraint::Length(16),
        ],
        app.clients_cursor,
        |offset, count| {
            shown[offset..offset + count]
                .iter()
                .map(|c| {
                    let usable = c.state == v1::ClientState::Active as i32
                        || c.state == v1::ClientState::Hidden as i32;
                    Row::new(vec![
                        Cell::from(clip(&c.name, 30)),
                        Cell::from(clip(&c.owner_email, 22)),
                        Cell::from(client_type_name(c.client_type)),
                        Cell::from(Span::styled(
                            client_state_name(c.state),
                            if usable { theme.ok() } else { theme.error() },
                        )),
                        Cell::from(Span::styled(
                            if c.traffic_enabled { "on" } else { "OFF" },
                            if c.traffic_enabled {
                                theme.ok()
                            } else {
                                theme.error()
                            },
                        )),
                        Cell::from(when(c.last_used_at.as_ref(), "never")),
                    ])
                })
                .collect()
        },
    );
    let Some(c) = app.selected_client() else {
        draw_detail(
            frame,
            app,
            theme,
            areas.detail,
            " AI client ".into(),
            vec![],
        );
        return;
    };
    let field = |label: &str, value: String| {
        Line::from(vec![
            Span::styled(format!("{label:<16}"), theme.dim()),
            Span::raw(value),
        ])
    };
    let mut lines = vec![
        field("Owner", c.owner_email.clone()),
        field("Kind", origin_name(c.origin).into()),
        field("Type", client_type_name(c.client_type).into()),
        field("State", client_state_name(c.state).into()),
        field(
            "Tool calls",
            if c.traffic_enabled {
                "on".into()
            } else {
                "OFF (kill switch)".into()
            },
        ),
        field(
            "Close when idle",
            c.close_after_idle_days
                .map_or("policy default".into(), |d| format!("after {d} days")),
        ),
        field("Last used", when(c.last_used_at.as_ref(), "never")),
        field("Created", when(c.created_at.as_ref(), "-")),
    ];
    if !c.client_id.is_empty() {
        lines.push(field("Client id", c.client_id.clone()));
    }
    if !c.redirect_hosts.is_empty() {
        lines.push(field("Redirects to", c.redirect_hosts.join(", ")));
    }
    if !c.token_id.is_empty() {
        lines.push(field("Token id", c.token_id.clone()));
    }
    lines.push(Line::default());
    lines.push(Line::from(Span::styled(
        "t type · s state · Space kill switch · x revoke · D delete",
        theme.dim(),
    )));
    draw_detail(
        frame,
        app,
        theme,
        areas.detail,
        format!(" {} ", c.name),
        lines,
    );
}
