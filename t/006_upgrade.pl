# ALTER EXTENSION rtrec UPDATE from every released version to the default.
#
# The released versions are those with an install script older than the
# control file's default_version (today 1.0; the default is read, never
# written here, so the test follows new versions).  For each:
#
#  1. Database "upgraded": CREATE EXTENSION rtrec VERSION '<old>'; custom
#     settings, event type and ranker weights; a catalog, users and events
#     (several users, items and event types, dense enough for Swing lists).
#     The queue is drained, then the answers of rtrec_recommend,
#     rtrec_candidates, rtrec_similar and rtrec_trending and checksums of
#     every table users write are captured.
#  2. ALTER EXTENSION rtrec UPDATE: extversion becomes the default version;
#     events, settings, weights, catalog and users are untouched;
#     rtrec_verify() is empty; every answer equals the one before.  An
#     installation that kept the default ranker weights gets the default
#     version's (1.2 changed two of them).
#  3. New events still ingest: they get fresh event_ids, the worker refreshes
#     their Swing lists, and rtrec_verify() stays empty.
#  4. The extension's member objects (pg_describe_object of its pg_depend
#     rows of deptype 'e'), their definitions (columns, indexes, constraints,
#     triggers, function bodies and settings, privileges, comments) and its
#     pg_dump configuration tables equal those of a fresh CREATE EXTENSION
#     rtrec in another database.
#  5. An update while the refresh worker is busy succeeds, and the worker
#     carries on.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', "log_statement = none\n");
$node->start;

sub sql
{
	my ($db, $sql) = @_;
	return $node->safe_psql($db, $sql);
}

# Polls until the query returns 't'; true unless $timeout seconds pass.
sub wait_until
{
	my ($db, $sql, $timeout) = @_;
	my $start = time;
	while (time - $start < $timeout)
	{
		return 1 if sql($db, $sql) eq 't';
		usleep(50_000);
	}
	return 0;
}

# Compares two sorted line lists; on a difference, shows the lines only one has.
sub same_lines
{
	my ($got, $expected, $name) = @_;
	my @got = split /\n/, $got;
	my @expected = split /\n/, $expected;
	return 1 if is_deeply(\@got, \@expected, $name);
	my %in_got = map { $_ => 1 } @got;
	my %in_expected = map { $_ => 1 } @expected;
	diag "only after the update: $_" for grep { !$in_expected{$_} } @got;
	diag "only in a fresh installation: $_" for grep { !$in_got{$_} } @expected;
	return 0;
}

my $default = sql('postgres',
	q{SELECT default_version FROM pg_available_extensions WHERE name = 'rtrec'});
like($default, qr/^\d+\.\d+$/, "the control file's default version is $default");
my @released = split /\n/, sql('postgres', qq{
	SELECT version FROM pg_available_extension_versions
	 WHERE name = 'rtrec' AND version <> '$default' ORDER BY string_to_array(version, '.')::int[]});
ok(scalar(grep { $_ eq '1.0' } @released), 'release 1.0 is installable: ' . join(', ', @released));
is( sql('postgres', qq{
	SELECT string_agg(source, ', ') FROM pg_extension_update_paths('rtrec')
	 WHERE target = '$default' AND source <> '$default' AND path IS NULL}),
	'', "every released version has an update path to $default");

# Everything an upgrade must keep, as checksums: what users wrote
my $user_tables = q{
	SELECT 'events ' || count(*) || ' ' || md5(coalesce(string_agg(
			concat_ws('|', event_id, user_id, item_id, event_type, ts, context), ',' ORDER BY event_id), ''))
	  FROM rtrec.events
	UNION ALL SELECT 'config ' || md5(string_agg(concat_ws('|', name, value), ',' ORDER BY name)) FROM rtrec.config
	UNION ALL SELECT 'event_types ' || md5(string_agg(concat_ws('|', event_type, weight), ',' ORDER BY event_type))
	  FROM rtrec.event_types
	-- an update may add ranker features, with weight 0 so that answers stay
	UNION ALL SELECT 'model_weights ' || md5(string_agg(concat_ws('|', feature, weight), ',' ORDER BY feature))
	  FROM rtrec.model_weights WHERE weight <> 0
	UNION ALL SELECT 'items ' || md5(string_agg(concat_ws('|', item_id, category_id, price, brand, available,
			attrs, auto_registered), ',' ORDER BY item_id)) FROM rtrec.items
	UNION ALL SELECT 'users ' || md5(string_agg(concat_ws('|', user_id, attrs), ',' ORDER BY user_id)) FROM rtrec.users};

