//! Appointments through HTTP and, for the clock, the services with time injected: schedules and
//! slots published by an institution, booked by a resident for herself and by a family doctor
//! for a patient in care; the slot's capacity, overlapping and daily limits, the booking window,
//! cancelling and moving up to 2 hours before, arrival and no-shows by the institution, booking
//! suspended after three no-shows; who sees what; the FHIR rendering; a race for the last place.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::http::StatusCode;
use health::HealthModule;
use health::appointment::{Action, DAY_MS, HOUR_MS};
use health::appointment_api::{self, NewAppointment, StepBody};
use kernel::module::Module;
use kernel::store::now_ms;
use kernel::testing::{Backend, TestApp};
use serde_json::{Value, json};
use std::sync::Arc;

async fn spawn(backend: Backend) -> Option<TestApp> {
    let modules: Vec<Arc<dyn Module>> = vec![Arc::new(HealthModule { demo_records: false, ..HealthModule::default() })];
    TestApp::spawn_with(backend, modules, |_| {}).await
}

/// A Beijing day `n` days from today, `YYYY-MM-DD`.
fn day(n: i64) -> String {
    let d = health::contract::today_date() + time::Duration::days(n);
    health::contract::day(d)
}

fn created(v: (StatusCode, Value), what: &str) -> Value {
    assert_eq!(v.0, StatusCode::CREATED, "{what}: {}", v.1);
    v.1
}

async fn caller(app: &TestApp, username: &str) -> kernel::access::Caller {
    kernel::demo::act_as(&app.platform.state, username).await.unwrap()
}

