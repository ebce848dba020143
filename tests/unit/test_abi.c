/* ABI 1 pinned: the size and every field offset of the public structs, as
 * built on x86_64 (LP64). If this fails, a change moved a field that
 * compiled plugins rely on: append instead, or bump PP_ABI_VERSION. */
#include <stddef.h>
#include <pktpipe/plugin.h>
#include <pktpipe/wire.h>
#include "check.h"

#define PIN_SIZE(s, n) CHECK_EQ_INT(sizeof(struct s), n)
#define PIN(s, f, n) CHECK_EQ_INT(offsetof(struct s, f), n)

TEST(abi_version_is_one)
{
	CHECK_EQ_INT(PP_ABI_VERSION, 1);
	CHECK_EQ_INT(PP_LINKTYPE_FRAME, 0x10000);
	CHECK_EQ_INT(PP_PREFIX_MAX, 128);
	CHECK_EQ_INT(PP_BATCH_MAX, 256);
	CHECK_EQ_INT(PP_CODEC_ZLIB, 1);
	CHECK_EQ_INT(PP_CODEC_ZSTD, 2);
}

TEST(roles_and_types_are_stable)
{
	CHECK_EQ_INT(PP_ROLE_SOURCE, 1);
	CHECK_EQ_INT(PP_ROLE_FILTER, 2);
	CHECK_EQ_INT(PP_ROLE_SINK, 4);
	CHECK_EQ_INT(PP_ROLE_SERVICE, 8);
	CHECK_EQ_INT(PP_ROLE_CODEC, 16);
	CHECK_EQ_INT(PP_OPT_STRING, 0);
	CHECK_EQ_INT(PP_OPT_CUSTOM, 10);
	CHECK_EQ_INT(PP_META_PHYSOUT, 1u << 11);
	CHECK_EQ_INT(PP_WATCH_EDGE, 4);
}

TEST(struct_layouts_are_pinned)
{
	PIN_SIZE(pp_meta, 172);
	PIN(pp_meta, flags, 0);
	PIN(pp_meta, group, 4);
	PIN(pp_meta, hw_protocol, 6);
	PIN(pp_meta, ifindex_in, 8);
	PIN(pp_meta, ifindex_out, 12);
	PIN(pp_meta, physin, 16);
	PIN(pp_meta, physout, 20);
	PIN(pp_meta, mark, 24);
	PIN(pp_meta, uid, 28);
	PIN(pp_meta, gid, 32);
	PIN(pp_meta, seq, 36);
	PIN(pp_meta, seq_global, 40);
	PIN(pp_meta, prefix, 44);
	PIN_SIZE(pp_packet, 216);
	PIN(pp_packet, data, 0);
	PIN(pp_packet, caplen, 8);
	PIN(pp_packet, origlen, 12);
	PIN(pp_packet, ts_ns, 16);
	PIN(pp_packet, linktype, 24);
	PIN(pp_packet, count, 28);
	PIN(pp_packet, capacity, 32);
	PIN(pp_packet, codec, 36);
	PIN(pp_packet, meta, 40);
	PIN_SIZE(pp_batch, 16);
	PIN(pp_batch, pkts, 0);
	PIN(pp_batch, count, 8);
	PIN_SIZE(pp_stats, 40);
	PIN(pp_stats, packets_in, 0);
	PIN(pp_stats, bytes_in, 8);
	PIN(pp_stats, packets_out, 16);
	PIN(pp_stats, bytes_out, 24);
	PIN(pp_stats, packets_held, 32);
	PIN_SIZE(pp_list, 24);
	PIN(pp_list, count, 0);
	PIN(pp_list, str, 8);
	PIN(pp_list, num, 16);
	PIN_SIZE(pp_option, 88);
	PIN(pp_option, name, 0);
	PIN(pp_option, type, 8);
	PIN(pp_option, default_value, 16);
	PIN(pp_option, min, 24);
	PIN(pp_option, max, 32);
	PIN(pp_option, offset, 40);
	PIN(pp_option, help, 48);
	PIN(pp_option, choices, 56);
	PIN(pp_option, item_type, 64);
	PIN(pp_option, max_items, 68);
	PIN(pp_option, parse, 72);
	PIN(pp_option, value_hint, 80);
	PIN_SIZE(pp_codec, 64);
	PIN(pp_codec, struct_size, 0);
	PIN(pp_codec, name, 8);
	PIN(pp_codec, wire_id, 16);
	PIN(pp_codec, ctx_new, 24);
	PIN(pp_codec, ctx_free, 32);
	PIN(pp_codec, bound, 40);
	PIN(pp_codec, compress, 48);
	PIN(pp_codec, decompress, 56);
	PIN_SIZE(pp_log_limit, 16);
	PIN(pp_log_limit, next_ns, 0);
	PIN(pp_log_limit, suppressed, 8);
	PIN_SIZE(pp_host, 232);
	PIN(pp_host, abi_version, 0);
	PIN(pp_host, struct_size, 4);
	PIN(pp_host, log, 8);
	PIN(pp_host, log_limited, 16);
	PIN(pp_host, node_name, 24);
	PIN(pp_host, emit, 32);
	PIN(pp_host, delivered, 40);
	PIN(pp_host, stats, 48);
	PIN(pp_host, drop_reason, 56);
	PIN(pp_host, counter, 64);
	PIN(pp_host, stats_foreach, 72);
	PIN(pp_host, finished, 80);
	PIN(pp_host, watch_fd, 88);
	PIN(pp_host, watch_modify, 96);
	PIN(pp_host, unwatch, 104);
	PIN(pp_host, timer_new, 112);
	PIN(pp_host, timer_arm, 120);
	PIN(pp_host, timer_disarm, 128);
	PIN(pp_host, timer_free, 136);
	PIN(pp_host, now_mono_ns, 144);
	PIN(pp_host, now_real_ns, 152);
	PIN(pp_host, packet_alloc, 160);
	PIN(pp_host, packet_ref, 168);
	PIN(pp_host, packet_unref, 176);
	PIN(pp_host, codec_find, 184);
	PIN(pp_host, codec_by_id, 192);
	PIN(pp_host, packet_wrap, 200);
	PIN(pp_host, packet_keep, 208);
	PIN(pp_host, downstream_wait, 216);
	PIN(pp_host, set_busy, 224);
	PIN_SIZE(pp_plugin, 120);
	PIN(pp_plugin, abi_version, 0);
	PIN(pp_plugin, struct_size, 4);
	PIN(pp_plugin, name, 8);
	PIN(pp_plugin, summary, 16);
	PIN(pp_plugin, roles, 24);
	PIN(pp_plugin, options, 32);
	PIN(pp_plugin, config_size, 40);
	PIN(pp_plugin, validate, 48);
	PIN(pp_plugin, open, 56);
	PIN(pp_plugin, start, 64);
	PIN(pp_plugin, process, 72);
	PIN(pp_plugin, stop, 80);
	PIN(pp_plugin, close, 88);
	PIN(pp_plugin, reopen, 96);
	PIN(pp_plugin, codecs, 104);
	PIN(pp_plugin, commands, 112);
	PIN_SIZE(pp_command, 32);
	PIN(pp_command, name, 0);
	PIN(pp_command, args, 8);
	PIN(pp_command, help, 16);
	PIN(pp_command, run, 24);
}

CHECK_MAIN("abi", TEST_ENTRY(abi_version_is_one), TEST_ENTRY(roles_and_types_are_stable),
	   TEST_ENTRY(struct_layouts_are_pinned))
