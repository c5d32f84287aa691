# Privileges, search_path safety and the life of the Swing refresh worker.
#
#  1. The worker: none runs after CREATE EXTENSION; the first events start
#     one within 5 s (backend_type 'rtrec swing refresher' in
#     pg_stat_activity), and it drains the queue by itself.
#  2. Roles, as the contract grants them:
#       app      USAGE on schema rtrec, INSERT on rtrec.events, EXECUTE on
#                the read functions: inserts events (INSERT, multi-row,
#                COPY; event_id fills itself without a sequence grant) and
#                calls every read function; cannot change settings, event
#                types or ranker weights, cannot run rtrec_rebuild() or
#                rtrec_swing_refresh(), cannot write any derived table;
#       analyst  USAGE on schema rtrec, SELECT on all its tables: reads
#                every relation of the schema and rtrec_verify(); cannot
#                insert events, change settings or rebuild.
#  3. search_path: the app role puts look-alikes of what rtrec's code calls
#     (log2_add, now, unnest, aggregates, = on bigint and text, ...) in a
#     schema of its own, first on its search_path, and in schema public
#     (which a careless DBA let it write to; the worker and the owner see
#     public too).  Each look-alike bumps a sequence (not rolled back) and
#     raises.  Inserting events, every read function, and the owner's
#     rebuild, verify and refresh never run one of them.
#  4. SIGKILL of the worker: the postmaster restarts every backend (crash
#     recovery); afterwards events start the worker again, the queue left
#     behind drains, and rtrec_verify() is empty.
#  5. DROP EXTENSION: the worker exits within 5 s and does not come back.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use RtrecTAP;
use Time::HiRes qw(time usleep);

my $node = PostgreSQL::Test::Cluster->new('priv');
$node->init;
$node->append_conf('postgresql.conf', qq{
log_statement = none
restart_after_crash = on
});
$node->start;

my $worker_running = $WORKER_RUNNING;
my $worker_gone = $WORKER_GONE;

my $admin = $node->background_psql('postgres', on_error_stop => 0);

#
# 1. The worker starts when events arrive
#
q_ok($admin, q{
CREATE EXTENSION rtrec;
INSERT INTO rtrec.items (item_id, category_id)
	SELECT i, i % 4 FROM generate_series(1, 40) i;
});
is(q_ok($admin, $worker_gone), 't', 'no refresh worker before the first event');
q_ok($admin, q{
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
	SELECT u, (u * 3 + k) % 40 + 1, 'view', timestamptz '2024-05-01 00:00:00+00' + make_interval(mins => u * 5 + k)
	  FROM generate_series(1, 30) u, generate_series(0, 4) k});
my $started = wait_until($admin, $worker_running, 5);
ok(defined $started, 'the first events start the refresh worker within 5 s');
note sprintf('the refresh worker appeared %.0f ms after the first events', 1000 * $started)
  if defined $started;
ok(defined wait_until($admin, 'SELECT count(*) = 0 FROM rtrec.swing_queue', 10),
	'the worker drains the queue by itself');
is(q_ok($admin, 'SELECT count(*) FROM rtrec_verify()'), '0', 'the state is consistent');

#
# 2. Privileges
#
q_ok($admin, q{
CREATE ROLE app LOGIN;
CREATE ROLE analyst LOGIN;
GRANT USAGE ON SCHEMA rtrec TO app, analyst;
GRANT INSERT ON rtrec.events TO app;
GRANT EXECUTE ON FUNCTION rtrec_recommend(bigint, integer, bigint, boolean),
	rtrec_similar(bigint, integer), rtrec_candidates(bigint, integer),
	rtrec_trending(bigint, integer) TO app, analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA rtrec TO analyst;
-- the look-alikes' trace: a sequence, because nextval is not rolled back
CREATE SCHEMA trace;
CREATE SEQUENCE trace.hits;
GRANT USAGE ON SCHEMA trace TO PUBLIC;
GRANT USAGE, UPDATE ON SEQUENCE trace.hits TO PUBLIC;
});

my $app = $node->background_psql('postgres', on_error_stop => 0, extra_params => [ '-U', 'app' ]);
my $analyst =
  $node->background_psql('postgres', on_error_stop => 0, extra_params => [ '-U', 'analyst' ]);
is(q_ok($app, 'SELECT current_user'), 'app', 'connected as app');
is(q_ok($analyst, 'SELECT current_user'), 'analyst', 'connected as analyst');

my $events_before = q_ok($admin, 'SELECT count(*) FROM rtrec.events');

