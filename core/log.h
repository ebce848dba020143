/* Logging to stderr, one line per message, one write(2) per line so lines
 * of several threads never interleave. */
#ifndef PKTPIPE_CORE_LOG_H
#define PKTPIPE_CORE_LOG_H

#include <stdarg.h>
#include <pktpipe/plugin.h>

/* Messages above this level (enum pp_log_level) are not printed. */
extern int pp_log_level;

void pp_vlog(int level, const char *who, const char *fmt, va_list ap) PP_PRINTF(3, 0);
void pp_log(int level, const char *who, const char *fmt, ...) PP_PRINTF(3, 4);

/* At most one line a second per lim; the next printed line says how many
 * were suppressed in between. */
void pp_vlog_limited(struct pp_log_limit *lim, int level, const char *who, const char *fmt,
		     va_list ap) PP_PRINTF(4, 0);

#define pp_err(...) pp_log(PP_LOG_ERROR, NULL, __VA_ARGS__)
#define pp_warn(...) pp_log(PP_LOG_WARNING, NULL, __VA_ARGS__)
#define pp_info(...) pp_log(PP_LOG_INFO, NULL, __VA_ARGS__)
#define pp_debug(...) pp_log(PP_LOG_DEBUG, NULL, __VA_ARGS__)

#endif
