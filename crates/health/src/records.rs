//! The FHIR resource store: every version kept, encrypted, chained and sealed; the search index
//! beside it; reads, history and searches. No access decisions here beyond the one the store
//! must hold itself (an institution changes only the records it owns): the API decides who may
//! ask, and calls this with the answer.

use crate::fhir::datetime::{BEIJING, Period};
use crate::fhir::index::{self, Entry, ParamType, SearchParam};
use crate::fhir::query::{Query, StringMatch, Test};
use crate::fhir::search::{DateSearch, Prefix, System, Token};
use crate::trust;
use kernel::crypto::FieldCipher;
use kernel::store::{Store, StoreError, col, ms_to_rfc3339, now_ms};
use serde_json::{Value, json};
use sm2::dsa::SigningKey;
use sqlx::any::AnyRow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The resource types whose records belong to a patient (their `patient` parameter names them).
pub fn is_clinical(rt: &str) -> bool {
    index::params_of(rt).any(|p| p.name == "patient" && p.kind == ParamType::Reference) || rt == "Patient"
}

/// Parameters whose values are a patient's identifying data: stored and searched as blind
/// indexes (HMAC-SM3), so that the database never holds them in clear.
pub fn is_blind(rt: &str, param: &str) -> bool {
    rt == "Patient" && matches!(param, "identifier" | "telecom" | "name" | "family" | "given")
}

/// Who writes: the account, its display name, and the institution it acts for.
#[derive(Debug, Clone)]
pub struct Author {
    pub user_id: String,
    pub name: String,
    pub org_id: String,
}

/// One version as stored, decrypted.
#[derive(Debug, Clone)]
pub struct Stored {
    pub rtype: String,
    pub id: String,
    pub version: i64,
    pub owner_org: String,
    pub patient_id: Option<String>,
    pub last_updated_ms: i64,
    pub deleted: bool,
    /// The resource with its `meta.versionId` and `meta.lastUpdated` (a tombstone for a deletion).
    pub body: Value,
}

/// A change one request asks for.
#[derive(Debug, Clone)]
pub struct Change {
    pub rtype: String,
    pub id: String,
    /// `None` deletes.
    pub resource: Option<Value>,
    /// `If-Match`: the version the client last saw.
    pub if_match: Option<i64>,
}

/// Why a change was not made (nothing of the request is stored).
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{0}/{1} belongs to another institution")]
    NotOwner(String, String),
    #[error("{rtype}/{id} is at version {current}, not {expected}")]
    VersionConflict { rtype: String, id: String, current: i64, expected: i64 },
    #[error("{0}/{1} does not exist")]
    Missing(String, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How long a process keeps using the signing key it read: a rotation made elsewhere (the
/// command line, another node) is taken up within this time.
const KEY_CACHE: std::time::Duration = std::time::Duration::from_secs(60);

/// A key as read, by institution: its id, the key, when it was read.
type CachedKey = (String, SigningKey, std::time::Instant);

/// The institutions' signing keys, created on an institution's first write, replaced by
/// [`Keys::rotate`], and cached for [`KEY_CACHE`].
#[derive(Clone, Default)]
pub struct Keys {
    cache: Arc<Mutex<HashMap<String, CachedKey>>>,
    creating: Arc<tokio::sync::Mutex<()>>,
}

impl Keys {
    /// The institution's current key (id and key), creating one when it has none.
    pub async fn for_org(
        &self,
        store: &Store,
        cipher: &FieldCipher,
        org: &str,
    ) -> Result<(String, SigningKey), StoreError> {
        let cached = |c: &HashMap<String, CachedKey>| {
            c.get(org).filter(|(_, _, at)| at.elapsed() < KEY_CACHE).map(|(id, k, _)| (id.clone(), k.clone()))
        };
        if let Some(k) = self.cache.lock().ok().and_then(|c| cached(&c)) {
            return Ok(k);
        }
        let _one = self.creating.lock().await;
        if let Some(k) = self.cache.lock().ok().and_then(|c| cached(&c)) {
            return Ok(k);
        }
        let row = sqlx::query(&store.sql(
            "SELECT id, private_enc FROM health_keys WHERE org_id = $1 AND retired_ms IS NULL AND private_enc IS NOT NULL \
             ORDER BY created_ms DESC LIMIT 1",
        ))
        .bind(org.to_string())
        .fetch_optional(store.reader())
        .await?;
        let found = match row {
            Some(r) => {
                let id: String = col(&r, "id")?;
                let enc: Vec<u8> = col(&r, "private_enc")?;
                let hex = cipher.decrypt(&enc).map_err(|_| StoreError::Corrupt(format!("signing key {id}")))?;
                let bytes = decode_hex(&hex).ok_or_else(|| StoreError::Corrupt(format!("signing key {id}")))?;
                let key = SigningKey::from_slice(trust::DEFAULT_USER_ID, &bytes)
                    .map_err(|_| StoreError::Corrupt(format!("signing key {id}")))?;
                (id, key)
            }
            None => {
                let key = trust::new_key(trust::DEFAULT_USER_ID);
                let id = uuid::Uuid::now_v7().to_string();
                let secret = encode_hex(&key.to_bytes());
                let mut tx = store.begin().await?;
                sqlx::query(&store.sql(
                    "INSERT INTO health_keys (id, org_id, public_key, private_enc, created_ms) VALUES ($1, $2, $3, $4, $5)",
                ))
                .bind(id.clone())
                .bind(org.to_string())
                .bind(trust::public_key_hex(key.verifying_key()))
                .bind(cipher.encrypt(&secret))
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                tracing::info!(org, key = %id, "created an institution's signing key");
                (id, key)
            }
        };
        if let Ok(mut c) = self.cache.lock() {
            c.insert(org.to_string(), (found.0.clone(), found.1.clone(), std::time::Instant::now()));
        }
        Ok(found)
    }

    /// Retires the institution's current key and puts `secret` (or a new key) in its place:
    /// seals made before stay verifiable with the retired key, which stays published. The
    /// private half is stored encrypted; the audit record names the keys, never a secret.
    /// Returns the new key's id.
    pub async fn rotate(
        &self,
        store: &Store,
        cipher: &FieldCipher,
        org: &str,
        secret: Option<SigningKey>,
        actor: kernel::audit::Actor,
    ) -> Result<String, StoreError> {
        let _one = self.creating.lock().await;
        let key = secret.unwrap_or_else(|| trust::new_key(trust::DEFAULT_USER_ID));
        let public = trust::public_key_hex(key.verifying_key());
        let id = uuid::Uuid::now_v7().to_string();
        let at = now_ms();
        let mut tx = store.begin().await?;
        let clash = sqlx::query(&store.sql("SELECT id FROM health_keys WHERE public_key = $1"))
            .bind(public.clone())
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(r) = clash {
            let other: String = col(&r, "id")?;
            return Err(StoreError::Conflict(format!("this key is in use already (key {other})")));
        }
        let retired: Vec<String> =
            sqlx::query(&store.sql("SELECT id FROM health_keys WHERE org_id = $1 AND retired_ms IS NULL ORDER BY id"))
                .bind(org.to_string())
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| col(r, "id"))
                .collect::<Result<_, _>>()?;
        sqlx::query(&store.sql("UPDATE health_keys SET retired_ms = $1 WHERE org_id = $2 AND retired_ms IS NULL"))
            .bind(at)
            .bind(org.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query(&store.sql(
            "INSERT INTO health_keys (id, org_id, public_key, private_enc, created_ms) VALUES ($1, $2, $3, $4, $5)",
        ))
        .bind(id.clone())
        .bind(org.to_string())
        .bind(public)
        .bind(cipher.encrypt(&encode_hex(&key.to_bytes())))
        .bind(at)
        .execute(&mut *tx)
        .await?;
        let ev = kernel::audit::Event::new(
            actor,
            "health.key.rotate",
            "Organization",
            Some(org),
            kernel::audit::Outcome::Success,
        )
        .detail(json!({ "key": id, "retired": retired }));
        kernel::audit::append(store, &mut tx, &ev).await?;
        tx.commit().await?;
        tracing::info!(org, key = %id, retired = retired.len(), "rotated an institution's signing key");
        if let Ok(mut c) = self.cache.lock() {
            c.insert(org.to_string(), (id.clone(), key, std::time::Instant::now()));
        }
        Ok(id)
    }
}

/// A published verifying key.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PublicKey {
    pub id: String,
    pub org_id: String,
    /// SEC1 uncompressed point, hex.
    pub public_key: String,
    pub algorithm: &'static str,
    pub user_id: &'static str,
    pub created: String,
    pub retired: Option<String>,
}

pub async fn public_keys(store: &Store) -> Result<Vec<PublicKey>, StoreError> {
    let rows =
        sqlx::query("SELECT id, org_id, public_key, created_ms, retired_ms FROM health_keys ORDER BY created_ms")
            .fetch_all(store.reader())
            .await?;
    rows.iter()
        .map(|r| {
            Ok(PublicKey {
                id: col(r, "id")?,
                org_id: col(r, "org_id")?,
                public_key: col(r, "public_key")?,
                algorithm: "SM2 (GM/T 0003) over SM3",
                user_id: trust::DEFAULT_USER_ID,
                created: ms_to_rfc3339(col(r, "created_ms")?),
                retired: col::<Option<i64>>(r, "retired_ms")?.map(ms_to_rfc3339),
            })
        })
        .collect()
}

pub fn encode_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok())).collect()
}

