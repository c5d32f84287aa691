-- rtrec demo: a small shop whose customer 42 changes interest mid-session.
-- Run by scripts/demo.sh on a throwaway cluster; every number below comes
-- from the extension, nothing is precomputed.
\set ON_ERROR_STOP on
\pset footer off
SELECT setseed(0.42) \gset

\echo
\echo '=== 1. The catalog: 3 categories x 30 items (1 = clothes, 2 = monitors, 3 = books)'
INSERT INTO rtrec.items (item_id, category_id, price, brand)
SELECT c * 1000 + i, c, round((10 + 90 * random())::numeric * c, 2),
       (ARRAY['acme', 'zenith', 'orbit'])[1 + i % 3]
  FROM generate_series(1, 3) c, generate_series(1, 30) i;
SELECT category_id, count(*) AS items, min(price) AS min_price, max(price) AS max_price
  FROM rtrec.items GROUP BY 1 ORDER BY 1;

\echo
\echo '=== 2. History: 300 shoppers, each with one main interest; items come in "styles" of 5'
\echo '    that people browse together (views, some carts and purchases), loaded in one INSERT'
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
SELECT u,
       (1 + u % 3) * 1000 + (s.style * 5 + 1 + (random() * 4)::int),
       (ARRAY['view', 'view', 'view', 'click', 'like', 'cart', 'purchase'])[1 + (random() * 6)::int],
       timestamptz '2026-11-01' + (u * 8 + s.g * 4 + k) * interval '13 minutes'
  FROM generate_series(1, 300) u
 CROSS JOIN LATERAL (SELECT g, (u / 3 + g * 2) % 6 AS style FROM generate_series(1, 2) g) s
 CROSS JOIN generate_series(1, 4) k;
SELECT count(*) AS events, count(DISTINCT user_id) AS users FROM rtrec.events;
SELECT rtrec_swing_refresh() AS neighbour_lists_refreshed;

\echo
\echo '=== 3. Customer 42 so far: clothes only'
SELECT user_id, n_events, n_items, last_item_id, last_category_id FROM rtrec.user_features WHERE user_id = 42;
SELECT category_id, round(affinity::numeric, 3) AS affinity, n_events FROM rtrec.user_category WHERE user_id = 42;

\echo
\echo '=== 4. SELECT * FROM rtrec_recommend(42, 8);'
SELECT item_id, item_id / 1000 AS category, round(score::numeric, 3) AS score, reason
  FROM rtrec_recommend(42, 8);

\echo
\echo '=== 5. Now 42 starts looking at wide-screen monitors: three views, one add-to-cart'
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
	(42, 2006, 'view', '2026-11-30 10:00'),
	(42, 2007, 'view', '2026-11-30 10:01'),
	(42, 2008, 'view', '2026-11-30 10:02'),
	(42, 2007, 'cart', '2026-11-30 10:03');
SELECT category_id, round(affinity::numeric, 3) AS affinity, n_events FROM rtrec.user_category WHERE user_id = 42;

\echo
\echo '=== 6. The very next call (no batch job, no refresh call): monitors lead'
SELECT item_id, item_id / 1000 AS category, round(score::numeric, 3) AS score, reason
  FROM rtrec_recommend(42, 8);

\echo
\echo '=== 7. A brand-new customer with two clicks on books gets useful results at once'
INSERT INTO rtrec.events (user_id, item_id, event_type) VALUES (7777, 3011, 'click'), (7777, 3012, 'click');
SELECT item_id, item_id / 1000 AS category, round(score::numeric, 3) AS score, reason
  FROM rtrec_recommend(7777, 5);

\echo
\echo '=== 8. Swing neighbours of monitor 2007 (exact; refreshed by the background worker)'
SELECT pg_sleep(1.5) \gset
SELECT item_id, round(score::numeric, 4) AS swing FROM rtrec_similar(2007, 5);

\echo
\echo '=== 9. Consistency: rtrec_verify() lists every difference from a recomputation (none)'
SELECT count(*) AS differences FROM rtrec_verify();
