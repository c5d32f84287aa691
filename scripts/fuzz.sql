/*
 * scripts/fuzz.sql: the random-call driver of scripts/fuzz.sh.
 *
 * Loaded into the throwaway database after CREATE EXTENSION rtrec.  CALL
 * fuzz.run(seed, calls, session) makes `calls` random calls, each in its
 * own subtransaction, committed one by one, and logs every call with its
 * SQLSTATE ('00000' = success) and message in fuzz.log.  Before each call
 * it sends a NOTICE 'fuzz call <session>.<n>: <sql>' so that, should the
 * server crash, the last notice a session printed names the call.
 *
 * Calls (kind: what):
 *   recommend, similar, candidates, trending   the API with extreme arguments
 *   swing_compute, neighbors_compute_part,
 *   scalar, refresh_trending, check_n          internal functions, extreme arguments
 *   events, events_huge, events_bad            INSERTs of random event streams
 *   events_explicit_id                         events with extreme explicit event_ids
 *   update_events, truncate, retention         UPDATE (rejected), TRUNCATE, DELETE + rebuild
 *   config, model_weights, event_types         valid and invalid settings changes
 *   items, users                               catalog and profile writes
 *   refresh, rebuild, verify, stats            the administrative functions
 *   train                                      rtrec_train (1.1): a replay in a
 *                                              rolled-back subtransaction; slow,
 *                                              so rare and with small test_events
 * fuzz.kinds lists them with their weights; fuzz.run skips the kinds named
 * in fuzz.skip, which is empty unless fuzz.sh --skip fills it: every kind
 * runs by default.
 */

CREATE SCHEMA fuzz;

CREATE TABLE fuzz.log (
	session integer NOT NULL,
	call integer NOT NULL,
	kind text NOT NULL,
	sql text NOT NULL,
	sqlstate text NOT NULL,
	message text,
	started timestamptz NOT NULL,
	finished timestamptz NOT NULL
);

-- kinds of calls that, when they succeed, leave stored state that only
-- rtrec_rebuild() brings back to the formulas (see CONTRACT: settings,
-- weights and category changes apply to the past after a rebuild)
CREATE TABLE fuzz.kinds (kind text PRIMARY KEY, weight integer NOT NULL, needs_rebuild boolean NOT NULL);
INSERT INTO fuzz.kinds VALUES
	('recommend', 14, false), ('similar', 8, false), ('candidates', 6, false),
	('trending', 6, false), ('swing_compute', 4, false), ('neighbors_compute_part', 1, false),
	('scalar', 4, false), ('refresh_trending', 1, false), ('check_n', 1, false),
	('events', 16, false), ('events_huge', 1, false), ('events_bad', 5, false),
	('events_explicit_id', 1, false), ('update_events', 1, false), ('truncate', 1, false),
	('retention', 1, false), ('config', 5, true), ('model_weights', 2, false),
	('event_types', 3, true), ('items', 4, true), ('users', 1, false),
	('refresh', 3, false), ('rebuild', 1, false), ('verify', 2, false), ('stats', 1, false),
	-- applied weights and trigger_decay are ranking settings: no rebuild needed
	('train', 1, false);

CREATE TABLE fuzz.skip (kind text PRIMARY KEY);

-- a random element of an array
CREATE FUNCTION fuzz.pick(anyarray) RETURNS anyelement
LANGUAGE sql VOLATILE AS $$ SELECT $1[1 + floor(random() * cardinality($1))::integer] $$;

CREATE FUNCTION fuzz.chance(p double precision) RETURNS boolean
LANGUAGE sql VOLATILE AS $$ SELECT random() < p $$;

CREATE FUNCTION fuzz.rand_int(lo bigint, hi bigint) RETURNS bigint
LANGUAGE sql VOLATILE AS $$ SELECT lo + floor(random() * (hi - lo + 1))::bigint $$;

