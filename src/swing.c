/*-------------------------------------------------------------------------
 *
 * swing.c
 *	  Swing item-to-item similarity, computed exactly for one item.
 *
 * For item i, with U_i its users and I_u the distinct items of user u:
 *
 *	s(i, j) = sum over unordered pairs {u, v} of U_i with j in I_u and I_v of
 *			  w_u * w_v / (alpha + |I_u ∩ I_v|),   w_u = (|I_u| + alpha1)^(-beta)
 *
 * Caps, in the contract's order: users whose |I_u| is outside
 * [swing_min_items_per_user, swing_max_items_per_user] are ignored; of the
 * rest, only the swing_max_users_per_item whose latest interaction with i is
 * most recent are kept (ties: smaller user_id first).  One item costs
 * O(|U_i|^2 * |I_u|) with both factors bounded by the caps, never by the data
 * size.  Item lists are read sorted, so an intersection is one merge.
 *
 * The caller must be connected to SPI.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "compat.h"
#include "rtrec.h"
#include "swing.h"

/* A kept user of U_i: its sorted distinct items and its Swing weight */
typedef struct SwingUser
{
	int64		user_id;
	int64	   *items;
	int			n_items;
	double		weight;
} SwingUser;

typedef struct ScoreEntry
{
	int64		item_id;		/* hash key */
	double		score;
} ScoreEntry;

static SPIPlanPtr users_plan = NULL;
static SPIPlanPtr items_plan = NULL;

/* The users of item_id, most recent latest interaction first */
static int64 *
fetch_item_users(int64 item_id, int *n_users)
{
	Datum		args[1];
	int64	   *users;

	if (users_plan == NULL)
	{
		Oid			types[1] = {INT8OID};

		users_plan = RtrecPrepareKept(
								  "SELECT user_id FROM rtrec.user_item_state WHERE item_id = $1"
								  " GROUP BY user_id ORDER BY max(last_ts) DESC, user_id",
								  1, types);
	}
	args[0] = Int64GetDatum(item_id);
	if (SPI_execute_plan(users_plan, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the users of item " INT64_FORMAT, item_id);
	*n_users = (int) SPI_processed;
	users = palloc(sizeof(int64) * Max(1, SPI_processed));
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;

		users[r] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r],
											   SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);
	return users;
}

/*
 * Reads the sorted distinct items of users[0..n-1], at most limit of each
 * (a user with more is over the cap anyway).  lists[k] gets users[k]'s.
 */
static void
fetch_user_items(const int64 *users, int n, int limit, SwingUser *lists)
{
	Datum	   *elems = palloc(sizeof(Datum) * n);
	Datum		args[2];

	if (items_plan == NULL)
	{
		Oid			types[2] = {INT8ARRAYOID, INT4OID};

		items_plan = RtrecPrepareKept(
								  "SELECT u.ord::int4, (SELECT array_agg(d.item_id) FROM"
								  "  (SELECT DISTINCT s.item_id FROM rtrec.user_item_state s"
								  "    WHERE s.user_id = u.user_id ORDER BY 1 LIMIT $2) d)"
								  " FROM unnest($1::int8[]) WITH ORDINALITY AS u(user_id, ord)",
								  2, types);
	}
	for (int k = 0; k < n; k++)
	{
		elems[k] = Int64GetDatum(users[k]);
		lists[k].user_id = users[k];
		lists[k].items = NULL;
		lists[k].n_items = 0;
	}
	args[0] = PointerGetDatum(construct_array(elems, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[1] = Int32GetDatum(limit);
	if (SPI_execute_plan(items_plan, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the items of Swing users");
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int			ord = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r],
													  SPI_tuptable->tupdesc, 1, &isnull));
		Datum		arr = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull);
		SwingUser  *u;
		Datum	   *items;
		int			n_items;

		if (isnull || ord < 1 || ord > n)
			continue;
		u = &lists[ord - 1];
		deconstruct_array(DatumGetArrayTypeP(arr), INT8OID, 8, FLOAT8PASSBYVAL,
						  TYPALIGN_DOUBLE, &items, NULL, &n_items);
		u->items = palloc(sizeof(int64) * Max(1, n_items));
		for (int k = 0; k < n_items; k++)
			u->items[k] = DatumGetInt64(items[k]);
		u->n_items = n_items;
		/* SQL's DISTINCT gave them in order; make sure of it for the merges */
		qsort(u->items, n_items, sizeof(int64), RtrecCompareInt64);
	}
	SPI_freetuptable(SPI_tuptable);
}

