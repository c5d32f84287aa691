--
-- settings: rtrec.config and rtrec.event_types are seeded, and changes
-- reach new events at once (each backend's cache is refreshed) and the
-- stored state after rtrec_rebuild().
--
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never

TRUNCATE rtrec.events RESTART IDENTITY;
DELETE FROM rtrec.items;

CREATE TEMP TABLE config_before AS SELECT name, value FROM rtrec.config;
-- every setting has a description
SELECT count(*) FILTER (WHERE length(description) < 10) AS undescribed
  FROM rtrec.config;
-- the contract's settings, their defaults (NULL: the project's choice) and
-- descriptions (non-ASCII shown as '?', so that the output does not depend
-- on the client encoding)
SELECT d.name, c.value AS value, d.contract_default,
       c.value = coalesce(d.contract_default, c.value) AS default_ok,
       regexp_replace(c.description, '[^ -~]', '?', 'g') AS description
  FROM (VALUES ('half_life_s', 86400), ('swing_alpha', 1), ('swing_user_alpha', 5),
               ('swing_user_beta', 0.35), ('swing_max_users_per_item', NULL),
               ('swing_min_items_per_user', 1), ('swing_max_items_per_user', NULL),
               ('candidates', 1000)) AS d(name, contract_default)
  LEFT JOIN rtrec.config c USING (name)
 ORDER BY d.name;
-- the seeded event types
SELECT * FROM rtrec.event_types ORDER BY event_type;

CREATE TEMP VIEW itf AS
SELECT item_id, n_events, round(trend::numeric, 9) AS trend, weight_sum, last_ts
  FROM rtrec.item_features ORDER BY item_id;
CREATE TEMP VIEW uc AS
SELECT user_id, category_id, round(affinity::numeric, 9) AS affinity, n_events, weight_sum
  FROM rtrec.user_category ORDER BY user_id, category_id;

INSERT INTO rtrec.items (item_id, category_id) VALUES (10, 1), (11, 1), (12, 2);
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
    (1, 10, 'view', '2024-01-09 00:00:00+00'),
    (1, 10, 'view', '2024-01-10 00:00:00+00'),
    (2, 12, 'like', '2024-01-08 00:00:00+00'),
    (2, 12, 'impression', '2024-01-10 00:00:00+00');
-- one-day half-life: item 10 as of 01-10 = 1 + 0.5
SELECT * FROM itf;
SELECT * FROM uc;

--
-- half_life_s: new events use the new value at once, stored state after
-- rtrec_rebuild()
--
UPDATE rtrec.config SET value = 43200 WHERE name = 'half_life_s';
-- the stored sums were made with the old half-life: verify reports them
SELECT relation, key FROM rtrec_verify();
-- a new item's events already decay with 12 hours: 1 + 2^-1 = 1.5 for 12 hours
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
    (3, 11, 'view', '2024-01-10 00:00:00+00'),
    (3, 11, 'view', '2024-01-10 12:00:00+00');
SELECT * FROM itf WHERE item_id = 11;
SELECT rtrec_rebuild();
SELECT * FROM rtrec_verify();
-- item 10: 1 + 2^-2 = 1.25; item 11 unchanged; item 12: 2
SELECT * FROM itf;
-- the same in one transaction: change, insert, rebuild, read
BEGIN;
UPDATE rtrec.config SET value = 172800 WHERE name = 'half_life_s';
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
    (4, 13, 'view', '2024-01-08 00:00:00+00'),
    (4, 13, 'view', '2024-01-10 00:00:00+00');
-- item 13, two days apart with a two-day half-life: 1.5
SELECT * FROM itf WHERE item_id = 13;
SELECT rtrec_rebuild();
-- item 10: 1 + 2^-0.5 = 1.707106781; item 11: 1 + 2^-0.25 = 1.840896415
SELECT * FROM itf;
SELECT * FROM rtrec_verify();
ROLLBACK;
-- the rollback restores the 12-hour state, and the cached setting with it
SELECT value FROM rtrec.config WHERE name = 'half_life_s';
SELECT * FROM itf;
INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
    (4, 14, 'view', '2024-01-09 00:00:00+00'),
    (4, 14, 'view', '2024-01-10 00:00:00+00');
