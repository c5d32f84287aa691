/*-------------------------------------------------------------------------
 *
 * candidates.c
 *	  Candidate generation for one request: the "BE" stage.
 *
 * A handful of set-based queries (never one per candidate):
 *	 1. the user's distinct items, newest first: the trigger items, and the
 *		"seen" set, with the catalog attributes of the triggers (of all of
 *		them when the ranker weighs price or brand); the user's last
 *		category and newest event;
 *	 2. the Swing and cosine neighbour lists of the trigger items;
 *	 3. the user's category affinities: from the rows of 1. (they carry the
 *		category their events were filed under), a query of their own
 *		before 1.2;
 *	 4. trending items of the user's top categories (c2i) and overall;
 *	 5. catalog attributes of the pool, and its trend and first event time
 *		only when the ranker (or rtrec_train) uses them; rtrec_recommend
 *		asks for them in batches, for as few candidates as its top n need
 *		(RtrecRankTopN).
 * Candidates are merged in a hash table and capped to the pool size by their
 * best generator score, each generator scaled to [0, 1] by its best
 * candidate.
 *
 * Everything is read with the caller's snapshot, so an event the caller's
 * transaction inserted counts at once, and nothing is written: this works on
 * a hot standby.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/memutils.h"

#include "recommend.h"

const char *const RtrecSourceNames[N_SOURCES] = {"swing", "cf", "c2i", "trending"};

static SPIPlanPtr user_rows_plans[2] = {NULL, NULL};	/* [before 1.2]: on first use */
static SPIPlanPtr user_plan = NULL;
static SPIPlanPtr neighbors_plan = NULL;
static SPIPlanPtr categories_plan = NULL;
static SPIPlanPtr trending_plan = NULL;
static SPIPlanPtr attributes_plan = NULL;
static SPIPlanPtr item_state_plan = NULL;

/*
 * ln(price) of a catalog row i, for prices > 0; NULL otherwise.  Below
 * 1e300 so that huge and NaN numerics (NaN sorts above every number) never
 * reach float8.
 */
#define LOG_PRICE_SQL "CASE WHEN i.price > 0 AND i.price < 1e300 THEN ln(i.price::float8) END"

static void
prepare_plans(void)
{
	Oid			int8_arg[1] = {INT8OID};
	Oid			array_arg[1] = {INT8ARRAYOID};
	Oid			trending_args[4] = {INT8ARRAYOID, INT4OID, BOOLOID, INT4OID};

	if (item_state_plan != NULL)	/* the last one prepared */
		return;
	user_plan = RtrecPrepareKept(
							 "SELECT (array_agg(last_category_id ORDER BY last_ts DESC, last_event_id DESC))[1],"
							 "       (array_agg(last_category_id ORDER BY last_ts DESC, last_event_id DESC))[1] IS NOT NULL,"
							 "       max(last_ts)"
							 "  FROM rtrec.user_state WHERE user_id = $1 HAVING count(*) > 0", 1, int8_arg);
	neighbors_plan = RtrecPrepareKept(
								  "SELECT 0, item_id, neighbor_id, score FROM rtrec.swing_neighbors WHERE item_id = ANY($1)"
								  " UNION ALL "
								  "SELECT 1, item_id, neighbor_id, score FROM rtrec.cf_neighbors WHERE item_id = ANY($1)",
								  1, array_arg);
	/* before 1.2; the view, since this plan outlives an update */
	categories_plan = RtrecPrepareKept(
								   "SELECT category_id, affinity_log2 FROM rtrec.user_category"
								   " WHERE user_id = $1 ORDER BY affinity_log2 DESC, category_id",
								   1, int8_arg);
	/* $1 categories (ranks <= $2), and overall (ranks <= $4) when $3 */
	trending_plan = RtrecPrepareKept(
								 "SELECT category_id, item_id, trend_log2 FROM rtrec.trending_items"
								 " WHERE (category_id = ANY($1) AND rank <= $2)"
								 "    OR ($3 AND category_id IS NULL AND rank <= $4)", 4, trending_args);
	/* both by index with = ANY: a join to unnest() gets hash-joined over the catalog */
	attributes_plan = RtrecPrepareKept(
									   "SELECT i.item_id, i.category_id, i.available, " LOG_PRICE_SQL ", hashtext(i.brand)"
									   "  FROM rtrec.items i WHERE i.item_id = ANY($1)", 1, array_arg);
	item_state_plan = RtrecPrepareKept(
									   "SELECT item_id, rtrec.log2_sum(trend_log2), min(first_ts),"
									   "       sum(weight_sum) / nullif(sum(n_events), 0)"
									   "  FROM rtrec.item_state WHERE item_id = ANY($1) GROUP BY item_id",
									   1, array_arg);
}

