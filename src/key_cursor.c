/*-------------------------------------------------------------------------
 *
 * key_cursor.c
 *	  Looks up an ascending run of keys in a btree index in one forward
 *	  pass, as a merge join would.
 *
 * A batch looks up each of its keys in a state table's primary key.  One
 * index descent per key costs a root-to-leaf search even when the key is
 * absent -- always, when a bulk load starts from empty state.  The keys of
 * a batch come sorted, so the cursor keeps one scan open from the first
 * key on and walks forward over the index entries between one key and the
 * next, reading their columns from the index tuples (no heap access).  It
 * searches the index again -- for the first entry >= the key, a row
 * comparison, so one descent lands on the key itself -- when the next key
 * is behind, or more than a few entries ahead: up to WALK_LIMIT, fewer
 * after walks that did not reach their key.  A sparse batch over a big
 * index then costs about what one descent per key costs, a dense one much
 * less, and an empty index nothing.
 *
 * Key columns are int8 or int4 (rtrec's state keys), compared as int64.
 * The heap row of an entry equal to the key is fetched with the scan's
 * snapshot, like index_getnext_slot does.  Entries inserted after the scan
 * read their page may be missed: callers look up keys that only they
 * insert (their own slot's rows), and take "not seen" for the others to
 * mean "maybe new", which is safe (state_write.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/itup.h"
#include "access/relscan.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "catalog/pg_type.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"

#include "key_cursor.h"

/* most entries walked over before searching the index again instead */
#define WALK_LIMIT 16

struct RtrecKeyCursor
{
	IndexScanDesc scan;
	int			n_keys;			/* leading index columns compared */
	bool		int4_column[RTREC_KEY_CURSOR_MAX_KEYS];
	ScanKeyData row_key;		/* ROW(columns) >= ROW(key): a row header */
	ScanKeyData row_members[RTREC_KEY_CURSOR_MAX_KEYS];
	int			walk_limit;		/* entries to walk before searching */
	bool		started;		/* the scan has been positioned */
	bool		at_end;			/* no entries after the current one */
	bool		have_entry;		/* an entry is read but not yet passed */
	int64		entry[RTREC_KEY_CURSOR_MAX_KEYS];	/* its key columns */
	int64		key[RTREC_KEY_CURSOR_MAX_KEYS];	/* the key sought last */
	bool		matches;		/* the current entry equals key */
};

RtrecKeyCursor *
RtrecKeyCursorBegin(Relation heap, Relation index, Snapshot snapshot, int n_keys)
{
	RtrecKeyCursor *c = palloc0(sizeof(RtrecKeyCursor));
	TupleDesc	desc = RelationGetDescr(index);

	if (n_keys < 1 || n_keys > RTREC_KEY_CURSOR_MAX_KEYS ||
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
	c->n_keys = n_keys;
	c->walk_limit = WALK_LIMIT;
	c->scan = index_beginscan(heap, index, snapshot, 1, 0);
	c->scan->xs_want_itup = true;	/* entries' columns, without the heap */
	return c;
}

void
RtrecKeyCursorEnd(RtrecKeyCursor *c)
{
	index_endscan(c->scan);
	pfree(c);
}

/* <0, 0, >0 as a is before, equal to, after b */
static int
compare_keys(const RtrecKeyCursor *c, const int64 *a, const int64 *b)
{
	for (int k = 0; k < c->n_keys; k++)
	{
		if (a[k] != b[k])
			return a[k] < b[k] ? -1 : 1;
	}
	return 0;
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
	for (int k = 0; k < c->n_keys; k++)
	{
		bool		isnull;
		Datum		d = index_getattr(scan->xs_itup, k + 1, scan->xs_itupdesc, &isnull);

		if (isnull)
			elog(ERROR, "NULL key in index \"%s\"", RelationGetRelationName(scan->indexRelation));
		c->entry[k] = c->int4_column[k] ? (int64) DatumGetInt32(d) : DatumGetInt64(d);
	}
	c->have_entry = true;
	return true;
}

/*
 * Searches the index for the first entry >= key, comparing the key columns
 * as a row (lexicographically), as the executor does for ROW(a, b) >= ROW(x,
 * y): the members carry btree's three-way comparison functions.
 */
static void
search(RtrecKeyCursor *c)
{
	for (int k = 0; k < c->n_keys; k++)
		ScanKeyEntryInitialize(&c->row_members[k],
							   SK_ROW_MEMBER | (k == c->n_keys - 1 ? SK_ROW_END : 0),
							   k + 1, BTGreaterEqualStrategyNumber,
							   c->int4_column[k] ? INT4OID : INT8OID, InvalidOid,
							   c->int4_column[k] ? F_BTINT4CMP : F_BTINT8CMP,
							   c->int4_column[k] ? Int32GetDatum((int32) c->key[k])
							   : Int64GetDatum(c->key[k]));
	MemSet(&c->row_key, 0, sizeof(ScanKeyData));
	c->row_key.sk_flags = SK_ROW_HEADER;
	c->row_key.sk_attno = 1;
	c->row_key.sk_strategy = BTGreaterEqualStrategyNumber;
	c->row_key.sk_argument = PointerGetDatum(c->row_members);
	index_rescan(c->scan, &c->row_key, 1, NULL, 0);
	c->started = true;
	c->at_end = false;
	c->have_entry = false;
}

/*
 * Positions the cursor on key (n_keys values), the next call's key if it
 * is not smaller than this one's.  RtrecKeyCursorNext then returns the rows
 * of the entries equal to it.
 */
void
RtrecKeyCursorSeek(RtrecKeyCursor *c, const int64 *key)
{
	bool		searched = false;
	int			walked = 0;

	if (!c->started || compare_keys(c, key, c->key) < 0)
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
			/* too far: search, and walk less far next time */
			c->walk_limit = Max(c->walk_limit / 2, 1);
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
		found = index_fetch_heap(c->scan, slot);
		if (!c->scan->xs_heap_continue)
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
	c->started = false;
}
