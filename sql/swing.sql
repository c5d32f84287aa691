--
-- swing: Swing i2i similarity (rtrec_similar, rtrec.swing_neighbors) equals
-- the contract's formula exactly, under every setting and cap; the stored
-- lists follow events without any call (background worker), and
-- rtrec_similar is exact even before the worker ran.
--
-- The formula is checked against a brute-force reference written in plain
-- SQL below (pg_temp views over rtrec.events, independent of the extension's
-- state tables and C code), on the contract's worked example, on small
-- hand-made graphs and on deterministic pseudo-random graphs.  Floats are
-- compared at 1e-9 relative; the output shows counts, booleans and rounded
-- values only.
--
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never

-- a clean slate (TRUNCATE also empties the derived state, the queue included)
TRUNCATE rtrec.events RESTART IDENTITY;
DELETE FROM rtrec.items;
CREATE TEMP TABLE config_before AS SELECT name, value FROM rtrec.config;

--
-- The reference
--
-- distinct (user, item) interactions (weight > 0) and their latest time
CREATE TEMP VIEW ref_ui AS
SELECT e.user_id, e.item_id, max(e.ts) AS last_ts
  FROM rtrec.events e JOIN rtrec.event_types t USING (event_type)
 WHERE t.weight > 0
 GROUP BY e.user_id, e.item_id;
CREATE TEMP VIEW ref_cfg AS
SELECT max(value) FILTER (WHERE name = 'swing_alpha') AS alpha,
       max(value) FILTER (WHERE name = 'swing_user_alpha') AS alpha1,
       max(value) FILTER (WHERE name = 'swing_user_beta') AS beta,
       max(value) FILTER (WHERE name = 'swing_max_users_per_item') AS max_users,
       max(value) FILTER (WHERE name = 'swing_min_items_per_user') AS min_items,
       max(value) FILTER (WHERE name = 'swing_max_items_per_user') AS max_items
  FROM rtrec.config;
-- users Swing does not ignore, with |I_u| and w_u = (|I_u| + alpha1)^(-beta)
CREATE TEMP VIEW ref_users AS
SELECT u.user_id, u.n_items, power(u.n_items + c.alpha1, -c.beta) AS w
  FROM (SELECT user_id, count(*) AS n_items FROM ref_ui GROUP BY user_id) u, ref_cfg c
 WHERE u.n_items BETWEEN c.min_items AND c.max_items;
-- s(i, j) for every item i
CREATE TEMP VIEW ref_swing AS
WITH ui AS MATERIALIZED (SELECT * FROM ref_ui),
cfg AS MATERIALIZED (SELECT * FROM ref_cfg),
users AS MATERIALIZED (SELECT * FROM ref_users),
-- the capped U_i: the max_users users whose latest interaction with i is
-- most recent (ties, which the contract leaves open: smaller user id)
kept AS MATERIALIZED (
    SELECT k.item_id, k.user_id, k.w
      FROM (SELECT ui.item_id, ui.user_id, users.w,
                   row_number() OVER (PARTITION BY ui.item_id
                                      ORDER BY ui.last_ts DESC, ui.user_id) AS r
              FROM ui JOIN users USING (user_id)) k, cfg
     WHERE k.r <= cfg.max_users),
-- |I_u ∩ I_v| over the users' full item sets
common AS MATERIALIZED (
    SELECT a.user_id AS u, b.user_id AS v, count(*) AS n_common
      FROM ui a JOIN ui b ON b.item_id = a.item_id AND a.user_id < b.user_id
     GROUP BY a.user_id, b.user_id),
-- the pairs u < v of i's capped users, with their term
pairs AS MATERIALIZED (
    SELECT ku.item_id, ku.user_id AS u, kv.user_id AS v,
           ku.w * kv.w / (cfg.alpha + cm.n_common) AS term
      FROM kept ku
      JOIN kept kv ON kv.item_id = ku.item_id AND ku.user_id < kv.user_id
      JOIN common cm ON cm.u = ku.user_id AND cm.v = kv.user_id, cfg)
