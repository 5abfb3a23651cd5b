//! The master patient index at work (患者主索引): the stored Patients indexed in memory for
//! matching (`mpi::Mpi`, loaded at start, kept current by every Patient written through the
//! API), `Patient/$match`, and what a new registration sets off: a certain match to another
//! registration is linked automatically, a probable or possible one goes to the review queue,
//! where a person links or separates the two. Links and separations are events
//! (`health_mpi_events`), each audited and each reversible by its inverse (`mpi::links`).

use crate::mpi::links::{Event as LinkEvent, LinkError, Links};
use crate::mpi::{Candidate, Grade, Mpi};
use crate::records::{Records, Stored};
use kernel::audit::{self, Actor, Event, Outcome};
use kernel::store::{StoreError, col, now_ms};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex, RwLock};

/// The in-memory index, shared by the routes and the loader.
#[derive(Clone, Default)]
pub struct MpiState {
    index: Arc<RwLock<Option<Mpi>>>,
    /// Patients written while the index was loading, added when it is ready.
    pending: Arc<Mutex<Vec<(String, Value)>>>,
    loading: Arc<tokio::sync::Mutex<()>>,
}

/// Registrations below this many estimate nothing: the starting model serves.
const MIN_FOR_ESTIMATE: usize = 2000;

impl MpiState {
    pub fn ready(&self) -> bool {
        self.index.read().map(|g| g.is_some()).unwrap_or(false)
    }

    /// Adds (or re-adds, after an update) a Patient.
    pub fn add(&self, id: &str, patient: &Value) {
        let Ok(mut g) = self.index.write() else { return };
        match g.as_mut() {
            Some(m) => m.add(id, patient),
            None => {
                if let Ok(mut p) = self.pending.lock() {
                    p.push((id.to_string(), patient.clone()));
                }
            }
        }
    }

    /// The candidates for a Patient, best first, each id once; `None` while loading.
    pub fn matches(&self, patient: &Value, count: usize, only_certain: bool) -> Option<Vec<Candidate>> {
        let g = self.index.read().ok()?;
        let m = g.as_ref()?;
        // An updated Patient is in the index once per version: keep each id's best.
        let mut out: Vec<Candidate> = vec![];
        for c in m.matches(patient, count * 4 + 8, only_certain) {
            if !out.iter().any(|x| x.id == c.id) {
                out.push(c);
            }
        }
        out.truncate(count);
        Some(out)
    }

    /// Loads the index unless it is loaded (once, whoever asks first).
    pub async fn ensure(&self, records: &Records) -> Result<(), StoreError> {
        if self.ready() {
            return Ok(());
        }
        let _one = self.loading.lock().await;
        if !self.ready() {
            let started = std::time::Instant::now();
            let n = self.load(records).await?;
            tracing::info!(patients = n, seconds = started.elapsed().as_secs_f64(), "master patient index loaded");
        }
        Ok(())
    }

    /// Loads every current Patient from the store, estimates the model, and opens the index.
    pub async fn load(&self, records: &Records) -> Result<usize, StoreError> {
        let mut m = Mpi::new();
        let mut after = String::new();
        loop {
            let page = records.patients_after(&after, 2000).await?;
            let Some(last) = page.last() else { break };
            after = last.id.clone();
            for s in &page {
                m.add(&s.id, &s.body);
            }
        }
        if m.len() >= MIN_FOR_ESTIMATE {
            m.estimate(20_000);
        }
        let n = m.len();
        let Ok(mut g) = self.index.write() else { return Ok(n) };
        if let Ok(mut p) = self.pending.lock() {
            for (id, v) in p.drain(..) {
                m.add(&id, &v);
            }
        }
        *g = Some(m);
        Ok(n)
    }
}

/// What a registration set off.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcomes {
    pub linked: Vec<String>,
    pub queued: Vec<String>,
}

/// After Patients were written: each matched against the index (before it joins it); certain
/// matches linked, probable and possible ones queued for review.
pub async fn after_patients(
    records: &Records,
    mpi: &MpiState,
    actor: &Actor,
    written: &[Stored],
) -> Result<Outcomes, StoreError> {
    let mut out = Outcomes::default();
    mpi.ensure(records).await?;
    for s in written.iter().filter(|s| s.rtype == "Patient" && !s.deleted) {
        let found = mpi.matches(&s.body, 10, false).unwrap_or_default();
        mpi.add(&s.id, &s.body);
        for c in found.into_iter().filter(|c| c.id != s.id) {
            let Some(other) = records.current("Patient", &c.id).await?.filter(|o| !o.deleted) else { continue };
            // Linked without a person only when an identifying detail (citizen ID, phone) agrees
            // too: a common name with a birth date is not enough, however likely it scores.
            if c.grade == Grade::Certain && shares_identifier(&s.body, &other.body) {
                // Refused (separated by a reviewer, or linked already): nothing to do.
                let linked = record_event(
                    records,
                    actor,
                    LinkEvent::Link { a: s.id.clone(), b: c.id.clone() },
                    "automatic",
                    Some(c.score),
                )
                .await?;
                if linked.is_ok() {
                    out.linked.push(c.id);
                }
            } else if queue(records, &s.id, &c).await? {
                out.queued.push(c.id);
            }
        }
    }
    Ok(out)
}