/// The store of resources: cheap to clone.
#[derive(Clone)]
pub struct Records {
    pub store: Store,
    pub cipher: FieldCipher,
    pub keys: Keys,
}

/// The patient a resource's record belongs to.
pub fn patient_of(resource: &Value) -> Option<String> {
    let rt = resource["resourceType"].as_str()?;
    if rt == "Patient" {
        return resource["id"].as_str().map(str::to_string);
    }
    index::params_of(rt).filter(|p| p.name == "patient" && p.kind == ParamType::Reference).find_map(|p| {
        index::extract(resource, p, BEIJING).into_iter().find_map(|e| match e {
            Entry::Reference { target_type, id } if target_type == "Patient" => Some(id),
            _ => None,
        })
    })
}

/// A value of an index row.
#[derive(Debug, Clone)]
enum IndexValue {
    S(String),
    I(i64),
}

/// Index rows of one or more resources, by table (tokens, dates, strings, references): the
/// ordinal of the resource they belong to, the parameter, two values.
#[derive(Debug, Default)]
struct IndexRows {
    rows: [Vec<(usize, &'static str, IndexValue, IndexValue)>; 4],
    /// Resources held.
    count: usize,
}

impl IndexRows {
    /// Appends one more resource's rows, with the next ordinal.
    fn extend(&mut self, other: IndexRows) {
        let at = self.count;
        for (mine, theirs) in self.rows.iter_mut().zip(other.rows) {
            mine.extend(theirs.into_iter().map(|(_, p, a, b)| (at, p, a, b)));
        }
        self.count += 1;
    }
}

fn index_rows(cipher: &FieldCipher, rt: &str, resource: &Value) -> IndexRows {
    use IndexValue::{I, S};
    let mut out = IndexRows::default();
    for p in index::params_of(rt) {
        let blind = is_blind(rt, p.name);
        let exact_strings = if p.kind == ParamType::String { raw_strings(resource, p) } else { vec![] };
        for (i, e) in index::extract(resource, p, BEIJING).into_iter().enumerate() {
            let (table, a, b) = match e {
                Entry::Token { system, code } => {
                    let code = if blind { cipher.blind_index(&code) } else { code };
                    (0, S(system.unwrap_or_default()), S(code))
                }
                Entry::Date(Period { start_ms, end_ms }) => (1, I(start_ms), I(end_ms)),
                Entry::String(s) => {
                    let exact = exact_strings.get(i).cloned().unwrap_or_else(|| s.clone());
                    if blind {
                        (2, S(cipher.blind_index(&s)), S(cipher.blind_index(&exact)))
                    } else {
                        (2, S(s), S(exact))
                    }
                }
                Entry::Reference { target_type, id } => (3, S(target_type), S(id)),
            };
            out.rows[table].push((0, p.name, a, b));
        }
    }
    out
}

/// A string parameter's non-empty values as written, in the order `index::extract` reads them.
fn raw_strings(resource: &Value, p: &SearchParam) -> Vec<String> {
    crate::fhir::query::exact_strings(resource, p).into_iter().filter(|s| !index::norm(s).is_empty()).collect()
}

fn tombstone(rt: &str, id: &str, version: i64, at_ms: i64) -> Value {
    json!({ "resourceType": rt, "id": id, "meta": { "versionId": version.to_string(), "lastUpdated": instant(at_ms) } })
}

/// An instant as FHIR writes it, in UTC with milliseconds.
pub fn instant(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
            ))
            .ok()
        })
        .unwrap_or_default()
}

fn with_meta(mut resource: Value, id: &str, version: i64, at_ms: i64) -> Value {
    if let Some(o) = resource.as_object_mut() {
        o.insert("id".into(), Value::String(id.to_string()));
        let meta = o.entry("meta").or_insert_with(|| json!({}));
        if !meta.is_object() {
            *meta = json!({});
        }
        meta["versionId"] = Value::String(version.to_string());
        meta["lastUpdated"] = Value::String(instant(at_ms));
    }
    resource
}

/// The current versions of resources, as [`Records::stored`] reads them, before their `WHERE`.
const CURRENT: &str = "SELECT r.type, r.id, r.version, r.owner_org, r.patient_id, v.at_ms, r.deleted, v.body \
    FROM health_resources r JOIN health_versions v ON v.type = r.type AND v.id = r.id AND v.version = r.version";

fn bool_col(r: &AnyRow, name: &str) -> Result<bool, StoreError> {
    Ok(col::<i64>(r, name)? != 0)
}

impl Records {
    pub fn new(store: Store, cipher: FieldCipher) -> Self {
        Self { store, cipher, keys: Keys::default() }
    }

    fn decrypt(&self, rt: &str, id: &str, version: i64, blob: &[u8]) -> Result<Value, StoreError> {
        let text = self
            .cipher
            .decrypt(blob)
            .map_err(|_| StoreError::Corrupt(format!("{rt}/{id} version {version} does not decrypt")))?;
        serde_json::from_str(&text).map_err(|_| StoreError::Corrupt(format!("{rt}/{id} version {version} is not JSON")))
    }

    fn stored(&self, r: &AnyRow) -> Result<Stored, StoreError> {
        let rtype: String = col(r, "type")?;
        let id: String = col(r, "id")?;
        let version: i64 = col(r, "version")?;
        let body = self.decrypt(&rtype, &id, version, &col::<Vec<u8>>(r, "body")?)?;
        Ok(Stored {
            owner_org: col(r, "owner_org")?,
            patient_id: col(r, "patient_id")?,
            last_updated_ms: col(r, "at_ms")?,
            deleted: bool_col(r, "deleted")?,
            rtype,
            id,
            version,
            body,
        })
    }

    /// The current version (deleted or not), if the resource was ever written.
    pub async fn current(&self, rt: &str, id: &str) -> Result<Option<Stored>, StoreError> {
        let row = sqlx::query(&self.store.sql(&format!("{CURRENT} WHERE r.type = $1 AND r.id = $2")))
            .bind(rt.to_string())
            .bind(id.to_string())
            .fetch_optional(self.store.reader())
            .await?;
        row.map(|r| self.stored(&r)).transpose()
    }

