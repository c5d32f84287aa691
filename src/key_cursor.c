/*-------------------------------------------------------------------------
 *
 * key_cursor.c
 *	  Looks up an ascending run of keys in a btree index, in one forward
 *	  pass when they are dense, as a merge join would.
 *
 * A batch looks up each of its keys in a state table's primary key.  One
 * index descent per key costs a root-to-leaf search even when the key is
 * absent -- always, when a bulk load starts from empty state.  The keys of
 * a batch come sorted, so the cursor can keep one scan open from the first
 * key to the batch's last and walk forward over the index entries between
 * one key and the next, reading their columns from the index tuples (no
 * heap access).  It searches the index again when the next key is behind,
 * or more than a few entries ahead: up to WALK_LIMIT, halved after each
 * walk that did not reach its key and doubled after each that did.
 *
 * Such a scan reads each leaf page it lands on to the end (or to the last
 * key), which is wasted when the keys are sparse.  So a cursor whose walks
 * keep failing, or that has one key only (a single-row INSERT), looks keys
 * up the classic way instead: one equality scan per key, which reads only
 * that key's entries.  A batch therefore costs at most about one descent
 * per key, and a dense one much less; an empty index costs nothing.
 *
 * Key columns are int8 or int4 (rtrec's state keys), compared as int64.
 * The heap row of an entry equal to the key is fetched with the scan's
 * snapshot, as index_getnext_slot does, but its page is pruned only when
 * nearly full (fetch_row).  Entries inserted after the scan
 * read their page may be missed: callers look up keys that only they
 * insert (their own slot's rows), and take "not seen" for the others to
 * mean "maybe new", which is safe (state_write.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/itup.h"
#include "access/relscan.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "catalog/pg_type.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "storage/bufpage.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "key_cursor.h"
#include "rtrec.h"

/* most entries walked over before searching the index again instead */
#define WALK_LIMIT 16

#define MAX_KEYS RTREC_KEY_CURSOR_MAX_KEYS

/*
 * A heap page is pruned before a row of it is fetched only when it has less
 * free space than this, room for a few more versions of a state row.  See
 * fetch_row.
 */
#define PRUNE_BELOW_FREE_BYTES 512

struct RtrecKeyCursor
{
	Relation	heap;
	Relation	index;
	Snapshot	snapshot;
	int			n_keys;			/* leading index columns compared */
	bool		int4_column[MAX_KEYS];

	/* walking: ROW(columns) >= ROW(key) AND ROW(columns) <= ROW(last) */
	IndexScanDesc walk_scan;
	ScanKeyData walk_keys[2];	/* two row headers */
	ScanKeyData from_members[MAX_KEYS];
	ScanKeyData to_members[MAX_KEYS];
	int64		last[MAX_KEYS];
	int			walk_limit;		/* entries to walk before searching; 0: never */

	/* searching only: columns = key */
	IndexScanDesc exact_scan;
	ScanKeyData exact_keys[MAX_KEYS];

	IndexScanDesc scan;			/* the one positioned, NULL before any */
	bool		at_end;			/* no entries after the current one */
	bool		have_entry;		/* an entry is read but not yet passed */
	int64		entry[MAX_KEYS];	/* its key columns */
	int64		key[MAX_KEYS];	/* the key sought last */
	bool		matches;		/* the current entry equals key */

	/* fetching heap rows (fetch_row) */
	bool		own_fetch;		/* the table is a heap: not index_fetch_heap */
	Buffer		heap_buffer;	/* pinned, or InvalidBuffer */
	bool		in_chain;		/* more of the entry's HOT chain may be visible */
};

/*
 * last: the greatest key the cursor will be asked for, or NULL to look up
 * each key by itself (one key, or too few to walk between).
 */
RtrecKeyCursor *
RtrecKeyCursorBegin(Relation heap, Relation index, Snapshot snapshot, int n_keys,
					const int64 *last)
{
	RtrecKeyCursor *c = palloc0(sizeof(RtrecKeyCursor));
	TupleDesc	desc = RelationGetDescr(index);

	if (n_keys < 1 || n_keys > MAX_KEYS ||
		n_keys > IndexRelationGetNumberOfKeyAttributes(index))
		elog(ERROR, "key cursor on %d columns of index \"%s\"",
			 n_keys, RelationGetRelationName(index));
	for (int k = 0; k < n_keys; k++)
	{
		Oid			type = TupleDescAttr(desc, k)->atttypid;

		if (type != INT8OID && type != INT4OID)
			elog(ERROR, "column %d of index \"%s\" is not int8 or int4",
				 k + 1, RelationGetRelationName(index));
		c->int4_column[k] = type == INT4OID;
	}
	c->heap = heap;
	c->index = index;
	c->snapshot = snapshot;
	c->n_keys = n_keys;
	c->own_fetch = heap->rd_tableam == GetHeapamTableAmRoutine();
	c->heap_buffer = InvalidBuffer;
	if (last != NULL)
	{
		memcpy(c->last, last, sizeof(int64) * n_keys);
		c->walk_limit = WALK_LIMIT;
	}
	return c;
}

