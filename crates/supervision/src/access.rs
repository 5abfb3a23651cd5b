//! Who reaches the supervision records: the transport bureau's regulators (everything in their
//! scope; they may correct) and enterprises' operators (their own enterprise's only). Anyone
//! else is refused with a 403; a record of an enterprise the caller does not reach is a 404.

use crate::enterprises::DOMAIN;
use kernel::access::{Caller, Role};
use kernel::error::{ApiError, ApiResult, Code};
use kernel::http::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    Regulator,
    Operator,
}

/// The caller as a supervision user, or 403.
pub async fn who(st: &AppState, c: &Caller) -> ApiResult<Who> {
    let domain = st.orgs.domain_of(&st.store, &c.org_id).await?;
    match c.role {
        Role::Regulator if domain.as_deref() == Some(DOMAIN) => Ok(Who::Regulator),
        Role::Operator => Ok(Who::Operator),
        _ => {
            Err(ApiError::forbidden("supervision records are for the transport bureau and the enterprises themselves"))
        }
    }
}

/// Whether the caller (already past [`who`]) reaches an enterprise's records: in scope, and an
/// operator only its own.
pub fn reaches(c: &Caller, org_id: &str) -> bool {
    c.scope.contains(org_id) && (c.role != Role::Operator || c.org_id == org_id)
}

/// For a list filtered by `org_id`: 403 unless the caller reaches it. An out-of-scope filter is
/// refused, never answered with an empty page nor a 404 (ARCHITECTURE.md's invariant); an id
/// in a path is the other case, a 404.
pub fn require_filter(c: &Caller, org_id: &str) -> ApiResult<()> {
    if reaches(c, org_id) {
        Ok(())
    } else {
        Err(ApiError::field(Code::Forbidden, "org_id", "that organisation is outside your scope"))
    }
}
