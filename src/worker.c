/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The per-database background worker that keeps Swing fresh.
 *
 * No shared_preload_libraries and no job for the user to schedule: backends
 * that write events call RtrecSwingWorkerEnsure() after queueing them (the
 * read functions too, at most once a second each).  It tries the worker's advisory lock; if it
 * gets it, no worker runs in this database, so it registers a dynamic
 * background worker.  The worker holds that lock for its whole life, so at
 * most one runs per database (a second one exits at once).
 *
 * The worker drains rtrec.swing_queue every 100 ms (at once while there is
 * work), rewrites the trending cache at most every trending_refresh_s while
 * events arrive, and exits after 3 s with nothing to do, so that DROP DATABASE
 * (which waits 5 s for other sessions) works on an idle database; the next
 * event starts it again.  Its only state
 * is the queue table, so crashes and restarts lose nothing.  It exits for
 * good (code 0) when the extension is dropped.
 *
 * The worker always gives way to DDL (DROP EXTENSION, TRUNCATE rtrec.events,
 * ALTER EXTENSION UPDATE, ...): a pass takes every lock it needs up front
 * without waiting, and backs off if one is taken or awaited; any other lock
 * wait ends after lock_timeout (WORKER_LOCK_TIMEOUT, well under the default
 * deadlock_timeout of 1 s), and the pass is rolled back and retried later.
 * So the worker is never the half of a deadlock that makes the user's
 * statement fail.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "rtrec.h"
#include "swing.h"

#define WORKER_NAP_MS		100
#define WORKER_IDLE_EXIT_MS	3000
#define WORKER_BATCH_ROWS	5000
#define ENSURE_INTERVAL_MS	1000
#define WORKER_LOCK_TIMEOUT	"100ms"
#define WORKER_BACKOFF_MAX_MS	2000

PGDLLEXPORT void rtrec_worker_main(Datum main_arg);

static void
set_worker_locktag(LOCKTAG *tag)
{
	/* field4 = 0x7274 keeps clear of pg_advisory_lock's keys (1 and 2) */
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, 0x72747265, 0x63737767, 0x7274);
}

/*
 * Whether the worker this session registered last may still be on its way
 * to its lock: registered but not started, or started less than a second
 * ago (it exits when idle only after 3 s, so it is not leaving).  Another
 * registration then would only start a worker that exits at once, and a
 * fast series of INSERT statements would fill every free worker slot.
 */
static BackgroundWorkerHandle *registered = NULL;
static TimestampTz registered_at = 0;

/*
 * Whether this session's last try to register a worker failed (no free
 * slot).  Until one succeeds, it tries at most once a second, like the
 * readers: every attempt takes BackgroundWorkerLock and scans every slot,
 * and a busy writer would otherwise pay that on each INSERT statement.
 */
static bool registration_failed = false;

static bool
registered_worker_starting(TimestampTz now)
{
	pid_t		pid;
	BgwHandleStatus status;

	if (registered == NULL)
		return false;
	status = GetBackgroundWorkerPid(registered, &pid);
	if (status == BGWH_NOT_YET_STARTED ||
		(status == BGWH_STARTED && !TimestampDifferenceExceeds(registered_at, now, 1000)))
		return true;
	pfree(registered);
	registered = NULL;
	return false;
}

void
RtrecSwingWorkerEnsure(bool rate_limited)
{
	static TimestampTz last_check = 0;
	TimestampTz now = GetCurrentTimestamp();
	LOCKTAG		tag;
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	Oid			role = GetUserId();
	MemoryContext old;
	bool		started;

	if ((rate_limited || registration_failed) && last_check != 0 &&
		!TimestampDifferenceExceeds(last_check, now, ENSURE_INTERVAL_MS))
		return;
	last_check = now;
	if (RecoveryInProgress())
		return;					/* a standby only reads; the primary refreshes */

	set_worker_locktag(&tag);
	if (LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
	{
		registration_failed = false;	/* a worker runs after all */
		return;					/* the worker holds it: running */
	}
	LockRelease(&tag, ExclusiveLock, false);
	if (registered_worker_starting(now))
		return;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 1;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "rtrec");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "rtrec_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "rtrec swing refresher (database %u)", MyDatabaseId);
	snprintf(worker.bgw_type, BGW_MAXLEN, "rtrec swing refresher");
	worker.bgw_main_arg = ObjectIdGetDatum(MyDatabaseId);
	memcpy(worker.bgw_extra, &role, sizeof(role));
	worker.bgw_notify_pid = 0;
	old = MemoryContextSwitchTo(TopMemoryContext);	/* the handle outlives the statement */
	started = RegisterDynamicBackgroundWorker(&worker, &handle);
	MemoryContextSwitchTo(old);
	registration_failed = !started;
	if (started)
	{
		registered = handle;
		registered_at = now;
	}
	else
	{
		/* once a minute per session, not on every statement of a busy writer */
		static TimestampTz last_warning = 0;

		if (last_warning == 0 || TimestampDifferenceExceeds(last_warning, now, 60 * 1000))
		{
			last_warning = now;
			ereport(WARNING,
					(errmsg("rtrec could not start its Swing refresh worker"),
					 errhint("Raise max_worker_processes; until then Swing neighbours are refreshed only by rtrec_swing_refresh().")));
		}
	}
}

