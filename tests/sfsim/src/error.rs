//! REST and OAuth error responses in Salesforce's shapes.
//!
//! REST errors are a JSON array of `{message, errorCode, fields?}`; OAuth
//! errors are `{error, error_description}` (Salesforce REST API Developer
//! Guide, "Status Codes and Error Responses"; Salesforce Help, "OAuth
//! Endpoints").

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A REST API error.
#[derive(Debug, Clone, PartialEq)]
pub struct RestError {
    /// HTTP status.
    pub status: StatusCode,
    /// Salesforce `errorCode`, e.g. `INVALID_FIELD`.
    pub code: &'static str,
    /// Salesforce `message`.
    pub message: String,
    /// The `fields` array, when Salesforce sends one.
    pub fields: Option<Vec<String>>,
}

impl RestError {
    /// An error with no `fields`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: None,
        }
    }

    /// The same error with a `fields` array.
    pub fn with_fields(mut self, fields: Vec<String>) -> Self {
        self.fields = Some(fields);
        self
    }

    /// 404 `NOT_FOUND`, "The requested resource does not exist".
    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        )
    }

    /// 401 `INVALID_SESSION_ID`.
    pub fn invalid_session() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        )
    }

    /// 400 `INSUFFICIENT_ACCESS_OR_READONLY` (a read-only user's write).
    pub fn read_only() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "INSUFFICIENT_ACCESS_OR_READONLY",
            "insufficient access rights on object id",
        )
        .with_fields(vec![])
    }

    /// 400 `JSON_PARSER_ERROR`.
    pub fn json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR", message)
    }
}

impl From<crate::soql::SoqlError> for RestError {
    fn from(e: crate::soql::SoqlError) -> Self {
        Self::new(StatusCode::BAD_REQUEST, e.error_code, e.message)
    }
}

impl RestError {
    /// The response body: `[{"message": .., "errorCode": .., "fields"?: ..}]`.
    pub fn body(&self) -> Value {
        let mut body = json!({"message": self.message, "errorCode": self.code});
        if let Some(fields) = &self.fields {
            body["fields"] = json!(fields);
        }
        json!([body])
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

/// An OAuth token-endpoint error: HTTP 400 (401 for `invalid_client`
/// would also be plausible; Salesforce answers 400).
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthError {
    /// `error`, e.g. `invalid_grant`.
    pub error: &'static str,
    /// `error_description`.
    pub description: &'static str,
}

impl OAuthError {
    /// Builds an error.
    pub fn new(error: &'static str, description: &'static str) -> Self {
        Self { error, description }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": self.error, "error_description": self.description})),
        )
            .into_response()
    }
}
