/*-------------------------------------------------------------------------
 *
 * state_write.c
 *	  Folds a batch of events into this backend's rows of the state tables,
 *	  below the executor.
 *
 * Every state table is keyed by (key..., slot), and only the backend that
 * owns a slot writes its rows (RtrecWriterSlot(), see ingest.c).  So an
 * upsert needs neither speculative insertion nor a plan: we group the batch
 * by key, look the keys up in the table's unique key with a dirty snapshot,
 * in key order (key_cursor.c), and update the row found with the executor's
 * simple update (constraints, index entries, HOT), as logical replication's
 * apply worker does, or add a new row to the batch's new rows, which
 * bulk_insert.c writes as COPY would.  Starting one five-way INSERT ... ON
 * CONFLICT statement per batch cost more than the writes themselves for
 * single-row INSERTs, and its per-row speculative insertion dominated COPY.
 *
 * Only a transaction that cannot have ended -- a prepared transaction of
 * the slot's previous owner -- can be writing one of our rows; we wait for
 * it as ON CONFLICT would.  rtrec_rebuild() and TRUNCATE lock rtrec.events
 * against us before they touch the state.
 *
 * Each (user, item) group also gets a row in rtrec.swing_queue, flagged
 * new_pair unless some slot already had the pair (swing_refresh.c); the
 * lookup of the pair's row scans every slot's row of the pair to tell.
 * A pair that a running transaction is inserting in another slot counts as
 * new: if that one rolls back, ours must have flagged it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "nodes/execnodes.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "bulk_insert.h"
#include "compat.h"
#include "ingest.h"
#include "key_cursor.h"
#include "rtrec.h"
#include "swing.h"

/* ---- grouping events by key ---- */

/*
 * Aggregate of the events of one key.  It copies what it needs of its
 * events rather than point to them: the next sort moves the events.
 */
typedef struct IngestGroup
{
	int64		user_id;		/* the key columns */
	int64		item_id;
	int64		category_id;	/* also a column of user_item_state */
	bool		has_category;
	/* the latest event, by (ts, event_id): the columns a row takes from it */
	int64		latest_event_id;
	int64		latest_item_id;
	int64		latest_category_id;
	TimestampTz latest_ts;
	bool		latest_has_category;
	int64		n_events;
	double		weight_sum;
	double		decay_log2;
	TimestampTz first_ts;
	TimestampTz last_ts;
} IngestGroup;

/* Orders of a batch's events; equal means "same key" when folding runs */
typedef int (*EventComparator) (const IngestEvent *a, const IngestEvent *b);

static int
compare_by_user(const IngestEvent *a, const IngestEvent *b)
{
	return RtrecCompareInt64Values(a->user_id, b->user_id);
}

static int
compare_by_item(const IngestEvent *a, const IngestEvent *b)
{
	return RtrecCompareInt64Values(a->item_id, b->item_id);
}

static int
compare_by_user_item(const IngestEvent *a, const IngestEvent *b)
{
	int			c = compare_by_user(a, b);

	return c != 0 ? c : compare_by_item(a, b);
}

/* events without a category first: the user-category pass skips them */
static int
compare_by_user_category(const IngestEvent *a, const IngestEvent *b)
{
	int			c = compare_by_user(a, b);

	if (c != 0)
		return c;
	if (a->has_category != b->has_category)
		return a->has_category ? 1 : -1;
	return RtrecCompareInt64Values(a->category_id, b->category_id);
}

/* user_category_state's order (before 1.2 only; see state_table_specs) */
static int
compare_by_user_category_item(const IngestEvent *a, const IngestEvent *b)
{
	int			c = compare_by_user_category(a, b);

	return c != 0 ? c : compare_by_item(a, b);
}

/*
 * The batch's sorts.  They move the events themselves, not pointers to
 * them: every later pass over the batch then reads memory in order, where
 * following a pointer per event (and two per comparison) missed the cache
 * once the batch outgrew it.  The comparison is inlined where PostgreSQL
 * has the template for it (14 on).
 */
typedef void (*EventSorter) (IngestEvent *events, size_t n);

