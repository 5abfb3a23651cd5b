//! The demo district's enterprise profiles: a bureau with something to do — one enterprise short
//! of monitoring staff, one licence about to expire, one expired. The codes are invented, with
//! correct check characters; no real enterprise's. The penalty decisions, accidents, complaints
//! and archive files are invented too.

use crate::enterprises::{Profile, check, write};
use kernel::audit::Actor;
use kernel::demo::{DemoContext, is_seeded, mark_seeded};
use kernel::http::AppState;

/// A date `days` from today (Beijing), `YYYY-MM-DD`.
fn in_days(days: i64) -> String {
    crate::dates::date_of(crate::dates::today_days() + days)
}

pub async fn seed(state: &AppState, demo: &mut DemoContext) -> anyhow::Result<()> {
    seed_vehicles(state).await?;
    seed_practitioners(state, demo).await?;
    crate::demo_cases::seed(state, demo).await?;
    seed_cases(state, demo).await?;
    if is_seeded(state, "supervision").await? {
        return Ok(());
    }
    let profiles = [
        (
            "shunda",
            "91120114MA06K2R17R",
            "危险货物运输（2类1项、3类）",
            "津交运管许可危字120114000318号",
            "2028-06-30".to_string(),
            "赵立新",
            3,
        ),
        (
            "jingjin_coach",
            "911202221039271837",
            "省际班车客运、旅游客运",
            "津交运管许可客字120114000102号",
            in_days(20),
            "钱卫东",
            2,
        ),
        (
            "wuqing_bus",
            "9112011440151263XN",
            "城市公共汽车客运",
            "津交运管许可公字120114000007号",
            "2030-12-31".to_string(),
            "孙丽",
            1,
        ),
        (
            "yangcun_taxi",
            "91120114MA05T8W3X0",
            "巡游出租汽车客运",
            "津交运管许可租字120114000056号",
            in_days(-10),
            "李明",
            2,
        ),
    ];
    for (key, uscc, scope, licence, until, officer, staff) in profiles {
        let Some(org_id) = demo.orgs.get(key).cloned() else { anyhow::bail!("demo organisation {key} missing") };
        let p = check(&Profile {
            uscc: uscc.into(),
            business_scope: scope.into(),
            licence_no: licence.into(),
            licence_valid_until: until,
            safety_officer: officer.into(),
            monitoring_staff: staff,
        })
        .map_err(|e| anyhow::anyhow!("demo profile of {key}: {}", e.message))?;
        write(state, Actor::cli("demo"), &org_id, &p)
            .await
            .map_err(|e| anyhow::anyhow!("demo profile: {}", e.message))?;
    }
    mark_seeded(state, "supervision", "1").await?;
    Ok(())
}

