//! The demo bureau's casework, so that a newcomer opens a bureau that has been at work for
//! months: hazards in every state (one major hazard overdue and escalated, one awaiting review,
//! one closed after a return), and documents half-answered (one with answers accepted, one
//! awaiting review, one enterprise late, one not even read).
//!
//! Every record goes through the same services a person's requests do (checks, history, audit,
//! file shares), acting as the demo accounts; then its dates are moved back to when the story
//! says it happened (demo only: nothing else ever rewrites a case's dates), and the daily
//! escalation runs so that the overdue hazards are on the alarm desk as they would be.

use crate::documents::{self, NewDocument, Reply, ReplyDecision, ReplyReview, Target};
use crate::hazards::{self, Decision, Level, NewHazard, Review, StepInput};
use kernel::access::Caller;
use kernel::audit::Actor;
use kernel::demo::{DemoContext, act_as, is_seeded, mark_seeded};
use kernel::files::{self, Upload};
use kernel::http::AppState;
use kernel::store::{StoreError, now_ms};

const DAY_MS: i64 = 86_400_000;

async fn file(st: &AppState, c: &Caller, name: &str, text: &str) -> anyhow::Result<String> {
    let up = Upload {
        org_id: &c.org_id,
        name,
        declared_type: "application/pdf",
        classification: kernel::access::Classification::Internal,
    };
    let m = files::store_bytes(st, Actor::of(c), &up, &crate::demo::demo_pdf(text))
        .await
        .map_err(|e| anyhow::anyhow!("demo file {name}: {}", e.message))?;
    Ok(m.id)
}

fn api(e: kernel::error::ApiError) -> anyhow::Error {
    anyhow::anyhow!("{}", e.message)
}

fn in_days(days: i64) -> String {
    crate::dates::date_of(crate::dates::today_days() + days)
}

