//! Overlays: help (drawn from the keymap), the `:` palette, forms,
//! confirmations, pickers and the once-shown MCP token.

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use super::{Theme, block};
use crate::keymap::{self, Binding};
use crate::state::{
    AccessPreview, App, Confirm, FieldKind, Form, Loadable, Overlay, PALETTE_NAMES, Picker,
    claude_config_line,
};

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    )
}

/// How many rows `lines` take wrapped (as [`Paragraph`] with
/// `Wrap { trim: false }` draws them) in `width` columns: the one measure
/// forms and confirmations size their boxes by.
fn wrapped_rows(lines: &[Line<'_>], width: u16) -> usize {
    Paragraph::new(lines.to_vec())
        .wrap(Wrap { trim: false })
        .line_count(width.max(1))
}

/// The footer hints while an overlay is open.
pub(super) fn hints(app: &App) -> Vec<(&'static str, &'static str)> {
    match &app.overlay {
        Some(Overlay::Help(_)) => vec![("j/k", "scroll"), ("Esc", "close")],
        Some(Overlay::Palette(_)) => vec![("Enter", "go"), ("Esc", "cancel")],
        Some(Overlay::Form(_)) => vec![
            ("Tab/↓", "next field"),
            ("←/→", "choose"),
            ("Enter", "save"),
            ("Esc", "cancel"),
        ],
        Some(Overlay::Confirm(_)) => vec![("y", "confirm"), ("n/Esc", "cancel")],
        Some(Overlay::Picker(p)) if p.multi => vec![
            ("type", "filter"),
            ("↑/↓", "move"),
            ("Space", "check"),
            ("Enter", "save"),
            ("Esc", "cancel"),
        ],
        Some(Overlay::Picker(_)) => vec![
            ("type", "filter"),
            ("↑/↓", "move"),
            ("Enter", "choose"),
            ("Esc", "cancel"),
        ],
        Some(Overlay::Token(_)) => vec![("y", "copy the claude line"), ("Esc", "close")],
        Some(Overlay::SignInLink(_)) => vec![("y", "copy the link"), ("Esc", "close")],
        None => vec![],
    }
}

pub(super) fn draw(frame: &mut Frame, app: &App, theme: Theme) {
    let area = frame.area();
    match &app.overlay {
        None => {}
        Some(Overlay::Help(scroll)) => draw_help(frame, app, theme, area, *scroll),
        Some(Overlay::Palette(input)) => {
            let rect = Rect::new(area.x, area.bottom().saturating_sub(5), area.width, 3);
            let typed = input.value().trim().to_lowercase();
            let matches: Vec<&str> = PALETTE_NAMES
                .into_iter()
                .filter(|n| n.starts_with(&typed))
                .collect();
            frame.render_widget(Clear, rect);
            frame.render_widget(
                Paragraph::new(Line::from(vec![
                    Span::styled(":", theme.accent()),
                    Span::raw(input.value().to_owned()),
                    Span::styled(format!("   {}", matches.join("  ")), theme.dim()),
                ]))
                .block(block(" Go to screen ")),
                rect,
            );
            let x = rect.x + 2 + input.visual_cursor() as u16;
            frame.set_cursor_position(Position::new(
                x.min(rect.right().saturating_sub(2)),
                rect.y + 1,
            ));
        }
        Some(Overlay::Form(form)) => draw_form(frame, theme, area, form),
        Some(Overlay::Confirm(confirm)) => {
            draw_confirm(frame, theme, area, confirm, app.preview.as_ref());
        }
        Some(Overlay::Picker(picker)) => draw_picker(frame, theme, area, picker),
        Some(Overlay::SignInLink(link)) => {
            let rect = centered(area, area.width.saturating_sub(4).min(110), 12);
            let lines = vec![
                Line::from(Span::styled(
                    "Give this link to the user only: it signs its holder in as them, once.",
                    theme.warn(),
                )),
                Line::default(),
                Line::from(vec![
                    Span::styled("Link:    ", theme.heading()),
                    Span::styled(link.url.as_str(), theme.accent()),
                ]),
                Line::from(vec![
                    Span::styled("Expires: ", theme.heading()),
                    Span::raw(link.expires_at.as_str()),
                ]),
                Line::default(),
                Line::from(Span::styled(
                    "They add the MCP URL to a client that signs in, open this link in the browser the client opens (or paste its code on the sign-in page), and allow the client.",
                    theme.dim(),
                )),
            ];
            frame.render_widget(Clear, rect);
            frame.render_widget(
                Paragraph::new(lines)
                    .wrap(Wrap { trim: false })
                    .block(block(format!(" Sign-in link for {} ", link.email))),
                rect,
            );
        }
        Some(Overlay::Token(token)) => {
            let rect = centered(area, area.width.saturating_sub(4).min(110), 14);
            // Borrowed, not copied: the token stays in its wiped buffers.
            let line = claude_config_line(token);
            let lines = vec![
                Line::from(Span::styled(
                    "Copy it now: this token is shown once and cannot be shown again.",
                    theme.warn(),
                )),
                Line::default(),
                Line::from(vec![
                    Span::styled("Token:   ", theme.heading()),
                    Span::styled(token.secret.as_str(), theme.accent()),
                ]),
                Line::from(vec![
                    Span::styled("MCP URL: ", theme.heading()),
                    Span::raw(token.mcp_url.as_str()),
                ]),
                Line::default(),
                Line::from(Span::styled("Claude Code:", theme.heading())),
                Line::from(line.as_str()),
                Line::default(),
                Line::from(Span::styled(
                    "Other clients: streamable HTTP at the MCP URL with the header Authorization: Bearer <token>.",
                    theme.dim(),
                )),
            ];
            frame.render_widget(Clear, rect);
            frame.render_widget(
                Paragraph::new(lines)
                    .wrap(Wrap { trim: false })
                    .block(block(format!(" MCP token {} ", token.name))),
                rect,
            );
        }
    }
}

/// Width of the key column in the help overlay.
const KEY_WIDTH: usize = 9;

fn binding_lines(theme: Theme, title: &str, bindings: &[Binding]) -> Vec<Line<'static>> {
    let mut lines = vec![Line::from(Span::styled(title.to_owned(), theme.heading()))];
    lines.extend(bindings.iter().map(|b| {
        Line::from(vec![
            Span::styled(
                format!("  {:<w$}", b.label, w = KEY_WIDTH - 2),
                theme.accent(),
            ),
            Span::raw(b.help),
        ])
    }));
    lines
}