/*
 * Runs a read-only plan with the caller's snapshot.  SPI returns in its own
 * memory context; the request's working memory is where it was called from.
 */
static int
run_plan(Request *req, SPIPlanPtr plan, Datum *args, const char *nulls)
{
	int			rc = SPI_execute_plan(plan, args, nulls, true, 0);

	MemoryContextSwitchTo(req->memory);
	return rc;
}

static HTAB *
int64_table(const char *name, Size entrysize, long size)
{
	return RtrecInt64Table(name, entrysize, size, CurrentMemoryContext);
}

/* An item of the user's history, by id (req->seen) */
typedef struct SeenItem
{
	int64		item_id;
	int			history_index;	/* in req->history, newest first */
} SeenItem;

static Candidate *
candidate(Request *req, int64 item_id)
{
	bool		found;
	Candidate  *c = hash_search(req->candidates, &item_id, HASH_ENTER, &found);

	if (!found)
	{
		memset(c, 0, sizeof(Candidate));
		c->item_id = item_id;
	}
	return c;
}

bool
RtrecIsSeen(Request *req, int64 item_id)
{
	return hash_search(req->seen, &item_id, HASH_FIND, NULL) != NULL;
}

static int
compare_history(const void *a, const void *b)
{
	const HistoryItem *x = a;
	const HistoryItem *y = b;

	if (x->last_ts != y->last_ts)
		return x->last_ts > y->last_ts ? -1 : 1;
	return (x->item_id < y->item_id) - (x->item_id > y->item_id);
}

static inline int64
getint8(int row, int col, bool *isnull)
{
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull));
}

static inline int32
getint4(int row, int col, bool *isnull)
{
	return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull));
}

static inline double
getfloat8(int row, int col, bool *isnull)
{
	return DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull));
}

/*
 * Catalog attributes of the user's n most recent items: the trigger items'
 * categories weigh the user's categories; the price level and brands
 * (need_taste) take the whole history.  Reading them for the triggers only
 * saves an index probe per history item (hundreds for a dense user).
 */
static void
load_history_attributes(Request *req, int n)
{
	int64	   *ids;
	Datum		arg;

	if (n == 0)
		return;
	ids = palloc(sizeof(int64) * n);
	for (int h = 0; h < n; h++)
		ids[h] = req->history[h].item_id;
	arg = RtrecInt8Array(ids, n);
	if (run_plan(req, attributes_plan, &arg, NULL) != SPI_OK_SELECT)
		elog(ERROR, "could not read the attributes of the user's items");
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int64		item = getint8(r, 1, &isnull);
		SeenItem   *seen = hash_search(req->seen, &item, HASH_FIND, NULL);
		HistoryItem *it;

		if (seen == NULL || seen->history_index >= n)
			continue;
		it = &req->history[seen->history_index];
		it->category_id = getint8(r, 2, &isnull);
		it->has_category = !isnull;
		it->log_price = getfloat8(r, 4, &isnull);
		it->has_price = !isnull;
		it->brand_hash = getint4(r, 5, &isnull);
		it->has_brand = !isnull;
	}
	SPI_freetuptable(SPI_tuptable);
}

static TimestampTz
gettimestamptz(int row, int col, bool *isnull)
{
	return DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull));
}

/* the user's category affinities, greatest first, before 1.2 */
static void
load_categories_grouped(Request *req)
{
	Datum		arg = Int64GetDatum(req->user_id);
	bool		isnull;

	if (run_plan(req, categories_plan, &arg, NULL) != SPI_OK_SELECT)
		elog(ERROR, "could not read the user's categories");
	req->n_categories = (int) SPI_processed;
	req->categories = palloc(sizeof(UserCategory) * Max(1, req->n_categories));
	for (int r = 0; r < req->n_categories; r++)
	{
		req->categories[r].category_id = getint8(r, 1, &isnull);
		req->categories[r].affinity_log2 = getfloat8(r, 2, &isnull);
	}
	SPI_freetuptable(SPI_tuptable);
}