#if RTREC_HAVE_SORT_TEMPLATE
#define ST_SORT sort_by_item
#define ST_ELEMENT_TYPE IngestEvent
#define ST_COMPARE(a, b) compare_by_item(a, b)
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

#define ST_SORT sort_by_user_category_item
#define ST_ELEMENT_TYPE IngestEvent
#define ST_COMPARE(a, b) compare_by_user_category_item(a, b)
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

#define ST_SORT sort_by_user_item
#define ST_ELEMENT_TYPE IngestEvent
#define ST_COMPARE(a, b) compare_by_user_item(a, b)
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"
#else
static int
qsort_by_item(const void *a, const void *b)
{
	return compare_by_item(a, b);
}

static int
qsort_by_user_category_item(const void *a, const void *b)
{
	return compare_by_user_category_item(a, b);
}

static int
qsort_by_user_item(const void *a, const void *b)
{
	return compare_by_user_item(a, b);
}

static void
sort_by_item(IngestEvent *events, size_t n)
{
	qsort(events, n, sizeof(IngestEvent), qsort_by_item);
}

static void
sort_by_user_category_item(IngestEvent *events, size_t n)
{
	qsort(events, n, sizeof(IngestEvent), qsort_by_user_category_item);
}

static void
sort_by_user_item(IngestEvent *events, size_t n)
{
	qsort(events, n, sizeof(IngestEvent), qsort_by_user_item);
}
#endif

static void
set_latest(IngestGroup *g, const IngestEvent *e)
{
	g->latest_event_id = e->event_id;
	g->latest_item_id = e->item_id;
	g->latest_category_id = e->category_id;
	g->latest_ts = e->ts;
	g->latest_has_category = e->has_category;
}

static bool
is_later_than_latest(const IngestEvent *e, const IngestGroup *g)
{
	return e->ts > g->latest_ts || (e->ts == g->latest_ts && e->event_id > g->latest_event_id);
}

/*
 * Aggregates into *g the run of events equal by same_key that starts at
 * events[*next], and moves *next past it.  events[] must keep such events
 * adjacent.  Groups are folded one at a time, as they are written: an array
 * of them would be as long as the batch, and a bulk load's fresh memory
 * costs a page fault per page.
 */
static void
fold_run(const IngestEvent *events, int n, int *next, EventComparator same_key, IngestGroup *g)
{
	int			i = *next;
	const IngestEvent *e = &events[i];

	g->user_id = e->user_id;
	g->item_id = e->item_id;
	g->category_id = e->category_id;
	g->has_category = e->has_category;
	set_latest(g, e);
	g->n_events = 1;
	g->weight_sum = e->weight;
	g->decay_log2 = e->decay_log2;
	g->first_ts = g->last_ts = e->ts;
	for (i++; i < n && same_key(&events[i - 1], &events[i]) == 0; i++)
	{
		e = &events[i];
		g->n_events++;
		g->weight_sum += e->weight;
		g->decay_log2 = RtrecLog2Add(g->decay_log2, e->decay_log2);
		g->first_ts = Min(g->first_ts, e->ts);
		g->last_ts = Max(g->last_ts, e->ts);
		if (is_later_than_latest(e, g))
			set_latest(g, e);
	}
	*next = i;
}

/* ---- the state tables ---- */

/* What a state table column holds, and how a group merges into it */
typedef enum StateColumn
{
	COL_USER,					/* key columns */
	COL_ITEM,
	COL_CATEGORY,
	COL_SLOT,					/* the last key column */
	COL_N_EVENTS,				/* sum */
	COL_WEIGHT_SUM,				/* sum */
	COL_DECAY_LOG2,				/* log2-sum (decay.c) */
	COL_FIRST_TS,				/* least */
	COL_LAST_TS,				/* greatest */
	COL_LAST_EVENT,				/* of the latest (ts, event_id) */
	COL_LAST_ITEM,
	COL_LAST_CATEGORY
} StateColumn;

#define MAX_STATE_COLUMNS 9
#define MAX_KEY_COLUMNS 3

typedef struct StateColumnSpec
{
	const char *name;
	StateColumn role;
} StateColumnSpec;