-- item 14, one day apart with a 12-hour half-life: 1 + 0.25
SELECT * FROM itf WHERE item_id = 14;
SELECT * FROM rtrec_verify();
-- back to the default
UPDATE rtrec.config SET value = 86400 WHERE name = 'half_life_s';
SELECT rtrec_rebuild();
SELECT * FROM itf;

--
-- event weights: a new weight applies to new events at once, to stored
-- events after rtrec_rebuild()
--
UPDATE rtrec.event_types SET weight = 10 WHERE event_type = 'like';
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
VALUES (5, 12, 'like', '2024-01-08 00:00:00+00');
-- item 12: the old like still weighs 2, the new one 10
SELECT * FROM itf WHERE item_id = 12;
SELECT relation, key FROM rtrec_verify();
SELECT rtrec_rebuild();
SELECT * FROM rtrec_verify();
-- now both weigh 10
SELECT * FROM itf WHERE item_id = 12;
SELECT * FROM uc;
-- an impression weight > 0 makes impressions count (after the rebuild)...
UPDATE rtrec.event_types SET weight = 0.5 WHERE event_type = 'impression';
SELECT rtrec_rebuild();
-- item 12 as of 01-10: 10 * 0.25 + 10 * 0.25 + 0.5 = 5.5, 3 events
SELECT * FROM itf WHERE item_id = 12;
SELECT user_id, n_events, last_ts FROM rtrec.user_features WHERE user_id = 2;
-- ...and weight 0 makes views stop counting
UPDATE rtrec.event_types SET weight = 0 WHERE event_type = 'view';
SELECT rtrec_rebuild();
SELECT * FROM itf;
SELECT * FROM rtrec_verify();
UPDATE rtrec.event_types SET weight = 1 WHERE event_type = 'view';
UPDATE rtrec.event_types SET weight = 0 WHERE event_type = 'impression';
UPDATE rtrec.event_types SET weight = 2 WHERE event_type = 'like';
SELECT rtrec_rebuild();
SELECT * FROM rtrec.event_types ORDER BY event_type;

--
-- a new event type is usable at once, in the same session and transaction;
-- a rolled-back one is gone at once
--
INSERT INTO rtrec.event_types VALUES ('share', 5);
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
VALUES (6, 15, 'share', '2024-01-10 00:00:00+00');
SELECT * FROM itf WHERE item_id = 15;
BEGIN;
INSERT INTO rtrec.event_types VALUES ('wishlist', 2.5);
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
VALUES (6, 16, 'wishlist', '2024-01-10 00:00:00+00');
SELECT * FROM itf WHERE item_id = 16;
ROLLBACK;
SELECT count(*) AS wishlist_types FROM rtrec.event_types WHERE event_type = 'wishlist';
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
VALUES (6, 16, 'wishlist', '2024-01-10 00:00:00+00');
-- a type deleted in this session is rejected at once
INSERT INTO rtrec.event_types VALUES ('tmp', 1);
INSERT INTO rtrec.events (user_id, item_id, event_type) VALUES (6, 17, 'tmp');
DELETE FROM rtrec.events WHERE event_type = 'tmp';
DELETE FROM rtrec.event_types WHERE event_type = 'tmp';
INSERT INTO rtrec.events (user_id, item_id, event_type) VALUES (6, 17, 'tmp');
SELECT rtrec_rebuild();
SELECT * FROM rtrec_verify();
-- a weight change in a transaction that rolls back leaves the old weight
BEGIN;
UPDATE rtrec.event_types SET weight = 100 WHERE event_type = 'share';
ROLLBACK;
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
VALUES (7, 18, 'share', '2024-01-10 00:00:00+00');
SELECT * FROM itf WHERE item_id = 18;
SELECT * FROM rtrec_verify();

DELETE FROM rtrec.events WHERE event_type = 'share';
DELETE FROM rtrec.event_types WHERE event_type = 'share';
SELECT * FROM rtrec.event_types ORDER BY event_type;
-- the settings are back to what they were
(SELECT name, value FROM rtrec.config EXCEPT SELECT * FROM config_before)
UNION ALL
(SELECT * FROM config_before EXCEPT SELECT name, value FROM rtrec.config);
TRUNCATE rtrec.events RESTART IDENTITY;
DELETE FROM rtrec.items;