/// Moves a case's steps back: step `i + 1` to `days_ago[i]` days ago (at mid-morning, a few
/// minutes apart).
async fn backdate_steps(st: &AppState, kind: &str, case_id: &str, days_ago: &[i64]) -> anyhow::Result<()> {
    let now = now_ms();
    let mut tx = st.store.begin().await?;
    for (i, d) in days_ago.iter().enumerate() {
        sqlx::query(
            &st.store
                .sql("UPDATE supervision_history SET at_ms = $1 WHERE case_kind = $2 AND case_id = $3 AND seq = $4"),
        )
        .bind(now - d * DAY_MS - 5 * 3_600_000 + i as i64 * 600_000)
        .bind(kind.to_string())
        .bind(case_id.to_string())
        .bind(i as i64 + 1)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// Moves one recipient's part of a document `days` back: when it read and answered, and the
/// steps of its case (the bureau's review included).
async fn backdate_reply(st: &AppState, document_id: &str, org_id: &str, days: i64) -> anyhow::Result<()> {
    let shift = days * DAY_MS;
    set(
        st,
        "UPDATE supervision_document_recipients SET read_ms = read_ms - $1, replied_ms = replied_ms - $1 \
         WHERE document_id = $2 AND org_id = $3",
        vec![I(shift), S(document_id.to_string()), S(org_id.to_string())],
    )
    .await?;
    set(
        st,
        "UPDATE supervision_history SET at_ms = at_ms - $1 WHERE case_kind = $2 AND case_id = $3",
        vec![I(shift), S(documents::REPLY_CASE.to_string()), S(format!("{document_id}:{org_id}"))],
    )
    .await
}

/// Sets columns of one row to values (the demo's story, not the request's time).
async fn set(st: &AppState, sql: &str, binds: Vec<kernel::store::Arg>) -> anyhow::Result<()> {
    let sql = st.store.sql(sql).into_owned();
    let mut q = sqlx::query(&sql);
    for b in &binds {
        q = b.bind(q);
    }
    let mut tx = st.store.begin().await?;
    q.execute(&mut *tx).await.map_err(StoreError::from)?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

use kernel::store::Arg::{I, S};

async fn first_vehicle(st: &AppState, org_id: &str) -> anyhow::Result<Option<String>> {
    Ok(sqlx::query_scalar(&st.store.sql("SELECT id FROM transport_vehicles WHERE org_id = $1 ORDER BY plate LIMIT 1"))
        .bind(org_id.to_string())
        .fetch_optional(st.store.reader())
        .await
        .map_err(StoreError::from)?)
}

pub async fn seed(st: &AppState, demo: &DemoContext) -> anyhow::Result<()> {
    if is_seeded(st, "supervision.casework").await? {
        return Ok(());
    }
    let org = |k: &str| demo.orgs.get(k).cloned().ok_or_else(|| anyhow::anyhow!("demo organisation {k} missing"));
    let (bus, shunda, coach, taxi) = (org("wuqing_bus")?, org("shunda")?, org("jingjin_coach")?, org("yangcun_taxi")?);
    let reg = act_as(st, "jt.liu").await?;
    let bus_op = act_as(st, "bus.sun").await?;
    let shunda_op = act_as(st, "shunda.zhao").await?;
    let coach_op = act_as(st, "coach.zhou").await?;
    seed_hazards(st, &reg, &shunda_op, &coach_op, [&bus, &shunda, &coach, &taxi]).await?;
    seed_documents(st, &reg, &bus_op, &shunda_op, &coach_op).await?;
    // The overdue hazards reach the desk as the daily job would have put them there.
    hazards::escalate(st, crate::dates::today_days()).await?;
    mark_seeded(st, "supervision.casework", "1").await?;
    Ok(())
}

fn hazard(org: &str, vehicle: Option<String>, title: &str, description: &str, level: Level, found: i64) -> NewHazard {
    NewHazard {
        org_id: Some(org.to_string()),
        vehicle_id: vehicle,
        title: title.into(),
        description: description.into(),
        level,
        alarm_id: None,
        found_on: Some(in_days(-found)),
        deadline: None,
        files: vec![],
    }
}

fn step(note: &str, files: Vec<String>, deadline: Option<String>) -> StepInput {
    StepInput { deadline, note: Some(note.into()), files }
}

async fn seed_hazards(
    st: &AppState,
    reg: &Caller,
    shunda_op: &Caller,
    coach_op: &Caller,
    [bus, shunda, coach, taxi]: [&String; 4],
) -> anyhow::Result<()> {
    // 1. The bus company's monitoring staff: major, notified 40 days ago, deadline 10 days ago,
    //    never reported: overdue and escalated.
    let mut h = hazard(
        bus,
        None,
        "动态监控人员配备不足",
        "现场检查发现：企业在册营运车辆80辆，专职动态监控人员仅1名，低于每100辆车不少于1人、最低不少于2人的要求；\
         夜间时段无人值守。",
        Level::Major,
        40,
    );
    h.files = vec![file(st, reg, "现场检查记录-武清公交.pdf", "Inspection record: monitoring staff").await?];
    let v = hazards::create(st, reg, &h).await.map_err(api)?;
    hazards::notify(st, reg, &v.id, &step("请于期限内配齐动态监控人员并报送劳动合同。", vec![], Some(in_days(1))))
        .await
        .map_err(api)?;
    set(
        st,
        "UPDATE supervision_hazards SET deadline = $1, created_ms = $2, updated_ms = $2 WHERE id = $3",
        vec![S(in_days(-10)), I(now_ms() - 40 * DAY_MS), S(v.id.clone())],
    )
    .await?;
    backdate_steps(st, hazards::CASE, &v.id, &[40, 40]).await?;

    // 2. The dangerous goods carrier: a tanker's emergency shut-off valve, reported with a
    //    photo report, awaiting the bureau's review.
    let mut h = hazard(
        shunda,
        first_vehicle(st, shunda).await?,
        "罐体紧急切断装置失灵",
        "路检发现该车罐体紧急切断阀无法在规定时间内关闭。",
        Level::Major,
        25,
    );
    h.deadline = Some(in_days(5));
    let v = hazards::create(st, reg, &h).await.map_err(api)?;
    let photo = file(st, shunda_op, "紧急切断阀维修记录.pdf", "Repair record: emergency shut-off valve").await?;
    hazards::report(st, shunda_op, &v.id, &step("已送厂维修并复检合格，附维修记录及检测报告。", vec![photo], None))
        .await
        .map_err(api)?;
    set(
        st,
        "UPDATE supervision_hazards SET created_ms = $1, updated_ms = $2 WHERE id = $3",
        vec![I(now_ms() - 25 * DAY_MS), I(now_ms() - 2 * DAY_MS), S(v.id.clone())],
    )
    .await?;
    backdate_steps(st, hazards::CASE, &v.id, &[25, 25, 2]).await?;

    // 3. The coach company's driving hours: returned once, then passed and closed.
    let mut h = hazard(
        coach,
        first_vehicle(st, coach).await?,
        "驾驶员日间连续驾驶超过4小时",
        "监控平台显示该车驾驶员多次日间连续驾驶超过4小时未停车休息。",
        Level::General,
        60,
    );
    h.deadline = Some(in_days(10));
    let v = hazards::create(st, reg, &h).await.map_err(api)?;
    let r1 = file(st, coach_op, "驾驶员安全教育记录.pdf", "Driver safety education record").await?;
    hazards::report(st, coach_op, &v.id, &step("已对驾驶员进行安全教育。", vec![r1], None)).await.map_err(api)?;
    hazards::review(
        st,
        reg,
        &v.id,
        &Review {
            decision: Decision::Return,
            note: Some("仅有教育记录，未见排班调整措施，请补充。".into()),
            deadline: None,
        },
    )
    .await
    .map_err(api)?;
    let r2 = file(st, coach_op, "调整后排班表.pdf", "Revised duty roster").await?;
    hazards::report(st, coach_op, &v.id, &step("已调整排班，长途班线实行双驾。", vec![r2], None)).await.map_err(api)?;
    hazards::review(
        st,
        reg,
        &v.id,
        &Review { decision: Decision::Pass, note: Some("整改到位，予以销号。".into()), deadline: None },
    )
    .await
    .map_err(api)?;
    set(
        st,
        "UPDATE supervision_hazards SET deadline = $4, created_ms = $1, updated_ms = $2, closed_ms = $2 WHERE id = $3",
        vec![I(now_ms() - 60 * DAY_MS), I(now_ms() - 38 * DAY_MS), S(v.id.clone()), S(in_days(-45))],
    )
    .await?;
    backdate_steps(st, hazards::CASE, &v.id, &[60, 60, 52, 50, 41, 38]).await?;

    // 4. The taxi company: terminals offline, notified, deadline in five days.
    let mut h = hazard(
        taxi,
        first_vehicle(st, taxi).await?,
        "车载终端长时间离线",
        "该车卫星定位终端连续72小时未上线。",
        Level::General,
        9,
    );
    h.deadline = Some(in_days(5));
    let v = hazards::create(st, reg, &h).await.map_err(api)?;
    backdate_steps(st, hazards::CASE, &v.id, &[9, 9]).await?;

    // 5. The taxi company's meters: notified a month ago, three days past the deadline:
    //    overdue and escalated.
    let mut h =
        hazard(taxi, None, "计价器未按期检定", "抽查12辆出租汽车，其中3辆计价器检定证书过期。", Level::General, 30);
    h.deadline = Some(in_days(1));
    let v = hazards::create(st, reg, &h).await.map_err(api)?;
    set(
        st,
        "UPDATE supervision_hazards SET deadline = $1, created_ms = $2, updated_ms = $2 WHERE id = $3",
        vec![S(in_days(-3)), I(now_ms() - 30 * DAY_MS), S(v.id.clone())],
    )
    .await?;
    backdate_steps(st, hazards::CASE, &v.id, &[30, 30]).await?;

    // 6. Today's inspection at the bus company: recorded, not yet notified.
    let h = hazard(
        bus,
        first_vehicle(st, bus).await?,
        "车内灭火器过期",
        "站场检查发现该车2具灭火器超过有效期。",
        Level::General,
        0,
    );
    hazards::create(st, reg, &h).await.map_err(api)?;
    Ok(())
}

async fn seed_documents(
    st: &AppState,
    reg: &Caller,
    bus_op: &Caller,
    shunda_op: &Caller,
    coach_op: &Caller,
) -> anyhow::Result<()> {
    // 1. This month's safety inspection: half-answered.
    let att = file(st, reg, "安全生产大检查工作方案.pdf", "Safety inspection plan").await?;
    let d = documents::issue(st, reg, &NewDocument {
        number: Some("武交运〔2026〕31号".into()),
        title: "关于开展道路运输安全生产大检查的通知".into(),
        body: "各道路运输企业：\n为切实做好岁末年初道路运输安全生产工作，决定在全区开展安全生产大检查。请各企业对照工作方案开展自查，\
               并于期限内报送自查报告。"
            .into(),
        files: vec![att],
        target: Target { all: Some(true), ..Target::default() },
        requires_report: true,
        deadline: Some(in_days(5)),
    })
    .await
    .map_err(api)?;
    let f = file(st, shunda_op, "顺达危运自查报告.pdf", "Self-inspection report: Shunda").await?;
    documents::reply(
        st,
        shunda_op,
        &d.id,
        &Reply { note: "自查报告见附件，共排查隐患3处，已全部整改。".into(), files: vec![f] },
    )
    .await
    .map_err(api)?;
    documents::review(st, reg, &d.id, &shunda_op.org_id, &ReplyReview { decision: ReplyDecision::Accept, note: None })
        .await
        .map_err(api)?;
    let f = file(st, bus_op, "武清公交自查报告.pdf", "Self-inspection report: Wuqing Bus").await?;
    documents::reply(st, bus_op, &d.id, &Reply { note: "已完成自查，报告见附件。".into(), files: vec![f] })
        .await
        .map_err(api)?;
    documents::mark_read(st, coach_op, &d.id).await.map_err(api)?;
    set(
        st,
        "UPDATE supervision_documents SET issued_ms = $1 WHERE id = $2",
        vec![I(now_ms() - 9 * DAY_MS), S(d.id.clone())],
    )
    .await?;
    backdate_steps(st, documents::CASE, &d.id, &[9]).await?;
    for (op, days) in [(shunda_op, 7), (bus_op, 2), (coach_op, 6)] {
        backdate_reply(st, &d.id, &op.org_id, days).await?;
    }

    // 2. Last quarter's report: its deadline has passed; one answered late, one never.
    let d = documents::issue(
        st,
        reg,
        &NewDocument {
            number: Some("武交运〔2026〕24号".into()),
            title: "关于报送第三季度安全生产工作情况的通知".into(),
            body: "请各企业报送第三季度安全生产工作总结及统计报表。".into(),
            files: vec![],
            target: Target { all: Some(true), ..Target::default() },
            requires_report: true,
            deadline: Some(in_days(1)),
        },
    )
    .await
    .map_err(api)?;
    for op in [shunda_op, bus_op] {
        let f = file(st, op, "第三季度安全生产工作总结.pdf", "Q3 safety summary").await?;
        documents::reply(st, op, &d.id, &Reply { note: "第三季度工作总结及报表见附件。".into(), files: vec![f] })
            .await
            .map_err(api)?;
        documents::review(st, reg, &d.id, &op.org_id, &ReplyReview { decision: ReplyDecision::Accept, note: None })
            .await
            .map_err(api)?;
    }
    documents::mark_read(st, coach_op, &d.id).await.map_err(api)?;
    set(
        st,
        "UPDATE supervision_documents SET issued_ms = $1, deadline = $2 WHERE id = $3",
        vec![I(now_ms() - 45 * DAY_MS), S(in_days(-20)), S(d.id.clone())],
    )
    .await?;
    set(
        st,
        "UPDATE supervision_document_recipients SET reply_late = 1 WHERE document_id = $1 AND org_id = $2",
        vec![S(d.id.clone()), S(bus_op.org_id.clone())],
    )
    .await?;
    backdate_steps(st, documents::CASE, &d.id, &[45]).await?;
    // The carrier answered in time, the bus company two weeks late, the coach company read it.
    for (op, days) in [(shunda_op, 38), (bus_op, 6), (coach_op, 40)] {
        backdate_reply(st, &d.id, &op.org_id, days).await?;
    }

    // 3. A winter-weather notice, no report asked.
    let d = documents::issue(
        st,
        reg,
        &NewDocument {
            number: None,
            title: "关于做好冬季恶劣天气道路运输安全工作的提示".into(),
            body: "入冬以来我区雨雪冰冻天气增多，请各企业加强车辆防滑检查，遇恶劣天气及时调整班次。".into(),
            files: vec![],
            target: Target { all: Some(true), ..Target::default() },
            requires_report: false,
            deadline: None,
        },
    )
    .await
    .map_err(api)?;
    for op in [bus_op, shunda_op] {
        documents::mark_read(st, op, &d.id).await.map_err(api)?;
        backdate_reply(st, &d.id, &op.org_id, 2).await?;
    }
    set(
        st,
        "UPDATE supervision_documents SET issued_ms = $1 WHERE id = $2",
        vec![I(now_ms() - 3 * DAY_MS), S(d.id.clone())],
    )
    .await?;
    backdate_steps(st, documents::CASE, &d.id, &[3]).await?;

    // 4. Dangerous goods only, fresh: not yet read.
    documents::issue(
        st,
        reg,
        &NewDocument {
            number: Some("武交运〔2026〕33号".into()),
            title: "关于开展危险货物道路运输专项整治的通知".into(),
            body: "请危险货物道路运输企业于期限内报送罐车紧急切断装置检查台账。".into(),
            files: vec![],
            target: Target { vehicle_class: Some("dangerous_goods".into()), ..Target::default() },
            requires_report: true,
            deadline: Some(in_days(10)),
        },
    )
    .await
    .map_err(api)?;
    Ok(())
}
