//! Embeds `web/dist` (the console as Vite builds it) when it is there: a table of
//! `include_bytes!` per file, written to `$OUT_DIR/files.rs`. Without it the table is empty and
//! the console says it was not built: a plain `cargo build` never needs Node.
//!
//! A release build (`cargo run --release -- serve --demo`, the README's first command) builds the
//! console first when npm is on the PATH (`npm ci` once, then `npm run build`), so that the binary
//! brings up everything; `WUQING_CONSOLE_NPM=0` turns that off. If npm is missing or the build
//! fails, a warning says so and the binary is built without the console.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, base: &Path, out: &mut Vec<(String, PathBuf)>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            walk(&p, base, out)?;
        } else if let Ok(rel) = p.strip_prefix(base) {
            let rel = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
            out.push((rel, p.clone()));
        }
    }
    Ok(())
}

/// Runs npm in `web/`; `false` (with a warning) when it is not there or fails.
fn npm(web: &Path, args: &[&str]) -> bool {
    match std::process::Command::new("npm").args(args).current_dir(web).status() {
        Ok(s) if s.success() => true,
        Ok(s) => {
            println!("cargo:warning=npm {} failed ({s}): the console is left out", args.join(" "));
            false
        }
        Err(e) => {
            println!("cargo:warning=npm not run ({e}): the console is left out (cd web && npm ci && npm run build)");
            false
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let web = manifest.join("../../web");
    let dist = web.join("dist");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let use_npm =
        release && std::env::var("WUQING_CONSOLE_NPM").map_or(true, |v| v != "0") && web.join("package.json").is_file();
    println!("cargo:rerun-if-env-changed=WUQING_CONSOLE_NPM");
    if use_npm {
        // The sources, not dist/ (which this script writes: watching it would rebuild every time).
        for p in ["src", "public", "index.html", "package.json", "package-lock.json", "vite.config.ts", "tsconfig.json"]
        {
            println!("cargo:rerun-if-changed={}", web.join(p).display());
        }
        let ready = web.join("node_modules").is_dir() || npm(&web, &["ci", "--no-audit", "--no-fund"]);
        if ready {
            npm(&web, &["run", "build"]);
        }
    } else {
        println!("cargo:rerun-if-changed={}", dist.display());
    }
    let mut files = Vec::new();
    if dist.join("index.html").is_file() {
        if let Err(e) = walk(&dist, &dist, &mut files) {
            println!("cargo:warning=web/dist not read ({e}); the console is left out");
            files.clear();
        }
    }
    files.sort();
    let mut code = String::from(
        "/// The console's files (path relative to web/dist, bytes).\npub static FILES: &[(&str, &[u8])] = &[\n",
    );
    for (rel, abs) in &files {
        let _ = writeln!(code, "    ({rel:?}, include_bytes!({:?})),", abs.display().to_string());
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("files.rs");
    if let Err(e) = std::fs::write(&out, code) {
        panic!("writing {}: {e}", out.display());
    }
}
