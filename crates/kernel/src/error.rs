//! Errors and their one table of stable codes.
//!
//! Every error the API can return has a stable machine code and an HTTP status, listed once in
//! [`error_codes!`]. API errors are `application/problem+json` (RFC 9457). A 5xx body never shows
//! internals: the detail of an internal error is logged, the client sees a generic message.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

macro_rules! error_codes {
    ($($variant:ident => $code:literal, $status:ident;)*) => {
        /// The stable error codes of the API; clients may match on them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Code { $($variant,)* }
        impl Code {
            /// The stable string form (`snake_case`).
            pub fn as_str(self) -> &'static str { match self { $(Code::$variant => $code,)* } }
            /// The HTTP status this code is returned with.
            pub fn status(self) -> StatusCode { match self { $(Code::$variant => StatusCode::$status,)* } }
            /// Every code, for the documentation and tests.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];
        }
    };
}

error_codes! {
    BadRequest => "bad_request", BAD_REQUEST;
    MalformedJson => "malformed_json", BAD_REQUEST;
    InvalidField => "invalid_field", UNPROCESSABLE_ENTITY;
    InvalidQuery => "invalid_query", BAD_REQUEST;
    InvalidPath => "invalid_path", BAD_REQUEST;
    UnsupportedMediaType => "unsupported_media_type", UNSUPPORTED_MEDIA_TYPE;
    PayloadTooLarge => "payload_too_large", PAYLOAD_TOO_LARGE;
    Unauthenticated => "unauthenticated", UNAUTHORIZED;
    InvalidCredentials => "invalid_credentials", UNAUTHORIZED;
    TotpRequired => "totp_required", UNAUTHORIZED;
    AccountLocked => "account_locked", FORBIDDEN;
    PasswordChangeRequired => "password_change_required", FORBIDDEN;
    TotpSetupRequired => "totp_setup_required", FORBIDDEN;
    WeakPassword => "weak_password", UNPROCESSABLE_ENTITY;
    Forbidden => "forbidden", FORBIDDEN;
    TokenScope => "token_scope", FORBIDDEN;
    NotFound => "not_found", NOT_FOUND;
    MethodNotAllowed => "method_not_allowed", METHOD_NOT_ALLOWED;
    Conflict => "conflict", CONFLICT;
    StoreUnavailable => "store_unavailable", SERVICE_UNAVAILABLE;
    Internal => "internal", INTERNAL_SERVER_ERROR;
}

/// An error as the API reports it.
#[derive(Debug, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    /// The field or parameter at fault, when there is one.
    pub field: Option<String>,
    /// The refusal is already in the audit log (with a more specific action than the generic
    /// record the HTTP layer would write).
    pub audited: bool,
}

/// Marks a response whose refusal was audited by the handler itself.
#[derive(Debug, Clone, Copy)]
pub struct AlreadyAudited;

/// The problem document (RFC 9457) every error response carries.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type: `urn:wuqing:problem:<code>`.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The stable error code.
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), field: None, audited: false }
    }
    pub fn field(code: Code, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), field: Some(field.into()), audited: false }
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(Code::NotFound, format!("{what} not found"))
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(Code::Forbidden, message)
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(Code::BadRequest, message)
    }
    /// An internal failure: logged in full here, shown to the client as a generic message.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "internal error");
        metrics::counter!("wuqing_internal_errors_total").increment(1);
        Self::new(Code::Internal, "internal error")
    }
    pub fn problem(&self) -> Problem {
        let status = self.code.status();
        Problem {
            type_: format!("urn:wuqing:problem:{}", self.code.as_str()),
            title: status.canonical_reason().unwrap_or("error").to_string(),
            status: status.as_u16(),
            detail: self.message.clone(),
            code: self.code.as_str().to_string(),
            field: self.field.clone(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut resp = (self.code.status(), body).into_response();
        if self.audited {
            resp.extensions_mut().insert(AlreadyAudited);
        }
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        resp
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Conflict(m) => ApiError::new(Code::Conflict, m),
            crate::store::StoreError::Unavailable(m) => {
                tracing::warn!(error = %m, "store unavailable");
                ApiError::new(Code::StoreUnavailable, "the store is unavailable, retry later")
            }
            crate::store::StoreError::InvalidText(m) => ApiError::bad_request(m),
            other => ApiError::internal(other),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.as_str()), "duplicate code {}", c.as_str());
            assert!(c.as_str().chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'));
        }
    }

    #[test]
    fn internal_errors_hide_details() {
        let e = ApiError::internal("secret path /etc/shadow");
        assert_eq!(e.problem().detail, "internal error");
        assert_eq!(e.problem().status, 500);
    }
}
