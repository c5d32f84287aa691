/*-------------------------------------------------------------------------
 *
 * train.c
 *	  rtrec_train(): fits the ranker's weights (rtrec.model_weights) and the
 *	  trigger_decay setting to this database's own events.
 *
 * Labels come from a replay of the newest events, the protocol of the
 * project's quality benchmark run inside the database:
 *	 1. Test events: the newest test_events first interactions of a user with
 *		an item, where the user has an earlier interaction and the item an
 *		earlier event (a recommender cannot name an item it has never seen).
 *		The cut T is the oldest test event's time.
 *	 2. In a subtransaction that is rolled back at the end: delete the events
 *		at or after T, rebuild the derived state from the rest (the state as
 *		it was at T), then insert the deleted events again in time order, as
 *		the application did.  Just before each test event, bring the Swing
 *		lists up to date (what the refresh worker does), generate the user's
 *		candidate pool as rtrec_recommend would, once per trigger_decay tried,
 *		and record each candidate's features and whether it is the item the
 *		user took next.
 *	 3. Nothing of the replay survives: the events and derived state are as
 *		they were.  The fit is coordinate ascent of the weights over a grid,
 *		maximizing hits@20 (then MRR@20) on the older two thirds of the test
 *		events.  The newer third is held out: the figures reported are
 *		measured on it, and the fitted weights are applied only when they do
 *		at least as well there as the current ones.
 *
 * The replay blocks inserts into rtrec.events for its duration (about a
 * rebuild plus the replay), like rtrec_rebuild().
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "compat.h"
#include "recommend.h"
#include "swing.h"

#define TRAIN_TOP_N 20			/* hits and MRR at this rank, as rtrec_recommend's default n */
#define TRAIN_MAX_DECAYS 4
#define TRAIN_TRENDING_EVERY 500	/* replayed events between trending refreshes */

/* candidate trigger_decay values tried besides the current one */
static const double decay_grid[] = {0.5, 0.7, 0.9};

/* weights tried for each feature */
static const double weight_grid[] = {0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5};

/* One test event seen with one trigger_decay */
typedef struct Sample
{
	int			n;				/* candidates passing the filters, in pool order */
	int			label;			/* index of the item the user took, -1: not among them */
	float	   *features;		/* n * RTREC_N_FEATURES */
} Sample;

/* One replayed event */
typedef struct TailEvent
{
	int64		event_id;
	int64		user_id;
	int64		item_id;
	char	   *event_type;
	TimestampTz ts;
	bool		is_test;
} TailEvent;

typedef struct Score
{
	int			hits;
	double		rr_sum;
	int			n;
} Score;

static bool
better(const Score *a, const Score *b)
{
	if (a->hits != b->hits)
		return a->hits > b->hits;
	return a->rr_sum > b->rr_sum + 1e-12;
}

/*
 * Hits and reciprocal ranks of samples[from..to) under weights w.  Ties rank
 * as rtrec_recommend ranks them: by pool order.
 */
static Score
evaluate(const Sample *samples, int from, int to, const double *w)
{
	Score		s = {0, 0, to - from};

	for (int i = from; i < to; i++)
	{
		const Sample *x = &samples[i];
		double		label_score = 0;
		int			rank = 1;

		if (x->label < 0)
			continue;
		for (int f = 0; f < RTREC_N_FEATURES; f++)
			label_score += w[f] * x->features[x->label * RTREC_N_FEATURES + f];
		for (int c = 0; c < x->n && rank <= TRAIN_TOP_N; c++)
		{
			double		score = 0;

			if (c == x->label)
				continue;
			for (int f = 0; f < RTREC_N_FEATURES; f++)
				score += w[f] * x->features[c * RTREC_N_FEATURES + f];
			if (score > label_score || (score == label_score && c < x->label))
				rank++;
		}
		if (rank <= TRAIN_TOP_N)
		{
			s.hits++;
			s.rr_sum += 1.0 / rank;
		}
	}
	return s;
}

/* Coordinate ascent from w (updated in place); returns the fitted score */
static Score
fit(const Sample *samples, int n_fit, double *w)
{
	Score		best = evaluate(samples, 0, n_fit, w);

	for (int pass = 0; pass < 3; pass++)
	{
		bool		improved = false;

		for (int f = 0; f < RTREC_N_FEATURES; f++)
			for (int g = 0; g < lengthof(weight_grid); g++)
			{
				double		keep = w[f];
				Score		s;

				w[f] = weight_grid[g];
				s = evaluate(samples, 0, n_fit, w);
				if (better(&s, &best))
				{
					best = s;
					improved = true;
				}
				else
					w[f] = keep;
			}
		if (!improved)
			break;
		CHECK_FOR_INTERRUPTS();
	}
	return best;
}

