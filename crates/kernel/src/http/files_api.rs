//! `/api/files`: upload a file, read its metadata, download it. See `crate::files`.
//!
//! An upload is the file's bytes as the request body (not a form): `Content-Type` is its media
//! type and `X-File-Name` its name, percent-encoded UTF-8 (`encodeURIComponent(file.name)`; an
//! ASCII name may go as it is). `curl -H 'Content-Type: application/pdf' -H 'X-File-Name:
//! %E6%8A%A5%E5%91%8A.pdf' --data-binary @报告.pdf …/api/files`. The body is streamed to disk,
//! so the server's JSON body limit does not apply: `[files] max_bytes` does.

use super::{AppState, Auth, Path, Query};
use crate::access::Classification;
use crate::audit::Actor;
use crate::error::{ApiError, ApiResult, Code, Problem};
use crate::files::{self, FileMeta, Upload};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::io::AsyncReadExt;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The header naming an uploaded file.
pub const FILE_NAME_HEADER: &str = "x-file-name";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(upload)).routes(routes!(get_file)).routes(routes!(get_content))
}

/// A file's bytes (a schema for the document only: bodies are streamed).
#[allow(dead_code)]
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct FileBytes(Vec<u8>);

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file's classification (default `internal`); at most the uploader's clearance.
    pub classification: Option<Classification>,
}

/// Uploads a file for the caller's organisation. The body is the file itself; `Content-Type` is
/// its type (`application/octet-stream`: from the extension), `X-File-Name` its name
/// (percent-encoded UTF-8). The type must be accepted (`[files] allowed_types`, else 415), the
/// name's extension must be the type's and the content must start with the type's signature
/// (else 422: a `.pdf` that is not a PDF is refused); empty is 422, larger than
/// `[files] max_bytes` 413. Answers once the file is on disk and recorded (and audited).
#[utoipa::path(post, path = "/api/files", tag = "files", params(UploadQuery,
        ("X-File-Name" = String, Header, description = "The file's name, percent-encoded UTF-8")),
    request_body(content = FileBytes, content_type = "application/octet-stream", description = "The file's bytes, with its own media type as Content-Type"),
    responses((status = 201, body = FileMeta, headers(("Location" = String, description = "The file's metadata"))),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 413, body = Problem),
        (status = 415, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn upload(
    State(st): State<AppState>,
    Auth(c): Auth,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, [(header::HeaderName, String); 1], axum::Json<FileMeta>)> {
    let classification = q.classification.unwrap_or(Classification::Internal);
    // Whoever uploads must be able to read it back: not an administrator, not a resident (no
    // organisation to store for), cleared for the classification.
    if c.role.is_admin() || !c.scope.contains(&c.org_id) {
        return Err(ApiError::forbidden(format!("your role ({}) does not store files", c.role.as_str())));
    }
    c.require_clearance(classification, "a file of this classification")?;
    let declared_type = match headers.get(header::CONTENT_TYPE).map(HeaderValue::to_str) {
        Some(Ok(t)) => t.to_string(),
        _ => return Err(ApiError::new(Code::UnsupportedMediaType, "send the file's media type as Content-Type")),
    };
    let name = match headers.get(FILE_NAME_HEADER) {
        None => return Err(ApiError::field(Code::InvalidField, "name", "name the file in X-File-Name")),
        // Raw UTF-8 (which some clients send) decodes to itself.
        Some(v) => std::str::from_utf8(v.as_bytes())
            .ok()
            .and_then(files::percent_decode)
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| ApiError::field(Code::InvalidField, "name", "X-File-Name must be UTF-8, percent-encoded"))?,
    };
    let declared_len = match headers.get(header::CONTENT_LENGTH).map(|v| v.to_str().ok().and_then(|s| s.parse().ok())) {
        None => None,
        Some(Some(n)) => Some(n),
        Some(None) => return Err(ApiError::bad_request("Content-Length is not a number")),
    };
    let up = Upload { org_id: &c.org_id, name: &name, declared_type: &declared_type, classification };
    let meta = files::store_stream(&st, Actor::of(&c), &up, declared_len, body.into_data_stream()).await?;
    Ok((StatusCode::CREATED, [(header::LOCATION, format!("/api/files/{}", meta.id))], axum::Json(meta)))
}

/// A file's metadata, if the caller may read the file (404 otherwise).
#[utoipa::path(get, path = "/api/files/{id}", tag = "files", params(("id" = String, Path)),
    responses((status = 200, body = FileMeta), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn get_file(
    State(st): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<FileMeta>> {
    files::require_readable(&st, &c, &id).await.map(axum::Json)
}

/// Downloads a file (audited), always as an attachment under its original name, with its stored
/// type, `nosniff` and a sandboxing Content-Security-Policy: never shown inline by the browser.
#[utoipa::path(get, path = "/api/files/{id}/content", tag = "files", params(("id" = String, Path)),
    responses((status = 200, description = "The file's bytes, sent with the media type checked at upload (PDF, OFD, an image, an Office document…)", content_type = "*/*", body = FileBytes,
            headers(("Content-Disposition" = String, description = "attachment; filename*=UTF-8''…"))),
        (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn get_content(State(st): State<AppState>, Auth(c): Auth, Path(id): Path<String>) -> ApiResult<Response> {
    let (meta, file) = files::open(&st, &c, &id).await?;
    let stream = futures::stream::unfold(Some(file), |f| async move {
        let mut f = f?;
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(f)))
            }
            Err(e) => {
                tracing::error!(error = %e, "reading a stored file failed");
                Some((Err(e), None))
            }
        }
    });
    let content_type =
        HeaderValue::from_str(&meta.media_type).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let disposition = HeaderValue::from_str(&files::content_disposition(&meta.name))
        .unwrap_or(HeaderValue::from_static("attachment"));
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type);
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.size));
    h.insert(header::CONTENT_DISPOSITION, disposition);
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    h.insert(header::HeaderName::from_static("cross-origin-resource-policy"), HeaderValue::from_static("same-origin"));
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", meta.sha256)) {
        h.insert(header::ETAG, etag);
    }
    Ok(resp)
}
