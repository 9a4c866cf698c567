//! `toolgate`, the admin console: a terminal UI over the toolgated control
//! API (gRPC), for the whole admin job — servers and their credentials,
//! the tool review queue, toolsets, access profiles, users and their
//! tokens, the live audit log, and the gateway settings.
//!
//! Structure (after the ratatui apps named in STYLE.md):
//! - [`cli`]: flags and where the admin token comes from.
//! - [`client`]: the gRPC clients (lazy channel, admin token interceptor).
//! - [`action`]: the data that flows — actions in, requests to the worker,
//!   replies back, effects for the terminal.
//! - [`state`]: the pure model and its update step (no IO).
//! - [`keymap`]: the keys, as data (drives the update step, the footer and
//!   the `?` help).
//! - [`layout`]: screen geometry shared by views and mouse hit-testing.
//! - [`worker`]: owns the clients; runs each request as its own task.
//! - [`ui`]: one view per screen, drawn from state.
//! - [`terminal`]: terminal setup/restore and the event loop.

pub mod action;
pub mod cli;
pub mod client;
pub mod keymap;
pub mod layout;
pub mod state;
pub mod terminal;
pub mod ui;
pub mod worker;
