# pg_dump / pg_restore: what users wrote survives a logical dump into a
# fresh cluster, and the derived state is rebuilt from it.
#
# Node A gets the extension, custom settings (rtrec.config), a custom event
# type and a changed weight, a changed ranker weight, a catalog with prices,
# brands, attributes and an unavailable item, user profiles, and events:
# some on catalogued items, some on items that only the events registered,
# one on an item registered by an event and filled in by a later catalog
# INSERT.  pg_dump (custom format) of that database is restored with
# pg_restore into a new database of a fresh cluster B (and, as a plain SQL
# dump, into a second one).  Then on B:
#   - pg_restore succeeds without an error;
#   - the events (count, and a checksum of every column), settings, event
#     types, ranker weights, catalog and users equal A's;
#   - the derived state is not in the dump (the extension rebuilds it);
#   - after SELECT rtrec_rebuild() (what the install script asks for after a
#     restore) rtrec_verify() is empty and rtrec_recommend, rtrec_similar and
#     rtrec_trending give A's answers;
#   - a new event gets a fresh event_id (the identity sequence was restored).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $node_a = PostgreSQL::Test::Cluster->new('dump_a');
$node_a->init;
$node_a->append_conf('postgresql.conf', "log_statement = none\n");
$node_a->start;
$node_a->safe_psql('postgres', 'CREATE DATABASE shop');

$node_a->safe_psql('shop', q{
CREATE EXTENSION rtrec;
-- settings, weights, a custom event type
UPDATE rtrec.config SET value = 3600 WHERE name = 'half_life_s';
UPDATE rtrec.config SET value = 0.5 WHERE name = 'swing_user_beta';
UPDATE rtrec.config SET value = 2 WHERE name = 'swing_user_alpha';
UPDATE rtrec.config SET value = 30, description = 'our own note' WHERE name = 'swing_neighbors';
INSERT INTO rtrec.event_types VALUES ('rating_5', 5);
UPDATE rtrec.event_types SET weight = 1.5 WHERE event_type = 'click';
UPDATE rtrec.event_types SET weight = 0 WHERE event_type = 'view';
UPDATE rtrec.model_weights SET weight = 0.7 WHERE feature = 'trend';
UPDATE rtrec.model_weights SET weight = 0.25 WHERE feature = 'freshness';
-- catalog: items 1..30 in categories 0..2; 31..40 appear only in events
INSERT INTO rtrec.items (item_id, category_id, price, brand, available, attrs)
	SELECT i, i % 3, i * 2.25, 'brand ' || (i % 4), i <> 7,
		   jsonb_build_object('color', (ARRAY['red', 'blue'])[i % 2 + 1])
	  FROM generate_series(1, 30) i;
INSERT INTO rtrec.users VALUES (1, '{"age": 30}'), (2, '{"age": 41, "vip": true}');
INSERT INTO rtrec.events (user_id, item_id, event_type, ts, context)
	SELECT u, (u * 7 + k) % 40 + 1,
		   (ARRAY['view', 'click', 'rating_5', 'purchase', 'impression', 'cart'])[(u + k) % 6 + 1],
		   timestamptz '2024-01-01 00:00:00+00' + make_interval(mins => u * 13 + k),
		   CASE WHEN k = 0 THEN jsonb_build_object('page', u) END
	  FROM generate_series(1, 25) u, generate_series(0, 7) k;
-- item 38 was registered by the events above; the catalog fills it in later
INSERT INTO rtrec.items (item_id, category_id, price, brand) VALUES (38, 1, 9.99, 'late brand');
-- a category change applies to past events after a rebuild (see CONTRACT)
SELECT rtrec_rebuild();
-- and a few more events on top of the rebuilt state
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
	SELECT u, 38, 'rating_5', timestamptz '2024-01-02 00:00:00+00' + make_interval(mins => u)
	  FROM generate_series(1, 5) u;
SELECT rtrec_swing_refresh();
});
# A's answers as the formulas give them: rebuild, so that the comparison
# below tests the dump, not how closely the incremental refresh tracks the
# formulas (other tests do that)
$node_a->safe_psql('shop', 'SELECT rtrec_rebuild()');

