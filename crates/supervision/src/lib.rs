//! Transport supervision (运输行业监管, 智能交通 三(三) 一 and 四): the transport bureau's records
//! of the road transport enterprises it supervises. This first part keeps each enterprise's
//! profile (`enterprises`) with its unified social credit code checked (`ident`); licences,
//! practitioners, hazards and their rectification, penalties, accidents and complaints, monthly
//! archives, credit and documents build on it.

pub mod access;
pub mod api;
pub mod archives;
pub mod credit;
pub mod daily;
pub mod dates;
pub mod demo;
pub mod demo_cases;
pub mod documents;
pub mod enterprises;
pub mod expiry;
pub mod hazards;
pub mod ident;
pub mod imports;
pub mod incidents;
pub mod penalties;
pub mod practitioners;
pub mod vehicles;
pub mod workflow;

use async_trait::async_trait;
use kernel::demo::DemoContext;
use kernel::http::AppState;
use kernel::module::Module;
use kernel::store::Migration;
use utoipa_axum::router::OpenApiRouter;

/// The supervision module: its tables, routes and demo profiles.
#[derive(Clone, Copy, Default)]
pub struct SupervisionModule;

#[async_trait]
impl Module for SupervisionModule {
    fn name(&self) -> &'static str {
        "supervision"
    }

    fn migrations(&self) -> Vec<Migration> {
        vec![
            Migration {
                module: "supervision",
                version: 1,
                name: "enterprise profiles",
                only: None,
                sql: "CREATE TABLE supervision_enterprises (
    org_id TEXT PRIMARY KEY REFERENCES organisations(id),
    uscc TEXT NOT NULL UNIQUE,
    business_scope TEXT NOT NULL,
    licence_no TEXT NOT NULL,
    licence_valid_until TEXT NOT NULL,
    safety_officer TEXT NOT NULL,
    monitoring_staff BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    updated_by TEXT NOT NULL
)",
            },
            Migration {
                module: "supervision",
                version: 2,
                name: "practitioners",
                only: None,
                sql: "CREATE TABLE supervision_practitioners (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    citizen_id_enc BLOB NOT NULL,
    citizen_id_bidx TEXT NOT NULL,
    qualification_type TEXT NOT NULL,
    qualification_no TEXT NULL,
    qualification_valid_until TEXT NOT NULL,
    licence_class TEXT NULL,
    licence_valid_until TEXT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE UNIQUE INDEX supervision_practitioners_citizen ON supervision_practitioners(org_id, citizen_id_bidx);
CREATE INDEX supervision_practitioners_org_name ON supervision_practitioners(org_id, name);
CREATE TABLE supervision_practitioner_vehicles (
    practitioner_id TEXT NOT NULL REFERENCES supervision_practitioners(id),
    vehicle_id TEXT NOT NULL,
    PRIMARY KEY (practitioner_id, vehicle_id)
);
CREATE INDEX supervision_practitioner_vehicles_vehicle ON supervision_practitioner_vehicles(vehicle_id)",
            },
            Migration {
                module: "supervision",
                version: 3,
                name: "vehicle details and expiry notices",
                only: None,
                sql: "CREATE TABLE supervision_vehicles (
    vehicle_id TEXT PRIMARY KEY REFERENCES transport_vehicles(id),
    certificate_no TEXT NOT NULL,
    certificate_valid_until TEXT NOT NULL,
    inspection_valid_until TEXT NOT NULL,
    compulsory_valid_until TEXT NOT NULL,
    commercial_valid_until TEXT NULL,
    seats BIGINT NULL,
    tonnage_kg BIGINT NULL,
    dg_class TEXT NULL,
    updated_ms BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE TABLE supervision_expiry_notices (
    kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    valid_until TEXT NOT NULL,
    stage TEXT NOT NULL,
    alarm_id TEXT NOT NULL,
    raised_ms BIGINT NOT NULL,
    PRIMARY KEY (kind, subject_id, valid_until, stage)
)",
            },
            Migration {
                module: "supervision",
                version: 4,
                name: "case history and hazard rectification",
                only: None,
                sql: "CREATE TABLE supervision_history (
    case_kind TEXT NOT NULL,
    case_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    actor_org TEXT NOT NULL,
    action TEXT NOT NULL,
    state TEXT NULL,
    note TEXT NULL,
    files TEXT NOT NULL,
    PRIMARY KEY (case_kind, case_id, seq)
);
CREATE TABLE supervision_hazards (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    vehicle_id TEXT NULL REFERENCES transport_vehicles(id),
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    level TEXT NOT NULL,
    source TEXT NOT NULL,
    alarm_id TEXT NULL,
    found_on TEXT NOT NULL,
    state TEXT NOT NULL,
    deadline TEXT NULL,
    escalated_deadline TEXT NULL,
    escalations BIGINT NOT NULL,
    reported_late BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    updated_ms BIGINT NOT NULL,
    closed_ms BIGINT NULL
);
CREATE INDEX supervision_hazards_org ON supervision_hazards(org_id, created_ms);
CREATE INDEX supervision_hazards_state ON supervision_hazards(state, deadline)",
            },
            Migration {
                module: "supervision",
                version: 5,
                name: "documents and reporting",
                only: None,
                sql: "CREATE TABLE supervision_documents (
    id TEXT PRIMARY KEY,
    issuer_org TEXT NOT NULL REFERENCES organisations(id),
    number TEXT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    files TEXT NOT NULL,
    target TEXT NOT NULL,
    requires_report BIGINT NOT NULL,
    deadline TEXT NULL,
    issued_ms BIGINT NOT NULL,
    issued_by TEXT NOT NULL
);
CREATE INDEX supervision_documents_issuer ON supervision_documents(issuer_org, issued_ms);
CREATE TABLE supervision_document_recipients (
    document_id TEXT NOT NULL REFERENCES supervision_documents(id),
    org_id TEXT NOT NULL REFERENCES organisations(id),
    status TEXT NOT NULL,
    read_ms BIGINT NULL,
    read_by TEXT NULL,
    replied_ms BIGINT NULL,
    replied_by TEXT NULL,
    reply_note TEXT NULL,
    reply_files TEXT NULL,
    reply_late BIGINT NOT NULL,
    PRIMARY KEY (document_id, org_id)
);
CREATE INDEX supervision_document_recipients_org ON supervision_document_recipients(org_id, document_id)",
            },
            Migration {
                module: "supervision",
                version: 6,
                name: "penalties, accidents and complaints",
                only: None,
                sql: "CREATE TABLE supervision_penalties (
    id TEXT PRIMARY KEY,
    decision_no TEXT NOT NULL UNIQUE,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    subject_type TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    subject_label TEXT NOT NULL,
    kind TEXT NOT NULL,
    facts TEXT NOT NULL,
    legal_basis TEXT NOT NULL,
    amount_fen BIGINT NULL,
    decided_on TEXT NOT NULL,
    state TEXT NOT NULL,
    executed_on TEXT NULL,
    execution_note TEXT NULL,
    revoked_on TEXT NULL,
    revoke_reason TEXT NULL,
    created_ms BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX supervision_penalties_org ON supervision_penalties(org_id, decided_on);
CREATE INDEX supervision_penalties_subject ON supervision_penalties(subject_id);
CREATE TABLE supervision_incidents (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    vehicle_id TEXT NULL REFERENCES transport_vehicles(id),
    occurred_on TEXT NOT NULL,
    description TEXT NOT NULL,
    severity TEXT NULL,
    deaths BIGINT NULL,
    injuries BIGINT NULL,
    at_fault BIGINT NULL,
    substantiated BIGINT NULL,
    decided_on TEXT NULL,
    decision_note TEXT NULL,
    created_ms BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX supervision_incidents_org ON supervision_incidents(org_id, occurred_on)",
            },
            Migration {
                module: "supervision",
                version: 7,
                name: "monthly archives",
                only: None,
                sql: "CREATE TABLE supervision_archive_kinds (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_en TEXT NOT NULL,
    active BIGINT NOT NULL,
    ord BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);
INSERT INTO supervision_archive_kinds (code, name, name_en, active, ord, updated_ms, updated_by) VALUES
    ('monitoring_duty_log', '动态监控值班记录', 'Dynamic monitoring duty log', 1, 1, 0, 'migration');
INSERT INTO supervision_archive_kinds (code, name, name_en, active, ord, updated_ms, updated_by) VALUES
    ('safety_meeting_minutes', '安全例会记录', 'Safety meeting minutes', 1, 2, 0, 'migration');
INSERT INTO supervision_archive_kinds (code, name, name_en, active, ord, updated_ms, updated_by) VALUES
    ('driver_safety_education', '驾驶员安全教育记录', 'Driver safety education record', 1, 3, 0, 'migration');
CREATE TABLE supervision_archives (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    month TEXT NOT NULL,
    kind TEXT NOT NULL REFERENCES supervision_archive_kinds(code),
    file_id TEXT NOT NULL REFERENCES files(id),
    note TEXT NULL,
    late BIGINT NOT NULL,
    uploaded_ms BIGINT NOT NULL,
    uploaded_by TEXT NOT NULL
);
CREATE UNIQUE INDEX supervision_archives_file ON supervision_archives(org_id, month, kind, file_id);
CREATE INDEX supervision_archives_month ON supervision_archives(month, org_id);
CREATE TABLE supervision_archive_flags (
    org_id TEXT NOT NULL REFERENCES organisations(id),
    month TEXT NOT NULL,
    missing TEXT NOT NULL,
    alarm_id TEXT NOT NULL,
    raised_ms BIGINT NOT NULL,
    PRIMARY KEY (org_id, month)
)",
            },
        ]
    }

    fn routes(&self) -> OpenApiRouter<AppState> {
        api::routes()
            .merge(vehicles::routes())
            .merge(practitioners::routes())
            .merge(expiry::routes())
            .merge(hazards::routes())
            .merge(documents::routes())
            .merge(credit::routes())
            .merge(penalties::routes())
            .merge(incidents::routes())
            .merge(archives::routes())
            .merge(imports::routes())
    }

    async fn seed_demo(&self, state: &AppState, demo: &mut DemoContext) -> anyhow::Result<()> {
        demo::seed(state, demo).await
    }

    /// The daily work: expiry notices, overdue escalation and missing archives (`daily::run`).
    async fn start(
        &self,
        state: &AppState,
        shutdown: kernel::platform::CancellationToken,
    ) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
        if !state.config.roles.processor {
            return Ok(vec![]);
        }
        Ok(vec![tokio::spawn(daily::run(state.clone(), shutdown))])
    }
}
