--
-- privileges: an application role needs only USAGE on schema rtrec, INSERT
-- on rtrec.events and EXECUTE on the read functions; an analyst only USAGE
-- and SELECT.  Settings, weights, derived state and rtrec_rebuild() stay the
-- owner's, and nothing runs code from the caller's search_path.
--
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never

TRUNCATE rtrec.events RESTART IDENTITY;
DELETE FROM rtrec.items;

-- roles (cluster-wide, so named regress_* and dropped at the end)
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS regress_rtrec_evil CASCADE;
DROP ROLE IF EXISTS regress_rtrec_app;
DROP ROLE IF EXISTS regress_rtrec_analyst;
RESET client_min_messages;
CREATE ROLE regress_rtrec_app;
CREATE ROLE regress_rtrec_analyst;
GRANT USAGE ON SCHEMA rtrec TO regress_rtrec_app, regress_rtrec_analyst;
GRANT INSERT ON rtrec.events TO regress_rtrec_app;
GRANT SELECT ON ALL TABLES IN SCHEMA rtrec TO regress_rtrec_analyst;

-- the application role owns a schema full of look-alikes of what rtrec's
-- code calls; were any of them used, the statement would fail loudly
CREATE SCHEMA regress_rtrec_evil AUTHORIZATION regress_rtrec_app;
SET ROLE regress_rtrec_app;
CREATE FUNCTION regress_rtrec_evil.now() RETURNS timestamptz LANGUAGE plpgsql
AS $$ BEGIN RAISE EXCEPTION 'hijacked now()'; END $$;
CREATE FUNCTION regress_rtrec_evil.unnest(anyarray) RETURNS SETOF anyelement LANGUAGE plpgsql
AS $$ BEGIN RAISE EXCEPTION 'hijacked unnest()'; END $$;
CREATE FUNCTION regress_rtrec_evil.log2_add(double precision, double precision)
RETURNS double precision LANGUAGE plpgsql
AS $$ BEGIN RAISE EXCEPTION 'hijacked log2_add()'; END $$;
CREATE FUNCTION regress_rtrec_evil.int8eq_evil(bigint, bigint) RETURNS boolean LANGUAGE plpgsql
AS $$ BEGIN RAISE EXCEPTION 'hijacked bigint = bigint'; END $$;
CREATE OPERATOR regress_rtrec_evil.= (LEFTARG = bigint, RIGHTARG = bigint,
                                      FUNCTION = regress_rtrec_evil.int8eq_evil);
CREATE FUNCTION regress_rtrec_evil.textne_evil(text, text) RETURNS boolean LANGUAGE plpgsql
AS $$ BEGIN RAISE EXCEPTION 'hijacked text <> text'; END $$;
CREATE OPERATOR regress_rtrec_evil.<> (LEFTARG = text, RIGHTARG = text,
                                       FUNCTION = regress_rtrec_evil.textne_evil);
RESET ROLE;

INSERT INTO rtrec.items (item_id, category_id) VALUES (1, 10), (2, 20);

--
-- the application role inserts events (single rows, many rows, COPY, an
-- unknown item, the default ts) with the look-alikes first on its path
--
SET ROLE regress_rtrec_app;
SET search_path = regress_rtrec_evil, public, pg_catalog;
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
VALUES (1, 1, 'view', '2024-01-01 00:00:00+00');
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
    (1, 2, 'purchase', '2024-01-02 00:00:00+00'),
    (2, 3, 'like', '2024-01-02 00:00:00+00');
