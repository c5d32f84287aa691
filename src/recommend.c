/*-------------------------------------------------------------------------
 *
 * recommend.c
 *	  rtrec_recommend and rtrec_candidates: candidate generation and ranking.
 *
 * One call runs a handful of set-based queries (never one per candidate):
 *	 1. the user's distinct items, newest first: the trigger items, and the
 *		"seen" set;
 *	 2. the Swing and cosine neighbour lists of the trigger items;
 *	 3. the user's category affinities and last category;
 *	 4. trending items of the user's top categories (c2i) and overall;
 *	 5. catalog attributes and trend of every candidate.
 * Candidates are merged in a hash table, capped to the `candidates` setting
 * by their best generator score, scored with the linear ranker of
 * rtrec.model_weights, filtered, and the best n returned.
 *
 * Everything is read with the caller's snapshot, so an event the caller's
 * transaction inserted counts at once, and nothing is written: the function
 * works on a hot standby.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "rtrec.h"
#include "swing.h"

/* the generators a candidate can come from */
typedef enum CandidateSource
{
	SOURCE_SWING,
	SOURCE_CF,
	SOURCE_C2I,
	SOURCE_TRENDING,
	N_SOURCES
} CandidateSource;

static const char *const source_names[N_SOURCES] = {"swing", "cf", "c2i", "trending"};

typedef struct Candidate
{
	int64		item_id;		/* hash key */
	double		raw[N_SOURCES]; /* generator scores */
	int64		swing_from;		/* trigger item with the largest Swing share */
	double		swing_from_share;
	int64		cf_from;
	double		cf_from_share;
	int64		c2i_category;
	/* catalog attributes, filled by load_attributes */
	bool		known;
	bool		available;
	bool		has_category;
	int64		category_id;
	bool		has_trend;
	double		trend_log2;
	TimestampTz first_ts;
	/* ranking */
	double		prescore;
	double		score;
	const char *reason_kind;
	int64		reason_id;
} Candidate;

typedef struct HistoryItem
{
	int64		item_id;
	TimestampTz last_ts;
	double		weight_sum;
	bool		has_category;
	int64		category_id;
	double		trigger_weight; /* 0 unless one of the trigger items */
} HistoryItem;

typedef struct UserCategory
{
	int64		category_id;
	double		affinity_log2;
	double		share;			/* interest in the category now, 0..1 */
} UserCategory;

/* Everything known about one request */
typedef struct Request
{
	int64		user_id;
	int			n;
	bool		has_category_filter;
	int64		category_filter;
	bool		exclude_seen;
	int			pool_size;

	HistoryItem *history;		/* newest first */
	int			n_history;
	UserCategory *categories;	/* strongest first */
	int			n_categories;
	bool		has_last_category;
	int64		last_category;
	TimestampTz reference_ts;	/* the user's newest event, else 0 */

	HTAB	   *candidates;
	HTAB	   *seen;
} Request;

static SPIPlanPtr history_plan = NULL;
static SPIPlanPtr user_plan = NULL;
static SPIPlanPtr neighbors_plan = NULL;
static SPIPlanPtr categories_plan = NULL;
static SPIPlanPtr trending_plan = NULL;
static SPIPlanPtr attributes_plan = NULL;

static void
prepare_plans(void)
{
	Oid			int8_arg[1] = {INT8OID};
	Oid			array_arg[1] = {INT8ARRAYOID};
	Oid			trending_args[4] = {INT8ARRAYOID, INT4OID, BOOLOID, INT4OID};

	if (attributes_plan != NULL)
		return;
	history_plan = RtrecPrepareKept(
									"SELECT s.item_id, s.t, s.w, i.category_id FROM"
									" (SELECT item_id, max(last_ts) AS t, sum(weight_sum) AS w"
									"    FROM rtrec.user_item_state WHERE user_id = $1 GROUP BY item_id) s"
									" LEFT JOIN rtrec.items i ON i.item_id = s.item_id", 1, int8_arg);
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
	categories_plan = RtrecPrepareKept(
								   "SELECT category_id, rtrec.log2_sum(affinity_log2) AS l"
								   "  FROM rtrec.user_category_state WHERE user_id = $1"
								   " GROUP BY category_id ORDER BY l DESC, category_id", 1, int8_arg);
	/* $1 categories (ranks <= $2), and overall (ranks <= $4) when $3 */
	trending_plan = RtrecPrepareKept(
								 "SELECT category_id, item_id, trend_log2 FROM rtrec.trending_items"
								 " WHERE (category_id = ANY($1) AND rank <= $2)"
								 "    OR ($3 AND category_id IS NULL AND rank <= $4)", 4, trending_args);
	/* both sides by index with = ANY: a join to unnest() gets hash-joined over the catalog */
	attributes_plan = RtrecPrepareKept(
									   "SELECT i.item_id, i.category_id, i.available, s.l, s.f"
									   "  FROM rtrec.items i"
									   "  LEFT JOIN (SELECT st.item_id, rtrec.log2_sum(st.trend_log2) AS l, min(st.first_ts) AS f"
									   "               FROM rtrec.item_state st WHERE st.item_id = ANY($1)"
									   "              GROUP BY st.item_id) s ON s.item_id = i.item_id"
									   " WHERE i.item_id = ANY($1)",
									   1, array_arg);
}

