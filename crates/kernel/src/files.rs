//! The file store (文件存储): evidence attached to a case, monthly archives, later health
//! documents. Bytes live on disk, content-addressed (`DIR/ab/cd/<sha256 hex>`: the same bytes are
//! stored once however often they are uploaded); the `files` table holds one row per upload with
//! what the platform knows of it: owner organisation, uploader, classification, media type, name.
//!
//! **Durability**: a blob is streamed to a temporary file under `DIR/tmp` (the same file system,
//! so the rename below is atomic; its final name is only known once every byte is hashed),
//! fsynced, renamed to its content address and the directory fsynced; only then is the row
//! committed, in the same transaction as its audit record (`file.upload`). A file reported stored
//! survives a crash; a crash in between leaves at most an unreferenced blob or a stale `.part`.
//!
//! **Types are never taken from the client**: the declared media type must be one of
//! `[files] allowed_types`, the name's extension must be one of that type's, and the first bytes
//! must be that type's signature (`%PDF-`, PNG, JPEG, GIF, WebP, a ZIP container for
//! OOXML/OFD/zip, an OLE2 container for the old Office formats, no NUL bytes and no binary
//! signature for text). Content is always served as an attachment (`nosniff`, `sandbox`).
//!
//! **Who reads**: callers whose scope contains the owner organisation (its own staff, the
//! regulators of its bureau and domain) and whose clearance covers the file's classification;
//! the three administrators do not read domain files. Anyone else gets a 404, never a hint that
//! the file exists. Every content read is audited (`file.read`) before the bytes leave.

use crate::access::{Caller, Classification};
use crate::audit::{self, Actor, Event, Outcome};
use crate::error::{ApiError, ApiResult, Code};
use crate::http::AppState;
use crate::store::{Store, StoreError, StoreResult, col, ms_to_rfc3339, now_ms};
use axum::body::Bytes;
use futures::{Stream, StreamExt};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;
use utoipa::ToSchema;

/// Longest stored file name, in characters (the extension is kept when a name is cut).
pub const MAX_NAME_CHARS: usize = 200;
/// The most `[files] max_bytes` may be: 1 GiB (beyond that, use a transfer made for it).
pub const MAX_BYTES_LIMIT: u64 = 1 << 30;
/// Bytes kept from the start of a file to check its signature.
const HEAD_BYTES: usize = 8192;

/// A stored file's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FileMeta {
    /// UUIDv7.
    pub id: String,
    /// SHA-256 of the content, lowercase hex: its address, and a check for whoever keeps a copy.
    pub sha256: String,
    /// Bytes.
    pub size: i64,
    /// The media type, as checked against the content.
    pub media_type: String,
    /// The original file name, sanitised (no path, no control characters, at most 200 characters).
    pub name: String,
    /// The owner organisation.
    pub org_id: String,
    /// The uploader's user id (`None` for a file the server made itself).
    pub uploaded_by: Option<String>,
    pub classification: Classification,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// What to store: where it belongs and what the client says it is.
#[derive(Debug, Clone)]
pub struct Upload<'a> {
    /// The owner organisation (the caller decides whose it is and may be).
    pub org_id: &'a str,
    /// The original name; sanitised before it is stored.
    pub name: &'a str,
    /// The declared media type (`Content-Type`; parameters ignored). `application/octet-stream`:
    /// take the type from the name's extension (and still check the content).
    pub declared_type: &'a str,
    pub classification: Classification,
}

/// How a kind of file is recognised by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    Pdf,
    Png,
    Jpeg,
    Gif,
    Webp,
    /// A ZIP container (zip, OOXML, OFD).
    Zip,
    /// An OLE2 compound document (doc, xls, ppt).
    Ole,
    /// No binary signature and no NUL byte.
    Text,
}

