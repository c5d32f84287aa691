/*-------------------------------------------------------------------------
 *
 * key_cursor.h
 *	  Looking up ascending keys in a btree in one pass (key_cursor.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef RTREC_KEY_CURSOR_H
#define RTREC_KEY_CURSOR_H

#include "postgres.h"
#include "executor/tuptable.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"

#define RTREC_KEY_CURSOR_MAX_KEYS 3

typedef struct RtrecKeyCursor RtrecKeyCursor;

extern RtrecKeyCursor *RtrecKeyCursorBegin(Relation heap, Relation index,
										   Snapshot snapshot, int n_keys,
										   const int64 *last);
extern void RtrecKeyCursorSeek(RtrecKeyCursor *c, const int64 *key);
extern bool RtrecKeyCursorNext(RtrecKeyCursor *c, TupleTableSlot *slot);
extern void RtrecKeyCursorForget(RtrecKeyCursor *c);
extern void RtrecKeyCursorEnd(RtrecKeyCursor *c);

#endif							/* RTREC_KEY_CURSOR_H */
