"""Every SQL statement tomqueue runs against its tables, each a named constant.

One parameter style, SQLAlchemy's ``:name``: every statement but the worker's hot ones runs
through ``text()`` on a SQLAlchemy connection, so it keeps what SQLAlchemy gives for free
and users' code relies on: events and logging on their own engine (enqueue with
``session=`` writes in *their* transaction), driver errors translated into
``sqlalchemy.exc`` (which ``retry_on_disconnect`` and callers catch), and a connection
found dead invalidated in the pool. The worker's hot statements (lock, delete) are
compiled once to psycopg's ``%(name)s`` by SQLAlchemy's own compiler (``Executor._on_driver``)
and then run straight on the driver, with no SQLAlchemy work per statement: there its
per-statement cost is larger than the statement's. The other choice, psycopg's style
everywhere, would have bypassed SQLAlchemy in the caller's transaction too, and meant
re-implementing its error translation and disconnect handling for every path.

Only constants of this module are interpolated into SQL, never input (hence ruff's S608
is silenced for this file alone).
"""

from __future__ import annotations

from tomqueue.database import ADVISORY_NAMESPACE

COLUMNS = (
    "id, priority, attempts, handler, last_error, run_at, locked_at, locked_by, failed_at, "
    "queue, created_at, updated_at, released_at, crashes, lock_key, unique_key, serial_key, "
    "parked_on, trace_context"
)
J_COLUMNS = ", ".join("j." + name.strip() for name in COLUMNS.split(","))

# Is the worker whose lease key is j.lock_key still alive? Its session-level advisory lock
# dies with its database connection, i.e. with the process: a proof, not an age guess.
HOLDER_ALIVE = f"""
    (j.lock_key IS NOT NULL AND EXISTS (
        SELECT 1 FROM pg_locks l
        WHERE l.locktype = 'advisory' AND l.granted
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.classid = {ADVISORY_NAMESPACE}::oid
          AND l.objid = j.lock_key::oid
          AND l.objsubid = 2))
"""

DIGEST = """left(encode(sha256(convert_to(
    id::text || chr(31) || handler || chr(31)
    || to_char(run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00'
    || chr(31) || attempts::text || chr(31) || priority::text, 'UTF8')), 'hex'), 24)"""
"""``tomqueue.snapshot.row_digest`` computed by PostgreSQL, its only SQL definition.

Same fields, same separator (chr(31)), the same UTC text with microseconds and '+00:00',
the same first 24 hex digits of SHA-256. Change both or neither: the worker's lock compares
this to the digest a notification carries, which Python computed.
tests/integration/test_store_statements.py checks the two agree on awkward rows.
"""

DB_NOW = "SELECT now() AS now"

# The predicate of the partial unique index on unique_key (migration 0006): a job waits to
# run (queued, scheduled, or waiting for a retry) when it is neither failed nor locked.
UNIQUE_WAITING = "unique_key IS NOT NULL AND failed_at IS NULL AND locked_at IS NULL"


def keep_unique_key(row: str, batch: str | None = None) -> str:
    """``unique_key = ...`` for a statement that makes row ``row`` wait to run again (a
    retry, an unlock, an operator's retry): it keeps its key unless a twin enqueued
    meanwhile waits with it, in which case it goes on without one (both run: neither job
    is lost, and the index is never violated by the twin already there). A statement
    that makes several rows wait (``batch``: the SQL array of their ids) keeps a shared
    key on the lowest id of them only."""
    in_batch = f" OR (twin.id < {row}.id AND twin.id = ANY({batch}))" if batch else ""
    return f"""unique_key = CASE WHEN {row}.unique_key IS NULL OR NOT EXISTS (
            SELECT 1 FROM tomqueue_jobs twin WHERE twin.unique_key = {row}.unique_key
              AND twin.id <> {row}.id
              AND ((twin.failed_at IS NULL AND twin.locked_at IS NULL){in_batch}))
        THEN {row}.unique_key END"""


# -- enqueue ------------------------------------------------------------------------------

# released now if due now; a future row waits for the deferred manager (released_at NULL)
# A unique job whose twin waits already (the partial unique index
# ux_tomqueue_jobs_unique_waiting, migration 0006) is not written and not returned.
# A due job whose serial key already has a job (in the table, or earlier in this batch) is
# written parked at its key, unannounced: it waits for the job before it to wake it, with
# no trip through the broker and no lock-then-park of its own (see tomqueue.gates). Should
# the job before it end between this statement's snapshot and its commit, the sweep wakes
# it (WAKE_SERIAL_HEADS) within seconds.
INSERT_JOBS = f"""
    INSERT INTO tomqueue_jobs
        (priority, handler, run_at, queue, unique_key, serial_key, trace_context, created_at,
         updated_at, released_at, parked_on)
    SELECT t.p, t.h, COALESCE(t.r, now()), t.q, t.u, t.s, t.tc, now(), now(),
           CASE WHEN COALESCE(t.r, now()) <= now() THEN now() END,
           CASE WHEN t.s IS NOT NULL AND COALESCE(t.r, now()) <= now()
                     AND (NOT t.sf OR EXISTS (SELECT 1 FROM tomqueue_jobs o
                                              WHERE o.serial_key = t.s))
                THEN CAST(:serial_prefix AS text) || t.s END
    FROM unnest(CAST(:priorities AS integer[]), CAST(:handlers AS text[]),
                CAST(:run_ats AS timestamptz[]), CAST(:queues AS text[]),
                CAST(:unique_keys AS text[]), CAST(:serial_keys AS text[]),
                CAST(:trace_contexts AS text[]), CAST(:serial_firsts AS boolean[]))
         WITH ORDINALITY AS t(p, h, r, q, u, s, tc, sf, ord)
    ORDER BY t.ord
    ON CONFLICT (unique_key) WHERE {UNIQUE_WAITING} DO NOTHING
    RETURNING {COLUMNS}"""

