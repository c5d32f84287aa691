# rtrec: PGXS build.  `make && make install` builds and installs the extension;
# `scripts/test.sh` (the README's test command) runs every test on a throwaway cluster.
MODULE_big = rtrec
OBJS = $(patsubst %.c,%.o,$(wildcard src/*.c))

EXTENSION = rtrec
DATA = $(wildcard rtrec--*.sql)

REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --load-extension=rtrec
ISOLATION = $(patsubst specs/%.spec,%,$(sort $(wildcard specs/*.spec)))
ISOLATION_OPTS = --load-extension=rtrec
TAP_TESTS = 1

PG_CFLAGS += -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers
ifdef WERROR
PG_CFLAGS += -Werror
endif

# rebuild a C file when a header it includes changes (PGXS does not by default)
override autodepend = yes

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
