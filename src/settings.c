/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  Backend-local cache of rtrec.config and rtrec.event_types.
 *
 * Every ingested event needs its type's weight and the half-life, so each
 * backend caches both tables.  A statement-level trigger on each table
 * (rtrec_settings_changed) sends a relcache invalidation for it; PostgreSQL
 * delivers that to every backend when the change commits (and to the
 * changing backend at its next command), and our callback then drops the
 * cache.  The tables are read with a plain heap scan, not SPI, so that the
 * row trigger works for an application role that may not SELECT them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "rtrec.h"

typedef struct EventWeight
{
	char	   *event_type;
	double		weight;
} EventWeight;

static MemoryContext cache_context = NULL;
static bool cache_valid = false;
static uint64 invalidations = 0;
static Oid	config_relid = InvalidOid;
static Oid	event_types_relid = InvalidOid;
static Oid	model_weights_relid = InvalidOid;
static RtrecSettings settings;
static RtrecModelWeights model_weights;
static EventWeight *weights = NULL;
static int	n_weights = 0;

void		RtrecSettingsInit(void);

static void
relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == config_relid || relid == event_types_relid ||
		relid == model_weights_relid)
	{
		cache_valid = false;
		invalidations++;
	}
}

void
RtrecSettingsInit(void)
{
	CacheRegisterRelcacheCallback(relcache_callback, (Datum) 0);
}

static Oid
rtrec_table_oid(const char *relname)
{
	Oid			nsp = get_namespace_oid(RTREC_SCHEMA, true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid(relname, nsp) : InvalidOid;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"%s.%s\" does not exist", RTREC_SCHEMA, relname),
				 errhint("Is the rtrec extension installed in this database?")));
	return relid;
}

/*
 * Scan a table whose first two columns are (text, double precision) and call
 * store() for each row.  No permission check: callers only read rtrec's own
 * settings on behalf of the extension.
 */
static void
scan_named_values(Oid relid, void (*store) (const char *name, double value))
{
	Relation	rel = table_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	Snapshot	snapshot;
	TableScanDesc scan;
	TupleTableSlot *slot;

	if (desc->natts < 2 ||
		TupleDescAttr(desc, 0)->atttypid != TEXTOID ||
		TupleDescAttr(desc, 1)->atttypid != FLOAT8OID ||
		TupleDescAttr(desc, 0)->attisdropped || TupleDescAttr(desc, 1)->attisdropped)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("table \"%s\" does not have the layout rtrec expects",
						RelationGetRelationName(rel)),
				 errhint("Reinstall the extension.")));

	/*
	 * The latest snapshot, so that a reload after an invalidation sees the
	 * change behind it; a parallel worker may not take one and uses the
	 * statement's (and does not keep the result, see load_cache).
	 */
	snapshot = RegisterSnapshot(IsInParallelMode() ? GetActiveSnapshot() : GetLatestSnapshot());
	scan = table_beginscan(rel, snapshot, 0, NULL);
	slot = table_slot_create(rel, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		name_null,
					value_null;
		Datum		name = slot_getattr(slot, 1, &name_null);
		Datum		value = slot_getattr(slot, 2, &value_null);

		if (!name_null && !value_null)
			store(TextDatumGetCString(name), DatumGetFloat8(value));
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
}

static void
store_setting(const char *name, double value)
{
	if (strcmp(name, "half_life_s") == 0)
		settings.half_life_s = value;
	else if (strcmp(name, "swing_alpha") == 0)
		settings.swing_alpha = value;
	else if (strcmp(name, "swing_user_alpha") == 0)
		settings.swing_user_alpha = value;
	else if (strcmp(name, "swing_user_beta") == 0)
		settings.swing_user_beta = value;
	else if (strcmp(name, "swing_max_users_per_item") == 0)
		settings.swing_max_users_per_item = (int) value;
	else if (strcmp(name, "swing_min_items_per_user") == 0)
		settings.swing_min_items_per_user = (int) Min(value, (double) PG_INT32_MAX);
	else if (strcmp(name, "swing_max_items_per_user") == 0)
		settings.swing_max_items_per_user = (int) Min(value, (double) PG_INT32_MAX);
	else if (strcmp(name, "swing_neighbors") == 0)
		settings.swing_neighbors = (int) value;
	else if (strcmp(name, "candidates") == 0)
		settings.candidates = (int) value;
	else if (strcmp(name, "cf_min_common_users") == 0)
		settings.cf_min_common_users = (int) Min(value, (double) PG_INT32_MAX);
	else if (strcmp(name, "trigger_items") == 0)
		settings.trigger_items = (int) value;
	else if (strcmp(name, "trigger_decay") == 0)
		settings.trigger_decay = value;
	else if (strcmp(name, "c2i_categories") == 0)
		settings.c2i_categories = (int) value;
	else if (strcmp(name, "c2i_items_per_category") == 0)
		settings.c2i_items_per_category = (int) value;
	else if (strcmp(name, "trending_refresh_s") == 0)
		settings.trending_refresh_s = value;
}

