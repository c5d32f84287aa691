--
-- recommend: rtrec_recommend, rtrec_candidates and rtrec_trending on a small
-- shop of two categories (1 = clothes, 2 = monitors) whose background
-- shoppers browse "styles" of 5 items of one category, so that Swing, cosine
-- and category signals all point inside a category.  Customer 42 turns from
-- clothes to monitors.
--
-- Outputs are item ids, counts and booleans (no raw float scores).  Every
-- assertion on neighbour- or trending-based results follows a
-- rtrec_swing_refresh(), which refreshes the neighbour lists and the trending
-- cache at once, so nothing depends on the background worker's timing.
--
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never

-- a clean slate (TRUNCATE also empties the derived state)
TRUNCATE rtrec.events RESTART IDENTITY;
DELETE FROM rtrec.items;
CREATE TEMP TABLE weights_before AS SELECT feature, weight FROM rtrec.model_weights;

-- the catalog: items 1001-1030 (clothes) and 2001-2030 (monitors)
INSERT INTO rtrec.items (item_id, category_id, price, brand)
SELECT c * 1000 + i, c, 10 * c + i, (ARRAY['acme', 'zenith', 'orbit'])[1 + i % 3]
  FROM generate_series(1, 2) c, generate_series(1, 30) i;
-- 60 background shoppers per category (users 100-159 clothes, 200-259
-- monitors): 4 items of a main style (items s*5+1 .. s*5+5 of the category)
-- and 2 of a second style, views with some carts and purchases, spread over
-- 2024-01-01 and 02
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
SELECT c * 100 + j, c * 1000 + st * 5 + o,
       CASE WHEN o = 1 + j % 5 AND st = j % 6 THEN 'cart'
            WHEN (j + o) % 7 = 0 THEN 'purchase' ELSE 'view' END,
       '2024-01-01 00:00:00+00'::timestamptz + (j * 37 + c * 11 + st * 3 + o) * interval '1 minute'
  FROM generate_series(1, 2) c, generate_series(0, 59) j,
       LATERAL (VALUES (j % 6), ((j % 6 + 1 + (j / 6) % 5) % 6)) AS s(st),
       generate_series(1, 5) o
 WHERE (st = j % 6 AND o <> 1 + (j + 2) % 5)
    OR (st <> j % 6 AND o IN (1 + j % 5, 1 + (j + 3) % 5));
SELECT count(*) AS events, count(DISTINCT user_id) AS users, count(DISTINCT item_id) AS items
  FROM rtrec.events;
-- customer 42 browses clothes on the morning of 2024-01-03
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
    (42, 1001, 'view', '2024-01-03 06:00:00+00'),
    (42, 1002, 'view', '2024-01-03 06:01:00+00'),
    (42, 1003, 'view', '2024-01-03 06:02:00+00'),
    (42, 1002, 'cart', '2024-01-03 06:03:00+00');
SELECT rtrec_swing_refresh() IS NOT NULL AS refreshed;
-- the neighbour lists stay inside a category
SELECT count(*) FILTER (WHERE item_id / 1000 <> neighbor_id / 1000) AS cross_category,
       count(*) > 0 AS some
  FROM rtrec.swing_neighbors;

-- a view of a user's top n with the category of each item
CREATE FUNCTION pg_temp.recs(u bigint, n integer)
RETURNS TABLE (ord bigint, item_id bigint, category_id bigint, reason text)
LANGUAGE sql AS $$
SELECT r.ord, r.item_id, i.category_id, r.reason
  FROM rtrec_recommend(u, n) WITH ORDINALITY AS r(item_id, score, reason, ord)
  LEFT JOIN rtrec.items i USING (item_id)
 ORDER BY r.ord
$$;

