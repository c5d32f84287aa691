# t/lib/RtrecTAP.pm: helpers shared by rtrec's TAP tests, for queries in
# PostgreSQL::Test::BackgroundPsql sessions.
package RtrecTAP;

use strict;
use warnings;

use Exporter 'import';
use Time::HiRes qw(time usleep);

our @EXPORT = qw(run_in q_ok wait_until $WORKER_RUNNING $WORKER_GONE);

# is rtrec's Swing refresh worker running (in any database)?
our $WORKER_RUNNING = q{
	SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'rtrec swing refresher'};
our $WORKER_GONE = q{
	SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'rtrec swing refresher'};

# Runs a query in a session; returns (output, stderr).
sub run_in
{
	my ($session, $sql) = @_;
	my $out = $session->query($sql);
	my $err = $session->{stderr};
	$session->{stderr} = '';
	return ($out, $err);
}

# Runs a query that must succeed; returns its output.
sub q_ok
{
	my ($session, $sql) = @_;
	my ($out, $err) = run_in($session, $sql);
	die "query failed: $err\n$sql" if $err ne '';
	return $out;
}

# Polls a session until the query returns 't'; returns the seconds it took,
# or undef after $timeout seconds.
sub wait_until
{
	my ($session, $sql, $timeout) = @_;
	my $start = time;
	while (time - $start < $timeout)
	{
		my ($out, $err) = run_in($session, $sql);
		return time - $start if $out eq 't';
		usleep(10_000);
	}
	return undef;
}

1;
