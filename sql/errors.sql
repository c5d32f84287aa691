--
-- errors: every bad input is rejected with a clear error (SQLSTATE, a
-- message naming the value, a hint) and has no effect at all.
--
-- pg_temp.try(sql) runs a statement and shows the error it raises as one
-- row: SQLSTATE, message, detail and hint.  (psql's verbose mode would also
-- print C file names and line numbers, which change with every edit.)
--
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never

TRUNCATE rtrec.events RESTART IDENTITY;
DELETE FROM rtrec.items;

CREATE FUNCTION pg_temp.try(sql text)
RETURNS TABLE (state text, message text, detail text, hint text)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    state := '00000';
    message := 'no error';
    RETURN NEXT;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    RETURN NEXT;
END
$$;

-- everything an event can change, as one comparable set
CREATE TEMP VIEW everything AS
SELECT 'event' AS rel, format('%s %s %s %s %s', event_id, user_id, item_id, event_type, ts) AS val
  FROM rtrec.events
UNION ALL SELECT 'item', format('%s', i) FROM rtrec.items i
UNION ALL SELECT 'user_state', format('%s', s) FROM rtrec.user_state s
UNION ALL SELECT 'item_state', format('%s', s) FROM rtrec.item_state s
UNION ALL SELECT 'user_item_state', format('%s', s) FROM rtrec.user_item_state s;

INSERT INTO rtrec.items (item_id, category_id) VALUES (1, 10), (2, 20);
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
    (1, 1, 'view', '2024-01-01 00:00:00+00'),
    (2, 2, 'purchase', '2024-01-02 00:00:00+00');
CREATE TEMP TABLE before AS SELECT * FROM everything;
SELECT rel, count(*) FROM before GROUP BY rel ORDER BY rel;

-- run after each group of failed statements: no rows = nothing changed
CREATE TEMP VIEW changes AS
(SELECT 'added' AS change, * FROM everything EXCEPT SELECT 'added', * FROM before)
UNION ALL
(SELECT 'removed', * FROM before EXCEPT SELECT 'removed', * FROM everything);

\x on

--
-- events
--
-- NULL ids and type
SELECT * FROM pg_temp.try($$INSERT INTO rtrec.events (user_id, item_id, event_type) VALUES (NULL, 1, 'view')$$);
SELECT * FROM pg_temp.try($$INSERT INTO rtrec.events (user_id, item_id, event_type) VALUES (1, NULL, 'view')$$);
SELECT * FROM pg_temp.try($$INSERT INTO rtrec.events (user_id, item_id, event_type) VALUES (1, 1, NULL)$$);
SELECT * FROM pg_temp.try($$INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES (1, 1, 'view', NULL)$$);
-- unknown event type (names are case-sensitive)
SELECT * FROM pg_temp.try($$INSERT INTO rtrec.events (user_id, item_id, event_type) VALUES (1, 1, 'bogus')$$);
SELECT * FROM pg_temp.try($$INSERT INTO rtrec.events (user_id, item_id, event_type) VALUES (1, 1, 'View')$$);
-- times must be finite
SELECT * FROM pg_temp.try($$INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES (1, 1, 'view', 'infinity')$$);
SELECT * FROM pg_temp.try($$INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES (1, 1, 'view', '-infinity')$$);
-- a multi-row INSERT with one bad row (and a new item) changes nothing
SELECT * FROM pg_temp.try($$
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
    (1, 1, 'view', '2024-01-03 00:00:00+00'),
    (3, 77, 'cart', '2024-01-03 00:00:00+00'),
    (1, 2, 'no_such_type', '2024-01-03 00:00:00+00'),
    (2, 1, 'like', '2024-01-03 00:00:00+00')$$);
SELECT * FROM pg_temp.try($$
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
SELECT 5, g, 'view', CASE WHEN g = 500 THEN 'infinity' ELSE '2024-01-04 00:00:00+00' END::timestamptz
  FROM generate_series(100, 600) g$$);
-- UPDATE is rejected, even of no rows
SELECT * FROM pg_temp.try($$UPDATE rtrec.events SET event_type = 'purchase' WHERE user_id = 1$$);
SELECT * FROM pg_temp.try($$UPDATE rtrec.events SET ts = ts WHERE false$$);
\x off
SELECT * FROM changes;
SELECT event_id, user_id, item_id, event_type FROM rtrec.events ORDER BY event_id;

-- a COPY with one bad row changes nothing either (psql shows the error,
-- with the line of the bad row)
\set SHOW_CONTEXT errors
COPY rtrec.events (user_id, item_id, event_type, ts) FROM STDIN;
1	1	view	2024-01-05 00:00:00+00
4	88	view	2024-01-05 00:00:00+00
1	1	clikc	2024-01-05 00:00:00+00
\.
COPY rtrec.events (user_id, item_id, event_type, ts) FROM STDIN;
1	1	view	2024-01-05 00:00:00+00
4	88	view	infinity
\.
COPY rtrec.events (user_id, item_id, event_type, ts) FROM STDIN;
1	1	view	2024-01-05 00:00:00+00
\N	88	view	2024-01-05 00:00:00+00
\.
\set SHOW_CONTEXT never
SELECT * FROM changes;
SELECT * FROM rtrec_verify();