-- s(i, j): the terms of the pairs that both have j
SELECT p.item_id AS i, ju.item_id AS j, sum(p.term) AS score
  FROM pairs p
  JOIN ui ju ON ju.user_id = p.u AND ju.item_id <> p.item_id
  JOIN ui jv ON jv.user_id = p.v AND jv.item_id = ju.item_id
 GROUP BY p.item_id, ju.item_id;

CREATE FUNCTION pg_temp.close(a double precision, b double precision) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$ SELECT abs(a - b) <= 1e-9 * greatest(1e-300, abs(a), abs(b)) $$;

-- one row summing up a comparison of every item's lists with the reference:
--   similar_bad: rows where rtrec_similar(i, 10000) (computed on read) differs
--   stored_bad:  rows where rtrec.swing_neighbors differs (all lists are
--                shorter than swing_neighbors here, so the stored top-k is
--                the whole list)
--   order_bad:   rtrec_similar rows out of order (score desc, item_id asc)
--   rank_bad:    stored ranks that are not 1..k in (score desc, item_id asc)
CREATE FUNCTION pg_temp.check_swing()
RETURNS TABLE (items bigint, ref_pairs bigint, similar_bad bigint, stored_bad bigint,
               order_bad bigint, rank_bad bigint, verify_rows bigint)
LANGUAGE sql AS $$
WITH all_items AS MATERIALIZED (SELECT DISTINCT item_id FROM rtrec.events),
ref_swing AS MATERIALIZED (SELECT * FROM ref_swing),
sim AS MATERIALIZED (
    SELECT a.item_id AS i, s.item_id AS j, s.score, s.ord
      FROM all_items a, rtrec_similar(a.item_id, 10000) WITH ORDINALITY AS s(item_id, score, ord)
)
SELECT (SELECT count(*) FROM all_items),
       (SELECT count(*) FROM ref_swing),
       (SELECT count(*) FROM sim FULL JOIN ref_swing r USING (i, j)
         WHERE sim.score IS NULL OR r.score IS NULL OR NOT pg_temp.close(sim.score, r.score)),
       (SELECT count(*) FROM rtrec.swing_neighbors n
          FULL JOIN ref_swing r ON r.i = n.item_id AND r.j = n.neighbor_id
         WHERE n.score IS NULL OR r.score IS NULL OR NOT pg_temp.close(n.score, r.score)),
       (SELECT count(*) FROM sim a JOIN sim b ON b.i = a.i AND b.ord = a.ord + 1
         WHERE NOT (a.score > b.score OR (a.score = b.score AND a.j < b.j))),
       (SELECT count(*) FROM (
            SELECT rank, row_number() OVER (PARTITION BY item_id
                                            ORDER BY score DESC, neighbor_id) AS r
              FROM rtrec.swing_neighbors) x
         WHERE rank <> r),
       (SELECT count(*) FROM rtrec_verify())
$$;

--
-- The contract's worked example: alpha = 1, alpha1 = 0, beta = 0; users
-- A (1), B (2), C (3) all with h (1) and p (2); A and B also with t (3) and
-- r (4).  s(h, p) = 1/5 + 1/3 + 1/3 = 13/15, s(h, t) = s(h, r) = 1/5.
--
UPDATE rtrec.config SET value = 1 WHERE name = 'swing_alpha';
UPDATE rtrec.config SET value = 0 WHERE name = 'swing_user_alpha';
UPDATE rtrec.config SET value = 0 WHERE name = 'swing_user_beta';
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
    (1, 1, 'view', '2024-01-01 00:00:01+00'), (1, 2, 'view', '2024-01-01 00:00:02+00'),
    (1, 3, 'view', '2024-01-01 00:00:03+00'), (1, 4, 'view', '2024-01-01 00:00:04+00'),
    (2, 1, 'click', '2024-01-01 00:00:05+00'), (2, 2, 'cart', '2024-01-01 00:00:06+00'),
    (2, 3, 'like', '2024-01-01 00:00:07+00'), (2, 4, 'purchase', '2024-01-01 00:00:08+00'),
    (3, 1, 'view', '2024-01-01 00:00:09+00'), (3, 2, 'view', '2024-01-01 00:00:10+00');