/*
 * Applies the caps to U_i: returns the kept users (with their item lists and
 * weights) in kept[], at most max_users_per_item of them.
 */
static int
kept_users(int64 item_id, const RtrecSettings *cfg, SwingUser **kept_out)
{
	int			n_users;
	int64	   *users = fetch_item_users(item_id, &n_users);
	int			cap = cfg->swing_max_users_per_item;
	int			limit = (int) Min((int64) cfg->swing_max_items_per_user + 1, (int64) PG_INT32_MAX);
	SwingUser  *kept = palloc(sizeof(SwingUser) * Max(1, Min(n_users, cap)));
	int			n_kept = 0;
	int			next = 0;

	/* read item lists in recency order, a cap's worth at a time */
	while (n_kept < cap && next < n_users)
	{
		int			chunk = Min(cap, n_users - next);
		SwingUser  *lists = palloc(sizeof(SwingUser) * chunk);

		CHECK_FOR_INTERRUPTS();
		fetch_user_items(users + next, chunk, limit, lists);
		for (int k = 0; k < chunk && n_kept < cap; k++)
		{
			SwingUser  *u = &lists[k];

			if (u->n_items < cfg->swing_min_items_per_user ||
				u->n_items > cfg->swing_max_items_per_user)
				continue;
			u->weight = pow((double) u->n_items + cfg->swing_user_alpha, -cfg->swing_user_beta);
			kept[n_kept++] = *u;
		}
		next += chunk;
	}
	*kept_out = kept;
	return n_kept;
}

static int
compare_users_by_id(const void *a, const void *b)
{
	return RtrecCompareInt64(&((const SwingUser *) a)->user_id,
							 &((const SwingUser *) b)->user_id);
}

/* best first; ties: smaller item id first */
static int
compare_neighbors(const void *a, const void *b)
{
	const SwingNeighbor *x = a;
	const SwingNeighbor *y = b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return RtrecCompareInt64(&x->item_id, &y->item_id);
}

/*
 * Writes the intersection of two sorted lists to out[], returns its size.
 */
static int
intersect_sorted(const int64 *a, int na, const int64 *b, int nb, int64 *out)
{
	int			i = 0,
				j = 0,
				n = 0;

	while (i < na && j < nb)
	{
		if (a[i] < b[j])
			i++;
		else if (a[i] > b[j])
			j++;
		else
		{
			out[n++] = a[i];
			i++;
			j++;
		}
	}
	return n;
}

/* Where the user counts |U_j| of CF candidates come from */
typedef void (*UserCountSource) (const void *source, const int64 *items, int n, int *counts);

/* Takes the top k (k <= 0: all) of all[0..n-1] into a copy in context */
static int
take_top(SwingNeighbor *all, int n, int k, MemoryContext context, SwingNeighbor **out)
{
	int			n_out;

	if (n > 1)
		qsort(all, n, sizeof(SwingNeighbor), compare_neighbors);
	n_out = (k > 0) ? Min(k, n) : n;
	*out = MemoryContextAlloc(context, sizeof(SwingNeighbor) * Max(1, n_out));
	memcpy(*out, all, sizeof(SwingNeighbor) * n_out);
	return n_out;
}

static SwingNeighbor *
hash_to_array(HTAB *table, int *n)
{
	SwingNeighbor *all = palloc(sizeof(SwingNeighbor) * Max(1, hash_get_num_entries(table)));
	HASH_SEQ_STATUS seq;
	ScoreEntry *entry;

	*n = 0;
	hash_seq_init(&seq, table);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		all[*n].item_id = entry->item_id;
		all[*n].score = entry->score;
		(*n)++;
	}
	return all;
}