    /// One version.
    pub async fn version(&self, rt: &str, id: &str, version: i64) -> Result<Option<Stored>, StoreError> {
        let row = sqlx::query(&self.store.sql(
            "SELECT v.type, v.id, v.version, v.owner_org, r.patient_id, v.at_ms, v.deleted, v.body \
             FROM health_versions v JOIN health_resources r ON r.type = v.type AND r.id = v.id \
             WHERE v.type = $1 AND v.id = $2 AND v.version = $3",
        ))
        .bind(rt.to_string())
        .bind(id.to_string())
        .bind(version)
        .fetch_optional(self.store.reader())
        .await?;
        row.map(|r| self.stored(&r)).transpose()
    }

    /// Every version, newest first.
    pub async fn history(&self, rt: &str, id: &str, limit: i64) -> Result<Vec<Stored>, StoreError> {
        let rows = sqlx::query(&self.store.sql(
            "SELECT v.type, v.id, v.version, v.owner_org, r.patient_id, v.at_ms, v.deleted, v.body \
             FROM health_versions v JOIN health_resources r ON r.type = v.type AND r.id = v.id \
             WHERE v.type = $1 AND v.id = $2 ORDER BY v.version DESC LIMIT $3",
        ))
        .bind(rt.to_string())
        .bind(id.to_string())
        .bind(limit)
        .fetch_all(self.store.reader())
        .await?;
        rows.iter().map(|r| self.stored(r)).collect()
    }

    /// Writes the changes of one request in one transaction with one seal and the audit
    /// records given: all of them, or (on any error) none. Each created or updated resource gets
    /// its id, `meta.versionId` and `meta.lastUpdated` from the store. Rows are written in
    /// multi-row statements, so that an import of thousands costs a few statements per chunk.
    pub async fn commit(
        &self,
        author: &Author,
        activity: &str,
        changes: Vec<Change>,
        audit: Vec<kernel::audit::Event>,
    ) -> Result<(Vec<Stored>, String), WriteError> {
        let pending = Prepared { at_ms: now_ms(), items: changes.into_iter().map(Pending::Change).collect() };
        self.commit_prepared(author, activity, pending, audit).await
    }

    /// Makes `changes` ready to write outside any transaction (CPU only: bodies, digests,
    /// ciphertexts, index rows), as if none of the resources existed yet: a bulk load prepares
    /// its next batch while the previous one is written. [`Records::commit_prepared`] redoes the
    /// few that turn out to exist; deletions and conditional changes wait for it.
    pub fn prepare(&self, author: &Author, changes: Vec<Change>) -> Prepared {
        let at_ms = now_ms();
        let items = changes
            .into_iter()
            .map(|c| match (&c.resource, c.if_match) {
                (Some(_), None) => match self.ready(author, at_ms, c, None) {
                    Ok(r) => Pending::Ready(Box::new(r)),
                    Err(c) => Pending::Change(c),
                },
                _ => Pending::Change(c),
            })
            .collect();
        Prepared { at_ms, items }
    }

    /// One change made ready against the resource's current row (`None`: it does not exist).
    /// Hands the change back when it cannot be made without one.
    fn ready(&self, author: &Author, at_ms: i64, c: Change, current: Option<&Current>) -> Result<Ready, Change> {
        let (version, created_ms, previous) = match current {
            Some(cur) => (cur.version + 1, cur.created_ms, Some(&cur.digest)),
            None if c.resource.is_none() => return Err(c),
            None => (1, at_ms, None),
        };
        let deleted = c.resource.is_none();
        let body = match c.resource {
            Some(r) => with_meta(r, &c.id, version, at_ms),
            None => tombstone(&c.rtype, &c.id, version, at_ms),
        };
        let patient = if deleted { None } else { patient_of(&body) };
        let digest = trust::digest(&body, previous);
        let ciphertext = self.cipher.encrypt(&body.to_string());
        let index = if deleted { IndexRows::default() } else { index_rows(&self.cipher, &c.rtype, &body) };
        Ok(Ready {
            stored: Stored {
                rtype: c.rtype,
                id: c.id,
                version,
                owner_org: author.org_id.clone(),
                patient_id: patient,
                last_updated_ms: at_ms,
                deleted,
                body,
            },
            created_ms,
            digest,
            ciphertext,
            index,
        })
    }

