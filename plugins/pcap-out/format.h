/* The bytes of pcap-out's two formats, and the check of a file it is asked
 * to continue (append = yes). Pure functions: memory in, memory out; the
 * check only reads the fd it is given.
 *
 * pcap: a 24-byte file header, then per packet a 16-byte record header and
 * the data; native byte order.
 * pcapng: a section header block (SHB), one interface description block
 * (IDB) per linktype, with if_tsresol; per packet an enhanced packet block
 * (EPB): a 28-byte head, the data, then a tail holding the padding, the
 * options (the nflog metadata as opt_comment) and the trailing length.
 */
#ifndef PKTPIPE_PCAP_OUT_FORMAT_H
#define PKTPIPE_PCAP_OUT_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pktpipe/plugin.h>

#define FMT_PCAP_HEADER_LEN 24
#define FMT_PCAP_RECORD_LEN 16
#define FMT_SHB_LEN 44
#define FMT_IDB_LEN 32
#define FMT_EPB_HEAD_LEN 28
/* An opt_comment's text: a prefix of 127 bytes escaped is at most 508. */
#define FMT_COMMENT_MAX 768
/* Padding, options and trailing length of one EPB. */
#define FMT_EPB_TAIL_MAX (3 + 4 + FMT_COMMENT_MAX + 4 + 4)

/* Timestamp resolution: microseconds or nanoseconds. */
struct fmt_file {
	bool ns;
	uint32_t snaplen;
};

size_t fmt_pcap_header(uint8_t *out, const struct fmt_file *f, uint32_t linktype);
size_t fmt_pcap_record(uint8_t *out, const struct fmt_file *f, uint64_t ts_ns, uint32_t caplen,
		       uint32_t origlen);

size_t fmt_shb(uint8_t *out);
size_t fmt_idb(uint8_t *out, const struct fmt_file *f, uint32_t linktype);
/* The metadata a packet carries, as one line of text; 0 when it has none. */
size_t fmt_comment(char *out, size_t size, const struct pp_meta *m);
/* An EPB is head (FMT_EPB_HEAD_LEN), caplen bytes of data, then the tail
 * built here (its length returned); the head needs the tail's length. */
size_t fmt_epb_tail(uint8_t *out, uint32_t caplen, const char *comment, size_t comment_len);
size_t fmt_epb_head(uint8_t *out, const struct fmt_file *f, uint32_t ifid, uint64_t ts_ns,
		    uint32_t caplen, uint32_t origlen, size_t tail_len);

/* What a pcap file to append to must match. linktype: the one the stream
 * uses, if known (have_linktype); else the file's is adopted. */
struct fmt_want {
	struct fmt_file file;
	bool have_linktype;
	uint32_t linktype;
};

/* Whether the file (size bytes, > 0) can be continued as pcap: its header
 * matches; *linktype is the file's. *keep is where whole records end (a
 * record torn by a crash is cut off). -EINVAL with the reason in err. */
int fmt_pcap_resume(int fd, uint64_t size, const struct fmt_want *want, uint32_t *linktype,
		    uint64_t *keep, char *err, size_t errlen);
/* The same for pcapng: the file is pcapng; *keep is where whole blocks end.
 * A new section follows, so nothing else needs to match. */
int fmt_pcapng_resume(int fd, uint64_t size, uint64_t *keep, char *err, size_t errlen);

#endif
