//! Credit assessment (质量信誉考核): each transport enterprise's yearly score, computed from
//! configurable items, with its grade (AAA / AA / A / B) and the evidence behind every deduction.
//!
//! After the shape of 道路运输企业质量信誉考核办法 (交通运输部): an enterprise starts from a
//! base score and loses points for what the year's records show, item by item, each item capped:
//!
//! | item | counted from | default |
//! |---|---|---|
//! | `penalties` 行政处罚 | penalties decided in the year and not revoked | by kind: warning 2, order to correct 2, fine 5, confiscation 8, suspension 15, revocation 30; at most 40 |
//! | `accidents` 责任事故 | accidents in the year the enterprise was at fault for | minor 5, major 15, serious 30, catastrophic 50, plus 2 per death; at most 60 |
//! | `complaints` 有效投诉 | complaints in the year found substantiated | 1 each, at most 10 |
//! | `alarm_rate` 百车报警数 | transport alarms started in the year per 100 registered vehicles | 1 per 10 above 50, at most 10 |
//! | `handling_rate` 报警处理率 | alarms handled ÷ raised in the year | 0.5 per point below 95 %, at most 10 |
//! | `overdue_hazards` 隐患整改超期 | hazards found in the year escalated as overdue | 3 each, at most 15 |
//! | `late_reports` 报送逾期 | required reports of the year's documents answered late or not at all after the deadline | 1 each, at most 5 |
//!
//! Grades: AAA from 90, AA from 80, A from 70, B below; an at-fault accident of grade `serious`
//! or worse makes the year B whatever the score (the 办法's 一票否决). The figures and the
//! thresholds are the bureau's to set: the rules are the versioned document
//! `supervision.credit` (`kernel::versioned`), version 1 being the built-in defaults above;
//! every result names the version it was computed with. The score of the year in progress moves
//! as records arrive; a past year's is computed from its records the same way.

use crate::access::{Who, reaches, who};
use crate::enterprises::DOMAIN;
use kernel::access::Caller;
use kernel::audit::{self, Actor, Event, Outcome};
use kernel::error::{ApiError, ApiResult, Code, Problem};
use kernel::http::{AppState, Auth, Json, Paged, Path, Query};
use kernel::orgs::OrgKind;
use kernel::store::{StoreError, col};
use kernel::versioned::{self, Draft, VersionInfo};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The rules' versioned document.
pub const DOCUMENT: &str = "supervision.credit";
/// The built-in rules' version (never stored).
pub const BUILTIN_VERSION: i64 = 1;

/// Points per occurrence, with a cap for the item.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EachCapped {
    pub each: f64,
    pub max: f64,
}

/// Points by penalty kind.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PenaltyPoints {
    pub warning: f64,
    pub order_to_correct: f64,
    pub fine: f64,
    pub confiscation: f64,
    pub suspension: f64,
    pub revocation: f64,
    pub max: f64,
}

/// Points by accident grade (at fault only), plus per death.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccidentPoints {
    pub minor: f64,
    pub major: f64,
    pub serious: f64,
    pub catastrophic: f64,
    pub per_death: f64,
    pub max: f64,
    /// An at-fault accident of this grade or worse makes the year B (`null`: never).
    pub grade_b_from: Option<AccidentGrade>,
}

/// 事故等级 (生产安全事故报告和调查处理条例).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccidentGrade {
    /// 一般事故
    Minor,
    /// 较大事故
    Major,
    /// 重大事故
    Serious,
    /// 特别重大事故
    Catastrophic,
}

/// Points for alarms per 100 vehicles above a free allowance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlarmRatePoints {
    /// Alarms per 100 vehicles a year that cost nothing.
    pub allowed_per_100: f64,
    /// Points for every `step` alarms per 100 vehicles above the allowance.
    pub points: f64,
    pub step: f64,
    pub max: f64,
}

/// Points per percentage point of the handling rate below the target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandlingPoints {
    /// Percent, 0–100.
    pub target_percent: f64,
    pub per_point: f64,
    pub max: f64,
}

/// Grade thresholds (score from which a grade is given).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Grades {
    pub aaa: f64,
    pub aa: f64,
    pub a: f64,
}

