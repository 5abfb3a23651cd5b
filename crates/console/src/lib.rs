//! The web console (控制台): the single-page application in `web/`, built by Vite and embedded
//! here at compile time (see `build.rs`), served by the kernel for every path outside `/api`.
//! When `web/dist` was not there at build time, every page says so and how to build it.

use axum::extract::State;
use kernel::error::{ApiResult, Problem};
use kernel::http::{AppState, Auth, Console, ConsoleFile};
use kernel::module::Module;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

mod files {
    include!(concat!(env!("OUT_DIR"), "/files.rs"));
}

/// Whether this binary carries the built console.
pub fn built() -> bool {
    !files::FILES.is_empty()
}

/// What a browser is told when the console was not built into this binary.
const NOT_BUILT: &str = r#"<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>智慧武清平台 · 控制台未构建</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,"Noto Sans CJK SC",sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#1f2937}
code{background:#f3f4f6;padding:.1rem .3rem;border-radius:.2rem}</style></head>
<body><h1>控制台未构建</h1>
<p>此程序构建时未包含网页控制台。接口照常可用：<a href="/api/docs">/api/docs</a>。</p>
<p>构建控制台：<code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code>，然后重新 <code>cargo build --release</code>。</p>
<hr><h2 lang="en">The console is not built</h2>
<p lang="en">This binary was built without the web console. The API works as usual: <a href="/api/docs">/api/docs</a>.</p>
<p lang="en">To build it: <code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code>, then <code>cargo build --release</code> again.</p>
</body></html>
"#;

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, e)| e) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("geojson") => "application/geo+json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("woff") => "font/woff",
        Some("wasm") => "application/wasm",
        Some("mp3") => "audio/mpeg",
        Some("wav") => "audio/wav",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The embedded files.
struct Embedded;

impl Console for Embedded {
    fn file(&self, path: &str) -> Option<ConsoleFile> {
        if !built() {
            return Some(ConsoleFile {
                body: NOT_BUILT.as_bytes(),
                content_type: "text/html; charset=utf-8",
                immutable: false,
            });
        }
        let path = if path.is_empty() { "index.html" } else { path };
        let (_, body) = files::FILES.iter().find(|(p, _)| *p == path)?;
        Some(ConsoleFile { body, content_type: content_type(path), immutable: path.starts_with("assets/") })
    }
}

/// What the console's maps stand on (`[console]` in the configuration).
#[derive(Serialize, ToSchema)]
pub struct MapSettings {
    /// XYZ raster tile template, or null: the maps draw the district's own roads and boundary.
    pub tile_url: Option<String>,
    pub tile_attribution: Option<String>,
    /// `[lon, lat]`, WGS-84.
    pub center: [f64; 2],
    pub zoom: f64,
}

#[derive(Serialize, ToSchema)]
pub struct Settings {
    pub map: MapSettings,
}

/// The console's settings, for any signed-in user.
#[utoipa::path(get, path = "/api/console/settings", tag = "console",
    responses((status = 200, body = Settings), (status = 401, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn settings(State(st): State<AppState>, _caller: Auth) -> ApiResult<axum::Json<Settings>> {
    let c = &st.config.raw.console;
    let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    Ok(axum::Json(Settings {
        map: MapSettings {
            tile_url: some(&c.map_tile_url),
            tile_attribution: some(&c.map_tile_attribution),
            center: c.map_center,
            zoom: c.map_zoom,
        },
    }))
}

/// The console as a module: no tables; its files and its settings.
#[derive(Clone, Copy, Default)]
pub struct ConsoleModule;

#[async_trait::async_trait]
impl Module for ConsoleModule {
    fn name(&self) -> &'static str {
        "console"
    }

    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new().routes(routes!(settings))
    }

    fn console(&self) -> Option<Arc<dyn Console>> {
        Some(Arc::new(Embedded))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_by_extension() {
        assert_eq!(content_type("assets/index-abc.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }

    #[test]
    fn the_index_is_always_there() {
        assert!(Embedded.file("").is_some());
        if built() {
            assert!(Embedded.file("assets/does-not-exist.js").is_none());
        } else {
            let f = Embedded.file("any/page").unwrap();
            assert!(std::str::from_utf8(f.body).unwrap().contains("npm run build"));
        }
    }
}
