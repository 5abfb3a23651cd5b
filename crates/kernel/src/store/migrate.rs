//! Versioned migrations: each module contributes its own, applied in order at start, recorded
//! with a checksum so that an edited migration that already ran is refused, never re-run.

use super::{Backend, Store, StoreError, StoreResult, col};

/// One migration of one module. Write the SQL once: `BLOB` becomes `BYTEA` on PostgreSQL and
/// `DOUBLE` becomes `DOUBLE PRECISION`; everything else must be portable. Statements are
/// separated by a semicolon at the end of a line (so a trigger body may hold `;` mid-line).
#[derive(Debug, Clone)]
pub struct Migration {
    pub module: &'static str,
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
    /// `None`: portable, runs on both backends; otherwise only on this one.
    pub only: Option<Backend>,
}

#[derive(Debug, Default)]
pub struct MigrationReport {
    pub applied: Vec<String>,
    pub already: usize,
}

fn checksum(sql: &str) -> String {
    use sm3::{Digest, Sm3};
    data_encoding::HEXLOWER.encode(&Sm3::digest(sql.as_bytes()))
}

impl Migration {
    fn dialect_sql(&self, backend: Backend) -> String {
        match backend {
            Backend::Sqlite => self.sql.to_string(),
            Backend::Postgres => self.sql.replace(" BLOB", " BYTEA").replace(" DOUBLE", " DOUBLE PRECISION"),
        }
    }
}

impl Store {
    /// Applies every migration not yet applied, each in its own transaction.
    /// PostgreSQL: nodes starting together (a scaled-out platform) migrate one at a time; the
    /// lock is the transaction's, so the others then find each migration applied. (SQLite has
    /// one writer anyway.)
    async fn migration_lock(&self, tx: &mut sqlx::Transaction<'static, sqlx::Any>) -> StoreResult<()> {
        if self.backend() == super::Backend::Postgres {
            // A constant key of our own.
            sqlx::query("SELECT pg_advisory_xact_lock(7773519667786547)").execute(&mut **tx).await?;
        }
        Ok(())
    }

    pub async fn migrate(&self, migrations: &[Migration]) -> StoreResult<MigrationReport> {
        let mut tx = self.begin().await?;
        self.migration_lock(&mut tx).await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (module TEXT NOT NULL, version BIGINT NOT NULL, \
             name TEXT NOT NULL, checksum TEXT NOT NULL, applied_ms BIGINT NOT NULL, PRIMARY KEY (module, version))",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut report = MigrationReport::default();
        // Modules in the order given (the kernel first: others reference its tables), each
        // module's migrations in version order.
        let mut first_seen: Vec<&str> = vec![];
        for m in migrations {
            if !first_seen.contains(&m.module) {
                first_seen.push(m.module);
            }
        }
        let rank = |module: &str| first_seen.iter().position(|x| *x == module).unwrap_or(usize::MAX);
        let mut sorted: Vec<&Migration> = migrations.iter().collect();
        sorted.sort_by_key(|m| (rank(m.module), m.version));
        for m in sorted {
            if m.only.is_some_and(|b| b != self.backend()) {
                continue;
            }
            let mut tx = self.begin().await?;
            self.migration_lock(&mut tx).await?;
            let existing =
                sqlx::query(&self.sql("SELECT checksum FROM schema_migrations WHERE module = $1 AND version = $2"))
                    .bind(m.module)
                    .bind(m.version)
                    .fetch_optional(&mut *tx)
                    .await?;
            let sum = checksum(m.sql);
            if let Some(row) = existing {
                let stored: String = col(&row, "checksum")?;
                if stored != sum {
                    return Err(StoreError::Migration {
                        module: m.module.into(),
                        version: m.version,
                        reason: "it was edited after it was applied; add a new migration instead".into(),
                    });
                }
                report.already += 1;
                continue;
            }
            let sql = m.dialect_sql(self.backend());
            for stmt in sql.split(";\n").map(|s| s.trim().trim_end_matches(';').trim()).filter(|s| !s.is_empty()) {
                sqlx::query(stmt).execute(&mut *tx).await.map_err(|e| StoreError::Migration {
                    module: m.module.into(),
                    version: m.version,
                    reason: e.to_string(),
                })?;
            }
            sqlx::query(&self.sql(
                "INSERT INTO schema_migrations (module, version, name, checksum, applied_ms) VALUES ($1, $2, $3, $4, $5)",
            ))
            .bind(m.module)
            .bind(m.version)
            .bind(m.name)
            .bind(sum)
            .bind(super::now_ms())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            tracing::info!(module = m.module, version = m.version, name = m.name, "migration applied");
            report.applied.push(format!("{}/{} {}", m.module, m.version, m.name));
        }
        Ok(report)
    }
}