--
-- The seed scenario
--
-- clothes only so far: clothes only
SELECT * FROM pg_temp.recs(42, 10);
CREATE TEMP TABLE before_monitors AS
SELECT count(*) FILTER (WHERE category_id = 2) AS monitors FROM pg_temp.recs(42, 10);
SELECT * FROM before_monitors;
-- 42 now views three monitors
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
    (42, 2006, 'view', '2024-01-03 10:30:00+00'),
    (42, 2007, 'view', '2024-01-03 10:31:00+00'),
    (42, 2008, 'view', '2024-01-03 10:32:00+00');
SELECT rtrec_swing_refresh() IS NOT NULL AS refreshed;
-- mostly monitors now
SELECT * FROM pg_temp.recs(42, 10);
SELECT a.monitors, a.monitors > 5 AS mostly_monitors, a.monitors > b.monitors AS increased
  FROM (SELECT count(*) FILTER (WHERE category_id = 2) AS monitors FROM pg_temp.recs(42, 10)) a,
       before_monitors b;
-- the neighbours of what 42 just viewed are there, with the reason
SELECT count(*) FILTER (WHERE reason ~ '^(swing|cf):200[678]$') > 0 AS from_monitor_neighbors,
       count(*) FILTER (WHERE reason = 'c2i:2') > 0 AS from_monitor_category
  FROM pg_temp.recs(42, 10);

-- a brand-new customer with one click on monitor 2012 gets its neighbours
-- and its category at once
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
    (9001, 2012, 'click', '2024-01-03 11:00:00+00');
SELECT rtrec_swing_refresh() IS NOT NULL AS refreshed;
SELECT * FROM pg_temp.recs(9001, 10);
SELECT count(*) FILTER (WHERE category_id = 2) AS monitors,
       count(*) FILTER (WHERE reason IN ('swing:2012', 'cf:2012')) > 0 AS from_neighbors,
       count(*) FILTER (WHERE reason = 'c2i:2') > 0 AS from_category,
       count(*) FILTER (WHERE item_id = 2012) AS seen_item
  FROM pg_temp.recs(9001, 10);
-- its top Swing neighbours are recommended, best first
SELECT s.item_id, s.item_id IN (SELECT item_id FROM pg_temp.recs(9001, 10)) AS recommended
  FROM rtrec_similar(2012, 3) s;

--
-- Output shape: ordered by score, n respected, reasons well-formed
--
SELECT count(*) AS rows,
       count(*) FILTER (WHERE reason !~ '^(swing|cf):\d+$|^c2i:\d+$|^trending$') AS bad_reasons,
       count(*) FILTER (WHERE score IS NULL OR score = 'NaN') AS bad_scores
  FROM rtrec_recommend(42, 40);
SELECT count(*) AS out_of_order
  FROM (SELECT score, lag(score) OVER (ORDER BY ord) AS prev
          FROM rtrec_recommend(42, 40) WITH ORDINALITY AS r(item_id, score, reason, ord)) x
 WHERE prev < score;
SELECT (SELECT count(*) FROM rtrec_recommend(42, 1)) AS n1,
       (SELECT count(*) FROM rtrec_recommend(42, 7)) AS n7,
       (SELECT count(*) FROM rtrec_recommend(42)) AS default_n,
       (SELECT count(*) FROM rtrec_recommend(42, 10000)) AS all_unseen;
-- the top n of a larger n
SELECT (SELECT array_agg(item_id) FROM rtrec_recommend(42, 5))
     = (SELECT (array_agg(item_id))[1:5] FROM rtrec_recommend(42, 20)) AS prefix;
-- each reason names a trigger item the user has, or a category
SELECT count(*) AS unexplained
  FROM rtrec_recommend(42, 40) r
 WHERE NOT (
       (r.reason ~ '^(swing|cf):' AND split_part(r.reason, ':', 2)::bigint IN
            (SELECT item_id FROM rtrec.user_items WHERE user_id = 42))
    OR (r.reason ~ '^c2i:' AND split_part(r.reason, ':', 2)::bigint IN
            (SELECT category_id FROM rtrec.items WHERE item_id = r.item_id))
    OR r.reason = 'trending');

