/*-------------------------------------------------------------------------
 *
 * ingest.h
 *	  Events on their way from rtrec.events into the state tables.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RTREC_INGEST_H
#define RTREC_INGEST_H

#include "postgres.h"
#include "utils/timestamp.h"

/* One event of a batch that counts as an interaction (weight > 0) */
typedef struct IngestEvent
{
	int64		event_id;
	int64		user_id;
	int64		item_id;
	int64		category_id;
	bool		has_category;
	TimestampTz ts;
	double		weight;
	double		decay_log2;
} IngestEvent;

/* state_write.c: folds batches into this backend's slot rows */
typedef struct RtrecStateWriter RtrecStateWriter;

extern RtrecStateWriter *RtrecStateWriterOpen(void);
extern void RtrecStateWriterApply(RtrecStateWriter *writer, IngestEvent *events, int n);
extern void RtrecStateWriterClose(RtrecStateWriter *writer);

#endif							/* RTREC_INGEST_H */