--
-- settings
--
CREATE TEMP TABLE config_before AS SELECT name, value FROM rtrec.config;
\x on
SELECT * FROM pg_temp.try($$INSERT INTO rtrec.config (name, value, description, min_value, max_value) VALUES ('half_life', 1, 'x', 0, 2)$$);
SELECT * FROM pg_temp.try($$UPDATE rtrec.config SET value = NULL WHERE name = 'half_life_s'$$);
SELECT * FROM pg_temp.try($$UPDATE rtrec.config SET value = 'NaN' WHERE name = 'half_life_s'$$);
SELECT * FROM pg_temp.try($$UPDATE rtrec.config SET value = 'Infinity' WHERE name = 'half_life_s'$$);
SELECT * FROM pg_temp.try($$UPDATE rtrec.config SET value = '-Infinity' WHERE name = 'swing_user_beta'$$);
SELECT * FROM pg_temp.try($$UPDATE rtrec.config SET value = 0 WHERE name = 'half_life_s'$$);
SELECT * FROM pg_temp.try($$UPDATE rtrec.config SET value = -86400 WHERE name = 'half_life_s'$$);
SELECT * FROM pg_temp.try($$UPDATE rtrec.config SET value = 1 WHERE name = 'swing_max_users_per_item'$$);
SELECT * FROM pg_temp.try($$UPDATE rtrec.config SET value = 100001 WHERE name = 'candidates'$$);
SELECT * FROM pg_temp.try($$UPDATE rtrec.config SET value = -1 WHERE name = 'swing_alpha'$$);
SELECT * FROM pg_temp.try($$UPDATE rtrec.config SET value = 10.5 WHERE name = 'candidates'$$);
SELECT * FROM pg_temp.try($$UPDATE rtrec.config SET value = 2.5 WHERE name = 'swing_min_items_per_user'$$);
-- min must not exceed max, whichever bound moves
SELECT * FROM pg_temp.try($$UPDATE rtrec.config SET value = 1001 WHERE name = 'swing_min_items_per_user'$$);
UPDATE rtrec.config SET value = 10 WHERE name = 'swing_min_items_per_user';
SELECT * FROM pg_temp.try($$UPDATE rtrec.config SET value = 9 WHERE name = 'swing_max_items_per_user'$$);
-- equal bounds are fine
SELECT * FROM pg_temp.try($$UPDATE rtrec.config SET value = 10 WHERE name = 'swing_max_items_per_user'$$);
UPDATE rtrec.config SET value = 1000 WHERE name = 'swing_max_items_per_user';
UPDATE rtrec.config SET value = 1 WHERE name = 'swing_min_items_per_user';
-- one bad row in a multi-row UPDATE rejects all of it
SELECT * FROM pg_temp.try($$UPDATE rtrec.config SET value = CASE name WHEN 'candidates' THEN 0 ELSE value * 2 END
                              WHERE name IN ('half_life_s', 'candidates')$$);
-- only the value (and description) can change; settings cannot be deleted
SELECT * FROM pg_temp.try($$UPDATE rtrec.config SET name = 'half_life' WHERE name = 'half_life_s'$$);
SELECT * FROM pg_temp.try($$UPDATE rtrec.config SET max_value = 1e300 WHERE name = 'candidates'$$);
SELECT * FROM pg_temp.try($$DELETE FROM rtrec.config WHERE name = 'candidates'$$);
\x off
-- nothing changed
(SELECT name, value FROM rtrec.config EXCEPT SELECT * FROM config_before)
UNION ALL
(SELECT * FROM config_before EXCEPT SELECT name, value FROM rtrec.config);
SELECT name, value FROM rtrec.config WHERE name IN ('half_life_s', 'candidates') ORDER BY name;

