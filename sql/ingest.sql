--
-- ingest: every way of writing events (single-row INSERT, multi-row INSERT,
-- COPY) keeps rtrec.user_features, item_features, user_category and
-- user_items exact.  Expected values are computed by hand; the half-life is
-- the default, one day, so an event one day older counts half.
--
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never

-- a clean slate (TRUNCATE also empties the derived state)
TRUNCATE rtrec.events RESTART IDENTITY;
DELETE FROM rtrec.items;
DELETE FROM rtrec.users;
SELECT value AS half_life_s FROM rtrec.config WHERE name = 'half_life_s';

-- readable, stable views of the state (floats rounded to 9 digits)
CREATE TEMP VIEW uf AS
SELECT user_id, n_events, weight_sum, first_ts, last_ts, last_item_id AS last_item,
       last_category_id AS last_cat, last_event_id AS last_event, n_items
  FROM rtrec.user_features ORDER BY user_id;
CREATE TEMP VIEW itf AS
SELECT item_id, n_events, n_users, round(trend::numeric, 9) AS trend, weight_sum,
       first_ts, last_ts
  FROM rtrec.item_features ORDER BY item_id;
CREATE TEMP VIEW uc AS
SELECT user_id, category_id, round(affinity::numeric, 9) AS affinity, n_events,
       weight_sum, last_ts
  FROM rtrec.user_category ORDER BY user_id, category_id;
CREATE TEMP VIEW ui AS
SELECT user_id, item_id, n_events, weight_sum, first_ts, last_ts
  FROM rtrec.user_items ORDER BY user_id, item_id;
-- the whole state as one comparable set
CREATE TEMP VIEW state AS
SELECT 'user' AS rel, user_id::text AS key,
       format('%s %s %s %s %s %s %s %s', n_events, weight_sum, first_ts, last_ts,
              last_event, last_item, last_cat, n_items) AS val
  FROM uf
UNION ALL
SELECT 'item', item_id::text,
       format('%s %s %s %s %s %s', n_events, n_users, trend, weight_sum, first_ts, last_ts)
  FROM itf
UNION ALL
SELECT 'user_category', user_id || ',' || category_id,
       format('%s %s %s %s', affinity, n_events, weight_sum, last_ts)
  FROM uc
UNION ALL
SELECT 'user_items', user_id || ',' || item_id,
       format('%s %s %s %s', n_events, weight_sum, first_ts, last_ts)
  FROM ui;

INSERT INTO rtrec.items (item_id, category_id) VALUES (10, 100), (11, 200), (12, 100);

--
-- 1. single-row INSERT
--
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
VALUES (1, 10, 'view', '2024-01-10 00:00:00+00');
-- user 1: one event; item 10: trend 1; category 100: affinity 1
SELECT * FROM uf;
SELECT * FROM itf;
SELECT * FROM uc;
SELECT * FROM ui;

--
-- 2. multi-row INSERT: a back-filled view one day earlier, a purchase by
--    user 2, a like two days earlier on item 12 (category 100), and an
--    impression (weight 0) on an unknown item 30 five days later
--
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
    (1, 10, 'view',       '2024-01-09 00:00:00+00'),
    (2, 10, 'purchase',   '2024-01-10 00:00:00+00'),
    (1, 12, 'like',       '2024-01-08 00:00:00+00'),
    (2, 30, 'impression', '2024-01-15 00:00:00+00');
-- user 1: 3 events, weight 1+1+2, first 01-08, last still 01-10 (item 10);
-- user 2: the impression is not counted, so last_ts stays 01-10 and last item 10
SELECT * FROM uf;
-- item 10 as of 01-10: 1 (view) + 0.5 (view a day earlier) + 4 (purchase) = 5.5
-- item 12: 2 as of its own last event; item 30 has no interactions
SELECT * FROM itf;
-- (1,100) as of 01-10: 1 + 0.5 + 2 * 0.25 = 2.0; (2,100): 4
SELECT * FROM uc;
SELECT * FROM ui;
-- the impression is stored, and its unknown item registered without category
SELECT event_id, user_id, item_id, event_type, ts FROM rtrec.events ORDER BY event_id;
SELECT item_id, category_id, price, brand, available FROM rtrec.items ORDER BY item_id;

