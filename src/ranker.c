/*-------------------------------------------------------------------------
 *
 * ranker.c
 *	  Ranking of a candidate pool: the "RTP" stage.
 *
 * Each candidate gets a feature vector (RtrecFeature, one weight each in
 * rtrec.model_weights) and a score that is their weighted sum; its reason is
 * the part that contributes most.  Features are in [0, 1]:
 *	 swing, cf		generator scores, summed over the trigger items with
 *					recency weights, scaled by the pool's best
 *	 category		the user's interest in the item's category now, or the
 *					c2i score when larger
 *	 last_category	1 when the item is in the category of the user's last event
 *	 trend			the item's trend relative to the pool's most trending
 *	 freshness		2^(-age / half_life_s) of the item's first event, age
 *					measured to the user's newest event
 *	 conversion		the item's event weight per interaction (carts and
 *					purchases weigh more than views) relative to the pool's best
 *	 price_fit		exp(-|ln price - the user's mean ln price|), the mean
 *					weighted by the user's event weights; 0 without prices
 *	 brand			the share of the user's branded event weight on the
 *					item's brand; 0 without brands
 * Trend, freshness and conversion need the item state, loaded only when
 * weighted.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "utils/hsearch.h"

#include "recommend.h"

static double
category_interest(Request *req, const Candidate *c)
{
	for (int j = 0; c->has_category && j < req->n_categories; j++)
		if (req->categories[j].category_id == c->category_id)
			return req->categories[j].share;
	return 0;
}

typedef struct BrandWeight
{
	int32		brand_hash;
	double		weight;
} BrandWeight;

/* The user's taste (price level, brands), computed once per request */
static const UserTaste *
user_taste(Request *req)
{
	HASHCTL		ctl;
	double		priced_weight = 0;
	double		log_price_sum = 0;
	UserTaste  *taste;

	if (req->taste != NULL)
		return req->taste;
	taste = palloc0(sizeof(UserTaste));
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int32);
	ctl.entrysize = sizeof(BrandWeight);
	ctl.hcxt = CurrentMemoryContext;
	taste->brand_weight = hash_create("rtrec user brands", 64, &ctl,
									  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	for (int h = 0; h < req->n_history; h++)
	{
		const HistoryItem *it = &req->history[h];
		double		w = Max(it->weight_sum, 0);

		if (it->has_price)
		{
			priced_weight += w;
			log_price_sum += w * it->log_price;
		}
		if (it->has_brand)
		{
			bool		found;
			BrandWeight *b = hash_search(taste->brand_weight, &it->brand_hash, HASH_ENTER, &found);

			b->weight = (found ? b->weight : 0) + w;
			taste->branded_weight += w;
			taste->max_brand_weight = Max(taste->max_brand_weight, b->weight);
		}
	}
	taste->has_price = priced_weight > 0;
	taste->mean_log_price = taste->has_price ? log_price_sum / priced_weight : 0;
	req->taste = taste;
	return taste;
}

void
RtrecComputeFeatures(Request *req, Candidate **pool, int n, const RtrecSettings *cfg)
{
	double		top_trend = -INFINITY;
	double		top_mean_weight = 0;
	TimestampTz reference = req->reference_ts;
	const UserTaste *taste = user_taste(req);

	for (int k = 0; k < n; k++)
	{
		if (pool[k]->has_trend)
			top_trend = Max(top_trend, pool[k]->trend_log2);
		top_mean_weight = Max(top_mean_weight, pool[k]->mean_weight);
		if (reference == 0 && pool[k]->first_ts > reference)
			reference = pool[k]->first_ts;
	}
	for (int k = 0; k < n; k++)
	{
		Candidate  *c = pool[k];
		double	   *f = c->feature;

		f[FEATURE_SWING] = c->raw[SOURCE_SWING];
		f[FEATURE_CF] = c->raw[SOURCE_CF];
		f[FEATURE_CATEGORY] = Max(category_interest(req, c), c->raw[SOURCE_C2I]);
		f[FEATURE_LAST_CATEGORY] = c->has_category && req->has_last_category &&
			c->category_id == req->last_category ? 1.0 : 0.0;
		f[FEATURE_TREND] = c->has_trend ? exp2(c->trend_log2 - top_trend) : 0.0;
		f[FEATURE_FRESHNESS] = c->first_ts != 0 && reference >= c->first_ts ?
			exp2(-((double) (reference - c->first_ts) / USECS_PER_SEC) / cfg->half_life_s) : 0.0;
		f[FEATURE_CONVERSION] = top_mean_weight > 0 ? c->mean_weight / top_mean_weight : 0.0;
		f[FEATURE_PRICE_FIT] = c->has_price && taste->has_price ?
			exp(-fabs(c->log_price - taste->mean_log_price)) : 0.0;
		f[FEATURE_BRAND] = 0.0;
		if (c->has_brand && taste->branded_weight > 0)
		{
			BrandWeight *b = hash_search(taste->brand_weight, &c->brand_hash, HASH_FIND, NULL);

			if (b != NULL)
				f[FEATURE_BRAND] = b->weight / taste->branded_weight;
		}
	}
}