/// The help overlay: the current screen's keys, the global ones and a few
/// more. Side by side in two columns when one column would not fit (so
/// 80x24 shows everything), else one column; `j`/`k` scroll what still
/// does not fit, and the title says so.
fn draw_help(frame: &mut Frame, app: &App, theme: Theme, area: Rect, scroll: usize) {
    let mut left = binding_lines(
        theme,
        &format!("{} screen", app.screen.title()),
        keymap::screen(app.screen),
    );
    left.push(Line::default());
    left.push(Line::from(Span::styled("Also", theme.heading())));
    for (k, h) in [
        ("1-8", "go to screen by number"),
        ("Ctrl-C", "quit at once"),
        ("mouse", "click a tab or row; wheel"),
        ("forms", "Tab/↓ next, ←/→ choose,"),
        ("", "Enter saves, Esc cancels"),
    ] {
        left.push(Line::from(vec![
            Span::styled(format!("  {k:<w$}", w = KEY_WIDTH - 2), theme.accent()),
            Span::raw(h),
        ]));
    }
    let right = binding_lines(theme, "Everywhere", keymap::GLOBAL);
    let inner_rows = usize::from(area.height.saturating_sub(4));
    let widest = |lines: &[Line]| lines.iter().map(Line::width).max().unwrap_or(0);
    let (left_w, right_w) = (widest(&left), widest(&right));
    let one_column = left.len() + 1 + right.len();
    let two_columns = one_column > inner_rows
        && usize::from(area.width.saturating_sub(4)) >= left_w + 2 + right_w;
    let (width, rows) = if two_columns {
        (left_w + 2 + right_w + 2, left.len().max(right.len()))
    } else {
        (left_w.max(right_w).max(60) + 2, one_column)
    };
    let height = (rows + 2).min(usize::from(area.height.saturating_sub(2)));
    let rect = centered(
        area,
        u16::try_from(width).unwrap_or(u16::MAX),
        u16::try_from(height).unwrap_or(u16::MAX),
    );
    let visible = height.saturating_sub(2);
    let scroll = scroll.min(rows.saturating_sub(visible));
    let title = if rows > visible {
        " Keys (j/k scroll, Esc closes) "
    } else {
        " Keys (Esc closes) "
    };
    frame.render_widget(Clear, rect);
    let outer = block(title);
    let inner = outer.inner(rect);
    frame.render_widget(outer, rect);
    let offset = (u16::try_from(scroll).unwrap_or(u16::MAX), 0);
    if two_columns {
        let left_w = u16::try_from(left_w + 2)
            .unwrap_or(u16::MAX)
            .min(inner.width);
        let left_rect = Rect::new(inner.x, inner.y, left_w, inner.height);
        let right_rect = Rect::new(
            inner.x + left_w,
            inner.y,
            inner.width.saturating_sub(left_w),
            inner.height,
        );
        frame.render_widget(Paragraph::new(left).scroll(offset), left_rect);
        frame.render_widget(Paragraph::new(right).scroll(offset), right_rect);
    } else {
        let mut lines = left;
        lines.push(Line::default());
        lines.extend(right);
        frame.render_widget(Paragraph::new(lines).scroll(offset), inner);
    }
}