--
-- 3. COPY: user 3 clicks 10 and views 11 at the same time (the later
--    event_id wins the tie for last item); user 1 carts unknown item 20;
--    an impression on item 10 two days later does not count
--
COPY rtrec.events (user_id, item_id, event_type, ts) FROM STDIN;
3	10	click	2024-01-11 00:00:00+00
3	11	view	2024-01-11 00:00:00+00
1	20	cart	2024-01-11 00:00:00+00
2	10	impression	2024-01-13 00:00:00+00
\.
-- user 1: 4 events, weight 7, last item 20 (no category); user 3: last item 11
-- (event 7, category 200), 2 distinct items
SELECT * FROM uf;
-- item 10 as of 01-11: 0.5 + 0.25 + 4 * 0.5 + 1 = 3.75, 3 users; item 20: 3
SELECT * FROM itf;
-- item 20 has no category: (1,100) unchanged; user 3 in 100 and 200
SELECT * FROM uc;
SELECT * FROM ui;
SELECT item_id, category_id, price, brand, available FROM rtrec.items ORDER BY item_id;
SELECT event_type, count(*) FROM rtrec.events GROUP BY 1 ORDER BY 1;
SELECT * FROM rtrec_verify();

--
-- 3b. inside the inserting transaction the state is visible at once; a
--     rollback (of the transaction or of a savepoint) takes it away again,
--     with the registration of a new item
--
BEGIN;
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
VALUES (9, 99, 'purchase', '2024-01-20 00:00:00+00');
SELECT user_id, n_events, last_item FROM uf WHERE user_id = 9;
SELECT item_id, n_events, trend FROM itf WHERE item_id = 99;
SAVEPOINT s;
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
VALUES (9, 98, 'view', '2024-01-21 00:00:00+00');
SELECT user_id, n_events, last_item FROM uf WHERE user_id = 9;
ROLLBACK TO SAVEPOINT s;
SELECT user_id, n_events, last_item FROM uf WHERE user_id = 9;
SELECT item_id FROM rtrec.items WHERE item_id IN (98, 99) ORDER BY 1;
ROLLBACK;
SELECT count(*) AS user_9 FROM uf WHERE user_id = 9;
SELECT item_id FROM rtrec.items WHERE item_id IN (98, 99);
SELECT * FROM rtrec_verify();

--
-- 4. ties on ts are broken by the greater event_id, within one statement and
--    across statements, whatever the insertion order
--
INSERT INTO rtrec.events (event_id, user_id, item_id, event_type, ts) VALUES
    (1000002, 4, 11, 'view', '2024-02-01 00:00:00+00'),
    (1000001, 4, 10, 'view', '2024-02-01 00:00:00+00');
INSERT INTO rtrec.events (event_id, user_id, item_id, event_type, ts) VALUES
    (1000004, 5, 12, 'view', '2024-02-01 00:00:00+00');
INSERT INTO rtrec.events (event_id, user_id, item_id, event_type, ts) VALUES
    (1000003, 5, 11, 'view', '2024-02-01 00:00:00+00');
-- user 4: event 1000002 (item 11, category 200); user 5: event 1000004 (item 12, category 100)
SELECT user_id, last_ts, last_event, last_item, last_cat FROM uf WHERE user_id IN (4, 5);
SELECT * FROM rtrec_verify();

--
-- 5. order independence: replaying the same events (same ids) in reverse
--    order in one statement, and one statement per event in a shuffled
--    order, gives exactly the same state
--
CREATE TEMP TABLE ev AS
SELECT event_id, user_id, item_id, event_type, ts FROM rtrec.events;
CREATE TEMP TABLE state_in_order AS SELECT * FROM state;
SELECT count(*) AS state_rows FROM state_in_order;

TRUNCATE rtrec.events;
SELECT count(*) AS state_rows_after_truncate FROM state;
INSERT INTO rtrec.events (event_id, user_id, item_id, event_type, ts)
SELECT * FROM ev ORDER BY ts DESC, event_id DESC;
(SELECT * FROM state EXCEPT SELECT * FROM state_in_order)
UNION ALL
(SELECT * FROM state_in_order EXCEPT SELECT * FROM state);

TRUNCATE rtrec.events;
DO $$
DECLARE
    e record;
BEGIN
    -- a fixed shuffle: by event_id * 7 mod 13
    FOR e IN SELECT * FROM ev ORDER BY (event_id * 7) % 13, event_id DESC LOOP
        INSERT INTO rtrec.events (event_id, user_id, item_id, event_type, ts)
        VALUES (e.event_id, e.user_id, e.item_id, e.event_type, e.ts);
    END LOOP;