--
-- event types
--
\x on
SELECT * FROM pg_temp.try($$INSERT INTO rtrec.event_types VALUES ('share', -1)$$);
SELECT * FROM pg_temp.try($$INSERT INTO rtrec.event_types VALUES ('share', 'NaN')$$);
SELECT * FROM pg_temp.try($$INSERT INTO rtrec.event_types VALUES ('share', 'Infinity')$$);
SELECT * FROM pg_temp.try($$INSERT INTO rtrec.event_types VALUES ('share', '-Infinity')$$);
SELECT * FROM pg_temp.try($$INSERT INTO rtrec.event_types VALUES ('share', 1e308)$$);
-- a huge but finite weight would overflow the sums: rejected too
SELECT * FROM pg_temp.try($$UPDATE rtrec.event_types SET weight = 1e7 WHERE event_type = 'view'$$);
SELECT * FROM pg_temp.try($$INSERT INTO rtrec.event_types VALUES ('share', NULL)$$);
SELECT * FROM pg_temp.try($$INSERT INTO rtrec.event_types VALUES ('', 1)$$);
SELECT * FROM pg_temp.try($$INSERT INTO rtrec.event_types VALUES (NULL, 1)$$);
SELECT * FROM pg_temp.try($$UPDATE rtrec.event_types SET weight = -0.5 WHERE event_type = 'view'$$);
-- a type in use cannot be deleted or renamed
SELECT * FROM pg_temp.try($$DELETE FROM rtrec.event_types WHERE event_type = 'purchase'$$);
SELECT * FROM pg_temp.try($$UPDATE rtrec.event_types SET event_type = 'buy' WHERE event_type = 'purchase'$$);
-- a type not in use can
SELECT * FROM pg_temp.try($$DELETE FROM rtrec.event_types WHERE event_type = 'cart'$$);
\x off
SELECT * FROM rtrec.event_types ORDER BY event_type;
-- and events of a deleted type are rejected at once
\x on
SELECT * FROM pg_temp.try($$INSERT INTO rtrec.events (user_id, item_id, event_type) VALUES (1, 1, 'cart')$$);
\x off
INSERT INTO rtrec.event_types VALUES ('cart', 3);

--
-- the catalog (detail left out: it lists every column of the row)
--
\x on
SELECT state, message FROM pg_temp.try($$INSERT INTO rtrec.items (item_id, price) VALUES (3, -0.01)$$);
SELECT state, message FROM pg_temp.try($$INSERT INTO rtrec.items (item_id, price) VALUES (3, 'NaN')$$);
SELECT state, message FROM pg_temp.try($$UPDATE rtrec.items SET price = -5 WHERE item_id = 1$$);
SELECT state, message FROM pg_temp.try($$INSERT INTO rtrec.items (item_id, price) VALUES (3, 0)$$);
\x off
DELETE FROM rtrec.items WHERE item_id = 3;

--
-- trigger functions called directly or fired the wrong way error cleanly
--
\x on
SELECT * FROM pg_temp.try($$SELECT rtrec.events_check()$$);
SELECT * FROM pg_temp.try($$SELECT rtrec.events_apply()$$);
SELECT * FROM pg_temp.try($$SELECT rtrec.events_reject_update()$$);
SELECT * FROM pg_temp.try($$SELECT rtrec.events_truncate()$$);
SELECT * FROM pg_temp.try($$SELECT rtrec.settings_changed()$$);
\x off
CREATE TEMP TABLE not_events (event_id bigint, user_id bigint, item_id bigint,
                              event_type text, ts timestamptz);
CREATE TRIGGER wrong_when AFTER INSERT ON not_events
    FOR EACH ROW EXECUTE FUNCTION rtrec.events_check();
\x on
SELECT * FROM pg_temp.try($$INSERT INTO not_events VALUES (1, 1, 1, 'view', now())$$);
\x off
DROP TRIGGER wrong_when ON not_events;
CREATE TRIGGER wrong_level AFTER INSERT ON not_events
    FOR EACH ROW EXECUTE FUNCTION rtrec.events_apply();
\x on
SELECT * FROM pg_temp.try($$INSERT INTO not_events VALUES (1, 1, 1, 'view', now())$$);
\x off
DROP TABLE not_events;
CREATE TEMP TABLE no_columns (x int);
CREATE TRIGGER check_it BEFORE INSERT ON no_columns
    FOR EACH ROW EXECUTE FUNCTION rtrec.events_check();
\x on
SELECT * FROM pg_temp.try($$INSERT INTO no_columns VALUES (1)$$);
\x off
DROP TABLE no_columns;

--
-- the decay helpers reject what would make NaN or infinities
--
\x on
SELECT * FROM pg_temp.try($$SELECT rtrec.decay_log2(-1, '2024-01-01', 86400)$$);
SELECT * FROM pg_temp.try($$SELECT rtrec.decay_log2('NaN', '2024-01-01', 86400)$$);
SELECT * FROM pg_temp.try($$SELECT rtrec.decay_log2(1, 'infinity', 86400)$$);
SELECT * FROM pg_temp.try($$SELECT rtrec.decay_log2(1, '2024-01-01', 0)$$);
SELECT * FROM pg_temp.try($$SELECT rtrec.decay_value(0, '2024-01-01', 'Infinity')$$);
\x off

-- after all this: still nothing changed, and the state is consistent
SELECT * FROM changes;
SELECT * FROM rtrec_verify();
-- and the table still takes good events
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES (1, 2, 'cart', '2024-01-06 00:00:00+00');
SELECT change, rel FROM changes ORDER BY change, rel;
SELECT * FROM rtrec_verify();

TRUNCATE rtrec.events RESTART IDENTITY;
DELETE FROM rtrec.items;
