/* rtrec--1.0.sql: install script for rtrec 1.0 */

\echo Use "CREATE EXTENSION rtrec" to load this file. \quit

/*
 * Layout
 *   rtrec.items, users, event_types, config, events   written by applications / DBAs
 *   rtrec.*_state                                      derived state, written by the
 *                                                      C triggers, one row per key and
 *                                                      writer slot (see src/ingest.c)
 *   rtrec.user_features, item_features, user_category,
 *   user_items                                         analyst views: the state merged
 *                                                      over slots
 *   rtrec.*_recomputed                                 the same state recomputed from
 *                                                      rtrec.events (rebuild, verify)
 *   @extschema@.rtrec_*                                the SQL API (default: public)
 */

CREATE SCHEMA rtrec;
COMMENT ON SCHEMA rtrec IS 'rtrec: events, catalog, settings and derived recommendation state';

-------------------------------------------------------------------------------
-- Small C helpers used by the SQL below
-------------------------------------------------------------------------------

-- log2(2^a + 2^b): adds two decayed sums kept in log2 form (NULL is the empty sum)
CREATE FUNCTION rtrec.log2_add(a double precision, b double precision)
RETURNS double precision
AS 'MODULE_PATHNAME', 'rtrec_log2_add'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE AGGREGATE rtrec.log2_sum(double precision) (
	SFUNC = rtrec.log2_add,
	STYPE = double precision,
	COMBINEFUNC = rtrec.log2_add,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE rtrec.log2_sum(double precision) IS
	'log2 of the sum of 2^x over the inputs, without overflow';

-- log2(weight * 2^(seconds since 2000-01-01 / half_life)): one event's term of a decayed sum
CREATE FUNCTION rtrec.decay_log2(weight double precision, ts timestamptz,
								 half_life_s double precision)
RETURNS double precision
AS 'MODULE_PATHNAME', 'rtrec_decay_log2'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- 2^(l - seconds(ts)/half_life): a decayed sum in log2 form read as of ts
CREATE FUNCTION rtrec.decay_value(l double precision, ts timestamptz,
								  half_life_s double precision)
RETURNS double precision
AS 'MODULE_PATHNAME', 'rtrec_decay_value'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- |a - b| <= 1e-9 * max(1, |a|, |b|); NULLs equal only to NULLs
CREATE FUNCTION rtrec.close_enough(a double precision, b double precision)
RETURNS boolean
AS 'MODULE_PATHNAME', 'rtrec_close_enough'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

-------------------------------------------------------------------------------
-- Settings
-------------------------------------------------------------------------------

CREATE TABLE rtrec.config (
	name text PRIMARY KEY,
	value double precision NOT NULL,
	description text NOT NULL,
	min_value double precision NOT NULL,
	max_value double precision NOT NULL,
	is_integer boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE rtrec.config IS
	'rtrec settings; change with UPDATE, values are validated; changes to stored state take effect after rtrec_rebuild()';

INSERT INTO rtrec.config (name, value, min_value, max_value, is_integer, description) VALUES
	('half_life_s', 86400, 1e-3, 1e12, false,
	 'half-life of trend and affinity decay, in seconds (> 0)'),
	('swing_alpha', 1, 0, 1e9, false,
	 'Swing smoothing alpha in 1/(alpha + |I_u ∩ I_v|)'),
	('swing_user_alpha', 5, 0, 1e9, false,
	 'Swing user-weight offset alpha1 in w_u = (|I_u| + alpha1)^(-beta)'),
	('swing_user_beta', 0.35, -10, 10, false,
	 'Swing user-weight exponent beta in w_u = (|I_u| + alpha1)^(-beta)'),
	('swing_max_users_per_item', 200, 2, 100000, true,
	 'cap on U_i: for each item only this many users, those whose latest interaction with it is most recent, count in Swing'),
	('swing_min_items_per_user', 1, 1, 1e9, true,
	 'users with fewer distinct items are ignored by Swing'),
	('swing_max_items_per_user', 1000, 1, 1e9, true,
	 'users with more distinct items are ignored by Swing'),
	('swing_neighbors', 100, 1, 10000, true,
	 'neighbours kept per item in rtrec.swing_neighbors and rtrec.cf_neighbors (top-k)'),
	('cf_min_common_users', 2, 1, 1000000, true,
	 'cosine CF: item pairs with fewer common users are not neighbours (1 keeps single co-occurrences, which are mostly noise on sparse data)'),
	('candidates', 1000, 1, 100000, true,
	 'candidate pool size before ranking'),
	('trigger_items', 20, 1, 1000, true,
	 'rtrec_recommend: the user''s most recent distinct items whose neighbours become candidates'),
	('trigger_decay', 0.9, 0.01, 1, false,
	 'rtrec_recommend: weight of the k-th most recent trigger item is decay^k (1 = no recency preference)'),
	('c2i_categories', 10, 0, 100, true,
	 'rtrec_recommend: the user''s top categories by affinity whose trending items become candidates'),
	('c2i_items_per_category', 100, 1, 200, true,
	 'rtrec_recommend: trending items taken from each of those categories'),
	('trending_refresh_s', 5, 0.1, 86400, false,
	 'the worker refreshes rtrec.trending_items at most this often while events arrive');

-- the ranker: score = sum of weight * feature (see README, "Ranking")
CREATE TABLE rtrec.model_weights (
	feature text PRIMARY KEY,
	weight double precision NOT NULL,
	description text NOT NULL
);
COMMENT ON TABLE rtrec.model_weights IS
	'weights of the linear ranker used by rtrec_recommend; rtrec_train() fits them, the owner may set them';
INSERT INTO rtrec.model_weights (feature, weight, description) VALUES
	('swing', 1.0, 'Swing similarity to the user''s recent items, summed with recency weights, scaled to [0, 1] by the best candidate'),
	('cf', 1.0, 'cosine co-occurrence with the user''s recent items, summed with recency weights, scaled to [0, 1]'),
	('category', 0.5, 'the user''s interest in the item''s category (0..1): half decayed affinity relative to the top category, half share of the recent trigger items'),
	('last_category', 0.3, '1 when the item is in the category of the user''s last interaction'),
	('trend', 0.0, 'the item''s trend relative to the most trending candidate (0..1); trend already shapes the c2i score'),
	('freshness', 0.0, '2^(-age / half_life_s) of the item''s first interaction, age measured to the newest event');

-------------------------------------------------------------------------------
-- What applications write
-------------------------------------------------------------------------------

CREATE TABLE rtrec.event_types (
	event_type text PRIMARY KEY,
	weight double precision NOT NULL
);
COMMENT ON TABLE rtrec.event_types IS
	'interaction types and their weights (finite, >= 0; 0 = stored but not an interaction); weight changes apply to the past after rtrec_rebuild()';
INSERT INTO rtrec.event_types VALUES
	('view', 1), ('click', 1), ('like', 2), ('cart', 3), ('purchase', 4), ('impression', 0);

CREATE TABLE rtrec.items (
	item_id bigint PRIMARY KEY,
	category_id bigint,
	price numeric CONSTRAINT items_price_valid
		CHECK (price OPERATOR(pg_catalog.>=) 0 AND price OPERATOR(pg_catalog.<>) 'NaN'::numeric),
	brand text,
	available boolean NOT NULL DEFAULT true,
	attrs jsonb,
	auto_registered boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE rtrec.items IS
	'the item catalog; an event for an unknown item registers it here with category NULL (auto_registered), and a later INSERT of that item fills the row in';
COMMENT ON COLUMN rtrec.items.auto_registered IS
	'true while the row only exists because an event named the item; an INSERT of the item then updates this row instead of failing';

CREATE TABLE rtrec.users (
	user_id bigint PRIMARY KEY,
	attrs jsonb
);
COMMENT ON TABLE rtrec.users IS 'optional user profiles';

CREATE TABLE rtrec.events (
	event_id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	user_id bigint NOT NULL,
	item_id bigint NOT NULL,
	event_type text NOT NULL,
	ts timestamptz NOT NULL DEFAULT pg_catalog.now(),
	context jsonb
);
COMMENT ON TABLE rtrec.events IS
	'the event log: INSERT or COPY; the derived state follows in the same transaction. UPDATE is rejected; after DELETE run rtrec_rebuild()';

-------------------------------------------------------------------------------
-- Derived state, written only by the triggers and rtrec_rebuild()
--
-- Every state table has a "slot" column: a writer upserts only rows of its
-- own slot (its backend number; 0 is rtrec_rebuild()'s), so two concurrent
-- transactions never wait for each other's row locks: no hot rows, no
-- deadlocks.  Readers merge the slots (the views below).  Decayed sums are
-- kept as log2(sum of weight * 2^(seconds since 2000 / half_life)), which
-- merges in any order and never overflows.
-------------------------------------------------------------------------------

CREATE TABLE rtrec.user_state (
	user_id bigint NOT NULL,
	slot integer NOT NULL,
	n_events bigint NOT NULL,
	weight_sum double precision NOT NULL,
	first_ts timestamptz NOT NULL,
	last_ts timestamptz NOT NULL,
	last_event_id bigint NOT NULL,
	last_item_id bigint NOT NULL,
	last_category_id bigint,
	PRIMARY KEY (user_id, slot)
);

CREATE TABLE rtrec.item_state (
	item_id bigint NOT NULL,
	slot integer NOT NULL,
	n_events bigint NOT NULL,
	weight_sum double precision NOT NULL,
	trend_log2 double precision NOT NULL,
	first_ts timestamptz NOT NULL,
	last_ts timestamptz NOT NULL,
	PRIMARY KEY (item_id, slot)
);

CREATE TABLE rtrec.user_category_state (
	user_id bigint NOT NULL,
	category_id bigint NOT NULL,
	slot integer NOT NULL,
	n_events bigint NOT NULL,
	weight_sum double precision NOT NULL,
	affinity_log2 double precision NOT NULL,
	last_ts timestamptz NOT NULL,
	PRIMARY KEY (user_id, category_id, slot)
);

CREATE TABLE rtrec.user_item_state (
	user_id bigint NOT NULL,
	item_id bigint NOT NULL,
	slot integer NOT NULL,
	n_events bigint NOT NULL,
	weight_sum double precision NOT NULL,
	affinity_log2 double precision NOT NULL,
	first_ts timestamptz NOT NULL,
	last_ts timestamptz NOT NULL,
	PRIMARY KEY (user_id, item_id, slot)
);
CREATE INDEX user_item_state_item_idx ON rtrec.user_item_state (item_id, last_ts);

COMMENT ON TABLE rtrec.user_state IS 'per-user state, one row per writer slot; read rtrec.user_features';
COMMENT ON TABLE rtrec.item_state IS 'per-item state, one row per writer slot; read rtrec.item_features';
COMMENT ON TABLE rtrec.user_category_state IS 'per-(user, category) state, one row per writer slot; read rtrec.user_category';
COMMENT ON TABLE rtrec.user_item_state IS 'per-(user, item) interaction state (U_i and I_u of Swing), one row per writer slot; read rtrec.user_items';

-------------------------------------------------------------------------------
-- Swing state
-------------------------------------------------------------------------------

-- (user, item) pairs of recent events, waiting for the Swing refresher; rows
-- are appended by the ingest trigger and deleted when their lists are rewritten
CREATE TABLE rtrec.swing_queue (
	item_id bigint NOT NULL,
	user_id bigint NOT NULL,
	new_pair boolean NOT NULL,
	queued_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE rtrec.swing_queue IS
	'events whose Swing neighbour lists are not yet refreshed (drained within about a second by the refresh worker)';

-- items whose registration an event left to a concurrent transaction; if
-- that one rolls back, the refresher registers them (rare)
CREATE TABLE rtrec.pending_items (
	item_id bigint NOT NULL
);
COMMENT ON TABLE rtrec.pending_items IS
	'items named by events while another transaction was registering them; the refresh worker makes sure they are in rtrec.items';

CREATE TABLE rtrec.swing_neighbors (
	item_id bigint NOT NULL,
	neighbor_id bigint NOT NULL,
	score double precision NOT NULL,
	rank integer NOT NULL,
	PRIMARY KEY (item_id, neighbor_id)
);
COMMENT ON TABLE rtrec.swing_neighbors IS
	'Swing i2i similarity s(item_id, neighbor_id): the top swing_neighbors per item, rank 1 = most similar';

CREATE TABLE rtrec.cf_neighbors (
	item_id bigint NOT NULL,
	neighbor_id bigint NOT NULL,
	score double precision NOT NULL,
	rank integer NOT NULL,
	PRIMARY KEY (item_id, neighbor_id)
);
COMMENT ON TABLE rtrec.cf_neighbors IS
	'cosine item-CF co(i, j) / sqrt(|U_i| |U_j|) over the same capped users as Swing: top swing_neighbors per item; refreshed with the Swing lists';

-- trending cache: top items per category (and overall, category_id NULL) by
-- trend; refreshed by the worker every few seconds while events arrive
CREATE TABLE rtrec.trending_items (
	category_id bigint,
	item_id bigint NOT NULL,
	trend_log2 double precision NOT NULL,
	rank integer NOT NULL
);
CREATE INDEX trending_items_category_idx ON rtrec.trending_items (category_id, rank);
COMMENT ON TABLE rtrec.trending_items IS
	'cache of the most trending items per category (category_id NULL: all categories), available or not (readers filter); refreshed within trending_refresh_s while events arrive';

CREATE FUNCTION rtrec.swing_compute(item_id bigint, n integer)
RETURNS TABLE (neighbor_id bigint, score double precision)
AS 'MODULE_PATHNAME', 'rtrec_swing_compute'
LANGUAGE C STABLE STRICT PARALLEL SAFE COST 10000 ROWS 100;
COMMENT ON FUNCTION rtrec.swing_compute(bigint, integer) IS
	'the exact Swing neighbours of an item from the current interaction state, best first (n = 0: all)';

CREATE FUNCTION rtrec.neighbors_compute_part(part integer, parts integer, n integer)
RETURNS TABLE (item_id bigint, kind text, neighbor_id bigint, score double precision, rank integer)
AS 'MODULE_PATHNAME', 'rtrec_neighbors_compute_part'
LANGUAGE C STABLE STRICT PARALLEL SAFE COST 1000000 ROWS 100000;
COMMENT ON FUNCTION rtrec.neighbors_compute_part(integer, integer, integer) IS
	'exact top-n Swing (kind swing) and cosine (kind cf) lists of every part-th item (of parts) from one in-memory pass; used by rtrec_rebuild and rtrec_verify';

-- rewrites the trending cache from the item state
CREATE FUNCTION rtrec.refresh_trending() RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
	DELETE FROM rtrec.trending_items;
	WITH t AS (
		SELECT s.item_id, i.category_id, rtrec.log2_sum(s.trend_log2) AS l
		  FROM rtrec.item_state s
		  JOIN rtrec.items i ON i.item_id = s.item_id
		 GROUP BY s.item_id, i.category_id
	), ranked AS (
		SELECT category_id, item_id, l,
			   row_number() OVER (PARTITION BY category_id ORDER BY l DESC, item_id) AS r
		  FROM t WHERE category_id IS NOT NULL
	), overall AS (
		SELECT NULL::bigint AS category_id, item_id, l,
			   row_number() OVER (ORDER BY l DESC, item_id) AS r
		  FROM t
	)
	INSERT INTO rtrec.trending_items (category_id, item_id, trend_log2, rank)
	SELECT category_id, item_id, l, r FROM ranked WHERE r <= 200
	UNION ALL
	SELECT category_id, item_id, l, r FROM overall WHERE r <= 1000;
$$;

-- items whose stored lists may be stale: events of theirs wait in the queue,
-- or a queued new pair changed |I_u| of one of their users
CREATE VIEW rtrec.swing_pending_items AS
SELECT q.item_id FROM rtrec.swing_queue q
UNION
SELECT s.item_id FROM rtrec.swing_queue q
JOIN rtrec.user_item_state s ON s.user_id OPERATOR(pg_catalog.=) q.user_id
WHERE q.new_pair;
COMMENT ON VIEW rtrec.swing_pending_items IS
	'items whose Swing lists wait for the refresh worker (normally empty within a second of the last event)';

-------------------------------------------------------------------------------
-- Analyst views: the state merged over slots
-------------------------------------------------------------------------------

-- the half-life as a one-row relation, joined once per query (a function
-- call per row would cost more than the rest of the view)
CREATE VIEW rtrec.decay AS
SELECT value AS half_life_s FROM rtrec.config WHERE name OPERATOR(pg_catalog.=) 'half_life_s';

CREATE VIEW rtrec.user_items AS
SELECT user_id, item_id,
	pg_catalog.sum(n_events)::bigint AS n_events,
	pg_catalog.sum(weight_sum) AS weight_sum,
	rtrec.log2_sum(affinity_log2) AS affinity_log2,
	pg_catalog.min(first_ts) AS first_ts,
	pg_catalog.max(last_ts) AS last_ts
FROM rtrec.user_item_state
GROUP BY user_id, item_id;
COMMENT ON VIEW rtrec.user_items IS
	'distinct (user, item) interactions (weight > 0): counts, weights, first and last time';

CREATE VIEW rtrec.user_features AS
SELECT s.user_id, s.n_events, s.weight_sum, s.first_ts, s.last_ts,
	s.last_item_id, s.last_category_id, s.last_event_id,
	(SELECT pg_catalog.count(DISTINCT ui.item_id) FROM rtrec.user_item_state ui
	  WHERE ui.user_id OPERATOR(pg_catalog.=) s.user_id) AS n_items
FROM (
	SELECT user_id,
		pg_catalog.sum(n_events)::bigint AS n_events,
		pg_catalog.sum(weight_sum) AS weight_sum,
		pg_catalog.min(first_ts) AS first_ts,
		pg_catalog.max(last_ts) AS last_ts,
		(pg_catalog.array_agg(last_item_id ORDER BY last_ts DESC, last_event_id DESC))[1] AS last_item_id,
		(pg_catalog.array_agg(last_category_id ORDER BY last_ts DESC, last_event_id DESC))[1] AS last_category_id,
		(pg_catalog.array_agg(last_event_id ORDER BY last_ts DESC, last_event_id DESC))[1] AS last_event_id
	FROM rtrec.user_state
	GROUP BY user_id
) s;
COMMENT ON VIEW rtrec.user_features IS
	'per-user features over interactions (weight > 0): counts, first/last time, last item and its category, distinct items';

CREATE VIEW rtrec.item_features AS
SELECT s.item_id, s.n_events,
	(SELECT pg_catalog.count(DISTINCT ui.user_id) FROM rtrec.user_item_state ui
	  WHERE ui.item_id OPERATOR(pg_catalog.=) s.item_id) AS n_users,
	rtrec.decay_value(s.trend_log2, s.last_ts, d.half_life_s) AS trend,
	s.last_ts, s.first_ts, s.weight_sum, s.trend_log2
FROM rtrec.decay d, (
	SELECT item_id,
		pg_catalog.sum(n_events)::bigint AS n_events,
		pg_catalog.sum(weight_sum) AS weight_sum,
		rtrec.log2_sum(trend_log2) AS trend_log2,
		pg_catalog.min(first_ts) AS first_ts,
		pg_catalog.max(last_ts) AS last_ts
	FROM rtrec.item_state
	GROUP BY item_id
) s;
COMMENT ON VIEW rtrec.item_features IS
	'per-item features over interactions (weight > 0): counts, distinct users, trend (event-weighted, decayed with half_life_s, as of last_ts)';

CREATE VIEW rtrec.user_category AS
SELECT s.user_id, s.category_id,
	rtrec.decay_value(s.affinity_log2, s.last_ts, d.half_life_s) AS affinity,
	s.n_events, s.last_ts, s.weight_sum, s.affinity_log2
FROM rtrec.decay d, (
	SELECT user_id, category_id,
		pg_catalog.sum(n_events)::bigint AS n_events,
		pg_catalog.sum(weight_sum) AS weight_sum,
		rtrec.log2_sum(affinity_log2) AS affinity_log2,
		pg_catalog.max(last_ts) AS last_ts
	FROM rtrec.user_category_state
	GROUP BY user_id, category_id
) s;
COMMENT ON VIEW rtrec.user_category IS
	'per-(user, category) affinity: event-weighted, decayed with half_life_s, as of last_ts; category as at insert time';

COMMENT ON COLUMN rtrec.item_features.trend_log2 IS
	'internal form of trend: log2(sum of weight * 2^(seconds since 2000-01-01 / half_life_s)); ranks items like trend at any common time';
COMMENT ON COLUMN rtrec.user_category.affinity_log2 IS
	'internal form of affinity: log2(sum of weight * 2^(seconds since 2000-01-01 / half_life_s))';

-------------------------------------------------------------------------------
-- The same state recomputed from rtrec.events (rtrec_rebuild, rtrec_verify)
-------------------------------------------------------------------------------

CREATE VIEW rtrec.interactions AS
SELECT e.event_id, e.user_id, e.item_id, e.ts, t.weight, i.category_id,
	rtrec.decay_log2(t.weight, e.ts, d.half_life_s) AS decay_log2
FROM rtrec.decay d, rtrec.events e
JOIN rtrec.event_types t ON t.event_type OPERATOR(pg_catalog.=) e.event_type
LEFT JOIN rtrec.items i ON i.item_id OPERATOR(pg_catalog.=) e.item_id
WHERE t.weight OPERATOR(pg_catalog.>) 0;
COMMENT ON VIEW rtrec.interactions IS
	'events that count as interactions (weight > 0), with weight and the item''s current category';

CREATE VIEW rtrec.user_state_recomputed AS
SELECT user_id,
	pg_catalog.count(*) AS n_events,
	pg_catalog.sum(weight) AS weight_sum,
	pg_catalog.min(ts) AS first_ts,
	pg_catalog.max(ts) AS last_ts,
	(pg_catalog.array_agg(event_id ORDER BY ts DESC, event_id DESC))[1] AS last_event_id,
	(pg_catalog.array_agg(item_id ORDER BY ts DESC, event_id DESC))[1] AS last_item_id,
	(pg_catalog.array_agg(category_id ORDER BY ts DESC, event_id DESC))[1] AS last_category_id
FROM rtrec.interactions
GROUP BY user_id;

CREATE VIEW rtrec.item_state_recomputed AS
SELECT item_id,
	pg_catalog.count(*) AS n_events,
	pg_catalog.sum(weight) AS weight_sum,
	rtrec.log2_sum(decay_log2) AS trend_log2,
	pg_catalog.min(ts) AS first_ts,
	pg_catalog.max(ts) AS last_ts
FROM rtrec.interactions
GROUP BY item_id;

CREATE VIEW rtrec.user_category_state_recomputed AS
SELECT user_id, category_id,
	pg_catalog.count(*) AS n_events,
	pg_catalog.sum(weight) AS weight_sum,
	rtrec.log2_sum(decay_log2) AS affinity_log2,
	pg_catalog.max(ts) AS last_ts
FROM rtrec.interactions
WHERE category_id IS NOT NULL
GROUP BY user_id, category_id;

CREATE VIEW rtrec.user_item_state_recomputed AS
SELECT user_id, item_id,
	pg_catalog.count(*) AS n_events,
	pg_catalog.sum(weight) AS weight_sum,
	rtrec.log2_sum(decay_log2) AS affinity_log2,
	pg_catalog.min(ts) AS first_ts,
	pg_catalog.max(ts) AS last_ts
FROM rtrec.interactions
GROUP BY user_id, item_id;

-------------------------------------------------------------------------------
-- Triggers
-------------------------------------------------------------------------------

-- BEFORE INSERT row check: NULL ids, unknown event types, non-finite times
CREATE FUNCTION rtrec.events_check() RETURNS trigger
AS 'MODULE_PATHNAME', 'rtrec_events_check'
LANGUAGE C;

-- AFTER INSERT statement trigger: applies the whole batch to the state tables
CREATE FUNCTION rtrec.events_apply() RETURNS trigger
AS 'MODULE_PATHNAME', 'rtrec_events_apply'
LANGUAGE C SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- rtrec's kept plans are generic and look keys up; planned while a table is
-- still empty they would otherwise scan it whole for ever (quadratic in a
-- bulk load that fills it)
SET enable_seqscan = off
-- disabling scans inflates cost estimates; never let that trigger JIT
SET jit = off;

-- rejects UPDATE of rtrec.events
CREATE FUNCTION rtrec.events_reject_update() RETURNS trigger
AS 'MODULE_PATHNAME', 'rtrec_events_reject_update'
LANGUAGE C;

-- TRUNCATE of rtrec.events empties the derived state as well
CREATE FUNCTION rtrec.events_truncate() RETURNS trigger
AS 'MODULE_PATHNAME', 'rtrec_events_truncate'
LANGUAGE C SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- tells every backend to reload its cached settings and event weights
CREATE FUNCTION rtrec.settings_changed() RETURNS trigger
AS 'MODULE_PATHNAME', 'rtrec_settings_changed'
LANGUAGE C;

CREATE TRIGGER events_check BEFORE INSERT ON rtrec.events
	FOR EACH ROW EXECUTE FUNCTION rtrec.events_check();
CREATE TRIGGER events_apply AFTER INSERT ON rtrec.events
	REFERENCING NEW TABLE AS new_events
	FOR EACH STATEMENT EXECUTE FUNCTION rtrec.events_apply();
CREATE TRIGGER events_reject_update BEFORE UPDATE ON rtrec.events
	FOR EACH STATEMENT EXECUTE FUNCTION rtrec.events_reject_update();
CREATE TRIGGER events_truncate AFTER TRUNCATE ON rtrec.events
	FOR EACH STATEMENT EXECUTE FUNCTION rtrec.events_truncate();

-- validation of settings and weights (cold path, so plpgsql)
CREATE FUNCTION rtrec.config_validate() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	lim record;
BEGIN
	IF TG_OP = 'DELETE' THEN
		RAISE EXCEPTION 'setting "%" cannot be deleted', OLD.name
			USING ERRCODE = 'object_in_use',
				  HINT = 'Set it back to its default with UPDATE instead.';
	END IF;
	IF TG_OP = 'INSERT' THEN
		-- an INSERT of a known setting (pg_restore does that) sets its value
		IF EXISTS (SELECT 1 FROM rtrec.config c WHERE c.name = NEW.name) THEN
			UPDATE rtrec.config c SET value = NEW.value, description = NEW.description
			 WHERE c.name = NEW.name;
			RETURN NULL;
		END IF;
		RAISE EXCEPTION 'unknown setting "%"', NEW.name
			USING ERRCODE = 'undefined_object',
				  HINT = 'rtrec.config lists every setting; change one with UPDATE.';
	END IF;
	IF NEW.name IS DISTINCT FROM OLD.name
		OR NEW.min_value IS DISTINCT FROM OLD.min_value
		OR NEW.max_value IS DISTINCT FROM OLD.max_value
		OR NEW.is_integer IS DISTINCT FROM OLD.is_integer THEN
		RAISE EXCEPTION 'only the value and description of setting "%" can be changed', OLD.name
			USING ERRCODE = 'feature_not_supported',
				  HINT = 'Update the value column only.';
	END IF;
	IF NEW.value IS NULL OR NEW.value IN ('NaN', 'Infinity', '-Infinity')
		OR NEW.value < OLD.min_value OR NEW.value > OLD.max_value
		OR (OLD.is_integer AND NEW.value <> trunc(NEW.value)) THEN
		RAISE EXCEPTION 'invalid value % for setting "%"', coalesce(NEW.value::text, 'NULL'), NEW.name
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('"%s" takes %s from %s to %s.', NEW.name,
								  CASE WHEN OLD.is_integer THEN 'a whole number' ELSE 'a number' END,
								  OLD.min_value, OLD.max_value),
				  HINT = 'rtrec.config.description explains each setting.';
	END IF;
	IF NEW.name IN ('swing_min_items_per_user', 'swing_max_items_per_user') THEN
		IF (SELECT CASE WHEN NEW.name = 'swing_min_items_per_user'
						THEN NEW.value > c.value ELSE NEW.value < c.value END
			  FROM rtrec.config c
			 WHERE c.name = CASE WHEN NEW.name = 'swing_min_items_per_user'
								 THEN 'swing_max_items_per_user' ELSE 'swing_min_items_per_user' END) THEN
			RAISE EXCEPTION 'invalid value % for setting "%"', NEW.value, NEW.name
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = 'swing_min_items_per_user must not exceed swing_max_items_per_user.',
					  HINT = 'Change the other bound first.';
		END IF;
	END IF;
	RETURN NEW;
END
$$;

CREATE FUNCTION rtrec.event_types_validate() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF TG_OP IN ('UPDATE', 'DELETE') AND (TG_OP = 'DELETE' OR NEW.event_type IS DISTINCT FROM OLD.event_type)
		AND EXISTS (SELECT 1 FROM rtrec.events e WHERE e.event_type = OLD.event_type) THEN
		RAISE EXCEPTION 'event type "%" is in use by rtrec.events', OLD.event_type
			USING ERRCODE = 'foreign_key_violation',
				  HINT = 'Delete its events first, or change only its weight.';
	END IF;
	IF TG_OP = 'DELETE' THEN
		RETURN OLD;
	END IF;
	IF NEW.event_type IS NULL OR NEW.event_type = '' THEN
		RAISE EXCEPTION 'event type name must not be empty or NULL'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give the event type a name such as ''view''.';
	END IF;
	IF NEW.weight IS NULL OR NEW.weight IN ('NaN', 'Infinity', '-Infinity') OR NEW.weight < 0
		OR NEW.weight > 1e6 THEN
		RAISE EXCEPTION 'invalid weight % for event type "%"', coalesce(NEW.weight::text, 'NULL'), NEW.event_type
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Weights must be between 0 and 1e6 (sums of them must stay finite); 0 stores events without counting them.';
	END IF;
	IF TG_OP = 'INSERT' AND EXISTS (SELECT 1 FROM rtrec.event_types t WHERE t.event_type = NEW.event_type) THEN
		-- an INSERT of a known type (pg_restore does that) sets its weight
		UPDATE rtrec.event_types t SET weight = NEW.weight WHERE t.event_type = NEW.event_type;
		RETURN NULL;
	END IF;
	RETURN NEW;
END
$$;

-- an INSERT of an item that an event registered fills in the registered row
CREATE FUNCTION rtrec.items_fill_registered() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NEW.auto_registered THEN
		-- a registration (or the restore of one): nothing to do if the item is there
		IF EXISTS (SELECT 1 FROM rtrec.items i WHERE i.item_id = NEW.item_id) THEN
			RETURN NULL;
		END IF;
		RETURN NEW;
	END IF;
	UPDATE rtrec.items i
	   SET category_id = NEW.category_id, price = NEW.price, brand = NEW.brand,
		   available = NEW.available, attrs = NEW.attrs, auto_registered = false
	 WHERE i.item_id = NEW.item_id AND i.auto_registered;
	IF FOUND THEN
		RETURN NULL;
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER items_fill_registered BEFORE INSERT ON rtrec.items
	FOR EACH ROW EXECUTE FUNCTION rtrec.items_fill_registered();

-- settings, weights and event types are edited row by row, never emptied
CREATE FUNCTION rtrec.reject_truncate() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RAISE EXCEPTION 'rtrec.% cannot be truncated', TG_TABLE_NAME
		USING ERRCODE = 'object_in_use',
			  HINT = 'Change rows with UPDATE; every row is needed by rtrec.';
END
$$;
CREATE TRIGGER config_reject_truncate BEFORE TRUNCATE ON rtrec.config
	FOR EACH STATEMENT EXECUTE FUNCTION rtrec.reject_truncate();
CREATE TRIGGER event_types_reject_truncate BEFORE TRUNCATE ON rtrec.event_types
	FOR EACH STATEMENT EXECUTE FUNCTION rtrec.reject_truncate();
CREATE TRIGGER model_weights_reject_truncate BEFORE TRUNCATE ON rtrec.model_weights
	FOR EACH STATEMENT EXECUTE FUNCTION rtrec.reject_truncate();

CREATE TRIGGER config_validate BEFORE INSERT OR UPDATE OR DELETE ON rtrec.config
	FOR EACH ROW EXECUTE FUNCTION rtrec.config_validate();
CREATE TRIGGER config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON rtrec.config
	FOR EACH STATEMENT EXECUTE FUNCTION rtrec.settings_changed();
CREATE FUNCTION rtrec.model_weights_validate() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF TG_OP = 'DELETE' THEN
		RAISE EXCEPTION 'ranker feature "%" cannot be deleted', OLD.feature
			USING ERRCODE = 'object_in_use', HINT = 'Set its weight to 0 to switch it off.';
	END IF;
	IF TG_OP = 'INSERT' AND EXISTS (SELECT 1 FROM rtrec.model_weights m WHERE m.feature = NEW.feature) THEN
		-- an INSERT of a known feature (pg_restore does that) sets its weight
		UPDATE rtrec.model_weights m SET weight = NEW.weight, description = NEW.description
		 WHERE m.feature = NEW.feature;
		RETURN NULL;
	END IF;
	IF TG_OP = 'INSERT' OR NEW.feature IS DISTINCT FROM OLD.feature THEN
		RAISE EXCEPTION 'unknown ranker feature "%"', NEW.feature
			USING ERRCODE = 'undefined_object', HINT = 'rtrec.model_weights lists every feature; change weights with UPDATE.';
	END IF;
	IF NEW.weight IS NULL OR NEW.weight IN ('NaN', 'Infinity', '-Infinity') OR abs(NEW.weight) > 1e6 THEN
		RAISE EXCEPTION 'invalid weight % for ranker feature "%"', coalesce(NEW.weight::text, 'NULL'), NEW.feature
			USING ERRCODE = 'invalid_parameter_value', HINT = 'Weights must be finite numbers between -1e6 and 1e6.';
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER model_weights_validate BEFORE INSERT OR UPDATE OR DELETE ON rtrec.model_weights
	FOR EACH ROW EXECUTE FUNCTION rtrec.model_weights_validate();
CREATE TRIGGER model_weights_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON rtrec.model_weights
	FOR EACH STATEMENT EXECUTE FUNCTION rtrec.settings_changed();
CREATE TRIGGER event_types_validate BEFORE INSERT OR UPDATE OR DELETE ON rtrec.event_types
	FOR EACH ROW EXECUTE FUNCTION rtrec.event_types_validate();
CREATE TRIGGER event_types_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON rtrec.event_types
	FOR EACH STATEMENT EXECUTE FUNCTION rtrec.settings_changed();

-------------------------------------------------------------------------------
-- Rebuild and verify
-------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.rtrec_rebuild() RETURNS void
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
	DELETE FROM rtrec.user_category_state;
	DELETE FROM rtrec.user_item_state;
	INSERT INTO rtrec.user_state
		SELECT user_id, 0, n_events, weight_sum, first_ts, last_ts, last_event_id,
			   last_item_id, last_category_id
		  FROM rtrec.user_state_recomputed;
	INSERT INTO rtrec.item_state
		SELECT item_id, 0, n_events, weight_sum, trend_log2, first_ts, last_ts
		  FROM rtrec.item_state_recomputed;
	INSERT INTO rtrec.user_category_state
		SELECT user_id, category_id, 0, n_events, weight_sum, affinity_log2, last_ts
		  FROM rtrec.user_category_state_recomputed;
	INSERT INTO rtrec.user_item_state
		SELECT user_id, item_id, 0, n_events, weight_sum, affinity_log2, first_ts, last_ts
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
COMMENT ON FUNCTION @extschema@.rtrec_rebuild() IS
	'recompute every derived table from rtrec.events (blocks new events while it runs)';

CREATE FUNCTION @extschema@.rtrec_verify()
RETURNS TABLE (relation text, key text, stored text, expected text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT 'user_features', coalesce(s.user_id, r.user_id)::text,
		   CASE WHEN s.user_id IS NOT NULL THEN
			   ROW(s.n_events, s.weight_sum, s.first_ts, s.last_ts, s.last_event_id, s.last_item_id, s.last_category_id)::text END,
		   CASE WHEN r.user_id IS NOT NULL THEN
			   ROW(r.n_events, r.weight_sum, r.first_ts, r.last_ts, r.last_event_id, r.last_item_id, r.last_category_id)::text END
	  FROM rtrec.user_features s
	  FULL JOIN rtrec.user_state_recomputed r ON r.user_id = s.user_id
	 WHERE s.user_id IS NULL OR r.user_id IS NULL
		OR s.n_events <> r.n_events OR NOT rtrec.close_enough(s.weight_sum, r.weight_sum)
		OR s.first_ts <> r.first_ts OR s.last_ts <> r.last_ts
		OR s.last_event_id <> r.last_event_id OR s.last_item_id <> r.last_item_id
		OR s.last_category_id IS DISTINCT FROM r.last_category_id
	UNION ALL
	SELECT 'item_features', coalesce(s.item_id, r.item_id)::text,
		   CASE WHEN s.item_id IS NOT NULL THEN
			   ROW(s.n_events, s.weight_sum, s.trend_log2, s.first_ts, s.last_ts)::text END,
		   CASE WHEN r.item_id IS NOT NULL THEN
			   ROW(r.n_events, r.weight_sum, r.trend_log2, r.first_ts, r.last_ts)::text END
	  FROM rtrec.item_features s
	  FULL JOIN rtrec.item_state_recomputed r ON r.item_id = s.item_id
	 WHERE s.item_id IS NULL OR r.item_id IS NULL
		OR s.n_events <> r.n_events OR NOT rtrec.close_enough(s.weight_sum, r.weight_sum)
		OR NOT rtrec.close_enough(s.trend_log2, r.trend_log2)
		OR s.first_ts <> r.first_ts OR s.last_ts <> r.last_ts
	UNION ALL
	SELECT 'user_category', coalesce(s.user_id, r.user_id)::text || ',' || coalesce(s.category_id, r.category_id)::text,
		   CASE WHEN s.user_id IS NOT NULL THEN
			   ROW(s.n_events, s.weight_sum, s.affinity_log2, s.last_ts)::text END,
		   CASE WHEN r.user_id IS NOT NULL THEN
			   ROW(r.n_events, r.weight_sum, r.affinity_log2, r.last_ts)::text END
	  FROM rtrec.user_category s
	  FULL JOIN rtrec.user_category_state_recomputed r
		ON r.user_id = s.user_id AND r.category_id = s.category_id
	 WHERE s.user_id IS NULL OR r.user_id IS NULL
		OR s.n_events <> r.n_events OR NOT rtrec.close_enough(s.weight_sum, r.weight_sum)
		OR NOT rtrec.close_enough(s.affinity_log2, r.affinity_log2) OR s.last_ts <> r.last_ts
	UNION ALL
	SELECT 'user_items', coalesce(s.user_id, r.user_id)::text || ',' || coalesce(s.item_id, r.item_id)::text,
		   CASE WHEN s.user_id IS NOT NULL THEN
			   ROW(s.n_events, s.weight_sum, s.affinity_log2, s.first_ts, s.last_ts)::text END,
		   CASE WHEN r.user_id IS NOT NULL THEN
			   ROW(r.n_events, r.weight_sum, r.affinity_log2, r.first_ts, r.last_ts)::text END
	  FROM rtrec.user_items s
	  FULL JOIN rtrec.user_item_state_recomputed r
		ON r.user_id = s.user_id AND r.item_id = s.item_id
	 WHERE s.user_id IS NULL OR r.user_id IS NULL
		OR s.n_events <> r.n_events OR NOT rtrec.close_enough(s.weight_sum, r.weight_sum)
		OR NOT rtrec.close_enough(s.affinity_log2, r.affinity_log2)
		OR s.first_ts <> r.first_ts OR s.last_ts <> r.last_ts
	UNION ALL
	SELECT 'swing_neighbors', coalesce(s.item_id, r.item_id)::text || ',' || coalesce(s.neighbor_id, r.neighbor_id)::text,
		   s.score::text || ' (rank ' || s.rank || ')', r.score::text || ' (rank ' || r.rank || ')'
	  FROM (SELECT n.* FROM rtrec.swing_neighbors n
			 WHERE n.item_id NOT IN (SELECT p.item_id FROM rtrec.swing_pending_items p)) s
	  FULL JOIN (
		SELECT c.item_id, c.neighbor_id, c.score, c.rank
		  FROM rtrec.neighbors_compute_part(0, 1,
				(SELECT value::integer FROM rtrec.config WHERE name = 'swing_neighbors')) c
		 WHERE c.kind = 'swing' AND c.item_id NOT IN (SELECT p.item_id FROM rtrec.swing_pending_items p)
	  ) r ON r.item_id = s.item_id AND r.neighbor_id = s.neighbor_id
	 WHERE s.item_id IS NULL OR r.item_id IS NULL
		OR NOT rtrec.close_enough(s.score, r.score) OR s.rank <> r.rank
	UNION ALL
	SELECT DISTINCT 'items', e.item_id::text, NULL::text, 'registered'
	  FROM rtrec.events e
	 WHERE NOT EXISTS (SELECT 1 FROM rtrec.items i WHERE i.item_id = e.item_id)
	   AND NOT EXISTS (SELECT 1 FROM rtrec.pending_items p WHERE p.item_id = e.item_id)
	ORDER BY 1, 2
$$;
COMMENT ON FUNCTION @extschema@.rtrec_verify() IS
	'every difference between the stored derived state and a recomputation from rtrec.events; no rows = consistent';

-------------------------------------------------------------------------------
-- Swing API
-------------------------------------------------------------------------------

-- argument checks shared by the API functions
CREATE FUNCTION rtrec.check_n(fname text, n integer, max_n integer) RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF n IS NULL OR n < 1 OR n > max_n THEN
		RAISE EXCEPTION 'invalid n % for %()', coalesce(n::text, 'NULL'), fname
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = format('n must be between 1 and %s.', max_n);
	END IF;
END
$$;

CREATE FUNCTION rtrec.check_id(fname text, argname text, id bigint) RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF id IS NULL THEN
		RAISE EXCEPTION '% must not be NULL in %()', argname, fname
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = format('Pass the %s to look up.', argname);
	END IF;
END
$$;

CREATE FUNCTION rtrec.similar(p_item bigint, p_n integer)
RETURNS TABLE (neighbor_id bigint, score double precision)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
-- disabling scans inflates cost estimates; never let that trigger JIT
SET jit = off
AS $$
BEGIN
	PERFORM rtrec.check_id('rtrec_similar', 'item_id', p_item);
	PERFORM rtrec.check_n('rtrec_similar', p_n, 10000);
	-- the stored top-k is exact unless events of this item still wait in the
	-- queue, or more than the stored k are asked for: then compute it now
	IF p_n > (SELECT c.value FROM rtrec.config c WHERE c.name = 'swing_neighbors')
		OR EXISTS (SELECT 1 FROM rtrec.swing_pending_items p WHERE p.item_id = p_item) THEN
		RETURN QUERY SELECT c.neighbor_id, c.score FROM rtrec.swing_compute(p_item, p_n) c;
	ELSE
		RETURN QUERY SELECT s.neighbor_id, s.score FROM rtrec.swing_neighbors s
					  WHERE s.item_id = p_item ORDER BY s.rank LIMIT p_n;
	END IF;
END
$$;

CREATE FUNCTION @extschema@.rtrec_similar(item_id bigint, n integer DEFAULT 20)
RETURNS TABLE (item_id bigint, score double precision)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT s.neighbor_id, s.score FROM rtrec.similar($1, $2) s $$;
COMMENT ON FUNCTION @extschema@.rtrec_similar(bigint, integer) IS
	'Swing i2i neighbours of an item, best first (exact; fresh within about a second of a commit)';

CREATE FUNCTION @extschema@.rtrec_swing_refresh() RETURNS bigint
AS 'MODULE_PATHNAME', 'rtrec_swing_refresh'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
-- disabling scans inflates cost estimates; never let that trigger JIT
SET jit = off;
COMMENT ON FUNCTION @extschema@.rtrec_swing_refresh() IS
	'refresh every pending Swing neighbour list now (the background worker does this within about a second); returns lists rewritten';

-------------------------------------------------------------------------------
-- Recommendations
-------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.rtrec_recommend(user_id bigint, n integer DEFAULT 20,
											category_id bigint DEFAULT NULL,
											exclude_seen boolean DEFAULT true)
RETURNS TABLE (item_id bigint, score double precision, reason text)
AS 'MODULE_PATHNAME', 'rtrec_recommend'
LANGUAGE C STABLE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- its queries look up ~1000 keys by index; a generic plan may otherwise
-- prefer scanning a small catalog whole, which costs more under load
SET enable_seqscan = off
-- disabling scans inflates cost estimates; never let that trigger JIT
SET jit = off;
COMMENT ON FUNCTION @extschema@.rtrec_recommend(bigint, integer, bigint, boolean) IS
	'the n best items for a user right now, ranked; reason says why (swing:<item>, cf:<item>, c2i:<category>, trending)';

CREATE FUNCTION @extschema@.rtrec_candidates(user_id bigint, n integer DEFAULT 1000)
RETURNS TABLE (item_id bigint, source text, score double precision)
AS 'MODULE_PATHNAME', 'rtrec_candidates'
LANGUAGE C STABLE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
-- disabling scans inflates cost estimates; never let that trigger JIT
SET jit = off;
COMMENT ON FUNCTION @extschema@.rtrec_candidates(bigint, integer) IS
	'the candidate pool of a user before ranking: each item with its strongest source (swing, cf, c2i, trending) and that source''s score';

CREATE FUNCTION rtrec.trending(p_category bigint, p_n integer)
RETURNS TABLE (item_id bigint, score double precision)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	ref_ts timestamptz := (SELECT max(s.last_ts) FROM rtrec.item_state s);
BEGIN
	PERFORM rtrec.check_n('rtrec_trending', p_n, 10000);
	-- trend of every item decayed to one reference time, the newest event
	RETURN QUERY
	SELECT t.item_id, rtrec.decay_value(t.trend_log2, ref_ts, d.half_life_s)
	  FROM rtrec.trending_items t
	  JOIN rtrec.items i ON i.item_id = t.item_id AND i.available, rtrec.decay d
	 WHERE t.category_id IS NOT DISTINCT FROM p_category
	 ORDER BY t.rank
	 LIMIT p_n;
END
$$;

CREATE FUNCTION @extschema@.rtrec_trending(category_id bigint DEFAULT NULL, n integer DEFAULT 20)
RETURNS TABLE (item_id bigint, score double precision)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT t.item_id, t.score FROM rtrec.trending($1, $2) t $$;
COMMENT ON FUNCTION @extschema@.rtrec_trending(bigint, integer) IS
	'the most trending available items (of a category, or of all), trend decayed to the newest event time; from a cache at most trending_refresh_s old (200 per category, 1000 overall)';

-------------------------------------------------------------------------------
-- Monitoring
-------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.rtrec_stats()
RETURNS TABLE (metric text, value double precision, description text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT 'events_estimate', greatest(c.reltuples, 0)::float8, 'rows in rtrec.events (planner estimate, cheap)'
	  FROM pg_class c WHERE c.oid = 'rtrec.events'::regclass
	UNION ALL
	SELECT 'users', (SELECT count(DISTINCT user_id) FROM rtrec.user_state)::float8, 'users with interactions'
	UNION ALL
	SELECT 'items', (SELECT count(DISTINCT item_id) FROM rtrec.item_state)::float8, 'items with interactions'
	UNION ALL
	SELECT 'catalog_items', (SELECT count(*) FROM rtrec.items)::float8, 'rows in rtrec.items'
	UNION ALL
	SELECT 'swing_queue', (SELECT count(*) FROM rtrec.swing_queue)::float8,
		   'events whose neighbour lists wait for the refresh worker'
	UNION ALL
	SELECT 'swing_queue_age_s',
		   coalesce(extract(epoch FROM now() - (SELECT min(queued_at) FROM rtrec.swing_queue)), 0)::float8,
		   'age of the oldest queued event, seconds (staleness bound of stored lists)'
	UNION ALL
	SELECT 'worker_running',
		   (SELECT count(*) FROM pg_stat_activity
			 WHERE backend_type = 'rtrec swing refresher' AND datname = current_database())::float8,
		   '1 while this database''s refresh worker runs (it exits after 3 s idle)'
	UNION ALL
	SELECT 'state_rows_per_key',
		   (SELECT count(*)::float8 / greatest(1, count(DISTINCT item_id)) FROM rtrec.item_state),
		   'item_state rows per item (writer slots); rtrec_rebuild() compacts to 1'
	UNION ALL
	SELECT 'bytes_' || c.relname, pg_total_relation_size(c.oid)::float8, 'size of rtrec.' || c.relname || ' with indexes'
	  FROM pg_class c
	 WHERE c.relnamespace = 'rtrec'::regnamespace AND c.relkind = 'r'
$$;
COMMENT ON FUNCTION @extschema@.rtrec_stats() IS
	'counts, pending refresh work, worker state and table sizes, for monitoring';

-------------------------------------------------------------------------------
-- pg_dump: what users wrote is dumped; derived state is not (rebuild it after
-- a restore with SELECT rtrec_rebuild(), see README)
-------------------------------------------------------------------------------
SELECT pg_catalog.pg_extension_config_dump('rtrec.config', '');
SELECT pg_catalog.pg_extension_config_dump('rtrec.event_types', '');
SELECT pg_catalog.pg_extension_config_dump('rtrec.model_weights', '');
SELECT pg_catalog.pg_extension_config_dump('rtrec.items', '');
SELECT pg_catalog.pg_extension_config_dump('rtrec.users', '');
SELECT pg_catalog.pg_extension_config_dump('rtrec.events', '');
SELECT pg_catalog.pg_extension_config_dump('rtrec.events_event_id_seq', '');

-------------------------------------------------------------------------------
-- Privileges: administrative functions are the owner's
-------------------------------------------------------------------------------
REVOKE ALL ON FUNCTION @extschema@.rtrec_rebuild() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.rtrec_swing_refresh() FROM PUBLIC;
REVOKE ALL ON FUNCTION rtrec.events_check() FROM PUBLIC;
REVOKE ALL ON FUNCTION rtrec.events_apply() FROM PUBLIC;
REVOKE ALL ON FUNCTION rtrec.events_reject_update() FROM PUBLIC;
REVOKE ALL ON FUNCTION rtrec.events_truncate() FROM PUBLIC;
REVOKE ALL ON FUNCTION rtrec.settings_changed() FROM PUBLIC;
-- passes over every item: the owner's (rebuild, verify and the SECURITY
-- DEFINER read functions call them with the owner's rights)
REVOKE ALL ON FUNCTION rtrec.neighbors_compute_part(integer, integer, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION rtrec.swing_compute(bigint, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION rtrec.refresh_trending() FROM PUBLIC;
