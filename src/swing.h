/*-------------------------------------------------------------------------
 *
 * swing.h
 *	  Swing i2i similarity: exact computation, refresh of stored neighbours,
 *	  and the background worker that keeps them fresh.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RTREC_SWING_H
#define RTREC_SWING_H

typedef struct SwingNeighbor
{
	int64		item_id;
	double		score;
} SwingNeighbor;

/* An item's neighbour lists, best first */
typedef struct NeighborLists
{
	SwingNeighbor *swing;		/* Swing s(i, j) */
	int			n_swing;
	SwingNeighbor *cf;			/* cosine co-occurrence over the same users */
	int			n_cf;
} NeighborLists;

/* swing.c: exact lists of one item, at most k each (k <= 0: all) */
extern void RtrecNeighborsCompute(int64 item_id, int k, bool with_cf, NeighborLists *lists);

typedef struct SwingGraph SwingGraph;

/* swing.c: the whole (user, item) graph in memory, for passes over many items */
extern SwingGraph *RtrecSwingGraphLoad(void);
extern void RtrecNeighborsComputeFromGraph(const SwingGraph *graph, int64 item_id, int k,
										   NeighborLists *lists);

/* swing_refresh.c: drains up to max_rows queue rows; returns items refreshed */
extern int64 RtrecSwingRefresh(int max_rows);
extern void RtrecRefreshTrending(void);
extern void RtrecSwingRewrite(const int64 *items, int n);

/*
 * worker.c: makes sure this database's refresh worker runs (a conditional
 * lock test).  rate_limited: at most once a second per backend (readers);
 * writers call it after queueing, unlimited, which the worker's exit relies on.
 */
extern void RtrecSwingWorkerEnsure(bool rate_limited);

#endif							/* RTREC_SWING_H */
