//! The demo district (`serve --demo`): Wuqing's government, bureaus, enterprises and institutions,
//! and a user of every role. Seeded once; later starts find it and change nothing.

use crate::access::{Classification, Role};
use crate::audit::Actor;
use crate::http::AppState;
use crate::orgs::{self, NewOrganisation, OrgKind};
use crate::store::{StoreResult, col};
use crate::users::{self, CreateOptions, NewUser};
use std::collections::HashMap;

/// One demo login.
#[derive(Debug, Clone)]
pub struct DemoAccount {
    pub role: Role,
    pub username: String,
    pub password: String,
}

/// What modules share while seeding: the organisations by key, the accounts created.
#[derive(Debug, Default)]
pub struct DemoContext {
    pub orgs: HashMap<String, String>,
    pub accounts: Vec<DemoAccount>,
}

pub async fn is_seeded(state: &AppState, key: &str) -> StoreResult<bool> {
    let r = sqlx::query(&state.store.sql("SELECT value FROM demo_state WHERE key = $1"))
        .bind(key)
        .fetch_optional(state.store.reader())
        .await?;
    Ok(r.is_some())
}

pub async fn mark_seeded(state: &AppState, key: &str, value: &str) -> StoreResult<()> {
    let mut tx = state.store.begin().await?;
    sqlx::query(&state.store.sql("INSERT INTO demo_state (key, value) VALUES ($1, $2)"))
        .bind(key)
        .bind(value)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// A demo account as a caller, so that a module seeds its demo records through the same
/// services (checks, history, audit) a person's requests go through. Only for `--demo`.
pub async fn act_as(state: &AppState, username: &str) -> anyhow::Result<crate::access::Caller> {
    let u = users::by_username(&state.store, username)
        .await?
        .ok_or_else(|| anyhow::anyhow!("demo account {username} missing"))?;
    let scope = state.orgs.scope_for(&state.store, u.role, &u.org_id).await?;
    Ok(crate::access::Caller {
        user_id: u.id,
        username: u.username,
        role: u.role,
        org_id: u.org_id,
        clearance: u.clearance,
        scope,
        token_scope: crate::access::TokenScope::ReadWrite,
        credential_id: "demo".into(),
        via_token: false,
        source_ip: None,
        restriction: None,
    })
}

/// The organisation ids of a seeded demo, by key.
pub async fn org_ids(state: &AppState) -> StoreResult<HashMap<String, String>> {
    let rows = sqlx::query("SELECT key, value FROM demo_state").fetch_all(state.store.reader()).await?;
    let mut m = HashMap::new();
    for r in &rows {
        let k: String = col(r, "key")?;
        if let Some(k) = k.strip_prefix("org:") {
            m.insert(k.to_string(), col(r, "value")?);
        }
    }
    Ok(m)
}

/// A valid-looking citizen ID for a fictitious person: Wuqing's region code, a birth date, a
/// sequence and the GB 11643 check character.
pub fn fictitious_citizen_id(birth: &str, seq: u32) -> String {
    let body = format!("120114{birth}{seq:03}");
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body.bytes().zip(W).map(|(d, w)| u32::from(d - b'0') * w).sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{body}{check}")
}

/// key, parent key, name, English name, kind, domain
type OrgRow = (&'static str, Option<&'static str>, &'static str, &'static str, OrgKind, &'static str);

const ORGS: &[OrgRow] = &[
    ("district", None, "天津市武清区人民政府", "Wuqing District People's Government", OrgKind::District, "government"),
    (
        "transport_bureau",
        Some("district"),
        "武清区交通运输局",
        "Wuqing District Transport Bureau",
        OrgKind::Bureau,
        "transport",
    ),
    (
        "health_commission",
        Some("district"),
        "武清区卫生健康委员会",
        "Wuqing District Health Commission",
        OrgKind::Bureau,
        "health",
    ),
    (
        "agriculture_commission",
        Some("district"),
        "武清区农业农村委员会",
        "Wuqing District Agriculture and Rural Affairs Commission",
        OrgKind::Bureau,
        "agriculture",
    ),
    (
        "commerce_bureau",
        Some("district"),
        "武清区商务局",
        "Wuqing District Commerce Bureau",
        OrgKind::Bureau,
        "commerce",
    ),
    (
        "environment_bureau",
        Some("district"),
        "武清区生态环境局",
        "Wuqing District Ecology and Environment Bureau",
        OrgKind::Bureau,
        "environment",
    ),
    (
        "emergency_bureau",
        Some("district"),
        "武清区应急管理局",
        "Wuqing District Emergency Management Bureau",
        OrgKind::Bureau,
        "emergency",
    ),
    (
        "industry_bureau",
        Some("district"),
        "武清区工业和信息化局",
        "Wuqing District Industry and Information Technology Bureau",
        OrgKind::Bureau,
        "industry",
    ),
    (
        "shunda",
        Some("transport_bureau"),
        "天津武清顺达危险货物运输有限公司",
        "Tianjin Wuqing Shunda Dangerous Goods Transport Co., Ltd.",
        OrgKind::Enterprise,
        "transport",
    ),
    (
        "jingjin_coach",
        Some("transport_bureau"),
        "天津京津城际客运有限公司",
        "Tianjin Jingjin Intercity Coach Co., Ltd.",
        OrgKind::Enterprise,
        "transport",
    ),
    (
        "wuqing_bus",
        Some("transport_bureau"),
        "武清区公共交通有限公司",
        "Wuqing Public Transport Co., Ltd.",
        OrgKind::Enterprise,
        "transport",
    ),
    (
        "yangcun_taxi",
        Some("transport_bureau"),
        "武清杨村出租汽车有限公司",
        "Wuqing Yangcun Taxi Co., Ltd.",
        OrgKind::Enterprise,
        "transport",
    ),
    (
        "people_hospital",
        Some("health_commission"),
        "天津市武清区人民医院",
        "Tianjin Wuqing District People's Hospital",
        OrgKind::Institution,
        "health",
    ),
    (
        "tcm_hospital",
        Some("health_commission"),
        "天津市武清区中医医院",
        "Tianjin Wuqing District Hospital of Traditional Chinese Medicine",
        OrgKind::Institution,
        "health",
    ),
    (
        "yangcun_chc",
        Some("health_commission"),
        "武清区杨村街社区卫生服务中心",
        "Yangcun Subdistrict Community Health Service Centre",
        OrgKind::Institution,
        "health",
    ),
    ("residents", Some("district"), "武清区居民", "Wuqing residents", OrgKind::Public, ""),
];

/// (role, username, display name, org key, clearance, phone, birth date for a citizen ID)
const USERS: &[(Role, &str, &str, &str, Classification, &str, &str)] = &[
    (
        Role::SystemAdmin,
        "sysadmin",
        "系统管理员 张伟",
        "district",
        Classification::Sensitive,
        "13900100001",
        "19800312",
    ),
    (
        Role::SecurityAdmin,
        "secadmin",
        "安全管理员 李娜",
        "district",
        Classification::Sensitive,
        "13900100002",
        "19830708",
    ),
    (Role::AuditAdmin, "auditor", "安全审计员 王芳", "district", Classification::Internal, "13900100003", "19851121"),
    (
        Role::Regulator,
        "jt.liu",
        "交通局 刘强",
        "transport_bureau",
        Classification::Sensitive,
        "13900100004",
        "19790504",
    ),
    (
        Role::Regulator,
        "wjw.chen",
        "卫健委 陈静",
        "health_commission",
        Classification::Sensitive,
        "13900100005",
        "19820915",
    ),
    (
        Role::Operator,
        "shunda.zhao",
        "顺达危运 赵磊 (监控员)",
        "shunda",
        Classification::Internal,
        "13900100006",
        "19900201",
    ),
    (
        Role::Operator,
        "bus.sun",
        "武清公交 孙丽 (调度员)",
        "wuqing_bus",
        Classification::Internal,
        "13900100007",
        "19920617",
    ),
    (
        Role::Operator,
        "coach.zhou",
        "京津客运 周杰 (监控员)",
        "jingjin_coach",
        Classification::Internal,
        "13900100008",
        "19880830",
    ),
    (
        Role::Clinician,
        "dr.yang",
        "人民医院 杨医生",
        "people_hospital",
        Classification::Sensitive,
        "13900100009",
        "19760422",
    ),
    (
        Role::Clinician,
        "dr.wu",
        "杨村社区 吴医生 (家庭医生)",
        "yangcun_chc",
        Classification::Sensitive,
        "13900100010",
        "19870103",
    ),
    (Role::Resident, "resident.huang", "居民 黄秀英", "residents", Classification::Public, "13900100011", "19550226"),
];

/// Seeds the kernel's part of the demo district.
pub async fn seed_kernel(state: &AppState, demo: &mut DemoContext) -> anyhow::Result<()> {
    if is_seeded(state, "kernel").await? {
        demo.orgs = org_ids(state).await?;
        return Ok(());
    }
    let actor = Actor::cli("demo");
    for (key, parent, name, name_en, kind, domain) in ORGS {
        let parent_id = match parent {
            Some(p) => Some(demo.orgs.get(*p).cloned().ok_or_else(|| anyhow::anyhow!("demo parent {p} missing"))?),
            None => None,
        };
        if parent_id.is_none() && *kind == OrgKind::District {
            // A root made earlier on this database (`wuqing user add`, `sim provision`): the demo
            // district grows under it rather than beside it.
            let (found, _) =
                orgs::list(&state.store, &crate::access::Scope::All, Some(OrgKind::District), None, 1, 0).await?;
            if let Some(root) = found.into_iter().next() {
                mark_seeded(state, &format!("org:{key}"), &root.id).await?;
                demo.orgs.insert((*key).to_string(), root.id);
                continue;
            }
        }
        let o = orgs::create(
            &state.store,
            &state.orgs,
            actor.clone(),
            NewOrganisation {
                parent_id,
                name: (*name).into(),
                name_en: (*name_en).into(),
                kind: *kind,
                domain: (*domain).into(),
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("seeding organisation {key}: {}", e.message))?;
        mark_seeded(state, &format!("org:{key}"), &o.id).await?;
        demo.orgs.insert((*key).to_string(), o.id);
    }
    for (i, (role, username, display, org, clearance, phone, birth)) in USERS.iter().enumerate() {
        let org_id = demo.orgs.get(*org).cloned().ok_or_else(|| anyhow::anyhow!("demo org {org} missing"))?;
        let password = crate::access::password::generate();
        users::create(
            &state.store,
            &state.cipher,
            state.auth.get().password_min_length,
            actor.clone(),
            NewUser {
                username: (*username).into(),
                display_name: (*display).into(),
                org_id,
                role: *role,
                clearance: *clearance,
                password: Some(password.clone()),
                phone: Some((*phone).into()),
                citizen_id: Some(fictitious_citizen_id(birth, 100 + i as u32)),
            },
            CreateOptions { no_forced_change: true, allow_admin_roles: true },
        )
        .await
        .map_err(|e| anyhow::anyhow!("seeding user {username}: {}", e.message))?;
        demo.accounts.push(DemoAccount { role: *role, username: (*username).into(), password });
    }
    mark_seeded(state, "kernel", "1").await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn fictitious_ids_are_valid() {
        for s in 0..50 {
            let id = super::fictitious_citizen_id("19900101", s);
            assert!(crate::crypto::CitizenId::parse(&id).is_ok(), "{id}");
        }
    }
}