async fn appointments(backend: Backend) {
    let Some(app) = spawn(backend).await else { return };
    let yang = app.login("dr.yang").await; // 人民医院
    let wu = app.login("dr.wu").await; // 杨村社区
    let chen = app.login("wjw.chen").await;
    let sun = app.login("bus.sun").await;
    let huang = app.login("resident.huang").await;
    let people = app.org_id("people_hospital").await;
    let yangcun = app.org_id("yangcun_chc").await;
    let yang_id = app.user_id("dr.yang").await;

    // The resident's record (at the centre) and another patient in care at the centre.
    let huang_cid = {
        let st = &app.platform.state;
        let u = kernel::users::by_username(&st.store, "resident.huang").await.unwrap().unwrap();
        st.cipher.decrypt(&u.citizen_id_enc.unwrap()).unwrap()
    };
    let patient = |cid: &str, name: &str| {
        json!({ "resourceType": "Patient", "identifier": [{ "system": "urn:wuqing:sid:citizen-id", "value": cid }],
            "name": [{ "text": name }], "gender": "female", "birthDate": "1955-02-26" })
    };
    let me = created(app.post("/fhir/Patient", &wu, patient(&huang_cid, "黄秀英")).await, "patient")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let other = created(
        app.post("/fhir/Patient", &wu, json!({"resourceType": "Patient", "name": [{"text": "刘洋"}]})).await,
        "p2",
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    for p in [&me, &other] {
        created(
            app.post(
                "/fhir/Encounter",
                &wu,
                json!({ "resourceType": "Encounter", "status": "finished",
                    "class": { "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB" },
                    "subject": { "reference": format!("Patient/{p}") },
                    "serviceProvider": { "reference": format!("Organization/{yangcun}") },
                    "period": { "start": "2026-11-20T09:00:00+08:00", "end": "2026-11-20T09:20:00+08:00" } }),
            )
            .await,
            "encounter",
        );
    }

    // --- schedules: the hospital's clinicians publish; nobody else.
    let sched = json!({ "department": "心血管内科", "name": "杨医生专家门诊", "service": "专家门诊", "practitioner_id": yang_id });
    assert_eq!(app.post("/api/health/schedules", &huang, sched.clone()).await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.post("/api/health/schedules", &sun, sched.clone()).await.0, StatusCode::FORBIDDEN);
    let (s, b) = app.post("/api/health/schedules", &wu, sched.clone()).await;
    assert_eq!((s, b["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("practitioner_id")), "{b}");
    let (s, b) = app.post("/api/health/schedules", &yang, json!({ "department": "", "name": "x" })).await;
    assert_eq!((s, b["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("department")), "{b}");
    let s1 = created(app.post("/api/health/schedules", &yang, sched.clone()).await, "schedule");
    assert_eq!(s1["practitioner_name"], "人民医院 杨医生");
    assert_eq!(app.post("/api/health/schedules", &yang, sched).await.0, StatusCode::CONFLICT);
    let sid = s1["id"].as_str().unwrap().to_string();
    let (_, list) = app.get(&format!("/api/health/schedules?org_id={people}"), &huang).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "the directory is public: {list}");

    // --- slots: tomorrow and the day after, 08:00–09:00 by 15 minutes.
    let slots = |from: String, days: i64| json!({ "from": from, "days": days, "start": "08:00", "end": "09:00", "minutes": 15 });
    let uri = format!("/api/health/schedules/{sid}/slots");
    assert_eq!(app.post(&uri, &wu, slots(day(1), 2)).await.0, StatusCode::NOT_FOUND, "another institution's");
    let (s, b) = app.post(&uri, &yang, slots(day(-1), 2)).await;
    assert_eq!((s, b["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("from")), "{b}");
    let mut bad = slots(day(1), 2);
    bad["end"] = json!("07:00");
    assert_eq!(app.post(&uri, &yang, bad).await.1["field"], "end");
    let mut bad = slots(day(1), 2);
    bad["minutes"] = json!(1);
    assert_eq!(app.post(&uri, &yang, bad).await.1["field"], "minutes");
    let b = created(app.post(&uri, &yang, slots(day(1), 2)).await, "slots");
    assert_eq!((b["created"].as_i64(), b["existing"].as_i64()), (Some(8), Some(0)));
    let b = created(app.post(&uri, &yang, slots(day(1), 2)).await, "slots again");
    assert_eq!((b["created"].as_i64(), b["existing"].as_i64()), (Some(0), Some(8)), "no slot twice");
    created(app.post(&uri, &yang, slots(day(20), 1)).await, "slots beyond the window");
    let (_, free) = app.get(&format!("/api/health/slots?schedule_id={sid}&free=true&limit=100"), &huang).await;
    assert_eq!(free["total"], 8, "the ones in the booking window: {free}");
    let ids: Vec<String> =
        free["items"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(app.get("/api/health/slots", &huang).await.0, StatusCode::BAD_REQUEST);
    let (_, far) = app.get(&format!("/api/health/slots?schedule_id={sid}&day={}", day(20)), &huang).await;
    let far_slot = far["items"][0]["id"].as_str().unwrap().to_string();

    // --- booking by the resident: capacity, overlap, daily limit, window.
    let book = |t: &str, v: Value| {
        let (t, app) = (t.to_string(), &app);
        async move { app.post("/api/health/appointments", &t, v).await }
    };
    let a1 = created(book(&huang, json!({ "slot_id": ids[0], "reason": "复查血压" })).await, "booking");
    assert_eq!((a1["state"].as_str(), a1["patient_id"].as_str()), (Some("booked"), Some(me.as_str())));
    assert_eq!(a1["booked_by_org"], Value::Null, "her own booking");
    assert_eq!(a1["reason"], "复查血压");
    let (s, b) = book(&huang, json!({ "slot_id": ids[0] })).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert!(b["detail"].as_str().unwrap().contains("该时段已有预约"), "{b}");
    let (s, b) = book(&huang, json!({ "slot_id": ids[1], "patient_id": other })).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a resident books for herself: {b}");
    let (s, b) = book(&wu, json!({ "slot_id": ids[0], "patient_id": other })).await;
    assert_eq!(s, StatusCode::CONFLICT, "the slot is full: {b}");
    assert!(b["detail"].as_str().unwrap().contains("号源已满"), "{b}");
    let a2 = created(book(&huang, json!({ "slot_id": ids[2] })).await, "second of the day");
    let (s, b) = book(&huang, json!({ "slot_id": ids[3] })).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert!(b["detail"].as_str().unwrap().contains("每日最多"), "{b}");
    let (s, b) = book(&huang, json!({ "slot_id": far_slot })).await;
    assert!(s == StatusCode::CONFLICT && b["detail"].as_str().unwrap().contains("14 天"), "{b}");
    assert_eq!(book(&huang, json!({ "slot_id": "nope" })).await.1["field"], "slot_id");
    assert_eq!(book(&sun, json!({ "slot_id": ids[5], "patient_id": other })).await.0, StatusCode::FORBIDDEN);
    assert_eq!(book(&chen, json!({ "slot_id": ids[5], "patient_id": other })).await.0, StatusCode::FORBIDDEN);
    // A clinician books for a patient in care at their institution, not for others'.
    let (s, _) = book(&yang, json!({ "slot_id": ids[5], "patient_id": other })).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "not in care at the hospital");
    let a3 = created(book(&wu, json!({ "slot_id": ids[5], "patient_id": other })).await, "the family doctor books");
    assert_eq!(a3["booked_by_org"], yangcun.as_str());

    // --- who reads: the patient, the institution, the booking institution; nobody else.
    let a1_id = a1["id"].as_str().unwrap().to_string();
    let a3_id = a3["id"].as_str().unwrap().to_string();
    assert_eq!(app.get(&format!("/api/health/appointments/{a1_id}"), &huang).await.0, StatusCode::OK);
    assert_eq!(app.get(&format!("/api/health/appointments/{a1_id}"), &yang).await.0, StatusCode::OK);
    assert_eq!(app.get(&format!("/api/health/appointments/{a1_id}"), &wu).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/health/appointments/{a3_id}"), &wu).await.0, StatusCode::OK);
    assert_eq!(app.get(&format!("/api/health/appointments/{a3_id}"), &huang).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/health/appointments/{a1_id}"), &chen).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/health/appointments", &chen).await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.get("/api/health/appointments", &huang).await.1["total"], 2);
    let (_, day_list) = app.get(&format!("/api/health/appointments?day={}", day(1)), &yang).await;
    assert_eq!(day_list["total"], 2, "the first day's two: {day_list}");
    assert_eq!(app.get("/api/health/appointments?state=maybe", &yang).await.0, StatusCode::BAD_REQUEST);
    let (s, f) = app.get(&format!("/api/health/appointments/{a3_id}/fhir"), &wu).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(f["entry"][0]["resource"]["resourceType"], "Appointment");
    assert_eq!(f["entry"][0]["resource"]["status"], "booked");
    assert_eq!(f["entry"][1]["resource"]["status"], "busy");
    assert_eq!(f["entry"][2]["resource"]["specialty"][0]["text"], "心血管内科");
    for e in f["entry"].as_array().unwrap() {
        let issues = health::fhir::validate::validate(&e["resource"], None);
        let known = issues.iter().all(|i| i.diagnostics.contains("not supported") || i.code == "not-supported");
        assert!(issues.is_empty() || known, "{issues:?}");
    }

    // --- moving and cancelling (her side, up to 2 hours before).
    let steps = |id: &str| format!("/api/health/appointments/{id}/steps");
    let (s, b) = app.post(&steps(&a1_id), &huang, json!({ "action": "reschedule", "slot_id": ids[4] })).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["slot_id"], ids[4].as_str());
    let (_, sl) = app.get(&format!("/api/health/slots?schedule_id={sid}&limit=100"), &huang).await;
    let booked = |id: &str| sl["items"].as_array().unwrap().iter().find(|s| s["id"] == id).unwrap()["booked"].clone();
    assert_eq!((booked(&ids[0]), booked(&ids[4])), (json!(0), json!(1)), "the place moved");
    let (s, b) = app.post(&steps(&a1_id), &huang, json!({ "action": "reschedule", "slot_id": ids[5] })).await;
    assert_eq!(s, StatusCode::CONFLICT, "the other slot is full: {b}");
    let (s, _) = app.post(&steps(&a1_id), &huang, json!({ "action": "arrive" })).await;
    assert_eq!(s, StatusCode::CONFLICT, "arrival is the institution's to record");
    let (s, _) = app.post(&steps(&a1_id), &wu, json!({ "action": "cancel" })).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "not a party");
    let (s, b) = app.post(&steps(&a1_id), &huang, json!({ "action": "cancel", "version": 1 })).await;
    assert_eq!(s, StatusCode::CONFLICT, "stale version: {b}");
    let (s, b) = app.post(&steps(&a1_id), &huang, json!({ "action": "cancel" })).await;
    assert_eq!((s, b["state"].as_str()), (StatusCode::OK, Some("cancelled")), "{b}");
    assert_eq!(app.post(&steps(&a1_id), &huang, json!({ "action": "cancel" })).await.0, StatusCode::CONFLICT);
    assert_eq!(app.post(&steps(&a1_id), &huang, json!({ "action": "wave" })).await.0, StatusCode::UNPROCESSABLE_ENTITY);

    // --- the clock, injected: too late to cancel; arrival, no-shows; suspension.
    let st = &app.platform.state;
    let keys = health::records::Keys::default();
    let (huang_c, yang_c, wu_c) =
        (caller(&app, "resident.huang").await, caller(&app, "dr.yang").await, caller(&app, "dr.wu").await);
    let a2_id = a2["id"].as_str().unwrap().to_string();
    let start2 = kernel::store::rfc3339_to_ms(a2["start"].as_str().unwrap()).unwrap();
    let end2 = kernel::store::rfc3339_to_ms(a2["end"].as_str().unwrap()).unwrap();
    let at = |action| StepBody { action, slot_id: None, version: None };
    let e = appointment_api::step(st, &keys, &huang_c, &a2_id, at(Action::Cancel), start2 - HOUR_MS).await.unwrap_err();
    assert!(e.message.contains("2 小时"), "{}", e.message);
    let e = appointment_api::step(st, &keys, &yang_c, &a2_id, at(Action::Noshow), end2 - 1).await.unwrap_err();
    assert!(e.message.contains("时间未到"), "{}", e.message);
    let a = appointment_api::step(st, &keys, &yang_c, &a2_id, at(Action::Noshow), end2).await.unwrap();
    assert_eq!(a.state.as_str(), "noshow");
    let start3 = kernel::store::rfc3339_to_ms(a3["start"].as_str().unwrap()).unwrap();
    let a = appointment_api::step(st, &keys, &yang_c, &a3_id, at(Action::Arrive), start3 - 10 * 60_000).await.unwrap();
    assert_eq!(a.state.as_str(), "arrived");
    let a = appointment_api::step(st, &keys, &yang_c, &a3_id, at(Action::Fulfil), start3 + 60_000).await.unwrap();
    assert_eq!(a.state.as_str(), "fulfilled");
    // Two more no-shows (on the second day): her own booking is suspended, her doctor's is not.
    for i in [6, 7] {
        let a = appointment_api::book_slot(
            st,
            &keys,
            &huang_c,
            NewAppointment { slot_id: ids[i].clone(), patient_id: None, reason: None, referral_id: None },
            now_ms(),
        )
        .await
        .unwrap();
        let end = kernel::store::rfc3339_to_ms(&a.end).unwrap();
        appointment_api::step(st, &keys, &yang_c, &a.id, at(Action::Noshow), end).await.unwrap();
    }
    let (s, b) = book(&huang, json!({ "slot_id": ids[3] })).await;
    assert!(s == StatusCode::CONFLICT && b["detail"].as_str().unwrap().contains("爽约"), "{b}");
    let a = appointment_api::book_slot(
        st,
        &keys,
        &wu_c,
        NewAppointment { slot_id: ids[3].clone(), patient_id: Some(me.clone()), reason: None, referral_id: None },
        now_ms(),
    )
    .await;
    assert!(a.is_ok(), "the family doctor may still book for her: {:?}", a.err());

    // Every booking and step is in her access log.
    let n = sqlx::query(
        &st.store
            .sql("SELECT COUNT(*) AS n FROM audit_log WHERE target_id = $1 AND action LIKE 'health.appointment.%'"),
    )
    .bind(me.clone())
    .fetch_one(st.store.reader())
    .await
    .unwrap();
    assert!(kernel::store::col::<i64>(&n, "n").unwrap() >= 8);
    let _ = DAY_MS;
}

#[tokio::test]
async fn appointments_on_sqlite() {
    appointments(Backend::Sqlite).await;
}

#[tokio::test]
async fn appointments_on_postgres() {
    appointments(Backend::Postgres).await;
}

/// Two bookings racing for the last place: one gets it, the other a 409; the count stays true.
async fn race(backend: Backend) {
    let Some(app) = spawn(backend).await else { return };
    let yang = app.login("dr.yang").await;
    let people = app.org_id("people_hospital").await;
    let mut patients = vec![];
    for name in ["甲", "乙", "丙", "丁"] {
        let p = created(
            app.post("/fhir/Patient", &yang, json!({"resourceType": "Patient", "name": [{"text": name}]})).await,
            "p",
        );
        let pid = p["id"].as_str().unwrap().to_string();
        created(
            app.post(
                "/fhir/Encounter",
                &yang,
                json!({ "resourceType": "Encounter", "status": "finished",
                    "class": { "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB" },
                    "subject": { "reference": format!("Patient/{pid}") },
                    "serviceProvider": { "reference": format!("Organization/{people}") },
                    "period": { "start": "2026-11-20T09:00:00+08:00", "end": "2026-11-20T09:20:00+08:00" } }),
            )
            .await,
            "encounter",
        );
        patients.push(pid);
    }
    let s = created(
        app.post(
            "/api/health/schedules",
            &yang,
            json!({ "department": "心电图室", "name": "心电图检查", "service": "检查" }),
        )
        .await,
        "s",
    );
    let sid = s["id"].as_str().unwrap();
    created(
        app.post(
            &format!("/api/health/schedules/{sid}/slots"),
            &yang,
            json!({ "from": day(2), "days": 1, "start": "09:00", "end": "09:30", "minutes": 30, "capacity": 2 }),
        )
        .await,
        "slots",
    );
    let (_, sl) = app.get(&format!("/api/health/slots?schedule_id={sid}"), &yang).await;
    let slot = sl["items"][0]["id"].as_str().unwrap().to_string();
    let tries = patients.iter().map(|p| {
        let (app, yang, slot) = (&app, &yang, slot.clone());
        async move { app.post("/api/health/appointments", yang, json!({ "slot_id": slot, "patient_id": p })).await.0 }
    });
    let results = futures_util::future::join_all(tries).await;
    let ok = results.iter().filter(|s| **s == StatusCode::CREATED).count();
    let full = results.iter().filter(|s| **s == StatusCode::CONFLICT).count();
    assert_eq!((ok, full), (2, 2), "{results:?}");
    let (_, sl) = app.get(&format!("/api/health/slots?schedule_id={sid}"), &yang).await;
    assert_eq!(sl["items"][0]["booked"], 2);
}

#[tokio::test]
async fn the_last_place_goes_once_on_sqlite() {
    race(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_last_place_goes_once_on_postgres() {
    race(Backend::Postgres).await;
}
