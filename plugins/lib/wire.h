/* Encoders and decoders of the wire formats: native frames (WIRE.md in
 * plugins/zmq-out), legacy XDR messages and legacy-rc messages of
 * nflog-zmq-pcap-pipe. Pure functions over byte buffers: no I/O, no
 * libzmq, no host; compression goes through a struct pp_codec the caller
 * passes in.
 *
 * Decoders take bytes from the network. Every length is checked against
 * what is left before it is used, every count against what the bytes can
 * hold, and nothing is allocated from a length the input claims. They
 * return 0 (or 1 for "a record") on success and -EBADMSG for malformed
 * input; -EPROTONOSUPPORT for a native version this code does not speak;
 * -ENOPROTOOPT when the codec the message needs was not given; -EMSGSIZE
 * when decompressed data would exceed the room given (a bomb). */
#ifndef PKTPIPE_PLUGINS_LIB_WIRE_H
#define PKTPIPE_PLUGINS_LIB_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pktpipe/plugin.h>
#include <pktpipe/wire.h>

/* ------------------------------------------------------------------ */
/* Native frames                                                        */

struct wire_header {
	uint8_t version;
	uint8_t codec; /* PP_CODEC_* */
	uint16_t flags; /* PP_WIRE_FLAG_* */
	uint64_t sender;
	uint64_t seq; /* packets this sender sent before this frame */
	uint32_t count; /* records */
	uint32_t raw_len; /* bytes of the records, uncompressed */
	/* Decoding: the bytes after the header (compressed when codec != 0). */
	const uint8_t *payload;
	size_t payload_len;
};

/* One record, as decoded. data points into the decoder's input. Of meta,
 * flags and prefix[0] are always set, the other fields only where flags
 * names them (the rest is left as it was: copy meta only when flags is
 * not 0). */
struct wire_record {
	uint64_t ts_ns;
	uint32_t caplen, origlen, linktype;
	const uint8_t *data;
	struct pp_meta meta;
};

/* Whether msg claims to be a native frame (magic and a version byte);
 * anything else is legacy. Cheap; wire_native_header() checks the rest. */
bool wire_is_native(const void *msg, size_t len);

/* Parse and check a frame's header; h->payload points into msg. */
int wire_native_header(const void *msg, size_t len, struct wire_header *h);

/* The records of a checked header: *records is h->payload when the frame
 * is not compressed, else scratch, into which exactly h->raw_len bytes were
 * decompressed with codec (whose wire id must be h->codec). scratch_len
 * below raw_len gives -EMSGSIZE: callers bound it by their largest message. */
int wire_native_records(const struct wire_header *h, const struct pp_codec *codec, void *ctx,
			uint8_t *scratch, size_t scratch_len, const uint8_t **records);

/* Walks the records of a frame. */
struct wire_cursor {
	const uint8_t *p;
	size_t left;
	uint32_t todo;
};

void wire_cursor_init(struct wire_cursor *c, const uint8_t *records, size_t len, uint32_t count);

/* 1: *r is the next record; 0: the records ended exactly where the count
 * said; -EBADMSG otherwise. */
int wire_native_next(struct wire_cursor *c, struct wire_record *r);

/* Whether every record of a frame is well-formed (0 or -EBADMSG). */
int wire_native_check(const uint8_t *records, size_t len, uint32_t count);

/* Encoding. A record of packet p takes wire_native_record_len(p) bytes.
 * Frames (linktype PP_LINKTYPE_FRAME) are not records: callers send them
 * as they are. */
size_t wire_native_record_len(const struct pp_packet *p);
size_t wire_native_put_record(uint8_t *out, const struct pp_packet *p);
/* The header from h's fields (payload ignored); PP_WIRE_HEADER_LEN bytes. */
void wire_native_put_header(uint8_t *out, const struct wire_header *h);

/* A whole uncompressed frame of n packets into out (outlen bytes); h gives
 * sender, seq and flags, its count and raw_len are set here. Returns the
 * frame's length, or 0 if it does not fit in outlen (or in 32-bit fields). */
size_t wire_native_encode(uint8_t *out, size_t outlen, struct wire_header *h,
			  struct pp_packet *const *pkts, uint32_t n);

/* A compressed frame from records already encoded (raw, raw_len bytes):
 * header then codec output, into out (*outlen bytes; set to the frame's
 * length). h gives sender, seq, flags and count. */
int wire_native_seal(uint8_t *out, size_t *outlen, struct wire_header *h, const uint8_t *raw,
		     size_t raw_len, const struct pp_codec *codec, void *ctx);

