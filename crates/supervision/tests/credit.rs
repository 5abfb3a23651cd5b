//! The credit assessment (质量信誉考核) through the HTTP API on both backends: the year's
//! records become deductions with their evidence, the ranking and grades follow, the rules are
//! published as versions by the bureau only, and every figure of a publication is checked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use axum::http::{Method, StatusCode};
use common::app;
use kernel::testing::{Backend, TestApp};
use serde_json::{Value, json};
use supervision::dates::{date_of, today_days};

both_backends!(issue_7_credit_counts_the_years_records_with_evidence);

fn of<'a>(ranking: &'a Value, org: &str) -> &'a Value {
    ranking.as_array().unwrap().iter().find(|a| a["org_id"] == org).unwrap()
}

fn deduction<'a>(a: &'a Value, item: &str) -> Option<&'a Value> {
    a["deductions"].as_array().unwrap().iter().find(|d| d["item"] == item)
}

async fn issue_7_credit_counts_the_years_records_with_evidence(app: TestApp) {
    let reg = app.login("jt.liu").await;
    let bus = app.login("bus.sun").await;
    let (bus_org, shunda_org) = (app.org_id("wuqing_bus").await, app.org_id("shunda").await);
    let st = &app.platform.state;
    let today = today_days();
    let year = &date_of(today)[..4];

    let (s, before) = app.get("/api/supervision/credit", &reg).await;
    assert_eq!(s, StatusCode::OK, "{before}");
    assert_eq!(before.as_array().unwrap().len(), 4, "{before}");
    assert!(
        before
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["rules_version"] == 1 && a["year"].as_i64().map(|y| y.to_string()).as_deref() == Some(year))
    );

    // An overdue hazard of the bus company, escalated; a required report the shunda company
    // left unanswered past its deadline.
    let (s, h) = app
        .call(
            Method::POST,
            "/api/supervision/hazards",
            Some(&reg),
            Some(json!({"org_id": bus_org, "title": "安全例会未召开", "description": "三月未开安全例会。",
                "level": "general", "deadline": date_of(today)})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{h}");
    assert_eq!(supervision::hazards::escalate(st, today + 1).await.unwrap(), 1);
    let (s, d) = app
        .call(
            Method::POST,
            "/api/supervision/documents",
            Some(&reg),
            Some(json!({"title": "报送安全生产月报", "body": "请报送。", "target": {"org_ids": [shunda_org]},
                "requires_report": true, "deadline": date_of(today)})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    let mut tx = st.store.begin().await.unwrap();
    sqlx::query(&st.store.sql("UPDATE supervision_documents SET deadline = $1 WHERE id = $2"))
        .bind(date_of(today - 1))
        .bind(d["id"].as_str().unwrap().to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let (_, after) = app.get("/api/supervision/credit", &reg).await;
    // (The demo bureau's own casework already costs the bus company points: compare.)
    let points = |a: &Value, item: &str| deduction(a, item).map_or(0.0, |d| d["points"].as_f64().unwrap());
    let b = of(&after, &bus_org);
    let b0 = of(&before, &bus_org);
    assert_eq!(points(b, "overdue_hazards"), points(b0, "overdue_hazards") + 3.0, "{b}");
    let ded = deduction(b, "overdue_hazards").unwrap();
    let ours = ded["evidence"].as_array().unwrap().iter().find(|e| e["id"] == h["id"]).expect("the hazard is evidence");
    assert!(ours["label"].as_str().unwrap().contains("安全例会未召开"), "{ded}");
    assert_eq!(ours["points"], 3.0);
    assert_eq!(b["score"].as_f64().unwrap(), b0["score"].as_f64().unwrap() - 3.0);
    let s1 = of(&after, &shunda_org);
    assert_eq!(points(s1, "late_reports"), points(of(&before, &shunda_org), "late_reports") + 1.0, "{s1}");
    let sd = deduction(s1, "late_reports").unwrap();
    assert!(sd["evidence"].as_array().unwrap().iter().any(|e| e["label"] == "报送安全生产月报"), "{sd}");
    let ranks: Vec<i64> = after.as_array().unwrap().iter().map(|a| a["rank"].as_i64().unwrap()).collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]) && ranks[0] == 1, "{ranks:?}");
    let scores: Vec<f64> = after.as_array().unwrap().iter().map(|a| a["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "best first: {scores:?}");

    // The coach company: a fine and an at-fault accident with a death count; a revoked warning
    // and an unsubstantiated complaint count for nothing.
    let coach_org = app.org_id("jingjin_coach").await;
    let c0 = of(&after, &coach_org).clone();
    let decide = |no: &str, kind: &str| {
        let mut p = json!({"decision_no": no, "org_id": coach_org, "subject_type": "enterprise",
            "subject_id": coach_org, "kind": kind, "facts": "未按规定落实动态监控。",
            "legal_basis": "《道路运输车辆动态监督管理办法》第三十六条", "decided_on": date_of(today)});
        if kind == "fine" {
            p["amount_fen"] = json!(500_000);
        }
        p
    };
    let (s, fine) = app.post("/api/supervision/penalties", &reg, decide("武交罚〔2026〕901号", "fine")).await;
    assert_eq!(s, StatusCode::CREATED, "{fine}");
    let (_, warning) = app.post("/api/supervision/penalties", &reg, decide("武交罚〔2026〕902号", "warning")).await;
    let (s, v) = app
        .post(
            &format!("/api/supervision/penalties/{}/revoke", warning["id"].as_str().unwrap()),
            &reg,
            json!({"reason": "复议撤销"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, acc) = app
        .post(
            "/api/supervision/incidents",
            &reg,
            json!({"kind": "accident", "org_id": coach_org, "occurred_on": date_of(today), "description": "追尾。",
                "severity": "major", "deaths": 1, "injuries": 3, "at_fault": true}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{acc}");
    let (_, complaint) = app
        .post(
            "/api/supervision/incidents",
            &reg,
            json!({"kind": "complaint", "org_id": coach_org, "occurred_on": date_of(today), "description": "拒载。"}),
        )
        .await;
    let (s, v) = app
        .post(
            &format!("/api/supervision/incidents/{}/decide", complaint["id"].as_str().unwrap()),
            &reg,
            json!({"substantiated": false}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, after) = app.get("/api/supervision/credit", &reg).await;
    let c1 = of(&after, &coach_org);
    assert_eq!(points(c1, "penalties"), points(&c0, "penalties") + 5.0, "a fine: 5; the revoked warning: 0: {c1}");
    let pe = deduction(c1, "penalties").unwrap();
    assert!(pe["evidence"].as_array().unwrap().iter().any(|e| e["label"] == "武交罚〔2026〕901号"), "{pe}");
    assert!(!pe["evidence"].as_array().unwrap().iter().any(|e| e["label"] == "武交罚〔2026〕902号"), "{pe}");
    assert_eq!(points(c1, "accidents"), points(&c0, "accidents") + 17.0, "a major accident 15, a death 2: {c1}");
    assert_eq!(points(c1, "complaints"), points(&c0, "complaints"), "unsubstantiated: {c1}");
    assert_eq!(c1["score"].as_f64().unwrap(), c0["score"].as_f64().unwrap() - 22.0);

    // An enterprise sees its own assessment only.
    let (s, own) = app.get("/api/supervision/credit", &bus).await;
    assert_eq!((s, own.as_array().map(Vec::len)), (StatusCode::OK, Some(1)), "{own}");
    let (s, _) = app.get(&format!("/api/supervision/credit/enterprises/{shunda_org}"), &bus).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, one) = app.get(&format!("/api/supervision/credit/enterprises/{bus_org}?year={year}"), &reg).await;
    assert_eq!((s, one["score"].clone()), (StatusCode::OK, b["score"].clone()), "{one}");
    let (s, v) = app.get("/api/supervision/credit?year=2019", &reg).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::BAD_REQUEST, Some("year")), "{v}");
    let (s, _) = app.get("/api/supervision/credit", &app.login("dr.wu").await).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // The bureau publishes new rules: checked, versioned, and the scores follow.
    let (s, cur) = app.get("/api/supervision/credit/rules", &bus).await;
    assert_eq!((s, cur["version"].as_i64(), cur["stored"].as_bool()), (StatusCode::OK, Some(1), Some(false)));
    let mut rules = cur["rules"].clone();
    rules["overdue_hazards"]["each"] = json!(5);
    let put = |body: Value, token: String| {
        let app = &app;
        async move { app.call(Method::PUT, "/api/supervision/credit/rules", Some(&token), Some(body)).await }
    };
    let (s, _) = put(json!({"base_version": 1, "rules": rules, "note": "超期加重"}), bus.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let mut bad = rules.clone();
    bad["grades"]["aa"] = json!(95);
    let (s, v) = put(json!({"base_version": 1, "rules": bad}), reg.clone()).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("rules.grades")), "{v}");
    let mut bad = rules.clone();
    bad["late_reports"]["every"] = json!(1);
    let (s, _) = put(json!({"base_version": 1, "rules": bad}), reg.clone()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "unknown fields are refused");
    let (s, v) = put(json!({"base_version": 1, "rules": rules, "note": "超期加重"}), reg.clone()).await;
    assert_eq!((s, v["version"].as_i64()), (StatusCode::OK, Some(2)), "{v}");
    let (s, _) = put(json!({"base_version": 1, "rules": rules}), reg.clone()).await;
    assert_eq!(s, StatusCode::CONFLICT, "a stale base version");
    let (_, again) = app.get("/api/supervision/credit", &reg).await;
    let b2 = of(&again, &bus_org);
    let overdue = deduction(b2, "overdue_hazards").unwrap()["evidence"].as_array().unwrap().len() as f64;
    assert_eq!((b2["rules_version"].as_i64(), points(b2, "overdue_hazards")), (Some(2), (5.0 * overdue).min(15.0)));
    let (_, versions) = app.get("/api/supervision/credit/rules/versions", &reg).await;
    assert_eq!(versions["total"], 1, "{versions}");

    let aud = app.login("auditor").await;
    let (_, v) = app.get("/api/audit?action=credit.list&actor=jt.liu", &aud).await;
    assert!(v["total"].as_i64().unwrap() >= 3, "{v}");
    let (_, v) = app.get("/api/audit?action=config.published&actor=jt.liu", &aud).await;
    assert_eq!(v["total"], 1, "{v}");
}
