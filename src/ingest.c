/*-------------------------------------------------------------------------
 *
 * ingest.c
 *	  Triggers on rtrec.events that keep the derived state current.
 *
 * rtrec_events_check (BEFORE INSERT, per row) rejects bad events with a clear
 * error before anything is written.  rtrec_events_apply (AFTER INSERT, per
 * statement, over the transition table) folds the whole batch into the
 * state tables (state_write.c): a single-row INSERT, a multi-row INSERT and
 * a COPY take the same path.  The batch's (user, item) pairs are queued for
 * the Swing refresher (swing_refresh.c).
 *
 * Concurrency.  Each state table is keyed by (key..., slot), and a backend
 * writes only rows of its own slot, RtrecWriterSlot(): no two live backends
 * share one.  So concurrent transactions never wait for each other's row
 * locks, whatever their events and their order: no hot rows, no deadlocks,
 * and no lost updates (a slot's rows have one writer at a time).
 * Readers merge the slots of a key; decayed sums are in log2 form so merging
 * is an addition (decay.c).  The one shared unique key a trigger inserts is
 * a new item's catalog row; we first look for it with a dirty snapshot and
 * leave it to the transaction that is already registering it, so two
 * transactions do not wait for each other there either.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

#include "compat.h"
#include "ingest.h"
#include "key_cursor.h"
#include "rtrec.h"

/*
 * A statement's events are folded in chunks of as many events as
 * maintenance_work_mem holds, at this many bytes each, and never fewer than
 * INGEST_MIN_CHUNK.  Counted from the structures: the event (64, sorted in
 * place), its item's entries (8 + 24 + 8), and a new row's deferred index
 * entry (40, up to twice that as the array grows): 184, rounded up.  Each
 * chunk writes a key's row once: the fewer chunks a bulk load takes, the
 * fewer times it updates a row.
 */
#define INGEST_BYTES_PER_EVENT 200
#define INGEST_MIN_CHUNK 65536

/* Column positions of rtrec.events, found by name */
typedef struct EventColumns
{
	AttrNumber	event_id;
	AttrNumber	user_id;
	AttrNumber	item_id;
	AttrNumber	event_type;
	AttrNumber	ts;
} EventColumns;

static AttrNumber
column_number(Relation rel, const char *name)
{
	int			attnum = SPI_fnumber(RelationGetDescr(rel), name);

	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist",
						name, RelationGetRelationName(rel)),
				 errhint("Reinstall the extension.")));
	return (AttrNumber) attnum;
}

/*
 * Checks that a trigger fires on rtrec.events (the triggers write derived
 * state with the extension owner's rights, so they refuse any other table)
 * and returns the column positions.  Both are worked out once per relcache
 * entry (a changed descriptor means a rebuilt entry): the row trigger runs
 * for every event.
 */
static void
events_relation(TriggerData *trigdata, const char *name, EventColumns *cols)
{
	static Oid	cached_relid = InvalidOid;
	static TupleDesc cached_desc = NULL;
	static EventColumns cached;
	Relation	rel = trigdata->tg_relation;

	if (RelationGetRelid(rel) != cached_relid || RelationGetDescr(rel) != cached_desc)
	{
		cached_relid = InvalidOid;
		if (RelationGetNamespace(rel) != get_namespace_oid(RTREC_SCHEMA, true) ||
			strcmp(RelationGetRelationName(rel), "events") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
					 errmsg("%s() fired on relation \"%s\"", name, RelationGetRelationName(rel)),
					 errhint("It may only be a trigger on rtrec.events.")));
		cached.event_id = column_number(rel, "event_id");
		cached.user_id = column_number(rel, "user_id");
		cached.item_id = column_number(rel, "item_id");
		cached.event_type = column_number(rel, "event_type");
		cached.ts = column_number(rel, "ts");
		cached_desc = RelationGetDescr(rel);
		cached_relid = RelationGetRelid(rel);
	}
	*cols = cached;
}

static void
require_trigger(FunctionCallInfo fcinfo, const char *name)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s() must be called as a trigger", name),
				 errhint("It is installed on rtrec.events by CREATE EXTENSION rtrec.")));
}