    /// Writes changes [prepared](Records::prepare) (or not yet) as [`Records::commit`] does.
    pub async fn commit_prepared(
        &self,
        author: &Author,
        activity: &str,
        prepared: Prepared,
        audit: Vec<kernel::audit::Event>,
    ) -> Result<(Vec<Stored>, String), WriteError> {
        let (key_id, key) = self.keys.for_org(&self.store, &self.cipher, &author.org_id).await?;
        let Prepared { at_ms, items } = prepared;
        let seal_id = uuid::Uuid::now_v7().to_string();
        let mut tx = self.store.begin().await?;
        let keys: Vec<(&str, &str)> = items.iter().map(Pending::key).collect();
        let current = self.current_for_update(&mut tx, &keys).await?;
        let mut ready = Vec::with_capacity(items.len());
        for item in items {
            let (rtype, id, if_match) = match &item {
                Pending::Ready(r) => (&r.stored.rtype, &r.stored.id, None),
                Pending::Change(c) => (&c.rtype, &c.id, c.if_match),
            };
            let cur = current.get(&(rtype.clone(), id.clone()));
            if let Some(cur) = cur {
                if cur.owner != author.org_id {
                    return Err(WriteError::NotOwner(rtype.clone(), id.clone()));
                }
                if let Some(expected) = if_match.filter(|e| *e != cur.version) {
                    return Err(WriteError::VersionConflict {
                        rtype: rtype.clone(),
                        id: id.clone(),
                        current: cur.version,
                        expected,
                    });
                }
            } else if let Some(expected) = if_match {
                return Err(WriteError::VersionConflict { rtype: rtype.clone(), id: id.clone(), current: 0, expected });
            }
            let change = match item {
                // Prepared as new and new indeed.
                Pending::Ready(r) if cur.is_none() => {
                    ready.push(*r);
                    continue;
                }
                Pending::Ready(r) => {
                    let s = r.stored;
                    Change { rtype: s.rtype, id: s.id, resource: Some(s.body), if_match: None }
                }
                Pending::Change(c) => c,
            };
            match self.ready(author, at_ms, change, cur) {
                Ok(r) => ready.push(r),
                Err(c) => return Err(WriteError::Missing(c.rtype, c.id)),
            }
        }
        let digests: Vec<[u8; 32]> = ready.iter().map(|r| r.digest).collect();
        let mut index = IndexRows::default();
        // The position in `out` of each resource with index rows, in the order of their rows.
        let mut index_of: Vec<usize> = vec![];
        let mut out = Vec::with_capacity(ready.len());
        const CHUNK: usize = 500;
        let mut rest = ready.into_iter().peekable();
        while rest.peek().is_some() {
            let chunk: Vec<Ready> = rest.by_ref().take(CHUNK).collect();
            let sql = format!(
                "INSERT INTO health_versions (type, id, version, at_ms, deleted, author_id, owner_org, body, digest, seal_id) VALUES {}",
                self.store.values_placeholders(chunk.len(), 10)
            );
            let mut q = sqlx::query(&sql);
            // A deletion keeps the compartment it had, so the patient's history still finds it.
            let sql2 = format!(
                "INSERT INTO health_resources (type, id, version, owner_org, patient_id, created_ms, last_updated_ms, deleted) \
                 VALUES {} ON CONFLICT (type, id) DO UPDATE SET version = excluded.version, \
                 patient_id = CASE WHEN excluded.deleted = 1 THEN health_resources.patient_id ELSE excluded.patient_id END, \
                 last_updated_ms = excluded.last_updated_ms, deleted = excluded.deleted",
                self.store.values_placeholders(chunk.len(), 8)
            );
            let mut q2 = sqlx::query(&sql2);
            let digests: Vec<String> = chunk.iter().map(|r| encode_hex(&r.digest)).collect();
            for (r, digest) in chunk.iter().zip(&digests) {
                let s = &r.stored;
                q = q
                    .bind(s.rtype.as_str())
                    .bind(s.id.as_str())
                    .bind(s.version)
                    .bind(at_ms)
                    .bind(s.deleted as i64)
                    .bind(author.user_id.as_str())
                    .bind(author.org_id.as_str())
                    .bind(r.ciphertext.as_slice())
                    .bind(digest.as_str())
                    .bind(seal_id.as_str());
                q2 = q2
                    .bind(s.rtype.as_str())
                    .bind(s.id.as_str())
                    .bind(s.version)
                    .bind(author.org_id.as_str())
                    .bind(s.patient_id.as_deref())
                    .bind(r.created_ms)
                    .bind(at_ms)
                    .bind(s.deleted as i64);
            }
            q.execute(&mut *tx).await.map_err(StoreError::from)?;
            q2.execute(&mut *tx).await.map_err(StoreError::from)?;
            for r in chunk {
                if !r.stored.deleted {
                    index.extend(r.index);
                    index_of.push(out.len());
                }
                out.push(r.stored);
            }
        }
        // The index rows of the versions replaced go; the new versions' rows come.
        let replaced: Vec<&Stored> = out.iter().filter(|s| s.version > 1).collect();
        for chunk in replaced.chunks(CHUNK) {
            for t in ["health_tokens", "health_dates", "health_strings", "health_refs"] {
                // Anonymous placeholders on SQLite: numbered ones cost a scan each to bind.
                let keys = self.store.values_placeholders(chunk.len(), 2);
                let sql = self.store.sql(&format!("DELETE FROM {t} WHERE (type, id) IN ({keys})")).into_owned();
                let mut q = sqlx::query(&sql);
                for s in chunk {
                    q = q.bind(s.rtype.clone()).bind(s.id.clone());
                }
                q.execute(&mut *tx).await.map_err(StoreError::from)?;
            }
        }
        let owner_of = |k: usize| -> (&str, &str) {
            let s = &out[index_of[k]];
            (s.rtype.as_str(), s.id.as_str())
        };
        self.insert_index(&mut tx, &index, owner_of).await?;
        let root = trust::root(&author.org_id, at_ms, &digests);
        let signature = trust::sign_root(&key, &root);
        sqlx::query(&self.store.sql(
            "INSERT INTO health_seals (id, at_ms, org_id, author_id, author_name, activity, key_id, root, signature, members) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        ))
        .bind(seal_id.clone())
        .bind(at_ms)
        .bind(author.org_id.clone())
        .bind(author.user_id.clone())
        .bind(author.name.clone())
        .bind(activity.to_string())
        .bind(key_id)
        .bind(encode_hex(&root))
        .bind(encode_hex(&signature))
        .bind(digests.len() as i64)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        for ev in &audit {
            kernel::audit::append(&self.store, &mut tx, ev).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok((out, seal_id))
    }

    /// The current rows of the resources the changes name, locked on PostgreSQL; the same
    /// resource twice in one request is refused.
    async fn current_for_update(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        changes: &[(&str, &str)],
    ) -> Result<HashMap<(String, String), Current>, WriteError> {
        let mut seen = std::collections::HashSet::new();
        for (rtype, id) in changes {
            if !seen.insert((rtype, id)) {
                return Err(WriteError::Store(StoreError::Conflict(format!(
                    "{rtype}/{id} is changed twice in one request"
                ))));
            }
        }
        let mut out = HashMap::new();
        for chunk in changes.chunks(500) {
            // Anonymous placeholders on SQLite: numbered ones cost a scan each to bind.
            let keys = self.store.values_placeholders(chunk.len(), 2);
            let sql = format!(
                "SELECT r.type, r.id, r.version, r.owner_org, r.created_ms, v.digest FROM health_resources r \
                 JOIN health_versions v ON v.type = r.type AND v.id = r.id AND v.version = r.version \
                 WHERE (r.type, r.id) IN ({keys}){}",
                self.store.for_update().replace("FOR UPDATE", "FOR UPDATE OF r")
            );
            let sql = self.store.sql(&sql).into_owned();
            let mut q = sqlx::query(&sql);
            for (rtype, id) in chunk {
                q = q.bind(rtype.to_string()).bind(id.to_string());
            }
            for r in q.fetch_all(&mut **tx).await.map_err(StoreError::from)? {
                let (t, i): (String, String) = (col(&r, "type")?, col(&r, "id")?);
                let d: String = col(&r, "digest")?;
                let digest = decode_hex(&d)
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| StoreError::Corrupt(format!("{t}/{i} digest")))?;
                out.insert(
                    (t, i),
                    Current {
                        version: col(&r, "version")?,
                        owner: col(&r, "owner_org")?,
                        created_ms: col(&r, "created_ms")?,
                        digest,
                    },
                );
            }
        }
        Ok(out)
    }

    async fn insert_index<'a>(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        rows: &IndexRows,
        owner_of: impl Fn(usize) -> (&'a str, &'a str),
    ) -> Result<(), StoreError> {
        // Rows at most per statement: 5 values each, under SQLite's 32 766 variables.
        const CHUNK: usize = 4000;
        for (table, list) in [
            ("health_tokens (type, id, param, system, code)", &rows.rows[0]),
            ("health_dates (type, id, param, start_ms, end_ms)", &rows.rows[1]),
            ("health_strings (type, id, param, value, exact)", &rows.rows[2]),
            ("health_refs (type, id, param, target_type, target_id)", &rows.rows[3]),
        ] {
            for chunk in list.chunks(CHUNK) {
                let sql = format!("INSERT INTO {table} VALUES {}", self.store.values_placeholders(chunk.len(), 5));
                let mut q = sqlx::query(&sql);
                for (at, param, a, b) in chunk {
                    let (rt, id) = owner_of(*at);
                    q = q.bind(rt).bind(id).bind(*param);
                    q = match (a, b) {
                        (IndexValue::S(a), IndexValue::S(b)) => q.bind(a.as_str()).bind(b.as_str()),
                        (IndexValue::I(a), IndexValue::I(b)) => q.bind(*a).bind(*b),
                        (IndexValue::S(a), IndexValue::I(b)) => q.bind(a.as_str()).bind(*b),
                        (IndexValue::I(a), IndexValue::S(b)) => q.bind(*a).bind(b.as_str()),
                    };
                }
                q.execute(&mut **tx).await?;
            }
        }
        Ok(())
    }
}

/// Changes on their way to [`Records::commit_prepared`], with the clock reading they carry.
pub struct Prepared {
    at_ms: i64,
    items: Vec<Pending>,
}

impl Prepared {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The number of changes by resource type.
    pub fn counts(&self) -> std::collections::BTreeMap<String, usize> {
        let mut out = std::collections::BTreeMap::new();
        for i in &self.items {
            *out.entry(i.key().0.to_string()).or_default() += 1;
        }
        out
    }
}

enum Pending {
    /// Made ready as a new resource.
    Ready(Box<Ready>),
    /// To be made ready against the current row.
    Change(Change),
}

impl Pending {
    fn key(&self) -> (&str, &str) {
        match self {
            Pending::Ready(r) => (&r.stored.rtype, &r.stored.id),
            Pending::Change(c) => (&c.rtype, &c.id),
        }
    }
}

/// One version ready to write.
struct Ready {
    stored: Stored,
    created_ms: i64,
    digest: [u8; 32],
    ciphertext: Vec<u8>,
    /// Its index rows (ordinal 0).
    index: IndexRows,
}

/// A resource's current row, as a write finds it.
struct Current {
    version: i64,
    owner: String,
    created_ms: i64,
    digest: [u8; 32],
}

/// A search's SQL condition on `health_resources r`, with its arguments.
#[derive(Debug, Default)]
pub struct Filter {
    pub clauses: Vec<String>,
    /// Conditions on the search index, one per parameter: (priority as the driving condition,
    /// lower first; `None` never drives), the index table with its alias, the condition on it,
    /// negated or not.
    subs: Vec<Sub>,
    pub args: Vec<Arg>,
    /// A condition names the patient: the patient's compartment (`r.patient_id`, indexed) drives.
    has_patient: bool,
    /// The placeholder of the owning institution asked for.
    owner: Option<String>,
}

#[derive(Debug)]
struct Sub {
    priority: Option<u8>,
    table: &'static str,
    alias: &'static str,
    /// On the alias: type, parameter and the values' alternatives.
    cond: String,
    not: bool,
}

impl Filter {
    /// The WHERE conditions: one index condition drives as `r.id IN (…)` (the most selective
    /// kind, unless a patient's compartment already does), the others are correlated `EXISTS`
    /// probes of the resource's own index rows. SQLite plans neither well on its own.
    fn render(&self) -> Vec<String> {
        let driver = if self.has_patient {
            None
        } else {
            self.subs.iter().enumerate().filter_map(|(i, s)| s.priority.map(|p| (p, i))).min().map(|(_, i)| i)
        };
        let mut out = self.clauses.clone();
        if let Some(o) = &self.owner {
            // With a patient named, their compartment drives, not the institution's records
            // (`|| ''` keeps SQLite off the owner index; PostgreSQL plans it either way).
            out.push(if self.has_patient {
                format!("(r.owner_org || '') = {o}")
            } else {
                format!("r.owner_org = {o}")
            });
        }
        for (i, s) in self.subs.iter().enumerate() {
            let (t, a, not) = (s.table, s.alias, if s.not { "NOT " } else { "" });
            out.push(if Some(i) == driver {
                format!("r.id {not}IN (SELECT {a}.id FROM {t} {a} WHERE {})", s.cond)
            } else {
                format!("{not}EXISTS (SELECT 1 FROM {t} {a} WHERE {a}.id = r.id AND {})", s.cond)
            });
        }
        out
    }