typedef struct StateTableSpec
{
	const char *name;
	EventSorter sort;			/* into the primary key's order */
	EventComparator group_by;	/* equal keys */
	bool		needs_category;	/* only events whose item has a category */
	bool		queues_pairs;	/* each group is a (user, item) pair to queue */
	bool		before_1_2;		/* only in a database not yet updated to 1.2 */
	int			n_columns;
	StateColumnSpec columns[MAX_STATE_COLUMNS];	/* in table order, keys first */
} StateTableSpec;

/*
 * In the order the batch is written.  Each sort leaves the table's groups in
 * its key's order, which the key cursor walks forward; the batch is sorted
 * again only when the sort changes (RtrecStateWriterApply).  user_state
 * groups the (user, item) order of user_item_state by user: two sorts of
 * the whole batch.
 *
 * user_item_state's rows carry their events' category, the key's last
 * column after the slot: a pair gets a row per category its item had when
 * its events came, and rtrec.user_category sums the rows per category.  A
 * batch files all events of an item under one category (ingest.c), so
 * grouping by (user, item) is grouping by (user, item, category); the
 * pair's row of another category is told apart when the key is looked up
 * (find_slot_row).
 *
 * Before 1.2 a (user, category) table kept those sums, and user_item_state
 * had no category (its column here is the last one).  The library serves
 * a database not yet updated (ALTER EXTENSION rtrec UPDATE) that way.
 */
static const StateTableSpec state_table_specs[] = {
	{"user_item_state", sort_by_user_item, compare_by_user_item, false, true, false, 9,
		{{"user_id", COL_USER}, {"item_id", COL_ITEM}, {"slot", COL_SLOT},
		 {"n_events", COL_N_EVENTS}, {"weight_sum", COL_WEIGHT_SUM},
		 {"affinity_log2", COL_DECAY_LOG2}, {"first_ts", COL_FIRST_TS},
		 {"last_ts", COL_LAST_TS}, {"category_id", COL_CATEGORY}}},
	{"user_state", sort_by_user_item, compare_by_user, false, false, false, 9,
		{{"user_id", COL_USER}, {"slot", COL_SLOT}, {"n_events", COL_N_EVENTS},
		 {"weight_sum", COL_WEIGHT_SUM}, {"first_ts", COL_FIRST_TS}, {"last_ts", COL_LAST_TS},
		 {"last_event_id", COL_LAST_EVENT}, {"last_item_id", COL_LAST_ITEM},
		 {"last_category_id", COL_LAST_CATEGORY}}},
	{"user_category_state", sort_by_user_category_item, compare_by_user_category, true, false, true, 7,
		{{"user_id", COL_USER}, {"category_id", COL_CATEGORY}, {"slot", COL_SLOT},
		 {"n_events", COL_N_EVENTS}, {"weight_sum", COL_WEIGHT_SUM},
		 {"affinity_log2", COL_DECAY_LOG2}, {"last_ts", COL_LAST_TS}}},
	{"item_state", sort_by_item, compare_by_item, false, false, false, 7,
		{{"item_id", COL_ITEM}, {"slot", COL_SLOT}, {"n_events", COL_N_EVENTS},
		 {"weight_sum", COL_WEIGHT_SUM}, {"trend_log2", COL_DECAY_LOG2},
		 {"first_ts", COL_FIRST_TS}, {"last_ts", COL_LAST_TS}}},
};

#define N_STATE_TABLES lengthof(state_table_specs)

/* rtrec.swing_queue's columns, in table order */
static const char *const queue_columns[] = {"item_id", "user_id", "new_pair", "queued_at"};
static const Oid queue_column_types[] = {INT8OID, INT8OID, BOOLOID, TIMESTAMPTZOID};

/* A relation written by bulk_insert.c, and the state tables' updates */
typedef struct TargetRelation
{
	Relation	rel;
	ResultRelInfo *rri;
	RtrecBulkInserter *inserter;
} TargetRelation;

