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

/* swing.c: exact neighbours of one item, best first, at most k (k <= 0: all) */
extern int	RtrecSwingCompute(int64 item_id, int k, SwingNeighbor **result);

typedef struct SwingGraph SwingGraph;

/* swing.c: the whole (user, item) graph in memory, for passes over many items */
extern SwingGraph *RtrecSwingGraphLoad(void);
extern int	RtrecSwingGraphItemCount(const SwingGraph *graph);
extern int64 RtrecSwingGraphItem(const SwingGraph *graph, int index);
extern int	RtrecSwingComputeFromGraph(const SwingGraph *graph, int64 item_id, int k,
									   SwingNeighbor **result);

/* swing_refresh.c: drains up to max_rows queue rows; returns items refreshed */
extern int64 RtrecSwingRefresh(int max_rows);

/* worker.c: makes sure this database's refresh worker runs (cheap, rate-limited) */
extern void RtrecSwingWorkerEnsure(void);

#endif							/* RTREC_SWING_H */