static int
compare_category_id(const void *a, const void *b)
{
	return RtrecCompareInt64Values(((const UserCategory *) a)->category_id,
								   ((const UserCategory *) b)->category_id);
}

/* greatest affinity first, as the grouped query orders them */
static int
compare_category_affinity(const void *a, const void *b)
{
	const UserCategory *x = a;
	const UserCategory *y = b;

	if (x->affinity_log2 != y->affinity_log2)
		return x->affinity_log2 > y->affinity_log2 ? -1 : 1;
	return compare_category_id(a, b);
}

/*
 * The user's rows of user_item_state: since 1.2 each carries the category
 * its events were filed under, and the affinities come from these rows;
 * before, a query of their own (categories_plan) read them
 */
static const char *const user_rows_sql[2] = {
	"SELECT item_id, last_ts, weight_sum, category_id, affinity_log2"
	"  FROM rtrec.user_item_state WHERE user_id = $1",
	"SELECT item_id, last_ts, weight_sum, NULL::int8, NULL::float8"
	"  FROM rtrec.user_item_state WHERE user_id = $1"
};

/*
 * req->history, one entry per item, and the category affinities that the
 * rows carry (greatest first), from one read of the user's rows.  An item
 * has a row per writer slot and per category it had; they are merged
 * through req->seen, not sorted: history_index is the entry's place until
 * load_user sorts the history.  A second query summing the rows per
 * category read them all again (a fifth of a call on dense data).
 */
static void
load_history(Request *req, bool before_1_2)
{
	Datum		arg = Int64GetDatum(req->user_id);
	bool		isnull;
	int			n_rows;
	int			n_categories = 0;

	if (user_rows_plans[before_1_2] == NULL)
	{
		Oid			int8_arg[1] = {INT8OID};

		user_rows_plans[before_1_2] = RtrecPrepareKept(user_rows_sql[before_1_2], 1, int8_arg);
	}
	if (run_plan(req, user_rows_plans[before_1_2], &arg, NULL) != SPI_OK_SELECT)
		elog(ERROR, "could not read the user's history");
	n_rows = (int) SPI_processed;
	req->history = palloc0(sizeof(HistoryItem) * Max(1, n_rows));
	req->categories = palloc(sizeof(UserCategory) * Max(1, n_rows));
	req->n_history = 0;
	for (int r = 0; r < n_rows; r++)
	{
		int64		item_id = getint8(r, 1, &isnull);
		TimestampTz last_ts = gettimestamptz(r, 2, &isnull);
		double		weight_sum = getfloat8(r, 3, &isnull);
		int64		category_id = getint8(r, 4, &isnull);
		bool		found;
		SeenItem   *seen = hash_search(req->seen, &item_id, HASH_ENTER, &found);
		HistoryItem *h;

		if (found)
		{
			h = &req->history[seen->history_index];
			h->last_ts = Max(h->last_ts, last_ts);
			h->weight_sum += weight_sum;
		}
		else
		{
			seen->history_index = req->n_history;
			h = &req->history[req->n_history++];
			h->item_id = item_id;
			h->last_ts = last_ts;
			h->weight_sum = weight_sum;
		}
		if (!isnull)
		{
			req->categories[n_categories].category_id = category_id;
			req->categories[n_categories++].affinity_log2 = getfloat8(r, 5, &isnull);
		}
	}
	SPI_freetuptable(SPI_tuptable);

	/* one affinity per category: its rows' decayed sums added up */
	qsort(req->categories, n_categories, sizeof(UserCategory), compare_category_id);
	req->n_categories = 0;
	for (int c = 0; c < n_categories; c++)
	{
		UserCategory *last = req->n_categories > 0 ? &req->categories[req->n_categories - 1] : NULL;

		if (last != NULL && last->category_id == req->categories[c].category_id)
			last->affinity_log2 = RtrecLog2Add(last->affinity_log2, req->categories[c].affinity_log2);
		else
			req->categories[req->n_categories++] = req->categories[c];
	}
	qsort(req->categories, req->n_categories, sizeof(UserCategory), compare_category_affinity);
}

