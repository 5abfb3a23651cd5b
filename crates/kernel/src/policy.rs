//! The security policy (安全策略): lock-out after failed logins, session time-outs, the minimum
//! password length and the second factor for administrators. `[security]` gives the policy at
//! start (version 1, built in); the security administrator publishes new versions
//! (`PUT /api/security/policy`) as the versioned document `security.policy`, which every node
//! applies when the bus announces it, and on start.
//!
//! Bounds follow GB/T 22239-2019 (等保 2.0) level 3, 8.1.4.1 身份鉴别: login failures are handled
//! (lock-out on), sessions end after idleness, passwords are complex, and administrators use two
//! factors — the API cannot turn that off; only the configuration file can (a test bench).

use crate::auth::AuthSettings;
use crate::config::SecurityConfig;
use crate::store::{Store, StoreResult};
use crate::versioned;
use std::sync::{Arc, RwLock};

/// The document's name in `config_documents`.
pub const DOCUMENT: &str = "security.policy";
/// `[security]` as it was at start: version 1 until the first publication.
pub const BUILTIN_VERSION: i64 = 1;

/// The policy in force, shared by every request; cheap to clone.
#[derive(Clone)]
pub struct Policy {
    current: Arc<RwLock<Arc<AuthSettings>>>,
    /// What the configuration file says, for the version-1 view and the TOTP floor.
    configured: Arc<AuthSettings>,
}

impl Policy {
    pub fn new(config: &SecurityConfig) -> Self {
        let s = Arc::new(AuthSettings::from(config));
        Self { current: Arc::new(RwLock::new(s.clone())), configured: s }
    }

    /// The settings in force now.
    pub fn get(&self) -> Arc<AuthSettings> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The settings of the configuration file (the built-in version 1).
    pub fn configured(&self) -> &AuthSettings {
        &self.configured
    }

    fn set(&self, s: AuthSettings) {
        match self.current.write() {
            Ok(mut g) => *g = Arc::new(s),
            Err(p) => *p.into_inner() = Arc::new(s),
        }
    }

    /// Checks a proposed policy: `Err((field, reason))` names the first field out of bounds.
    pub fn check(&self, s: &AuthSettings) -> Result<(), (&'static str, String)> {
        let within = |field: &'static str, v: u64, lo: u64, hi: u64| {
            if (lo..=hi).contains(&v) { Ok(()) } else { Err((field, format!("must be {lo} to {hi}"))) }
        };
        within("policy.lockout_threshold", s.lockout_threshold.into(), 3, 10)?;
        within("policy.lockout_minutes", s.lockout_minutes.into(), 5, 1440)?;
        within("policy.session_idle_minutes", s.session_idle_minutes.into(), 5, 240)?;
        within("policy.session_max_hours", s.session_max_hours.into(), 1, 72)?;
        within("policy.password_min_length", s.password_min_length as u64, 8, 64)?;
        if !s.admin_totp && self.configured.admin_totp {
            return Err((
                "policy.admin_totp",
                "administrators need a second factor (等保 2.0 level 3); only the configuration file can turn it off"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Applies the newest stored version, if any (at start and when one is announced). A stored
    /// version that no longer reads is logged and the policy in force kept.
    pub async fn reload(&self, store: &Store) -> StoreResult<Option<i64>> {
        let Some(doc) = versioned::current(store, DOCUMENT).await? else { return Ok(None) };
        match serde_json::from_value::<AuthSettings>(doc.body) {
            Ok(s) => {
                self.set(s);
                Ok(Some(doc.info.version))
            }
            Err(e) => {
                tracing::error!(version = doc.info.version, error = %e, "a stored security policy does not read; the one in force is kept");
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_name_the_field_and_totp_cannot_be_turned_off_by_the_api() {
        let p = Policy::new(&SecurityConfig::default());
        let ok = p.get().as_ref().clone();
        assert_eq!(p.check(&ok), Ok(()));
        let bad = AuthSettings { lockout_threshold: 0, ..ok.clone() };
        assert_eq!(p.check(&bad).unwrap_err().0, "policy.lockout_threshold");
        let bad = AuthSettings { password_min_length: 6, ..ok.clone() };
        assert_eq!(p.check(&bad).unwrap_err().0, "policy.password_min_length");
        let bad = AuthSettings { admin_totp: false, ..ok.clone() };
        assert_eq!(p.check(&bad).unwrap_err().0, "policy.admin_totp");
        // A test bench configured without it may keep it off.
        let bench = Policy::new(&SecurityConfig { admin_totp: false, ..SecurityConfig::default() });
        assert_eq!(bench.check(&AuthSettings { admin_totp: false, ..ok }), Ok(()));
    }
}