/// Supervision details for every demo vehicle, by plate: most valid for long, a handful expired
/// (annual inspection, compulsory insurance), some ending within 30, 60 and 90 days; seats for
/// coaches, buses and taxis, rated load and GB 6944 class 2.1 or 3 for the dangerous goods
/// trucks. The certificate numbers are invented.
async fn seed_vehicles(state: &AppState) -> anyhow::Result<()> {
    use crate::vehicles::{self, Details};
    if is_seeded(state, "supervision.vehicles").await? {
        return Ok(());
    }
    let rows = sqlx::query(&state.store.sql("SELECT id, class FROM transport_vehicles ORDER BY plate, id"))
        .fetch_all(state.store.reader())
        .await?;
    for (i, r) in rows.iter().enumerate() {
        let i = i as i64;
        let id: String = kernel::store::col(r, "id")?;
        let class: String = kernel::store::col(r, "class")?;
        let mut certificate = in_days(200 + (i * 53) % 900);
        let mut inspection = in_days(100 + (i * 29) % 250);
        let mut compulsory = in_days(120 + (i * 17) % 240);
        let commercial = (i % 7 != 6).then(|| in_days(150 + (i * 11) % 200));
        if i % 40 == 3 {
            inspection = in_days(-3 - i / 40);
        }
        if i == 10 {
            compulsory = in_days(-1);
        }
        if i % 25 == 5 {
            certificate = in_days(7 + i / 25 * 3);
        }
        if i % 30 == 12 {
            inspection = in_days(40 + i / 30);
        }
        if i % 35 == 20 {
            compulsory = in_days(70 + i / 35);
        }
        let (seats, tonnage_kg, dangerous_goods_class) = match class.as_str() {
            "coach" | "tourist_coach" => (Some(45 + i % 10), None, None),
            "city_bus" | "school_bus" => (Some(30 + i % 40), None, None),
            "taxi" => (Some(5), None, None),
            "dangerous_goods" => {
                (None, Some(15_000 + (i % 10) * 1_000), Some(if i % 2 == 0 { "2.1" } else { "3" }.to_string()))
            }
            _ => (None, Some(25_000), None),
        };
        let d = vehicles::check(
            &class,
            &Details {
                road_transport_certificate_no: format!("120114{:06}", 300_001 + i),
                road_transport_certificate_valid_until: certificate,
                annual_inspection_valid_until: inspection,
                compulsory_insurance_valid_until: compulsory,
                commercial_insurance_valid_until: commercial,
                seats,
                tonnage_kg,
                dangerous_goods_class,
            },
        )
        .map_err(|e| anyhow::anyhow!("demo vehicle details: {} {}", e.field.unwrap_or_default(), e.message))?;
        vehicles::write(state, Actor::cli("demo"), &id, &d)
            .await
            .map_err(|e| anyhow::anyhow!("demo vehicle details: {}", e.message))?;
    }
    mark_seeded(state, "supervision.vehicles", "1").await?;
    Ok(())
}

/// A demo citizen ID: region 120114 (武清区), a birth date and a sequence number, with its
/// GB 11643-1999 check character. Invented; no real person's.
pub fn demo_citizen_id(birth: &str, seq: u32) -> String {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let body = format!("120114{birth}{seq:03}");
    let sum: u32 = body.bytes().zip(W).map(|(d, w)| u32::from(d - b'0') * w).sum();
    format!("{body}{}", b"10X98765432"[(sum % 11) as usize] as char)
}