SELECT rtrec_swing_refresh() IS NOT NULL AS refreshed;
-- h's neighbours: p first, then the tie t/r, smaller id first
SELECT item_id, round(score::numeric, 12) AS score,
       abs(score - CASE item_id WHEN 2 THEN 13.0 / 15 ELSE 1.0 / 5 END) < 1e-12 AS exact
  FROM rtrec_similar(1);
SELECT round(13.0 / 15, 12) AS "13/15", round(1.0 / 5, 12) AS "1/5";
-- the same from the stored list, and symmetric here (no cap binds)
SELECT item_id, neighbor_id, round(score::numeric, 12) AS score, rank
  FROM rtrec.swing_neighbors ORDER BY item_id, rank;
-- t and r: pairs {A, B} only, both share 4 items
SELECT item_id, round(score::numeric, 12) AS score FROM rtrec_similar(3);
SELECT * FROM pg_temp.check_swing();
-- the same numbers after a rebuild
SELECT rtrec_rebuild();
SELECT item_id, round(score::numeric, 12) AS score FROM rtrec_similar(1, 3);
SELECT * FROM pg_temp.check_swing();

--
-- Impressions (weight 0) are no interactions: no Swing pair from them
--
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
    (3, 3, 'impression', '2024-01-01 00:01:00+00'),   -- C "with" t: ignored
    (5, 50, 'impression', '2024-01-01 00:01:00+00'),
    (5, 51, 'impression', '2024-01-01 00:01:00+00'),
    (6, 50, 'impression', '2024-01-01 00:01:00+00'),
    (6, 51, 'impression', '2024-01-01 00:01:00+00');
-- read at once (computed on read, as if pending) and after the refresh
SELECT item_id, round(score::numeric, 12) AS score FROM rtrec_similar(1);
SELECT count(*) AS similar_50 FROM rtrec_similar(50);
SELECT count(*) AS queued_50_51 FROM rtrec.swing_queue WHERE item_id IN (50, 51);
SELECT rtrec_swing_refresh() IS NOT NULL AS refreshed;
SELECT item_id, round(score::numeric, 12) AS score FROM rtrec_similar(3);
SELECT count(*) AS stored_50_51 FROM rtrec.swing_neighbors
 WHERE item_id IN (50, 51) OR neighbor_id IN (50, 51);
SELECT (SELECT count(*) FROM rtrec_similar(50)) + (SELECT count(*) FROM rtrec_similar(51, 10000)) AS similar_50_51;
SELECT * FROM pg_temp.check_swing();

--
-- swing_min_items_per_user / swing_max_items_per_user ignore users.
-- Add D (4) and E (5) with h and q (5): |I_D| = |I_E| = 2.
-- s(h, q) = 1/(1 + 2) from the pair {D, E}.
--
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
    (4, 1, 'view', '2024-01-01 00:02:01+00'), (4, 5, 'view', '2024-01-01 00:02:02+00'),
    (5, 1, 'view', '2024-01-01 00:02:03+00'), (5, 5, 'view', '2024-01-01 00:02:04+00');
