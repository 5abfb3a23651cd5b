//! The demo district's enterprise profiles: a bureau with something to do — one enterprise short
//! of monitoring staff, one licence about to expire, one expired. The codes are invented, with
//! correct check characters; no real enterprise's.

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
fn demo_citizen_id(birth: &str, seq: u32) -> String {
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