static bool
extension_installed(void)
{
	return OidIsValid(get_extension_oid("rtrec", true)) &&
		OidIsValid(get_namespace_oid(RTREC_SCHEMA, true));
}

typedef enum PassResult
{
	PASS_DONE,					/* the pass ran (perhaps with nothing to do) */
	PASS_BUSY,					/* a lock it needs is taken or awaited: later */
	PASS_GONE					/* the extension was dropped */
} PassResult;

/*
 * Every relation a pass touches (queue drain, list rewrite, pending
 * registrations, trending cache, settings cache), in the strongest mode the
 * pass takes on it.  rtrec.events comes first, as on every rtrec path.
 */
static const struct
{
	const char *relname;
	LOCKMODE	mode;
}			pass_relations[] =
{
	{"events", AccessShareLock},
	{"swing_neighbors", ShareRowExclusiveLock},
	{"cf_neighbors", RowExclusiveLock},
	{"swing_queue", RowExclusiveLock},
	{"pending_items", RowExclusiveLock},
	{"items", RowExclusiveLock},
	{"user_item_state", AccessShareLock},
	{"item_state", AccessShareLock},
	{"trending_items", RowExclusiveLock},
	{"config", AccessShareLock},
	{"event_types", AccessShareLock},
	{"model_weights", AccessShareLock},
};

/*
 * Takes the pass's locks without waiting.  DROP EXTENSION locks the members
 * in creation order, TRUNCATE rtrec.events locks events and then the state
 * tables: a pass that held some of its tables and waited for the rest could
 * close a cycle with them, and deadlock detection fails the session that
 * waited first, usually the DDL.  Holding all or none, a pass never waits for
 * a relation while it holds one.
 */
static PassResult
lock_pass_relations(void)
{
	Oid			nsp = get_namespace_oid(RTREC_SCHEMA, true);
	Oid			relids[lengthof(pass_relations)];

	if (!extension_installed())
		return PASS_GONE;
	for (int i = 0; i < lengthof(pass_relations); i++)
	{
		relids[i] = get_relname_relid(pass_relations[i].relname, nsp);
		if (!OidIsValid(relids[i]))
			return PASS_GONE;
		if (!ConditionalLockRelationOid(relids[i], pass_relations[i].mode))
			return PASS_BUSY;
	}
	/* a DROP (or a DROP and CREATE) may have committed before our locks */
	if (!extension_installed())
		return PASS_GONE;
	for (int i = 0; i < lengthof(pass_relations); i++)
		if (get_relname_relid(pass_relations[i].relname, get_namespace_oid(RTREC_SCHEMA, true)) != relids[i])
			return PASS_BUSY;
	return PASS_DONE;
}

/*
 * Decides whether an idle worker may exit without leaving queued work
 * behind.  Writers check for a worker after queueing, while they hold the
 * queue's ROW EXCLUSIVE lock until commit.  So: let go of the worker lock
 * (a writer from now on starts a new worker), then take the queue in SHARE
 * mode without waiting: if that fails, a writer is in flight that may have
 * seen us alive, so stay; if it succeeds and the queue is empty, nothing can
 * be stranded.  Staying means taking the worker lock back (if another worker
 * got it meanwhile, that one serves the database and we exit).
 */
