//! The seam between the engine and storage.
//!
//! A [`Driver`] hands out [`Executor`]s: a pooled connection ([`QueueDriver::conn`]) or a
//! transaction ([`QueueDriver::begin`]). Every storage operation is an executor method, so the
//! same call enqueues a job on its own or inside the caller's transaction, next to the caller's
//! own writes (a pipeline stage's outputs, its completion and the next stage's job commit
//! together).
//!
//! The seam has three parts: [`QueueExecutor`] (the queue), [`DocumentStore`] (documents,
//! chunks, vectors) and [`MonitorStore`] (alerts), so a queue-only backend implements only
//! the first, with [`QueueDriver`].

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, broadcast, mpsc};
use uuid::Uuid;

use crate::*;

/// A storage backend for the queue: hands out connections and transactions that implement
/// [`QueueExecutor`]. [`Driver`] adds the document store.
///
/// **Hold one executor per task at a time.** SQLite allows one writer, and its driver keeps a
/// single connection: a task that holds a connection or transaction and asks for another waits
/// for itself until the acquire timeout. Do everything a transaction needs through the
/// transaction.
pub trait QueueDriver: Clone + Send + Sync + 'static {
    /// A pooled connection that runs each call on its own.
    type Conn: QueueExecutor;
    /// A transaction: calls commit together, or not at all.
    type Tx: Transaction;

    /// `postgres` or `sqlite`.
    fn name(&self) -> &'static str;

    /// A connection from the pool.
    fn conn(&self) -> impl Future<Output = Result<Self::Conn>> + Send;

    /// A connection for liveness work (heartbeats, leader election) that never waits behind
    /// handlers holding the pool's connections: a worker whose handlers are busy must still
    /// renew its lease. PostgreSQL keeps a separate small pool for it; SQLite, with its single
    /// connection, hands out the usual one.
    fn control_conn(&self) -> impl Future<Output = Result<Self::Conn>> + Send;

    /// Begins a transaction.
    fn begin(&self) -> impl Future<Output = Result<Self::Tx>> + Send;

    /// Applies the driver's migrations (idempotent).
    fn migrate(&self) -> impl Future<Output = Result<()>> + Send;

    /// The versions of this build's migrations that the database has not applied (empty when
    /// the schema is current).
    fn pending_migrations(&self) -> impl Future<Output = Result<Vec<i64>>> + Send;

    /// The signal raised when jobs are inserted, by this process or (PostgreSQL) any other.
    fn wakeups(&self) -> Wakeups;

    /// Messages for every process that shares the database (progress events, for one).
    fn broadcasts(&self) -> Broadcasts;

    /// Whether the database answers a trivial query.
    fn ping(&self) -> impl Future<Output = Result<()>> + Send;
}

/// A full backend, PostgreSQL or SQLite: a [`QueueDriver`] whose connections and transactions
/// are also a [`DocumentStore`]. Every such driver is one.
pub trait Driver:
    QueueDriver<
        Conn: DocumentStore + MonitorStore + SessionStore,
        Tx: DocumentStore + MonitorStore + SessionStore,
    >
{
}

impl<D> Driver for D
where
    D: QueueDriver,
    D::Conn: DocumentStore + MonitorStore + SessionStore,
    D::Tx: DocumentStore + MonitorStore + SessionStore,
{
}

/// Commit or roll back.
pub trait Transaction: QueueExecutor {
    /// Commits every call made through this transaction.
    fn commit(self) -> impl Future<Output = Result<()>> + Send;
    /// Discards them.
    fn rollback(self) -> impl Future<Output = Result<()>> + Send;
}

/// A wake-up signal for workers waiting on an empty queue.
///
/// Only a hint: workers poll as a fallback, so a lost wake-up costs latency, never a job.
#[derive(Debug, Clone, Default)]
pub struct Wakeups(Arc<Notify>);

impl Wakeups {
    /// Wakes every waiter registered before this call.
    pub fn wake(&self) {
        self.0.notify_waiters();
    }

    /// The underlying signal; create `notified()` *before* checking for work, so that a
    /// wake-up between the check and the wait is not missed.
    pub fn notify(&self) -> &Notify {
        &self.0
    }
}

