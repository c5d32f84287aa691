/*-------------------------------------------------------------------------
 *
 * bulk_insert.c
 *	  Inserts the new rows of a batch into one table the way COPY does:
 *	  heap pages filled by multi-insert, and the non-unique indexes on
 *	  integer columns written at the end of the batch, in their own order.
 *
 * A batch of events makes up to one new row per key in each state table.
 * A heap_insert per row costs a buffer lookup and a WAL record per row;
 * table_multi_insert writes a page's worth of rows with one of each.
 * Unique indexes (the tables' keys) are written row by row right after, so
 * that a duplicate fails at once; their order is the batch's order anyway.
 * The entries of a non-unique index whose order is not the batch's --
 * user_item_state's (item_id), for a batch sorted by user -- would
 * land all over that index; written sorted at the end of the batch,
 * neighbouring entries go to the same leaf pages one after the other, and
 * into an empty index they are appended at its right edge.  Nobody reads
 * our uncommitted rows through that index in the meantime: the batch's own
 * lookups use the primary key.
 *
 * Indexes on plain columns are written here; those on NOT NULL integer and
 * timestamp columns (rtrec's own) can be sorted.  A table with any other
 * kind of index (expressions, a predicate, exclusion, a deferred unique
 * check), or with row triggers or generated columns (someone altered it),
 * gets the executor's per-row insert, which handles everything.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "nodes/execnodes.h"
#include "utils/rel.h"

#include "bulk_insert.h"
#include "compat.h"
#include "rtrec.h"

/* rows per multi-insert, as COPY's buffer */
#define BULK_ROWS 1000

/* columns of an index whose entries can be sorted here */
#define SORTED_MAX_COLUMNS 4

/* One entry of a sorted index: its columns as int64, and its heap row */
typedef struct SortedEntry
{
	int64		values[SORTED_MAX_COLUMNS];
	ItemPointerData tid;
} SortedEntry;

/* A non-unique index written at the end of the batch */
typedef struct SortedIndex
{
	int			index_no;		/* in ri_IndexRelationDescs */
	int			n_columns;
	AttrNumber	attnums[SORTED_MAX_COLUMNS];	/* table columns */
	Oid			types[SORTED_MAX_COLUMNS];
	SortedEntry *entries;
	int			n_entries;
	int			max_entries;
} SortedIndex;

struct RtrecBulkInserter
{
	ResultRelInfo *rri;
	EState	   *estate;
	MemoryContext context;		/* the inserter's; outlives every batch */
	bool		per_row;		/* only the executor's insert will do */
	bool		check_constraints;
	TupleTableSlot **slots;		/* up to BULK_ROWS, created as needed */
	int			n_slots;		/* created so far */
	int			max_slots;		/* room in slots[] */
	int			n_buffered;		/* filled, not yet in the heap */
	bool	   *written_at_once;	/* per index: written row by row at each
									 * flush (unique, or not sortable) */
	SortedIndex *sorted;
	int			n_sorted;
};

static bool
sortable_type(Oid type)
{
	return type == INT8OID || type == INT4OID || type == TIMESTAMPTZOID ||
		type == TIMESTAMPOID;
}

/*
 * Can the index be written without the executor?  Sets *sortable when its
 * entries can be sorted by their columns' integer values (NOT NULL integer
 * and timestamp columns).
 */
static bool
plain_index(Relation heap, Relation index, IndexInfo *info, bool *sortable)
{
	*sortable = !index->rd_index->indisunique &&
		info->ii_NumIndexAttrs <= SORTED_MAX_COLUMNS;
	if (info->ii_Expressions != NIL || info->ii_Predicate != NIL ||
		info->ii_ExclusionOps != NULL ||
		(index->rd_index->indisunique && !index->rd_index->indimmediate))
		return false;
	for (int k = 0; k < info->ii_NumIndexAttrs; k++)
	{
		AttrNumber	attnum = info->ii_IndexAttrNumbers[k];
		Form_pg_attribute att;

		if (attnum <= 0)
			return false;		/* a system column */
		att = TupleDescAttr(RelationGetDescr(heap), attnum - 1);
		*sortable &= att->attnotnull && sortable_type(att->atttypid);
	}
	return true;
}