static void
null_column_error(const char *column, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_NOT_NULL_VIOLATION),
			 errmsg("event %s must not be NULL", column),
			 errdetail("rtrec.events.%s is NULL in the row being inserted.", column),
			 errhint("%s", hint)));
}

/*
 * BEFORE INSERT FOR EACH ROW on rtrec.events: reject NULL ids, an unknown
 * event type and a non-finite time, naming the bad value.
 */
PG_FUNCTION_INFO_V1(rtrec_events_check);
Datum
rtrec_events_check(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	HeapTuple	tuple;
	TupleDesc	desc;
	EventColumns cols;
	bool		isnull;
	Datum		value;
	char	   *event_type;
	double		weight;

	require_trigger(fcinfo, "rtrec.events_check");
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("rtrec.events_check() must be fired BEFORE INSERT FOR EACH ROW")));
	events_relation(trigdata, "rtrec.events_check", &cols);

	tuple = trigdata->tg_trigtuple;
	desc = RelationGetDescr(trigdata->tg_relation);

	(void) heap_getattr(tuple, cols.user_id, desc, &isnull);
	if (isnull)
		null_column_error("user_id", "Every event needs the id of the user who acted.");
	(void) heap_getattr(tuple, cols.item_id, desc, &isnull);
	if (isnull)
		null_column_error("item_id", "Every event needs the id of the item acted on.");

	value = heap_getattr(tuple, cols.event_type, desc, &isnull);
	if (isnull)
		null_column_error("event_type", "Use one of the types listed in rtrec.event_types.");
	event_type = TextDatumGetCString(value);
	if (!RtrecLookupEventWeight(event_type, &weight))
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("unknown event type \"%s\"", event_type),
				 errdetail("rtrec.event_types has no row for \"%s\".", event_type),
				 errhint("Use a type listed in rtrec.event_types, or add it: "
						 "INSERT INTO rtrec.event_types VALUES ('%s', 1);", event_type)));

	value = heap_getattr(tuple, cols.ts, desc, &isnull);
	if (isnull)
		null_column_error("ts", "Leave ts out to use the current time.");
	if (TIMESTAMP_NOT_FINITE(DatumGetTimestampTz(value)))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("event time \"%s\" is not finite",
						TIMESTAMP_IS_NOBEGIN(DatumGetTimestampTz(value)) ? "-infinity" : "infinity"),
				 errhint("Give the time the event happened, or leave ts out to use the current time.")));

	return PointerGetDatum(tuple);
}

/* Rejects UPDATE of rtrec.events (BEFORE UPDATE FOR EACH STATEMENT) */
PG_FUNCTION_INFO_V1(rtrec_events_reject_update);
Datum
rtrec_events_reject_update(PG_FUNCTION_ARGS)
{
	require_trigger(fcinfo, "rtrec.events_reject_update");
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("rtrec.events is append-only: UPDATE is not allowed"),
			 errdetail("The derived features count every event as it was inserted."),
			 errhint("Insert a corrective event instead; to remove events, DELETE them and run SELECT rtrec_rebuild();")));
	PG_RETURN_NULL();
}

