/* Whether two decoded struct pp_meta say the same: the same flags, and the
 * same value in every field a flag names; what flags does not name is not
 * part of it (plugins/lib/wire.h). A set prefix is compared whole, NUL and
 * all that follows, so that nothing of an earlier TLV hides behind it.
 * Shared by tests/unit/test_wire.c and tests/fuzz/fuzz_wire.c. */
#ifndef PKTPIPE_TESTS_META_SAME_H
#define PKTPIPE_TESTS_META_SAME_H

#include <stdbool.h>
#include <string.h>

#include <pktpipe/plugin.h>

static inline bool meta_same(const struct pp_meta *a, const struct pp_meta *b)
{
	uint32_t f = a->flags;

	return f == b->flags && a->prefix[0] == b->prefix[0] &&
	       (!(f & PP_META_PREFIX) || memcmp(a->prefix, b->prefix, sizeof(a->prefix)) == 0) &&
	       (!(f & PP_META_GROUP) || a->group == b->group) &&
	       (!(f & PP_META_IFINDEX_IN) || a->ifindex_in == b->ifindex_in) &&
	       (!(f & PP_META_IFINDEX_OUT) || a->ifindex_out == b->ifindex_out) &&
	       (!(f & PP_META_PHYSIN) || a->physin == b->physin) &&
	       (!(f & PP_META_PHYSOUT) || a->physout == b->physout) &&
	       (!(f & PP_META_MARK) || a->mark == b->mark) &&
	       (!(f & PP_META_UID) || a->uid == b->uid) && (!(f & PP_META_GID) || a->gid == b->gid) &&
	       (!(f & PP_META_HW_PROTOCOL) || a->hw_protocol == b->hw_protocol) &&
	       (!(f & PP_META_SEQ) || a->seq == b->seq) &&
	       (!(f & PP_META_SEQ_GLOBAL) || a->seq_global == b->seq_global);
}

#endif
