//! toolgate's daemon, `toolgated`: a self-hosted MCP gateway that governs
//! what AI clients may do in Salesforce, with a gRPC control plane.
//!
//! Module map:
//! - [`config`]: flags, environment and TOML file merged into a validated config.
//! - [`telemetry`]: logging setup.
//! - [`app`]: wiring, listeners, graceful shutdown.
//! - [`healthcheck`]: `toolgated --health-check`, the probe container health checks run.
//! - [`audit`]: the typed list of audited actions.
//! - [`authz`]: the OAuth 2.1 authorization server of `/mcp`: metadata, authorize, consent, token, client registration, browser sign-in.
//! - [`store`]: stored state behind one interface, on the embedded store (sled) or PostgreSQL (the only module naming either).
//! - [`crypto`]: the master key, sealing secrets at rest, bearer tokens.
//! - [`model`]: domain types (servers, tools, toolsets, profiles, users, audit).
//! - [`catalog`]: built-in server kinds and their tool definitions (data).
//! - [`discovery`]: reconciling offered tools with known ones (drift, removal).
//! - [`access_requests`]: access requests: opening, approving into just-in-time grants, denying, expiring.
//! - [`governance`]: the pure policy deciding who may see and call which tool.
//! - [`hooks`]: tool-call hooks: built-in and webhook checks and rewrites before and after a call.
//! - [`control`]: the `toolgate.v1` gRPC services and admin authentication.
//! - [`salesforce`]: the Salesforce REST client and the hosted Salesforce tools.
//! - [`http`]: the public HTTP router: MCP, the OAuth connect and callback pages, health.
//! - [`listener`]: the public listener's accept loop: connection cap, header-read and idle timeouts.
//! - [`mcp`]: the MCP server at `/mcp`: authentication, tools/list, tools/call, notifications.
//! - [`metrics`]: Prometheus metrics: names, the global recorder, the `/metrics` listener.
//! - [`oauth`]: per-user Salesforce OAuth: connect links, callback, connections, refresh.

pub mod access_requests;
pub mod app;
pub mod audit;
pub mod audit_export;
pub mod audit_retention;
pub mod authz;
pub mod catalog;
pub mod config;
pub mod control;
pub mod crypto;
pub mod discovery;
pub mod governance;
pub mod healthcheck;
pub mod hooks;
pub mod http;
pub mod limits;
pub mod listener;
pub mod mcp;
pub mod metrics;
pub mod model;
pub mod oauth;
pub mod salesforce;
pub mod store;
pub mod telemetry;
