//! The health module's tables. Never edit a landed migration: add the next version.
//!
//! - `health_resources`: the current state of each FHIR resource (one row per type and id), its
//!   owning institution (the organisation whose staff wrote it first) and the patient whose
//!   record it belongs to (the compartment; a Patient's own id for a Patient).
//! - `health_versions`: every version (create, update, deletion), its body encrypted with the
//!   field cipher (SM4-GCM), its SM3 digest chained to the previous version's, and the seal
//!   that signs it.
//! - `health_seals`: one signature (SM2, the institution's key) over the digests of the
//!   versions one request wrote; served as the Provenance of those versions.
//! - `health_keys`: the institutions' signing keys (the private half encrypted) and their
//!   published verifying keys.
//! - `health_tokens`, `health_dates`, `health_strings`, `health_refs`: the search index, one
//!   row per value a search parameter reads (`fhir::index`). A patient's identifiers, telecom
//!   and names are stored as blind indexes (HMAC-SM3), never in clear.
//! - `health_break_glass`: emergency access grants (the reason encrypted), for the security
//!   administrator's review.
//! - `health_mpi_events`: the master patient index's links and separations, in order (v2).
//! - `health_mpi_reviews`: pairs of registrations waiting for a person to link or separate
//!   them, and what was decided (v2).
//! - `health_referrals`, `health_referral_steps`: two-way referrals and each step taken on them,
//!   reasons, summaries and notes encrypted (v3).
//! - `health_care_teams`, `health_care_team_members`, `health_contracts`: family-doctor teams of
//!   an institution and residents' contracts with them, dates as Beijing `YYYY-MM-DD` (v3).
//! - `health_townships`: each township's resident population, the denominator of contract
//!   coverage, kept by the health commission (v3).
//! - `health_monitor_watches`: each monitored patient's condition (hypertension, diabetes): the
//!   rules' state, when the clock next matters, the responsible institution, the last reading's
//!   time and whether it was controlled (v4).
//! - `health_monitor_readings`: each home-device reading taken into the record (device, device
//!   time → the Observation made of it), so that a reading heard twice counts once (v4).
//! - `health_worklist`: the family doctor's worklist: alerts and follow-up tasks with their
//!   evidence (encrypted), when they were closed, by whom and how (v4).
//! - `health_schedules`, `health_slots`, `health_appointments`: an institution's schedules
//!   (a department's or practitioner's), their slots with capacity and count booked, and the
//!   appointments in them with their state (v5).
//! - `health_remote`: remote consultation and imaging/ECG reading requests between
//!   institutions, the question and a declining's reason encrypted, the report's id (v6).

use kernel::store::Migration;