# the waiting twins of unique jobs that were not written
WAITING_TWINS = f"""SELECT id, unique_key FROM tomqueue_jobs
    WHERE unique_key = ANY(CAST(:keys AS text[])) AND {UNIQUE_WAITING}"""

UNRELEASE = """UPDATE tomqueue_jobs SET released_at = NULL
    WHERE id = ANY(CAST(:ids AS bigint[])) AND failed_at IS NULL"""

# -- worker -------------------------------------------------------------------------------

# The hot path's lock: admission's RUN case (tomqueue.admission.admit) as one conditional
# UPDATE. Anything unusual makes it match nothing, and the careful path decides.
LOCK_FAST = f"""UPDATE tomqueue_jobs SET locked_at = now(), locked_by = :by,
        lock_key = :key, updated_at = now()
    WHERE id = :id AND failed_at IS NULL AND locked_by IS NULL AND run_at <= now()
      AND {DIGEST} = :digest
    RETURNING {COLUMNS}, now() AS db_now"""

# LOCK_FAST for several slots' jobs at once (tomqueue.worker.group_call): one statement
# for every lock asked for while the previous one ran. The request columns are named so
# that the unqualified columns in DIGEST and COLUMNS can only mean the job's. A request
# not returned (not due, locked, failed, stale, gone, or a second request for a row this
# batch already locked) takes the careful path, alone.
LOCK_MANY = f"""WITH r AS (
        SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:digests AS text[]),
                             CAST(:holders AS text[]), CAST(:lease_keys AS bigint[]))
            AS r(job_id, wanted_digest, holder, lease_key))
    UPDATE tomqueue_jobs SET locked_at = now(), locked_by = r.holder,
        lock_key = r.lease_key, updated_at = now()
    FROM r
    WHERE id = r.job_id AND failed_at IS NULL AND locked_by IS NULL AND run_at <= now()
      AND {DIGEST} = r.wanted_digest
    RETURNING {COLUMNS}, now() AS db_now"""

SELECT_FOR_LOCK = f"""SELECT {COLUMNS}, now() AS db_now, {HOLDER_ALIVE} AS holder_alive
    FROM tomqueue_jobs j WHERE j.id = :id FOR UPDATE"""

LOCK_ROW = f"""UPDATE tomqueue_jobs SET locked_at = now(), locked_by = :by,
        lock_key = :key, updated_at = now()
    WHERE id = :id RETURNING {COLUMNS}"""

# a worker that does not serve the row's named queue gives it back unrun, to be announced
# again (by the deferred manager, or a sweep) to its own queue's workers
HAND_BACK = f"""UPDATE tomqueue_jobs j SET locked_at = NULL, locked_by = NULL, lock_key = NULL,
        released_at = NULL, updated_at = now(), {keep_unique_key("j")}
    WHERE id = :id AND locked_by = :by AND failed_at IS NULL"""

# the named queues that jobs are in, by a loose index scan of ix_tomqueue_jobs_queue (one
# index probe per name, however many rows): how a worker serving every queue finds them
NAMED_QUEUES = """WITH RECURSIVE q(name) AS (
        (SELECT queue FROM tomqueue_jobs WHERE queue IS NOT NULL ORDER BY queue LIMIT 1)
        UNION ALL
        SELECT (SELECT j.queue FROM tomqueue_jobs j WHERE j.queue > q.name
                ORDER BY j.queue LIMIT 1)
        FROM q WHERE q.name IS NOT NULL)
    SELECT name FROM q WHERE name IS NOT NULL"""

# hand back to the deferred path: the manager releases rows with no release
UNRELEASE_ONE = "UPDATE tomqueue_jobs SET released_at = NULL WHERE id = :id"

# -- the job's history row (tomqueue_job_history, migration 0004) --------------------------
# Written by the statements that end a job (the success delete, a failure for good) and by
# a running job's progress reports, so a job that reports nothing costs no statement more.
# Every write computes the whole row (progress and fields not given are the stored ones,
# read through a LEFT JOIN on the history row ``o``) and the upsert takes all of it.

HISTORY_INSERT = """INSERT INTO tomqueue_job_history AS h (job_id, class_name, queue,
        priority, enqueued_at, started_at, finished_at, attempts, outcome, duration_seconds,
        progress_value, progress_total, fields, updated_at, expires_at)"""

HISTORY_UPSERT = """ON CONFLICT (job_id) DO UPDATE SET class_name = EXCLUDED.class_name,
        queue = EXCLUDED.queue, priority = EXCLUDED.priority,
        enqueued_at = EXCLUDED.enqueued_at, started_at = EXCLUDED.started_at,
        finished_at = EXCLUDED.finished_at, attempts = EXCLUDED.attempts,
        outcome = EXCLUDED.outcome, duration_seconds = EXCLUDED.duration_seconds,
        progress_value = EXCLUDED.progress_value, progress_total = EXCLUDED.progress_total,
        fields = EXCLUDED.fields, updated_at = EXCLUDED.updated_at,
        expires_at = EXCLUDED.expires_at"""