fn draw_form(frame: &mut Frame, theme: Theme, area: Rect, form: &Form) {
    let label_width = form
        .fields
        .iter()
        .map(|f| f.label.chars().count())
        .max()
        .unwrap_or(0)
        + 2;
    let mut lines: Vec<Line> = form
        .intro
        .iter()
        .map(|l| Line::from(Span::styled(l.clone(), theme.accent())))
        .collect();
    if !lines.is_empty() {
        lines.push(Line::default());
    }
    let mut cursor = None;
    for (i, field) in form.fields.iter().enumerate() {
        let focused = i == form.focus;
        let marker = if focused { "› " } else { "  " };
        let label = format!("{marker}{:<label_width$}", field.label);
        let label_style = if !field.enabled {
            theme.dim()
        } else if focused {
            theme.heading()
        } else {
            ratatui::style::Style::default()
        };
        let value = match &field.kind {
            FieldKind::Text(input) => {
                if focused {
                    cursor = Some((lines.len(), label.chars().count() + input.visual_cursor()));
                }
                input.value().to_owned()
            }
            FieldKind::Secret(value) => {
                let n = value.chars().count();
                if focused {
                    cursor = Some((lines.len(), label.chars().count() + n));
                }
                if n == 0 {
                    String::new()
                } else {
                    "•".repeat(n)
                }
            }
            FieldKind::Choice { options, selected } => options
                .get(*selected)
                .map(|(l, _)| format!("‹ {l} ›"))
                .unwrap_or_default(),
            FieldKind::Toggle(on) => if *on { "[x] yes" } else { "[ ] no" }.to_owned(),
        };
        let value = if field.enabled {
            value
        } else {
            "(not used)".to_owned()
        };
        lines.push(Line::from(vec![
            Span::styled(label, label_style),
            Span::raw(value),
        ]));
    }
    lines.push(Line::default());
    if let Some(field) = form.fields.get(form.focus) {
        lines.push(Line::from(Span::styled(field.help.clone(), theme.dim())));
    }
    if form.busy.is_some() {
        lines.push(Line::from(Span::styled("Saving…", theme.warn())));
    } else if let Some(error) = &form.error {
        lines.push(Line::from(Span::styled(
            format!("✗ {error}"),
            theme.error(),
        )));
    }
    let width = area.width.saturating_sub(4).min(96);
    // Room for wrapped lines too (a long error must not be cut off).
    let rows = wrapped_rows(&lines, width.saturating_sub(2));
    let height = u16::try_from(rows + 2).unwrap_or(u16::MAX).min(area.height);
    let rect = centered(area, width, height);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block(format!(" {} ", form.title))),
        rect,
    );
    if let Some((row, col)) = cursor
        && form.busy.is_none()
    {
        let x = (rect.x + 1 + col as u16).min(rect.right().saturating_sub(2));
        let y = rect.y + 1 + row as u16;
        if y < rect.bottom().saturating_sub(1) {
            frame.set_cursor_position(Position::new(x, y));
        }
    }
}