-- SQL literals of extreme and ordinary values
CREATE FUNCTION fuzz.id_lit() RETURNS text
LANGUAGE sql VOLATILE AS $$
	SELECT CASE
		WHEN random() < 0.6 THEN fuzz.rand_int(1, 60)::text
		WHEN random() < 0.3 THEN fuzz.rand_int(1, 5000)::text
		ELSE fuzz.pick(ARRAY['NULL', '0', '-1', '2147483647', '-2147483648', '2147483648',
							 '9223372036854775807', '-9223372036854775808',
							 (floor((random() - 0.5) * 1.8e19))::numeric::text])
	END $$;

CREATE FUNCTION fuzz.n_lit() RETURNS text
LANGUAGE sql VOLATILE AS $$
	SELECT CASE
		WHEN random() < 0.4 THEN fuzz.rand_int(1, 50)::text
		ELSE fuzz.pick(ARRAY['NULL', '0', '-1', '1', '5', '20', '100', '1000', '10000', '10001',
							 '100000', '100001', '2147483647', '-2147483648'])
	END $$;

CREATE FUNCTION fuzz.cat_lit() RETURNS text
LANGUAGE sql VOLATILE AS $$
	SELECT CASE
		WHEN random() < 0.6 THEN fuzz.rand_int(1, 6)::text
		ELSE fuzz.pick(ARRAY['NULL', '0', '-1', '9223372036854775807', '-9223372036854775808', '12345'])
	END $$;

CREATE FUNCTION fuzz.float_lit() RETURNS text
LANGUAGE sql VOLATILE AS $$
	SELECT CASE
		WHEN random() < 0.3 THEN round((random() * 10)::numeric, 3)::text
		ELSE fuzz.pick(ARRAY['NULL', '''NaN''', '''Infinity''', '''-Infinity''', '-1', '0', '1e-300',
							 '1e300', '0.5', '1', '2', '3600', '86400', '1e12', '1e13', '-1e6', '1e6',
							 '1e-3', '5e-324', '1.7976931348623157e308'])
	END $$;

-- a valid value for a setting, from its own range (integers where required)
CREATE FUNCTION fuzz.setting_value(p_name text) RETURNS text
LANGUAGE sql VOLATILE AS $$
	SELECT CASE WHEN c.is_integer
				THEN round(c.min_value + random() * least(c.max_value - c.min_value, 300))::text
				ELSE (c.min_value + random() * least(c.max_value - c.min_value, 1e5))::text END
	  FROM rtrec.config c WHERE c.name = p_name $$;

CREATE FUNCTION fuzz.ts_lit() RETURNS text
LANGUAGE sql VOLATILE AS $$
	SELECT CASE
		WHEN random() < 0.6 THEN quote_literal((timestamptz '2024-01-01 00:00:00+00'
									+ make_interval(secs => random() * 86400 * 60))::text)
		ELSE fuzz.pick(ARRAY['now()', '''infinity''', '''-infinity''', 'NULL',
							 '''4714-11-24 00:00:00+00 BC''', '''294276-12-31 23:59:59+00''',
							 '''0001-01-01 00:00:00+00''', '''1970-01-01 00:00:00+00''',
							 '''2000-01-01 00:00:00+00''', '''2999-12-31 00:00:00+00'''])
	END $$;

-- values of one event row, evaluated at execution time
CREATE FUNCTION fuzz.ev_user() RETURNS bigint
LANGUAGE sql VOLATILE AS $$
	SELECT CASE WHEN random() < 0.97 THEN fuzz.rand_int(1, 60)
				ELSE fuzz.pick(ARRAY[0, -1, 9223372036854775807, -9223372036854775808, 2147483648]::bigint[]) END $$;

CREATE FUNCTION fuzz.ev_item() RETURNS bigint
LANGUAGE sql VOLATILE AS $$
	SELECT CASE WHEN random() < 0.9 THEN fuzz.rand_int(1, 80)
				WHEN random() < 0.7 THEN fuzz.rand_int(81, 3000)
				ELSE fuzz.pick(ARRAY[0, -1, 9223372036854775807, -9223372036854775808]::bigint[]) END $$;

CREATE FUNCTION fuzz.ev_type() RETURNS text
LANGUAGE sql VOLATILE AS $$
	SELECT CASE WHEN random() < 0.9
				THEN fuzz.pick(ARRAY['view', 'click', 'like', 'cart', 'purchase', 'impression'])
				ELSE coalesce((SELECT t.event_type FROM rtrec.event_types t ORDER BY random() LIMIT 1), 'view') END $$;

