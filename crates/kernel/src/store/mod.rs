//! The store: one code path for SQLite (embedded default) and PostgreSQL (scale-out).
//!
//! Queries are written once, with `$1`-style parameters and a portable subset of SQL; the few
//! dialect differences (`FOR UPDATE`, `BLOB` vs `BYTEA`) are named helpers here, not scattered
//! `if` statements. On SQLite there is exactly one writer connection (WAL mode, `synchronous =
//! FULL`, so a committed write survives a crash) and a pool of readers; on PostgreSQL one pool
//! serves both.
//!
//! Hot read paths that return thousands of rows (track playback) may read SQLite directly
//! through [`Store::sqlite_read`]: rusqlite on a blocking thread, over the same file, read-only.
//! sqlx hands every SQLite row from its worker thread to the async side one at a time and converts
//! it for the `Any` driver, about 9 µs a row; the direct path costs well under one.
//!
//! **Architecture Invariant**: a write the kernel acknowledges has been committed first.

pub mod days;
mod migrate;

pub use rusqlite;

pub use migrate::{Migration, MigrationReport};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Row, Transaction};
use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The SQL dialect behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Db(String),
    #[error("migration {module}/{version} failed: {reason}")]
    Migration { module: String, version: i64, reason: String },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database refused a value as text (PostgreSQL: a NUL character, SQLSTATE 22021): bad
    /// input, not a fault.
    #[error("invalid text: {0}")]
    InvalidText(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict("a record with this key already exists".into())
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(e.to_string())
            }
            sqlx::Error::Database(db) if db.code().as_deref() == Some("22021") => {
                StoreError::InvalidText("text may not hold NUL characters".into())
            }
            sqlx::Error::Database(db) if db.message().contains("database is locked") => {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Db(e.to_string()),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    read: AnyPool,
    write: AnyPool,
    url: String,
    /// Direct read-only connections for hot read paths (SQLite files only).
    direct: Option<Arc<DirectReaders>>,
    /// A native pool beside the `Any` one (PostgreSQL only), for statements `Any` cannot bind:
    /// arrays, for one-statement batch inserts.
    pg: Option<sqlx::PgPool>,
    /// A read replica (PostgreSQL, `store.read_url`): both pools, like the primary's.
    replica: Option<(AnyPool, sqlx::PgPool)>,
    /// The audit log's group-commit queue, started on first use (see `audit::record`).
    pub(crate) audit_queue: Arc<OnceLock<tokio::sync::mpsc::Sender<crate::audit::Job>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend).finish()
    }
}

/// The native PostgreSQL pool beside an `Any` one (half its connections), opened lazily.
fn native_pg_pool(url: &str, max_connections: u32) -> StoreResult<sqlx::PgPool> {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections((max_connections / 2).max(2))
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy(url)
        .map_err(|e| StoreError::Unavailable(e.to_string()))
}