pub fn migrations() -> Vec<Migration> {
    vec![
        Migration {
            module: "health",
            version: 1,
            name: "FHIR resources, versions, seals, search index, break-glass",
            only: None,
            sql: "CREATE TABLE health_resources (
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version BIGINT NOT NULL,
    owner_org TEXT NOT NULL,
    patient_id TEXT NULL,
    created_ms BIGINT NOT NULL,
    last_updated_ms BIGINT NOT NULL,
    deleted BIGINT NOT NULL,
    PRIMARY KEY (type, id)
);
CREATE INDEX health_resources_patient ON health_resources(patient_id, type);
CREATE INDEX health_resources_owner ON health_resources(owner_org, type, last_updated_ms);
CREATE TABLE health_versions (
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    deleted BIGINT NOT NULL,
    author_id TEXT NOT NULL,
    owner_org TEXT NOT NULL,
    body BLOB NOT NULL,
    digest TEXT NOT NULL,
    seal_id TEXT NOT NULL,
    PRIMARY KEY (type, id, version)
);
CREATE INDEX health_versions_seal ON health_versions(seal_id);
CREATE TABLE health_seals (
    id TEXT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    org_id TEXT NOT NULL,
    author_id TEXT NOT NULL,
    author_name TEXT NOT NULL,
    activity TEXT NOT NULL,
    key_id TEXT NOT NULL,
    root TEXT NOT NULL,
    signature TEXT NOT NULL,
    members BIGINT NOT NULL
);
CREATE TABLE health_keys (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    public_key TEXT NOT NULL,
    private_enc BLOB NULL,
    created_ms BIGINT NOT NULL,
    retired_ms BIGINT NULL
);
CREATE INDEX health_keys_org ON health_keys(org_id);
CREATE TABLE health_tokens (
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    param TEXT NOT NULL,
    system TEXT NOT NULL,
    code TEXT NOT NULL
);
CREATE INDEX health_tokens_code ON health_tokens(type, param, code, system);
CREATE INDEX health_tokens_res ON health_tokens(type, id);
CREATE TABLE health_dates (
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    param TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL
);
CREATE INDEX health_dates_start ON health_dates(type, param, start_ms);
CREATE INDEX health_dates_res ON health_dates(type, id);
CREATE TABLE health_strings (
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    param TEXT NOT NULL,
    value TEXT NOT NULL,
    exact TEXT NOT NULL
);
CREATE INDEX health_strings_value ON health_strings(type, param, value);
CREATE INDEX health_strings_res ON health_strings(type, id);
CREATE TABLE health_refs (
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    param TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT NOT NULL
);
CREATE INDEX health_refs_target ON health_refs(target_type, target_id, type, param);
CREATE INDEX health_refs_res ON health_refs(type, id);
CREATE TABLE health_break_glass (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    reason_enc BLOB NOT NULL,
    at_ms BIGINT NOT NULL,
    until_ms BIGINT NOT NULL,
    reviewed_by TEXT NULL,
    reviewed_ms BIGINT NULL
);
CREATE INDEX health_break_glass_user ON health_break_glass(user_id, patient_id, until_ms);
CREATE INDEX health_break_glass_at ON health_break_glass(at_ms)",
        },
        Migration {
            module: "health",
            version: 2,
            name: "master patient index: link events and the review queue",
            only: None,
            sql: "CREATE TABLE health_mpi_events (
    id TEXT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    a TEXT NOT NULL,
    b TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    source TEXT NOT NULL,
    score DOUBLE NULL
);
CREATE INDEX health_mpi_events_at ON health_mpi_events(at_ms, id);
CREATE INDEX health_mpi_events_a ON health_mpi_events(a);
CREATE INDEX health_mpi_events_b ON health_mpi_events(b);
CREATE TABLE health_mpi_reviews (
    id TEXT PRIMARY KEY,
    patient_a TEXT NOT NULL,
    patient_b TEXT NOT NULL,
    score DOUBLE NOT NULL,
    grade TEXT NOT NULL,
    status TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    decided_by TEXT NULL,
    decided_ms BIGINT NULL,
    event_id TEXT NULL
);
CREATE UNIQUE INDEX health_mpi_reviews_pair ON health_mpi_reviews(patient_a, patient_b);
CREATE INDEX health_mpi_reviews_status ON health_mpi_reviews(status, created_ms)",
        },
        Migration {
            module: "health",
            version: 3,
            name: "tiered care: referrals and their steps, family-doctor teams and contracts, townships",
            only: None,
            sql: "CREATE TABLE health_referrals (
    id TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL,
    direction TEXT NOT NULL,
    priority TEXT NOT NULL,
    from_org TEXT NOT NULL,
    to_org TEXT NOT NULL,
    department TEXT NULL,
    diagnosis TEXT NULL,
    reason_enc BLOB NOT NULL,
    summary_enc BLOB NULL,
    attachments TEXT NOT NULL,
    state TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_ms BIGINT NOT NULL,
    accepted_ms BIGINT NULL,
    arrived_ms BIGINT NULL,
    completed_ms BIGINT NULL,
    returned_ms BIGINT NULL,
    closed_ms BIGINT NULL,
    slot_ms BIGINT NULL,
    updated_ms BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX health_referrals_to ON health_referrals(to_org, requested_ms);
CREATE INDEX health_referrals_from ON health_referrals(from_org, requested_ms);
CREATE INDEX health_referrals_patient ON health_referrals(patient_id, updated_ms);
CREATE TABLE health_referral_steps (
    referral_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    action TEXT NOT NULL,
    state TEXT NOT NULL,
    note_enc BLOB NULL,
    PRIMARY KEY (referral_id, seq)
);
CREATE TABLE health_care_teams (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    name TEXT NOT NULL,
    township TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE UNIQUE INDEX health_care_teams_name ON health_care_teams(org_id, name);
CREATE TABLE health_care_team_members (
    team_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE TABLE health_contracts (
    id TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL,
    team_id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    township TEXT NOT NULL,
    packages TEXT NOT NULL,
    start_day TEXT NOT NULL,
    end_day TEXT NOT NULL,
    state TEXT NOT NULL,
    signed_by TEXT NOT NULL,
    signed_ms BIGINT NOT NULL,
    renewed_from TEXT NULL,
    ended_ms BIGINT NULL,
    end_reason_enc BLOB NULL
);
CREATE INDEX health_contracts_patient ON health_contracts(patient_id, end_day);
CREATE INDEX health_contracts_team ON health_contracts(team_id, end_day);
CREATE INDEX health_contracts_org ON health_contracts(org_id, end_day);
CREATE TABLE health_townships (
    name TEXT PRIMARY KEY,
    population BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
)",
        },
        Migration {
            module: "health",
            version: 4,
            name: "chronic-disease monitoring: watches, device readings taken, the family doctor's worklist",
            only: None,
            sql: "CREATE TABLE health_monitor_watches (
    patient_id TEXT NOT NULL,
    condition TEXT NOT NULL,
    org_id TEXT NOT NULL,
    state TEXT NOT NULL,
    next_tick_ms BIGINT NULL,
    enrolled_ms BIGINT NOT NULL,
    last_reading_ms BIGINT NULL,
    last_controlled BIGINT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (patient_id, condition)
);
CREATE INDEX health_monitor_watches_tick ON health_monitor_watches(next_tick_ms);
CREATE INDEX health_monitor_watches_org ON health_monitor_watches(org_id, condition);
CREATE TABLE health_monitor_readings (
    device_code TEXT NOT NULL,
    device_ms BIGINT NOT NULL,
    patient_id TEXT NOT NULL,
    observation_id TEXT NOT NULL,
    processed_ms BIGINT NOT NULL,
    PRIMARY KEY (device_code, device_ms)
);
CREATE TABLE health_worklist (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    team_id TEXT NULL,
    patient_id TEXT NOT NULL,
    condition TEXT NOT NULL,
    action TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    due_ms BIGINT NULL,
    rules_version BIGINT NOT NULL,
    evidence_enc BLOB NOT NULL,
    state TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    closed_ms BIGINT NULL,
    closed_by TEXT NULL,
    outcome TEXT NULL,
    note_enc BLOB NULL
);
CREATE UNIQUE INDEX health_worklist_once ON health_worklist(patient_id, condition, action, at_ms);
CREATE INDEX health_worklist_org ON health_worklist(org_id, state, at_ms);
CREATE INDEX health_worklist_patient ON health_worklist(patient_id, condition, state)",
        },
        Migration {
            module: "health",
            version: 5,
            name: "appointments: schedules, slots, appointments",
            only: None,
            sql: "CREATE TABLE health_schedules (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    department TEXT NOT NULL,
    practitioner_id TEXT NULL,
    name TEXT NOT NULL,
    service TEXT NOT NULL,
    active BIGINT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX health_schedules_org ON health_schedules(org_id, department);
CREATE TABLE health_slots (
    id TEXT PRIMARY KEY,
    schedule_id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    capacity BIGINT NOT NULL,
    booked BIGINT NOT NULL
);
CREATE UNIQUE INDEX health_slots_time ON health_slots(schedule_id, start_ms);
CREATE INDEX health_slots_org ON health_slots(org_id, start_ms);
CREATE TABLE health_appointments (
    id TEXT PRIMARY KEY,
    slot_id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    state TEXT NOT NULL,
    booked_by TEXT NOT NULL,
    booked_org TEXT NOT NULL,
    booked_ms BIGINT NOT NULL,
    reason_enc BLOB NULL,
    referral_id TEXT NULL,
    updated_ms BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX health_appointments_patient ON health_appointments(patient_id, start_ms);
CREATE INDEX health_appointments_org ON health_appointments(org_id, start_ms);
CREATE INDEX health_appointments_slot ON health_appointments(slot_id)",
        },
        Migration {
            module: "health",
            version: 6,
            name: "remote consultation and reading requests",
            only: None,
            sql: "CREATE TABLE health_remote (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    urgent BIGINT NOT NULL,
    patient_id TEXT NOT NULL,
    from_org TEXT NOT NULL,
    to_org TEXT NOT NULL,
    department TEXT NULL,
    question_enc BLOB NOT NULL,
    attachments TEXT NOT NULL,
    state TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_ms BIGINT NOT NULL,
    accepted_ms BIGINT NULL,
    answered_by TEXT NULL,
    reason_enc BLOB NULL,
    report_id TEXT NULL,
    reported_ms BIGINT NULL,
    updated_ms BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX health_remote_to ON health_remote(to_org, requested_ms);
CREATE INDEX health_remote_from ON health_remote(from_org, requested_ms);
CREATE INDEX health_remote_patient ON health_remote(patient_id, state)",
        },
    ]
}
