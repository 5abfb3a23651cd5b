//! The demo district's enterprise profiles: a bureau with something to do — one enterprise short
//! of monitoring staff, one licence about to expire, one expired. The codes are invented, with
//! correct check characters; no real enterprise's.

use crate::enterprises::{Profile, check, write};
use kernel::audit::Actor;
use kernel::demo::{DemoContext, is_seeded, mark_seeded};
use kernel::http::AppState;

/// A date `days` from today (Beijing), `YYYY-MM-DD`.
fn in_days(days: i64) -> String {
    let today = (kernel::store::now_ms() + 8 * 3_600_000).div_euclid(86_400_000);
    kernel::store::ms_to_rfc3339((today + days) * 86_400_000)[..10].to_string()
}

pub async fn seed(state: &AppState, demo: &mut DemoContext) -> anyhow::Result<()> {
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