impl Store {
    /// Opens the store named by `url` (`sqlite://path` or `postgres://…`).
    pub async fn open(url: &str, max_connections: u32) -> StoreResult<Store> {
        sqlx::any::install_default_drivers();
        if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            let path = path.split('?').next().unwrap_or(path);
            if path != ":memory:" {
                if let Some(parent) = std::path::Path::new(path).parent() {
                    if !parent.as_os_str().is_empty() {
                        std::fs::create_dir_all(parent)
                            .map_err(|e| StoreError::Unavailable(format!("create {}: {e}", parent.display())))?;
                    }
                }
            }
            let full = format!("sqlite://{path}?mode=rwc");
            let write = sqlite_pool(&full, 1, WRITER_CACHE_KIB).await?;
            let read = sqlite_pool(&full, max_connections.max(1), READER_CACHE_KIB).await?;
            let direct = (path != ":memory:" && !path.is_empty())
                .then(|| Arc::new(DirectReaders { path: path.into(), idle: Default::default() }));
            Ok(Store {
                backend: Backend::Sqlite,
                read,
                write,
                url: url.to_string(),
                direct,
                pg: None,
                replica: None,
                audit_queue: Default::default(),
            })
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = AnyPoolOptions::new()
                .max_connections(max_connections.max(2))
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            let pg = native_pg_pool(url, max_connections)?;
            Ok(Store {
                backend: Backend::Postgres,
                read: pool.clone(),
                write: pool,
                url: url.to_string(),
                direct: None,
                pg: Some(pg),
                replica: None,
                audit_queue: Default::default(),
            })
        } else {
            Err(StoreError::Unavailable(format!("unsupported store url scheme in {url:?}")))
        }
    }

    /// The same store, with history reads ([`Store::replica`], [`Store::replica_pg`]) sent to
    /// the read replica at `read_url` (a PostgreSQL hot standby; its pools are opened lazily, so
    /// a replica that is down fails those reads, not the start).
    pub fn with_replica(mut self, read_url: &str, max_connections: u32) -> StoreResult<Store> {
        if self.backend != Backend::Postgres {
            return Err(StoreError::Unavailable("a read replica needs a PostgreSQL store".into()));
        }
        sqlx::any::install_default_drivers();
        let any = AnyPoolOptions::new()
            .max_connections(max_connections.max(2))
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy(read_url)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let pg = native_pg_pool(read_url, max_connections)?;
        self.replica = Some((any, pg));
        Ok(self)
    }

    /// This store as seen for history reads that tolerate a replica's lag (a track, a sensor
    /// series, for a reader of the API): its readers ([`Store::reader`], [`Store::pg`]) are the
    /// read replica's when one is configured; writes still go to the primary. Never for a read
    /// that decides a write (a catch-up of the rules, a check before an update).
    pub fn history(&self) -> Store {
        let mut view = self.clone();
        if let Some((any, pg)) = &self.replica {
            view.read = any.clone();
            view.pg = Some(pg.clone());
        }
        view
    }

    /// Whether history reads go to a read replica.
    pub fn has_replica(&self) -> bool {
        self.replica.is_some()
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL the store was opened with (may hold a password: do not log it).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The pool for reads.
    pub fn reader(&self) -> &AnyPool {
        &self.read
    }

    /// Begins a write transaction (on SQLite, on the one writer connection).
    pub async fn begin(&self) -> StoreResult<Transaction<'static, Any>> {
        Ok(self.write.begin().await?)
    }

    /// The placeholders of a multi-row `INSERT … VALUES` of `rows` rows, in this backend's
    /// dialect, bound in order (already portable: [`Store::sql`] leaves them alone). On SQLite they are
    /// anonymous (`?`): sqlx looks up every numbered parameter's name, a linear scan in SQLite, so
    /// binding a statement of n numbered parameters costs O(n²) (it was a quarter of the gateway's
    /// CPU at 80 rows per statement).
    pub fn values_placeholders(&self, rows: usize, cols: usize) -> String {
        placeholders(rows, cols, self.backend == Backend::Postgres)
    }

    /// Runs `f` on a read-only direct connection to the SQLite file, on a blocking thread;
    /// `None` when the store is not a SQLite file (the caller uses its sqlx query instead). For
    /// reads of many rows on hot paths only: everything else goes through sqlx.
    pub async fn sqlite_read<T, F>(&self, f: F) -> Option<StoreResult<T>>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let direct = self.direct.clone()?;
        let run = tokio::task::spawn_blocking(move || {
            let conn = direct.take()?;
            let out = f(&conn).map_err(|e| StoreError::Db(e.to_string()));
            direct.give_back(conn);
            out
        });
        Some(run.await.unwrap_or_else(|e| Err(StoreError::Unavailable(format!("direct read failed: {e}")))))
    }

    /// The native PostgreSQL pool, for statements the portable `Any` driver cannot bind
    /// (arrays); `None` on SQLite.
    pub fn pg(&self) -> Option<&sqlx::PgPool> {
        self.pg.as_ref()
    }

    /// Translates a portable statement (`$1` parameters) into this backend's dialect.
    pub fn sql<'a>(&self, q: &'a str) -> Cow<'a, str> {
        match self.backend {
            Backend::Postgres => Cow::Borrowed(q),
            Backend::Sqlite => {
                if !q.contains('$') {
                    return Cow::Borrowed(q);
                }
                // `$N` → `?N`: SQLite's numbered parameter form, same binding order.
                let mut out = String::with_capacity(q.len());
                let mut in_str = false;
                let mut chars = q.chars().peekable();
                while let Some(c) = chars.next() {
                    if c == '\'' {
                        in_str = !in_str;
                    }
                    if c == '$' && !in_str && chars.peek().is_some_and(|n| n.is_ascii_digit()) {
                        out.push('?');
                    } else {
                        out.push(c);
                    }
                }
                Cow::Owned(out)
            }
        }
    }

    /// ` FOR UPDATE` on PostgreSQL; nothing on SQLite, whose single writer already serialises.
    pub fn for_update(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        }
    }

    /// Checks the store answers.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    /// A consistent copy of the embedded database, taken while the server runs.
    pub async fn backup_to(&self, dest: &std::path::Path) -> StoreResult<()> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::Unavailable(
                "backup copies the embedded SQLite database; for PostgreSQL use pg_dump".into(),
            ));
        }
        if dest.exists() {
            return Err(StoreError::Conflict(format!("{} already exists", dest.display())));
        }
        let d = dest.to_string_lossy().replace('\'', "''");
        // VACUUM INTO reads one snapshot: the copy is consistent even with writes in flight.
        sqlx::query(&format!("VACUUM INTO '{d}'")).execute(&self.read).await?;
        Ok(())
    }

    /// The database's own consistency check: `PRAGMA integrity_check` on SQLite (every page,
    /// index and constraint); on PostgreSQL, `amcheck`'s `bt_index_check` on every B-tree index
    /// of the schema (each index's structure, and that it matches its table's visible rows is
    /// left to `bt_index_parent_check`, which takes stronger locks). "ok" when all is well;
    /// otherwise what failed. Creating the `amcheck` extension needs a superuser: without it the
    /// answer says it was skipped.
    pub async fn integrity_check(&self) -> StoreResult<String> {
        let Some(pg) = &self.pg else {
            let row = sqlx::query("PRAGMA integrity_check").fetch_one(&self.read).await?;
            return Ok(row.try_get::<String, _>(0)?);
        };
        if let Err(e) = sqlx::query("CREATE EXTENSION IF NOT EXISTS amcheck").execute(pg).await {
            return Ok(format!("skipped: amcheck not available ({e})"));
        }
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             JOIN pg_am a ON a.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE a.amname = 'btree' AND n.nspname = current_schema() AND c.relkind = 'i' AND i.indisvalid \
             ORDER BY 1",
        )
        .fetch_all(pg)
        .await?;
        let mut problems = Vec::new();
        for name in &indexes {
            if let Err(e) =
                sqlx::query("SELECT bt_index_check(to_regclass(quote_ident($1)))").bind(name).execute(pg).await
            {
                problems.push(format!("{name}: {e}"));
            }
        }
        Ok(if problems.is_empty() { "ok".into() } else { problems.join("\n") })
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
        if let Some(pg) = &self.pg {
            pg.close().await;
        }
    }
}