/// The assessment's rules (the body of `supervision.credit`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditRules {
    pub base: f64,
    pub grades: Grades,
    pub penalties: PenaltyPoints,
    pub accidents: AccidentPoints,
    pub complaints: EachCapped,
    pub alarm_rate: AlarmRatePoints,
    pub handling_rate: HandlingPoints,
    pub overdue_hazards: EachCapped,
    pub late_reports: EachCapped,
}

impl Default for CreditRules {
    fn default() -> Self {
        CreditRules {
            base: 100.0,
            grades: Grades { aaa: 90.0, aa: 80.0, a: 70.0 },
            penalties: PenaltyPoints {
                warning: 2.0,
                order_to_correct: 2.0,
                fine: 5.0,
                confiscation: 8.0,
                suspension: 15.0,
                revocation: 30.0,
                max: 40.0,
            },
            accidents: AccidentPoints {
                minor: 5.0,
                major: 15.0,
                serious: 30.0,
                catastrophic: 50.0,
                per_death: 2.0,
                max: 60.0,
                grade_b_from: Some(AccidentGrade::Serious),
            },
            complaints: EachCapped { each: 1.0, max: 10.0 },
            alarm_rate: AlarmRatePoints { allowed_per_100: 50.0, points: 1.0, step: 10.0, max: 10.0 },
            handling_rate: HandlingPoints { target_percent: 95.0, per_point: 0.5, max: 10.0 },
            overdue_hazards: EachCapped { each: 3.0, max: 15.0 },
            late_reports: EachCapped { each: 1.0, max: 5.0 },
        }
    }
}

impl CreditRules {
    /// Every figure finite and in its range: the first fault as (field path, reason).
    pub fn check(&self) -> Result<(), (String, String)> {
        let mut points: Vec<(&str, f64)> = vec![
            ("penalties.warning", self.penalties.warning),
            ("penalties.order_to_correct", self.penalties.order_to_correct),
            ("penalties.fine", self.penalties.fine),
            ("penalties.confiscation", self.penalties.confiscation),
            ("penalties.suspension", self.penalties.suspension),
            ("penalties.revocation", self.penalties.revocation),
            ("penalties.max", self.penalties.max),
            ("accidents.minor", self.accidents.minor),
            ("accidents.major", self.accidents.major),
            ("accidents.serious", self.accidents.serious),
            ("accidents.catastrophic", self.accidents.catastrophic),
            ("accidents.per_death", self.accidents.per_death),
            ("accidents.max", self.accidents.max),
            ("complaints.each", self.complaints.each),
            ("complaints.max", self.complaints.max),
            ("alarm_rate.allowed_per_100", self.alarm_rate.allowed_per_100),
            ("alarm_rate.points", self.alarm_rate.points),
            ("alarm_rate.max", self.alarm_rate.max),
            ("handling_rate.per_point", self.handling_rate.per_point),
            ("handling_rate.max", self.handling_rate.max),
            ("overdue_hazards.each", self.overdue_hazards.each),
            ("overdue_hazards.max", self.overdue_hazards.max),
            ("late_reports.each", self.late_reports.each),
            ("late_reports.max", self.late_reports.max),
        ];
        points.push(("base", self.base));
        for (field, v) in points {
            if !v.is_finite() || !(0.0..=1000.0).contains(&v) {
                return Err((field.into(), "a number from 0 to 1000".into()));
            }
        }
        if !(self.alarm_rate.step.is_finite() && self.alarm_rate.step > 0.0 && self.alarm_rate.step <= 1000.0) {
            return Err(("alarm_rate.step".into(), "a number above 0, at most 1000".into()));
        }
        let t = self.handling_rate.target_percent;
        if !(t.is_finite() && (0.0..=100.0).contains(&t)) {
            return Err(("handling_rate.target_percent".into(), "a percentage, 0 to 100".into()));
        }
        let g = self.grades;
        if !(g.aaa.is_finite() && g.aa.is_finite() && g.a.is_finite() && g.aaa > g.aa && g.aa > g.a && g.a >= 0.0) {
            return Err(("grades".into(), "aaa above aa above a, from 0".into()));
        }
        if g.aaa > self.base {
            return Err(("grades.aaa".into(), "at most the base score".into()));
        }
        Ok(())
    }
}