--
-- Never an unavailable item
--
CREATE TEMP TABLE top_item AS SELECT item_id FROM rtrec_recommend(42, 1);
UPDATE rtrec.items SET available = false WHERE item_id IN (SELECT item_id FROM top_item);
SELECT count(*) AS unavailable_top FROM rtrec_recommend(42, 10000)
 WHERE item_id IN (SELECT item_id FROM top_item);
SELECT count(*) AS unavailable_candidates FROM rtrec_candidates(42, 100000)
 WHERE item_id IN (SELECT item_id FROM top_item);
SELECT count(*) AS unavailable_trending FROM rtrec_trending(NULL, 10000)
 WHERE item_id IN (SELECT item_id FROM top_item);
SELECT count(*) AS unavailable_trending FROM rtrec_trending(2, 10000)
 WHERE item_id IN (SELECT item_id FROM top_item);
-- half of the monitors unavailable: none is recommended, to anyone
UPDATE rtrec.items SET available = false WHERE category_id = 2 AND item_id % 2 = 0;
SELECT rtrec_swing_refresh() IS NOT NULL AS refreshed;
SELECT count(*) AS unavailable
  FROM (SELECT * FROM rtrec_recommend(42, 10000)
        UNION ALL SELECT * FROM rtrec_recommend(9001, 10000)
        UNION ALL SELECT * FROM rtrec_recommend(123456789, 10000)
        UNION ALL SELECT * FROM rtrec_recommend(42, 10000, 2)
        UNION ALL SELECT * FROM rtrec_recommend(42, 10000, NULL, false)) r
  JOIN rtrec.items i USING (item_id) WHERE NOT i.available;
SELECT count(*) AS unavailable
  FROM (SELECT item_id FROM rtrec_trending(NULL, 10000)
        UNION ALL SELECT item_id FROM rtrec_trending(2, 10000)
        UNION ALL SELECT item_id FROM rtrec_candidates(42, 100000)) r
  JOIN rtrec.items i USING (item_id) WHERE NOT i.available;
UPDATE rtrec.items SET available = true;
SELECT rtrec_swing_refresh() IS NOT NULL AS refreshed;
SELECT count(*) AS top_item_back FROM rtrec_recommend(42, 1) WHERE item_id IN (SELECT item_id FROM top_item);

--
-- exclude_seen
--
SELECT count(*) AS seen FROM rtrec.user_items WHERE user_id = 42;
SELECT count(*) AS seen_recommended FROM rtrec_recommend(42, 10000, NULL, true)
 WHERE item_id IN (SELECT item_id FROM rtrec.user_items WHERE user_id = 42);
SELECT count(*) AS seen_recommended FROM rtrec_recommend(42, 10000)
 WHERE item_id IN (SELECT item_id FROM rtrec.user_items WHERE user_id = 42);
-- exclude_seen false: the seen items are back (every item is a candidate)
SELECT count(*) AS seen_recommended FROM rtrec_recommend(42, 10000, NULL, false)
 WHERE item_id IN (SELECT item_id FROM rtrec.user_items WHERE user_id = 42);
SELECT count(*) AS seen_in_top_10 FROM rtrec_recommend(42, 10, NULL, false)
 WHERE item_id IN (SELECT item_id FROM rtrec.user_items WHERE user_id = 42);
SELECT (SELECT count(*) FROM rtrec_recommend(42, 10000, NULL, true)) AS unseen,
       (SELECT count(*) FROM rtrec_recommend(42, 10000, NULL, false)) AS everything;
-- an impression is no interaction: the item stays recommendable
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
    (42, 2009, 'impression', '2024-01-03 10:40:00+00');
SELECT count(*) AS impressed_recommended FROM rtrec_recommend(42, 10000) WHERE item_id = 2009;