/* 1. and 3.: history, last category, category affinities */
static void
load_user(Request *req, const RtrecSettings *cfg)
{
	Datum		arg = Int64GetDatum(req->user_id);
	bool		isnull;

	bool		before_1_2 = RtrecStateBefore12();

	load_history(req, before_1_2);
	if (before_1_2)
		load_categories_grouped(req);
	if (req->n_history > 1)
		qsort(req->history, req->n_history, sizeof(HistoryItem), compare_history);
	for (int h = 0; h < req->n_history; h++)
	{
		SeenItem   *seen = hash_search(req->seen, &req->history[h].item_id, HASH_FIND, NULL);

		seen->history_index = h;
	}
	load_history_attributes(req, req->need_taste ? req->n_history
							: Min(req->n_history, cfg->trigger_items));

	if (run_plan(req, user_plan, &arg, NULL) != SPI_OK_SELECT)
		elog(ERROR, "could not read the user's features");
	if (SPI_processed == 1)
	{
		req->last_category = getint8(0, 1, &isnull);
		req->has_last_category = !isnull;
		req->reference_ts = gettimestamptz(0, 3, &isnull);
	}
	SPI_freetuptable(SPI_tuptable);
}

static int
compare_category_share(const void *a, const void *b)
{
	const UserCategory *x = a;
	const UserCategory *y = b;

	if (x->share != y->share)
		return x->share > y->share ? -1 : 1;
	return (x->category_id > y->category_id) - (x->category_id < y->category_id);
}

/*
 * Weighs the trigger items (the k-th most recent gets decay^k, times
 * 1 + log2 of its event weight) and the user's interest in each category:
 * half its decayed affinity relative to the top category, half the share of
 * the trigger weight in it, so that the current session counts as much as
 * the day's history.  Sorts categories by that interest.
 */
static void
weigh_triggers_and_categories(Request *req, const RtrecSettings *cfg)
{
	int			n_triggers = Min(req->n_history, cfg->trigger_items);
	double		w = 1.0;
	double		top_affinity = req->n_categories > 0 ? req->categories[0].affinity_log2 : 0;
	double		top_recent = 0;
	double	   *recent = palloc0(sizeof(double) * Max(1, req->n_categories));

	for (int t = 0; t < n_triggers; t++)
	{
		HistoryItem *h = &req->history[t];

		h->trigger_weight = w * (1.0 + log2(Max(1.0, h->weight_sum)));
		w *= cfg->trigger_decay;
		for (int k = 0; h->has_category && k < req->n_categories; k++)
			if (req->categories[k].category_id == h->category_id)
			{
				recent[k] += h->trigger_weight;
				top_recent = Max(top_recent, recent[k]);
				break;
			}
	}
	for (int k = 0; k < req->n_categories; k++)
		req->categories[k].share =
			0.5 * exp2(req->categories[k].affinity_log2 - top_affinity) +
			0.5 * (top_recent > 0 ? recent[k] / top_recent : 0);
	if (req->n_categories > 1)
		qsort(req->categories, req->n_categories, sizeof(UserCategory), compare_category_share);
}

/* 2.: neighbours of the trigger items, weighted by recency and weight */
static void
generate_from_neighbors(Request *req, const RtrecSettings *cfg)
{
	int			n_triggers = Min(req->n_history, cfg->trigger_items);
	int64	   *triggers;
	HTAB	   *trigger_weight;
	Datum		arg;
	typedef struct
	{
		int64		item_id;
		double		weight;
	}			TriggerWeight;

	if (n_triggers == 0)
		return;
	triggers = palloc(sizeof(int64) * n_triggers);
	trigger_weight = int64_table("rtrec triggers", sizeof(TriggerWeight), n_triggers);
	for (int t = 0; t < n_triggers; t++)
	{
		TriggerWeight *tw;

		triggers[t] = req->history[t].item_id;
		tw = hash_search(trigger_weight, &triggers[t], HASH_ENTER, NULL);
		tw->weight = req->history[t].trigger_weight;
	}

	if (req->before_neighbors != NULL)
	{
		req->before_neighbors(triggers, n_triggers, req->before_neighbors_arg);
		MemoryContextSwitchTo(req->memory);
	}
	arg = RtrecInt8Array(triggers, n_triggers);
	if (run_plan(req, neighbors_plan, &arg, NULL) != SPI_OK_SELECT)
		elog(ERROR, "could not read neighbour lists");
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int			kind = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
		int64		from = getint8(r, 2, &isnull);
		int64		to = getint8(r, 3, &isnull);
		double		sim = getfloat8(r, 4, &isnull);
		TriggerWeight *tw = hash_search(trigger_weight, &from, HASH_FIND, NULL);
		double		share;
		Candidate  *c;

		if (tw == NULL || !(sim > 0))
			continue;
		share = tw->weight * sim;
		c = candidate(req, to);
		if (kind == 0)
		{
			c->raw[SOURCE_SWING] += share;
			if (share > c->swing_from_share)
			{
				c->swing_from_share = share;
				c->swing_from = from;
			}
		}
		else
		{
			c->raw[SOURCE_CF] += share;
			if (share > c->cf_from_share)
			{
				c->cf_from_share = share;
				c->cf_from = from;
			}
		}
	}
	SPI_freetuptable(SPI_tuptable);
}