/* AFTER TRUNCATE of rtrec.events: the derived state goes with it */
PG_FUNCTION_INFO_V1(rtrec_events_truncate);
Datum
rtrec_events_truncate(PG_FUNCTION_ARGS)
{
	EventColumns cols;

	require_trigger(fcinfo, "rtrec.events_truncate");
	events_relation((TriggerData *) fcinfo->context, "rtrec.events_truncate", &cols);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("TRUNCATE rtrec.user_state, rtrec.item_state, rtrec.user_item_state, "
					"rtrec.swing_queue, rtrec.pending_items, rtrec.swing_neighbors, rtrec.cf_neighbors, "
					"rtrec.trending_items",
					false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not truncate the rtrec state tables");
	/* a database not yet updated to 1.2 has one more (state_write.c) */
	if (RtrecStateBefore12() &&
		SPI_execute("TRUNCATE rtrec.user_category_state", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not truncate rtrec.user_category_state");
	SPI_finish();
	return PointerGetDatum(NULL);
}

/* ---- item catalog lookups ---- */

typedef struct ItemCatalog
{
	Relation	rel;
	Relation	pkey;
	AttrNumber	category_col;
	TupleTableSlot *slot;
} ItemCatalog;

static void
item_catalog_open(ItemCatalog *cat)
{
	Oid			nsp = get_namespace_oid(RTREC_SCHEMA, false);
	Oid			relid = get_relname_relid("items", nsp);
	Oid			pkey;

	if (!OidIsValid(relid))
		elog(ERROR, "relation rtrec.items does not exist");
	cat->rel = table_open(relid, AccessShareLock);
	pkey = RelationGetPrimaryKeyIndex(cat->rel);
	if (!OidIsValid(pkey))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("rtrec.items has no primary key"),
				 errhint("Reinstall the extension.")));
	cat->pkey = index_open(pkey, AccessShareLock);
	cat->category_col = column_number(cat->rel, "category_id");
	if (TupleDescAttr(RelationGetDescr(cat->rel), cat->category_col - 1)->atttypid != INT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("rtrec.items.category_id must be of type bigint")));
	cat->slot = table_slot_create(cat->rel, NULL);
}

static void
item_catalog_close(ItemCatalog *cat)
{
	ExecDropSingleTupleTableSlot(cat->slot);
	index_close(cat->pkey, AccessShareLock);
	table_close(cat->rel, AccessShareLock);
}

/*
 * Registers items missing from rtrec.items (category NULL).  An item that
 * another transaction is registering right now (seen with a dirty snapshot)
 * is left to it, so that we never wait on its uncommitted catalog row; it is
 * noted in rtrec.pending_items, and the refresher registers it should that
 * transaction roll back.
 */
