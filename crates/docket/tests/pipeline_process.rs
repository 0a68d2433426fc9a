//! The pipeline in real `docket worker` processes on PostgreSQL: hostile files through the
//! isolated parser, and a worker killed in the middle of a stage.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{Db, wait_until, worker};
use docket_core::{DocumentStatus, DocumentStore, QueueDriver};
use docket_pipeline::blob::ObjectStoreBlobs;
use docket_pipeline::config::{ChunkConfig, StagesConfig};
use docket_pipeline::notify::Notifier;
use docket_pipeline::progress::ProgressHub;
use docket_pipeline::{NewDocument, ParseSettings, Pipeline, PipelineParts};
use docket_postgres::{PgDriver, PgOptions};

const SIGKILL: i32 = 9;

fn corpus(name: &str) -> Bytes {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docket-parse/tests/corpus")
        .join(name);
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// A pipeline handle in the test process, to submit documents the workers then process.
async fn submitter(db: &Db) -> Pipeline<PgDriver> {
    let st = common::docket()
        .arg("migrate")
        .env("DOCKET_DATABASE_URL", &db.url)
        .status()
        .unwrap();
    assert!(st.success());
    let driver = PgDriver::connect(&PgOptions::new(db.url.clone())).unwrap();
    Pipeline::new(PipelineParts {
        driver,
        blobs: Arc::new(ObjectStoreBlobs::local(&db.blob_dir).unwrap()),
        embedder: docket_embed::build(&Default::default()).await.unwrap(),
        parse: ParseSettings {
            limits: Default::default(),
            isolation: None,
        },
        chunk: ChunkConfig::default(),
        stages: StagesConfig::default(),
        max_file_bytes: 64 << 20,
        notifier: Notifier::none(),
        progress: ProgressHub::default(),
    })
    .unwrap()
}

async fn submit(p: &Pipeline<PgDriver>, name: &str, bytes: Bytes) -> uuid::Uuid {
    p.submit(NewDocument {
        bytes,
        filename: Some(name.to_owned()),
        ..Default::default()
    })
    .await
    .unwrap()
    .document
    .id
}

async fn status(p: &Pipeline<PgDriver>, id: uuid::Uuid) -> docket_core::DocumentRow {
    let mut c = p.driver().conn().await.unwrap();
    c.document_get(id).await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_files_fail_in_the_isolated_parser_and_the_worker_stays_up() {
    let db = Db::new().await;
    let p = submitter(&db).await;
    let mut w = worker(
        &db,
        "parser",
        &[
            ("DOCKET_PARSE__TIMEOUT_MS", "5000"),
            ("DOCKET_PARSE__MEMORY_MB", "512"),
        ],
    );
    let hostile = [
        "hostile/loop.pdf",
        "hostile/corrupt.pdf",
        "hostile/truncated.pdf",
        "hostile/bomb.docx",
        "hostile/deep.html",
        "hostile/garbage.txt",
        "hostile/invalid-utf8.json",
    ];
    let mut ids = Vec::new();
    for name in hostile {
        ids.push((name, submit(&p, name, corpus(name)).await));
    }
    let good = submit(&p, "report.pdf", corpus("report.pdf")).await;
    wait_until(
        Duration::from_secs(120),
        "every document finishes",
        || async {
            db.scalar("SELECT count(*) FROM documents WHERE status NOT IN ('completed', 'failed')")
                .await
                == 0
        },
    )
    .await;
    for (name, id) in ids {
        let d = status(&p, id).await;
        // A parser may recover text from a damaged file; what it must never do is hang,
        // crash the worker or retry forever.
        if d.status == DocumentStatus::Failed {
            assert_eq!(d.error_stage.as_deref(), Some("parse"), "{name}");
            let e = d.error.unwrap_or_default();
            assert!(e.len() > 10, "{name}: unclear error {e:?}");
            eprintln!("{name}: {e}");
        }
        let attempts = db
            .scalar(&format!(
                "SELECT count(*) FROM job_attempts a JOIN processing_jobs j ON j.id = a.job_id \
                 WHERE j.document_id = '{id}' AND j.job_type = 'docket.parse'"
            ))
            .await;
        assert_eq!(attempts, 1, "{name}: parsed more than once");
    }
    for name in ["hostile/bomb.docx", "hostile/garbage.txt"] {
        let id = ids_of(&db, name).await;
        assert_eq!(
            status(&p, id).await.status,
            DocumentStatus::Failed,
            "{name}"
        );
    }
    assert_eq!(status(&p, good).await.status, DocumentStatus::Completed);
    assert!(w.0.try_wait().unwrap().is_none(), "the worker died");
    db.drop().await;
}

async fn ids_of(db: &Db, name: &str) -> uuid::Uuid {
    sqlx::query_scalar("SELECT id FROM documents WHERE filename = $1")
        .bind(name)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_while_embedding_leaves_no_duplicate_chunks() {
    let db = Db::new().await;
    let p = submitter(&db).await;
    // Small chunks, one chunk per embedding round trip: the embed stage takes seconds.
    let slow = [
        ("DOCKET_CHUNK__MAX_TOKENS", "12"),
        ("DOCKET_CHUNK__OVERLAP_TOKENS", "0"),
        ("DOCKET_PIPELINE__EMBED_PAGE", "1"),
    ];
    let mut text = String::new();
    for i in 0..2500 {
        text.push_str(&format!(
            "Sentence number {i} talks about rivers, harbours and the people who mend boats.\n\n"
        ));
    }
    let mut victim = worker(&db, "victim", &slow);
    let id = submit(&p, "long.txt", Bytes::from(text)).await;
    wait_until(Duration::from_secs(120), "embedding is under way", || async {
        db.scalar(&format!(
            "SELECT count(*) FROM documents WHERE id = '{id}' AND status = 'embedding' AND progress > 35"
        ))
        .await
            == 1
    })
    .await;
    victim.signal(SIGKILL);
    victim.wait_exit(Duration::from_secs(10));
    let done_before = db
        .scalar(&format!(
            "SELECT count(*) FROM document_chunks WHERE document_id = '{id}' AND embedding IS NOT NULL"
        ))
        .await;

    let _rescuer = worker(&db, "rescuer", &slow);
    wait_until(
        Duration::from_secs(180),
        "the document completes",
        || async {
            db.scalar(&format!(
                "SELECT count(*) FROM documents WHERE id = '{id}' AND status = 'completed'"
            ))
            .await
                == 1
        },
    )
    .await;
    let d = status(&p, id).await;
    let rows = db
        .scalar(&format!(
            "SELECT count(*) FROM document_chunks WHERE document_id = '{id}'"
        ))
        .await;
    let distinct = db
        .scalar(&format!(
            "SELECT count(DISTINCT (generation, chunk_index)) FROM document_chunks WHERE document_id = '{id}'"
        ))
        .await;
    let embedded = db
        .scalar(&format!(
            "SELECT count(*) FROM document_chunks WHERE document_id = '{id}' AND embedding IS NOT NULL"
        ))
        .await;
    assert!(d.chunk_count > 500, "{}", d.chunk_count);
    assert_eq!(rows, d.chunk_count as i64);
    assert_eq!(distinct, rows, "duplicate chunks");
    assert_eq!(embedded, rows);
    assert!(
        done_before > 0 && done_before < rows,
        "killed mid-stage: {done_before}/{rows}"
    );
    // The embed job: rescued from the victim, completed by the rescuer.
    let outcomes: Vec<(String, String)> = sqlx::query_as(
        "SELECT a.worker_id, a.outcome FROM job_attempts a JOIN processing_jobs j ON j.id = a.job_id \
         WHERE j.document_id = $1 AND j.job_type = 'docket.embed' ORDER BY a.attempt",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        outcomes,
        vec![
            ("victim".to_owned(), "rescued".to_owned()),
            ("rescuer".to_owned(), "completed".to_owned())
        ]
    );
    db.drop().await;
}