def _ended(
    src: str,
    outcome: str,
    attempts: str,
    started: str,
    cls: str,
    ttl: str,
    reported: tuple[str, str, str] = ("NULL", "NULL", "NULL"),
) -> str:
    """The history row of a job that ended, from the ended row ``src`` (its old locked_at
    as ``started``); ``reported`` is the run's final (value, total, fields), NULL for a part
    to keep as stored."""
    value, total, fields = reported
    return f"""{HISTORY_INSERT}
    SELECT {src}.id, {cls}, {src}.queue, {src}.priority, {src}.created_at, {started}, now(),
        {attempts}, '{outcome}', extract(epoch FROM now() - {started}),
        COALESCE({value}, o.progress_value), COALESCE({total}, o.progress_total),
        COALESCE({fields}, o.fields, '{{}}'), now(), now() + make_interval(secs => {ttl})
    FROM {src} LEFT JOIN tomqueue_job_history o ON o.job_id = {src}.id"""


_DELETE_ONE_HISTORY = _ended(
    "d",
    "succeeded",
    attempts="d.attempts + 1",
    started="d.locked_at",
    cls="CAST(:class AS text)",
    ttl=":ttl",
    reported=("CAST(:value AS bigint)", "CAST(:total AS bigint)", "CAST(:fields AS jsonb)"),
)
_DELETE_MANY_HISTORY = _ended(
    "d",
    "succeeded",
    attempts="d.attempts + 1",
    started="d.locked_at",
    cls="d.class_name",
    ttl="d.ttl",
    reported=("d.pvalue", "d.ptotal", "CAST(d.pfields AS jsonb)"),
)
_FAILED_HISTORY = _ended(
    "u",
    "failed",
    attempts="u.attempts",
    started="u.started_at",
    cls="CAST(:class AS text)",
    ttl=":ttl",
)

# locked_by names the attempt ("host pid:1 key:2 run:3"), not only the process: a run
# whose row was taken over and run again (by this worker or another) can never delete or
# fail the row under the new run. The same statement records the job's history row
# (outcome 'succeeded', kept for :ttl seconds, the run's last report): one statement per
# job, as before the history existed.
DELETE_HELD = f"""WITH d AS (
        DELETE FROM tomqueue_jobs WHERE id = :id AND locked_by = :by
        RETURNING id, queue, priority, created_at, locked_at, attempts)
    {_DELETE_ONE_HISTORY}
    {HISTORY_UPSERT}"""

# DELETE_HELD for several finished jobs at once: each row only if its attempt still holds
# it; returns the (id, locked_by) of the rows deleted
DELETE_MANY_HELD = f"""WITH r AS (
        SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:holders AS text[]),
                             CAST(:classes AS text[]), CAST(:ttls AS double precision[]),
                             CAST(:pvalues AS bigint[]), CAST(:ptotals AS bigint[]),
                             CAST(:pfields AS text[]))
            AS r(job_id, holder, class_name, ttl, pvalue, ptotal, pfields)),
    d AS (
        DELETE FROM tomqueue_jobs j USING r
        WHERE j.id = r.job_id AND j.locked_by = r.holder
        RETURNING j.id, j.locked_by, j.queue, j.priority, j.created_at, j.locked_at,
            j.attempts, r.class_name, r.ttl, r.pvalue, r.ptotal, r.pfields),
    hist AS ({_DELETE_MANY_HISTORY}
        {HISTORY_UPSERT})
    SELECT id, locked_by FROM d"""

# carries out tomqueue.plans.plan_failure: :run_at NULL keeps the row's own run_at; a
# failure for good (:fail_now) records the history row (outcome 'failed') in the same
# statement. ``old`` is read for the locked_at the UPDATE clears (the run's start).
RECORD_FAILURE = f"""WITH old AS (
        SELECT id, locked_at FROM tomqueue_jobs WHERE id = :id AND locked_by = :by),
    u AS (
        UPDATE tomqueue_jobs j SET attempts = :attempts, last_error = :error,
            run_at = COALESCE(:run_at, j.run_at),
            failed_at = CASE WHEN :fail_now THEN now() END,
            released_at = NULL, crashes = 0,
            locked_at = NULL, locked_by = NULL, lock_key = NULL, updated_at = now(),
            {keep_unique_key("j")}
        FROM old WHERE j.id = old.id AND j.locked_by = :by
        RETURNING {J_COLUMNS}, old.locked_at AS started_at),
    hist AS ({_FAILED_HISTORY}
        WHERE u.failed_at IS NOT NULL
        {HISTORY_UPSERT})
    SELECT * FROM u"""

FAIL_HELD = f"""WITH old AS (
        SELECT id, locked_at FROM tomqueue_jobs WHERE id = :id AND locked_by = :by),
    u AS (
        UPDATE tomqueue_jobs j SET last_error = :error,
            attempts = GREATEST(j.attempts, 1),
            failed_at = now(), locked_at = NULL, locked_by = NULL,
            lock_key = NULL, updated_at = now()
        FROM old WHERE j.id = old.id AND j.locked_by = :by
        RETURNING {J_COLUMNS}, old.locked_at AS started_at),
    hist AS ({_FAILED_HISTORY}
        {HISTORY_UPSERT})
    SELECT * FROM u"""