    fn sub(&mut self, priority: Option<u8>, table: &'static str, alias: &'static str, cond: String, not: bool) {
        self.subs.push(Sub { priority, table, alias, cond, not });
    }
}

#[derive(Debug, Clone)]
pub enum Arg {
    S(String),
    I(i64),
}

impl Filter {
    fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }
    fn s(&mut self, v: &str) -> String {
        self.arg(Arg::S(v.to_string()))
    }
    fn i(&mut self, v: i64) -> String {
        self.arg(Arg::I(v))
    }

    /// Restricts to one patient's compartment.
    pub fn patient(&mut self, patient: &str) {
        let p = self.s(patient);
        self.clauses.push(format!("r.patient_id = {p}"));
        self.has_patient = true;
    }

    /// Restricts to records an institution owns.
    pub fn owner(&mut self, org: &str) {
        let p = self.s(org);
        self.owner = Some(p);
    }
}

/// Why a search cannot run as asked.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(pub String);

/// A date search value's condition on a target period held in the columns `ts` and `te`
/// (`DateSearch::matches` in SQL).
fn date_condition(f: &mut Filter, d: &DateSearch, now: i64, ts: &str, te: &str) -> String {
    let (s, e) = (d.period.start_ms, d.period.end_ms);
    let within = |f: &mut Filter| {
        let (a, b) = (f.i(s), f.i(e));
        format!("({ts} >= {a} AND {te} <= {b})")
    };
    match d.prefix {
        Prefix::Eq => within(f),
        Prefix::Ne => format!("NOT {}", within(f)),
        Prefix::Gt => format!("{te} > {}", f.i(e)),
        Prefix::Lt => format!("{ts} < {}", f.i(s)),
        Prefix::Ge => {
            let w = within(f);
            format!("({te} > {} OR {w})", f.i(e))
        }
        Prefix::Le => {
            let w = within(f);
            format!("({ts} < {} OR {w})", f.i(s))
        }
        Prefix::Sa => format!("{ts} >= {}", f.i(e)),
        Prefix::Eb => format!("{te} <= {}", f.i(s)),
        Prefix::Ap => {
            let gap = (now - s).abs().max((now - e).abs()) / 10;
            let (a, b) = (f.i(e + gap), f.i(s - gap));
            format!("({ts} < {a} AND {te} > {b})")
        }
    }
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// The SQL of a parsed query's tests (the resource type is the caller's clause).
pub fn filter(q: &Query, cipher: &FieldCipher, now: i64) -> Result<Filter, Unsupported> {
    let mut f = Filter::default();
    let rt = q.resource_type.clone();
    for t in &q.tests {
        let clause = match t {
            Test::Id(ids) => {
                let ps: Vec<String> = ids.iter().map(|i| f.s(i)).collect();
                format!("r.id IN ({})", ps.join(", "))
            }
            Test::LastUpdated(values) => {
                let parts: Vec<String> = values
                    .iter()
                    .map(|d| date_condition(&mut f, d, now, "r.last_updated_ms", "(r.last_updated_ms + 1)"))
                    .collect();
                format!("({})", parts.join(" OR "))
            }
            Test::Token { param, values, not } => {
                let blind = is_blind(&rt, param.name);
                let mut alts = vec![];
                for Token { system, code } in values {
                    let mut c = vec![];
                    match system {
                        System::Any => {}
                        System::None => c.push("t.system = ''".to_string()),
                        System::Is(s) => c.push(format!("t.system = {}", f.s(s))),
                    }
                    if let Some(code) = code {
                        let v = if blind { cipher.blind_index(code) } else { code.clone() };
                        c.push(format!("t.code = {}", f.s(&v)));
                    }
                    alts.push(format!("({})", if c.is_empty() { "1 = 1".into() } else { c.join(" AND ") }));
                }
                let (ty, pn) = (f.s(&rt), f.s(param.name));
                let cond = format!("t.type = {ty} AND t.param = {pn} AND ({})", alts.join(" OR "));
                let priority = match (*not, param.name) {
                    (true, _) => None,
                    (false, "identifier" | "telecom") => Some(1),
                    (false, _) => Some(4),
                };
                f.sub(priority, "health_tokens", "t", cond, *not);
                continue;
            }
            Test::Date { param, values } => {
                let alts: Vec<String> =
                    values.iter().map(|d| date_condition(&mut f, d, now, "d.start_ms", "d.end_ms")).collect();
                let (ty, pn) = (f.s(&rt), f.s(param.name));
                let cond = format!("d.type = {ty} AND d.param = {pn} AND ({})", alts.join(" OR "));
                f.sub(Some(5), "health_dates", "d", cond, false);
                continue;
            }
            Test::String { param, values, how } => {
                let blind = is_blind(&rt, param.name);
                let mut alts = vec![];
                for v in values {
                    alts.push(match (how, blind) {
                        (StringMatch::Exact, true) => format!("s.exact = {}", f.s(&cipher.blind_index(v))),
                        (StringMatch::Exact, false) => format!("s.exact = {}", f.s(v)),
                        // Names are kept only as keyed hashes: a whole name, family or given name.
                        (StringMatch::StartsWith, true) => format!("s.value = {}", f.s(&cipher.blind_index(v))),
                        (StringMatch::Contains, true) => {
                            return Err(Unsupported(format!(
                                "{rt}.{} is stored as a keyed hash: search a whole name, not :contains",
                                param.name
                            )));
                        }
                        (StringMatch::StartsWith, false) => {
                            format!("s.value LIKE {} ESCAPE '\\'", f.s(&format!("{}%", like_escape(v))))
                        }
                        (StringMatch::Contains, false) => {
                            format!("s.value LIKE {} ESCAPE '\\'", f.s(&format!("%{}%", like_escape(v))))
                        }
                    });
                }
                let (ty, pn) = (f.s(&rt), f.s(param.name));
                let cond = format!("s.type = {ty} AND s.param = {pn} AND ({})", alts.join(" OR "));
                f.sub(Some(3), "health_strings", "s", cond, false);
                continue;
            }
            // One patient named: their compartment, which the resources' own index serves.
            Test::Reference { param, values }
                if param.name == "patient"
                    && values.len() == 1
                    && values[0].0.as_deref().is_none_or(|t| t == "Patient") =>
            {
                f.patient(&values[0].1);
                continue;
            }
            Test::Reference { param, values } => {
                let mut alts = vec![];
                for (t, id) in values {
                    let mut c = vec![format!("x.target_id = {}", f.s(id))];
                    if let Some(t) = t {
                        c.push(format!("x.target_type = {}", f.s(t)));
                    }
                    alts.push(format!("({})", c.join(" AND ")));
                }
                let (ty, pn) = (f.s(&rt), f.s(param.name));
                let cond = format!("x.type = {ty} AND x.param = {pn} AND ({})", alts.join(" OR "));
                f.sub(Some(2), "health_refs", "x", cond, false);
                continue;
            }
            Test::Missing { param, missing } => {
                let table = match param.kind {
                    ParamType::Token => "health_tokens",
                    ParamType::Date => "health_dates",
                    ParamType::String => "health_strings",
                    ParamType::Reference => "health_refs",
                };
                let (ty, pn) = (f.s(&rt), f.s(param.name));
                f.sub(None, table, "m", format!("m.type = {ty} AND m.param = {pn}"), *missing);
                continue;
            }
        };
        f.clauses.push(clause);
    }
    Ok(f)
}

fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    args: &[Arg],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for a in args {
        q = match a {
            Arg::S(s) => q.bind(s.clone()),
            Arg::I(i) => q.bind(*i),
        };
    }
    q
}

