//! Full-text search over chunk text: active generations only, stemmed, ranked, filtered by
//! document, safe with any query, and in step with chunk writes and deletes.

use docket_core::{
    ChunkInsert, ChunkTextSearchParams, DocumentFilterParams, DocumentInsertParams,
    DocumentReprocessParams, DocumentSource, DocumentStore, Executor,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::TestDb;

use super::documents::{activated, new_doc, replace};
use super::{base_time, conn};

fn chunks(texts: &[&str]) -> Vec<ChunkInsert> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| ChunkInsert {
            chunk_index: i as i32,
            text: (*t).to_owned(),
            char_start: i as i32 * 100,
            char_end: i as i32 * 100 + t.chars().count() as i32,
            token_count: 5,
            heading_path: vec![],
            page: None,
        })
        .collect()
}

async fn found<E: Executor>(c: &mut E, query: &str, k: i64, ids: Option<Vec<Uuid>>) -> Vec<i64> {
    c.chunk_text_search(&ChunkTextSearchParams {
        query: query.to_owned(),
        k,
        document_ids: ids,
    })
    .await
    .unwrap_or_else(|e| panic!("chunk_text_search {query:?}: {e}"))
    .into_iter()
    .map(|h| h.id)
    .collect()
}

async fn ids_of<E: Executor>(c: &mut E, id: Uuid, generation: i32) -> Vec<i64> {
    c.chunk_list(docket_core::ChunkListParams {
        document_id: id,
        generation: Some(generation),
        limit: 100,
        offset: 0,
    })
    .await
    .unwrap()
    .into_iter()
    .map(|c| c.id)
    .collect()
}

fn sorted(mut v: Vec<i64>) -> Vec<i64> {
    v.sort_unstable();
    v
}

/// `chunk_text_search`: the chunks of active generations that have any of the query's words
/// (stemmed), the most matching first, within `k` and the document filter; another
/// generation's chunks and never-activated documents' are not found; operators and quotes
/// in the query are plain words; a query without words finds nothing; chunks written,
/// activated and deleted (with their document) are found and gone accordingly.
pub async fn chunk_text_search_ranks_active_chunks<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let a = new_doc(&mut c, t0).await;
    replace(
        &mut c,
        a.id,
        1,
        &chunks(&[
            "The ferry leaves at dawn on Tuesdays.",
            "Running the migrations takes a few minutes.",
            "ferry ferry ferry: the ferry schedule",
            "Nothing to see here.",
        ]),
    )
    .await;
    activated(&mut c, a.id, 1, 4, t0).await;
    let a_ids = ids_of(&mut c, a.id, 1).await;

    let b = new_doc(&mut c, t0 + chrono::Duration::seconds(1)).await;
    replace(
        &mut c,
        b.id,
        1,
        &chunks(&["The ferry timetable, in print."]),
    )
    .await;
    activated(&mut c, b.id, 1, 1, t0).await;
    c.document_reprocess(&DocumentReprocessParams {
        id: b.id,
        now: None,
    })
    .await
    .unwrap()
    .expect("reprocess");
    replace(
        &mut c,
        b.id,
        2,
        &chunks(&["A secret ferry, not yet searchable."]),
    )
    .await;
    let b1 = ids_of(&mut c, b.id, 1).await;
    let b2 = ids_of(&mut c, b.id, 2).await;

    let never = new_doc(&mut c, t0 + chrono::Duration::seconds(2)).await;
    replace(&mut c, never.id, 1, &chunks(&["An unseen ferry."])).await;

    let ferry = found(&mut c, "ferry", 10, None).await;
    assert_eq!(
        sorted(ferry.clone()),
        sorted(vec![a_ids[0], a_ids[2], b1[0]]),
        "active generations only"
    );
    assert_eq!(ferry[0], a_ids[2], "the chunk with the most matches first");
    assert_eq!(found(&mut c, "ferry", 1, None).await, vec![a_ids[2]]);
    assert_eq!(found(&mut c, "ferry", 0, None).await, Vec::<i64>::new());
    assert_eq!(
        found(&mut c, "run migration", 10, None).await,
        vec![a_ids[1]],
        "stemmed: run finds Running, migration finds migrations"
    );
    assert_eq!(
        found(&mut c, "FERRY", 10, Some(vec![b.id])).await,
        b1,
        "filtered by document, case-insensitive"
    );
    assert!(found(&mut c, "ferry", 10, Some(vec![])).await.is_empty());
    // Any query is words: quotes, operators and syntax of either backend change nothing.
    for hostile in [
        r#""ferry" OR NEAR(* :"#,
        "ferry AND NOT ferry",
        "ferry & !timetable | (",
        "-ferry*",
        "'ferry'); DROP TABLE documents; --",
    ] {
        let hits = found(&mut c, hostile, 10, None).await;
        assert!(hits.contains(&a_ids[2]), "{hostile}: {hits:?}");
    }
    assert!(found(&mut c, " ...  \"\" ", 10, None).await.is_empty());
    assert!(found(&mut c, "zeppelin", 10, None).await.is_empty());

    // Generation 2 becomes the active one: its chunks are found, generation 1's are gone.
    activated(&mut c, b.id, 2, 1, t0).await;
    assert_eq!(found(&mut c, "secret", 10, None).await, b2);
    assert!(found(&mut c, "timetable", 10, None).await.is_empty());

    // A deleted document's chunks go with it.
    assert!(c.document_delete(a.id).await.unwrap());
    assert_eq!(
        sorted(found(&mut c, "ferry", 10, None).await),
        b2,
        "only the other document's"
    );
    assert!(matches!(
        c.chunk_text_search(&ChunkTextSearchParams {
            query: "ferry".into(),
            k: -1,
            document_ids: None,
        })
        .await,
        Err(docket_core::Error::Invalid(_))
    ));
}