# a running job's report (tomqueue.progress): only while this attempt holds the row. The
# row has no outcome until the job ends; it expires :keep seconds after the last report
# (the class's max_run_time plus its status TTL: never while the run may go on), so a job
# deleted by a person mid-run, or never run again, does not leave it behind for ever
WRITE_STATUS = f"""{HISTORY_INSERT}
    SELECT j.id, CAST(:class AS text), j.queue, j.priority, j.created_at, j.locked_at, NULL,
        j.attempts + 1, NULL, NULL,
        COALESCE(CAST(:value AS bigint), o.progress_value),
        COALESCE(CAST(:total AS bigint), o.progress_total),
        COALESCE(CAST(:fields AS jsonb), o.fields, '{{}}'), now(),
        now() + make_interval(secs => :keep)
    FROM tomqueue_jobs j LEFT JOIN tomqueue_job_history o ON o.job_id = j.id
    WHERE j.id = :id AND j.locked_by = :by AND j.failed_at IS NULL
    {HISTORY_UPSERT}"""

# what tomqueue.job_status.derive_state needs, and the report, in one read
READ_STATUS = """SELECT j.id IS NOT NULL AS in_jobs, j.failed_at IS NOT NULL AS failed,
        j.locked_by IS NOT NULL AS locked, h.job_id IS NOT NULL AS in_history, h.outcome,
        COALESCE(h.expires_at <= now(), false) AS expired,
        h.progress_value, h.progress_total, h.fields
    FROM (SELECT CAST(:id AS bigint) AS id) q
    LEFT JOIN tomqueue_jobs j ON j.id = q.id
    LEFT JOIN tomqueue_job_history h ON h.job_id = q.id"""

# the deferred leader's purge: a small batch at a time, never waiting on a locked row
PURGE_HISTORY = """DELETE FROM tomqueue_job_history WHERE job_id IN (
        SELECT job_id FROM tomqueue_job_history WHERE expires_at <= now()
        ORDER BY expires_at LIMIT :limit FOR UPDATE SKIP LOCKED)"""

# -- operators ----------------------------------------------------------------------------

GET_JOB = f"SELECT {COLUMNS} FROM tomqueue_jobs WHERE id = :id"
LIST_JOBS = f"SELECT {COLUMNS} FROM tomqueue_jobs ORDER BY id LIMIT :n"
LIST_FAILED_JOBS = (
    f"SELECT {COLUMNS} FROM tomqueue_jobs WHERE failed_at IS NOT NULL ORDER BY id LIMIT :n"
)
COUNT_JOBS = "SELECT count(*) AS n FROM tomqueue_jobs"
COUNT_FAILED_JOBS = "SELECT count(*) AS n FROM tomqueue_jobs WHERE failed_at IS NOT NULL"

# the row an operator acts on, locked, with whether its holder lives and the clock the
# action's plan (tomqueue.plans) and its write share: now() is the transaction's start
SELECT_FOR_ACTION = f"""SELECT j.id, j.locked_by, j.failed_at, j.run_at,
        {HOLDER_ALIVE} AS holder_alive, now() AS db_now
    FROM tomqueue_jobs j WHERE j.id = :id FOR UPDATE"""
SELECT_FOR_RETRY = SELECT_FOR_ACTION

# carries out tomqueue.plans.plan_retry's reset: pending, due and announced now
RETRY_JOB = f"""UPDATE tomqueue_jobs j SET failed_at = NULL, attempts = :attempts,
        crashes = :crashes, run_at = now(), released_at = now(),
        locked_at = NULL, locked_by = NULL, lock_key = NULL, parked_on = NULL,
        updated_at = now(), {keep_unique_key("j")}
    WHERE id = :id RETURNING {J_COLUMNS}"""

# RETRY_JOB for a batch of rows the plans let go (locked FOR UPDATE by the same transaction)
RETRY_JOBS = f"""UPDATE tomqueue_jobs j SET failed_at = NULL, attempts = :attempts,
        crashes = :crashes, run_at = now(), released_at = now(),
        locked_at = NULL, locked_by = NULL, lock_key = NULL, updated_at = now(),
        {keep_unique_key("j", "CAST(:ids AS bigint[])")}
    WHERE id = ANY(CAST(:ids AS bigint[])) RETURNING {J_COLUMNS}"""

DELETE_JOBS = "DELETE FROM tomqueue_jobs WHERE id = ANY(CAST(:ids AS bigint[])) RETURNING id"
DELETE_ONE = f"DELETE FROM tomqueue_jobs WHERE id = :id RETURNING {COLUMNS}"

# carries out tomqueue.plans.plan_reschedule: released now only if due now (the plan's
# "due" was decided against this transaction's now(), the instant written here)
RESCHEDULE_JOB = f"""UPDATE tomqueue_jobs j SET run_at = :run_at,
        released_at = CASE WHEN :due THEN now() END, failed_at = NULL,
        attempts = CASE WHEN :fresh THEN 0 ELSE attempts END,
        crashes = CASE WHEN :fresh THEN 0 ELSE crashes END,
        locked_at = NULL, locked_by = NULL, lock_key = NULL, updated_at = now(),
        {keep_unique_key("j")}
    WHERE id = :id RETURNING {J_COLUMNS}"""

