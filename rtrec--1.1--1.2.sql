/* rtrec--1.1--1.2.sql: update script from rtrec 1.1 to 1.2 */

\echo Use "ALTER EXTENSION rtrec UPDATE TO '1.2'" to load this file. \quit

/*
 * CREATE EXTENSION rtrec runs rtrec--1.0.sql and the update scripts in turn;
 * the rules at the top of rtrec--1.0--1.1.sql apply here too.
 */

-- rtrec.events first, as on every rtrec path: no event is ingested while
-- the state tables change shape below (see the rules in rtrec--1.0--1.1.sql)
LOCK TABLE rtrec.events IN SHARE ROW EXCLUSIVE MODE;

-- 1.2: the ingest trigger upserts state rows below the executor
-- (state_write.c); its only remaining SPI statement registers unknown items
-- and scans no table, so the planner settings it pinned are not needed
-- (each SET costs a GUC save and restore on every INSERT statement).
ALTER FUNCTION rtrec.events_apply() RESET enable_seqscan;
ALTER FUNCTION rtrec.events_apply() RESET jit;

-- 1.2: nor the search_path.  The trigger is C and resolves no name through
-- the search_path: it opens rtrec's tables by schema and name and reads the
-- settings with heap scans.  Its one SPI statement (registering unknown
-- items) sets search_path = pg_catalog, pg_temp itself, around that
-- statement only (ingest.c).  A SET clause made every INSERT statement save,
-- set and restore the setting and then look the caller's path up again:
-- 4% of a single-row INSERT's instructions.  It stays SECURITY DEFINER.
ALTER FUNCTION rtrec.events_apply() RESET search_path;

-- 1.2: room for in-page (HOT) updates: a writer updates its slot's row of a
-- user or an item on every event, and only a full page makes such an update
-- write new index entries.  Applies to pages filled from now on.
ALTER TABLE rtrec.user_state SET (fillfactor = 80);
ALTER TABLE rtrec.item_state SET (fillfactor = 80);

-- 1.2: user_item_state's second index is on item_id alone.  Its last_ts
-- served no reader (the users of an item are read whole, ordered by their
-- latest time over all slots), yet it changes with every repeat event of a
-- (user, item) pair, so such an update could never be HOT and wrote an entry
-- into both indexes.  Now it can, given room on the page: a user views,
-- clicks and buys the same item.  Less room than the tables above: a pair
-- repeats less often than a user or an item does, and this is the largest
-- state table.  The index is built again below, once every row has its
-- category: built now, it would get a second entry for most rows.
DROP INDEX rtrec.user_item_state_item_idx;
ALTER TABLE rtrec.user_item_state SET (fillfactor = 90);

-- 1.2: cosine CF weighs twice Swing by default, and the category of the
-- user's last interaction twice as much as before (0.6), so that a change
-- of interest still shows at once (README, "Quality").  Only untouched
-- defaults change: a weight the owner set, or rtrec_train() fitted, stays.
UPDATE rtrec.model_weights SET weight = 2.0 WHERE feature = 'cf' AND weight = 1.0;
UPDATE rtrec.model_weights SET weight = 0.6 WHERE feature = 'last_category' AND weight = 0.3;

-- 1.2: rtrec.user_category is summed from user_item_state, whose rows now
-- carry the category their events were filed under; user_category_state is
-- gone.  A bulk load makes about one new (user, category) pair per event,
-- and its row, index entry and lookup were a sixth of a COPY's time (README,
-- Performance).  The contract's "category at insert time" holds: a pair whose
-- item moves to another category gets a second row (per slot) for the
-- events after the move, so user_item_state's key takes the category; it is
-- a unique index, not a primary key, because the category may be NULL (the
-- writer, the only one to insert rows of its slot, keeps those unique too).
-- The existing rows get their item's current category, as rtrec_rebuild()
-- would file them: events filed under an item's earlier category move to
-- its current one (rtrec_verify() reported them until a rebuild anyway).
-- The table has no index while its rows are updated.
ALTER TABLE rtrec.user_item_state DROP CONSTRAINT user_item_state_pkey;
ALTER TABLE rtrec.user_item_state ADD COLUMN category_id bigint;
UPDATE rtrec.user_item_state s SET category_id = i.category_id
  FROM rtrec.items i
 WHERE i.item_id OPERATOR(pg_catalog.=) s.item_id AND i.category_id IS NOT NULL;
CREATE UNIQUE INDEX user_item_state_key ON rtrec.user_item_state (user_id, item_id, slot, category_id);
CREATE INDEX user_item_state_item_idx ON rtrec.user_item_state (item_id);
COMMENT ON COLUMN rtrec.user_item_state.category_id IS
	'the item''s category when these events were inserted (NULL: none); rtrec.user_category sums the rows per category';