SELECT rtrec_swing_refresh() IS NOT NULL AS refreshed;
SELECT item_id, round(score::numeric, 12) AS score FROM rtrec_similar(1);
SELECT * FROM pg_temp.check_swing();
-- min 3: C, D, E are ignored; {D, E} disappears and h-p keeps only {A, B}
UPDATE rtrec.config SET value = 3 WHERE name = 'swing_min_items_per_user';
-- compute on read (n > swing_neighbors) applies the setting at once ...
SELECT item_id, round(score::numeric, 12) AS score FROM rtrec_similar(1, 101);
-- ... the stored lists after rtrec_rebuild()
SELECT rtrec_rebuild();
SELECT item_id, round(score::numeric, 12) AS score FROM rtrec_similar(1);
SELECT item_id, round(score::numeric, 12) AS score FROM rtrec_similar(5);
SELECT * FROM pg_temp.check_swing();
-- max 3 (min back to 1): A and B (4 items) are ignored; h-t, h-r and the
-- {A, B} share of h-p disappear, {D, E} is back, {C} alone makes no pair
UPDATE rtrec.config SET value = 1 WHERE name = 'swing_min_items_per_user';
UPDATE rtrec.config SET value = 3 WHERE name = 'swing_max_items_per_user';
SELECT rtrec_rebuild();
SELECT item_id, round(score::numeric, 12) AS score FROM rtrec_similar(1);
SELECT count(*) AS similar_3 FROM rtrec_similar(3);
SELECT * FROM pg_temp.check_swing();
-- and a user crossing the cap is picked up incrementally: E adds two items
-- (|I_E| = 4 > 3), so {D, E} disappears from h's and q's lists without a
-- rebuild (h keeps C and D, who share only h: no neighbour left)
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
    (5, 3, 'view', '2024-01-01 00:03:01+00'), (5, 4, 'view', '2024-01-01 00:03:02+00');
SELECT item_id, round(score::numeric, 12) AS score FROM rtrec_similar(1);
SELECT rtrec_swing_refresh() IS NOT NULL AS refreshed;
SELECT item_id, neighbor_id, round(score::numeric, 12) AS score, rank
  FROM rtrec.swing_neighbors WHERE item_id IN (1, 5) ORDER BY item_id, rank;
SELECT * FROM pg_temp.check_swing();
UPDATE rtrec.config SET value = 1000 WHERE name = 'swing_max_items_per_user';
SELECT rtrec_rebuild();
-- A, B and E count again: E now shares 3 items with A and B
SELECT item_id, round(score::numeric, 12) AS score FROM rtrec_similar(1);
SELECT * FROM pg_temp.check_swing();

--
-- swing_max_users_per_item keeps the users whose latest interaction with the
-- item is most recent, so s(i, j) may differ from s(j, i).
-- Items 101 and 102; users 11 and 12 also have 103, user 13 does not.
--   101: users in time order 11, 12, 13 (13 most recent)
--   102: users in time order 13, 12, 11 (11 most recent)
-- Uncapped: s = {11,12}: 1/(1+3) + {11,13}: 1/3 + {12,13}: 1/3 = 11/12.
-- Cap 2:    s(101, 102) = {12,13}: 1/3; s(102, 101) = {11,12}: 1/4.
--
TRUNCATE rtrec.events;
DELETE FROM rtrec.items;
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
    (11, 101, 'view', '2024-02-01 00:00:01+00'),
    (12, 101, 'view', '2024-02-01 00:00:02+00'),
    (13, 101, 'view', '2024-02-01 00:00:03+00'),
    (13, 102, 'view', '2024-02-01 00:00:04+00'),
    (12, 102, 'view', '2024-02-01 00:00:05+00'),
    (11, 102, 'view', '2024-02-01 00:00:06+00'),
    (11, 103, 'view', '2024-02-01 00:00:07+00'),
    (12, 103, 'view', '2024-02-01 00:00:08+00');
SELECT rtrec_swing_refresh() IS NOT NULL AS refreshed;
SELECT i.i, s.item_id, round(s.score::numeric, 12) AS score
  FROM (VALUES (101), (102)) AS i(i), rtrec_similar(i.i) s WHERE s.item_id IN (101, 102);
SELECT round(11.0 / 12, 12) AS "11/12";
UPDATE rtrec.config SET value = 2 WHERE name = 'swing_max_users_per_item';
-- computed on read at once (n > swing_neighbors)
SELECT i.i, s.item_id, round(s.score::numeric, 12) AS score
  FROM (VALUES (101), (102)) AS i(i), rtrec_similar(i.i, 200) s WHERE s.item_id IN (101, 102);
SELECT rtrec_rebuild();
SELECT item_id, neighbor_id, round(score::numeric, 12) AS score, rank
  FROM rtrec.swing_neighbors ORDER BY item_id, rank;
