//! The servers screen: registered servers and the selected one's detail,
//! with the callback URL to paste into the connected app.

use ratatui::Frame;
use ratatui::layout::Constraint;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row};
use toolgate_proto::v1;

use super::{Theme, clip, count_title, draw_detail, draw_list, field, when};
use crate::layout::Areas;
use crate::state::{App, describe_login_host};

fn credentials(server: &v1::Server) -> &'static str {
    match &server.auth {
        Some(a) if a.client_secret_set && !a.client_id.is_empty() => "set",
        _ => "MISSING",
    }
}

fn login_kind(host: Option<&v1::LoginHost>) -> &'static str {
    match host.map(|h| v1::LoginHostKind::try_from(h.kind).unwrap_or_default()) {
        Some(v1::LoginHostKind::Production) => "production",
        Some(v1::LoginHostKind::Sandbox) => "sandbox",
        Some(v1::LoginHostKind::MyDomain) => "My Domain",
        _ => "-",
    }
}

pub(super) fn draw(frame: &mut Frame, app: &App, theme: Theme, areas: &Areas) {
    let shown = app.servers_shown();
    let total = app.servers.ready().map(Vec::len);
    let title = count_title(app, "Servers", shown.len(), total);
    draw_list(
        frame,
        theme,
        areas.list,
        title,
        &app.servers,
        shown.len(),
        "No servers yet. Press n to register Salesforce.",
        vec!["Name", "Prefix", "Login", "API", "Credentials", "State"],
        vec![
            Constraint::Min(16),
            Constraint::Length(12),
            Constraint::Length(10),
            Constraint::Length(6),
            Constraint::Length(12),
            Constraint::Length(9),
        ],
        app.servers_cursor,
        |offset, count| {
            shown[offset..offset + count]
                .iter()
                .map(|s| {
                    let login = login_kind(s.login_host.as_ref());
                    let creds = credentials(s);
                    Row::new(vec![
                        Cell::from(s.name.clone()),
                        Cell::from(s.tool_prefix.clone()),
                        Cell::from(login),
                        Cell::from(s.api_version.clone()),
                        Cell::from(Span::styled(
                            creds,
                            if creds == "set" {
                                theme.ok()
                            } else {
                                theme.warn()
                            },
                        )),
                        Cell::from(Span::styled(
                            if s.disabled { "DISABLED" } else { "enabled" },
                            if s.disabled {
                                theme.error()
                            } else {
                                theme.ok()
                            },
                        )),
                    ])
                })
                .collect()
        },
    );
    let Some(server) = app.selected_server() else {
        let callback = app.callback_url();
        let lines = vec![
            Line::from(
                "Register Salesforce with n. In Salesforce, create an External Client App (or \
                 use an existing connected app) with OAuth enabled, the scopes api and \
                 refresh_token offline_access, and this callback URL:",
            ),
            Line::from(Span::styled(callback, theme.accent())),
        ];
        draw_detail(
            frame,
            app,
            theme,
            areas.detail,
            " Getting started ".into(),
            lines,
        );
        return;
    };
    let auth = server.auth.clone().unwrap_or_default();
    let tools: Vec<&v1::Tool> = app
        .tools
        .all
        .iter()
        .filter(|t| t.server_id == server.id)
        .collect();
    let count = |s: v1::ToolState| tools.iter().filter(|t| t.state == s as i32).count();
    let lines = vec![
        Line::from(vec![
            Span::styled("Callback URL: ", theme.heading()),
            Span::styled(server.callback_url.clone(), theme.accent()),
            Span::styled("  (y copies)", theme.dim()),
        ]),
        field(
            theme,
            "Login host",
            describe_login_host(server.login_host.as_ref()),
        ),
        field(theme, "API version", server.api_version.clone()),
        field(
            theme,
            "Consumer key",
            if auth.client_id.is_empty() {
                "not set (c)".to_owned()
            } else {
                clip(&auth.client_id, 40)
            },
        ),
        field(
            theme,
            "Consumer secret",
            if auth.client_secret_set {
                format!(
                    "set {} (fingerprint {})",
                    when(auth.client_secret_set_at.as_ref(), ""),
                    auth.client_secret_fingerprint
                )
            } else {
                "not set (c)".to_owned()
            },
        ),
        field(
            theme,
            "Tools",
            format!(
                "{} ({} pending review, {} approved, {} disabled, {} removed)",
                tools.len(),
                count(v1::ToolState::PendingReview),
                count(v1::ToolState::Approved),
                count(v1::ToolState::Disabled),
                count(v1::ToolState::Removed)
            ),
        ),
        field(theme, "Registered", when(server.created_at.as_ref(), "-")),
        field(theme, "Id", server.id.clone()),
    ];
    draw_detail(
        frame,
        app,
        theme,
        areas.detail,
        format!(" {} ", server.name),
        lines,
    );
}