# app: writes events every way an application does
my ($out, $err) = run_in($app, q{
	INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
	VALUES (100, 1, 'view', '2024-05-02 00:00:00+00')});
is($err, '', 'app: single-row INSERT of an event');
($out, $err) = run_in($app, q{
	INSERT INTO rtrec.events (user_id, item_id, event_type, ts, context) VALUES
		(100, 2, 'purchase', '2024-05-02 00:01:00+00', '{"page": 1}'),
		(101, 3, 'like', '2024-05-02 00:02:00+00', NULL),
		(101, 999, 'cart', '2024-05-02 00:03:00+00', NULL)});
is($err, '', 'app: multi-row INSERT, with an item missing from the catalog');
my $ret;
($ret, $out, $err) = $node->psql('postgres',
	"COPY rtrec.events (user_id, item_id, event_type, ts) FROM STDIN;\n"
	  . "102\t4\tclick\t2024-05-02 00:04:00+00\n"
	  . "102\t5\timpression\t2024-05-02 00:05:00+00\n" . "\\.\n",
	extra_params => [ '-U', 'app' ]);
is($err, '', 'app: COPY of events');
($out, $err) = run_in($app, q{INSERT INTO rtrec.events (user_id, item_id, event_type) VALUES (103, 6, 'view')});
is($err, '', 'app: an event with the default ts');
is(q_ok($admin, "SELECT count(*) - $events_before FROM rtrec.events"), '7', 'the 7 events are stored');
is( q_ok($admin, q{
	SELECT count(*) FROM rtrec.events WHERE user_id BETWEEN 100 AND 103 AND event_id IS NOT NULL}),
	'7', 'each event got an event_id without a sequence grant');
is(q_ok($admin, q{SELECT count(*) FROM rtrec.items WHERE item_id = 999}), '1',
	'the app\'s event registered the unknown item');

# app: every read function
my %reads = (
	rtrec_recommend => 'SELECT count(*) FROM rtrec_recommend(100, 10)',
	'rtrec_recommend with a category' => 'SELECT count(*) FROM rtrec_recommend(100, 10, 1, false)',
	'rtrec_recommend for an unknown user' => 'SELECT count(*) FROM rtrec_recommend(-5, 10)',
	rtrec_similar => 'SELECT count(*) FROM rtrec_similar(2, 10)',
	'rtrec_similar beyond the stored lists' => 'SELECT count(*) FROM rtrec_similar(2, 5000)',
	rtrec_candidates => 'SELECT count(*) FROM rtrec_candidates(100, 50)',
	rtrec_trending => 'SELECT count(*) FROM rtrec_trending(NULL, 10)',
	'rtrec_trending of a category' => 'SELECT count(*) FROM rtrec_trending(1, 10)',
);
for my $name (sort keys %reads)
{
	($out, $err) = run_in($app, $reads{$name});
	is($err, '', "app: $name works");
	is($out, q_ok($admin, $reads{$name}), "app: $name gives the owner's answer");
}

# app: nothing else
my @app_denied = (
	[ 'UPDATE rtrec.config', q{UPDATE rtrec.config SET value = 3600 WHERE name = 'half_life_s'} ],
	[ 'INSERT INTO rtrec.event_types', q{INSERT INTO rtrec.event_types VALUES ('evil', 1)} ],
	[ 'UPDATE rtrec.event_types', q{UPDATE rtrec.event_types SET weight = 100 WHERE event_type = 'view'} ],
	[ 'UPDATE rtrec.model_weights', q{UPDATE rtrec.model_weights SET weight = 9 WHERE feature = 'trend'} ],
	[ 'rtrec_rebuild()', 'SELECT rtrec_rebuild()' ],
	[ 'rtrec_swing_refresh()', 'SELECT rtrec_swing_refresh()' ],
	[ 'rtrec.refresh_trending()', 'SELECT rtrec.refresh_trending()' ],
	[ 'UPDATE rtrec.events', q{UPDATE rtrec.events SET user_id = 1} ],
	[ 'DELETE FROM rtrec.events', q{DELETE FROM rtrec.events} ],
	[ 'TRUNCATE rtrec.events', q{TRUNCATE rtrec.events} ],
	[ 'INSERT INTO rtrec.items', q{INSERT INTO rtrec.items (item_id) VALUES (5000)} ],
	[ 'SELECT rtrec.config', q{SELECT count(*) FROM rtrec.config} ],
	[ 'rtrec.events_apply() on a table of its own',
		q{CREATE TEMP TABLE fake (event_id bigint, user_id bigint, item_id bigint, event_type text, ts timestamptz);
		  CREATE TRIGGER fake_apply AFTER INSERT ON fake REFERENCING NEW TABLE AS new_events
			FOR EACH STATEMENT EXECUTE FUNCTION rtrec.events_apply()} ],
);
for my $derived (qw(user_state item_state user_item_state swing_queue
	swing_neighbors cf_neighbors trending_items))
{
	push @app_denied,
	  [ "INSERT INTO rtrec.$derived", "INSERT INTO rtrec.$derived DEFAULT VALUES" ],
	  [ "DELETE FROM rtrec.$derived", "DELETE FROM rtrec.$derived" ],
	  [ "TRUNCATE rtrec.$derived", "TRUNCATE rtrec.$derived" ];
}
for my $case (@app_denied)
{
	($out, $err) = run_in($app, $case->[1]);
	like($err, qr/permission denied|must be owner/, "app: $case->[0] is denied");
}