typedef struct StateTable
{
	const StateTableSpec *spec;
	TargetRelation target;
	Relation	pkey;
	int			n_columns;		/* spec's, or one less before 1.2 */
	int			n_keys;			/* key columns, slot included */
	int			category_col;	/* a column after the slot: -1 if none */
	int			last_ts_col;	/* -1 if none */
	int			last_event_col; /* -1 if none */
	TupleTableSlot *found;		/* the slot's current row of a key */
	TupleTableSlot *updated;	/* that row with a group folded in */

	int			n_scan_keys;	/* n_keys, or n_keys - 1 to see every slot */

	/*
	 * Looks the batch's keys up in pkey with the writer's dirty snapshot;
	 * begun and ended within one batch: btree allocates some scan state
	 * lazily, in the batch's memory context.
	 */
	RtrecKeyCursor *cursor;
} StateTable;

struct RtrecStateWriter
{
	EState	   *estate;
	int			slot;
	SnapshotData dirty;
	bool		before_1_2;		/* the state tables of rtrec 1.0 and 1.1 */
	StateTable	tables[N_STATE_TABLES];
	int			n_tables;
	TargetRelation queue;
};

static Oid
state_column_type(StateColumn role)
{
	switch (role)
	{
		case COL_SLOT:
			return INT4OID;
		case COL_WEIGHT_SUM:
		case COL_DECAY_LOG2:
			return FLOAT8OID;
		case COL_FIRST_TS:
		case COL_LAST_TS:
			return TIMESTAMPTZOID;
		default:
			return INT8OID;
	}
}

/*
 * Writing tuples by column position is only safe on the tables this
 * extension created: check names and types (a user could have altered them).
 */
static void
check_column(Relation rel, int attno, const char *name, Oid type)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Form_pg_attribute att = TupleDescAttr(desc, attno);

	if (att->attisdropped || strcmp(NameStr(att->attname), name) != 0 || att->atttypid != type)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("column %d of rtrec.%s is not \"%s\" of type %s",
						attno + 1, RelationGetRelationName(rel), name, format_type_be(type)),
				 errdetail("rtrec's triggers write this table by column position."),
				 errhint("Do not alter rtrec's tables; reinstall the extension.")));
}

static void
check_column_count(Relation rel, int n)
{
	if (RelationGetDescr(rel)->natts != n)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("rtrec.%s has %d columns, expected %d",
						RelationGetRelationName(rel), RelationGetDescr(rel)->natts, n),
				 errhint("Do not alter rtrec's tables; reinstall the extension.")));
}

static void
target_open(TargetRelation *target, const char *name, EState *estate)
{
	Oid			relid = get_relname_relid(name, get_namespace_oid(RTREC_SCHEMA, false));

	if (!OidIsValid(relid))
		elog(ERROR, "relation rtrec.%s does not exist", name);
	target->rel = table_open(relid, RowExclusiveLock);
	target->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(target->rri, target->rel, 0, NULL, 0);
	ExecOpenIndices(target->rri, false);
	target->inserter = RtrecBulkInserterCreate(target->rri, estate);
}

static void
target_close(TargetRelation *target)
{
	RtrecBulkInserterFree(target->inserter);
	ExecCloseIndices(target->rri);
	/* the lock stays until commit (worker.c relies on the queue's) */
	table_close(target->rel, NoLock);
}

/*
 * The unique index on (key columns..., slot), which lead the table, then the
 * category if the table has one after its slot
 */
static Relation
state_key_index(StateTable *t)
{
	ResultRelInfo *rri = t->target.rri;
	int			n_index_keys = t->n_keys + (t->category_col >= 0 ? 1 : 0);

	for (int i = 0; i < rri->ri_NumIndices; i++)
	{
		Relation	index = rri->ri_IndexRelationDescs[i];
		Form_pg_index form = index->rd_index;
		bool		leads = form->indisunique && form->indnkeyatts == n_index_keys;

		for (int k = 0; leads && k < t->n_keys; k++)
			leads = form->indkey.values[k] == k + 1;
		if (leads && t->category_col >= 0)
			leads = form->indkey.values[t->n_keys] == t->category_col + 1;
		if (leads)
			return index;
	}
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("rtrec.%s has no unique index on its first %d columns",
					t->spec->name, t->n_keys),
			 errhint("Do not alter rtrec's tables; reinstall the extension.")));
	return NULL;				/* keep the compiler quiet */
}

