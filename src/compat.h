/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  The one place where rtrec adapts to PostgreSQL major versions (13-17).
 *
 *-------------------------------------------------------------------------
 */
#ifndef RTREC_COMPAT_H
#define RTREC_COMPAT_H

#include "postgres.h"
#include "funcapi.h"

/*
 * RtrecWriterSlot: a number no other live backend has right now, >= 1.
 * State rows are keyed by it so that concurrent writers never share a row.
 */
#if PG_VERSION_NUM >= 170000
#include "storage/procnumber.h"
#define RtrecWriterSlot() ((int) MyProcNumber + 1)
#else
#include "storage/backendid.h"
#define RtrecWriterSlot() ((int) MyBackendId)
#endif

/*
 * The executor's simple insert/update (logical replication's apply uses
 * them) take the ResultRelInfo from 14 on; 13 reads it from the EState.
 */
#include "executor/executor.h"
#if PG_VERSION_NUM >= 140000
#define RtrecSimpleRelationInsert(rri, estate, slot) \
	ExecSimpleRelationInsert((rri), (estate), (slot))
#define RtrecSimpleRelationUpdate(rri, estate, oldslot, slot) \
	ExecSimpleRelationUpdate((rri), (estate), NULL, (oldslot), (slot))
#else
#define RtrecSimpleRelationInsert(rri, estate, slot) \
	((estate)->es_result_relation_info = (rri), ExecSimpleRelationInsert((estate), (slot)))
#define RtrecSimpleRelationUpdate(rri, estate, oldslot, slot) \
	((estate)->es_result_relation_info = (rri), \
	 ExecSimpleRelationUpdate((estate), NULL, (oldslot), (slot)))
#endif

/* index_insert's indexUnchanged hint appeared in 14 */
#include "access/genam.h"
#if PG_VERSION_NUM >= 140000
#define RtrecIndexInsert(index, values, isnull, tid, heap, check, info) \
	index_insert((index), (values), (isnull), (tid), (heap), (check), false, (info))
#else
#define RtrecIndexInsert(index, values, isnull, tid, heap, check, info) \
	index_insert((index), (values), (isnull), (tid), (heap), (check), (info))
#endif

/* lib/sort_template.h (sorts with an inlined comparison) appeared in 14 */
#define RTREC_HAVE_SORT_TEMPLATE (PG_VERSION_NUM >= 140000)

/* InitMaterializedSRF appeared in 15; older releases get the same setup */
#if PG_VERSION_NUM < 150000
#include "miscadmin.h"
#include "utils/tuplestore.h"
#define MAT_SRF_USE_EXPECTED_DESC 0x01
static inline void
InitMaterializedSRF(FunctionCallInfo fcinfo, bits32 flags)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext oldcontext;
	TupleDesc	tupdesc;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	oldcontext = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = tuplestore_begin_heap(true, false, work_mem);
	rsinfo->setDesc = CreateTupleDescCopy(tupdesc);
	MemoryContextSwitchTo(oldcontext);
}
#endif

#endif							/* RTREC_COMPAT_H */
