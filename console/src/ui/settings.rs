//! The settings screen.

use ratatui::Frame;
use ratatui::layout::Constraint;
use ratatui::text::Line;
use ratatui::widgets::{Cell, Row};

use super::{Theme, draw_detail, draw_list};
use crate::layout::Areas;
use crate::state::{App, settings_rows};

pub(super) fn draw(frame: &mut Frame, app: &App, theme: Theme, areas: &Areas) {
    let rows = app.settings.ready().map(settings_rows);
    draw_list(
        frame,
        theme,
        areas.list,
        " Settings ".into(),
        &app.settings,
        rows.as_ref().map_or(0, |r| r.len()),
        "",
        vec!["Setting", "Value"],
        vec![Constraint::Length(24), Constraint::Min(20)],
        app.settings_cursor,
        |offset, count| {
            rows.as_ref()
                .map(|rows| {
                    rows[offset..offset + count]
                        .iter()
                        .map(|(label, value, _)| {
                            let style = if value.starts_with("OFF") {
                                theme.error()
                            } else {
                                ratatui::style::Style::default()
                            };
                            Row::new(vec![Cell::from(*label), Cell::from(value.clone())])
                                .style(style)
                        })
                        .collect()
                })
                .unwrap_or_default()
        },
    );
    let help = rows
        .as_ref()
        .and_then(|rows| rows.get(app.settings_cursor.selected))
        .map(|(_, _, help)| *help)
        .unwrap_or("");
    draw_detail(
        frame,
        app,
        theme,
        areas.detail,
        " About this setting ".into(),
        vec![
            Line::from(help),
            Line::default(),
            Line::from("Space changes it."),
        ],
    );
}