/// The writer's page cache. Time series are appended at one place per device (a vehicle's rows
/// are clustered): a fleet of thousands keeps thousands of leaf pages hot, far more than
/// SQLite's default 2 MiB, and every insert that misses re-reads its page from the file.
const WRITER_CACHE_KIB: i64 = 64 * 1024;
/// Each reader's page cache: SQLite's default.
const READER_CACHE_KIB: i64 = 2 * 1024;

async fn sqlite_pool(url: &str, max: u32, cache_kib: i64) -> StoreResult<AnyPool> {
    AnyPoolOptions::new()
        .max_connections(max)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        // An embedded file has no server that wants connections recycled; sqlx's defaults close
        // a connection after 30 minutes (10 idle) and with it its page cache (64 MiB for the
        // writer), which the next one fills again. On glibc the freed pages stayed with the old
        // connection thread's arena: the soak's RSS rose a step every half hour (bench/soak.sh).
        .max_lifetime(None)
        .idle_timeout(None)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                use sqlx::Executor;
                // WAL: readers never block the writer. FULL: a commit is on disk before it
                // returns, so an acknowledged write survives a crash or power loss.
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA synchronous = FULL").await?;
                conn.execute("PRAGMA busy_timeout = 5000").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                conn.execute(format!("PRAGMA cache_size = -{cache_kib}").as_str()).await?;
                Ok(())
            })
        })
        // A connection whose transaction ended in an error that SQLite answered by rolling the
        // transaction back itself (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM) is not given back: the
        // ROLLBACK that sqlx then sends fails ("no transaction is active") and sqlx keeps counting
        // the transaction as open, so its next `begin` would issue a SAVEPOINT, the matching
        // commit only a RELEASE, and after one more failure (ROLLBACK TO, which leaves the
        // transaction open) a "committed" write would sit in a transaction that never commits:
        // acknowledged, never stored. The ping first runs the rollback a dropped transaction queued.
        .after_release(|conn, _meta| {
            Box::pin(async move {
                use sqlx::Connection;
                conn.ping().await?;
                Ok(!conn.is_in_transaction())
            })
        })
        .connect(url)
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))
}

