//! Dashboard sessions: stored by their token's hash, ended by expiry, by logout and by
//! logout everywhere.

use chrono::Duration;
use docket_core::{SessionInsertParams, SessionStore};

use crate::harness::TestDb;

use super::{base_time, conn};

fn session(
    token: &str,
    key: &str,
    now: chrono::DateTime<chrono::Utc>,
    ttl: i64,
) -> SessionInsertParams {
    SessionInsertParams {
        token_sha256: token.repeat(64 / token.len()),
        key_name: key.to_owned(),
        now,
        expires_at: now + Duration::seconds(ttl),
    }
}

/// A session is found by its hash until it ends; inserting prunes ended ones; logout ends
/// one; logout everywhere ends every session of its key and no other.
pub async fn sessions_live_until_they_end_or_are_ended<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let a = session("a", "ops", t0, 60);
    c.session_insert(&a).await.unwrap();
    let got = c.session_get(&a.token_sha256, t0).await.unwrap().unwrap();
    assert_eq!(
        (got.key_name.as_str(), got.created_at, got.expires_at),
        ("ops", t0, t0 + Duration::seconds(60))
    );
    assert!(
        c.session_get(&a.token_sha256, t0 + Duration::seconds(60))
            .await
            .unwrap()
            .is_none(),
        "ended at its expiry"
    );
    assert!(c.session_get(&"f".repeat(64), t0).await.unwrap().is_none());
    // The same token twice is refused (tokens are random: a repeat is a bug).
    assert!(c.session_insert(&a).await.is_err());

    // Another key's sessions, and a second of the first key's.
    let b = session("b", "ops", t0, 3600);
    let other = session("c", "oncall", t0, 3600);
    c.session_insert(&b).await.unwrap();
    c.session_insert(&other).await.unwrap();
    assert!(c.session_delete(&b.token_sha256).await.unwrap());
    assert!(
        !c.session_delete(&b.token_sha256).await.unwrap(),
        "already ended"
    );
    assert!(c.session_get(&b.token_sha256, t0).await.unwrap().is_none());

    // An insert after `a` ended prunes it.
    let later = t0 + Duration::seconds(120);
    let d = session("d", "ops", later, 3600);
    c.session_insert(&d).await.unwrap();
    assert!(!c.session_delete(&a.token_sha256).await.unwrap(), "pruned");

    let e = session("e", "ops", later, 3600);
    c.session_insert(&e).await.unwrap();
    assert_eq!(c.session_delete_for_key("ops").await.unwrap(), 2);
    assert!(
        c.session_get(&d.token_sha256, later)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        c.session_get(&e.token_sha256, later)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        c.session_get(&other.token_sha256, later)
            .await
            .unwrap()
            .is_some(),
        "another key's session stays"
    );
    assert_eq!(c.session_delete_for_key("nobody").await.unwrap(), 0);
}