/// A confirmation, with the access preview of its change when there is
/// one (who gains or loses which tools, asked of the daemon). The box is
/// as tall as its wrapped text, at most the screen; a preview that does
/// not fit shows its first lines and "… and K more lines", and the y/n
/// line is always drawn on the box's last row.
fn draw_confirm(
    frame: &mut Frame,
    theme: Theme,
    area: Rect,
    confirm: &Confirm,
    preview: Option<&AccessPreview>,
) {
    let width = area.width.saturating_sub(4).min(90);
    let inner = width.saturating_sub(2);
    let mut lines: Vec<Line> = confirm
        .lines
        .iter()
        .map(|l| Line::from(l.clone()))
        .collect();
    if preview.is_some() && confirm.lines.last().is_some_and(|l| !l.is_empty()) {
        lines.push(Line::default());
    }
    let previewed: Vec<Line> = match preview.map(|p| &p.lines) {
        None => Vec::new(),
        Some(Loadable::Loading) => vec![Line::from(Span::styled(
            "Checking who gains access…",
            theme.dim(),
        ))],
        Some(Loadable::Ready(shown)) => shown
            .iter()
            .map(|l| {
                if l.starts_with("Profile ") && l.contains(" gain") {
                    Line::from(Span::styled(l.clone(), theme.warn()))
                } else {
                    Line::from(l.clone())
                }
            })
            .collect(),
        Some(Loadable::Failed(message)) => {
            vec![Line::from(Span::styled(message.clone(), theme.warn()))]
        }
    };
    // Rows inside the borders, less a blank row and the y/n row.
    let room = usize::from(area.height.saturating_sub(4));
    let budget = room.saturating_sub(wrapped_rows(&lines, inner));
    if wrapped_rows(&previewed, inner) <= budget {
        lines.extend(previewed);
    } else {
        // The "In all N users gain access." total stays visible.
        let mut previewed = previewed;
        let total = previewed
            .last()
            .filter(|l| l.to_string().starts_with("In all "))
            .cloned();
        if total.is_some() {
            previewed.pop();
        }
        let reserved = 1 + total
            .as_ref()
            .map_or(0, |t| wrapped_rows(std::slice::from_ref(t), inner));
        // Whole lines while they fit with the "… and K more" line.
        let mut used = 0;
        let mut taken = 0;
        for line in &previewed {
            let rows = wrapped_rows(std::slice::from_ref(line), inner);
            if used + rows + reserved > budget {
                break;
            }
            used += rows;
            taken += 1;
        }
        let more = previewed.len() - taken;
        lines.extend(previewed.into_iter().take(taken));
        let noun = if more == 1 { "line" } else { "lines" };
        lines.push(Line::from(Span::styled(
            format!("… and {more} more {noun}"),
            theme.dim(),
        )));
        lines.extend(total);
    }
    let body = wrapped_rows(&lines, inner).min(room);
    let height = u16::try_from(body + 4).unwrap_or(u16::MAX);
    let rect = centered(area, width, height);
    let frame_block = block(Span::styled(format!(" {}? ", confirm.title), theme.warn()));
    let inside = frame_block.inner(rect);
    frame.render_widget(Clear, rect);
    frame.render_widget(frame_block, rect);
    let answer_row = inside.height.saturating_sub(1);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }),
        Rect {
            height: answer_row.saturating_sub(1),
            ..inside
        },
    );
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(" y ", theme.selected()),
            Span::raw(" confirm    "),
            Span::styled(" n ", theme.selected()),
            Span::raw(" cancel"),
        ])),
        Rect {
            y: inside.y + answer_row,
            height: inside.height.min(1),
            ..inside
        },
    );
}

fn draw_picker(frame: &mut Frame, theme: Theme, area: Rect, picker: &Picker) {
    let rect = centered(
        area,
        area.width.saturating_sub(4).min(90),
        area.height.saturating_sub(4),
    );
    let shown = picker.shown();
    let mut lines = vec![
        Line::from(vec![
            Span::styled("filter: ", theme.dim()),
            Span::raw(picker.filter.value().to_owned()),
            Span::styled("▏", theme.accent()),
            Span::styled(
                format!("  {} of {}", shown.len(), picker.items.len()),
                theme.dim(),
            ),
        ]),
        Line::default(),
    ];
    let visible = usize::from(rect.height.saturating_sub(5));
    let offset = picker.cursor.offset.min(shown.len().saturating_sub(1));
    for (row, index) in shown.iter().enumerate().skip(offset).take(visible) {
        let item = &picker.items[*index];
        let check = if !picker.multi {
            ""
        } else if item.checked {
            "[x] "
        } else {
            "[ ] "
        };
        let changed = if item.checked != item.original {
            " *"
        } else {
            ""
        };
        let style = if row == picker.cursor.selected {
            theme.selected()
        } else {
            ratatui::style::Style::default()
        };
        lines.push(Line::from(Span::styled(
            format!("{check}{}{changed}", item.label),
            style,
        )));
    }
    if shown.is_empty() {
        lines.push(Line::from(Span::styled("nothing matches", theme.dim())));
    }
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).block(block(format!(" {} ", picker.title))),
        rect,
    );
}