/// 信誉等级.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Grade {
    AAA,
    AA,
    A,
    B,
}

/// One record that costs points.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Evidence {
    /// `penalty`, `accident`, `complaint`, `hazard`, `document`, `alarms`.
    pub kind: String,
    /// The record's id (for `alarms`: empty, the figure is the year's).
    pub id: String,
    /// What a person reads: a decision number, a hazard number and title, a document's title.
    pub label: String,
    /// `YYYY-MM-DD`, when there is one.
    pub date: Option<String>,
    /// The points this record accounts for, before the item's cap.
    pub points: f64,
}

/// One item's deduction.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Deduction {
    /// The item's key (`penalties`, `accidents`, …).
    pub item: String,
    /// Points lost (after the cap).
    pub points: f64,
    /// The cap was reached.
    pub capped: bool,
    /// Why, in a sentence (Chinese).
    pub reason: String,
    pub evidence: Vec<Evidence>,
}

/// The year's figures behind the items.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct Figures {
    pub vehicles: i64,
    pub alarms: i64,
    pub alarms_handled: i64,
    /// Per 100 registered vehicles (None without vehicles).
    pub alarms_per_100: Option<f64>,
    /// Percent (None without alarms).
    pub handling_rate: Option<f64>,
    pub penalties: i64,
    pub accidents: i64,
    pub complaints: i64,
    pub overdue_hazards: i64,
    pub late_reports: i64,
}

/// What the year's records hold for one enterprise: the input of [`assess`].
#[derive(Debug, Clone, Default)]
pub struct Records {
    pub vehicles: i64,
    pub alarms: i64,
    pub alarms_handled: i64,
    /// (id, decision number, date, kind) of the penalties that count.
    pub penalties: Vec<(String, String, String, String)>,
    /// (id, label, date, grade, deaths) of the at-fault accidents.
    pub accidents: Vec<(String, String, String, AccidentGrade, i64)>,
    /// (id, label, date) of the substantiated complaints.
    pub complaints: Vec<(String, String, String)>,
    /// (id, number and title, found on) of the hazards escalated as overdue.
    pub overdue_hazards: Vec<(String, String, String)>,
    /// (document id, title, issued on) of the late required reports.
    pub late_reports: Vec<(String, String, String)>,
}