/// A media type the store accepts when configured to, with its extensions and signature.
#[derive(Debug, Clone, Copy)]
pub struct FileKind {
    pub media_type: &'static str,
    /// Lowercase, without the dot; the first is the usual one.
    pub extensions: &'static [&'static str],
    pub signature: Signature,
}

/// Every type the store can check; `[files] allowed_types` is a subset (all by default).
pub const KINDS: &[FileKind] = &[
    FileKind { media_type: "application/pdf", extensions: &["pdf"], signature: Signature::Pdf },
    // 版式文档 (GB/T 33190-2016), the government's own document format: a ZIP container.
    FileKind { media_type: "application/ofd", extensions: &["ofd"], signature: Signature::Zip },
    FileKind { media_type: "image/png", extensions: &["png"], signature: Signature::Png },
    FileKind { media_type: "image/jpeg", extensions: &["jpg", "jpeg"], signature: Signature::Jpeg },
    FileKind { media_type: "image/gif", extensions: &["gif"], signature: Signature::Gif },
    FileKind { media_type: "image/webp", extensions: &["webp"], signature: Signature::Webp },
    FileKind {
        media_type: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        extensions: &["docx"],
        signature: Signature::Zip,
    },
    FileKind {
        media_type: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        extensions: &["xlsx"],
        signature: Signature::Zip,
    },
    FileKind {
        media_type: "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        extensions: &["pptx"],
        signature: Signature::Zip,
    },
    FileKind { media_type: "application/msword", extensions: &["doc"], signature: Signature::Ole },
    FileKind { media_type: "application/vnd.ms-excel", extensions: &["xls"], signature: Signature::Ole },
    FileKind { media_type: "application/vnd.ms-powerpoint", extensions: &["ppt"], signature: Signature::Ole },
    FileKind { media_type: "application/zip", extensions: &["zip"], signature: Signature::Zip },
    FileKind { media_type: "text/plain", extensions: &["txt", "log"], signature: Signature::Text },
    FileKind { media_type: "text/csv", extensions: &["csv"], signature: Signature::Text },
];

/// The kind of `media_type` (lowercase, without parameters), if the store knows it.
pub fn kind_of(media_type: &str) -> Option<&'static FileKind> {
    KINDS.iter().find(|k| k.media_type == media_type)
}

/// The binary signature at the start of `head`, if any.
fn sniff(head: &[u8]) -> Option<Signature> {
    let starts = |p: &[u8]| head.starts_with(p);
    if starts(b"%PDF-") {
        Some(Signature::Pdf)
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Some(Signature::Png)
    } else if starts(b"\xff\xd8\xff") {
        Some(Signature::Jpeg)
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Some(Signature::Gif)
    } else if starts(b"RIFF") && head.get(8..12) == Some(b"WEBP") {
        Some(Signature::Webp)
    } else if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") {
        Some(Signature::Zip)
    } else if starts(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1") {
        Some(Signature::Ole)
    } else {
        None
    }
}

/// Whether `head` (the first bytes of a file) looks like a file of `kind`.
pub fn content_matches(kind: &FileKind, head: &[u8]) -> bool {
    match kind.signature {
        Signature::Text => sniff(head).is_none() && !head.contains(&0),
        s => sniff(head) == Some(s),
    }
}

/// Characters dropped from names besides control characters: invisible formatting (zero-width,
/// bidirectional overrides that make `exe.pdf` read as `fdp.exe`, the byte-order mark).
fn invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// A file name fit to store and to offer back in `Content-Disposition`: the last component of
/// any path (`/` or `\`), without control or invisible characters, Windows' reserved characters
/// replaced by `_`, no leading dots, no leading or trailing blanks or trailing dots, at most
/// [`MAX_NAME_CHARS`] characters (a long stem is cut, the extension kept). `None` when nothing
/// is left.
pub fn sanitize_name(raw: &str) -> Option<String> {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !invisible(*c))
        .map(|c| if matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*') { '_' } else { c })
        .collect();
    let t = cleaned.trim().trim_start_matches('.').trim_start().trim_end_matches(['.', ' ']).trim_end();
    if t.is_empty() {
        return None;
    }
    if t.chars().count() <= MAX_NAME_CHARS {
        return Some(t.to_string());
    }
    let cut = |s: &str, n: usize| s.chars().take(n).collect::<String>();
    match t.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && ext.chars().count() <= 16 => {
            let keep = MAX_NAME_CHARS - ext.chars().count() - 1;
            Some(format!("{}.{ext}", cut(stem, keep).trim_end()))
        }
        _ => Some(cut(t, MAX_NAME_CHARS)),
    }
}

