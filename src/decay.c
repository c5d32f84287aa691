/*-------------------------------------------------------------------------
 *
 * decay.c
 *	  Time-decayed sums that commute: trend, affinity.
 *
 * A decayed sum of events (w_k, t_k) read at time t is
 *		sum_k w_k * 2^(-(t - t_k) / h).
 * Updating "value as of last time" per event depends on the order of events
 * and underflows for gaps of years.  We keep instead
 *		L = log2(sum_k w_k * 2^(x_k)),	x_k = (t_k - 2000-01-01) / h,
 * which is a plain sum in log space: events add in any order or batching
 * (log-sum-exp), partial sums from several writers merge the same way, and
 * nothing overflows.  The value at time t is 2^(L - x(t)).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "utils/float.h"
#include "utils/timestamp.h"

#include "rtrec.h"

/* seconds since 2000-01-01 (PostgreSQL's epoch) divided by the half-life */
static inline double
decay_exponent(TimestampTz ts, double half_life_s)
{
	return ((double) ts / (double) USECS_PER_SEC) / half_life_s;
}

double
RtrecDecayLog2(double weight, TimestampTz ts, double half_life_s)
{
	return log2(weight) + decay_exponent(ts, half_life_s);
}

double
RtrecDecayValue(double l, TimestampTz ts, double half_life_s)
{
	return exp2(l - decay_exponent(ts, half_life_s));
}

/* log2(2^a + 2^b), exact to rounding for any magnitudes */
double
RtrecLog2Add(double a, double b)
{
	double		hi = Max(a, b);
	double		lo = Min(a, b);

	if (isinf(lo) && lo < 0)
		return hi;
	return hi + log1p(exp2(lo - hi)) / M_LN2;
}

static void
check_decay_arguments(double half_life_s, TimestampTz ts)
{
	if (!(half_life_s > 0) || isinf(half_life_s))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid half-life %g", half_life_s),
				 errhint("The half-life must be a finite number of seconds > 0.")));
	if (TIMESTAMP_NOT_FINITE(ts))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp must be finite"),
				 errhint("Use a finite timestamp.")));
}

PG_FUNCTION_INFO_V1(rtrec_log2_add);
Datum
rtrec_log2_add(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) && PG_ARGISNULL(1))
		PG_RETURN_NULL();
	if (PG_ARGISNULL(0))
		PG_RETURN_FLOAT8(PG_GETARG_FLOAT8(1));
	if (PG_ARGISNULL(1))
		PG_RETURN_FLOAT8(PG_GETARG_FLOAT8(0));
	PG_RETURN_FLOAT8(RtrecLog2Add(PG_GETARG_FLOAT8(0), PG_GETARG_FLOAT8(1)));
}

PG_FUNCTION_INFO_V1(rtrec_decay_log2);
Datum
rtrec_decay_log2(PG_FUNCTION_ARGS)
{
	double		weight = PG_GETARG_FLOAT8(0);
	TimestampTz ts = PG_GETARG_TIMESTAMPTZ(1);
	double		half_life_s = PG_GETARG_FLOAT8(2);

	check_decay_arguments(half_life_s, ts);
	if (isnan(weight) || weight < 0 || isinf(weight))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid weight %g", weight),
				 errhint("Weights must be finite and >= 0.")));
	PG_RETURN_FLOAT8(RtrecDecayLog2(weight, ts, half_life_s));
}

PG_FUNCTION_INFO_V1(rtrec_decay_value);
Datum
rtrec_decay_value(PG_FUNCTION_ARGS)
{
	double		l = PG_GETARG_FLOAT8(0);
	TimestampTz ts = PG_GETARG_TIMESTAMPTZ(1);
	double		half_life_s = PG_GETARG_FLOAT8(2);

	check_decay_arguments(half_life_s, ts);
	PG_RETURN_FLOAT8(RtrecDecayValue(l, ts, half_life_s));
}

PG_FUNCTION_INFO_V1(rtrec_close_enough);
Datum
rtrec_close_enough(PG_FUNCTION_ARGS)
{
	double		a,
				b;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_BOOL(PG_ARGISNULL(0) && PG_ARGISNULL(1));
	a = PG_GETARG_FLOAT8(0);
	b = PG_GETARG_FLOAT8(1);
	if (a == b || (isnan(a) && isnan(b)))
		PG_RETURN_BOOL(true);
	PG_RETURN_BOOL(fabs(a - b) <= 1e-9 * Max(1.0, Max(fabs(a), fabs(b))));
}