/// Messages for every process that shares the database: PostgreSQL carries them by
/// `NOTIFY`; SQLite, which one process owns, within the process.
///
/// Delivery is at most once and only to processes listening at the time: a hint that saves
/// readers from polling, never the record (that is in the tables).
#[derive(Debug, Clone)]
pub struct Broadcasts {
    received: broadcast::Sender<Arc<str>>,
    outbound: Option<mpsc::UnboundedSender<String>>,
}

impl Broadcasts {
    /// Messages that stay in this process; subscribers keep up to `capacity` unread.
    pub fn local(capacity: usize) -> Self {
        Self {
            received: broadcast::channel(capacity.max(1)).0,
            outbound: None,
        }
    }

    /// Messages a driver carries to other processes: it takes what [`Broadcasts::publish`]
    /// sends from the returned receiver, and hands what arrives from *other* processes to
    /// [`Broadcasts::deliver`] (this process's subscribers already heard its own).
    pub fn carried(capacity: usize) -> (Self, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Self {
                received: broadcast::channel(capacity.max(1)).0,
                outbound: Some(tx),
            },
            rx,
        )
    }

    /// Sends a message to every subscriber in every process. This process's subscribers hear
    /// it at once, whether or not the carrier is connected.
    pub fn publish(&self, message: String) {
        let message: Arc<str> = Arc::from(message);
        if let Some(tx) = &self.outbound {
            // A stopped carrier only means other processes miss it.
            let _ = tx.send(message.to_string());
        }
        self.deliver(message);
    }

    /// Hands a received message to this process's subscribers (dropped when there are none).
    pub fn deliver(&self, message: Arc<str>) {
        let _ = self.received.send(message);
    }

    /// Every message from now on. A subscriber that falls behind skips messages
    /// (`RecvError::Lagged`).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.received.subscribe()
    }
}

/// The queue's storage operations: jobs, attempts, queues, workers, leadership, schedules and
/// the audit trail. Implemented by a driver's connection and transaction types; a queue-only
/// backend implements this alone (with [`QueueDriver`]).
///
/// The engine decides every transition (see [`CompletionOutcome::transition`] and the
/// rescuer's [`JobRescue`]s); a driver applies what it is given, guarded as each method says,
/// and interprets nothing.
pub trait QueueExecutor: Send {
    /// Enqueues jobs; results are in input order.
    fn job_insert_many(
        &mut self,
        params: JobInsertManyParams,
    ) -> impl Future<Output = Result<Vec<JobInsertResult>>> + Send;

    /// Claims up to `limit` due jobs of one queue, highest priority first, then earliest
    /// `run_at`, then lowest id; marks them running under `worker_id`, counting the attempt.
    /// Jobs of a paused queue (or while `*` is paused) are not claimed.
    fn job_get_available(
        &mut self,
        params: JobGetAvailableParams,
    ) -> impl Future<Output = Result<Vec<JobRow>>> + Send;

    /// Finalises attempts as each [`CompletionOutcome::transition`] says, each guarded by
    /// `status = 'running' AND claim_token = the claim's token`, and records a `job_attempts`
    /// row for each one applied. Returns the ids applied.
    fn job_complete_many(
        &mut self,
        params: JobCompleteManyParams,
    ) -> impl Future<Output = Result<Vec<i64>>> + Send;

    /// One job.
    fn job_get(&mut self, id: i64) -> impl Future<Output = Result<Option<JobRow>>> + Send;

    /// Jobs, newest first.
    fn job_list(
        &mut self,
        params: JobListParams,
    ) -> impl Future<Output = Result<Vec<JobRow>>> + Send;

    /// A job's attempts, oldest first.
    fn job_attempt_list(
        &mut self,
        job_id: i64,
    ) -> impl Future<Output = Result<Vec<JobAttempt>>> + Send;

    /// Retries failed or cancelled jobs by hand: due now, `max_attempts` raised by the job's
    /// attempt budget (its first `max_attempts`; attempt numbers never go back). Returns the ids
    /// requeued.
    fn job_retry(
        &mut self,
        params: JobRetryParams,
    ) -> impl Future<Output = Result<Vec<i64>>> + Send;

