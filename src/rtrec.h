/*-------------------------------------------------------------------------
 *
 * rtrec.h
 *	  Declarations shared by rtrec's C files.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RTREC_H
#define RTREC_H

#include "postgres.h"
#include "utils/timestamp.h"

/* Schema that holds rtrec's tables */
#define RTREC_SCHEMA "rtrec"

/*
 * Settings as cached by each backend (settings.c).  Read through
 * RtrecGetSettings(); the cache is refreshed after any committed change to
 * rtrec.config or rtrec.event_types.
 */
typedef struct RtrecSettings
{
	double		half_life_s;
	double		swing_alpha;
	double		swing_user_alpha;
	double		swing_user_beta;
	int			swing_max_users_per_item;
	int			swing_min_items_per_user;
	int			swing_max_items_per_user;
	int			swing_neighbors;
	int			cf_min_common_users;
	int			candidates;
	int			trigger_items;
	double		trigger_decay;
	int			c2i_categories;
	int			c2i_items_per_category;
	double		trending_refresh_s;
} RtrecSettings;

/*
 * Features of the linear ranker; rtrec.model_weights has one row of each,
 * named as in RtrecFeatureNames.
 */
typedef enum RtrecFeature
{
	FEATURE_SWING,
	FEATURE_CF,
	FEATURE_CATEGORY,
	FEATURE_LAST_CATEGORY,
	FEATURE_TREND,
	FEATURE_FRESHNESS,
	FEATURE_CONVERSION,
	FEATURE_PRICE_FIT,
	FEATURE_BRAND,
	RTREC_N_FEATURES
} RtrecFeature;

extern const char *const RtrecFeatureNames[RTREC_N_FEATURES];

/* Weights of the linear ranker, from rtrec.model_weights */
typedef struct RtrecModelWeights
{
	double		weight[RTREC_N_FEATURES];
} RtrecModelWeights;

extern const RtrecModelWeights *RtrecGetModelWeights(void);

extern const RtrecSettings *RtrecGetSettings(void);

/* Weight of an event type; false if the type is unknown */
extern bool RtrecLookupEventWeight(const char *event_type, double *weight);

/* spi_util.c */
#include "executor/spi.h"
extern SPIPlanPtr RtrecPrepareKept(const char *sql, int nargs, Oid *argtypes);
extern Datum RtrecInt8Array(const int64 *values, int n);
extern int	RtrecCompareInt64(const void *a, const void *b);

/* <0, 0, >0 as x is below, equal to, above y (RtrecCompareInt64's order) */
static inline int
RtrecCompareInt64Values(int64 x, int64 y)
{
	return (x > y) - (x < y);
}
#include "utils/hsearch.h"
extern HTAB *RtrecInt64Table(const char *name, Size entrysize, long size,
							 MemoryContext context);

/*
 * rtrec.c: whether this database's rtrec is older than 1.2, whose state
 * tables differ (see state_write.c); the library serves both until ALTER
 * EXTENSION rtrec UPDATE
 */
extern bool RtrecStateBefore12(void);

/* decay.c: decayed sums kept as log2(sum of w * 2^(seconds since 2000 / h)) */
extern double RtrecDecayLog2(double weight, TimestampTz ts, double half_life_s);
extern double RtrecDecayValue(double l, TimestampTz ts, double half_life_s);
extern double RtrecLog2Add(double a, double b);

#endif							/* RTREC_H */
