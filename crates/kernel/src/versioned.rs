//! Versioned configuration documents (版本化配置): a named JSON document (`transport.rules`, …)
//! of which every published version is kept, with who published it, when and why.
//!
//! Publishing is optimistic: the publisher names the version its edit started from
//! (`base_version`), and the publication fails with a 409 conflict when another version has been
//! published since, so two people never overwrite each other silently. The new version is the
//! current one plus one; the row and its audit record (`config.published`, naming the document
//! and the version, never the body) commit in one transaction. After the commit the bus carries
//! `config.<name>` (`{"name", "version"}`): whoever runs on the document reloads it from the
//! store, which stays the one source of truth (a missed message is caught by re-reading
//! [`current_version`] now and then).
//!
//! A document may have a built-in version that is never stored (the default a module ships
//! with): [`Draft::builtin_version`] names it, and the first stored version is the next one, so
//! a version number always means one content.

use crate::access::Caller;
use crate::audit::{self, Actor, Event, Outcome};
use crate::bus::Bus;
use crate::error::{ApiError, ApiResult, Code};
use crate::http::{Page, Paged};
use crate::store::{Arg, Store, StoreError, StoreResult, Where, col, fetch_page, ms_to_rfc3339, now_ms};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// Longest document name.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest publication note.
pub const MAX_NOTE_CHARS: usize = 1000;

/// One version, without its body (what a list shows).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct VersionInfo {
    pub name: String,
    pub version: i64,
    /// The publisher's user id (`None` for a command run on the server).
    pub author_id: Option<String>,
    /// The publisher's user name.
    pub author: String,
    /// Why it was published.
    pub note: String,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// One version with its body.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Document {
    #[serde(flatten)]
    pub info: VersionInfo,
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
}

/// A version to publish.
#[derive(Debug, Clone)]
pub struct Draft<'a> {
    /// The document: dot-separated tokens of `a-z`, `0-9`, `_`, `-` (it becomes a bus subject).
    pub name: &'a str,
    /// The version the edit started from; it must still be the current one (409 otherwise).
    /// `None`: publish over whatever is current (commands run on the server, seeds).
    pub base_version: Option<i64>,
    /// The version of the built-in document in force while nothing is stored (0: none). It is
    /// the current version until the first publication, which gets the next number.
    pub builtin_version: i64,
    pub body: &'a serde_json::Value,
    pub note: &'a str,
}

/// The query of a document's version list (its `…/versions` route).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VersionsQuery {
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// One page of `name`'s published versions, newest first, without their bodies.
pub async fn page(store: &Store, name: &str, q: &VersionsQuery) -> ApiResult<Paged<VersionInfo>> {
    let (limit, offset) = Page::resolve(q.limit, q.offset)?;
    let (items, total) = list(store, name, limit, offset).await?;
    Ok(Paged { items, total, limit, offset })
}

/// The bus subject on which publications of `name` are announced.
pub fn subject(name: &str) -> String {
    format!("config.{name}")
}

/// Whether `name` is a document name: 1 to [`MAX_NAME_CHARS`] characters, dot-separated
/// non-empty tokens of `a-z`, `0-9`, `_` and `-`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_CHARS
        && name.split('.').all(|t| {
            !t.is_empty() && t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        })
}

fn check_note(note: &str) -> ApiResult<String> {
    let t = note.trim();
    if t.chars().count() > MAX_NOTE_CHARS || t.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(ApiError::field(
            Code::InvalidField,
            "note",
            format!("note must have at most {MAX_NOTE_CHARS} characters and no control characters"),
        ));
    }
    Ok(t.to_string())
}

const INFO_COLUMNS: &str = "name, version, author_id, author, note, created_ms";

fn row_to_info(r: &sqlx::any::AnyRow) -> StoreResult<VersionInfo> {
    Ok(VersionInfo {
        name: col(r, "name")?,
        version: col(r, "version")?,
        author_id: col(r, "author_id")?,
        author: col(r, "author")?,
        note: col(r, "note")?,
        created_at: ms_to_rfc3339(col(r, "created_ms")?),
    })
}

fn row_to_document(r: &sqlx::any::AnyRow) -> StoreResult<Document> {
    let info = row_to_info(r)?;
    let text: String = col(r, "body")?;
    let body = serde_json::from_str(&text)
        .map_err(|e| StoreError::Corrupt(format!("config document {} version {}: {e}", info.name, info.version)))?;
    Ok(Document { info, body })
}

/// The newest stored version of `name`, if any (a cheap check before loading the body).
#[tracing::instrument(skip(store))]
pub async fn current_version(store: &Store, name: &str) -> StoreResult<Option<i64>> {
    let row = sqlx::query(&store.sql("SELECT MAX(version) AS v FROM config_documents WHERE name = $1"))
        .bind(name)
        .fetch_one(store.reader())
        .await?;
    col(&row, "v")
}

/// The newest stored version of `name` with its body; `None` while nothing is stored.
#[tracing::instrument(skip(store))]
pub async fn current(store: &Store, name: &str) -> StoreResult<Option<Document>> {
    let row = sqlx::query(&store.sql(&format!(
        "SELECT {INFO_COLUMNS}, body FROM config_documents WHERE name = $1 ORDER BY version DESC LIMIT 1"
    )))
    .bind(name)
    .fetch_optional(store.reader())
    .await?;
    row.as_ref().map(row_to_document).transpose()
}