RtrecBulkInserter *
RtrecBulkInserterCreate(ResultRelInfo *rri, EState *estate)
{
	RtrecBulkInserter *b = palloc0(sizeof(RtrecBulkInserter));
	Relation	rel = rri->ri_RelationDesc;
	TupleDesc	desc = RelationGetDescr(rel);

	b->rri = rri;
	b->estate = estate;
	b->context = CurrentMemoryContext;
	b->check_constraints = desc->constr != NULL;
	b->per_row = (rri->ri_TrigDesc != NULL &&
				  (rri->ri_TrigDesc->trig_insert_before_row ||
				   rri->ri_TrigDesc->trig_insert_after_row ||
				   rri->ri_TrigDesc->trig_insert_instead_row)) ||
		(desc->constr != NULL && desc->constr->has_generated_stored);
	b->written_at_once = palloc0(sizeof(bool) * Max(1, rri->ri_NumIndices));
	b->sorted = palloc0(sizeof(SortedIndex) * Max(1, rri->ri_NumIndices));

	for (int i = 0; i < rri->ri_NumIndices && !b->per_row; i++)
	{
		IndexInfo  *info = rri->ri_IndexRelationInfo[i];
		bool		sortable;

		if (!info->ii_ReadyForInserts)
			continue;			/* being built concurrently: not yet */
		if (!plain_index(rel, rri->ri_IndexRelationDescs[i], info, &sortable))
			b->per_row = true;
		else if (!sortable)
			b->written_at_once[i] = true;
		else
		{
			SortedIndex *s = &b->sorted[b->n_sorted++];

			s->index_no = i;
			s->n_columns = info->ii_NumIndexAttrs;
			for (int k = 0; k < s->n_columns; k++)
			{
				s->attnums[k] = info->ii_IndexAttrNumbers[k];
				s->types[k] = TupleDescAttr(desc, s->attnums[k] - 1)->atttypid;
			}
		}
	}
	return b;
}

/* An empty slot to fill with the next new row's values, then _Store it */
TupleTableSlot *
RtrecBulkInserterSlot(RtrecBulkInserter *b)
{
	TupleTableSlot *slot;

	if (b->n_buffered == b->n_slots)
	{
		MemoryContext old = MemoryContextSwitchTo(b->context);

		/* a single-row INSERT needs one: grow as rows come */
		if (b->n_slots == b->max_slots)
		{
			b->max_slots = Min(Max(8, b->max_slots * 4), BULK_ROWS);
			b->slots = b->slots == NULL
				? palloc(sizeof(TupleTableSlot *) * b->max_slots)
				: repalloc(b->slots, sizeof(TupleTableSlot *) * b->max_slots);
		}
		b->slots[b->n_slots++] = table_slot_create(b->rri->ri_RelationDesc, NULL);
		MemoryContextSwitchTo(old);
	}
	slot = b->slots[b->n_buffered];
	ExecClearTuple(slot);
	return slot;
}

/* a NOT NULL column's value (plain_index checked), as an int64 */
static int64
column_as_int64(TupleTableSlot *slot, AttrNumber attnum, Oid type)
{
	bool		isnull;
	Datum		d = slot_getattr(slot, attnum, &isnull);

	if (isnull)
		elog(ERROR, "NULL in NOT NULL column %d", attnum);
	return type == INT4OID ? (int64) DatumGetInt32(d) : DatumGetInt64(d);
}

static void
defer_entry(RtrecBulkInserter *b, SortedIndex *s, TupleTableSlot *slot)
{
	SortedEntry *e;

	if (s->n_entries == s->max_entries)
	{
		s->max_entries = Max(64, s->max_entries * 2);
		s->entries = s->entries == NULL
			? MemoryContextAlloc(b->context, sizeof(SortedEntry) * s->max_entries)
			: repalloc(s->entries, sizeof(SortedEntry) * s->max_entries);
	}
	e = &s->entries[s->n_entries++];
	for (int k = 0; k < s->n_columns; k++)
		e->values[k] = column_as_int64(slot, s->attnums[k], s->types[k]);
	e->tid = slot->tts_tid;
}