static void
add_score(HTAB *table, int64 item_id, double value)
{
	bool		found;
	ScoreEntry *entry = hash_search(table, &item_id, HASH_ENTER, &found);

	entry->score = found ? entry->score + value : value;
}

/*
 * Cosine item-CF over the same kept users: co(i, j) / sqrt(|kept U_i| |U_j|)
 * for the CF_POOL items that co-occur with i most often (ties: smaller id),
 * among those with at least cf_min_common_users common users (single
 * co-occurrences are mostly noise on sparse data).
 * Bounding the pool bounds the |U_j| look-ups; both the incremental and the
 * bulk paths use the same rule, so their lists agree.
 */
#define CF_POOL 1000

static SwingNeighbor *
cosine_scores(HTAB *cooc, int n_kept, int min_common, UserCountSource source,
			  const void *source_arg, int *n)
{
	SwingNeighbor *all = hash_to_array(cooc, n);
	int64	   *items;
	int		   *counts;
	int			n_pool;

	if (*n > 1)
		qsort(all, *n, sizeof(SwingNeighbor), compare_neighbors);
	/* sorted by co-occurrence: cut below the minimum number of common users */
	while (*n > 0 && all[*n - 1].score < min_common)
		(*n)--;
	n_pool = Min(*n, CF_POOL);
	items = palloc(sizeof(int64) * Max(1, n_pool));
	counts = palloc(sizeof(int) * Max(1, n_pool));
	for (int c = 0; c < n_pool; c++)
		items[c] = all[c].item_id;
	if (n_pool > 0)
		source(source_arg, items, n_pool, counts);
	for (int c = 0; c < n_pool; c++)
		all[c].score = all[c].score / sqrt((double) n_kept * Max(1, counts[c]));
	*n = n_pool;
	return all;
}

/*
 * Scores the neighbours of item_id from its kept users: Swing, and cosine
 * CF when lists->cf is wanted.  Results go to the caller's memory context;
 * work is a scratch context, deleted here.
 */
static void
score_neighbors(int64 item_id, SwingUser *users, int n_users, int k,
				const RtrecSettings *cfg, MemoryContext work, MemoryContext caller,
				UserCountSource source, const void *source_arg, NeighborLists *lists)
{
	HTAB	   *swing = RtrecInt64Table("rtrec swing scores", sizeof(ScoreEntry), 256, work);
	HTAB	   *cooc = RtrecInt64Table("rtrec co-occurrence", sizeof(ScoreEntry), 256, work);
	int64	   *common;
	int			longest = 1;
	SwingNeighbor *all;
	int			n_all;

	for (int u = 0; u < n_users; u++)
		longest = Max(longest, users[u].n_items);
	common = palloc(sizeof(int64) * longest);

	/* a fixed pair order makes the floating-point sum reproducible */
	if (n_users > 1)
		qsort(users, n_users, sizeof(SwingUser), compare_users_by_id);
	for (int a = 0; a < n_users; a++)
	{
		CHECK_FOR_INTERRUPTS();
		for (int c = 0; source != NULL && c < users[a].n_items; c++)
			if (users[a].items[c] != item_id)
				add_score(cooc, users[a].items[c], 1.0);
		for (int b = a + 1; b < n_users; b++)
		{
			int			n_common = intersect_sorted(users[a].items, users[a].n_items,
													users[b].items, users[b].n_items, common);
			double		term;

			if (n_common < 2)
				continue;		/* only i itself in common */
			term = users[a].weight * users[b].weight / (cfg->swing_alpha + n_common);
			for (int c = 0; c < n_common; c++)
				if (common[c] != item_id)
					add_score(swing, common[c], term);
		}
	}

	all = hash_to_array(swing, &n_all);
	lists->n_swing = take_top(all, n_all, k, caller, &lists->swing);
	lists->n_cf = 0;
	lists->cf = NULL;
	if (source != NULL)
	{
		all = cosine_scores(cooc, n_users, cfg->cf_min_common_users, source, source_arg, &n_all);
		lists->n_cf = take_top(all, n_all, k, caller, &lists->cf);
	}
	MemoryContextSwitchTo(caller);
	MemoryContextDelete(work);
}