END
$$;
(SELECT * FROM state EXCEPT SELECT * FROM state_in_order)
UNION ALL
(SELECT * FROM state_in_order EXCEPT SELECT * FROM state);
SELECT * FROM rtrec_verify();

-- rtrec_rebuild() recomputes the same state, too
SELECT rtrec_rebuild();
(SELECT * FROM state EXCEPT SELECT * FROM state_in_order)
UNION ALL
(SELECT * FROM state_in_order EXCEPT SELECT * FROM state);
SELECT * FROM rtrec_verify();

--
-- 6. the category is taken at insert time: moving items 12 (100 -> 200) and
--    11 (200 -> 300) changes nothing stored until rtrec_rebuild()
--
UPDATE rtrec.items SET category_id = 200 WHERE item_id = 12;
UPDATE rtrec.items SET category_id = 300 WHERE item_id = 11;
-- a new event already files under the new category
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
VALUES (6, 11, 'view', '2024-01-12 00:00:00+00');
SELECT * FROM uc;
SELECT user_id, last_item, last_cat FROM uf WHERE user_id IN (3, 4, 6);
-- the differences from a recomputation with the current categories
SELECT relation, key, stored IS NOT NULL AS has_stored, expected IS NOT NULL AS has_expected
  FROM rtrec_verify();
SELECT rtrec_rebuild();
SELECT * FROM rtrec_verify();
-- (1,100) as of 01-10: 1 + 0.5; (1,200): 2 (the like); user 3's view of 11 is now in 300
SELECT * FROM uc;
SELECT user_id, last_item, last_cat FROM uf WHERE user_id IN (3, 4, 6);

--
-- 7. DELETE of events, then rtrec_rebuild(): the state of the remaining events
--
DELETE FROM rtrec.events WHERE user_id = 1 OR event_type = 'purchase';
-- before the rebuild the stored state still counts the deleted events
SELECT relation, key FROM rtrec_verify();
SELECT rtrec_rebuild();
SELECT * FROM rtrec_verify();
SELECT * FROM uf;
-- item 10 as of 02-01: user 4's view (1) + user 3's click 21 days earlier
-- (2^-21 = 0.000000477); item 11: views on 02-01 by users 4 and 5 (2), by
-- user 3 on 01-11 (2^-21) and by user 6 on 01-12 (2^-20): 2.000001431
SELECT * FROM itf;
SELECT * FROM uc;
SELECT * FROM ui;

--
-- 7b. after a rebuild the state lives in the rebuild's slot and new events
--     go to this session's slot; merged, a back-filled event with a greater
--     event_id is still not the user's last event
--
INSERT INTO rtrec.events (event_id, user_id, item_id, event_type, ts)
VALUES (2000000, 4, 12, 'view', '2024-01-15 00:00:00+00');
SELECT user_id, n_events, first_ts, last_ts, last_event, last_item, last_cat, n_items
  FROM uf WHERE user_id = 4;
SELECT count(DISTINCT slot) AS slots FROM rtrec.user_state WHERE user_id = 4;
SELECT * FROM rtrec_verify();

--
-- 8. TRUNCATE empties the derived state; the catalog stays
--
TRUNCATE rtrec.events;
SELECT (SELECT count(*) FROM rtrec.user_state) AS user_state,
       (SELECT count(*) FROM rtrec.item_state) AS item_state,
       (SELECT count(*) FROM rtrec.user_item_state) AS user_item_state,
       (SELECT count(*) FROM rtrec.items) AS items;
SELECT * FROM rtrec_verify();

--
-- 9. decay across decades: 1970 and 2030 in one item neither overflows nor
--    loses precision at either end
--
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
    (7, 40, 'view',     '1970-01-01 00:00:00+00'),
    (7, 40, 'purchase', '2030-01-01 00:00:00+00'),
    (7, 41, 'view',     '1970-01-01 00:00:00+00'),
    (8, 41, 'view',     '1970-01-02 00:00:00+00'),
    (7, 42, 'view',     '2029-12-31 00:00:00+00'),
    (8, 42, 'like',     '2030-01-01 00:00:00+00');
