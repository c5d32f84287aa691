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