# Everything users wrote, each table as one checksum, and the counts.
my %user_data = (
	events => q{SELECT count(*) || ' ' || md5(coalesce(string_agg(format('%s|%s|%s|%s|%s|%s',
			event_id, user_id, item_id, event_type, extract(epoch FROM ts), context), ';' ORDER BY event_id), ''))
		FROM rtrec.events},
	config => q{SELECT string_agg(format('%s=%s (%s)', name, value, description), ';' ORDER BY name) FROM rtrec.config},
	event_types => q{SELECT string_agg(format('%s=%s', event_type, weight), ';' ORDER BY event_type) FROM rtrec.event_types},
	model_weights => q{SELECT string_agg(format('%s=%s', feature, weight), ';' ORDER BY feature) FROM rtrec.model_weights},
	items => q{SELECT count(*) || ' ' || md5(string_agg(format('%s|%s|%s|%s|%s|%s',
			item_id, category_id, price, brand, available, attrs), ';' ORDER BY item_id))
		FROM rtrec.items},
	users => q{SELECT string_agg(format('%s|%s', user_id, attrs), ';' ORDER BY user_id) FROM rtrec.users},
);

# What the read functions answer; scores to 9 decimals, so that a rebuild's
# summation order cannot make a difference.
my %answers = (
	recommend => q{
		SELECT string_agg(format('%s:%s:%s:%s', u, r.item_id, round(r.score::numeric, 9), r.reason),
						  ',' ORDER BY u, r.score DESC, r.item_id)
		  FROM generate_series(1, 26) u, LATERAL rtrec_recommend(u, 10) r},
	similar => q{
		SELECT string_agg(format('%s:%s:%s', i, s.item_id, round(s.score::numeric, 9)),
						  ',' ORDER BY i, s.score DESC, s.item_id)
		  FROM generate_series(1, 40) i, LATERAL rtrec_similar(i, 10) s},
	trending => q{
		SELECT string_agg(format('%s:%s:%s', coalesce(c::text, 'all'), t.item_id, round(t.score::numeric, 9)),
						  ',' ORDER BY c NULLS FIRST, t.score DESC, t.item_id)
		  FROM (VALUES (NULL::bigint), (0), (1), (2)) v(c), LATERAL rtrec_trending(c, 10) t},
	user_features => q{SELECT string_agg(format('%s:%s:%s:%s', user_id, n_events, last_item_id, last_category_id),
						  ',' ORDER BY user_id) FROM rtrec.user_features},
);

# Runs every query of a set in one statement (a connection costs more than
# these queries); returns name => answer.
sub read_all
{
	my ($node, $db, $queries) = @_;
	my @names = sort keys %$queries;
	my $sql = 'SELECT ' . join(",\n", map { "($queries->{$_}) AS \"$_\"" } @names);
	my @values = split /\x1f/, $node->safe_psql($db, $sql, extra_params => [ '-F', "\x1f" ]), -1;
	die "read_all: got " . scalar(@values) . " columns" unless @values == @names;
	my %result;
	@result{@names} = @values;
	return %result;
}

my %want = (read_all($node_a, 'shop', \%user_data), read_all($node_a, 'shop', \%answers));
is($node_a->safe_psql('shop', 'SELECT count(*) FROM rtrec_verify()'), '0',
	'A: the derived state is consistent before the dump');
like($want{events}, qr/^205 /, 'A: 205 events');
ok($node_a->safe_psql('shop', 'SELECT count(*) FROM rtrec.items WHERE item_id > 30') >= 5,
	'A: events registered items missing from the catalog');
like($want{recommend}, qr/swing:\d+/, 'A: recommendations use Swing');

my $dump = $node_a->basedir . '/shop.dump';
my $plain = $node_a->basedir . '/shop.sql';
command_ok(
	[ 'pg_dump', '-Fc', '-f', $dump, '-d', $node_a->connstr('shop') ],
	'pg_dump -Fc of A');