/// The lowercase extension of `name`, if it has a stem and an extension.
fn extension(name: &str) -> Option<String> {
    name.rsplit_once('.').filter(|(stem, ext)| !stem.is_empty() && !ext.is_empty()).map(|(_, e)| e.to_lowercase())
}

/// Decodes `%XX` escapes (RFC 3986) into bytes; `None` on a malformed escape.
pub fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// `Content-Disposition: attachment` for `name`: an ASCII `filename` for old clients and the
/// UTF-8 `filename*` of RFC 6266 §4.3 with the RFC 8187 (formerly 5987) encoding, so that Chinese
/// names arrive intact.
pub fn content_disposition(name: &str) -> String {
    let fallback: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        // attr-char (RFC 8187 §3.2.1) goes as it is; everything else as %XX.
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// The kind an upload declares, if it is one the configuration allows. `application/octet-stream`
/// (what browsers send when they do not know) takes the kind from the name's extension.
fn declared_kind(st: &AppState, declared: &str, name: &str) -> ApiResult<&'static FileKind> {
    let t = declared.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let kind = if t == "application/octet-stream" {
        let ext = extension(name).unwrap_or_default();
        KINDS.iter().find(|k| k.extensions.contains(&ext.as_str()))
    } else {
        kind_of(&t)
    };
    let allowed = &st.config.raw.files.allowed_types;
    match kind {
        Some(k) if allowed.iter().any(|a| a == k.media_type) => Ok(k),
        _ => Err(ApiError::new(
            Code::UnsupportedMediaType,
            format!("files of this type are not accepted; accepted: {}", allowed.join(", ")),
        )),
    }
}

/// Where blobs live.
fn blob_path(root: &Path, sha256: &str) -> PathBuf {
    root.join(&sha256[0..2]).join(&sha256[2..4]).join(sha256)
}

/// fsync of a directory, so that the names created in it are durable.
async fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let d = dir.to_path_buf();
        tokio::task::spawn_blocking(move || std::fs::File::open(d)?.sync_all()).await.map_err(std::io::Error::other)?
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// A blob being received: a temporary file, removed when dropped unless it was placed.
struct Incoming {
    path: PathBuf,
    file: Option<tokio::fs::File>,
    hasher: Sha256,
    size: u64,
    head: Vec<u8>,
}