SELECT * FROM pg_temp.check_swing();
-- a newer interaction moves a user into the kept set: 13 views 102 again,
-- 102 now keeps {13, 11} instead of {11, 12}: s(102, 101) = 1/3 (11 and 13
-- share 101 and 102), and 103 drops out (13 lacks it)
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
    (13, 102, 'click', '2024-02-01 00:01:00+00');
SELECT item_id, round(score::numeric, 12) AS score FROM rtrec_similar(102);
SELECT rtrec_swing_refresh() IS NOT NULL AS refreshed;
SELECT item_id, neighbor_id, round(score::numeric, 12) AS score, rank
  FROM rtrec.swing_neighbors ORDER BY item_id, rank;
SELECT * FROM pg_temp.check_swing();
UPDATE rtrec.config SET value = 200 WHERE name = 'swing_max_users_per_item';
SELECT rtrec_rebuild();
SELECT i.i, s.item_id, round(s.score::numeric, 12) AS score
  FROM (VALUES (101), (102)) AS i(i), rtrec_similar(i.i) s WHERE s.item_id IN (101, 102);

--
-- Ties: equal scores come smaller item id first, in rtrec_similar and in the
-- stored ranks; swing_neighbors bounds the stored lists (top-k).
-- Users 21, 22 with 60 and 69, 67, 68, 65, 66 (inserted in that order):
-- every neighbour of 60 scores the same.  Users 23, 24 add 69 and 68 to
-- 60's list a second time.
--
TRUNCATE rtrec.events;
DELETE FROM rtrec.items;
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
SELECT u, i, 'view', '2024-03-01 00:00:00+00'::timestamptz + (u * 10 + o) * interval '1 s'
  FROM (VALUES (21), (22)) AS u(u),
       unnest(ARRAY[60, 69, 67, 68, 65, 66]) WITH ORDINALITY AS x(i, o);
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
SELECT u, i, 'view', '2024-03-01 00:10:00+00'::timestamptz + (u * 10 + i) * interval '1 s'
  FROM (VALUES (23), (24)) AS u(u), unnest(ARRAY[60, 69, 68]) AS x(i);
SELECT rtrec_swing_refresh() IS NOT NULL AS refreshed;
-- 69 and 68 tie at the top, then 65, 66, 67 tie
SELECT item_id, round(score::numeric, 12) AS score FROM rtrec_similar(60);
SELECT neighbor_id, round(score::numeric, 12) AS score, rank
  FROM rtrec.swing_neighbors WHERE item_id = 60 ORDER BY rank;
SELECT * FROM pg_temp.check_swing();
-- top-k: 2 kept per item
UPDATE rtrec.config SET value = 2 WHERE name = 'swing_neighbors';
SELECT rtrec_rebuild();
SELECT max(c) AS longest_list
  FROM (SELECT count(*) AS c FROM rtrec.swing_neighbors GROUP BY item_id) x;
SELECT neighbor_id, rank FROM rtrec.swing_neighbors WHERE item_id = 60 ORDER BY rank;
-- n <= k: the stored list; n > k: computed, the ties in the same order
SELECT item_id FROM rtrec_similar(60, 2);
SELECT item_id FROM rtrec_similar(60, 1);
SELECT item_id FROM rtrec_similar(60, 4);
-- the incremental refresh keeps k too
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
    (25, 60, 'view', '2024-03-01 00:20:00+00'), (25, 65, 'view', '2024-03-01 00:20:01+00');
SELECT rtrec_swing_refresh() IS NOT NULL AS refreshed;
SELECT max(c) AS longest_list
  FROM (SELECT count(*) AS c FROM rtrec.swing_neighbors GROUP BY item_id) x;
SELECT count(*) AS verify_rows FROM rtrec_verify();
UPDATE rtrec.config SET value = 100 WHERE name = 'swing_neighbors';
SELECT rtrec_rebuild();