COPY rtrec.events (user_id, item_id, event_type, ts) FROM STDIN;
2	1	cart	2024-01-03 00:00:00+00
3	1	impression	2024-01-03 00:00:00+00
\.
INSERT INTO rtrec.events (user_id, item_id, event_type) VALUES (3, 2, 'click');
-- but it cannot read or change anything else
SELECT count(*) FROM rtrec.events;
SELECT count(*) FROM rtrec.user_features;
UPDATE rtrec.config SET value = 3600 WHERE name = 'half_life_s';
INSERT INTO rtrec.event_types VALUES ('regress_type', 1);
UPDATE rtrec.event_types SET weight = 100 WHERE event_type = 'view';
INSERT INTO rtrec.items (item_id) VALUES (99);
INSERT INTO rtrec.item_state VALUES (1, 12345, 1, 1, 0, now(), now());
DELETE FROM rtrec.user_state;
TRUNCATE rtrec.user_item_state;
DELETE FROM rtrec.events;
TRUNCATE rtrec.events;
SELECT rtrec_rebuild();
-- nor run the internal passes over every item
SELECT count(*) FROM rtrec.neighbors_compute_part(1, 2147483647, 5);
SELECT count(*) FROM rtrec.swing_compute(1, 5);
SELECT rtrec.refresh_trending();
-- nor attach rtrec's trigger functions to a table of its own to write state
CREATE TABLE regress_rtrec_evil.fake (event_id bigint, user_id bigint, item_id bigint,
                                      event_type text, ts timestamptz);
CREATE TRIGGER fake_apply AFTER INSERT ON regress_rtrec_evil.fake
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION rtrec.events_apply();
CREATE TRIGGER fake_truncate AFTER TRUNCATE ON regress_rtrec_evil.fake
    FOR EACH STATEMENT EXECUTE FUNCTION rtrec.events_truncate();
RESET search_path;
RESET ROLE;

-- what the application wrote, and nothing else
SELECT event_id, user_id, item_id, event_type, ts IS NOT NULL AS has_ts
  FROM rtrec.events ORDER BY event_id;
SELECT item_id, category_id, price, brand, available FROM rtrec.items ORDER BY item_id;
SELECT user_id, n_events, weight_sum, n_items FROM rtrec.user_features ORDER BY user_id;
SELECT item_id, n_events, n_users, weight_sum FROM rtrec.item_features ORDER BY item_id;
SELECT name, value FROM rtrec.config WHERE name = 'half_life_s';
SELECT * FROM rtrec.event_types WHERE event_type IN ('view', 'regress_type');
SELECT * FROM rtrec_verify();

--
-- the analyst reads everything, with the look-alikes on its path, and
-- changes nothing
--
SET ROLE regress_rtrec_analyst;
SET search_path = regress_rtrec_evil, public, pg_catalog;
SELECT user_id, n_events, last_item_id, last_category_id, n_items
  FROM rtrec.user_features ORDER BY user_id;
SELECT item_id, n_events, n_users, round(trend::numeric, 9) AS trend
  FROM rtrec.item_features ORDER BY item_id;
SELECT user_id, category_id, round(affinity::numeric, 9) AS affinity, n_events
  FROM rtrec.user_category ORDER BY user_id, category_id;
SELECT count(*) AS user_items FROM rtrec.user_items;
SELECT count(*) AS events FROM rtrec.events;
SELECT * FROM rtrec_verify();
INSERT INTO rtrec.events (user_id, item_id, event_type) VALUES (9, 9, 'view');
UPDATE rtrec.config SET value = 3600 WHERE name = 'half_life_s';
SELECT rtrec_rebuild();
RESET search_path;
RESET ROLE;

-- the owner's rebuild gives the same state
SELECT rtrec_rebuild();
SELECT * FROM rtrec_verify();
SELECT user_id, n_events, weight_sum, n_items FROM rtrec.user_features ORDER BY user_id;

-- clean up
SET client_min_messages = warning;
DROP SCHEMA regress_rtrec_evil CASCADE;
RESET client_min_messages;
REVOKE ALL ON ALL TABLES IN SCHEMA rtrec FROM regress_rtrec_app, regress_rtrec_analyst;
REVOKE ALL ON SCHEMA rtrec FROM regress_rtrec_app, regress_rtrec_analyst;
DROP ROLE regress_rtrec_app;
DROP ROLE regress_rtrec_analyst;
TRUNCATE rtrec.events RESTART IDENTITY;
DELETE FROM rtrec.items;
