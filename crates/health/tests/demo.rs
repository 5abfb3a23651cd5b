//! The demo district's health records, as `serve --demo` seeds them: the resident reads her own
//! record, the People's Hospital (where she is followed) reads it, the TCM hospital does not,
//! the index's review queue holds a pair, referrals are in flight in every state, the
//! family-doctor team's contracts give the townships their coverage, and every stored version
//! verifies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use health::HealthModule;
use kernel::module::Module;
use kernel::testing::{Backend, TestApp};
use std::sync::Arc;

#[tokio::test]
async fn the_demo_district_health_records() {
    let module = HealthModule::default();
    // As `serve --demo` mounts it: the home devices come through the IoT module.
    let modules: Vec<Arc<dyn Module>> =
        vec![Arc::new(iot::IotModule::default()), Arc::new(alarms::AlarmsModule::default()), Arc::new(module.clone())];
    let app = TestApp::spawn_with(Backend::Sqlite, modules, |_| {}).await.unwrap();
    // Seeding twice changes nothing.
    app.platform.seed_demo().await.unwrap();
    let huang = app.login("resident.huang").await;
    let (s, b) = app.get("/fhir/Observation?category=vital-signs", &huang).await;
    assert_eq!(s.as_u16(), 200, "{b}");
    assert_eq!(b["entry"].as_array().unwrap().len(), 6, "her year of blood pressures");
    let yang = app.login("dr.yang").await;
    let (s, b) = app.get("/fhir/Patient/huang-xiuying/$everything", &yang).await;
    assert_eq!(s.as_u16(), 200, "{b}");
    assert!(b["entry"].as_array().unwrap().len() > 12);
    // A generated resident followed only at a community centre (and never referred) is not the
    // hospital's to read.
    let people = app.org_id("people_hospital").await;
    let row = sqlx::query(
        "SELECT id FROM health_resources WHERE type = 'Patient' AND id NOT IN \
         (SELECT patient_id FROM health_resources WHERE owner_org = ? AND patient_id IS NOT NULL) \
         AND id NOT IN (SELECT patient_id FROM health_referrals) ORDER BY id LIMIT 1",
    )
    .bind(people)
    .fetch_one(app.platform.state.store.reader())
    .await
    .unwrap();
    let elsewhere: String = sqlx::Row::get(&row, "id");
    let (s, _) = app.get(&format!("/fhir/Observation?patient={elsewhere}"), &yang).await;
    assert_eq!(s.as_u16(), 403, "{elsewhere}");
    let chen = app.login("wjw.chen").await;
    let (s, q) = app.get("/api/health/mpi/reviews", &chen).await;
    assert_eq!(s.as_u16(), 200, "{q}");
    assert!(q["items"].as_array().unwrap().iter().any(|r| r["a"]["id"] == "tcm-registration-1"), "{q}");
    // Referrals in flight: the hospital's inbox, the centre's follow-ups.
    let wu = app.login("dr.wu").await;
    let (s, inbox) = app.get("/api/health/referrals?box=incoming&limit=100", &yang).await;
    assert_eq!(s.as_u16(), 200, "{inbox}");
    let items = inbox["items"].as_array().unwrap();
    let states: std::collections::BTreeSet<&str> = items.iter().map(|r| r["state"].as_str().unwrap()).collect();
    for s in ["requested", "accepted", "arrived", "returned", "rejected"] {
        assert!(states.contains(s), "{s} in {states:?}");
    }
    assert!(items.iter().any(|r| r["overdue"] == true && r["priority"] == "urgent"), "the urgent one is late");
    let (_, out) = app.get("/api/health/referrals?box=outgoing&limit=100", &wu).await;
    let follow: Vec<&str> = out["items"].as_array().unwrap().iter().filter_map(|r| r["follow_up"].as_str()).collect();
    for f in ["due", "done", "overdue"] {
        assert!(follow.contains(&f), "follow-up {f} in {follow:?}");
    }
    let (_, incoming) = app.get("/api/health/referrals?box=incoming", &wu).await;
    assert_eq!(incoming["total"], 2, "two down-referrals to the centre: {incoming}");
    // Contracts: the centre's, the resident's on the renewal list, coverage per township.
    let (_, ks) = app.get("/api/health/contracts?limit=5", &wu).await;
    assert!(ks["total"].as_i64().unwrap() > 20, "{}", ks["total"]);
    let (_, due) = app.get("/api/health/contracts?expiring_within_days=60&limit=100", &wu).await;
    assert!(due["items"].as_array().unwrap().iter().any(|k| k["patient_id"] == "huang-xiuying"), "{due}");
    let (_, cov) = app.get("/api/health/contracts/coverage", &chen).await;
    let rated =
        cov.as_array().unwrap().iter().filter(|t| t["rate"].as_f64().is_some_and(|r| r > 0.0 && r <= 1.0)).count();
    assert!(rated >= 5, "coverage in several townships: {cov}");
    // Prescriptions checked, their findings on the supervision figures.
    let (_, rx) = app.get("/api/health/rx/statistics", &chen).await;
    let centre =
        rx["institutions"].as_array().unwrap().iter().find(|x| x["prescriptions"].as_i64() > Some(20)).cloned();
    let centre = centre.unwrap_or_else(|| panic!("{rx}"));
    assert!(centre["alerts"].as_i64().unwrap() > 0 && centre["overrides"] == 1, "{centre}");
    let top: Vec<&str> =
        rx["top_interactions"].as_array().unwrap().iter().map(|t| t["rule"].as_str().unwrap()).collect();
    assert!(top.contains(&"simvastatin-amlodipine") && top.contains(&"warfarin-nsaid"), "{top:?}");
    // Home monitoring: the family doctor's worklist holds open alerts and tasks with their
    // evidence, closed ones with their response times; the indicators count managed patients.
    let (s, wl) = app.get("/api/health/worklist?limit=200", &wu).await;
    assert_eq!(s.as_u16(), 200, "{wl}");
    let actions: std::collections::BTreeSet<&str> =
        wl["items"].as_array().unwrap().iter().map(|i| i["action"].as_str().unwrap()).collect();
    for a in ["follow_up", "follow_up_overdue"] {
        assert!(actions.contains(a), "{a} in {actions:?}");
    }
    assert!(wl["items"][0]["evidence"]["rule"].as_str().is_some(), "{}", wl["items"][0]);
    let (_, closed) = app.get("/api/health/worklist?state=closed&limit=5", &wu).await;
    assert!(closed["total"].as_i64().unwrap() > 5, "{}", closed["total"]);
    let (_, ind) = app.get("/api/health/indicators", &chen).await;
    let yangcun = app.org_id("yangcun_chc").await;
    let inst =
        ind["institutions"].as_array().unwrap().iter().find(|i| i["org_id"] == yangcun.as_str()).unwrap().clone();
    let ht = &inst["hypertension"];
    assert!(ht["managed"].as_i64() > Some(5) && ht["measured_3m"].as_i64() > Some(5), "{inst}");
    let rate = ht["control_rate"].as_f64().unwrap();
    assert!(rate > 20.0 && rate < 90.0, "some controlled, some not: {inst}");
    assert!(ht["follow_up_compliance"].as_f64().is_some_and(|c| c > 0.0 && c < 100.0), "{inst}");
    assert!(inst["urgent_response_median_minutes"].as_i64().is_some(), "{inst}");
    assert!(
        inst["referral_follow_ups"].as_i64() > Some(0) && inst["referral_follow_up_rate"].as_f64().is_some(),
        "{inst}"
    );
    let town = ind["townships"].as_array().unwrap().iter().find(|t| t["township"] == "杨村街道").unwrap();
    assert!(town["contract_coverage"].as_f64().is_some_and(|c| c > 0.0 && c <= 100.0), "{town}");
    // Appointments: schedules with free slots, the resident's own booking, the hospital's
    // bookings from the centre, yesterday's visits and a no-show.
    let (_, sch) = app.get("/api/health/schedules", &huang).await;
    assert_eq!(sch.as_array().unwrap().len(), 4, "{sch}");
    let sid = sch[0]["id"].as_str().unwrap();
    let (_, free) = app.get(&format!("/api/health/slots?schedule_id={sid}&free=true"), &huang).await;
    assert!(free["total"].as_i64().unwrap() > 50, "{}", free["total"]);
    let (_, mine) = app.get("/api/health/appointments", &huang).await;
    assert_eq!(mine["total"], 1, "{mine}");
    let (_, at_hospital) = app.get("/api/health/appointments?limit=100", &yang).await;
    let states: std::collections::BTreeSet<&str> =
        at_hospital["items"].as_array().unwrap().iter().map(|a| a["state"].as_str().unwrap()).collect();
    for s in ["booked", "fulfilled", "noshow"] {
        assert!(states.contains(s), "{s} in {states:?}");
    }
    // Remote readings: the hospital's inbox holds one in every state, the report in the record.
    let (_, remote) = app.get("/api/health/remote?box=incoming", &yang).await;
    let states: std::collections::BTreeSet<&str> =
        remote["items"].as_array().unwrap().iter().map(|r| r["state"].as_str().unwrap()).collect();
    assert_eq!(states.len(), 4, "{states:?}");
    let reported = remote["items"].as_array().unwrap().iter().find(|r| r["state"] == "reported").unwrap();
    let (s, dr) = app.get(&format!("/fhir/{}", reported["report"].as_str().unwrap()), &wu).await;
    assert_eq!((s.as_u16(), dr["conclusionCode"][0]["coding"][0]["code"].as_str()), (200, Some("I44.0")), "{dr}");
    let records = health::records::Records::new(app.platform.state.store.clone(), app.platform.state.cipher.clone());
    let (checked, broken) = records.verify_all(|_, _, _| {}).await.unwrap();
    assert!(checked > 1000, "{checked}");
    assert_eq!(broken, 0);
}