# carries out tomqueue.plans.plan_priority: 'announce' marks it released now, 'defer'
# hands it to the deferred manager, 'keep' leaves released_at as it is
CHANGE_PRIORITY = f"""UPDATE tomqueue_jobs SET priority = :priority,
        released_at = CASE :release WHEN 'announce' THEN now() WHEN 'defer' THEN NULL
                      ELSE released_at END,
        updated_at = now()
    WHERE id = :id RETURNING {COLUMNS}"""

MAX_JOB_ID = "SELECT COALESCE(max(id), 0) AS n FROM tomqueue_jobs"

# -- operators' filters (tomqueue.filters) -------------------------------------------------

# The class named by a handler, as tomqueue.handler.handler_class_name reads it; NULL
# when there is none. Handlers tomqueue writes start {"class":"NAME", so those are read by
# position (several times cheaper than the regular expression, which reads any other row:
# the first "class" key, wherever it is). A class name holds no quote.
CLASS_NAME = r"""(CASE WHEN left(j.handler, 10) = '{"class":"'
        THEN split_part(substr(j.handler, 11, 1000), '"', 1)
        ELSE substring(j.handler from '"class"\s*:\s*"([^"]*)"') END)"""

# One predicate per state, each able to use its partial index (failed_at, locked_at).
# 'running' is "locked", whether the holder lives or not (tomqueue workers tells which).
STATE_PREDICATES = {
    "all": "TRUE",
    "pending": "j.failed_at IS NULL",
    "queued": "j.failed_at IS NULL AND j.locked_by IS NULL AND j.run_at <= now()",
    "scheduled": "j.failed_at IS NULL AND j.locked_by IS NULL AND j.run_at > now()",
    "running": "j.failed_at IS NULL AND j.locked_at IS NOT NULL AND j.locked_by IS NOT NULL",
    "failed": "j.failed_at IS NOT NULL",
}

# The rest of a Filter, each condition off when its parameter is NULL
# (tomqueue.filters.filter_params builds them; LIKE patterns come escaped)
FILTER_GUARDS = f"""(CAST(:class_name AS text) IS NULL
         OR {CLASS_NAME} = :class_name OR {CLASS_NAME} LIKE :class_suffix)
    AND (CAST(:queue AS text) IS NULL OR j.queue = :queue
         OR (CAST(:queue_default AS boolean) AND j.queue IS NULL))
    AND (CAST(:error AS text) IS NULL OR j.last_error ILIKE :error OR j.handler ILIKE :error)
    AND (CAST(:priority AS integer) IS NULL OR j.priority = :priority)"""

# keyset paging: WHERE id > :after ORDER BY id LIMIT :n, never OFFSET
LIST_PAGE = {
    state: f"""SELECT {J_COLUMNS} FROM tomqueue_jobs j
    WHERE {predicate} AND {FILTER_GUARDS} AND j.id > :after
    ORDER BY j.id LIMIT :n"""
    for state, predicate in STATE_PREDICATES.items()
}

COUNT_WHERE = {
    state: f"SELECT count(*) AS n FROM tomqueue_jobs j WHERE {predicate} AND {FILTER_GUARDS}"
    for state, predicate in STATE_PREDICATES.items()
}

# a bulk action's next batch, locked; ids above :upto (enqueued since it began) are not
# its business, so the action ends even while jobs keep arriving
SELECT_BATCH_FOR_ACTION = {
    state: f"""SELECT j.id, j.locked_by, {HOLDER_ALIVE} AS holder_alive
    FROM tomqueue_jobs j
    WHERE {predicate} AND {FILTER_GUARDS} AND j.id > :after AND j.id <= :upto
    ORDER BY j.id LIMIT :n FOR UPDATE OF j"""
    for state, predicate in STATE_PREDICATES.items()
}

# -- operators' overview ------------------------------------------------------------------

_QUEUED = "failed_at IS NULL AND locked_by IS NULL AND run_at <= now()"

# counts by state, overall and by priority, queue and class, in one scan (GROUPING tells
# which grouping a row belongs to: 1 where the column is not grouped on)
STATS = f"""SELECT GROUPING(j.priority) AS g_priority, GROUPING(j.queue) AS g_queue,
        GROUPING(j.class_name) AS g_class, j.priority, j.queue, j.class_name,
        count(*) FILTER (WHERE {_QUEUED}) AS queued,
        count(*) FILTER (WHERE failed_at IS NULL AND locked_by IS NULL
                         AND run_at > now()) AS scheduled,
        count(*) FILTER (WHERE failed_at IS NULL AND locked_by IS NOT NULL) AS running,
        count(*) FILTER (WHERE failed_at IS NOT NULL) AS failed,
        min(run_at) FILTER (WHERE {_QUEUED}) AS oldest_queued_run_at,
        now() AS db_now
    FROM (SELECT j.priority, j.queue, j.run_at, j.failed_at, j.locked_by,
                 COALESCE({CLASS_NAME}, '<undecodable>') AS class_name
          FROM tomqueue_jobs j) AS j
    GROUP BY GROUPING SETS ((), (j.priority), (j.queue), (j.class_name))"""

