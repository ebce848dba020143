/* The ring's request format (../query.c), compiled into pktpipe-query too:
 * the Makefile builds a program from its own folder and the plugin's
 * `extra` sources only, and the one parser must serve both ends. */
#include "../query.c"