/// An enterprise's assessment.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = CreditAssessment)]
pub struct Assessment {
    pub org_id: String,
    pub org_name: String,
    pub year: i32,
    /// 1 = best, by score (ties share a rank).
    pub rank: i64,
    pub score: f64,
    pub grade: Grade,
    /// The grade is B because of an accident (一票否决), whatever the score.
    pub vetoed: bool,
    pub figures: Figures,
    pub deductions: Vec<Deduction>,
    /// The version of `supervision.credit` it was computed with.
    pub rules_version: i64,
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Sums an item's evidence under its cap; None when nothing counts.
fn item(key: &str, reason: String, max: f64, evidence: Vec<Evidence>) -> Option<Deduction> {
    let raw: f64 = evidence.iter().map(|e| e.points).sum();
    if raw <= 0.0 {
        return None;
    }
    Some(Deduction { item: key.into(), points: round1(raw.min(max)), capped: raw > max, reason, evidence })
}

fn ev(kind: &str, id: &str, label: &str, date: Option<&str>, points: f64) -> Evidence {
    Evidence { kind: kind.into(), id: id.into(), label: label.into(), date: date.map(str::to_string), points }
}

/// The score, grade and deductions from a year's records under `rules`: pure, so that every
/// rule is tested without a database.
pub fn assess(rules: &CreditRules, r: &Records) -> (f64, Grade, bool, Figures, Vec<Deduction>) {
    let mut out = Vec::new();
    let p = &rules.penalties;
    let pen: Vec<Evidence> = r
        .penalties
        .iter()
        .map(|(id, no, date, kind)| {
            let pts = match kind.as_str() {
                "warning" => p.warning,
                "order_to_correct" => p.order_to_correct,
                "fine" => p.fine,
                "confiscation" => p.confiscation,
                "suspension" => p.suspension,
                "revocation" => p.revocation,
                _ => 0.0,
            };
            ev("penalty", id, no, Some(date), pts)
        })
        .collect();
    out.extend(item("penalties", format!("行政处罚 {} 起", r.penalties.len()), p.max, pen));
    let a = &rules.accidents;
    let mut veto = false;
    let acc: Vec<Evidence> = r
        .accidents
        .iter()
        .map(|(id, label, date, grade, deaths)| {
            veto |= a.grade_b_from.is_some_and(|g| *grade >= g);
            let base = match grade {
                AccidentGrade::Minor => a.minor,
                AccidentGrade::Major => a.major,
                AccidentGrade::Serious => a.serious,
                AccidentGrade::Catastrophic => a.catastrophic,
            };
            ev("accident", id, label, Some(date), base + a.per_death * (*deaths).max(0) as f64)
        })
        .collect();
    out.extend(item("accidents", format!("负有责任的事故 {} 起", r.accidents.len()), a.max, acc));
    let c = rules.complaints;
    let com = r.complaints.iter().map(|(id, l, d)| ev("complaint", id, l, Some(d), c.each)).collect();
    out.extend(item("complaints", format!("有效投诉 {} 起", r.complaints.len()), c.max, com));
    let per_100 = (r.vehicles > 0).then(|| r.alarms as f64 * 100.0 / r.vehicles as f64);
    if let Some(rate) = per_100 {
        let ar = rules.alarm_rate;
        let over = rate - ar.allowed_per_100;
        if over > 0.0 {
            let pts = (over / ar.step).floor() * ar.points;
            let label = format!("百车报警 {:.1} 起（{} 起 / {} 辆）", rate, r.alarms, r.vehicles);
            out.extend(item(
                "alarm_rate",
                format!("百车报警数 {:.1}，超过 {}", rate, ar.allowed_per_100),
                ar.max,
                vec![ev("alarms", "", &label, None, pts)],
            ));
        }
    }
    let handling = (r.alarms > 0).then(|| r.alarms_handled.min(r.alarms) as f64 * 100.0 / r.alarms as f64);
    if let Some(h) = handling {
        let hr = rules.handling_rate;
        let short = hr.target_percent - h;
        if short > 0.0 {
            let label = format!("报警处理率 {:.1}%（{} / {}）", h, r.alarms_handled.min(r.alarms), r.alarms);
            out.extend(item(
                "handling_rate",
                format!("报警处理率 {:.1}%，低于 {}%", h, hr.target_percent),
                hr.max,
                vec![ev("alarms", "", &label, None, short * hr.per_point)],
            ));
        }
    }
    let o = rules.overdue_hazards;
    let hz = r.overdue_hazards.iter().map(|(id, l, d)| ev("hazard", id, l, Some(d), o.each)).collect();
    out.extend(item("overdue_hazards", format!("隐患整改超期 {} 项", r.overdue_hazards.len()), o.max, hz));
    let l = rules.late_reports;
    let lr = r.late_reports.iter().map(|(id, t, d)| ev("document", id, t, Some(d), l.each)).collect();
    out.extend(item("late_reports", format!("报送逾期 {} 次", r.late_reports.len()), l.max, lr));
    let lost: f64 = out.iter().map(|d| d.points).sum();
    let score = round1((rules.base - lost).max(0.0));
    let g = rules.grades;
    let grade = if veto {
        Grade::B
    } else if score >= g.aaa {
        Grade::AAA
    } else if score >= g.aa {
        Grade::AA
    } else if score >= g.a {
        Grade::A
    } else {
        Grade::B
    };
    let figures = Figures {
        vehicles: r.vehicles,
        alarms: r.alarms,
        alarms_handled: r.alarms_handled,
        alarms_per_100: per_100.map(round1),
        handling_rate: handling.map(round1),
        penalties: r.penalties.len() as i64,
        accidents: r.accidents.len() as i64,
        complaints: r.complaints.len() as i64,
        overdue_hazards: r.overdue_hazards.len() as i64,
        late_reports: r.late_reports.len() as i64,
    };
    (score, grade, veto, figures, out)
}

// ------------------------------------------------------------------------------ the records

/// The rules in force and their version.
pub async fn rules_in_force(st: &AppState) -> ApiResult<(CreditRules, i64)> {
    match versioned::current(&st.store, DOCUMENT).await? {
        Some(doc) => {
            let r: CreditRules = serde_json::from_value(doc.body).map_err(|e| {
                ApiError::internal(format!("stored credit rules v{} do not read: {e}", doc.info.version))
            })?;
            Ok((r, doc.info.version))
        }
        None => Ok((CreditRules::default(), BUILTIN_VERSION)),
    }
}

/// The year's bounds: `YYYY-01-01` and the next year's, and the UTC ms of Beijing's midnights.
fn bounds(year: i32) -> (String, String, i64, i64) {
    let from = format!("{year:04}-01-01");
    let to = format!("{:04}-01-01", year + 1);
    let ms = |d: &str| crate::dates::days_of(d).map_or(0, crate::dates::midnight_ms);
    let (a, b) = (ms(&from), ms(&to));
    (from, to, a, b)
}

/// Gathers each enterprise's records of `year`.
async fn gather(st: &AppState, orgs: &[String], year: i32) -> ApiResult<Vec<Records>> {
    let (from, to, from_ms, to_ms) = bounds(year);
    let store = &st.store;
    let counts = alarms::service::assessment_counts(store, "transport", orgs, from_ms, to_ms).await?;
    let penalties = crate::penalties::for_year(st, orgs, year).await?;
    let incidents = crate::incidents::for_year(st, orgs, year).await?;
    let mut out = Vec::with_capacity(orgs.len());
    for org in orgs {
        let mut r = Records::default();
        for p in penalties.iter().filter(|p| &p.org_id == org && p.state != crate::penalties::State::Revoked) {
            r.penalties.push((p.id.clone(), p.decision_no.clone(), p.decided_on.clone(), p.kind.as_str().to_string()));
        }
        for i in incidents.iter().filter(|i| &i.org_id == org) {
            use crate::incidents::{Kind, Severity};
            match i.kind {
                Kind::Accident if i.at_fault == Some(true) => {
                    let (grade, name) = match i.severity {
                        Some(Severity::Catastrophic) => (AccidentGrade::Catastrophic, "特别重大"),
                        Some(Severity::Serious) => (AccidentGrade::Serious, "重大"),
                        Some(Severity::Major) => (AccidentGrade::Major, "较大"),
                        _ => (AccidentGrade::Minor, "一般"),
                    };
                    let label = format!("{name}事故（{}）", i.occurred_on);
                    r.accidents.push((i.id.clone(), label, i.occurred_on.clone(), grade, i.deaths.unwrap_or(0)));
                }
                Kind::Complaint if i.substantiated == Some(true) => {
                    let label = format!("有效投诉（{}）", i.occurred_on);
                    r.complaints.push((i.id.clone(), label, i.occurred_on.clone()));
                }
                _ => {}
            }
        }
        r.vehicles = sqlx::query_scalar(&store.sql("SELECT COUNT(*) FROM transport_vehicles WHERE org_id = $1"))
            .bind(org.clone())
            .fetch_one(store.reader())
            .await
            .map_err(StoreError::from)?;
        for c in counts.iter().filter(|c| &c.org_id == org) {
            r.alarms += c.raised;
            r.alarms_handled += c.handled;
        }
        let hz = sqlx::query(&store.sql(
            "SELECT id, number, title, found_on FROM supervision_hazards WHERE org_id = $1 AND escalations > 0 \
             AND found_on >= $2 AND found_on < $3 AND state <> 'withdrawn' ORDER BY found_on, number",
        ))
        .bind(org.clone())
        .bind(from.clone())
        .bind(to.clone())
        .fetch_all(store.reader())
        .await
        .map_err(StoreError::from)?;
        for h in &hz {
            let label = format!("{} {}", col::<String>(h, "number")?, col::<String>(h, "title")?);
            r.overdue_hazards.push((col(h, "id")?, label, col(h, "found_on")?));
        }
        let today = crate::dates::date_of(crate::dates::today_days());
        let docs = sqlx::query(&store.sql(
            "SELECT d.id AS id, d.title AS title, d.issued_ms AS issued_ms FROM supervision_documents d \
             JOIN supervision_document_recipients x ON x.document_id = d.id WHERE x.org_id = $1 \
             AND d.requires_report = 1 AND d.issued_ms >= $2 AND d.issued_ms < $3 \
             AND (x.reply_late = 1 OR (d.deadline < $4 AND x.status IN ('unread', 'read', 'returned'))) \
             ORDER BY d.issued_ms",
        ))
        .bind(org.clone())
        .bind(from_ms)
        .bind(to_ms)
        .bind(today)
        .fetch_all(store.reader())
        .await
        .map_err(StoreError::from)?;
        for d in &docs {
            let issued = kernel::store::ms_to_rfc3339(col::<i64>(d, "issued_ms")? + 8 * 3_600_000);
            r.late_reports.push((col(d, "id")?, col(d, "title")?, issued[..10].to_string()));
        }
        out.push(r);
    }
    Ok(out)
}

/// The transport enterprises `c` may see, as (id, name), by name.
async fn enterprises(st: &AppState, c: &Caller, side: Who) -> ApiResult<Vec<(String, String)>> {
    let (orgs, _) = kernel::orgs::list(&st.store, &c.scope, Some(OrgKind::Enterprise), None, 100_000, 0).await?;
    let mut out = Vec::new();
    for o in orgs {
        if (side == Who::Operator && o.id != c.org_id) || !reaches(c, &o.id) {
            continue;
        }
        if st.orgs.domain_of(&st.store, &o.id).await?.as_deref() == Some(DOMAIN) {
            out.push((o.id, o.name));
        }
    }
    Ok(out)
}

fn check_year(year: Option<i32>) -> ApiResult<i32> {
    let this = crate::dates::date_of(crate::dates::today_days())[..4].parse::<i32>().unwrap_or(2026);
    let y = year.unwrap_or(this);
    if !(2020..=this).contains(&y) {
        return Err(ApiError::field(Code::InvalidQuery, "year", format!("a year from 2020 to {this}")));
    }
    Ok(y)
}

/// The ranking of `year`: every enterprise in the caller's reach, best first.
pub async fn ranking(st: &AppState, c: &Caller, year: Option<i32>) -> ApiResult<Vec<Assessment>> {
    let side = who(st, c).await?;
    let year = check_year(year)?;
    let orgs = enterprises(st, c, side).await?;
    let ids: Vec<String> = orgs.iter().map(|(id, _)| id.clone()).collect();
    let (rules, version) = rules_in_force(st).await?;
    let records = gather(st, &ids, year).await?;
    let mut out: Vec<Assessment> = orgs
        .into_iter()
        .zip(records.iter())
        .map(|((org_id, org_name), r)| {
            let (score, grade, vetoed, figures, deductions) = assess(&rules, r);
            Assessment {
                org_id,
                org_name,
                year,
                rank: 0,
                score,
                grade,
                vetoed,
                figures,
                deductions,
                rules_version: version,
            }
        })
        .collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.org_name.cmp(&b.org_name)));
    let mut rank = 0;
    let mut last = f64::NAN;
    for (i, a) in out.iter_mut().enumerate() {
        if a.score != last {
            rank = i as i64 + 1;
            last = a.score;
        }
        a.rank = rank;
    }
    audit::record(
        &st.store,
        Event::new(Actor::of(c), "credit.list", "organisation", None, Outcome::Success)
            .detail(serde_json::json!({"year": year, "count": out.len()})),
    )
    .await?;
    Ok(out)
}

