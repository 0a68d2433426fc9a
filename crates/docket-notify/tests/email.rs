//! Email delivery against a real SMTP server on loopback.
//!
//! The server is [`docket_conformance::smtp::Sink`] (Python's aiosmtpd). These
//! tests need `python3` (or the interpreter named by the `PYTHON`
//! environment variable) with aiosmtpd installed: `pip install aiosmtpd`.
//! When either is missing the tests fail and say so; they are not skipped.

use std::time::{Duration, Instant};

use docket_conformance::smtp::Sink;
use docket_notify::{DeliveryError, DocumentNotice, EmailConfig, Mailer, NoticeStatus};

fn config(url: String, to: &[&str]) -> EmailConfig {
    EmailConfig {
        smtp_url: Some(url),
        from: "Docket <docket@example.com>".into(),
        to: to.iter().map(|s| s.to_string()).collect(),
        timeout_ms: 5_000,
        ..Default::default()
    }
}

#[tokio::test]
async fn sends_plain_text_email() {
    let sink = Sink::start().await;
    let mailer = Mailer::new(&config(
        sink.url(),
        &["ops@example.com", "Second Person <second@example.org>"],
    ))
    .unwrap()
    .expect("configured");

    let body = "Line one.\nLine two, with ünïcödé.\n";
    mailer
        .send("[docket] Dokument verarbeitet: Bericht ü.pdf", body)
        .await
        .unwrap();

    let messages = sink.wait_for(1).await;
    assert_eq!(messages.len(), 1);
    let (m, raw) = &messages[0];
    assert_eq!(m["mail_from"], "docket@example.com");
    assert_eq!(
        m["rcpt_tos"],
        serde_json::json!(["ops@example.com", "second@example.org"])
    );
    assert_eq!(m["subject"], "[docket] Dokument verarbeitet: Bericht ü.pdf");
    assert_eq!(m["from"], "Docket <docket@example.com>");
    let to = m["to"].as_str().unwrap();
    assert!(
        to.contains("ops@example.com") && to.contains("Second Person <second@example.org>"),
        "{to}"
    );
    // RFC 2045: without it, strict readers may show a quoted-printable body raw.
    assert_eq!(m["mime_version"], "1.0");
    assert_eq!(m["content_type"], "text/plain");
    assert_eq!(m["charset"], "utf-8");
    // SMTP transfer may add a final line break; compare without it.
    let got = m["body"].as_str().unwrap().replace("\r\n", "\n");
    assert_eq!(got.trim_end(), body.trim_end());
    let message_id = m["message_id"].as_str().unwrap();
    assert!(
        message_id.starts_with('<') && message_id.ends_with("@example.com>"),
        "{message_id}"
    );
    assert!(m["date"].as_str().unwrap().len() > 10);
    assert!(
        raw.contains("\r\nDate: ") || raw.starts_with("Date: "),
        "{raw}"
    );
}

#[tokio::test]
async fn notices_follow_on_completed_and_on_failed() {
    let sink = Sink::start().await;
    let mailer = Mailer::new(&config(sink.url(), &["ops@example.com"]))
        .unwrap()
        .unwrap();
    let failed = DocumentNotice {
        id: "doc_9".into(),
        filename: "scan.pdf".into(),
        status: NoticeStatus::Failed,
        error: Some("no text layer".into()),
        chunk_count: 0,
        token_count: 0,
        stage: Some("parse".into()),
    };
    let completed = DocumentNotice {
        status: NoticeStatus::Completed,
        error: None,
        stage: None,
        chunk_count: 4,
        token_count: 1000,
        ..failed.clone()
    };
    // Defaults: on_failed = true, on_completed = false.
    assert!(mailer.send_notice(&failed).await.unwrap());
    assert!(!mailer.send_notice(&completed).await.unwrap());

    let messages = sink.wait_for(1).await;
    assert_eq!(messages.len(), 1);
    let (m, _) = &messages[0];
    let (subject, body) = failed.email();
    assert_eq!(m["subject"], subject.as_str());
    let got = m["body"].as_str().unwrap().replace("\r\n", "\n");
    assert_eq!(got.trim_end(), body.trim_end());
    assert!(got.contains("no text layer") && got.contains("doc_9"));
}

#[tokio::test]
async fn smtp_replies_are_classified() {
    let sink = Sink::start().await;

    let permanent = Mailer::new(&config(sink.url(), &["reject-permanent@example.com"]))
        .unwrap()
        .unwrap();
    let err = permanent.send("s", "b").await.unwrap_err();
    assert!(
        matches!(err, DeliveryError::SmtpPermanent { code: 550, .. }),
        "{err:?}"
    );
    assert!(!err.retryable());
    assert_eq!(err.status(), Some(550));

    let transient = Mailer::new(&config(sink.url(), &["reject-transient@example.com"]))
        .unwrap()
        .unwrap();
    let err = transient.send("s", "b").await.unwrap_err();
    assert!(
        matches!(err, DeliveryError::SmtpTransient { code: 451, .. }),
        "{err:?}"
    );
    assert!(err.retryable());

    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn unreachable_server_is_retryable_and_quick() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mailer = Mailer::new(&config(
        format!("smtp://127.0.0.1:{port}"),
        &["ops@example.com"],
    ))
    .unwrap()
    .unwrap();
    let started = Instant::now();
    let err = mailer.send("s", "b").await.unwrap_err();
    assert!(err.retryable(), "{err:?}");
    assert!(matches!(err, DeliveryError::Connect(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn silent_server_times_out_retryably() {
    // Accepts the connection but never sends the SMTP greeting.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let _accepting = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mailer = Mailer::new(&EmailConfig {
        timeout_ms: 300,
        ..config(format!("smtp://127.0.0.1:{port}"), &["ops@example.com"])
    })
    .unwrap()
    .unwrap();
    let started = Instant::now();
    let err = mailer.send("s", "b").await.unwrap_err();
    assert!(matches!(err, DeliveryError::Timeout(_)), "{err:?}");
    assert!(err.retryable());
    assert!(started.elapsed() < Duration::from_secs(3));
}
