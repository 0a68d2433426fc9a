//! Operator actions over a real socket, on both backends: cancel a document, run now, discard,
//! and the audit trail that records each under the caller's key.

use docket_conformance::both_backends;
use docket_conformance::harness::TestDb;
use docket_core::{JobInsertManyParams, JobInsertParams, QueueDriver, QueueExecutor};
use docket_http::auth::{ApiKey, ApiKeys, Scope};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

mod common;

const ADMIN: &str = "admin-secret-0123456789";
const READER: &str = "reader-secret-0123456789";

fn keys() -> ApiKeys {
    let key = |name: &str, secret: &str, scopes| ApiKey {
        name: name.into(),
        sha256: format!("{:x}", Sha256::digest(secret.as_bytes())),
        scopes,
    };
    ApiKeys::new(&[
        key("ops", ADMIN, vec![Scope::Admin]),
        key("viewer", READER, vec![Scope::Read]),
    ])
    .unwrap()
}

async fn json(r: reqwest::Response) -> (StatusCode, Value) {
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[both_backends]
async fn operator_actions_are_applied_and_audited(db: impl TestDb) {
    let s = common::serve(db.driver(), 256 * 1024, Some(keys())).await;
    let http = reqwest::Client::new();
    let post = |p: &str| http.post(format!("{}{p}", s.base)).bearer_auth(ADMIN);
    let get = |p: &str| http.get(format!("{}{p}", s.base)).bearer_auth(ADMIN);

    // Paused, an upload's first stage waits in the queue.
    let (status, _) = json(post("/v1/queues/default/pause").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let form = Form::new().part(
        "file",
        Part::bytes(b"The ferry leaves at dawn.".to_vec()).file_name("ferry.txt"),
    );
    let (status, up) = json(post("/v1/documents").multipart(form).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{up}");
    let doc = up["document"]["id"].as_str().unwrap().to_owned();

    // Cancel the document: its queued parse job goes with it, and it stays cancelled.
    let (status, body) = json(
        post(&format!("/v1/documents/{doc}/cancel"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["documents"], json!([doc]));
    let parse_job = body["cancelled"][0].as_i64().expect("the parse job");
    let (_, d) = json(get(&format!("/v1/documents/{doc}")).send().await.unwrap()).await;
    assert_eq!(d["status"], "cancelled", "{d}");
    let (status, body) = json(
        post(&format!("/v1/documents/{doc}/cancel"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = json(
        http.post(format!("{}/v1/documents/{doc}/cancel", s.base))
            .bearer_auth(READER)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "cancel needs the admin scope"
    );

    // A dead letter: a job of a kind no handler works, run by hand.
    let mut c = s.driver.conn().await.unwrap();
    let mut j = JobInsertParams::new("test.nobody", json!({}));
    j.queue = "manual".into();
    let dead = c
        .job_insert_many(JobInsertManyParams { jobs: vec![j] })
        .await
        .unwrap()[0]
        .id;
    drop(c);
    let (status, body) = json(
        post("/v1/jobs/process")
            .json(&json!({ "queue": "manual", "limit": 1 }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["processed"][0]["outcome"], "failed", "{body}");

    // Run now refuses it, saying why; retrying the queued-again document's job is refused too.
    let (status, body) = json(
        post(&format!("/v1/jobs/{dead}/run-now"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"].as_str().unwrap().contains("failed"), "{body}");
    let (status, body) = json(
        post(&format!("/v1/jobs/{parse_job}/discard"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a cancelled job is no dead letter: {body}"
    );
    let (status, body) = json(
        post(&format!("/v1/jobs/{dead}/discard"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["discarded"], json!([dead]));
    let (status, _) = json(
        post(&format!("/v1/jobs/{dead}/discard"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Reprocess, then run the new parse job now (queue still paused: it stays due, unclaimed).
    let (status, _) = json(
        post(&format!("/v1/documents/{doc}/reprocess"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, body) = json(
        post("/v1/jobs/run-now")
            .json(&json!({ "queue": "default" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["run_now"].as_array().unwrap().len(), 1, "{body}");
    let (status, body) = json(
        post("/v1/jobs/run-now")
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // The audit trail: every action, newest first, under the key's name.
    let (status, audit) = json(get("/v1/audit").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let actions: Vec<&str> = audit["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec![
            "run_now",
            "reprocess",
            "discard",
            "discard",
            "discard",
            "run_now",
            "cancel",
            "cancel",
            "pause"
        ],
        "every action is recorded, those that changed nothing too: {audit}"
    );
    assert!(
        audit["actions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["actor"] == "key:ops")
    );
    let (_, of_dead) = json(get(&format!("/v1/audit?job={dead}")).send().await.unwrap()).await;
    assert_eq!(of_dead["actions"].as_array().unwrap().len(), 1, "{of_dead}");
    assert_eq!(of_dead["actions"][0]["action"], "discard");
    let (status, _) = json(
        http.get(format!("{}/v1/audit", s.base))
            .bearer_auth(READER)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the audit trail needs the admin scope"
    );
}