# The answers of the read functions for a set of users, items, categories
my $answers = q{
	SELECT 'recommend ' || u || ': ' || coalesce((SELECT string_agg(concat_ws(' ', item_id, score, reason), ', ')
		FROM rtrec_recommend(u, 10)), '')
	  FROM generate_series(1, 12) u
	UNION ALL
	SELECT 'recommend in category 1 ' || u || ': ' || coalesce((SELECT string_agg(concat_ws(' ', item_id, score), ', ')
		FROM rtrec_recommend(u, 5, 1, false)), '')
	  FROM generate_series(1, 4) u
	UNION ALL
	SELECT 'candidates ' || u || ': ' || coalesce((SELECT string_agg(concat_ws(' ', item_id, source, score), ', '
		ORDER BY item_id, source) FROM rtrec_candidates(u, 50)), '')
	  FROM generate_series(1, 4) u
	UNION ALL
	SELECT 'similar ' || i || ': ' || coalesce((SELECT string_agg(concat_ws(' ', item_id, score), ', ')
		FROM rtrec_similar(i, 10)), '')
	  FROM generate_series(1, 40) i
	UNION ALL
	SELECT 'trending ' || coalesce(c::text, 'all') || ': ' || coalesce((SELECT string_agg(concat_ws(' ', item_id, score), ', ')
		FROM rtrec_trending(c, 10)), '')
	  FROM (VALUES (NULL::bigint), (0), (1), (2)) v(c)};

# The extension's members, then their definitions, one line each
my $members = q{
	SELECT pg_describe_object(classid, objid, objsubid) AS member FROM pg_depend
	 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
	   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'rtrec')
	 ORDER BY 1};
my $definitions = q{
	WITH m AS (
		SELECT classid, objid, pg_describe_object(classid, objid, objsubid) AS member FROM pg_depend
		 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
		   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'rtrec'))
	SELECT member || ': ' || regexp_replace(def, '\s+', ' ', 'g') FROM (
		SELECT m.member, concat_ws(' ', 'kind', c.relkind, 'acl', c.relacl::text, 'options', c.reloptions::text,
				   'comment', obj_description(c.oid, 'pg_class')) AS def
		  FROM m JOIN pg_class c ON c.oid = m.objid WHERE m.classid = 'pg_class'::regclass
		UNION ALL
		SELECT m.member, concat_ws(' ', 'column', a.attname, format_type(a.atttypid, a.atttypmod),
				   CASE WHEN a.attnotnull THEN 'not null' END, a.attidentity, a.attgenerated,
				   pg_get_expr(d.adbin, d.adrelid), a.attacl::text, col_description(a.attrelid, a.attnum))
		  FROM m JOIN pg_attribute a ON a.attrelid = m.objid AND a.attnum > 0 AND NOT a.attisdropped
		  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		 WHERE m.classid = 'pg_class'::regclass
		UNION ALL
		SELECT m.member, 'index ' || pg_get_indexdef(i.indexrelid)
		  FROM m JOIN pg_index i ON i.indrelid = m.objid WHERE m.classid = 'pg_class'::regclass
		UNION ALL
		SELECT m.member, 'constraint ' || co.conname || ' ' || pg_get_constraintdef(co.oid)
		  FROM m JOIN pg_constraint co ON co.conrelid = m.objid WHERE m.classid = 'pg_class'::regclass
		UNION ALL
		SELECT m.member, 'trigger ' || pg_get_triggerdef(t.oid)
		  FROM m JOIN pg_trigger t ON t.tgrelid = m.objid AND NOT t.tgisinternal
		 WHERE m.classid = 'pg_class'::regclass
		UNION ALL
		SELECT m.member, 'view ' || pg_get_viewdef(m.objid)
		  FROM m JOIN pg_class c ON c.oid = m.objid AND c.relkind IN ('v', 'm') WHERE m.classid = 'pg_class'::regclass
		UNION ALL
		SELECT m.member, concat_ws(' ', 'acl', p.proacl::text, 'comment', obj_description(p.oid, 'pg_proc'),
				   CASE WHEN p.prokind = 'a'
						THEN (SELECT concat_ws(' ', 'aggregate', ag.aggtransfn, ag.aggfinalfn, ag.aggcombinefn,
											   format_type(ag.aggtranstype, NULL), ag.agginitval)
								FROM pg_aggregate ag WHERE ag.aggfnoid = p.oid)
						ELSE pg_get_functiondef(p.oid) END)
		  FROM m JOIN pg_proc p ON p.oid = m.objid WHERE m.classid = 'pg_proc'::regclass
		UNION ALL
		SELECT m.member, concat_ws(' ', 'acl', n.nspacl::text, 'comment', obj_description(n.oid, 'pg_namespace'))
		  FROM m JOIN pg_namespace n ON n.oid = m.objid WHERE m.classid = 'pg_namespace'::regclass
		UNION ALL
		SELECT 'extension', concat_ws(' ', 'schema', e.extnamespace::regnamespace, 'relocatable', e.extrelocatable,
				   'config', (SELECT string_agg(r::regclass::text, ', ' ORDER BY r::regclass::text)
								FROM unnest(e.extconfig) r),
				   'conditions', array_to_string(e.extcondition, ', '))
		  FROM pg_extension e WHERE e.extname = 'rtrec'
	) x ORDER BY 1};

