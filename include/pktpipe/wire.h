/* pktpipe wire constants: codec ids shared by every plugin that encodes or
 * decodes frames, and the legacy format of nflog-zmq-pcap-pipe. The native
 * frame layout is documented in plugins/zmq-out/WIRE.md. All multi-byte fields
 * on the wire are big-endian. */
#ifndef PKTPIPE_WIRE_H
#define PKTPIPE_WIRE_H

/* Codec ids carried in native frame headers. Never renumber. */
#define PP_CODEC_NONE 0
#define PP_CODEC_ZLIB 1
#define PP_CODEC_ZSTD 2

/* The plugin (and codec) name for a codec id; NULL if unknown. */
static inline const char *pp_codec_name(unsigned id)
{
	switch (id) {
	case PP_CODEC_ZLIB:
		return "zlib";
	case PP_CODEC_ZSTD:
		return "zstd";
	default:
		return 0;
	}
}

/* Legacy (nflog-zmq-pcap-pipe): one XDR message per packet,
 * u32 ts_sec, u32 ts_usec, u32 pkt_len, u32 data_len, data, zero pad to 4. */
#define PP_LEGACY_HEADER_LEN 16
/* legacy-rc: a tag byte, then one blob or a zlib stream of records. */
#define PP_LEGACY_RC_PLAIN 0x00
#define PP_LEGACY_RC_ZLIB 0x01
/* The original's pcap output. */
#define PP_LEGACY_PCAP_SNAPLEN 65535
#define PP_LEGACY_PCAP_LINKTYPE 12

/* Legacy packets carry no linktype: they are raw IP (LINKTYPE_RAW). */
#define PP_LEGACY_LINKTYPE 101

/* Native frames, documented in plugins/zmq-out/WIRE.md: a fixed header,
 * then `count` records, compressed as a whole when codec is not NONE.
 *   header: u32 magic, u8 version, u8 codec, u16 flags, u64 sender,
 *           u64 seq, u32 count, u32 raw_len (records' bytes uncompressed)
 *   record: u64 ts_ns, u32 caplen, u32 origlen, u32 linktype,
 *           u16 meta_len, meta_len bytes of TLVs, caplen bytes of data
 *   TLV:    u8 type, u8 len, len bytes of value */
#define PP_WIRE_MAGIC 0x504b5450u /* "PKTP" */
#define PP_WIRE_VERSION 1
#define PP_WIRE_HEADER_LEN 32
#define PP_WIRE_RECORD_LEN 22 /* a record's fixed part */
/* Header flags. Unknown flags are ignored by receivers. */
#define PP_WIRE_FLAG_SEQ 0x0001u /* seq counts every packet the sender sent: gaps are losses */
/* Metadata TLV types (struct pp_meta). Unknown types are skipped. */
#define PP_WIRE_META_GROUP 1 /* u16 */
#define PP_WIRE_META_PREFIX 2 /* 0..127 bytes, no NUL */
#define PP_WIRE_META_IFINDEX_IN 3 /* u32 */
#define PP_WIRE_META_IFINDEX_OUT 4 /* u32 */
#define PP_WIRE_META_PHYSIN 5 /* u32 */
#define PP_WIRE_META_PHYSOUT 6 /* u32 */
#define PP_WIRE_META_MARK 7 /* u32 */
#define PP_WIRE_META_UID 8 /* u32 */
#define PP_WIRE_META_GID 9 /* u32 */
#define PP_WIRE_META_HW_PROTOCOL 10 /* u16 */
#define PP_WIRE_META_SEQ 11 /* u32 */
#define PP_WIRE_META_SEQ_GLOBAL 12 /* u32 */

#endif