/* Writes the buffered rows to the heap and to the unique indexes */
static void
flush_rows(RtrecBulkInserter *b)
{
	Relation	rel = b->rri->ri_RelationDesc;
	ExprContext *econtext = GetPerTupleExprContext(b->estate);

	if (b->n_buffered == 0)
		return;
	table_multi_insert(rel, b->slots, b->n_buffered, b->estate->es_output_cid, 0, NULL);
	for (int r = 0; r < b->n_buffered; r++)
	{
		TupleTableSlot *slot = b->slots[r];

		econtext->ecxt_scantuple = slot;
		for (int i = 0; i < b->rri->ri_NumIndices; i++)
		{
			Relation	index = b->rri->ri_IndexRelationDescs[i];
			IndexInfo  *info = b->rri->ri_IndexRelationInfo[i];
			Datum		values[INDEX_MAX_KEYS];
			bool		isnull[INDEX_MAX_KEYS];

			if (!b->written_at_once[i])
				continue;
			FormIndexDatum(info, slot, b->estate, values, isnull);
			RtrecIndexInsert(index, values, isnull, &slot->tts_tid, rel,
							 index->rd_index->indisunique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO,
							 info);
		}
		for (int s = 0; s < b->n_sorted; s++)
			defer_entry(b, &b->sorted[s], slot);
		ExecClearTuple(slot);
		ResetPerTupleExprContext(b->estate);
	}
	b->n_buffered = 0;
}

/* Adds the row filled in the slot from RtrecBulkInserterSlot */
void
RtrecBulkInserterStore(RtrecBulkInserter *b)
{
	TupleTableSlot *slot = b->slots[b->n_buffered];

	ExecStoreVirtualTuple(slot);
	if (b->per_row)
	{
		RtrecSimpleRelationInsert(b->rri, b->estate, slot);
		ResetPerTupleExprContext(b->estate);
		return;
	}
	if (b->check_constraints)
		ExecConstraints(b->rri, slot, b->estate);
	if (++b->n_buffered == BULK_ROWS)
		flush_rows(b);
}

static int
compare_entries(const SortedEntry *x, const SortedEntry *y, const int *n_columns)
{
	for (int k = 0; k < *n_columns; k++)
	{
		int			c = RtrecCompareInt64Values(x->values[k], y->values[k]);

		if (c != 0)
			return c;
	}
	return ItemPointerCompare((ItemPointer) &x->tid, (ItemPointer) &y->tid);
}

/* sorts a deferred index's entries, the comparison inlined where it can be */
#if RTREC_HAVE_SORT_TEMPLATE
#define ST_SORT sort_entries
#define ST_ELEMENT_TYPE SortedEntry
#define ST_COMPARE(a, b, arg) compare_entries(a, b, arg)
#define ST_COMPARE_ARG_TYPE const int
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"
#else
static int
qsort_entries(const void *a, const void *b, void *arg)
{
	return compare_entries(a, b, arg);
}

static void
sort_entries(SortedEntry *entries, size_t n, const int *n_columns)
{
	qsort_arg(entries, n, sizeof(SortedEntry), qsort_entries, (void *) n_columns);
}
#endif

/* Writes every row added so far and all their index entries */
void
RtrecBulkInserterFinish(RtrecBulkInserter *b)
{
	Relation	rel = b->rri->ri_RelationDesc;

	flush_rows(b);
	for (int s = 0; s < b->n_sorted; s++)
	{
		SortedIndex *si = &b->sorted[s];
		Relation	index = b->rri->ri_IndexRelationDescs[si->index_no];
		IndexInfo  *info = b->rri->ri_IndexRelationInfo[si->index_no];

		sort_entries(si->entries, si->n_entries, &si->n_columns);
		for (int e = 0; e < si->n_entries; e++)
		{
			Datum		values[SORTED_MAX_COLUMNS];
			bool		isnull[SORTED_MAX_COLUMNS] = {false};

			for (int k = 0; k < si->n_columns; k++)
				values[k] = si->types[k] == INT4OID
					? Int32GetDatum((int32) si->entries[e].values[k])
					: Int64GetDatum(si->entries[e].values[k]);
			RtrecIndexInsert(index, values, isnull, &si->entries[e].tid, rel,
							 UNIQUE_CHECK_NO, info);
		}
		si->n_entries = 0;
	}
}

void
RtrecBulkInserterFree(RtrecBulkInserter *b)
{
	for (int i = 0; i < b->n_slots; i++)
		ExecDropSingleTupleTableSlot(b->slots[i]);
	if (b->slots != NULL)
		pfree(b->slots);
	for (int s = 0; s < b->n_sorted; s++)
		if (b->sorted[s].entries != NULL)
			pfree(b->sorted[s].entries);
	pfree(b->sorted);
	pfree(b->written_at_once);
	pfree(b);
}
