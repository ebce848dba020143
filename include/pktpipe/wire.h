/* pktpipe wire constants: codec ids shared by every plugin that encodes or
 * decodes frames, and the legacy format of nflog-zmq-pcap-pipe. The native
 * frame layout is documented in plugins/zmq/WIRE.md. All multi-byte fields
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

#endif
