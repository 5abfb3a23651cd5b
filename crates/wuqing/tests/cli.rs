//! The binary as an operator uses it: configuration, user management, audit verification,
//! backup while serving, the demo, graceful shutdown, and HTTP over a real socket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn wuqing(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wuqing"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("WUQING_CONFIG")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run wuqing")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Server {
    child: Child,
    port: u16,
    stdout: String,
}

impl Server {
    fn start(data: &Path, demo: bool) -> Server {
        let port = free_port();
        // The MQTT endpoint's port is taken (as Mosquitto takes 1883 on many servers): the
        // platform must start anyway, without the endpoint.
        let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wuqing"));
        cmd.arg("--data-dir")
            .arg(data)
            .arg("serve")
            .arg("--http")
            .arg(format!("127.0.0.1:{port}"))
            .args(["--jt808", "127.0.0.1:0"])
            .args(["--mqtt", &busy.local_addr().unwrap().to_string()]);
        if demo {
            cmd.arg("--demo");
        }
        let mut child = cmd.env("RUST_LOG", "warn").stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let _busy = busy;
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut stdout = String::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap() == 0 || Instant::now() > deadline {
                panic!("server did not start: {stdout}");
            }
            stdout.push_str(&line);
            if line.contains("API docs:") {
                break;
            }
        }
        // The listener binds right after the banner.
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "no listener");
            std::thread::sleep(Duration::from_millis(50));
        }
        Server { child, port, stdout }
    }

    fn http(&self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, String) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        if let Some(t) = token {
            req.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        let b = body.unwrap_or("");
        if body.is_some() {
            req.push_str("Content-Type: application/json\r\n");
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n{b}", b.len()));
        s.write_all(req.as_bytes()).unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let status = resp.split(' ').nth(1).unwrap().parse().unwrap();
        let body = resp.split_once("\r\n\r\n").map(|x| x.1.to_string()).unwrap_or_default();
        (status, body)
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn config_print_masks_secrets_and_unknown_keys_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("wuqing.toml");
    std::fs::write(&f, "[security]\nfield_key = \"00112233445566778899aabbccddeeff\"\n[store]\nurl = \"postgres://root:hunter2@127.0.0.1/x\"\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_wuqing"))
        .args(["--config", f.to_str().unwrap(), "config", "print"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(!t.contains("hunter2") && !t.contains("00112233"), "{t}");
    assert!(t.contains("lockout_threshold = 5"), "{t}");

    std::fs::write(&f, "[securty]\nx = 1\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_wuqing"))
        .args(["--config", f.to_str().unwrap(), "config", "print"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("securty"), "{}", text(&o));

    // Environment variables are the last layer.
    let o = Command::new(env!("CARGO_BIN_EXE_wuqing"))
        .args(["config", "print"])
        .env("WUQING__SECURITY__LOCKOUT_MINUTES", "42")
        .output()
        .unwrap();
    assert!(text(&o).contains("lockout_minutes = 42"), "{}", text(&o));
}

#[test]
fn users_audit_and_tampering_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = wuqing(d, &["user", "add", "root.admin", "--role", "system_admin"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("initial password"));
    let o = wuqing(d, &["user", "add", "x", "--role", "emperor"]);
    assert!(!o.status.success() && text(&o).contains("unknown role"));
    for args in [["user", "lock", "root.admin"], ["user", "unlock", "root.admin"], ["user", "passwd", "root.admin"]] {
        let o = wuqing(d, &args);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
    }
    let o = wuqing(d, &["audit", "verify"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("audit chain ok"), "{}", text(&o));

    // Tamper with one record behind the application's back.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut c =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}", d.join("wuqing.db").display())).await.unwrap();
        sqlx::query("DROP TRIGGER audit_no_update").execute(&mut c).await.unwrap();
        sqlx::query("UPDATE audit_log SET outcome = 'success', detail = '{}' WHERE seq = 3")
            .execute(&mut c)
            .await
            .unwrap();
    });
    let o = wuqing(d, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("BROKEN at record 3"), "{}", text(&o));
}

#[test]
fn demo_serves_over_a_socket_backs_up_live_and_stops_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let srv = Server::start(d, true);
    let accounts = std::fs::read_to_string(d.join("demo-accounts.txt")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(d.join("demo-accounts.txt")).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let line = accounts.lines().find(|l| l.starts_with("regulator jt.liu ")).expect("regulator account");
    let pw = line.split(' ').nth(2).unwrap();
    assert!(srv.stdout.contains(line), "the demo prints its logins");

    let (s, body) =
        srv.http("POST", "/api/auth/login", None, Some(&format!(r#"{{"username":"jt.liu","password":"{pw}"}}"#)));
    assert_eq!(s, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let token = v["token"].as_str().unwrap();
    let (s, body) = srv.http("GET", "/api/users?limit=5", Some(token), None);
    assert_eq!(s, 200, "{body}");
    let (s, body) = srv.http("GET", "/api/health", None, None);
    assert_eq!((s, body.contains("\"ok\"")), (200, true), "{body}");
    let (s, body) = srv.http("GET", "/metrics", None, None);
    assert!(s == 200 && body.contains("wuqing_logins_total"), "{body}");
    // Histogram samples are folded by a thread of their own even when nobody scrapes (before,
    // they piled up until a scrape).
    #[cfg(target_os = "linux")]
    {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", srv.child.id())).unwrap();
        let names: Vec<String> = tasks
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .map(|n| n.trim().to_string())
            .collect();
        assert!(names.iter().any(|n| n == "metrics-upkeep"), "{names:?}");
    }

    // A wrong password over the socket is refused, not a dropped connection.
    let (s, _) = srv.http("POST", "/api/auth/login", None, Some(r#"{"username":"jt.liu","password":"wrong"}"#));
    assert_eq!(s, 401);

    // A backup while the server runs is a consistent, verifiable database.
    let backup = d.join("copy.db");
    let o = wuqing(d, &["backup", "--out", backup.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let copy_dir = tempfile::tempdir().unwrap();
    std::fs::copy(&backup, copy_dir.path().join("wuqing.db")).unwrap();
    std::fs::create_dir_all(copy_dir.path().join("keys")).unwrap();
    std::fs::copy(d.join("keys/field.key"), copy_dir.path().join("keys/field.key")).unwrap();
    let o = wuqing(copy_dir.path(), &["audit", "verify"]);
    assert!(o.status.success() && text(&o).contains("audit chain ok"), "{}", text(&o));

    let status = srv.terminate();
    assert!(status.success(), "SIGTERM exits 0, got {status:?}");

    // A second start finds the demo seeded and shows the same logins.
    let srv = Server::start(d, true);
    assert!(srv.stdout.contains(line));
    assert_eq!(std::fs::read_to_string(d.join("demo-accounts.txt")).unwrap(), accounts);
    assert!(srv.terminate().success());
}

#[test]
fn a_busy_port_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let o = Command::new(env!("CARGO_BIN_EXE_wuqing"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--jt808", "off", "--mqtt", "off", "--http", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains(&format!("binding HTTP to 127.0.0.1:{port}")), "{}", text(&o));
}

#[test]
fn serves_https_when_a_certificate_is_configured() {
    let have = |c: &str, a: &str| Command::new(c).arg(a).output().map(|o| o.status.success()).unwrap_or(false);
    if !have("openssl", "version") || !have("curl", "--version") {
        eprintln!("skipped: needs the openssl and curl commands");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (cert, key) = (d.join("cert.pem"), d.join("key.pem"));
    let o = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wuqing"))
        .arg("--data-dir")
        .arg(d)
        .args(["serve", "--jt808", "off", "--mqtt", "off", "--http", &format!("127.0.0.1:{port}")])
        .env("WUQING__SERVER__TLS_CERT", &cert)
        .env("WUQING__SERVER__TLS_KEY", &key)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let url = format!("https://localhost:{port}/api/health");
    let body = loop {
        let o = Command::new("curl")
            .args(["-sk", "--resolve", &format!("localhost:{port}:127.0.0.1"), &url])
            .output()
            .unwrap();
        if o.status.success() && !o.stdout.is_empty() {
            break String::from_utf8_lossy(&o.stdout).to_string();
        }
        assert!(Instant::now() < deadline, "no https listener");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(body.contains("\"ok\""), "{body}");
    // Plain HTTP on the TLS port is not served.
    let o =
        Command::new("curl").args(["-s", "-m", "5", &format!("http://127.0.0.1:{port}/api/health")]).output().unwrap();
    assert!(!String::from_utf8_lossy(&o.stdout).contains("\"ok\""));
    let _ = child.kill();
    let _ = child.wait();
}

/// Every path outside `/api` is the console (here, or the page saying it was not built);
/// unknown API paths stay problem documents.
#[test]
fn the_console_is_served_outside_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), false);
    let (s, body) = srv.http("GET", "/", None, None);
    assert_eq!(s, 200);
    assert!(body.contains("<html") || body.contains("<!doctype html>"), "{body}");
    let (s, _) = srv.http("GET", "/monitor/map", None, None);
    assert_eq!(s, 200, "a page of the single-page application");
    let (s, body) = srv.http("GET", "/api/no/such/route", None, None);
    assert_eq!(s, 404);
    assert!(body.contains("\"code\":\"not_found\""), "{body}");
    let (s, _) = srv.http("POST", "/", None, Some("{}"));
    assert!(s == 404 || s == 405, "{s}");
    assert!(srv.terminate().success());
}

/// Load-test vehicles provisioned before the first `serve --demo` (as the benchmarks do): the
/// demo district grows under the root organisation that provisioning made.
#[test]
fn the_demo_starts_on_a_database_prepared_by_sim_provision() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_wuqing"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["sim", "provision", "--count", "3"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let srv = Server::start(dir.path(), true);
    assert!(srv.stdout.contains("demo district is ready"), "{}", srv.stdout);
    assert!(srv.terminate().success());
}

#[test]
fn health_generate_writes_a_synthetic_district_as_ndjson_the_same_for_the_same_seed() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for out in [&a, &b] {
        let o = wuqing(
            dir.path(),
            &["health", "generate", "--residents", "300", "--seed", "5", "--out", out.to_str().unwrap()],
        );
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("300 patients"), "{}", text(&o));
    }
    for kind in ["Organization", "Patient", "Condition", "Encounter", "Observation"] {
        let body = std::fs::read_to_string(a.join(format!("{kind}.ndjson"))).unwrap();
        assert_eq!(
            body,
            std::fs::read_to_string(b.join(format!("{kind}.ndjson"))).unwrap(),
            "{kind}: same seed, same file"
        );
        let lines: Vec<serde_json::Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert!(!lines.is_empty(), "{kind}");
        assert!(lines.iter().all(|r| r["resourceType"] == kind), "{kind}");
        if kind == "Patient" {
            assert_eq!(lines.len(), 300);
        }
    }
    // What was generated validates; a broken line is named by file, line and path.
    let files: Vec<String> = ["Organization", "Patient", "Condition", "Encounter", "Observation"]
        .iter()
        .map(|k| a.join(format!("{k}.ndjson")).to_str().unwrap().to_string())
        .collect();
    let mut args = vec!["health", "validate"];
    args.extend(files.iter().map(String::as_str));
    let o = wuqing(dir.path(), &args);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("300 valid (300 Patient), 0 invalid"), "{}", text(&o));
    let broken = dir.path().join("broken.ndjson");
    std::fs::write(&broken, "{\"resourceType\":\"Patient\",\"gender\":\"f\"}\n{\"resourceType\":\"Patient\"}\n")
        .unwrap();
    let o = wuqing(dir.path(), &["health", "validate", broken.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("broken.ndjson:1: code-invalid Patient.gender"), "{}", text(&o));
    assert!(text(&o).contains("1 valid (1 Patient), 1 invalid"), "{}", text(&o));

    // A file where the directory should be: a clear error, no panic.
    let blocked = dir.path().join("file");
    std::fs::write(&blocked, "x").unwrap();
    let o = wuqing(dir.path(), &["health", "generate", "--residents", "3", "--out", blocked.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("creating"), "{}", text(&o));
}
