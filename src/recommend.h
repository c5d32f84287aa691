/*-------------------------------------------------------------------------
 *
 * recommend.h
 *	  One recommendation request: candidate generation (candidates.c),
 *	  ranking features and scores (ranker.c), used by the SQL functions
 *	  (recommend.c) and by rtrec_train() (train.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef RTREC_RECOMMEND_H
#define RTREC_RECOMMEND_H

#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "rtrec.h"

/* the generators a candidate can come from */
typedef enum CandidateSource
{
	SOURCE_SWING,
	SOURCE_CF,
	SOURCE_C2I,
	SOURCE_TRENDING,
	N_SOURCES
} CandidateSource;

extern const char *const RtrecSourceNames[N_SOURCES];

typedef struct Candidate
{
	int64		item_id;		/* hash key */
	double		raw[N_SOURCES]; /* generator scores, [0, 1] once pooled */
	int64		swing_from;		/* trigger item with the largest Swing share */
	double		swing_from_share;
	int64		cf_from;
	double		cf_from_share;
	/* catalog attributes, filled by the pool's attribute load */
	bool		known;
	bool		available;
	bool		has_category;
	int64		category_id;
	bool		has_trend;
	double		trend_log2;
	TimestampTz first_ts;
	double		mean_weight;	/* event weight per interaction, 0 if unknown */
	bool		has_price;
	double		log_price;		/* ln(price), for prices > 0 */
	bool		has_brand;
	int32		brand_hash;		/* hashtext(brand) */
	/* ranking */
	double		prescore;		/* best single generator score */
	double		bound;			/* most it can score (RtrecRankTopN) */
	double		feature[RTREC_N_FEATURES];
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
	bool		has_price;
	double		log_price;
	bool		has_brand;
	int32		brand_hash;
} HistoryItem;

/* The user's price level and brand weights, from the history (ranker.c) */
typedef struct UserTaste
{
	bool		has_price;
	double		mean_log_price;
	HTAB	   *brand_weight;	/* brand hash -> event weight */
	double		branded_weight;
	double		max_brand_weight;
} UserTaste;

typedef struct UserCategory
{
	int64		category_id;
	double		affinity_log2;
	double		share;			/* interest in the category now, 0..1 */
} UserCategory;

/* Everything known about one request */
typedef struct Request
{
	/* what was asked */
	int64		user_id;
	int			n;
	bool		has_category_filter;
	int64		category_filter;
	bool		exclude_seen;
	int			pool_size;
	bool		need_item_state;	/* load trend, first_ts and mean weight of candidates */
	bool		lazy_attributes;	/* RtrecBuildPool leaves attributes to the caller */
	bool		need_taste;		/* price and brand of the whole history, not only triggers */
	/* called with the trigger items before their lists are read, if set */
	void		(*before_neighbors) (const int64 *items, int n, void *arg);
	void	   *before_neighbors_arg;

	/* what is known of the user */
	HistoryItem *history;		/* newest first */
	int			n_history;
	UserCategory *categories;	/* strongest first */
	int			n_categories;
	bool		has_last_category;
	int64		last_category;
	TimestampTz reference_ts;	/* the user's newest event, else 0 */
	UserTaste  *taste;			/* computed by the ranker when first needed */

	MemoryContext memory;		/* the request's working memory */
	HTAB	   *candidates;
	HTAB	   *seen;
} Request;

/*
 * candidates.c: the capped pool of a request, best generator score first,
 * with catalog attributes (unless lazy_attributes: then the caller loads
 * them with RtrecLoadAttributes).  Runs SPI queries: the caller is connected.
 */
extern int	RtrecBuildPool(Request *req, const RtrecSettings *cfg, Candidate ***pool);
extern void RtrecLoadAttributes(Request *req, Candidate **pool, int n);
extern bool RtrecIsSeen(Request *req, int64 item_id);

/* ranker.c */
extern void RtrecComputeFeatures(Request *req, Candidate **pool, int n, const RtrecSettings *cfg);
extern void RtrecScorePool(Candidate **pool, int n, const RtrecModelWeights *model);
extern bool RtrecPassesFilters(Request *req, const Candidate *c);
extern void RtrecSortByScore(Candidate **pool, int n);
extern void RtrecSetRequestNeeds(Request *req, const RtrecModelWeights *model);
extern int	RtrecRankTopN(Request *req, Candidate **pool, int n_pool,
						  const RtrecModelWeights *model, const RtrecSettings *cfg,
						  Candidate ***top);

#endif							/* RTREC_RECOMMEND_H */
