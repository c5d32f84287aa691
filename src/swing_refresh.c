/*-------------------------------------------------------------------------
 *
 * swing_refresh.c
 *	  Keeps rtrec.swing_neighbors equal to the Swing formula as events arrive.
 *
 * The ingest trigger appends one row per (user, item) of a batch to
 * rtrec.swing_queue, flagged new_pair when the user had not interacted with
 * the item before.  A refresh drains queue rows and recomputes, exactly, the
 * neighbour lists that those events can have changed:
 *   - item i of every row (its user set, or the recency order that the
 *	   per-item cap keeps, changed);
 *   - for a user with new pairs, every item of I_u: |I_u| changed, so w_u and
 *	   the |I_u ∩ I_v| of u's pairs changed, in every list u takes part in.
 *	   Skipped when u is ignored by Swing both before and after (over
 *	   swing_max_items_per_user, or still under swing_min_items_per_user).
 * Queue rows are deleted in the transaction that rewrites the lists, so a
 * crash loses nothing: the rows are still there after recovery.  Writers of
 * swing_neighbors (refresh, rebuild) serialize on a SHARE ROW EXCLUSIVE lock;
 * the ingest trigger never touches that table.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "compat.h"
#include "rtrec.h"
#include "swing.h"

/* lists rewritten per statement pair */
#define REWRITE_CHUNK 256
/* from this many dirty lists on, one load of the whole graph is cheaper */
#define GRAPH_THRESHOLD 2000

static SPIPlanPtr drain_plan = NULL;
static SPIPlanPtr delete_plan = NULL;
static SPIPlanPtr insert_plan = NULL;

/*
 * Serializes writers of the neighbour lists.  rtrec.events is locked first,
 * as every other rtrec path does (INSERT, TRUNCATE, rtrec_rebuild), so that
 * a refresh never holds state-table locks that a TRUNCATE waits for while
 * waiting for the TRUNCATE itself.
 */