static HTAB *
int64_table(const char *name, Size entrysize, long size)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = entrysize;
	ctl.hcxt = CurrentMemoryContext;
	return hash_create(name, size, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

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

static bool
is_seen(Request *req, int64 item_id)
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

static inline double
getfloat8(int row, int col, bool *isnull)
{
	return DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull));
}

/* 1. and 3.: history, last category, category affinities */
static void
load_user(Request *req)
{
	Datum		arg = Int64GetDatum(req->user_id);
	bool		isnull;

	if (SPI_execute_plan(history_plan, &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the user's history");
	req->n_history = (int) SPI_processed;
	req->history = palloc(sizeof(HistoryItem) * Max(1, req->n_history));
	for (int r = 0; r < req->n_history; r++)
	{
		req->history[r].item_id = getint8(r, 1, &isnull);
		req->history[r].last_ts = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[r],
																	SPI_tuptable->tupdesc, 2, &isnull));
		req->history[r].weight_sum = getfloat8(r, 3, &isnull);
		req->history[r].category_id = getint8(r, 4, &isnull);
		req->history[r].has_category = !isnull;
		req->history[r].trigger_weight = 0;
		hash_search(req->seen, &req->history[r].item_id, HASH_ENTER, NULL);
	}
	SPI_freetuptable(SPI_tuptable);
	if (req->n_history > 1)
		qsort(req->history, req->n_history, sizeof(HistoryItem), compare_history);

	if (SPI_execute_plan(user_plan, &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the user's features");
	if (SPI_processed == 1)
	{
		req->last_category = getint8(0, 1, &isnull);
		req->has_last_category = !isnull;
		req->reference_ts = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0],
															  SPI_tuptable->tupdesc, 3, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);

	if (SPI_execute_plan(categories_plan, &arg, NULL, true, 0) != SPI_OK_SELECT)
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

	arg = RtrecInt8Array(triggers, n_triggers);
	if (SPI_execute_plan(neighbors_plan, &arg, NULL, true, 0) != SPI_OK_SELECT)
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
	args[3] = Int32GetDatum(Min(1000, Max(req->pool_size, req->n + 100)));
	if (SPI_execute_plan(trending_plan, args, nulls, true, 0) != SPI_OK_SELECT)
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

			if (req->exclude_seen && is_seen(req, item))
				continue;
			c = candidate(req, item);
			if (no_category)
				c->raw[SOURCE_TRENDING] = Max(c->raw[SOURCE_TRENDING], exp2(l - overall_top));
			else
				for (int k = 0; k < n_cats; k++)
					if (cats[k] == cat)
					{
						double		v = cat_share[k] * exp2(l - cat_top[k]);

						if (v > c->raw[SOURCE_C2I])
						{
							c->raw[SOURCE_C2I] = v;
							c->c2i_category = cat;
						}
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

/* best score first; ties (a cold user scores 0 everywhere): best generator score */
static int
compare_by_score(const void *a, const void *b)
{
	const Candidate *x = *(Candidate *const *) a;
	const Candidate *y = *(Candidate *const *) b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return compare_by_prescore(a, b);
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
		if (req->exclude_seen && is_seen(req, c->item_id))
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

/* 5.: catalog attributes and trend of the pool */
static void
load_attributes(Request *req, Candidate **pool, int n)
{
	int64	   *ids = palloc(sizeof(int64) * Max(1, n));
	Datum		arg;

	for (int k = 0; k < n; k++)
		ids[k] = pool[k]->item_id;
	arg = RtrecInt8Array(ids, n);
	if (SPI_execute_plan(attributes_plan, &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read candidate attributes");
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int64		item = getint8(r, 1, &isnull);
		Candidate  *c = hash_search(req->candidates, &item, HASH_FIND, NULL);
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		Datum		d;

		if (c == NULL)
			continue;
		c->known = true;
		c->category_id = getint8(r, 2, &isnull);
		c->has_category = !isnull;
		d = SPI_getbinval(tup, desc, 3, &isnull);
		c->available = !isnull && DatumGetBool(d);
		c->trend_log2 = getfloat8(r, 4, &isnull);
		c->has_trend = !isnull;
		d = SPI_getbinval(tup, desc, 5, &isnull);
		c->first_ts = isnull ? 0 : DatumGetTimestampTz(d);
	}
	SPI_freetuptable(SPI_tuptable);
}

/* The ranker: a weighted sum of features, and the strongest one as reason */
static void
score_pool(Request *req, Candidate **pool, int n, const RtrecSettings *cfg,
		   const RtrecModelWeights *model)
{
	double		top_trend = -INFINITY;
	TimestampTz reference = req->reference_ts;

	for (int k = 0; k < n; k++)
	{
		if (pool[k]->has_trend)
			top_trend = Max(top_trend, pool[k]->trend_log2);
		if (reference == 0 && pool[k]->first_ts > reference)
			reference = pool[k]->first_ts;
	}

	for (int k = 0; k < n; k++)
	{
		Candidate  *c = pool[k];
		double		affinity = 0;
		double		parts[4];
		int			strongest = 0;

		for (int j = 0; c->has_category && j < req->n_categories; j++)
			if (req->categories[j].category_id == c->category_id)
			{
				affinity = req->categories[j].share;
				break;
			}
		parts[0] = model->swing * c->raw[SOURCE_SWING];
		parts[1] = model->cf * c->raw[SOURCE_CF];
		parts[2] = model->category * Max(affinity, c->raw[SOURCE_C2I]) +
			model->last_category * (c->has_category && req->has_last_category &&
									c->category_id == req->last_category ? 1.0 : 0.0);
		parts[3] = model->trend * (c->has_trend ? exp2(c->trend_log2 - top_trend) : 0.0);
		c->score = parts[0] + parts[1] + parts[2] + parts[3];
		if (model->freshness != 0 && c->first_ts != 0 && reference >= c->first_ts)
			c->score += model->freshness *
				exp2(-((double) (reference - c->first_ts) / USECS_PER_SEC) / cfg->half_life_s);

		for (int p = 1; p < 4; p++)
			if (parts[p] > parts[strongest])
				strongest = p;
		if (strongest == 0 && c->swing_from_share > 0)
		{
			c->reason_kind = "swing";
			c->reason_id = c->swing_from;
		}
		else if (strongest == 1 && c->cf_from_share > 0)
		{
			c->reason_kind = "cf";
			c->reason_id = c->cf_from;
		}
		else if (strongest == 2 && c->has_category && parts[2] > 0)
		{
			c->reason_kind = "c2i";
			c->reason_id = c->category_id;
		}
		else
			c->reason_kind = "trending";
	}
}

static bool
passes_filters(Request *req, const Candidate *c)
{
	if (!c->known || !c->available)
		return false;
	if (req->exclude_seen && is_seen(req, c->item_id))
		return false;
	if (req->has_category_filter &&
		(!c->has_category || c->category_id != req->category_filter))
		return false;
	return true;
}

/* Runs generation for a request; returns the capped pool */
static int
generate(Request *req, const RtrecSettings *cfg, Candidate ***pool)
{
	prepare_plans();
	req->candidates = int64_table("rtrec candidates", sizeof(Candidate), 1024);
	req->seen = int64_table("rtrec seen", sizeof(int64), 256);
	load_user(req);
	weigh_triggers_and_categories(req, cfg);
	generate_from_neighbors(req, cfg);
	generate_from_trending(req, cfg);
	return build_pool(req, pool);
}

static int
check_n(FunctionCallInfo fcinfo, int argno, const char *fname, int max_n)
{
	int			n;

	if (PG_ARGISNULL(argno) || (n = PG_GETARG_INT32(argno)) < 1 || n > max_n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid n %s for %s()",
						PG_ARGISNULL(argno) ? "NULL" : psprintf("%d", PG_GETARG_INT32(argno)), fname),
				 errhint("n must be between 1 and %d.", max_n)));
	return n;
}

static void
check_not_null(FunctionCallInfo fcinfo, int argno, const char *argname, const char *fname)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL in %s()", argname, fname),
				 errhint("Pass a value for %s.", argname)));
}

