//! Transactions and wake-ups.

use docket_core::{JobState, QueueDriver, Transaction};

use crate::harness::TestDb;

use super::{
    WAKE_TIMEOUT, add, all_jobs, base_time, claim, conn, fired, get, gone, ids_of, job, settle,
};

/// A transaction's insert is invisible to other connections until commit.
pub async fn transaction_commit_visibility<T: TestDb>(db: &T) {
    let other = db.connect_again().await;
    let t0 = base_time();
    let mut tx = db.driver().begin().await.expect("begin");
    let id = add(&mut tx, job("tx", "tx", t0)).await;
    assert_eq!(
        get(&mut tx, id).await.status,
        JobState::Queued,
        "the tx sees its own insert"
    );
    let got = claim(&mut tx, "tx", "w", 10, t0).await;
    assert_eq!(ids_of(&got), vec![id], "the tx can claim its own insert");
    {
        let mut oc = other.conn().await.expect("other conn");
        assert!(
            gone(&mut oc, id).await,
            "uncommitted job visible to another connection"
        );
        assert!(
            all_jobs(&mut oc).await.is_empty(),
            "uncommitted jobs listed elsewhere"
        );
    }
    tx.commit().await.expect("commit");
    let mut oc = other.conn().await.expect("other conn");
    let j = get(&mut oc, id).await;
    assert_eq!(
        (j.status, j.attempts),
        (JobState::Running, 1),
        "committed state"
    );
}

/// Rolling back (or dropping) a transaction discards its work.
pub async fn transaction_rollback<T: TestDb>(db: &T) {
    let t0 = base_time();
    let kept = {
        let mut c = conn(db).await;
        add(&mut c, job("tx", "kept", t0)).await
    };

    let mut tx = db.driver().begin().await.expect("begin");
    let id = add(&mut tx, job("tx", "tx", t0)).await;
    claim(&mut tx, "kept", "w", 1, t0).await;
    tx.rollback().await.expect("rollback");
    {
        let mut c = conn(db).await;
        assert!(gone(&mut c, id).await, "rolled-back insert persisted");
        let j = get(&mut c, kept).await;
        assert_eq!(
            (j.status, j.attempts),
            (JobState::Queued, 0),
            "rolled-back claim persisted"
        );
    }

    let mut tx = db.driver().begin().await.expect("begin");
    let dropped = add(&mut tx, job("tx", "tx", t0)).await;
    drop(tx);
    let mut c = conn(db).await;
    assert!(
        gone(&mut c, dropped).await,
        "a dropped transaction's insert persisted"
    );
    assert_eq!(ids_of(&all_jobs(&mut c).await), vec![kept]);
}

/// `wakeups()` fires after a committed insert (not before, not on rollback) and after a
/// plain insert.
pub async fn wakeups<T: TestDb>(db: &T) {
    let t0 = base_time();
    let w = db.driver().wakeups();

    // A transaction: nothing before commit, a wake-up after.
    let n = w.notify().notified();
    tokio::pin!(n);
    n.as_mut().enable();
    let mut tx = db.driver().begin().await.expect("begin");
    add(&mut tx, job("wake", "wake", t0)).await;
    settle().await;
    assert!(
        !fired(n.as_mut()).await,
        "woken before the transaction committed"
    );
    tx.commit().await.expect("commit");
    tokio::time::timeout(WAKE_TIMEOUT, n)
        .await
        .expect("no wake-up after a committed insert");

    // Rolled back: no wake-up.
    let n = w.notify().notified();
    tokio::pin!(n);
    n.as_mut().enable();
    let mut tx = db.driver().begin().await.expect("begin");
    add(&mut tx, job("wake", "wake", t0)).await;
    tx.rollback().await.expect("rollback");
    settle().await;
    assert!(!fired(n.as_mut()).await, "woken by a rolled-back insert");

    // A plain insert.
    let n = w.notify().notified();
    tokio::pin!(n);
    n.as_mut().enable();
    {
        let mut c = conn(db).await;
        add(&mut c, job("wake", "wake", t0)).await;
    }
    tokio::time::timeout(WAKE_TIMEOUT, n)
        .await
        .expect("no wake-up after a plain insert");
}

/// `broadcasts()` hands every published message to every subscriber of this driver, in order
/// (PostgreSQL carries them through the server; see the PostgreSQL-only cross-process test).
pub async fn broadcasts<T: TestDb>(db: &T) {
    let b = db.driver().broadcasts();
    let mut first = b.subscribe();
    let mut second = b.subscribe();
    let sent: Vec<String> = (0..20).map(|i| format!("{{\"n\":{i}}}")).collect();
    for m in &sent {
        b.publish(m.clone());
    }
    for rx in [&mut first, &mut second] {
        for want in &sent {
            let got = tokio::time::timeout(WAKE_TIMEOUT, rx.recv())
                .await
                .expect("a published broadcast never arrived")
                .expect("receive");
            assert_eq!(&*got, want.as_str(), "broadcasts arrive in order");
        }
    }
}