/// Twenty practitioners of the four demo enterprises (drivers; for shunda also escorts and a
/// loading manager), invented: three qualifications or licences expiring within 30 days and one
/// qualification expired; each driver and escort on one or two of the enterprise's vehicles.
async fn seed_practitioners(state: &AppState, demo: &DemoContext) -> anyhow::Result<()> {
    use crate::practitioners::{PractitionerInput, PractitionerRole as R, check, check_vehicles, insert, link};
    if is_seeded(state, "supervision.practitioners").await? {
        return Ok(());
    }
    const DG: &str = "道路危险货物运输驾驶员";
    // (enterprise, name, role, birth date, qualification, qualification days left, licence class,
    //  licence days left)
    let people = [
        ("shunda", "张建国", R::Driver, "19780312", DG, 900, Some("A2"), 1500),
        ("shunda", "王海涛", R::Driver, "19820705", DG, 12, Some("A2"), 2100),
        ("shunda", "李春生", R::Driver, "19750119", DG, 600, Some("B2"), 18),
        ("shunda", "刘志强", R::Driver, "19860923", DG, -5, Some("A2"), 1200),
        ("shunda", "陈永刚", R::Driver, "19800214", DG, 1400, Some("B2"), 800),
        ("shunda", "杨秀梅", R::Escort, "19880430", "道路危险货物运输押运人员", 700, None, 0),
        ("shunda", "赵红霞", R::Escort, "19900816", "道路危险货物运输押运人员", 25, None, 0),
        ("shunda", "黄丽娟", R::Escort, "19871102", "道路危险货物运输押运人员", 1100, Some("C1"), 1900),
        ("shunda", "周德明", R::Loader, "19720628", "道路危险货物运输装卸管理人员", 500, None, 0),
        ("jingjin_coach", "吴国庆", R::Driver, "19770801", "道路旅客运输驾驶员", 1000, Some("A1"), 1300),
        ("jingjin_coach", "徐立军", R::Driver, "19811215", "道路旅客运输驾驶员", 400, Some("A1"), 2400),
        ("jingjin_coach", "孙宏伟", R::Driver, "19790527", "道路旅客运输驾驶员", 1700, Some("A1"), 600),
        ("jingjin_coach", "马俊峰", R::Driver, "19850309", "道路旅客运输驾驶员", 850, Some("A1"), 1000),
        ("wuqing_bus", "朱晓东", R::Driver, "19830120", "城市公共汽车驾驶员", 1200, Some("A3"), 700),
        ("wuqing_bus", "胡玉兰", R::Driver, "19840611", "城市公共汽车驾驶员", 300, Some("A3"), 1600),
        ("wuqing_bus", "郭振华", R::Driver, "19760904", "城市公共汽车驾驶员", 1500, Some("A3"), 2000),
        ("wuqing_bus", "何伟", R::Driver, "19891028", "城市公共汽车驾驶员", 950, Some("A3"), 450),
        ("yangcun_taxi", "高明亮", R::Driver, "19870715", "巡游出租汽车驾驶员", 650, Some("C1"), 1100),
        ("yangcun_taxi", "林志远", R::Driver, "19910203", "巡游出租汽车驾驶员", 1300, Some("C1"), 350),
        ("yangcun_taxi", "罗建平", R::Driver, "19730418", "巡游出租汽车驾驶员", 200, Some("C1"), 1800),
    ];
    let actor = || Actor::cli("demo");
    let mut vehicles: std::collections::HashMap<&str, Vec<String>> = std::collections::HashMap::new();
    for (n, (key, name, role, birth, qualification, q_days, class, l_days)) in people.into_iter().enumerate() {
        let Some(org_id) = demo.orgs.get(key).cloned() else { anyhow::bail!("demo organisation {key} missing") };
        let seq = u32::try_from(n).unwrap_or(0) * 2 + if matches!(role, R::Escort) { 2 } else { 1 };
        let p = check(
            &PractitionerInput {
                name: name.into(),
                role,
                citizen_id: Some(demo_citizen_id(birth, 100 + seq)),
                qualification_type: qualification.into(),
                qualification_no: None,
                qualification_valid_until: in_days(q_days),
                licence_class: class.map(Into::into),
                licence_valid_until: class.map(|_| in_days(l_days)),
            },
            None,
        )
        .map_err(|e| anyhow::anyhow!("demo practitioner {name}: {}", e.message))?;
        let id = insert(state, actor(), &org_id, &p)
            .await
            .map_err(|e| anyhow::anyhow!("demo practitioner: {}", e.message))?;
        if role == R::Loader {
            continue;
        }
        if !vehicles.contains_key(key) {
            let rows = sqlx::query(
                &state.store.sql("SELECT id FROM transport_vehicles WHERE org_id = $1 ORDER BY plate LIMIT 20"),
            )
            .bind(org_id.clone())
            .fetch_all(state.store.reader())
            .await?;
            let ids = rows.iter().map(|r| kernel::store::col::<String>(r, "id")).collect::<Result<Vec<_>, _>>()?;
            vehicles.insert(key, ids);
        }
        let fleet = &vehicles[key];
        if fleet.is_empty() {
            continue;
        }
        let mut mine = vec![fleet[n % fleet.len()].clone()];
        if n % 2 == 0 && fleet.len() > 1 {
            mine.push(fleet[(n + 7) % fleet.len()].clone());
            mine.dedup();
        }
        check_vehicles(state, &org_id, &mine).await.map_err(|e| anyhow::anyhow!("demo vehicles: {}", e.message))?;
        link(state, actor(), &id, &org_id, &mine).await.map_err(|e| anyhow::anyhow!("demo vehicles: {}", e.message))?;
    }
    mark_seeded(state, "supervision.practitioners", "1").await?;
    Ok(())
}