/*
 * The weighted sum of a feature vector.  RtrecScoreBound relies on the fixed
 * order of the additions: floating-point addition and multiplication by a
 * non-negative weight are monotonic, so features that are each no larger
 * give a sum that is no larger.
 */
static double
weighted_sum(const double *feature, const RtrecModelWeights *model, double *parts)
{
	double		sum = 0;

	for (int f = 0; f < RTREC_N_FEATURES; f++)
	{
		parts[f] = model->weight[f] * feature[f];
		sum += parts[f];
	}
	return sum;
}

/* Scores the pool with the model, and gives each candidate its reason */
void
RtrecScorePool(Candidate **pool, int n, const RtrecModelWeights *model)
{
	for (int k = 0; k < n; k++)
	{
		Candidate  *c = pool[k];
		double		parts[RTREC_N_FEATURES];
		double		strongest_part;
		int			strongest = FEATURE_SWING;

		c->score = weighted_sum(c->feature, model, parts);
		/* category and last category together make the c2i reason */
		parts[FEATURE_CATEGORY] += parts[FEATURE_LAST_CATEGORY];
		parts[FEATURE_LAST_CATEGORY] = 0;
		strongest_part = parts[FEATURE_SWING];
		for (int f = FEATURE_CF; f <= FEATURE_TREND; f++)
			if (parts[f] > strongest_part)
			{
				strongest = f;
				strongest_part = parts[f];
			}

		c->reason_kind = "trending";
		if (strongest == FEATURE_SWING && c->swing_from_share > 0)
		{
			c->reason_kind = "swing";
			c->reason_id = c->swing_from;
		}
		else if (strongest == FEATURE_CF && c->cf_from_share > 0)
		{
			c->reason_kind = "cf";
			c->reason_id = c->cf_from;
		}
		else if (strongest == FEATURE_CATEGORY && c->has_category && strongest_part > 0)
		{
			c->reason_kind = "c2i";
			c->reason_id = c->category_id;
		}
	}
}

bool
RtrecPassesFilters(Request *req, const Candidate *c)
{
	if (!c->known || !c->available)
		return false;
	if (req->exclude_seen && RtrecIsSeen(req, c->item_id))
		return false;
	if (req->has_category_filter &&
		(!c->has_category || c->category_id != req->category_filter))
		return false;
	return true;
}

/*
 * The ranking order of candidates x and y scored xs and ys: best score
 * first; ties (a cold user scores 0 everywhere): best generator score, then
 * item id.
 */
static int
compare_ranked(double xs, const Candidate *x, double ys, const Candidate *y)
{
	if (xs != ys)
		return xs > ys ? -1 : 1;
	if (x->prescore != y->prescore)
		return x->prescore > y->prescore ? -1 : 1;
	return (x->item_id > y->item_id) - (x->item_id < y->item_id);
}

static int
compare_by_score(const void *a, const void *b)
{
	const Candidate *x = *(Candidate *const *) a;
	const Candidate *y = *(Candidate *const *) b;

	return compare_ranked(x->score, x, y->score, y);
}

void
RtrecSortByScore(Candidate **pool, int n)
{
	if (n > 1)
		qsort(pool, n, sizeof(Candidate *), compare_by_score);
}

/*
 * What a request must read for the model's features: the candidates' item
 * state (trend, freshness and conversion, each relative to the whole pool)
 * and the prices and brands of the whole history (price_fit, brand).
 */
void
RtrecSetRequestNeeds(Request *req, const RtrecModelWeights *model)
{
	req->need_item_state = model->weight[FEATURE_TREND] != 0 ||
		model->weight[FEATURE_FRESHNESS] != 0 || model->weight[FEATURE_CONVERSION] != 0;
	req->need_taste = model->weight[FEATURE_PRICE_FIT] != 0 || model->weight[FEATURE_BRAND] != 0;
}