CREATE FUNCTION fuzz.ev_ts() RETURNS timestamptz
LANGUAGE sql VOLATILE AS $$
	SELECT CASE WHEN random() < 0.98
				THEN timestamptz '2024-01-01 00:00:00+00' + make_interval(secs => random() * 86400 * 60)
				ELSE fuzz.pick(ARRAY['4714-11-24 00:00:00+00 BC', '294276-12-31 23:59:59+00',
									 '1970-01-01 00:00:00+00', '2999-12-31 00:00:00+00']::timestamptz[]) END $$;

CREATE FUNCTION fuzz.ev_context() RETURNS jsonb
LANGUAGE sql VOLATILE AS $$
	SELECT CASE WHEN random() < 0.9 THEN NULL
				ELSE jsonb_build_object('page', fuzz.rand_int(1, 9), 'q', repeat('x', fuzz.rand_int(0, 3000)::integer)) END $$;

-- one bad event row, as a VALUES tuple
CREATE FUNCTION fuzz.bad_event_row() RETURNS text
LANGUAGE sql VOLATILE AS $$
	SELECT '(' || fuzz.pick(ARRAY[
		'NULL::bigint, 1::bigint, ''view''::text, now()',
		'1::bigint, NULL::bigint, ''view''::text, now()',
		'1::bigint, 1::bigint, NULL::text, now()',
		'1::bigint, 1::bigint, ''no_such_type''::text, now()',
		'1::bigint, 1::bigint, ''''::text, now()',
		'1::bigint, 1::bigint, ''VIEW''::text, now()',
		'1::bigint, 1::bigint, ''view''::text, NULL::timestamptz',
		'1::bigint, 1::bigint, ''view''::text, ''infinity''::timestamptz',
		'1::bigint, 1::bigint, ''view''::text, ''-infinity''::timestamptz',
		'1::bigint, 1::bigint, repeat(''z'', 5000), now()']) || ')' $$;

-- the SQL statements of one random call of the given kind
CREATE FUNCTION fuzz.make_call(p_kind text) RETURNS text[]
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	k bigint;
	names text[] := ARRAY(SELECT c.name FROM rtrec.config c ORDER BY c.name);
	features text[] := ARRAY(SELECT m.feature FROM rtrec.model_weights m ORDER BY m.feature);
	nm text;
BEGIN
	CASE p_kind
	WHEN 'recommend' THEN
		RETURN ARRAY[CASE fuzz.rand_int(1, 4)
			WHEN 1 THEN format('SELECT count(*) FROM rtrec_recommend(%s)', fuzz.id_lit())
			WHEN 2 THEN format('SELECT count(*) FROM rtrec_recommend(%s, %s)', fuzz.id_lit(), fuzz.n_lit())
			ELSE format('SELECT count(*) FROM rtrec_recommend((%s)::bigint, (%s)::integer, (%s)::bigint, (%s)::boolean)',
						fuzz.id_lit(), fuzz.n_lit(), fuzz.cat_lit(), fuzz.pick(ARRAY['true', 'false', 'NULL'])) END];
	WHEN 'similar' THEN
		RETURN ARRAY[format('SELECT count(*) FROM rtrec_similar((%s)::bigint, (%s)::integer)', fuzz.id_lit(), fuzz.n_lit())];
	WHEN 'candidates' THEN
		RETURN ARRAY[format('SELECT count(*) FROM rtrec_candidates((%s)::bigint, (%s)::integer)', fuzz.id_lit(), fuzz.n_lit())];
	WHEN 'trending' THEN
		RETURN ARRAY[format('SELECT count(*) FROM rtrec_trending((%s)::bigint, (%s)::integer)', fuzz.cat_lit(), fuzz.n_lit())];
	WHEN 'swing_compute' THEN
		RETURN ARRAY[format('SELECT count(*) FROM rtrec.swing_compute((%s)::bigint, (%s)::integer)', fuzz.id_lit(), fuzz.n_lit())];
	WHEN 'neighbors_compute_part' THEN
		-- random arguments, or the boundary pairs of a part loop
		RETURN ARRAY[format('SELECT count(*) FROM rtrec.neighbors_compute_part((%s)::integer, (%s)::integer, (%s)::integer)',
							VARIADIC CASE WHEN fuzz.chance(0.7) THEN ARRAY[fuzz.n_lit(), fuzz.n_lit(), fuzz.n_lit()]
										  ELSE fuzz.pick(ARRAY['1', '2147483646']) || ARRAY['2147483647', fuzz.n_lit()] END)];
	WHEN 'scalar' THEN
		RETURN ARRAY[CASE fuzz.rand_int(1, 4)
			WHEN 1 THEN format('SELECT rtrec.log2_add((%s)::float8, (%s)::float8)', fuzz.float_lit(), fuzz.float_lit())
			WHEN 2 THEN format('SELECT rtrec.decay_log2((%s)::float8, (%s)::timestamptz, (%s)::float8)',
							   fuzz.float_lit(), fuzz.ts_lit(), fuzz.float_lit())
			WHEN 3 THEN format('SELECT rtrec.decay_value((%s)::float8, (%s)::timestamptz, (%s)::float8)',
							   fuzz.float_lit(), fuzz.ts_lit(), fuzz.float_lit())
			ELSE format('SELECT rtrec.log2_sum(x) FROM (VALUES ((%s)::float8), ((%s)::float8), ((%s)::float8)) v(x)',
						fuzz.float_lit(), fuzz.float_lit(), fuzz.float_lit()) END];
	WHEN 'refresh_trending' THEN
		RETURN ARRAY['SELECT rtrec.refresh_trending()'];
	WHEN 'check_n' THEN
		RETURN ARRAY[format('SELECT rtrec.check_n(%L, (%s)::integer, (%s)::integer)', fuzz.pick(ARRAY['f', NULL]),
							fuzz.n_lit(), fuzz.n_lit())];
	WHEN 'events' THEN
		k := CASE WHEN fuzz.chance(0.4) THEN 1 WHEN fuzz.chance(0.8) THEN fuzz.rand_int(2, 50) ELSE 1000 END;
		RETURN ARRAY[format('INSERT INTO rtrec.events (user_id, item_id, event_type, ts, context)'
							' SELECT fuzz.ev_user(), fuzz.ev_item(), fuzz.ev_type(), fuzz.ev_ts(), fuzz.ev_context()'
							' FROM generate_series(1, %s)', k)];
	WHEN 'events_huge' THEN
		-- more rows than the ingest trigger folds per statement (65536)
		RETURN ARRAY[format('INSERT INTO rtrec.events (user_id, item_id, event_type, ts)'
							' SELECT fuzz.rand_int(1, 200), fuzz.rand_int(1, 150), fuzz.ev_type(), fuzz.ev_ts()'
							' FROM generate_series(1, %s)', fuzz.pick(ARRAY[20000, 70000]))];
	WHEN 'events_bad' THEN
		RETURN ARRAY[format('INSERT INTO rtrec.events (user_id, item_id, event_type, ts)'
							' SELECT fuzz.ev_user(), fuzz.ev_item(), fuzz.ev_type(), fuzz.ev_ts() FROM generate_series(1, %s)'
							' UNION ALL VALUES %s', fuzz.rand_int(0, 300), fuzz.bad_event_row())];
	WHEN 'events_explicit_id' THEN
		RETURN ARRAY[format('INSERT INTO rtrec.events (event_id, user_id, item_id, event_type, ts) VALUES (%s, %s, %s, %L, %s)',
							fuzz.pick(ARRAY['9223372036854775807', '-9223372036854775808', '0', '-1', fuzz.rand_int(1, 100000)::text]),
							fuzz.rand_int(1, 60), fuzz.rand_int(1, 80), 'click', fuzz.ts_lit())];
	WHEN 'update_events' THEN
		RETURN ARRAY[fuzz.pick(ARRAY['UPDATE rtrec.events SET user_id = user_id + 1 WHERE event_id IN (SELECT min(event_id) FROM rtrec.events)',
									 'UPDATE rtrec.events SET ts = ''infinity'''])];
	WHEN 'truncate' THEN
		RETURN ARRAY[fuzz.pick(ARRAY['TRUNCATE rtrec.events', 'TRUNCATE rtrec.events RESTART IDENTITY'])];
	WHEN 'retention' THEN
		RETURN ARRAY[format('DELETE FROM rtrec.events WHERE event_id IN (SELECT event_id FROM rtrec.events ORDER BY random() LIMIT %s)',
							fuzz.rand_int(1, 200)),
					 'SELECT rtrec_rebuild()'];
	WHEN 'config' THEN
		nm := CASE WHEN fuzz.chance(0.95) THEN fuzz.pick(names) ELSE fuzz.pick(ARRAY['no_such_setting', NULL, '']) END;
		RETURN ARRAY[CASE fuzz.rand_int(1, 10)
			WHEN 1 THEN format('INSERT INTO rtrec.config (name, value, description, min_value, max_value) VALUES (%L, %s, %L, 0, 1)',
							   nm, fuzz.float_lit(), 'fuzz')
			WHEN 2 THEN format('DELETE FROM rtrec.config WHERE name = %L', nm)
			WHEN 3 THEN format('UPDATE rtrec.config SET max_value = %s WHERE name = %L', fuzz.float_lit(), nm)
			WHEN 4 THEN format('UPDATE rtrec.config SET value = %s WHERE name = %L', fuzz.float_lit(), nm)
			WHEN 5 THEN format('UPDATE rtrec.config SET value = %s WHERE name = %L', fuzz.pick(ARRAY['min_value', 'max_value']), nm)
			ELSE format('UPDATE rtrec.config SET value = %s WHERE name = %L', coalesce(fuzz.setting_value(nm), 'NULL'), nm) END];
	WHEN 'model_weights' THEN
		RETURN ARRAY[format('UPDATE rtrec.model_weights SET weight = %s WHERE feature = %L',
							fuzz.float_lit(), CASE WHEN fuzz.chance(0.9) THEN fuzz.pick(features) ELSE 'nope' END)];
	WHEN 'event_types' THEN
		RETURN ARRAY[CASE fuzz.rand_int(1, 5)
			WHEN 1 THEN format('INSERT INTO rtrec.event_types VALUES (%L, %s)',
							   fuzz.pick(ARRAY['fz_' || fuzz.rand_int(1, 8), '', NULL, 'view', repeat('t', 3000)]), fuzz.float_lit())
			WHEN 2 THEN format('DELETE FROM rtrec.event_types WHERE event_type = %L', 'fz_' || fuzz.rand_int(1, 8))
			WHEN 3 THEN format('UPDATE rtrec.event_types SET event_type = %L WHERE event_type = %L',
							   'fz_' || fuzz.rand_int(1, 8), 'fz_' || fuzz.rand_int(1, 8))
			ELSE format('UPDATE rtrec.event_types SET weight = %s WHERE event_type = %L',
						CASE WHEN fuzz.chance(0.5) THEN fuzz.pick(ARRAY['0', '1', '2', '0.25', '7']) ELSE fuzz.float_lit() END,
						fuzz.pick(ARRAY['view', 'click', 'like', 'cart', 'purchase', 'impression', 'fz_' || fuzz.rand_int(1, 8)])) END];
	WHEN 'items' THEN
		RETURN ARRAY[CASE fuzz.rand_int(1, 6)
			WHEN 1 THEN format('INSERT INTO rtrec.items (item_id, category_id, price, brand, available, attrs) VALUES (%s, %s, %s, %L, %s, %L)',
							   fuzz.id_lit(), fuzz.cat_lit(),
							   fuzz.pick(ARRAY['NULL', '0', '-1', '''NaN''', '1e100', '19.99', '''Infinity''']),
							   fuzz.pick(ARRAY[NULL, 'acme', repeat('b', 5000)]), fuzz.pick(ARRAY['true', 'false', 'NULL']),
							   fuzz.pick(ARRAY[NULL, '{}', '{"a": [1, 2, {"b": null}]}']))
			WHEN 2 THEN format('UPDATE rtrec.items SET category_id = %s WHERE item_id = %s', fuzz.cat_lit(), fuzz.id_lit())
			WHEN 3 THEN format('UPDATE rtrec.items SET available = NOT available WHERE item_id = %s', fuzz.id_lit())
			WHEN 4 THEN format('DELETE FROM rtrec.items WHERE item_id = %s', fuzz.id_lit())
			WHEN 5 THEN format('UPDATE rtrec.items SET item_id = %s WHERE item_id = %s', fuzz.id_lit(), fuzz.id_lit())
			ELSE format('INSERT INTO rtrec.items (item_id, category_id) SELECT i, i %% 6 + 1 FROM generate_series(1, %s) i ON CONFLICT DO NOTHING',
						fuzz.rand_int(1, 100)) END];
	WHEN 'users' THEN
		RETURN ARRAY[format('INSERT INTO rtrec.users VALUES (%s, %L) ON CONFLICT (user_id) DO UPDATE SET attrs = excluded.attrs',
							fuzz.id_lit(), fuzz.pick(ARRAY[NULL, '{"age": 30}', '[]']))];
	WHEN 'refresh' THEN
		RETURN ARRAY['SELECT rtrec_swing_refresh()'];
	WHEN 'rebuild' THEN
		RETURN ARRAY['SELECT rtrec_rebuild()'];
	WHEN 'verify' THEN
		RETURN ARRAY['SELECT count(*) FROM rtrec_verify()'];
	WHEN 'stats' THEN
		RETURN ARRAY['SELECT count(*) FROM rtrec_stats()'];
	WHEN 'train' THEN
		-- test_events 10..50 mostly (each one costs a replay step); else out of
		-- range (valid: 10..100000) or NULL, and a NULL apply now and then
		RETURN ARRAY[format('SELECT count(*) FROM rtrec_train((%s)::integer, (%s)::boolean)',
							CASE WHEN fuzz.chance(0.75) THEN fuzz.rand_int(10, 50)::text
								 ELSE fuzz.pick(ARRAY['NULL', '0', '9', '100001', '-1', '2147483647']) END,
							CASE WHEN fuzz.chance(0.9) THEN fuzz.pick(ARRAY['true', 'false']) ELSE 'NULL' END)];
	ELSE
		RAISE EXCEPTION 'fuzz: unknown kind %', p_kind;
	END CASE;