# every locked row, with whether its holder lives: what each worker runs now
HELD_ROWS = f"""SELECT j.id, j.lock_key, j.locked_by, j.locked_at, j.priority, j.queue,
        j.attempts, COALESCE({CLASS_NAME}, '<undecodable>') AS class_name,
        {HOLDER_ALIVE} AS alive, now() AS db_now
    FROM tomqueue_jobs j
    WHERE j.locked_at IS NOT NULL AND j.locked_by IS NOT NULL AND j.failed_at IS NULL
    ORDER BY j.lock_key, j.locked_at, j.id"""

# every worker lease held in this database (idle workers too), with its session's start;
# :not_workers are the other keys taken in the namespace (the deferred leader, migrations)
_ADVISORY_LEASES = f"""SELECT CAST(l.objid AS bigint) AS key, a.backend_start AS since,
        host(a.client_addr) AS client_addr, a.application_name AS session_name
    FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.classid = {ADVISORY_NAMESPACE}::oid AND l.objsubid = 2"""
LIVE_LEASES = f"""{_ADVISORY_LEASES}
      AND NOT (CAST(l.objid AS bigint) = ANY(CAST(:not_workers AS bigint[])))
    ORDER BY key"""

# the leases of the given keys only (the deferred leader's, for the dashboard)
LEASES_OF = f"""{_ADVISORY_LEASES}
      AND CAST(l.objid AS bigint) = ANY(CAST(:keys AS bigint[]))
    ORDER BY key"""

# jobs that ended per time bucket over a trailing window, from the history table (its
# partial index on finished_at); buckets with none are absent (admin_results fills them)
THROUGHPUT = """SELECT date_bin(make_interval(secs => :bucket_seconds), h.finished_at,
            TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
        count(*) FILTER (WHERE h.outcome = 'succeeded') AS succeeded,
        count(*) FILTER (WHERE h.outcome = 'failed') AS failed
    FROM tomqueue_job_history h
    WHERE h.finished_at IS NOT NULL
      AND h.finished_at >= now() - make_interval(secs => :window_seconds)
    GROUP BY 1 ORDER BY 1"""

DELETE_JOB = "DELETE FROM tomqueue_jobs WHERE id = :id"

DUE_PENDING_PAGE = f"""SELECT {COLUMNS} FROM tomqueue_jobs
    WHERE failed_at IS NULL AND locked_by IS NULL AND run_at <= now() AND id > :last
    ORDER BY id LIMIT :n"""

UNRELEASE_FUTURE = """UPDATE tomqueue_jobs SET released_at = NULL
    WHERE failed_at IS NULL AND run_at > now() AND released_at IS NOT NULL"""

# -- gates: concurrency limits and serial keys (tomqueue.gates) ------------------------------

_THIS_DATABASE = "(SELECT oid FROM pg_database WHERE datname = current_database())"

# how many of the advisory locks (space, :first..:last) anyone in this database holds:
# pg_locks is live state, so a count read after a park commits sees every slot held then
_HELD_SLOTS = f"""(SELECT count(*) FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.granted AND l.database = {_THIS_DATABASE}
      AND l.classid = CAST(CAST(:space AS integer) AS oid) AND l.objsubid = 2
      AND CAST(l.objid AS bigint) BETWEEN :first AND :last)"""

# the first free slot of a limit gate, taken (a try that fails holds nothing, and LIMIT
# stops at the first that succeeds)
GATE_TAKE = """SELECT s.slot FROM generate_series(1, CAST(:size AS integer)) AS s(slot)
    WHERE pg_try_advisory_lock(:space, s.slot) LIMIT 1"""

# a serial gate's one slot, and whether a row of the key with a lower id is still in the
# table (its turn has not come): read before the lock, which is safe because a job lets
# go of its key only after its own row is deleted or updated
SERIAL_TAKE = """SELECT pg_try_advisory_lock(:space, :slot) AS got, EXISTS (
        SELECT 1 FROM tomqueue_jobs WHERE serial_key = :key AND id < :id) AS behind"""

GATE_LEAVE = "SELECT pg_advisory_unlock(:space, :slot) AS held"

# is anyone parked at the gate? (after GATE_LEAVE, in a statement of its own: its snapshot
# must be taken after the unlock, to see any park that the unlock raced with)
PARKED_AT = """SELECT EXISTS (SELECT 1 FROM tomqueue_jobs WHERE parked_on = :gate) AS parked"""

# unlock the row without counting an attempt, to wait at the gate, out of every sweep
PARK = f"""UPDATE tomqueue_jobs j SET locked_at = NULL, locked_by = NULL, lock_key = NULL,
        parked_on = :gate, released_at = now(), updated_at = now(), {keep_unique_key("j")}
    WHERE id = :id AND locked_by = :by AND failed_at IS NULL"""

# wake as many parked jobs as the limit gate has free slots, best first
WAKE_LIMIT = f"""WITH woken AS (
        SELECT id FROM tomqueue_jobs WHERE parked_on = :gate
        ORDER BY priority, id
        LIMIT greatest(CAST(:last AS integer) - {_HELD_SLOTS}, 0)
        FOR UPDATE SKIP LOCKED)
    UPDATE tomqueue_jobs j SET parked_on = NULL, released_at = now(), updated_at = now()
    FROM woken WHERE j.id = woken.id
    RETURNING {J_COLUMNS}"""