/// A page of search results.
#[derive(Debug)]
pub struct Page {
    pub items: Vec<Stored>,
    /// More follow this page.
    pub more: bool,
    pub total: Option<i64>,
}

impl Records {
    /// Runs a search of current, not deleted resources of `rt`: newest first.
    pub async fn search(
        &self,
        rt: &str,
        f: Filter,
        count: usize,
        offset: usize,
        with_total: bool,
    ) -> Result<Page, StoreError> {
        let mut f = f;
        let ty = f.s(rt);
        let mut wh = vec![format!("r.type = {ty}"), "r.deleted = 0".to_string()];
        wh.extend(f.render());
        let wh = wh.join(" AND ");
        let (lim, off) = (count as i64 + 1, offset as i64);
        let sql = format!("{CURRENT} WHERE {wh} ORDER BY r.last_updated_ms DESC, r.id LIMIT {lim} OFFSET {off}");
        let sql = self.store.sql(&sql).into_owned();
        // On PostgreSQL a search is planned with its values, every time: a prepared statement
        // run more than five times gets a generic plan, which cannot tell a patient's dozen rows
        // from every vital sign of the district, and drove a patient's vital-signs search from
        // the category's rows once the tables had statistics (60 ms instead of 1 ms at 10 k
        // residents). SQLite's plans do not depend on the values: its statements stay cached.
        let persistent = self.store.backend() != kernel::store::Backend::Postgres;
        let rows = bind_all(sqlx::query(&sql), &f.args).persistent(persistent).fetch_all(self.store.reader()).await?;
        let mut items: Vec<Stored> = rows.iter().map(|r| self.stored(r)).collect::<Result<_, _>>()?;
        let more = items.len() > count;
        items.truncate(count);
        let total = if with_total {
            let sql = self.store.sql(&format!("SELECT COUNT(*) AS n FROM health_resources r WHERE {wh}")).into_owned();
            let row =
                bind_all(sqlx::query(&sql), &f.args).persistent(persistent).fetch_one(self.store.reader()).await?;
            Some(col::<i64>(&row, "n")?)
        } else {
            None
        };
        Ok(Page { items, more, total })
    }