--
-- Pseudo-random graphs (deterministic: hashes of the ids), compared with the
-- reference for every item, under default and non-default settings.  Each
-- graph is loaded in two batches with a refresh in between, so that the
-- second batch changes |I_u| of users whose other items' lists must follow
-- (incremental refresh); then checked again after rtrec_rebuild().
--
CREATE FUNCTION pg_temp.h(seed integer, a integer, b integer, c integer DEFAULT 0)
RETURNS integer LANGUAGE sql IMMUTABLE
AS $$ SELECT abs(hashint8(seed::bigint * 1000003 + a * 10007 + b * 101 + c) % 1000000) $$;
-- users 1..n_users, items 1..n_items (offset by 1000 / 5000); user u's
-- density varies with u; 1-2 events per pair; distinct latest times
CREATE FUNCTION pg_temp.graph_events(seed integer, n_users integer, n_items integer)
RETURNS TABLE (user_id bigint, item_id bigint, event_type text, ts timestamptz, batch integer)
LANGUAGE sql STABLE AS $$
SELECT 1000 + u, 5000 + i,
       (ARRAY['view', 'click', 'like', 'cart', 'purchase'])[1 + pg_temp.h(seed, u, i, 7) % 5],
       '2024-04-01 00:00:00+00'::timestamptz
         + ((pg_temp.h(seed, u, i, k) % 100000) * 4096 + u * 64 + i) * interval '1 s',
       1 + pg_temp.h(seed, u, i, 9) % 2
  FROM generate_series(1, n_users) u, generate_series(1, n_items) i,
       generate_series(1, 1 + pg_temp.h(seed, u, i, 3) % 2) k
 WHERE pg_temp.h(seed, u, i) % 100 < 5 + (u * 7) % 50
$$;
CREATE FUNCTION pg_temp.load_graph(seed integer, n_users integer, n_items integer)
RETURNS TABLE (users bigint, items bigint, events bigint, refreshed boolean)
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE rtrec.events;
    DELETE FROM rtrec.items;
    INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
    SELECT g.user_id, g.item_id, g.event_type, g.ts
      FROM pg_temp.graph_events(seed, n_users, n_items) g WHERE g.batch = 1;
    -- impressions never count
    INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
    SELECT 1000 + u, 5000 + i, 'impression', '2024-05-01 00:00:00+00'
      FROM generate_series(1, n_users) u, generate_series(1, n_items) i
     WHERE pg_temp.h(seed, u, i, 11) % 100 < 20;
    refreshed := rtrec_swing_refresh() > 0;
    INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
    SELECT g.user_id, g.item_id, g.event_type, g.ts
      FROM pg_temp.graph_events(seed, n_users, n_items) g WHERE g.batch = 2;
    refreshed := rtrec_swing_refresh() > 0 AND refreshed;
    SELECT count(DISTINCT e.user_id), count(DISTINCT e.item_id), count(*)
      INTO users, items, events
      FROM rtrec.events e WHERE e.event_type <> 'impression';
    RETURN NEXT;
END
$$;
-- the graphs have users of many sizes
SELECT min(n), max(n), count(*) AS users
  FROM (SELECT count(DISTINCT item_id) AS n FROM pg_temp.graph_events(1, 30, 40) GROUP BY user_id) x;

-- defaults (alpha 1, alpha1 5, beta 0.35)
SELECT * FROM pg_temp.load_graph(1, 30, 40);
SELECT * FROM pg_temp.check_swing();
SELECT rtrec_rebuild();
SELECT * FROM pg_temp.check_swing();
SELECT * FROM pg_temp.load_graph(2, 35, 30);
SELECT * FROM pg_temp.check_swing();
SELECT rtrec_rebuild();
SELECT * FROM pg_temp.check_swing();

-- alpha 0.5, alpha1 0, beta -0.5 (heavier users weigh more)
UPDATE rtrec.config SET value = 0.5 WHERE name = 'swing_alpha';
UPDATE rtrec.config SET value = 0 WHERE name = 'swing_user_alpha';
UPDATE rtrec.config SET value = -0.5 WHERE name = 'swing_user_beta';
SELECT * FROM pg_temp.load_graph(3, 30, 40);
SELECT * FROM pg_temp.check_swing();
SELECT rtrec_rebuild();
SELECT * FROM pg_temp.check_swing();

