//! The hooks screen: hooks in run order, the selected one's settings and
//! filter, and the last dry run's answer.

use ratatui::Frame;
use ratatui::layout::Constraint;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row};

use super::{Theme, clip, count_title, draw_detail, draw_list, when};
use crate::layout::Areas;
use crate::state::{
    App, Loadable, describe_config, hook_kind, hook_outcome_name, phase_name, pretty_json,
};
use toolgate_proto::v1;

pub(super) fn draw(frame: &mut Frame, app: &App, theme: Theme, areas: &Areas) {
    let shown = app.hooks_shown();
    draw_list(
        frame,
        theme,
        areas.list,
        count_title(
            app,
            "Hooks, in run order",
            shown.len(),
            app.hooks.ready().map(Vec::len),
        ),
        &app.hooks,
        shown.len(),
        "No hooks yet: n creates one (PII redaction, card blocking, query scope, write window, webhook).",
        vec!["Phase", "Prio", "Name", "Kind", "On", "Filter"],
        vec![
            Constraint::Length(6),
            Constraint::Length(4),
            Constraint::Min(14),
            Constraint::Length(13),
            Constraint::Length(3),
            Constraint::Min(12),
        ],
        app.hooks_cursor,
        |offset, count| {
            shown[offset..offset + count]
                .iter()
                .map(|h| {
                    Row::new(vec![
                        Cell::from(phase_name(h.phase)),
                        Cell::from(h.priority.to_string()),
                        Cell::from(clip(&h.name, 30)),
                        Cell::from(hook_kind(h).map_or("?", |k| k.label())),
                        Cell::from(Span::styled(
                            if h.enabled { "on" } else { "off" },
                            if h.enabled { theme.ok() } else { theme.dim() },
                        )),
                        Cell::from(app.describe_filter(h.filter.as_ref())),
                    ])
                })
                .collect()
        },
    );
    let Some(h) = app.selected_hook() else {
        draw_detail(frame, app, theme, areas.detail, " Hook ".into(), vec![]);
        return;
    };
    let field = |label: &str, value: String| {
        Line::from(vec![
            Span::styled(format!("{label:<14}"), theme.dim()),
            Span::raw(value),
        ])
    };
    let mut lines = vec![
        field(
            "Kind",
            hook_kind(h).map_or("?".to_owned(), |k| k.label().to_owned()),
        ),
        field(
            "Runs",
            format!(
                "{} the call, priority {}, within {} ms{}",
                phase_name(h.phase),
                h.priority,
                h.timeout_ms,
                if h.enabled { "" } else { " (disabled)" }
            ),
        ),
        field("Applies to", app.describe_filter(h.filter.as_ref())),
    ];
    for (label, value) in describe_config(h.config.as_ref()) {
        lines.push(field(&label, value));
    }
    lines.push(field(
        "Changed",
        format!(
            "{} (revision {})",
            when(h.updated_at.as_ref(), "-"),
            h.revision
        ),
    ));
    lines.push(Line::default());
    match &app.hook_test {
        None => lines.push(Line::from(Span::styled(
            "t tries it on a sample call (dry run) · e edit · Space on/off · D delete",
            theme.dim(),
        ))),
        Some(Loadable::Loading) => lines.push(Line::from(Span::styled("Dry run…", theme.dim()))),
        Some(Loadable::Failed(message)) => lines.push(Line::from(Span::styled(
            format!("✗ Dry run failed: {message}"),
            theme.error(),
        ))),
        Some(Loadable::Ready(test)) => {
            lines.push(Line::from(Span::styled("Dry run", theme.heading())));
            lines.push(field(
                "Filter",
                if test.matches {
                    "matches the sample call".into()
                } else {
                    "does not match: the hook would not run".into()
                },
            ));
            let outcome = hook_outcome_name(test.outcome);
            let style = match v1::HookOutcome::try_from(test.outcome) {
                Ok(v1::HookOutcome::Allowed) => theme.ok(),
                Ok(v1::HookOutcome::Mutated) => theme.warn(),
                _ => theme.error(),
            };
            lines.push(Line::from(vec![
                Span::styled(format!("{:<14}", "Outcome"), theme.dim()),
                Span::styled(outcome, style),
            ]));
            if !test.reason.is_empty() {
                lines.push(field("Reason", test.reason.clone()));
            }
            if !test.redactions.is_empty() {
                let mut counts: Vec<String> = test
                    .redactions
                    .iter()
                    .map(|(what, n)| format!("{what}: {n}"))
                    .collect();
                counts.sort();
                lines.push(field("Redacted", counts.join(", ")));
            }
            if !test.output_json.is_empty() {
                lines.push(Line::from(Span::styled("Output:", theme.dim())));
                for line in pretty_json(&test.output_json).lines() {
                    lines.push(Line::from(Span::styled(line.to_owned(), theme.accent())));
                }
            }
        }
    }
    draw_detail(
        frame,
        app,
        theme,
        areas.detail,
        format!(" {} ", h.name),
        lines,
    );
}