-- item 40: 4 + 2^-21915 = 4; item 41 as of 1970-01-02: 1 + 0.5; item 42: 2 + 0.5
SELECT * FROM itf;
-- the stored form is finite as well
SELECT item_id, trend_log2 > '-Infinity' AND trend_log2 < 'Infinity' AS finite_log2
  FROM rtrec.item_features ORDER BY item_id;
SELECT * FROM rtrec_verify();
SELECT rtrec_rebuild();
SELECT * FROM itf;
SELECT * FROM rtrec_verify();

--
-- 10. a batch larger than one ingest chunk with keys spread over the whole
--     batch; a chunk holds as many events as maintenance_work_mem does at
--     200 bytes each, and at least 65536: with 1MB, 65536
--
SET maintenance_work_mem = '1MB';
TRUNCATE rtrec.events;
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
SELECT g % 7, 1000 + g % 11, CASE WHEN g % 5 = 0 THEN 'impression' ELSE 'view' END,
       '2024-03-01 00:00:00+00'::timestamptz + g * interval '1 second'
  FROM generate_series(1, 70000) g;
-- 70000 rows, of which 14000 impressions: 56000 interactions
SELECT sum(n_events) AS user_events, count(*) AS users FROM rtrec.user_features;
SELECT sum(n_events) AS item_events, count(*) AS items FROM rtrec.item_features;
SELECT sum(n_events) AS pair_events, count(*) AS pairs FROM rtrec.user_items;
SELECT max(last_ts) AS last_ts, min(first_ts) AS first_ts FROM rtrec.user_features;
SELECT * FROM rtrec_verify();
-- rtrec_rebuild() may use parallel workers: make them do all the work (the
-- C functions they call must not need anything only the leader has)
SET parallel_leader_participation = off;
SELECT rtrec_rebuild();
RESET parallel_leader_participation;
SELECT sum(n_events) AS user_events, count(*) AS users FROM rtrec.user_features;
SELECT * FROM rtrec_verify();

--
-- 11. two such batches in a row into the same keys: the second finds the
--     rows (and the dead versions) the first left in this session's slot,
--     in every chunk
--
TRUNCATE rtrec.events;
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
SELECT g % 7, 1000 + g % 11, 'view', '2024-03-01 00:00:00+00'::timestamptz + g * interval '1 second'
  FROM generate_series(1, 70000) g;
BEGIN;
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
SELECT g % 7, 1000 + g % 13, 'click', '2024-03-02 00:00:00+00'::timestamptz + g * interval '1 second'
  FROM generate_series(1, 140000) g;
SELECT sum(n_events) AS user_events, count(*) AS users FROM rtrec.user_features;
SELECT sum(n_events) AS pair_events, count(*) AS pairs FROM rtrec.user_items;
-- this statement's queue rows (the worker may have drained the first's):
-- one per pair and chunk (3 x 91); new only for items 1011 and 1012 (7 users
-- each), and only in the first chunk
SELECT count(*) AS queued, count(*) FILTER (WHERE new_pair) AS new_pairs,
       count(*) FILTER (WHERE new_pair AND item_id IN (1011, 1012)) AS new_pairs_1011_1012
  FROM rtrec.swing_queue WHERE queued_at = now();
COMMIT;
SELECT * FROM rtrec_verify();
-- with the default 64MB, the same statement is one chunk of up to 209715
-- events: one queue row per pair, and a row of each key written once
RESET maintenance_work_mem;
BEGIN;
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
SELECT g % 7, 1000 + g % 13, 'click', '2024-03-03 00:00:00+00'::timestamptz + g * interval '1 second'
  FROM generate_series(1, 140000) g;
SELECT count(*) AS queued, count(*) FILTER (WHERE new_pair) AS new_pairs
  FROM rtrec.swing_queue WHERE queued_at = now();
COMMIT;
SELECT sum(n_events) AS pair_events, count(*) AS pairs FROM rtrec.user_items;
SELECT * FROM rtrec_verify();

