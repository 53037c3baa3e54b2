//! The one way a node refuses: [`ApiError`], answered as the API's [`ErrorBody`] with the
//! HTTP status its [`ErrorCode`] fixes.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keynet_protocol::api::{ErrorBody, ErrorCode, FailedCondition};

/// A refusal: a stable code, a message naming the field, node or condition, and for
/// `condition_failed` the condition as a field of its own.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    condition: Option<FailedCondition>,
}

impl ApiError {
    /// A refusal with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            condition: None,
        }
    }

    /// `bad_request`: the body is not a well-formed request (the message names the field).
    pub fn bad_request(message: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::BadRequest, message.to_string())
    }

    /// `internal`: something failed inside the node.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::Internal, message.to_string())
    }

    /// Names the condition that did not hold.
    pub fn with_condition(mut self, path: String, reason: String) -> Self {
        self.condition = Some(FailedCondition { path, reason });
        self
    }

    /// Its code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// Its message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A user's authorisation refused: `auth_refused`, naming why; or, when a limit of the
/// node stopped it (the authorisation may be fine), `rate_limited` for the user's own
/// share and `overloaded` for the node's whole budget.
impl From<keynet_protocol::auth::AuthError> for ApiError {
    fn from(e: keynet_protocol::auth::AuthError) -> Self {
        use keynet_protocol::auth::AuthError;
        let code = match e {
            AuthError::AddressBusy { .. } => ErrorCode::RateLimited,
            AuthError::NodeBusy { .. } => ErrorCode::Overloaded,
            _ => ErrorCode::AuthRefused,
        };
        ApiError::new(code, e.to_string())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            code: self.code,
            message: self.message,
            condition: self.condition,
        };
        (status, Json(body)).into_response()
    }
}