# wake a serial key's head (its lowest id) if it is parked and the key's slot is free;
# one the waker runs itself (:announce false) is left unannounced, so that if the waker
# dies first, a sweep or the deferred manager announces it within seconds
WAKE_SERIAL = f"""UPDATE tomqueue_jobs j SET parked_on = NULL,
        released_at = CASE WHEN CAST(:announce AS boolean) THEN now() END, updated_at = now()
    WHERE j.id = (SELECT id FROM tomqueue_jobs WHERE serial_key = :key ORDER BY id LIMIT 1)
      AND j.parked_on = :gate AND {_HELD_SLOTS} = 0
    RETURNING {J_COLUMNS}"""

# a serial key's parked head, woken for the caller, who holds the key's slot and passes it
# on to this job without letting go (so no other job of the key can slip in between);
# unannounced, as WAKE_SERIAL's :announce false, so that a sweep announces it if the
# caller dies before running it (and its slot dies with its connection)
WAKE_SERIAL_HELD = f"""UPDATE tomqueue_jobs j SET parked_on = NULL, released_at = NULL,
        updated_at = now()
    WHERE j.id = (SELECT id FROM tomqueue_jobs WHERE serial_key = :key ORDER BY id LIMIT 1)
      AND j.parked_on = :gate
    RETURNING {J_COLUMNS}"""

# the limit gates that jobs are parked at, by a loose index scan of ix_tomqueue_jobs_parked_on
PARKED_LIMITS = """WITH RECURSIVE g(name) AS (
        (SELECT parked_on FROM tomqueue_jobs
         WHERE parked_on >= 'limit:' AND parked_on < 'limit;' ORDER BY parked_on LIMIT 1)
        UNION ALL
        SELECT (SELECT parked_on FROM tomqueue_jobs
                WHERE parked_on > g.name AND parked_on < 'limit;'
                ORDER BY parked_on LIMIT 1)
        FROM g WHERE g.name IS NOT NULL)
    SELECT name FROM g WHERE name IS NOT NULL"""

# after a crash, or an operator's delete of a key's failed head: parked serial jobs whose
# turn has come (no lower id of their key left), parked for a while; each then takes its
# key's slot or parks again, so a wake here is never more than one extra try
WAKE_SERIAL_HEADS = f"""WITH heads AS (
        SELECT j.id FROM tomqueue_jobs j
        WHERE j.parked_on >= 'serial:' AND j.parked_on < 'serial;'
          AND j.released_at < now() - make_interval(secs => :after)
          AND NOT EXISTS (SELECT 1 FROM tomqueue_jobs o
                          WHERE o.serial_key = j.serial_key AND o.id < j.id)
        ORDER BY j.id LIMIT :limit
        FOR UPDATE OF j SKIP LOCKED)
    UPDATE tomqueue_jobs j SET parked_on = NULL, released_at = now(), updated_at = now()
    FROM heads WHERE j.id = heads.id
    RETURNING {J_COLUMNS}"""

SQL_DIGEST = f"SELECT {DIGEST} AS digest FROM tomqueue_jobs WHERE id = :id"

# -- deferred manager (and republish) -----------------------------------------------------

FETCH_UNRELEASED = f"""SELECT id, {DIGEST} AS digest, run_at, priority, queue
    FROM tomqueue_jobs
    WHERE failed_at IS NULL AND released_at IS NULL
      AND run_at <= now() + make_interval(secs => :horizon)
    ORDER BY run_at LIMIT :limit"""

# marked only where run_at is still the one announced: a row rescheduled meanwhile stays
# with the deferred manager
_MARK_RELEASED = """UPDATE tomqueue_jobs AS j SET released_at = now()
    FROM unnest(CAST(:ids AS bigint[]), CAST(:run_ats AS timestamptz[])) AS r(id, run_at)
    WHERE j.id = r.id AND j.run_at = r.run_at AND j.failed_at IS NULL"""
MARK_RELEASED = _MARK_RELEASED + " AND j.released_at IS NULL"
MARK_RELEASED_AGAIN = _MARK_RELEASED  # republish: rows marked released already too

# -- self-healing sweeps ------------------------------------------------------------------

DEAD_HOLDERS = f"""SELECT j.id, j.locked_by, j.lock_key FROM tomqueue_jobs j
    WHERE j.locked_at IS NOT NULL AND j.locked_by IS NOT NULL AND j.failed_at IS NULL
      AND NOT {HOLDER_ALIVE}
    ORDER BY j.locked_at LIMIT :limit"""

RECOVER_ORPHANS = f"""WITH dead AS (
        SELECT j.id FROM tomqueue_jobs j
        JOIN unnest(CAST(:ids AS bigint[]), CAST(:holders AS text[]))
             AS s(id, locked_by) ON s.id = j.id AND s.locked_by = j.locked_by
        WHERE j.failed_at IS NULL AND NOT {HOLDER_ALIVE}
        FOR UPDATE OF j SKIP LOCKED)
    UPDATE tomqueue_jobs j SET
        attempts = j.attempts + 1,
        crashes = j.crashes + 1,
        last_error = left('worker ' || j.locked_by || ' died while running this job'
            || COALESCE(E'\nprevious error: ' || j.last_error, ''), 65536),
        run_at = now(),
        released_at = now(),
        locked_at = NULL, locked_by = NULL, lock_key = NULL, updated_at = now(),
        {keep_unique_key("j", "CAST(:ids AS bigint[])")}
    FROM dead WHERE j.id = dead.id
    RETURNING {J_COLUMNS}"""