my $worker_refreshing = q{
	SELECT count(*) > 0 FROM pg_locks l JOIN pg_stat_activity a USING (pid)
	 WHERE a.backend_type = 'rtrec swing refresher' AND a.datname = current_database() AND l.granted
	   AND l.relation = to_regclass('rtrec.swing_neighbors')};

# the fresh installation every upgrade is compared with
sql('postgres', 'CREATE DATABASE fresh');
sql('fresh', 'CREATE EXTENSION rtrec');
is(sql('fresh', q{SELECT extversion FROM pg_extension WHERE extname = 'rtrec'}), $default,
	"CREATE EXTENSION rtrec installs $default");
my $fresh_members = sql('fresh', $members);
my $weights = q{SELECT string_agg(feature || ' ' || weight, ', ' ORDER BY feature) FROM rtrec.model_weights};
my $fresh_definitions = sql('fresh', $definitions);

for my $old (@released)
{
	my $db = 'upgraded_' . ($old =~ s/\W/_/gr);

	#
	# 1. The old version, with data
	#
	sql('postgres', "CREATE DATABASE $db");
	sql($db, qq{
CREATE EXTENSION rtrec VERSION '$old';
UPDATE rtrec.config SET value = 3600 WHERE name = 'half_life_s';
UPDATE rtrec.config SET value = 30 WHERE name = 'swing_neighbors';
INSERT INTO rtrec.event_types VALUES ('rating', 2.5);
UPDATE rtrec.event_types SET weight = 1.5 WHERE event_type = 'click';
-- weights the owner chose (an update changes only untouched defaults)
UPDATE rtrec.model_weights SET weight = weight + 0.05;
UPDATE rtrec.model_weights SET weight = 0.7 WHERE feature = 'trend';
INSERT INTO rtrec.items (item_id, category_id, price, brand)
	SELECT i, i % 3, i * 1.5, 'brand ' || (i % 4) FROM generate_series(1, 36) i;
INSERT INTO rtrec.users VALUES (1, '{"vip": true}'), (2, NULL);
-- 60 users, 10 events each, over 40 items (37..40 registered by events)
INSERT INTO rtrec.events (user_id, item_id, event_type, ts, context)
	SELECT u, (u * 7 + k * 3) % 40 + 1,
		   (ARRAY['view', 'click', 'like', 'cart', 'purchase', 'impression', 'rating'])[(u + k) % 7 + 1],
		   timestamptz '2024-03-01 00:00:00+00' + make_interval(mins => u * 17 + k),
		   CASE WHEN k = 0 THEN jsonb_build_object('page', u) END
	  FROM generate_series(1, 60) u, generate_series(0, 9) k;
});
	is(sql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'rtrec'}), $old, "$db: $old installed");
	sql($db, 'SELECT rtrec_swing_refresh()');    # drains the queue and the trending cache now
	is(sql($db, 'SELECT count(*) FROM rtrec_verify()'), '0', "$db: rtrec_verify() is empty on $old");
	my $tables_before = sql($db, $user_tables);
	my $answers_before = sql($db, $answers);
	cmp_ok(scalar(() = $answers_before =~ /^similar \d+: \d/mg), '>=', 30,
		"$db: most items have Swing neighbours before the update");
	cmp_ok(scalar(() = $answers_before =~ /^recommend \d+: \d/mg), '>=', 10,
		"$db: most users have recommendations before the update");
	my $max_event = sql($db, 'SELECT max(event_id) FROM rtrec.events');

	#
	# 2. The update
	#
	my ($ret, $out, $err) = $node->psql($db, 'ALTER EXTENSION rtrec UPDATE');
	is($ret . $err, '0', "$db: ALTER EXTENSION rtrec UPDATE from $old");
	is(sql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'rtrec'}), $default,
		"$db: extversion is $default");
	is(sql($db, $user_tables), $tables_before, "$db: events, settings, catalog and users are untouched");
	is(sql($db, 'SELECT count(*) FROM rtrec_verify()'), '0', "$db: rtrec_verify() is empty after the update");
	is(sql($db, $answers), $answers_before,
		"$db: rtrec_recommend, rtrec_candidates, rtrec_similar and rtrec_trending answer as before");

	# 2b. An installation that kept the default weights gets the new ones
	my $defaults_db = 'defaults_' . ($old =~ s/\W/_/gr);
	sql('postgres', "CREATE DATABASE $defaults_db");
	sql($defaults_db, "CREATE EXTENSION rtrec VERSION '$old'");
	sql($defaults_db, 'ALTER EXTENSION rtrec UPDATE');
	is(sql($defaults_db, $weights), sql('fresh', $weights),
		"$defaults_db: untouched weights become $default\'s defaults");
	sql('postgres', "DROP DATABASE $defaults_db");

	#
	# 3. New events still ingest
	#
	sql($db, q{
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
	SELECT u, i, 'purchase', timestamptz '2024-03-02 00:00:00+00' + make_interval(secs => u + i)
	  FROM generate_series(101, 104) u, (VALUES (41), (42)) v(i)});
	is( sql($db, qq{SELECT count(*) FILTER (WHERE event_id > $max_event) || ' ' || count(*) FILTER (WHERE item_id IN (41, 42))
		FROM rtrec.events}), '8 8', "$db: new events get fresh event_ids");
	is( sql($db, q{SELECT n_users FROM rtrec.item_features WHERE item_id = 41}), '4',
		"$db: the triggers fold new events into the features");
	ok(wait_until($db, 'SELECT count(*) = 0 FROM rtrec.swing_queue', 30),
		"$db: the worker refreshes the new events' lists");
	is(sql($db, 'SELECT item_id FROM rtrec.swing_neighbors WHERE neighbor_id = 42 AND item_id = 41'), '41',
		"$db: item 42 is a stored Swing neighbour of item 41");
	is(sql($db, 'SELECT count(*) FROM rtrec_verify()'), '0', "$db: rtrec_verify() is empty after new events");

	#
	# 4. Same objects as a fresh installation
	#
	my $upgraded_members = sql($db, $members);
	same_lines($upgraded_members, $fresh_members, "$db: the member objects equal a fresh CREATE EXTENSION's");
	note scalar(split /\n/, $upgraded_members) . ' member objects';
	same_lines(sql($db, $definitions), $fresh_definitions,
		"$db: their definitions, privileges, comments and dump configuration equal a fresh one's");

	#
	# 5. An update while the worker is busy
	#
	my $busy = "busy_$db";
	sql('postgres', "CREATE DATABASE $busy");
	sql($busy, qq{
CREATE EXTENSION rtrec VERSION '$old';
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
	SELECT u, (u * 7 + k * 13) % 150 + 1, 'view',
		   timestamptz '2024-05-01 00:00:00+00' + make_interval(secs => u * 50 + k)
	  FROM generate_series(1, 400) u, generate_series(0, 14) k});
	ok(wait_until($busy, $worker_refreshing, 10), "$busy: the worker is refreshing");
	($ret, $out, $err) = $node->psql($busy, 'ALTER EXTENSION rtrec UPDATE');
	is($ret . $err, '0', "$busy: ALTER EXTENSION rtrec UPDATE while the worker refreshes");
	ok(wait_until($busy, 'SELECT count(*) = 0 FROM rtrec.swing_queue', 60),
		"$busy: the worker drains the queue afterwards");
	is(sql($busy, 'SELECT count(*) FROM rtrec_verify()'), '0', "$busy: rtrec_verify() is empty");
}

$node->stop;
done_testing();
