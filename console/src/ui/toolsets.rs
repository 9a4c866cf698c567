//! The toolsets and access profiles screens.

use ratatui::Frame;
use ratatui::layout::Constraint;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row};

use super::{Theme, count_title, draw_detail, draw_list, field, when};
use crate::layout::Areas;
use crate::state::{App, toolset_kind};

pub(super) fn draw_toolsets(frame: &mut Frame, app: &App, theme: Theme, areas: &Areas) {
    let shown = app.toolsets_shown();
    draw_list(
        frame,
        theme,
        areas.list,
        count_title(
            app,
            "Toolsets",
            shown.len(),
            app.toolsets.ready().map(Vec::len),
        ),
        &app.toolsets,
        shown.len(),
        "No toolsets yet. Registering a server creates its maintained ones; n creates a custom one.",
        vec!["Name", "Kind", "Server", "Tools"],
        vec![
            Constraint::Min(18),
            Constraint::Length(26),
            Constraint::Length(16),
            Constraint::Length(6),
        ],
        app.toolsets_cursor,
        |offset, count| {
            shown[offset..offset + count]
                .iter()
                .map(|t| {
                    Row::new(vec![
                        Cell::from(t.name.clone()),
                        Cell::from(toolset_kind(t.kind)),
                        Cell::from(if t.server_id.is_empty() {
                            "-".to_owned()
                        } else {
                            app.server_name(&t.server_id)
                        }),
                        Cell::from(t.tool_ids.len().to_string()),
                    ])
                })
                .collect()
        },
    );
    let Some(t) = app.selected_toolset() else {
        draw_detail(frame, app, theme, areas.detail, " Toolset ".into(), vec![]);
        return;
    };
    let bound: Vec<String> = app
        .profiles
        .ready()
        .map(|ps| {
            ps.iter()
                .filter(|p| p.toolset_ids.contains(&t.id))
                .map(|p| p.name.clone())
                .collect()
        })
        .unwrap_or_default();
    let mut lines = vec![
        field(theme, "Kind", toolset_kind(t.kind)),
        field(
            theme,
            "Description",
            if t.description.is_empty() {
                "-".to_owned()
            } else {
                t.description.clone()
            },
        ),
        field(
            theme,
            "Bound to",
            if bound.is_empty() {
                "no access profile".to_owned()
            } else {
                bound.join(", ")
            },
        ),
        Line::from(Span::styled(
            format!("Tools ({})", t.tool_ids.len()),
            theme.heading(),
        )),
    ];
    let mut names: Vec<String> = t.tool_ids.iter().map(|id| app.tool_name(id)).collect();
    names.sort();
    lines.extend(names.into_iter().map(|n| Line::from(format!("  {n}"))));
    draw_detail(
        frame,
        app,
        theme,
        areas.detail,
        format!(" {} ", t.name),
        lines,
    );
}

pub(super) fn draw_profiles(frame: &mut Frame, app: &App, theme: Theme, areas: &Areas) {
    let shown = app.profiles_shown();
    draw_list(
        frame,
        theme,
        areas.list,
        count_title(
            app,
            "Access profiles",
            shown.len(),
            app.profiles.ready().map(Vec::len),
        ),
        &app.profiles,
        shown.len(),
        "No access profiles yet. Press n to create one, then b to bind toolsets and u to grant users.",
        vec!["Name", "Toolsets", "Users"],
        vec![
            Constraint::Min(20),
            Constraint::Length(9),
            Constraint::Length(6),
        ],
        app.profiles_cursor,
        |offset, count| {
            shown[offset..offset + count]
                .iter()
                .map(|p| {
                    Row::new(vec![
                        Cell::from(p.name.clone()),
                        Cell::from(p.toolset_ids.len().to_string()),
                        Cell::from(p.grants.len().to_string()),
                    ])
                })
                .collect()
        },
    );
    let Some(p) = app.selected_profile() else {
        draw_detail(
            frame,
            app,
            theme,
            areas.detail,
            " Access profile ".into(),
            vec![],
        );
        return;
    };
    let mut lines = vec![field(
        theme,
        "Description",
        if p.description.is_empty() {
            "-".to_owned()
        } else {
            p.description.clone()
        },
    )];
    lines.push(Line::from(Span::styled(
        format!("Toolsets ({})", p.toolset_ids.len()),
        theme.heading(),
    )));
    lines.extend(
        p.toolset_ids
            .iter()
            .map(|id| Line::from(format!("  {}", app.toolset_name(id)))),
    );
    lines.push(Line::from(Span::styled(
        format!("Granted users ({})", p.grants.len()),
        theme.heading(),
    )));
    lines.extend(p.grants.iter().map(|g| {
        Line::from(format!(
            "  {}  expires {}  (by {})",
            app.user_email(&g.user_id),
            when(g.expires_at.as_ref(), "never"),
            g.granted_by
        ))
    }));
    draw_detail(
        frame,
        app,
        theme,
        areas.detail,
        format!(" {} ", p.name),
        lines,
    );
}