--
-- 12. this session's slot rows of one key after everything that can leave
--     other versions of them behind or move them: rollbacks, rtrec_rebuild(),
--     VACUUM handing their places to other keys' rows, TRUNCATE, a category
--     change.  User 50 views item 50 once per step; each step checks the
--     counts and rtrec_verify().
--
TRUNCATE rtrec.events;
INSERT INTO rtrec.items (item_id, category_id) VALUES (50, 500);
CREATE TEMP VIEW user50 AS
SELECT (SELECT n_events FROM rtrec.user_features WHERE user_id = 50) AS user_events,
       (SELECT n_events FROM rtrec.item_features WHERE item_id = 50) AS item_events,
       (SELECT string_agg(category_id || ':' || n_events, ' ' ORDER BY category_id)
          FROM rtrec.user_category WHERE user_id = 50) AS categories,
       (SELECT n_events FROM rtrec.user_items WHERE user_id = 50 AND item_id = 50) AS pair_events,
       (SELECT count(*) FROM rtrec_verify()) AS differences;
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES (50, 50, 'view', '2024-04-01 00:00:00+00');
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES (50, 50, 'view', '2024-04-01 00:00:01+00');
SELECT * FROM user50;
-- a rolled-back transaction: its row versions never were
BEGIN;
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES (50, 50, 'view', '2024-04-01 00:00:02+00');
ROLLBACK;
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES (50, 50, 'view', '2024-04-01 00:00:03+00');
SELECT * FROM user50;
-- a rolled-back savepoint, inside a transaction that goes on
BEGIN;
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES (50, 50, 'view', '2024-04-01 00:00:04+00');
SAVEPOINT s;
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES (50, 50, 'view', '2024-04-01 00:00:05+00');
ROLLBACK TO SAVEPOINT s;
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES (50, 50, 'view', '2024-04-01 00:00:06+00');
COMMIT;
SELECT * FROM user50;
-- rtrec_rebuild() deletes every row and writes its own slot's
SELECT rtrec_rebuild();
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES (50, 50, 'view', '2024-04-01 00:00:07+00');
SELECT * FROM user50;
-- the deleted rows' places are freed by VACUUM and taken by other users' rows
DELETE FROM rtrec.events WHERE user_id = 50;
SELECT rtrec_rebuild();
VACUUM rtrec.user_state, rtrec.item_state, rtrec.user_item_state;
INSERT INTO rtrec.items (item_id, category_id) SELECT i, 500 FROM generate_series(51, 90) i;
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
SELECT u, i, 'view', '2024-04-02 00:00:00+00' FROM generate_series(51, 90) u, generate_series(51, 90) i;
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES (50, 50, 'view', '2024-04-01 00:00:08+00');
SELECT * FROM user50;
-- TRUNCATE: the pages of the rows are gone
TRUNCATE rtrec.events;
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES (50, 50, 'view', '2024-04-01 00:00:09+00');
SELECT * FROM user50;
-- an item moves to another category: the event files under the new one (rtrec_verify()
-- reports the two (user, category) rows that the move changed, as in 6.)
UPDATE rtrec.items SET category_id = 501 WHERE item_id = 50;
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES (50, 50, 'view', '2024-04-01 00:00:10+00');
SELECT * FROM user50;

--
-- 13. the batch writer's two shortcuts (bulk_insert.c, key_cursor.c):
--     a batch's new rows and their index entries, checked by amcheck
--     against the heap (every row indexed, every index in order); keys
--     looked up by one forward scan whether they are dense, sparse, behind
--     a user's hundreds of items or new between existing ones; and a
--     state table with an index the writer cannot handle itself
--
CREATE EXTENSION amcheck;
CREATE FUNCTION pg_temp.check_state_indexes() RETURNS TABLE (indexes bigint, checked bigint)
LANGUAGE sql AS $$
SELECT count(*), count(bt_index_check(i.indexrelid, true))
  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
 WHERE c.relnamespace = 'rtrec'::regnamespace
   AND c.relname IN ('user_state', 'item_state', 'user_item_state')
$$;
TRUNCATE rtrec.events;
INSERT INTO rtrec.items (item_id, category_id) SELECT i, 600 + i % 7 FROM generate_series(1000, 1999) i;
-- dense: 20000 users over 1000 items in one statement
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
SELECT g, 1000 + (g * 7919) % 1000, 'view', '2024-06-01 00:00:00+00'::timestamptz + g * interval '1 second'
  FROM generate_series(1, 20000) g;
SELECT * FROM pg_temp.check_state_indexes();
-- sparse: every 97th of those users again, and new users between them
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
SELECT u, 1000 + (u * 31) % 1000, 'click', '2024-06-02 00:00:00+00'::timestamptz + u * interval '1 second'
  FROM generate_series(1, 20000, 97) g, LATERAL (VALUES (g), (g + 20000), (g * 3 + 100000)) v(u);