/// A small valid PDF (one A4 page with one line of Helvetica: ASCII only) with its cross-reference
/// table computed, so that the demo's files open in any reader.
pub fn demo_pdf(line: &str) -> Vec<u8> {
    let text: String =
        line.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').filter(|c| !"()\\".contains(*c)).collect();
    let content = format!("BT /F1 14 Tf 72 770 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_string(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
    ];
    let mut out = String::from("%PDF-1.4\n");
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.push_str(&format!("{} 0 obj\n{o}\nendobj\n", i + 1));
    }
    let xref = out.len();
    out.push_str(&format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1));
    for off in offsets {
        out.push_str(&format!("{off:010} 00000 n \n"));
    }
    out.push_str(&format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1));
    out.into_bytes()
}

/// Stores a demo PDF for organisation `org_id`.
async fn demo_file(state: &AppState, org_id: &str, name: &str, line: &str) -> anyhow::Result<kernel::files::FileMeta> {
    let up = kernel::files::Upload {
        org_id,
        name,
        declared_type: "application/pdf",
        classification: kernel::access::Classification::Internal,
    };
    kernel::files::store_bytes(state, Actor::cli("demo"), &up, &demo_pdf(line))
        .await
        .map_err(|e| anyhow::anyhow!("demo file {name}: {}", e.message))
}

/// The first vehicle of an enterprise by plate.
async fn first_vehicle(state: &AppState, org_id: &str) -> anyhow::Result<Option<String>> {
    let id: Option<String> = sqlx::query_scalar(
        &state.store.sql("SELECT id FROM transport_vehicles WHERE org_id = $1 ORDER BY plate LIMIT 1"),
    )
    .bind(org_id.to_string())
    .fetch_optional(state.store.reader())
    .await?;
    Ok(id)
}