/*
 * The most each feature can be for this user before a candidate's catalog
 * attributes are known (category: the user's strongest category; price and
 * brand: 1 and the strongest brand's share, if the user has any), 0 for the
 * generator features, which score_bound fills in per candidate.
 */
static void
feature_ceilings(Request *req, double *ceiling)
{
	const UserTaste *taste = user_taste(req);

	memset(ceiling, 0, sizeof(double) * RTREC_N_FEATURES);
	for (int j = 0; j < req->n_categories; j++)
		ceiling[FEATURE_CATEGORY] = Max(ceiling[FEATURE_CATEGORY], req->categories[j].share);
	ceiling[FEATURE_LAST_CATEGORY] = req->has_last_category ? 1.0 : 0.0;
	ceiling[FEATURE_PRICE_FIT] = taste->has_price ? 1.0 : 0.0;
	ceiling[FEATURE_BRAND] = taste->branded_weight > 0 ?
		taste->max_brand_weight / taste->branded_weight : 0.0;
}

/*
 * The most a candidate can score before its catalog attributes are known:
 * generator features as they are, the others at their ceilings.  Only valid
 * when the item-state features, which are relative to the whole pool, weigh
 * nothing (see RtrecRankTopN).
 */
static double
score_bound(const Candidate *c, const double *ceiling, const RtrecModelWeights *model)
{
	double		f[RTREC_N_FEATURES];
	double		parts[RTREC_N_FEATURES];

	memcpy(f, ceiling, sizeof(f));
	f[FEATURE_SWING] = c->raw[SOURCE_SWING];
	f[FEATURE_CF] = c->raw[SOURCE_CF];
	f[FEATURE_CATEGORY] = Max(ceiling[FEATURE_CATEGORY], c->raw[SOURCE_C2I]);
	/* a negative weight's part is at most 0: bound its feature by 0 */
	for (int k = 0; k < RTREC_N_FEATURES; k++)
		if (model->weight[k] < 0)
			f[k] = 0;
	return weighted_sum(f, model, parts);
}

/* the order of RtrecSortByScore, with the bound in place of the score */
static int
compare_by_bound(const void *a, const void *b)
{
	const Candidate *x = *(Candidate *const *) a;
	const Candidate *y = *(Candidate *const *) b;

	return compare_ranked(x->bound, x, y->bound, y);
}

/* whether candidate x, scored at its bound, would rank after ranked y */
static bool
bound_ranks_after(const Candidate *x, const Candidate *y)
{
	return compare_ranked(x->bound, x, y->score, y) > 0;
}

/*
 * The best n candidates of the pool that pass the filters, best first, in
 * top[]; returns how many.  Loads the candidates' attributes itself (the
 * pool must be built with lazy_attributes).
 *
 * With item-state features weighted (relative to the whole pool), it loads
 * and scores the whole pool at once.  Otherwise the result is the same, but
 * it loads attributes (one index probe per item) in growing batches in order
 * of the candidates' score bounds, and stops as soon as no candidate left
 * can reach the n-th best score: on a pool of 1,000 that is usually the
 * first batch or two.
 */
int
RtrecRankTopN(Request *req, Candidate **pool, int n_pool,
			  const RtrecModelWeights *model, const RtrecSettings *cfg, Candidate ***top)
{
	Candidate **kept = palloc(sizeof(Candidate *) * Max(1, n_pool));
	int			n_kept = 0;
	int			done = 0;
	int			batch = req->need_item_state ? n_pool : Max(2 * req->n, 16);

	Assert(req->lazy_attributes);
	if (!req->need_item_state)
	{
		double		ceiling[RTREC_N_FEATURES];

		feature_ceilings(req, ceiling);
		for (int k = 0; k < n_pool; k++)
			pool[k]->bound = score_bound(pool[k], ceiling, model);
		if (n_pool > 1)
			qsort(pool, n_pool, sizeof(Candidate *), compare_by_bound);
	}

	while (done < n_pool)
	{
		int			m = Min(batch, n_pool - done);

		RtrecLoadAttributes(req, pool + done, m);
		RtrecComputeFeatures(req, pool + done, m, cfg);
		RtrecScorePool(pool + done, m, model);
		for (int k = done; k < done + m; k++)
			if (RtrecPassesFilters(req, pool[k]))
				kept[n_kept++] = pool[k];
		done += m;
		batch *= 2;
		RtrecSortByScore(kept, n_kept);
		if (n_kept >= req->n && done < n_pool &&
			bound_ranks_after(pool[done], kept[req->n - 1]))
			break;
	}
	*top = kept;
	return Min(n_kept, req->n);
}