/* |U_j| of the given items, read through SPI */
static SPIPlanPtr counts_plan = NULL;

static void
user_counts_from_spi(const void *unused, const int64 *items, int n, int *counts)
{
	Datum	   *elems = palloc(sizeof(Datum) * n);
	Datum		args[1];

	if (counts_plan == NULL)
	{
		Oid			types[1] = {INT8ARRAYOID};

		counts_plan = RtrecPrepareKept("SELECT u.ord::int4, (SELECT count(DISTINCT s.user_id)::int4"
								   "   FROM rtrec.user_item_state s WHERE s.item_id = u.item_id)"
								   " FROM unnest($1::int8[]) WITH ORDINALITY AS u(item_id, ord)",
								   1, types);
	}
	for (int c = 0; c < n; c++)
	{
		elems[c] = Int64GetDatum(items[c]);
		counts[c] = 1;
	}
	args[0] = PointerGetDatum(construct_array(elems, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	if (SPI_execute_plan(counts_plan, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not count the users of CF candidates");
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int			ord = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
		int			count = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull));

		if (ord >= 1 && ord <= n)
			counts[ord - 1] = count;
	}
	SPI_freetuptable(SPI_tuptable);
}

/*
 * Neighbour lists of item_id, best first, at most k each (k <= 0: all), read
 * from the state tables through SPI; with_cf: also the cosine CF list.
 * Results palloc'd in the current memory context.
 */
void
RtrecNeighborsCompute(int64 item_id, int k, bool with_cf, NeighborLists *lists)
{
	const RtrecSettings *cfg = RtrecGetSettings();
	MemoryContext work = AllocSetContextCreate(CurrentMemoryContext, "rtrec swing",
											   ALLOCSET_DEFAULT_SIZES);
	MemoryContext caller = MemoryContextSwitchTo(work);
	SwingUser  *users;
	int			n_users = kept_users(item_id, cfg, &users);

	score_neighbors(item_id, users, n_users, k, cfg, work, caller,
					with_cf ? user_counts_from_spi : NULL, NULL, lists);
}

/* ---- the whole interaction graph in memory, for bulk work ---- */

typedef struct GraphPair
{
	int64		user_id;
	int64		item_id;
	TimestampTz last_ts;
} GraphPair;

struct SwingGraph
{
	int			n_users;
	int64	   *user_ids;		/* sorted */
	int		   *user_start;		/* user k's items: items[user_start[k] .. user_start[k+1]) */
	int64	   *items;			/* sorted within each user */
	int			n_items;
	int64	   *item_ids;		/* sorted */
	int		   *item_start;		/* item k's users: item_users[item_start[k] .. +1) */
	int		   *item_users;		/* user indexes, most recent first */
};

static int
compare_pairs_by_user(const void *a, const void *b)
{
	const GraphPair *x = a;
	const GraphPair *y = b;
	int			c = RtrecCompareInt64(&x->user_id, &y->user_id);

	return c != 0 ? c : RtrecCompareInt64(&x->item_id, &y->item_id);
}

static int
compare_pairs_by_item_recency(const void *a, const void *b)
{
	const GraphPair *x = a;
	const GraphPair *y = b;
	int			c = RtrecCompareInt64(&x->item_id, &y->item_id);

	if (c != 0)
		return c;
	if (x->last_ts != y->last_ts)
		return x->last_ts > y->last_ts ? -1 : 1;
	return RtrecCompareInt64(&x->user_id, &y->user_id);
}

static int
find_index(const int64 *sorted, int n, int64 key)
{
	int			lo = 0,
				hi = n - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (sorted[mid] == key)
			return mid;
		if (sorted[mid] < key)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

/*
 * Loads every distinct (user, item) pair with its latest time, through a
 * cursor so that SPI never holds more than a batch of tuples.  The graph is
 * palloc'd in the current memory context.
 */
SwingGraph *
RtrecSwingGraphLoad(void)
{
	SwingGraph *g = palloc0(sizeof(SwingGraph));
	SPIPlanPtr	plan;
	Portal		portal;
	GraphPair  *pairs = NULL;
	Size		n_pairs = 0;
	Size		allocated = 0;

	plan = SPI_prepare("SELECT user_id, item_id, max(last_ts) FROM rtrec.user_item_state"
					   " GROUP BY user_id, item_id", 0, NULL);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		if (n_pairs + SPI_processed > allocated)
		{
			allocated = Max(allocated * 2, n_pairs + SPI_processed);
			if (allocated > MaxAllocHugeSize / sizeof(GraphPair) || allocated > (Size) PG_INT32_MAX)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("too many (user, item) pairs for an in-memory Swing pass")));
			pairs = pairs ? repalloc_huge(pairs, allocated * sizeof(GraphPair))
				: MemoryContextAllocHuge(CurrentMemoryContext, allocated * sizeof(GraphPair));
		}
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;

			pairs[n_pairs].user_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
			pairs[n_pairs].item_id = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
			pairs[n_pairs].last_ts = DatumGetTimestampTz(SPI_getbinval(tup, desc, 3, &isnull));
			n_pairs++;
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	SPI_freeplan(plan);

	/* users and their sorted item lists */
	if (n_pairs > 0)
		qsort(pairs, n_pairs, sizeof(GraphPair), compare_pairs_by_user);
	g->items = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int64) * Max(1, n_pairs));
	g->user_ids = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int64) * Max(1, n_pairs));
	g->user_start = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int) * (n_pairs + 1));
	for (Size p = 0; p < n_pairs; p++)
	{
		if (p == 0 || pairs[p].user_id != pairs[p - 1].user_id)
		{
			g->user_ids[g->n_users] = pairs[p].user_id;
			g->user_start[g->n_users] = (int) p;
			g->n_users++;
		}
		g->items[p] = pairs[p].item_id;
	}
	g->user_start[g->n_users] = (int) n_pairs;

	/* items and their users, most recent first */
	if (n_pairs > 0)
		qsort(pairs, n_pairs, sizeof(GraphPair), compare_pairs_by_item_recency);
	g->item_ids = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int64) * Max(1, n_pairs));
	g->item_start = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int) * (n_pairs + 1));
	g->item_users = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int) * Max(1, n_pairs));
	for (Size p = 0; p < n_pairs; p++)
	{
		if (p == 0 || pairs[p].item_id != pairs[p - 1].item_id)
		{
			g->item_ids[g->n_items] = pairs[p].item_id;
			g->item_start[g->n_items] = (int) p;
			g->n_items++;
		}
		g->item_users[p] = find_index(g->user_ids, g->n_users, pairs[p].user_id);
	}
	g->item_start[g->n_items] = (int) n_pairs;
	if (pairs != NULL)
		pfree(pairs);
	return g;
}