CLAIM_UNANNOUNCED = f"""WITH due AS (
        SELECT id FROM tomqueue_jobs
        WHERE failed_at IS NULL AND released_at IS NULL AND locked_by IS NULL
          AND run_at <= now() - make_interval(secs => :overdue)
        ORDER BY run_at LIMIT :limit
        FOR UPDATE SKIP LOCKED)
    UPDATE tomqueue_jobs j SET released_at = now()
    FROM due WHERE j.id = due.id
    RETURNING {J_COLUMNS}"""

STALE_PLACES = """SELECT DISTINCT queue, priority FROM tomqueue_jobs
    WHERE failed_at IS NULL AND locked_at IS NULL AND run_at <= now() AND parked_on IS NULL
      AND released_at < now() - make_interval(secs => :after)"""

CLAIM_STALE = f"""WITH stale AS (
        SELECT id FROM tomqueue_jobs
        WHERE failed_at IS NULL AND locked_at IS NULL AND run_at <= now()
          AND parked_on IS NULL
          AND released_at < now() - make_interval(secs => :after)
          AND released_at < COALESCE(CAST(:before AS timestamptz), 'infinity')
          AND priority = ANY(CAST(:priorities AS integer[]))
          AND queue IS NOT DISTINCT FROM CAST(:queue AS text)
        ORDER BY released_at LIMIT :limit
        FOR UPDATE SKIP LOCKED)
    UPDATE tomqueue_jobs j SET released_at = now()
    FROM stale WHERE j.id = stale.id
    RETURNING {J_COLUMNS}"""

OWN_LOCKS = """SELECT id, locked_by FROM tomqueue_jobs
    WHERE locked_at IS NOT NULL AND lock_key = :key
      AND locked_by IS NOT NULL AND failed_at IS NULL"""

RELEASE_STRANDED = f"""UPDATE tomqueue_jobs j SET released_at = now(),
        locked_at = NULL, locked_by = NULL, lock_key = NULL, updated_at = now(),
        {keep_unique_key("j", "CAST(:ids AS bigint[])")}
    FROM unnest(CAST(:ids AS bigint[]), CAST(:holders AS text[])) AS s(id, locked_by)
    WHERE j.id = s.id AND j.locked_by = s.locked_by AND j.failed_at IS NULL
    RETURNING {J_COLUMNS}"""

# -- cron schedules (tomqueue_cron_fires, migration 0007) ---------------------------------

# claimed by the one manager whose insert wrote the row; the others' do nothing
CRON_CLAIM = """INSERT INTO tomqueue_cron_fires (name, fire_at, job_id)
    VALUES (:name, :fire_at, NULL) ON CONFLICT (name, fire_at) DO NOTHING RETURNING name"""

CRON_LINK = """UPDATE tomqueue_cron_fires SET job_id = :job_id
    WHERE name = :name AND fire_at = :fire_at"""

CRON_LAST = """SELECT name, max(fire_at) AS fire_at FROM tomqueue_cron_fires
    WHERE name = ANY(CAST(:names AS text[])) GROUP BY name"""

CRON_LAST_RUN = """SELECT DISTINCT ON (name) name, fire_at, job_id FROM tomqueue_cron_fires
    WHERE name = ANY(CAST(:names AS text[])) AND job_id IS NOT NULL
    ORDER BY name, fire_at DESC"""

# old fire records go; each schedule's newest stays, so its next fire time is still known
CRON_PURGE = """DELETE FROM tomqueue_cron_fires f
    WHERE f.recorded_at < now() - make_interval(secs => :keep)
      AND f.fire_at < (SELECT max(n.fire_at) FROM tomqueue_cron_fires n WHERE n.name = f.name)"""

# -- metrics (tomqueue.metrics: tomqueue_jobs and tomqueue_oldest_job_age_seconds) ----------

# Jobs by state and queue, read at scrape time (and cached there). Each branch is driven by
# one partial index, so none reads the rows of another state: running by
# ix_tomqueue_jobs_locked_at, failed by ix_tomqueue_jobs_failed_at, and the waiting rows
# (queued when due, else scheduled) by ix_tomqueue_jobs_released_at (announced) and
# ix_tomqueue_jobs_unreleased_run_at (for the deferred manager). ``oldest`` is the run_at
# of the longest-waiting due job.
JOB_GAUGES = """SELECT queue, 'running' AS state, count(*) AS n, NULL::timestamptz AS oldest,
        now() AS db_now
    FROM tomqueue_jobs WHERE locked_at IS NOT NULL AND locked_by IS NOT NULL
      AND failed_at IS NULL GROUP BY queue
    UNION ALL
    SELECT queue, 'failed', count(*), NULL, now()
    FROM tomqueue_jobs WHERE failed_at IS NOT NULL GROUP BY queue
    UNION ALL
    SELECT w.queue, CASE WHEN w.run_at <= now() THEN 'queued' ELSE 'scheduled' END,
        count(*), min(w.run_at) FILTER (WHERE w.run_at <= now()), now()
    FROM (SELECT queue, run_at FROM tomqueue_jobs
          WHERE failed_at IS NULL AND locked_at IS NULL AND released_at IS NOT NULL
          UNION ALL
          SELECT queue, run_at FROM tomqueue_jobs
          WHERE failed_at IS NULL AND released_at IS NULL AND locked_at IS NULL) AS w
    GROUP BY 1, 2"""
