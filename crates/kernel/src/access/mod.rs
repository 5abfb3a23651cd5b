//! Access: roles, classification levels, the caller of a request and the scope of what it may
//! see. Every query of organisation-owned data goes through a [`Scope`].
//!
//! **Architecture Invariant**: the three administrators (三员分立) are separate roles and none of
//! them can do another's job: the system administrator manages accounts and organisations, the
//! security administrator manages roles, clearances and lock-outs, the audit administrator alone
//! reads the audit log.

pub mod password;
pub mod totp;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 系统管理员: accounts, organisations, system configuration.
    SystemAdmin,
    /// 安全管理员: roles, clearances, lock-outs, security policy.
    SecurityAdmin,
    /// 安全审计员: reads the audit log, nothing else.
    AuditAdmin,
    /// 监管人员: a bureau's staff, sees its bureau's domain.
    Regulator,
    /// 企业/机构操作员: enterprise or institution staff, sees its own organisation.
    Operator,
    /// 医生: clinician or family doctor.
    Clinician,
    /// 居民: a resident, sees their own records.
    Resident,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::SystemAdmin,
        Role::SecurityAdmin,
        Role::AuditAdmin,
        Role::Regulator,
        Role::Operator,
        Role::Clinician,
        Role::Resident,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Role::SystemAdmin => "system_admin",
            Role::SecurityAdmin => "security_admin",
            Role::AuditAdmin => "audit_admin",
            Role::Regulator => "regulator",
            Role::Operator => "operator",
            Role::Clinician => "clinician",
            Role::Resident => "resident",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
    /// One of the three separated administrators.
    pub fn is_admin(self) -> bool {
        matches!(self, Role::SystemAdmin | Role::SecurityAdmin | Role::AuditAdmin)
    }
    /// Chinese name first, English second, as the console shows it.
    pub fn label(self) -> (&'static str, &'static str) {
        match self {
            Role::SystemAdmin => ("系统管理员", "System administrator"),
            Role::SecurityAdmin => ("安全管理员", "Security administrator"),
            Role::AuditAdmin => ("安全审计员", "Audit administrator"),
            Role::Regulator => ("监管人员", "Regulator"),
            Role::Operator => ("企业/机构操作员", "Operator"),
            Role::Clinician => ("医生", "Clinician"),
            Role::Resident => ("居民", "Resident"),
        }
    }
    /// What the role may do, for `GET /api/roles` and the checks below.
    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Role::SystemAdmin => &[OrgRead, OrgWrite, UserRead, UserWrite, TokenAdmin, PolicyRead],
            Role::SecurityAdmin => &[OrgRead, UserRead, UserGrant, UserLock, PolicyRead, PolicyWrite],
            Role::AuditAdmin => &[AuditRead],
            Role::Regulator => &[OrgRead, UserRead],
            Role::Operator => &[OrgRead, UserRead],
            Role::Clinician => &[OrgRead],
            Role::Resident => &[],
        }
    }
    pub fn can(self, p: Permission) -> bool {
        self.permissions().contains(&p)
    }
}

/// A permission on the kernel's own objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    OrgRead,
    OrgWrite,
    UserRead,
    /// Create accounts, edit profiles, reset passwords.
    UserWrite,
    /// Change a user's role or clearance.
    UserGrant,
    /// Lock and unlock accounts.
    UserLock,
    /// List and revoke anyone's API tokens.
    TokenAdmin,
    /// Read the security policy (lock-out, sessions, passwords, second factor).
    PolicyRead,
    /// Publish the security policy.
    PolicyWrite,
    AuditRead,
}

/// Data classification levels (数据分级), lowest first. A user's clearance bounds what they read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    /// 公开
    Public,
    /// 内部
    Internal,
    /// 敏感
    Sensitive,
    /// 机密
    Confidential,
}

impl Classification {
    pub fn as_str(self) -> &'static str {
        match self {
            Classification::Public => "public",
            Classification::Internal => "internal",
            Classification::Sensitive => "sensitive",
            Classification::Confidential => "confidential",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Public, Self::Internal, Self::Sensitive, Self::Confidential].into_iter().find(|c| c.as_str() == s)
    }
}

/// What a session or token is allowed to do, whatever the user's role allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    /// GET and HEAD only.
    Read,
    /// Everything the user's role allows.
    ReadWrite,
}

impl TokenScope {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Read => "read",
            TokenScope::ReadWrite => "read_write",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "read" => Some(Self::Read),
            "read_write" => Some(Self::ReadWrite),
            _ => None,
        }
    }
}

/// The organisations a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every organisation (the administrators, for the objects their job covers).
    All,
    /// These organisations only.
    Orgs(Vec<String>),
}

impl Scope {
    pub fn contains(&self, org: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Orgs(v) => v.iter().any(|o| o == org),
        }
    }
}

/// Who is asking, resolved from the session cookie or the bearer token of the request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub username: String,
    pub role: Role,
    pub org_id: String,
    pub clearance: Classification,
    pub scope: Scope,
    pub token_scope: TokenScope,
    /// The session (cookie) or token id that authenticated the request.
    pub credential_id: String,
    pub via_token: bool,
    pub source_ip: Option<String>,
    /// Set while the caller must change their password or enrol TOTP before anything else.
    pub restriction: Option<Restriction>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Restriction {
    PasswordChange,
    TotpSetup,
}

impl Caller {
    pub fn can(&self, p: Permission) -> bool {
        self.role.can(p)
    }
    /// Fails unless the caller's clearance reaches `level` (a dataset's or a field's class).
    pub fn require_clearance(&self, level: Classification, what: &str) -> crate::error::ApiResult<()> {
        if self.clearance >= level {
            Ok(())
        } else {
            Err(crate::error::ApiError::forbidden(format!(
                "{what} is classified {}; your clearance is {}",
                level.as_str(),
                self.clearance.as_str()
            )))
        }
    }

    /// Fails unless `org_id` (an `org_id` filter or target) is inside the caller's scope.
    pub fn require_org(&self, org_id: &str) -> crate::error::ApiResult<()> {
        if self.scope.contains(org_id) {
            Ok(())
        } else {
            Err(crate::error::ApiError::field(
                crate::error::Code::Forbidden,
                "org_id",
                "that organisation is outside your scope",
            ))
        }
    }

    /// Fails unless the caller's role grants `p`.
    pub fn require(&self, p: Permission) -> crate::error::ApiResult<()> {
        if self.can(p) {
            Ok(())
        } else {
            Err(crate::error::ApiError::forbidden(format!("your role ({}) does not allow this", self.role.as_str())))
        }
    }
}
