/*-------------------------------------------------------------------------
 *
 * bulk_insert.h
 *	  Inserting a batch's new rows into one table (bulk_insert.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef RTREC_BULK_INSERT_H
#define RTREC_BULK_INSERT_H

#include "postgres.h"
#include "executor/tuptable.h"
#include "nodes/execnodes.h"

typedef struct RtrecBulkInserter RtrecBulkInserter;

extern RtrecBulkInserter *RtrecBulkInserterCreate(ResultRelInfo *rri, EState *estate);
extern TupleTableSlot *RtrecBulkInserterSlot(RtrecBulkInserter *b);
extern void RtrecBulkInserterStore(RtrecBulkInserter *b);
extern void RtrecBulkInserterFinish(RtrecBulkInserter *b);
extern void RtrecBulkInserterFree(RtrecBulkInserter *b);

#endif							/* RTREC_BULK_INSERT_H */