# analyst: reads every relation of the schema, and rtrec_verify()
my @relations = split /\n/, q_ok($admin, q{
	SELECT c.relname FROM pg_class c
	 WHERE c.relnamespace = 'rtrec'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p')
	 ORDER BY 1});
cmp_ok(scalar(@relations), '>=', 15, 'rtrec has its tables and views');
for my $rel (@relations)
{
	($out, $err) = run_in($analyst, "SELECT count(*) FROM rtrec.$rel");
	is($err, '', "analyst: reads rtrec.$rel");
}
($out, $err) = run_in($analyst, 'SELECT count(*) FROM rtrec_verify()');
is($err, '', 'analyst: runs rtrec_verify()');
is($out, '0', 'analyst: rtrec_verify() finds nothing');
($out, $err) = run_in($analyst, 'SELECT count(*) FROM rtrec_recommend(100, 5)');
is($err, '', 'analyst: calls rtrec_recommend');
for my $case (
	[ 'INSERT INTO rtrec.events', q{INSERT INTO rtrec.events (user_id, item_id, event_type) VALUES (1, 1, 'view')} ],
	[ 'UPDATE rtrec.config', q{UPDATE rtrec.config SET value = 3600 WHERE name = 'half_life_s'} ],
	[ 'UPDATE rtrec.event_types', q{UPDATE rtrec.event_types SET weight = 100 WHERE event_type = 'view'} ],
	[ 'UPDATE rtrec.model_weights', q{UPDATE rtrec.model_weights SET weight = 9 WHERE feature = 'trend'} ],
	[ 'rtrec_rebuild()', 'SELECT rtrec_rebuild()' ],
	[ 'rtrec_swing_refresh()', 'SELECT rtrec_swing_refresh()' ],
	[ 'DELETE FROM rtrec.user_state', 'DELETE FROM rtrec.user_state' ])
{
	($out, $err) = run_in($analyst, $case->[1]);
	like($err, qr/permission denied|must be owner/, "analyst: $case->[0] is denied");
}
is( q_ok($admin, q{SELECT value FROM rtrec.config WHERE name = 'half_life_s'}),
	'86400', 'the settings are unchanged');
is( q_ok($admin, q{SELECT weight FROM rtrec.event_types WHERE event_type = 'view'}),
	'1', 'the event weights are unchanged');
is(q_ok($admin, 'SELECT count(*) FROM rtrec_verify()'), '0', 'the state is still consistent');

