//! sfsim: a Salesforce org simulator for toolgate's tests and demo.
//!
//! Module map:
//! - [`schema`]: sObject metadata in describe shapes.
//! - [`ids`]: 15/18-character record Ids and their checksum.
//! - [`record`]: records and the read-only data view queries run against.
//! - [`soql`]: the SOQL subset (parser and evaluator).
//! - [`sosl`]: the SOSL subset and parameterized search.
//! - [`config`]: the org, its connected app and users, and options.
//! - [`seed`]: the seeded schema and data.
//! - [`state`]: the mutable org: records, tokens, cursors, faults, counters.
//! - [`oauth`]: the login host (authorize, token, revoke, userinfo, identity).
//! - [`rest`]: the REST API on the instance URL.
//! - [`versions`]: the API versions served (31.0 through the current one).
//! - [`paging`]: the query endpoints and their cursors.
//! - [`writes`]: record create, update, delete and upsert with validation.
//! - [`admin`]: the `/_sfsim/` test-control endpoints.
//! - [`server`]: listeners, routes, start and stop; 404 and 405 bodies.
//! - [`error`]: REST and OAuth error bodies.

pub mod admin;
pub mod config;
pub mod error;
pub mod ids;
pub mod oauth;
pub mod paging;
pub mod record;
pub mod rest;
pub mod schema;
pub mod seed;
pub mod server;
pub mod soql;
pub mod sosl;
pub mod state;
pub mod versions;
pub mod writes;

pub use config::SimConfig;
pub use server::{Running, start};
