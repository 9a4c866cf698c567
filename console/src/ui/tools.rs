//! The tools screen: the review queue or the filtered full list, and the
//! selected tool's detail (description, drift, classification, annotations,
//! input schema once loaded).

use ratatui::Frame;
use ratatui::layout::Constraint;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row};
use toolgate_proto::v1;

use super::{Theme, clip, draw_detail, draw_list, field, when};
use crate::layout::Areas;
use crate::state::{App, Loadable, ToolsView, action_name, state_name};

fn state_style(theme: Theme, state: i32) -> ratatui::style::Style {
    match v1::ToolState::try_from(state).unwrap_or_default() {
        v1::ToolState::PendingReview => theme.warn(),
        v1::ToolState::Approved => theme.ok(),
        v1::ToolState::Disabled => theme.error(),
        _ => theme.dim(),
    }
}

fn flags(class: &v1::Classification) -> String {
    let mut out = String::new();
    if class.sensitive {
        out.push_str("sensitive ");
    }
    if class.dangerous {
        out.push_str("dangerous");
    }
    out.trim_end().to_owned()
}

pub(super) fn draw(frame: &mut Frame, app: &App, theme: Theme, areas: &Areas) {
    let t = &app.tools;
    let loading = if t.loading && t.loaded {
        " · refreshing…".to_owned()
    } else if t.loading {
        format!(" · loading {}/{}", t.all.len(), t.total.max(t.all.len()))
    } else {
        String::new()
    };
    let marked = if t.marked.is_empty() {
        String::new()
    } else {
        format!(" · {} marked", t.marked.len())
    };
    let search = app
        .search
        .get(&app.screen)
        .filter(|s| !s.trim().is_empty())
        .map(|s| format!(" · /{s}"))
        .unwrap_or_default();
    let narrowed = t.filter.is_set() || !search.is_empty();
    let filters = if t.filter.is_set() {
        " · filtered"
    } else {
        ""
    };
    let pending = t.pending();
    let title = match t.view {
        ToolsView::Queue if !t.loaded && t.all.is_empty() => " Review queue ".to_owned(),
        ToolsView::All if !t.loaded && t.all.is_empty() => " Tools ".to_owned(),
        ToolsView::Queue if narrowed => format!(
            " Review queue: {} of {pending} pending, newest first{filters}{search}{marked}{loading} ",
            t.shown.len()
        ),
        ToolsView::Queue => {
            format!(" Review queue: {pending} pending, newest first{marked}{loading} ")
        }
        ToolsView::All => format!(
            " Tools: {} of {}{filters}{search}{marked}{loading} ",
            t.shown.len(),
            t.total.max(t.all.len())
        ),
    };
    let state: Loadable<()> = match (&t.error, t.loaded || !t.all.is_empty()) {
        (Some(e), false) => Loadable::Failed(e.clone()),
        (_, true) => Loadable::Ready(()),
        (None, false) if t.loading => Loadable::Loading,
        _ => Loadable::Ready(()),
    };
    let empty = match t.view {
        ToolsView::Queue if t.all.is_empty() => {
            "No tools yet. Register a Salesforce server first: :servers, then n."
        }
        ToolsView::Queue if pending > 0 => {
            "No pending tool matches. Esc clears the search; f changes the filters."
        }
        ToolsView::Queue => "Nothing waits for review. v shows every tool.",
        ToolsView::All => "No tool matches. f changes the filters, Esc clears the search.",
    };
    let wide = areas.list.width >= 110;
    let (header, widths) = if wide {
        (
            vec![
                "",
                "Name",
                "State",
                "Action",
                "Flags",
                "Server",
                "Discovered",
            ],
            vec![
                Constraint::Length(2),
                Constraint::Min(24),
                Constraint::Length(15),
                Constraint::Length(7),
                Constraint::Length(10),
                Constraint::Length(16),
                Constraint::Length(17),
            ],
        )
    } else {
        (
            vec!["", "Name", "State", "Action", "Flags"],
            vec![
                Constraint::Length(2),
                Constraint::Min(20),
                Constraint::Length(15),
                Constraint::Length(7),
                Constraint::Length(10),
            ],
        )
    };
    draw_list(
        frame,
        theme,
        areas.list,
        title,
        &state,
        t.shown.len(),
        empty,
        header,
        widths,
        t.cursor,
        |offset, count| {
            t.shown[offset..offset + count]
                .iter()
                .map(|i| {
                    let tool = &t.all[*i];
                    let class = tool.classification.unwrap_or_default();
                    let mark = if t.marked.contains(&tool.id) {
                        "✓"
                    } else {
                        " "
                    };
                    let state = if tool.drift.is_empty() {
                        state_name(tool.state)
                    } else {
                        "Changed: review"
                    };
                    let mut cells = vec![
                        Cell::from(mark),
                        Cell::from(tool.name.clone()),
                        Cell::from(Span::styled(state, state_style(theme, tool.state))),
                        Cell::from(action_name(class.action)),
                        Cell::from(flags(&class)),
                    ];
                    if wide {
                        cells.push(Cell::from(clip(&app.server_name(&tool.server_id), 16)));
                        cells.push(Cell::from(when(tool.discovered_at.as_ref(), "-")));
                    }
                    Row::new(cells)
                })
                .collect()
        },
    );
    draw_tool_detail(frame, app, theme, areas);
}