void
RtrecKeyCursorEnd(RtrecKeyCursor *c)
{
	if (BufferIsValid(c->heap_buffer))
		ReleaseBuffer(c->heap_buffer);
	if (c->walk_scan != NULL)
		index_endscan(c->walk_scan);
	if (c->exact_scan != NULL)
		index_endscan(c->exact_scan);
	pfree(c);
}

/* <0, 0, >0 as a is before, equal to, after b */
static int
compare_keys(const RtrecKeyCursor *c, const int64 *a, const int64 *b)
{
	for (int k = 0; k < c->n_keys; k++)
	{
		int			cmp = RtrecCompareInt64Values(a[k], b[k]);

		if (cmp != 0)
			return cmp;
	}
	return 0;
}

static Datum
key_datum(const RtrecKeyCursor *c, int k, int64 value)
{
	return c->int4_column[k] ? Int32GetDatum((int32) value) : Int64GetDatum(value);
}

/* Reads the next index entry's key columns; false at the end */
static bool
read_entry(RtrecKeyCursor *c)
{
	IndexScanDesc scan = c->scan;

	if (c->at_end || index_getnext_tid(scan, ForwardScanDirection) == NULL)
	{
		c->at_end = true;
		c->have_entry = false;
		return false;
	}
	c->have_entry = true;
	c->in_chain = false;
	if (scan == c->exact_scan)
	{
		/* it returns the key's entries only */
		memcpy(c->entry, c->key, sizeof(int64) * c->n_keys);
		return true;
	}
	for (int k = 0; k < c->n_keys; k++)
	{
		bool		isnull;
		Datum		d = index_getattr(scan->xs_itup, k + 1, scan->xs_itupdesc, &isnull);

		if (isnull)
			elog(ERROR, "NULL key in index \"%s\"", RelationGetRelationName(c->index));
		c->entry[k] = c->int4_column[k] ? (int64) DatumGetInt32(d) : DatumGetInt64(d);
	}
	return true;
}

/* want_entries: the entries' columns, read without the heap */
static IndexScanDesc
begin_scan(RtrecKeyCursor *c, int n_scan_keys, bool want_entries)
{
	IndexScanDesc scan = index_beginscan(c->heap, c->index, c->snapshot, n_scan_keys, 0);

	scan->xs_want_itup = want_entries;
	return scan;
}

/*
 * Fills a row comparison ROW(columns) <op> ROW(values), as the executor
 * builds one for ROW(a, b) >= ROW(x, y): the members carry btree's
 * three-way comparison functions.
 */
static void
row_compare(RtrecKeyCursor *c, ScanKey header, ScanKey members, StrategyNumber op,
			const int64 *values)
{
	for (int k = 0; k < c->n_keys; k++)
		ScanKeyEntryInitialize(&members[k],
							   SK_ROW_MEMBER | (k == c->n_keys - 1 ? SK_ROW_END : 0),
							   k + 1, op, c->int4_column[k] ? INT4OID : INT8OID, InvalidOid,
							   c->int4_column[k] ? F_BTINT4CMP : F_BTINT8CMP,
							   key_datum(c, k, values[k]));
	MemSet(header, 0, sizeof(ScanKeyData));
	header->sk_flags = SK_ROW_HEADER;
	header->sk_attno = 1;
	header->sk_strategy = op;
	header->sk_argument = PointerGetDatum(members);
}

/* Positions a scan on the first entry >= the key sought */
static void
search(RtrecKeyCursor *c)
{
	if (c->walk_limit > 0)
	{
		if (c->walk_scan == NULL)
			c->walk_scan = begin_scan(c, 2, true);
		row_compare(c, &c->walk_keys[0], c->from_members, BTGreaterEqualStrategyNumber, c->key);
		row_compare(c, &c->walk_keys[1], c->to_members, BTLessEqualStrategyNumber, c->last);
		index_rescan(c->walk_scan, c->walk_keys, 2, NULL, 0);
		c->scan = c->walk_scan;
	}
	else
	{
		if (c->exact_scan == NULL)
			c->exact_scan = begin_scan(c, c->n_keys, false);
		for (int k = 0; k < c->n_keys; k++)
			ScanKeyInit(&c->exact_keys[k], k + 1, BTEqualStrategyNumber,
						c->int4_column[k] ? F_INT4EQ : F_INT8EQ, key_datum(c, k, c->key[k]));
		index_rescan(c->exact_scan, c->exact_keys, c->n_keys, NULL, 0);
		c->scan = c->exact_scan;
	}
	c->at_end = false;
	c->have_entry = false;
}