/* |U_j| of the given items, from a loaded graph */
static void
user_counts_from_graph(const void *source, const int64 *items, int n, int *counts)
{
	const SwingGraph *g = source;

	for (int c = 0; c < n; c++)
	{
		int			idx = find_index(g->item_ids, g->n_items, items[c]);

		counts[c] = idx < 0 ? 1 : g->item_start[idx + 1] - g->item_start[idx];
	}
}

/* Same as RtrecNeighborsCompute (with CF), from a loaded graph */
void
RtrecNeighborsComputeFromGraph(const SwingGraph *g, int64 item_id, int k, NeighborLists *lists)
{
	const RtrecSettings *cfg = RtrecGetSettings();
	MemoryContext work = AllocSetContextCreate(CurrentMemoryContext, "rtrec swing",
											   ALLOCSET_DEFAULT_SIZES);
	MemoryContext caller = MemoryContextSwitchTo(work);
	int			idx = find_index(g->item_ids, g->n_items, item_id);
	int			n_kept = 0;
	SwingUser  *kept = NULL;

	if (idx >= 0)
	{
		kept = palloc(sizeof(SwingUser) * Max(1, Min(g->item_start[idx + 1] - g->item_start[idx],
													 cfg->swing_max_users_per_item)));
		for (int p = g->item_start[idx]; p < g->item_start[idx + 1] &&
			 n_kept < cfg->swing_max_users_per_item; p++)
		{
			int			u = g->item_users[p];
			int			n_items = g->user_start[u + 1] - g->user_start[u];
			SwingUser  *su;

			if (n_items < cfg->swing_min_items_per_user || n_items > cfg->swing_max_items_per_user)
				continue;
			su = &kept[n_kept++];
			su->user_id = g->user_ids[u];
			su->items = &g->items[g->user_start[u]];
			su->n_items = n_items;
			su->weight = pow((double) n_items + cfg->swing_user_alpha, -cfg->swing_user_beta);
		}
	}
	score_neighbors(item_id, kept, n_kept, k, cfg, work, caller,
					user_counts_from_graph, g, lists);
}