/// One enterprise's assessment of `year` with its rank among those the caller sees.
pub async fn one(st: &AppState, c: &Caller, org_id: &str, year: Option<i32>) -> ApiResult<Assessment> {
    ranking(st, c, year)
        .await?
        .into_iter()
        .find(|a| a.org_id == org_id)
        .ok_or_else(|| ApiError::not_found("enterprise"))
}

// ------------------------------------------------------------------------------------ HTTP

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_ranking))
        .routes(routes!(get_rules, put_rules))
        .routes(routes!(rule_versions))
        .routes(routes!(get_one))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct YearQuery {
    /// The calendar year (default: this year, in progress).
    pub year: Option<i32>,
}

/// The credit ranking (质量信誉排名) of a year: the bureau's enterprises best first (an
/// enterprise sees its own), each with score, grade, figures and deductions with evidence.
#[utoipa::path(get, path = "/api/supervision/credit", tag = "supervision", params(YearQuery),
    responses((status = 200, body = Vec<Assessment>), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn get_ranking(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Query(q): Query<YearQuery>,
) -> ApiResult<axum::Json<Vec<Assessment>>> {
    Ok(axum::Json(ranking(&st, &c, q.year).await?))
}

/// One enterprise's assessment of a year.
#[utoipa::path(get, path = "/api/supervision/credit/enterprises/{org_id}", tag = "supervision",
    params(("org_id" = String, Path), YearQuery),
    responses((status = 200, body = Assessment), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn get_one(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Path(org_id): Path<String>,
    Query(q): Query<YearQuery>,
) -> ApiResult<axum::Json<Assessment>> {
    Ok(axum::Json(one(&st, &c, &org_id, q.year).await?))
}

/// The rules in force.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CreditRulesView)]
pub struct RulesView {
    pub version: i64,
    pub rules: CreditRules,
    /// `false`: the built-in rules (version 1) apply.
    pub stored: bool,
}

/// A new version of the rules.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PublishCreditRules)]
pub struct PublishRules {
    /// The version the edit started from: 409 when another was published since.
    pub base_version: i64,
    pub rules: CreditRules,
    /// Why, at most 1000 characters.
    #[serde(default)]
    pub note: String,
}

/// The assessment's rules in force (transport regulators and enterprises read them).
#[utoipa::path(get, path = "/api/supervision/credit/rules", tag = "supervision",
    responses((status = 200, body = RulesView), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn get_rules(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
) -> ApiResult<axum::Json<RulesView>> {
    who(&st, &c).await?;
    let (rules, version) = rules_in_force(&st).await?;
    Ok(axum::Json(RulesView { version, rules, stored: version != BUILTIN_VERSION }))
}

/// Publishes new assessment rules (the bureau's transport regulators): every figure checked
/// (422 naming it), a stale `base_version` a 409.
#[utoipa::path(put, path = "/api/supervision/credit/rules", tag = "supervision", request_body = PublishRules,
    responses((status = 200, body = RulesView), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn put_rules(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Json(p): Json<PublishRules>,
) -> ApiResult<axum::Json<RulesView>> {
    if who(&st, &c).await? != Who::Regulator {
        return Err(ApiError::forbidden("the credit rules are published by the transport bureau's regulators"));
    }
    p.rules.check().map_err(|(f, why)| ApiError::field(Code::InvalidField, format!("rules.{f}"), why))?;
    let body = serde_json::to_value(&p.rules).map_err(ApiError::internal)?;
    let draft = Draft {
        name: DOCUMENT,
        base_version: Some(p.base_version),
        builtin_version: BUILTIN_VERSION,
        body: &body,
        note: &p.note,
    };
    let version = versioned::publish(&st.store, st.bus.as_ref(), Actor::of(&c), draft).await?;
    Ok(axum::Json(RulesView { version, rules: p.rules, stored: true }))
}

/// The published versions of the rules, newest first (without bodies).
#[utoipa::path(get, path = "/api/supervision/credit/rules/versions", tag = "supervision",
    params(versioned::VersionsQuery),
    responses((status = 200, body = Paged<VersionInfo>), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn rule_versions(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Query(q): Query<versioned::VersionsQuery>,
) -> ApiResult<axum::Json<Paged<VersionInfo>>> {
    who(&st, &c).await?;
    Ok(axum::Json(versioned::page(&st.store, DOCUMENT, &q).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> Records {
        Records { vehicles: 100, alarms: 40, alarms_handled: 40, ..Records::default() }
    }

    #[test]
    fn a_clean_year_is_aaa_at_the_base_score() {
        let (score, grade, veto, f, d) = assess(&CreditRules::default(), &records());
        assert_eq!((score, grade, veto), (100.0, Grade::AAA, false));
        assert!(d.is_empty());
        assert_eq!((f.alarms_per_100, f.handling_rate), (Some(40.0), Some(100.0)));
    }

    #[test]
    fn each_item_deducts_with_its_evidence_and_cap() {
        let mut r = records();
        r.penalties = vec![
            ("p1".into(), "武交罚〔2026〕1号".into(), "2026-03-01".into(), "fine".into()),
            ("p2".into(), "武交罚〔2026〕2号".into(), "2026-04-01".into(), "warning".into()),
        ];
        r.complaints = (0..12).map(|i| (format!("c{i}"), "投诉".into(), "2026-05-01".into())).collect();
        r.alarms = 95; // 95 per 100: 45 over 50 → 4 steps of 10 → 4 points
        r.alarms_handled = 76; // 80 % → 15 points short × 0.5 = 7.5
        r.overdue_hazards = vec![("h1".into(), "YH-2026-0001 灭火器过期".into(), "2026-02-01".into())];
        r.late_reports = vec![("d1".into(), "自查报告".into(), "2026-06-01".into())];
        let (score, grade, veto, _, d) = assess(&CreditRules::default(), &r);
        let by = |k: &str| d.iter().find(|x| x.item == k).cloned().unwrap();
        assert_eq!(by("penalties").points, 7.0);
        assert_eq!(by("penalties").evidence.len(), 2);
        assert_eq!(by("penalties").evidence[0].label, "武交罚〔2026〕1号");
        assert_eq!((by("complaints").points, by("complaints").capped), (10.0, true));
        assert_eq!(by("alarm_rate").points, 4.0);
        assert_eq!(by("handling_rate").points, 7.5);
        assert_eq!(by("overdue_hazards").points, 3.0);
        assert_eq!(by("late_reports").points, 1.0);
        assert_eq!(score, 100.0 - 7.0 - 10.0 - 4.0 - 7.5 - 3.0 - 1.0);
        assert_eq!((grade, veto), (Grade::B, false), "67.5 is below A's 70");
    }

    #[test]
    fn a_serious_accident_at_fault_makes_the_year_b() {
        let mut r = records();
        r.accidents = vec![("a1".into(), "津C追尾".into(), "2026-07-01".into(), AccidentGrade::Serious, 3)];
        let (score, grade, veto, _, d) = assess(&CreditRules::default(), &r);
        assert_eq!(d[0].points, 36.0, "30 for the grade, 2 for each death");
        assert_eq!((score, grade, veto), (64.0, Grade::B, true));
        let mut rules = CreditRules::default();
        rules.accidents.grade_b_from = None;
        rules.accidents.serious = 5.0;
        rules.accidents.per_death = 0.0;
        let (score, grade, veto, _, _) = assess(&rules, &r);
        assert_eq!((score, grade, veto), (95.0, Grade::AAA, false));
    }

    #[test]
    fn grades_follow_the_thresholds_and_scores_never_go_negative() {
        let mut r = records();
        r.penalties =
            (0..10).map(|i| (format!("p{i}"), "x".into(), "2026-01-01".into(), "revocation".into())).collect();
        r.accidents =
            (0..5).map(|i| (format!("a{i}"), "x".into(), "2026-01-01".into(), AccidentGrade::Minor, 0)).collect();
        let mut rules =
            CreditRules { base: 50.0, grades: Grades { aaa: 45.0, aa: 40.0, a: 30.0 }, ..CreditRules::default() };
        let (score, grade, ..) = assess(&rules, &r);
        assert_eq!((score, grade), (0.0, Grade::B));
        assert!(CreditRules::default().check().is_ok());
        rules.grades.aaa = 60.0;
        assert_eq!(rules.check().unwrap_err().0, "grades.aaa");
        let mut bad = CreditRules::default();
        bad.alarm_rate.step = 0.0;
        assert_eq!(bad.check().unwrap_err().0, "alarm_rate.step");
        bad = CreditRules::default();
        bad.penalties.fine = f64::NAN;
        assert_eq!(bad.check().unwrap_err().0, "penalties.fine");
    }
}
