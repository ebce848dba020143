/* LINKTYPE against DLT: see linktype.h. */
#include "linktype.h"

#include <stddef.h>

#include <pcap/pcap.h>

/* DLT values that are not their LINKTYPE number (on Linux; the DLT_ names
 * keep it right elsewhere). Every other DLT equals its LINKTYPE. */
static const struct {
	int dlt;
	uint32_t linktype;
} linktype_map[] = {
	{ DLT_ATM_RFC1483, 100 }, { DLT_RAW, 101 },	 { DLT_SLIP_BSDOS, 102 },
	{ DLT_PPP_BSDOS, 103 },	  { DLT_ATM_CLIP, 106 },
};

#define LINKTYPE_MAP_LEN (sizeof(linktype_map) / sizeof(linktype_map[0]))

uint32_t linktype_from_dlt(int dlt)
{
	for (size_t i = 0; i < LINKTYPE_MAP_LEN; i++)
		if (linktype_map[i].dlt == dlt)
			return linktype_map[i].linktype;
	return (uint32_t)dlt;
}

int linktype_to_dlt(uint32_t linktype)
{
	for (size_t i = 0; i < LINKTYPE_MAP_LEN; i++)
		if (linktype_map[i].linktype == linktype)
			return linktype_map[i].dlt;
	return (int)linktype;
}