/// The citizen IDs and phone numbers of a Patient.
fn identifiers(p: &Value) -> Vec<String> {
    let ids =
        p["identifier"].as_array().into_iter().flatten().filter(|i| i["system"] == crate::generate::CITIZEN_ID_SYSTEM);
    let phones = p["telecom"].as_array().into_iter().flatten().filter(|t| t["system"] == "phone");
    ids.chain(phones).filter_map(|x| x["value"].as_str()).map(|v| v.trim().to_uppercase()).collect()
}

fn shares_identifier(a: &Value, b: &Value) -> bool {
    let theirs = identifiers(b);
    identifiers(a).iter().any(|x| theirs.contains(x))
}

/// Puts a pair on the review queue (once).
async fn queue(records: &Records, a: &str, c: &Candidate) -> Result<bool, StoreError> {
    let st = &records.store;
    let mut tx = st.begin().await?;
    let done = sqlx::query(&st.sql(
        "INSERT INTO health_mpi_reviews (id, patient_a, patient_b, score, grade, status, created_ms) \
         VALUES ($1, $2, $3, $4, $5, 'open', $6) ON CONFLICT (patient_a, patient_b) DO NOTHING",
    ))
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(a.to_string())
    .bind(c.id.clone())
    .bind(c.score)
    .bind(c.grade.code())
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected() > 0)
}

/// Every link event so far, in order.
pub async fn events(records: &Records) -> Result<Vec<(String, LinkEvent)>, StoreError> {
    let rows = sqlx::query("SELECT id, kind, a, b FROM health_mpi_events ORDER BY at_ms, id")
        .fetch_all(records.store.reader())
        .await?;
    rows.iter()
        .map(|r| {
            let (id, kind, a, b): (String, String, String, String) =
                (col(r, "id")?, col(r, "kind")?, col(r, "a")?, col(r, "b")?);
            let e = match kind.as_str() {
                "link" => LinkEvent::Link { a, b },
                "unlink" => LinkEvent::Unlink { a, b },
                "separate" => LinkEvent::Separate { a, b },
                "unseparate" => LinkEvent::Unseparate { a, b },
                other => return Err(StoreError::Corrupt(format!("MPI event kind {other}"))),
            };
            Ok((id, e))
        })
        .collect()
}

/// The links in force.
pub async fn links(records: &Records) -> Result<Links, StoreError> {
    let evs = events(records).await?;
    Links::replay(evs.iter().map(|(_, e)| e)).map_err(|(i, e)| StoreError::Corrupt(format!("MPI event {i}: {e}")))
}

fn kind_of(e: &LinkEvent) -> (&'static str, &str, &str) {
    match e {
        LinkEvent::Link { a, b } => ("link", a, b),
        LinkEvent::Unlink { a, b } => ("unlink", a, b),
        LinkEvent::Separate { a, b } => ("separate", a, b),
        LinkEvent::Unseparate { a, b } => ("unseparate", a, b),
    }
}

/// Records a link event if the links in force allow it, with its audit record, in one
/// transaction; `Ok(Err(_))` says why it was refused.
pub async fn record_event(
    records: &Records,
    actor: &Actor,
    e: LinkEvent,
    source: &str,
    score: Option<f64>,
) -> Result<Result<String, LinkError>, StoreError> {
    let st = &records.store;
    // One writer at a time on SQLite; on PostgreSQL the head row of the audit chain serialises
    // writers, and the links are checked again inside the transaction.
    let mut tx = st.begin().await?;
    let rows = sqlx::query("SELECT kind, a, b FROM health_mpi_events ORDER BY at_ms, id").fetch_all(&mut *tx).await?;
    let mut current = Links::default();
    for r in &rows {
        let (kind, a, b): (String, String, String) = (col(r, "kind")?, col(r, "a")?, col(r, "b")?);
        let ev = match kind.as_str() {
            "link" => LinkEvent::Link { a, b },
            "unlink" => LinkEvent::Unlink { a, b },
            "separate" => LinkEvent::Separate { a, b },
            _ => LinkEvent::Unseparate { a, b },
        };
        let _ = current.apply(&ev);
    }
    if let Err(refused) = current.apply(&e) {
        return Ok(Err(refused));
    }
    let id = uuid::Uuid::now_v7().to_string();
    let (kind, a, b) = kind_of(&e);
    sqlx::query(&st.sql(
        "INSERT INTO health_mpi_events (id, at_ms, kind, a, b, actor_id, source, score) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    ))
    .bind(id.clone())
    .bind(now_ms())
    .bind(kind)
    .bind(a.to_string())
    .bind(b.to_string())
    .bind(actor.user_id.clone().unwrap_or_else(|| "system".into()))
    .bind(source.to_string())
    .bind(score)
    .execute(&mut *tx)
    .await?;
    let ev = Event::new(actor.clone(), &format!("health.mpi.{kind}"), "Patient", Some(a), Outcome::Success)
        .detail(json!({ "with": b, "event": id, "source": source, "score": score }));
    audit::append(st, &mut tx, &ev).await?;
    tx.commit().await?;
    Ok(Ok(id))
}