/// A searchable document with this file name and metadata.
async fn named<E: Executor>(
    c: &mut E,
    at: chrono::DateTime<chrono::Utc>,
    filename: Option<&str>,
    metadata: Value,
    active: bool,
) -> Uuid {
    let id = Uuid::now_v7();
    let d = c
        .document_insert(&DocumentInsertParams {
            id,
            source: DocumentSource::Upload,
            filename: filename.map(str::to_owned),
            content_type: None,
            size_bytes: 1,
            sha256: format!("{:032x}", id.as_u128()).repeat(2),
            storage_key: format!("originals/{id}"),
            callback_url: None,
            metadata,
            priority: 0,
            now: Some(at),
        })
        .await
        .unwrap();
    replace(c, d.id, 1, &chunks(&["some text"])).await;
    if active {
        activated(c, d.id, 1, 1, at).await;
    }
    d.id
}

/// `document_filter`: searchable documents whose file name contains the text (either case)
/// and whose metadata contains the object, as `jsonb @>` decides, on every backend; both
/// conditions together; documents never activated are not searchable; a metadata filter that
/// is not an object, or an empty file name, is refused.
pub async fn document_filter_by_filename_and_metadata<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let report = named(
        &mut c,
        t0,
        Some("Q3 Report.PDF"),
        json!({"team": "ops", "year": 2026, "tags": ["finance", "q3"], "owner": {"name": "Ana"}}),
        true,
    )
    .await;
    let notes = named(
        &mut c,
        t0,
        Some("notes.txt"),
        json!({"team": "dev", "year": 2026.0}),
        true,
    )
    .await;
    let nameless = named(&mut c, t0, None, json!({"team": "ops"}), true).await;
    let _unsearchable = named(
        &mut c,
        t0,
        Some("report-draft.pdf"),
        json!({"team": "ops"}),
        false,
    )
    .await;

    let filter = |name: Option<&str>, metadata: Option<Value>| DocumentFilterParams {
        filename_contains: name.map(str::to_owned),
        metadata,
    };
    let mut all = vec![report, notes, nameless];
    all.sort();
    for (f, want) in [
        (filter(None, None), all.clone()),
        (filter(Some("report"), None), vec![report]),
        (filter(Some(".pdf"), None), vec![report]),
        (filter(Some("NOTES"), None), vec![notes]),
        (filter(None, Some(json!({"team": "ops"}))), {
            let mut v = vec![report, nameless];
            v.sort();
            v
        }),
        (filter(None, Some(json!({"year": 2026}))), {
            let mut v = vec![report, notes];
            v.sort();
            v
        }),
        (filter(None, Some(json!({"tags": ["q3"]}))), vec![report]),
        (filter(None, Some(json!({"tags": "q3"}))), vec![]),
        (
            filter(None, Some(json!({"owner": {"name": "Ana"}}))),
            vec![report],
        ),
        (
            filter(None, Some(json!({"owner": {"name": "ana"}}))),
            vec![],
        ),
        (
            filter(None, Some(json!({"team": "ops", "missing": 1}))),
            vec![],
        ),
        (filter(None, Some(json!({}))), all.clone()),
        (filter(Some("report"), Some(json!({"team": "dev"}))), vec![]),
        (filter(Some("o"), Some(json!({"team": "dev"}))), vec![notes]),
    ] {
        let got = c.document_filter(&f).await.unwrap();
        assert_eq!(got, want, "{f:?}");
    }
    for bad in [filter(None, Some(json!(["ops"]))), filter(Some(""), None)] {
        assert!(
            matches!(
                c.document_filter(&bad).await,
                Err(docket_core::Error::Invalid(_))
            ),
            "{bad:?}"
        );
    }
}
