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

static SPIPlanPtr
prepare_kept(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan = SPI_prepare(sql, nargs, argtypes);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	return plan;
}

/* The users of item_id, most recent latest interaction first */
static int64 *
fetch_item_users(int64 item_id, int *n_users)
{
	Datum		args[1];
	int64	   *users;

	if (users_plan == NULL)
	{
		Oid			types[1] = {INT8OID};

		users_plan = prepare_kept(
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

static int
compare_int64_asc(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
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

		items_plan = prepare_kept(
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
		qsort(u->items, n_items, sizeof(int64), compare_int64_asc);
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
	return compare_int64_asc(&((const SwingUser *) a)->user_id,
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
	return compare_int64_asc(&x->item_id, &y->item_id);
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

/*
 * Swing neighbours of item_id, best first, at most k of them (k <= 0: all).
 * Result palloc'd in the current memory context.
 */
int
RtrecSwingCompute(int64 item_id, int k, SwingNeighbor **result)
{
	const RtrecSettings *cfg = RtrecGetSettings();
	MemoryContext work = AllocSetContextCreate(CurrentMemoryContext, "rtrec swing",
											   ALLOCSET_DEFAULT_SIZES);
	MemoryContext caller = MemoryContextSwitchTo(work);
	SwingUser  *users;
	int			n_users = kept_users(item_id, cfg, &users);
	int64	   *common;
	int			longest = 1;
	HASHCTL		ctl;
	HTAB	   *scores;
	HASH_SEQ_STATUS seq;
	ScoreEntry *entry;
	SwingNeighbor *all;
	int			n_all = 0;
	int			n_out;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(ScoreEntry);
	ctl.hcxt = work;
	scores = hash_create("rtrec swing scores", 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	for (int u = 0; u < n_users; u++)
		longest = Max(longest, users[u].n_items);
	common = palloc(sizeof(int64) * longest);

	/* a fixed pair order makes the floating-point sum reproducible */
	qsort(users, n_users, sizeof(SwingUser), compare_users_by_id);
	for (int a = 0; a < n_users; a++)
	{
		CHECK_FOR_INTERRUPTS();
		for (int b = a + 1; b < n_users; b++)
		{
			int			n_common = intersect_sorted(users[a].items, users[a].n_items,
													users[b].items, users[b].n_items, common);
			double		term;

			if (n_common < 2)
				continue;		/* only i itself in common */
			term = users[a].weight * users[b].weight / (cfg->swing_alpha + n_common);
			for (int c = 0; c < n_common; c++)
			{
				bool		found;

				if (common[c] == item_id)
					continue;
				entry = hash_search(scores, &common[c], HASH_ENTER, &found);
				entry->score = found ? entry->score + term : term;
			}
		}
	}

	all = palloc(sizeof(SwingNeighbor) * Max(1, hash_get_num_entries(scores)));
	hash_seq_init(&seq, scores);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		all[n_all].item_id = entry->item_id;
		all[n_all].score = entry->score;
		n_all++;
	}
	qsort(all, n_all, sizeof(SwingNeighbor), compare_neighbors);
	n_out = (k > 0) ? Min(k, n_all) : n_all;

	MemoryContextSwitchTo(caller);
	*result = palloc(sizeof(SwingNeighbor) * Max(1, n_out));
	memcpy(*result, all, sizeof(SwingNeighbor) * n_out);
	MemoryContextDelete(work);
	return n_out;
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
	SwingNeighbor *neighbors;
	int			n;
	int			k;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	k = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1);
	InitMaterializedSRF(fcinfo, 0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	n = RtrecSwingCompute(PG_GETARG_INT64(0), k, &neighbors);
	for (int r = 0; r < n; r++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = Int64GetDatum(neighbors[r].item_id);
		values[1] = Float8GetDatum(neighbors[r].score);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}