    /// Cancels queued, retrying or running jobs. Returns the ids cancelled. A running job's
    /// claim ends here (recorded as a `cancelled` attempt): its worker's completion is refused.
    fn job_cancel(
        &mut self,
        params: JobCancelParams,
    ) -> impl Future<Output = Result<Vec<i64>>> + Send;

    /// Applies rescues the engine decided, each only while its job still runs under the dead
    /// claim, recording a `rescued` attempt for each.
    fn job_rescue_many(
        &mut self,
        params: JobRescueManyParams,
    ) -> impl Future<Output = Result<JobRescueResult>> + Send;

    /// Of the claims given, the ids of those whose job no longer runs under them (cancelled,
    /// rescued, retried, discarded, deleted), by id.
    fn job_claims_lost(
        &mut self,
        params: JobClaimsLostParams,
    ) -> impl Future<Output = Result<Vec<i64>>> + Send;

    /// Makes queued (also scheduled) and retrying jobs due now, spending no attempt. Returns
    /// the ids changed.
    fn job_run_now(
        &mut self,
        params: JobRunNowParams,
    ) -> impl Future<Output = Result<Vec<i64>>> + Send;

    /// Deletes dead letters (failed jobs) with their attempts. Returns the ids deleted.
    fn job_discard(
        &mut self,
        params: JobDiscardParams,
    ) -> impl Future<Output = Result<Vec<i64>>> + Send;

    /// Records an operator action.
    fn audit_insert(
        &mut self,
        params: AuditInsertParams,
    ) -> impl Future<Output = Result<AuditRow>> + Send;

    /// Operator actions, newest first.
    fn audit_list(
        &mut self,
        params: AuditListParams,
    ) -> impl Future<Output = Result<Vec<AuditRow>>> + Send;

    /// Running jobs whose worker's lease lapsed at `params.now` (by the lease the worker wrote),
    /// or whose worker row is gone: the rows of the `stuck_jobs` view, newest job first. These
    /// are the rescuer's candidates ([`QueueExecutor::job_rescue_many`]).
    fn job_list_stuck(
        &mut self,
        params: JobListStuckParams,
    ) -> impl Future<Output = Result<Vec<StuckJobRow>>> + Send;