static void
state_table_open(RtrecStateWriter *w, StateTable *t, const StateTableSpec *spec)
{
	t->spec = spec;
	target_open(&t->target, spec->name, w->estate);
	t->n_columns = spec->n_columns;
	t->n_keys = 0;
	t->category_col = t->last_ts_col = t->last_event_col = -1;
	for (int c = 0; c < spec->n_columns; c++)
	{
		StateColumn role = spec->columns[c].role;

		if (role == COL_SLOT)
			t->n_keys = c + 1;
		else if (role == COL_CATEGORY && t->n_keys > 0)
		{
			/* before 1.2 no row had a category beside its key (and it was last) */
			if (w->before_1_2)
			{
				t->n_columns = c;
				break;
			}
			t->category_col = c;
		}
		else if (role == COL_LAST_TS)
			t->last_ts_col = c;
		else if (role == COL_LAST_EVENT)
			t->last_event_col = c;
		check_column(t->target.rel, c, spec->columns[c].name, state_column_type(role));
	}
	check_column_count(t->target.rel, t->n_columns);
	Assert(t->n_keys > 0 && t->n_keys <= MAX_KEY_COLUMNS);
	/* pairs are looked up in every slot at once: is the pair new? */
	t->n_scan_keys = spec->queues_pairs ? t->n_keys - 1 : t->n_keys;
	t->pkey = state_key_index(t);
	t->found = table_slot_create(t->target.rel, NULL);
	t->updated = table_slot_create(t->target.rel, NULL);
}

static void
state_table_close(StateTable *t)
{
	ExecDropSingleTupleTableSlot(t->found);
	ExecDropSingleTupleTableSlot(t->updated);
	target_close(&t->target);
}

RtrecStateWriter *
RtrecStateWriterOpen(void)
{
	RtrecStateWriter *w = palloc0(sizeof(RtrecStateWriter));

	w->estate = CreateExecutorState();
	w->slot = RtrecWriterSlot();
	InitDirtySnapshot(w->dirty);
	w->before_1_2 = RtrecStateBefore12();
	for (int i = 0; i < N_STATE_TABLES; i++)
		if (w->before_1_2 || !state_table_specs[i].before_1_2)
			state_table_open(w, &w->tables[w->n_tables++], &state_table_specs[i]);
	target_open(&w->queue, "swing_queue", w->estate);
	check_column_count(w->queue.rel, lengthof(queue_columns));
	for (int c = 0; c < lengthof(queue_columns); c++)
		check_column(w->queue.rel, c, queue_columns[c], queue_column_types[c]);
	return w;
}

void
RtrecStateWriterClose(RtrecStateWriter *w)
{
	for (int i = 0; i < w->n_tables; i++)
		state_table_close(&w->tables[i]);
	target_close(&w->queue);
	FreeExecutorState(w->estate);
	pfree(w);
}

/* ---- writing one group ---- */

static int64
key_value(StateColumn role, const IngestGroup *g, int slot)
{
	switch (role)
	{
		case COL_USER:
			return g->user_id;
		case COL_ITEM:
			return g->item_id;
		case COL_CATEGORY:
			return g->category_id;
		case COL_SLOT:
			return slot;
		default:
			elog(ERROR, "state column %d is not a key", (int) role);
	}
	return 0;					/* keep the compiler quiet */
}

/* Is the row in t->found the slot's row of group g (and its category's)? */
static bool
is_slot_row(RtrecStateWriter *w, StateTable *t, const IngestGroup *g)
{
	bool		isnull;
	Datum		category;

	if (t->n_scan_keys < t->n_keys &&
		DatumGetInt32(slot_getattr(t->found, t->n_keys, &isnull)) != w->slot)
		return false;
	if (t->category_col < 0)
		return true;
	category = slot_getattr(t->found, t->category_col + 1, &isnull);
	if (isnull || !g->has_category)
		return isnull && !g->has_category;
	return DatumGetInt64(category) == g->category_id;
}

/*
 * Finds the slot's row of group g's key in t->found.  A row that another
 * transaction is inserting or deleting is waited for, then looked up again.
 * When the scan covers every slot (n_scan_keys < n_keys), also says whether
 * another row has the key (another slot's, or another category's) that no
 * running transaction is inserting; when the slot's own row is found that
 * is left incomplete.
 */
