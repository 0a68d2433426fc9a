//! Dashboard sessions kept in the database (they hold across `serve` processes and restarts,
//! and logout everywhere ends them all), and failed authentication limited per address.

use std::time::Duration;

use docket_conformance::both_backends;
use docket_conformance::harness::{TestDb, sqlite};
use docket_core::{QueueDriver, SessionStore};
use docket_http::auth::FailureLimit;
use sha2::{Digest, Sha256};

mod common;
use common::dashboard::{ADMIN_KEY, READ_KEY, keys, location, no_redirects, serve};

/// Logs in at `base`; the `name=value` of the session cookie.
async fn login(http: &reqwest::Client, base: &str) -> String {
    let r = http
        .post(format!("{base}/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key={ADMIN_KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!((r.status().as_u16(), location(&r)), (303, "/".into()));
    let set = r.headers()["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

/// The status of the overview with `cookie` (200 logged in, 303 to the login form).
async fn overview(http: &reqwest::Client, base: &str, cookie: &str) -> u16 {
    http.get(format!("{base}/"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A session made by one server works on another over the same database and after the first
/// is gone (as after a restart); the database keeps its token's hash, not the token; logout
/// everywhere ends every session of the key, on every server.
#[both_backends]
async fn sessions_hold_across_servers_and_restarts<T: TestDb>(db: T) {
    let http = no_redirects();
    let a = serve(db.driver(), Some(keys())).await;
    let b = serve(db.driver(), Some(keys())).await;
    let first = login(&http, &a.base).await;
    assert_eq!(overview(&http, &a.base, &first).await, 200);
    assert_eq!(
        overview(&http, &b.base, &first).await,
        200,
        "another server"
    );

    let token = first.split_once('=').unwrap().1.to_owned();
    let hash = format!("{:x}", Sha256::digest(token.as_bytes()));
    {
        let mut c = db.driver().conn().await.unwrap();
        let row = c.session_get(&hash, chrono::Utc::now()).await.unwrap();
        assert_eq!(row.map(|r| r.key_name), Some("operator".to_owned()));
        assert!(
            c.session_get(&token, chrono::Utc::now())
                .await
                .unwrap()
                .is_none(),
            "the token itself is not stored"
        );
    }

    // The server that made it goes; a new one starts (a restart).
    a.runtime.shutdown().await;
    let c = serve(db.driver(), Some(keys())).await;
    assert_eq!(
        overview(&http, &c.base, &first).await,
        200,
        "after a restart"
    );

    // A second browser, then logout everywhere from the first.
    let second = login(&http, &b.base).await;
    assert_ne!(first, second);
    let r = http
        .post(format!("{}/ui/logout?everywhere=1", c.base))
        .header("cookie", &first)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/ui/login".into())
    );
    for cookie in [&first, &second] {
        assert_eq!(overview(&http, &b.base, cookie).await, 303);
        assert_eq!(overview(&http, &c.base, cookie).await, 303);
    }
    // The dashboard offers it.
    let third = login(&http, &b.base).await;
    let page = http
        .get(format!("{}/", b.base))
        .header("cookie", &third)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("formaction=\"/ui/logout?everywhere=1\""),
        "{page}"
    );
    b.runtime.shutdown().await;
    c.runtime.shutdown().await;
}

/// Past the limit, an address that presents keys gets 429 with `Retry-After`, its right key
/// included, on the API and the login form alike; requests without a key are not counted;
/// other addresses are not affected; failures and refusals are counted in /metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentication_is_limited_per_address() {
    let db = sqlite().await;
    let limit = FailureLimit::new(3, Duration::from_secs(60), Some("x-forwarded-for".into()));
    let s = serve(db.driver(), Some(keys().with_failure_limit(limit))).await;
    let http = no_redirects();
    let from = |ip: &str, key: Option<&str>| {
        let mut r = http
            .get(format!("{}/v1/queues", s.base))
            .header("x-forwarded-for", format!("203.0.113.7, {ip}"));
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        r
    };
    for _ in 0..5 {
        let r = from("10.0.0.1", None).send().await.unwrap();
        assert_eq!(r.status(), 401, "no key: not counted");
    }
    for _ in 0..3 {
        let r = from("10.0.0.1", Some("wrong")).send().await.unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = from("10.0.0.1", Some("wrong")).send().await.unwrap();
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let body = r.text().await.unwrap();
    assert!(body.contains("too many failed authentications"), "{body}");
    let r = from("10.0.0.1", Some(ADMIN_KEY)).send().await.unwrap();
    assert_eq!(
        r.status(),
        429,
        "the address is refused, whatever key it tries"
    );
    let r = from("10.0.0.1", None).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(format!("{}/ui/login", s.base))
        .header("x-forwarded-for", "10.0.0.1")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key={ADMIN_KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "the login form too");
    assert!(r.headers().contains_key("retry-after"));

    // Another address: untouched, and its wrong logins count too.
    let r = from("10.0.0.2", Some(ADMIN_KEY)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    for _ in 0..3 {
        let r = http
            .post(format!("{}/ui/login", s.base))
            .header("x-forwarded-for", "10.0.0.2")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("key=wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(location(&r), "/ui/login?error=invalid");
    }
    let r = from("10.0.0.2", Some(ADMIN_KEY)).send().await.unwrap();
    assert_eq!(r.status(), 429);

    let text = http
        .get(format!("{}/metrics", s.base))
        .header("x-forwarded-for", "10.0.0.3")
        .bearer_auth(READ_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{series} missing:\n{text}"))
    };
    assert!(value("docket_auth_failures_total{via=\"bearer\"}") >= 3.0);
    assert!(value("docket_auth_failures_total{via=\"login\"}") >= 3.0);
    assert!(value("docket_auth_throttled_total{via=\"bearer\"}") >= 3.0);
    assert!(value("docket_auth_throttled_total{via=\"login\"}") >= 1.0);
    s.runtime.shutdown().await;
}