command_ok(
	[ 'pg_dump', '-Fp', '-f', $plain, '-d', $node_a->connstr('shop') ],
	'pg_dump -Fp of A');

# What the dump holds: the user tables' data and the sequence, not the
# derived state.
my ($toc, $toc_err) = run_command([ 'pg_restore', '-l', $dump ]);
for my $table (qw(config event_types model_weights items users events))
{
	like($toc, qr/TABLE DATA rtrec $table /, "the dump holds the data of rtrec.$table");
}
like($toc, qr/SEQUENCE SET rtrec events_event_id_seq /, 'the dump holds the event id sequence');
for my $table (qw(user_state item_state user_item_state swing_queue
	swing_neighbors cf_neighbors trending_items))
{
	unlike($toc, qr/TABLE DATA rtrec $table /, "the dump leaves out derived rtrec.$table");
}

$node_a->stop;

# Fresh cluster B
my $node_b = PostgreSQL::Test::Cluster->new('dump_b');
$node_b->init;
$node_b->append_conf('postgresql.conf', "log_statement = none\n");
$node_b->start;
$node_b->safe_psql('postgres', 'CREATE DATABASE restored');
$node_b->safe_psql('postgres', 'CREATE DATABASE restored_plain');

my ($stdout, $stderr);
my $ok = IPC::Run::run(
	[ 'pg_restore', '-d', $node_b->connstr('restored'), $dump ],
	'>', \$stdout, '2>', \$stderr);
ok($ok, 'pg_restore into a new database of a fresh cluster succeeds');
is($stderr, '', 'pg_restore prints no error');

$ok = IPC::Run::run(
	[
		'psql', '-X', '-q', '-d',
		$node_b->connstr('restored_plain'), '-f', $plain
	],
	'>', \$stdout, '2>', \$stderr);
is($stderr, '', 'the plain SQL dump restores without an error');

for my $db (qw(restored restored_plain))
{
	my %got = read_all($node_b, $db, \%user_data);
	for my $name (sort keys %user_data)
	{
		is($got{$name}, $want{$name}, "$db: rtrec.$name equals A's");
	}
}

# The derived state came back with the events (their triggers fired); the
# install script asks for a rebuild after a restore, which must make it
# exact.
my $diffs = $node_b->safe_psql('restored', 'SELECT count(*) FROM rtrec_verify()');
note "rtrec_verify() right after pg_restore, before rtrec_rebuild(): $diffs differences";
$node_b->safe_psql('restored', 'SELECT rtrec_rebuild()');
is($node_b->safe_psql('restored', 'SELECT count(*) FROM rtrec_verify()'), '0',
	'restored: rtrec_verify() is empty after rtrec_rebuild()')
  or diag($node_b->safe_psql('restored', 'SELECT * FROM rtrec_verify() LIMIT 20'));
my %got = (read_all($node_b, 'restored', \%answers), read_all($node_b, 'restored', \%user_data));
for my $name (sort keys %answers)
{
	is($got{$name}, $want{$name}, "restored: $name gives A's answers");
}
is($got{items}, $want{items}, 'restored: the rebuild left the catalog as it was');

# the identity sequence continues where A's stopped
my $max_id = $node_b->safe_psql('restored', 'SELECT max(event_id) FROM rtrec.events');
my ($ret, $new_id, $err) = $node_b->psql('restored', q{
	INSERT INTO rtrec.events (user_id, item_id, event_type) VALUES (1, 1, 'rating_5')
	RETURNING event_id});
is($ret, 0, 'restored: a new event can be inserted') or diag($err);
cmp_ok($new_id || 0, '>', $max_id, 'restored: the new event gets a fresh event_id');
is($node_b->safe_psql('restored', 'SELECT count(*) FROM rtrec_verify()'), '0',
	'restored: the new event is applied consistently');

$node_b->stop;
done_testing();