static void
register_items(ItemCatalog *cat, int64 *missing, int n_missing)
{
	static SPIPlanPtr register_plan = NULL;
	SnapshotData dirty;
	int64	   *absent = palloc(sizeof(int64) * n_missing);
	int64	   *being_inserted = palloc(sizeof(int64) * n_missing);
	int			n_absent = 0;
	int			n_being_inserted = 0;
	Datum		args[2];
	RtrecKeyCursor *cursor;
	int			guc_level;

	/* one equality scan per item (no last key): rows appear as we go */
	InitDirtySnapshot(dirty);
	cursor = RtrecKeyCursorBegin(cat->rel, cat->pkey, &dirty, 1, NULL);
	for (int i = 0; i < n_missing; i++)
	{
		RtrecKeyCursorSeek(cursor, &missing[i]);
		if (!RtrecKeyCursorNext(cursor, cat->slot))
			absent[n_absent++] = missing[i];
		else if (TransactionIdIsValid(dirty.xmin))
			being_inserted[n_being_inserted++] = missing[i];
	}
	RtrecKeyCursorEnd(cursor);
	if (n_absent + n_being_inserted == 0)
		return;

	/*
	 * The trigger runs as rtrec's owner with the caller's search_path (see
	 * rtrec--1.1--1.2.sql): this statement, the only one it runs, is
	 * planned and run with a path no caller chose.
	 */
	guc_level = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (register_plan == NULL)
	{
		Oid			types[2] = {INT8ARRAYOID, INT8ARRAYOID};

		register_plan = RtrecPrepareKept("WITH p AS (INSERT INTO rtrec.pending_items (item_id)"
										 "            SELECT pg_catalog.unnest($2))"
										 " INSERT INTO rtrec.items (item_id, auto_registered)"
										 " SELECT k, true FROM pg_catalog.unnest($1) AS k"
										 " ON CONFLICT (item_id) DO NOTHING", 2, types);
	}
	args[0] = RtrecInt8Array(absent, n_absent);
	args[1] = RtrecInt8Array(being_inserted, n_being_inserted);
	if (SPI_execute_plan(register_plan, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not register new items in rtrec.items");
	SPI_finish();
	AtEOXact_GUC(true, guc_level);
}

/* An item of the batch, with its catalog category */
typedef struct BatchItem
{
	int64		item_id;
	int64		category_id;
	bool		has_category;
} BatchItem;

/* The batch item of item_id, in items[] sorted by item_id */
static const BatchItem *
find_batch_item(const BatchItem *items, int n_items, int64 item_id)
{
	int			lo = 0;
	int			hi = n_items - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (items[mid].item_id == item_id)
			return &items[mid];
		if (items[mid].item_id < item_id)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	elog(ERROR, "item " INT64_FORMAT " is missing from the batch's items", item_id);
	return NULL;				/* keep the compiler quiet */
}

/* Sorts item ids, with the comparison inlined where PostgreSQL can (14 on) */
#if RTREC_HAVE_SORT_TEMPLATE
#define ST_SORT sort_item_ids
#define ST_ELEMENT_TYPE int64
#define ST_COMPARE(a, b) RtrecCompareInt64Values(*(a), *(b))
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"
#else
static void
sort_item_ids(int64 *ids, size_t n)
{
	qsort(ids, n, sizeof(int64), RtrecCompareInt64);
}
#endif

/*
 * Looks each distinct item of the chunk up once, registers the unknown ones,
 * and files every event under its item's category.
 */
static void
resolve_items(ItemCatalog *cat, IngestEvent *events, int n_events,
			  int64 *all_items, int n_all)
{
	BatchItem  *items = palloc(sizeof(BatchItem) * Max(1, n_all));
	int64	   *missing = palloc(sizeof(int64) * Max(1, n_all));
	int			n_items = 0;
	int			n_missing = 0;
	RtrecKeyCursor *cursor;

	sort_item_ids(all_items, n_all);
	cursor = RtrecKeyCursorBegin(cat->rel, cat->pkey, GetActiveSnapshot(), 1,
								 n_all > 1 ? &all_items[n_all - 1] : NULL);
	for (int i = 0; i < n_all; i++)
	{
		BatchItem  *it;

		if (i > 0 && all_items[i] == all_items[i - 1])
			continue;
		it = &items[n_items++];
		it->item_id = all_items[i];
		it->has_category = false;
		it->category_id = 0;
		RtrecKeyCursorSeek(cursor, &it->item_id);
		if (RtrecKeyCursorNext(cursor, cat->slot))
		{
			bool		isnull;
			Datum		d = slot_getattr(cat->slot, cat->category_col, &isnull);

			it->has_category = !isnull;
			it->category_id = isnull ? 0 : DatumGetInt64(d);
		}
		else
			missing[n_missing++] = it->item_id;
	}
	RtrecKeyCursorEnd(cursor);
	if (n_missing > 0)
		register_items(cat, missing, n_missing);

	for (int i = 0; i < n_events; i++)
	{
		const BatchItem *it = find_batch_item(items, n_items, events[i].item_id);

		events[i].has_category = it->has_category;
		events[i].category_id = it->category_id;
	}
}

/*
 * Reads up to chunk_size events from the transition table into events[]
 * (interactions only), looking up weights and categories and registering
 * unknown items.  Returns the number of rows read, 0 at the end.
 */
static int
read_chunk(Tuplestorestate *store, TupleTableSlot *slot, const EventColumns *cols,
		   ItemCatalog *cat, IngestEvent *events, int chunk_size, int *n_events)
{
	const RtrecSettings *settings = RtrecGetSettings();
	int64	   *all_items = palloc(sizeof(int64) * chunk_size);
	int			n_rows = 0;

	*n_events = 0;
	while (n_rows < chunk_size && tuplestore_gettupleslot(store, true, false, slot))
	{
		IngestEvent *e = &events[*n_events];
		bool		isnull;
		char	   *event_type;
		double		weight;

		CHECK_FOR_INTERRUPTS();
		/* every event registers its item, impressions too */
		all_items[n_rows++] = DatumGetInt64(slot_getattr(slot, cols->item_id, &isnull));
		event_type = TextDatumGetCString(slot_getattr(slot, cols->event_type, &isnull));
		if (!RtrecLookupEventWeight(event_type, &weight))
			ereport(ERROR,
					(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
					 errmsg("unknown event type \"%s\"", event_type),
					 errhint("The event type was removed while the events were being inserted; add it back to rtrec.event_types.")));
		pfree(event_type);
		if (!(weight > 0))
			continue;			/* impressions are stored, not counted */

		e->item_id = all_items[n_rows - 1];
		e->event_id = DatumGetInt64(slot_getattr(slot, cols->event_id, &isnull));
		e->user_id = DatumGetInt64(slot_getattr(slot, cols->user_id, &isnull));
		e->ts = DatumGetTimestampTz(slot_getattr(slot, cols->ts, &isnull));
		e->weight = weight;
		e->decay_log2 = RtrecDecayLog2(weight, e->ts, settings->half_life_s);
		(*n_events)++;
	}
	if (n_rows > 0)
		resolve_items(cat, events, *n_events, all_items, n_rows);
	return n_rows;
}

/* The most events one chunk holds (see INGEST_BYTES_PER_EVENT) */
static int64
ingest_chunk_limit(void)
{
	/* maintenance_work_mem is in kB; no array of a chunk may pass 1 GB */
	int64		limit = (int64) maintenance_work_mem * 1024 / INGEST_BYTES_PER_EVENT;

	return Min(Max(limit, INGEST_MIN_CHUNK), MaxAllocSize / 128);
}

/*
 * AFTER INSERT FOR EACH STATEMENT on rtrec.events, REFERENCING NEW TABLE:
 * applies every inserted event to the state tables.
 */
PG_FUNCTION_INFO_V1(rtrec_events_apply);
Datum
rtrec_events_apply(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Tuplestorestate *store;
	TupleTableSlot *slot;
	EventColumns cols;
	ItemCatalog cat;
	IngestEvent *events;
	RtrecStateWriter *writer;
	int			chunk_size;
	MemoryContext batch_context;
	MemoryContext chunk_context;
	MemoryContext old;

	require_trigger(fcinfo, "rtrec.events_apply");
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ||
		trigdata->tg_newtable == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("rtrec.events_apply() must be fired AFTER INSERT FOR EACH STATEMENT with REFERENCING NEW TABLE")));
	events_relation(trigdata, "rtrec.events_apply", &cols);

	store = trigdata->tg_newtable;
	slot = MakeSingleTupleTableSlot(RelationGetDescr(trigdata->tg_relation), &TTSOpsMinimalTuple);

	/* a single-row INSERT should not allocate for a COPY's chunk */
	chunk_size = (int) Max(1, Min(tuplestore_tuple_count(store), ingest_chunk_limit()));
	batch_context = AllocSetContextCreate(CurrentMemoryContext, "rtrec ingest batch",
										  ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(batch_context);
	item_catalog_open(&cat);
	writer = RtrecStateWriterOpen();
	MemoryContextSwitchTo(old);

	chunk_context = AllocSetContextCreate(batch_context, "rtrec ingest chunk",
										  ALLOCSET_DEFAULT_SIZES);
	tuplestore_rescan(store);
	for (;;)
	{
		int			n_events;
		int			n_rows;

		MemoryContextReset(chunk_context);
		old = MemoryContextSwitchTo(chunk_context);
		events = palloc(sizeof(IngestEvent) * chunk_size);
		n_rows = read_chunk(store, slot, &cols, &cat, events, chunk_size, &n_events);
		if (n_events > 0)
			RtrecStateWriterApply(writer, events, n_events);
		/*
		 * A tuple read back from a spilled tuplestore belongs to the slot and
		 * lives in the chunk's context: let go of it before that is reset.
		 */
		ExecClearTuple(slot);
		MemoryContextSwitchTo(old);
		if (n_rows < chunk_size)
			break;
	}

	RtrecStateWriterClose(writer);
	item_catalog_close(&cat);
	ExecDropSingleTupleTableSlot(slot);
	MemoryContextDelete(batch_context);
	return PointerGetDatum(NULL);
}
