//! The SOQL subset: a winnow lexer and parser, a resolver that checks names
//! against the [`Schema`](crate::schema::Schema), and an evaluator over a
//! [`DataSource`].
//!
//! Semantics follow the Salesforce "SOQL and SOSL Reference": keywords and
//! names are case-insensitive, text comparison is case-insensitive, date
//! literals are ranges, `!=` and `NOT IN` match nulls, and anything outside
//! the subset is a `MALFORMED_QUERY` rather than a wrong answer.
//!
//! Module map: [`lexer`] (tokens with positions), `ast`, `parser`
//! (winnow over tokens), `resolve` (names and types, error messages),
//! `eval` (filter, sort, project), `aggregate` (GROUP BY), `dates`
//! (date keywords), `error`, and `search` (SOSL term matching, used by
//! [`crate::sosl`]).

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::record::DataSource;

mod aggregate;
pub(crate) mod ast;
mod dates;
mod error;
mod eval;
pub(crate) mod lexer;
pub(crate) mod parser;
pub(crate) mod resolve;
pub(crate) mod search;

#[cfg(test)]
pub(crate) mod fixture;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_compare;
#[cfg(test)]
mod tests_errors;
#[cfg(test)]
mod tests_sosl;

pub(crate) use error::unexpected;
pub(crate) use eval::Ctx;

/// Evaluation context. `today`/`now` are injected for deterministic tests
/// (UTC).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryOptions {
    /// Include records in the recycle bin (`queryAll`).
    pub include_deleted: bool,
    /// The API version of the request, e.g. `66.0` (used in record urls).
    pub api_version: String,
    /// The current instant; date keywords (`TODAY`, ...) are relative to it.
    pub now: DateTime<Utc>,
}

impl Default for QueryOptions {
    /// Not deleted, version `66.0`, the wall clock's now.
    fn default() -> Self {
        Self {
            include_deleted: false,
            api_version: "66.0".into(),
            now: Utc::now(),
        }
    }
}

/// A full (unpaged) result. For `SELECT COUNT() FROM ...`, `total_size` is
/// the count and `records` is empty.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// The number of rows (or the `COUNT()`).
    pub total_size: usize,
    /// The rows, each a JSON object starting with `attributes`.
    pub records: Vec<Value>,
}

/// A query or search error: `errorCode` and `message`; the REST layer
/// answers it as a 400 [`RestError`](crate::error::RestError).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{error_code}: {message}")]
pub struct SoqlError {
    /// The `errorCode`, e.g. `MALFORMED_QUERY`.
    pub error_code: &'static str,
    /// The `message`, exactly as Salesforce words it.
    pub message: String,
}

impl SoqlError {
    /// An error with this code and message.
    pub fn new(error_code: &'static str, message: impl Into<String>) -> Self {
        Self {
            error_code,
            message: message.into(),
        }
    }
}

/// Runs `soql` against `source` and returns every row (the REST layer
/// pages them).
pub fn query(
    source: &dyn DataSource,
    soql: &str,
    options: &QueryOptions,
) -> Result<QueryResult, SoqlError> {
    const MALFORMED: &str = "MALFORMED_QUERY";
    let tokens = lexer::lex(soql, 0).map_err(|e| SoqlError::new(MALFORMED, e))?;
    let ast = parser::run(&tokens, parser::top_query)
        .map_err(|failure| failure.error(soql, &tokens, MALFORMED))?;
    let resolver = resolve::Resolver {
        schema: source.schema(),
        src: Some(soql),
        today: options.now.date_naive(),
        malformed: MALFORMED,
    };
    let plan = resolver.plan(&ast)?;
    Ok(Ctx { source, options }.execute(&plan))
}