-- alpha 3, alpha1 2.5, beta 1.2, and every cap binding
UPDATE rtrec.config SET value = 3 WHERE name = 'swing_alpha';
UPDATE rtrec.config SET value = 2.5 WHERE name = 'swing_user_alpha';
UPDATE rtrec.config SET value = 1.2 WHERE name = 'swing_user_beta';
UPDATE rtrec.config SET value = 8 WHERE name = 'swing_max_users_per_item';
UPDATE rtrec.config SET value = 3 WHERE name = 'swing_min_items_per_user';
UPDATE rtrec.config SET value = 18 WHERE name = 'swing_max_items_per_user';
-- the caps do bind: users ignored, items with more users than the cap
SELECT * FROM pg_temp.load_graph(4, 30, 40);
SELECT (SELECT count(*) FROM (SELECT user_id FROM ref_ui GROUP BY user_id
                               HAVING count(*) NOT BETWEEN 3 AND 18) x) > 0 AS users_ignored,
       (SELECT count(*) FROM (SELECT item_id FROM ref_ui JOIN ref_users USING (user_id)
                               GROUP BY item_id HAVING count(*) > 8) x) > 0 AS items_capped;
SELECT * FROM pg_temp.check_swing();
-- the cap makes the relation asymmetric
WITH r AS MATERIALIZED (SELECT * FROM ref_swing)
SELECT count(*) > 0 AS asymmetric
  FROM r a JOIN r b ON b.i = a.j AND b.j = a.i
 WHERE NOT pg_temp.close(a.score, b.score);
SELECT rtrec_rebuild();
SELECT * FROM pg_temp.check_swing();
-- a settings change reaches rtrec_similar's computation at once, and the
-- stored lists after rtrec_rebuild()
UPDATE rtrec.config SET value = -2 WHERE name = 'swing_user_beta';
UPDATE rtrec.config SET value = 5 WHERE name = 'swing_max_users_per_item';
SELECT similar_bad FROM pg_temp.check_swing();
SELECT rtrec_rebuild();
SELECT * FROM pg_temp.check_swing();

--
-- Fresh without any refresh call
--
UPDATE rtrec.config c SET value = b.value
  FROM config_before b WHERE b.name = c.name AND c.value <> b.value;
SELECT * FROM pg_temp.load_graph(5, 30, 40);
SELECT rtrec_rebuild();
SELECT * FROM pg_temp.check_swing();
-- inside the inserting transaction the new pair's items are pending (the
-- worker cannot see them), and rtrec_similar computes them exactly on read
BEGIN;
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
    (1001, 5999, 'view', '2040-01-01 00:00:00+00'),
    (1002, 5999, 'view', '2040-01-01 00:00:01+00'),
    (1002, 5001, 'view', '2040-01-01 00:00:02+00');
SELECT count(*) > 0 AS pending FROM rtrec.swing_pending_items WHERE item_id = 5999;
SELECT count(*) > 0 AS has_neighbors FROM ref_swing WHERE i = 5999;
SELECT count(*) AS similar_bad
  FROM rtrec_similar(5999, 100) s FULL JOIN (SELECT * FROM ref_swing WHERE i = 5999) r
    ON r.j = s.item_id
 WHERE s.score IS NULL OR r.score IS NULL OR NOT pg_temp.close(s.score, r.score);
SELECT count(*) AS similar_bad
  FROM rtrec_similar(5001, 100) s FULL JOIN (SELECT * FROM ref_swing WHERE i = 5001) r
    ON r.j = s.item_id
 WHERE s.score IS NULL OR r.score IS NULL OR NOT pg_temp.close(s.score, r.score);
COMMIT;
-- right after the commit: exact whether the worker ran yet or not
SELECT count(*) AS similar_bad
  FROM rtrec_similar(5999, 100) s FULL JOIN (SELECT * FROM ref_swing WHERE i = 5999) r
    ON r.j = s.item_id
 WHERE s.score IS NULL OR r.score IS NULL OR NOT pg_temp.close(s.score, r.score);
