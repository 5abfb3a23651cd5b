//! Bulk load (FHIR Bulk Data NDJSON): `wuqing health import FILE…` and `POST /fhir/$import`.
//! A pipeline of three stages, so that the two cores overlap them: lines are read and validated
//! on one blocking thread, batches made ready to write (bodies, digests, SM4 ciphertexts, index
//! rows: [`Records::prepare`]) on another, and written while the next ones are prepared; each
//! batch is one transaction with one seal and one audit
//! record (`health.import`: counts by type, never content). A resource keeps the id it has (a
//! line without one gets a new id); an existing resource becomes a new version, if the importing
//! institution owns it. Invalid lines are reported with their number and path and not stored;
//! the valid ones are.

use crate::fhir::ndjson::{self, Line};
use crate::fhir::validate::{self, Issue};
use crate::records::{Author, Change, Prepared, Records, WriteError};
use kernel::audit::{Actor, Event, Outcome};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::BufRead;

/// Resources per transaction in the server (`$import`): a batch in flight holds its parsed
/// bodies, and several imports may run at once.
pub const BATCH: usize = 2_000;

/// Resources per transaction of the command-line import, which has the machine to itself:
/// fewer, larger commits write each touched index page to the WAL fewer times (1 M resources:
/// 11.6 k/s at 2 000, 13.4 k/s at 5 000, 14.8 k/s at 10 000, with ≈ 1 GB resident).
pub const BULK_BATCH: usize = 10_000;

/// How an import runs.
#[derive(Clone, Copy)]
pub struct Options<'a> {
    /// The running master patient index, which imported Patients join.
    pub mpi: Option<&'a crate::mpi_store::MpiState>,
    /// Resources per transaction.
    pub batch: usize,
}

/// Problems reported at most (all are counted).
const MAX_REPORTED: usize = 100;

/// What an import did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Report {
    /// Stored, by resource type.
    pub stored: BTreeMap<String, usize>,
    pub invalid: usize,
    /// The first problems: source, line, issue.
    #[serde(skip)]
    pub problems: Vec<(String, usize, Issue)>,
    pub seconds: f64,
}

impl Report {
    pub fn total(&self) -> usize {
        self.stored.values().sum()
    }
}

enum Msg<B> {
    Batch(B),
    Invalid(String, usize, Vec<Issue>),
}

/// Imports NDJSON from `input` (named `source` in the report) as `author`'s institution.
pub async fn import<R: BufRead + Send + 'static>(
    records: &Records,
    author: &Author,
    actor: Actor,
    source: &str,
    input: R,
    options: Options<'_>,
    report: &mut Report,
) -> Result<(), WriteError> {
    let started = std::time::Instant::now();
    let (tx, mut lines) = tokio::sync::mpsc::channel::<Msg<Vec<Change>>>(2);
    let name = source.to_string();
    let batch_size = options.batch.max(1);
    let reader = tokio::task::spawn_blocking(move || {
        let mut batch = Vec::with_capacity(batch_size);
        let res = ndjson::read(input, |n, line| match line {
            Line::Valid { resource_type, resource } => {
                if resource_type == "Provenance" {
                    let issue = Issue {
                        code: "not-supported",
                        path: "Provenance".into(),
                        diagnostics: "Provenance is written by the platform".into(),
                    };
                    let _ = tx.blocking_send(Msg::Invalid(name.clone(), n, vec![issue]));
                    return;
                }
                let id = resource["id"]
                    .as_str()
                    .filter(|i| validate::is_id(i))
                    .map(str::to_string)
                    .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
                batch.push(Change { rtype: resource_type, id, resource: Some(resource), if_match: None });
                if batch.len() >= batch_size {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
                    let _ = tx.blocking_send(Msg::Batch(full));
                }
            }
            Line::Invalid { issues } => {
                let _ = tx.blocking_send(Msg::Invalid(name.clone(), n, issues));
            }
        });
        if !batch.is_empty() {
            let _ = tx.blocking_send(Msg::Batch(batch));
        }
        res
    });
    // The second stage: batches made ready in the order they were read.
    let (ready_tx, mut rx) = tokio::sync::mpsc::channel::<Msg<Prepared>>(1);
    let (preparer, who) = (records.clone(), author.clone());
    let prepare = tokio::task::spawn_blocking(move || {
        while let Some(m) = lines.blocking_recv() {
            let m = match m {
                Msg::Batch(changes) => Msg::Batch(preparer.prepare(&who, changes)),
                Msg::Invalid(src, n, issues) => Msg::Invalid(src, n, issues),
            };
            if ready_tx.blocking_send(m).is_err() {
                return;
            }
        }
    });
    let mut failed = None;
    while let Some(m) = rx.recv().await {
        match m {
            Msg::Invalid(src, n, issues) => {
                report.invalid += 1;
                for i in issues {
                    if report.problems.len() < MAX_REPORTED {
                        report.problems.push((src.clone(), n, i));
                    }
                }
            }
            Msg::Batch(prepared) if failed.is_none() => {
                let counts = prepared.counts();
                let ev =
                    Event::new(actor.clone(), "health.import", "Organization", Some(&author.org_id), Outcome::Success)
                        .detail(json!({ "source": source.chars().take(200).collect::<String>(), "stored": counts }));
                match records.commit_prepared(author, "import", prepared, vec![ev]).await {
                    Ok((stored, _)) => {
                        // Imported registrations join the index; they are not matched one by one.
                        if let Some(m) = options.mpi.filter(|m| m.ready()) {
                            for s in stored.iter().filter(|s| s.rtype == "Patient") {
                                m.add(&s.id, &s.body);
                            }
                        }
                        for (t, n) in counts {
                            *report.stored.entry(t).or_default() += n;
                        }
                        // Freeing thousands of parsed bodies is not the writer's work.
                        tokio::task::spawn_blocking(move || drop(stored));
                    }
                    // Stop reading; what was committed stays.
                    Err(e) => failed = Some(e),
                }
            }
            Msg::Batch(_) => {}
        }
    }
    let _ = prepare.await;
    let read = reader.await.map_err(|e| WriteError::Store(kernel::store::StoreError::Unavailable(e.to_string())))?;
    report.seconds += started.elapsed().as_secs_f64();
    if let Some(e) = failed {
        return Err(e);
    }
    read.map_err(|e| WriteError::Store(kernel::store::StoreError::Unavailable(format!("reading {source}: {e}"))))
}
