//! The views: draw the [`App`] into a ratatui frame. One file per screen;
//! this file draws what they share (tabs, status line, footer, overlays).
//! Views read state only: no IO, no mutation.

mod approvals;
mod audit;
mod clients;
mod hooks;
mod overlay;
mod servers;
mod settings;
mod tools;
mod toolsets;
mod users;

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, Wrap};

use crate::keymap;
use crate::state::{App, Cursor, Link, Loadable, Screen, StatusKind};

/// Colours, or none: with `NO_COLOR` set every style is plain text plus
/// bold/reverse/dim, and nothing depends on colour (states are also words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    /// Whether colours are used.
    pub color: bool,
}

impl Theme {
    /// Colours unless the `NO_COLOR` environment variable is set and not
    /// empty (<https://no-color.org>).
    pub fn from_env() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self { color: !no_color }
    }

    fn fg(self, color: Color) -> Style {
        if self.color {
            Style::default().fg(color)
        } else {
            Style::default()
        }
    }

    /// The selected row.
    pub fn selected(self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    /// Headings and labels.
    pub fn heading(self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }

    /// Secondary text.
    pub fn dim(self) -> Style {
        if self.color {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default().add_modifier(Modifier::DIM)
        }
    }

    /// Errors.
    pub fn error(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    /// Good news.
    pub fn ok(self) -> Style {
        self.fg(Color::Green)
    }

    /// Needs attention.
    pub fn warn(self) -> Style {
        self.fg(Color::Yellow)
    }

    /// Highlighted values (URLs to copy, keys).
    pub fn accent(self) -> Style {
        self.fg(Color::Cyan)
    }
}

/// Draws the whole console.
pub fn draw(frame: &mut Frame, app: &App, theme: Theme) {
    let areas = app.areas();
    draw_tabs(frame, app, theme, areas.tabs);
    match app.screen {
        Screen::Servers => servers::draw(frame, app, theme, &areas),
        Screen::Tools => tools::draw(frame, app, theme, &areas),
        Screen::Toolsets => toolsets::draw_toolsets(frame, app, theme, &areas),
        Screen::Profiles => toolsets::draw_profiles(frame, app, theme, &areas),
        Screen::Users => users::draw(frame, app, theme, &areas),
        Screen::Audit => audit::draw(frame, app, theme, &areas),
        Screen::Settings => settings::draw(frame, app, theme, &areas),
        Screen::Clients => clients::draw(frame, app, theme, &areas),
        Screen::Requests => approvals::draw_requests(frame, app, theme, &areas),
        Screen::HeldCalls => approvals::draw_held(frame, app, theme, &areas),
        Screen::Hooks => hooks::draw(frame, app, theme, &areas),
    }
    draw_status(frame, app, theme, areas.status);
    draw_footer(frame, app, theme, areas.footer);
    overlay::draw(frame, app, theme);
}

fn draw_tabs(frame: &mut Frame, app: &App, theme: Theme, area: Rect) {
    let tabs = app.tabs();
    let mut spans = Vec::new();
    if tabs.product {
        spans.push(Span::styled(" toolgate ", theme.heading()));
        spans.push(Span::styled("│", theme.dim()));
    }
    let tabs_end = tabs.end();
    for (screen, label, _, _) in tabs.tabs {
        let style = if screen == app.screen {
            theme.selected().add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        };
        spans.push(Span::styled(label, style));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
    // Right-aligned: the kill switch when it is on (it stops every AI
    // client, so it shows on every screen), then the connection; the tabs
    // shrink first so both are read in full (README: "MCP TRAFFIC OFF",
    // "✗ daemon unreachable"); a healthy link shrinks to its glyph.
    let style = match &app.link {
        Link::Connecting => theme.dim(),
        Link::Up => theme.ok(),
        Link::Down(_) | Link::Refused(_) => theme.error(),
    };
    let off = if app.traffic_off() {
        App::TRAFFIC_OFF
    } else {
        ""
    };
    let (short, long) = app.link_labels();
    let room = area.width.saturating_sub(tabs_end);
    let width = |a: &str, b: &str| (a.chars().count() + b.chars().count()) as u16;
    let link = if width(off, &long) <= room {
        long
    } else {
        short
    };
    let total = width(off, &link);
    if total <= room {
        let right = Rect::new(area.right() - total, area.y, total, 1);
        let spans = vec![
            Span::styled(off, theme.error().add_modifier(Modifier::REVERSED)),
            Span::styled(link, style),
        ];
        frame.render_widget(Paragraph::new(Line::from(spans)), right);
    }
}

fn draw_status(frame: &mut Frame, app: &App, theme: Theme, area: Rect) {
    let line = if let Some(input) = &app.searching {
        Line::from(vec![
            Span::styled("/", theme.accent()),
            Span::raw(input.value().to_owned()),
            Span::styled("▏", theme.accent()),
            Span::styled("  Enter keep · Esc clear", theme.dim()),
        ])
    } else {
        match app.status_line() {
            Some((text, StatusKind::Error)) => Line::from(Span::styled(text, theme.error())),
            Some((text, StatusKind::Info)) => Line::from(Span::raw(text)),
            Some((text, StatusKind::Hint)) => Line::from(Span::styled(text, theme.dim())),
            None => Line::default(),
        }
    };
    // A long message wraps onto the rows the layout gave it.
    frame.render_widget(Paragraph::new(line).wrap(Wrap { trim: false }), area);
}

fn draw_footer(frame: &mut Frame, app: &App, theme: Theme, area: Rect) {
    let hints: Vec<(&str, &str)> = if app.overlay.is_some() {
        overlay::hints(app)
    } else if app.searching.is_some() {
        vec![("type", "filter"), ("Enter", "keep"), ("Esc", "clear")]
    } else {
        // Help first: a narrow terminal drops hints from the end.
        std::iter::once(("?", "help"))
            .chain(
                keymap::screen(app.screen)
                    .iter()
                    .chain(keymap::GLOBAL)
                    .filter(|b| b.footer && b.intent != keymap::Intent::Help)
                    .map(|b| (b.label, b.help)),
            )
            .collect()
    };
    // Whole hints only: one that does not fit is left out, not cut in two
    // (`?` lists them all).
    let mut spans = Vec::new();
    let mut used = 0;
    for (key, help) in hints {
        let key = format!(" {key}");
        let help = format!(" {help} ");
        let width = key.chars().count() + help.chars().count();
        if used + width > usize::from(area.width) + 1 {
            break;
        }
        used += width;
        spans.push(Span::styled(key, theme.accent()));
        spans.push(Span::raw(help));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// A list title: ` Name: 12 ` or, while a `/` filter hides rows,
/// ` Name: 3 of 12 · /text `; just ` Name ` until the list has loaded
/// (`total` None), so a failed load never reads as an empty list.
pub fn count_title(app: &App, name: &str, shown: usize, total: Option<usize>) -> String {
    let Some(total) = total else {
        return format!(" {name} ");
    };
    match app.search.get(&app.screen).filter(|s| !s.trim().is_empty()) {
        Some(text) => format!(" {name}: {shown} of {total} · /{text} "),
        None => format!(" {name}: {total} "),
    }
}

/// A time as `YYYY-MM-DD HH:MM` UTC, or `none` when unset.
pub fn when(time: Option<&prost_types::Timestamp>, none: &str) -> String {
    when_as(time, "%Y-%m-%d %H:%M", none)
}

/// A time in a chrono `format` (UTC), or `none` when unset.
pub fn when_as(time: Option<&prost_types::Timestamp>, format: &str, none: &str) -> String {
    time.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map(|t| t.format(format).to_string())
        .unwrap_or_else(|| none.to_owned())
}

/// A bordered block with a title.
pub fn block(title: impl Into<Line<'static>>) -> Block<'static> {
    Block::default().borders(Borders::ALL).title(title.into())
}

/// Draws the list part of a screen: a loading, error or empty message, or
/// the table rows visible at the cursor. `rows` builds only the visible
/// rows (from index `offset`, `count` of them), so long lists cost what
/// the screen shows.
#[allow(clippy::too_many_arguments)]
pub fn draw_list<T>(
    frame: &mut Frame,
    theme: Theme,
    area: Rect,
    title: String,
    state: &Loadable<T>,
    len: usize,
    empty: &str,
    header: Vec<&'static str>,
    widths: Vec<Constraint>,
    cursor: Cursor,
    rows: impl FnOnce(usize, usize) -> Vec<Row<'static>>,
) {
    if area.height == 0 {
        return;
    }
    let block = block(title);
    match state {
        Loadable::Loading => message(frame, block, area, "Loading…", theme.dim()),
        Loadable::Failed(error) => message(
            frame,
            block,
            area,
            &format!("✗ Could not load: {error}\n\nPress r to retry."),
            theme.error(),
        ),
        Loadable::Ready(_) if len == 0 => message(frame, block, area, empty, theme.dim()),
        Loadable::Ready(_) => {
            let visible = usize::from(area.height.saturating_sub(3));
            let offset = cursor.offset.min(len.saturating_sub(1));
            let count = visible.min(len - offset);
            let body: Vec<Row> = rows(offset, count)
                .into_iter()
                .enumerate()
                .map(|(i, row)| {
                    if offset + i == cursor.selected {
                        row.style(theme.selected())
                    } else {
                        row
                    }
                })
                .collect();
            let header = Row::new(header.into_iter().map(Cell::from)).style(theme.heading());
            let table = Table::new(body, widths).header(header).block(block);
            frame.render_widget(table, area);
        }
    }
}

fn message(frame: &mut Frame, block: Block<'static>, area: Rect, text: &str, style: Style) {
    frame.render_widget(
        Paragraph::new(text.to_owned())
            .style(style)
            .wrap(Wrap { trim: false })
            .alignment(Alignment::Left)
            .block(block),
        area,
    );
}

/// Draws a detail pane of labelled lines, wrapped, scrolled down by
/// `app.detail_scroll` rows (`J`/`K`, or the wheel over it). When the lines
/// do not fit, the bottom border says which rows show and how to scroll;
/// the draw records how far the pane can scroll in `app.detail_max`.
pub fn draw_detail(
    frame: &mut Frame,
    app: &App,
    theme: Theme,
    area: Rect,
    title: String,
    lines: Vec<Line<'static>>,
) {
    if area.height == 0 {
        return;
    }
    let paragraph = Paragraph::new(lines).wrap(Wrap { trim: false });
    let inner = usize::from(area.height.saturating_sub(2));
    let total = paragraph.line_count(area.width.saturating_sub(2));
    let max = total.saturating_sub(inner);
    app.detail_max.set(max);
    let scroll = app.detail_scroll.min(max);
    let mut block = block(title);
    if max > 0 {
        block = block.title_bottom(
            Line::from(Span::styled(
                format!(
                    " rows {}-{} of {total} · J/K scroll ",
                    scroll + 1,
                    (scroll + inner).min(total)
                ),
                theme.dim(),
            ))
            .right_aligned(),
        );
    }
    frame.render_widget(
        paragraph
            .scroll((u16::try_from(scroll).unwrap_or(u16::MAX), 0))
            .block(block),
        area,
    );
}

/// A `label: value` line.
pub fn field(theme: Theme, label: &str, value: impl Into<String>) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{label}: "), theme.heading()),
        Span::raw(value.into()),
    ])
}

/// Cuts `text` to `max` characters with an ellipsis.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}