/// Penalties, an accident, a complaint and three months of archives: an executed fine for the
/// taxi company's vehicle and a warning for the coach company, not yet executed; an at-fault
/// minor accident of a taxi and a substantiated complaint against the bus company; archives of
/// the last three months where shunda filed everything in time, the bus company misses one kind
/// last month, the taxi company filed late, and the coach company filed nothing.
async fn seed_cases(state: &AppState, demo: &DemoContext) -> anyhow::Result<()> {
    use crate::incidents::{self, Kind as IncidentKind, NewIncident, Severity};
    use crate::penalties::{Kind, NewPenalty, SubjectType, seed_one};
    if is_seeded(state, "supervision.cases").await? {
        return Ok(());
    }
    let org = |key: &str| demo.orgs.get(key).cloned().ok_or_else(|| anyhow::anyhow!("demo organisation {key} missing"));
    let (bureau, taxi, coach, bus, shunda) =
        (org("transport_bureau")?, org("yangcun_taxi")?, org("jingjin_coach")?, org("wuqing_bus")?, org("shunda")?);
    let today = crate::dates::today_days();
    let msg = |e: kernel::error::ApiError| anyhow::anyhow!("demo case: {} {}", e.field.unwrap_or_default(), e.message);

    let taxi_car = first_vehicle(state, &taxi).await?;
    let fined = in_days(-40);
    let scan = demo_file(state, &bureau, "行政处罚决定书.pdf", "Administrative penalty decision (demo)").await?;
    let fine = NewPenalty {
        decision_no: format!("津武交罚〔{}〕0012号", &fined[..4]),
        org_id: taxi.clone(),
        subject_type: if taxi_car.is_some() { SubjectType::Vehicle } else { SubjectType::Enterprise }.as_str().into(),
        subject_id: taxi_car.clone(),
        kind: Kind::Fine.as_str().into(),
        facts: "该车辆未按规定使用计价器，经现场检查属实。".into(),
        legal_basis: "《天津市客运出租汽车管理条例》".into(),
        amount_fen: Some(200_000),
        decided_on: fined,
        files: vec![],
    };
    seed_one(state, &bureau, &fine, std::slice::from_ref(&scan), Some(&in_days(-20))).await.map_err(msg)?;
    let warned = in_days(-10);
    let warning = NewPenalty {
        decision_no: format!("津武交罚〔{}〕0031号", &warned[..4]),
        org_id: coach.clone(),
        subject_type: SubjectType::Enterprise.as_str().into(),
        subject_id: None,
        kind: Kind::Warning.as_str().into(),
        facts: "未按规定对动态监控数据进行分析处理。".into(),
        legal_basis: "《道路运输车辆动态监督管理办法》第三十六条".into(),
        amount_fen: None,
        decided_on: warned,
        files: vec![],
    };
    seed_one(state, &bureau, &warning, &[], None).await.map_err(msg)?;

    let accident = NewIncident {
        kind: IncidentKind::Accident.as_str().into(),
        org_id: taxi.clone(),
        vehicle_id: taxi_car,
        occurred_on: in_days(-25),
        description: "杨村街路口追尾，一名乘客轻伤，出租车负主要责任。".into(),
        severity: Some(Severity::Minor.as_str().into()),
        deaths: Some(0),
        injuries: Some(1),
        at_fault: Some(true),
        files: vec![],
    };
    incidents::insert(state, None, Actor::cli("demo"), &bureau, &accident).await.map_err(msg)?;
    let complaint = NewIncident {
        kind: IncidentKind::Complaint.as_str().into(),
        org_id: bus.clone(),
        vehicle_id: None,
        occurred_on: in_days(-15),
        description: "12328 热线：某线路公交车未进站停靠。".into(),
        severity: None,
        deaths: None,
        injuries: None,
        at_fault: None,
        files: vec![],
    };
    let id = incidents::insert(state, None, Actor::cli("demo"), &bureau, &complaint).await.map_err(msg)?;
    incidents::decide_as(state, Actor::cli("demo"), &bureau, &id, true, Some("经调取车载视频核实属实"))
        .await
        .map_err(msg)?;

    seed_archives(state, today, &[(shunda, "shunda"), (bus, "wuqing_bus"), (taxi, "yangcun_taxi")]).await?;
    mark_seeded(state, "supervision.cases", "1").await?;
    Ok(())
}

/// The last three months' archives of the demo enterprises (see [`seed_cases`]).
async fn seed_archives(state: &AppState, today: i64, orgs: &[(String, &str)]) -> anyhow::Result<()> {
    use crate::archives::{insert, kinds};
    use crate::dates::{Month, midnight_ms};
    let now = kernel::store::now_ms();
    let kinds = kinds(state, false).await?;
    let this = Month::of_day(today);
    let months = [this.prev(), this.prev().prev(), this.prev().prev().prev()];
    for (org_id, key) in orgs {
        for (i, month) in months.iter().enumerate() {
            // In time on the 3rd of the month after; the taxi company on the 12th (late); never
            // later than now.
            let day = if *key == "yangcun_taxi" { 12 } else { 3 };
            let at = (midnight_ms(month.next().day(day)) + 10 * 3_600_000).min(now);
            for k in &kinds {
                if *key == "wuqing_bus" && i == 0 && k.code == "driver_safety_education" {
                    continue;
                }
                let line = format!("{} {month} {key}", k.name_en);
                let f = demo_file(state, org_id, &format!("{}-{month}.pdf", k.name), &line).await?;
                insert(state, Actor::cli("demo"), org_id, *month, &k.code, &f.id, None, at)
                    .await
                    .map_err(|e| anyhow::anyhow!("demo archive: {}", e.message))?;
            }
        }
    }
    Ok(())
}