-- the background worker drains the queue (no rtrec_swing_refresh() here)
DO $$
DECLARE
    deadline timestamptz := clock_timestamp() + interval '10 s';
BEGIN
    WHILE EXISTS (SELECT 1 FROM rtrec.swing_queue) LOOP
        IF clock_timestamp() > deadline THEN
            RAISE EXCEPTION 'the Swing queue was not drained within 10 s';
        END IF;
        PERFORM pg_sleep(0.2);
    END LOOP;
END
$$;
SELECT count(*) AS queued FROM rtrec.swing_queue;
SELECT count(*) AS pending FROM rtrec.swing_pending_items;
-- the stored lists equal the formula (check_swing compares every stored row)
SELECT * FROM pg_temp.check_swing();
SELECT count(*) > 0 AS stored_5999 FROM rtrec.swing_neighbors WHERE item_id = 5999;

--
-- Arguments
--
SELECT * FROM rtrec_similar(NULL);
SELECT * FROM rtrec_similar(5001, NULL);
SELECT * FROM rtrec_similar(5001, 0);
SELECT * FROM rtrec_similar(5001, -1);
SELECT * FROM rtrec_similar(5001, 10001);
SELECT count(*) AS n FROM rtrec_similar(5001, 10000);
SELECT count(*) AS n FROM rtrec_similar(5001, 1);
-- an unknown item is no error: no neighbours
SELECT count(*) AS unknown FROM rtrec_similar(987654321);
SELECT count(*) AS unknown FROM rtrec_similar(987654321, 10000);
-- rtrec_similar's default n is 20
SELECT count(*) AS default_n FROM rtrec_similar(5001);

--
-- A backlog larger than one drain: rtrec_swing_refresh() drains the queue in
-- chunks (10000 rows).  User 1 had 5 items (= swing_max_items_per_user) and
-- adds two more whose queue rows fall into different chunks: |I_1| = 7, so
-- user 1 is ignored from now on and the lists of all of its items must
-- drop its pairs.  Items 1-5 are then left with user 2 alone: no neighbours.
--
TRUNCATE rtrec.events;
DELETE FROM rtrec.items;
UPDATE rtrec.config SET value = 5 WHERE name = 'swing_max_items_per_user';
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
SELECT u, i, 'view', '2024-07-01 00:00:00+00'::timestamptz + (u * 10 + i) * interval '1 s'
  FROM generate_series(1, 2) u, generate_series(1, 5) i;
SELECT rtrec_swing_refresh() IS NOT NULL AS refreshed;
SELECT count(*) AS neighbors_of_1 FROM rtrec_similar(1);
BEGIN;
-- 9999 queue rows (one per new (user, item) pair) ...
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
SELECT 100000 + k, 999, 'view', '2024-07-02 00:00:00+00' FROM generate_series(1, 9999) k;
-- ... then user 1's two new items, queue rows 10000 and 10001
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
    (1, 6, 'view', '2024-07-03 00:00:00+00');
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
    (1, 7, 'view', '2024-07-03 00:00:01+00');
SELECT count(*) AS queued FROM rtrec.swing_queue;
SELECT rtrec_swing_refresh() IS NOT NULL AS refreshed;
COMMIT;
SELECT count(*) AS pending FROM rtrec.swing_pending_items;
-- stored (n <= swing_neighbors) and computed (n > swing_neighbors) agree
SELECT count(*) AS stored_neighbors_of_1 FROM rtrec_similar(1);
SELECT count(*) AS computed_neighbors_of_1 FROM rtrec_similar(1, 10000);
SELECT count(*) AS stored_rows FROM rtrec.swing_neighbors;
SELECT count(*) AS verify_rows FROM rtrec_verify();
UPDATE rtrec.config SET value = 1000 WHERE name = 'swing_max_items_per_user';
SELECT rtrec_rebuild();

-- leave nothing behind
(SELECT name, value FROM rtrec.config EXCEPT SELECT * FROM config_before)
UNION ALL
(SELECT * FROM config_before EXCEPT SELECT name, value FROM rtrec.config);
TRUNCATE rtrec.events;
DELETE FROM rtrec.items;