/*
 * Starts a call (result set, SPI, a memory context for the call) and builds
 * the candidate pool with the candidates' attributes.
 */
static int
begin_request(FunctionCallInfo fcinfo, Request *req, const RtrecSettings *cfg,
			  Candidate ***pool, MemoryContext *call_context)
{
	int			n_pool;

	InitMaterializedSRF(fcinfo, 0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	*call_context = AllocSetContextCreate(CurrentMemoryContext, "rtrec request",
										  ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(*call_context);
	n_pool = generate(req, cfg, pool);
	load_attributes(req, *pool, n_pool);
	return n_pool;
}

/* SPI calls leave SPI's own context current, so the caller keeps ours */
static void
end_request(MemoryContext call_context)
{
	MemoryContextSwitchTo(MemoryContextGetParent(call_context));
	MemoryContextDelete(call_context);
	SPI_finish();
}

/*
 * rtrec_recommend(user_id, n, category_id, exclude_seen)
 *	 -> (item_id, score, reason)
 */
PG_FUNCTION_INFO_V1(rtrec_recommend);
Datum
rtrec_recommend(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const RtrecSettings *cfg;
	Request		req;
	Candidate **pool;
	int			n_pool;
	int			emitted = 0;
	MemoryContext call_context;

	check_not_null(fcinfo, 0, "user_id", "rtrec_recommend");
	memset(&req, 0, sizeof(req));
	req.user_id = PG_GETARG_INT64(0);
	req.n = check_n(fcinfo, 1, "rtrec_recommend", 10000);
	req.has_category_filter = !PG_ARGISNULL(2);
	req.category_filter = req.has_category_filter ? PG_GETARG_INT64(2) : 0;
	check_not_null(fcinfo, 3, "exclude_seen", "rtrec_recommend");
	req.exclude_seen = PG_GETARG_BOOL(3);

	cfg = RtrecGetSettings();
	req.pool_size = Max(cfg->candidates, req.n);
	RtrecSwingWorkerEnsure(true);	/* queued work left by a crash gets a worker */
	n_pool = begin_request(fcinfo, &req, cfg, &pool, &call_context);
	score_pool(&req, pool, n_pool, cfg, RtrecGetModelWeights());
	if (n_pool > 1)
		qsort(pool, n_pool, sizeof(Candidate *), compare_by_score);

	for (int k = 0; k < n_pool && emitted < req.n; k++)
	{
		Candidate  *c = pool[k];
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		if (!passes_filters(&req, c))
			continue;
		values[0] = Int64GetDatum(c->item_id);
		values[1] = Float8GetDatum(c->score);
		values[2] = CStringGetTextDatum(strcmp(c->reason_kind, "trending") == 0 ? "trending" :
										psprintf("%s:" INT64_FORMAT, c->reason_kind, c->reason_id));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		emitted++;
	}
	end_request(call_context);
	return (Datum) 0;
}

/*
 * rtrec_candidates(user_id, n) -> (item_id, source, score): the pool before
 * ranking, best first by the strongest generator (scaled to [0, 1]).
 */
PG_FUNCTION_INFO_V1(rtrec_candidates);
Datum
rtrec_candidates(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const RtrecSettings *cfg;
	Request		req;
	Candidate **pool;
	int			n_pool;
	MemoryContext call_context;

	check_not_null(fcinfo, 0, "user_id", "rtrec_candidates");
	memset(&req, 0, sizeof(req));
	req.user_id = PG_GETARG_INT64(0);
	req.n = check_n(fcinfo, 1, "rtrec_candidates", 100000);
	req.exclude_seen = true;
	req.pool_size = req.n;

	cfg = RtrecGetSettings();
	n_pool = begin_request(fcinfo, &req, cfg, &pool, &call_context);
	for (int k = 0; k < n_pool; k++)
	{
		Candidate  *c = pool[k];
		Datum		values[3];
		bool		nulls[3] = {false, false, false};
		int			strongest = 0;

		if (!passes_filters(&req, c))
			continue;
		for (int s = 1; s < N_SOURCES; s++)
			if (c->raw[s] > c->raw[strongest])
				strongest = s;
		values[0] = Int64GetDatum(c->item_id);
		values[1] = CStringGetTextDatum(source_names[strongest]);
		values[2] = Float8GetDatum(c->raw[strongest]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	end_request(call_context);
	return (Datum) 0;
}