static void
lock_neighbors(void)
{
	if (SPI_execute("LOCK TABLE rtrec.events IN ACCESS SHARE MODE", false, 0) != SPI_OK_UTILITY ||
		SPI_execute("LOCK TABLE rtrec.swing_neighbors IN SHARE ROW EXCLUSIVE MODE",
					false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not lock rtrec.swing_neighbors");
}

/* Rows for one of the neighbour tables, filled list by list */
typedef struct ListRows
{
	Datum	   *owner;
	Datum	   *neighbor;
	Datum	   *score;
	Datum	   *rank;
	int			n;
} ListRows;

static void
list_rows_init(ListRows *rows, int capacity)
{
	rows->owner = palloc(sizeof(Datum) * Max(1, capacity));
	rows->neighbor = palloc(sizeof(Datum) * Max(1, capacity));
	rows->score = palloc(sizeof(Datum) * Max(1, capacity));
	rows->rank = palloc(sizeof(Datum) * Max(1, capacity));
	rows->n = 0;
}

static void
list_rows_add(ListRows *rows, int64 owner, const SwingNeighbor *list, int n)
{
	for (int r = 0; r < n; r++)
	{
		rows->owner[rows->n] = Int64GetDatum(owner);
		rows->neighbor[rows->n] = Int64GetDatum(list[r].item_id);
		rows->score[rows->n] = Float8GetDatum(list[r].score);
		rows->rank[rows->n] = Int32GetDatum(r + 1);
		rows->n++;
	}
}

static void
list_rows_store(ListRows *rows, SPIPlanPtr plan)
{
	Datum		args[4];

	if (rows->n == 0)
		return;
	args[0] = PointerGetDatum(construct_array(rows->owner, rows->n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[1] = PointerGetDatum(construct_array(rows->neighbor, rows->n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[2] = PointerGetDatum(construct_array(rows->score, rows->n, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[3] = PointerGetDatum(construct_array(rows->rank, rows->n, INT4OID, 4, true, TYPALIGN_INT));
	if (SPI_execute_plan(plan, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not store neighbour lists");
}

static SPIPlanPtr delete_cf_plan = NULL;
static SPIPlanPtr insert_cf_plan = NULL;

static void
prepare_rewrite_plans(void)
{
	Oid			del_types[1] = {INT8ARRAYOID};
	Oid			ins_types[4] = {INT8ARRAYOID, INT8ARRAYOID, FLOAT8ARRAYOID, INT4ARRAYOID};

	/* one by one: a pass rolled back half-way (lock timeout) comes back here */
	if (delete_plan == NULL)
		delete_plan = RtrecPrepareKept("DELETE FROM rtrec.swing_neighbors WHERE item_id = ANY($1)",
									   1, del_types);
	if (delete_cf_plan == NULL)
		delete_cf_plan = RtrecPrepareKept("DELETE FROM rtrec.cf_neighbors WHERE item_id = ANY($1)",
										  1, del_types);
	if (insert_plan == NULL)
		insert_plan = RtrecPrepareKept("INSERT INTO rtrec.swing_neighbors (item_id, neighbor_id, score, rank)"
									   " SELECT * FROM unnest($1::int8[], $2::int8[], $3::float8[], $4::int4[])",
									   4, ins_types);
	if (insert_cf_plan == NULL)
		insert_cf_plan = RtrecPrepareKept("INSERT INTO rtrec.cf_neighbors (item_id, neighbor_id, score, rank)"
										  " SELECT * FROM unnest($1::int8[], $2::int8[], $3::float8[], $4::int4[])",
										  4, ins_types);
}

/*
 * Recomputes and stores the Swing and CF lists of items[0..n-1].  The caller
 * holds the swing_neighbors lock.  The lists are computed from a fresh
 * snapshot: it must see at least what the caller's drain saw (the events
 * behind the queue rows it deleted), and the reads run read-only on the
 * active snapshot.
 */
static void
rewrite_neighbors(const int64 *items, int n)
{
	const RtrecSettings *cfg = RtrecGetSettings();
	MemoryContext chunk_context = AllocSetContextCreate(CurrentMemoryContext,
														"rtrec swing rewrite",
														ALLOCSET_DEFAULT_SIZES);
	SwingGraph *graph;

	prepare_rewrite_plans();
	PushActiveSnapshot(GetTransactionSnapshot());
	graph = (n >= GRAPH_THRESHOLD) ? RtrecSwingGraphLoad() : NULL;
	for (int start = 0; start < n; start += REWRITE_CHUNK)
	{
		int			count = Min(REWRITE_CHUNK, n - start);
		MemoryContext old = MemoryContextSwitchTo(chunk_context);
		ListRows	swing_rows;
		ListRows	cf_rows;
		Datum		args[1];

		list_rows_init(&swing_rows, count * cfg->swing_neighbors);
		list_rows_init(&cf_rows, count * cfg->swing_neighbors);
		for (int k = 0; k < count; k++)
		{
			NeighborLists lists;

			CHECK_FOR_INTERRUPTS();
			if (graph != NULL)
				RtrecNeighborsComputeFromGraph(graph, items[start + k], cfg->swing_neighbors, &lists);
			else
				RtrecNeighborsCompute(items[start + k], cfg->swing_neighbors, true, &lists);
			list_rows_add(&swing_rows, items[start + k], lists.swing, lists.n_swing);
			list_rows_add(&cf_rows, items[start + k], lists.cf, lists.n_cf);
		}
		args[0] = RtrecInt8Array(items + start, count);
		if (SPI_execute_plan(delete_plan, args, NULL, false, 0) != SPI_OK_DELETE ||
			SPI_execute_plan(delete_cf_plan, args, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not delete old neighbour lists");
		list_rows_store(&swing_rows, insert_plan);
		list_rows_store(&cf_rows, insert_cf_plan);
		MemoryContextSwitchTo(old);
		MemoryContextReset(chunk_context);
	}
	PopActiveSnapshot();
	MemoryContextDelete(chunk_context);
}

/*
 * Registers the items that an event left to a concurrent transaction (see
 * register_items in ingest.c).  Waiting here for such a transaction is safe:
 * it never waits for the refresher.
 */
static void
register_pending_items(void)
{
	if (SPI_execute("WITH p AS (DELETE FROM rtrec.pending_items RETURNING item_id)"
					" INSERT INTO rtrec.items (item_id, auto_registered)"
					" SELECT DISTINCT item_id, true FROM p ORDER BY 1"
					" ON CONFLICT (item_id) DO NOTHING", false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not register pending items");
}

/*
 * Drains up to max_rows rows of rtrec.swing_queue and rewrites the lists
 * they dirty.  Returns the number of lists rewritten (0: queue was empty).
 */
int64
RtrecSwingRefresh(int max_rows)
{
	const RtrecSettings *cfg = RtrecGetSettings();
	Datum		args[4];
	int64	   *items;
	int64		n;

	/* before preparing the drain, whose parse analysis locks the queue */
	lock_neighbors();
	if (drain_plan == NULL)
	{
		Oid			types[3] = {INT4OID, INT4OID, INT4OID};

		drain_plan = RtrecPrepareKept(
								  "WITH q AS ("
								  "  DELETE FROM rtrec.swing_queue WHERE ctid = ANY (ARRAY("
								  "    SELECT ctid FROM rtrec.swing_queue LIMIT $1))"
								  "  RETURNING item_id, user_id, new_pair),"
								  " fresh AS ("
								  /* every queued new pair of the user, drained now or later (the
								   * statement's snapshot still sees the rows q deletes), in one
								   * pass over the queue */
								  "  SELECT qq.user_id, count(DISTINCT qq.item_id) AS n_new FROM rtrec.swing_queue qq"
								  "   WHERE qq.new_pair AND qq.user_id IN (SELECT user_id FROM q WHERE new_pair)"
								  "   GROUP BY qq.user_id),"
								  " affected AS ("
								  "  SELECT f.user_id FROM fresh f, LATERAL ("
								  "    SELECT count(*) AS n_items FROM (SELECT DISTINCT s.item_id"
								  "      FROM rtrec.user_item_state s WHERE s.user_id = f.user_id"
								  "      LIMIT $3 + f.n_new + 1) d) c"
								  "   WHERE c.n_items >= $2 AND c.n_items - f.n_new <= $3)"
								  " SELECT item_id FROM q"
								  " UNION"
								  " SELECT s.item_id FROM affected a"
								  "   JOIN rtrec.user_item_state s ON s.user_id = a.user_id"
								  " ORDER BY 1",
								  3, types);
	}

	register_pending_items();
	args[0] = Int32GetDatum(max_rows);
	args[1] = Int32GetDatum(cfg->swing_min_items_per_user);
	args[2] = Int32GetDatum(Min(cfg->swing_max_items_per_user, PG_INT32_MAX / 4));
	if (SPI_execute_plan(drain_plan, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not drain rtrec.swing_queue");
	n = (int64) SPI_processed;
	items = palloc(sizeof(int64) * Max(1, n));
	for (int64 r = 0; r < n; r++)
	{
		bool		isnull;

		items[r] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r],
											   SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);
	rewrite_neighbors(items, (int) n);
	pfree(items);
	return n;
}

/* Rewrites the trending cache (rtrec.trending_items) */
void
RtrecRefreshTrending(void)
{
	if (SPI_execute("SELECT rtrec.refresh_trending()", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not refresh rtrec.trending_items");
}

/*
 * rtrec_swing_refresh() -> bigint: drains the whole queue now, in the
 * caller's transaction (tests, or right after a bulk load), and refreshes
 * the trending cache.  Returns the
 * number of neighbour lists rewritten.
 */
PG_FUNCTION_INFO_V1(rtrec_swing_refresh);
Datum
rtrec_swing_refresh(PG_FUNCTION_ARGS)
{
	int64		total = 0;
	int64		n;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	do
	{
		CHECK_FOR_INTERRUPTS();
		n = RtrecSwingRefresh(10000);
		total += n;
		CommandCounterIncrement();
	} while (n > 0);
	RtrecRefreshTrending();
	SPI_finish();
	PG_RETURN_INT64(total);
}

/*
 * Rewrites the lists of items[0..n-1] now, whatever the queue holds
 * (rtrec_train: just the lists a request is about to read).
 */
void
RtrecSwingRewrite(const int64 *items, int n)
{
	lock_neighbors();
	rewrite_neighbors(items, n);
}