static bool
may_exit(LOCKTAG *tag)
{
	bool		empty = false;
	Oid			queue;

	LockRelease(tag, ExclusiveLock, true);
	StartTransactionCommand();
	queue = get_relname_relid("swing_queue", get_namespace_oid(RTREC_SCHEMA, true));
	if (OidIsValid(queue) && ConditionalLockRelationOid(queue, ShareLock))
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute("SELECT 1 FROM rtrec.swing_queue LIMIT 1", true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read rtrec.swing_queue");
		empty = (SPI_processed == 0);
		SPI_finish();
		PopActiveSnapshot();
	}
	CommitTransactionCommand();
	if (empty)
		return true;
	return LockAcquire(tag, ExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL;
}

/*
 * One pass in one transaction: drain a batch of the queue and, when due,
 * rewrite the trending cache.  A lock wait that times out (or a deadlock
 * this worker detects) rolls the pass back and reports PASS_BUSY; any other
 * error ends the worker (exit code 1: the postmaster starts it again).
 */
static PassResult
refresh_pass(int64 *refreshed, bool *trending_due, TimestampTz *last_trending)
{
	MemoryContext outer = CurrentMemoryContext;
	volatile PassResult result = PASS_DONE;

	*refreshed = 0;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		result = lock_pass_relations();
		if (result == PASS_DONE)
		{
			pgstat_report_activity(STATE_RUNNING, "rtrec: refreshing Swing neighbours");
			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "SPI_connect failed");
			*refreshed = RtrecSwingRefresh(WORKER_BATCH_ROWS);
			*trending_due = *trending_due || *refreshed > 0;
			if (*trending_due &&
				TimestampDifferenceExceeds(*last_trending, GetCurrentTimestamp(),
										   (int) (RtrecGetSettings()->trending_refresh_s * 1000)))
			{
				pgstat_report_activity(STATE_RUNNING, "rtrec: refreshing trending items");
				RtrecRefreshTrending();
				*last_trending = GetCurrentTimestamp();
				*trending_due = false;
			}
			SPI_finish();
		}
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(outer);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE &&
			edata->sqlerrcode != ERRCODE_T_R_DEADLOCK_DETECTED)
			PG_RE_THROW();
		HOLD_INTERRUPTS();
		AbortCurrentTransaction();
		FlushErrorState();
		RESUME_INTERRUPTS();
		ereport(DEBUG1,
				(errmsg("rtrec swing refresher gave way to a lock request: %s", edata->message)));
		FreeErrorData(edata);
		*refreshed = 0;
		result = PASS_BUSY;
	}
	PG_END_TRY();
	pgstat_report_activity(STATE_IDLE, NULL);
	return result;
}

void
rtrec_worker_main(Datum main_arg)
{
	Oid			database = DatumGetObjectId(main_arg);
	Oid			role;
	LOCKTAG		tag;
	TimestampTz last_work;
	TimestampTz last_trending;
	/*
	 * Not at start: readers start a worker too (once a second, for queued
	 * work a crash left), and on a large database a rewrite of the trending
	 * cache costs seconds of CPU every time.  Every event that changes a
	 * trend queues a row, whose drain makes the cache due.
	 */
	bool		trending_due = false;
	int			backoff_ms = 0;

	memcpy(&role, MyBgworkerEntry->bgw_extra, sizeof(role));
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(database, role, 0);
	pgstat_report_appname("rtrec swing refresher");
	/* its kept plans look keys up: never let one planned on an empty table scan it */
	SetConfigOption("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("jit", "off", PGC_USERSET, PGC_S_SESSION);
	/*
	 * A DBA's global timeouts must not cancel refreshes in a restart loop; a
	 * short lock_timeout of our own makes the worker, not a DDL statement,
	 * give way when their lock waits cross (see lock_pass_relations).
	 */
	SetConfigOption("statement_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("lock_timeout", WORKER_LOCK_TIMEOUT, PGC_SUSET, PGC_S_OVERRIDE);

	set_worker_locktag(&tag);
	if (LockAcquire(&tag, ExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
		proc_exit(0);			/* another worker serves this database */

	last_work = last_trending = GetCurrentTimestamp();
	for (;;)
	{
		int64		refreshed;
		PassResult	result;

		CHECK_FOR_INTERRUPTS();
		result = refresh_pass(&refreshed, &trending_due, &last_trending);
		if (result == PASS_GONE)
			proc_exit(0);		/* DROP EXTENSION: do not come back */

		/* busy: someone holds or awaits a lock we need; back off, holding none */
		if (result == PASS_BUSY)
			backoff_ms = Min(Max(backoff_ms * 2, WORKER_NAP_MS), WORKER_BACKOFF_MAX_MS);
		else
			backoff_ms = 0;
		if (refreshed > 0)
		{
			last_work = GetCurrentTimestamp();
			continue;
		}
		if (!trending_due &&
			TimestampDifferenceExceeds(last_work, GetCurrentTimestamp(), WORKER_IDLE_EXIT_MS))
		{
			if (may_exit(&tag))
				proc_exit(0);
			last_work = GetCurrentTimestamp();
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 backoff_ms > 0 ? backoff_ms : WORKER_NAP_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
