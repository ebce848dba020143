/* LINKTYPE numbers (tcpdump.org, what pcap files and pktpipe packets
 * carry) against libpcap's DLT values (what its API takes and returns).
 * The two agree but for a few DLTs whose numbers differ between systems;
 * this one table knows them, both ways, for pcap-in, pcap-out and the
 * ring. Pure functions: no I/O, no host. */
#ifndef PKTPIPE_PLUGINS_LIB_LINKTYPE_H
#define PKTPIPE_PLUGINS_LIB_LINKTYPE_H

#include <stdint.h>

/* The LINKTYPE of a DLT libpcap gave (pcap_datalink(), a name it knew). */
uint32_t linktype_from_dlt(int dlt);
/* The DLT libpcap wants for a LINKTYPE (pcap_open_dead(), BPF). */
int linktype_to_dlt(uint32_t linktype);

#endif