fn draw_tool_detail(frame: &mut Frame, app: &App, theme: Theme, areas: &Areas) {
    let Some(tool) = app.tools.selected() else {
        draw_detail(frame, app, theme, areas.detail, " Detail ".into(), vec![]);
        return;
    };
    // Everything but the schema comes from the list row, which every
    // change reloads; the full definition is fetched for its schema only.
    let full = match &app.tools.detail {
        Some((id, loaded)) if *id == tool.id => Some(loaded),
        _ => None,
    };
    let class = tool.classification.unwrap_or_default();
    let notes = tool.annotations.clone().unwrap_or_default();
    let mut hints = Vec::new();
    if notes.read_only_hint {
        hints.push("read-only");
    }
    if notes.destructive_hint {
        hints.push("destructive");
    }
    if notes.idempotent_hint {
        hints.push("idempotent");
    }
    if notes.open_world_hint {
        hints.push("open-world");
    }
    let mut lines = vec![
        field(theme, "Title", tool.title.clone()),
        Line::from(vec![
            Span::styled("State: ", theme.heading()),
            Span::styled(state_name(tool.state), state_style(theme, tool.state)),
            Span::raw(
                if tool.updated_at == tool.discovered_at || tool.updated_by.is_empty() {
                    String::new()
                } else {
                    format!(
                        "  (last changed by {}, {})",
                        tool.updated_by,
                        when(tool.updated_at.as_ref(), "-")
                    )
                },
            ),
        ]),
    ];
    if !tool.drift.is_empty() {
        lines.push(Line::from(Span::styled(
            format!(
                "Changed since approval: {} — review before approving again",
                tool.drift.join(", ")
            ),
            theme.warn(),
        )));
    }
    lines.push(field(
        theme,
        "Classification",
        format!(
            "{}{}",
            action_name(class.action),
            if flags(&class).is_empty() {
                String::new()
            } else {
                format!(", {}", flags(&class))
            }
        ),
    ));
    lines.push(field(
        theme,
        "Annotations",
        if hints.is_empty() {
            "none".to_owned()
        } else {
            hints.join(", ")
        },
    ));
    lines.push(field(theme, "Server", app.server_name(&tool.server_id)));
    lines.push(field(
        theme,
        "Discovered",
        when(tool.discovered_at.as_ref(), "-"),
    ));
    lines.push(Line::default());
    for text in tool.description.lines() {
        lines.push(Line::from(text.to_owned()));
    }
    lines.push(Line::default());
    match full {
        Some(Loadable::Ready(full)) => {
            lines.push(Line::from(Span::styled("Input schema", theme.heading())));
            let pretty = serde_json::from_str::<serde_json::Value>(&full.input_schema_json)
                .and_then(|v| serde_json::to_string_pretty(&v))
                .unwrap_or_else(|_| full.input_schema_json.clone());
            lines.extend(pretty.lines().map(|l| Line::from(l.to_owned())));
        }
        Some(Loadable::Loading) => lines.push(Line::from(Span::styled(
            "Loading the input schema…",
            theme.dim(),
        ))),
        Some(Loadable::Failed(e)) => lines.push(Line::from(Span::styled(
            format!("✗ Could not load the input schema: {e}"),
            theme.error(),
        ))),
        None => lines.push(Line::from(Span::styled(
            "Enter: show the input schema",
            theme.dim(),
        ))),
    }
    draw_detail(
        frame,
        app,
        theme,
        areas.detail,
        format!(" {} ", tool.name),
        lines,
    );
}
