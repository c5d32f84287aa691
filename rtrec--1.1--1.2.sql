/* rtrec--1.1--1.2.sql: update script from rtrec 1.1 to 1.2 */

\echo Use "ALTER EXTENSION rtrec UPDATE TO '1.2'" to load this file. \quit

/*
 * CREATE EXTENSION rtrec runs rtrec--1.0.sql and the update scripts in turn;
 * the rules at the top of rtrec--1.0--1.1.sql apply here too.
 */

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
-- user, an item or a (user, category) on every event, and only a full page
-- makes such an update write new index entries.  Applies to pages filled
-- from now on.
ALTER TABLE rtrec.user_state SET (fillfactor = 80);
ALTER TABLE rtrec.item_state SET (fillfactor = 80);
ALTER TABLE rtrec.user_category_state SET (fillfactor = 80);

-- 1.2: user_item_state's second index is on item_id alone.  Its last_ts
-- served no reader (the users of an item are read whole, ordered by their
-- latest time over all slots), yet it changes with every repeat event of a
-- (user, item) pair, so such an update could never be HOT and wrote an entry
-- into both indexes.  Now it can, given room on the page: a user views,
-- clicks and buys the same item.  Less room than the tables above: a pair
-- repeats less often than a user or an item does, and this is the largest
-- state table.
DROP INDEX rtrec.user_item_state_item_idx;
CREATE INDEX user_item_state_item_idx ON rtrec.user_item_state (item_id);
ALTER TABLE rtrec.user_item_state SET (fillfactor = 90);

-- 1.2: cosine CF weighs twice Swing by default, and the category of the
-- user's last interaction twice as much as before (0.6), so that a change
-- of interest still shows at once (README, "Quality").  Only untouched
-- defaults change: a weight the owner set, or rtrec_train() fitted, stays.
UPDATE rtrec.model_weights SET weight = 2.0 WHERE feature = 'cf' AND weight = 1.0;
UPDATE rtrec.model_weights SET weight = 0.6 WHERE feature = 'last_category' AND weight = 0.3;