--
-- category_id filter
--
SELECT count(*) AS rows, count(*) FILTER (WHERE i.category_id IS DISTINCT FROM 1) AS other
  FROM rtrec_recommend(42, 10, 1) r JOIN rtrec.items i USING (item_id);
SELECT count(*) AS rows, count(*) FILTER (WHERE i.category_id IS DISTINCT FROM 2) AS other
  FROM rtrec_recommend(42, 10000, 2) r JOIN rtrec.items i USING (item_id);
-- a category 42 never touched, and one that does not exist
INSERT INTO rtrec.items (item_id, category_id) VALUES (3001, 3), (3002, 3);
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
    (300, 3001, 'view', '2024-01-02 12:00:00+00'), (300, 3002, 'view', '2024-01-02 12:01:00+00');
SELECT rtrec_swing_refresh() IS NOT NULL AS refreshed;
SELECT item_id, reason FROM rtrec_recommend(42, 10, 3);
SELECT count(*) AS rows FROM rtrec_recommend(42, 10, 99);
-- with exclude_seen false, the filter still applies
SELECT count(*) FILTER (WHERE i.category_id IS DISTINCT FROM 2) AS other
  FROM rtrec_recommend(42, 10000, 2, false) r JOIN rtrec.items i USING (item_id);

--
-- A user with no events gets trending items
--
SELECT count(*) AS rows, count(*) FILTER (WHERE reason <> 'trending') AS not_trending
  FROM rtrec_recommend(123456789, 10);
SELECT (SELECT array_agg(item_id) FROM rtrec_recommend(123456789, 10))
     = (SELECT array_agg(item_id) FROM rtrec_trending(NULL, 10)) AS same_as_trending;
-- an impression alone does not make a user known
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
    (9002, 2001, 'impression', '2024-01-03 11:00:00+00');
SELECT count(*) AS rows, count(*) FILTER (WHERE reason <> 'trending') AS not_trending
  FROM rtrec_recommend(9002, 10);

--
-- rtrec_candidates
--
SELECT count(*) AS rows,
       count(*) FILTER (WHERE source NOT IN ('swing', 'cf', 'c2i', 'trending')) AS bad_source,
       count(*) FILTER (WHERE item_id IN (SELECT item_id FROM rtrec.user_items WHERE user_id = 42)) AS seen,
       count(DISTINCT item_id) = count(*) AS distinct_items
  FROM rtrec_candidates(42, 50);
SELECT source, count(*) FROM rtrec_candidates(42, 100000) GROUP BY source ORDER BY source;
SELECT count(*) AS rows FROM rtrec_candidates(42, 5);
SELECT count(*) AS rows FROM rtrec_candidates(42);
SELECT count(*) AS out_of_order
  FROM (SELECT score, lag(score) OVER (ORDER BY ord) AS prev
          FROM rtrec_candidates(42, 100000) WITH ORDINALITY AS c(item_id, source, score, ord)) x
 WHERE prev < score;
-- the recommendations come from the candidates
SELECT count(*) AS not_a_candidate FROM rtrec_recommend(42, 20)
 WHERE item_id NOT IN (SELECT item_id FROM rtrec_candidates(42, 100000));
-- a user with no events: trending only
SELECT source, count(*) FROM rtrec_candidates(123456789, 20) GROUP BY source;

--
-- rtrec_trending
--
SELECT count(*) AS rows,
       count(*) FILTER (WHERE NOT i.available) AS unavailable
  FROM rtrec_trending(NULL, 10) t JOIN rtrec.items i USING (item_id);
SELECT count(*) AS rows FROM rtrec_trending();
SELECT count(*) AS rows, count(*) FILTER (WHERE i.category_id IS DISTINCT FROM 2) AS other
  FROM rtrec_trending(2, 10) t JOIN rtrec.items i USING (item_id);
SELECT count(*) AS rows, count(*) FILTER (WHERE i.category_id IS DISTINCT FROM 1) AS other
  FROM rtrec_trending(1, 10000) t JOIN rtrec.items i USING (item_id);
