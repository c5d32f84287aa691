/*-------------------------------------------------------------------------
 *
 * spi_util.c
 *	  Small helpers shared by rtrec's C files: kept SPI plans, int8 arrays,
 *	  the order of int64 keys and hash tables keyed by them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "nodes/parsenodes.h"
#include "utils/array.h"
#include "utils/hsearch.h"

#include "rtrec.h"

/*
 * Prepares a statement once per backend and keeps the plan (the plan cache
 * replans it when the tables it uses change).  The plan is generic: rtrec's
 * statements take arrays of keys whose values do not change the best plan,
 * and a custom plan per call would cost more to make than to run (the
 * ingest statement has five upserts).  Every statement rtrec runs names its
 * relations with their schema.
 */
SPIPlanPtr
RtrecPrepareKept(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, argtypes, CURSOR_OPT_GENERIC_PLAN);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	return plan;
}

/* A bigint[] datum of values[0..n-1] */
Datum
RtrecInt8Array(const int64 *values, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(1, n));
	ArrayType  *arr;

	for (int i = 0; i < n; i++)
		elems[i] = Int64GetDatum(values[i]);
	arr = construct_array(elems, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
	pfree(elems);
	return PointerGetDatum(arr);
}

/* qsort/bsearch order of int64 values (ascending) */
int
RtrecCompareInt64(const void *a, const void *b)
{
	return RtrecCompareInt64Values(*(const int64 *) a, *(const int64 *) b);
}

/* A hash table in context whose entries start with an int64 key */
HTAB *
RtrecInt64Table(const char *name, Size entrysize, long size, MemoryContext context)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = entrysize;
	ctl.hcxt = context;
	return hash_create(name, size, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}