    /// The current resources of `rt` with these ids (for `_include`), not deleted.
    pub async fn many(&self, rt: &str, ids: &[String]) -> Result<Vec<Stored>, StoreError> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let mut f = Filter::default();
        let ps: Vec<String> = ids.iter().map(|i| f.s(i)).collect();
        f.clauses.push(format!("r.id IN ({})", ps.join(", ")));
        Ok(self.search(rt, f, ids.len(), 0, false).await?.items)
    }

    /// Whether the patient is in care at the institution: an encounter there (open, or ended
    /// within `window_ms`; the patient's compartment drives, the dates are probed), a referral
    /// to it (standing, or ended within the window) or from it (within the window), or a
    /// family-doctor contract with it in force today.
    pub async fn in_care(&self, patient: &str, org: &str, window_ms: i64) -> Result<bool, StoreError> {
        let since = now_ms() - window_ms;
        let encounter = sqlx::query(&self.store.sql(
            "SELECT 1 AS one FROM health_resources r WHERE r.patient_id = $1 AND r.type = 'Encounter' AND (r.owner_org || '') = $2 \
             AND r.deleted = 0 AND EXISTS (SELECT 1 FROM health_dates d WHERE d.type = r.type AND d.id = r.id \
             AND d.param = 'date' AND d.end_ms >= $3) LIMIT 1",
        ))
        .bind(patient.to_string())
        .bind(org.to_string())
        .bind(since)
        .fetch_optional(self.store.reader())
        .await?;
        if encounter.is_some() {
            return Ok(true);
        }
        let referral = sqlx::query(&self.store.sql(
            "SELECT 1 AS one FROM health_referrals f WHERE f.patient_id = $1 AND f.updated_ms >= $3 \
             AND ((f.to_org = $2 AND f.state NOT IN ('rejected', 'cancelled')) OR f.from_org = $2) LIMIT 1",
        ))
        .bind(patient.to_string())
        .bind(org.to_string())
        .bind(since)
        .fetch_optional(self.store.reader())
        .await?;
        if referral.is_some() {
            return Ok(true);
        }
        // Asked for a remote opinion or reading, while the request is open.
        let remote = sqlx::query(&self.store.sql(
            "SELECT 1 AS one FROM health_remote WHERE patient_id = $1 AND to_org = $2 \
             AND state IN ('requested', 'accepted') LIMIT 1",
        ))
        .bind(patient.to_string())
        .bind(org.to_string())
        .fetch_optional(self.store.reader())
        .await?;
        if remote.is_some() {
            return Ok(true);
        }
        let today = crate::contract::today();
        let contract = sqlx::query(&self.store.sql(
            "SELECT 1 AS one FROM health_contracts k WHERE k.patient_id = $1 AND k.org_id = $2 \
             AND k.state <> 'terminated' AND k.start_day <= $3 AND k.end_day >= $3 LIMIT 1",
        ))
        .bind(patient.to_string())
        .bind(org.to_string())
        .bind(today)
        .fetch_optional(self.store.reader())
        .await?;
        Ok(contract.is_some())
    }

    /// The start of the patient's first encounter at the institution that began at or after
    /// `since_ms` (a referral's follow-up).
    pub async fn first_encounter_since(
        &self,
        patient: &str,
        org: &str,
        since_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(&self.store.sql(
            "SELECT MIN(d.start_ms) AS first FROM health_resources r JOIN health_dates d ON d.type = r.type AND d.id = r.id \
             AND d.param = 'date' WHERE r.patient_id = $1 AND r.type = 'Encounter' AND (r.owner_org || '') = $2 \
             AND r.deleted = 0 AND d.start_ms >= $3",
        ))
        .bind(patient.to_string())
        .bind(org.to_string())
        .bind(since_ms)
        .fetch_one(self.store.reader())
        .await?;
        kernel::store::col(&row, "first")
    }

    /// The patient's name as the record gives it (the first name's text, else family and
    /// given names), for the lists of the care workflows.
    pub async fn patient_name(&self, patient: &str) -> Result<Option<String>, StoreError> {
        let Some(p) = self.current("Patient", patient).await? else { return Ok(None) };
        let n = &p.body["name"][0];
        Ok(n["text"].as_str().map(str::to_string).or_else(|| {
            let family = n["family"].as_str().unwrap_or_default();
            let given: String = n["given"].as_array().into_iter().flatten().filter_map(|g| g.as_str()).collect();
            let whole = format!("{family}{given}");
            (!whole.is_empty()).then_some(whole)
        }))
    }

    /// Current Patients with ids after `after`, in id order, at most `n` (for loading the index).
    pub async fn patients_after(&self, after: &str, n: i64) -> Result<Vec<Stored>, StoreError> {
        let rows = sqlx::query(&self.store.sql(&format!(
            "{CURRENT} WHERE r.type = 'Patient' AND r.id > $1 AND r.deleted = 0 ORDER BY r.id LIMIT $2"
        )))
        .bind(after.to_string())
        .bind(n)
        .fetch_all(self.store.reader())
        .await?;
        rows.iter().map(|r| self.stored(r)).collect()
    }

    /// Whether the institution holds any current record of the patient.
    pub async fn owns_any(&self, patient: &str, org: &str) -> Result<bool, StoreError> {
        let row = sqlx::query(&self.store.sql(
            "SELECT 1 AS one FROM health_resources WHERE patient_id = $1 AND (owner_org || '') = $2 AND deleted = 0 LIMIT 1",
        ))
        .bind(patient.to_string())
        .bind(org.to_string())
        .fetch_optional(self.store.reader())
        .await?;
        Ok(row.is_some())
    }

    /// The patient's active consents (current versions).
    pub async fn consents(&self, patient: &str) -> Result<Vec<Value>, StoreError> {
        let mut f = Filter::default();
        f.patient(patient);
        let page = self.search("Consent", f, 200, 0, false).await?;
        Ok(page.items.into_iter().map(|s| s.body).filter(|b| b["status"] == "active").collect())
    }

    /// The Patient whose citizen-ID identifier has this blind index.
    pub async fn patient_by_citizen_bidx(&self, bidx: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(&self.store.sql(
            "SELECT t.id FROM health_tokens t JOIN health_resources r ON r.type = t.type AND r.id = t.id \
             WHERE t.type = 'Patient' AND t.param = 'identifier' AND t.system = $1 AND t.code = $2 AND r.deleted = 0 \
             ORDER BY r.created_ms LIMIT 1",
        ))
        .bind(crate::generate::CITIZEN_ID_SYSTEM)
        .bind(bidx.to_string())
        .fetch_optional(self.store.reader())
        .await?;
        row.map(|r| col::<String>(&r, "id")).transpose()
    }

    /// Whether a current, not deleted resource exists.
    pub async fn exists(&self, rt: &str, id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query(
            &self.store.sql("SELECT 1 AS one FROM health_resources WHERE type = $1 AND id = $2 AND deleted = 0"),
        )
        .bind(rt.to_string())
        .bind(id.to_string())
        .fetch_optional(self.store.reader())
        .await?;
        Ok(row.is_some())
    }
}

/// What `$verify` found for one version.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VersionCheck {
    pub version: i64,
    pub ok: bool,
    pub seal: String,
    pub problem: Option<String>,
}

impl Records {
    /// Checks every version of a resource against its digest chain and its seal.
    pub async fn verify(&self, rt: &str, id: &str) -> Result<Vec<VersionCheck>, StoreError> {
        self.verify_with(rt, id, &mut HashMap::new()).await
    }

    /// [`Records::verify`], with the seals already checked (one seal covers a whole import
    /// batch: checked once).
    pub async fn verify_with(
        &self,
        rt: &str,
        id: &str,
        seals: &mut HashMap<String, Result<(), String>>,
    ) -> Result<Vec<VersionCheck>, StoreError> {
        let rows = sqlx::query(&self.store.sql(
            "SELECT version, body, digest, seal_id FROM health_versions WHERE type = $1 AND id = $2 ORDER BY version",
        ))
        .bind(rt.to_string())
        .bind(id.to_string())
        .fetch_all(self.store.reader())
        .await?;
        let mut out = vec![];
        let mut previous: Option<[u8; 32]> = None;
        let mut broken = false;
        for r in &rows {
            let version: i64 = col(r, "version")?;
            let seal: String = col(r, "seal_id")?;
            let stored_digest: String = col(r, "digest")?;
            let problem = if broken {
                Some("an earlier version is broken".to_string())
            } else {
                match self.check_content(
                    rt,
                    id,
                    version,
                    &col::<Vec<u8>>(r, "body")?,
                    &stored_digest,
                    previous.as_ref(),
                ) {
                    Err(p) => Some(p),
                    Ok(()) => {
                        if !seals.contains_key(&seal) {
                            let checked = self.check_seal(&seal).await?;
                            seals.insert(seal.clone(), checked);
                        }
                        seals.get(&seal).and_then(|r| r.clone().err())
                    }
                }
            };
            broken |= problem.is_some();
            previous = decode_hex(&stored_digest).and_then(|b| <[u8; 32]>::try_from(b).ok());
            out.push(VersionCheck { version, ok: problem.is_none(), seal, problem });
        }
        Ok(out)
    }

    /// Every version of every resource; `broken` is called for each version that fails.
    /// Returns (versions checked, versions broken).
    pub async fn verify_all(
        &self,
        mut broken: impl FnMut(&str, &str, &VersionCheck),
    ) -> Result<(usize, usize), StoreError> {
        let mut seals = HashMap::new();
        let (mut checked, mut bad) = (0, 0);
        let mut after = (String::new(), String::new());
        loop {
            let rows =
                sqlx::query(&self.store.sql(
                    "SELECT type, id FROM health_resources WHERE (type, id) > ($1, $2) ORDER BY type, id LIMIT 1000",
                ))
                .bind(after.0.clone())
                .bind(after.1.clone())
                .fetch_all(self.store.reader())
                .await?;
            if rows.is_empty() {
                return Ok((checked, bad));
            }
            for r in &rows {
                let (rt, id): (String, String) = (col(r, "type")?, col(r, "id")?);
                for v in self.verify_with(&rt, &id, &mut seals).await? {
                    checked += 1;
                    if !v.ok {
                        bad += 1;
                        broken(&rt, &id, &v);
                    }
                }
                after = (rt, id);
            }
            // Seals of batches already passed are not met again.
            if seals.len() > 100_000 {
                seals.clear();
            }
        }
    }

    /// Whether a version's stored body is what its digest says, chained to the previous one.
    fn check_content(
        &self,
        rt: &str,
        id: &str,
        version: i64,
        blob: &[u8],
        stored_digest: &str,
        previous: Option<&[u8; 32]>,
    ) -> Result<(), String> {
        let Ok(body) = self.decrypt(rt, id, version, blob) else {
            return Err("the stored body does not decrypt: changed outside the platform".into());
        };
        if body["resourceType"] != rt || body["id"] != id || body["meta"]["versionId"] != version.to_string().as_str() {
            return Err("the stored body is another resource's or another version's".into());
        }
        if encode_hex(&trust::digest(&body, previous)) != stored_digest {
            return Err("the content differs from what was sealed".into());
        }
        Ok(())
    }