-- user 7: 900 items, then single events on some of them in random order
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
SELECT 7, i, 'view', '2024-06-03 00:00:00+00'::timestamptz + i * interval '1 second'
  FROM generate_series(1000, 1899) i;
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES (7, 1700, 'cart', '2024-06-04 00:00:00+00');
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES (7, 1003, 'cart', '2024-06-04 00:00:01+00');
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
VALUES (7, 1899, 'like', '2024-06-04 00:00:02+00'), (7, 1950, 'view', '2024-06-04 00:00:03+00'),
       (7, 1001, 'like', '2024-06-04 00:00:04+00');
SELECT n_events, count_items.n AS items FROM rtrec.user_features,
       LATERAL (SELECT count(*) AS n FROM rtrec.user_items WHERE user_id = 7) count_items
 WHERE user_id = 7;
SELECT * FROM pg_temp.check_state_indexes();
SELECT * FROM rtrec_verify();
-- an index with an expression and a predicate: such a table gets the
-- executor's per-row insert; the index must hold every new row it covers
CREATE INDEX user_item_state_test_idx ON rtrec.user_item_state ((item_id % 10)) WHERE n_events > 0;
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
SELECT 200000 + g, 1000 + g % 50, 'view', '2024-06-05 00:00:00+00' FROM generate_series(1, 3000) g;
SELECT * FROM pg_temp.check_state_indexes();
SET enable_seqscan = off;
SELECT count(*) AS through_test_index FROM rtrec.user_item_state WHERE item_id % 10 = 3 AND n_events > 0;
RESET enable_seqscan;
SELECT count(*) AS rows_with_3 FROM rtrec.user_item_state WHERE (item_id % 10) + 0 = 3;
DROP INDEX rtrec.user_item_state_test_idx;
SELECT * FROM rtrec_verify();

-- 14. in-page (HOT) updates: 40 users on one item, 600 events each in its
--     own transaction (\gexec runs one statement at a time, autocommit).
--     The trigger fetches a state row through its chain of dead versions
--     and prunes a page only when it is nearly full (key_cursor.c): every
--     fetch must find the live version, or counts would be lost.  (How far
--     pruning keeps the tables small depends on the oldest running
--     snapshot, the refresh worker's among them, so it is not shown here;
--     bench figures in the README.)  Autovacuum is kept out of it, so
--     that the dead versions are the trigger's to walk through and prune.
--     The (user, item) rows are updated in place too: no index has a
--     column that a repeat event changes.  Most of their 560 updates must
--     be HOT (before 1.2 none was: last_ts was indexed).
TRUNCATE rtrec.events;
ALTER TABLE rtrec.user_state SET (autovacuum_enabled = false);
ALTER TABLE rtrec.item_state SET (autovacuum_enabled = false);
ALTER TABLE rtrec.user_item_state SET (autovacuum_enabled = false);
SELECT pg_stat_force_next_flush();
SELECT n_tup_upd AS pair_updates_before, n_tup_hot_upd AS pair_hot_before
  FROM pg_stat_user_tables WHERE relid = 'rtrec.user_item_state'::regclass \gset
\set ECHO none
SELECT format('INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES (%s, 1000, %L, %L)',
              1 + g % 40, 'view', '2024-07-01 00:00:00+00'::timestamptz + g * interval '1 second')
  FROM generate_series(0, 599) g
\gexec
\set ECHO all
SELECT (SELECT n_events FROM rtrec.item_features WHERE item_id = 1000) AS item_events,
       (SELECT count(*) FROM rtrec.user_state) AS user_rows,
       (SELECT min(n_events) || '-' || max(n_events) FROM rtrec.user_features) AS per_user;
SELECT count(*) AS heap_problems
  FROM (SELECT * FROM verify_heapam('rtrec.user_state')
        UNION ALL SELECT * FROM verify_heapam('rtrec.item_state')
        UNION ALL SELECT * FROM verify_heapam('rtrec.user_item_state')) v;
SELECT * FROM pg_temp.check_state_indexes();
SELECT * FROM rtrec_verify();
SELECT pg_stat_force_next_flush();
SELECT n_tup_upd - :pair_updates_before AS pair_updates,
       n_tup_hot_upd - :pair_hot_before > (n_tup_upd - :pair_updates_before) / 2 AS mostly_hot
  FROM pg_stat_user_tables WHERE relid = 'rtrec.user_item_state'::regclass;