/// Idle read-only rusqlite connections to the store's file, opened on demand.
#[derive(Debug)]
struct DirectReaders {
    path: std::path::PathBuf,
    idle: std::sync::Mutex<Vec<rusqlite::Connection>>,
}

/// Direct connections kept idle; more may be open while many reads run at once.
const DIRECT_IDLE: usize = 8;

impl DirectReaders {
    fn take(&self) -> StoreResult<rusqlite::Connection> {
        if let Some(c) = self.idle.lock().ok().and_then(|mut v| v.pop()) {
            return Ok(c);
        }
        use rusqlite::OpenFlags;
        let unavailable = |e: rusqlite::Error| StoreError::Unavailable(format!("direct read connection: {e}"));
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let c = rusqlite::Connection::open_with_flags(&self.path, flags).map_err(unavailable)?;
        c.busy_timeout(Duration::from_secs(5)).map_err(unavailable)?;
        Ok(c)
    }

    fn give_back(&self, c: rusqlite::Connection) {
        if let Ok(mut v) = self.idle.lock() {
            if v.len() < DIRECT_IDLE {
                v.push(c);
            }
        }
    }
}

/// Reads a column, mapping decode errors to [`StoreError::Corrupt`].
pub fn col<'r, T>(row: &'r AnyRow, name: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get::<T, _>(name).map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
}

/// Milliseconds since the Unix epoch, the one time representation in the store.
pub fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Renders store milliseconds as RFC 3339 in UTC.
pub fn ms_to_rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// Parses RFC 3339 into store milliseconds.
pub fn rfc3339_to_ms(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// A bind argument for dynamically built queries.
#[derive(Debug, Clone)]
pub enum Arg {
    S(String),
    I(i64),
}

impl Arg {
    pub fn bind<'q>(
        &self,
        q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
        match self {
            Arg::S(s) => q.bind(s.clone()),
            Arg::I(i) => q.bind(*i),
        }
    }
}

/// `($1, …, $cols), ($cols+1, …), …` for a multi-row `INSERT … VALUES` of `rows` rows, in
/// PostgreSQL's numbered form.
pub fn values_placeholders(rows: usize, cols: usize) -> String {
    placeholders(rows, cols, true)
}

fn placeholders(rows: usize, cols: usize, numbered: bool) -> String {
    let mut sql = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            if numbered {
                sql.push('$');
                sql.push_str(&(r * cols + c + 1).to_string());
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
    }
    sql
}

/// The conditions of a filtered query and their bound arguments, built clause by clause.
#[derive(Debug, Default, Clone)]
pub struct Where {
    clauses: Vec<String>,
    args: Vec<Arg>,
    /// Set when a clause can match nothing (an empty scope): the query is skipped.
    empty: bool,
}