#
# 3. Look-alikes on the search_path
#
q_ok($admin, q{
CREATE SCHEMA evil AUTHORIZATION app;
GRANT CREATE ON SCHEMA public TO app;
});
# Every look-alike bumps trace.hits, then raises.  They are created in
# schema evil (first on the app's path, before pg_catalog) and in public.
my $lookalikes = '';
for my $schema (qw(evil public))
{
	$lookalikes .= qq{
CREATE FUNCTION $schema.hit(what text) RETURNS boolean LANGUAGE plpgsql AS \$\$
BEGIN
	PERFORM nextval('trace.hits');
	RAISE EXCEPTION 'look-alike % ran', what;
END \$\$;
CREATE FUNCTION $schema.log2_add(double precision, double precision) RETURNS double precision
	LANGUAGE plpgsql AS \$\$ BEGIN PERFORM $schema.hit('log2_add'); RETURN 0; END \$\$;
CREATE FUNCTION $schema.decay_log2(double precision, timestamptz, double precision) RETURNS double precision
	LANGUAGE plpgsql AS \$\$ BEGIN PERFORM $schema.hit('decay_log2'); RETURN 0; END \$\$;
CREATE FUNCTION $schema.now() RETURNS timestamptz
	LANGUAGE plpgsql AS \$\$ BEGIN PERFORM $schema.hit('now'); RETURN NULL; END \$\$;
CREATE FUNCTION $schema.unnest(anyarray) RETURNS SETOF anyelement
	LANGUAGE plpgsql AS \$\$ BEGIN PERFORM $schema.hit('unnest'); END \$\$;
CREATE FUNCTION $schema.exp2(double precision) RETURNS double precision
	LANGUAGE plpgsql AS \$\$ BEGIN PERFORM $schema.hit('exp2'); RETURN 0; END \$\$;
CREATE FUNCTION $schema.greatest_evil(timestamptz, timestamptz) RETURNS timestamptz
	LANGUAGE plpgsql AS \$\$ BEGIN PERFORM $schema.hit('timestamptz aggregate'); RETURN NULL; END \$\$;
CREATE AGGREGATE $schema.max(timestamptz) (SFUNC = $schema.greatest_evil, STYPE = timestamptz);
CREATE AGGREGATE $schema.min(timestamptz) (SFUNC = $schema.greatest_evil, STYPE = timestamptz);
CREATE FUNCTION $schema.sum_evil(double precision, double precision) RETURNS double precision
	LANGUAGE plpgsql AS \$\$ BEGIN PERFORM $schema.hit('sum'); RETURN 0; END \$\$;
CREATE AGGREGATE $schema.sum(double precision) (SFUNC = $schema.sum_evil, STYPE = double precision);
CREATE FUNCTION $schema.int8eq(bigint, bigint) RETURNS boolean
	LANGUAGE plpgsql AS \$\$ BEGIN RETURN $schema.hit('= on bigint'); END \$\$;
CREATE OPERATOR $schema.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = $schema.int8eq);
CREATE FUNCTION $schema.int84eq(bigint, integer) RETURNS boolean
	LANGUAGE plpgsql AS \$\$ BEGIN RETURN $schema.hit('= on bigint, integer'); END \$\$;
CREATE OPERATOR $schema.= (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = $schema.int84eq);
CREATE FUNCTION $schema.texteq(text, text) RETURNS boolean
	LANGUAGE plpgsql AS \$\$ BEGIN RETURN $schema.hit('= on text'); END \$\$;
CREATE OPERATOR $schema.= (LEFTARG = text, RIGHTARG = text, FUNCTION = $schema.texteq);
CREATE FUNCTION $schema.float8gt(double precision, double precision) RETURNS boolean
	LANGUAGE plpgsql AS \$\$ BEGIN RETURN $schema.hit('> on double precision'); END \$\$;
CREATE OPERATOR $schema.> (LEFTARG = double precision, RIGHTARG = double precision, FUNCTION = $schema.float8gt);
CREATE FUNCTION $schema.int8lt(bigint, bigint) RETURNS boolean
	LANGUAGE plpgsql AS \$\$ BEGIN RETURN $schema.hit('< on bigint'); END \$\$;
CREATE OPERATOR $schema.< (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = $schema.int8lt);
};
}
($out, $err) = run_in($app, $lookalikes);
is($err, '', 'app: creates its look-alikes');
q_ok($app, 'SET search_path = evil, public, pg_catalog');
($out, $err) = run_in($app, q{SELECT 1::bigint = 1::bigint});
like($err, qr/look-alike = on bigint ran/, 'the look-alikes are live on the app\'s search_path');
my $hits_base = q_ok($admin, 'SELECT last_value FROM trace.hits');

($out, $err) = run_in($app, q{
	INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
		(110, 7, 'view', '2024-05-03 00:00:00+00'),
		(110, 8, 'purchase', '2024-05-03 00:01:00+00'),
		(111, 7, 'like', '2024-05-03 00:02:00+00'),
		(111, 4242, 'view', '2024-05-03 00:03:00+00')});
is($err, '', 'app with look-alikes on its path: INSERT of events works');
($ret, $out, $err) = $node->psql('postgres',
	"SET search_path = evil, public, pg_catalog;\n"
	  . "COPY rtrec.events (user_id, item_id, event_type, ts) FROM STDIN;\n"
	  . "112\t7\tcart\t2024-05-03 00:04:00+00\n" . "\\.\n",
	extra_params => [ '-U', 'app' ]);
