//! The abuse drills' malformed requests: huge headers, oversized bodies (with and without a
//! declared length), malformed JSON on every JSON route.

use super::*;

/// Returns what the server answered to a 100 kB header and to 1,000 headers (`None`: the
/// connection was closed without an answer).
pub(super) async fn huge_headers(s: &Server) -> [(String, Option<u16>); 4] {
    let host = &s.addr;
    let big = |n: usize| {
        format!(
            "GET /healthz HTTP/1.1\r\nHost: {host}\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
            "a".repeat(n)
        )
    };
    let many = |n: usize| {
        let mut h = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n");
        for i in 0..n {
            h.push_str(&format!("X-H{i}: v\r\n"));
        }
        h.push_str("Connection: close\r\n\r\n");
        h
    };
    let auth_big = format!(
        "GET /v1/documents HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\n\
         Connection: close\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let mut out = [
        ("a 100 kB header on /healthz".to_owned(), None),
        ("a 100 kB Authorization header".to_owned(), None),
        ("1,000 headers".to_owned(), None),
        ("a 1 MB header".to_owned(), None),
    ];
    out[0].1 = s.raw(big(100 * 1024).as_bytes()).await;
    s.healthz("a 100 kB header").await;
    out[1].1 = s.raw(auth_big.as_bytes()).await;
    s.healthz("a 100 kB Authorization header").await;
    out[2].1 = s.raw(many(1000).as_bytes()).await;
    s.healthz("1,000 headers").await;
    out[3].1 = s.raw(big(1024 * 1024).as_bytes()).await;
    s.healthz("a 1 MB header").await;
    out
}

pub(super) async fn body_limits(s: &Server) {
    let host = &s.addr;
    let auth = format!("Authorization: Bearer {ADMIN}\r\n");
    // A declared length over the limit: 413 at once, without sending the body.
    for (path, ct) in [
        ("/v1/documents", "multipart/form-data; boundary=x"),
        ("/v1/documents", "application/json"),
        ("/v1/search", "application/json"),
        ("/v1/jobs/retry", "application/json"),
    ] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: {ct}\r\n\
             Content-Length: {}\r\n\r\n",
            MAX_BODY * 4
        );
        assert_eq!(s.raw(head.as_bytes()).await, Some(413), "{path} {ct}");
    }
    // No declared length (chunked): cut off at the limit while streaming.
    for (path, ct, open) in [
        (
            "/v1/documents",
            "multipart/form-data; boundary=x",
            "--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.txt\"\r\n\r\n",
        ),
        ("/v1/documents", "application/json", "{\"url\": \""),
        ("/v1/search", "application/json", "{\"query\": \""),
    ] {
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: {ct}\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        .into_bytes();
        let mut chunk = |data: &[u8]| {
            req.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
            req.extend_from_slice(data);
            req.extend_from_slice(b"\r\n");
        };
        chunk(open.as_bytes());
        for _ in 0..(MAX_BODY * 2 / 8192) {
            chunk(&[b'a'; 8192]);
        }
        req.extend_from_slice(b"0\r\n\r\n");
        assert_eq!(s.raw(&req).await, Some(413), "chunked {path} {ct}");
    }
    s.healthz("oversized bodies").await;
}

pub(super) async fn bad_json(s: &Server) {
    // Every route that takes JSON: malformed → 400, wrong types or unknown fields → 422,
    // always with an {"error"} body.
    let routes = [
        (
            "/v1/documents",
            json!({"url": 5}),
            json!({"url": "http://x/", "nope": 1}),
        ),
        (
            "/v1/search",
            json!({"query": ["a"]}),
            json!({"query": "a", "nope": 1}),
        ),
        (
            "/v1/search",
            json!({"query": "a", "k": "ten"}),
            json!({"query": "a", "document_ids": ["not-a-uuid"]}),
        ),
        (
            "/v1/jobs/process",
            json!({"limit": "ten"}),
            json!({"queue": "default", "nope": 1}),
        ),
        (
            "/v1/jobs/retry",
            json!({"ids": "all"}),
            json!({"all": true, "nope": 1}),
        ),
    ];
    for (path, wrong_type, unknown) in routes {
        for (what, body, want) in [
            ("cut short", "{".to_owned(), StatusCode::BAD_REQUEST),
            ("a stray comma", "{,}".to_owned(), StatusCode::BAD_REQUEST),
            (
                "mismatched brackets",
                "[}".to_owned(),
                StatusCode::BAD_REQUEST,
            ),
            ("empty", String::new(), StatusCode::BAD_REQUEST),
            (
                "wrong type",
                wrong_type.to_string(),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                "unknown field",
                unknown.to_string(),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                "a JSON string",
                "\"hello\"".to_owned(),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
        ] {
            let (status, resp) = json(
                s.req(reqwest::Method::POST, path, Some(ADMIN))
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, want, "{path} {what}: {body} → {resp}");
            assert!(!error_text(&resp).is_empty(), "{path} {what}");
        }
    }
    // Signed but malformed storage webhooks.
    let now = chrono::Utc::now().timestamp();
    for (body, want) in [
        ("{oops", StatusCode::BAD_REQUEST),
        ("{\"hello\": 1}", StatusCode::UNPROCESSABLE_ENTITY),
        ("{\"Records\": 5}", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let mut r = s
            .http
            .post(format!("{}/v1/webhooks/storage", s.base))
            .header("content-type", "application/json")
            .body(body);
        for (k, v) in signed(body, "msg_j", now, SECRET) {
            r = r.header(k, v);
        }
        let (status, resp) = json(r.send().await.unwrap()).await;
        assert_eq!(status, want, "webhook {body} → {resp}");
        error_text(&resp);
    }
    s.healthz("malformed JSON").await;
}