    /// Whether a seal's root covers the stored digests of its versions and its signature
    /// verifies with the institution's published key.
    async fn check_seal(&self, seal_id: &str) -> Result<Result<(), String>, StoreError> {
        let Some(seal) = sqlx::query(&self.store.sql(
            "SELECT s.org_id, s.at_ms, s.root, s.signature, k.public_key FROM health_seals s \
             LEFT JOIN health_keys k ON k.id = s.key_id WHERE s.id = $1",
        ))
        .bind(seal_id.to_string())
        .fetch_optional(self.store.reader())
        .await?
        else {
            return Ok(Err("its seal is missing".into()));
        };
        let members = sqlx::query(&self.store.sql("SELECT digest FROM health_versions WHERE seal_id = $1"))
            .bind(seal_id.to_string())
            .fetch_all(self.store.reader())
            .await?;
        let digests: Vec<[u8; 32]> = members
            .iter()
            .filter_map(|m| col::<String>(m, "digest").ok())
            .filter_map(|h| decode_hex(&h).and_then(|b| <[u8; 32]>::try_from(b).ok()))
            .collect();
        let org: String = col(&seal, "org_id")?;
        let root = trust::root(&org, col(&seal, "at_ms")?, &digests);
        if encode_hex(&root) != col::<String>(&seal, "root")? {
            return Ok(Err("the seal does not cover the stored digests".into()));
        }
        let Some(key) = col::<Option<String>>(&seal, "public_key")?
            .and_then(|h| trust::verifying_key_from_hex(trust::DEFAULT_USER_ID, &h))
        else {
            return Ok(Err("the seal's key is unknown".into()));
        };
        let sig = decode_hex(&col::<String>(&seal, "signature")?).unwrap_or_default();
        if !trust::verify_root(&key, &root, &sig) {
            return Ok(Err("the signature does not verify with the institution's key".into()));
        }
        Ok(Ok(()))
    }

    /// An organisation by id or exact name: (id, name).
    /// After a bulk load on PostgreSQL, gathers the planner's statistics of the record tables
    /// now, rather than whenever autovacuum comes to it: until then they describe tables of a
    /// fraction of the size. Nothing on SQLite, whose plans are fixed by the queries' shape.
    pub async fn refresh_statistics(&self) -> Result<(), StoreError> {
        if self.store.backend() == kernel::store::Backend::Postgres {
            sqlx::query(
                "ANALYZE health_resources, health_versions, health_tokens, health_dates, health_strings, health_refs",
            )
            .execute(self.store.reader())
            .await?;
        }
        Ok(())
    }

    pub async fn organisation(&self, id_or_name: &str) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query(&self.store.sql("SELECT id, name FROM organisations WHERE id = $1 OR name = $1"))
            .bind(id_or_name.to_string())
            .fetch_optional(self.store.reader())
            .await?;
        row.map(|r| Ok((col(&r, "id")?, col(&r, "name")?))).transpose()
    }
}

/// A seal rendered as a FHIR Provenance, with the targets it signs.
#[derive(Debug, Clone)]
pub struct ProvenanceView {
    pub targets: Vec<(String, String)>,
    pub resource: Value,
}

impl Records {
    /// When a resource was first written.
    pub async fn created_ms(&self, rt: &str, id: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(&self.store.sql("SELECT created_ms FROM health_resources WHERE type = $1 AND id = $2"))
            .bind(rt.to_string())
            .bind(id.to_string())
            .fetch_optional(self.store.reader())
            .await?;
        row.map(|r| col::<i64>(&r, "created_ms")).transpose()
    }

    /// The current, not deleted resources of a patient's compartment (the Patient excluded),
    /// newest first, at most `limit`.
    pub async fn compartment(&self, patient: &str, limit: i64) -> Result<Vec<Stored>, StoreError> {
        let rows = sqlx::query(&self.store.sql(&format!(
            "{CURRENT} WHERE r.patient_id = $1 AND r.deleted = 0 AND r.type <> 'Patient' \
             ORDER BY r.last_updated_ms DESC LIMIT $2"
        )))
        .bind(patient.to_string())
        .bind(limit)
        .fetch_all(self.store.reader())
        .await?;
        rows.iter().map(|r| self.stored(r)).collect()
    }

    /// The seals of every version of a resource, oldest first.
    pub async fn seals_of(&self, rt: &str, id: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            &self.store.sql("SELECT seal_id FROM health_versions WHERE type = $1 AND id = $2 ORDER BY version"),
        )
        .bind(rt.to_string())
        .bind(id.to_string())
        .fetch_all(self.store.reader())
        .await?;
        rows.iter().map(|r| col::<String>(r, "seal_id")).collect()
    }

    /// A seal as a Provenance: its version-specific targets, when, who for which institution,
    /// and the SM2 signature over the seal's root.
    pub async fn provenance(&self, seal_id: &str) -> Result<Option<ProvenanceView>, StoreError> {
        let Some(s) = sqlx::query(&self.store.sql(
            "SELECT id, at_ms, org_id, author_id, author_name, activity, key_id, root, signature FROM health_seals WHERE id = $1",
        ))
        .bind(seal_id.to_string())
        .fetch_optional(self.store.reader())
        .await?
        else {
            return Ok(None);
        };
        let members = sqlx::query(
            &self
                .store
                .sql("SELECT type, id, version FROM health_versions WHERE seal_id = $1 ORDER BY type, id, version"),
        )
        .bind(seal_id.to_string())
        .fetch_all(self.store.reader())
        .await?;
        let mut targets = vec![];
        let mut refs = vec![];
        for m in &members {
            let (t, i, v): (String, String, i64) = (col(m, "type")?, col(m, "id")?, col(m, "version")?);
            refs.push(json!({ "reference": format!("{t}/{i}/_history/{v}") }));
            targets.push((t, i));
        }
        let at = instant(col(&s, "at_ms")?);
        let org: String = col(&s, "org_id")?;
        let activity: String = col(&s, "activity")?;
        let code = match activity.as_str() {
            "create" | "import" => "CREATE",
            "delete" => "DELETE",
            _ => "UPDATE",
        };
        let sig = decode_hex(&col::<String>(&s, "signature")?).unwrap_or_default();
        let resource = json!({
            "resourceType": "Provenance",
            "id": seal_id,
            "target": refs,
            "recorded": at,
            "activity": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": code }] },
            "agent": [{
                "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "author" }] },
                "who": { "identifier": { "system": "urn:wuqing:user", "value": col::<String>(&s, "author_id")? },
                         "display": col::<String>(&s, "author_name")? },
                "onBehalfOf": { "reference": format!("Organization/{org}") },
            }],
            "signature": [{
                "type": [{ "system": "urn:iso-astm:E1762-95:2013", "code": "1.2.840.10065.1.12.1.1", "display": "Author's Signature" }],
                "when": at,
                "who": { "reference": format!("Organization/{org}") },
                "targetFormat": "application/octet-stream",
                "sigFormat": "application/x-sm2-signature",
                "data": base64(&sig),
                "extension": [
                    { "url": "urn:wuqing:seal-root", "valueString": col::<String>(&s, "root")? },
                    { "url": "urn:wuqing:seal-key", "valueString": col::<String>(&s, "key_id")? },
                ],
            }],
        });
        Ok(Some(ProvenanceView { targets, resource }))
    }
}

fn base64(b: &[u8]) -> String {
    data_encoding::BASE64.encode(b)
}