COMMENT ON TABLE rtrec.user_item_state IS
	'per-(user, item) interaction state (U_i and I_u of Swing), one row per writer slot and category at insert time; read rtrec.user_items and rtrec.user_category';

CREATE OR REPLACE VIEW rtrec.user_category AS
SELECT s.user_id, s.category_id,
	rtrec.decay_value(s.affinity_log2, s.last_ts, d.half_life_s) AS affinity,
	s.n_events, s.last_ts, s.weight_sum, s.affinity_log2
FROM rtrec.decay d, (
	SELECT user_id, category_id,
		pg_catalog.sum(n_events)::bigint AS n_events,
		pg_catalog.sum(weight_sum) AS weight_sum,
		rtrec.log2_sum(affinity_log2) AS affinity_log2,
		pg_catalog.max(last_ts) AS last_ts
	FROM rtrec.user_item_state
	WHERE category_id IS NOT NULL
	GROUP BY user_id, category_id
) s;

DROP TABLE rtrec.user_category_state;

-- what rtrec_rebuild() writes: each pair under its item's current category
CREATE OR REPLACE VIEW rtrec.user_item_state_recomputed AS
SELECT user_id, item_id,
	pg_catalog.count(*) AS n_events,
	pg_catalog.sum(weight) AS weight_sum,
	rtrec.log2_sum(decay_log2) AS affinity_log2,
	pg_catalog.min(ts) AS first_ts,
	pg_catalog.max(ts) AS last_ts,
	category_id
FROM rtrec.interactions
GROUP BY user_id, item_id, category_id;

CREATE OR REPLACE FUNCTION @extschema@.rtrec_rebuild() RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	k integer := (SELECT value FROM rtrec.config WHERE name = 'swing_neighbors');
	parts integer;
BEGIN
	-- SHARE ROW EXCLUSIVE blocks new events and other rebuilds until we
	-- commit; DELETE (not TRUNCATE) so that
	-- readers of the state are never blocked or deadlocked by a rebuild
	LOCK TABLE rtrec.events IN SHARE ROW EXCLUSIVE MODE;
	INSERT INTO rtrec.items (item_id, auto_registered)
		SELECT DISTINCT e.item_id, true FROM rtrec.events e
		 WHERE NOT EXISTS (SELECT 1 FROM rtrec.items i WHERE i.item_id = e.item_id)
		ORDER BY 1
		ON CONFLICT DO NOTHING;
	DELETE FROM rtrec.user_state;
	DELETE FROM rtrec.item_state;
	DELETE FROM rtrec.user_item_state;
	INSERT INTO rtrec.user_state
		SELECT user_id, 0, n_events, weight_sum, first_ts, last_ts, last_event_id,
			   last_item_id, last_category_id
		  FROM rtrec.user_state_recomputed;
	INSERT INTO rtrec.item_state
		SELECT item_id, 0, n_events, weight_sum, trend_log2, first_ts, last_ts
		  FROM rtrec.item_state_recomputed;
	INSERT INTO rtrec.user_item_state
		SELECT user_id, item_id, 0, n_events, weight_sum, affinity_log2, first_ts, last_ts,
			   category_id
		  FROM rtrec.user_item_state_recomputed;

	-- Swing: every item's list, in parts that parallel workers compute at
	-- once (CREATE TABLE AS may run its query in parallel; INSERT may not)
	LOCK TABLE rtrec.swing_neighbors IN SHARE ROW EXCLUSIVE MODE;
	DELETE FROM rtrec.swing_queue;
	DELETE FROM rtrec.pending_items;
	DELETE FROM rtrec.swing_neighbors;
	parts := greatest(1, least(8, current_setting('max_parallel_workers_per_gather')::integer + 1));
	SET LOCAL parallel_setup_cost = 0;
	SET LOCAL parallel_tuple_cost = 0;
	EXECUTE format('CREATE TEMP TABLE rtrec_swing_rebuild ON COMMIT DROP AS %s',
				   (SELECT string_agg(format('SELECT * FROM rtrec.neighbors_compute_part(%s, %s, %s)', p, parts, k),
									  ' UNION ALL ')
					  FROM generate_series(0, parts - 1) AS p));
	DELETE FROM rtrec.cf_neighbors;
	INSERT INTO rtrec.swing_neighbors
		SELECT item_id, neighbor_id, score, rank FROM rtrec_swing_rebuild WHERE kind = 'swing';
	INSERT INTO rtrec.cf_neighbors
		SELECT item_id, neighbor_id, score, rank FROM rtrec_swing_rebuild WHERE kind = 'cf';
	DROP TABLE rtrec_swing_rebuild;
	PERFORM rtrec.refresh_trending();
END
$$;