impl Drop for Incoming {
    fn drop(&mut self) {
        // Also on cancellation (the client went away mid-upload): no stale part is left behind.
        // Unlinking is one short system call; not worth a blocking thread.
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn io_error(what: &str, e: std::io::Error) -> ApiError {
    ApiError::internal(format!("file store: {what}: {e}"))
}

impl Incoming {
    async fn create(root: &Path) -> ApiResult<Incoming> {
        let tmp = root.join("tmp");
        tokio::fs::create_dir_all(&tmp).await.map_err(|e| io_error("create the temporary directory", e))?;
        let path = tmp.join(format!("{}.part", uuid::Uuid::now_v7().simple()));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(|e| io_error("create a temporary file", e))?;
        Ok(Incoming { path, file: Some(file), hasher: Sha256::new(), size: 0, head: Vec::new() })
    }

    async fn write(&mut self, chunk: &[u8], max: u64) -> ApiResult<()> {
        self.size += chunk.len() as u64;
        if self.size > max {
            return Err(too_large(max));
        }
        if self.head.len() < HEAD_BYTES {
            let n = (HEAD_BYTES - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..n]);
        }
        self.hasher.update(chunk);
        let f = self.file.as_mut().ok_or_else(|| ApiError::internal("file store: write after close"))?;
        f.write_all(chunk).await.map_err(|e| io_error("write", e))
    }

    /// Makes the content durable and puts it at its address; returns the SHA-256 (hex).
    async fn place(mut self, root: &Path) -> ApiResult<String> {
        let mut f = self.file.take().ok_or_else(|| ApiError::internal("file store: placed twice"))?;
        f.flush().await.map_err(|e| io_error("flush", e))?;
        f.sync_all().await.map_err(|e| io_error("fsync", e))?;
        drop(f);
        let sha = data_encoding::HEXLOWER.encode(&self.hasher.clone().finalize());
        let dest = blob_path(root, &sha);
        let leaf = dest.parent().map(Path::to_path_buf).unwrap_or_else(|| root.to_path_buf());
        let new_dirs = !tokio::fs::try_exists(&leaf).await.unwrap_or(false);
        if new_dirs {
            tokio::fs::create_dir_all(&leaf).await.map_err(|e| io_error("create a blob directory", e))?;
        }
        // The same bytes stored before: keep that blob (it was made durable before its row was
        // written) unless it is damaged, in which case this copy replaces it.
        let existing = tokio::fs::metadata(&dest).await.ok().filter(|m| m.is_file() && m.len() == self.size);
        if existing.is_some() {
            metrics::counter!("wuqing_files_deduplicated_total").increment(1);
        } else {
            tokio::fs::rename(&self.path, &dest).await.map_err(|e| io_error("rename into place", e))?;
            self.path = PathBuf::new();
        }
        sync_dir(&leaf).await.map_err(|e| io_error("fsync the blob directory", e))?;
        if new_dirs {
            // The two levels of directories may be new as well.
            for d in leaf.ancestors().skip(1).take(2) {
                sync_dir(d).await.map_err(|e| io_error("fsync a blob directory", e))?;
            }
        }
        Ok(sha)
    }
}

fn too_large(max: u64) -> ApiError {
    ApiError::new(Code::PayloadTooLarge, format!("files may have at most {max} bytes"))
}

/// Checks an upload's name and type before any byte is read; returns the sanitised name and
/// the kind.
fn check_upload(st: &AppState, up: &Upload<'_>) -> ApiResult<(String, &'static FileKind)> {
    let name = sanitize_name(up.name)
        .ok_or_else(|| ApiError::field(Code::InvalidField, "name", "the file needs a name (X-File-Name)"))?;
    let kind = declared_kind(st, up.declared_type, &name)?;
    match extension(&name) {
        Some(e) if kind.extensions.contains(&e.as_str()) => {}
        _ => {
            return Err(ApiError::field(
                Code::InvalidField,
                "name",
                format!("a file of type {} must be named .{}", kind.media_type, kind.extensions.join(" or .")),
            ));
        }
    }
    Ok((name, kind))
}

/// Stores a file read from `body` (chunks of bytes): checked, made durable, recorded with its
/// audit record (`file.upload`). `declared_len` (a `Content-Length`) lets an oversized upload be
/// refused before it is read. The caller has decided that `actor` may store files of
/// `up.org_id`; the organisation must exist.
#[tracing::instrument(skip_all, fields(org_id = %up.org_id, declared_len = ?declared_len))]
pub async fn store_stream<S, E>(
    st: &AppState,
    actor: Actor,
    up: &Upload<'_>,
    declared_len: Option<u64>,
    mut body: S,
) -> ApiResult<FileMeta>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let (name, kind) = check_upload(st, up)?;
    if !st.orgs.exists(&st.store, up.org_id).await? {
        return Err(ApiError::field(Code::InvalidField, "org_id", "no such organisation"));
    }
    let max = st.config.raw.files.max_bytes;
    if declared_len.is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    let root = st.config.files_dir();
    let mut incoming = Incoming::create(&root).await?;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            let e = e.to_string();
            if e.contains("length limit") {
                too_large(max)
            } else {
                ApiError::bad_request("the upload was interrupted")
            }
        })?;
        incoming.write(&chunk, max).await?;
    }
    if incoming.size == 0 {
        return Err(ApiError::field(Code::InvalidField, "file", "the file is empty"));
    }
    if !content_matches(kind, &incoming.head) {
        metrics::counter!("wuqing_files_refused_total", "reason" => "content").increment(1);
        return Err(ApiError::field(
            Code::InvalidField,
            "file",
            format!("the content is not a {} file", kind.extensions[0].to_uppercase()),
        ));
    }
    let size = incoming.size;
    let sha256 = incoming.place(&root).await?;
    let meta = FileMeta {
        id: uuid::Uuid::now_v7().to_string(),
        sha256,
        size: i64::try_from(size).map_err(ApiError::internal)?,
        media_type: kind.media_type.to_string(),
        name,
        org_id: up.org_id.to_string(),
        uploaded_by: actor.user_id.clone(),
        classification: up.classification,
        created_at: String::new(),
    };
    let created_ms = now_ms();
    let mut tx = st.store.begin().await?;
    sqlx::query(&st.store.sql(
        "INSERT INTO files (id, sha256, size, media_type, name, org_id, uploaded_by, classification, created_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    ))
    .bind(&meta.id)
    .bind(&meta.sha256)
    .bind(meta.size)
    .bind(&meta.media_type)
    .bind(&meta.name)
    .bind(&meta.org_id)
    .bind(meta.uploaded_by.clone())
    .bind(meta.classification.as_str())
    .bind(created_ms)
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    audit::append(
        &st.store,
        &mut tx,
        &Event::new(actor, "file.upload", "file", Some(&meta.id), Outcome::Success).detail(audit_detail(&meta)),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    metrics::counter!("wuqing_files_stored_total").increment(1);
    metrics::counter!("wuqing_files_stored_bytes_total").increment(size);
    // Never the name: names of sensitive files say too much.
    tracing::info!(id = %meta.id, size, media_type = %meta.media_type, "file stored");
    Ok(FileMeta { created_at: ms_to_rfc3339(created_ms), ..meta })
}

/// [`store_stream`] for bytes in memory (files the server makes, attachments of other modules).
pub async fn store_bytes(st: &AppState, actor: Actor, up: &Upload<'_>, bytes: &[u8]) -> ApiResult<FileMeta> {
    // Chunks of 64 KiB so that a large buffer is not copied in one piece.
    let chunks: Vec<Result<Bytes, std::convert::Infallible>> =
        bytes.chunks(64 * 1024).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    store_stream(st, actor, up, Some(bytes.len() as u64), futures::stream::iter(chunks)).await
}

/// What the audit log says of a file: its address, size and type, and its name unless the file
/// is sensitive or above (a name can say as much as the content).
fn audit_detail(m: &FileMeta) -> serde_json::Value {
    let mut d = serde_json::json!({
        "sha256": m.sha256, "size": m.size, "media_type": m.media_type,
        "org_id": m.org_id, "classification": m.classification.as_str(),
    });
    if m.classification < Classification::Sensitive {
        d["name"] = serde_json::Value::String(m.name.clone());
    }
    d
}

const COLUMNS: &str = "id, sha256, size, media_type, name, org_id, uploaded_by, classification, created_ms";

fn row_to_meta(r: &sqlx::any::AnyRow) -> StoreResult<FileMeta> {
    let class: String = col(r, "classification")?;
    Ok(FileMeta {
        id: col(r, "id")?,
        sha256: col(r, "sha256")?,
        size: col(r, "size")?,
        media_type: col(r, "media_type")?,
        name: col(r, "name")?,
        org_id: col(r, "org_id")?,
        uploaded_by: col(r, "uploaded_by")?,
        classification: Classification::parse(&class)
            .ok_or_else(|| StoreError::Corrupt(format!("file classification {class:?}")))?,
        created_at: ms_to_rfc3339(col(r, "created_ms")?),
    })
}

/// A file's metadata, whoever asks (no access check: for the kernel's own jobs).
#[tracing::instrument(skip(store))]
pub async fn get(store: &Store, id: &str) -> StoreResult<Option<FileMeta>> {
    // Not an id: nothing to look up (and nothing odd sent to the database).
    if uuid::Uuid::parse_str(id).is_err() {
        return Ok(None);
    }
    let row = sqlx::query(&store.sql(&format!("SELECT {COLUMNS} FROM files WHERE id = $1")))
        .bind(id)
        .fetch_optional(store.reader())
        .await?;
    row.as_ref().map(row_to_meta).transpose()
}

/// Whether `c` may read `m`: the owner is in the caller's scope, the caller's clearance covers
/// the classification, and the caller is not one of the three administrators (their job is
/// accounts, security and audit, not the district's documents).
pub fn may_read(c: &Caller, m: &FileMeta) -> bool {
    !c.role.is_admin() && c.scope.contains(&m.org_id) && c.require_clearance(m.classification, "the file").is_ok()
}

/// The metadata of file `id` if `c` may read it (by [`may_read`], or because the file was
/// [`share`]d with the caller's own organisation and the clearance covers it); a 404 otherwise,
/// whether or not it exists. What other modules call before attaching a file to their records.
pub async fn require_readable(st: &AppState, c: &Caller, id: &str) -> ApiResult<FileMeta> {
    match get(&st.store, id).await? {
        Some(m) if may_read(c, &m) => Ok(m),
        Some(m)
            if !c.role.is_admin()
                && c.require_clearance(m.classification, "the file").is_ok()
                && is_shared(&st.store, &m.id, &c.org_id).await? =>
        {
            Ok(m)
        }
        _ => Err(ApiError::not_found("file")),
    }
}

/// Whether file `id` was shared with organisation `org_id`.
async fn is_shared(store: &Store, id: &str, org_id: &str) -> StoreResult<bool> {
    let n: i64 = sqlx::query_scalar(&store.sql("SELECT COUNT(*) FROM file_shares WHERE file_id = $1 AND org_id = $2"))
        .bind(id.to_string())
        .bind(org_id.to_string())
        .fetch_one(store.reader())
        .await?;
    Ok(n > 0)
}

/// Lets organisation `org_id`'s own staff read file `id` (a document's attachment sent to the
/// enterprises it names), inside the caller's transaction so that the share commits with the
/// record that makes it. The caller decided that it may share the file (it read it itself).
pub async fn share(
    store: &Store,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: &str,
    org_id: &str,
) -> StoreResult<()> {
    let sql = "INSERT INTO file_shares (file_id, org_id, shared_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
    sqlx::query(&store.sql(sql))
        .bind(id.to_string())
        .bind(org_id.to_string())
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Opens file `id` for `c` to read: the same checks as [`require_readable`], the read audited
/// (`file.read`, refusals too) before the file is handed over.
#[tracing::instrument(skip(st, c), fields(user = %c.username))]
pub async fn open(st: &AppState, c: &Caller, id: &str) -> ApiResult<(FileMeta, tokio::fs::File)> {
    let meta = match require_readable(st, c, id).await {
        Ok(m) => m,
        Err(e) if e.code != Code::NotFound => return Err(e),
        Err(e) => {
            let target = uuid::Uuid::parse_str(id).is_ok().then_some(id);
            let ev = Event::new(Actor::of(c), "file.read", "file", target, Outcome::Denied)
                .detail(serde_json::json!({"reason": "not found or not readable"}));
            audit::record(&st.store, ev).await?;
            return Err(ApiError { audited: true, ..e });
        }
    };
    let path = blob_path(&st.config.files_dir(), &meta.sha256);
    let file = tokio::fs::File::open(&path).await.map_err(|e| io_error("open a blob", e))?;
    let len = file.metadata().await.map_err(|e| io_error("stat a blob", e))?.len();
    if i64::try_from(len).ok() != Some(meta.size) {
        return Err(ApiError::internal(format!("file store: blob of {} has {len} bytes, not {}", meta.id, meta.size)));
    }
    audit::record(
        &st.store,
        Event::new(Actor::of(c), "file.read", "file", Some(&meta.id), Outcome::Success).detail(audit_detail(&meta)),
    )
    .await?;
    metrics::counter!("wuqing_files_read_total").increment(1);
    Ok((meta, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_paths_controls_and_tricks() {
        assert_eq!(sanitize_name("../../etc/passwd\u{0}.pdf").as_deref(), Some("passwd.pdf"));
        assert_eq!(sanitize_name("C:\\Users\\x\\报告.docx").as_deref(), Some("报告.docx"));
        assert_eq!(sanitize_name("  .hidden.txt  ").as_deref(), Some("hidden.txt"));
        assert_eq!(sanitize_name("a\u{202E}fdp.exe").as_deref(), Some("afdp.exe"));
        assert_eq!(sanitize_name("what?*.pdf.").as_deref(), Some("what__.pdf"));
        assert_eq!(sanitize_name("x/"), None);
        assert_eq!(sanitize_name(".."), None);
        assert_eq!(sanitize_name("\u{7}\n"), None);
        let long = format!("{}.pdf", "长".repeat(500));
        let s = sanitize_name(&long).unwrap_or_default();
        assert_eq!(s.chars().count(), MAX_NAME_CHARS);
        assert!(s.ends_with("长.pdf"), "{s}");
    }

    #[test]
    fn dispositions_encode_utf8_names() {
        assert_eq!(
            content_disposition("报告 1.pdf"),
            "attachment; filename=\"__ 1.pdf\"; filename*=UTF-8''%E6%8A%A5%E5%91%8A%201.pdf"
        );
        assert_eq!(content_disposition("a\"b.txt"), "attachment; filename=\"a_b.txt\"; filename*=UTF-8''a%22b.txt");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("%E6%8A%A5.pdf").and_then(|b| String::from_utf8(b).ok()).as_deref(), Some("报.pdf"));
        assert_eq!(percent_decode("a+b%20c").as_deref(), Some(&b"a+b c"[..]));
        assert!(percent_decode("bad%4").is_none());
        assert!(percent_decode("bad%zz").is_none());
        assert!(percent_decode("%E6%").is_none());
    }

    #[test]
    fn signatures() {
        let pdf = kind_of("application/pdf").unwrap_or(&KINDS[0]);
        let png = kind_of("image/png").unwrap_or(&KINDS[0]);
        let txt = kind_of("text/plain").unwrap_or(&KINDS[0]);
        let xlsx = kind_of("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet").unwrap_or(&KINDS[0]);
        assert!(content_matches(pdf, b"%PDF-1.7\n"));
        assert!(!content_matches(png, b"%PDF-1.7\n"));
        assert!(content_matches(png, b"\x89PNG\r\n\x1a\n\0\0"));
        assert!(content_matches(txt, "车牌,里程\n津A12345,12\n".as_bytes()));
        assert!(!content_matches(txt, b"%PDF-1.7\n"));
        assert!(!content_matches(txt, b"a\0b"));
        assert!(content_matches(xlsx, b"PK\x03\x04rest"));
        assert!(!content_matches(xlsx, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"));
        assert!(KINDS.iter().all(|k| k.media_type.bytes().all(|b| !b.is_ascii_uppercase())));
    }
}
