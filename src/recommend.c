/*-------------------------------------------------------------------------
 *
 * recommend.c
 *	  rtrec_recommend and rtrec_candidates: the SQL entry points of a
 *	  recommendation request (candidates.c generates, ranker.c ranks).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "compat.h"
#include "recommend.h"
#include "swing.h"

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
 * Working memory of a request.  It lives as long as the backend and is reset
 * at the start and end of each call, so that its first 2 MB block is reused
 * instead of asking the kernel for fresh pages on every call.
 */
static MemoryContext request_context = NULL;

/*
 * Starts a call (result set, SPI, the request's memory) and builds the
 * candidate pool with the candidates' attributes.
 */
static int
begin_request(FunctionCallInfo fcinfo, Request *req, const RtrecSettings *cfg,
			  Candidate ***pool)
{
	InitMaterializedSRF(fcinfo, 0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (request_context == NULL)
		request_context = AllocSetContextCreate(TopMemoryContext, "rtrec request",
												0, 2 * 1024 * 1024, 8 * 1024 * 1024);
	else
		MemoryContextReset(request_context);	/* after an error in a call */
	MemoryContextSwitchTo(request_context);
	return RtrecBuildPool(req, cfg, pool);
}

/* SPI_finish returns to the caller's memory context */
static void
end_request(void)
{
	MemoryContextReset(request_context);
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
	const RtrecModelWeights *model;
	Request		req;
	Candidate **pool;
	Candidate **top;
	int			n_pool;
	int			n_top;

	check_not_null(fcinfo, 0, "user_id", "rtrec_recommend");
	memset(&req, 0, sizeof(req));
	req.user_id = PG_GETARG_INT64(0);
	req.n = check_n(fcinfo, 1, "rtrec_recommend", 10000);
	req.has_category_filter = !PG_ARGISNULL(2);
	req.category_filter = req.has_category_filter ? PG_GETARG_INT64(2) : 0;
	check_not_null(fcinfo, 3, "exclude_seen", "rtrec_recommend");
	req.exclude_seen = PG_GETARG_BOOL(3);

	cfg = RtrecGetSettings();
	model = RtrecGetModelWeights();
	req.pool_size = Max(cfg->candidates, req.n);
	RtrecSetRequestNeeds(&req, model);
	req.lazy_attributes = true;	/* RtrecRankTopN loads what the top n need */
	RtrecSwingWorkerEnsure(true);	/* queued work left by a crash gets a worker */
	n_pool = begin_request(fcinfo, &req, cfg, &pool);
	n_top = RtrecRankTopN(&req, pool, n_pool, model, cfg, &top);

	for (int k = 0; k < n_top; k++)
	{
		Candidate  *c = top[k];
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = Int64GetDatum(c->item_id);
		values[1] = Float8GetDatum(c->score);
		values[2] = CStringGetTextDatum(strcmp(c->reason_kind, "trending") == 0 ? "trending" :
										psprintf("%s:" INT64_FORMAT, c->reason_kind, c->reason_id));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	end_request();
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

	check_not_null(fcinfo, 0, "user_id", "rtrec_candidates");
	memset(&req, 0, sizeof(req));
	req.user_id = PG_GETARG_INT64(0);
	req.n = check_n(fcinfo, 1, "rtrec_candidates", 100000);
	req.exclude_seen = true;
	req.pool_size = req.n;

	cfg = RtrecGetSettings();
	n_pool = begin_request(fcinfo, &req, cfg, &pool);
	for (int k = 0; k < n_pool; k++)
	{
		Candidate  *c = pool[k];
		Datum		values[3];
		bool		nulls[3] = {false, false, false};
		int			strongest = 0;

		if (!RtrecPassesFilters(&req, c))
			continue;
		for (int s = 1; s < N_SOURCES; s++)
			if (c->raw[s] > c->raw[strongest])
				strongest = s;
		values[0] = Int64GetDatum(c->item_id);
		values[1] = CStringGetTextDatum(RtrecSourceNames[strongest]);
		values[2] = Float8GetDatum(c->raw[strongest]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	end_request();
	return (Datum) 0;
}