/*
 * Fetches the current entry's heap row with the cursor's snapshot, as
 * index_fetch_heap does, or the next visible row of its HOT chain (only a
 * non-MVCC snapshot sees more than one).  index_fetch_heap prunes the page
 * of every row it fetches as soon as the page's free space is under the
 * table's fillfactor reserve.  A state page sits just there: filled to the
 * reserve, it drops under it with its first in-page update, so every update
 * of a row was preceded by a prune of its page (about 75 rows examined,
 * and a WAL record) that freed one dead version.  Here a page is pruned
 * only when it is nearly full, which frees the dead versions of a dozen
 * updates at once and still leaves room for the next in-page update.
 */
static bool
fetch_row(RtrecKeyCursor *c, TupleTableSlot *slot)
{
	BufferHeapTupleTableSlot *bslot = (BufferHeapTupleTableSlot *) slot;
	ItemPointer tid = &c->scan->xs_heaptid;
	bool		first_call = !c->in_chain;
	bool		all_dead;
	bool		found;

	if (!c->own_fetch)
	{
		/* not a heap (someone changed its access method): the AM's fetch */
		found = index_fetch_heap(c->scan, slot);
		c->in_chain = c->scan->xs_heap_continue;
		return found;
	}
	Assert(TTS_IS_BUFFERTUPLE(slot));
	if (first_call)
	{
		Buffer		previous = c->heap_buffer;

		c->heap_buffer = ReleaseAndReadBuffer(c->heap_buffer, c->heap,
											  ItemPointerGetBlockNumber(tid));
		/* an unlocked look, as heap_page_prune_opt's own */
		if (c->heap_buffer != previous &&
			PageGetHeapFreeSpace(BufferGetPage(c->heap_buffer)) < PRUNE_BELOW_FREE_BYTES)
			heap_page_prune_opt(c->heap, c->heap_buffer);
	}
	LockBuffer(c->heap_buffer, BUFFER_LOCK_SHARE);
	found = heap_hot_search_buffer(tid, c->heap, c->heap_buffer, c->snapshot,
								   &bslot->base.tupdata, &all_dead, first_call);
	bslot->base.tupdata.t_self = *tid;
	LockBuffer(c->heap_buffer, BUFFER_LOCK_UNLOCK);
	/* as index_fetch_heap: the index may mark a dead chain's entry dead */
	if (!c->scan->xactStartedInRecovery)
		c->scan->kill_prior_tuple = all_dead;
	c->in_chain = found && !IsMVCCSnapshot(c->snapshot);
	if (found)
	{
		pgstat_count_heap_fetch(c->index);
		slot->tts_tableOid = RelationGetRelid(c->heap);
		ExecStoreBufferHeapTuple(&bslot->base.tupdata, slot, c->heap_buffer);
	}
	return found;
}

/*
 * Positions the cursor on key (n_keys values).  RtrecKeyCursorNext then
 * returns the rows of the entries equal to it.  Keys sought in ascending
 * order are the cheap case.
 */
void
RtrecKeyCursorSeek(RtrecKeyCursor *c, const int64 *key)
{
	bool		searched = false;
	int			walked = 0;

	/* past the last key announced: look keys up one by one from now on */
	if (c->walk_limit > 0 && compare_keys(c, key, c->last) > 0)
		c->walk_limit = 0;
	/* a walk never goes back, nor on from a scan that stops at its key */
	if (c->scan == NULL || c->walk_limit == 0 || compare_keys(c, key, c->key) < 0)
	{
		memcpy(c->key, key, sizeof(int64) * c->n_keys);
		search(c);
		searched = true;
	}
	else
		memcpy(c->key, key, sizeof(int64) * c->n_keys);

	for (;;)
	{
		int			cmp;

		if (!c->have_entry && !read_entry(c))
		{
			c->matches = false;
			return;
		}
		cmp = compare_keys(c, c->entry, c->key);
		if (cmp >= 0)
		{
			c->matches = cmp == 0;
			if (!searched)
				c->walk_limit = Min(c->walk_limit * 2, WALK_LIMIT);
			return;
		}
		c->have_entry = false;	/* before the key: pass it */
		if (!searched && ++walked > c->walk_limit)
		{
			/* too far: search, and walk less far next time, or never */
			c->walk_limit /= 2;
			search(c);
			searched = true;
		}
	}
}

/*
 * Returns in slot the next row visible to the cursor's snapshot among the
 * entries equal to the key sought; false when there is none left.
 */
bool
RtrecKeyCursorNext(RtrecKeyCursor *c, TupleTableSlot *slot)
{
	while (c->matches)
	{
		bool		found;

		if (!c->have_entry)
		{
			if (!read_entry(c) || compare_keys(c, c->entry, c->key) != 0)
			{
				c->matches = false;
				break;
			}
		}
		/* the entry's heap row, or the next row of its HOT chain */
		found = fetch_row(c, slot);
		if (!c->in_chain)
			c->have_entry = false;
		if (found)
			return true;
	}
	return false;
}

/* Forgets the position: the next seek searches the index afresh */
void
RtrecKeyCursorForget(RtrecKeyCursor *c)
{
	c->scan = NULL;
}