impl Where {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a condition; each `?` in `clause` becomes the next `$n`, bound to `arg`.
    pub fn and(&mut self, clause: &str, arg: Arg) -> &mut Self {
        self.args.push(arg);
        self.clauses.push(clause.replace('?', &format!("${}", self.args.len())));
        self
    }

    /// Adds a condition without parameters (a fixed SQL fragment, never user input).
    pub fn and_fixed(&mut self, clause: &'static str) -> &mut Self {
        self.clauses.push(clause.to_string());
        self
    }

    /// Adds `column IN (…)` for the organisations of a scope.
    pub fn scope(&mut self, scope: &crate::access::Scope, column: &str) -> &mut Self {
        match scope {
            crate::access::Scope::All => {}
            crate::access::Scope::Orgs(v) if v.is_empty() => self.empty = true,
            crate::access::Scope::Orgs(v) => {
                let mut ph = Vec::with_capacity(v.len());
                for o in v {
                    self.args.push(Arg::S(o.clone()));
                    ph.push(format!("${}", self.args.len()));
                }
                self.clauses.push(format!("{column} IN ({})", ph.join(", ")));
            }
        }
        self
    }

    /// Adds a case-sensitive substring match on any of `columns`; `%`, `_` and `\` in `text`
    /// are taken literally.
    pub fn contains(&mut self, columns: &[&str], text: &str) -> &mut Self {
        let pat = format!("%{}%", text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        self.args.push(Arg::S(pat));
        let n = self.args.len();
        let ors: Vec<String> = columns.iter().map(|c| format!("{c} LIKE ${n} ESCAPE '\\'")).collect();
        self.clauses.push(format!("({})", ors.join(" OR ")));
        self
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() { "1 = 1".into() } else { self.clauses.join(" AND ") }
    }
}

/// One page of a filtered list and the count of all matches: the one pagination code path.
pub async fn fetch_page(
    store: &Store,
    columns: &str,
    table: &str,
    filter: &Where,
    order_by: &str,
    limit: i64,
    offset: i64,
) -> StoreResult<(Vec<AnyRow>, i64)> {
    if filter.empty {
        return Ok((vec![], 0));
    }
    let where_ = filter.sql();
    let count_sql = store.sql(&format!("SELECT COUNT(*) AS n FROM {table} WHERE {where_}")).into_owned();
    let mut cq = sqlx::query(&count_sql);
    for a in &filter.args {
        cq = a.bind(cq);
    }
    let total: i64 = col(&cq.fetch_one(store.reader()).await?, "n")?;
    let n = filter.args.len();
    let sql = store
        .sql(&format!(
            "SELECT {columns} FROM {table} WHERE {where_} ORDER BY {order_by} LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        ))
        .into_owned();
    let mut q = sqlx::query(&sql);
    for a in &filter.args {
        q = a.bind(q);
    }
    let rows = q.bind(limit).bind(offset).fetch_all(store.reader()).await?;
    Ok((rows, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_placeholders_are_translated_outside_strings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(&format!("sqlite://{}/t.db", dir.path().display()), 2).await.expect("open");
        assert_eq!(s.sql("SELECT $1, '$2', $10"), "SELECT ?1, '$2', ?10");
    }

    #[tokio::test]
    async fn sqlite_connections_are_kept_with_their_page_caches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(&format!("sqlite://{}/t.db", dir.path().display()), 2).await.expect("open");
        for pool in [&s.write, &s.read] {
            assert_eq!(pool.options().get_max_lifetime(), None);
            assert_eq!(pool.options().get_idle_timeout(), None);
        }
    }

    #[test]
    fn multi_row_placeholders() {
        assert_eq!(values_placeholders(2, 3), "($1, $2, $3), ($4, $5, $6)");
    }

    #[test]
    fn rfc3339_round_trip() {
        let ms = 1_700_000_000_123;
        assert_eq!(rfc3339_to_ms(&ms_to_rfc3339(ms)), Some(ms));
    }
}
