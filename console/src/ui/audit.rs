//! The audit screen: the live tail and the selected event's detail.

use ratatui::Frame;
use ratatui::layout::Constraint;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row};
use toolgate_proto::v1;

use super::{Theme, count_title, draw_detail, draw_list, field, when_as};
use crate::layout::Areas;
use crate::state::{App, Loadable, Tail, outcome_name};

/// An event's time with seconds, UTC.
const SECONDS: &str = "%Y-%m-%d %H:%M:%S";

fn outcome_style(theme: Theme, outcome: i32) -> ratatui::style::Style {
    match v1::Outcome::try_from(outcome).unwrap_or_default() {
        v1::Outcome::Denied | v1::Outcome::Error => theme.error(),
        _ => ratatui::style::Style::default(),
    }
}

pub(super) fn draw(frame: &mut Frame, app: &App, theme: Theme, areas: &Areas) {
    let shown = app.audit_shown();
    // Seconds always (events of one minute must be told apart); the year
    // only where there is room.
    let wide = areas.list.width >= 90;
    let time_format = if wide { SECONDS } else { "%m-%d %H:%M:%S" };
    let tail = match &app.audit.tail {
        Tail::Idle | Tail::Connecting => "connecting…".to_owned(),
        Tail::Live if app.audit.follow => "live, following".to_owned(),
        Tail::Live => "live (F follows newest)".to_owned(),
        Tail::Stopped(_) => "stopped (r restarts)".to_owned(),
    };
    let f = &app.audit.filter;
    let mut filters = Vec::new();
    if !f.actor.is_empty() {
        filters.push(format!("actor={}", f.actor));
    }
    if !f.action_prefix.is_empty() {
        filters.push(format!("action={}*", f.action_prefix));
    }
    if !f.target_prefix.is_empty() {
        filters.push(format!("target={}*", f.target_prefix));
    }
    let filters = if filters.is_empty() {
        String::new()
    } else {
        format!(" · {}", filters.join(" "))
    };
    let state: Loadable<()> = match &app.audit.tail {
        Tail::Idle | Tail::Connecting => Loadable::Loading,
        Tail::Stopped(e) if app.audit.events.is_empty() => Loadable::Failed(e.clone()),
        _ => Loadable::Ready(()),
    };
    draw_list(
        frame,
        theme,
        areas.list,
        format!(
            "{}· {tail}{filters} ",
            count_title(app, "Audit", shown.len(), Some(app.audit.events.len()))
        ),
        &state,
        shown.len(),
        "No events match yet. They appear here as they happen.",
        vec!["Time (UTC)", "Actor", "Action", "Target", "Outcome"],
        vec![
            Constraint::Length(if wide { 19 } else { 14 }),
            Constraint::Length(if wide { 20 } else { 18 }),
            Constraint::Length(if wide { 18 } else { 12 }),
            Constraint::Min(14),
            Constraint::Length(7),
        ],
        app.audit.cursor,
        |offset, count| {
            shown[offset..offset + count]
                .iter()
                .map(|e| {
                    Row::new(vec![
                        Cell::from(when_as(e.time.as_ref(), time_format, "-")),
                        Cell::from(e.actor.clone()),
                        Cell::from(e.action.clone()),
                        Cell::from(e.target.clone()),
                        Cell::from(Span::styled(
                            outcome_name(e.outcome),
                            outcome_style(theme, e.outcome),
                        )),
                    ])
                })
                .collect()
        },
    );
    let Some(e) = app.selected_event() else {
        let lines = match &app.audit.tail {
            Tail::Stopped(message) => vec![Line::from(Span::styled(
                format!("✗ The tail stopped: {message}. Press r to restart it."),
                theme.error(),
            ))],
            _ => vec![],
        };
        draw_detail(frame, app, theme, areas.detail, " Event ".into(), lines);
        return;
    };
    let mut lines = vec![
        field(theme, "Time", when_as(e.time.as_ref(), SECONDS, "-")),
        field(theme, "Actor", e.actor.clone()),
        field(theme, "Action", e.action.clone()),
        field(theme, "Target", e.target.clone()),
        Line::from(vec![
            Span::styled("Outcome: ", theme.heading()),
            Span::styled(outcome_name(e.outcome), outcome_style(theme, e.outcome)),
            Span::raw(if e.reason.is_empty() {
                String::new()
            } else {
                format!(" — {}", e.reason)
            }),
        ]),
        field(theme, "Latency", format!("{} ms", e.latency_ms)),
    ];
    if !e.details_json.is_empty() {
        lines.push(Line::from(Span::styled("Details", theme.heading())));
        let pretty = serde_json::from_str::<serde_json::Value>(&e.details_json)
            .and_then(|v| serde_json::to_string_pretty(&v))
            .unwrap_or_else(|_| e.details_json.clone());
        lines.extend(pretty.lines().map(|l| Line::from(l.to_owned())));
    }
    draw_detail(
        frame,
        app,
        theme,
        areas.detail,
        format!(" Event #{} ", e.sequence),
        lines,
    );
}
