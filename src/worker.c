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
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
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

PGDLLEXPORT void rtrec_worker_main(Datum main_arg);

static void
set_worker_locktag(LOCKTAG *tag)
{
	/* field4 = 0x7274 keeps clear of pg_advisory_lock's keys (1 and 2) */
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, 0x72747265, 0x63737767, 0x7274);
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

	if (rate_limited && last_check != 0 &&
		!TimestampDifferenceExceeds(last_check, now, ENSURE_INTERVAL_MS))
		return;
	last_check = now;
	if (RecoveryInProgress())
		return;					/* a standby only reads; the primary refreshes */

	set_worker_locktag(&tag);
	if (LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
		return;					/* the worker holds it: running */
	LockRelease(&tag, ExclusiveLock, false);

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
	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		ereport(WARNING,
				(errmsg("rtrec could not start its Swing refresh worker"),
				 errhint("Raise max_worker_processes; until then Swing neighbours are refreshed only by rtrec_swing_refresh().")));
}

static bool
extension_installed(void)
{
	return OidIsValid(get_namespace_oid(RTREC_SCHEMA, true)) &&
		OidIsValid(get_relname_relid("swing_queue", get_namespace_oid(RTREC_SCHEMA, true)));
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

void
rtrec_worker_main(Datum main_arg)
{
	Oid			database = DatumGetObjectId(main_arg);
	Oid			role;
	LOCKTAG		tag;
	TimestampTz last_work;
	TimestampTz last_trending;
	bool		trending_due = true;	/* refresh once at start */

	memcpy(&role, MyBgworkerEntry->bgw_extra, sizeof(role));
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(database, role, 0);
	pgstat_report_appname("rtrec swing refresher");
	/* its kept plans look keys up: never let one planned on an empty table scan it */
	SetConfigOption("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("jit", "off", PGC_USERSET, PGC_S_SESSION);
	/* a DBA's global timeouts must not cancel refreshes in a restart loop */
	SetConfigOption("statement_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("lock_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);

	set_worker_locktag(&tag);
	if (LockAcquire(&tag, ExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
		proc_exit(0);			/* another worker serves this database */

	last_work = last_trending = GetCurrentTimestamp();
	for (;;)
	{
		int64		refreshed = 0;
		bool		installed;
		bool		refresh_trending;

		CHECK_FOR_INTERRUPTS();
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		installed = extension_installed();
		if (installed)
		{
			pgstat_report_activity(STATE_RUNNING, "rtrec: refreshing Swing neighbours");
			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "SPI_connect failed");
			refreshed = RtrecSwingRefresh(WORKER_BATCH_ROWS);
			trending_due = trending_due || refreshed > 0;
			refresh_trending = trending_due &&
				TimestampDifferenceExceeds(last_trending, GetCurrentTimestamp(),
										   (int) (RtrecGetSettings()->trending_refresh_s * 1000));
			if (refresh_trending)
			{
				pgstat_report_activity(STATE_RUNNING, "rtrec: refreshing trending items");
				RtrecRefreshTrending();
				last_trending = GetCurrentTimestamp();
				trending_due = false;
			}
			SPI_finish();
		}
		PopActiveSnapshot();
		CommitTransactionCommand();
		pgstat_report_activity(STATE_IDLE, NULL);
		if (!installed)
			proc_exit(0);		/* DROP EXTENSION: do not come back */

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
						 WORKER_NAP_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
