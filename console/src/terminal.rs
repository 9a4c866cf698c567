//! The terminal loop: set the terminal up (alternate screen, raw mode,
//! mouse, bracketed paste), restore it on exit, on Ctrl-C, on SIGTERM and on
//! panic, and shuttle events between crossterm, the update step, the worker
//! and the views.

use std::io::Write;

use anyhow::Context;
use base64::Engine;
use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture, Event,
    EventStream,
};
use crossterm::execute;
use futures_util::StreamExt;
use ratatui::DefaultTerminal;
use ratatui::layout::Rect;
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use crate::action::{Action, Effect, Pasted};
use crate::cli::{self, Args};
use crate::client::{self, AdminToken, Clients};
use crate::state::App;
use crate::ui::{self, Theme};
use crate::worker::Worker;

/// Replies handled per frame at most, so a flood of audit events cannot
/// starve the keyboard.
const BATCH: usize = 256;

/// Runs the console until the user quits.
///
/// Errors: no admin token, a malformed `--grpc-addr`, or a terminal that
/// cannot be set up. A daemon that is down is not an error: the console
/// shows it and retries on `r`.
pub async fn run(mut args: Args) -> anyhow::Result<()> {
    let token = cli::resolve_token(
        args.token.take().map(Zeroizing::new),
        std::env::var("TOOLGATE_ADMIN_TOKEN")
            .ok()
            .map(Zeroizing::new),
        args.data_dir.as_deref(),
    )?;
    let actor = args.actor.clone().or_else(|| std::env::var("USER").ok());
    let mut auth = AdminToken::new(&token)?;
    if let Some(actor) = &actor {
        auth = auth.with_actor_lossy(actor);
    }
    drop(token);
    let clients = client::connect(&args.grpc_addr, auth)?;
    let theme = Theme::from_env();

    let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
    install_panic_hook();
    let _ = execute!(std::io::stdout(), EnableMouseCapture, EnableBracketedPaste);
    let result = event_loop(&mut terminal, clients, theme, &args.grpc_addr).await;
    restore();
    result
}

/// Leaves the alternate screen and raw mode and stops mouse capture.
fn restore() {
    let _ = execute!(
        std::io::stdout(),
        DisableMouseCapture,
        DisableBracketedPaste
    );
    ratatui::restore();
}

/// Adds mouse and paste cleanup in front of ratatui's panic hook (which
/// restores the screen and raw mode, then reports the panic).
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = execute!(
            std::io::stdout(),
            DisableMouseCapture,
            DisableBracketedPaste
        );
        previous(info);
    }));
}

fn to_action(event: Event) -> Option<Action> {
    match event {
        Event::Key(key) => Some(Action::Key(key)),
        Event::Mouse(mouse) => Some(Action::Mouse(mouse)),
        Event::Paste(text) => Some(Action::Paste(Pasted(text.into()))),
        Event::Resize(w, h) => Some(Action::Resize(w, h)),
        _ => None,
    }
}

async fn event_loop(
    terminal: &mut DefaultTerminal,
    clients: Clients,
    theme: Theme,
    addr: &str,
) -> anyhow::Result<()> {
    let (tx, mut rx) = mpsc::channel::<Action>(1024);
    let worker = Worker::start(clients, tx);
    let size = terminal.size()?;
    let mut app = App::new(addr, Rect::new(0, 0, size.width, size.height));
    let mut events = EventStream::new();
    let mut terminate = signal(tokio::signal::unix::SignalKind::terminate());
    let mut hangup = signal(tokio::signal::unix::SignalKind::hangup());
    // Ctrl-C arrives as a key in raw mode; SIGINT from `kill -INT` does not.
    let mut interrupt = signal(tokio::signal::unix::SignalKind::interrupt());
    let mut retry = tokio::time::interval(crate::action::RETRY_EVERY);
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    retry.tick().await;
    loop {
        for request in app.take_requests() {
            worker.send(request);
        }
        for effect in app.take_effects() {
            apply(effect);
        }
        if app.quit {
            return Ok(());
        }
        terminal.draw(|frame| ui::draw(frame, &app, theme))?;
        let action = tokio::select! {
            event = events.next() => match event {
                Some(Ok(event)) => to_action(event),
                Some(Err(err)) => return Err(err).context("cannot read terminal input"),
                None => return Ok(()),
            },
            Some(action) = rx.recv() => Some(action),
            _ = retry.tick() => Some(Action::Tick),
            _ = terminate.recv() => return Ok(()),
            _ = hangup.recv() => return Ok(()),
            _ = interrupt.recv() => return Ok(()),
        };
        if let Some(action) = action {
            app.update(action);
        }
        for _ in 0..BATCH {
            match rx.try_recv() {
                Ok(action) => app.update(action),
                Err(_) => break,
            }
        }
    }
}

fn signal(kind: tokio::signal::unix::SignalKind) -> tokio::signal::unix::Signal {
    tokio::signal::unix::signal(kind).expect("signal handlers can be installed")
}

/// Carries out an effect on the real terminal.
fn apply(effect: Effect) {
    match effect {
        Effect::Copy(text) => {
            let encoded = zeroize::Zeroizing::new(
                base64::engine::general_purpose::STANDARD.encode(text.as_bytes()),
            );
            let mut out = std::io::stdout();
            let _ = write!(out, "\x1b]52;c;{}\x07", encoded.as_str());
            let _ = out.flush();
        }
    }
}