/* 4.: trending items of the user's top categories (c2i), and overall */
static void
generate_from_trending(Request *req, const RtrecSettings *cfg)
{
	int			n_cats = 0;
	int64	   *cats = palloc(sizeof(int64) * (Max(1, req->n_categories) + 1));
	double	   *cat_share = palloc(sizeof(double) * (Max(1, req->n_categories) + 1));
	double	   *cat_top = palloc(sizeof(double) * (Max(1, req->n_categories) + 1));
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	bool		overall = true;

	if (req->has_category_filter)
	{
		/* only that category: its trending items are the fill */
		cats[n_cats] = req->category_filter;
		cat_share[n_cats] = 1.0;
		for (int k = 0; k < req->n_categories; k++)
			if (req->categories[k].category_id == req->category_filter)
				cat_share[n_cats] = 1.0;
		n_cats++;
		overall = false;
	}
	else
	{
		for (int k = 0; k < req->n_categories && n_cats < cfg->c2i_categories; k++)
		{
			cats[n_cats] = req->categories[k].category_id;
			cat_share[n_cats] = req->categories[k].share;
			n_cats++;
		}
	}
	for (int k = 0; k < n_cats; k++)
		cat_top[k] = -INFINITY;

	args[0] = RtrecInt8Array(cats, n_cats);
	args[1] = Int32GetDatum(req->has_category_filter ? 200 : cfg->c2i_items_per_category);
	args[2] = BoolGetDatum(overall);
	/*
	 * Overall trending: the whole answer of a user without history; for the
	 * others only a fill (their categories' trending items come from c2i),
	 * which would otherwise take pool places from the other generators.
	 */
	args[3] = Int32GetDatum(req->n_history > 0 ? Min(1000, req->n + 100)
							: Min(1000, Max(req->pool_size, req->n + 100)));
	if (run_plan(req, trending_plan, args, nulls) != SPI_OK_SELECT)
		elog(ERROR, "could not read trending items");

	/* best trend per category first, to scale each category's items */
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		no_category;
		int64		cat = getint8(r, 1, &no_category);
		bool		isnull;
		double		l = getfloat8(r, 3, &isnull);

		for (int k = 0; !no_category && k < n_cats; k++)
			if (cats[k] == cat && l > cat_top[k])
				cat_top[k] = l;
	}
	{
		double		overall_top = -INFINITY;

		for (uint64 r = 0; r < SPI_processed; r++)
		{
			bool		no_category;
			bool		isnull;

			(void) getint8(r, 1, &no_category);
			if (no_category)
				overall_top = Max(overall_top, getfloat8(r, 3, &isnull));
		}
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			bool		no_category;
			bool		isnull;
			int64		cat = getint8(r, 1, &no_category);
			int64		item = getint8(r, 2, &isnull);
			double		l = getfloat8(r, 3, &isnull);
			Candidate  *c;

			if (req->exclude_seen && RtrecIsSeen(req, item))
				continue;
			c = candidate(req, item);
			if (no_category)
				c->raw[SOURCE_TRENDING] = Max(c->raw[SOURCE_TRENDING], exp2(l - overall_top));
			else
				for (int k = 0; k < n_cats; k++)
					if (cats[k] == cat)
					{
						double		v = cat_share[k] * exp2(l - cat_top[k]);

						c->raw[SOURCE_C2I] = Max(c->raw[SOURCE_C2I], v);
					}
		}
	}
	SPI_freetuptable(SPI_tuptable);
}

static int
compare_by_prescore(const void *a, const void *b)
{
	const Candidate *x = *(Candidate *const *) a;
	const Candidate *y = *(Candidate *const *) b;

	if (x->prescore != y->prescore)
		return x->prescore > y->prescore ? -1 : 1;
	return (x->item_id > y->item_id) - (x->item_id < y->item_id);
}

