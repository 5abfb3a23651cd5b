//! The kernel's own tables. Never edit a migration that has landed: add the next version.

use crate::store::{Backend, Migration};

pub fn all() -> Vec<Migration> {
    vec![
        Migration {
            module: "kernel",
            version: 1,
            name: "organisations, users, sessions, audit",
            only: None,
            sql: r#"
CREATE TABLE organisations (
    id TEXT PRIMARY KEY,
    parent_id TEXT NULL REFERENCES organisations(id),
    name TEXT NOT NULL,
    name_en TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL,
    domain TEXT NOT NULL DEFAULT '',
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX organisations_parent ON organisations(parent_id);
CREATE UNIQUE INDEX organisations_name ON organisations(name);
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    role TEXT NOT NULL,
    clearance TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    must_change_password BIGINT NOT NULL DEFAULT 1,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until_ms BIGINT NOT NULL DEFAULT 0,
    disabled BIGINT NOT NULL DEFAULT 0,
    totp_secret_enc BLOB NULL,
    totp_enabled BIGINT NOT NULL DEFAULT 0,
    phone_enc BLOB NULL,
    citizen_id_enc BLOB NULL,
    citizen_id_bidx TEXT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    password_changed_ms BIGINT NOT NULL
);
CREATE INDEX users_org ON users(org_id);
CREATE INDEX users_citizen ON users(citizen_id_bidx);
CREATE TABLE credentials (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users(id),
    kind TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    scope TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    revoked_ms BIGINT NULL,
    source_ip TEXT NULL
);
CREATE INDEX credentials_user ON credentials(user_id);
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    actor_id TEXT NULL,
    actor TEXT NOT NULL,
    role TEXT NULL,
    org_id TEXT NULL,
    source_ip TEXT NULL,
    action TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id TEXT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_at ON audit_log(at_ms);
CREATE INDEX audit_actor ON audit_log(actor);
CREATE INDEX audit_target ON audit_log(target_kind, target_id);
CREATE TABLE audit_head (id BIGINT PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
CREATE TABLE observations (
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    device_ms BIGINT NOT NULL,
    received_ms BIGINT NOT NULL,
    value DOUBLE NULL,
    lat DOUBLE NULL,
    lon DOUBLE NULL,
    payload TEXT NULL
);
CREATE INDEX observations_source_time ON observations(source, device_ms);
CREATE INDEX observations_time ON observations(device_ms);
CREATE TABLE demo_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)
"#,
        },
        // The audit log is append-only for the application as well: an UPDATE or DELETE fails.
        // Someone with the database file can drop the trigger; the hash chain then tells.
        Migration {
            module: "kernel",
            version: 2,
            name: "audit append-only (sqlite)",
            only: Some(Backend::Sqlite),
            sql: "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;\n\
                  CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END",
        },
        Migration {
            module: "kernel",
            version: 2,
            name: "audit append-only (postgres)",
            only: Some(Backend::Postgres),
            sql: "CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit log is append-only'; END $$ LANGUAGE plpgsql;\n\
                  CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_append_only()",
        },
        // Versioned configuration documents (`versioned`): every published version is kept.
        Migration {
            module: "kernel",
            version: 3,
            name: "versioned configuration documents",
            only: None,
            sql: "CREATE TABLE config_documents (name TEXT NOT NULL, version BIGINT NOT NULL, body TEXT NOT NULL, \
                  author_id TEXT NULL, author TEXT NOT NULL, note TEXT NOT NULL, created_ms BIGINT NOT NULL, \
                  PRIMARY KEY (name, version))",
        },
        // The file store (`files`): one row per upload; the bytes live on disk, content-addressed
        // by `sha256` (several rows may share one blob). `uploaded_by` is empty for the server's
        // own files (monthly archives).
        Migration {
            module: "kernel",
            version: 4,
            name: "file store",
            only: None,
            sql: "CREATE TABLE files (id TEXT PRIMARY KEY, sha256 TEXT NOT NULL, size BIGINT NOT NULL, \
                  media_type TEXT NOT NULL, name TEXT NOT NULL, org_id TEXT NOT NULL REFERENCES organisations(id), \
                  uploaded_by TEXT NULL REFERENCES users(id), classification TEXT NOT NULL, created_ms BIGINT NOT NULL);\n\
                  CREATE INDEX files_org ON files(org_id, created_ms);\n\
                  CREATE INDEX files_sha256 ON files(sha256)",
        },
        // Files shared with organisations outside the owner's scope (a bureau's document sent to
        // the enterprises it names): `files::share` inside the sender's transaction.
        Migration {
            module: "kernel",
            version: 5,
            name: "file shares",
            only: None,
            sql: "CREATE TABLE file_shares (file_id TEXT NOT NULL REFERENCES files(id), \
                  org_id TEXT NOT NULL REFERENCES organisations(id), shared_ms BIGINT NOT NULL, \
                  PRIMARY KEY (file_id, org_id))",
        },
        // Failed logins under names that are no account's (`auth::login`), counted and locked out
        // like an account's, so that the lock-out does not tell who has an account. Keyed by the
        // SHA-256 of the name; rows a day old are purged by the next such failure.
        Migration {
            module: "kernel",
            version: 6,
            name: "failed logins of unknown names",
            only: None,
            sql: "CREATE TABLE login_unknown (name_hash TEXT PRIMARY KEY, failures BIGINT NOT NULL, \
                  locked_until_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL);\n\
                  CREATE INDEX login_unknown_updated ON login_unknown(updated_ms)",
        },
        // Scale-out (`cluster`): the processors alive in each group of partitions, each row
        // refreshed every couple of seconds by its node; the live ones share the partitions.
        Migration {
            module: "kernel",
            version: 7,
            name: "cluster members",
            only: None,
            sql: "CREATE TABLE cluster_members (group_name TEXT NOT NULL, node TEXT NOT NULL, seen_ms BIGINT NOT NULL, \
                  partitions BIGINT NOT NULL, PRIMARY KEY (group_name, node))",
        },
        // Periodic jobs that one node of a deployment runs (`cluster::due`): when each last ran.
        Migration {
            module: "kernel",
            version: 8,
            name: "cluster jobs",
            only: None,
            sql: "CREATE TABLE cluster_jobs (name TEXT PRIMARY KEY, last_ms BIGINT NOT NULL, node TEXT NOT NULL)",
        },
        // Observations keyed by source, kind and device time, so that a reading delivered twice
        // (a device's retransmission, a stream's redelivery to a new processor) is stored once;
        // on PostgreSQL partitioned by UTC day like the positions (`telemetry::maintain`): the
        // retention drops whole partitions. Duplicates already stored are kept once.
        Migration {
            module: "kernel",
            version: 9,
            name: "observations keyed by source and time (sqlite)",
            only: Some(Backend::Sqlite),
            sql: "CREATE TABLE observations_v2 (source TEXT NOT NULL, kind TEXT NOT NULL, device_ms BIGINT NOT NULL, \
                  received_ms BIGINT NOT NULL, value DOUBLE NULL, lat DOUBLE NULL, lon DOUBLE NULL, payload TEXT NULL, \
                  PRIMARY KEY (source, kind, device_ms)) WITHOUT ROWID;\n\
                  INSERT OR IGNORE INTO observations_v2 SELECT source, kind, device_ms, received_ms, value, lat, lon, payload FROM observations;\n\
                  DROP TABLE observations;\n\
                  ALTER TABLE observations_v2 RENAME TO observations;\n\
                  CREATE INDEX observations_source_time ON observations(source, device_ms);\n\
                  CREATE INDEX observations_time ON observations(device_ms)",
        },
        Migration {
            module: "kernel",
            version: 9,
            name: "observations keyed by source and time, partitioned by day (postgres)",
            only: Some(Backend::Postgres),
            sql: "CREATE TABLE observations_v2 (source TEXT NOT NULL, kind TEXT NOT NULL, device_ms BIGINT NOT NULL, \
                  received_ms BIGINT NOT NULL, value DOUBLE NULL, lat DOUBLE NULL, lon DOUBLE NULL, payload TEXT NULL, \
                  CONSTRAINT observations_pkey PRIMARY KEY (source, kind, device_ms)) PARTITION BY RANGE (device_ms);\n\
                  CREATE TABLE observations_default PARTITION OF observations_v2 DEFAULT;\n\
                  INSERT INTO observations_v2 SELECT source, kind, device_ms, received_ms, value, lat, lon, payload FROM observations \
                  ON CONFLICT DO NOTHING;\n\
                  DROP TABLE observations;\n\
                  ALTER TABLE observations_v2 RENAME TO observations;\n\
                  CREATE INDEX observations_source_time ON observations(source, device_ms);\n\
                  CREATE INDEX observations_time ON observations(device_ms)",
        },
    ]
}