ALTER TABLE rtrec.user_state RESET (autovacuum_enabled);
ALTER TABLE rtrec.item_state RESET (autovacuum_enabled);
ALTER TABLE rtrec.user_item_state RESET (autovacuum_enabled);
DROP EXTENSION amcheck;

-- 15. one statement whose users mix items with and without a category,
--     the batch's first and last users with none (the user-category pass
--     of a database not yet updated to 1.2 skips the runs of events without
--     one), then a statement whose items have none at all, then items that
--     change category
TRUNCATE rtrec.events;
INSERT INTO rtrec.items (item_id, category_id) VALUES (3000, NULL), (3001, 700), (3002, 701), (3003, NULL);
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
  (1, 3000, 'view', '2024-08-01 00:00:00+00'),
  (2, 3001, 'view', '2024-08-01 00:00:01+00'),
  (2, 3000, 'click', '2024-08-01 00:00:02+00'),
  (2, 3002, 'view', '2024-08-01 00:00:03+00'),
  (2, 3001, 'cart', '2024-08-01 00:00:04+00'),
  (3, 3003, 'view', '2024-08-01 00:00:05+00'),
  (3, 3000, 'view', '2024-08-01 00:00:06+00');
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
  (4, 3000, 'view', '2024-08-01 00:00:07+00'), (5, 3003, 'view', '2024-08-01 00:00:08+00');
SELECT user_id, category_id, n_events FROM rtrec.user_category ORDER BY 1, 2;
SELECT user_id, n_events, last_item_id, last_category_id FROM rtrec.user_features ORDER BY 1;
SELECT * FROM rtrec_verify();
-- then the items move while user 2 has events on them: item 3000 gets its
-- first category (NULL -> 700), item 3001 another one (700 -> 701).  The
-- pair gets a row per category (user_item_state), rtrec.user_items still
-- counts it once, and rtrec.user_category files each event under the
-- category it came with: 700 = 3000's new view + 3001's view and cart; 701 =
-- 3001's new view and click (the click a statement of its own, which finds
-- both of the pair's rows) + 3002's view.
UPDATE rtrec.items SET category_id = 700 WHERE item_id = 3000;
UPDATE rtrec.items SET category_id = 701 WHERE item_id = 3001;
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
  (2, 3000, 'view', '2024-08-02 00:00:00+00'), (2, 3001, 'view', '2024-08-02 00:00:01+00');
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
  (2, 3001, 'click', '2024-08-02 00:00:02+00');
SELECT item_id, category_id, n_events FROM rtrec.user_item_state WHERE user_id = 2
 ORDER BY 1, 2 NULLS FIRST;
SELECT item_id, n_events FROM rtrec.user_items WHERE user_id = 2 ORDER BY 1;
SELECT category_id, n_events FROM rtrec.user_category WHERE user_id = 2 ORDER BY 1;
-- a recomputation files the past under the current categories (3000 and
-- 3001's events all in 700 and 701): it differs until rtrec_rebuild(), for
-- user 2 and for 3000's other users (1, 3 and 4: category and last category)
SELECT relation, key FROM rtrec_verify();
SELECT rtrec_rebuild();
SELECT item_id, category_id, n_events FROM rtrec.user_item_state WHERE user_id = 2
 ORDER BY 1, 2 NULLS FIRST;
SELECT * FROM rtrec_verify();

-- leave nothing behind
TRUNCATE rtrec.events RESTART IDENTITY;
DELETE FROM rtrec.items;

-- 16. a reinstall within one session: the trigger (and the backend's kept
--     plans and settings) must find the new tables
INSERT INTO rtrec.events (user_id, item_id, event_type) VALUES (1, 1, 'view');
SET client_min_messages = warning;
DROP EXTENSION rtrec CASCADE;  -- and this test's temp views
RESET client_min_messages;
CREATE EXTENSION rtrec;
INSERT INTO rtrec.events (user_id, item_id, event_type) VALUES (1, 1, 'view'), (2, 1, 'cart');
SELECT user_id, n_events FROM rtrec.user_features ORDER BY user_id;
SELECT item_id, n_events, n_users FROM rtrec.item_features;
SELECT * FROM rtrec_verify();
TRUNCATE rtrec.events RESTART IDENTITY;
DELETE FROM rtrec.items;
