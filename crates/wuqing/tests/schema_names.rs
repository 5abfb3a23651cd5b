//! Every schema of the OpenAPI document has a name of its own. utoipa merges the modules'
//! components by name, silently: two types called `Figures` (or `Review`) in two crates would
//! leave one described by the other's schema, and clients and schemathesis would check
//! answers against the wrong shape (issue 8 was one such). Read from the sources: each type
//! deriving `ToSchema`, under its `#[schema(as = …)]` name if it has one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// (schema name, type name) of each `ToSchema` type in `text`.
fn schemas(text: &str) -> Vec<(String, String)> {
    let mut out = vec![];
    let mut block = String::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with("#[") || line.starts_with("///") || (line.starts_with("//") && !block.is_empty()) {
            block.push_str(line);
            block.push('\n');
            continue;
        }
        let ty = line.strip_prefix("pub struct ").or_else(|| line.strip_prefix("pub enum "));
        if let Some(rest) = ty {
            if block.contains("derive(") && block.contains("ToSchema") {
                let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                let as_name = block.split("schema(as = ").nth(1).map(|s| {
                    s.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect::<String>()
                });
                let schema = as_name.map(|s| s.rsplit("::").next().unwrap_or_default().to_string());
                out.push((schema.unwrap_or_else(|| name.clone()), name));
            }
        }
        block.clear();
    }
    out
}

#[test]
fn schema_names_are_unique_across_the_crates() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut files = vec![];
    for c in std::fs::read_dir(crates).unwrap() {
        let src = c.unwrap().path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (schema, ty) in schemas(&text) {
            let at = format!("{} ({ty})", f.strip_prefix(crates).unwrap().display());
            seen.entry(schema).or_default().push(at);
        }
    }
    assert!(seen.len() > 100, "the scan found the API's schemas: {}", seen.len());
    let twice: Vec<_> = seen.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(twice.is_empty(), "schema names used twice (add #[schema(as = …)]): {twice:#?}");
}

#[test]
fn the_scan_reads_derives_and_renames() {
    let text = "/// A thing.\n#[derive(Debug, ToSchema)]\n#[schema(as = OtherName)]\npub struct Thing {\n}\n\
                #[derive(Debug, Serialize)]\npub struct NotASchema;\n#[derive(ToSchema)]\npub enum Plain { A }\n";
    assert_eq!(
        schemas(text),
        vec![("OtherName".to_string(), "Thing".to_string()), ("Plain".to_string(), "Plain".to_string())]
    );
}