SELECT count(*) AS rows FROM rtrec_trending(99, 10);
SELECT count(*) AS out_of_order
  FROM (SELECT score, lag(score) OVER (PARTITION BY list ORDER BY ord) AS prev
          FROM (SELECT 'all' AS list, * FROM rtrec_trending(NULL, 10000) WITH ORDINALITY AS t(item_id, score, ord)
                UNION ALL
                SELECT '2', * FROM rtrec_trending(2, 10000) WITH ORDINALITY AS t(item_id, score, ord)) t) x
 WHERE prev < score;
-- the order is the order of the items' trends at any common time, the
-- scores are the trends decayed to the newest event: the sum over the item's
-- events of weight * 2^(-(newest - ts) / half_life), recomputed here
SELECT count(*) AS mismatches
  FROM rtrec_trending(NULL, 10000) WITH ORDINALITY AS t(item_id, score, ord)
  FULL JOIN (
        SELECT item_id, trend, row_number() OVER (ORDER BY trend DESC, item_id) AS r
          FROM (SELECT e.item_id,
                       sum(et.weight * power(2, -extract(epoch FROM m.newest - e.ts) / 86400)) AS trend
                  FROM rtrec.events e JOIN rtrec.event_types et USING (event_type),
                       (SELECT max(ts) AS newest FROM rtrec.events e2
                          JOIN rtrec.event_types t2 USING (event_type) WHERE t2.weight > 0) m
                 WHERE et.weight > 0
                 GROUP BY e.item_id) x) f USING (item_id)
 WHERE t.ord IS DISTINCT FROM f.r
    OR NOT abs(t.score - f.trend) <= 1e-9 * abs(f.trend);
SELECT count(*) = (SELECT count(*) FROM rtrec.item_features) AS every_item
  FROM rtrec_trending(NULL, 10000);

--
-- The ranker's weights change the ranking: trend only
--
CREATE TEMP TABLE default_top AS SELECT item_id FROM rtrec_recommend(42, 10);
UPDATE rtrec.model_weights SET weight = 0 WHERE feature <> 'trend';
UPDATE rtrec.model_weights SET weight = 0.2 WHERE feature = 'trend';
SELECT feature, weight FROM rtrec.model_weights ORDER BY feature;
SELECT count(*) AS rows, count(*) FILTER (WHERE reason <> 'trending') AS not_trending
  FROM rtrec_recommend(42, 10);
-- now the most trending items 42 has not seen, in trend order
SELECT (SELECT array_agg(item_id) FROM rtrec_recommend(42, 10))
     = (SELECT (array_agg(item_id))[1:10] FROM rtrec_trending(NULL, 10000)
         WHERE item_id NOT IN (SELECT item_id FROM rtrec.user_items WHERE user_id = 42))
       AS trend_order;
SELECT (SELECT array_agg(item_id) FROM rtrec_recommend(42, 10))
    <> (SELECT array_agg(item_id) FROM default_top) AS ranking_changed;
-- swing only: Swing neighbours of 42's items first, each explained by the
-- item it is a neighbour of; the best scores 1 (scaled by the best candidate)
UPDATE rtrec.model_weights SET weight = 0 WHERE feature = 'trend';
UPDATE rtrec.model_weights SET weight = 1 WHERE feature = 'swing';
SELECT item_id, reason, round(score::numeric, 9) = 1 AS best FROM rtrec_recommend(42, 3);
SELECT count(*) AS rows,
       count(*) FILTER (WHERE NOT EXISTS (
           SELECT 1 FROM rtrec.swing_neighbors n
            WHERE r.reason = 'swing:' || n.item_id AND n.neighbor_id = r.item_id
              AND n.item_id IN (SELECT item_id FROM rtrec.user_items WHERE user_id = 42))) AS not_a_neighbor
  FROM rtrec_recommend(42, 6) r;