static bool
find_slot_row(RtrecStateWriter *w, StateTable *t, const IngestGroup *g, const int64 *keys,
			  bool *in_other_row)
{
	for (;;)
	{
		TransactionId xwait = InvalidTransactionId;
		bool		found = false;

		*in_other_row = false;
		RtrecKeyCursorSeek(t->cursor, keys);
		while (RtrecKeyCursorNext(t->cursor, t->found))
		{
			if (!is_slot_row(w, t, g))
			{
				*in_other_row |= !TransactionIdIsValid(w->dirty.xmin);
				continue;
			}
			found = true;
			xwait = TransactionIdIsValid(w->dirty.xmin) ? w->dirty.xmin : w->dirty.xmax;
			break;
		}
		if (!found || !TransactionIdIsValid(xwait))
			return found;
		XactLockTableWait(xwait, t->target.rel, &t->found->tts_tid, XLTW_None);
		RtrecKeyCursorForget(t->cursor);	/* look again */
	}
}

/*
 * Fills values/nulls with the row that results from folding group g into
 * the slot's row old (NULL: there is none).
 */
static void
merge_group(const StateTable *t, const IngestGroup *g, int slot, TupleTableSlot *old,
			Datum *values, bool *nulls)
{
	bool		group_is_later = true;	/* g's latest event is the row's latest */

	if (old != NULL)
	{
		slot_getallattrs(old);
		if (t->last_event_col >= 0)
		{
			TimestampTz old_ts = DatumGetTimestampTz(old->tts_values[t->last_ts_col]);
			int64		old_event = DatumGetInt64(old->tts_values[t->last_event_col]);

			group_is_later = g->latest_ts > old_ts ||
				(g->latest_ts == old_ts && g->latest_event_id > old_event);
		}
	}
	for (int c = 0; c < t->n_columns; c++)
	{
		StateColumn role = t->spec->columns[c].role;
		Datum		was = old != NULL ? old->tts_values[c] : (Datum) 0;
		bool		keep_old = old != NULL && !group_is_later;

		nulls[c] = false;
		switch (role)
		{
			case COL_USER:
			case COL_ITEM:
				values[c] = Int64GetDatum(key_value(role, g, slot));
				break;
			case COL_CATEGORY:
				values[c] = Int64GetDatum(g->category_id);
				nulls[c] = !g->has_category;
				break;
			case COL_SLOT:
				values[c] = Int32GetDatum(slot);
				break;
			case COL_N_EVENTS:
				values[c] = Int64GetDatum(g->n_events + (old ? DatumGetInt64(was) : 0));
				break;
			case COL_WEIGHT_SUM:
				values[c] = Float8GetDatum(old ? DatumGetFloat8(was) + g->weight_sum : g->weight_sum);
				break;
			case COL_DECAY_LOG2:
				values[c] = Float8GetDatum(old ? RtrecLog2Add(DatumGetFloat8(was), g->decay_log2)
										   : g->decay_log2);
				break;
			case COL_FIRST_TS:
				values[c] = TimestampTzGetDatum(old ? Min(DatumGetTimestampTz(was), g->first_ts)
												: g->first_ts);
				break;
			case COL_LAST_TS:
				values[c] = TimestampTzGetDatum(old ? Max(DatumGetTimestampTz(was), g->last_ts)
												: g->last_ts);
				break;
			case COL_LAST_EVENT:
				values[c] = keep_old ? was : Int64GetDatum(g->latest_event_id);
				break;
			case COL_LAST_ITEM:
				values[c] = keep_old ? was : Int64GetDatum(g->latest_item_id);
				break;
			case COL_LAST_CATEGORY:
				if (keep_old)
				{
					values[c] = was;
					nulls[c] = old->tts_isnull[c];
				}
				else
				{
					values[c] = Int64GetDatum(g->latest_category_id);
					nulls[c] = !g->latest_has_category;
				}
				break;
		}
	}
}

/*
 * Upserts the slot's row of group g: an update at once, a new row with the
 * batch's other new rows (RtrecBulkInserterFinish).  Returns whether the
 * key is new to every slot (as far as find_slot_row can tell; see there).
 */