/// Version `version` of `name`, if stored.
#[tracing::instrument(skip(store))]
pub async fn get(store: &Store, name: &str, version: i64) -> StoreResult<Option<Document>> {
    let row = sqlx::query(
        &store.sql(&format!("SELECT {INFO_COLUMNS}, body FROM config_documents WHERE name = $1 AND version = $2")),
    )
    .bind(name)
    .bind(version)
    .fetch_optional(store.reader())
    .await?;
    row.as_ref().map(row_to_document).transpose()
}

/// The stored versions of `name`, newest first, without their bodies, and how many there are.
#[tracing::instrument(skip(store))]
pub async fn list(store: &Store, name: &str, limit: i64, offset: i64) -> StoreResult<(Vec<VersionInfo>, i64)> {
    let mut w = Where::new();
    w.and("name = ?", Arg::S(name.to_string()));
    let (rows, total) = fetch_page(store, INFO_COLUMNS, "config_documents", &w, "version DESC", limit, offset).await?;
    let items = rows.iter().map(row_to_info).collect::<StoreResult<Vec<_>>>()?;
    Ok((items, total))
}

/// Publishes a new version of `draft.name` and returns its number: the current version plus
/// one. Fails with a 409 conflict when `draft.base_version` is given and is not the current
/// version (or when another publication of the same version commits first). The row and its
/// audit record commit together; the bus hears of it after the commit.
#[tracing::instrument(skip(store, bus, actor, draft), fields(name = %draft.name, base = ?draft.base_version))]
pub async fn publish(store: &Store, bus: &dyn Bus, actor: Actor, draft: Draft<'_>) -> ApiResult<i64> {
    if !valid_name(draft.name) {
        return Err(ApiError::field(Code::InvalidField, "name", "not a configuration document name"));
    }
    let note = check_note(draft.note)?;
    let body = draft.body.to_string();
    let mut tx = store.begin().await?;
    let row = sqlx::query(&store.sql("SELECT MAX(version) AS v FROM config_documents WHERE name = $1"))
        .bind(draft.name)
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    let stored: Option<i64> = col(&row, "v")?;
    let current = stored.unwrap_or(draft.builtin_version).max(draft.builtin_version);
    if let Some(base) = draft.base_version {
        if base != current {
            return Err(ApiError::field(
                Code::Conflict,
                "base_version",
                format!(
                    "version {current} of {} is current, not {base}: reload it and apply your change again",
                    draft.name
                ),
            ));
        }
    }
    let version = current
        .checked_add(1)
        .ok_or_else(|| ApiError::new(Code::Conflict, "the document has no version numbers left"))?;
    sqlx::query(&store.sql(
        "INSERT INTO config_documents (name, version, body, author_id, author, note, created_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    ))
    .bind(draft.name)
    .bind(version)
    .bind(body)
    .bind(actor.user_id.clone())
    .bind(actor.name.clone())
    .bind(note)
    .bind(now_ms())
    .execute(&mut *tx)
    .await
    .map_err(|e| match StoreError::from(e) {
        // A concurrent publication took the number between our read and our insert.
        StoreError::Conflict(_) => ApiError::field(
            Code::Conflict,
            "base_version",
            format!("another version of {} was just published", draft.name),
        ),
        other => ApiError::from(other),
    })?;
    audit::append(
        store,
        &mut tx,
        &Event::new(actor, "config.published", "config", Some(draft.name), Outcome::Success)
            .detail(serde_json::json!({"name": draft.name, "version": version, "base_version": draft.base_version})),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    metrics::counter!("wuqing_config_published_total").increment(1);
    tracing::info!(name = %draft.name, version, "configuration published");
    let payload = serde_json::json!({"name": draft.name, "version": version}).to_string();
    if let Err(e) = bus.publish(&subject(draft.name), Arc::from(payload.into_bytes())).await {
        // Committed all the same: readers also re-check the current version now and then.
        tracing::warn!(name = %draft.name, version, error = %e, "configuration publication not announced");
    }
    Ok(version)
}

/// [`publish`] on behalf of a signed-in caller.
pub async fn publish_as(store: &Store, bus: &dyn Bus, caller: &Caller, draft: Draft<'_>) -> ApiResult<i64> {
    publish(store, bus, Actor::of(caller), draft).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_subject_tokens() {
        assert!(valid_name("transport.rules"));
        assert!(valid_name("coldchain.thresholds-v2"));
        assert!(!valid_name(""));
        assert!(!valid_name("transport..rules"));
        assert!(!valid_name("transport.*"));
        assert!(!valid_name("Transport.rules"));
        assert!(!valid_name("a b"));
        assert!(!valid_name(&"a".repeat(MAX_NAME_CHARS + 1)));
        assert_eq!(subject("transport.rules"), "config.transport.rules");
    }

    #[test]
    fn notes_are_bounded() {
        assert_eq!(check_note("  raise the taxi limit\n").ok().as_deref(), Some("raise the taxi limit"));
        assert!(check_note("bell\u{7}").is_err());
        assert!(check_note(&"x".repeat(MAX_NOTE_CHARS + 1)).is_err());
    }
}
