//! Organisations (组织机构): a tree from the district down through bureaus to enterprises and
//! institutions. Scopes are computed from it.

use crate::access::{Caller, Role, Scope};
use crate::audit::{self, Actor, Event, Outcome};
use crate::error::{ApiError, ApiResult, Code};
use crate::store::{Store, StoreResult, col, ms_to_rfc3339, now_ms};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use utoipa::ToSchema;

/// What an organisation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrgKind {
    /// 区政府
    District,
    /// 委办局: a regulating bureau.
    Bureau,
    /// 企业
    Enterprise,
    /// 医疗机构/事业单位
    Institution,
    /// 居民: the pseudo-organisation residents belong to.
    Public,
}

impl OrgKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OrgKind::District => "district",
            OrgKind::Bureau => "bureau",
            OrgKind::Enterprise => "enterprise",
            OrgKind::Institution => "institution",
            OrgKind::Public => "public",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::District, Self::Bureau, Self::Enterprise, Self::Institution, Self::Public]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// The domains a bureau regulates; enterprises carry the domain they are regulated in.
pub const DOMAINS: &[(&str, &str)] = &[
    ("transport", "交通"),
    ("health", "卫生健康"),
    ("agriculture", "农业"),
    ("commerce", "商务"),
    ("environment", "环保"),
    ("emergency", "应急"),
    ("industry", "工业和信息化"),
    ("talent", "人才"),
    ("culture", "文化"),
    ("government", "政务"),
];

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Organisation {
    pub id: String,
    pub parent_id: Option<String>,
    /// Chinese name (registered name).
    pub name: String,
    pub name_en: String,
    pub kind: OrgKind,
    pub domain: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrganisation {
    pub parent_id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub name_en: String,
    pub kind: OrgKind,
    #[serde(default)]
    pub domain: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganisationPatch {
    pub name: Option<String>,
    pub name_en: Option<String>,
    pub domain: Option<String>,
}

fn row_to_org(r: &sqlx::any::AnyRow) -> StoreResult<Organisation> {
    let kind: String = col(r, "kind")?;
    Ok(Organisation {
        id: col(r, "id")?,
        parent_id: col(r, "parent_id")?,
        name: col(r, "name")?,
        name_en: col(r, "name_en")?,
        kind: OrgKind::parse(&kind).ok_or_else(|| crate::store::StoreError::Corrupt(format!("org kind {kind}")))?,
        domain: col(r, "domain")?,
        created_at: ms_to_rfc3339(col(r, "created_ms")?),
        updated_at: ms_to_rfc3339(col(r, "updated_ms")?),
    })
}

/// Validates a display name: 1..=100 characters, no control characters.
pub fn check_name(field: &str, s: &str, max: usize) -> ApiResult<String> {
    let t = s.trim();
    if t.is_empty() || t.chars().count() > max || t.chars().any(char::is_control) {
        return Err(ApiError::field(
            Code::InvalidField,
            field,
            format!("{field} must have 1 to {max} characters and no control characters"),
        ));
    }
    Ok(t.to_string())
}

fn check_domain(d: &str) -> ApiResult<()> {
    if d.is_empty() || DOMAINS.iter().any(|(k, _)| *k == d) {
        Ok(())
    } else {
        Err(ApiError::field(Code::InvalidField, "domain", format!("unknown domain {d:?}")))
    }
}

/// The organisation tree, cached in memory and refreshed when this node changes it or after a
/// few seconds (another node may have changed it).
#[derive(Clone, Default)]
pub struct OrgTree {
    inner: Arc<RwLock<Option<Cached>>>,
}

#[derive(Debug, Default)]
pub struct TreeData {
    parent: HashMap<String, Option<String>>,
    domain: HashMap<String, String>,
    children: HashMap<String, Vec<String>>,
}

impl TreeData {
    fn subtree(&self, root: &str) -> Vec<String> {
        let mut out = vec![];
        let mut stack = vec![root.to_string()];
        while let Some(id) = stack.pop() {
            if let Some(ch) = self.children.get(&id) {
                stack.extend(ch.iter().cloned());
            }
            out.push(id);
        }
        out
    }
}

type Cached = (Instant, Arc<TreeData>);

const TREE_TTL: Duration = Duration::from_secs(5);

impl OrgTree {
    pub fn invalidate(&self) {
        if let Ok(mut g) = self.inner.write() {
            *g = None;
        }
    }

    async fn data(&self, store: &Store) -> StoreResult<Arc<TreeData>> {
        if let Ok(g) = self.inner.read() {
            if let Some((at, d)) = g.as_ref() {
                if at.elapsed() < TREE_TTL {
                    return Ok(d.clone());
                }
            }
        }
        let rows = sqlx::query("SELECT id, parent_id, domain FROM organisations").fetch_all(store.reader()).await?;
        let mut d = TreeData::default();
        for r in &rows {
            let id: String = col(r, "id")?;
            let parent: Option<String> = col(r, "parent_id")?;
            if let Some(p) = &parent {
                d.children.entry(p.clone()).or_default().push(id.clone());
            }
            d.domain.insert(id.clone(), col(r, "domain")?);
            d.parent.insert(id, parent);
        }
        let d = Arc::new(d);
        if let Ok(mut g) = self.inner.write() {
            *g = Some((Instant::now(), d.clone()));
        }
        Ok(d)
    }

    /// The organisations a user of `role` in `org_id` may see.
    ///
    /// Administrators see every organisation (their job is accounts and security, not domain
    /// data; each domain module decides what admins may read of its own records). A regulator
    /// sees its bureau's subtree and every organisation of its bureau's domain. Everyone else sees
    /// their own organisation's subtree.
    pub async fn scope_for(&self, store: &Store, role: Role, org_id: &str) -> StoreResult<Scope> {
        if role.is_admin() {
            return Ok(Scope::All);
        }
        let d = self.data(store).await?;
        match role {
            Role::Regulator => {
                let mut v = d.subtree(org_id);
                if let Some(dom) = d.domain.get(org_id).filter(|s| !s.is_empty()) {
                    for (id, od) in &d.domain {
                        if od == dom && !v.contains(id) {
                            v.extend(d.subtree(id));
                        }
                    }
                }
                v.sort();
                v.dedup();
                Ok(Scope::Orgs(v))
            }
            Role::Resident => Ok(Scope::Orgs(vec![])),
            _ => Ok(Scope::Orgs(d.subtree(org_id))),
        }
    }

    /// Whether `id` exists (from the cache).
    pub async fn exists(&self, store: &Store, id: &str) -> StoreResult<bool> {
        Ok(self.data(store).await?.parent.contains_key(id))
    }

    /// The domain of organisation `id` (from the cache): `None` when there is no such
    /// organisation, `Some("")` when it has no domain.
    pub async fn domain_of(&self, store: &Store, id: &str) -> StoreResult<Option<String>> {
        Ok(self.data(store).await?.domain.get(id).cloned())
    }
}

/// Organisations the caller may see, optionally under `parent` and of `kind`.
pub async fn list(
    store: &Store,
    scope: &Scope,
    kind: Option<OrgKind>,
    q: Option<&str>,
    limit: i64,
    offset: i64,
) -> StoreResult<(Vec<Organisation>, i64)> {
    let rows = sqlx::query(
        "SELECT id, parent_id, name, name_en, kind, domain, created_ms, updated_ms FROM organisations ORDER BY name",
    )
    .fetch_all(store.reader())
    .await?;
    let mut all = vec![];
    for r in &rows {
        let o = row_to_org(r)?;
        if !scope.contains(&o.id) {
            continue;
        }
        if kind.is_some_and(|k| k != o.kind) {
            continue;
        }
        if let Some(q) = q {
            if !o.name.contains(q) && !o.name_en.to_lowercase().contains(&q.to_lowercase()) {
                continue;
            }
        }
        all.push(o);
    }
    let total = all.len() as i64;
    let page = all.into_iter().skip(offset.max(0) as usize).take(limit.max(0) as usize).collect();
    Ok((page, total))
}

pub async fn get(store: &Store, id: &str) -> StoreResult<Option<Organisation>> {
    let r = sqlx::query(&store.sql(
        "SELECT id, parent_id, name, name_en, kind, domain, created_ms, updated_ms FROM organisations WHERE id = $1",
    ))
    .bind(id)
    .fetch_optional(store.reader())
    .await?;
    r.as_ref().map(row_to_org).transpose()
}

/// Creates an organisation; `actor` is recorded in the audit log in the same transaction.
pub async fn create(store: &Store, tree: &OrgTree, actor: Actor, new: NewOrganisation) -> ApiResult<Organisation> {
    let name = check_name("name", &new.name, 100)?;
    let name_en = if new.name_en.trim().is_empty() { String::new() } else { check_name("name_en", &new.name_en, 200)? };
    check_domain(&new.domain)?;
    match (&new.parent_id, new.kind) {
        (None, OrgKind::District) => {}
        (None, _) => return Err(ApiError::field(Code::InvalidField, "parent_id", "only the district has no parent")),
        (Some(p), _) => {
            if !tree.exists(store, p).await? && get(store, p).await?.is_none() {
                return Err(ApiError::field(Code::InvalidField, "parent_id", "no such parent organisation"));
            }
        }
    }
    let id = uuid::Uuid::now_v7().to_string();
    let now = now_ms();
    let mut tx = store.begin().await?;
    sqlx::query(&store.sql(
        "INSERT INTO organisations (id, parent_id, name, name_en, kind, domain, created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    ))
    .bind(id.clone())
    .bind(new.parent_id.clone())
    .bind(name.clone())
    .bind(name_en.clone())
    .bind(new.kind.as_str())
    .bind(new.domain.clone())
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(crate::store::StoreError::from)?;
    audit::append(
        store,
        &mut tx,
        &Event::new(actor, "org.create", "organisation", Some(&id), Outcome::Success)
            .detail(serde_json::json!({"name": name, "kind": new.kind.as_str(), "parent_id": new.parent_id})),
    )
    .await?;
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    tree.invalidate();
    get(store, &id).await?.ok_or_else(|| ApiError::internal("organisation vanished after insert"))
}

pub async fn update(
    store: &Store,
    tree: &OrgTree,
    caller: &Caller,
    id: &str,
    patch: OrganisationPatch,
) -> ApiResult<Organisation> {
    let cur = get(store, id).await?.ok_or_else(|| ApiError::not_found("organisation"))?;
    let name = match &patch.name {
        Some(n) => check_name("name", n, 100)?,
        None => cur.name.clone(),
    };
    let name_en = match &patch.name_en {
        Some(n) if !n.trim().is_empty() => check_name("name_en", n, 200)?,
        Some(_) => String::new(),
        None => cur.name_en.clone(),
    };
    let domain = patch.domain.clone().unwrap_or(cur.domain.clone());
    check_domain(&domain)?;
    let mut tx = store.begin().await?;
    sqlx::query(
        &store.sql("UPDATE organisations SET name = $1, name_en = $2, domain = $3, updated_ms = $4 WHERE id = $5"),
    )
    .bind(name.clone())
    .bind(name_en)
    .bind(domain.clone())
    .bind(now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await
    .map_err(crate::store::StoreError::from)?;
    audit::append(
        store,
        &mut tx,
        &Event::new(Actor::of(caller), "org.update", "organisation", Some(id), Outcome::Success)
            .detail(serde_json::json!({"name": name, "domain": domain})),
    )
    .await?;
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    tree.invalidate();
    get(store, id).await?.ok_or_else(|| ApiError::not_found("organisation"))
}
