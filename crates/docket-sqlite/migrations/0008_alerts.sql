-- docket monitoring, version 8 (SQLite): the alerts the leader's rules open and close,
-- silences, and analytics (hourly rollups of attempts, failure reasons). Times are
-- microseconds since the Unix epoch, as everywhere in this schema.

-- One row per episode of a rule's condition for a subject: pending when first seen, firing once
-- it has held for the rule's `for`, resolved when it stops. Each transition stamps its time.
CREATE TABLE docket_alerts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    rule          TEXT    NOT NULL,
    subject       TEXT    NOT NULL DEFAULT '',
    state         TEXT    NOT NULL CHECK (state IN ('pending', 'firing', 'resolved')),
    severity      TEXT    NOT NULL,
    summary       TEXT    NOT NULL,
    figures       TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(figures)),
    pending_at    INTEGER NOT NULL,
    firing_at     INTEGER,
    resolved_at   INTEGER,
    notified_at   INTEGER,
    evaluated_at  INTEGER NOT NULL,
    CHECK ((state = 'resolved') = (resolved_at IS NOT NULL)),
    CHECK (state <> 'firing' OR firing_at IS NOT NULL)
) STRICT;
-- At most one open alert per rule and subject.
CREATE UNIQUE INDEX docket_alerts_open_idx ON docket_alerts (rule, subject)
    WHERE state <> 'resolved';

-- While a silence lasts, its rule's alerts (of one subject, or all) are recorded as ever but
-- nobody is told.
CREATE TABLE docket_alert_silences (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    rule        TEXT    NOT NULL,
    subject     TEXT,
    created_at  INTEGER NOT NULL,
    until       INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    reason      TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX docket_alert_silences_until_idx ON docket_alert_silences (until);

-- Analytics that outlive the job rows (the cleaner deletes those after their retention): per
-- hour, kind, queue and outcome, attempts and their durations' percentiles ...
CREATE TABLE docket_attempt_rollup (
    hour      INTEGER NOT NULL,
    job_type  TEXT    NOT NULL,
    queue     TEXT    NOT NULL,
    outcome   TEXT    NOT NULL,
    attempts  INTEGER NOT NULL,
    total_ms  INTEGER NOT NULL,
    p50_ms    INTEGER NOT NULL,
    p95_ms    INTEGER NOT NULL,
    p99_ms    INTEGER NOT NULL,
    max_ms    INTEGER NOT NULL,
    PRIMARY KEY (hour, job_type, queue, outcome)
) STRICT;
-- ... failure reasons: errors of a kind that read the same once ids, numbers and paths are
-- masked ...
CREATE TABLE docket_failure_reasons (
    job_type         TEXT    NOT NULL,
    reason           TEXT    NOT NULL,
    example          TEXT    NOT NULL,
    count            INTEGER NOT NULL,
    first_seen       INTEGER NOT NULL,
    last_seen        INTEGER NOT NULL,
    example_job_ids  TEXT    NOT NULL DEFAULT '[]'
                     CHECK (json_valid(example_job_ids) AND json_type(example_job_ids) = 'array'),
    PRIMARY KEY (job_type, reason)
) STRICT;
CREATE INDEX docket_failure_reasons_seen_idx ON docket_failure_reasons (last_seen);
-- ... and up to when they are complete.
CREATE TABLE docket_analytics_state (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    rolled_until  INTEGER NOT NULL
) STRICT;