/*
 * rtrec.swing_compute(item_id bigint, n integer) -> (neighbor_id, score):
 * the exact Swing neighbours of an item from the current interaction state.
 */
PG_FUNCTION_INFO_V1(rtrec_swing_compute);
Datum
rtrec_swing_compute(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	NeighborLists lists;
	int			k;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	k = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1);
	InitMaterializedSRF(fcinfo, 0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	RtrecNeighborsCompute(PG_GETARG_INT64(0), k, false, &lists);
	for (int r = 0; r < lists.n_swing; r++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = Int64GetDatum(lists.swing[r].item_id);
		values[1] = Float8GetDatum(lists.swing[r].score);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}

static void
emit_list(ReturnSetInfo *rsinfo, int64 item_id, const char *kind,
		  const SwingNeighbor *list, int n)
{
	for (int r = 0; r < n; r++)
	{
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};

		values[0] = Int64GetDatum(item_id);
		values[1] = CStringGetTextDatum(kind);
		values[2] = Int64GetDatum(list[r].item_id);
		values[3] = Float8GetDatum(list[r].score);
		values[4] = Int32GetDatum(r + 1);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

/*
 * rtrec.neighbors_compute_part(part, parts, n) -> (item_id, kind,
 * neighbor_id, score, rank): the exact top-n Swing ('swing') and cosine
 * ('cf') lists of every item whose position in item order
 * is part modulo parts, from one in-memory load of the interaction graph.
 * rtrec_rebuild runs the parts as a UNION ALL, which PostgreSQL spreads over
 * parallel workers (Parallel Append).
 */
PG_FUNCTION_INFO_V1(rtrec_neighbors_compute_part);
Datum
rtrec_neighbors_compute_part(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			part = PG_GETARG_INT32(0);
	int			parts = PG_GETARG_INT32(1);
	int			k = PG_GETARG_INT32(2);
	MemoryContext per_item;
	SwingGraph *graph;

	if (parts < 1 || part < 0 || part >= parts)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid partition %d of %d", part, parts),
				 errhint("part must be between 0 and parts - 1.")));
	InitMaterializedSRF(fcinfo, 0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	graph = RtrecSwingGraphLoad();
	per_item = AllocSetContextCreate(CurrentMemoryContext, "rtrec swing item",
									 ALLOCSET_DEFAULT_SIZES);
	/* int64: part + parts must not overflow for parts near INT_MAX */
	for (int64 i = part; i < graph->n_items; i += parts)
	{
		MemoryContext old = MemoryContextSwitchTo(per_item);
		NeighborLists lists;

		RtrecNeighborsComputeFromGraph(graph, graph->item_ids[i], k, &lists);
		emit_list(rsinfo, graph->item_ids[i], "swing", lists.swing, lists.n_swing);
		emit_list(rsinfo, graph->item_ids[i], "cf", lists.cf, lists.n_cf);
		MemoryContextSwitchTo(old);
		MemoryContextReset(per_item);
	}
	SPI_finish();
	return (Datum) 0;
}