is($err, '', 'app with look-alikes on its path: COPY of events works');
($out, $err) = run_in($app, q{INSERT INTO rtrec.events (user_id, item_id, event_type) VALUES (113, 9, 'view')});
is($err, '', 'app with look-alikes on its path: an event with the default ts works');
for my $name (sort keys %reads)
{
	($out, $err) = run_in($app, $reads{$name});
	is($err, '', "app with look-alikes on its path: $name works");
}
# the owner, with the same path: administrative functions
q_ok($admin, 'SET search_path = evil, public, pg_catalog');
for my $sql ('SELECT rtrec_swing_refresh()', 'SELECT count(*) FROM rtrec_verify()',
	'SELECT rtrec_rebuild()', 'SELECT count(*) FROM rtrec_recommend(110, 10)')
{
	($out, $err) = run_in($admin, $sql);
	is($err, '', "owner with look-alikes on its path: $sql works");
}
q_ok($admin, 'RESET search_path');
# the worker sees public: make it refresh once more
q_ok($app, q{INSERT INTO rtrec.events (user_id, item_id, event_type) VALUES (114, 10, 'view'), (114, 7, 'view')});
ok(defined wait_until($admin, 'SELECT count(*) = 0 FROM rtrec.swing_queue', 10),
	'the worker drains the queue with look-alikes in public');
is(q_ok($admin, 'SELECT last_value FROM trace.hits'), $hits_base, 'no look-alike ever ran');
is(q_ok($admin, 'SELECT count(*) FROM rtrec_verify()'), '0', 'the state is consistent');
$app->quit;
$analyst->quit;

#
# 4. SIGKILL of the worker
#
q_ok($admin, q{
	INSERT INTO rtrec.events (user_id, item_id, event_type) VALUES (120, 11, 'view')});
ok(defined wait_until($admin, $worker_running, 5), 'the worker runs');
my $worker_pid = q_ok($admin, q{
	SELECT pid FROM pg_stat_activity WHERE backend_type = 'rtrec swing refresher'});
like($worker_pid, qr/^\d+$/, 'one worker');
my $start_time = q_ok($admin, 'SELECT pg_postmaster_start_time()');

# queue rows for the killed worker to leave behind: hold it off with the
# lock it needs, and commit events
my $locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN; LOCK TABLE rtrec.swing_neighbors IN SHARE ROW EXCLUSIVE MODE');
q_ok($admin, q{
	INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
	SELECT u, (u * 5) % 40 + 1, 'cart', timestamptz '2024-05-04 00:00:00+00' + make_interval(secs => u)
	  FROM generate_series(200, 260) u});
my $queued = q_ok($admin, 'SELECT count(*) FROM rtrec.swing_queue');
cmp_ok($queued, '>', 0, "$queued queue rows wait");

my $log_offset = -s $node->logfile;
ok(kill('KILL', $worker_pid), 'SIGKILL the worker');
ok( $node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset),
	'the postmaster restarts every backend');
# the sessions went with it (the locker's too, which releases the lock)
eval { $admin->quit; };
eval { $locker->quit; };
$node->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'the server did not come back';
$admin = $node->background_psql('postgres', on_error_stop => 0);
my $log = slurp_file($node->logfile, $log_offset);
like($log, qr/rtrec swing refresher.* was terminated by signal 9/, 'the log names the killed worker');
note 'pg_postmaster_start_time ' . ($start_time eq q_ok($admin, 'SELECT pg_postmaster_start_time()')
	? 'is unchanged' : 'changed') . ' by the crash restart';

q_ok($admin, q{INSERT INTO rtrec.events (user_id, item_id, event_type) VALUES (121, 12, 'view')});
my $restarted = wait_until($admin, $worker_running, 5);
ok(defined $restarted, 'after recovery, events (re)start the worker within 5 s');
ok(defined wait_until($admin, 'SELECT count(*) = 0 FROM rtrec.swing_queue', 15),
	'the worker drains the queue left behind');
is(q_ok($admin, 'SELECT count(*) FROM rtrec_verify()'), '0',
	'rtrec_verify() is empty after the queue drained');
is( q_ok($admin, q{SELECT count(*) FROM rtrec.events WHERE user_id BETWEEN 200 AND 260}),
	'61', 'the committed events survived');

#
# 5. DROP EXTENSION stops the worker for good
#
ok(defined wait_until($admin, $worker_running, 5), 'the worker runs before DROP EXTENSION');
($out, $err) = run_in($admin, 'DROP EXTENSION rtrec');
is($err, '', 'DROP EXTENSION rtrec');
my $stopped = wait_until($admin, $worker_gone, 5);
ok(defined $stopped, 'the worker exits within 5 s of DROP EXTENSION');
usleep(2_500_000);
is(q_ok($admin, $worker_gone), 't', 'and is not restarted');
is(q_ok($admin, q{SELECT count(*) FROM pg_namespace WHERE nspname = 'rtrec'}), '0',
	'the rtrec schema is gone');

$admin->quit;
$node->stop;
done_testing();