END
$$;

-- a kind, by weight, among those not skipped
CREATE FUNCTION fuzz.random_kind() RETURNS text
LANGUAGE sql VOLATILE AS $$
	WITH k AS (
		SELECT kind, sum(weight) OVER (ORDER BY kind) AS upto, sum(weight) OVER () AS total
		  FROM fuzz.kinds WHERE weight > 0 AND kind NOT IN (SELECT s.kind FROM fuzz.skip s)
	), r AS (SELECT random() * max(total) AS x FROM k)
	SELECT k.kind FROM k, r WHERE k.upto > r.x ORDER BY k.upto LIMIT 1 $$;

CREATE PROCEDURE fuzz.run(p_seed double precision, p_calls integer, p_session integer)
LANGUAGE plpgsql AS $$
DECLARE
	kind text;
	stmts text[];
	stmt text;
	st text;
	msg text;
	t0 timestamptz;
BEGIN
	PERFORM setseed(p_seed);
	FOR i IN 1 .. p_calls LOOP
		kind := fuzz.random_kind();
		stmts := fuzz.make_call(kind);
		RAISE NOTICE 'fuzz call %.%: %', p_session, i, array_to_string(stmts, '; ');
		t0 := clock_timestamp();
		BEGIN
			FOREACH stmt IN ARRAY stmts LOOP
				EXECUTE stmt;
			END LOOP;
			st := '00000';
			msg := NULL;
		EXCEPTION WHEN OTHERS THEN
			GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
		END;
		INSERT INTO fuzz.log VALUES (p_session, i, kind, array_to_string(stmts, '; '), st, msg, t0, clock_timestamp());
		COMMIT;
	END LOOP;
END
$$;