/* Compressors (the zlib node, ratelimit): n packets (not frames) as one
 * compressed frame. Their records are laid out in scratch, which must hold
 * wire_native_records_len() bytes, then sealed into out (*outlen bytes, at
 * least wire_native_compress_bound(); set to the frame's length). h gives
 * sender, seq and flags; its codec, count and raw_len are set here. */
size_t wire_native_records_len(struct pp_packet *const *pkts, uint32_t n);
size_t wire_native_compress_bound(const struct pp_codec *codec, size_t records_len);
int wire_native_compress(uint8_t *out, size_t *outlen, struct wire_header *h,
			 struct pp_packet *const *pkts, uint32_t n, uint8_t *scratch,
			 size_t scratch_len, const struct pp_codec *codec, void *ctx);

/* ------------------------------------------------------------------ */
/* Per-sender sequence tracking (the receiver's view)                   */

#define WIRE_SENDERS_MAX 64
/* A jump beyond this is a sender that restarted with the same id, or a
 * forged header, not a loss: the receiver resynchronises. */
#define WIRE_GAP_MAX (1ull << 32)

struct wire_senders {
	struct {
		uint64_t id, next_seq, last_use;
		bool used;
	} slot[WIRE_SENDERS_MAX];
	uint64_t clock;
};

enum wire_seq_status {
	WIRE_SEQ_IN_ORDER,
	WIRE_SEQ_NEW, /* first frame of this sender: the baseline */
	WIRE_SEQ_GAP, /* *lost packets are missing before this frame */
	WIRE_SEQ_RESYNC, /* backwards or an implausible jump: new baseline */
};

/* Account a frame of count packets from sender starting at seq. The table
 * keeps the WIRE_SENDERS_MAX most recently seen senders. */
enum wire_seq_status wire_seq_track(struct wire_senders *t, uint64_t sender, uint64_t seq,
				    uint32_t count, uint64_t *lost);

/* ------------------------------------------------------------------ */
/* Legacy: one XDR message per packet                                   */

/* Bytes of the legacy message of a caplen-byte packet. */
size_t wire_legacy_len(uint32_t caplen);
/* Encode p (caplen bytes of raw IP); returns wire_legacy_len(p->caplen). */
size_t wire_legacy_put(uint8_t *out, const struct pp_packet *p);
/* Decode exactly one message: no byte may follow its padding. */
int wire_legacy_decode(const uint8_t *msg, size_t len, struct wire_record *r);

/* legacy-rc: a tag byte, then a legacy message (PP_LEGACY_RC_PLAIN) or a
 * zlib stream of [u32 length][legacy message] records (PP_LEGACY_RC_ZLIB). */
size_t wire_legacy_rc_len(uint32_t caplen);
size_t wire_legacy_rc_put(uint8_t *out, const struct pp_packet *p);

struct wire_rc_cursor {
	const uint8_t *p;
	size_t left;
	bool single; /* a plain message: one legacy message, no length prefix */
};

/* Open a legacy-rc message: a zlib one is decompressed with codec (the
 * "zlib" codec; NULL gives -ENOPROTOOPT) into scratch, which bounds it. */
int wire_rc_open(struct wire_rc_cursor *c, const uint8_t *msg, size_t len,
		 const struct pp_codec *codec, void *ctx, uint8_t *scratch, size_t scratch_len);
/* 1: *r is the next packet; 0: the message ended exactly; -EBADMSG. */
int wire_rc_next(struct wire_rc_cursor *c, struct wire_record *r);
/* Whether every record of an opened message is well-formed; counts them. */
int wire_rc_check(const struct wire_rc_cursor *c, uint32_t *count);

/* Whether packets of linktype lt can travel in the legacy formats, which
 * carry raw IP only (LINKTYPE_RAW, DLT_RAW, IPV4, IPV6). */
bool wire_legacy_linktype(uint32_t lt);

/* A compressed native frame for a legacy-rc wire: the records of a frame
 * (as wire_native_records() and wire_native_check() gave them: records,
 * len bytes, count) as one PP_LEGACY_RC_ZLIB message, the original's
 * compressed batch: the tag, then [u32 length][legacy message] per packet
 * compressed with codec (zlib, or the receiver cannot read it). Records
 * the legacy format cannot carry (wire_legacy_linktype) are left out and
 * counted in *skipped. scratch takes the uncompressed records: at least
 * wire_rc_records_bound(len, count) bytes; out (*outlen bytes, set to the
 * message's length) at least 1 + codec->bound() of that. */
size_t wire_rc_records_bound(size_t len, uint32_t count);
int wire_rc_from_native(uint8_t *out, size_t *outlen, const uint8_t *records, size_t len,
			uint32_t count, uint8_t *scratch, size_t scratch_len,
			const struct pp_codec *codec, void *ctx, uint32_t *skipped);

#endif