const char *const RtrecFeatureNames[RTREC_N_FEATURES] = {
	"swing", "cf", "category", "last_category", "trend", "freshness",
	"conversion", "price_fit", "brand"
};

static void
store_model_weight(const char *name, double value)
{
	for (int f = 0; f < RTREC_N_FEATURES; f++)
		if (strcmp(name, RtrecFeatureNames[f]) == 0)
			model_weights.weight[f] = value;
}

static int	weights_allocated = 0;

static void
store_weight(const char *name, double value)
{
	if (n_weights == weights_allocated)
	{
		weights_allocated = Max(16, weights_allocated * 2);
		weights = weights ? repalloc(weights, weights_allocated * sizeof(EventWeight))
			: palloc(weights_allocated * sizeof(EventWeight));
	}
	weights[n_weights].event_type = pstrdup(name);
	weights[n_weights].weight = value;
	n_weights++;
}

static int
compare_event_weights(const void *a, const void *b)
{
	return strcmp(((const EventWeight *) a)->event_type,
				  ((const EventWeight *) b)->event_type);
}

static void
load_cache(void)
{
	uint64		invalidations_before = invalidations;
	MemoryContext old;

	if (cache_context == NULL)
		cache_context = AllocSetContextCreate(TopMemoryContext, "rtrec settings",
											  ALLOCSET_SMALL_SIZES);
	MemoryContextReset(cache_context);
	weights = NULL;
	n_weights = weights_allocated = 0;

	config_relid = rtrec_table_oid("config");
	event_types_relid = rtrec_table_oid("event_types");
	model_weights_relid = rtrec_table_oid("model_weights");

	/* defaults, in case a row is missing */
	settings.half_life_s = 86400;
	settings.swing_alpha = 1;
	settings.swing_user_alpha = 5;
	settings.swing_user_beta = 0.35;
	settings.swing_max_users_per_item = 200;
	settings.swing_min_items_per_user = 1;
	settings.swing_max_items_per_user = 1000;
	settings.swing_neighbors = 100;
	settings.candidates = 1000;
	settings.cf_min_common_users = 2;
	settings.trigger_items = 20;
	settings.trigger_decay = 0.9;
	settings.c2i_categories = 10;
	settings.c2i_items_per_category = 100;
	settings.trending_refresh_s = 5;
	memset(&model_weights, 0, sizeof(model_weights));

	old = MemoryContextSwitchTo(cache_context);
	scan_named_values(config_relid, store_setting);
	scan_named_values(event_types_relid, store_weight);
	scan_named_values(model_weights_relid, store_model_weight);
	MemoryContextSwitchTo(old);
	if (n_weights > 1)
		qsort(weights, n_weights, sizeof(EventWeight), compare_event_weights);

	/*
	 * An invalidation that arrived while we read means: read again next time.
	 * So does a read with a statement snapshot, which may predate a change.
	 */
	cache_valid = (invalidations == invalidations_before) && !IsInParallelMode();
}

const RtrecSettings *
RtrecGetSettings(void)
{
	if (!cache_valid)
		load_cache();
	return &settings;
}

const RtrecModelWeights *
RtrecGetModelWeights(void)
{
	if (!cache_valid)
		load_cache();
	return &model_weights;
}

bool
RtrecLookupEventWeight(const char *event_type, double *weight)
{
	EventWeight key;
	EventWeight *found;

	if (!cache_valid)
		load_cache();
	key.event_type = (char *) event_type;
	found = bsearch(&key, weights, n_weights, sizeof(EventWeight), compare_event_weights);
	if (found == NULL)
		return false;
	*weight = found->weight;
	return true;
}

/*
 * AFTER ... FOR EACH STATEMENT trigger on rtrec.config, rtrec.event_types and
 * rtrec.model_weights:
 * makes every backend drop its cache once this transaction commits.
 */
PG_FUNCTION_INFO_V1(rtrec_settings_changed);
Datum
rtrec_settings_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("rtrec.settings_changed() must be called as a trigger")));
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}