    /// Deletes finished jobs older than the cut-offs. Returns how many.
    fn job_delete_finished(
        &mut self,
        params: JobDeleteFinishedParams,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Rows of the `job_queue_stats` view.
    fn job_stats(&mut self) -> impl Future<Output = Result<Vec<JobStatRow>>> + Send;

    /// Jobs completed and attempts that dead-lettered their job in the last minute and hour
    /// (see [`JobActivityRow::failed_last_hour`]), and the oldest due job's wait, per kind and
    /// queue (kinds with none of these are left out).
    fn job_activity(
        &mut self,
        params: JobActivityParams,
    ) -> impl Future<Output = Result<Vec<JobActivityRow>>> + Send;

    /// Jobs completed and attempts that dead-lettered their job (counted as in
    /// [`QueueExecutor::job_activity`]) per minute from `since` to `now`, oldest minute first;
    /// minutes in which nothing finished are left out.
    fn job_throughput(
        &mut self,
        params: JobThroughputParams,
    ) -> impl Future<Output = Result<Vec<JobThroughputRow>>> + Send;

    /// Pauses or resumes a queue.
    fn queue_set_paused(
        &mut self,
        params: QueueSetPausedParams,
    ) -> impl Future<Output = Result<QueueRow>> + Send;

    /// Queues with a control row.
    fn queue_list(&mut self) -> impl Future<Output = Result<Vec<QueueRow>>> + Send;

    /// Records a worker's heartbeat (creating its row on the first one).
    fn worker_heartbeat(
        &mut self,
        params: WorkerHeartbeatParams,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Removes a worker's row (on shutdown).
    fn worker_delete(&mut self, id: &str) -> impl Future<Output = Result<()>> + Send;

    /// Workers, most recent heartbeat first, each judged live or dead by its own lease at
    /// `params.now`.
    fn worker_list(
        &mut self,
        params: WorkerListParams,
    ) -> impl Future<Output = Result<Vec<WorkerRow>>> + Send;

    /// Removes rows of dead workers (their own lease lapsed at `params.now`) that hold no
    /// running job: the rescuer takes their jobs back first. Returns how many.
    fn worker_delete_stale(
        &mut self,
        params: WorkerDeleteStaleParams,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Becomes leader if there is none or the leader's term lapsed, or renews the term of the
    /// current leader. Returns whether `leader_id` leads.
    fn leader_attempt_elect(
        &mut self,
        params: LeaderElectParams,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Gives up leadership, if held.
    fn leader_resign(&mut self, leader_id: &str) -> impl Future<Output = Result<()>> + Send;

    /// The current leader, if its term has not lapsed at `now`.
    fn leader_get(
        &mut self,
        now: Option<DateTime<Utc>>,
    ) -> impl Future<Output = Result<Option<LeaderRow>>> + Send;

    /// Creates or updates a schedule.
    fn cron_schedule_upsert(
        &mut self,
        params: CronScheduleUpsertParams,
    ) -> impl Future<Output = Result<CronSchedule>> + Send;

    /// Every schedule, by name.
    fn cron_schedule_list(&mut self) -> impl Future<Output = Result<Vec<CronSchedule>>> + Send;

    /// The enabled schedules whose `next_run_at` has come, by name, and the time that decided
    /// it (the database's clock unless the params name one).
    fn cron_schedule_due(
        &mut self,
        params: CronScheduleDueParams,
    ) -> impl Future<Output = Result<CronScheduleDue>> + Send;

    /// Enqueues one occurrence: advances the schedule, inserts the job and the run row, all or
    /// nothing. Returns `None` when another node already did it, or, for a manual run
    /// (`expected_next_run_at` `None`), when a run of the schedule is live: its job is queued,
    /// running or retrying. That check and the insert are atomic: of two manual runs at once,
    /// one is refused.
    fn cron_run_enqueue(
        &mut self,
        params: CronRunEnqueueParams,
    ) -> impl Future<Output = Result<Option<CronRun>>> + Send;

    /// Runs, newest first.
    fn cron_run_list(
        &mut self,
        params: CronRunListParams,
    ) -> impl Future<Output = Result<Vec<CronRun>>> + Send;

    /// Copies the state of unfinished runs' jobs onto their run rows. Returns rows changed.
    fn cron_run_sync(&mut self) -> impl Future<Output = Result<u64>> + Send;
}

/// The document store: documents, their texts, chunks and vectors. Implemented beside
/// [`QueueExecutor`] by backends that run docket's pipeline, on the same connections and
/// transactions, so a stage's writes commit with its job's completion.
pub trait DocumentStore: Send {
    /// Stores a new document: `queued`, progress 0, generation 1. Returns the stored row, or,
    /// when a document with the same `sha256` exists (one document per content, also under
    /// concurrent uploads), that document unchanged: compare ids to tell.
    fn document_insert(
        &mut self,
        params: &DocumentInsertParams,
    ) -> impl Future<Output = Result<DocumentRow>> + Send;

    /// One document.
    fn document_get(
        &mut self,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<DocumentRow>>> + Send;

    /// The newest document (by `created_at`, then id) whose original has this SHA-256.
    fn document_find_by_sha256(
        &mut self,
        sha256: &str,
    ) -> impl Future<Output = Result<Option<DocumentRow>>> + Send;

    /// Documents, newest first (by id), filtered, paged by id.
    fn document_list(
        &mut self,
        params: &DocumentListParams,
    ) -> impl Future<Output = Result<Vec<DocumentRow>>> + Send;

    /// Moves a document to a stage, if it is still at the caller's generation. Returns whether
    /// it was.
    fn document_set_stage(
        &mut self,
        params: &DocumentStageParams,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Raises a document's progress, if it is still at the caller's generation and not
    /// completed or failed. Returns whether it was (whether or not the progress rose).
    fn document_set_progress(
        &mut self,
        params: &DocumentProgressParams,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Marks a document failed, if it is still at the caller's generation. Returns whether it
    /// was.
    fn document_fail(
        &mut self,
        params: &DocumentFailParams,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Cancels documents that have not finished (completed, failed or cancelled ones are left
    /// alone). Returns the ids cancelled. Stage writes leave a cancelled document as it is;
    /// only [`DocumentStore::document_reprocess`] starts it again.
    fn document_cancel(
        &mut self,
        params: &DocumentCancelParams,
    ) -> impl Future<Output = Result<Vec<Uuid>>> + Send;

    /// Makes a generation the searchable one and deletes every other generation's texts and
    /// chunks, all or nothing (inside a transaction, together with the caller's other writes).
    /// Returns false, changing nothing, when the document is gone or at another generation.
    fn document_activate(
        &mut self,
        params: &DocumentActivateParams,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Starts a new generation of a document. Returns the updated row, `None` when it is gone.
    fn document_reprocess(
        &mut self,
        params: &DocumentReprocessParams,
    ) -> impl Future<Output = Result<Option<DocumentRow>>> + Send;

    /// Searchable documents (those with an active generation), counted by the embedder that
    /// made their active vectors and by whether they have finished processing.
    fn document_embedders(&mut self) -> impl Future<Output = Result<Vec<EmbedderCount>>> + Send;

    /// Records `embedder_fingerprint` for searchable documents that have none and whose
    /// embedder has this name (vectors made before fingerprints were recorded). Returns how
    /// many.
    fn document_embedder_adopt(
        &mut self,
        params: &EmbedderAdoptParams,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Starts re-embedding up to `limit` finished documents whose active vectors another
    /// embedder made; see [`DocumentReembedParams`]. Returns their updated rows.
    fn document_reembed(
        &mut self,
        params: &DocumentReembedParams,
    ) -> impl Future<Output = Result<Vec<DocumentRow>>> + Send;

    /// Deletes a document with its texts and chunks. Returns whether it existed.
    fn document_delete(&mut self, id: Uuid) -> impl Future<Output = Result<bool>> + Send;

    /// Which of `ids` are stored documents, in no particular order (at most 1,000 ids a
    /// call). The blob sweep asks it of the documents its stored originals are named after.
    fn document_ids_present(
        &mut self,
        ids: &[Uuid],
    ) -> impl Future<Output = Result<Vec<Uuid>>> + Send;

    /// Unfinished documents that nothing is working on; see [`StuckDocumentsParams`].
    fn document_list_stuck(
        &mut self,
        params: &StuckDocumentsParams,
    ) -> impl Future<Output = Result<Vec<DocumentRow>>> + Send;

    /// Stores a generation's parsed text, replacing one stored before.
    fn document_text_upsert(
        &mut self,
        text: &DocumentText,
    ) -> impl Future<Output = Result<()>> + Send;

    /// A generation's parsed text.
    fn document_text_get(
        &mut self,
        key: GenerationKey,
    ) -> impl Future<Output = Result<Option<DocumentText>>> + Send;

    /// Replaces a generation's chunks with `chunks` (without embeddings), all or nothing:
    /// running it twice leaves the same rows. Returns how many were inserted.
    fn chunk_replace(
        &mut self,
        params: ChunkReplaceParams<'_>,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// A generation's chunks (`None`: the active one; none while nothing is active), by
    /// `chunk_index`.
    fn chunk_list(
        &mut self,
        params: ChunkListParams,
    ) -> impl Future<Output = Result<Vec<ChunkRow>>> + Send;

    /// A generation's chunks without an embedding, by `chunk_index`.
    fn chunk_list_unembedded(
        &mut self,
        params: ChunkListUnembeddedParams,
    ) -> impl Future<Output = Result<Vec<ChunkRow>>> + Send;

    /// Stores embeddings by chunk id ([`encode_vector`]'s encoding). Returns how many chunks
    /// were updated (ids of chunks that are gone are skipped).
    fn chunk_set_embeddings(
        &mut self,
        embeddings: &[(i64, Vec<f32>)],
    ) -> impl Future<Output = Result<u64>> + Send;

    /// `(embedded, total)` chunks of a generation.
    fn chunk_count_embedded(
        &mut self,
        key: GenerationKey,
    ) -> impl Future<Output = Result<(i64, i64)>> + Send;

    /// The log of changes to what vector search ranks, after a cursor, in the order they
    /// committed: every activation, embedder adoption and deletion of a document is logged in
    /// its transaction, under a number no earlier-committing change exceeds, and a document
    /// keeps only its latest entry. An in-process vector index follows it to stay in step
    /// with the database, whichever process made the change.
    fn search_index_changes(
        &mut self,
        params: &SearchIndexChangesParams,
    ) -> impl Future<Output = Result<Vec<SearchIndexChange>>> + Send;

    /// Embedded chunks of active generations, by id, with their vectors.
    fn chunk_vectors_page(
        &mut self,
        params: &ChunkVectorPageParams,
    ) -> impl Future<Output = Result<Vec<ChunkVector>>> + Send;

    /// Chunks by id (of any generation), by id; ids that are gone are skipped.
    fn chunk_get_many(&mut self, ids: &[i64])
    -> impl Future<Output = Result<Vec<ChunkRow>>> + Send;

    /// Ids of searchable documents (with an active generation) whose file name and metadata
    /// match; see [`DocumentFilterParams`]. By id.
    fn document_filter(
        &mut self,
        params: &DocumentFilterParams,
    ) -> impl Future<Output = Result<Vec<Uuid>>> + Send;

    /// Chunks of active generations whose text has any of the query's words, best first; see
    /// [`ChunkTextSearchParams`]. Every backend has a full-text index (SQLite FTS5, PostgreSQL
    /// `tsvector` + GIN), kept in step with chunk writes; scores rank within one answer and
    /// are not comparable across backends. A query with no words matches nothing.
    fn chunk_text_search(
        &mut self,
        params: &ChunkTextSearchParams,
    ) -> impl Future<Output = Result<Vec<ChunkScore>>> + Send;

    /// Whether the database searches vectors itself ([`DocumentStore::chunk_search`] answers
    /// `Some`): PostgreSQL with the pgvector extension installed. Otherwise callers scan the
    /// vectors of [`DocumentStore::chunk_vectors_page`].
    fn vector_search_available(&mut self) -> impl Future<Output = Result<bool>> + Send;

    /// Ensures an approximate nearest-neighbour index over the stored vectors of `dims`
    /// dimensions (idempotent; `dims` within `1..=`[`VECTOR_INDEX_MAX_DIMS`], else
    /// [`Error::Invalid`]). Returns whether such an index exists: false, changing nothing,
    /// where the database does not search vectors or cannot index that many dimensions.
    /// Building it over many stored vectors takes a while and holds off chunk writes meanwhile:
    /// call it once, at start, not per request.
    fn vector_index_ensure(&mut self, dims: i32) -> impl Future<Output = Result<bool>> + Send;

    /// The chunks nearest to `params.query` by cosine distance, best first, among the embedded
    /// chunks of active generations whose vector has as many dimensions as the query. `None`
    /// where the database does not search vectors: the caller scans
    /// [`DocumentStore::chunk_vectors_page`] instead. Invalid params are refused on every backend.
    ///
    /// An index makes the search approximate: with `document_ids`, or beyond a thousand
    /// results, it may return fewer than `k` chunks although more match.
    fn chunk_search(
        &mut self,
        params: &ChunkSearchParams,
    ) -> impl Future<Output = Result<Option<Vec<ChunkScore>>>> + Send;
}

/// Monitoring: the alerts the leader's rules open and close, silences, the attempt counts
/// over a window that some rules watch, and the analytics that outlive the job rows (hourly
/// rollups of attempts, failure reasons). Implemented beside [`DocumentStore`] by full backends.
pub trait MonitorStore: Send {
    /// Opens an alert: inserts it in `params.state`, unless an alert of the same rule and
    /// subject is open already; then returns that one unchanged (compare ids to tell). At most
    /// one alert per rule and subject is open, also under concurrent calls.
    fn alert_open(
        &mut self,
        params: &AlertOpenParams,
    ) -> impl Future<Output = Result<AlertRow>> + Send;

    /// Moves an open alert from `params.from` to `params.to` (or refreshes it in place), only
    /// while it is still in `from`. Returns the updated row, `None` when it was not.
    fn alert_update(
        &mut self,
        params: &AlertUpdateParams,
    ) -> impl Future<Output = Result<Option<AlertRow>>> + Send;

    /// Alerts, newest first.
    fn alert_list(
        &mut self,
        params: &AlertListParams,
    ) -> impl Future<Output = Result<Vec<AlertRow>>> + Send;

    /// Records a silence.
    fn alert_silence_insert(
        &mut self,
        params: &AlertSilenceParams,
    ) -> impl Future<Output = Result<AlertSilenceRow>> + Send;

    /// Silences that have not ended at `now` (`None`: now), newest first.
    fn alert_silence_list(
        &mut self,
        now: Option<DateTime<Utc>>,
    ) -> impl Future<Output = Result<Vec<AlertSilenceRow>>> + Send;

    /// Ends a silence now. Returns whether it was still on.
    fn alert_silence_end(
        &mut self,
        id: i64,
        now: Option<DateTime<Utc>>,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Attempts that finished in the window, counted per kind, queue, outcome and whether
    /// they were snoozes; groups with none are left out.
    fn job_attempt_counts(
        &mut self,
        params: &JobAttemptCountsParams,
    ) -> impl Future<Output = Result<Vec<JobAttemptCountRow>>> + Send;

    /// Attempts that finished in the window, per kind, queue and outcome, with their
    /// durations' nearest-rank percentiles; `hour` is the window's start.
    fn job_attempt_rollup(
        &mut self,
        params: &AttemptWindowParams,
    ) -> impl Future<Output = Result<Vec<AttemptRollupRow>>> + Send;

    /// Failed attempts (retried, failed, rescued) with an error that finished in the window,
    /// grouped by kind and message.
    fn job_attempt_errors(
        &mut self,
        params: &AttemptWindowParams,
    ) -> impl Future<Output = Result<Vec<AttemptErrorGroup>>> + Send;

    /// Up to when analytics are stored; `None` before the first hour was.
    fn analytics_cursor(&mut self) -> impl Future<Output = Result<Option<DateTime<Utc>>>> + Send;

    /// Stores an hour's rollup rows and failure reasons and moves the cursor, all or nothing.
    fn analytics_store(
        &mut self,
        params: &AnalyticsStoreParams,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Deletes rollup rows of hours before `before`, and failure reasons last seen before it.
    /// Returns how many rows.
    fn analytics_prune(
        &mut self,
        before: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Stored hourly rows, oldest hour first.
    fn analytics_rollup_list(
        &mut self,
        params: &RollupListParams,
    ) -> impl Future<Output = Result<Vec<AttemptRollupRow>>> + Send;

    /// Failure reasons, most attempts first.
    fn failure_reason_list(
        &mut self,
        params: &FailureReasonListParams,
    ) -> impl Future<Output = Result<Vec<FailureReasonRow>>> + Send;

    /// The invariants of documents, chunks, jobs and attempts, counted (see
    /// [`ConsistencyReport`]): what the reliability drills check once their documents have
    /// finished. It reads every row: for drills and audits, not for a hot path.
    fn consistency_report(&mut self) -> impl Future<Output = Result<ConsistencyReport>> + Send;
}

/// Every part: what docket's pipeline needs of a connection or transaction. Every type that
/// implements [`QueueExecutor`], [`DocumentStore`] and [`MonitorStore`] is one.
pub trait Executor: QueueExecutor + DocumentStore + MonitorStore + SessionStore {}

impl<T: QueueExecutor + DocumentStore + MonitorStore + SessionStore> Executor for T {}

/// Dashboard sessions ([`SessionRow`]), kept by their token's hash. Implemented beside
/// [`MonitorStore`] by full backends.
pub trait SessionStore: Send {
    /// Stores a new session, and deletes sessions that ended before `params.now`.
    fn session_insert(
        &mut self,
        params: &SessionInsertParams,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The session with this token hash, if it has not ended at `now`.
    fn session_get(
        &mut self,
        token_sha256: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<SessionRow>>> + Send;

    /// Ends one session. Returns whether it existed.
    fn session_delete(&mut self, token_sha256: &str) -> impl Future<Output = Result<bool>> + Send;

    /// Ends every session of a key (logout everywhere). Returns how many.
    fn session_delete_for_key(
        &mut self,
        key_name: &str,
    ) -> impl Future<Output = Result<u64>> + Send;
}