static bool
write_group(RtrecStateWriter *w, StateTable *t, const IngestGroup *g)
{
	int64		keys[MAX_KEY_COLUMNS];
	TupleTableSlot *row;
	bool		found;
	bool		in_other_row;

	for (int k = 0; k < t->n_keys; k++)
		keys[k] = key_value(t->spec->columns[k].role, g, w->slot);
	found = find_slot_row(w, t, g, keys, &in_other_row);
	if (!found)
	{
		row = RtrecBulkInserterSlot(t->target.inserter);
		merge_group(t, g, w->slot, NULL, row->tts_values, row->tts_isnull);
		RtrecBulkInserterStore(t->target.inserter);
		return !in_other_row;
	}
	row = t->updated;
	ExecClearTuple(row);
	merge_group(t, g, w->slot, t->found, row->tts_values, row->tts_isnull);
	ExecStoreVirtualTuple(row);
	RtrecSimpleRelationUpdate(t->target.rri, w->estate, t->found, row);
	ResetPerTupleExprContext(w->estate);
	return false;
}

static void
queue_pair(RtrecStateWriter *w, const IngestGroup *g, bool new_pair)
{
	TupleTableSlot *row = RtrecBulkInserterSlot(w->queue.inserter);

	row->tts_values[0] = Int64GetDatum(g->item_id);
	row->tts_values[1] = Int64GetDatum(g->user_id);
	row->tts_values[2] = BoolGetDatum(new_pair);
	row->tts_values[3] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());	/* now() */
	memset(row->tts_isnull, false, sizeof(bool) * lengthof(queue_columns));
	RtrecBulkInserterStore(w->queue.inserter);
}

/*
 * Folds a batch of interaction events into the state tables and queues its
 * (user, item) pairs.  events[] is reordered.
 */
void
RtrecStateWriterApply(RtrecStateWriter *w, IngestEvent *events, int n)
{
	EventSorter sorted_by = NULL;

	/*
	 * A new command: rows written earlier in this transaction, even by this
	 * statement's previous batch, are then ours to update.
	 */
	CommandCounterIncrement();
	w->estate->es_output_cid = GetCurrentCommandId(true);

	for (int i = 0; i < w->n_tables; i++)
	{
		StateTable *t = &w->tables[i];
		int			first = 0;
		int			last = n - 1;
		bool		several_keys;
		int64		last_key[MAX_KEY_COLUMNS];	/* of the last group */

		if (t->spec->sort != sorted_by)
		{
			t->spec->sort(events, n);
			sorted_by = t->spec->sort;
		}
		if (t->spec->needs_category)
		{
			/* the runs of events without a category are skipped below */
			while (first <= last && !events[first].has_category)
				first++;
			while (last >= first && !events[last].has_category)
				last--;
		}

		/* sorted: the first and the last event have the least and greatest keys */
		several_keys = first < last &&
			t->spec->group_by(&events[first], &events[last]) != 0;
		if (several_keys)
		{
			IngestGroup last_group;

			last_group.user_id = events[last].user_id;
			last_group.item_id = events[last].item_id;
			last_group.category_id = events[last].category_id;
			for (int k = 0; k < t->n_scan_keys; k++)
				last_key[k] = key_value(t->spec->columns[k].role, &last_group, w->slot);
		}
		t->cursor = RtrecKeyCursorBegin(t->target.rel, t->pkey, &w->dirty, t->n_scan_keys,
										several_keys ? last_key : NULL);
		for (int next = first; next <= last;)
		{
			IngestGroup group;
			bool		is_new;

			if (t->spec->needs_category && !events[next].has_category)
			{
				/* its group_by keeps events without a category apart */
				next++;
				continue;
			}
			fold_run(events, last + 1, &next, t->spec->group_by, &group);
			is_new = write_group(w, t, &group);
			if (t->spec->queues_pairs)
				queue_pair(w, &group, is_new);
		}
		RtrecKeyCursorEnd(t->cursor);
		RtrecBulkInserterFinish(t->target.inserter);
	}
	RtrecBulkInserterFinish(w->queue.inserter);

	/*
	 * Only now, holding the queue's ROW EXCLUSIVE lock until commit: a worker
	 * about to exit sees that lock and stays (see worker.c).
	 */
	RtrecSwingWorkerEnsure(false);
}