-- brand only: the score is the share of 42's event weight on the item's
-- brand, so the items of 42's favourite brand come first
UPDATE rtrec.model_weights SET weight = 0 WHERE feature = 'swing';
UPDATE rtrec.model_weights SET weight = 1 WHERE feature = 'brand';
CREATE TEMP TABLE brand_share AS
SELECT i.brand, sum(u.weight_sum) / sum(sum(u.weight_sum)) OVER () AS share
  FROM rtrec.user_items u JOIN rtrec.items i USING (item_id)
 WHERE u.user_id = 42 AND i.brand IS NOT NULL GROUP BY i.brand;
SELECT brand, round(share::numeric, 4) AS share FROM brand_share ORDER BY share DESC;
SELECT count(*) AS rows,
       count(*) FILTER (WHERE i.brand = (SELECT brand FROM brand_share ORDER BY share DESC LIMIT 1)) AS favourite_brand,
       count(*) FILTER (WHERE abs(r.score - b.share) > 1e-9) AS score_not_share
  FROM rtrec_recommend(42, 5) r JOIN rtrec.items i USING (item_id) JOIN brand_share b USING (brand);
-- price fit only: exp(-|ln price - 42's weighted mean ln price|), best first
UPDATE rtrec.model_weights SET weight = 0 WHERE feature = 'brand';
UPDATE rtrec.model_weights SET weight = 1 WHERE feature = 'price_fit';
CREATE TEMP TABLE price_level AS
SELECT sum(u.weight_sum * ln(i.price)::float8) / sum(u.weight_sum) AS mean_ln
  FROM rtrec.user_items u JOIN rtrec.items i USING (item_id)
 WHERE u.user_id = 42 AND i.price > 0;
SELECT count(*) AS rows,
       count(*) FILTER (WHERE abs(r.score - exp(-abs(ln(i.price)::float8 - p.mean_ln))) > 1e-9) AS score_not_fit,
       bool_and(r.score <= 1) AS at_most_one
  FROM rtrec_recommend(42, 10) r JOIN rtrec.items i USING (item_id), price_level p;
SELECT max(abs(ln(i.price)::float8 - p.mean_ln)) < 0.25 AS near_the_price_level
  FROM rtrec_recommend(42, 5) r JOIN rtrec.items i USING (item_id), price_level p;
--
-- rtrec_recommend loads catalog attributes only for the candidates its top
-- n can come from (in batches, by score bound).  It must give exactly what
-- ranking the whole pool gives; a trend weight of 1e-300 makes it rank the
-- whole pool (pool-relative features need it) without changing any score
-- above 1e-200.  Every user, several n, three weightings: the defaults,
-- with price, brand and a negative weight, and with catalog features
-- outweighing the generators.
--
CREATE TEMP TABLE all_users AS
SELECT DISTINCT user_id FROM rtrec.events UNION SELECT 9001;
CREATE FUNCTION pg_temp.top_lists() RETURNS TABLE (user_id bigint, n int, ord bigint, item_id bigint, score float8, reason text)
LANGUAGE sql AS $$
  SELECT u.user_id, k.n, r.ord, r.item_id, r.score, r.reason
    FROM all_users u, (VALUES (1), (3), (10)) k(n),
         LATERAL rtrec_recommend(u.user_id, k.n) WITH ORDINALITY r(item_id, score, reason, ord)
$$;
CREATE FUNCTION pg_temp.batched_equals_whole() RETURNS TABLE (rows bigint, compared bigint, mismatches bigint)
LANGUAGE plpgsql AS $$
BEGIN
  CREATE TEMP TABLE batched AS SELECT * FROM pg_temp.top_lists();
  UPDATE rtrec.model_weights SET weight = 1e-300 WHERE feature = 'trend';
  CREATE TEMP TABLE whole AS SELECT * FROM pg_temp.top_lists();
  UPDATE rtrec.model_weights SET weight = 0 WHERE feature = 'trend';
  RETURN QUERY
  SELECT count(*), count(*) FILTER (WHERE b.score > 1e-200),
         count(*) FILTER (WHERE b.score > 1e-200 AND (w.item_id IS DISTINCT FROM b.item_id
                          OR w.score IS DISTINCT FROM b.score OR w.reason IS DISTINCT FROM b.reason))
    FROM batched b LEFT JOIN whole w USING (user_id, n, ord);
  DROP TABLE batched, whole;
END
$$;
UPDATE rtrec.model_weights m SET weight = b.weight
  FROM weights_before b WHERE b.feature = m.feature;
SELECT * FROM pg_temp.batched_equals_whole();
UPDATE rtrec.model_weights SET weight = 0.4 WHERE feature = 'price_fit';
UPDATE rtrec.model_weights SET weight = 0.3 WHERE feature = 'brand';
UPDATE rtrec.model_weights SET weight = -0.2 WHERE feature = 'last_category';
SELECT * FROM pg_temp.batched_equals_whole();
-- catalog attributes outweigh the generators: loose bounds, late stops
UPDATE rtrec.model_weights SET weight = 0.1 WHERE feature IN ('swing', 'cf');
UPDATE rtrec.model_weights SET weight = 1 WHERE feature IN ('price_fit', 'brand', 'category');
SELECT * FROM pg_temp.batched_equals_whole();

-- restore
UPDATE rtrec.model_weights m SET weight = b.weight
  FROM weights_before b WHERE b.feature = m.feature;
SELECT (SELECT array_agg(item_id) FROM rtrec_recommend(42, 10))
     = (SELECT array_agg(item_id) FROM default_top) AS restored;

--
-- A user's categories come from their (user, item) rows, each filed under
-- the category its events came with: one item, viewed in category 1 and
-- put in the cart after it moved to 2, gives c2i candidates of both
--
INSERT INTO rtrec.items (item_id, category_id) VALUES (9200, 1);
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
    (9201, 9200, 'view', '2024-01-03 12:00:00+00');
UPDATE rtrec.items SET category_id = 2 WHERE item_id = 9200;
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
    (9201, 9200, 'cart', '2024-01-03 12:00:01+00');
SELECT category_id, n_events, weight_sum FROM rtrec.user_category WHERE user_id = 9201 ORDER BY 1;
SELECT string_agg(DISTINCT reason, ', ' ORDER BY reason) AS c2i_reasons
  FROM rtrec_recommend(9201, 10000) WHERE reason LIKE 'c2i:%';
-- the cart weighs more: category 2 first
SELECT reason FROM rtrec_recommend(9201, 1);

--
-- Arguments
--
SELECT * FROM rtrec_recommend(NULL);
SELECT * FROM rtrec_recommend(42, NULL);
SELECT * FROM rtrec_recommend(42, 0);
SELECT * FROM rtrec_recommend(42, 10001);
SELECT * FROM rtrec_recommend(42, 10, NULL, NULL);
SELECT * FROM rtrec_candidates(NULL);
SELECT * FROM rtrec_candidates(42, NULL);
SELECT * FROM rtrec_candidates(42, 0);
SELECT * FROM rtrec_candidates(42, 100001);
SELECT count(*) > 0 AS ok FROM rtrec_candidates(42, 100000);
SELECT * FROM rtrec_trending(NULL, NULL);
SELECT * FROM rtrec_trending(NULL, 0);
SELECT * FROM rtrec_trending(1, 10001);
-- unknown users and items are no error
SELECT count(*) > 0 AS ok FROM rtrec_recommend(-1, 5);
SELECT count(*) > 0 AS ok FROM rtrec_candidates(-1, 5);

-- leave nothing behind
(SELECT feature, weight FROM rtrec.model_weights EXCEPT SELECT * FROM weights_before)
UNION ALL
(SELECT * FROM weights_before EXCEPT SELECT feature, weight FROM rtrec.model_weights);
TRUNCATE rtrec.events;
DELETE FROM rtrec.items;