/*
 * Drops seen items, scales every generator to [0, 1] by its best candidate,
 * and keeps the pool_size candidates with the best single generator score.
 * Returns them in pool[].
 */
static int
build_pool(Request *req, Candidate ***pool_out)
{
	HASH_SEQ_STATUS seq;
	Candidate  *c;
	double		best[N_SOURCES] = {0};
	long		n_all = hash_get_num_entries(req->candidates);
	Candidate **pool = palloc(sizeof(Candidate *) * Max(1, n_all));
	int			n = 0;

	hash_seq_init(&seq, req->candidates);
	while ((c = hash_seq_search(&seq)) != NULL)
	{
		if (req->exclude_seen && RtrecIsSeen(req, c->item_id))
			continue;
		for (int s = 0; s < N_SOURCES; s++)
			best[s] = Max(best[s], c->raw[s]);
		pool[n++] = c;
	}
	for (int k = 0; k < n; k++)
	{
		c = pool[k];
		c->prescore = 0;
		for (int s = 0; s < N_SOURCES; s++)
		{
			if (best[s] > 0)
				c->raw[s] /= best[s];
			c->prescore = Max(c->prescore, c->raw[s]);
		}
	}
	if (n > 1)
		qsort(pool, n, sizeof(Candidate *), compare_by_prescore);
	*pool_out = pool;
	return Min(n, req->pool_size);
}

/* the pool candidate whose item id is column 1 of result row r, if any */
static Candidate *
candidate_of_row(Request *req, uint64 r)
{
	bool		isnull;
	int64		item = getint8(r, 1, &isnull);

	return hash_search(req->candidates, &item, HASH_FIND, NULL);
}

/* 5.: catalog attributes of the pool; trend and first event when needed */
void
RtrecLoadAttributes(Request *req, Candidate **pool, int n)
{
	int64	   *ids = palloc(sizeof(int64) * Max(1, n));
	Datum		arg;

	for (int k = 0; k < n; k++)
		ids[k] = pool[k]->item_id;
	arg = RtrecInt8Array(ids, n);
	if (run_plan(req, attributes_plan, &arg, NULL) != SPI_OK_SELECT)
		elog(ERROR, "could not read candidate attributes");
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		Candidate  *c = candidate_of_row(req, r);
		Datum		d;

		if (c == NULL)
			continue;
		c->known = true;
		c->category_id = getint8(r, 2, &isnull);
		c->has_category = !isnull;
		d = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 3, &isnull);
		c->available = !isnull && DatumGetBool(d);
		c->log_price = getfloat8(r, 4, &isnull);
		c->has_price = !isnull;
		c->brand_hash = getint4(r, 5, &isnull);
		c->has_brand = !isnull;
	}
	SPI_freetuptable(SPI_tuptable);
	if (!req->need_item_state)
		return;

	if (run_plan(req, item_state_plan, &arg, NULL) != SPI_OK_SELECT)
		elog(ERROR, "could not read candidate trends");
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		Candidate  *c = candidate_of_row(req, r);
		Datum		d;

		if (c == NULL)
			continue;
		c->trend_log2 = getfloat8(r, 2, &isnull);
		c->has_trend = !isnull;
		d = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 3, &isnull);
		c->first_ts = isnull ? 0 : DatumGetTimestampTz(d);
		c->mean_weight = getfloat8(r, 4, &isnull);
		if (isnull)
			c->mean_weight = 0;
	}
	SPI_freetuptable(SPI_tuptable);
}

/* Generation and attributes of a request; returns the capped pool's size */
int
RtrecBuildPool(Request *req, const RtrecSettings *cfg, Candidate ***pool)
{
	int			n_pool;

	req->memory = CurrentMemoryContext;
	prepare_plans();
	req->candidates = int64_table("rtrec candidates", sizeof(Candidate), 1024);
	req->seen = int64_table("rtrec seen", sizeof(SeenItem), 256);
	load_user(req, cfg);
	weigh_triggers_and_categories(req, cfg);
	generate_from_neighbors(req, cfg);
	generate_from_trending(req, cfg);
	n_pool = build_pool(req, pool);
	if (!req->lazy_attributes)
		RtrecLoadAttributes(req, *pool, n_pool);
	return n_pool;
}