/* Step 1: the test events' ids (sorted) and the cut T */
static int
choose_test_events(int wanted, int64 **ids_out, TimestampTz *cut)
{
	MemoryContext into = CurrentMemoryContext;	/* SPI calls return in SPI's context */
	Datum		arg = Int32GetDatum(wanted);
	Oid			argtype = INT4OID;
	int			n;
	int64	   *ids;

	if (SPI_execute_with_args(
							  "WITH ev AS ("
							  "  SELECT e.event_id, e.user_id, e.item_id, e.ts"
							  "    FROM rtrec.events e JOIN rtrec.event_types t ON t.event_type = e.event_type"
							  "   WHERE t.weight > 0),"
							  " firsts AS ("
							  "  SELECT DISTINCT ON (user_id, item_id) event_id, user_id, item_id, ts"
							  "    FROM ev ORDER BY user_id, item_id, ts, event_id),"
							  " user_start AS (SELECT user_id, min(ts) AS t0 FROM ev GROUP BY user_id),"
							  " item_start AS (SELECT item_id, min(ts) AS t0 FROM rtrec.events GROUP BY item_id),"
							  " picked AS ("
							  "  SELECT f.event_id, f.ts FROM firsts f"
							  "    JOIN user_start u USING (user_id) JOIN item_start i USING (item_id)"
							  "   WHERE f.ts > u.t0 AND f.ts > i.t0"
							  "   ORDER BY f.ts DESC, f.event_id DESC LIMIT $1)"
							  " SELECT event_id, min(ts) OVER () FROM picked ORDER BY event_id",
							  1, &argtype, &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not choose rtrec_train's test events");
	MemoryContextSwitchTo(into);
	n = (int) SPI_processed;
	ids = palloc(sizeof(int64) * Max(1, n));
	for (int r = 0; r < n; r++)
	{
		bool		isnull;

		ids[r] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
		*cut = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);
	*ids_out = ids;
	return n;
}

/* Step 2a: deletes the events at or after the cut; returns them in time order */
static int
take_tail(TimestampTz cut, const int64 *test_ids, int n_test, TailEvent **tail_out)
{
	MemoryContext into = CurrentMemoryContext;
	Datum		arg = TimestampTzGetDatum(cut);
	Oid			argtype = TIMESTAMPTZOID;
	int			n;
	TailEvent  *tail;

	if (SPI_execute_with_args("WITH d AS (DELETE FROM rtrec.events WHERE ts >= $1"
							  "  RETURNING event_id, user_id, item_id, event_type, ts)"
							  " SELECT * FROM d ORDER BY ts, event_id",
							  1, &argtype, &arg, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not take the newest events for the replay");
	MemoryContextSwitchTo(into);
	n = (int) SPI_processed;
	tail = palloc(sizeof(TailEvent) * Max(1, n));
	for (int r = 0; r < n; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		tail[r].event_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		tail[r].user_id = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
		tail[r].item_id = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
		tail[r].event_type = SPI_getvalue(tup, desc, 4);	/* in the current context */
		tail[r].ts = DatumGetTimestampTz(SPI_getbinval(tup, desc, 5, &isnull));
		tail[r].is_test = bsearch(&tail[r].event_id, test_ids, n_test, sizeof(int64),
								  RtrecCompareInt64) != NULL;
	}
	SPI_freetuptable(SPI_tuptable);
	*tail_out = tail;
	return n;
}

/* Step 2b: inserts tail[from..to) again, in one statement */
static void
replay_events(const TailEvent *tail, int from, int to)
{
	int			n = to - from;
	Datum	   *cols[5];
	Datum		args[5];
	Oid			types[5] = {INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID};
	Oid			elem[5] = {INT8OID, INT8OID, INT8OID, TEXTOID, TIMESTAMPTZOID};

	if (n <= 0)
		return;
	for (int c = 0; c < 5; c++)
		cols[c] = palloc(sizeof(Datum) * n);
	for (int k = 0; k < n; k++)
	{
		const TailEvent *e = &tail[from + k];

		cols[0][k] = Int64GetDatum(e->event_id);
		cols[1][k] = Int64GetDatum(e->user_id);
		cols[2][k] = Int64GetDatum(e->item_id);
		cols[3][k] = CStringGetTextDatum(e->event_type);
		cols[4][k] = TimestampTzGetDatum(e->ts);
	}
	for (int c = 0; c < 5; c++)
	{
		int16		len;
		bool		byval;
		char		align;

		get_typlenbyvalalign(elem[c], &len, &byval, &align);
		args[c] = PointerGetDatum(construct_array(cols[c], n, elem[c], len, byval, align));
	}
	if (SPI_execute_with_args("INSERT INTO rtrec.events (event_id, user_id, item_id, event_type, ts)"
							  " SELECT a, b, c, d, e FROM unnest($1::int8[], $2::int8[], $3::int8[],"
							  "   $4::text[], $5::timestamptz[]) WITH ORDINALITY AS u(a, b, c, d, e, o)"
							  " ORDER BY o",
							  5, types, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not replay events");
	for (int c = 0; c < 5; c++)
		pfree(cols[c]);
}

/*
 * The statements of candidate generation and refresh are planned once per
 * backend, as rtrec_recommend and the worker plan them: with index paths
 * (their generic plans would otherwise scan whole tables).  Returns the GUC
 * nesting level for end_index_plans.
 */
static int
begin_index_plans(void)
{
	int			level = NewGUCNestLevel();

	(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return level;
}

static void
end_index_plans(int level)
{
	AtEOXact_GUC(true, level);
}

/*
 * Fresh lists for the replay.  The refresh worker rewrites every dirty list,
 * a few seconds behind the events; the replay only needs the lists of the
 * trigger items it reads, so it rewrites those just before reading them,
 * when more than TRAIN_LIST_LAG events were replayed since they were last
 * exact (the rebuild left every list exact).  Exact lists at every event
 * would cost a dense data set minutes per thousand test events for little
 * change.  The queue is left alone: it is rolled back with the rest.
 */
#define TRAIN_LIST_LAG 100

typedef struct FreshLists
{
	HTAB	   *exact_at;		/* item -> replay position of its last rewrite */
	int			position;		/* events replayed so far */
} FreshLists;

typedef struct ExactAt
{
	int64		item_id;
	int			position;
} ExactAt;

static void
rewrite_trigger_lists(const int64 *items, int n, void *arg)
{
	FreshLists *fresh = arg;
	int64	   *stale = palloc(sizeof(int64) * Max(1, n));
	int			n_stale = 0;

	for (int k = 0; k < n; k++)
	{
		bool		found;
		ExactAt    *e = hash_search(fresh->exact_at, &items[k], HASH_ENTER, &found);

		if (!found)
			e->position = 0;
		if (fresh->position - e->position > TRAIN_LIST_LAG)
		{
			e->position = fresh->position;
			stale[n_stale++] = items[k];
		}
	}
	if (n_stale > 0)
	{
		RtrecSwingRewrite(stale, n_stale);
		/* the request's reads (on the active snapshot) see the new lists */
		CommandCounterIncrement();
		UpdateActiveSnapshotCommandId();
	}
	pfree(stale);
}

/* The trending cache, rewritten as the worker does now and then */
static void
refresh_trending(void)
{
	int			level = begin_index_plans();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	CommandCounterIncrement();
	RtrecRefreshTrending();
	SPI_finish();
	end_index_plans(level);
}

/* Step 2c: the candidates of a test event, with features, as a Sample */
static void
record_sample(const TailEvent *e, const RtrecSettings *cfg, FreshLists *fresh,
			  Sample *out, MemoryContext keep, MemoryContext scratch)
{
	Request		req;
	Candidate **pool;
	int			n_pool;
	int			n = 0;
	bool		hit = false;
	int			level = begin_index_plans();
	MemoryContext old = MemoryContextSwitchTo(scratch);

	memset(&req, 0, sizeof(req));
	req.user_id = e->user_id;
	req.n = TRAIN_TOP_N;
	req.exclude_seen = true;
	req.pool_size = Max(cfg->candidates, TRAIN_TOP_N);
	req.need_item_state = true;
	req.need_taste = true;		/* every feature is recorded */
	req.before_neighbors = rewrite_trigger_lists;
	req.before_neighbors_arg = fresh;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	MemoryContextSwitchTo(scratch);
	CommandCounterIncrement();	/* see the events just replayed */
	PushActiveSnapshot(GetTransactionSnapshot());
	UpdateActiveSnapshotCommandId();
	n_pool = RtrecBuildPool(&req, cfg, &pool);
	PopActiveSnapshot();
	RtrecComputeFeatures(&req, pool, n_pool, cfg);

	out->label = -1;
	out->features = NULL;
	for (int k = 0; k < n_pool && !hit; k++)
		hit = pool[k]->item_id == e->item_id && RtrecPassesFilters(&req, pool[k]);
	/* a miss scores nothing under any weights: keep no features for it */
	if (hit)
	{
		out->features = MemoryContextAlloc(keep, sizeof(float) * RTREC_N_FEATURES * n_pool);
		for (int k = 0; k < n_pool; k++)
		{
			if (!RtrecPassesFilters(&req, pool[k]))
				continue;
			if (pool[k]->item_id == e->item_id)
				out->label = n;
			for (int f = 0; f < RTREC_N_FEATURES; f++)
				out->features[n * RTREC_N_FEATURES + f] = (float) pool[k]->feature[f];
			n++;
		}
	}
	out->n = n;
	SPI_finish();
	end_index_plans(level);
	MemoryContextSwitchTo(old);
	MemoryContextReset(scratch);
}

/* Runs SQL that must succeed, with arguments */
static void
run_update(const char *sql, Oid type1, Datum v1, Oid type2, Datum v2)
{
	Oid			types[2] = {type1, type2};
	Datum		args[2] = {v1, v2};

	if (SPI_execute_with_args(sql, 2, types, args, NULL, false, 0) != SPI_OK_UPDATE ||
		SPI_processed != 1)
		elog(ERROR, "rtrec_train could not apply: %s", sql);
}

static void
emit(ReturnSetInfo *rsinfo, const char *measure, double current, double trained)
{
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	values[0] = CStringGetTextDatum(measure);
	values[1] = Float8GetDatum(current);
	values[2] = Float8GetDatum(trained);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * rtrec_train(test_events integer DEFAULT 1000, apply boolean DEFAULT true)
 *	 -> (measure text, current double precision, trained double precision)
 */
PG_FUNCTION_INFO_V1(rtrec_train);
Datum
rtrec_train(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext caller = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	MemoryContext keep;
	MemoryContext scratch;
	RtrecSettings cfg[TRAIN_MAX_DECAYS];
	int			n_decays = 0;
	int			wanted;
	bool		apply;
	int64	   *test_ids;
	int			n_test;
	TimestampTz cut = 0;
	TailEvent  *tail;
	int			n_tail;
	Sample	   *samples[TRAIN_MAX_DECAYS];
	int			n_samples = 0;
	int			n_fit;
	double		current_w[RTREC_N_FEATURES];
	double		best_w[RTREC_N_FEATURES];
	int			best_decay = 0;
	Score		best_fit = {-1, 0, 0};
	Score		held_current;
	Score		held_trained;
	bool		applied;

	if (PG_ARGISNULL(0) || PG_GETARG_INT32(0) < 10 || PG_GETARG_INT32(0) > 100000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid test_events %s for rtrec_train()",
						PG_ARGISNULL(0) ? "NULL" : psprintf("%d", PG_GETARG_INT32(0))),
				 errhint("test_events must be between 10 and 100000.")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("apply must not be NULL in rtrec_train()"),
				 errhint("Pass true to store the fitted weights, false to only measure.")));
	wanted = PG_GETARG_INT32(0);
	apply = PG_GETARG_BOOL(1);
	InitMaterializedSRF(fcinfo, 0);

	/* the settings tried: the current trigger_decay first */
	cfg[n_decays++] = *RtrecGetSettings();
	for (int d = 0; d < lengthof(decay_grid) && n_decays < TRAIN_MAX_DECAYS; d++)
		if (fabs(decay_grid[d] - cfg[0].trigger_decay) > 1e-9)
		{
			cfg[n_decays] = cfg[0];
			cfg[n_decays].trigger_decay = decay_grid[d];
			n_decays++;
		}
	memcpy(current_w, RtrecGetModelWeights()->weight, sizeof(current_w));

	keep = AllocSetContextCreate(caller, "rtrec_train samples", ALLOCSET_DEFAULT_SIZES);
	scratch = AllocSetContextCreate(caller, "rtrec_train request", ALLOCSET_DEFAULT_SIZES);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* no event may arrive between the choice of test events and the replay */
	if (SPI_execute("LOCK TABLE rtrec.events IN SHARE ROW EXCLUSIVE MODE", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not lock rtrec.events");

	MemoryContextSwitchTo(keep);
	n_test = choose_test_events(wanted, &test_ids, &cut);
	if (n_test < 10)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("rtrec_train() found %d test events; it needs at least 10", n_test),
				 errdetail("A test event is a user's first interaction with an item, after an earlier interaction of that user, on an item with an earlier event."),
				 errhint("Train once more events have arrived.")));
	for (int d = 0; d < n_decays; d++)
		samples[d] = palloc0(sizeof(Sample) * n_test);

	/* the replay, in a subtransaction rolled back at the end */
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(keep);
	{
		/* rtrec_rebuild() lives beside this function, in the extension's schema */
		char	   *schema = get_namespace_name(get_func_namespace(fcinfo->flinfo->fn_oid));
		int			batch_start = 0;
		int			since_trending = 0;	/* the rebuild refreshes trending */
		FreshLists	fresh;

		n_tail = take_tail(cut, test_ids, n_test, &tail);
		if (SPI_execute(psprintf("SELECT %s.rtrec_rebuild()", quote_identifier(schema)), false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not rebuild the state before the replay");
		MemoryContextSwitchTo(keep);
		fresh.exact_at = RtrecInt64Table("rtrec_train list positions", sizeof(ExactAt), 256, keep);
		fresh.position = 0;
		for (int k = 0; k < n_tail; k++)
		{
			if (tail[k].is_test && n_samples < n_test)
			{
				replay_events(tail, batch_start, k);
				fresh.position = k;
				since_trending += k - batch_start;
				batch_start = k;
				if (since_trending >= TRAIN_TRENDING_EVERY)
				{
					refresh_trending();
					since_trending = 0;
				}
				for (int d = 0; d < n_decays; d++)
					record_sample(&tail[k], &cfg[d], &fresh, &samples[d][n_samples], keep, scratch);
				n_samples++;
			}
			CHECK_FOR_INTERRUPTS();
		}
	}
	RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(keep);
	CurrentResourceOwner = owner;

	/* the fit, on the older two thirds */
	n_fit = n_samples * 2 / 3;
	for (int d = 0; d < n_decays; d++)
	{
		double		w[RTREC_N_FEATURES];
		Score		s;

		memcpy(w, current_w, sizeof(w));
		s = fit(samples[d], n_fit, w);
		if (better(&s, &best_fit))
		{
			best_fit = s;
			best_decay = d;
			memcpy(best_w, w, sizeof(w));
		}
	}
	held_current = evaluate(samples[0], n_fit, n_samples, current_w);
	held_trained = evaluate(samples[best_decay], n_fit, n_samples, best_w);
	applied = apply && !better(&held_current, &held_trained);

	if (applied)
	{
		for (int f = 0; f < RTREC_N_FEATURES; f++)
			run_update("UPDATE rtrec.model_weights SET weight = $2 WHERE feature = $1",
					   TEXTOID, CStringGetTextDatum(RtrecFeatureNames[f]),
					   FLOAT8OID, Float8GetDatum(best_w[f]));
		run_update("UPDATE rtrec.config SET value = $2 WHERE name = $1",
				   TEXTOID, CStringGetTextDatum("trigger_decay"),
				   FLOAT8OID, Float8GetDatum(cfg[best_decay].trigger_decay));
	}

	MemoryContextSwitchTo(caller);
	emit(rsinfo, "test events (fit)", n_fit, n_fit);
	emit(rsinfo, "test events (held out)", n_samples - n_fit, n_samples - n_fit);
	emit(rsinfo, "hit rate@20 (held out)",
		 (double) held_current.hits / Max(1, held_current.n),
		 (double) held_trained.hits / Max(1, held_trained.n));
	emit(rsinfo, "mrr@20 (held out)",
		 held_current.rr_sum / Max(1, held_current.n),
		 held_trained.rr_sum / Max(1, held_trained.n));
	emit(rsinfo, "trigger_decay", cfg[0].trigger_decay, cfg[best_decay].trigger_decay);
	for (int f = 0; f < RTREC_N_FEATURES; f++)
		emit(rsinfo, psprintf("weight: %s", RtrecFeatureNames[f]), current_w[f], best_w[f]);
	emit(rsinfo, "applied", 0, applied ? 1 : 0);
	SPI_finish();
	MemoryContextDelete(scratch);
	MemoryContextDelete(keep);
	return (Datum) 0;
}
